/* ps-finetune.h: fine-pruning — after pruning, train B' a little more on clean validation
 * data, the pruned channels held at zero; G = (B, B') then compares B with the tuned B' */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "ps-train.h"

G_BEGIN_DECLS

typedef struct {
  int         epochs;
  double      lr;
  PsOptimizer optimizer;
  int         batch_size;
  guint32     seed;
} PsFinetuneOptions;

/* Rates in percent after an epoch (epoch 0: before fine-tuning); NAN where a set is absent. */
typedef struct {
  int    epoch;
  int    epochs;
  double loss;                /* NAN at epoch 0 */
  double valid_acc;           /* B' on the validation data it is tuned on */
  double test_acc;            /* B' on clean test */
  double asr;                 /* B' attack success */
  double g_test_acc;          /* G on clean test */
  double g_asr;               /* G attack success */
  double g_clean_flagged;     /* clean test inputs G flags */
  double g_poisoned_flagged;  /* poisoned inputs G flags */
} PsFinetuneEpoch;

/* @epoch is NULL while an epoch trains; @done goes from 0 to 1. */
typedef void (*PsFinetuneProgress) (const PsFinetuneEpoch *epoch,
                                    double                 done,
                                    gpointer               user_data);

/* Adam, 3 epochs, learning rate 1e-4, batches of 64, seed 1. */
void      ps_finetune_options_init (PsFinetuneOptions       *options);
/* Fine-tunes B' of @g (a G from ps_repaired_build) in place on @sets[PS_SET_VALID]; the test
 * and poisoned sets, when given, are only measured. Records in @g that it was fine-tuned
 * (and how) and the final rates, so that ps_repaired_save() writes them. */
gboolean  ps_finetune              (PsRepaired               *g,
                                    const PsDataset * const   sets[PS_N_SETS],
                                    const PsFinetuneOptions  *options,
                                    PsFinetuneProgress        progress,
                                    gpointer                  user_data,
                                    GCancellable             *cancellable,
                                    GError                  **error);

G_END_DECLS
