/* ps-winograd.c: a 3x3 stride-1 convolution followed by a 2x2 stride-2 max-pool (DeepID's
 * conv_2 and conv_3) by Winograd's F(2x2, 3x3). The four conv outputs under a pool window
 * come from the 4x4 input tile under them: with the input tile and the kernel each
 * transformed (V = Bᵀ d B, U = G g Gᵀ), they are Aᵀ (Σ_c U_c ⊙ V_c) A, 16 multiply-adds per
 * (input, output) channel pair where the direct kernel spends 36. The 16 sums over the
 * input channels are 16 small matrix products, one per position of the 4x4 transform: each
 * a Dense layer (C inputs, OC outputs, no bias) on ps-conv.c's direct kernel. Bias, ReLU and the pool's maximum are taken
 * in the output transform: the maximum of the four outputs plus the bias is the maximum of
 * the four biased outputs (rounding keeps the order), so only the pool's output is written.
 *
 * The sums are taken in another order than the direct kernel's, through the transforms:
 * the outputs agree with it to a few units in the last place of their inputs' scale, not
 * bit for bit. $PRUNESCOPE_CONV set to any kernel of ps-conv.c turns this one off. */
#define G_LOG_DOMAIN "ps-winograd"

#include "ps-winograd.h"
#include "ps-conv.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX512_KERNELS 1
#include <immintrin.h>
#define TARGET __attribute__ ((target ("avx512f")))
#endif

#define VEC    16 /* floats per AVX-512 vector */
#define XI     16 /* positions of the 4x4 transform */
#define BLOCK  32 /* tiles transformed and multiplied together */

struct _PsWinograd {
  int         H, W, C;   /* the conv's input */
  int         OC, OCP;   /* output channels, and rounded up to VEC */
  int         PH, PW;    /* the pool's output: one tile per window */
  PsConvPack *u[XI];     /* the transformed kernel at each position, as a Dense layer */
  float      *bias;      /* OCP */
};

static gboolean
applies (const PsLayer *l, const PsLayer *pool)
{
  const char *env = g_getenv ("PRUNESCOPE_CONV");

  if (env != NULL && !g_str_equal (env, "winograd"))
    return FALSE;
  if (l->kind != PS_LAYER_CONV2D || l->kh != 3 || l->kw != 3 || l->sh != 1 || l->sw != 1
      || l->groups > 1 || l->dh > 1 || l->dw > 1 || l->pad_top != 0 || l->pad_left != 0
      || l->out.h != l->in.h - 2 || l->out.w != l->in.w - 2
      || (l->activation != PS_ACT_RELU && l->activation != PS_ACT_LINEAR))
    return FALSE;
  if (pool->kind != PS_LAYER_MAXPOOL2D || pool->kh != 2 || pool->kw != 2 || pool->sh != 2
      || pool->sw != 2 || pool->pad_top != 0 || pool->pad_left != 0 || pool->in.h != l->out.h
      || pool->in.w != l->out.w || pool->in.c != l->out.c || pool->out.h < 1 || pool->out.w < 1
      || 2 * pool->out.h > l->out.h || 2 * pool->out.w > l->out.w)
    return FALSE;
  /* the transforms add and subtract: an infinite weight would make NaNs the direct
   * kernel does not make */
  for (gsize k = 0; k < l->kernel_len; k++)
    if (!isfinite (l->kernel[k]))
      return FALSE;
  for (int c = 0; c < l->out.c; c++)
    if (!isfinite (l->bias[c]))
      return FALSE;
  return ps_conv_available ();
}

