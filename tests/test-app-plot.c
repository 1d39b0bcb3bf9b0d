/* test-app-plot.c: the chart drawing without a window — pixels on an image surface, the
 * pointer-to-step mapping, HiDPI and the three export formats */
#define G_LOG_DOMAIN "test-app-plot"

#include "config.h"

#include <glib/gstdio.h>
#include <math.h>

#include "ps-plot.h"

#define N_STEPS 61

static PsSweepStep rows[N_STEPS];

static void
make_rows (gboolean with_sets)
{
  for (int k = 0; k < N_STEPS; k++)
    {
      double f = (double) k / (N_STEPS - 1);
      PsSweepStep *r = &rows[k];

      r->pruned = k;
      r->fraction = f;
      r->channel = k ? k - 1 : -1;
      r->valid_acc = f < 0.7 ? 98 : 98 - (f - 0.7) * 300;
      r->test_acc = with_sets ? r->valid_acc - 1 : NAN;
      r->asr = with_sets ? (f < 0.85 ? 100 : 100 - (f - 0.85) * 600) : NAN;
      r->g_test_acc = with_sets ? r->test_acc - 2 : NAN;
      r->g_asr = with_sets ? r->asr * 0.5 : NAN;
      r->g_clean_flagged = with_sets ? 3 : NAN;
      r->g_poisoned_flagged = with_sets ? 100 - r->g_asr : NAN;
    }
}

static cairo_surface_t *
draw (const PsPlot *plot, int width, int height, double scale)
{
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, width * scale, height * scale);
  cairo_t *cr;

  cairo_surface_set_device_scale (s, scale, scale);
  cr = cairo_create (s);
  ps_plot_draw (plot, cr, width, height);
  g_assert_cmpint (cairo_status (cr), ==, CAIRO_STATUS_SUCCESS);
  cairo_destroy (cr);
  cairo_surface_flush (s);
  return s;
}

/* Pixels within a small distance of a series' colour. */
static int
count_color (cairo_surface_t *s, PsSeries series)
{
  double rgb[3];
  guint8 *data = cairo_image_surface_get_data (s);
  int stride = cairo_image_surface_get_stride (s), n = 0;

  ps_plot_series_color (series, rgb);
  for (int y = 0; y < cairo_image_surface_get_height (s); y++)
    for (int x = 0; x < cairo_image_surface_get_width (s); x++)
      {
        guint32 p = *(guint32 *) (gpointer) (data + y * stride + x * 4);
        int r = (p >> 16) & 0xff, g = (p >> 8) & 0xff, b = p & 0xff;

        if (abs (r - (int) (rgb[0] * 255)) < 12 && abs (g - (int) (rgb[1] * 255)) < 12
            && abs (b - (int) (rgb[2] * 255)) < 12)
          n++;
      }
  return n;
}

static void
init_plot (PsPlot *plot)
{
  ps_plot_init (plot);
  plot->rows = rows;
  plot->n_rows = N_STEPS;
  plot->bg[3] = 1.0;
}

static void
test_pixels (void)
{
  PsPlot plot;
  cairo_surface_t *s;
  int blue, orange, pink;

  make_rows (TRUE);
  init_plot (&plot);
  s = draw (&plot, 800, 500, 1);
  /* Corners are the white background; every series leaves its colour. */
  g_assert_cmphex (*(guint32 *) (gpointer) cairo_image_surface_get_data (s), ==, 0xffffffff);
  blue = count_color (s, PS_SERIES_VALID_ACC);
  orange = count_color (s, PS_SERIES_ASR);
  pink = count_color (s, PS_SERIES_G_DETECTION);
  g_assert_cmpint (blue, >, 300);
  g_assert_cmpint (orange, >, 300);
  g_assert_cmpint (pink, >, 100);
  cairo_surface_destroy (s);

  /* Twice the device scale: the same picture with four times the pixels. */
  s = draw (&plot, 800, 500, 2);
  g_assert_cmpint (cairo_image_surface_get_width (s), ==, 1600);
  g_assert_cmpint (count_color (s, PS_SERIES_VALID_ACC), >, 2 * blue);
  cairo_surface_destroy (s);
}

