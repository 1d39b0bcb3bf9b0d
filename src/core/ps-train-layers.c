/* ps-train-layers.c: backward passes, one per layer kind, on NHWC batches.
 * Convolution mirrors ps-plan.c's forward: the weight gradient is col^T . dY and the input
 * gradient is col2im (dY . W^T), both through OpenBLAS. The loops over channels go four at
 * a time on GCC's vectors (its cheap vectoriser at -O2 leaves them scalar): the same
 * operations on each value, in the same order. */
#define G_LOG_DOMAIN "ps-train"

#include "ps-train-private.h"
#include "ps-plan.h"
#include "ps-vec4.h"

#include <cblas.h>
#include <float.h>
#include <string.h>

void
_ps_dropout_mask (double rate, guint32 seed, gsize count, float *mask)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float keep = rate < 1.0 ? (float) (1.0 / (1.0 - rate)) : 0.0f;

  for (gsize i = 0; i < count; i++)
    mask[i] = g_rand_double (rand) < rate ? 0.0f : keep;
}

/* Gradient before the activation, in place. */
static void
activation_backward (PsActivation act, int rows, int cols, const float *y, float *d)
{
  gsize total = (gsize) rows * cols;

  switch (act)
    {
    case PS_ACT_RELU:
      {
        const PsVec4 zero = { 0 };
        gsize i = 0;

        /* keep d where y > 0 (not for NaN), else +0 */
        for (; i + 4 <= total; i += 4)
          ps_vec4_store ((PsVec4) ((PsVec4i) ps_vec4_load (d + i) & (ps_vec4_load (y + i) > zero)),
                         d + i);
        for (; i < total; i++)
          if (!(y[i] > 0.0f))
            d[i] = 0.0f;
      }
      break;
    case PS_ACT_SOFTMAX:
      /* dx = y * (dy - sum(dy * y)) */
      for (int r = 0; r < rows; r++)
        {
          const float *yr = y + (gsize) r * cols;
          float *dr = d + (gsize) r * cols;
          double dot = 0.0;

          for (int j = 0; j < cols; j++)
            dot += (double) dr[j] * yr[j];
          for (int j = 0; j < cols; j++)
            dr[j] = (float) (yr[j] * (dr[j] - dot));
        }
      break;
    case PS_ACT_LINEAR:
    default:
      break;
    }
}

/* The adjoint of ps-plan.c's im2col: adds each patch row back where it was read. */
static void
col2im_add (const PsLayer *l, int n, const float *col, float *dx)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;
  const gsize row = (gsize) l->kh * l->kw * C;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          const float *src = col + (((gsize) b * OH + oy) * OW + ox) * row;

          for (int ky = 0; ky < l->kh; ky++)
            {
              int y = oy * l->sh + ky - l->pad_top;

              if (y < 0 || y >= H)
                continue;
              for (int kx = 0; kx < l->kw; kx++)
                {
                  int x = ox * l->sw + kx - l->pad_left;
                  const float *s = src + ((gsize) ky * l->kw + kx) * C;
                  float *d;

                  if (x < 0 || x >= W)
                    continue;
                  d = dx + (((gsize) b * H + y) * W + x) * C;
                  ps_vec4_add (d, s, d, C);
                }
            }
        }
}

static void
bias_grad (int rows, int cols, const float *d, float *d_bias)
{
  g_autofree double *sum = g_new0 (double, cols);

  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++)
      sum[c] += d[(gsize) r * cols + c];
  for (int c = 0; c < cols; c++)
    d_bias[c] = (float) sum[c];
}

/* dY (rows x cols), X (rows x k), W (k x cols): dW = X^T dY, db = colsum dY, dX (+)= dY W^T. */
static void
linear_backward (int rows, int k, int cols, const float *x, const float *w, const float *d,
                 float *d_kernel, float *d_bias, float *dx, float beta)
{
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, k, cols, rows,
               1.0f, x, k, d, cols, 0.0f, d_kernel, cols);
  bias_grad (rows, cols, d, d_bias);
  if (dx != NULL)
    cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasTrans, rows, k, cols,
                 1.0f, d, cols, w, cols, beta, dx, k);
}

static void
conv_backward (const PsLayer *l, int n, const float *in, float *d, float *d_in,
               float *d_kernel, float *d_bias, const float *col, float *scratch)
{
  int rows = n * l->out.h * l->out.w;
  int k = l->kh * l->kw * l->in.c;

  /* A 1x1 stride-1 convolution read its input directly (see ps-plan.c). */
  if (l->kh == 1 && l->kw == 1 && l->sh == 1 && l->sw == 1)
    {
      linear_backward (rows, k, l->out.c, in, l->kernel, d, d_kernel, d_bias, d_in, 1.0f);
      return;
    }
  g_assert (col != NULL);
  linear_backward (rows, k, l->out.c, col, l->kernel, d, d_kernel, d_bias,
                   d_in ? scratch : NULL, 0.0f);
  if (d_in != NULL)
    col2im_add (l, n, scratch, d_in);
}

