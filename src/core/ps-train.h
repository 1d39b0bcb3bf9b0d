/* ps-train.h: training a model in place — mini-batch backpropagation, softmax
 * cross-entropy, SGD with momentum or Adam, seeded so that a seed gives one model */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-model.h"

G_BEGIN_DECLS

typedef enum {
  PS_OPTIMIZER_SGD,   /* with momentum */
  PS_OPTIMIZER_ADAM,
} PsOptimizer;

typedef struct {
  PsOptimizer optimizer;
  double      lr;
  double      momentum;    /* SGD only */
  int         batch_size;
  guint32     seed;        /* shuffling and dropout */
} PsTrainOptions;

/* Adam, learning rate 0.001, batches of 64, seed 1. */
void        ps_train_options_init    (PsTrainOptions        *options);
/* Allocates missing weights and sets Keras' defaults: Glorot-uniform kernels, zero biases. */
void        ps_model_init_weights    (PsModel               *model,
                                      guint32                seed);

typedef struct _PsTrainer PsTrainer;

/* Called between batches: @done goes from 0 to 1 over the epoch, @loss is the mean so far. */
typedef void (*PsTrainProgress) (double   done,
                                 double   loss,
                                 gpointer user_data);

/* Trains @model (which must outlive the trainer) in place. */
PsTrainer  *ps_trainer_new           (PsModel               *model,
                                      const PsTrainOptions  *options);
void        ps_trainer_free          (PsTrainer             *trainer);
/* Keeps output channels @channels of the Conv2D or Dense layer @layer exactly zero:
 * their kernel columns and biases are zeroed and never updated. */
void        ps_trainer_freeze_channels (PsTrainer           *trainer,
                                      int                    layer,
                                      const int             *channels,
                                      int                    n);
/* One pass over @ds in a fresh shuffled order; pixels are scaled by the model's
 * input_scale. Sets *@loss to the mean cross-entropy. */
gboolean    ps_trainer_epoch         (PsTrainer             *trainer,
                                      const PsDataset       *ds,
                                      PsTrainProgress        progress,
                                      gpointer               user_data,
                                      GCancellable          *cancellable,
                                      double                *loss,
                                      GError               **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsTrainer, ps_trainer_free)

G_END_DECLS
