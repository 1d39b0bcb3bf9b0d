/* ps-window.c: wires the session to the chart, slider, panels and sources bar.
 * Every number shown comes from the session's rows or its finished, immutable sweep; moving
 * the slider only looks values up. */
#define G_LOG_DOMAIN "ps-window"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "ps-explain.h"
#include "ps-window-private.h"

G_DEFINE_FINAL_TYPE (PsWindow, ps_window, GTK_TYPE_APPLICATION_WINDOW)

#define SCHEMA_ID APPLICATION_ID

/* ---- errors ---- */

/* A human sentence in front, the technical message behind "Details". */
void
ps_window_show_error (PsWindow *self, const GError *error)
{
  g_autofree char *sentence = NULL;

  g_return_if_fail (PS_IS_WINDOW (self));

  sentence = ps_explain_error (error);
  gtk_info_bar_set_message_type (self->error_bar, GTK_MESSAGE_ERROR);
  gtk_label_set_text (self->error_label, sentence);
  gtk_label_set_text (self->error_detail_label, error->message);
  gtk_expander_set_expanded (self->error_expander, FALSE);
  gtk_info_bar_set_revealed (self->error_bar, TRUE);
}

static void
clear_error (PsWindow *self)
{
  gtk_info_bar_set_revealed (self->error_bar, FALSE);
}

static void
on_error_bar_response (PsWindow *self, int response)
{
  clear_error (self);
}

