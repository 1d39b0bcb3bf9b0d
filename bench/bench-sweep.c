/* bench-sweep: how long one inference pass and the whole pruning sweep take at the lab's
 * sizes, on the real lab3 BadNet, and how much memory they need.
 *
 * It writes lab-sized data files first (11,547 validation images as float64, 12,830 clean
 * and 12,830 poisoned test images as float32, channels-first, like the lab's), made from
 * the fixture faces with random shifts, brightness and noise, then reads them back the way
 * the CLI does: a chunk at a time, during B's first pass. Usage: bench-sweep [FIXTURES_DIR [WORK_DIR]] */
#define G_LOG_DOMAIN "bench-sweep"

#include <glib/gstdio.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench-lab-data.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-sweep.h"

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

static long
peak_rss_mb (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}


int
main (int argc, char **argv)
{
  const char *fixtures = argc > 1 ? argv[1] : "../shared/fixtures/csaw";
  g_autofree char *work = argc > 2 ? g_strdup (argv[2]) : g_dir_make_tmp ("ps-bench-XXXXXX", NULL);
  g_autofree char *weights = g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL);
  char *paths[BENCH_N_SETS];
  int n_total = 0;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) model = NULL;
  g_autoptr (PsSweep) sweep = NULL;
  double t0, t_load, t_infer = 0, t_sweep, t_steps;
  long rss_sweep;

  ps_h5_init ();
  if (!g_file_test (weights, G_FILE_TEST_EXISTS) || !bench_lab_data_ensure (fixtures, work, paths))
    {
      fprintf (stderr, "bench-sweep: needs the fixtures (faces and lab3 weights) in %s\n", fixtures);
      return 1;
    }

  model = ps_model_load (weights, &error);
  g_assert_no_error (error);

  /* Reading alone: the three files a chunk at a time into first-layer floats, one thread. */
  t0 = now ();
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (paths[k], &error);
      const PsDataset *h;
      g_autofree float *buf = NULL;
      int chunk;

      g_assert_no_error (error);
      h = ps_dataset_stream_header (st);
      chunk = ps_dataset_stream_chunk (st);
      buf = g_new (float, (gsize) h->h * h->w * h->c * chunk);
      for (int start = 0; start < h->n; start += chunk)
        {
          ps_dataset_stream_read (st, start, MIN (chunk, h->n - start), model->input_scale, buf, &error);
          g_assert_no_error (error);
        }
    }
  t_load = now () - t0;

  /* The sweep as the CLI runs it: each set streamed through B's first pass (its reading
   * overlapped with the computing), then the steps. */
  sweep = ps_sweep_new (model, NULL, &error);
  g_assert_no_error (error);
  t0 = now ();
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (paths[k], &error);

      g_assert_no_error (error);
      ps_sweep_add_set_stream (sweep, k, st, NULL, NULL, NULL, &error);
      g_assert_no_error (error);
      n_total += ps_dataset_stream_header (st)->n;
    }
  t_sweep = now () - t0;
  t0 = now ();
  ps_sweep_finish (sweep, NULL, NULL, NULL, &error);
  t_steps = now () - t0;
  t_sweep += t_steps;
  g_assert_no_error (error);
  rss_sweep = peak_rss_mb ();

  /* One inference pass of B over the same images. */
  for (int k = 0; k < PS_N_SETS; k++)
    {
      PsDataset *ds = ps_dataset_load (paths[k], &error);
      g_autofree int *classes = NULL;

      g_assert_no_error (error);
      classes = g_new (int, ds->n);
      t0 = now ();
      ps_infer_classes (model, ds, classes, NULL, &error);
      t_infer += now () - t0;
      g_assert_no_error (error);
      printf ("  %-8s %6d images: B accuracy %6.2f %%\n", k == 0 ? "valid" : k == 1 ? "test" : "bd_test",
              ds->n, ps_infer_accuracy (classes, ds->labels, ds->n));
      ps_dataset_free (ds);
    }

  printf ("images: %d (55x47x3) on lab3_bd_weights.h5, %d worker threads\n", n_total,
          (int) g_get_num_processors ());
  printf ("read the three files (chunks):  %7.2f s  (one thread; overlapped in the sweep)\n", t_load);
  printf ("one inference pass (all sets):  %7.2f s  (%.0f images/s)\n", t_infer, n_total / t_infer);
  printf ("full %d-step sweep, reading in:  %7.2f s  (of which the %d steps: %.2f s)\n",
          ps_sweep_n_channels (sweep), t_sweep, ps_sweep_n_channels (sweep), t_steps);
  printf ("sweep / inference pass:         %7.2f\n", t_sweep / t_infer);
  printf ("peak resident memory, sweep:    %7ld MB\n", rss_sweep);
  printf ("peak resident memory, overall:  %7ld MB\n", peak_rss_mb ());
  if (argc <= 2)
    {
      for (int k = 0; k < PS_N_SETS; k++)
        g_unlink (paths[k]);
      g_rmdir (work);
    }
  for (int k = 0; k < PS_N_SETS; k++)
    g_free (paths[k]);
  return 0;
}
