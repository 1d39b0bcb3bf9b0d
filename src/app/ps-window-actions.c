/* ps-window-actions.c: the window's actions (open, save G, export, cancel), their
 * shortcuts, file choosers and the recent files menu */
#define G_LOG_DOMAIN "ps-window"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "ps-plot.h"
#include "ps-file.h"
#include "ps-window-private.h"

#define MAX_RECENT 8
#define PLOT_WIDTH 900
#define PLOT_HEIGHT 560

typedef void (*ChosenFunc) (PsWindow *self, GFile *file, int tag);

/* ---- file choosers ---- */

static void
add_filter (GtkFileChooser *chooser, const char *name, const char *pattern, const char *ext)
{
  g_autoptr (GtkFileFilter) filter = gtk_file_filter_new ();

  gtk_file_filter_set_name (filter, name);
  gtk_file_filter_add_pattern (filter, pattern);
  if (ext != NULL)
    g_object_set_data_full (G_OBJECT (filter), "ps-ext", g_strdup (ext), g_free);
  gtk_file_chooser_add_filter (chooser, filter);
}

static void
add_h5_filters (GtkFileChooser *chooser)
{
  g_autoptr (GtkFileFilter) h5 = gtk_file_filter_new ();
  g_autoptr (GtkFileFilter) all = gtk_file_filter_new ();

  gtk_file_filter_set_name (h5, _("HDF5 files"));
  gtk_file_filter_add_pattern (h5, "*.h5");
  gtk_file_filter_add_pattern (h5, "*.hdf5");
  gtk_file_chooser_add_filter (chooser, h5);
  gtk_file_filter_set_name (all, _("All files"));
  gtk_file_filter_add_pattern (all, "*");
  gtk_file_chooser_add_filter (chooser, all);
}

/* Keras and ONNX models alike are shown first; each kind, and every file, on request. */
void
_ps_window_add_model_filters (GtkFileChooser *chooser)
{
  g_autoptr (GtkFileFilter) models = gtk_file_filter_new ();

  gtk_file_filter_set_name (models, _("Models (HDF5, ONNX)"));
  gtk_file_filter_add_pattern (models, "*.h5");
  gtk_file_filter_add_pattern (models, "*.hdf5");
  gtk_file_filter_add_pattern (models, "*.onnx");
  gtk_file_chooser_add_filter (chooser, models);
  add_filter (chooser, _("ONNX models"), "*.onnx", NULL);
  add_h5_filters (chooser);
}

/* File choosers open where the last one was used. */
static void
remember_folder (PsWindow *self, GFile *file)
{
  g_clear_object (&self->last_folder);
  if (g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY)
    self->last_folder = g_object_ref (file);
  else
    self->last_folder = g_file_get_parent (file);
}

static void
start_in_last_folder (PsWindow *self, GtkFileChooser *chooser)
{
  if (self->last_folder != NULL)
    gtk_file_chooser_set_current_folder (chooser, self->last_folder, NULL);
}

static void
on_chooser_response (GtkNativeDialog *native, int response, PsWindow *self)
{
  ChosenFunc func = g_object_get_data (G_OBJECT (native), "ps-func");
  int tag = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (native), "ps-tag"));

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr (GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (native));
      if (file != NULL)
        {
          remember_folder (self, file);
          func (self, file, tag);
        }
    }
  gtk_native_dialog_destroy (native);
  g_object_unref (native);
}

static GtkFileChooser *
new_chooser (PsWindow *self, const char *title, GtkFileChooserAction action, const char *accept,
             ChosenFunc func, int tag)
{
  GtkFileChooserNative *native = gtk_file_chooser_native_new (title, GTK_WINDOW (self), action, accept, NULL);

  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  g_object_set_data (G_OBJECT (native), "ps-func", func);
  g_object_set_data (G_OBJECT (native), "ps-tag", GINT_TO_POINTER (tag));
  g_signal_connect (native, "response", G_CALLBACK (on_chooser_response), self);
  start_in_last_folder (self, GTK_FILE_CHOOSER (native));
  return GTK_FILE_CHOOSER (native);
}

static void
show_chooser (GtkFileChooser *chooser)
{
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (chooser));
}

/* ---- opening ---- */

static void
open_chosen (PsWindow *self, GFile *file, int slot)
{
  gtk_info_bar_set_revealed (self->error_bar, FALSE);
  if (slot == PS_SLOT_MODEL || slot == PS_SLOT_AUTO)
    _ps_window_remember (self, file);
  ps_session_open (self->session, &file, 1, slot);
}

