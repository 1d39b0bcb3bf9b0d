/* ps-winograd.c: a 3x3 stride-1 convolution followed by a 2x2 stride-2 max-pool (DeepID's
 * conv_2 and conv_3) by Winograd's F(2x2, 3x3) or F(4x4, 3x3). With F(2x2, 3x3) the four
 * conv outputs under a pool window come from the 4x4 input tile under them: with the input
 * tile and the kernel each transformed (V = Bᵀ d B, U = G g Gᵀ), they are
 * Aᵀ (Σ_c U_c ⊙ V_c) A, 16 multiply-adds per (input, output) channel pair where the direct
 * kernel spends 36. F(4x4, 3x3) makes the 16 outputs under four pool windows from a 6x6
 * tile with 36 (the direct kernel: 144), its transforms costing about what F(2x2)'s do per
 * output: it takes the pool's windows in the even part of its rows and columns (all of
 * conv_2's 12x10, the first four rows of conv_3's 5x4), F(2x2) the windows left.
 * The sums over the input channels are small matrix products, one per position of the
 * transform: each a Dense layer (C inputs, OC outputs, no bias) on ps-conv.c's direct
 * kernel. Bias, ReLU and the pool's maximum are taken in the output transform: the maximum
 * of the four outputs plus the bias is the maximum of the four biased outputs (rounding
 * keeps the order), so only the pool's output is written.
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
#define BLOCK  32 /* F(2x2, 3x3)'s tiles transformed and multiplied together */
#define BLOCK4 16 /* F(4x4, 3x3)'s (8 or 32 measured the same; half the scratch of 32) */

struct _PsWinograd {
  int         H, W, C;   /* the conv's input */
  int         OC, OCP;   /* output channels, and rounded up to VEC */
  int         PH, PW;    /* the pool's output */
  int         PH4, PW4;  /* its windows taken by F(4x4) tiles (even; 0 and 0 for none) */
  int         n4, n2;    /* an image's F(4x4) tiles, and its windows left to F(2x2) */
  PsConvPack *u4[36];    /* the kernels transformed for each, at each position of the */
  PsConvPack *u2[16];    /* transform: Dense layers (C inputs, OCP outputs) */
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

/* U = G g Gᵀ for F(@m x @m, 3x3) into @packs ((m + 2)² of them: each position's product
 * as a Dense layer of C inputs and @OCP outputs, zero beyond OC, no bias: the products' rows
 * are whole vectors, aligned). U is made in double. */
static gboolean
pack_transformed (const PsLayer *l, int m, int OCP, PsConvPack **packs)
{
  static const double G2[4][3] = { { 1, 0, 0 }, { 0.5, 0.5, 0.5 }, { 0.5, -0.5, 0.5 }, { 0, 0, 1 } };
  static const double G4[6][3] = { { 1 / 4.0, 0, 0 },
                                   { -1 / 6.0, -1 / 6.0, -1 / 6.0 },
                                   { -1 / 6.0, 1 / 6.0, -1 / 6.0 },
                                   { 1 / 24.0, 1 / 12.0, 1 / 6.0 },
                                   { 1 / 24.0, -1 / 12.0, 1 / 6.0 },
                                   { 0, 0, 1 } };
  const double (*G)[3] = m == 4 ? G4 : G2;
  const int C = l->in.c, OC = l->out.c, n = m + 2;
  g_autofree float *u = g_new0 (float, (gsize) n * n * C * OCP);
  g_autofree float *zeros = g_new0 (float, OCP);

  for (int c = 0; c < C; c++)
    for (int o = 0; o < OC; o++)
      {
        double g[3][3], gg[6][3];

        for (int ky = 0; ky < 3; ky++)
          for (int kx = 0; kx < 3; kx++)
            g[ky][kx] = l->kernel[((gsize) (ky * 3 + kx) * C + c) * OC + o];
        for (int i = 0; i < n; i++)
          for (int j = 0; j < 3; j++)
            gg[i][j] = G[i][0] * g[0][j] + G[i][1] * g[1][j] + G[i][2] * g[2][j];
        for (int i = 0; i < n; i++)
          for (int j = 0; j < n; j++)
            u[((gsize) (i * n + j) * C + c) * OCP + o]
              = (float) (gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2]);
      }
  for (int xi = 0; xi < n * n; xi++)
    {
      PsLayer dense = {
        .kind = PS_LAYER_DENSE,
        .activation = PS_ACT_LINEAR,
        .in = { 1, 1, C },
        .out = { 1, 1, OCP },
        .kernel = u + (gsize) xi * C * OCP,
        .bias = zeros,
        .kernel_len = (gsize) C * OCP,
        .bias_len = OCP,
      };

      packs[xi] = ps_conv_pack_new (&dense);
      if (packs[xi] == NULL)
        return FALSE;
    }
  return TRUE;
}

