/* ps-channel-view.h: mean activation of every channel of the pruned layer, pruned ones marked */
#pragma once

#include <gtk/gtk.h>

#include "ps-sweep.h"

G_BEGIN_DECLS

#define PS_TYPE_CHANNEL_VIEW (ps_channel_view_get_type ())

G_DECLARE_FINAL_TYPE (PsChannelView, ps_channel_view, PS, CHANNEL_VIEW, GtkWidget)

GtkWidget *ps_channel_view_new        (void);
/* Copies what it shows from @sweep (may be NULL). */
void       ps_channel_view_set_sweep  (PsChannelView *self,
                                       const PsSweep *sweep);
/* Channels shown; 0 while there is no sweep. */
int        ps_channel_view_get_n_channels (PsChannelView *self);
void       ps_channel_view_set_pruned (PsChannelView *self,
                                       int            pruned);

G_END_DECLS
