/* ps-chart.c: the widget around ps-plot.c — snapshot, pointer and keyboard */
#define G_LOG_DOMAIN "ps-chart"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>

#include "ps-chart.h"

struct _PsChart {
  GtkWidget  parent_instance;

  GArray    *rows;
  int        selected;
  int        hover;
  double     drop;
  char      *message;   /* said over the empty plot while there are no rows */
};

enum { STEP_CHOSEN, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (PsChart, ps_chart, GTK_TYPE_WIDGET)

static void
fill_plot (PsChart *self, PsPlot *plot)
{
  ps_plot_init (plot);
  plot->rows = (const PsSweepStep *) (gpointer) self->rows->data;
  plot->n_rows = self->rows->len;
  plot->selected = self->selected;
  plot->hover = self->hover;
  plot->drop = self->drop;
}

static void
ps_chart_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  PsChart *self = PS_CHART (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  GdkRGBA fg;
  PsPlot plot;
  cairo_t *cr;

  if (width <= 0 || height <= 0)
    return;
  /* The theme's text colour, so the chart follows light and dark styles. */
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  fill_plot (self, &plot);
  plot.fg[0] = fg.red, plot.fg[1] = fg.green, plot.fg[2] = fg.blue, plot.fg[3] = fg.alpha;
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  ps_plot_draw (&plot, cr, width, height);
  cairo_destroy (cr);
  if (self->rows->len == 0 && self->message != NULL)
    {
      g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, self->message);
      int tw, th;

      pango_layout_set_width (layout, MAX (1, width - 48) * PANGO_SCALE);
      pango_layout_set_alignment (layout, PANGO_ALIGN_CENTER);
      pango_layout_get_pixel_size (layout, &tw, &th);
      gtk_snapshot_save (snapshot);
      gtk_snapshot_translate (snapshot, &GRAPHENE_POINT_INIT ((width - tw) / 2.0, (height - th) / 2.0));
      fg.alpha *= 0.7;
      gtk_snapshot_append_layout (snapshot, layout, &fg);
      gtk_snapshot_restore (snapshot);
    }
}

/* The step under (x, y); Pango needs a cairo context to measure the layout. */
static int
step_at (PsChart *self, double x, double y)
{
  cairo_surface_t *surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cairo_t *cr = cairo_create (surface);
  PsPlot plot;
  int step;

  fill_plot (self, &plot);
  step = ps_plot_step_at (&plot, cr, gtk_widget_get_width (GTK_WIDGET (self)),
                          gtk_widget_get_height (GTK_WIDGET (self)), x, y);
  cairo_destroy (cr);
  cairo_surface_destroy (surface);
  return step;
}

static void
choose (PsChart *self, int step)
{
  if (step < 0 || step >= (int) self->rows->len)
    return;
  ps_chart_set_selected (self, step);
  g_signal_emit (self, signals[STEP_CHOSEN], 0, step);
}

static void
on_pressed (GtkGestureClick *gesture, int n_press, double x, double y, PsChart *self)
{
  gtk_widget_grab_focus (GTK_WIDGET (self));
  choose (self, step_at (self, x, y));
}

static void
on_motion (GtkEventControllerMotion *motion, double x, double y, PsChart *self)
{
  int step = step_at (self, x, y);

  if (step != self->hover)
    {
      self->hover = step;
      gtk_widget_queue_draw (GTK_WIDGET (self));
    }
}