static void
open_model_action (GtkWidget *widget, const char *name, GVariant *param)
{
  GtkFileChooser *chooser = new_chooser (PS_WINDOW (widget), _("Open BadNet Model"), GTK_FILE_CHOOSER_ACTION_OPEN,
                                         _("_Open"), open_chosen, PS_SLOT_MODEL);
  _ps_window_add_model_filters (chooser);
  show_chooser (chooser);
}

static void
open_data_action (GtkWidget *widget, const char *name, GVariant *param)
{
  static const char *titles[PS_N_SETS] = {
    N_("Open Clean Validation Data"), N_("Open Clean Test Data"), N_("Open Poisoned Test Data"),
  };
  int slot = g_variant_get_int32 (param);
  GtkFileChooser *chooser;

  if (slot < 0 || slot >= PS_N_SETS)
    return;
  chooser = new_chooser (PS_WINDOW (widget), _(titles[slot]), GTK_FILE_CHOOSER_ACTION_OPEN, _("_Open"),
                         open_chosen, slot);
  add_h5_filters (chooser);
  show_chooser (chooser);
}

static void
open_folder_action (GtkWidget *widget, const char *name, GVariant *param)
{
  show_chooser (new_chooser (PS_WINDOW (widget), _("Open Lab Folder"), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                             _("_Open"), open_chosen, PS_SLOT_AUTO));
}

static void
open_demo_action (GtkWidget *widget, const char *name, GVariant *param)
{
  ps_window_open_demo (PS_WINDOW (widget));
}

static void
open_recent_action (GtkWidget *widget, const char *name, GVariant *param)
{
  g_autoptr (GFile) file = g_file_new_for_uri (g_variant_get_string (param, NULL));

  ps_window_open_files (PS_WINDOW (widget), &file, 1);
}

/* ---- saving G ---- */

typedef struct {
  PsWindow *window;
  GFile    *file;
} SaveRequest;

static void
on_g_saved (GObject *object, GAsyncResult *result, gpointer data)
{
  SaveRequest *req = data;
  PsWindow *self = req->window;
  g_autoptr (GError) error = NULL;

  if (!ps_session_save_g_finish (PS_SESSION (object), result, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        ps_window_show_error (self, error);
    }
  else
    {
      g_autofree char *where = g_file_get_basename (req->file);
      g_autofree char *text = g_strdup_printf (_("G saved as %s"), where);

      _ps_window_notify (self, text);
    }
  g_object_unref (req->window);
  g_object_unref (req->file);
  g_free (req);
}

void
ps_window_save_g (PsWindow *self, GFile *file)
{
  SaveRequest *req;

  g_return_if_fail (PS_IS_WINDOW (self));

  if (self->shown_sweep == NULL || self->step < 0)
    return;
  req = g_new0 (SaveRequest, 1);
  req->window = g_object_ref (self);
  req->file = g_object_ref (file);
  ps_session_save_g_async (self->session, self->step, self->drop, file, NULL, on_g_saved, req);
}

static void
save_chosen (PsWindow *self, GFile *file, int tag)
{
  ps_window_save_g (self, file);
}

static void
save_g_action (GtkWidget *widget, const char *name, GVariant *param)
{
  PsWindow *self = PS_WINDOW (widget);
  GtkFileChooser *chooser = new_chooser (self, _("Save Repaired Network G"), GTK_FILE_CHOOSER_ACTION_SAVE,
                                         _("_Save"), save_chosen, 0);
  const PsModel *swept = ps_session_get_sweep_model (self->session);
  gboolean onnx = swept != NULL && swept->onnx != NULL;
  g_autofree char *suggested = g_strdup_printf ("G-%d-pruned.%s", self->step, onnx ? "onnx" : "h5");

  /* G is written in the format the model came in */
  if (onnx)
    {
      add_filter (chooser, _("ONNX models"), "*.onnx", NULL);
      add_filter (chooser, _("All files"), "*", NULL);
    }
  else
    add_h5_filters (chooser);
  gtk_file_chooser_set_current_name (chooser, suggested);
  show_chooser (chooser);
}

/* ---- exports ---- */

gboolean
ps_window_export_plot (PsWindow *self, GFile *file, GError **error)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *title = NULL;
  GFile *model = ps_session_get_file (self->session, PS_SLOT_MODEL);
  g_autofree char *name = model ? g_file_get_basename (model) : NULL;
  PsPlotFormat format;
  PsPlot plot;

  if (path == NULL || !ps_plot_format_for_path (path, &format))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME,
                   _("%s: the plot can be saved as .png, .svg or .pdf"), path ? path : "?");
      return FALSE;
    }
  ps_chart_get_plot (self->chart, &plot);
  title = g_strdup_printf (_("Pruning defense on %s"), name ? name : _("the BadNet"));
  plot.title = title;
  return ps_plot_export (&plot, path, format, PLOT_WIDTH, PLOT_HEIGHT, error);
}