void
_ps_window_notify (PsWindow *self, const char *text)
{
  AdwToast *toast = adw_toast_new (text);

  g_free (self->last_notice);
  self->last_notice = g_strdup (text);
  adw_toast_set_timeout (toast, 4);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

/* ---- the chosen point ---- */

/* The headline and numbers above the chart, so that they stay in view in any window. */
static void
update_verdict_bar (PsWindow *self)
{
  const PsVerdict *v = self->verdict;
  g_autofree char *markup = NULL;

  /* Beside the chart the panel says it all; when the panel folds away this line stays. */
  gtk_widget_set_visible (GTK_WIDGET (self->verdict_bar), v != NULL && adw_flap_get_folded (self->flap));
  if (v == NULL)
    return;
  markup = g_markup_printf_escaped ("<b>%s%s</b>  %s", v->notes->len ? "⚠ " : "", v->headline, v->summary);
  gtk_label_set_markup (self->verdict_bar, markup);
}

/* Below this width (logical pixels) the numbers fold over the chart. */
#define FOLD_BELOW 860

/* AdwFlap's own folding happens inside the window's layout and leaves the header bar
 * unallocated for a frame (GTK warns); folding from an idle after a resize does not. */
static gboolean
fold_idle (gpointer data)
{
  PsWindow *self = data;
  int width = gtk_widget_get_width (GTK_WIDGET (self)), height;

  self->fold_idle = 0;
  if (width <= 0)
    gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  adw_flap_set_fold_policy (self->flap, width < FOLD_BELOW ? ADW_FLAP_FOLD_POLICY_ALWAYS
                                                           : ADW_FLAP_FOLD_POLICY_NEVER);
  update_verdict_bar (self);
  return G_SOURCE_REMOVE;
}

static void
on_resized (PsWindow *self)
{
  if (self->fold_idle == 0)
    self->fold_idle = g_idle_add (fold_idle, self);
}

static void
on_folded (PsWindow *self)
{
  update_verdict_bar (self);
}

/* Save G is the highlighted action only when nothing stands against it. */
static void
update_save_button (PsWindow *self)
{
  if (self->verdict != NULL && self->verdict->suggest_save)
    gtk_widget_add_css_class (self->save_button, "suggested-action");
  else
    gtk_widget_remove_css_class (self->save_button, "suggested-action");
}

static void
choose_step (PsWindow *self, int step, double drop)
{
  PsVerdictOptions options;

  self->step = step;
  self->drop = drop;
  g_clear_pointer (&self->verdict, ps_verdict_free);
  if (self->shown_sweep != NULL && step >= 0)
    {
      ps_session_get_verdict_options (self->session, &options);
      options.drop = drop;
      self->verdict = ps_verdict_new (self->shown_sweep, step, &options);
    }
  update_save_button (self);
  update_verdict_bar (self);
  ps_chart_set_selected (self->chart, step);
  ps_stats_panel_set_point (self->stats_panel, step, self->verdict,
                            !ps_session_get_sweep_current (self->session));
  ps_gallery_set_step (self->gallery, step);
  ps_channel_view_set_pruned (self->channel_view, MAX (step, 0));
}

static void
on_drop_changed (PsWindow *self, GtkAdjustment *adjustment)
{
  double x = gtk_adjustment_get_value (adjustment);
  int step;

  ps_chart_set_drop (self->chart, x);
  if (self->updating || self->shown_sweep == NULL)
    return;
  step = ps_sweep_stop_step (self->shown_sweep, x);
  if (step < 0)
    step = ps_sweep_n_steps (self->shown_sweep) - 1;
  choose_step (self, step, x);
}

static void
set_drop_quietly (PsWindow *self, double x)
{
  self->updating = TRUE;
  gtk_adjustment_set_value (self->drop_adjustment, x);
  self->updating = FALSE;
  ps_chart_set_drop (self->chart, x);
}

static void
on_step_chosen (PsWindow *self, int step, PsChart *chart)
{
  const PsSweepStep *r, *r0;

  if (self->shown_sweep == NULL)
    return;
  r = ps_sweep_get_step (self->shown_sweep, step);
  r0 = ps_sweep_get_step (self->shown_sweep, 0);
  /* Keep the reference line on the chosen point's accuracy. */
  set_drop_quietly (self, MAX (0, r0->valid_acc - r->valid_acc));
  choose_step (self, step, NAN);
}

/* Lets the slider reach every drop the sweep shows, in tenths of a point, and keeps the
 * chosen X inside the track even when no step reaches it (the verdict then says so). Marks
 * under the track show the X values at which the step changes. */
static void
fit_drop_range (PsWindow *self, const PsSweep *sweep)
{
  double base = ps_sweep_get_step (sweep, 0)->valid_acc, worst = 0, reached = 0;
  double x = gtk_adjustment_get_value (self->drop_adjustment);

  gtk_scale_clear_marks (self->drop_scale);
  for (int k = 0; k < ps_sweep_n_steps (sweep); k++)
    {
      double d = base - ps_sweep_get_step (sweep, k)->valid_acc;

      /* A step is the stop for X in (reached, d]: mark where a new step begins. */
      if (d > reached)
        {
          gtk_scale_add_mark (self->drop_scale, d, GTK_POS_BOTTOM, NULL);
          reached = d;
        }
      worst = MAX (worst, d);
    }
  self->updating = TRUE;
  gtk_adjustment_set_upper (self->drop_adjustment, MAX (MAX (1.0, ceil (worst * 10) / 10), x));
  self->updating = FALSE;
}

/* The session's finished sweep changed (a new one, or none while another runs). */
static void
show_sweep (PsWindow *self, const PsSweep *sweep)
{
  const PsDataset *sets[PS_N_SETS];

  for (int k = 0; k < PS_N_SETS; k++)
    sets[k] = ps_session_get_sweep_data (self->session, k);
  self->shown_sweep = sweep;
  self->step = -1;
  g_clear_pointer (&self->verdict, ps_verdict_free);
  ps_stats_panel_set_sweep (self->stats_panel, sweep);
  ps_gallery_set_sweep (self->gallery, sweep, sets);
  ps_channel_view_set_sweep (self->channel_view, sweep);
  ps_chart_set_selected (self->chart, -1);
  update_save_button (self);
  update_verdict_bar (self);
  if (sweep == NULL)
    {
      gtk_scale_clear_marks (self->drop_scale);
      return;
    }
  fit_drop_range (self, sweep);
  on_drop_changed (self, self->drop_adjustment);
}

/* ---- sources and progress ---- */

static void
show_source (GtkLabel *label, const char *title, GFile *file)
{
  g_autofree char *name = file ? g_file_get_basename (file) : NULL;
  g_autofree char *tooltip = file ? g_file_get_parse_name (file) : NULL;
  g_autofree char *markup = g_markup_printf_escaped ("<b>%s</b>  %s", title, name ? name : _("none"));

  gtk_label_set_markup (label, markup);
  gtk_widget_set_tooltip_text (GTK_WIDGET (label), tooltip);
  gtk_widget_set_opacity (GTK_WIDGET (label), file ? 1.0 : 0.55);
}

static void
update_sources (PsWindow *self)
{
  double scale = ps_session_get_input_scale (self->session);

  show_source (self->model_label, _("Model"), ps_session_get_file (self->session, PS_SLOT_MODEL));
  show_source (self->valid_label, _("Validation"), ps_session_get_file (self->session, PS_SLOT_VALID));
  show_source (self->test_label, _("Test"), ps_session_get_file (self->session, PS_SLOT_TEST));
  show_source (self->poisoned_label, _("Poisoned"), ps_session_get_file (self->session, PS_SLOT_POISONED));
  self->updating = TRUE;
  if (!isnan (scale))
    gtk_drop_down_set_selected (self->scale_dropdown, scale < 0.5 ? 1 : 0);
  self->updating = FALSE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->scale_dropdown), !isnan (scale));
}