PsWinograd *
ps_winograd_new (const PsLayer *l, const PsLayer *pool)
{
  PsWinograd *w;
  const int C = l->in.c, OC = l->out.c;
  g_autofree float *u = NULL, *zeros = NULL;

  if (!applies (l, pool))
    return NULL;
  w = g_new0 (PsWinograd, 1);
  w->H = l->in.h, w->W = l->in.w, w->C = C;
  w->OC = OC;
  w->OCP = (OC + VEC - 1) / VEC * VEC;
  w->PH = pool->out.h, w->PW = pool->out.w;
  w->bias = g_aligned_alloc0 (w->OCP, sizeof (float), 64);
  memcpy (w->bias, l->bias, sizeof (float) * OC);
  /* U = G g Gᵀ, in double: G's rows are g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 */
  /* OCP columns, zero beyond OC: the products' rows are whole vectors, aligned */
  u = g_new0 (float, (gsize) XI * C * w->OCP);
  for (int c = 0; c < C; c++)
    for (int o = 0; o < OC; o++)
      {
        static const double G[4][3] = { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } };
        double g[3][3], gg[4][3];

        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++)
            g[ky][kx] = l->kernel[((gsize) (ky * 3 + kx) * C + c) * OC + o];
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 3; j++)
            gg[i][j] = G[i][0] * g[0][j] + G[i][1] * g[1][j] + G[i][2] * g[2][j];
        for (int i = 0; i < 4; i++)
          for (int j = 0; j < 4; j++)
            u[((gsize) (i * 4 + j) * C + c) * w->OCP + o]
              = (float) (gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2]);
      }
  /* each position's product: a Dense layer of C inputs and OCP outputs, no bias */
  zeros = g_new0 (float, w->OCP);
  for (int xi = 0; xi < XI; xi++)
    {
      PsLayer dense = {
        .kind = PS_LAYER_DENSE,
        .activation = PS_ACT_LINEAR,
        .in = { 1, 1, C },
        .out = { 1, 1, w->OCP },
        .kernel = u + (gsize) xi * C * w->OCP,
        .bias = zeros,
        .kernel_len = (gsize) C * w->OCP,
        .bias_len = w->OCP,
      };

      w->u[xi] = ps_conv_pack_new (&dense);
      if (w->u[xi] == NULL)
        {
          ps_winograd_free (w);
          return NULL;
        }
    }
  return w;
}

void
ps_winograd_free (PsWinograd *w)
{
  if (w == NULL)
    return;
  for (int xi = 0; xi < XI; xi++)
    ps_conv_pack_free (w->u[xi]);
  g_aligned_free (w->bias);
  g_free (w);
}

/* The transformed tiles (XI x BLOCK x C) and their products (XI x BLOCK x OCP, 64-byte
 * aligned). */
gsize
ps_winograd_scratch_size (const PsWinograd *w)
{
  return (gsize) XI * BLOCK * (w->C + w->OCP) + VEC;
}

#ifdef HAVE_AVX512_KERNELS

static inline __attribute__ ((always_inline)) TARGET __mmask16
lanes (int count)
{
  return count >= VEC ? 0xffff : (__mmask16) ((1u << count) - 1);
}

/* V = Bᵀ d B for tiles t0 .. t0+nt-1 (counted over all images, row-major over the pool's
 * windows) into v: position xi of tile t, channel c at (xi * BLOCK + t) * C + c. Bᵀ's rows:
 * d0 - d2, d1 + d2, d2 - d1, d1 - d3. */
static inline __attribute__ ((always_inline)) TARGET void
transform_input_c (const PsWinograd *w, const int C, const float *x, gsize t0, int nt, float *v)
{
  const gsize per_image = (gsize) w->PH * w->PW, img = (gsize) w->H * w->W * C;
  const gsize row = (gsize) w->W * C;

  for (int t = 0; t < nt; t++)
    {
      const gsize g = t0 + t, b = g / per_image, rem = g % per_image;
      const int ty = (int) (rem / w->PW), tx = (int) (rem % w->PW);
      const float *base = x + b * img + (gsize) 2 * ty * row + (gsize) 2 * tx * C;

      for (int c = 0; c < C; c += VEC)
        {
          const __mmask16 m = lanes (C - c);
          __m512 d[4][4], r[4][4];

#pragma GCC unroll 4
          for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
              d[i][j] = _mm512_maskz_loadu_ps (m, base + i * row + (gsize) j * C + c);
#pragma GCC unroll 4
          for (int j = 0; j < 4; j++)
            {
              r[0][j] = _mm512_sub_ps (d[0][j], d[2][j]);
              r[1][j] = _mm512_add_ps (d[1][j], d[2][j]);
              r[2][j] = _mm512_sub_ps (d[2][j], d[1][j]);
              r[3][j] = _mm512_sub_ps (d[1][j], d[3][j]);
            }
#pragma GCC unroll 4
          for (int i = 0; i < 4; i++)
            {
              float *o = v + ((gsize) (i * 4) * BLOCK + t) * C + c;
              const gsize step = (gsize) BLOCK * C;

              _mm512_mask_storeu_ps (o, m, _mm512_sub_ps (r[i][0], r[i][2]));
              _mm512_mask_storeu_ps (o + step, m, _mm512_add_ps (r[i][1], r[i][2]));
              _mm512_mask_storeu_ps (o + 2 * step, m, _mm512_sub_ps (r[i][2], r[i][1]));
              _mm512_mask_storeu_ps (o + 3 * step, m, _mm512_sub_ps (r[i][1], r[i][3]));
            }
        }
    }
}