static gboolean
write_csv (GOutputStream *out, gconstpointer sweep, GError **error)
{
  return ps_sweep_write_csv (sweep, out, error);
}

gboolean
ps_window_export_csv (PsWindow *self, GFile *file, GError **error)
{
  g_autofree char *path = g_file_get_path (file);

  if (self->shown_sweep == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("There is no finished sweep to export"));
      return FALSE;
    }
  if (path == NULL)
    {
      g_autofree char *where = g_file_get_parse_name (file);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, _("%s: not a local file"), where);
      return FALSE;
    }
  /* The same atomic writer as every save: a failed export leaves the old file intact. */
  return ps_file_write_stream (path, write_csv, self->shown_sweep, error);
}

/* The format chosen in the dialog wins: its extension replaces one of another plot format
 * ("plot.png" with "SVG image" chosen becomes "plot.svg") and is added to a name without one. */
GFile *
_ps_window_plot_file (GFile *file, const char *ext)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *fixed = NULL;
  PsPlotFormat format;

  if (path == NULL || ext == NULL || g_str_has_suffix (path, ext))
    return g_object_ref (file);
  if (ps_plot_format_for_path (path, &format))
    *strrchr (path, '.') = '\0';
  fixed = g_strconcat (path, ext, NULL);
  return g_file_new_for_path (fixed);
}

static GFile *
with_extension (GtkFileChooser *chooser, GFile *file)
{
  GtkFileFilter *filter = gtk_file_chooser_get_filter (chooser);

  return _ps_window_plot_file (file, filter ? g_object_get_data (G_OBJECT (filter), "ps-ext") : NULL);
}

static void
export_plot_chosen (PsWindow *self, GFile *file, int tag)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *text = g_strdup_printf (_("Plot exported as %s"), name);

  if (!ps_window_export_plot (self, file, &error))
    ps_window_show_error (self, error);
  else
    _ps_window_notify (self, text);
}

static void
on_plot_chooser_response (GtkNativeDialog *native, int response, PsWindow *self)
{
  g_autoptr (GFile) chosen = NULL, file = NULL;

  if (response == GTK_RESPONSE_ACCEPT && (chosen = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (native))))
    {
      file = with_extension (GTK_FILE_CHOOSER (native), chosen);
      remember_folder (self, file);
      export_plot_chosen (self, file, 0);
    }
  gtk_native_dialog_destroy (native);
  g_object_unref (native);
}

static void
export_plot_action (GtkWidget *widget, const char *name, GVariant *param)
{
  PsWindow *self = PS_WINDOW (widget);
  GtkFileChooserNative *native = gtk_file_chooser_native_new (_("Export Plot"), GTK_WINDOW (self),
                                                              GTK_FILE_CHOOSER_ACTION_SAVE, _("_Export"), NULL);
  GtkFileChooser *chooser = GTK_FILE_CHOOSER (native);

  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  add_filter (chooser, _("PNG image"), "*.png", ".png");
  add_filter (chooser, _("SVG image"), "*.svg", ".svg");
  add_filter (chooser, _("PDF document"), "*.pdf", ".pdf");
  gtk_file_chooser_set_current_name (chooser, "pruning-sweep.png");
  start_in_last_folder (self, chooser);
  g_signal_connect (native, "response", G_CALLBACK (on_plot_chooser_response), self);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (native));
}

static void
export_csv_chosen (PsWindow *self, GFile *file, int tag)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *name = g_file_get_basename (file);
  g_autofree char *text = g_strdup_printf (_("CSV exported as %s"), name);

  if (!ps_window_export_csv (self, file, &error))
    ps_window_show_error (self, error);
  else
    _ps_window_notify (self, text);
}

static void
export_csv_action (GtkWidget *widget, const char *name, GVariant *param)
{
  GtkFileChooser *chooser = new_chooser (PS_WINDOW (widget), _("Export CSV"), GTK_FILE_CHOOSER_ACTION_SAVE,
                                         _("_Export"), export_csv_chosen, 0);

  add_filter (chooser, _("CSV table"), "*.csv", ".csv");
  gtk_file_chooser_set_current_name (chooser, "pruning-sweep.csv");
  show_chooser (chooser);
}

/* ---- the sweep ---- */

