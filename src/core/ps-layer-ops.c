/* ps-layer-ops.c: forward passes of the layer kinds ONNX graphs add. Activations are NHWC. */
#define G_LOG_DOMAIN "ps-layer"

#include "ps-layer-ops.h"
#include "ps-plan.h"
#include "ps-vec4.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

gboolean
ps_layer_ops_conv_is_general (const PsLayer *l)
{
  /* the plain path reads a padded 1x1 convolution's input as if unpadded */
  return l->kind == PS_LAYER_CONV2D
         && (l->groups > 1 || l->dh > 1 || l->dw > 1
             || (l->kh == 1 && l->kw == 1 && l->sh == 1 && l->sw == 1
                 && (l->pad_top || l->pad_left || l->pad_bottom || l->pad_right)));
}

/* Patches of one group, rows in (ky, kx, c) order like the kernel's (kh, kw, in/groups). */
static void
im2col_group (const PsLayer *l, int n, const float *x, int c0, int cg, float *col)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;
  const int dh = MAX (l->dh, 1), dw = MAX (l->dw, 1);
  const gsize row = (gsize) l->kh * l->kw * cg;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          float *d = col + (((gsize) b * OH + oy) * OW + ox) * row;

          for (int ky = 0; ky < l->kh; ky++)
            for (int kx = 0; kx < l->kw; kx++, d += cg)
              {
                int y = oy * l->sh + ky * dh - l->pad_top;
                int xx = ox * l->sw + kx * dw - l->pad_left;

                if (y < 0 || y >= H || xx < 0 || xx >= W)
                  memset (d, 0, sizeof (float) * cg);
                else
                  memcpy (d, x + (((gsize) b * H + y) * W + xx) * C + c0, sizeof (float) * cg);
              }
        }
}

gboolean
ps_layer_ops_conv (const PsLayer *l, int n, const float *x, float *linear, float *output,
                   float *scratch)
{
  const int groups = MAX (l->groups, 1);
  const int cg = l->in.c / groups, og = l->out.c / groups;
  const int rows = n * l->out.h * l->out.w, k = l->kh * l->kw * cg;
  float *lin = linear ? linear : output;

  if (!ps_layer_ops_conv_is_general (l))
    return FALSE;
  for (int r = 0; r < rows; r++)
    memcpy (lin + (gsize) r * l->out.c, l->bias, sizeof (float) * l->out.c);
  for (int g = 0; g < groups; g++)
    {
      im2col_group (l, n, x, g * cg, cg, scratch);
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, og, k,
                   1.0f, scratch, k, l->kernel + (gsize) g * og, l->out.c,
                   1.0f, lin + (gsize) g * og, l->out.c);
    }
  ps_activation_apply (l->activation, rows, l->out.c, lin, output);
  return TRUE;
}

/* Per channel x * k + b (or x / k + b), then the ReLU if asked for (as `y < 0 ? 0 : y`:
 * NaN and -0 go through), four channels at a time: the same operations on each value.
 * (GCC's cheap vectoriser at -O2 leaves the plain loop scalar; it was most of a PreAct
 * ResNet's time outside its convolutions.) */
