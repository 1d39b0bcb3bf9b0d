/* bench-app: how responsive the window stays during a lab-scale sweep.
 *
 * Builds a lab folder in a temporary directory (the real lab3 BadNet from the fixtures, and
 * 11,547 validation, 12,830 clean test and 12,830 poisoned test images made from the fixture
 * faces with random shifts and noise), opens it in the real window and measures:
 *  - the longest time the UI thread is busy between two polls of its main loop while the
 *    data loads and the sweep runs (everything it does: idles, layout, drawing);
 *  - for slider moves after the sweep: the time in the value-changed handler (stats panel,
 *    gallery, channel view, chart selection) plus the work of the frame that shows it.
 *  - the process's peak resident memory (VmHWM).
 * "bench-app --demo" measures instead the time from launch to the demo's finished curve.
 * Run under a display, e.g. xvfb-run -a -s "-screen 0 1600x1000x24" bench-app [FIXTURES|--demo] */
#define G_LOG_DOMAIN "bench-app"

#include "config.h"

#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "ps-application.h"
#include "ps-image.h"
#include "ps-window-private.h"

#define H 55
#define W 47

static GPollFunc real_poll;
static gint64 busy_since, busy_max, busy_total;
static gboolean measuring;

/* Time outside poll() is time the UI thread is busy. */
static int
timed_poll (GPollFD *fds, guint n, int timeout)
{
  gint64 t = g_get_monotonic_time ();
  int r;

  if (measuring && busy_since > 0)
    {
      busy_max = MAX (busy_max, t - busy_since);
      if (g_getenv ("BENCH_VERBOSE") && t - busy_since > 8000)
        printf ("  stall %.1f ms at %.2f s\n", (t - busy_since) / 1e3, t / 1e6);
      busy_total += t - busy_since;
    }
  r = real_poll (fds, n, timeout);
  busy_since = g_get_monotonic_time ();
  return r;
}

static int
load_faces (const char *fixtures, const char *prefix, guint8 **faces, int *labels)
{
  g_autofree char *dir = g_build_filename (fixtures, "images", NULL);
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  int n = 0;

  while (d && (name = g_dir_read_name (d)) != NULL && n < 8)
    if (g_str_has_prefix (name, prefix))
      {
        g_autofree char *path = g_build_filename (dir, name, NULL);
        const char *eq = strchr (name, '=');

        faces[n] = ps_image_load_rgb (path, H, W, NULL);
        labels[n] = eq ? atoi (eq + 1) : 0;
        n += faces[n] != NULL;
      }
  return n;
}

/* @n images: faces shifted by up to 2 pixels, with noise. */
static void
write_set (const char *path, guint8 **faces, const int *labels, int n_faces, int n, GRand *rand)
{
  gsize img = (gsize) H * W * 3;
  g_autofree guint8 *px = g_new (guint8, img * n);
  g_autofree int *lab = g_new (int, n);
  g_autoptr (PsDataset) ds = NULL;
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < n; i++)
    {
      int f = g_rand_int_range (rand, 0, n_faces);
      int dy = g_rand_int_range (rand, -2, 3), dx = g_rand_int_range (rand, -2, 3);

      for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
          for (int c = 0; c < 3; c++)
            {
              int sy = CLAMP (y + dy, 0, H - 1), sx = CLAMP (x + dx, 0, W - 1);
              int v = faces[f][(sy * W + sx) * 3 + c] + g_rand_int_range (rand, -8, 9);
              px[i * img + (y * W + x) * 3 + c] = (guint8) CLAMP (v, 0, 255);
            }
      lab[i] = labels[f];
    }
  ds = ps_dataset_new_u8 (n, H, W, 3, px, lab);
  g_mkdir_with_parents (dir, 0755);
  if (!ps_dataset_save (ds, path, &error))
    g_error ("%s", error->message);
}

static char *
make_lab (const char *fixtures)
{
  const char *keep = g_getenv ("BENCH_LAB");
  char *dir = keep ? g_strdup (keep) : g_dir_make_tmp ("ps-bench-app-XXXXXX", NULL);
  g_autofree char *models = g_build_filename (dir, "models", NULL);
  g_autofree char *link = g_build_filename (models, "bd_weights.h5", NULL);
  g_autofree char *weights = g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL);
  g_autofree char *abs = g_canonicalize_filename (weights, NULL);
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  guint8 *clean[8], *bd[8];
  int clean_labels[8], bd_labels[8];
  int nc = load_faces (fixtures, "cl_", clean, clean_labels);
  int nb = load_faces (fixtures, "sun_", bd, bd_labels);
  const struct { const char *path; int n; gboolean poisoned; } sets[] = {
    { "data/cl/valid.h5", 11547, FALSE },
    { "data/cl/test.h5", 12830, FALSE },
    { "data/bd/bd_test.h5", 12830, TRUE },
  };

  if (nc == 0 || nb == 0 || !g_file_test (abs, G_FILE_TEST_EXISTS))
    g_error ("fixtures not found under %s", fixtures);
  g_mkdir_with_parents (models, 0755);
  {
    g_autoptr (GFile) file = g_file_new_for_path (link);
    if (!g_file_make_symbolic_link (file, abs, NULL, NULL))
      g_error ("cannot link %s", link);
  }
  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    {
      g_autofree char *path = g_build_filename (dir, sets[i].path, NULL);
      write_set (path, sets[i].poisoned ? bd : clean, sets[i].poisoned ? bd_labels : clean_labels,
                 sets[i].poisoned ? nb : nc, sets[i].n, rand);
    }
  for (int i = 0; i < nc; i++)
    g_free (clean[i]);
  for (int i = 0; i < nb; i++)
    g_free (bd[i]);
  return dir;
}

