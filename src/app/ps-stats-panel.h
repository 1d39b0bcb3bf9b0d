/* ps-stats-panel.h: the numbers at the chosen step (channels pruned, B′ and G on each set) */
#pragma once

#include <gtk/gtk.h>

#include "ps-sweep.h"
#include "ps-verdict.h"

G_BEGIN_DECLS

#define PS_TYPE_STATS_PANEL (ps_stats_panel_get_type ())

G_DECLARE_FINAL_TYPE (PsStatsPanel, ps_stats_panel, PS, STATS_PANEL, GtkWidget)

/* @sweep is borrowed: set it to NULL before it is freed. */
void  ps_stats_panel_set_sweep (PsStatsPanel   *self,
                                const PsSweep  *sweep);
/* @verdict (borrowed, kept until the next call) says what the step means; @stale: the sweep
 * is not the one of the files now loaded. */
void  ps_stats_panel_set_point (PsStatsPanel   *self,
                                int             step,
                                const PsVerdict *verdict,
                                gboolean        stale);
/* Shown instead of numbers while there is no finished sweep. */
void  ps_stats_panel_set_message (PsStatsPanel *self,
                                  const char   *message);

G_END_DECLS
