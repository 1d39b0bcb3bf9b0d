/* bench-sweep: how long one inference pass and the whole pruning sweep take at the lab's
 * sizes, on the real lab3 BadNet, and how much memory they need.
 *
 * It writes lab-sized data files first (11,547 validation images as float64, 12,830 clean
 * and 12,830 poisoned test images as float32, channels-first, like the lab's), made from
 * the fixture faces with random shifts, brightness and noise, then reads them back the way
 * the CLI does. Usage: bench-sweep [FIXTURES_DIR [WORK_DIR]] */
#define G_LOG_DOMAIN "bench-sweep"

#include <glib/gstdio.h>
#include <hdf5.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "ps-h5.h"
#include "ps-image.h"
#include "ps-infer.h"
#include "ps-sweep.h"

#define H 55
#define W 47

typedef struct {
  guint8 *pixels;
  int     label;
} Face;

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

static int
load_faces (const char *fixtures, const char *prefix, Face *faces)
{
  g_autofree char *dir = g_build_filename (fixtures, "images", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  int n = 0;

  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_prefix (name, prefix))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        const char *eq = strchr (name, '=');
        faces[n].pixels = ps_image_load_rgb (path, H, W, NULL);
        faces[n].label = eq ? atoi (eq + 1) : 0;
        n += faces[n].pixels != NULL;
      }
  return n;
}

/* One synthetic image from a face, channels-first, as doubles. */
static void
jitter (GRand *r, const Face *f, double *out)
{
  int dy = g_rand_int_range (r, -3, 4), dx = g_rand_int_range (r, -3, 4);
  double gain = g_rand_double_range (r, 0.8, 1.2);

  for (int c = 0; c < 3; c++)
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        {
          int sy = CLAMP (y + dy, 0, H - 1), sx = CLAMP (x + dx, 0, W - 1);
          double v = f->pixels[(sy * W + sx) * 3 + c] * gain + g_rand_int_range (r, -8, 9);
          out[(c * H + y) * W + x] = CLAMP ((int) v, 0, 255);
        }
}

static void
write_set (const char *path, int n, hid_t ftype, const Face *faces, int n_faces,
           int label_override, guint32 seed)
{
  g_autoptr (GRand) r = g_rand_new_with_seed (seed);
  hsize_t dims[4] = { n, 3, H, W }, one[4] = { 1, 3, H, W }, ln = n;
  g_autofree double *img = g_new (double, 3 * H * W);
  g_autofree double *labels = g_new (double, n);
  hid_t file = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple (4, dims, NULL), mspace = H5Screate_simple (4, one, NULL);
  hid_t dset = H5Dcreate2 (file, "data", ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t lspace, lset;

  for (int i = 0; i < n; i++)
    {
      const Face *f = &faces[g_rand_int_range (r, 0, n_faces)];
      hsize_t off[4] = { i, 0, 0, 0 };

      jitter (r, f, img);
      labels[i] = label_override >= 0 ? label_override : f->label;
      H5Sselect_hyperslab (space, H5S_SELECT_SET, off, NULL, one, NULL);
      H5Dwrite (dset, H5T_NATIVE_DOUBLE, mspace, space, H5P_DEFAULT, img);
    }
  lspace = H5Screate_simple (1, &ln, NULL);
  lset = H5Dcreate2 (file, "label", H5T_IEEE_F64LE, lspace, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite (lset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
  H5Dclose (lset);
  H5Sclose (lspace);
  H5Dclose (dset);
  H5Sclose (mspace);
  H5Sclose (space);
  H5Fclose (file);
}

int
main (int argc, char **argv)
{
  const char *fixtures = argc > 1 ? argv[1] : "../shared/fixtures/csaw";
  g_autofree char *work = argc > 2 ? g_strdup (argv[2]) : g_dir_make_tmp ("ps-bench-XXXXXX", NULL);
  g_autofree char *weights = g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL);
  g_autofree char *pv = g_build_filename (work, "valid.h5", NULL);
  g_autofree char *pt = g_build_filename (work, "test.h5", NULL);
  g_autofree char *pp = g_build_filename (work, "bd_test.h5", NULL);
  const char *paths[PS_N_SETS] = { pv, pt, pp };
  Face clean[16], sun[16];
  int n_clean, n_sun, n_total = 0;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) model = NULL;
  g_autoptr (PsSweep) sweep = NULL;
  double t0, t_load, t_infer = 0, t_sweep, t_steps;
  long rss_sweep;

  ps_h5_init ();
  n_clean = load_faces (fixtures, "cl_", clean);
  n_sun = load_faces (fixtures, "sun_", sun);
  if (n_clean == 0 || n_sun == 0 || !g_file_test (weights, G_FILE_TEST_EXISTS))
    {
      fprintf (stderr, "bench-sweep: needs the fixtures (faces and lab3 weights) in %s\n", fixtures);
      return 1;
    }
  if (!g_file_test (pp, G_FILE_TEST_EXISTS))
    {
      printf ("writing lab-sized data to %s …\n", work);
      write_set (pv, 11547, H5T_IEEE_F64LE, clean, n_clean, -1, 1);
      write_set (pt, 12830, H5T_IEEE_F32LE, clean, n_clean, -1, 2);
      write_set (pp, 12830, H5T_IEEE_F32LE, sun, n_sun, 0, 3);
    }

  model = ps_model_load (weights, &error);
  g_assert_no_error (error);

  /* The sweep as the CLI runs it: each set is read, swept once through B, and freed. */
  t_sweep = t_load = 0;
  sweep = ps_sweep_new (model, NULL, &error);
  g_assert_no_error (error);
  for (int k = 0; k < PS_N_SETS; k++)
    {
      PsDataset *ds;

      t0 = now ();
      ds = ps_dataset_load (paths[k], &error);
      g_assert_no_error (error);
      t_load += now () - t0;
      t0 = now ();
      ps_sweep_add_set (sweep, k, ds, NULL, NULL, NULL, &error);
      t_sweep += now () - t0;
      g_assert_no_error (error);
      n_total += ds->n;
      ps_dataset_free (ds);
    }
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
  printf ("read the three files:           %7.2f s\n", t_load);
  printf ("one inference pass (all sets):  %7.2f s  (%.0f images/s)\n", t_infer, n_total / t_infer);
  printf ("full %d-step sweep (all sets):  %7.2f s  (of which the %d steps: %.2f s)\n",
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
  return 0;
}
