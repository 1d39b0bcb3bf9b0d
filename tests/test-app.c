/* test-app.c: the real application window under Xvfb — load a lab folder, sweep to the end,
 * move the slider, compare the stats panel and CSV with the CLI, save G and check it with the
 * engine, export the plot, show errors, and survive closing during a sweep. */
#define G_LOG_DOMAIN "test-app"

#include "config.h"

#include <glib/gstdio.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdlib.h>
#include <utime.h>

#include "ps-application.h"
#include "ps-infer.h"
#include "ps-repaired.h"
#include "ps-session.h"
#include "ps-stats-panel.h"
#include "ps-test-util.h"
#include "ps-test-window.h"
#include "ps-verdict.h"
#include "ps-window-private.h"

static PsApplication *app;
static char *lab;        /* a lab folder with a small BadNet and its data */
static char *lab_mismatch; /* the same BadNet with clean labels it never gives */
static char *lab_big;    /* the same model with more data, for a sweep that takes a while */

/* ---- data ---- */

static void
save_set (const PsDataset *ds, const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_autoptr (GError) error = NULL;

  g_mkdir_with_parents (parent, 0755);
  g_assert_true (ps_dataset_save (ds, path, &error));
  g_assert_no_error (error);
}

/* Clean labels are B's own classes (so B is accurate); poisoned ones the target 0. */
static PsDataset *
labelled_data (const PsModel *m, int n, guint32 seed, gboolean poisoned)
{
  PsDataset *ds = ps_test_random_data (m, n, seed);
  g_autoptr (GError) error = NULL;

  g_assert_true (ps_infer_classes (m, ds, ds->labels, NULL, &error));
  for (int i = 0; i < n; i++)
    if (poisoned)
      ds->labels[i] = 0;
    else if (i % 10 == 9)
      ds->labels[i] = (ds->labels[i] + 1) % m->n_classes; /* a few mistakes, as in life */
  return ds;
}

/* @mismatched: every clean label is one class off B's own answer, so B is right on none of
 * them (a model and data that do not belong together). */
static char *
make_lab_full (const char *name, int n, gboolean mismatched)
{
  g_autoptr (PsModel) m = ps_test_deepid_model (11, 12, -0.2);
  g_autoptr (PsDataset) valid = labelled_data (m, n, 21, FALSE);
  g_autoptr (PsDataset) test = labelled_data (m, n, 22, FALSE);
  g_autoptr (PsDataset) bd = labelled_data (m, n / 2, 23, TRUE);
  char *dir = g_build_filename (ps_test_tmpdir (), name, NULL);
  g_autofree char *models = g_build_filename (dir, "models", NULL);
  g_autofree char *model = g_build_filename (models, "bd_net.h5", NULL);
  g_autoptr (GError) error = NULL;

  if (mismatched)
    {
      g_assert_true (ps_infer_classes (m, valid, valid->labels, NULL, &error));
      g_assert_true (ps_infer_classes (m, test, test->labels, NULL, &error));
      for (int i = 0; i < n; i++)
        {
          valid->labels[i] = (valid->labels[i] + 1) % m->n_classes;
          test->labels[i] = (test->labels[i] + 1) % m->n_classes;
        }
    }
  g_mkdir_with_parents (models, 0755);
  g_assert_true (ps_model_save (m, model, &error));
  save_set (valid, dir, "data/cl/valid.h5");
  save_set (test, dir, "data/cl/test.h5");
  save_set (bd, dir, "data/bd/bd_test.h5");
  return dir;
}

static char *
make_lab (const char *name, int n)
{
  return make_lab_full (name, n, FALSE);
}

static char *
lab_file (const char *dir, const char *relative)
{
  return g_build_filename (dir, relative, NULL);
}

/* ---- driving the main loop ---- */


static gboolean
session_released (gpointer data)
{
  return G_OBJECT (data)->ref_count == 1;
}

static gboolean
file_exists (gpointer data)
{
  return g_file_test (data, G_FILE_TEST_EXISTS);
}

static gboolean
notice_shown (gpointer data)
{
  return PS_WINDOW (data)->last_notice != NULL;
}







static PsWindow *
open_lab (const char *dir)
{
  PsWindow *w = ps_window_new (GTK_APPLICATION (app));
  g_autoptr (GFile) folder = g_file_new_for_path (dir);

  gtk_window_set_default_size (GTK_WINDOW (w), 1280, 860);
  gtk_window_present (GTK_WINDOW (w));
  ps_window_open_files (w, &folder, 1);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  ps_test_drain ();
  return w;
}

/* ---- the CLI's view of the same inputs ---- */

static char **
cli_csv (const char *dir)
{
  g_autofree char *model = lab_file (dir, "models/bd_net.h5");
  g_autofree char *valid = lab_file (dir, "data/cl/valid.h5");
  g_autofree char *test = lab_file (dir, "data/cl/test.h5");
  g_autofree char *bd = lab_file (dir, "data/bd/bd_test.h5");
  g_autofree char *out = NULL;
  const char *argv[] = { "sweep", "-m", model, "-v", valid, "-t", test, "-p", bd, NULL };

  g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
  return g_strsplit (out, "\n", -1);
}

