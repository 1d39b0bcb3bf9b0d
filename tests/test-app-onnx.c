/* test-app-onnx.c: the application window with an ONNX BadNet (Xvfb) — the PyTorch fixture
 * opened from the command line, by drag and drop and as a lab folder; its sweep against the
 * CLI's and the fixture's reference; the layer chooser (ONNX and Keras), a sweep of another
 * layer against `prunescope-cli sweep --layer`, cancelling it, and G saved as ONNX read back
 * by the engine. */
#define G_LOG_DOMAIN "test-app-onnx"

#include "config.h"

#include <gtk/gtk.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ps-application.h"
#include "ps-demo.h"
#include "ps-repaired.h"
#include "ps-test-util.h"
#include "ps-test-window.h"

/* A layer of the fixture other than its default: the residual sum of the last block. */
#define OTHER_LAYER "/m/l3/Add_output_0"
#define DEFAULT_LAYER "/m/Relu_output_0"

static PsApplication *app;
static const char *fixture;

static char *
fixture_file (const char *relative)
{
  return g_build_filename (fixture, relative, NULL);
}

static gboolean
skip_without_fixture (void)
{
  if (fixture != NULL)
    return FALSE;
  g_test_skip ("the onnx-preact fixture is missing (PS_ONNX_FIXTURE)");
  return TRUE;
}

static void
assert_contains (const char *text, const char *part)
{
  if (text == NULL || strstr (text, part) == NULL)
    g_error ("“%s” is not in “%s”", part, text);
}

/* ---- conditions ---- */

static gboolean
not_busy (gpointer data)
{
  return !ps_session_get_busy (PS_WINDOW (data)->session);
}

static gboolean
resumable (gpointer data)
{
  return ps_session_get_resumable_steps (PS_WINDOW (data)->session) >= 0;
}

/* The first pass is done and a few channels are pruned. */
static gboolean
pruning (gpointer data)
{
  int n;

  ps_session_get_rows (PS_WINDOW (data)->session, &n);
  return n >= 3;
}

static gboolean
notice_shown (gpointer data)
{
  return PS_WINDOW (data)->last_notice != NULL;
}

static gboolean
error_shown (gpointer data)
{
  return gtk_info_bar_get_revealed (PS_WINDOW (data)->error_bar);
}

typedef struct {
  PsWindow *w;
  PsSlot    slot;
  GFile    *file;
} SlotWait;

static gboolean
slot_holds (gpointer data)
{
  SlotWait *s = data;
  GFile *now = ps_session_get_file (s->w->session, s->slot);
  return now != NULL && g_file_equal (now, s->file);
}

static void
wait_for_model (PsWindow *w, const char *path)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  SlotWait s = { w, PS_SLOT_MODEL, file };

  g_assert_true (ps_test_wait_until (slot_holds, &s, 60));
  g_assert_true (ps_test_wait_until (not_busy, w, 60));
  ps_test_drain ();
}

static gboolean
session_released (gpointer data)
{
  return G_OBJECT (data)->ref_count == 1;
}

/* Closes @w and waits for the threads it started to return (a running sweep holds the
 * session until it sees the cancel). */
static void
close_window (PsWindow *w)
{
  g_autoptr (PsSession) session = g_object_ref (w->session);

  gtk_window_destroy (GTK_WINDOW (w));
  g_assert_true (ps_test_wait_until (session_released, session, 300));
  ps_test_drain ();
}

/* ---- what the CLI says ---- */

/* `prunescope-cli info MODEL`: the candidate feature maps as "NAME CxHxW", the default's name. */
static GStrv
cli_candidates (const char *model, char **dflt)
{
  const char *argv[] = { "info", model, NULL };
  g_autofree char *out = NULL;
  g_auto (GStrv) lines = NULL;
  g_autoptr (GStrvBuilder) builder = g_strv_builder_new ();
  gboolean in_list = FALSE;

  g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
  lines = g_strsplit (out, "\n", -1);
  *dflt = NULL;
  for (int i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) words = NULL;

      if (strstr (lines[i], "feature maps to prune") != NULL)
        {
          in_list = TRUE;
          continue;
        }
      if (!in_list || !g_str_has_prefix (lines[i], "    "))
        continue;
      words = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      g_assert_nonnull (words[0]);
      g_strv_builder_add (builder, words[0]);
      if (strstr (lines[i], "(default)") != NULL)
        *dflt = g_strdup (words[0]);
    }
  return g_strv_builder_end (builder);
}

