/* ps-plot.c: the sweep chart (metrics against the fraction of channels pruned) in Cairo.
 * Nothing here knows about widgets, so the screen, the exports and the tests share it. */
#define G_LOG_DOMAIN "ps-plot"

#include "config.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <unistd.h>

#include "ps-plot.h"

#define PAD        8.0
#define LEGEND_LINE 22.0

typedef struct {
  double x0, y0, x1, y1;  /* the plot area */
  double legend_y;
  double title_y;
} Layout;

typedef enum { MARK_NONE, MARK_CIRCLE, MARK_SQUARE, MARK_TRIANGLE, MARK_DIAMOND } Marker;

static const struct {
  double   rgb[3];
  gboolean dashed;
  Marker   marker;
} series_style[PS_N_SERIES] = {
  /* Okabe-Ito colours far apart in hue and lightness (blue, orange, vermillion, green) for
   * colour-blind readers; markers on B′'s curves and dashes on G's are a second cue. */
  [PS_SERIES_VALID_ACC]   = { { 0.000, 0.447, 0.698 }, FALSE, MARK_CIRCLE },
  [PS_SERIES_TEST_ACC]    = { { 0.902, 0.624, 0.000 }, FALSE, MARK_SQUARE },
  [PS_SERIES_ASR]         = { { 0.835, 0.369, 0.000 }, FALSE, MARK_TRIANGLE },
  [PS_SERIES_G_TEST_ACC]  = { { 0.902, 0.624, 0.000 }, TRUE,  MARK_NONE },
  [PS_SERIES_G_ASR]       = { { 0.835, 0.369, 0.000 }, TRUE,  MARK_NONE },
  [PS_SERIES_G_DETECTION] = { { 0.000, 0.620, 0.451 }, TRUE,  MARK_DIAMOND },
};

/* Rows between two markers on a curve. */
#define MARK_EVERY 6

void
ps_plot_init (PsPlot *plot)
{
  *plot = (PsPlot) {
    .selected = -1,
    .hover = -1,
    .drop = NAN,
    .fg = { 0, 0, 0, 1 },
    .bg = { 1, 1, 1, 0 },
  };
}

void
ps_plot_series_color (PsSeries series, double rgb[3])
{
  for (int i = 0; i < 3; i++)
    rgb[i] = series_style[series].rgb[i];
}

const char *
ps_plot_series_label (PsSeries series)
{
  switch (series)
    {
    case PS_SERIES_VALID_ACC:   return _("B′ validation accuracy");
    case PS_SERIES_TEST_ACC:    return _("B′ clean test accuracy");
    case PS_SERIES_ASR:         return _("B′ attack success");
    case PS_SERIES_G_TEST_ACC:  return _("G clean test accuracy");
    case PS_SERIES_G_ASR:       return _("G attack success");
    case PS_SERIES_G_DETECTION: return _("poisoned inputs flagged by G");
    case PS_N_SERIES:
    default:                    return NULL;
    }
}

double
ps_plot_series_value (const PsSweepStep *row, PsSeries series)
{
  switch (series)
    {
    case PS_SERIES_VALID_ACC:   return row->valid_acc;
    case PS_SERIES_TEST_ACC:    return row->test_acc;
    case PS_SERIES_ASR:         return row->asr;
    case PS_SERIES_G_TEST_ACC:  return row->g_test_acc;
    case PS_SERIES_G_ASR:       return row->g_asr;
    case PS_SERIES_G_DETECTION: return row->g_poisoned_flagged;
    case PS_N_SERIES:
    default:                    return NAN;
    }
}

/* ---- text ---- */

static const cairo_user_data_key_t layout_key, regular_key, bold_key;

static PangoFontDescription *
cached_font (const PsPlot *plot, cairo_t *cr, gboolean bold)
{
  const cairo_user_data_key_t *key = bold ? &bold_key : &regular_key;
  PangoFontDescription *desc = cairo_get_user_data (cr, key);

  if (desc == NULL)
    {
      desc = pango_font_description_from_string (plot->font ? plot->font : "Sans 10");
      if (bold)
        pango_font_description_set_weight (desc, PANGO_WEIGHT_BOLD);
      cairo_set_user_data (cr, key, desc, (cairo_destroy_func_t) pango_font_description_free);
    }
  return desc;
}

