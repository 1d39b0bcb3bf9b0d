/* ps-channel-view.c: bars of the mean activation per channel, in pruning order (lowest clean
 * activation first), clean and poisoned side by side. Channels the defense removes are shaded:
 * when the poisoned bars stand tall where the clean ones are low, pruning reaches the backdoor;
 * when they sit among the last channels, it does not. The geometry is computed in one place
 * (ps_channel_view_compute_layout) so that nothing drawn can overlap unnoticed. */
#define G_LOG_DOMAIN "ps-channel-view"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <pango/pangocairo.h>

#include "ps-channel-view.h"
#include "ps-plot.h"

#define GAP 4
/* Around everything, clear of the focus ring. */
#define MARGIN 4

struct _PsChannelView {
  GtkWidget       parent_instance;

  int             n_channels;
  int            *order;
  double         *clean;     /* by channel */
  double         *poisoned;  /* by channel, NULL without poisoned data */
  char           *layer;
  int             pruned;
  int             cursor;    /* highlighted rank, -1 for none */
  PsChannelScale  scale;

  GtkWidget      *scale_menu;
};

G_DEFINE_FINAL_TYPE (PsChannelView, ps_channel_view, GTK_TYPE_WIDGET)

void
ps_channel_layout_free (PsChannelLayout *layout)
{
  if (layout == NULL)
    return;
  g_free (layout->clean_bars);
  g_free (layout->poisoned_bars);
  g_free (layout->tick_ranks);
  g_free (layout->tick_labels);
  g_free (layout);
}

/* ---- text ---- */

static void
text_size (GtkWidget *widget, const char *text, int *w, int *h)
{
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);

  pango_layout_get_pixel_size (layout, w, h);
}

static graphene_rect_t
text_rect (GtkWidget *widget, const char *text, double x, double y, double ax)
{
  int w, h;

  text_size (widget, text, &w, &h);
  return GRAPHENE_RECT_INIT (x - ax * w, y, w, h);
}

static char *
title_text (PsChannelView *self)
{
  return g_strdup_printf (_("Mean activation of “%s” per channel, in pruning order"), self->layer);
}

static char *
pruned_text (PsChannelView *self)
{
  return g_strdup_printf (ngettext ("%d pruned", "%d pruned", self->pruned), self->pruned);
}

/* Channels whose clean mean is 0 have no bar on any scale: say how many there are. */
static char *
zero_text (PsChannelView *self)
{
  int zero = 0;

  for (int c = 0; c < self->n_channels; c++)
    zero += !(self->clean[c] > 0);
  if (zero == 0)
    return NULL;
  return g_strdup_printf (ngettext ("(%d channel at 0 on clean data: no bar)",
                                    "(%d channels at 0 on clean data: no bar)", zero), zero);
}

static const char *
series_name (int s)
{
  return s == 0 ? _("clean validation") : _("poisoned");
}

/* ---- the scale ---- */

typedef struct {
  PsChannelScale scale;
  double         max;
  double         floor;  /* log scale: a decade below the smallest nonzero mean */
} Scale;

static Scale
make_scale (PsChannelView *self)
{
  Scale s = { self->scale, 0, G_MAXDOUBLE };

  for (int k = 0; k < 2; k++)
    {
      const double *v = k == 0 ? self->clean : self->poisoned;

      for (int c = 0; v != NULL && c < self->n_channels; c++)
        {
          s.max = MAX (s.max, v[c]);
          if (v[c] > 0)
            s.floor = MIN (s.floor, v[c]);
        }
    }
  if (s.max <= 0)
    s.max = 1;
  s.floor = s.floor == G_MAXDOUBLE ? s.max / 10 : s.floor / 10;
  return s;
}

/* Fraction of the plot's height for @v. */
static double
scale_fraction (const Scale *s, double v)
{
  if (!(v > 0))
    return 0;
  switch (s->scale)
    {
    case PS_CHANNEL_SCALE_SQRT:
      return sqrt (v / s->max);
    case PS_CHANNEL_SCALE_LOG:
      return CLAMP (log (v / s->floor) / log (s->max / s->floor), 0, 1);
    case PS_CHANNEL_SCALE_LINEAR:
    default:
      return v / s->max;
    }
}