static void
on_scale_selected (PsWindow *self, GParamSpec *pspec, GtkDropDown *dropdown)
{
  if (self->updating)
    return;
  ps_session_set_input_scale (self->session, gtk_drop_down_get_selected (dropdown) == 1 ? 1.0 / 255 : 1.0);
}

/* ---- the layer to prune ---- */

/* The chooser lists the feature maps `prunescope-cli info` lists, the model's default marked
 * and the session's layer selected; it is rebuilt only when the candidates change. */
static void
update_layers (PsWindow *self)
{
  const PsModel *m = ps_session_get_model (self->session);
  const char *chosen = ps_session_get_layer (self->session);
  int dflt = m ? ps_model_default_layer (m) : -1;
  g_autoptr (GStrvBuilder) names = g_strv_builder_new ();
  g_autoptr (GStrvBuilder) items = g_strv_builder_new ();
  g_auto (GStrv) new_names = NULL, new_items = NULL;
  guint n = g_list_model_get_n_items (G_LIST_MODEL (self->layer_list));
  guint selected = GTK_INVALID_LIST_POSITION;
  gboolean same;

  for (int i = 0; m != NULL && i < m->n_layers; i++)
    if (ps_model_is_prunable (m, i))
      {
        const PsLayer *l = m->layers[i];
        g_autofree char *item = i == dflt
                                ? g_strdup_printf (_("%s  %d×%d×%d (default)"), l->name, l->out.c, l->out.h, l->out.w)
                                : g_strdup_printf ("%s  %d×%d×%d", l->name, l->out.c, l->out.h, l->out.w);

        g_strv_builder_add (names, l->name);
        g_strv_builder_add (items, item);
      }
  new_names = g_strv_builder_end (names);
  new_items = g_strv_builder_end (items);

  /* another model with the same names may have other shapes: compare what is shown */
  same = self->layer_names != NULL && g_strv_length (new_items) == n;
  for (guint k = 0; same && k < n; k++)
    same = g_str_equal (new_items[k], gtk_string_list_get_string (self->layer_list, k));
  self->updating = TRUE;
  if (!same)
    {
      gtk_string_list_splice (self->layer_list, 0, n, (const char * const *) new_items);
      g_strfreev (self->layer_names);
      self->layer_names = g_steal_pointer (&new_names);
    }
  for (guint k = 0; chosen != NULL && self->layer_names[k] != NULL; k++)
    if (g_str_equal (self->layer_names[k], chosen))
      selected = k;
  gtk_drop_down_set_selected (self->layer_dropdown, selected);
  self->updating = FALSE;
  gtk_widget_set_sensitive (GTK_WIDGET (self->layer_dropdown), self->layer_names[0] != NULL);
}

static void
on_layer_selected (PsWindow *self, GParamSpec *pspec, GtkDropDown *dropdown)
{
  guint k = gtk_drop_down_get_selected (dropdown);
  g_autoptr (GError) error = NULL;

  if (self->updating || self->layer_names == NULL || k >= g_strv_length (self->layer_names))
    return;
  if (!ps_session_set_layer (self->session, self->layer_names[k], &error))
    ps_window_show_error (self, error);
}

void
ps_window_set_layer (PsWindow *self, const char *name)
{
  g_return_if_fail (PS_IS_WINDOW (self));

  for (guint k = 0; self->layer_names != NULL && self->layer_names[k] != NULL; k++)
    if (g_str_equal (self->layer_names[k], name))
      {
        gtk_drop_down_set_selected (self->layer_dropdown, k);
        return;
      }
  g_warning ("no layer “%s” in the chooser", name);
}