/* One layout per cairo context: creating a Pango context for every label costs more than
 * drawing the whole chart. */
static PangoLayout *
make_text (const PsPlot *plot, cairo_t *cr, const char *text, gboolean bold)
{
  PangoLayout *layout = cairo_get_user_data (cr, &layout_key);

  if (layout == NULL)
    {
      layout = pango_cairo_create_layout (cr);
      cairo_set_user_data (cr, &layout_key, layout, g_object_unref);
    }
  pango_layout_set_font_description (layout, cached_font (plot, cr, bold));
  pango_layout_set_text (layout, text, -1);
  return g_object_ref (layout);
}

static void
text_size (PangoLayout *layout, double *w, double *h)
{
  int pw, ph;

  pango_layout_get_size (layout, &pw, &ph);
  *w = (double) pw / PANGO_SCALE;
  *h = (double) ph / PANGO_SCALE;
}

/* Draws @text with its anchor (0..1 of its width and height) at x, y. */
static void
draw_text (const PsPlot *plot, cairo_t *cr, const char *text, double x, double y,
           double ax, double ay, gboolean bold)
{
  g_autoptr (PangoLayout) layout = make_text (plot, cr, text, bold);
  double w, h;

  text_size (layout, &w, &h);
  cairo_move_to (cr, x - ax * w, y - ay * h);
  pango_cairo_show_layout (cr, layout);
}

static double
line_height (const PsPlot *plot, cairo_t *cr)
{
  g_autoptr (PangoLayout) layout = make_text (plot, cr, "100 %", FALSE);
  double w, h;

  text_size (layout, &w, &h);
  return h;
}

/* ---- layout ---- */

/* G's attack success equals B′'s wherever B itself classifies a poisoned input as the
 * target; a line drawn twice would read as two results. */
static gboolean
g_asr_differs (const PsPlot *plot, int i)
{
  return fabs (plot->rows[i].g_asr - plot->rows[i].asr) > 0.005;
}

static gboolean
g_asr_coincides (const PsPlot *plot)
{
  for (int i = 0; i < plot->n_rows; i++)
    if (!isnan (plot->rows[i].g_asr) && g_asr_differs (plot, i))
      return FALSE;
  return TRUE;
}

static gboolean
series_present (const PsPlot *plot, PsSeries s)
{
  if (s == PS_SERIES_G_ASR && g_asr_coincides (plot))
    return FALSE;
  for (int i = 0; i < plot->n_rows; i++)
    if (!isnan (ps_plot_series_value (&plot->rows[i], s)))
      return TRUE;
  return plot->n_rows == 0 && s == PS_SERIES_VALID_ACC;
}

static const char *
series_label (const PsPlot *plot, PsSeries s)
{
  if (s == PS_SERIES_ASR && g_asr_coincides (plot))
    return _("attack success (B′ and G)");
  return ps_plot_series_label (s);
}

static double
legend_entry_width (const PsPlot *plot, cairo_t *cr, const char *label)
{
  g_autoptr (PangoLayout) layout = make_text (plot, cr, label, FALSE);
  double w, h;

  text_size (layout, &w, &h);
  return LEGEND_LINE + 6 + w + 18;
}

static char *
reference_label (const PsPlot *plot)
{
  return g_strdup_printf (_("Original accuracy − X (X = %.1f)"), plot->drop);
}

static gboolean
reference_shown (const PsPlot *plot)
{
  return plot->n_rows > 0 && !isnan (plot->drop) && !isnan (plot->rows[0].valid_acc);
}

/* Lays the legend out in rows within @width; returns the number of rows. */
static int
legend_rows (const PsPlot *plot, cairo_t *cr, double width)
{
  double x = 0;
  int rows = 1;

  for (int s = 0; s <= PS_N_SERIES; s++)
    {
      g_autofree char *ref = s == PS_N_SERIES ? reference_label (plot) : NULL;
      double w;

      if (s == PS_N_SERIES ? !reference_shown (plot) : !series_present (plot, s))
        continue;
      w = legend_entry_width (plot, cr, ref ? ref : series_label (plot, s));
      if (x > 0 && x + w > width)
        {
          rows++;
          x = 0;
        }
      x += w;
    }
  return rows;
}