static double
label_number (PsStatsPanel *panel, const char *name)
{
  GtkLabel *label = GTK_LABEL (gtk_widget_get_template_child (GTK_WIDGET (panel), PS_TYPE_STATS_PANEL, name));

  return g_ascii_strtod (gtk_label_get_text (label), NULL);
}

static const char *
label_text (PsStatsPanel *panel, const char *name)
{
  return gtk_label_get_text (GTK_LABEL (gtk_widget_get_template_child (GTK_WIDGET (panel),
                                                                       PS_TYPE_STATS_PANEL, name)));
}

/* Compares the stats panel at @step with row @step of the CLI's CSV. */
static void
check_panel (PsWindow *w, char **csv, int step)
{
  static const struct { const char *label; int column; } cells[] = {
    { "valid_bp", 3 }, { "test_bp", 4 }, { "asr_bp", 5 }, { "test_g", 6 }, { "asr_g", 7 },
    { "test_flag", 8 }, { "asr_flag", 9 },
  };
  g_auto (GStrv) row = g_strsplit (csv[step + 1], ",", -1);
  g_auto (GStrv) row0 = g_strsplit (csv[1], ",", -1);
  g_autoptr (GString) channels = g_string_new (NULL);
  g_autofree char *point = NULL;

  g_assert_cmpint (atoi (row[0]), ==, step);
  for (guint i = 0; i < G_N_ELEMENTS (cells); i++)
    g_assert_cmpfloat_with_epsilon (label_number (w->stats_panel, cells[i].label),
                                    g_ascii_strtod (row[cells[i].column], NULL), 0.0051);
  g_assert_cmpfloat_with_epsilon (label_number (w->stats_panel, "valid_b"), g_ascii_strtod (row0[3], NULL), 0.0051);
  g_assert_cmpfloat_with_epsilon (label_number (w->stats_panel, "asr_b"), g_ascii_strtod (row0[5], NULL), 0.0051);

  /* The pruned channels are the CSV's channel column, in order. */
  for (int k = 1; k <= step; k++)
    {
      g_auto (GStrv) r = g_strsplit (csv[k + 1], ",", -1);
      g_string_append_printf (channels, k > 1 ? ", %s" : "%s", r[2]);
    }
  g_assert_cmpstr (label_text (w->stats_panel, "channels_label"), ==, step ? channels->str : "None");
  point = g_strdup_printf ("%d of %d channels pruned", step, ps_sweep_n_channels (ps_session_get_sweep (w->session)));
  g_assert_cmpstr (label_text (w->stats_panel, "point_label"), ==, point);
}

/* ---- tests ---- */