static void
cancel_action (GtkWidget *widget, const char *name, GVariant *param)
{
  ps_session_cancel (PS_WINDOW (widget)->session);
}

static void
run_action (GtkWidget *widget, const char *name, GVariant *param)
{
  ps_session_run (PS_WINDOW (widget)->session);
}

/* ---- recent files ---- */

void
_ps_window_update_recent (PsWindow *self)
{
  g_auto (GStrv) uris = self->settings ? g_settings_get_strv (self->settings, "recent-files")
                                        : g_strdupv (self->recent);

  g_menu_remove_all (self->recent_menu);
  for (int i = 0; uris != NULL && uris[i] != NULL; i++)
    {
      g_autoptr (GFile) file = g_file_new_for_uri (uris[i]);
      g_autofree char *label = g_file_get_basename (file);
      g_autoptr (GMenuItem) item = g_menu_item_new (label, NULL);

      g_menu_item_set_action_and_target (item, "win.open-recent", "s", uris[i]);
      g_menu_append_item (self->recent_menu, item);
    }
}

void
_ps_window_remember (PsWindow *self, GFile *file)
{
  g_auto (GStrv) old = NULL;
  g_autoptr (GStrvBuilder) builder = NULL;
  g_auto (GStrv) uris = NULL;
  g_autofree char *uri = g_file_get_uri (file);
  int kept = 1;

  /* Without the installed schema (run from the build tree) the list lives as long as the
   * window, so the Recent menu still lists what was opened. */
  old = self->settings ? g_settings_get_strv (self->settings, "recent-files") : g_strdupv (self->recent);
  if (old == NULL)
    old = g_new0 (char *, 1);
  builder = g_strv_builder_new ();
  g_strv_builder_add (builder, uri);
  for (int i = 0; old[i] != NULL && kept < MAX_RECENT; i++)
    if (!g_str_equal (old[i], uri))
      {
        g_strv_builder_add (builder, old[i]);
        kept++;
      }
  uris = g_strv_builder_end (builder);
  if (self->settings != NULL)
    g_settings_set_strv (self->settings, "recent-files", (const char * const *) uris);
  else
    {
      g_strfreev (self->recent);
      self->recent = g_strdupv (uris);
    }
  _ps_window_update_recent (self);
}

/* ---- sensitivity ---- */

void
_ps_window_update_actions (PsWindow *self)
{
  GtkWidget *widget = GTK_WIDGET (self);
  gboolean done = self->shown_sweep != NULL;
  gboolean busy = ps_session_get_busy (self->session);

  gtk_widget_action_set_enabled (widget, "win.save-g", done && self->step >= 0);
  gtk_widget_action_set_enabled (widget, "win.export-plot", done);
  gtk_widget_action_set_enabled (widget, "win.export-csv", done);
  gtk_widget_action_set_enabled (widget, "win.cancel", busy);
  gtk_widget_action_set_enabled (widget, "win.run", !busy && ps_session_can_run (self->session));
  gtk_widget_action_set_enabled (widget, "win.open-demo", ps_session_has_demo ());
}

void
_ps_window_class_actions_init (GtkWidgetClass *widget_class)
{
  gtk_widget_class_install_action (widget_class, "win.open-model", NULL, open_model_action);
  gtk_widget_class_install_action (widget_class, "win.open-data", "i", open_data_action);
  gtk_widget_class_install_action (widget_class, "win.open-folder", NULL, open_folder_action);
  gtk_widget_class_install_action (widget_class, "win.open-demo", NULL, open_demo_action);
  gtk_widget_class_install_action (widget_class, "win.open-recent", "s", open_recent_action);
  gtk_widget_class_install_action (widget_class, "win.save-g", NULL, save_g_action);
  gtk_widget_class_install_action (widget_class, "win.export-plot", NULL, export_plot_action);
  gtk_widget_class_install_action (widget_class, "win.export-csv", NULL, export_csv_action);
  gtk_widget_class_install_action (widget_class, "win.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "win.run", NULL, run_action);

  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_o, GDK_CONTROL_MASK, "win.open-model", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_o, GDK_CONTROL_MASK | GDK_SHIFT_MASK, "win.open-folder", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_s, GDK_CONTROL_MASK, "win.save-g", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_e, GDK_CONTROL_MASK, "win.export-plot", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_e, GDK_CONTROL_MASK | GDK_SHIFT_MASK, "win.export-csv", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_period, GDK_CONTROL_MASK, "win.cancel", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F5, 0, "win.run", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_r, GDK_CONTROL_MASK, "win.run", NULL);
}
