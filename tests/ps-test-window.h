/* ps-test-window.h: helpers for the tests of the application window (Xvfb) */
#pragma once

#include <gtk/gtk.h>

#include "ps-stats-panel.h"
#include "ps-window-private.h"

G_BEGIN_DECLS

/* Runs the main loop until @done says so; FALSE after @seconds. */
gboolean  ps_test_wait_until       (gboolean (*done) (gpointer),
                                    gpointer   data,
                                    double     seconds);
void      ps_test_drain            (void);
/* A ps_test_wait_until() condition on a PsWindow: nothing runs and a sweep is shown. */
gboolean  ps_test_sweep_finished   (gpointer   window);
/* Returns after the window has drawn two more frames. */
void      ps_test_wait_for_frames  (PsWindow  *w);
/* Saves a picture of @w as $PS_BUILD_DIR/@name. */
void      ps_test_save_screenshot  (PsWindow  *w,
                                    const char *name);
/* The same for any toplevel widget that has drawn. */
void      ps_test_save_widget_screenshot (GtkWidget  *toplevel,
                                          const char *name);
GtkLabel *ps_test_panel_label      (PsWindow  *w,
                                    const char *name);

G_END_DECLS