/* The gradient goes to the first maximum of each window, as ps-plan.c's forward picks it:
 * four channels at a time, each lane keeping its window's best value and where it is. */
static void
maxpool_backward (const PsLayer *l, int n, const float *x, const float *d, float *dx)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          const float *dd = d + (((gsize) b * OH + oy) * OW + ox) * C;
          float *dxb = dx + (gsize) b * H * W * C;
          const float *xb = x + (gsize) b * H * W * C;
          int c = 0;

          /* an image's offsets fit in an int: the loaders bound a layer's output to
           * PS_LIMIT_TENSOR (2^24) values */
          for (; c + 4 <= C; c += 4)
            {
              PsVec4 best = { -FLT_MAX, -FLT_MAX, -FLT_MAX, -FLT_MAX };
              PsVec4i at = { -1, -1, -1, -1 };
              const PsVec4i lane = { 0, 1, 2, 3 };

              for (int ky = 0; ky < l->kh; ky++)
                for (int kx = 0; kx < l->kw; kx++)
                  {
                    int yy = oy * l->sh + ky - l->pad_top, xx = ox * l->sw + kx - l->pad_left;
                    int i = (yy * W + xx) * C + c;
                    PsVec4 v;
                    PsVec4i take;

                    if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                      continue;
                    v = ps_vec4_load (xb + i);
                    take = (at < 0) | (v > best);
                    best = (PsVec4) (((PsVec4i) v & take) | ((PsVec4i) best & ~take));
                    at = ((i + lane) & take) | (at & ~take);
                  }
              for (int j = 0; j < 4; j++)
                if (at[j] >= 0)
                  dxb[at[j]] += dd[c + j];
            }
          for (; c < C; c++)
            {
              float best = -FLT_MAX;
              gsize at = G_MAXSIZE;

              for (int ky = 0; ky < l->kh; ky++)
                for (int kx = 0; kx < l->kw; kx++)
                  {
                    int yy = oy * l->sh + ky - l->pad_top, xx = ox * l->sw + kx - l->pad_left;
                    gsize i = (((gsize) b * H + yy) * W + xx) * C + c;

                    if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                      continue;
                    if (at == G_MAXSIZE || x[i] > best)
                      best = x[i], at = i;
                  }
              if (at != G_MAXSIZE)
                dx[at] += d[(((gsize) b * OH + oy) * OW + ox) * C + c];
            }
        }
}

static void
add_into (float *dst, const float *src, gsize len, const float *mask)
{
  if (dst == NULL)
    return;
  if (mask != NULL)
    for (gsize i = 0; i < len; i++)
      dst[i] += src[i] * mask[i];
  else
    ps_vec4_add (dst, src, dst, len);
}

void
_ps_layer_backward (const PsLayer *l, int n, const float * const *in, const float *out,
                    float *d, float **d_in, float *d_kernel, float *d_bias,
                    const float *col, float *scratch, const float *mask, gboolean d_is_linear)
{
  const gsize size = (gsize) n * ps_shape_size (l->out);

  switch (l->kind)
    {
    case PS_LAYER_CONV2D:
      if (!d_is_linear)
        activation_backward (l->activation, n * l->out.h * l->out.w, l->out.c, out, d);
      conv_backward (l, n, in[0], d, d_in[0], d_kernel, d_bias, col, scratch);
      break;
    case PS_LAYER_DENSE:
      if (!d_is_linear)
        activation_backward (l->activation, n, l->out.c, out, d);
      linear_backward (n, l->in.c, l->out.c, in[0], l->kernel, d, d_kernel, d_bias, d_in[0], 1.0f);
      break;
    case PS_LAYER_MAXPOOL2D:
      if (d_in[0] != NULL)
        maxpool_backward (l, n, in[0], d, d_in[0]);
      break;
    case PS_LAYER_ADD:
      for (int j = 0; j < l->n_inputs; j++)
        add_into (d_in[j], d, size, NULL);
      break;
    case PS_LAYER_ACTIVATION:
      /* as in the forward pass: softmax over the channels, at every position */
      if (!d_is_linear)
        activation_backward (l->activation, n * l->out.h * l->out.w, l->out.c, out, d);
      add_into (d_in[0], d, size, NULL);
      break;
    case PS_LAYER_DROPOUT:
      add_into (d_in[0], d, size, mask);
      break;
    case PS_LAYER_FLATTEN:
      add_into (d_in[0], d, size, NULL);
      break;
    case PS_LAYER_INPUT:
    default:
      break;
    }
}