PsWinograd *
ps_winograd_new (const PsLayer *l, const PsLayer *pool)
{
  PsWinograd *w;
  const int C = l->in.c, OC = l->out.c;

  if (!applies (l, pool))
    return NULL;
  w = g_new0 (PsWinograd, 1);
  w->H = l->in.h, w->W = l->in.w, w->C = C;
  w->OC = OC;
  w->OCP = (OC + VEC - 1) / VEC * VEC;
  w->PH = pool->out.h, w->PW = pool->out.w;
  w->bias = g_aligned_alloc0 (w->OCP, sizeof (float), 64);
  memcpy (w->bias, l->bias, sizeof (float) * OC);
  /* $PRUNESCOPE_WINOGRAD=2 keeps F(2x2) everywhere (for comparisons) */
  if (g_strcmp0 (g_getenv ("PRUNESCOPE_WINOGRAD"), "2") != 0 && w->PH >= 2 && w->PW >= 2)
    w->PH4 = w->PH / 2 * 2, w->PW4 = w->PW / 2 * 2;
  w->n4 = w->PH4 / 2 * (w->PW4 / 2);
  w->n2 = w->PH * w->PW - w->PH4 * w->PW4;
  if ((w->n4 > 0 && !pack_transformed (l, 4, w->OCP, w->u4))
      || (w->n2 > 0 && !pack_transformed (l, 2, w->OCP, w->u2)))
    {
      ps_winograd_free (w);
      return NULL;
    }
  return w;
}

void
ps_winograd_free (PsWinograd *w)
{
  if (w == NULL)
    return;
  for (int xi = 0; xi < 36; xi++)
    ps_conv_pack_free (w->u4[xi]);
  for (int xi = 0; xi < 16; xi++)
    ps_conv_pack_free (w->u2[xi]);
  g_aligned_free (w->bias);
  g_free (w);
}

/* The transformed tiles (positions x block x C) and their products (positions x block x
 * OCP, 64-byte aligned), for the larger of the two transforms. */
gsize
ps_winograd_scratch_size (const PsWinograd *w)
{
  return (gsize) MAX (36 * BLOCK4, 16 * BLOCK) * (w->C + w->OCP) + VEC;
}

#ifdef HAVE_AVX512_KERNELS

static inline __attribute__ ((always_inline)) TARGET __mmask16
lanes (int count)
{
  return count >= VEC ? 0xffff : (__mmask16) ((1u << count) - 1);
}

/* F(2x2)'s tile @g (counted over all images): its image and pool window. An image's windows
 * left to F(2x2) are those right of the F(4x4) tiles, then the rows below them. */
static inline __attribute__ ((always_inline)) void
window2 (const PsWinograd *w, gsize g, gsize *b, int *py, int *px)
{
  const int right = w->PW - w->PW4, beside = w->PH4 * right;
  int rem;

  *b = g / (gsize) w->n2;
  rem = (int) (g % (gsize) w->n2);
  if (rem < beside)
    *py = rem / right, *px = w->PW4 + rem % right;
  else
    *py = w->PH4 + (rem - beside) / w->PW, *px = (rem - beside) % w->PW;
}

