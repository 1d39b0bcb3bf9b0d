/* ps-channel-view.c: bars of the mean activation per channel, in pruning order (lowest clean
 * activation first), clean and poisoned side by side. Channels the defense removes are shaded:
 * when the poisoned bars stand tall where the clean ones are low, pruning reaches the backdoor;
 * when they sit among the last channels, it does not. */
#define G_LOG_DOMAIN "ps-channel-view"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <pango/pangocairo.h>

#include "ps-channel-view.h"
#include "ps-plot.h"

struct _PsChannelView {
  GtkWidget  parent_instance;

  int        n_channels;
  int       *order;
  double    *clean;     /* by channel */
  double    *poisoned;  /* by channel, NULL without poisoned data */
  char      *layer;
  int        pruned;
};

G_DEFINE_FINAL_TYPE (PsChannelView, ps_channel_view, GTK_TYPE_WIDGET)

typedef struct {
  double x0, y0, x1, y1, max;
} Area;

static void
set_fg (cairo_t *cr, const GdkRGBA *fg, double alpha)
{
  cairo_set_source_rgba (cr, fg->red, fg->green, fg->blue, fg->alpha * alpha);
}

static void
show_text (GtkWidget *widget, cairo_t *cr, const char *text, double x, double y, double ax)
{
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);
  int w, h;

  pango_layout_get_pixel_size (layout, &w, &h);
  cairo_move_to (cr, x - ax * w, y);
  pango_cairo_show_layout (cr, layout);
}

static double
max_mean (PsChannelView *self)
{
  double max = 0;

  for (int c = 0; c < self->n_channels; c++)
    {
      max = MAX (max, self->clean[c]);
      if (self->poisoned)
        max = MAX (max, self->poisoned[c]);
    }
  return max > 0 ? max : 1;
}

static void
get_area (PsChannelView *self, Area *a)
{
  int width = gtk_widget_get_width (GTK_WIDGET (self)), height = gtk_widget_get_height (GTK_WIDGET (self));

  a->x0 = 56;
  a->x1 = MAX (a->x0 + 1, width - 12);
  a->y0 = 36;
  a->y1 = MAX (a->y0 + 1, height - 30);
  a->max = max_mean (self);
}

static void
draw_bars (PsChannelView *self, cairo_t *cr, const Area *a)
{
  double slot = (a->x1 - a->x0) / self->n_channels;
  double bar = self->poisoned ? slot * 0.4 : slot * 0.7;
  double rgb[3];

  for (int rank = 0; rank < self->n_channels; rank++)
    {
      int c = self->order[rank];
      double x = a->x0 + rank * slot + slot * 0.1;
      double h = self->clean[c] / a->max * (a->y1 - a->y0);

      ps_plot_series_color (PS_SERIES_VALID_ACC, rgb);
      cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], rank < self->pruned ? 0.45 : 1.0);
      cairo_rectangle (cr, x, a->y1 - h, bar, h);
      cairo_fill (cr);
      if (self->poisoned == NULL)
        continue;
      h = self->poisoned[c] / a->max * (a->y1 - a->y0);
      ps_plot_series_color (PS_SERIES_ASR, rgb);
      cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], rank < self->pruned ? 0.45 : 1.0);
      cairo_rectangle (cr, x + bar, a->y1 - h, bar, h);
      cairo_fill (cr);
    }
}

static void
draw_pruned_band (PsChannelView *self, GtkWidget *widget, cairo_t *cr, const Area *a, const GdkRGBA *fg)
{
  double slot = (a->x1 - a->x0) / self->n_channels;
  double x = a->x0 + self->pruned * slot;
  g_autofree char *label = NULL;

  if (self->pruned <= 0)
    return;
  set_fg (cr, fg, 0.08);
  cairo_rectangle (cr, a->x0, a->y0, x - a->x0, a->y1 - a->y0);
  cairo_fill (cr);
  set_fg (cr, fg, 0.7);
  cairo_set_line_width (cr, 1.5);
  cairo_move_to (cr, round (x) + 0.5, a->y0);
  cairo_line_to (cr, round (x) + 0.5, a->y1);
  cairo_stroke (cr);
  label = g_strdup_printf (ngettext ("%d pruned", "%d pruned", self->pruned), self->pruned);
  show_text (widget, cr, label, x - 4, a->y0 + 2, 1.0);
}

