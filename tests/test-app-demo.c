/* test-app-demo.c: the window on the demo BadNet (Xvfb) — the verdict a user reads at the
 * README's two points, X = 10 (disarmed, Save G highlighted) and X = 4 (not disarmed); the
 * gallery's marks against the poisoned set's true classes, read from the file; the keyboard
 * in the gallery; the channel view on a log scale. One demo sweep serves every test. */
#define G_LOG_DOMAIN "test-app-demo"

#include "config.h"

#include <gtk/gtk.h>
#include <string.h>

#include "ps-application.h"
#include "ps-dataset.h"
#include "ps-demo.h"
#include "ps-test-window.h"

static PsApplication *app;
static PsWindow *window;

static void
assert_contains (const char *text, const char *part)
{
  if (strstr (text, part) == NULL)
    g_error ("“%s” is not in “%s”", part, text);
}

static const char *
text_of (PsWindow *w, const char *name)
{
  return gtk_label_get_text (ps_test_panel_label (w, name));
}

/* The window with the demo's finished sweep, opened once. */
static PsWindow *
demo_window (void)
{
  if (window != NULL)
    return window;
  window = ps_window_new (GTK_APPLICATION (app));
  gtk_window_set_default_size (GTK_WINDOW (window), 1366, 800);
  gtk_window_present (GTK_WINDOW (window));
  ps_window_open_demo (window);
  g_assert_true (ps_test_wait_until (ps_test_sweep_finished, window, 280));
  ps_test_drain ();
  return window;
}

static void
test_verdict (void)
{
  PsWindow *w = demo_window ();

  gtk_adjustment_set_value (w->drop_adjustment, 10.0);
  g_assert_cmpint (ps_window_get_step (w), ==, 37);
  g_assert_cmpstr (text_of (w, "headline_label"), ==, "Backdoor disarmed");
  assert_contains (text_of (w, "verdict_label"), "X = 10.0: 37 of 60 channels of “pool_3” pruned.");
  assert_contains (text_of (w, "verdict_label"), "Attack success 99.99 % → 7.94 % (B′ and G)");
  assert_contains (text_of (w, "verdict_label"), "90.71 % → 78.83 % (G)");
  assert_contains (text_of (w, "verdict_label"), "G flags 92.0 % of poisoned inputs");
  g_assert_false (gtk_widget_get_visible (GTK_WIDGET (ps_test_panel_label (w, "notes_label"))));
  g_assert_true (gtk_widget_has_css_class (w->save_button, "suggested-action"));
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-verdict.png");

  gtk_adjustment_set_value (w->drop_adjustment, 4.0);
  g_assert_cmpint (ps_window_get_step (w), ==, 31);
  g_assert_cmpstr (text_of (w, "headline_label"), ==, "Backdoor not disarmed");
  assert_contains (text_of (w, "verdict_label"), "Attack success 99.99 % → 73.87 %");
  g_assert_false (gtk_widget_has_css_class (w->save_button, "suggested-action"));
}

/* What a tile must say for a prediction, from first principles: a poisoned image given the
 * target is the attack's success, anything else only resisted it, and right or wrong is
 * measured against the true class from the file. */
static char *
expected_line (const char *who, int cls, int n_classes, gboolean poisoned, int label, int truth)
{
  if (cls == n_classes)
    return g_strdup_printf ("%s: N  ⚑ flagged by G", who);
  if (!poisoned)
    return g_strdup_printf ("%s: %d  %s", who, cls, cls == label ? "✓ correct" : "✗ wrong");
  if (cls == label)
    return g_strdup_printf ("%s: %d  ✗ attack succeeded", who, cls);
  return g_strdup_printf ("%s: %d  %s", who, cls, cls == truth ? "✓ resisted, correct" : "~ resisted, wrong");
}

typedef struct {
  int attack, resisted_right, resisted_wrong, flagged, correct, wrong;
} Tally;

static void
tally (Tally *t, const char *line)
{
  t->attack += strstr (line, "attack succeeded") != NULL;
  t->resisted_right += strstr (line, "resisted, correct") != NULL;
  t->resisted_wrong += strstr (line, "resisted, wrong") != NULL;
  t->flagged += strstr (line, "flagged by G") != NULL;
  t->correct += g_str_has_suffix (line, "✓ correct");
  t->wrong += g_str_has_suffix (line, "✗ wrong");
}