/* V = Bᵀ d B for F(2x2)'s tiles t0 .. t0+nt-1 into v: position xi of tile t, channel c at
 * (xi * BLOCK + t) * C + c. Bᵀ's rows: d0 - d2, d1 + d2, d2 - d1, d1 - d3. */
static inline __attribute__ ((always_inline)) TARGET void
transform_input_c (const PsWinograd *w, const int C, const float *x, gsize t0, int nt, float *v)
{
  const gsize img = (gsize) w->H * w->W * C, row = (gsize) w->W * C;

  for (int t = 0; t < nt; t++)
    {
      gsize b;
      int ty, tx;

      window2 (w, t0 + t, &b, &ty, &tx);
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

/* Y = Aᵀ M A (Aᵀ's rows: m0 + m1 + m2, m1 - m2 - m3), then the pool window's maximum, the
 * bias and the ReLU, for F(2x2)'s tiles t0 .. t0+nt-1 into their pool outputs. */
static inline __attribute__ ((always_inline)) TARGET void
transform_output_c (const PsWinograd *w, const int OC, const int OCP, const float *m, gsize t0,
                    int nt, gboolean relu, float *out)
{
  const gsize step = (gsize) BLOCK * OCP;
  const __m512 zero = _mm512_setzero_ps ();

  for (int t = 0; t < nt; t++)
    {
      gsize b;
      int py, px;

      window2 (w, t0 + t, &b, &py, &px);
      float *o = out + ((b * w->PH + py) * w->PW + px) * OC;

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
        _mm512_mask_storeu_ps (o + c, k, top);
      }
    }
}

/* F(4x4, 3x3)'s V = Bᵀ d B for tiles t0 .. t0+nt-1 (4x4 conv outputs each, row-major over
 * an image's tiles), laid out as transform_input_c ()'s. Bᵀ's rows: 4 d0 - 5 d2 + d4,
 * (d4 - 4 d2) ± (d3 - 4 d1), (d4 - d2) ± 2 (d3 - d1), 4 d1 - 5 d3 + d5. */
static inline __attribute__ ((always_inline)) TARGET void
bt6 (const __m512 d[6], __m512 r[6])
{
  const __m512 four = _mm512_set1_ps (4.0f), five = _mm512_set1_ps (5.0f), two = _mm512_set1_ps (2.0f);
  const __m512 a = _mm512_fnmadd_ps (four, d[2], d[4]), b = _mm512_fnmadd_ps (four, d[1], d[3]);
  const __m512 c = _mm512_sub_ps (d[4], d[2]), e = _mm512_mul_ps (two, _mm512_sub_ps (d[3], d[1]));

  r[0] = _mm512_fmadd_ps (four, d[0], _mm512_fnmadd_ps (five, d[2], d[4]));
  r[1] = _mm512_add_ps (a, b);
  r[2] = _mm512_sub_ps (a, b);
  r[3] = _mm512_add_ps (c, e);
  r[4] = _mm512_sub_ps (c, e);
  r[5] = _mm512_fmadd_ps (four, d[1], _mm512_fnmadd_ps (five, d[3], d[5]));
}

static inline __attribute__ ((always_inline)) TARGET void
transform_input4_c (const PsWinograd *w, const int C, const float *x, gsize t0, int nt, float *v)
{
  const gsize per_image = (gsize) w->n4, img = (gsize) w->H * w->W * C;
  const int TW = w->PW4 / 2;
  const gsize row = (gsize) w->W * C, step = (gsize) BLOCK4 * C;

  for (int t = 0; t < nt; t++)
    {
      const gsize g = t0 + t, b = g / per_image, rem = g % per_image;
      const int ty = (int) (rem / TW), tx = (int) (rem % TW);
      const float *base = x + b * img + (gsize) 4 * ty * row + (gsize) 4 * tx * C;

      for (int c = 0; c < C; c += VEC)
        {
          const __mmask16 m = lanes (C - c);
          __m512 r[6][6];

          /* down each column of the tile, then along each row of the result */
#pragma GCC unroll 6
          for (int j = 0; j < 6; j++)
            {
              __m512 d[6], col[6];

#pragma GCC unroll 6
              for (int i = 0; i < 6; i++)
                d[i] = _mm512_maskz_loadu_ps (m, base + i * row + (gsize) j * C + c);
              bt6 (d, col);
#pragma GCC unroll 6
              for (int i = 0; i < 6; i++)
                r[i][j] = col[i];
            }
#pragma GCC unroll 6
          for (int i = 0; i < 6; i++)
            {
              __m512 o[6];
              float *dst = v + ((gsize) (i * 6) * BLOCK4 + t) * C + c;

              bt6 (r[i], o);
#pragma GCC unroll 6
              for (int j = 0; j < 6; j++)
                _mm512_mask_storeu_ps (dst + j * step, m, o[j]);
            }
        }
    }
}

/* F(4x4, 3x3)'s Aᵀ (rows: m0 + a + c, b + 2 d, a + 4 c, b + 8 d + m5, where a, b = m1 ± m2
 * and c, d = m3 ± m4) on six values. */
static inline __attribute__ ((always_inline)) TARGET void
at6 (const __m512 m[6], __m512 y[4])
{
  const __m512 a = _mm512_add_ps (m[1], m[2]), b = _mm512_sub_ps (m[1], m[2]);
  const __m512 c = _mm512_add_ps (m[3], m[4]), d = _mm512_sub_ps (m[3], m[4]);

  y[0] = _mm512_add_ps (_mm512_add_ps (m[0], a), c);
  y[1] = _mm512_fmadd_ps (_mm512_set1_ps (2.0f), d, b);
  y[2] = _mm512_fmadd_ps (_mm512_set1_ps (4.0f), c, a);
  y[3] = _mm512_add_ps (_mm512_fmadd_ps (_mm512_set1_ps (8.0f), d, b), m[5]);
}

/* Y = Aᵀ M A for @nt tiles from @t0, then each 2x2 pool window's maximum, the bias and the
 * ReLU, into the pool's NHWC output (four windows a tile). */
static inline __attribute__ ((always_inline)) TARGET void
transform_output4_c (const PsWinograd *w, const int OC, const int OCP, const float *mm, gsize t0,
                     int nt, gboolean relu, float *out)
{
  const gsize step = (gsize) BLOCK4 * OCP, per_image = (gsize) w->n4;
  const int TW = w->PW4 / 2;
  const __m512 zero = _mm512_setzero_ps ();

  for (int t = 0; t < nt; t++)
    {
      const gsize g = t0 + t, b = g / per_image, rem = g % per_image;
      const int ty = (int) (rem / TW), tx = (int) (rem % TW);
      float *o = out + ((b * w->PH + 2 * ty) * w->PW + 2 * tx) * OC;

      for (int c = 0; c < OC; c += VEC)
        {
          const __mmask16 k = lanes (OC - c);
          const float *mt = mm + (gsize) t * OCP + c;
          const __m512 bias = _mm512_load_ps (w->bias + c);
          __m512 s[4][6];

#pragma GCC unroll 6
          for (int j = 0; j < 6; j++)
            {
              __m512 col[6], y[4];

#pragma GCC unroll 6
              for (int i = 0; i < 6; i++)
                col[i] = _mm512_load_ps (mt + (gsize) (i * 6 + j) * step);
              at6 (col, y);
#pragma GCC unroll 4
              for (int i = 0; i < 4; i++)
                s[i][j] = y[i];
            }
#pragma GCC unroll 2
          for (int a = 0; a < 2; a++)
            {
              __m512 y0[4], y1[4], top;

              at6 (s[2 * a], y0);
              at6 (s[2 * a + 1], y1);
#pragma GCC unroll 2
              for (int bb = 0; bb < 2; bb++)
                {
                  top = _mm512_max_ps (_mm512_max_ps (y0[2 * bb], y0[2 * bb + 1]),
                                       _mm512_max_ps (y1[2 * bb], y1[2 * bb + 1]));
                  top = _mm512_add_ps (top, bias);
                  if (relu)
                    top = _mm512_max_ps (top, zero);
                  _mm512_mask_storeu_ps (o + ((gsize) a * w->PW + bb) * OC + c, k, top);
                }
            }
        }
    }
}

/* DeepID's conv_2 and conv_3 read 20 and 40 channels and give 40 and 60: with the counts
 * known, a tile's loads and stores take constant offsets, and the loops their registers.
 * @four: F(4x4)'s tiles, else F(2x2)'s. */
static TARGET void
transform_input (const PsWinograd *w, gboolean four, const float *x, gsize t0, int nt, float *v)
{
  switch (w->C)
    {
    case 20:
      four ? transform_input4_c (w, 20, x, t0, nt, v) : transform_input_c (w, 20, x, t0, nt, v);
      break;
    case 40:
      four ? transform_input4_c (w, 40, x, t0, nt, v) : transform_input_c (w, 40, x, t0, nt, v);
      break;
    default:
      four ? transform_input4_c (w, w->C, x, t0, nt, v) : transform_input_c (w, w->C, x, t0, nt, v);
    }
}

static TARGET void
transform_output (const PsWinograd *w, gboolean four, const float *m, gsize t0, int nt,
                  gboolean relu, float *out)
{
  switch (w->OC)
    {
    case 40:
      four ? transform_output4_c (w, 40, 48, m, t0, nt, relu, out)
           : transform_output_c (w, 40, 48, m, t0, nt, relu, out);
      break;
    case 60:
      four ? transform_output4_c (w, 60, 64, m, t0, nt, relu, out)
           : transform_output_c (w, 60, 64, m, t0, nt, relu, out);
      break;
    default:
      four ? transform_output4_c (w, w->OC, w->OCP, m, t0, nt, relu, out)
           : transform_output_c (w, w->OC, w->OCP, m, t0, nt, relu, out);
    }
}

#endif /* HAVE_AVX512_KERNELS */

/* @n NHWC images (H x W x C) to the pool's NHWC output (PH x PW x OC). */
void
ps_winograd_forward_pool (const PsWinograd *w, int n, const float *x, gboolean relu, float *out,
                          float *scratch)
{
#ifdef HAVE_AVX512_KERNELS
  float *v = scratch;
  float *m = (float *) (((guintptr) (scratch + (gsize) MAX (36 * BLOCK4, 16 * BLOCK) * w->C) + 63)
                        & ~(guintptr) 63);
  const gsize tiles4 = (gsize) n * w->n4, tiles2 = (gsize) n * w->n2;

  for (gsize t0 = 0; t0 < tiles4; t0 += BLOCK4)
    {
      const int nt = (int) MIN ((gsize) BLOCK4, tiles4 - t0);

      transform_input (w, TRUE, x, t0, nt, v);
      for (int xi = 0; xi < 36; xi++)
        ps_conv_forward (w->u4[xi], nt, v + (gsize) xi * BLOCK4 * w->C, FALSE, NULL,
                         m + (gsize) xi * BLOCK4 * w->OCP);
      transform_output (w, TRUE, m, t0, nt, relu, out);
    }
  for (gsize t0 = 0; t0 < tiles2; t0 += BLOCK)
    {
      const int nt = (int) MIN ((gsize) BLOCK, tiles2 - t0);

      transform_input (w, FALSE, x, t0, nt, v);
      for (int xi = 0; xi < 16; xi++)
        ps_conv_forward (w->u2[xi], nt, v + (gsize) xi * BLOCK * w->C, FALSE, NULL,
                         m + (gsize) xi * BLOCK * w->OCP);
      transform_output (w, FALSE, m, t0, nt, relu, out);
    }
#else
  g_assert_not_reached ();
#endif
}
