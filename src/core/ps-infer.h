/* ps-infer.h: classify whole image sets, on all cores */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-model.h"

G_BEGIN_DECLS

#define PS_INFER_BATCH 32

/* Checks that @ds's images fit @model's input and its labels its classes. */
gboolean  ps_infer_check_dataset (const PsModel    *model,
                                  const PsDataset  *ds,
                                  GError          **error);
/* classes[i] = argmax of @model on image i (pixels times model->input_scale).
 * (G's classes: ps_repaired_classify().) */
gboolean  ps_infer_classes       (const PsModel    *model,
                                  const PsDataset  *ds,
                                  int              *classes,
                                  GCancellable     *cancellable,
                                  GError          **error);
/* Percentage of classes[i] == labels[i]. */
double    ps_infer_accuracy      (const int        *classes,
                                  const int        *labels,
                                  int               n);

G_END_DECLS