static void
compute_layout (const PsPlot *plot, cairo_t *cr, double width, double height, Layout *l)
{
  g_autoptr (PangoLayout) tick = make_text (plot, cr, "100 %", FALSE);
  double lh = line_height (plot, cr), tw, th;
  double top = PAD;

  text_size (tick, &tw, &th);
  l->title_y = top;
  if (plot->title != NULL)
    top += lh * 1.2 + PAD;
  l->legend_y = top;
  top += legend_rows (plot, cr, width - 2 * PAD) * lh * 1.3 + PAD;

  l->x0 = PAD + lh + 4 + tw + 6; /* the rotated axis title, then the tick labels */
  l->x1 = width - PAD - tw / 2;
  l->y0 = top + lh / 2;
  l->y1 = height - PAD - 2 * lh - 8;
  if (l->x1 < l->x0 + 1)
    l->x1 = l->x0 + 1;
  if (l->y1 < l->y0 + 1)
    l->y1 = l->y0 + 1;
}

static double
map_x (const Layout *l, double fraction)
{
  return l->x0 + fraction * (l->x1 - l->x0);
}

static double
map_y (const Layout *l, double percent)
{
  return l->y1 - percent / 100.0 * (l->y1 - l->y0);
}

/* ---- pieces ---- */

static void
set_fg (const PsPlot *plot, cairo_t *cr, double alpha)
{
  cairo_set_source_rgba (cr, plot->fg[0], plot->fg[1], plot->fg[2], plot->fg[3] * alpha);
}

static void
set_series_style (cairo_t *cr, PsSeries s)
{
  static const double dash[] = { 6.0, 3.5 };
  const double *c = series_style[s].rgb;

  cairo_set_source_rgb (cr, c[0], c[1], c[2]);
  cairo_set_line_width (cr, 2.0);
  cairo_set_dash (cr, dash, series_style[s].dashed ? 2 : 0, 0);
}

/* The smallest of 10, 20, 25, 50 and 100 points whose tick labels stand apart by at least
 * 1.5 lines, so that they never overlap however short the chart is. */
static double
y_tick_step (const PsPlot *plot, cairo_t *cr, const Layout *l, double *spacing)
{
  static const double steps[] = { 10, 20, 25, 50, 100 };
  double lh = line_height (plot, cr);

  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      *spacing = (l->y1 - l->y0) * steps[i] / 100;
      if (*spacing >= 1.5 * lh || i + 1 == G_N_ELEMENTS (steps))
        return steps[i];
    }
  return 100;
}

double
ps_plot_y_tick_spacing (const PsPlot *plot, cairo_t *cr, double width, double height,
                        double *label_height, double *area_height)
{
  Layout l;
  double spacing;

  compute_layout (plot, cr, width, height, &l);
  y_tick_step (plot, cr, &l, &spacing);
  *label_height = line_height (plot, cr);
  *area_height = l.y1 - l.y0;
  return spacing;
}

double
ps_plot_height_for (const PsPlot *plot, cairo_t *cr, double width, double area_height)
{
  Layout l;

  /* The layout's margins do not depend on the height: measure them at any height. */
  compute_layout (plot, cr, width, 10000, &l);
  return 10000 - (l.y1 - l.y0) + area_height;
}

