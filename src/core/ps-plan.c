/* ps-plan.c: batched forward pass; Conv2D and Dense through the direct kernels of
 * ps-conv.c where the CPU has them, else as im2col + OpenBLAS sgemm */
#define G_LOG_DOMAIN "ps-plan"

#include "ps-plan.h"
#include "ps-conv.h"
#include "ps-huge.h"
#include "ps-layer-ops.h"
#include "ps-vec4.h"
#include "ps-winograd.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

struct _PsPlan {
  const PsModel *model;
  int            max_batch;
  float        **out;      /* per layer; aliases the input for identity layers */
  float         *input;    /* the input layer's own buffer (out[input] may be the caller's) */
  float        **linear;   /* per layer, only where kept */
  gboolean      *owned;
  float         *scratch;
  float         *framed;   /* a padded conv's input in its zeroed frame (ps_conv_pad ()) */
  gboolean       logits;   /* leave the output layer's softmax out */
  PsConvPack   **packs;    /* per layer, where the direct kernels apply */
  int           *pool_of;  /* per conv: the max-pool it can be fused with, else -1 */
  PsWinograd   **winos;    /* per conv fused with its pool: by Winograd's F(2x2, 3x3), or NULL */
  gboolean      *keep_out; /* outputs the caller reads */
  gboolean      *skip;     /* pools already computed by their conv, during one run */
  gboolean       fused;
  gboolean      *sparse;   /* Dense layers whose inputs are mostly zeros */
  gpointer       sparse_scratch; /* of the sparse kernel, sparse_scratch_len bytes */
  gsize          sparse_scratch_len;
  int            planar_conv; /* the conv reading the input, when it can read planes; else -1 */
  const float   *planar_in;   /* the caller's channels-first images, or NULL */
  PsConvFill     fill;        /* or the caller's function writing them one by one */
  gpointer       fill_data;
};

static gboolean
is_identity (const PsLayer *l)
{
  return l->kind == PS_LAYER_FLATTEN || l->kind == PS_LAYER_DROPOUT
         || (l->kind == PS_LAYER_ACTIVATION && l->activation == PS_ACT_LINEAR);
}

gsize
ps_layer_scratch_size (const PsLayer *l, int n)
{
  if (l->kind != PS_LAYER_CONV2D)
    return 0;
  /* 1x1 stride-1 unpadded convolutions read their input directly */
  return (gsize) n * l->out.h * l->out.w * l->kh * l->kw * l->in.c;
}

/* The one layer reading @layer, or -1. */
static int
single_consumer (const PsModel *m, int layer)
{
  int found = -1;

  for (int i = layer + 1; i < m->n_layers; i++)
    for (int j = 0; j < m->layers[i]->n_inputs; j++)
      if (m->layers[i]->inputs[j] == layer)
        {
          if (found >= 0 || m->layers[i]->n_inputs != 1)
            return -1;
          found = i;
        }
  return found;
}