static void
affine (const PsLayer *l, int n, const float *x, float *y)
{
  const gsize rows = (gsize) n * l->out.h * l->out.w;
  const int C = l->out.c;
  const float *k = l->kernel, *b = l->bias;
  const gboolean relu = l->activation == PS_ACT_RELU, divide = l->divide;
  const PsVec4 zero = { 0 };

  for (gsize r = 0; r < rows; r++)
    {
      const float *xr = x + r * C;
      float *yr = y + r * C;
      int c = 0;

      for (; c + 4 <= C; c += 4)
        {
          /* Division kept as division: x / 255 and x * (1 / 255) round differently. */
          PsVec4 v = divide ? ps_vec4_load (xr + c) / ps_vec4_load (k + c)
                            : ps_vec4_load (xr + c) * ps_vec4_load (k + c);

          v += ps_vec4_load (b + c);
          if (relu)
            v = (PsVec4) ((PsVec4i) v & ~(v < zero));
          ps_vec4_store (v, yr + c);
        }
      for (; c < C; c++)
        {
          float v = (divide ? xr[c] / k[c] : xr[c] * k[c]) + b[c];

          yr[c] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

static void
avgpool (const PsLayer *l, int n, const float *x, float *y)
{
  const int H = l->in.h, W = l->in.w, C = l->in.c;
  const int OH = l->out.h, OW = l->out.w;

  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++)
        {
          float *d = y + (((gsize) b * OH + oy) * OW + ox) * C;
          int count = 0;

          memset (d, 0, sizeof (float) * C);
          for (int ky = 0; ky < l->kh; ky++)
            for (int kx = 0; kx < l->kw; kx++)
              {
                int yy = oy * l->sh + ky - l->pad_top, xx = ox * l->sw + kx - l->pad_left;
                const float *s;

                if (yy < 0 || yy >= H || xx < 0 || xx >= W)
                  continue;
                s = x + (((gsize) b * H + yy) * W + xx) * C;
                for (int c = 0; c < C; c++)
                  d[c] += s[c];
                count++;
              }
          if (l->count_pad)
            count = l->kh * l->kw;
          for (int c = 0; c < C; c++)
            d[c] /= (float) MAX (count, 1);
        }
}

/* Each channel's sum in position order, then divided: four channels at a time (the plain
 * loop's strided sums waited on each addition). */
static void
global_avgpool (const PsLayer *l, int n, const float *x, float *y)
{
  const int P = l->in.h * l->in.w, C = l->in.c;

  for (int b = 0; b < n; b++)
    {
      const float *s = x + (gsize) b * P * C;
      float *d = y + (gsize) b * C;
      int c = 0;

      for (; c + 4 <= C; c += 4)
        {
          PsVec4 sum = { 0 };

          for (int p = 0; p < P; p++)
            sum += ps_vec4_load (s + (gsize) p * C + c);
          ps_vec4_store (sum / (float) P, d + c);
        }
      for (; c < C; c++)
        {
          float sum = 0.0f;

          for (int p = 0; p < P; p++)
            sum += s[(gsize) p * C + c];
          d[c] = sum / (float) P;
        }
    }
}

static void
unary (const PsLayer *l, gsize size, const float *x, float *y)
{
  for (gsize i = 0; i < size; i++)
    switch (l->unary)
      {
      case PS_UNARY_LEAKY_RELU:
        y[i] = x[i] < 0.0f ? l->alpha * x[i] : x[i];
        break;
      case PS_UNARY_CLIP:
        y[i] = x[i] < l->lo ? l->lo : x[i] > l->hi ? l->hi : x[i];
        break;
      case PS_UNARY_SIGMOID:
      default:
        y[i] = 1.0f / (1.0f + expf (-x[i]));
        break;
      }
}

static void
concat (const PsLayer *l, int n, const float * const *inputs, float *y)
{
  const gsize rows = (gsize) n * l->out.h * l->out.w;

  for (gsize r = 0; r < rows; r++)
    {
      float *d = y + r * l->out.c;

      for (int i = 0; i < l->n_inputs; i++)
        {
          memcpy (d, inputs[i] + r * l->in_c[i], sizeof (float) * l->in_c[i]);
          d += l->in_c[i];
        }
    }
}

void
ps_layer_ops_forward (const PsLayer *l, int n, const float * const *inputs, float *output)
{
  switch (l->kind)
    {
    case PS_LAYER_AFFINE:
      affine (l, n, inputs[0], output);
      break;
    case PS_LAYER_AVGPOOL2D:
      avgpool (l, n, inputs[0], output);
      break;
    case PS_LAYER_GLOBAL_AVGPOOL:
      global_avgpool (l, n, inputs[0], output);
      break;
    case PS_LAYER_UNARY:
      unary (l, (gsize) n * ps_shape_size (l->out), inputs[0], output);
      break;
    case PS_LAYER_CONCAT:
      concat (l, n, inputs, output);
      break;
    default:
      g_assert_not_reached ();
    }
}