static void
test_sweep_and_slider (void)
{
  PsWindow *w = open_lab (lab);
  g_auto (GStrv) csv = cli_csv (lab);
  const PsSweep *sweep = ps_session_get_sweep (w->session);
  int n_rows, steps[] = { 0, 0, 0 };
  double xs[] = { 0.0, 2.0, 10.0 };

  g_assert_nonnull (sweep);
  ps_session_get_rows (w->session, &n_rows);
  g_assert_cmpint (n_rows, ==, ps_sweep_n_steps (sweep));
  g_assert_cmpint (g_strv_length (csv), ==, ps_sweep_n_steps (sweep) + 2); /* header, trailing "" */

  for (guint i = 0; i < G_N_ELEMENTS (xs); i++)
    {
      int expect;

      gtk_adjustment_set_value (w->drop_adjustment, MIN (xs[i], gtk_adjustment_get_upper (w->drop_adjustment)));
      expect = ps_sweep_stop_step (sweep, gtk_adjustment_get_value (w->drop_adjustment));
      if (expect < 0)
        expect = ps_sweep_n_steps (sweep) - 1;
      steps[i] = ps_window_get_step (w);
      g_assert_cmpint (steps[i], ==, expect);
      g_assert_cmpint (ps_chart_get_selected (w->chart), ==, expect);
      check_panel (w, csv, steps[i]);
    }
  /* The Recent submenu lists the folder just opened. */
  g_assert_cmpint (g_menu_model_get_n_items (G_MENU_MODEL (w->recent_menu)), >=, 1);
  g_assert_cmpint (steps[0], <=, steps[1]);
  g_assert_cmpint (steps[1], <=, steps[2]);

  /* A step picked on the chart (what a click or the arrow keys do). */
  g_signal_emit_by_name (w->chart, "step-chosen", 3);
  g_assert_cmpint (ps_window_get_step (w), ==, 3);
  g_assert_true (isnan (ps_window_get_drop (w)));
  check_panel (w, csv, 3);

  /* This poisoned set has no clean_label: its tiles say so, and never judge right or wrong. */
  for (int i = 0; i < PS_GALLERY_SAMPLES; i++)
    {
      g_assert_true (i > 0 || ps_gallery_get_tile (w->gallery, TRUE, 0) != NULL);
      PsSampleTile *tile = ps_gallery_get_tile (w->gallery, TRUE, i);
      g_autofree char *text = tile ? ps_sample_tile_describe (tile) : NULL;

      if (tile == NULL)
        break;
      g_assert_nonnull (strstr (text, "true class not in the set"));
      g_assert_null (strstr (text, "correct"));
      g_assert_null (strstr (text, "wrong"));
      g_assert_true (strstr (text, "resisted") || strstr (text, "attack succeeded") || strstr (text, "flagged by G"));
    }
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

static void
test_exports (void)
{
  PsWindow *w = open_lab (lab);
  g_autofree char *csv_path = g_build_filename (ps_test_tmpdir (), "app.csv", NULL);
  g_autofree char *cli_path = g_build_filename (ps_test_tmpdir (), "cli.csv", NULL);
  g_autofree char *model = lab_file (lab, "models/bd_net.h5");
  g_autofree char *valid = lab_file (lab, "data/cl/valid.h5");
  g_autofree char *test = lab_file (lab, "data/cl/test.h5");
  g_autofree char *bd = lab_file (lab, "data/bd/bd_test.h5");
  const char *argv[] = { "sweep", "-m", model, "-v", valid, "-t", test, "-p", bd, "-o", cli_path, NULL };
  g_autofree char *ours = NULL, *theirs = NULL;
  g_autoptr (GFile) csv_file = g_file_new_for_path (csv_path);
  g_autoptr (GError) error = NULL;
  const char *formats[] = { "png", "svg", "pdf" };

  /* Export CSV writes exactly the CLI's table. */
  g_assert_true (ps_window_export_csv (w, csv_file, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ps_test_run_cli (argv, NULL, NULL), ==, 0);
  g_assert_true (g_file_get_contents (csv_path, &ours, NULL, NULL));
  g_assert_true (g_file_get_contents (cli_path, &theirs, NULL, NULL));
  g_assert_cmpstr (ours, ==, theirs);

  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_autofree char *name = g_strdup_printf ("plot.%s", formats[i]);
      g_autofree char *path = g_build_filename (ps_test_tmpdir (), name, NULL);
      g_autoptr (GFile) file = g_file_new_for_path (path);
      g_autofree char *data = NULL;
      gsize len;

      g_assert_true (ps_window_export_plot (w, file, &error));
      g_assert_no_error (error);
      g_assert_true (g_file_get_contents (path, &data, &len, NULL));
      if (i == 0)
        {
          cairo_surface_t *png = cairo_image_surface_create_from_png (path);
          g_assert_cmpmem (data, 8, "\x89PNG\r\n\x1a\n", 8);
          g_assert_cmpint (cairo_image_surface_get_width (png), ==, 1800);
          g_assert_cmpint (cairo_image_surface_get_height (png), ==, 1120);
          cairo_surface_destroy (png);
        }
      else if (i == 1)
        {
          g_autoptr (GMarkupParseContext) ctx = NULL;
          GMarkupParser parser = { 0 };

          g_assert_nonnull (strstr (data, "<svg"));
          ctx = g_markup_parse_context_new (&parser, 0, NULL, NULL);
          g_assert_true (g_markup_parse_context_parse (ctx, data, len, &error));
          g_assert_true (g_markup_parse_context_end_parse (ctx, &error));
          g_assert_no_error (error);
        }
      else
        g_assert_true (g_str_has_prefix (data, "%PDF"));
    }

  /* The format chosen in the dialog wins over the name's extension, and its file comes out. */
  {
    g_autofree char *png = g_build_filename (ps_test_tmpdir (), "chosen.png", NULL);
    g_autoptr (GFile) typed = g_file_new_for_path (png);
    g_autoptr (GFile) svg = _ps_window_plot_file (typed, ".svg");
    g_autoptr (GFile) bare = g_file_new_for_path ("/tmp/figure");
    g_autoptr (GFile) pdf = _ps_window_plot_file (bare, ".pdf");
    g_autoptr (GFile) same = _ps_window_plot_file (typed, ".png");
    g_autofree char *svg_path = g_file_get_path (svg);
    g_autofree char *pdf_path = g_file_get_path (pdf);
    g_autofree char *same_path = g_file_get_path (same);
    g_autofree char *data = NULL;

    g_assert_true (g_str_has_suffix (svg_path, "/chosen.svg"));
    g_assert_cmpstr (pdf_path, ==, "/tmp/figure.pdf");
    g_assert_cmpstr (same_path, ==, png);
    g_assert_true (ps_window_export_plot (w, svg, &error));
    g_assert_no_error (error);
    g_assert_true (g_file_get_contents (svg_path, &data, NULL, NULL));
    g_assert_nonnull (strstr (data, "<svg"));
    g_assert_false (g_file_test (png, G_FILE_TEST_EXISTS));
  }

  /* A name the plot cannot take is an error, not a crash. */
  {
    g_autoptr (GFile) bad = g_file_new_for_path ("/tmp/plot.bmp");
    g_assert_false (ps_window_export_plot (w, bad, &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
  }
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

static void
test_save_g (void)
{
  PsWindow *w = open_lab (lab);
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "G.h5", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  const PsSweep *sweep = ps_session_get_sweep (w->session);
  g_autofree char *test_path = g_file_get_path (ps_session_get_file (w->session, PS_SLOT_TEST));
  g_autoptr (PsDataset) test = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree int *classes = NULL;
  const int *channels;
  int step, n;

  gtk_adjustment_set_value (w->drop_adjustment, MIN (5.0, gtk_adjustment_get_upper (w->drop_adjustment)));
  step = ps_window_get_step (w);
  g_assert_cmpint (step, >, 0);
  ps_window_save_g (w, file);
  g_assert_true (ps_test_wait_until (file_exists, path, 30));
  /* The file is renamed into place before the save task reports back to the window, which
   * says so in a transient notice (not in the error bar). */
  g_assert_true (ps_test_wait_until (notice_shown, w, 30));
  g_assert_cmpstr (w->last_notice, ==, "G saved as G.h5");
  g_assert_false (gtk_info_bar_get_revealed (w->error_bar));

  g = ps_repaired_load (path, &error);
  g_assert_no_error (error);
  channels = g->channels;
  n = g->n_channels;
  g_assert_cmpint (n, ==, step);
  for (int i = 0; i < n; i++)
    g_assert_cmpint (channels[i], ==, ps_sweep_order (sweep)[i]);
  /* G classifies the test images as the sweep said it would: the whole set, read again
   * (the window keeps only a sample of its images). */
  test = ps_dataset_load (test_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (test->n, ==, ps_session_get_sweep_header (w->session, PS_SET_TEST)->n);
  classes = g_new (int, test->n);
  g_assert_true (ps_repaired_classify (g, test, classes, NULL, &error));
  for (int i = 0; i < test->n; i++)
    g_assert_cmpint (classes[i], ==, ps_sweep_g_prediction (sweep, PS_SET_TEST, step, i));
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

/* A Keras model, another layer chosen: the sweep is the CLI's `--layer`, and G records it. */
static void
test_layer (void)
{
  PsWindow *w = open_lab (lab);
  g_autofree char *model = lab_file (lab, "models/bd_net.h5");
  g_autofree char *valid = lab_file (lab, "data/cl/valid.h5");
  g_autofree char *test = lab_file (lab, "data/cl/test.h5");
  g_autofree char *bd = lab_file (lab, "data/bd/bd_test.h5");
  g_autofree char *cli = g_build_filename (ps_test_tmpdir (), "cli-conv_3.csv", NULL);
  g_autofree char *ours = g_build_filename (ps_test_tmpdir (), "app-conv_3.csv", NULL);
  g_autofree char *g_path = g_build_filename (ps_test_tmpdir (), "G-conv_3.h5", NULL);
  g_autofree char *a = NULL, *b = NULL;
  const char *argv[] = { "sweep", "-m", model, "-v", valid, "-t", test, "-p", bd, "--layer", "conv_3",
                         "-o", cli, NULL };
  g_autoptr (GFile) csv_file = g_file_new_for_path (ours);
  g_autoptr (GFile) g_file = g_file_new_for_path (g_path);
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (GError) error = NULL;
  const PsSweep *sweep;
  int step;

  g_assert_cmpstr (ps_sweep_layer_name (ps_session_get_sweep (w->session)), ==, "pool_3");
  g_assert_cmpstr (w->layer_names[gtk_drop_down_get_selected (w->layer_dropdown)], ==, "pool_3");
  ps_window_set_layer (w, "conv_3");
  g_assert_true (ps_session_get_busy (w->session));
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  ps_test_drain ();
  sweep = ps_session_get_sweep (w->session);
  g_assert_cmpstr (ps_sweep_layer_name (sweep), ==, "conv_3");
  g_assert_true (ps_session_get_sweep_current (w->session));
  g_assert_true (ps_window_export_csv (w, csv_file, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ps_test_run_cli (argv, NULL, NULL), ==, 0);
  g_assert_true (g_file_get_contents (ours, &a, NULL, NULL));
  g_assert_true (g_file_get_contents (cli, &b, NULL, NULL));
  g_assert_cmpstr (a, ==, b);

  gtk_adjustment_set_value (w->drop_adjustment, MIN (5.0, gtk_adjustment_get_upper (w->drop_adjustment)));
  step = ps_window_get_step (w);
  g_assert_cmpint (step, >, 0);
  ps_window_save_g (w, g_file);
  g_assert_true (ps_test_wait_until (notice_shown, w, 30));
  g = ps_repaired_load (g_path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g->layer, ==, "conv_3");
  g_assert_cmpint (g->n_channels, ==, step);
  for (int i = 0; i < step; i++)
    g_assert_cmpint (g->channels[i], ==, ps_sweep_order (sweep)[i]);
  g_assert_cmpfloat (g->metrics.g_test_acc, ==, ps_sweep_get_step (sweep, step)->g_test_acc);
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

static gboolean
error_shown (gpointer data)
{
  PsWindow *w = data;
  return gtk_info_bar_get_revealed (w->error_bar) && !ps_session_get_busy (w->session);
}

static void
assert_contains (const char *text, const char *part)
{
  if (strstr (text, part) == NULL)
    g_error ("“%s” is not in “%s”", part, text);
}

/* Check first, then swap: a bad file leaves the loaded ones and their sweep in place, says
 * what is wrong in a sentence with the technical detail behind it, and the banner goes once
 * a good file loads. */
static void
test_errors (void)
{
  PsWindow *w = open_lab (lab);
  g_autofree char *junk = g_build_filename (ps_test_tmpdir (), "junk.h5", NULL);
  g_autofree char *small = g_build_filename (ps_test_tmpdir (), "tiny-test.h5", NULL);
  g_autofree char *cut = g_build_filename (ps_test_tmpdir (), "cut-model.h5", NULL);
  g_autofree char *model = lab_file (lab, "models/bd_net.h5");
  g_autoptr (GFile) junk_file = g_file_new_for_path (junk);
  g_autoptr (GFile) small_file = g_file_new_for_path (small);
  g_autoptr (GFile) cut_file = g_file_new_for_path (cut);
  const PsSweep *before = ps_session_get_sweep (w->session);
  GFile *model_before = ps_session_get_file (w->session, PS_SLOT_MODEL);
  GFile *test_before = ps_session_get_file (w->session, PS_SLOT_TEST);
  guint8 pixels[4 * 4 * 3] = { 0 };
  int labels[1] = { 0 };
  g_autoptr (PsDataset) tiny = ps_dataset_new_u8 (1, 4, 4, 3, pixels, labels);
  g_autofree char *bytes = NULL;
  gsize size;

  /* Not HDF5 at all. */
  g_assert_true (g_file_set_contents (junk, "not a model", -1, NULL));
  ps_window_open_files (w, &junk_file, 1);
  g_assert_true (ps_test_wait_until (error_shown, w, 20));
  g_assert_cmpstr (gtk_label_get_text (w->error_label), ==, "junk.h5 is not an HDF5 file.");
  assert_contains (gtk_label_get_text (w->error_detail_label), junk);
  g_assert_true (ps_session_get_sweep (w->session) == before);
  g_assert_true (ps_session_get_file (w->session, PS_SLOT_MODEL) == model_before);

  /* A model cut short: the sentence gives the sizes, the details HDF5's own words. */
  gtk_info_bar_set_revealed (w->error_bar, FALSE);
  g_assert_true (g_file_get_contents (model, &bytes, &size, NULL));
  g_assert_cmpuint (size, >, 200000);
  g_assert_true (g_file_set_contents (cut, bytes, 200000, NULL));
  ps_window_open_files (w, &cut_file, 1);
  g_assert_true (ps_test_wait_until (error_shown, w, 20));
  assert_contains (gtk_label_get_text (w->error_label), "cut-model.h5 is truncated: it has 200.0\u00a0kB of ");
  assert_contains (gtk_label_get_text (w->error_detail_label), "truncated");
  assert_contains (gtk_label_get_text (w->error_detail_label), cut);
  g_assert_true (ps_session_get_sweep (w->session) == before);
  g_assert_true (ps_session_get_file (w->session, PS_SLOT_MODEL) == model_before);
  gtk_expander_set_expanded (w->error_expander, TRUE);
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-error.png");

  /* Images of the wrong size: refused before they replace the test set; nothing re-runs. */
  gtk_info_bar_set_revealed (w->error_bar, FALSE);
  g_assert_true (ps_dataset_save (tiny, small, NULL));
  ps_window_open_files (w, &small_file, 1);
  g_assert_true (ps_test_wait_until (error_shown, w, 20));
  assert_contains (gtk_label_get_text (w->error_label), "tiny-test.h5 does not fit the model");
  assert_contains (gtk_label_get_text (w->error_detail_label), "images are 4x4x3");
  g_assert_true (ps_session_get_file (w->session, PS_SLOT_TEST) == test_before);
  g_assert_true (ps_session_get_sweep (w->session) == before);
  g_assert_true (ps_session_get_sweep_current (w->session));
  g_assert_cmpint (ps_window_get_step (w), >=, 0);

  /* The problem is gone once good data loads: the banner goes with it. */
  {
    g_autofree char *test = lab_file (lab, "data/cl/test.h5");
    g_autoptr (GFile) file = g_file_new_for_path (test);
    ps_session_open (w->session, &file, 1, PS_SLOT_TEST);
    g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
    g_assert_false (gtk_info_bar_get_revealed (w->error_bar));
  }
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

/* Data whose labels the model never gives: the verdict says the inputs do not fit, says
 * nothing false about X, and Save G is not the highlighted action. The slider keeps X in
 * its track. */
static void
test_mismatch (void)
{
  PsWindow *w = open_lab (lab_mismatch);
  const PsSweepStep *r0 = ps_sweep_get_step (ps_session_get_sweep (w->session), 0);

  gtk_adjustment_set_value (w->drop_adjustment, 4.0);
  g_assert_cmpfloat (r0->valid_acc, ==, 0);
  g_assert_nonnull (w->verdict);
  g_assert_true (w->verdict->warnings & PS_VERDICT_WARN_NEAR_CHANCE);
  g_assert_true (w->verdict->warnings & PS_VERDICT_WARN_UNREACHED);
  g_assert_cmpstr (gtk_label_get_text (ps_test_panel_label (w, "headline_label")), ==,
                   "Check the inputs: these numbers cannot be trusted");
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (ps_test_panel_label (w, "notes_label"))));
  assert_contains (gtk_label_get_text (ps_test_panel_label (w, "notes_label")), "guessing among 12 classes");
  g_assert_null (strstr (gtk_label_get_text (ps_test_panel_label (w, "rule_label")), "it is"));
  g_assert_false (gtk_widget_has_css_class (w->save_button, "suggested-action"));

  /* X = 4 is out of reach (B's accuracy cannot drop): it stays in the track, and Left
   * moves it by a tenth. */
  g_assert_cmpfloat (gtk_adjustment_get_value (w->drop_adjustment), ==, 4.0);
  g_assert_cmpfloat (gtk_adjustment_get_upper (w->drop_adjustment), >=, 4.0);
  g_signal_emit_by_name (w->drop_scale, "move-slider", GTK_SCROLL_STEP_LEFT);
  g_signal_emit_by_name (w->drop_scale, "move-slider", GTK_SCROLL_STEP_LEFT);
  g_assert_cmpfloat_with_epsilon (gtk_adjustment_get_value (w->drop_adjustment), 3.8, 1e-9);
  gtk_adjustment_set_value (w->drop_adjustment, 4.0);
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-mismatch.png");
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

static void
test_input_scale (void)
{
  PsWindow *w = open_lab (lab);
  double scale = ps_session_get_input_scale (w->session);

  g_autoptr (GArray) first = g_array_new (FALSE, FALSE, sizeof (PsSweepStep));
  int n;
  const PsSweepStep *rows = ps_session_get_rows (w->session, &n);

  g_array_append_vals (first, rows, n);
  g_assert_cmpfloat (scale, ==, 1.0 / 255);
  g_assert_cmpuint (gtk_drop_down_get_selected (w->scale_dropdown), ==, 1);
  gtk_drop_down_set_selected (w->scale_dropdown, 0);
  g_assert_cmpfloat (ps_session_get_input_scale (w->session), ==, 1.0);
  g_assert_true (ps_session_get_busy (w->session));
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  g_assert_cmpfloat (ps_session_get_sweep_model (w->session)->input_scale, ==, 1.0);

  /* The window let the sets' pixels go after the first sweep: going back reads the files
   * again and gives the first sweep again, step for step. */
  gtk_drop_down_set_selected (w->scale_dropdown, 1);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  {
    int n_again;
    const PsSweepStep *again = ps_session_get_rows (w->session, &n_again);

    g_assert_cmpint (n_again, ==, first->len);
    g_assert_cmpmem (again, n_again * sizeof (PsSweepStep), first->data, first->len * sizeof (PsSweepStep));
  }

  /* A file rewritten since it was opened is not read again as if it were the same. */
  {
    g_autofree char *valid = lab_file (lab, "data/cl/valid.h5");
    struct utimbuf times = { .actime = 1000000000, .modtime = 1000000000 };
    const PsSweep *kept = ps_session_get_sweep (w->session);

    g_assert_cmpint (g_utime (valid, &times), ==, 0);
    gtk_drop_down_set_selected (w->scale_dropdown, 0);
    g_assert_true (ps_test_wait_until (error_shown, w, 60));
    assert_contains (gtk_label_get_text (w->error_label), "valid.h5");
    assert_contains (gtk_label_get_text (w->error_label), "changed on disk since it was opened");
    g_assert_true (ps_session_get_sweep (w->session) == kept);
    g_assert_false (ps_session_get_sweep_current (w->session));
  }
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

static gboolean
has_rows (gpointer data)
{
  PsWindow *w = data;
  int n;
  /* Rows of a running sweep (a finished or stale one would not be busy and empty). */
  ps_session_get_rows (w->session, &n);
  return n >= 2 && ps_session_get_busy (w->session) && ps_session_get_sweep (w->session) == NULL;
}

static gboolean
has_resumable (gpointer data)
{
  return ps_session_get_resumable_steps (PS_WINDOW (data)->session) > 0;
}

static void
test_interruptions (void)
{
  PsWindow *w = ps_window_new (GTK_APPLICATION (app));
  g_autoptr (GFile) big = NULL;
  g_autoptr (GFile) small = g_file_new_for_path (lab);
  int n;

  /* Made here: only this test needs a sweep that takes a while. */
  lab_big = make_lab ("lab-big", 2400);
  big = g_file_new_for_path (lab_big);
  gtk_window_present (GTK_WINDOW (w));
  /* Another lab opened while the first one sweeps: only the last one's result shows. */
  ps_window_open_files (w, &big, 1);
  g_assert_true (ps_test_wait_until (has_rows, w, 60));
  ps_window_open_files (w, &small, 1);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  g_assert_cmpint (ps_session_get_sweep_header (w->session, PS_SET_VALID)->n, ==, 240);

  /* Run Again with nothing changed recomputes nothing. */
  {
    const PsSweep *done = ps_session_get_sweep (w->session);
    gtk_widget_activate_action (GTK_WIDGET (w), "win.run", NULL);
    g_assert_false (ps_session_get_busy (w->session));
    g_assert_true (ps_session_get_sweep (w->session) == done);
  }

  /* Cancelling a re-run keeps the last complete results, marked as such, in every view. */
  ps_window_open_files (w, &big, 1);
  g_assert_true (ps_test_wait_until (has_rows, w, 60));
  gtk_widget_activate_action (GTK_WIDGET (w), "win.cancel", NULL);
  g_assert_false (ps_session_get_busy (w->session));
  g_assert_nonnull (ps_session_get_sweep (w->session));
  g_assert_cmpint (ps_session_get_sweep_header (w->session, PS_SET_VALID)->n, ==, 240);
  g_assert_false (ps_session_get_sweep_current (w->session));
  ps_session_get_rows (w->session, &n);
  g_assert_cmpint (n, ==, ps_sweep_n_steps (ps_session_get_sweep (w->session)));
  g_assert_true (w->shown_sweep == ps_session_get_sweep (w->session));
  g_assert_cmpint (ps_window_get_step (w), >=, 0);
  g_assert_cmpint (ps_channel_view_get_n_channels (w->channel_view), ==, ps_sweep_n_channels (w->shown_sweep));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (ps_test_panel_label (w, "stale_label"))));

  /* Run Again after the cancel goes on from where the sweep stopped: the steps it had are
   * there at once, and the end is the sweep done in one go. */
  g_assert_true (ps_test_wait_until (has_resumable, w, 60));
  {
    int kept = ps_session_get_resumable_steps (w->session);
    g_autoptr (GArray) resumed = g_array_new (FALSE, FALSE, sizeof (PsSweepStep));
    const PsSweepStep *rows;

    gtk_widget_activate_action (GTK_WIDGET (w), "win.run", NULL);
    g_assert_true (ps_session_get_busy (w->session));
    ps_session_get_rows (w->session, &n);
    g_assert_cmpint (n, ==, kept);
    g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 300));
    g_assert_cmpint (ps_session_get_resumable_steps (w->session), ==, -1);
    rows = ps_session_get_rows (w->session, &n);
    g_array_append_vals (resumed, rows, n);
    g_assert_cmpint (ps_session_get_sweep_header (w->session, PS_SET_VALID)->n, ==, 2400);
    /* the same sweep from the start: the other input scale and back (whole sweeps of the
     * big lab: slow under the sanitizers on a shared machine) */
    gtk_drop_down_set_selected (w->scale_dropdown, 0);
    g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 300));
    gtk_drop_down_set_selected (w->scale_dropdown, 1);
    g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 300));
    rows = ps_session_get_rows (w->session, &n);
    g_assert_cmpint (n, ==, resumed->len);
    g_assert_cmpmem (rows, n * sizeof (PsSweepStep), resumed->data, resumed->len * sizeof (PsSweepStep));
  }

  /* Closing the window mid-sweep: the thread finishes on its own, nothing is left behind. */
  gtk_drop_down_set_selected (w->scale_dropdown, 0);
  g_assert_true (ps_test_wait_until (has_rows, w, 60));
  {
    g_autoptr (PsSession) session = g_object_ref (w->session);
    gtk_window_close (GTK_WINDOW (w));
    /* the sweep thread returns when it sees the cancel: wait for that, however long the
     * machine takes (the limit only keeps a broken build from hanging) */
    g_assert_true (ps_test_wait_until (session_released, session, 300));
    g_assert_cmpint (G_OBJECT (session)->ref_count, ==, 1);
  }
  ps_test_drain ();
}

static gboolean
flap_revealed (gpointer data)
{
  return adw_flap_get_reveal_progress (data) >= 1.0;
}

static gboolean
is_ellipsized (GtkLabel *label)
{
  return pango_layout_is_ellipsized (gtk_label_get_layout (label));
}

/* Widget allocations at 900x600, or at 1366x768 with GDK_SCALE=2 (683x384 logical, where
 * the test runs with that scale): the chart keeps its minimum height and y labels that
 * stand apart, the verdict stays in view, the numbers are beside the chart or one button
 * away, no source name is cut, and the window fits the screen. */
static void
test_layout (void)
{
  const char *scale = g_getenv ("GDK_SCALE");
  gboolean hidpi = scale != NULL && g_str_equal (scale, "2");
  PsWindow *w = ps_window_new (GTK_APPLICATION (app));
  g_autoptr (GFile) folder = g_file_new_for_path (lab);
  GListModel *monitors = gdk_display_get_monitors (gdk_display_get_default ());
  g_autoptr (GdkMonitor) monitor = g_list_model_get_item (monitors, 0);
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create (surface);
  GdkRectangle screen;
  graphene_rect_t bounds;
  double spacing, label_h, area_h;
  PsPlot plot;

  int min_w, min_h;

  gdk_monitor_get_geometry (monitor, &screen);
  gtk_window_set_default_size (GTK_WINDOW (w), hidpi ? 683 : 900, hidpi ? 384 : 600);
  gtk_window_present (GTK_WINDOW (w));
  ps_window_open_files (w, &folder, 1);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 60));
  gtk_adjustment_set_value (w->drop_adjustment, 2.0);
  ps_test_wait_for_frames (w);

  g_test_message ("window %dx%d on a %dx%d screen (scale %d)", gtk_widget_get_width (GTK_WIDGET (w)),
                  gtk_widget_get_height (GTK_WIDGET (w)), screen.width, screen.height,
                  gtk_widget_get_scale_factor (GTK_WIDGET (w)));
  /* Nothing in the window asks for more than the target size. */
  gtk_widget_measure (GTK_WIDGET (w), GTK_ORIENTATION_HORIZONTAL, -1, &min_w, NULL, NULL, NULL);
  gtk_widget_measure (GTK_WIDGET (w), GTK_ORIENTATION_VERTICAL, min_w, &min_h, NULL, NULL, NULL);
  g_test_message ("smallest window now: %dx%d", min_w, min_h);
  g_assert_cmpint (min_w, <=, hidpi ? 683 : 900);
  g_assert_cmpint (min_h, <=, hidpi ? 384 : 600);
  g_assert_cmpint (gtk_widget_get_width (GTK_WIDGET (w)), <=, screen.width);
  g_assert_cmpint (gtk_widget_get_height (GTK_WIDGET (w)), <=, screen.height);
  g_assert_cmpint (gtk_widget_get_height (GTK_WIDGET (w->chart)), >=, 220);

  ps_chart_get_plot (w->chart, &plot);
  spacing = ps_plot_y_tick_spacing (&plot, cr, gtk_widget_get_width (GTK_WIDGET (w->chart)),
                                    gtk_widget_get_height (GTK_WIDGET (w->chart)), &label_h, &area_h);
  g_assert_cmpfloat (spacing, >=, 1.5 * label_h);
  g_assert_cmpfloat (area_h, >=, PS_CHART_MIN_AREA - 1);

  if (adw_flap_get_folded (w->flap))
    {
      /* The verdict stays in view above the chart; the numbers are one button away. */
      g_assert_true (hidpi);
      g_assert_true (gtk_widget_get_mapped (GTK_WIDGET (w->verdict_bar)));
      g_assert_true (gtk_widget_compute_bounds (GTK_WIDGET (w->verdict_bar), GTK_WIDGET (w), &bounds));
      g_assert_cmpfloat (bounds.origin.x + bounds.size.width, <=, gtk_widget_get_width (GTK_WIDGET (w)));
      adw_flap_set_reveal_flap (w->flap, TRUE);
      g_assert_true (ps_test_wait_until (flap_revealed, w->flap, 10));
      ps_test_wait_for_frames (w);
    }
  g_assert_true (gtk_widget_compute_bounds (GTK_WIDGET (w->stats_panel), GTK_WIDGET (w), &bounds));
  g_assert_cmpfloat (bounds.size.width, >=, 300);
  g_assert_cmpfloat (bounds.origin.x + bounds.size.width, <=, gtk_widget_get_width (GTK_WIDGET (w)) + 0.5);

  g_assert_false (is_ellipsized (w->model_label));
  g_assert_false (is_ellipsized (w->valid_label));
  g_assert_false (is_ellipsized (w->test_label));
  g_assert_false (is_ellipsized (w->poisoned_label));
  ps_test_save_screenshot (w, hidpi ? "app-scale2.png" : "app-900x600.png");
  cairo_destroy (cr);
  cairo_surface_destroy (surface);
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