/* DeepID's conv_2 and conv_3 read 20 and 40 channels: with the count known, the tile's
 * sixteen loads and stores take constant offsets, and the loop its registers. */
static TARGET void
transform_input (const PsWinograd *w, const float *x, gsize t0, int nt, float *v)
{
  switch (w->C)
    {
    case 20:
      transform_input_c (w, 20, x, t0, nt, v);
      break;
    case 40:
      transform_input_c (w, 40, x, t0, nt, v);
      break;
    default:
      transform_input_c (w, w->C, x, t0, nt, v);
    }
}

/* Y = Aᵀ M A (Aᵀ's rows: m0 + m1 + m2, m1 - m2 - m3), then the pool window's maximum, the
 * bias and the ReLU, for @nt tiles into their pool outputs (NHWC, OC apart). */
static inline __attribute__ ((always_inline)) TARGET void
transform_output_c (const PsWinograd *w, const int OC, const int OCP, const float *m, int nt,
                    gboolean relu, float *out)
{
  const gsize step = (gsize) BLOCK * OCP;
  const __m512 zero = _mm512_setzero_ps ();

  for (int t = 0; t < nt; t++)
    for (int c = 0; c < OC; c += VEC)
      {
        const __mmask16 k = lanes (OC - c);
        const float *mt = m + (gsize) t * OCP + c;
        __m512 s[2][4], y[4], top;

#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
          {
            const __m512 m0 = _mm512_load_ps (mt + (gsize) j * step);
            const __m512 m1 = _mm512_load_ps (mt + (gsize) (4 + j) * step);
            const __m512 m2 = _mm512_load_ps (mt + (gsize) (8 + j) * step);
            const __m512 m3 = _mm512_load_ps (mt + (gsize) (12 + j) * step);

            s[0][j] = _mm512_add_ps (_mm512_add_ps (m0, m1), m2);
            s[1][j] = _mm512_sub_ps (_mm512_sub_ps (m1, m2), m3);
          }
#pragma GCC unroll 2
        for (int i = 0; i < 2; i++)
          {
            y[2 * i] = _mm512_add_ps (_mm512_add_ps (s[i][0], s[i][1]), s[i][2]);
            y[2 * i + 1] = _mm512_sub_ps (_mm512_sub_ps (s[i][1], s[i][2]), s[i][3]);
          }
        top = _mm512_max_ps (_mm512_max_ps (y[0], y[1]), _mm512_max_ps (y[2], y[3]));
        top = _mm512_add_ps (top, _mm512_load_ps (w->bias + c));
        if (relu)
          top = _mm512_max_ps (top, zero);
        _mm512_mask_storeu_ps (out + (gsize) t * OC + c, k, top);
      }
}

/* DeepID's conv_2 and conv_3 give 40 and 60 channels (as transform_input ()). */
static TARGET void
transform_output (const PsWinograd *w, const float *m, int nt, gboolean relu, float *out)
{
  switch (w->OC)
    {
    case 40:
      transform_output_c (w, 40, 48, m, nt, relu, out);
      break;
    case 60:
      transform_output_c (w, 60, 64, m, nt, relu, out);
      break;
    default:
      transform_output_c (w, w->OC, w->OCP, m, nt, relu, out);
    }
}

#endif /* HAVE_AVX512_KERNELS */

/* @n NHWC images (H x W x C) to the pool's NHWC output (PH x PW x OC). */
void
ps_winograd_forward_pool (const PsWinograd *w, int n, const float *x, gboolean relu, float *out,
                          float *scratch)
{
#ifdef HAVE_AVX512_KERNELS
  const gsize tiles = (gsize) n * w->PH * w->PW;
  float *v = scratch;
  float *m = (float *) (((guintptr) (scratch + (gsize) XI * BLOCK * w->C) + 63) & ~(guintptr) 63);

  for (gsize t0 = 0; t0 < tiles; t0 += BLOCK)
    {
      const int nt = (int) MIN ((gsize) BLOCK, tiles - t0);

      transform_input (w, x, t0, nt, v);
      for (int xi = 0; xi < XI; xi++)
        ps_conv_forward (w->u[xi], nt, v + (gsize) xi * BLOCK * w->C, FALSE, NULL,
                         m + (gsize) xi * BLOCK * w->OCP);
      transform_output (w, m, nt, relu, out + t0 * w->OC);
    }
#else
  g_assert_not_reached ();
#endif
}