/* The process's peak resident memory so far (VmHWM), in MB. */
static double
peak_rss_mb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL)
      || (line = strstr (status, "VmHWM:")) == NULL)
    return -1;
  return g_ascii_strtod (line + 6, NULL) / 1024;
}

static double
rss_mb (void)
{
  g_autofree char *status = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL)
      || (line = strstr (status, "VmRSS:")) == NULL)
    return -1;
  return g_ascii_strtod (line + 6, NULL) / 1024;
}

/* Highest resident memory seen in each phase the session reports (loading, running B,
 * pruning), sampled from a thread every 20 ms, so the report says where the peak is. */
typedef struct {
  PsWindow   *window;
  GMutex      mutex;
  char       *activity;  /* set by the UI thread */
  GHashTable *peaks;     /* activity -> max MB, as gdouble* */
  gboolean    stop;
} Sampler;

static gpointer
sampler_thread (gpointer data)
{
  Sampler *s = data;

  while (!g_atomic_int_get (&s->stop))
    {
      double mb = rss_mb ();
      double *peak;

      g_mutex_lock (&s->mutex);
      if (s->activity != NULL)
        {
          peak = g_hash_table_lookup (s->peaks, s->activity);
          if (peak == NULL)
            {
              peak = g_new0 (double, 1);
              g_hash_table_insert (s->peaks, g_strdup (s->activity), peak);
            }
          *peak = MAX (*peak, mb);
        }
      g_mutex_unlock (&s->mutex);
      g_usleep (20000);
    }
  return NULL;
}

static void
sampler_note (Sampler *s)
{
  const char *a = ps_session_get_activity (s->window->session);

  g_mutex_lock (&s->mutex);
  if (g_strcmp0 (a, s->activity) != 0)
    {
      g_free (s->activity);
      s->activity = g_strdup (a ? a : "idle");
    }
  g_mutex_unlock (&s->mutex);
}

static gint64 paint_start, paint_end;

static void
on_before_paint (GdkFrameClock *clock, gpointer data)
{
  paint_start = g_get_monotonic_time ();
}

static void
on_after_paint (GdkFrameClock *clock, gpointer data)
{
  paint_end = g_get_monotonic_time ();
}

static void
slider_moves (PsWindow *w)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (GTK_WIDGET (w));
  double upper = gtk_adjustment_get_upper (w->drop_adjustment);
  gint64 worst_handler = 0, worst_total = 0, sum_total = 0;
  int moves = 40;

  g_signal_connect (clock, "before-paint", G_CALLBACK (on_before_paint), NULL);
  g_signal_connect (clock, "after-paint", G_CALLBACK (on_after_paint), NULL);
  for (int i = 0; i < moves; i++)
    {
      gint64 t0, t1, deadline;

      paint_end = 0;
      t0 = g_get_monotonic_time ();
      gtk_adjustment_set_value (w->drop_adjustment, upper * ((i * 7) % moves) / moves);
      t1 = g_get_monotonic_time ();
      deadline = t1 + G_USEC_PER_SEC;
      while (paint_end == 0 && g_get_monotonic_time () < deadline)
        g_main_context_iteration (NULL, TRUE);
      worst_handler = MAX (worst_handler, t1 - t0);
      worst_total = MAX (worst_total, (t1 - t0) + (paint_end - paint_start));
      sum_total += (t1 - t0) + (paint_end - paint_start);
    }
  printf ("slider move -> updated stats, gallery, channel view and chart (%d moves):\n", moves);
  printf ("  handler worst %.2f ms; handler + frame work: mean %.2f ms, worst %.2f ms\n",
          worst_handler / 1e3, sum_total / 1e3 / moves, worst_total / 1e3);
}

/* From the start of the process to the demo's complete curve in a new window (the demo's
 * data already made, as after the first start). */