static void
draw_axes_and_legend (PsChannelView *self, GtkWidget *widget, cairo_t *cr, const Area *a, const GdkRGBA *fg)
{
  g_autofree char *top = g_strdup_printf ("%.3g", a->max);
  g_autofree char *title = g_strdup_printf (_("Mean activation of “%s” per channel, in pruning order"),
                                            self->layer);
  double rgb[3], x = a->x0;

  set_fg (cr, fg, 0.6);
  cairo_set_line_width (cr, 1);
  cairo_move_to (cr, a->x0 - 0.5, a->y0);
  cairo_line_to (cr, a->x0 - 0.5, a->y1 + 0.5);
  cairo_line_to (cr, a->x1, a->y1 + 0.5);
  cairo_stroke (cr);
  set_fg (cr, fg, 0.75);
  show_text (widget, cr, top, a->x0 - 6, a->y0 - 8, 1.0);
  show_text (widget, cr, "0", a->x0 - 6, a->y1 - 8, 1.0);
  show_text (widget, cr, _("first pruned"), a->x0, a->y1 + 4, 0.0);
  show_text (widget, cr, _("last pruned"), a->x1, a->y1 + 4, 1.0);
  show_text (widget, cr, title, a->x0, 4, 0.0);

  for (int s = 0; s < 2; s++)
    {
      const char *name = s == 0 ? _("clean validation") : _("poisoned");
      g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, name);
      int w, h;

      if (s == 1 && self->poisoned == NULL)
        break;
      pango_layout_get_pixel_size (layout, &w, &h);
      ps_plot_series_color (s == 0 ? PS_SERIES_VALID_ACC : PS_SERIES_ASR, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle (cr, x, 24 - 5, 10, 10);
      cairo_fill (cr);
      set_fg (cr, fg, 0.9);
      cairo_move_to (cr, x + 14, 24 - h / 2.0);
      pango_cairo_show_layout (cr, layout);
      x += 14 + w + 16;
    }
}

static void
ps_channel_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  PsChannelView *self = PS_CHANNEL_VIEW (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  GdkRGBA fg;
  Area a;
  cairo_t *cr;

  if (self->n_channels == 0 || width <= 0 || height <= 0)
    return;
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  get_area (self, &a);
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  draw_pruned_band (self, widget, cr, &a, &fg);
  draw_bars (self, cr, &a);
  draw_axes_and_legend (self, widget, cr, &a, &fg);
  cairo_destroy (cr);
}

static gboolean
on_query_tooltip (GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                  PsChannelView *self)
{
  g_autofree char *text = NULL;
  Area a;
  int rank, c;

  if (self->n_channels == 0)
    return FALSE;
  get_area (self, &a);
  rank = (int) floor ((x - a.x0) / (a.x1 - a.x0) * self->n_channels);
  if (rank < 0 || rank >= self->n_channels || y < a.y0 || y > a.y1)
    return FALSE;
  c = self->order[rank];
  if (self->poisoned && rank < self->pruned)
    text = g_strdup_printf (_("Channel %d, pruned: mean activation %.4g on clean, %.4g on poisoned data"),
                            c, self->clean[c], self->poisoned[c]);
  else if (self->poisoned)
    text = g_strdup_printf (_("Channel %d, kept: mean activation %.4g on clean, %.4g on poisoned data"),
                            c, self->clean[c], self->poisoned[c]);
  else if (rank < self->pruned)
    text = g_strdup_printf (_("Channel %d, pruned: mean activation %.4g on clean data"), c, self->clean[c]);
  else
    text = g_strdup_printf (_("Channel %d, kept: mean activation %.4g on clean data"), c, self->clean[c]);
  gtk_tooltip_set_text (tooltip, text);
  return TRUE;
}

static void
ps_channel_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                         int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 160;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 600 : 240;
}

static void
clear (PsChannelView *self)
{
  g_clear_pointer (&self->order, g_free);
  g_clear_pointer (&self->clean, g_free);
  g_clear_pointer (&self->poisoned, g_free);
  g_clear_pointer (&self->layer, g_free);
  self->n_channels = 0;
}

static void
ps_channel_view_finalize (GObject *object)
{
  clear (PS_CHANNEL_VIEW (object));
  G_OBJECT_CLASS (ps_channel_view_parent_class)->finalize (object);
}

static void
ps_channel_view_class_init (PsChannelViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->finalize = ps_channel_view_finalize;
  widget_class->snapshot = ps_channel_view_snapshot;
  widget_class->measure = ps_channel_view_measure;
  gtk_widget_class_set_css_name (widget_class, "pschannelview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
ps_channel_view_init (PsChannelView *self)
{
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  g_signal_connect (self, "query-tooltip", G_CALLBACK (on_query_tooltip), self);
}

GtkWidget *
ps_channel_view_new (void)
{
  return g_object_new (PS_TYPE_CHANNEL_VIEW, NULL);
}

void
ps_channel_view_set_sweep (PsChannelView *self, const PsSweep *sweep)
{
  const double *poisoned;
  int n;

  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  clear (self);
  if (sweep != NULL)
    {
      n = self->n_channels = ps_sweep_n_channels (sweep);
      self->order = g_memdup2 (ps_sweep_order (sweep), sizeof (int) * n);
      self->clean = g_memdup2 (ps_sweep_channel_means (sweep, PS_SET_VALID), sizeof (double) * n);
      poisoned = ps_sweep_channel_means (sweep, PS_SET_POISONED);
      self->poisoned = poisoned ? g_memdup2 (poisoned, sizeof (double) * n) : NULL;
      self->layer = g_strdup (ps_sweep_layer_name (sweep));
    }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
ps_channel_view_set_pruned (PsChannelView *self, int pruned)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  self->pruned = pruned;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

int
ps_channel_view_get_n_channels (PsChannelView *self)
{
  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), 0);
  return self->n_channels;
}
