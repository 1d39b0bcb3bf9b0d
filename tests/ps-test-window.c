/* ps-test-window.c: driving the real window in tests — wait for a condition while the main
 * loop runs, wait for drawn frames, save screenshots */
#include "config.h"

#include "ps-test-window.h"

gboolean
ps_test_wait_until (gboolean (*done) (gpointer), gpointer data, double seconds)
{
  gint64 end = g_get_monotonic_time () + (gint64) (seconds * G_USEC_PER_SEC);

  while (!done (data))
    {
      if (g_get_monotonic_time () > end)
        return FALSE;
      g_main_context_iteration (NULL, FALSE);
      g_usleep (500);
    }
  return TRUE;
}

/* Saves a picture of @w as build/@name, for people to look at. */
gboolean
ps_test_sweep_finished (gpointer window)
{
  PsWindow *w = window;

  return !ps_session_get_busy (w->session) && ps_session_get_sweep (w->session) != NULL;
}

void
ps_test_save_widget_screenshot (GtkWidget *w, const char *name)
{
  const char *dir = g_getenv ("PS_BUILD_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : ".", name, NULL);
  g_autoptr (GdkPaintable) paintable = NULL;
  g_autoptr (GtkSnapshot) snapshot = gtk_snapshot_new ();
  g_autoptr (GskRenderNode) node = NULL;
  g_autoptr (GdkTexture) texture = NULL;
  int width = gtk_widget_get_width (GTK_WIDGET (w));
  int height = gtk_widget_get_height (GTK_WIDGET (w));

  g_assert_cmpint (width, >, 0);
  paintable = gtk_widget_paintable_new (GTK_WIDGET (w));
  gdk_paintable_snapshot (paintable, snapshot, width, height);
  node = gtk_snapshot_free_to_node (g_steal_pointer (&snapshot));
  g_assert_nonnull (node);
  texture = gsk_renderer_render_texture (gtk_native_get_renderer (GTK_NATIVE (w)), node,
                                         &GRAPHENE_RECT_INIT (0, 0, width, height));
  g_assert_true (gdk_texture_save_to_png (texture, path));
  g_test_message ("screenshot: %s", path);
}

void
ps_test_save_screenshot (PsWindow *w, const char *name)
{
  ps_test_save_widget_screenshot (GTK_WIDGET (w), name);
}

/* Lets the window lay itself out and draw: one frame clock cycle after the last change. */
static gboolean
frame_drawn (gpointer data)
{
  return GPOINTER_TO_INT (g_object_get_data (data, "ps-frames")) >= 2;
}

static gboolean
count_frame (GtkWidget *widget, GdkFrameClock *clock, gpointer data)
{
  int n = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (widget), "ps-frames"));

  g_object_set_data (G_OBJECT (widget), "ps-frames", GINT_TO_POINTER (n + 1));
  gtk_widget_queue_draw (widget);
  return n + 1 < 2 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

void
ps_test_wait_for_frames (PsWindow *w)
{
  g_object_set_data (G_OBJECT (w), "ps-frames", GINT_TO_POINTER (0));
  gtk_widget_add_tick_callback (GTK_WIDGET (w), count_frame, NULL, NULL);
  g_assert_true (ps_test_wait_until (frame_drawn, w, 20));
}

GtkLabel *
ps_test_panel_label (PsWindow *w, const char *name)
{
  return GTK_LABEL (gtk_widget_get_template_child (GTK_WIDGET (w->stats_panel), PS_TYPE_STATS_PANEL, name));
}

void
ps_test_drain (void)
{
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
}
