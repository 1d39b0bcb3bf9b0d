/* ps-test-util.h: helpers the test programs share */
#pragma once

#include <glib.h>

#include "ps-dataset.h"
#include "ps-model.h"

G_BEGIN_DECLS

/* ../shared/fixtures/csaw, or NULL (and the test is skipped) when it is absent. */
const char *ps_test_fixtures   (void);
char       *ps_test_fixture    (const char   *relative);
/* A fresh temporary directory, removed at exit. */
const char *ps_test_tmpdir     (void);
/* A small DeepID-shaped model (conv, pool, two branches, add, relu, dense) with seeded
 * random weights; @classes outputs. */
PsModel    *ps_test_small_model (guint32     seed,
                                 int         classes);
/* The same with conv_b in "same" padding at stride 2 (a 3x3 map instead of 4x3), and
 * another output activation ("softmax", "linear", "relu"). */
PsModel    *ps_test_small_model_variant (guint32     seed,
                                         int         classes,
                                         gboolean    conv_b_same_stride_2,
                                         const char *output_activation);
/* The same with @conv_b_filters channels in conv_b and pool_b (8 in the others). */
PsModel    *ps_test_small_model_wide (guint32     seed,
                                      int         classes,
                                      gboolean    conv_b_same_stride_2,
                                      const char *output_activation,
                                      int         conv_b_filters);
/* The lab's DeepID topology (60 channels to prune, @classes outputs) with seeded random
 * weights, biases in [@bias_lo, 0.1]. */
PsModel    *ps_test_deepid_model (guint32     seed,
                                  int         classes,
                                  double      bias_lo);
/* Seeded random weights for every Conv2D/Dense of @m, biases in [@bias_lo, 0.1]
 * (negative ones leave some channels dead on many images, as in real networks). */
void        ps_test_fill_weights (PsModel    *m,
                                  guint32     seed,
                                  double      bias_lo);
/* Random images (with a few bright "trigger" pixels on some) and labels. */
/* The first five fixture faces (55x47 RGB) in @images whose names start with @prefix
 * ("cl_…=LABEL.png"), labelled from their names. */
PsDataset  *ps_test_load_faces  (const char    *images,
                                 const char    *prefix);
PsDataset  *ps_test_random_data (const PsModel *model,
                                 int            n,
                                 guint32        seed);
/* Runs prunescope-cli with @argv (NULL-terminated, without the program); returns its exit
 * status and fills @out / @err (may be NULL). */
int         ps_test_run_cli    (const char * const *argv,
                                char              **out,
                                char              **err);

G_END_DECLS