static void
draw_axes (const PsPlot *plot, cairo_t *cr, const Layout *l)
{
  double xstep = l->x1 - l->x0 >= 420 ? 0.1 : 0.2;
  double spacing, ystep = y_tick_step (plot, cr, l, &spacing);
  double lh = line_height (plot, cr);

  cairo_set_line_width (cr, 1.0);
  for (double y = 0; y <= 100.001; y += ystep)
    {
      g_autofree char *label = g_strdup_printf ("%.0f %%", y);

      set_fg (plot, cr, y == 0 ? 0.6 : 0.12);
      cairo_move_to (cr, l->x0, round (map_y (l, y)) + 0.5);
      cairo_line_to (cr, l->x1, round (map_y (l, y)) + 0.5);
      cairo_stroke (cr);
      set_fg (plot, cr, 0.75);
      draw_text (plot, cr, label, l->x0 - 6, map_y (l, y), 1.0, 0.5, FALSE);
    }
  for (int i = 0; i * xstep <= 1.0001; i++)
    {
      double f = i * xstep, x = round (map_x (l, f)) + 0.5;
      g_autofree char *label = g_strdup_printf ("%.1f", f);

      set_fg (plot, cr, i == 0 ? 0.6 : 0.12);
      cairo_move_to (cr, x, l->y0);
      cairo_line_to (cr, x, l->y1 + (i == 0 ? 0 : 4));
      cairo_stroke (cr);
      set_fg (plot, cr, 0.75);
      draw_text (plot, cr, label, x, l->y1 + 5, 0.5, 0.0, FALSE);
    }
  set_fg (plot, cr, 0.9);
  draw_text (plot, cr, _("Fraction of channels pruned"), (l->x0 + l->x1) / 2,
             l->y1 + 8 + lh, 0.5, 0.0, FALSE);
  {
    g_autoptr (PangoLayout) title = make_text (plot, cr, _("Share of images (%)"), FALSE);
    double tw, th;

    /* Only where it fits beside the plot area, never over the legend. */
    text_size (title, &tw, &th);
    if (tw <= l->y1 - l->y0)
      {
        cairo_save (cr);
        cairo_translate (cr, PAD, (l->y0 + l->y1) / 2);
        cairo_rotate (cr, -G_PI / 2);
        draw_text (plot, cr, _("Share of images (%)"), 0, 0, 0.5, 0.0, FALSE);
        cairo_restore (cr);
      }
  }
}

static void
draw_marker (cairo_t *cr, Marker m, double x, double y)
{
  const double r = 3.5;

  switch (m)
    {
    case MARK_CIRCLE:
      cairo_new_sub_path (cr);
      cairo_arc (cr, x, y, r, 0, 2 * G_PI);
      break;
    case MARK_SQUARE:
      cairo_rectangle (cr, x - r, y - r, 2 * r, 2 * r);
      break;
    case MARK_TRIANGLE:
      cairo_move_to (cr, x, y - r * 1.2);
      cairo_line_to (cr, x + r * 1.1, y + r * 0.8);
      cairo_line_to (cr, x - r * 1.1, y + r * 0.8);
      cairo_close_path (cr);
      break;
    case MARK_DIAMOND:
      cairo_move_to (cr, x, y - r * 1.3);
      cairo_line_to (cr, x + r, y);
      cairo_line_to (cr, x, y + r * 1.3);
      cairo_line_to (cr, x - r, y);
      cairo_close_path (cr);
      break;
    case MARK_NONE:
    default:
      return;
    }
  cairo_fill (cr);
}

static void
draw_series (const PsPlot *plot, cairo_t *cr, const Layout *l, PsSeries s)
{
  gboolean pen_down = FALSE;

  set_series_style (cr, s);
  cairo_set_line_join (cr, CAIRO_LINE_JOIN_ROUND);
  for (int i = 0; i < plot->n_rows; i++)
    {
      double v = ps_plot_series_value (&plot->rows[i], s);
      double x = map_x (l, plot->rows[i].fraction), y = map_y (l, v);

      /* G's attack success only where it leaves B′'s (a segment on each side). */
      if (s == PS_SERIES_G_ASR && !g_asr_differs (plot, i)
          && !(i > 0 && g_asr_differs (plot, i - 1)) && !(i + 1 < plot->n_rows && g_asr_differs (plot, i + 1)))
        v = NAN;
      if (isnan (v))
        {
          pen_down = FALSE;
          continue;
        }
      if (pen_down)
        cairo_line_to (cr, x, y);
      else
        cairo_move_to (cr, x, y);
      pen_down = TRUE;
    }
  if (plot->n_rows == 1)
    cairo_line_to (cr, map_x (l, plot->rows[0].fraction) + 0.1, map_y (l, ps_plot_series_value (&plot->rows[0], s)));
  cairo_stroke (cr);
  for (int i = 0; series_style[s].marker != MARK_NONE && i < plot->n_rows; i += MARK_EVERY)
    {
      double v = ps_plot_series_value (&plot->rows[i], s);

      if (!isnan (v))
        draw_marker (cr, series_style[s].marker, map_x (l, plot->rows[i].fraction), map_y (l, v));
    }
}