PsPlan *
ps_plan_new (const PsModel *model, int max_batch)
{
  PsPlan *p = g_new0 (PsPlan, 1);
  gsize scratch = 0, framed = 0;

  p->model = model;
  p->max_batch = max_batch;
  p->out = g_new0 (float *, model->n_layers);
  p->linear = g_new0 (float *, model->n_layers);
  p->owned = g_new0 (gboolean, model->n_layers);
  for (int i = 0; i < model->n_layers; i++)
    {
      const PsLayer *l = model->layers[i];

      if (is_identity (l))
        p->out[i] = p->out[l->inputs[0]];
      else
        {
          p->out[i] = ps_huge_alloc (sizeof (float) * max_batch * ps_shape_size (l->out));
          p->owned[i] = TRUE;
        }
    }
  p->input = p->out[model->input];
  p->packs = g_new0 (PsConvPack *, model->n_layers);
  p->pool_of = g_new (int, model->n_layers);
  p->winos = g_new0 (PsWinograd *, model->n_layers);
  p->keep_out = g_new0 (gboolean, model->n_layers);
  p->skip = g_new0 (gboolean, model->n_layers);
  p->sparse = g_new0 (gboolean, model->n_layers);
  for (int i = 0; i < model->n_layers; i++)
    {
      int j = single_consumer (model, i);

      p->packs[i] = ps_conv_pack_new (model->layers[i]);
      p->pool_of[i] = -1;
      /* im2col's patches only where the direct kernels do not apply */
      if (p->packs[i] == NULL)
        scratch = MAX (scratch, ps_layer_scratch_size (model->layers[i], max_batch));
      framed = MAX (framed, ps_conv_padded_size (p->packs[i]));
      if (p->packs[i] != NULL && model->layers[i]->kind == PS_LAYER_CONV2D && j >= 0
          && i != model->output && model->layers[i]->activation != PS_ACT_SOFTMAX
          && ps_conv_can_pool (p->packs[i], model->layers[j]))
        {
          p->pool_of[i] = j;
          scratch = MAX (scratch, ps_conv_pool_scratch_size (p->packs[i], model->layers[j]));
          p->winos[i] = ps_winograd_new (model->layers[i], model->layers[j]);
          if (p->winos[i] != NULL)
            scratch = MAX (scratch, ps_winograd_scratch_size (p->winos[i]));
        }
    }
  p->scratch = ps_huge_alloc (sizeof (float) * MAX (scratch, 1));
  if (framed > 0)
    p->framed = ps_huge_alloc (sizeof (float) * framed * max_batch);
  p->planar_conv = single_consumer (model, model->input);
  if (p->planar_conv >= 0
      && (p->pool_of[p->planar_conv] < 0 || !ps_conv_reads_planar (p->packs[p->planar_conv])))
    p->planar_conv = -1;
  /* Dense layers reading mostly zeros (after a ReLU, or a pruned layer) skip them, with the
   * same bits, on the batches where that holds (run_layer () tells) */
  for (int i = 0; i < model->n_layers; i++)
    if (model->layers[i]->kind == PS_LAYER_DENSE)
      ps_plan_set_sparse (p, i, TRUE);
  return p;
}

void
ps_plan_free (PsPlan *p)
{
  if (p == NULL)
    return;
  ps_plan_set_input (p, NULL);
  for (int i = 0; i < p->model->n_layers; i++)
    {
      if (p->owned[i])
        g_free (p->out[i]);
      g_free (p->linear[i]);
      ps_conv_pack_free (p->packs[i]);
      ps_winograd_free (p->winos[i]);
    }
  g_free (p->winos);
  g_free (p->packs);
  g_free (p->pool_of);
  g_free (p->keep_out);
  g_free (p->skip);
  g_free (p->sparse);
  g_free (p->sparse_scratch);
  g_free (p->out);
  g_free (p->linear);
  g_free (p->owned);
  g_free (p->scratch);
  g_free (p->framed);
  g_free (p);
}

void
ps_plan_set_input (PsPlan *p, const float *images)
{
  float *from = p->out[p->model->input], *to = images ? (float *) images : p->input;

  p->planar_in = NULL;
  p->fill = NULL;
  p->fill_data = NULL;

  /* the input layer and the identity layers that alias it */
  for (int i = 0; i < p->model->n_layers; i++)
    if (p->out[i] == from)
      p->out[i] = to;
}

/* Whether a run over @run (NULL: all) computes the planar conv with its pool, as
 * run_all() decides. */
static gboolean
planar_direct (const PsPlan *p, const gboolean *run)
{
  int c = p->planar_conv;

  return c >= 0 && p->fused && p->linear[c] == NULL && !p->keep_out[c]
         && (run == NULL || (run[c] && run[p->pool_of[c]]));
}

gboolean
ps_plan_reads_planar (const PsPlan *p)
{
  return planar_direct (p, NULL);
}