static void
update_progress (PsWindow *self)
{
  gboolean busy = ps_session_get_busy (self->session);
  double fraction = ps_session_get_fraction (self->session);
  const PsSweepStep *rows;
  int n_rows;

  gtk_revealer_set_reveal_child (self->progress_revealer, busy);
  gtk_label_set_text (self->activity_label, busy ? ps_session_get_activity (self->session) : "");
  if (fraction < 0)
    {
      gtk_progress_bar_pulse (self->progress_bar);
      gtk_progress_bar_set_text (self->progress_bar, NULL);
    }
  else
    {
      g_autofree char *text = g_strdup_printf ("%.0f %%", 100 * fraction);
      gtk_progress_bar_set_fraction (self->progress_bar, fraction);
      gtk_progress_bar_set_text (self->progress_bar, text);
    }
  rows = ps_session_get_rows (self->session, &n_rows);
  ps_chart_set_rows (self->chart, rows, n_rows);
  /* The first pass runs B on every image before the first point exists: say so. */
  if (busy && ps_session_get_model (self->session) != NULL && fraction >= 0)
    ps_chart_set_message (self->chart, _("Running B on every loaded image to rank the channels; the "
                                         "curves appear when this first pass is done."));
  else if (busy)
    ps_chart_set_message (self->chart, _("Loading the model and the images…"));
  else
    ps_chart_set_message (self->chart, NULL);
  gtk_stack_set_visible_child_name (self->main_stack,
                                    ps_session_get_model (self->session) || busy || n_rows ? "sweep" : "empty");
}

static void
update_message (PsWindow *self)
{
  const char *message;

  if (ps_session_get_busy (self->session))
    message = ps_session_get_activity (self->session);
  else if (ps_session_can_run (self->session))
    message = _("The sweep did not finish. Run it again from the main menu.");
  else
    message = _("Open a model and clean validation data to run the sweep.");
  ps_stats_panel_set_message (self->stats_panel, message);
}

/* The model's name, and what happens to it. */
static void
update_title (PsWindow *self)
{
  GFile *model = ps_session_get_file (self->session, PS_SLOT_MODEL);
  g_autofree char *base = model ? g_file_get_basename (model) : NULL;
  const char *layer = ps_session_get_layer (self->session);
  const char *activity = ps_session_get_busy (self->session) ? ps_session_get_activity (self->session) : NULL;
  g_autofree char *title = NULL;
  g_autofree char *name = base && layer ? g_strdup_printf (_("%s, layer %s"), base, layer)
                                        : g_steal_pointer (&base);

  if (name != NULL && activity != NULL)
    title = g_strdup_printf ("%s — %s — Prunescope", name, activity);
  else if (name != NULL)
    title = g_strdup_printf ("%s — Prunescope", name);
  else if (activity != NULL)
    title = g_strdup_printf ("%s — Prunescope", activity);
  else
    title = g_strdup ("Prunescope");
  gtk_window_set_title (GTK_WINDOW (self), title);
}

static void
on_session_progress (PsWindow *self, PsSession *session)
{
  const PsSweep *sweep = ps_session_get_sweep (session);

  if (sweep != self->shown_sweep)
    show_sweep (self, sweep);
  if (sweep == NULL)
    update_message (self);
  else if (self->step >= 0)
    choose_step (self, self->step, self->drop); /* the stale note may have changed */
  update_progress (self);
  update_title (self);
  _ps_window_update_actions (self);
}

static void
on_session_finished (PsWindow *self, PsSession *session)
{
  clear_error (self);
  on_session_progress (self, session);
}

static void
on_session_changed (PsWindow *self, PsSession *session)
{
  /* The files that did load replace the problem an earlier one had. */
  clear_error (self);
  update_sources (self);
  update_layers (self);
  update_title (self);
  _ps_window_update_actions (self);
}

static void
on_session_failed (PsWindow *self, const GError *error, PsSession *session)
{
  ps_window_show_error (self, error);
}

/* ---- dropping files ---- */

