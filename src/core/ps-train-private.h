/* ps-train-private.h: the training engine's pieces, open to the tests */
#pragma once

#include "ps-train.h"

G_BEGIN_DECLS

/* Backward pass of one layer over @n images. @d_out is the loss gradient with respect to
 * the layer's output (overwritten: it becomes the gradient before the activation); the
 * gradients with respect to the inputs are ADDED into @d_in[j] (NULL: not wanted); weight
 * gradients are WRITTEN into @d_kernel and @d_bias. @in and @out are the forward values;
 * @col is the im2col matrix the forward pass left in its scratch (Conv2D); @scratch holds
 * ps_layer_scratch_size() floats; @mask is the dropout mask (already divided by 1 - rate).
 * With @d_is_linear, @d_out is already the gradient before the activation. */
void    _ps_layer_backward      (const PsLayer        *layer,
                                 int                   n,
                                 const float * const  *in,
                                 const float          *out,
                                 float                *d_out,
                                 float               **d_in,
                                 float                *d_kernel,
                                 float                *d_bias,
                                 const float          *col,
                                 float                *scratch,
                                 const float          *mask,
                                 gboolean              d_is_linear);
/* Dropout's training mask for @count values: 0 with probability @rate, else 1/(1-rate). */
void    _ps_dropout_mask        (double                rate,
                                 guint32               seed,
                                 gsize                 count,
                                 float                *mask);
/* Mean cross-entropy of the model on @n images (already scaled) and its gradient, without
 * updating anything; dropout masks come from @seed. Gradients are then read with
 * _ps_trainer_gradient(). */
double  _ps_trainer_loss_grad   (PsTrainer            *trainer,
                                 const float          *x,
                                 const int            *labels,
                                 int                   n,
                                 guint32               seed);
void    _ps_trainer_gradient    (PsTrainer            *trainer,
                                 int                   layer,
                                 const float         **d_kernel,
                                 const float         **d_bias);

G_END_DECLS