static int
demo_curve (gint64 launch)
{
  g_autoptr (PsApplication) app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  PsWindow *w;
  gint64 shown = 0, window = 0, loaded = 0;

  g_application_register (G_APPLICATION (app), NULL, NULL);
  w = ps_window_new (GTK_APPLICATION (app));
  gtk_window_present (GTK_WINDOW (w));
  window = g_get_monotonic_time ();
  ps_window_open_demo (w);
  while (ps_session_get_busy (w->session) || ps_session_get_sweep (w->session) == NULL)
    {
      int n;
      g_main_context_iteration (NULL, TRUE);
      if (loaded == 0 && ps_session_get_fraction (w->session) >= 0)
        loaded = g_get_monotonic_time ();
      if (shown == 0 && ps_session_get_rows (w->session, &n) && n > 0)
        shown = g_get_monotonic_time ();
    }
  {
    struct rusage ru;
    GskRenderer *renderer = gtk_native_get_renderer (GTK_NATIVE (w));

    getrusage (RUSAGE_SELF, &ru);
    printf ("renderer: %s; %d cores\n", renderer ? G_OBJECT_TYPE_NAME (renderer) : "none",
            (int) g_get_num_processors ());
    printf ("launch -> window presented: %.2f s; -> demo data loaded: %.2f s\n",
            (window - launch) / 1e6, (loaded - launch) / 1e6);
    printf ("launch -> first point of the demo's curve: %.1f s; -> finished curve: %.1f s "
            "(process CPU time %.1f s)\n",
            (shown - launch) / 1e6, (g_get_monotonic_time () - launch) / 1e6,
            ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  }
  printf ("peak resident memory (VmHWM): %.0f MB\n", peak_rss_mb ());
  gtk_window_destroy (GTK_WINDOW (w));
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);
  return 0;
}

int
main (int argc, char *argv[])
{
  gint64 launch = g_get_monotonic_time ();
  const char *fixtures = argc > 1 ? argv[1] : "../shared/fixtures/csaw";
  g_autofree char *lab = NULL;
  g_autoptr (PsApplication) app = NULL;
  g_autoptr (GFile) folder = NULL;
  PsWindow *w;
  gint64 t0;
  int n_rows;

  gtk_init ();
  if (g_str_equal (fixtures, "--demo"))
    return demo_curve (launch);
  /* BENCH_LAB names a folder made by an earlier run (kept, not removed). */
  if (g_getenv ("BENCH_LAB") != NULL && g_file_test (g_getenv ("BENCH_LAB"), G_FILE_TEST_IS_DIR))
    lab = g_strdup (g_getenv ("BENCH_LAB"));
  else
    {
      printf ("writing a lab-sized folder…\n");
      fflush (stdout);
      lab = make_lab (fixtures);
    }
  folder = g_file_new_for_path (lab);

  app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  g_application_register (G_APPLICATION (app), NULL, NULL);
  w = ps_window_new (GTK_APPLICATION (app));
  gtk_window_set_default_size (GTK_WINDOW (w), 1280, 860);
  gtk_window_present (GTK_WINDOW (w));
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);

  real_poll = g_main_context_get_poll_func (NULL);
  g_main_context_set_poll_func (NULL, timed_poll);
  measuring = TRUE;
  t0 = g_get_monotonic_time ();
  {
    Sampler sampler = { w };
    GThread *thread;
    GHashTableIter iter;
    gpointer key, value;

    g_mutex_init (&sampler.mutex);
    sampler.peaks = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    thread = g_thread_new ("rss", sampler_thread, &sampler);
    ps_window_open_files (w, &folder, 1);
    while (ps_session_get_busy (w->session) || ps_session_get_sweep (w->session) == NULL)
      {
        sampler_note (&sampler);
        g_main_context_iteration (NULL, TRUE);
      }
    sampler_note (&sampler);
    g_atomic_int_set (&sampler.stop, TRUE);
    g_thread_join (thread);
    g_hash_table_iter_init (&iter, sampler.peaks);
    while (g_hash_table_iter_next (&iter, &key, &value))
      printf ("  highest resident memory while “%s”: %.0f MB\n", (char *) key, *(double *) value);
    g_hash_table_unref (sampler.peaks);
    g_free (sampler.activity);
    g_mutex_clear (&sampler.mutex);
  }
  measuring = FALSE;
  ps_session_get_rows (w->session, &n_rows);
  printf ("load + sweep of %d + %d + %d images, %d steps: %.1f s\n",
          ps_session_get_sweep_header (w->session, PS_SET_VALID)->n,
          ps_session_get_sweep_header (w->session, PS_SET_TEST)->n,
          ps_session_get_sweep_header (w->session, PS_SET_POISONED)->n, n_rows,
          (g_get_monotonic_time () - t0) / 1e6);
  printf ("longest UI-thread stall during load and sweep: %.2f ms (UI thread busy %.1f %% of the time)\n",
          busy_max / 1e3, 100.0 * busy_total / (g_get_monotonic_time () - t0));
  printf ("resident memory after the sweep: %.0f MB; peak (VmHWM) so far: %.0f MB\n", rss_mb (), peak_rss_mb ());

  slider_moves (w);
  printf ("peak resident memory (VmHWM): %.0f MB (target <= 700 MB)\n", peak_rss_mb ());
  gtk_window_destroy (GTK_WINDOW (w));
  for (int i = 0; i < 100; i++)
    g_main_context_iteration (NULL, FALSE);
  if (g_getenv ("BENCH_LAB") == NULL)
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", lab);
    if (system (cmd) != 0)
      g_warning ("could not remove %s", lab);
  }
  return 0;
}