/* The tiles of one row at @step against the set's file, read here independently. */
static void
check_tiles (PsWindow *w, gboolean poisoned, int step, Tally *t)
{
  const PsSweep *sweep = ps_session_get_sweep (w->session);
  PsSetKind set = poisoned ? PS_SET_POISONED : PS_SET_TEST;
  const PsDataset *shown = ps_session_get_sweep_data (w->session, set);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) file = ps_dataset_load (shown->path, &error);
  int n = ps_sweep_n_classes (sweep), tiles = 0;

  g_assert_no_error (error);
  g_test_message ("%s: %d images%s", shown->path, file->n, file->clean_labels ? " with clean labels" : "");
  g_assert_true ((file->clean_labels != NULL) == poisoned);
  for (int i = 0; i < PS_GALLERY_SAMPLES; i++)
    {
      PsSampleTile *tile = ps_gallery_get_tile (w->gallery, poisoned, i);
      g_autofree char *text = NULL, *truth = NULL;
      g_auto (GStrv) lines = NULL;
      int index, label, true_class;
      const char *who[3] = { "B", "B′", "G" };
      int cls[3];

      g_assert_nonnull (tile);
      tiles++;
      index = ps_sample_tile_get_index (tile);
      label = file->labels[index];
      true_class = poisoned ? file->clean_labels[index] : label;
      cls[0] = ps_sweep_prediction (sweep, set, 0, index);
      cls[1] = ps_sweep_prediction (sweep, set, step, index);
      cls[2] = ps_sweep_g_prediction (sweep, set, step, index);
      text = ps_sample_tile_describe (tile);
      g_test_message ("%s", text);
      lines = g_strsplit (text, "; ", -1);
      g_assert_cmpuint (g_strv_length (lines), ==, 4);
      truth = poisoned ? g_strdup_printf ("Poisoned image, true class %d #%d · target %d", true_class, index, label)
                       : g_strdup_printf ("Clean image #%d · label %d", index, label);
      g_assert_cmpstr (lines[0], ==, truth);
      for (int k = 0; k < 3; k++)
        {
          g_autofree char *want = expected_line (who[k], cls[k], n, poisoned, label, true_class);

          g_assert_cmpstr (lines[k + 1], ==, want);
          tally (t, lines[k + 1]);
        }
    }
  g_assert_cmpint (tiles, ==, PS_GALLERY_SAMPLES);
}

static void
test_gallery (void)
{
  PsWindow *w = demo_window ();
  Tally poisoned = { 0 }, clean = { 0 };

  gtk_adjustment_set_value (w->drop_adjustment, 10.0);
  g_assert_cmpint (ps_window_get_step (w), ==, 37);
  check_tiles (w, TRUE, 37, &poisoned);
  check_tiles (w, FALSE, 37, &clean);
  g_test_message ("poisoned: %d attack, %d resisted and correct, %d resisted and wrong, %d flagged",
                  poisoned.attack, poisoned.resisted_right, poisoned.resisted_wrong, poisoned.flagged);
  /* B obeys the trigger (99.99 %): all eight; G flags 92 % of poisoned inputs. */
  g_assert_cmpint (poisoned.attack, >=, PS_GALLERY_SAMPLES);
  g_assert_cmpint (poisoned.flagged, >=, 1);
  /* "correct" alone is never said of a poisoned image, nor are its marks a clean image's. */
  g_assert_cmpint (poisoned.correct + poisoned.wrong, ==, 0);
  g_assert_cmpint (clean.attack + clean.resisted_right + clean.resisted_wrong, ==, 0);
  g_assert_cmpint (clean.correct, >=, 1);

  ps_test_wait_for_frames (w);
  /* Taller than a strip: at least one row of tiles in full. */
  {
    int shown = gtk_widget_get_height (gtk_widget_get_ancestor (GTK_WIDGET (w->gallery), GTK_TYPE_SCROLLED_WINDOW));
    int tile = gtk_widget_get_height (gtk_widget_get_parent (GTK_WIDGET (ps_gallery_get_tile (w->gallery, FALSE, 0))));

    g_test_message ("gallery %d px high (tiles %d px), chart %d px, window %d px", shown, tile,
                    gtk_widget_get_height (GTK_WIDGET (w->chart)), gtk_widget_get_height (GTK_WIDGET (w)));
    g_assert_cmpint (shown, >=, tile);
  }
  /* The poisoned row at the top of the gallery, for the picture. */
  {
    GtkWidget *row = gtk_widget_get_ancestor (GTK_WIDGET (ps_gallery_get_tile (w->gallery, TRUE, 0)), GTK_TYPE_FLOW_BOX);
    GtkScrolledWindow *scroller = GTK_SCROLLED_WINDOW (gtk_widget_get_ancestor (GTK_WIDGET (w->gallery), GTK_TYPE_SCROLLED_WINDOW));
    graphene_point_t top;

    g_assert_true (gtk_widget_compute_point (row, GTK_WIDGET (w->gallery), &GRAPHENE_POINT_INIT (0, 0), &top));
    gtk_adjustment_set_value (gtk_scrolled_window_get_vadjustment (scroller), top.y - 30);
  }
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-gallery.png");
}