/* Saves a picture of the window after a finished sweep, for people to look at. */
static void
test_screenshot (void)
{
  PsWindow *w = open_lab (lab);

  gtk_adjustment_set_value (w->drop_adjustment, MIN (4.0, gtk_adjustment_get_upper (w->drop_adjustment)));
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-screenshot.png");
  gtk_window_destroy (GTK_WINDOW (w));
  ps_test_drain ();
}

int
main (int argc, char *argv[])
{
  g_autoptr (GError) error = NULL;
  int status;

  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gtk_test_init (&argc, &argv, NULL);
  lab = make_lab ("lab", 240);
  lab_mismatch = make_lab_full ("lab-mismatch", 240, TRUE);

  app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);

  g_test_add_func ("/app/window/sweep-and-slider", test_sweep_and_slider);
  g_test_add_func ("/app/window/exports", test_exports);
  g_test_add_func ("/app/window/save-g", test_save_g);
  g_test_add_func ("/app/window/layer", test_layer);
  g_test_add_func ("/app/window/errors", test_errors);
  g_test_add_func ("/app/window/mismatch", test_mismatch);
  g_test_add_func ("/app/window/input-scale", test_input_scale);
  g_test_add_func ("/app/window/interruptions", test_interruptions);
  g_test_add_func ("/app/window/layout", test_layout);
  g_test_add_func ("/app/window/screenshot", test_screenshot);
  status = g_test_run ();
  g_clear_object (&app);
  g_free (lab);
  g_free (lab_big);
  g_free (lab_mismatch);
  return status;
}
