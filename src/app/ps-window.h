/* ps-window.h: the main window — one session, its chart, the chosen point and the exports */
#pragma once

#include <gtk/gtk.h>

#include "ps-session.h"

G_BEGIN_DECLS

#define PS_TYPE_WINDOW (ps_window_get_type ())

G_DECLARE_FINAL_TYPE (PsWindow, ps_window, PS, WINDOW, GtkApplicationWindow)

PsWindow   *ps_window_new          (GtkApplication  *application);
/* Models, image sets and lab folders; each file finds its place. */
void        ps_window_open_files   (PsWindow        *self,
                                    GFile          **files,
                                    int              n_files);
void        ps_window_open_demo    (PsWindow        *self);
PsSession  *ps_window_get_session  (PsWindow        *self);
/* The chosen step, -1 while there is no finished sweep. */
int         ps_window_get_step     (PsWindow        *self);
/* X, or NAN when the step was picked on the chart. */
double      ps_window_get_drop     (PsWindow        *self);
gboolean    ps_window_export_plot  (PsWindow        *self,
                                    GFile           *file,
                                    GError         **error);
gboolean    ps_window_export_csv   (PsWindow        *self,
                                    GFile           *file,
                                    GError         **error);
void        ps_window_save_g       (PsWindow        *self,
                                    GFile           *file);
void        ps_window_show_error   (PsWindow        *self,
                                    const GError    *error);
/* Picks @name in the layer chooser, as a user would (the sweep runs on it). */
void        ps_window_set_layer    (PsWindow        *self,
                                    const char      *name);

G_END_DECLS