void
ps_plan_set_input_planar (PsPlan *p, const float *images)
{
  ps_plan_set_input (p, NULL);
  p->planar_in = images;
}

void
ps_plan_set_input_fill (PsPlan *p, PsConvFill fill, gpointer data)
{
  g_return_if_fail (planar_direct (p, NULL));
  ps_plan_set_input (p, NULL);
  p->fill = fill;
  p->fill_data = data;
}

/* The caller's channels-first images into the input layer's own buffer (NHWC), for a
 * run whose first layer cannot read them as they are. */
static void
planar_to_input (PsPlan *p, int n)
{
  const PsShape in = p->model->layers[p->model->input]->out;
  const gsize hw = (gsize) in.h * in.w, img = hw * in.c;

  for (int b = 0; b < n; b++)
    for (gsize q = 0; q < hw; q++)
      for (int c = 0; c < in.c; c++)
        p->input[b * img + q * in.c + c] = p->planar_in[b * img + c * hw + q];
}

float *
ps_plan_output (PsPlan *p, int layer)
{
  return p->out[layer];
}

void
ps_plan_keep_linear (PsPlan *p, int layer)
{
  const PsLayer *l = p->model->layers[layer];

  g_return_if_fail (l->kind == PS_LAYER_CONV2D || l->kind == PS_LAYER_DENSE);
  if (p->linear[layer] == NULL)
    p->linear[layer] = ps_huge_alloc (sizeof (float) * p->max_batch * ps_shape_size (l->out));
}

float *
ps_plan_linear (PsPlan *p, int layer)
{
  return p->linear[layer];
}

/* ReLU on GCC vectors of four floats, written out because GCC's cheap vectoriser at -O2
 * leaves the loop scalar, and the scalar loop branches on the sign of every value: the
 * sweep's steps apply ReLU to a front's outputs for every image a step changes, and that
 * loop was a quarter of the demo's sweep. */
/* max (x, 0) as the plain loop computes it: NaN and -0 give +0. */
static void
relu (const float *in, float *out, gsize n)
{
  const PsVec4 zero = { 0 };
  gsize i = 0;

  if (ps_conv_relu (n, in, out))
    return;
  for (; i + 8 <= n; i += 8)
    {
      PsVec4 a = ps_vec4_load (in + i), b = ps_vec4_load (in + i + 4);

      ps_vec4_store ((PsVec4) ((PsVec4i) a & (a > zero)), out + i);
      ps_vec4_store ((PsVec4) ((PsVec4i) b & (b > zero)), out + i + 4);
    }
  for (; i < n; i++)
    out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void
ps_activation_apply (PsActivation act, int rows, int cols, const float *in, float *out)
{
  gsize total = (gsize) rows * cols;

  switch (act)
    {
    case PS_ACT_RELU:
      relu (in, out, total);
      break;
    case PS_ACT_SOFTMAX:
      for (int r = 0; r < rows; r++)
        {
          const float *x = in + (gsize) r * cols;
          float *y = out + (gsize) r * cols;
          float mx = -FLT_MAX;
          double sum = 0.0;

          for (int j = 0; j < cols; j++)
            mx = MAX (mx, x[j]);
          for (int j = 0; j < cols; j++)
            sum += (y[j] = expf (x[j] - mx));
          for (int j = 0; j < cols; j++)
            y[j] = (float) (y[j] / sum);
        }
      break;
    case PS_ACT_LINEAR:
    default:
      if (out != in)
        memcpy (out, in, total * sizeof (float));
      break;
    }
}

/* Patch rows in (ky, kx, c) order, which is the Keras kernel's (kh, kw, in) order. */
static void
im2col (const PsLayer *l, int n, const float *x, float *col)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;
  const gsize row = (gsize) l->kh * l->kw * C;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          float *dst = col + (((gsize) b * OH + oy) * OW + ox) * row;
          int x0 = ox * l->sw - l->pad_left;

          for (int ky = 0; ky < l->kh; ky++)
            {
              int y = oy * l->sh + ky - l->pad_top;
              float *d = dst + (gsize) ky * l->kw * C;

              if (y < 0 || y >= H)
                {
                  memset (d, 0, sizeof (float) * l->kw * C);
                  continue;
                }
              if (x0 >= 0 && x0 + l->kw <= W)
                memcpy (d, x + (((gsize) b * H + y) * W + x0) * C, sizeof (float) * l->kw * C);
              else
                for (int kx = 0; kx < l->kw; kx++)
                  {
                    int xx = x0 + kx;
                    if (xx < 0 || xx >= W)
                      memset (d + kx * C, 0, sizeof (float) * C);
                    else
                      memcpy (d + kx * C, x + (((gsize) b * H + y) * W + xx) * C, sizeof (float) * C);
                  }
            }
        }
}