static gboolean
on_drop (GtkDropTarget *target, const GValue *value, double x, double y, PsWindow *self)
{
  GSList *list = g_value_get_boxed (value);
  g_autoptr (GPtrArray) files = g_ptr_array_new ();

  for (GSList *l = list; l != NULL; l = l->next)
    g_ptr_array_add (files, l->data);
  if (files->len == 0)
    return FALSE;
  ps_window_open_files (self, (GFile **) files->pdata, files->len);
  return TRUE;
}

/* ---- window state ---- */

/* A window saved on a larger screen (or the template's default) never opens larger than
 * this one; the layout below adapts to what is left. */
static void
fit_to_screen (PsWindow *self)
{
  GListModel *monitors = gdk_display_get_monitors (gtk_widget_get_display (GTK_WIDGET (self)));
  g_autoptr (GdkMonitor) monitor = g_list_model_get_n_items (monitors) ? g_list_model_get_item (monitors, 0) : NULL;
  GdkRectangle area;
  int width, height;

  if (monitor == NULL)
    return;
  gdk_monitor_get_geometry (monitor, &area);
  gtk_window_get_default_size (GTK_WINDOW (self), &width, &height);
  /* Room for panels and window decorations. */
  width = MIN (width, area.width - 32);
  height = MIN (height, area.height - 64);
  gtk_window_set_default_size (GTK_WINDOW (self), MAX (width, 360), MAX (height, 300));
}

static void
restore_state (PsWindow *self)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr (GSettingsSchema) schema = source ? g_settings_schema_source_lookup (source, SCHEMA_ID, TRUE) : NULL;

  /* Run from the build tree the schema may be missing; the window then forgets its state. */
  if (schema == NULL)
    {
      fit_to_screen (self);
      return;
    }
  self->settings = g_settings_new (SCHEMA_ID);
  gtk_window_set_default_size (GTK_WINDOW (self), g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  fit_to_screen (self);
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  gtk_adjustment_set_value (self->drop_adjustment, g_settings_get_double (self->settings, "drop"));
}

static gboolean
ps_window_close_request (GtkWindow *window)
{
  PsWindow *self = PS_WINDOW (window);
  int width, height;

  if (self->settings != NULL)
    {
      gtk_window_get_default_size (window, &width, &height);
      g_settings_set_int (self->settings, "window-width", width);
      g_settings_set_int (self->settings, "window-height", height);
      g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));
      g_settings_set_double (self->settings, "drop", gtk_adjustment_get_value (self->drop_adjustment));
    }
  /* A running sweep stops at its next step; its result is then ignored. */
  ps_session_cancel (self->session);
  return GTK_WINDOW_CLASS (ps_window_parent_class)->close_request (window);
}

/* ---- public ---- */

void
ps_window_open_files (PsWindow *self, GFile **files, int n_files)
{
  g_return_if_fail (PS_IS_WINDOW (self));

  gtk_info_bar_set_revealed (self->error_bar, FALSE);
  for (int i = 0; i < n_files; i++)
    _ps_window_remember (self, files[i]);
  ps_session_open (self->session, files, n_files, PS_SLOT_AUTO);
}

void
ps_window_open_demo (PsWindow *self)
{
  g_return_if_fail (PS_IS_WINDOW (self));

  if (ps_session_has_demo ())
    ps_session_open_demo (self->session);
}

PsSession *
ps_window_get_session (PsWindow *self)
{
  return self->session;
}

int
ps_window_get_step (PsWindow *self)
{
  return self->shown_sweep ? self->step : -1;
}

double
ps_window_get_drop (PsWindow *self)
{
  return self->drop;
}

/* ---- GObject ---- */

static void
ps_window_dispose (GObject *object)
{
  PsWindow *self = PS_WINDOW (object);

  if (self->session != NULL)
    {
      for (guint i = 0; i < G_N_ELEMENTS (self->session_handlers); i++)
        g_clear_signal_handler (&self->session_handlers[i], self->session);
      ps_session_cancel (self->session);
    }
  self->shown_sweep = NULL;
  g_clear_pointer (&self->verdict, ps_verdict_free);
  g_clear_handle_id (&self->fold_idle, g_source_remove);
  g_clear_pointer (&self->last_notice, g_free);
  g_clear_object (&self->last_folder);
  g_clear_pointer (&self->recent, g_strfreev);
  g_clear_pointer (&self->layer_names, g_strfreev);
  gtk_widget_dispose_template (GTK_WIDGET (self), PS_TYPE_WINDOW);
  g_clear_object (&self->session);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (ps_window_parent_class)->dispose (object);
}