static void
on_leave (GtkEventControllerMotion *motion, PsChart *self)
{
  self->hover = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static gboolean
on_key (GtkEventControllerKey *key, guint keyval, guint keycode, GdkModifierType state,
        PsChart *self)
{
  int n = self->rows->len, step = self->selected < 0 ? 0 : self->selected;

  switch (keyval)
    {
    case GDK_KEY_Left: case GDK_KEY_KP_Left:   step--; break;
    case GDK_KEY_Right: case GDK_KEY_KP_Right: step++; break;
    case GDK_KEY_Home: case GDK_KEY_KP_Home:   step = 0; break;
    case GDK_KEY_End: case GDK_KEY_KP_End:     step = n - 1; break;
    default: return FALSE;
    }
  choose (self, CLAMP (step, 0, n - 1));
  return TRUE;
}

static gboolean
on_query_tooltip (GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                  PsChart *self)
{
  int step = keyboard ? self->selected : step_at (self, x, y);
  g_autoptr (GString) text = NULL;
  const PsSweepStep *r;

  if (step < 0 || step >= (int) self->rows->len)
    return FALSE;
  r = &g_array_index (self->rows, PsSweepStep, step);
  text = g_string_new (NULL);
  g_string_append_printf (text, ngettext ("<b>%d channel pruned</b> (%.0f %%)",
                                          "<b>%d channels pruned</b> (%.0f %%)", r->pruned),
                          r->pruned, 100 * r->fraction);
  for (int s = 0; s < PS_N_SERIES; s++)
    if (!isnan (ps_plot_series_value (r, s)))
      g_string_append_printf (text, "\n%s: %.2f %%", ps_plot_series_label (s),
                              ps_plot_series_value (r, s));
  gtk_tooltip_set_markup (tooltip, text->str);
  return TRUE;
}

/* The plot area keeps PS_CHART_MIN_AREA pixels of height whatever the legend takes. */
static void
ps_chart_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                  int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  cairo_surface_t *surface;
  cairo_t *cr;
  PsPlot plot;
  double width;

  if (orientation == GTK_ORIENTATION_HORIZONTAL)
    {
      *minimum = 320;
      *natural = 720;
      return;
    }
  width = for_size > 0 ? for_size : 720;
  surface = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 1, 1);
  cr = cairo_create (surface);
  fill_plot (PS_CHART (widget), &plot);
  *minimum = (int) ceil (ps_plot_height_for (&plot, cr, width, PS_CHART_MIN_AREA));
  *natural = MAX (*minimum, (int) ceil (ps_plot_height_for (&plot, cr, width, 300)));
  cairo_destroy (cr);
  cairo_surface_destroy (surface);
}

static GtkSizeRequestMode
ps_chart_get_request_mode (GtkWidget *widget)
{
  return GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH;
}

static void
ps_chart_finalize (GObject *object)
{
  g_array_unref (PS_CHART (object)->rows);
  g_free (PS_CHART (object)->message);
  G_OBJECT_CLASS (ps_chart_parent_class)->finalize (object);
}

static void
ps_chart_class_init (PsChartClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = ps_chart_finalize;
  widget_class->snapshot = ps_chart_snapshot;
  widget_class->measure = ps_chart_measure;
  widget_class->get_request_mode = ps_chart_get_request_mode;

  /* The user chose a step by pointer or keyboard. */
  signals[STEP_CHOSEN] = g_signal_new ("step-chosen", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                       0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_INT);
  gtk_widget_class_set_css_name (widget_class, "pschart");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
ps_chart_init (PsChart *self)
{
  GtkGesture *click = gtk_gesture_click_new ();
  GtkEventController *motion = gtk_event_controller_motion_new ();
  GtkEventController *key = gtk_event_controller_key_new ();

  self->rows = g_array_new (FALSE, FALSE, sizeof (PsSweepStep));
  self->selected = -1;
  self->hover = -1;
  self->drop = NAN;

  g_signal_connect (click, "pressed", G_CALLBACK (on_pressed), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);
  g_signal_connect (key, "key-pressed", G_CALLBACK (on_key), self);
  gtk_widget_add_controller (GTK_WIDGET (self), key);

  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  g_signal_connect (self, "query-tooltip", G_CALLBACK (on_query_tooltip), self);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Pruning sweep chart; arrow keys choose a step"), -1);
}

GtkWidget *
ps_chart_new (void)
{
  return g_object_new (PS_TYPE_CHART, NULL);
}

void
ps_chart_set_rows (PsChart *self, const PsSweepStep *rows, int n_rows)
{
  g_return_if_fail (PS_IS_CHART (self));

  /* The legend (and so the height the chart needs) changes with the curves present:
   * when the first rows come and when the sweep is complete. */
  if (self->rows->len == 0 || n_rows <= 1 || n_rows != (int) self->rows->len + 1)
    gtk_widget_queue_resize (GTK_WIDGET (self));
  g_array_set_size (self->rows, 0);
  g_array_append_vals (self->rows, rows, n_rows);
  if (self->selected >= n_rows)
    self->selected = -1;
  if (self->hover >= n_rows)
    self->hover = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
ps_chart_set_drop (PsChart *self, double drop)
{
  g_return_if_fail (PS_IS_CHART (self));

  self->drop = drop;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
ps_chart_set_selected (PsChart *self, int step)
{
  g_return_if_fail (PS_IS_CHART (self));

  if (self->selected == step)
    return;
  self->selected = step;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

int
ps_chart_get_selected (PsChart *self)
{
  return self->selected;
}

void
ps_chart_get_plot (PsChart *self, PsPlot *plot)
{
  fill_plot (self, plot);
  plot->hover = -1;
  plot->bg[3] = 1.0;
}

void
ps_chart_set_message (PsChart *self, const char *message)
{
  g_return_if_fail (PS_IS_CHART (self));

  if (g_strcmp0 (self->message, message) == 0)
    return;
  g_free (self->message);
  self->message = g_strdup (message);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}