/* y (rows x cols) = x (rows x k) . w (k x cols) + bias */
static void
matmul_bias (int rows, int k, int cols, const float *x, const float *w, const float *bias, float *y)
{
  for (int r = 0; r < rows; r++)
    memcpy (y + (gsize) r * cols, bias, sizeof (float) * cols);
  cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, cols, k,
               1.0f, x, k, w, cols, 1.0f, y, cols);
}

static void
maxpool (const PsLayer *l, int n, const float *x, float *y)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          float *d = y + (((gsize) b * OH + oy) * OW + ox) * C;

          for (int c = 0; c < C; c++)
            d[c] = -FLT_MAX;
          for (int ky = 0; ky < l->kh; ky++)
            {
              int yy = oy * l->sh + ky - l->pad_top;
              if (yy < 0 || yy >= H)
                continue;
              for (int kx = 0; kx < l->kw; kx++)
                {
                  int xx = ox * l->sw + kx - l->pad_left;
                  const float *s;
                  if (xx < 0 || xx >= W)
                    continue;
                  s = x + (((gsize) b * H + yy) * W + xx) * C;
                  for (int c = 0; c < C; c++)
                    d[c] = MAX (d[c], s[c]);
                }
            }
        }
}

void
ps_layer_forward (const PsLayer *l, int n, const float * const *inputs,
                  float *linear, float *output, float *scratch)
{
  const gsize size = (gsize) n * ps_shape_size (l->out);
  float *lin = linear ? linear : output;

  switch (l->kind)
    {
    case PS_LAYER_CONV2D:
      if (ps_layer_ops_conv (l, n, inputs[0], lin, output, scratch))
        break;
      {
        int rows = n * l->out.h * l->out.w;
        int k = l->kh * l->kw * l->in.c;
        const float *col = inputs[0];

        /* A 1x1 unpadded stride-1 convolution is already a matrix product. */
        if (!(l->kh == 1 && l->kw == 1 && l->sh == 1 && l->sw == 1))
          {
            im2col (l, n, inputs[0], scratch);
            col = scratch;
          }
        matmul_bias (rows, k, l->out.c, col, l->kernel, l->bias, lin);
        ps_activation_apply (l->activation, rows, l->out.c, lin, output);
      }
      break;
    case PS_LAYER_DENSE:
      matmul_bias (n, l->in.c, l->out.c, inputs[0], l->kernel, l->bias, lin);
      ps_activation_apply (l->activation, n, l->out.c, lin, output);
      break;
    case PS_LAYER_MAXPOOL2D:
      maxpool (l, n, inputs[0], output);
      break;
    case PS_LAYER_ADD:
      if (l->n_inputs == 1)
        memcpy (output, inputs[0], size * sizeof (float));
      else
        ps_vec4_add (inputs[0], inputs[1], output, size);
      for (int i = 2; i < l->n_inputs; i++)
        ps_vec4_add (output, inputs[i], output, size);
      break;
    case PS_LAYER_ACTIVATION:
      /* Keras applies softmax along the last axis, at every position. */
      ps_activation_apply (l->activation, n * l->out.h * l->out.w, l->out.c, inputs[0], output);
      break;
    case PS_LAYER_FLATTEN:
    case PS_LAYER_DROPOUT: /* identity at inference */
      if (output != inputs[0])
        memcpy (output, inputs[0], size * sizeof (float));
      break;
    case PS_LAYER_AFFINE:
    case PS_LAYER_AVGPOOL2D:
    case PS_LAYER_GLOBAL_AVGPOOL:
    case PS_LAYER_UNARY:
    case PS_LAYER_CONCAT:
      ps_layer_ops_forward (l, n, inputs, output);
      break;
    case PS_LAYER_INPUT:
    default:
      break;
    }
}