/* The chooser lists the CLI's candidates with their shapes, the default marked and
 * @selected selected. */
static void
check_chooser (PsWindow *w, const char *model, const char *selected)
{
  g_autofree char *dflt = NULL;
  g_auto (GStrv) names = cli_candidates (model, &dflt);
  GListModel *items = G_LIST_MODEL (w->layer_list);
  const PsModel *m = ps_session_get_model (w->session);
  guint n = g_strv_length (names);

  g_assert_cmpuint (n, >, 0);
  g_assert_nonnull (dflt);
  g_assert_true (gtk_widget_get_sensitive (GTK_WIDGET (w->layer_dropdown)));
  g_assert_cmpuint (g_list_model_get_n_items (items), ==, n);
  g_assert_cmpuint (g_strv_length (w->layer_names), ==, n);
  for (guint k = 0; k < n; k++)
    {
      const char *item = gtk_string_list_get_string (w->layer_list, k);
      const PsLayer *l = m->layers[ps_model_find_layer (m, names[k])];
      g_autofree char *shape = g_strdup_printf ("%d×%d×%d", l->out.c, l->out.h, l->out.w);

      g_assert_cmpstr (w->layer_names[k], ==, names[k]);
      g_assert_true (g_str_has_prefix (item, names[k]));
      assert_contains (item, shape);
      g_assert_true ((strstr (item, "(default)") != NULL) == g_str_equal (names[k], dflt));
      if (g_str_equal (names[k], selected))
        g_assert_cmpuint (gtk_drop_down_get_selected (w->layer_dropdown), ==, k);
    }
  g_assert_cmpstr (w->layer_names[gtk_drop_down_get_selected (w->layer_dropdown)], ==, selected);
  g_assert_cmpstr (ps_session_get_layer (w->session), ==, selected);
  assert_contains (gtk_window_get_title (GTK_WINDOW (w)), selected);
}

static char *
cli_sweep_csv (const char *layer)
{
  g_autofree char *model = fixture_file ("bd_net.onnx");
  g_autofree char *valid = fixture_file ("data/cl/valid.h5");
  g_autofree char *test = fixture_file ("data/cl/test.h5");
  g_autofree char *bd = fixture_file ("data/bd/bd_test.h5");
  char *out = NULL;
  const char *argv[] = { "sweep", "-m", model, "-v", valid, "-t", test, "-p", bd,
                         layer ? "--layer" : NULL, layer, NULL };

  g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
  return out;
}

/* The window's sweep, exported, is the CLI's table byte for byte. */
static void
check_against_cli (PsWindow *w, const char *layer)
{
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "app-onnx.csv", NULL);
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autofree char *ours = NULL, *theirs = cli_sweep_csv (layer);
  g_autoptr (GError) error = NULL;

  g_assert_true (ps_window_export_csv (w, file, &error));
  g_assert_no_error (error);
  g_assert_true (g_file_get_contents (path, &ours, NULL, NULL));
  g_assert_cmpstr (ours, ==, theirs);
}

/* The fixture's reference sweep (PyTorch): channel order, and every metric within 0.05. */
static void
check_against_reference (const PsSweep *sweep)
{
  g_autofree char *path = fixture_file ("ref_sweep.csv");
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  int rows = 0;

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (int i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++, rows++)
    {
      g_auto (GStrv) cells = g_strsplit (lines[i], ",", -1);
      const PsSweepStep *r = ps_sweep_get_step (sweep, atoi (cells[0]));
      const double ours[] = { r->valid_acc, r->test_acc, r->asr, r->g_test_acc, r->g_asr,
                              r->g_clean_flagged, r->g_poisoned_flagged };

      g_assert_cmpint (r->pruned, ==, atoi (cells[0]));
      g_assert_cmpint (r->channel, ==, atoi (cells[2]));
      for (guint k = 0; k < G_N_ELEMENTS (ours); k++)
        g_assert_cmpfloat_with_epsilon (ours[k], g_ascii_strtod (cells[3 + k], NULL), 0.05);
    }
  g_assert_cmpint (rows, ==, ps_sweep_n_steps (sweep));
}

