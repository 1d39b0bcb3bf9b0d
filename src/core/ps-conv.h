/* ps-conv.h: direct Conv2D and Dense kernels on weights packed once per plan, with the
 * bias and ReLU (and a following max-pool) fused into the output loop. They use AVX-512
 * when the CPU has it; elsewhere ps_conv_pack_new() says no and the plan keeps im2col +
 * sgemm. */
#pragma once

#include "ps-layer.h"

G_BEGIN_DECLS

typedef struct _PsConvPack PsConvPack;

/* TRUE when the CPU runs the kernels and $PRUNESCOPE_CONV is not "gemm" (read on every
 * call, so tests can compare both paths). */
gboolean     ps_conv_available          (void);
/* The layer's weights in the kernels' layout, or NULL when the kernels do not apply (not
 * available, padding, not a Conv2D/Dense layer). The pack copies the weights: a plan
 * made before the weights change computes with the old ones. */
PsConvPack  *ps_conv_pack_new           (const PsLayer    *layer);
void         ps_conv_pack_free          (PsConvPack       *pack);
/* Whether a Conv2D's pack runs on the row kernel (16 output columns per vector) rather
 * than the channel kernel (16 output channels per vector): both give the same bits. */
gboolean     ps_conv_pack_uses_rows     (const PsConvPack *pack);
/* linear (may be NULL) = x * W + bias, out = ReLU of it when @relu, else the same values. */
void         ps_conv_forward            (const PsConvPack *pack,
                                         int               n,
                                         const float      *x,
                                         gboolean          relu,
                                         float            *linear,
                                         float            *out);
/* Whether ps_conv_forward_sparse() applies: a Dense layer whose weights are all finite. */
gboolean     ps_conv_can_sparse         (const PsConvPack *pack);
/* Bytes of scratch ps_conv_forward_sparse() needs. */
gsize        ps_conv_sparse_scratch_size (const PsConvPack *pack);
/* ps_conv_forward() over the inputs that are not zero only: the same sums in the same
 * order, hence the same bits, and cheaper when most inputs are zero (as after a ReLU).
 * Successive images whose nonzero inputs mostly coincide go together, each weight read
 * once for them all. @scratch holds ps_conv_sparse_scratch_size() bytes. */
void         ps_conv_forward_sparse     (const PsConvPack *pack,
                                         int               n,
                                         const float      *x,
                                         gboolean          relu,
                                         float            *linear,
                                         float            *out,
                                         gpointer          scratch);
/* Whether ps_conv_forward_pool() can do @pool on this convolution's output. */
gboolean     ps_conv_can_pool           (const PsConvPack *pack,
                                         const PsLayer    *pool);
/* Floats of scratch ps_conv_forward_pool() needs. */
gsize        ps_conv_pool_scratch_size  (const PsConvPack *pack,
                                         const PsLayer    *pool);
/* out = @pool (a max-pool) of the convolution's output (ReLU'd when @relu), computed a
 * band of rows at a time in @scratch: the full-size convolution output is never written. */
void         ps_conv_forward_pool       (const PsConvPack *pack,
                                         const PsLayer    *pool,
                                         int               n,
                                         const float      *x,
                                         gboolean          relu,
                                         float            *out,
                                         float            *scratch);
/* Whether ps_conv_forward_pool_planar() applies: a row-kernel convolution with stride 1
 * across, whose planar input is the channels-first image itself. */
gboolean     ps_conv_reads_planar       (const PsConvPack *pack);
/* Floats per image of a padded convolution's framed input (0 for a layer reading its input
 * as it is): the kernels of such a pack read ps_conv_pad()'s frames, not the layer's input. */
gsize        ps_conv_padded_size        (const PsConvPack *pack);
/* @n images of the layer's input into zeroed frames (ps_conv_padded_size() floats each),
 * at the layer's padding offsets. */
void         ps_conv_pad                (const PsConvPack *pack,
                                         int               n,
                                         const float      *x,
                                         float            *xp);
/* ps_conv_forward_pool() on images given channels-first (n x C x H x W, as the lab's files
 * store them), the same bits, without the copy into planes. */
void         ps_conv_forward_pool_planar (const PsConvPack *pack,
                                          const PsLayer    *pool,
                                          int               n,
                                          const float      *x,
                                          gboolean          relu,
                                          float            *out,
                                          float            *scratch);
/* Writes image @b of a batch, channels-first, into @out. */
typedef void (*PsConvFill) (int b, float *out, gpointer data);
/* The same, each image written by @fill just before the convolution reads it, into
 * @scratch, where it stays in the cache (a batch kept compact, as bytes, until then). */
void         ps_conv_forward_pool_fill   (const PsConvPack *pack,
                                          const PsLayer    *pool,
                                          int               n,
                                          PsConvFill        fill,
                                          gpointer          data,
                                          gboolean          relu,
                                          float            *out,
                                          float            *scratch);

/* y[j] -= v * w[j] for j < n, rounded as written (a product, then a difference: the
 * same bits with or without the vector unit). */
void         ps_conv_sub_scaled         (int               n,
                                         float             v,
                                         const float      *w,
                                         float            *y);

/* ps_conv_sub_scaled (n, v[t], w[t], y) for t = 0 … m-1 in turn (the same bits), with y
 * read and written once. */
void         ps_conv_sub_scaled_sum     (int               n,
                                         int               m,
                                         const float      *v,
                                         const float *const *w,
                                         float            *y);
/* ps_conv_sub_scaled_sum() on @rows vectors y[r] in turn, row r taking the next m[r] terms
 * of @v and @w (the same bits). */
void         ps_conv_sub_scaled_rows    (int               n,
                                         int               rows,
                                         const int        *m,
                                         const float      *v,
                                         const float *const *w,
                                         float *const     *y);
/* ps_conv_sub_scaled_rows() on @npos rows y + o * n, row o taking K terms from one window:
 * v[in[o * K + k]] with weights w + k * @wstride for k < K, zero values left out (the same
 * bits). Each window's K taps use the same weights, held in registers. FALSE, doing nothing,
 * where that does not fit (no AVX-512, K > 4, n > 96): the caller gathers the terms. */
gboolean     ps_conv_sub_windows        (int               n,
                                         int               K,
                                         int               npos,
                                         const int        *in,
                                         const float      *v,
                                         const float      *w,
                                         gsize             wstride,
                                         float            *y);
/* The first index of the largest of @k scores and, when @margin is not NULL, its gap to the
 * largest of the others (to -G_MAXFLOAT when there are none): the plain loop's results,
 * NaN included. */
void         ps_conv_row_argmax         (int               k,
                                         const float      *row,
                                         int              *best,
                                         float            *margin);
/* The sum of (a[j] - b[j])^2 for j < n, in double (each difference rounded to float, as
 * the plain loop does; the sum's order may differ from it). */
double       ps_conv_sq_dist            (int               n,
                                         const float      *a,
                                         const float      *b);

/* out = max (in, 0) (+0 for NaN and -0) with the vector unit; FALSE when the CPU has
 * none (nothing written). */
gboolean     ps_conv_relu               (gsize             n,
                                         const float      *in,
                                         float            *out);
/* The sum of a[j]^2 for j < n, in double. */
double       ps_conv_sq_norm            (int               n,
                                         const float      *a);

G_END_DECLS
