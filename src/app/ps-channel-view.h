/* ps-channel-view.h: mean activation of every channel of the pruned layer, pruned ones marked */
#pragma once

#include <gtk/gtk.h>

#include "ps-sweep.h"

G_BEGIN_DECLS

#define PS_TYPE_CHANNEL_VIEW (ps_channel_view_get_type ())

G_DECLARE_FINAL_TYPE (PsChannelView, ps_channel_view, PS, CHANNEL_VIEW, GtkWidget)

/* How bar heights follow the means: a few strong channels flatten the rest on a linear
 * scale; the square root and the logarithm show the weak ones too. */
typedef enum {
  PS_CHANNEL_SCALE_LINEAR,
  PS_CHANNEL_SCALE_SQRT,
  PS_CHANNEL_SCALE_LOG,
} PsChannelScale;

/* Where everything goes at one size: what the view draws, and what tests measure.
 * Bars are by rank (pruning order); an empty rectangle is not drawn. */
typedef struct {
  graphene_rect_t  plot;
  graphene_rect_t  title;
  graphene_rect_t  legend;
  graphene_rect_t  scale_menu;    /* the linear / square root / log choice */
  graphene_rect_t  zero_note;     /* how many channels are never active (mean 0) */
  graphene_rect_t  pruned_label;
  graphene_rect_t  readout;       /* the highlighted channel's numbers */
  graphene_rect_t  ends[2];       /* "first pruned", "last pruned" */
  graphene_rect_t  y_labels[3];   /* bottom, middle, top; empty when there is no room */
  double           y_values[3];
  int              n_bars;
  graphene_rect_t *clean_bars;
  graphene_rect_t *poisoned_bars; /* NULL without poisoned data */
  int              n_ticks;       /* channel numbers under the bars */
  int             *tick_ranks;
  graphene_rect_t *tick_labels;
} PsChannelLayout;

void             ps_channel_layout_free        (PsChannelLayout *layout);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsChannelLayout, ps_channel_layout_free)

GtkWidget       *ps_channel_view_new           (void);
/* Copies what it shows from @sweep (may be NULL). */
void             ps_channel_view_set_sweep     (PsChannelView  *self,
                                                const PsSweep  *sweep);
/* The same from plain arrays: @order (ranks to channels), means by channel; @poisoned
 * may be NULL. All are copied. */
void             ps_channel_view_set_means     (PsChannelView  *self,
                                                int             n_channels,
                                                const int      *order,
                                                const double   *clean,
                                                const double   *poisoned,
                                                const char     *layer);
/* Channels shown; 0 while there is no sweep. */
int              ps_channel_view_get_n_channels (PsChannelView *self);
void             ps_channel_view_set_pruned    (PsChannelView  *self,
                                                int             pruned);
void             ps_channel_view_set_scale     (PsChannelView  *self,
                                                PsChannelScale  scale);
PsChannelScale   ps_channel_view_get_scale     (PsChannelView  *self);
/* The highlighted rank (Left/Right move it), -1 for none. */
int              ps_channel_view_get_cursor    (PsChannelView  *self);
void             ps_channel_view_set_cursor    (PsChannelView  *self,
                                                int             rank);
/* The highlighted channel's index and means in words, NULL without one. */
char            *ps_channel_view_get_readout   (PsChannelView  *self);
PsChannelLayout *ps_channel_view_compute_layout (PsChannelView *self,
                                                int             width,
                                                int             height);

G_END_DECLS