/* The numbers panel at the chosen step says what the sweep's row says. */
static void
check_panel (PsWindow *w)
{
  const PsSweepStep *r = ps_sweep_get_step (ps_session_get_sweep (w->session), ps_window_get_step (w));

  g_assert_cmpfloat_with_epsilon (g_ascii_strtod (gtk_label_get_text (ps_test_panel_label (w, "valid_bp")), NULL),
                                  r->valid_acc, 0.0051);
  g_assert_cmpfloat_with_epsilon (g_ascii_strtod (gtk_label_get_text (ps_test_panel_label (w, "asr_g")), NULL),
                                  r->g_asr, 0.0051);
}

/* ---- tests ---- */

/* The Open Model dialog shows ONNX and Keras models at once. */
static void
test_filters (void)
{
  GtkFileChooserNative *native = gtk_file_chooser_native_new ("t", NULL, GTK_FILE_CHOOSER_ACTION_OPEN, NULL, NULL);
  g_autoptr (GListModel) filters = NULL;
  g_autoptr (GtkFilter) first = NULL;
  const char *shown[] = { "bd_net.onnx", "bd_net.h5", "G.hdf5" }, *hidden[] = { "valid.csv", "notes.txt" };

  _ps_window_add_model_filters (GTK_FILE_CHOOSER (native));
  filters = gtk_file_chooser_get_filters (GTK_FILE_CHOOSER (native));
  g_assert_cmpuint (g_list_model_get_n_items (filters), >=, 2);
  first = g_list_model_get_item (filters, 0);
  for (guint i = 0; i < G_N_ELEMENTS (shown) + G_N_ELEMENTS (hidden); i++)
    {
      g_autoptr (GFileInfo) info = g_file_info_new ();
      gboolean show = i < G_N_ELEMENTS (shown);

      g_file_info_set_display_name (info, show ? shown[i] : hidden[i - G_N_ELEMENTS (shown)]);
      g_assert_true (gtk_filter_match (first, info) == show);
    }
  gtk_native_dialog_destroy (GTK_NATIVE_DIALOG (native));
  g_object_unref (native);
}

/* A Keras model: the chooser lists its feature maps (DeepID's convolutions and poolings),
 * pool_3 chosen. The choice is remembered per model file while the window lives: another
 * model gets its own default, the first one its choice back. */
