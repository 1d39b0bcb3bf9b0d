/* ps-repair.h: the repaired network G = (B, B'): build it at a sweep step, save, load, run */
#pragma once

#include "ps-model.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

/* Builds B' (a copy of @model with the first @pruned channels of the sweep's order zeroed
 * in the weights feeding the pruned layer) and attaches what G needs to it. */
PsModel  *ps_repair_build        (const PsModel  *model,
                                  const PsSweep  *sweep,
                                  int             pruned,
                                  double          drop,
                                  GError        **error);
/* TRUE for a model that is a G (loaded from or built as one). */
gboolean  ps_repair_is_g         (const PsModel  *model);
/* B as it was before pruning (owned by @g). */
const PsModel *ps_repair_original (const PsModel *g);
const char *ps_repair_layer      (const PsModel  *g);
const int  *ps_repair_channels   (const PsModel  *g,
                                  int            *n);
/* Fine-tuning epochs after pruning (0 for pruning only); @lr receives the learning rate. */
int         ps_repair_fine_tune_epochs (const PsModel *g,
                                        double        *lr);
/* X the G was chosen with (NAN when chosen by channel count). */
double      ps_repair_drop     (const PsModel  *g);
/* Saves G atomically: a Keras model of B' plus the "prunescope" group. */
gboolean  ps_repair_save         (const PsModel  *g,
                                  const char     *path,
                                  GError        **error);

G_END_DECLS