/* The direct kernel, or its sparse form (the same bits) when the plan was told this
 * layer's inputs are mostly zeros and, in this batch, at least two thirds are: per
 * multiply-add it is slower than the register-blocked kernel. */
static void
forward_packed (PsPlan *p, int i, int n, const float *in, gboolean relu, float *lin, float *out)
{
  const PsConvPack *pack = p->packs[i];

  if (p->sparse[i])
    {
      /* the first few images tell (four at a time: the steps ask for every batch) */
      gsize total = (gsize) MIN (n, 4) * p->model->layers[i]->in.c, nnz = 0, j = 0;
      PsVec4i count = { 0 };

      for (; j + 4 <= total; j += 4)
        count -= ps_vec4_load (in + j) != (PsVec4) { 0 }; /* -1 where nonzero */
      nnz = (gsize) (count[0] + count[1] + count[2] + count[3]);
      for (; j < total; j++)
        nnz += in[j] != 0.0f;
      if (nnz * 3 <= total)
        {
          ps_conv_forward_sparse (pack, n, in, relu, lin, out, p->sparse_scratch);
          return;
        }
    }
  ps_conv_forward (pack, n, in, relu, lin, out);
}

/* Conv2D / Dense through the direct kernels; into the max-pool @pool when >= 0. */
static void
run_packed (PsPlan *p, const PsLayer *l, int i, int n, const float *in, int pool)
{
  const PsConvPack *pack = p->packs[i];
  gboolean relu = l->activation == PS_ACT_RELU;

  if (ps_conv_padded_size (pack) > 0)
    {
      ps_conv_pad (pack, n, in, p->framed);
      in = p->framed;
    }
  if (pool >= 0 && i == p->planar_conv && p->fill != NULL)
    ps_conv_forward_pool_fill (pack, p->model->layers[pool], n, p->fill, p->fill_data, relu,
                               p->out[pool], p->scratch);
  else if (pool >= 0 && i == p->planar_conv && p->planar_in != NULL)
    ps_conv_forward_pool_planar (pack, p->model->layers[pool], n, p->planar_in, relu,
                                 p->out[pool], p->scratch);
  else if (pool >= 0 && p->winos[i] != NULL)
    ps_winograd_forward_pool (p->winos[i], n, in, relu, p->out[pool], p->scratch);
  else if (pool >= 0)
    ps_conv_forward_pool (pack, p->model->layers[pool], n, in, relu, p->out[pool], p->scratch);
  else if (l->activation == PS_ACT_SOFTMAX)
    {
      float *lin = p->linear[i] ? p->linear[i] : p->out[i];

      forward_packed (p, i, n, in, FALSE, NULL, lin);
      ps_activation_apply (l->activation, n * l->out.h * l->out.w, l->out.c, lin, p->out[i]);
    }
  else
    forward_packed (p, i, n, in, relu, p->linear[i], p->out[i]);
}