/* The mean drawn at fraction @f (for the axis labels). */
static double
scale_value (const Scale *s, double f)
{
  switch (s->scale)
    {
    case PS_CHANNEL_SCALE_SQRT:
      return f * f * s->max;
    case PS_CHANNEL_SCALE_LOG:
      return s->floor * pow (s->max / s->floor, f);
    case PS_CHANNEL_SCALE_LINEAR:
    default:
      return f * s->max;
    }
}

static double
bar_height (const Scale *s, double v, double plot_height)
{
  double h = scale_fraction (s, v) * plot_height;

  /* On the compressed scales a nonzero mean is never thinner than a pixel: showing the
   * weak channels is what they are for. The linear scale stays exact. */
  if (v > 0 && s->scale != PS_CHANNEL_SCALE_LINEAR)
    h = MAX (h, 1.0);
  return h;
}

/* ---- layout ---- */

static void
layout_bars (PsChannelView *self, PsChannelLayout *l, const Scale *s)
{
  const graphene_rect_t *p = &l->plot;
  double slot = p->size.width / self->n_channels;
  double bar = self->poisoned ? slot * 0.4 : slot * 0.7;

  l->n_bars = self->n_channels;
  l->clean_bars = g_new0 (graphene_rect_t, self->n_channels);
  l->poisoned_bars = self->poisoned ? g_new0 (graphene_rect_t, self->n_channels) : NULL;
  for (int rank = 0; rank < self->n_channels; rank++)
    {
      int c = self->order[rank];
      double x = p->origin.x + rank * slot + slot * 0.1;
      double h = bar_height (s, self->clean[c], p->size.height);

      l->clean_bars[rank] = GRAPHENE_RECT_INIT (x, p->origin.y + p->size.height - h, bar, h);
      if (self->poisoned == NULL)
        continue;
      h = bar_height (s, self->poisoned[c], p->size.height);
      l->poisoned_bars[rank] = GRAPHENE_RECT_INIT (x + bar, p->origin.y + p->size.height - h, bar, h);
    }
}

/* 1, 2, 5, 10, 20, 50, ... */
static int
nice_step (int k)
{
  int base = 1;

  for (; k >= 3; k -= 3)
    base *= 10;
  return base * (k == 0 ? 1 : k == 1 ? 2 : 5);
}

/* Channel numbers every step ranks, the smallest nice step at which the widest number plus
 * a gap fits in its slots, so that they never overlap. */
static void
layout_ticks (PsChannelView *self, PsChannelLayout *l, GtkWidget *widget, double y)
{
  double slot = l->plot.size.width / self->n_channels;
  g_autofree char *widest = g_strdup_printf ("%d", MAX (self->n_channels - 1, 0));
  int w, h, step = 1;

  text_size (widget, widest, &w, &h);
  for (int k = 1; step * slot < w + 6 && step < self->n_channels; k++)
    step = nice_step (k);
  l->tick_ranks = g_new (int, self->n_channels / step + 1);
  l->tick_labels = g_new (graphene_rect_t, self->n_channels / step + 1);
  l->n_ticks = 0;
  for (int rank = 0; rank < self->n_channels; rank += step)
    {
      g_autofree char *text = g_strdup_printf ("%d", self->order[rank]);
      double x = l->plot.origin.x + (rank + 0.5) * slot;

      l->tick_ranks[l->n_ticks] = rank;
      l->tick_labels[l->n_ticks++] = text_rect (widget, text, x, y, 0.5);
    }
}

static gboolean
rects_overlap (const graphene_rect_t *a, const graphene_rect_t *b)
{
  graphene_rect_t r;

  return a->size.width > 0 && b->size.width > 0 && graphene_rect_intersection (a, b, &r)
         && r.size.width > 0 && r.size.height > 0;
}

