/* test-app-demo.c: the window on the demo BadNet (Xvfb) — the verdict a user reads at the
 * README's two points, X = 10 (disarmed, Save G highlighted) and X = 4 (not disarmed). */
#define G_LOG_DOMAIN "test-app-demo"

#include "config.h"

#include <gtk/gtk.h>
#include <string.h>

#include "ps-application.h"
#include "ps-demo.h"
#include "ps-test-window.h"

static PsApplication *app;

static gboolean
sweep_finished (gpointer data)
{
  PsWindow *w = data;
  return !ps_session_get_busy (w->session) && ps_session_get_sweep (w->session) != NULL;
}

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

static void
test_verdict (void)
{
  PsWindow *w = ps_window_new (GTK_APPLICATION (app));

  gtk_window_set_default_size (GTK_WINDOW (w), 1366, 800);
  gtk_window_present (GTK_WINDOW (w));
  ps_window_open_demo (w);
  g_assert_true (ps_test_wait_until (sweep_finished, w, 280));
  ps_test_drain ();

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
  if (!g_file_test (ps_demo_source_dir (), G_FILE_TEST_IS_DIR))
    {
      g_printerr ("the demo's Fashion-MNIST files are missing; skipping\n");
      return 77;
    }
  app = ps_application_new (G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (app), NULL, &error));
  g_assert_no_error (error);
  g_test_add_func ("/app/demo/verdict", test_verdict);
  status = g_test_run ();
  g_clear_object (&app);
  return status;
}
