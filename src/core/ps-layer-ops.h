/* ps-layer-ops.h: forward passes of the layer kinds ONNX graphs add (grouped and dilated
 * convolution, affine, average pooling, elementwise functions, concatenation) */
#pragma once

#include "ps-layer.h"

G_BEGIN_DECLS

/* TRUE when @l needs the general convolution (groups or dilations). */
gboolean  ps_layer_ops_conv_is_general (const PsLayer        *l);
/* The general convolution, activation included; FALSE (nothing done) for a plain one. */
gboolean  ps_layer_ops_conv            (const PsLayer        *l,
                                        int                   n,
                                        const float          *x,
                                        float                *linear,
                                        float                *output,
                                        float                *scratch);
/* Affine, pooling, unary and concatenation layers. */
void      ps_layer_ops_forward         (const PsLayer        *l,
                                        int                   n,
                                        const float * const  *inputs,
                                        float                *output);

G_END_DECLS