static void
layout_bottom (PsChannelView *self, PsChannelLayout *l, GtkWidget *widget, double y, int width)
{
  const graphene_rect_t *p = &l->plot;
  g_autofree char *readout = ps_channel_view_get_readout (self);

  l->ends[0] = text_rect (widget, _("first pruned"), p->origin.x, y, 0.0);
  l->ends[1] = text_rect (widget, _("last pruned"), p->origin.x + p->size.width, y, 1.0);
  if (readout == NULL)
    return;
  l->readout = text_rect (widget, readout, p->origin.x + p->size.width / 2, y, 0.5);
  /* The highlighted channel's numbers take precedence over the ends' names. */
  for (int k = 0; k < 2; k++)
    if (rects_overlap (&l->readout, &l->ends[k]))
      l->ends[k] = GRAPHENE_RECT_INIT (0, 0, 0, 0);
  /* Inside the view; what does not fit is ellipsized. */
  l->readout.size.width = MIN (l->readout.size.width, width);
  l->readout.origin.x = CLAMP (l->readout.origin.x, 0, width - l->readout.size.width);
}

static double
y_value (const Scale *s, int k)
{
  return k == 0 && s->scale != PS_CHANNEL_SCALE_LOG ? 0.0 : scale_value (s, k / 2.0);
}

static double
y_label_width (PsChannelView *self, GtkWidget *widget, const Scale *s)
{
  int widest = 0;

  for (int k = 0; k <= 2; k++)
    {
      g_autofree char *text = g_strdup_printf ("%.3g", y_value (s, k));
      int w, h;

      text_size (widget, text, &w, &h);
      widest = MAX (widest, w);
    }
  return widest;
}

/* Bottom, middle and top of the axis, inside its extent; the middle shows how the scale
 * bends. A label that would touch another is left out (the top one never is). */
static void
layout_y_labels (PsChannelLayout *l, GtkWidget *widget, const Scale *s)
{
  const graphene_rect_t *p = &l->plot;

  for (int k = 2; k >= 0; k--)
    {
      g_autofree char *text = NULL;
      double y = p->origin.y + p->size.height * (1 - k / 2.0);
      graphene_rect_t r;

      l->y_values[k] = y_value (s, k);
      text = g_strdup_printf ("%.3g", l->y_values[k]);
      r = text_rect (widget, text, p->origin.x - 6, y, 1.0);
      r.origin.y -= r.size.height * (1 - k / 2.0);
      for (int j = k + 1; j <= 2; j++)
        if (l->y_labels[j].size.width > 0
            && r.origin.y < l->y_labels[j].origin.y + l->y_labels[j].size.height + 2)
          r = GRAPHENE_RECT_INIT (0, 0, 0, 0);
      l->y_labels[k] = r;
    }
}

