/* ps-repaired.h: the repaired network G = (B, B'): B as it was, B' with a layer's channels
 * removed (and perhaps fine-tuned), and how they were chosen. G's class is B's where B and
 * B' agree, else n_classes ("backdoored"). */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-model.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

typedef struct _PsRepaired {
  PsModel     *b;               /* the BadNet as it was */
  PsModel     *b_prime;         /* B with the channels removed (and fine-tuned, if it was) */
  char        *layer;           /* the pruned layer */
  int         *channels;        /* pruned channels, in pruning order */
  int          n_channels;
  int          layer_channels;  /* channels the layer has */
  double       drop;            /* X in points, NAN when chosen by channel count */
  PsSweepStep  metrics;         /* rates at save time (NAN where unknown) */
  gboolean     fine_tuned;
  int          ft_epochs;
  double       ft_lr;
  char        *path;            /* where it was loaded from, or NULL */
} PsRepaired;

/* G's rule, the one place it is written. */
static inline int
ps_repaired_rule (int b, int b_prime, int n_classes)
{
  return b == b_prime ? b : n_classes;
}

/* G at a step of @sweep, which must have been run on @b: B' is @b with the first @pruned
 * channels of the sweep's order removed (kernel columns and biases of the layer feeding
 * the pruned one set to zero). The step's rates become G's metrics. */
PsRepaired *ps_repaired_build      (const PsModel      *b,
                                    const PsSweep      *sweep,
                                    int                 pruned,
                                    double              drop,
                                    GError            **error);
PsRepaired *ps_repaired_copy       (const PsRepaired   *g);
void        ps_repaired_free       (PsRepaired         *g);
int         ps_repaired_n_classes  (const PsRepaired   *g); /* B's; G adds one */

/* Saves G atomically: a Keras model of B' plus the "prunescope" group. */
gboolean    ps_repaired_save       (const PsRepaired   *g,
                                    const char         *path,
                                    GError            **error);
/* Reads a G file; a model file that is not a G is a PS_ERROR_FORMAT error. */
PsRepaired *ps_repaired_load       (const char         *path,
                                    GError            **error);
/* TRUE when @path is a readable G file (it has the "prunescope" group of one). */
gboolean    ps_repaired_file_is_g  (const char         *path);
/* The network to defend in @path: the model itself, or B when @path is a G (the defense
 * is re-run on the original BadNet, so that what is saved is what is measured).
 * @was_g (may be NULL) tells which. */
PsModel    *ps_repaired_load_b     (const char         *path,
                                    gboolean           *was_g,
                                    GError            **error);

/* G's class of every image of @ds, in [0, n_classes]. The layers B and B' compute alike
 * are run once; where B' only zeroes channels of B's layer, that layer is not run again. */
gboolean    ps_repaired_classify   (const PsRepaired   *g,
                                    const PsDataset    *ds,
                                    int                *classes,
                                    GCancellable       *cancellable,
                                    GError            **error);

/* The Conv2D/Dense whose output channels are @layer's channels through zero-preserving
 * layers (pooling, ReLU, dropout): the one whose weights removing a channel zeroes. */
PsLayer    *ps_repaired_feeding_layer (const PsModel   *model,
                                       int              layer,
                                       GError         **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsRepaired, ps_repaired_free)

G_END_DECLS