static void
ps_window_class_init (PsWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = ps_window_dispose;
  window_class->close_request = ps_window_close_request;

  g_type_ensure (PS_TYPE_CHART);
  g_type_ensure (PS_TYPE_GALLERY);
  g_type_ensure (PS_TYPE_CHANNEL_VIEW);
  g_type_ensure (PS_TYPE_STATS_PANEL);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/prunescope/Prunescope/ps-window.ui");
  gtk_widget_class_bind_template_child (widget_class, PsWindow, save_button);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, error_bar);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, error_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, error_expander);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, error_detail_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, model_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, valid_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, test_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, poisoned_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, scale_dropdown);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, layer_dropdown);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, activity_label);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, flap);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, verdict_bar);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, chart);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, drop_scale);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, drop_adjustment);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, gallery);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, channel_view);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, stats_panel);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, recent_menu);
  gtk_widget_class_bind_template_child (widget_class, PsWindow, demo_button);
  gtk_widget_class_bind_template_callback (widget_class, on_error_bar_response);
  gtk_widget_class_bind_template_callback (widget_class, on_scale_selected);
  gtk_widget_class_bind_template_callback (widget_class, on_layer_selected);

  _ps_window_class_actions_init (widget_class);
}

static void
connect_session (PsWindow *self)
{
  self->session_handlers[0] = g_signal_connect_swapped (self->session, "progress",
                                                        G_CALLBACK (on_session_progress), self);
  self->session_handlers[1] = g_signal_connect_swapped (self->session, "sweep-finished",
                                                        G_CALLBACK (on_session_finished), self);
  self->session_handlers[2] = g_signal_connect_swapped (self->session, "changed",
                                                        G_CALLBACK (on_session_changed), self);
  self->session_handlers[3] = g_signal_connect_swapped (self->session, "failed",
                                                        G_CALLBACK (on_session_failed), self);
}

static void
ps_window_init (PsWindow *self)
{
  GtkDropTarget *target;

  self->step = -1;
  self->drop = NAN;
  self->session = ps_session_new ();
  gtk_widget_init_template (GTK_WIDGET (self));
  /* The window's own child: bound by hand, as disposing the template would unparent it twice. */
  self->toast_overlay = ADW_TOAST_OVERLAY (gtk_window_get_child (GTK_WINDOW (self)));

  g_signal_connect_swapped (self->drop_adjustment, "value-changed", G_CALLBACK (on_drop_changed), self);
  g_signal_connect_swapped (self->chart, "step-chosen", G_CALLBACK (on_step_chosen), self);
  g_signal_connect_swapped (self->flap, "notify::folded", G_CALLBACK (on_folded), self);
  g_signal_connect_swapped (self, "notify::default-width", G_CALLBACK (on_resized), self);
  g_signal_connect_swapped (self, "notify::maximized", G_CALLBACK (on_resized), self);
  g_signal_connect_swapped (self, "notify::fullscreened", G_CALLBACK (on_resized), self);
  connect_session (self);

  target = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (target, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (target));

  gtk_widget_set_visible (self->demo_button, ps_session_has_demo ());
  self->layer_list = gtk_string_list_new (NULL);
  gtk_drop_down_set_model (self->layer_dropdown, G_LIST_MODEL (self->layer_list));
  g_object_unref (self->layer_list); /* the dropdown holds it */
  {
    /* typing in the chooser's search entry filters by name */
    g_autoptr (GtkExpression) by_name = gtk_property_expression_new (GTK_TYPE_STRING_OBJECT, NULL, "string");
    gtk_drop_down_set_expression (self->layer_dropdown, by_name);
  }
  restore_state (self);
  fold_idle (self);
  ps_chart_set_drop (self->chart, gtk_adjustment_get_value (self->drop_adjustment));
  update_sources (self);
  update_layers (self);
  on_session_progress (self, self->session);
  _ps_window_update_recent (self);
}

PsWindow *
ps_window_new (GtkApplication *application)
{
  return g_object_new (PS_TYPE_WINDOW, "application", application, NULL);
}