PsChannelLayout *
ps_channel_view_compute_layout (PsChannelView *self, int width, int height)
{
  GtkWidget *widget = GTK_WIDGET (self);
  PsChannelLayout *l = g_new0 (PsChannelLayout, 1);
  Scale s = make_scale (self);
  g_autofree char *title = NULL;
  int line, menu_w, menu_h, unused;
  double y, x0, bottom;

  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), l);

  if (self->n_channels == 0)
    return l;
  text_size (widget, "0", &unused, &line);
  gtk_widget_measure (self->scale_menu, GTK_ORIENTATION_HORIZONTAL, -1, NULL, &menu_w, NULL, NULL);
  gtk_widget_measure (self->scale_menu, GTK_ORIENTATION_VERTICAL, menu_w, NULL, &menu_h, NULL, NULL);

  /* Rows from the top: title; legend with the scale menu on its right; the pruned count. */
  title = title_text (self);
  l->title = text_rect (widget, title, MARGIN, MARGIN, 0);
  l->title.size.width = MAX (0, MIN (l->title.size.width, width - 2 * MARGIN));
  y = MARGIN + line + GAP;
  l->scale_menu = GRAPHENE_RECT_INIT (MAX (0, width - menu_w - MARGIN), y, menu_w, menu_h);
  l->legend = GRAPHENE_RECT_INIT (MARGIN, y + (menu_h - line) / 2.0, 0, line);
  for (int k = 0; k < (self->poisoned ? 2 : 1); k++)
    {
      int w, h;

      text_size (widget, series_name (k), &w, &h);
      l->legend.size.width += 14 + w + (k ? 0 : 16);
    }
  y += MAX (menu_h, line) + GAP;
  if (l->legend.size.width > width - menu_w - 8 - 2 * MARGIN)
    {
      /* No room beside the menu: a row of its own. */
      l->legend.origin.y = y;
      y += line + GAP;
    }
  {
    g_autofree char *zero = zero_text (self);
    double right = l->legend.origin.y < l->scale_menu.origin.y + l->scale_menu.size.height
                   ? l->scale_menu.origin.x - 8 : width - MARGIN;

    if (zero != NULL)
      {
        l->zero_note = text_rect (widget, zero, l->legend.origin.x + l->legend.size.width + 16,
                                  l->legend.origin.y, 0);
        /* Shortened (ellipsized) to what fits; left out when nothing much would. */
        l->zero_note.size.width = MIN (l->zero_note.size.width, right - l->zero_note.origin.x);
        if (l->zero_note.size.width < 40)
          l->zero_note = GRAPHENE_RECT_INIT (0, 0, 0, 0);
      }
  }
  x0 = MARGIN + y_label_width (self, widget, &s) + 10;
  l->pruned_label = GRAPHENE_RECT_INIT (0, y, 0, line);
  y += line + 2;
  /* From the bottom: the readout or the ends' names, then the channel numbers. */
  bottom = height - MARGIN - line - GAP - line - GAP;
  l->plot = GRAPHENE_RECT_INIT (x0, y, MAX (1, width - 8 - x0), MAX (1, bottom - y));
  layout_bars (self, l, &s);
  layout_y_labels (l, widget, &s);
  layout_ticks (self, l, widget, l->plot.origin.y + l->plot.size.height + 3);
  layout_bottom (self, l, widget, height - MARGIN - line - GAP + 2, width);
  if (self->pruned > 0)
    {
      g_autofree char *text = pruned_text (self);
      double x = l->plot.origin.x + self->pruned * l->plot.size.width / self->n_channels;
      graphene_rect_t r = text_rect (widget, text, x - 4, l->pruned_label.origin.y, 1.0);

      /* Left of the boundary when it fits, else right of it; never outside the view. */
      if (r.origin.x < 0)
        r.origin.x = x + 4;
      r.origin.x = MIN (r.origin.x, width - r.size.width);
      l->pruned_label = r;
    }
  return l;
}

/* ---- drawing ---- */

static void
set_fg (cairo_t *cr, const GdkRGBA *fg, double alpha)
{
  cairo_set_source_rgba (cr, fg->red, fg->green, fg->blue, fg->alpha * alpha);
}

static void
show_text (GtkWidget *widget, cairo_t *cr, const char *text, const graphene_rect_t *r)
{
  g_autoptr (PangoLayout) layout = gtk_widget_create_pango_layout (widget, text);

  if (r->size.width <= 0)
    return;
  pango_layout_set_width (layout, (int) ceil (r->size.width) * PANGO_SCALE);
  pango_layout_set_ellipsize (layout, PANGO_ELLIPSIZE_END);
  cairo_move_to (cr, r->origin.x, r->origin.y);
  pango_cairo_show_layout (cr, layout);
}

static void
fill_rect (cairo_t *cr, const graphene_rect_t *r)
{
  cairo_rectangle (cr, r->origin.x, r->origin.y, r->size.width, r->size.height);
  cairo_fill (cr);
}