static void
draw_reference (const PsPlot *plot, cairo_t *cr, const Layout *l)
{
  static const double dots[] = { 1.5, 3.0 };
  double level = plot->rows[0].valid_acc - plot->drop;

  if (level < 0)
    return;
  set_fg (plot, cr, 0.8);
  cairo_set_line_width (cr, 1.5);
  cairo_set_dash (cr, dots, 2, 0);
  cairo_move_to (cr, l->x0, map_y (l, level));
  cairo_line_to (cr, l->x1, map_y (l, level));
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);
}

static void
draw_cursor (const PsPlot *plot, cairo_t *cr, const Layout *l, int step, double alpha)
{
  double x = round (map_x (l, plot->rows[step].fraction)) + 0.5;

  cairo_set_dash (cr, NULL, 0, 0);
  set_fg (plot, cr, alpha);
  cairo_set_line_width (cr, 1.0);
  cairo_move_to (cr, x, l->y0);
  cairo_line_to (cr, x, l->y1);
  cairo_stroke (cr);
}

static void
draw_selected (const PsPlot *plot, cairo_t *cr, const Layout *l)
{
  const PsSweepStep *r = &plot->rows[plot->selected];
  g_autofree char *label = NULL;
  double x = map_x (l, r->fraction);

  draw_cursor (plot, cr, l, plot->selected, 0.55);
  for (int s = 0; s < PS_N_SERIES; s++)
    {
      double v = ps_plot_series_value (r, s);

      if (isnan (v))
        continue;
      cairo_arc (cr, x, map_y (l, v), 4.5, 0, 2 * G_PI);
      set_series_style (cr, s);
      cairo_fill_preserve (cr);
      set_fg (plot, cr, 1.0);
      cairo_set_line_width (cr, 1.2);
      cairo_stroke (cr);
    }
  label = g_strdup_printf (ngettext ("%d channel pruned", "%d channels pruned", r->pruned), r->pruned);
  set_fg (plot, cr, 1.0);
  draw_text (plot, cr, label, x + (r->fraction > 0.6 ? -6 : 6), l->y0 + 2,
             r->fraction > 0.6 ? 1.0 : 0.0, 0.0, TRUE);
}

static void
draw_legend_entry (const PsPlot *plot, cairo_t *cr, double x, double y, double lh, int s,
                   const char *label)
{
  static const double dots[] = { 1.5, 3.0 };

  if (s == PS_N_SERIES)
    {
      set_fg (plot, cr, 0.8);
      cairo_set_line_width (cr, 1.5);
      cairo_set_dash (cr, dots, 2, 0);
    }
  else
    set_series_style (cr, s);
  cairo_move_to (cr, x, y + lh / 2);
  cairo_line_to (cr, x + LEGEND_LINE, y + lh / 2);
  cairo_stroke (cr);
  cairo_set_dash (cr, NULL, 0, 0);
  if (s < PS_N_SERIES)
    draw_marker (cr, series_style[s].marker, x + LEGEND_LINE / 2, y + lh / 2);
  set_fg (plot, cr, 0.9);
  draw_text (plot, cr, label, x + LEGEND_LINE + 6, y, 0.0, 0.0, FALSE);
}

static void
draw_legend (const PsPlot *plot, cairo_t *cr, double width, const Layout *l)
{
  double lh = line_height (plot, cr), x = PAD, y = l->legend_y;

  for (int s = 0; s <= PS_N_SERIES; s++)
    {
      g_autofree char *ref = s == PS_N_SERIES ? reference_label (plot) : NULL;
      const char *label = ref ? ref : series_label (plot, s);
      double w;

      if (s == PS_N_SERIES ? !reference_shown (plot) : !series_present (plot, s))
        continue;
      w = legend_entry_width (plot, cr, label);
      if (x > PAD && x + w > width - PAD)
        {
          x = PAD;
          y += lh * 1.3;
        }
      draw_legend_entry (plot, cr, x, y, lh, s, label);
      x += w;
    }
}

