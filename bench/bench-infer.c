/* bench-infer: how close inference runs to the machine's limit, in one run. It measures
 * OpenBLAS's sgemm on a large square product first (on all cores), then, for the lab3
 * BadNet on lab-sized data and for the demo BadNet on the demo data: one inference pass
 * (seconds, images/s, GFLOP/s, ratio to sgemm) and the whole CLI sweep as a process
 * (reading the files included; its ratio to the ideal pass at the sgemm rate; its peak
 * resident memory). Every time is the best of 3. The machine may be shared: CPU-time
 * figures (per core) are printed beside the wall times, which other programs inflate.
 * Usage: bench-infer [FIXTURES_DIR [WORK_DIR]] */
#define G_LOG_DOMAIN "bench-infer"
#define _DEFAULT_SOURCE /* wait4 */

#include "config.h"

#include <cblas.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-lab-data.h"
#include "ps-demo.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-parallel.h"

#define REPEATS 3

static double
now (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* CPU seconds of this process (all threads): less sensitive than wall time to other
 * programs sharing the cores. */
static double
cpu_seconds (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static char *
cpu_model (void)
{
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents ("/proc/cpuinfo", &text, NULL, NULL))
    return g_strdup ("unknown");
  lines = g_strsplit (text, "\n", -1);
  for (int i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "model name"))
      {
        const char *colon = strchr (lines[i], ':');
        return g_strstrip (g_strdup (colon ? colon + 1 : lines[i]));
      }
  return g_strdup ("unknown");
}

static double
thread_cpu_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* GFLOP/s of a square sgemm of size n on @threads threads, best of REPEATS after a
 * warm-up; with one thread, per second of its CPU time (other programs sharing the
 * cores then count little). */
static double
sgemm_rate (int n, int threads)
{
  gsize len = (gsize) n * n;
  g_autofree float *a = g_new (float, len), *b = g_new (float, len), *c = g_new (float, len);
  double best = G_MAXDOUBLE;

  for (gsize i = 0; i < len; i++)
    a[i] = (float) (i % 17) / 17.0f, b[i] = (float) (i % 13) / 13.0f;
  openblas_set_num_threads (threads);
  for (int r = 0; r <= REPEATS; r++)
    {
      double t0 = threads == 1 ? thread_cpu_seconds () : now ();
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                   0.0f, c, n);
      if (r > 0)
        best = MIN (best, (threads == 1 ? thread_cpu_seconds () : now ()) - t0);
    }
  return 2.0 * n * n * (double) n / best / 1e9;
}

/* Multiply-adds of one image through the model (convolutions and dense layers). */
static double
model_macs (const PsModel *m)
{
  double macs = 0;

  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];

      if (l->kind == PS_LAYER_CONV2D)
        macs += (double) l->out.h * l->out.w * l->out.c * l->kh * l->kw * l->in.c;
      else if (l->kind == PS_LAYER_DENSE)
        macs += (double) l->in.c * l->out.c;
    }
  return macs;
}