static void
draw_bars (PsChannelView *self, cairo_t *cr, const PsChannelLayout *l)
{
  double rgb[3];

  for (int rank = 0; rank < l->n_bars; rank++)
    for (int k = 0; k < 2; k++)
      {
        const graphene_rect_t *bars = k == 0 ? l->clean_bars : l->poisoned_bars;

        if (bars == NULL)
          continue;
        ps_plot_series_color (k == 0 ? PS_SERIES_VALID_ACC : PS_SERIES_ASR, rgb);
        cairo_set_source_rgba (cr, rgb[0], rgb[1], rgb[2], rank < self->pruned ? 0.45 : 1.0);
        fill_rect (cr, &bars[rank]);
      }
}

static void
draw_pruned_band (PsChannelView *self, GtkWidget *widget, cairo_t *cr, const PsChannelLayout *l,
                  const GdkRGBA *fg)
{
  const graphene_rect_t *p = &l->plot;
  double x = p->origin.x + self->pruned * p->size.width / self->n_channels;
  g_autofree char *label = NULL;

  if (self->pruned <= 0)
    return;
  set_fg (cr, fg, 0.08);
  cairo_rectangle (cr, p->origin.x, p->origin.y, x - p->origin.x, p->size.height);
  cairo_fill (cr);
  set_fg (cr, fg, 0.7);
  cairo_set_line_width (cr, 1.5);
  cairo_move_to (cr, round (x) + 0.5, p->origin.y);
  cairo_line_to (cr, round (x) + 0.5, p->origin.y + p->size.height);
  cairo_stroke (cr);
  label = pruned_text (self);
  show_text (widget, cr, label, &l->pruned_label);
}

static void
draw_cursor (PsChannelView *self, cairo_t *cr, const PsChannelLayout *l, const GdkRGBA *fg)
{
  const graphene_rect_t *p = &l->plot;
  double slot = p->size.width / self->n_channels;

  if (self->cursor < 0 || self->cursor >= self->n_channels)
    return;
  set_fg (cr, fg, 0.9);
  cairo_set_line_width (cr, slot >= 6 ? 2 : 1);
  cairo_rectangle (cr, p->origin.x + self->cursor * slot + 0.5, p->origin.y + 0.5,
                   MAX (slot - 1, 1), p->size.height - 1);
  cairo_stroke (cr);
}

static void
draw_y_axis (PsChannelView *self, GtkWidget *widget, cairo_t *cr, const PsChannelLayout *l,
             const GdkRGBA *fg)
{
  const graphene_rect_t *p = &l->plot;

  set_fg (cr, fg, 0.6);
  cairo_set_line_width (cr, 1);
  cairo_move_to (cr, p->origin.x - 0.5, p->origin.y);
  cairo_line_to (cr, p->origin.x - 0.5, p->origin.y + p->size.height + 0.5);
  cairo_line_to (cr, p->origin.x + p->size.width, p->origin.y + p->size.height + 0.5);
  cairo_stroke (cr);
  set_fg (cr, fg, 0.75);
  for (int k = 0; k <= 2; k++)
    {
      g_autofree char *text = g_strdup_printf ("%.3g", l->y_values[k]);
      show_text (widget, cr, text, &l->y_labels[k]);
    }
}

static void
draw_labels (PsChannelView *self, GtkWidget *widget, cairo_t *cr, const PsChannelLayout *l,
             const GdkRGBA *fg)
{
  g_autofree char *title = title_text (self);
  g_autofree char *readout = ps_channel_view_get_readout (self);
  double rgb[3], x = l->legend.origin.x;

  set_fg (cr, fg, 0.75);
  for (int t = 0; t < l->n_ticks; t++)
    {
      g_autofree char *text = g_strdup_printf ("%d", self->order[l->tick_ranks[t]]);
      show_text (widget, cr, text, &l->tick_labels[t]);
    }
  show_text (widget, cr, _("first pruned"), &l->ends[0]);
  show_text (widget, cr, _("last pruned"), &l->ends[1]);
  set_fg (cr, fg, 0.9);
  if (readout != NULL)
    show_text (widget, cr, readout, &l->readout);
  show_text (widget, cr, title, &l->title);
  for (int k = 0; k < (self->poisoned ? 2 : 1); k++)
    {
      graphene_rect_t r = text_rect (widget, series_name (k), x + 14, l->legend.origin.y, 0);

      ps_plot_series_color (k == 0 ? PS_SERIES_VALID_ACC : PS_SERIES_ASR, rgb);
      cairo_set_source_rgb (cr, rgb[0], rgb[1], rgb[2]);
      cairo_rectangle (cr, x, r.origin.y + r.size.height / 2 - 5, 10, 10);
      cairo_fill (cr);
      set_fg (cr, fg, 0.9);
      show_text (widget, cr, series_name (k), &r);
      x += 14 + r.size.width + 16;
    }
  if (l->zero_note.size.width > 0)
    {
      g_autofree char *zero = zero_text (self);

      set_fg (cr, fg, 0.6);
      show_text (widget, cr, zero, &l->zero_note);
    }
}