static void
test_keras_chooser (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *demo = ps_demo_model_path (&error);
  g_autofree char *onnx = NULL;
  g_autoptr (GFile) demo_file = NULL, onnx_file = NULL;
  PsWindow *w;

  g_assert_no_error (error);
  w = ps_window_new (GTK_APPLICATION (app));
  gtk_window_present (GTK_WINDOW (w));
  /* before any model, the chooser has nothing to offer */
  g_assert_false (gtk_widget_get_sensitive (GTK_WIDGET (w->layer_dropdown)));
  demo_file = g_file_new_for_path (demo);
  ps_session_open (w->session, &demo_file, 1, PS_SLOT_MODEL);
  wait_for_model (w, demo);
  check_chooser (w, demo, "pool_3");
  {
    const char *deepid[] = { "conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "pool_3", NULL };
    g_assert_true (g_strv_equal ((const char * const *) w->layer_names, deepid));
  }

  ps_window_set_layer (w, "conv_3");
  g_assert_cmpstr (ps_session_get_layer (w->session), ==, "conv_3");
  assert_contains (gtk_window_get_title (GTK_WINDOW (w)), "conv_3");
  /* a name that is no feature map of the model is refused, the choice kept */
  g_assert_false (ps_session_set_layer (w->session, "fc_1", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  /* nor is a feature map the output does not depend on through and through: conv_4 is one
   * branch of two that add_1 joins */
  g_assert_false (ps_session_set_layer (w->session, "conv_4", &error));
  g_assert_nonnull (error);
  assert_contains (error->message, "add_1");
  g_clear_error (&error);
  g_assert_cmpstr (ps_session_get_layer (w->session), ==, "conv_3");

  if (fixture != NULL)
    {
      onnx = fixture_file ("bd_net.onnx");
      onnx_file = g_file_new_for_path (onnx);
      ps_session_open (w->session, &onnx_file, 1, PS_SLOT_MODEL);
      wait_for_model (w, onnx);
      check_chooser (w, onnx, DEFAULT_LAYER);
    }
  ps_session_open (w->session, &demo_file, 1, PS_SLOT_MODEL);
  if (fixture != NULL)
    wait_for_model (w, demo);
  else
    g_assert_true (ps_test_wait_until (not_busy, w, 60));
  check_chooser (w, demo, "conv_3");
  close_window (w);
}

/* The fixture's folder dropped on a window: bd_net.onnx and the lab's data paths find their
 * slots. */
static void
test_drop_folder (void)
{
  PsWindow *w;
  GtkDropTarget *target = NULL;
  g_autoptr (GListModel) controllers = NULL;
  g_autoptr (GFile) folder = NULL;
  g_autoptr (GSList) list = NULL;
  g_autofree char *model = NULL;
  GValue value = G_VALUE_INIT;
  gboolean handled = FALSE;
  static const struct { PsSlot slot; const char *path; } slots[] = {
    { PS_SLOT_VALID, "data/cl/valid.h5" }, { PS_SLOT_TEST, "data/cl/test.h5" },
    { PS_SLOT_POISONED, "data/bd/bd_test.h5" },
  };

  if (skip_without_fixture ())
    return;
  w = ps_window_new (GTK_APPLICATION (app));
  gtk_window_present (GTK_WINDOW (w));
  controllers = gtk_widget_observe_controllers (GTK_WIDGET (w));
  for (guint i = 0; i < g_list_model_get_n_items (controllers); i++)
    {
      g_autoptr (GObject) c = g_list_model_get_item (controllers, i);
      if (GTK_IS_DROP_TARGET (c))
        target = GTK_DROP_TARGET (c);
    }
  g_assert_nonnull (target);
  folder = g_file_new_for_path (fixture);
  list = g_slist_prepend (NULL, folder);
  g_value_init (&value, GDK_TYPE_FILE_LIST);
  g_value_set_boxed (&value, list);
  g_signal_emit_by_name (target, "drop", &value, 10.0, 10.0, &handled);
  g_value_unset (&value);
  g_assert_true (handled);

  model = fixture_file ("bd_net.onnx");
  wait_for_model (w, model);
  for (guint i = 0; i < G_N_ELEMENTS (slots); i++)
    {
      g_autofree char *path = fixture_file (slots[i].path);
      g_autoptr (GFile) file = g_file_new_for_path (path);
      g_assert_true (g_file_equal (ps_session_get_file (w->session, slots[i].slot), file));
    }
  g_assert_false (gtk_info_bar_get_revealed (w->error_bar));
  check_chooser (w, model, DEFAULT_LAYER);
  /* closing cancels the sweep the drop started */
  close_window (w);
}

static PsWindow *
new_window_since (GList *before)
{
  for (GList *l = gtk_application_get_windows (GTK_APPLICATION (app)); l != NULL; l = l->next)
    if (g_list_find (before, l->data) == NULL && PS_IS_WINDOW (l->data))
      return l->data;
  return NULL;
}

/* The model and its sets given on the command line; the sweep of the default layer, then
 * of another one picked in the chooser (cancelled once, then run), and G saved from it. */
static void
test_sweep_layers (void)
{
  g_autofree char *model = NULL, *valid = NULL, *test = NULL, *bd = NULL;
  g_autofree char *g_path = NULL, *h5_path = NULL;
  g_autoptr (GList) before = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree int *classes = NULL, *first_order = NULL;
  g_autoptr (PsDataset) all_test = NULL;
  const PsSweep *first, *sweep;
  const PsDataset *test_set;
  PsWindow *w;
  int step;

  if (skip_without_fixture ())
    return;
  model = fixture_file ("bd_net.onnx");
  valid = fixture_file ("data/cl/valid.h5");
  test = fixture_file ("data/cl/test.h5");
  bd = fixture_file ("data/bd/bd_test.h5");
  {
    GFile *files[4] = { g_file_new_for_path (model), g_file_new_for_path (valid),
                        g_file_new_for_path (test), g_file_new_for_path (bd) };

    /* what `prunescope FILE...` does */
    before = g_list_copy (gtk_application_get_windows (GTK_APPLICATION (app)));
    g_application_open (G_APPLICATION (app), files, 4, "");
    for (int i = 0; i < 4; i++)
      g_object_unref (files[i]);
  }
  w = new_window_since (before);
  g_assert_nonnull (w);
  gtk_window_set_default_size (GTK_WINDOW (w), 1400, 900);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 240));
  ps_test_drain ();

  /* the default layer: the CLI's and PyTorch's sweep */
  first = ps_session_get_sweep (w->session);
  g_assert_cmpstr (ps_sweep_layer_name (first), ==, DEFAULT_LAYER);
  g_assert_cmpint (ps_sweep_n_channels (first), ==, 64);
  check_chooser (w, model, DEFAULT_LAYER);
  check_against_reference (first);
  first_order = g_memdup2 (ps_sweep_order (first), 64 * sizeof (int));
  check_against_cli (w, NULL);
  gtk_adjustment_set_value (w->drop_adjustment, MIN (10.0, gtk_adjustment_get_upper (w->drop_adjustment)));
  g_assert_cmpint (ps_window_get_step (w), >, 0);
  check_panel (w);
  assert_contains (gtk_label_get_text (ps_test_panel_label (w, "verdict_label")), "“" DEFAULT_LAYER "”");
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-onnx.png");

  /* another layer, cancelled while it prunes: the last complete sweep stays, marked as not
   * this one; the cancelled one could go on */
  ps_window_set_layer (w, OTHER_LAYER);
  g_assert_cmpstr (ps_session_get_layer (w->session), ==, OTHER_LAYER);
  g_assert_true (ps_session_get_busy (w->session));
  assert_contains (gtk_window_get_title (GTK_WINDOW (w)), OTHER_LAYER);
  g_assert_true (ps_test_wait_until (pruning, w, 240));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (w), "win.cancel", NULL));
  g_assert_false (ps_session_get_busy (w->session));
  /* the sweep is kept when its thread has returned */
  g_assert_true (ps_test_wait_until (resumable, w, 60));
  ps_test_drain ();
  g_assert_true (ps_session_get_sweep (w->session) == first);
  g_assert_false (ps_session_get_sweep_current (w->session));
  g_assert_true (gtk_widget_get_visible (GTK_WIDGET (ps_test_panel_label (w, "stale_label"))));
  assert_contains (gtk_label_get_text (ps_test_panel_label (w, "verdict_label")), "“" DEFAULT_LAYER "”");
  g_assert_cmpint (ps_session_get_resumable_steps (w->session), >=, 3);

  /* back to the default layer: the cancelled sweep of the other one is dropped, never taken
   * up for this layer */
  ps_window_set_layer (w, DEFAULT_LAYER);
  g_assert_cmpint (ps_session_get_resumable_steps (w->session), ==, -1);
  {
    int n_rows;
    ps_session_get_rows (w->session, &n_rows);
    g_assert_cmpint (n_rows, ==, 0);
  }
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (w), "win.cancel", NULL));
  ps_window_set_layer (w, OTHER_LAYER);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (w), "win.cancel", NULL));
  ps_test_drain ();

  /* Run Sweep Again runs the layer chosen */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (w), "win.run", NULL));
  g_assert_true (ps_session_get_busy (w->session));
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, w, 240));
  ps_test_drain ();
  sweep = ps_session_get_sweep (w->session);
  g_assert_cmpstr (ps_sweep_layer_name (sweep), ==, OTHER_LAYER);
  g_assert_true (ps_session_get_sweep_current (w->session));
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (ps_test_panel_label (w, "stale_label"))));
  check_chooser (w, model, OTHER_LAYER);
  check_against_cli (w, OTHER_LAYER);
  /* another layer prunes other channels: the order differs from the default's */
  g_assert_false (memcmp (ps_sweep_order (sweep), first_order, 64 * sizeof (int)) == 0);

  gtk_adjustment_set_value (w->drop_adjustment, MIN (5.0, gtk_adjustment_get_upper (w->drop_adjustment)));
  step = ps_window_get_step (w);
  g_assert_cmpint (step, >, 0);
  check_panel (w);
  assert_contains (gtk_label_get_text (ps_test_panel_label (w, "verdict_label")), "“" OTHER_LAYER "”");
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-onnx-layer.png");

  /* G of an ONNX model is not written under an HDF5 name */
  h5_path = g_build_filename (ps_test_tmpdir (), "G-onnx.h5", NULL);
  {
    g_autoptr (GFile) file = g_file_new_for_path (h5_path);
    ps_window_save_g (w, file);
    g_assert_true (ps_test_wait_until (error_shown, w, 30));
    assert_contains (gtk_label_get_text (w->error_detail_label), ".onnx");
    g_assert_false (g_file_test (h5_path, G_FILE_TEST_EXISTS));
    gtk_info_bar_set_revealed (w->error_bar, FALSE);
  }

  /* Save G: one ONNX graph recording the layer chosen; read back as G */
  g_path = g_build_filename (ps_test_tmpdir (), "G-layer.onnx", NULL);
  {
    g_autoptr (GFile) file = g_file_new_for_path (g_path);
    g_clear_pointer (&w->last_notice, g_free);
    ps_window_save_g (w, file);
    g_assert_true (ps_test_wait_until (notice_shown, w, 60));
    g_assert_cmpstr (w->last_notice, ==, "G saved as G-layer.onnx");
  }
  g = ps_repaired_load (g_path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (g->b->onnx);
  g_assert_cmpstr (g->layer, ==, OTHER_LAYER);
  g_assert_cmpint (g->n_channels, ==, step);
  g_assert_cmpint (g->layer_channels, ==, 64);
  for (int i = 0; i < step; i++)
    g_assert_cmpint (g->channels[i], ==, ps_sweep_order (sweep)[i]);
  /* G classifies the test images as the sweep said it would: the whole set, read again
   * (the window keeps a sample of its images) */
  test_set = all_test = ps_dataset_load (test, &error);
  g_assert_no_error (error);
  g_assert_cmpint (test_set->n, ==, ps_session_get_sweep_header (w->session, PS_SET_TEST)->n);
  classes = g_new (int, test_set->n);
  g_assert_true (ps_repaired_classify (g, test_set, classes, NULL, &error));
  g_assert_no_error (error);
  for (int i = 0; i < test_set->n; i++)
    g_assert_cmpint (classes[i], ==, ps_sweep_g_prediction (sweep, PS_SET_TEST, step, i));
  /* its recorded metrics are the sweep's row and what `eval` measures on it */
  {
    const PsSweepStep *r = ps_sweep_get_step (sweep, step);
    const char *argv[] = { "eval", "--model", g_path, "--data", test, "--poisoned", bd, NULL };
    g_autofree char *out = NULL, *acc = NULL, *asr = NULL;
    char num[G_ASCII_DTOSTR_BUF_SIZE];

    g_assert_cmpfloat (g->metrics.g_test_acc, ==, r->g_test_acc);
    g_assert_cmpfloat (g->metrics.g_asr, ==, r->g_asr);
    g_assert_cmpfloat (g->metrics.valid_acc, ==, r->valid_acc);
    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    acc = g_strdup_printf ("Clean Classification accuracy: %s %%",
                           g_ascii_formatd (num, sizeof num, "%.4f", g->metrics.g_test_acc));
    asr = g_strdup_printf ("Attack Success Rate: %s %%",
                           g_ascii_formatd (num, sizeof num, "%.4f", g->metrics.g_asr));
    assert_contains (out, acc);
    assert_contains (out, asr);
  }

  /* G opened as a model: its B, at the layer G pruned (a file new to the window, which
   * would otherwise start at the default) */
  {
    g_autoptr (GFile) file = g_file_new_for_path (g_path);
    SlotWait wait = { w, PS_SLOT_MODEL, file };

    ps_window_open_files (w, &file, 1);
    g_assert_true (ps_test_wait_until (slot_holds, &wait, 60));
    ps_test_drain ();
    g_assert_cmpstr (ps_session_get_layer (w->session), ==, OTHER_LAYER);
    g_assert_cmpstr (w->layer_names[gtk_drop_down_get_selected (w->layer_dropdown)], ==, OTHER_LAYER);
    g_assert_true (ps_session_get_busy (w->session)); /* sweeping it; closing cancels */
  }
  close_window (w);
}

int
main (int argc, char *argv[])
{
  g_autoptr (GError) error = NULL;
  const char *dir = g_getenv ("PS_ONNX_FIXTURE");
  int status;

  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gtk_test_init (&argc, &argv, NULL);
  if (dir != NULL && g_file_test (dir, G_FILE_TEST_IS_DIR))
    fixture = dir;
  app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);
  g_test_add_func ("/app/onnx/filters", test_filters);
  g_test_add_func ("/app/onnx/keras-chooser", test_keras_chooser);
  g_test_add_func ("/app/onnx/drop-folder", test_drop_folder);
  g_test_add_func ("/app/onnx/sweep-layers", test_sweep_layers);
  status = g_test_run ();
  g_clear_object (&app);
  return status;
}
