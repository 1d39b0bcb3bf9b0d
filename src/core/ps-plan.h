/* ps-plan.h: forward pass of a model over a batch, with one buffer per layer */
#pragma once

#include "ps-conv.h"
#include "ps-model.h"

G_BEGIN_DECLS

typedef struct _PsPlan PsPlan;

PsPlan   *ps_plan_new            (const PsModel *model,
                                  int            max_batch);
void      ps_plan_free           (PsPlan        *plan);
/* A layer's output buffer (max_batch x h x w x c, NHWC); the input layer's is where
 * the caller puts the (already scaled) images. */
float    *ps_plan_output         (PsPlan        *plan,
                                  int            layer);
/* Runs read their images from @images (max_batch x input size at most, NHWC, scaled),
 * which they neither copy nor write, until set back to NULL (the input layer's buffer);
 * ps_plan_output() of the input layer is then @images. */
void      ps_plan_set_input      (PsPlan        *plan,
                                  const float   *images);
/* Whether the first layer reads channels-first images as they are: the row kernel's
 * planes (a stride-1 convolution fused with its max-pool; ps_plan_set_fused() first). */
gboolean  ps_plan_reads_planar   (const PsPlan  *plan);
/* As ps_plan_set_input(), with @images channels-first (max_batch x C x H x W, scaled):
 * read as they are where ps_plan_reads_planar(), else reordered into the input layer's
 * buffer at each run. Until ps_plan_set_input(); the input layer's output is then not
 * @images. */
void      ps_plan_set_input_planar (PsPlan      *plan,
                                    const float *images);
/* As ps_plan_set_input_planar(), each image written by @fill (image b, channels-first)
 * just before the first layer reads it: only where ps_plan_reads_planar(), for runs of
 * every layer. Until ps_plan_set_input(). */
void      ps_plan_set_input_fill (PsPlan        *plan,
                                  PsConvFill     fill,
                                  gpointer       data);
/* Keep a Conv2D/Dense layer's value before its activation in its own buffer. */
void      ps_plan_keep_linear    (PsPlan        *plan,
                                  int            layer);
float    *ps_plan_linear         (PsPlan        *plan,
                                  int            layer);
/* Computes the output from the linear buffer (after the caller filled it). */
void      ps_plan_activate       (PsPlan        *plan,
                                  int            layer,
                                  int            n);
/* Lets a convolution compute the max-pool reading it directly: its own output buffer is
 * then not filled, unless ps_plan_keep_output() asked for it. Off by default. */
void      ps_plan_set_fused      (PsPlan        *plan,
                                  gboolean       fused);
void      ps_plan_keep_output    (PsPlan        *plan,
                                  int            layer);
/* Whether a Dense layer may skip zero inputs (on by default for every Dense layer):
 * batches where at least two thirds of its inputs are zeros (judged on their first
 * images, as after a ReLU) run over the nonzero inputs only. The sums are the same, in
 * the same order: the outputs are the same bits either way. */
void      ps_plan_set_sparse     (PsPlan        *plan,
                                  int            layer,
                                  gboolean       sparse);
/* Leave the output layer's softmax out (classes are the same, and come cheaper). */
void      ps_plan_set_logits     (PsPlan        *plan,
                                  gboolean       logits);
/* Runs every layer after the input on the first @n images. */
void      ps_plan_forward        (PsPlan        *plan,
                                  int            n);
/* Runs only the layers with run[i] set, in order. */
void      ps_plan_run_layers     (PsPlan        *plan,
                                  int            n,
                                  const gboolean *run);
/* Runs one layer on the first @n images. */
void      ps_plan_run_layer      (PsPlan        *plan,
                                  int            layer,
                                  int            n);
/* Class with the highest score for each of the first @n images. */
void      ps_plan_argmax         (PsPlan        *plan,
                                  int            n,
                                  int           *classes);
/* Same, with the gap between the best and second-best scores. */
void      ps_plan_argmax_margin  (PsPlan        *plan,
                                  int            n,
                                  int           *classes,
                                  float         *margins);
/* One layer on explicit buffers, for callers with their own storage. */
void      ps_layer_forward       (const PsLayer *layer,
                                  int            n,
                                  const float  * const *inputs,
                                  float         *linear,
                                  float         *output,
                                  float         *scratch);
gsize     ps_layer_scratch_size  (const PsLayer *layer,
                                  int            n);
void      ps_activation_apply    (PsActivation   act,
                                  int            rows,
                                  int            cols,
                                  const float   *in,
                                  float         *out);

G_END_DECLS