static void
ps_channel_view_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  PsChannelView *self = PS_CHANNEL_VIEW (widget);
  int width = gtk_widget_get_width (widget), height = gtk_widget_get_height (widget);
  g_autoptr (PsChannelLayout) l = NULL;
  GdkRGBA fg;
  cairo_t *cr;

  if (self->n_channels == 0 || width <= 0 || height <= 0)
    return;
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  l = ps_channel_view_compute_layout (self, width, height);
  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));
  draw_pruned_band (self, widget, cr, l, &fg);
  draw_bars (self, cr, l);
  draw_cursor (self, cr, l, &fg);
  draw_y_axis (self, widget, cr, l, &fg);
  draw_labels (self, widget, cr, l, &fg);
  cairo_destroy (cr);
  gtk_widget_snapshot_child (widget, self->scale_menu, snapshot);
}

static void
ps_channel_view_size_allocate (GtkWidget *widget, int width, int height, int baseline)
{
  PsChannelView *self = PS_CHANNEL_VIEW (widget);
  int menu_w, menu_h, line, unused;

  /* The menu's place, as compute_layout puts it (without building the whole layout). */
  text_size (widget, "0", &unused, &line);
  gtk_widget_measure (self->scale_menu, GTK_ORIENTATION_HORIZONTAL, -1, NULL, &menu_w, NULL, NULL);
  gtk_widget_measure (self->scale_menu, GTK_ORIENTATION_VERTICAL, menu_w, NULL, &menu_h, NULL, NULL);
  gtk_widget_size_allocate (self->scale_menu,
                            &(GtkAllocation) { MAX (0, width - menu_w - MARGIN), MARGIN + line + GAP,
                                               MIN (menu_w, width), menu_h },
                            -1);
}

/* ---- the highlighted channel ---- */

char *
ps_channel_view_get_readout (PsChannelView *self)
{
  const char *state;
  int c;

  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), NULL);

  if (self->cursor < 0 || self->cursor >= self->n_channels)
    return NULL;
  c = self->order[self->cursor];
  state = self->cursor < self->pruned ? _("pruned") : _("kept");
  if (self->poisoned)
    /* Translators: channel number, pruned/kept, rank in pruning order, two means */
    return g_strdup_printf (_("Channel %d (%s, %d of %d): mean %.4g clean, %.4g poisoned"), c, state,
                            self->cursor + 1, self->n_channels, self->clean[c], self->poisoned[c]);
  return g_strdup_printf (_("Channel %d (%s, %d of %d): mean %.4g clean"), c, state,
                          self->cursor + 1, self->n_channels, self->clean[c]);
}

static void
update_accessible (PsChannelView *self)
{
  g_autofree char *readout = ps_channel_view_get_readout (self);

  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_DESCRIPTION,
                                  readout ? readout : _("Use Left and Right to read each channel"), -1);
}

void
ps_channel_view_set_cursor (PsChannelView *self, int rank)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  self->cursor = self->n_channels > 0 ? CLAMP (rank, -1, self->n_channels - 1) : -1;
  update_accessible (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

int
ps_channel_view_get_cursor (PsChannelView *self)
{
  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), -1);
  return self->cursor;
}

