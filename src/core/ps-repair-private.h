/* ps-repair-private.h: what a G carries beyond B' */
#pragma once

#include "ps-model.h"

G_BEGIN_DECLS

struct _PsRepairInfo {
  char     *layer;        /* the pruned layer */
  int      *channels;     /* pruned channels, in pruning order */
  int       n_channels;
  int       layer_channels;
  double    drop;         /* X in points, NAN when chosen by step */
  double    metrics[9];   /* PsSweepStep's rates at save time, NAN if unknown */
  gboolean  fine_tuned;
  int       ft_epochs;
  double    ft_lr;
  PsModel  *original;     /* B */
};

void          _ps_repair_info_free (PsRepairInfo   *info);
PsRepairInfo *_ps_repair_info_copy (const PsRepairInfo *info);
/* Reads the "prunescope" group of an open file, if any, into @model. */
gboolean      _ps_repair_info_load (PsModel        *model,
                                    gint64          file,
                                    GError        **error);
/* The Conv2D/Dense whose output channels are @layer's channels (the one pruning zeroes). */
PsLayer      *_ps_repair_feeding_layer (const PsModel *model,
                                        int            layer,
                                        GError       **error);

G_END_DECLS
