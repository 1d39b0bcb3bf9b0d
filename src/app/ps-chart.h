/* ps-chart.h: the live sweep chart widget; click or arrow keys choose a step */
#pragma once

#include <gtk/gtk.h>

#include "ps-plot.h"

G_BEGIN_DECLS

/* Height of the plot area the chart never goes below, in pixels. */
#define PS_CHART_MIN_AREA 160

#define PS_TYPE_CHART (ps_chart_get_type ())

G_DECLARE_FINAL_TYPE (PsChart, ps_chart, PS, CHART, GtkWidget)

GtkWidget    *ps_chart_new          (void);
/* Copies the rows. */
void          ps_chart_set_rows     (PsChart           *self,
                                     const PsSweepStep *rows,
                                     int                n_rows);
void          ps_chart_set_drop     (PsChart           *self,
                                     double             drop);
void          ps_chart_set_selected (PsChart           *self,
                                     int                step);
int           ps_chart_get_selected (PsChart           *self);
/* Shown over the plot while it has no rows (what the sweep is doing); NULL for none. */
void          ps_chart_set_message  (PsChart           *self,
                                     const char        *message);
/* The plot as shown, with colours for paper (for exports). */
void          ps_chart_get_plot     (PsChart           *self,
                                     PsPlot            *plot);

G_END_DECLS