static void
test_missing_sets (void)
{
  PsPlot plot;
  cairo_surface_t *s;

  /* Without test and poisoned data only validation accuracy is drawn. */
  make_rows (FALSE);
  init_plot (&plot);
  s = draw (&plot, 600, 400, 1);
  g_assert_cmpint (count_color (s, PS_SERIES_VALID_ACC), >, 200);
  g_assert_cmpint (count_color (s, PS_SERIES_ASR), ==, 0);
  g_assert_cmpint (count_color (s, PS_SERIES_G_DETECTION), ==, 0);
  cairo_surface_destroy (s);

  /* A sweep that has not produced a row yet, and a tiny size, still draw. */
  plot.n_rows = 0;
  cairo_surface_destroy (draw (&plot, 600, 400, 1));
  plot.n_rows = 1;
  cairo_surface_destroy (draw (&plot, 10, 10, 1));
}

static void
test_selection_and_reference (void)
{
  PsPlot plot;
  cairo_surface_t *plain, *marked;
  guint8 *a, *b;
  gsize differ = 0, size;

  make_rows (TRUE);
  init_plot (&plot);
  plain = draw (&plot, 800, 500, 1);
  plot.selected = 30;
  plot.drop = 4;
  marked = draw (&plot, 800, 500, 1);
  a = cairo_image_surface_get_data (plain);
  b = cairo_image_surface_get_data (marked);
  size = (gsize) cairo_image_surface_get_stride (plain) * 500;
  for (gsize i = 0; i < size; i++)
    differ += a[i] != b[i];
  /* The marker, cursor, label and reference line change a visible part of the chart. */
  g_assert_cmpuint (differ, >, 2000);
  cairo_surface_destroy (plain);
  cairo_surface_destroy (marked);
}

static void
test_step_at (void)
{
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create (s);
  PsPlot plot;
  int last = -1, first = -1;

  make_rows (TRUE);
  init_plot (&plot);
  /* Across the plot the step grows from 0 to the last; outside there is none. */
  for (int x = 0; x < 800; x += 4)
    {
      int step = ps_plot_step_at (&plot, cr, 800, 500, x, 300);
      if (step < 0)
        continue;
      if (first < 0)
        first = step;
      g_assert_cmpint (step, >=, last);
      last = step;
    }
  g_assert_cmpint (first, ==, 0);
  g_assert_cmpint (last, ==, N_STEPS - 1);
  g_assert_cmpint (ps_plot_step_at (&plot, cr, 800, 500, 400, 2), ==, -1);
  g_assert_cmpint (ps_plot_step_at (&plot, cr, 800, 500, 400, 499), ==, -1);
  cairo_destroy (cr);
  cairo_surface_destroy (s);
}

static void
test_export (void)
{
  g_autofree char *dir = g_dir_make_tmp ("ps-plot-XXXXXX", NULL);
  const char *names[] = { "p.png", "p.svg", "p.pdf" };
  const char *magic[] = { "\x89PNG", "<?xml", "%PDF" };
  PsPlot plot;

  make_rows (TRUE);
  init_plot (&plot);
  plot.title = "Pruning defense";
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *path = g_build_filename (dir, names[i], NULL);
      g_autofree char *data = NULL;
      g_autoptr (GError) error = NULL;
      PsPlotFormat format;

      g_assert_true (ps_plot_format_for_path (path, &format));
      g_assert_true (ps_plot_export (&plot, path, format, 900, 560, &error));
      g_assert_no_error (error);
      g_assert_true (g_file_get_contents (path, &data, NULL, NULL));
      g_assert_true (g_str_has_prefix (data, magic[i]));
      g_unlink (path);
    }
  {
    g_autoptr (GError) error = NULL;
    PsPlotFormat format;

    g_assert_false (ps_plot_format_for_path ("plot.bmp", &format));
    g_assert_false (ps_plot_export (&plot, "/nonexistent-dir/p.png", PS_PLOT_PNG, 900, 560, &error));
    g_assert_nonnull (error);
  }
  g_rmdir (dir);
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/plot/pixels", test_pixels);
  g_test_add_func ("/app/plot/missing-sets", test_missing_sets);
  g_test_add_func ("/app/plot/selection-and-reference", test_selection_and_reference);
  g_test_add_func ("/app/plot/step-at", test_step_at);
  g_test_add_func ("/app/plot/export", test_export);
  return g_test_run ();
}
