/* ps-plot.h: the sweep chart as plain Cairo drawing, shared by the screen and the exports */
#pragma once

#include <cairo.h>
#include <gio/gio.h>

#include "ps-sweep.h"

G_BEGIN_DECLS

typedef enum {
  PS_PLOT_PNG,
  PS_PLOT_SVG,
  PS_PLOT_PDF,
} PsPlotFormat;

typedef enum {
  PS_SERIES_VALID_ACC,
  PS_SERIES_TEST_ACC,
  PS_SERIES_ASR,
  PS_SERIES_G_TEST_ACC,
  PS_SERIES_G_ASR,
  PS_SERIES_G_DETECTION,
  PS_N_SERIES
} PsSeries;

/* What one chart shows; the rows are borrowed. */
typedef struct {
  const PsSweepStep *rows;
  int                n_rows;
  int                selected;   /* chosen step, -1 for none */
  int                hover;      /* step under the pointer, -1 for none */
  double             drop;       /* X in points; NAN hides the reference line */
  double             fg[4];      /* text and axes colour, RGBA */
  double             bg[4];      /* background; alpha 0 leaves it transparent */
  const char        *font;       /* Pango font description, NULL for "Sans 10" */
  const char        *title;      /* drawn above the chart when not NULL (exports) */
} PsPlot;

void          ps_plot_init          (PsPlot        *plot);
void          ps_plot_draw          (const PsPlot  *plot,
                                     cairo_t       *cr,
                                     double         width,
                                     double         height);
/* The step whose x position is nearest to @x, or -1 outside the plot area. */
int           ps_plot_step_at       (const PsPlot  *plot,
                                     cairo_t       *cr,
                                     double         width,
                                     double         height,
                                     double         x,
                                     double         y);
void          ps_plot_series_color  (PsSeries       series,
                                     double         rgb[3]);
const char   *ps_plot_series_label  (PsSeries       series);
/* The value of @series in @row (percent), NAN when the set was not given. */
double        ps_plot_series_value  (const PsSweepStep *row,
                                     PsSeries       series);
/* Pixels between two y-axis tick labels at this size, a label's height (the layout keeps
 * the first at least 1.5 times the second) and the plot area's height. */
double        ps_plot_y_tick_spacing (const PsPlot *plot,
                                      cairo_t      *cr,
                                      double        width,
                                      double        height,
                                      double       *label_height,
                                      double       *area_height);
/* The height a plot @width wide needs for a plot area @area_height high (the legend
 * wraps into more rows when narrow). */
double        ps_plot_height_for     (const PsPlot *plot,
                                      cairo_t      *cr,
                                      double        width,
                                      double        area_height);
gboolean      ps_plot_format_for_path (const char  *path,
                                       PsPlotFormat *format);
/* Draws the plot at @width x @height points into a PNG, SVG or PDF file (atomically). */
gboolean      ps_plot_export        (const PsPlot  *plot,
                                     const char    *path,
                                     PsPlotFormat   format,
                                     double         width,
                                     double         height,
                                     GError       **error);

G_END_DECLS