static void
move_cursor (GtkWidget *widget, const char *action, GVariant *param)
{
  PsChannelView *self = PS_CHANNEL_VIEW (widget);
  int by = g_variant_get_int32 (param);

  if (self->n_channels == 0)
    return;
  if (by == G_MININT32 || by == G_MAXINT32)
    ps_channel_view_set_cursor (self, by < 0 ? 0 : self->n_channels - 1);
  else
    ps_channel_view_set_cursor (self, self->cursor < 0 ? (by > 0 ? 0 : self->n_channels - 1)
                                                       : MAX (0, self->cursor + by));
}

/* The rank under @x, or -1 outside the plot. */
static int
rank_at (PsChannelView *self, double x, double y)
{
  GtkWidget *widget = GTK_WIDGET (self);
  g_autoptr (PsChannelLayout) l = NULL;
  int rank;

  if (self->n_channels == 0)
    return -1;
  l = ps_channel_view_compute_layout (self, gtk_widget_get_width (widget), gtk_widget_get_height (widget));
  rank = (int) floor ((x - l->plot.origin.x) / l->plot.size.width * self->n_channels);
  if (rank < 0 || rank >= self->n_channels || y < l->plot.origin.y
      || y > l->plot.origin.y + l->plot.size.height)
    return -1;
  return rank;
}

/* A click highlights the channel, as the arrow keys do, and gives the view the focus. */
static void
on_pressed (GtkGestureClick *gesture, int n_press, double x, double y, PsChannelView *self)
{
  int rank = rank_at (self, x, y);

  if (rank < 0)
    return;
  gtk_widget_grab_focus (GTK_WIDGET (self));
  ps_channel_view_set_cursor (self, rank);
}

static gboolean
on_query_tooltip (GtkWidget *widget, int x, int y, gboolean keyboard, GtkTooltip *tooltip,
                  PsChannelView *self)
{
  g_autofree char *text = NULL;
  int rank;

  if (self->n_channels == 0)
    return FALSE;
  if (keyboard)
    {
      text = ps_channel_view_get_readout (self);
      gtk_tooltip_set_text (tooltip, text);
      return text != NULL;
    }
  rank = rank_at (self, x, y);
  if (rank < 0)
    return FALSE;
  {
    int saved = self->cursor;

    self->cursor = rank;
    text = ps_channel_view_get_readout (self);
    self->cursor = saved;
  }
  gtk_tooltip_set_text (tooltip, text);
  return TRUE;
}

/* ---- the scale menu ---- */

void
ps_channel_view_set_scale (PsChannelView *self, PsChannelScale scale)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  if (gtk_drop_down_get_selected (GTK_DROP_DOWN (self->scale_menu)) != (guint) scale)
    gtk_drop_down_set_selected (GTK_DROP_DOWN (self->scale_menu), scale);
  self->scale = scale;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

PsChannelScale
ps_channel_view_get_scale (PsChannelView *self)
{
  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), PS_CHANNEL_SCALE_LINEAR);
  return self->scale;
}

static void
on_scale_selected (GtkDropDown *menu, GParamSpec *pspec, PsChannelView *self)
{
  guint selected = gtk_drop_down_get_selected (menu);

  if (selected <= PS_CHANNEL_SCALE_LOG)
    ps_channel_view_set_scale (self, selected);
}

/* ---- the widget ---- */

static void
ps_channel_view_measure (GtkWidget *widget, GtkOrientation orientation, int for_size,
                         int *minimum, int *natural, int *min_baseline, int *nat_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 240 : 160;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 600 : 300;
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
ps_channel_view_dispose (GObject *object)
{
  PsChannelView *self = PS_CHANNEL_VIEW (object);

  g_clear_pointer (&self->scale_menu, gtk_widget_unparent);
  G_OBJECT_CLASS (ps_channel_view_parent_class)->dispose (object);
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

  object_class->dispose = ps_channel_view_dispose;
  object_class->finalize = ps_channel_view_finalize;
  widget_class->snapshot = ps_channel_view_snapshot;
  widget_class->measure = ps_channel_view_measure;
  widget_class->size_allocate = ps_channel_view_size_allocate;
  gtk_widget_class_set_css_name (widget_class, "pschannelview");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);

  gtk_widget_class_install_action (widget_class, "channels.move", "i", move_cursor);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Left, 0, "channels.move", "i", -1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Left, 0, "channels.move", "i", -1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Right, 0, "channels.move", "i", 1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Right, 0, "channels.move", "i", 1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Page_Up, 0, "channels.move", "i", -10);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Page_Down, 0, "channels.move", "i", 10);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Home, 0, "channels.move", "i", G_MININT32);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_End, 0, "channels.move", "i", G_MAXINT32);
}