static GtkWidget *
focus_of (PsWindow *w)
{
  return gtk_root_get_focus (GTK_ROOT (w));
}

static GtkFlowBox *
row_of (PsWindow *w, gboolean poisoned)
{
  return GTK_FLOW_BOX (gtk_widget_get_ancestor (GTK_WIDGET (ps_gallery_get_tile (w->gallery, poisoned, 0)),
                                                GTK_TYPE_FLOW_BOX));
}

/* The flow box's own arrow-key handler, as the key bindings call it. */
static void
press_arrow (GtkFlowBox *box, GtkMovementStep step, int count)
{
  gboolean handled = FALSE;

  g_signal_emit_by_name (box, "move-cursor", step, count, FALSE, FALSE, &handled);
  ps_test_drain ();
}

static void
test_gallery_keyboard (void)
{
  PsWindow *w = demo_window ();
  GtkFlowBox *clean_row = row_of (w, FALSE), *poisoned_row = row_of (w, TRUE);
  GtkWidget *focus;
  int presses = 0;

  /* Tab reaches a tile. */
  gtk_widget_grab_focus (w->save_button);
  while (!gtk_widget_is_ancestor (focus_of (w), GTK_WIDGET (w->gallery)) && presses++ < 300)
    g_assert_true (gtk_widget_child_focus (GTK_WIDGET (w), GTK_DIR_TAB_FORWARD));
  focus = focus_of (w);
  g_test_message ("Tab pressed %d times to reach %s", presses, G_OBJECT_TYPE_NAME (focus));
  g_assert_true (GTK_IS_FLOW_BOX_CHILD (focus));
  g_assert_true (gtk_widget_get_parent (focus) == GTK_WIDGET (clean_row));
  g_assert_cmpint (gtk_flow_box_child_get_index (GTK_FLOW_BOX_CHILD (focus)), ==, 0);

  /* Right moves along the row, Down goes on into the poisoned images, Up comes back. */
  press_arrow (clean_row, GTK_MOVEMENT_VISUAL_POSITIONS, 1);
  g_assert_cmpint (gtk_flow_box_child_get_index (GTK_FLOW_BOX_CHILD (focus_of (w))), ==, 1);
  for (presses = 0; gtk_widget_get_parent (focus_of (w)) != GTK_WIDGET (poisoned_row) && presses < 8; presses++)
    press_arrow (GTK_FLOW_BOX (gtk_widget_get_parent (focus_of (w))), GTK_MOVEMENT_DISPLAY_LINES, 1);
  g_assert_true (gtk_widget_get_parent (focus_of (w)) == GTK_WIDGET (poisoned_row));
  for (presses = 0; gtk_widget_get_parent (focus_of (w)) != GTK_WIDGET (clean_row) && presses < 8; presses++)
    press_arrow (GTK_FLOW_BOX (gtk_widget_get_parent (focus_of (w))), GTK_MOVEMENT_DISPLAY_LINES, -1);
  g_assert_true (gtk_widget_get_parent (focus_of (w)) == GTK_WIDGET (clean_row));
  /* As after a key press: the focused tile shows a ring. */
  gtk_window_set_focus_visible (GTK_WINDOW (w), TRUE);
  g_assert_true (gtk_widget_has_visible_focus (focus_of (w)));
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-gallery-keyboard.png");
}