/* @fuse: the max-pool that may be computed with this layer (-1: none). */
static void
run_layer (PsPlan *p, int i, int n, int fuse)
{
  const PsLayer *l = p->model->layers[i];
  const float *ins[PS_MAX_INPUTS];
  PsLayer linear;

  if (l->kind == PS_LAYER_INPUT)
    return;
  for (int j = 0; j < l->n_inputs; j++)
    ins[j] = p->out[l->inputs[j]];
  if (p->logits && i == p->model->output && l->activation == PS_ACT_SOFTMAX)
    {
      /* softmax keeps the order of the scores: classes need only the logits */
      linear = *l;
      linear.activation = PS_ACT_LINEAR;
      l = &linear;
    }
  if (p->packs[i] != NULL)
    run_packed (p, l, i, n, ins[0], fuse);
  else
    ps_layer_forward (l, n, ins, p->linear[i], p->out[i], p->scratch);
}

/* Runs the layers with run[i] set (all when @run is NULL), fusing each conv with the
 * max-pool reading it when the plan may and nobody reads the conv's own output. */
static void
run_all (PsPlan *p, int n, const gboolean *run)
{
  const PsModel *m = p->model;

  memset (p->skip, 0, sizeof (gboolean) * m->n_layers);
  if (p->planar_in != NULL && !planar_direct (p, run))
    planar_to_input (p, n);
  g_return_if_fail (p->fill == NULL || planar_direct (p, run));
  for (int i = 0; i < m->n_layers; i++)
    {
      int j = p->pool_of[i];

      if ((run != NULL && !run[i]) || p->skip[i])
        continue;
      if (!p->fused || j < 0 || p->linear[i] != NULL || p->keep_out[i] || (run != NULL && !run[j]))
        j = -1;
      run_layer (p, i, n, j);
      if (j >= 0)
        p->skip[j] = TRUE;
    }
}

void
ps_plan_set_fused (PsPlan *p, gboolean fused)
{
  p->fused = fused;
}

void
ps_plan_keep_output (PsPlan *p, int layer)
{
  p->keep_out[layer] = TRUE;
}

void
ps_plan_set_sparse (PsPlan *p, int layer, gboolean sparse)
{
  g_return_if_fail (layer >= 0 && layer < p->model->n_layers);
  if (!sparse || !ps_conv_can_sparse (p->packs[layer]))
    {
      p->sparse[layer] = FALSE;
      return;
    }
  p->sparse[layer] = TRUE;
  if (ps_conv_sparse_scratch_size (p->packs[layer]) > p->sparse_scratch_len)
    {
      p->sparse_scratch_len = ps_conv_sparse_scratch_size (p->packs[layer]);
      g_free (p->sparse_scratch);
      p->sparse_scratch = g_malloc (p->sparse_scratch_len);
    }
}

void
ps_plan_set_logits (PsPlan *p, gboolean logits)
{
  p->logits = logits;
}

void
ps_plan_run_layer (PsPlan *p, int layer, int n)
{
  g_return_if_fail (n <= p->max_batch);
  run_layer (p, layer, n, -1);
}

void
ps_plan_forward (PsPlan *p, int n)
{
  g_return_if_fail (n <= p->max_batch);
  run_all (p, n, NULL);
}

void
ps_plan_run_layers (PsPlan *p, int n, const gboolean *run)
{
  g_return_if_fail (n <= p->max_batch);
  run_all (p, n, run);
}

void
ps_plan_activate (PsPlan *p, int layer, int n)
{
  const PsLayer *l = p->model->layers[layer];
  int rows = n * l->out.h * l->out.w;

  ps_activation_apply (l->activation, rows, l->out.c, p->linear[layer], p->out[layer]);
}

void
ps_plan_argmax (PsPlan *p, int n, int *classes)
{
  ps_plan_argmax_margin (p, n, classes, NULL);
}

void
ps_plan_argmax_margin (PsPlan *p, int n, int *classes, float *margins)
{
  const PsModel *m = p->model;
  int k = m->n_classes;
  const float *y = p->out[m->output];

  for (int b = 0; b < n; b++)
    ps_conv_row_argmax (k, y + (gsize) b * k, &classes[b], margins ? &margins[b] : NULL);
}