static void
ps_channel_view_init (PsChannelView *self)
{
  const char *scales[] = { _("Linear"), _("Square root"), _("Logarithmic"), NULL };

  self->cursor = -1;
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);
  gtk_widget_set_focus_on_click (GTK_WIDGET (self), TRUE);
  gtk_widget_set_has_tooltip (GTK_WIDGET (self), TRUE);
  g_signal_connect (self, "query-tooltip", G_CALLBACK (on_query_tooltip), self);
  {
    GtkGesture *click = gtk_gesture_click_new ();

    g_signal_connect (click, "pressed", G_CALLBACK (on_pressed), self);
    gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (click));
  }
  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Mean activation per channel"), -1);
  update_accessible (self);

  self->scale_menu = gtk_drop_down_new_from_strings (scales);
  gtk_widget_set_tooltip_text (self->scale_menu, _("Scale of the bars: the square root and the "
                                                   "logarithm show weak channels too"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->scale_menu), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Scale of the bars"), -1);
  gtk_widget_set_parent (self->scale_menu, GTK_WIDGET (self));
  gtk_widget_set_child_visible (self->scale_menu, FALSE);
  g_signal_connect (self->scale_menu, "notify::selected", G_CALLBACK (on_scale_selected), self);
}

GtkWidget *
ps_channel_view_new (void)
{
  return g_object_new (PS_TYPE_CHANNEL_VIEW, NULL);
}

void
ps_channel_view_set_means (PsChannelView *self, int n_channels, const int *order,
                           const double *clean, const double *poisoned, const char *layer)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  clear (self);
  self->n_channels = n_channels;
  self->order = g_memdup2 (order, sizeof (int) * MAX (n_channels, 1));
  self->clean = g_memdup2 (clean, sizeof (double) * MAX (n_channels, 1));
  self->poisoned = poisoned ? g_memdup2 (poisoned, sizeof (double) * MAX (n_channels, 1)) : NULL;
  self->layer = g_strdup (layer);
  if (self->cursor >= n_channels)
    self->cursor = n_channels - 1;
  gtk_widget_set_child_visible (self->scale_menu, n_channels > 0);
  update_accessible (self);
  gtk_widget_queue_allocate (GTK_WIDGET (self));
}

void
ps_channel_view_set_sweep (PsChannelView *self, const PsSweep *sweep)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  if (sweep == NULL)
    {
      clear (self);
      self->cursor = -1;
      gtk_widget_set_child_visible (self->scale_menu, FALSE);
      update_accessible (self);
      gtk_widget_queue_allocate (GTK_WIDGET (self));
      return;
    }
  ps_channel_view_set_means (self, ps_sweep_n_channels (sweep), ps_sweep_order (sweep),
                             ps_sweep_channel_means (sweep, PS_SET_VALID),
                             ps_sweep_channel_means (sweep, PS_SET_POISONED),
                             ps_sweep_layer_name (sweep));
}

void
ps_channel_view_set_pruned (PsChannelView *self, int pruned)
{
  g_return_if_fail (PS_IS_CHANNEL_VIEW (self));

  self->pruned = pruned;
  update_accessible (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

int
ps_channel_view_get_n_channels (PsChannelView *self)
{
  g_return_val_if_fail (PS_IS_CHANNEL_VIEW (self), 0);
  return self->n_channels;
}