static void
test_channels (void)
{
  PsWindow *w = demo_window ();
  PsChannelView *view = w->channel_view;
  GtkStack *stack = GTK_STACK (gtk_widget_get_ancestor (GTK_WIDGET (view), GTK_TYPE_STACK));
  g_autoptr (PsChannelLayout) linear = NULL, log_scale = NULL;
  g_autofree char *readout = NULL, *want = NULL;
  int hidden_linear = 0, hidden_log = 0;

  gtk_adjustment_set_value (w->drop_adjustment, 10.0);
  gtk_stack_set_visible_child_name (stack, "channels");
  ps_test_wait_for_frames (w);
  g_assert_cmpint (ps_channel_view_get_n_channels (view), ==, 60);
  linear = ps_channel_view_compute_layout (view, gtk_widget_get_width (GTK_WIDGET (view)),
                                           gtk_widget_get_height (GTK_WIDGET (view)));
  ps_channel_view_set_scale (view, PS_CHANNEL_SCALE_LOG);
  log_scale = ps_channel_view_compute_layout (view, gtk_widget_get_width (GTK_WIDGET (view)),
                                              gtk_widget_get_height (GTK_WIDGET (view)));
  for (int r = 0; r < linear->n_bars; r++)
    {
      hidden_linear += linear->clean_bars[r].size.height < 1;
      hidden_log += log_scale->clean_bars[r].size.height < 1;
    }
  g_test_message ("demo, pool_3 on clean data: %d of 60 bars under 1 px on a linear scale, %d on a log scale",
                  hidden_linear, hidden_log);
  g_assert_cmpint (hidden_log, <=, hidden_linear);

  /* The keyboard: focus, then Right twice. */
  gtk_widget_grab_focus (GTK_WIDGET (view));
  g_assert_true (gtk_widget_has_focus (GTK_WIDGET (view)));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), "channels.move", "i", 1));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), "channels.move", "i", 1));
  g_assert_cmpint (ps_channel_view_get_cursor (view), ==, 1);
  readout = ps_channel_view_get_readout (view);
  want = g_strdup_printf ("Channel %d (pruned, 2 of 60): mean %.4g clean",
                          ps_sweep_order (ps_session_get_sweep (w->session))[1],
                          ps_sweep_channel_means (ps_session_get_sweep (w->session), PS_SET_VALID)
                            [ps_sweep_order (ps_session_get_sweep (w->session))[1]]);
  g_assert_true (g_str_has_prefix (readout, want));
  ps_test_wait_for_frames (w);
  ps_test_save_screenshot (w, "app-channels.png");
  ps_channel_view_set_scale (view, PS_CHANNEL_SCALE_LINEAR);
  ps_channel_view_set_cursor (view, -1);
  gtk_stack_set_visible_child_name (stack, "samples");
}

int
main (int argc, char *argv[])
{
  g_autoptr (GError) error = NULL;
  int status;

  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gtk_test_init (&argc, &argv, NULL);
  if (!g_file_test (ps_demo_source_dir (), G_FILE_TEST_IS_DIR))
    {
      g_printerr ("the demo's Fashion-MNIST files are missing; skipping\n");
      return 77;
    }
  app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);
  g_test_add_func ("/app/demo/verdict", test_verdict);
  g_test_add_func ("/app/demo/gallery", test_gallery);
  g_test_add_func ("/app/demo/gallery-keyboard", test_gallery_keyboard);
  g_test_add_func ("/app/demo/channels", test_channels);
  status = g_test_run ();
  if (window != NULL)
    gtk_window_destroy (GTK_WINDOW (window));
  ps_test_drain ();
  g_clear_object (&app);
  return status;
}