/* Runs the CLI; best wall time, the least CPU time and the peak RSS (MB) of the best run. */
static double
run_cli (char **argv, double *cpu, long *rss_mb)
{
  double best = G_MAXDOUBLE;

  *rss_mb = 0;
  *cpu = G_MAXDOUBLE;
  for (int r = 0; r < REPEATS; r++)
    {
      struct rusage ru;
      int status;
      double t0 = now ();
      pid_t pid;

      fflush (stdout);
      pid = fork ();

      if (pid == 0)
        {
          if (freopen ("/dev/null", "w", stdout) == NULL)
            _exit (127);
          execv (argv[0], argv);
          _exit (127);
        }
      if (pid < 0 || wait4 (pid, &status, 0, &ru) != pid || !WIFEXITED (status)
          || WEXITSTATUS (status) != 0)
        {
          fprintf (stderr, "bench-infer: %s failed\n", argv[0]);
          return -1;
        }
      *cpu = MIN (*cpu, ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                        + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
      if (now () - t0 < best)
        {
          best = now () - t0;
          *rss_mb = ru.ru_maxrss / 1024;
        }
    }
  return best;
}

static void
bench_model (const char *title, const char *model_path, char **paths, double sgemm,
             double sgemm_core)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) model = ps_model_load (model_path, &error);
  PsDataset *sets[BENCH_N_SETS];
  double macs, best = G_MAXDOUBLE, best_cpu = G_MAXDOUBLE, t_sweep, cpu_sweep, ideal, ideal_cpu;
  double flop, cores = g_get_num_processors (), again, again_core;
  long rss;
  int n = 0;
  char *argv[] = { (char *) PS_CLI_PATH, "sweep", "--model", (char *) model_path,
                   "--valid", paths[0], "--test", paths[1], "--poisoned", paths[2], NULL };

  g_assert_no_error (error);
  /* sgemm again, just before the pass: the better figure of the two (other programs on the
   * machine only ever slow it down); BLAS goes back to one thread for the engine */
  again = sgemm_rate (2048, (int) g_get_num_processors ());
  again_core = sgemm_rate (2048, 1);
  sgemm = MAX (sgemm, again);
  sgemm_core = MAX (sgemm_core, again_core);
  openblas_set_num_threads (1);
  macs = model_macs (model);
  for (int k = 0; k < BENCH_N_SETS; k++)
    {
      sets[k] = ps_dataset_load (paths[k], &error);
      g_assert_no_error (error);
      n += sets[k]->n;
    }
  for (int r = 0; r < REPEATS; r++)
    {
      double t0 = now (), c0 = cpu_seconds ();

      for (int k = 0; k < BENCH_N_SETS; k++)
        {
          g_autofree int *classes = g_new (int, MAX (sets[k]->n, 1));

          ps_infer_classes (model, sets[k], classes, NULL, &error);
          g_assert_no_error (error);
        }
      best = MIN (best, now () - t0);
      best_cpu = MIN (best_cpu, cpu_seconds () - c0);
    }
  for (int k = 0; k < BENCH_N_SETS; k++)
    ps_dataset_free (sets[k]);
  ideal = n * macs * 2 / (sgemm * 1e9);
  t_sweep = run_cli (argv, &cpu_sweep, &rss);
  flop = n * macs * 2;
  ideal_cpu = flop / (sgemm_core * 1e9); /* CPU seconds at one core's sgemm rate */

  printf ("\n%s: %d images, %.3f M multiply-adds per image\n", title, n, macs / 1e6);
  printf ("  sgemm used:                %6.1f GFLOP/s (all cores), %.1f GFLOP/CPU s (1 core)\n",
          sgemm, sgemm_core);
  printf ("  one inference pass, wall:  %6.2f s     %6.0f images/s      %6.1f GFLOP/s = %3.0f %% of sgemm (all cores)\n",
          best, n / best, flop / best / 1e9, 100 * flop / best / 1e9 / sgemm);
  printf ("  one inference pass, CPU:   %6.2f CPU s %6.0f images/CPU s  %6.1f GFLOP/CPU s = %3.0f %% of sgemm (1 core)\n",
          best_cpu, n / best_cpu, flop / best_cpu / 1e9, 100 * ideal_cpu / best_cpu);
  printf ("  ideal pass at sgemm rate:  %6.2f s (all cores), %.2f CPU s (1 core)\n", ideal, ideal_cpu);
  /* A virtual machine whose host is busy counts time taken from it as CPU time: one
   * core's rate then falls below its share of the all-core rate, and the CPU-time ratios
   * flatter (a pass can even seem to beat sgemm). */
  if (sgemm_core < 0.8 * sgemm / cores)
    printf ("  note: one core's sgemm by CPU time (%.1f) is below its share of the all-core rate "
            "(%.1f): the host is taking time from this machine; read the wall-time lines\n",
            sgemm_core, sgemm / cores);
  printf ("  whole CLI sweep, wall:     %6.2f s     = %.2f x the ideal pass, %.2f x our pass\n",
          t_sweep, t_sweep / ideal, t_sweep / best);
  printf ("  whole CLI sweep, CPU:      %6.2f CPU s = %.2f x the ideal pass, %.2f x our pass; "
          "on %g idle cores: %.2f s\n",
          cpu_sweep, cpu_sweep / ideal_cpu, cpu_sweep / best_cpu, cores, cpu_sweep / cores);
  printf ("  sweep peak resident:    %6ld MB\n", rss);
}

int
main (int argc, char **argv)
{
  const char *fixtures = argc > 1 ? argv[1] : "../shared/fixtures/csaw";
  g_autofree char *work = argc > 2 ? g_strdup (argv[2]) : g_dir_make_tmp ("ps-bench-XXXXXX", NULL);
  g_autofree char *weights = g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL);
  g_autofree char *cpu = cpu_model ();
  g_autofree char *demo_model = NULL, *demo_dir = NULL;
  g_autoptr (GError) error = NULL;
  char *lab[BENCH_N_SETS], *demo[BENCH_N_SETS];
  double sgemm, sgemm_core;

  ps_h5_init ();
  /* sgemm first, before the engine keeps BLAS to one thread per worker */
  sgemm_core = sgemm_rate (2048, 1);
  sgemm = sgemm_rate (2048, (int) g_get_num_processors ());
  openblas_set_num_threads (1);
  printf ("CPU: %s, %u cores; %d engine workers\n", cpu, g_get_num_processors (),
          ps_parallel_n_workers ());
  printf ("OpenBLAS sgemm 2048x2048: %.1f GFLOP/s on all cores (wall), %.1f GFLOP/CPU s on one "
          "(best of %d)\n", sgemm, sgemm_core, REPEATS);

  if (g_file_test (weights, G_FILE_TEST_EXISTS) && bench_lab_data_ensure (fixtures, work, lab))
    {
      bench_model ("lab3 BadNet, lab-sized data (float64/float32 files)", weights, lab, sgemm, sgemm_core);
      if (argc <= 2)
        {
          for (int k = 0; k < BENCH_N_SETS; k++)
            g_unlink (lab[k]);
          g_rmdir (work);
        }
      for (int k = 0; k < BENCH_N_SETS; k++)
        g_free (lab[k]);
    }
  else
    printf ("\nlab3: skipped, no fixtures in %s\n", fixtures);

  demo_model = ps_demo_model_path (&error);
  if (demo_model != NULL)
    demo_dir = ps_demo_ensure_data (NULL, &error);
  if (demo_dir == NULL)
    {
      printf ("\ndemo: skipped (%s)\n", error->message);
      return 0;
    }
  demo[0] = g_build_filename (demo_dir, "data", "cl", "valid.h5", NULL);
  demo[1] = g_build_filename (demo_dir, "data", "cl", "test.h5", NULL);
  demo[2] = g_build_filename (demo_dir, "data", "bd", "bd_test.h5", NULL);
  bench_model ("demo BadNet, demo data (8-bit files)", demo_model, demo, sgemm, sgemm_core);
  for (int k = 0; k < BENCH_N_SETS; k++)
    g_free (demo[k]);
  return 0;
}