void
ps_plot_draw (const PsPlot *plot, cairo_t *cr, double width, double height)
{
  Layout l;

  g_return_if_fail (plot != NULL && cr != NULL);

  cairo_save (cr);
  if (plot->bg[3] > 0)
    {
      cairo_set_source_rgba (cr, plot->bg[0], plot->bg[1], plot->bg[2], plot->bg[3]);
      cairo_paint (cr);
    }
  compute_layout (plot, cr, width, height, &l);
  if (plot->title != NULL)
    {
      set_fg (plot, cr, 1.0);
      draw_text (plot, cr, plot->title, PAD, l.title_y, 0.0, 0.0, TRUE);
    }
  draw_legend (plot, cr, width, &l);
  draw_axes (plot, cr, &l);

  cairo_save (cr);
  cairo_rectangle (cr, l.x0 - 5, l.y0 - 5, l.x1 - l.x0 + 10, l.y1 - l.y0 + 10);
  cairo_clip (cr);
  if (plot->hover >= 0 && plot->hover < plot->n_rows && plot->hover != plot->selected)
    draw_cursor (plot, cr, &l, plot->hover, 0.25);
  if (reference_shown (plot))
    draw_reference (plot, cr, &l);
  for (int s = PS_N_SERIES - 1; s >= 0; s--)
    draw_series (plot, cr, &l, s);
  cairo_restore (cr);

  if (plot->selected >= 0 && plot->selected < plot->n_rows)
    draw_selected (plot, cr, &l);
  cairo_restore (cr);
}

int
ps_plot_step_at (const PsPlot *plot, cairo_t *cr, double width, double height, double x, double y)
{
  Layout l;
  int best = -1;
  double best_d = G_MAXDOUBLE;

  compute_layout (plot, cr, width, height, &l);
  if (x < l.x0 - 12 || x > l.x1 + 12 || y < l.y0 - 12 || y > l.y1 + 12)
    return -1;
  for (int i = 0; i < plot->n_rows; i++)
    {
      double d = fabs (map_x (&l, plot->rows[i].fraction) - x);
      if (d < best_d)
        {
          best_d = d;
          best = i;
        }
    }
  return best;
}

/* ---- files ---- */

gboolean
ps_plot_format_for_path (const char *path, PsPlotFormat *format)
{
  g_autofree char *lower = g_ascii_strdown (path, -1);

  if (g_str_has_suffix (lower, ".png"))
    *format = PS_PLOT_PNG;
  else if (g_str_has_suffix (lower, ".svg"))
    *format = PS_PLOT_SVG;
  else if (g_str_has_suffix (lower, ".pdf"))
    *format = PS_PLOT_PDF;
  else
    return FALSE;
  return TRUE;
}

static cairo_surface_t *
create_surface (PsPlotFormat format, const char *path, double width, double height)
{
  switch (format)
    {
    case PS_PLOT_SVG:
      return cairo_svg_surface_create (path, width, height);
    case PS_PLOT_PDF:
      return cairo_pdf_surface_create (path, width, height);
    case PS_PLOT_PNG:
    default:
      /* Twice the points, so the PNG is sharp on HiDPI screens and in print. */
      {
        cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_ARGB32, 2 * width, 2 * height);
        cairo_surface_set_device_scale (s, 2, 2);
        return s;
      }
    }
}

gboolean
ps_plot_export (const PsPlot *plot, const char *path, PsPlotFormat format,
                double width, double height, GError **error)
{
  g_autofree char *tmp = g_strdup_printf ("%s.part-XXXXXX", path);
  cairo_surface_t *surface;
  cairo_status_t status;
  cairo_t *cr;
  int fd;

  /* Write beside the target and rename, so a failed export leaves no half file. */
  fd = g_mkstemp_full (tmp, O_RDWR, 0666);
  if (fd < 0)
    {
      int e = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (e), _("%s: cannot write: %s"),
                   path, g_strerror (e));
      return FALSE;
    }
  close (fd);
  surface = create_surface (format, tmp, width, height);
  cr = cairo_create (surface);
  ps_plot_draw (plot, cr, width, height);
  cairo_destroy (cr);
  if (format == PS_PLOT_PNG && cairo_surface_status (surface) == CAIRO_STATUS_SUCCESS)
    status = cairo_surface_write_to_png (surface, tmp);
  else
    {
      cairo_surface_finish (surface);
      status = cairo_surface_status (surface);
    }
  cairo_surface_destroy (surface);
  if (status != CAIRO_STATUS_SUCCESS || g_rename (tmp, path) != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, _("%s: cannot write the plot: %s"), path,
                   status != CAIRO_STATUS_SUCCESS ? cairo_status_to_string (status) : g_strerror (errno));
      g_unlink (tmp);
      return FALSE;
    }
  return TRUE;
}
