/* ps-conv.c: direct Conv2D / Dense kernels. DeepID's convolutions have few channels
 * (K = 48…360, 20…80 outputs), so im2col + sgemm spends more time copying and packing than
 * multiplying. Here the weights are packed once ((kh, kw, in) x outputs rounded up to 16),
 * and each tile of R output pixels x NV vectors of 16 output channels is accumulated in
 * registers straight from the NHWC input: one weight load per vector and one broadcast per
 * pixel feed R x NV fused multiply-adds. Bias, ReLU and a following max-pool are applied
 * as the tile is stored. A padded convolution reads its input copied into a zeroed frame
 * (ps_conv_pad ()): the kernels only ever see whole windows.
 *
 * The row kernel: with few output channels the vectors above run partly empty (conv_1's
 * 20 channels fill 20 of 32 lanes), so a convolution feeding a max-pool may instead put
 * 16 output columns of one row in a vector: the image is first copied into planes of
 * (channel, row, column phase), where those 16 outputs read 16 consecutive floats for each
 * (ky, kx, c); a tile of V vectors (up to 48 columns) x NB channels accumulates from one
 * load per vector and one broadcast weight per channel (conv_1: 44 columns fill 44 of 48
 * lanes: 32 % fewer vector multiply-adds). Each output gets the same fused multiply-adds in
 * the same order as in tile(), and the pool's maxima are taken in the same order, so the
 * two kernels give the same bits. A band of conv rows is written as planes, pooled 16
 * windows at a time and transposed back to NHWC in registers. A pack uses it where it
 * needs at most four fifths of the channel kernel's vector multiply-adds (the
 * transpositions cost the rest); without a fused pool the channel kernel runs, as the
 * full-size output's transposition costs more than the lanes save. */
#define G_LOG_DOMAIN "ps-conv"

#include "ps-conv.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_AVX512_KERNELS 1
#include <immintrin.h>
#define TARGET __attribute__ ((target ("avx512f")))
#endif

#define VEC    16  /* floats per AVX-512 vector */
#define MAX_NV 6   /* vectors of output channels per tile */
#define MAX_R  12  /* output pixels per tile */
#define ROWS_MAX_V  3   /* row kernel: vectors of output columns per tile */
#define ROWS_MAX_NB 16  /* row kernel: output channels per tile */

/* Output channels per row tile of V vectors: V x NB accumulators, V input vectors and one
 * broadcast weight in the 32 registers. */
static const int rows_nb_max[ROWS_MAX_V + 1] = { 0, 16, 12, 8 };

struct _PsConvPack {
  int    H, W, C;       /* input (padded: the extent the windows read) */
  int    IH, IW;        /* a padded layer's own input, placed at (pt, pl) */
  int    pt, pl;
  gboolean padded;
  int    OH, OW, OC;    /* output */
  int    sh, sw;
  int    K;             /* kh * kw * C */
  int    OCP;           /* OC rounded up to VEC */
  float *w;             /* K x OCP, zero beyond OC */
  float *bias;          /* OCP */
  int   *koff;          /* K: offset of each (ky, kx, c) from a window's first input */
  gboolean sparse;      /* a Dense layer with finite weights: zero inputs may be skipped */
  /* the row kernel (see the top): */
  gboolean rows;        /* chosen for this layer */
  int    Wp;            /* length of a planar input row of one column phase: W / sw rounded up */
  int   *roff;          /* K: offset of each (ky, kx, c) in the planar input */
  gsize  xp_len;        /* floats of the planar input, its padding included */
  int    NB;            /* output channels per tile */
  int    V;             /* vectors of 16 output columns per tile */
  int    OWS;           /* row stride of the planar output band: OW rounded up to 16 */
};

gboolean
ps_conv_available (void)
{
#ifdef HAVE_AVX512_KERNELS
  const char *env = g_getenv ("PRUNESCOPE_CONV");

  if (env != NULL && g_str_equal (env, "gemm"))
    return FALSE;
  __builtin_cpu_init ();
  return __builtin_cpu_supports ("avx512f");
#else
  return FALSE;
#endif
}

/* Vector multiply-adds per image of the channel kernel and of the row kernel: the row
 * kernel wins where the output channels leave more of a vector idle than the output
 * columns do (DeepID's conv_1: 20 channels fill 20 of 32 lanes, 44 columns 44 of 48). */
static gsize
channel_fmas (const PsConvPack *p)
{
  return (gsize) p->OH * p->OW * (p->OCP / VEC) * p->K;
}

static gsize
row_fmas (const PsConvPack *p)
{
  return (gsize) p->OH * ((p->OW + VEC - 1) / VEC) * p->OC * p->K;
}

/* Whether the Conv2D of @p runs on the row kernel: $PRUNESCOPE_CONV=rows or =channels
 * forces one kernel (for tests and benchmarks), else the one with fewer multiply-adds. */
static gboolean
use_rows (const PsConvPack *p)
{
  const char *env = g_getenv ("PRUNESCOPE_CONV");

  /* the planar input's offsets are ints */
  if ((gsize) p->C * p->H * p->W * p->sw + 2 * VEC > G_MAXINT / 2)
    return FALSE;
  if (env != NULL && g_str_equal (env, "rows"))
    return TRUE;
  if (env != NULL && g_str_equal (env, "channels"))
    return FALSE;
  /* its transpositions (the input to planes, the pooled output back) cost about a fifth
   * of its multiply-adds on DeepID's conv_1 */
  return row_fmas (p) * 5 < channel_fmas (p) * 4;
}

PsConvPack *
ps_conv_pack_new (const PsLayer *l)
{
  PsConvPack *p;
  int kh, kw;

  if (!ps_conv_available ())
    return NULL;
  if (l->kind == PS_LAYER_CONV2D)
    {
      /* The extent the windows read, and im2col's patches of one image */
      const gint64 eh = (gint64) (l->out.h - 1) * l->sh + l->kh;
      const gint64 ew = (gint64) (l->out.w - 1) * l->sw + l->kw;
      const gint64 patches = (gint64) l->out.h * l->out.w * l->kh * l->kw * l->in.c;

      /* The kernels read whole windows inside their input, one group, no dilation; a
       * padded layer's input is copied into a zeroed frame first (ps_conv_pad ()), where
       * the frame is no larger than the patches im2col would take (a file's large
       * strides and padding could otherwise ask for gigabytes of frame) */
      if (l->groups > 1 || l->dh > 1 || l->dw > 1 || l->pad_top < 0 || l->pad_left < 0
          || l->sh < 1 || l->sw < 1 || l->out.h < 1 || l->out.w < 1 || l->kh < 1 || l->kw < 1
          || l->pad_top >= eh || l->pad_left >= ew || eh > G_MAXINT / 2 || ew > G_MAXINT / 2)
        return NULL;
      if ((l->pad_top > 0 || l->pad_left > 0 || eh > l->in.h || ew > l->in.w)
          && eh * ew * l->in.c > MAX (patches, (gint64) l->in.h * l->in.w * l->in.c))
        return NULL;
      kh = l->kh, kw = l->kw;
    }
  else if (l->kind == PS_LAYER_DENSE)
    kh = kw = 1;
  else
    return NULL;
  if (l->activation != PS_ACT_RELU && l->activation != PS_ACT_LINEAR
      && l->activation != PS_ACT_SOFTMAX)
    return NULL;

  p = g_new0 (PsConvPack, 1);
  if (l->kind == PS_LAYER_CONV2D)
    {
      const int eh = (l->out.h - 1) * l->sh + l->kh, ew = (l->out.w - 1) * l->sw + l->kw;

      /* checked above: no overflow */
      p->H = l->in.h, p->W = l->in.w, p->C = l->in.c;
      p->OH = l->out.h, p->OW = l->out.w;
      p->sh = l->sh, p->sw = l->sw;
      if (l->pad_top > 0 || l->pad_left > 0 || eh > l->in.h || ew > l->in.w)
        {
          p->padded = TRUE;
          p->IH = l->in.h, p->IW = l->in.w;
          p->pt = l->pad_top, p->pl = l->pad_left;
          p->H = eh, p->W = ew;
        }
    }
  else
    {
      p->H = p->W = p->OH = p->OW = p->sh = p->sw = 1;
      p->C = l->in.c; /* a Dense layer reads its input flattened */
    }
  p->OC = l->out.c;
  p->K = kh * kw * p->C;
  p->OCP = (p->OC + VEC - 1) / VEC * VEC;
  p->w = g_aligned_alloc0 ((gsize) p->K * p->OCP, sizeof (float), 64);
  p->bias = g_aligned_alloc0 (p->OCP, sizeof (float), 64);
  p->koff = g_new (int, p->K);
  for (int k = 0; k < p->K; k++)
    memcpy (p->w + (gsize) k * p->OCP, l->kernel + (gsize) k * p->OC, sizeof (float) * p->OC);
  memcpy (p->bias, l->bias, sizeof (float) * p->OC);
  for (int ky = 0, k = 0; ky < kh; ky++)
    for (int kx = 0; kx < kw; kx++)
      for (int c = 0; c < p->C; c++, k++)
        p->koff[k] = (ky * p->W + kx) * p->C + c;
  /* 0 x w is 0 only for finite w: an infinite or NaN weight must meet every input */
  p->sparse = l->kind == PS_LAYER_DENSE;
  for (gsize k = 0; p->sparse && k < l->kernel_len; k++)
    p->sparse = isfinite (l->kernel[k]);
  if (l->kind == PS_LAYER_CONV2D && use_rows (p))
    {
      int nvec = (p->OW + VEC - 1) / VEC, blocks;

      p->rows = TRUE;
      p->Wp = (p->W + p->sw - 1) / p->sw;
      p->xp_len = (gsize) p->C * p->H * p->sw * p->Wp + VEC;
      p->roff = g_new (int, p->K);
      for (int ky = 0, k = 0; ky < kh; ky++)
        for (int kx = 0; kx < kw; kx++)
          for (int c = 0; c < p->C; c++, k++)
            p->roff[k] = (((c * p->H + ky) * p->sw) + kx % p->sw) * p->Wp + kx / p->sw;
      p->V = MIN (ROWS_MAX_V, nvec);
      /* channel blocks as even as they can be */
      blocks = (p->OC + rows_nb_max[p->V] - 1) / rows_nb_max[p->V];
      p->NB = (p->OC + blocks - 1) / blocks;
      p->OWS = nvec * VEC;
    }
  return p;
}

void
ps_conv_pack_free (PsConvPack *p)
{
  if (p == NULL)
    return;
  g_aligned_free (p->w);
  g_aligned_free (p->bias);
  g_free (p->koff);
  g_free (p->roff);
  g_free (p);
}

gboolean
ps_conv_pack_uses_rows (const PsConvPack *p)
{
  return p != NULL && p->rows;
}

gboolean
ps_conv_can_pool (const PsConvPack *p, const PsLayer *pool)
{
  return p != NULL && pool->kind == PS_LAYER_MAXPOOL2D && pool->pad_top == 0
         && pool->pad_left == 0 && pool->in.h == p->OH && pool->in.w == p->OW
         && pool->in.c == p->OC && pool->out.h >= 1 && pool->out.w >= 1
         && (pool->out.h - 1) * pool->sh + pool->kh <= p->OH
         && (pool->out.w - 1) * pool->sw + pool->kw <= p->OW;
}

/* Rows of pool windows computed together: bands of a few hundred conv pixels keep the
 * tiles full and the band in the first-level cache. */
static int
band_rows (const PsConvPack *p, const PsLayer *pool)
{
  int rows = (256 + pool->sh * p->OW - 1) / (pool->sh * p->OW);

  return CLAMP (rows, 1, pool->out.h);
}

/* Conv rows under @rows rows of pool windows. */
static int
band_conv_rows (const PsLayer *pool, int rows)
{
  return (rows - 1) * pool->sh + pool->kh;
}

/* The row kernel's bands: a couple of thousand outputs, so that the band and the image's
 * planar input stay in the first-level cache together. */
#define ROWS_BAND 2048

/* Rows of pool windows per band of ps_conv_forward_pool(). */
static int
rows_pool_band (const PsConvPack *p, const PsLayer *pool)
{
  return CLAMP (ROWS_BAND / (pool->sh * p->OWS * p->OC), 1, pool->out.h);
}

/* Planar pool input read past a band's end (the lanes beyond a row are not kept). */
static gsize
rows_pool_slack (const PsLayer *pool)
{
  return 2 * VEC + pool->kw;
}

gsize
ps_conv_pool_scratch_size (const PsConvPack *p, const PsLayer *pool)
{
  if (p->rows)
    return p->xp_len
           + (gsize) p->OC * band_conv_rows (pool, rows_pool_band (p, pool)) * p->OWS
           + rows_pool_slack (pool);
  return (gsize) band_conv_rows (pool, band_rows (p, pool)) * p->OW * p->OC;
}

#ifdef HAVE_AVX512_KERNELS

/* One tile: R output pixels (inputs at xs[r], outputs at lin[r], out[r]) x NV vectors of
 * output channels from channel 16 * ob; @last masks the final vector's channels. Inlined
 * with constant R and NV so that the accumulators live in registers. */
static inline __attribute__ ((always_inline)) TARGET void
tile (const PsConvPack *p, int ob, const int NV, const int R, const gboolean flat,
      const float *const *xs, float *const *lin, float *const *out, gboolean relu, __mmask16 last)
{
  __m512 acc[MAX_NV][MAX_R];
  const float *w = p->w + (gsize) ob * VEC;
  const __m512 zero = _mm512_setzero_ps ();

#pragma GCC unroll 6
  for (int v = 0; v < NV; v++)
    {
      __m512 b = _mm512_load_ps (p->bias + (gsize) (ob + v) * VEC);
#pragma GCC unroll 12
      for (int r = 0; r < R; r++)
        acc[v][r] = b;
    }
  for (int k = 0; k < p->K; k++)
    {
      /* @flat: a 1x1 input (a Dense layer), whose inputs are at their own index */
      const int o = flat ? k : p->koff[k];
      const float *wk = w + (gsize) k * p->OCP;
      __m512 wv[MAX_NV];

#pragma GCC unroll 6
      for (int v = 0; v < NV; v++)
        wv[v] = _mm512_load_ps (wk + v * VEC);
#pragma GCC unroll 12
      for (int r = 0; r < R; r++)
        {
          __m512 a = _mm512_set1_ps (xs[r][o]);
#pragma GCC unroll 6
          for (int v = 0; v < NV; v++)
            acc[v][r] = _mm512_fmadd_ps (a, wv[v], acc[v][r]);
        }
    }
#pragma GCC unroll 12
  for (int r = 0; r < R; r++)
#pragma GCC unroll 6
    for (int v = 0; v < NV; v++)
      {
        __mmask16 m = v == NV - 1 ? last : 0xffff;
        gsize at = (gsize) (ob + v) * VEC;

        if (lin != NULL)
          _mm512_mask_storeu_ps (lin[r] + at, m, acc[v][r]);
        /* max (x, 0) gives 0 for NaN, as the plain ReLU does */
        _mm512_mask_storeu_ps (out[r] + at, m, relu ? _mm512_max_ps (acc[v][r], zero) : acc[v][r]);
      }
}

static const int tile_rows[MAX_NV + 1] = { 0, 8, 12, 8, 6, 5, 4 };

#define TILE_CASE(NV) \
  case NV: \
    if (R == 1) \
      tile (p, ob, NV, 1, FALSE, xs, lpp, op, relu, last); \
    else if (flat) \
      tile (p, ob, NV, tile_rows[NV], TRUE, xs, lpp, op, relu, last); \
    else \
      tile (p, ob, NV, tile_rows[NV], FALSE, xs, lpp, op, relu, last); \
    break;

/* Output pixels g0 .. g1-1 (counted over all images, row-major) into lin/out, which hold
 * pixel g at (g - g0) * OC. */
static TARGET void
conv_range (const PsConvPack *p, const float *x, gsize g0, gsize g1, gboolean relu,
            float *lin, float *out)
{
  const gsize plane = (gsize) p->OH * p->OW, img = (gsize) p->H * p->W * p->C;
  const int nvec = p->OCP / VEC;
  const gboolean flat = p->H == 1 && p->W == 1;

  for (int ob = 0; ob < nvec; ob += MAX_NV)
    {
      const int nv = MIN (MAX_NV, nvec - ob);
      const int rmax = tile_rows[nv];
      const int tail = p->OC - (ob + nv - 1) * VEC; /* channels in the last vector */
      const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

      for (gsize g = g0; g < g1;)
        {
          const float *xs[MAX_R];
          float *lp[MAX_R], *op[MAX_R];
          gsize start = g;
          int R = rmax;

          /* The last tile overlaps the one before rather than running short. */
          if (g + R > g1)
            {
              if (g1 - g0 >= (gsize) R)
                start = g1 - R;
              else
                R = 1;
            }
          for (int r = 0; r < R; r++)
            {
              gsize q = start + r;

              /* a Dense layer's pixel is its image: no divisions (short rows, as in
               * ps-winograd.c's products, would wait on them) */
              if (flat)
                xs[r] = x + q * img;
              else
                {
                  gsize b = q / plane, rem = q % plane;
                  int oy = (int) (rem / p->OW), ox = (int) (rem % p->OW);

                  xs[r] = x + b * img + ((gsize) oy * p->sh * p->W + (gsize) ox * p->sw) * p->C;
                }
              lp[r] = lin ? lin + (q - g0) * p->OC : NULL;
              op[r] = out + (q - g0) * p->OC;
            }
          {
            float *const *lpp = lin ? lp : NULL;

            switch (nv)
              {
                TILE_CASE (1)
                TILE_CASE (2)
                TILE_CASE (3)
                TILE_CASE (4)
                TILE_CASE (5)
                TILE_CASE (6)
              default:
                g_assert_not_reached ();
              }
          }
          g = start + R;
        }
    }
}

/* ---- the row kernel ---- */

/* One image's NHWC input as planes of (channel, row, column phase): column j of phase ph is
 * input column j * sw + ph, so that 16 outputs side by side read 16 consecutive floats for
 * each (ky, kx, c); zeros past a row's end and in the padding. */
static TARGET void
to_planar (const PsConvPack *p, const float *x, float *xp)
{
  const int step = p->sw * p->C;
  const __m512i gidx = _mm512_mullo_epi32 (
    _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32 (step));

  if (p->sw == 1 && p->C == 3)
    {
      /* RGB (DeepID's conv_1): 16 pixels from three loads, each channel from two
       * permutes; the planes' rows are W long */
      const __m512i iota = _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
      const __m512i three = _mm512_mullo_epi32 (iota, _mm512_set1_epi32 (3));
      const __m512i sixteen = _mm512_set1_epi32 (VEC), thirty_two = _mm512_set1_epi32 (2 * VEC);
      __m512i lo[3], hi[3];

      for (int c = 0; c < 3; c++)
        {
          /* lane i wants float 3i + c of the 48 loaded: the first 32 from v0, v1 (lo),
           * then keep those or take the rest from v2 (hi) */
          __m512i f = _mm512_add_epi32 (three, _mm512_set1_epi32 (c));
          __mmask16 from2 = _mm512_cmpge_epi32_mask (f, thirty_two);

          lo[c] = f;
          hi[c] = _mm512_mask_blend_epi32 (from2, iota,
                                           _mm512_add_epi32 (_mm512_sub_epi32 (f, thirty_two), sixteen));
        }
      for (int y = 0; y < p->H; y++)
        for (int j = 0; j < p->W; j += VEC)
          {
            const float *s = x + ((gsize) y * p->W + j) * 3;
            const int left = MIN (p->W - j, VEC), floats = 3 * left;
            const __mmask16 m0 = floats >= VEC ? 0xffff : (__mmask16) ((1u << floats) - 1);
            const __mmask16 m1 = floats >= 2 * VEC ? 0xffff : floats <= VEC ? 0 : (__mmask16) ((1u << (floats - VEC)) - 1);
            const __mmask16 m2 = floats >= 3 * VEC ? 0xffff : floats <= 2 * VEC ? 0 : (__mmask16) ((1u << (floats - 2 * VEC)) - 1);
            const __mmask16 mo = left >= VEC ? 0xffff : (__mmask16) ((1u << left) - 1);
            const __m512 v0 = _mm512_maskz_loadu_ps (m0, s), v1 = _mm512_maskz_loadu_ps (m1, s + VEC);
            const __m512 v2 = _mm512_maskz_loadu_ps (m2, s + 2 * VEC);

            for (int c = 0; c < 3; c++)
              _mm512_mask_storeu_ps (xp + ((gsize) c * p->H + y) * p->W + j, mo,
                                     _mm512_permutex2var_ps (_mm512_permutex2var_ps (v0, lo[c], v1), hi[c], v2));
          }
    }
  else
  for (int y = 0; y < p->H; y++)
    for (int c = 0; c < p->C; c++)
      for (int ph = 0; ph < p->sw; ph++)
        {
          float *d = xp + (((gsize) c * p->H + y) * p->sw + ph) * p->Wp;
          const float *s = x + ((gsize) y * p->W + ph) * p->C + c;
          const int count = (p->W - ph + p->sw - 1) / p->sw; /* columns of this phase */

          /* 16 columns a gather; zeros past the phase's columns, nothing past Wp */
          for (int j = 0; j < p->Wp; j += VEC, s += (gsize) VEC * step)
            {
              const int in = count - j, room = p->Wp - j;
              const __mmask16 mi = in >= VEC ? 0xffff : in <= 0 ? 0 : (__mmask16) ((1u << in) - 1);
              const __mmask16 mo = room >= VEC ? 0xffff : (__mmask16) ((1u << room) - 1);

              _mm512_mask_storeu_ps (d + j, mo, _mm512_mask_i32gather_ps (_mm512_setzero_ps (), mi, gidx, s, 4));
            }
        }
  memset (xp + p->xp_len - VEC, 0, sizeof (float) * VEC);
}

/* One tile of the row kernel: V vectors of 16 output columns (input at @xs) x NB output
 * channels from @c0, each accumulated as tile() does (the bias, then one fused multiply-add
 * per (ky, kx, c) in order), so the same bits; stored into planes of channels @cstride
 * floats apart. The lanes past the row's end are stored too, into the planes' row
 * padding (the planar input's padding keeps their reads inside it), and never read back
 * as outputs. */
static inline __attribute__ ((always_inline)) TARGET void
row_tile (const PsConvPack *p, const int V, const int NB, const float *xs, int c0,
          float *out, float *lin, gsize cstride, gboolean relu)
{
  __m512 acc[ROWS_MAX_NB][ROWS_MAX_V];
  const float *w = p->w + c0;
  const __m512 zero = _mm512_setzero_ps ();

#pragma GCC unroll 16
  for (int j = 0; j < NB; j++)
    {
      __m512 b = _mm512_set1_ps (p->bias[c0 + j]);
#pragma GCC unroll 3
      for (int v = 0; v < V; v++)
        acc[j][v] = b;
    }
  for (int k = 0; k < p->K; k++)
    {
      const float *xk = xs + p->roff[k];
      const float *wk = w + (gsize) k * p->OCP;
      __m512 xv[ROWS_MAX_V];

#pragma GCC unroll 3
      for (int v = 0; v < V; v++)
        xv[v] = _mm512_loadu_ps (xk + v * VEC);
#pragma GCC unroll 16
      for (int j = 0; j < NB; j++)
        {
          const __m512 wb = _mm512_set1_ps (wk[j]);
#pragma GCC unroll 3
          for (int v = 0; v < V; v++)
            acc[j][v] = _mm512_fmadd_ps (xv[v], wb, acc[j][v]);
        }
    }
#pragma GCC unroll 16
  for (int j = 0; j < NB; j++)
#pragma GCC unroll 3
    for (int v = 0; v < V; v++)
      {
        gsize at = (gsize) (c0 + j) * cstride + v * VEC;

        if (lin != NULL)
          _mm512_storeu_ps (lin + at, acc[j][v]);
        _mm512_storeu_ps (out + at, relu ? _mm512_max_ps (acc[j][v], zero) : acc[j][v]);
      }
}

#define ROW_CASE(V, NB) \
  case NB: \
    row_tile (p, V, NB, xs, c0, o, l, cstride, relu); \
    break;
#define ROW_CASES_8(V) \
  ROW_CASE (V, 1) ROW_CASE (V, 2) ROW_CASE (V, 3) ROW_CASE (V, 4) \
  ROW_CASE (V, 5) ROW_CASE (V, 6) ROW_CASE (V, 7) ROW_CASE (V, 8)

/* Conv row @oy of the image in planar @xp, every channel: channel c's row at out + c *
 * @cstride (and lin, when not NULL). */
static TARGET void
conv_row (const PsConvPack *p, const float *xp, int oy, gboolean relu, float *out,
          float *lin, gsize cstride)
{
  const float *xrow = xp + (gsize) oy * p->sh * p->sw * p->Wp;
  const int nvec = (p->OW + VEC - 1) / VEC;

  for (int c0 = 0; c0 < p->OC; c0 += p->NB)
    for (int v0 = 0; v0 < nvec; v0 += p->V)
      {
        const int nb = MIN (p->NB, p->OC - c0), nv = MIN (p->V, nvec - v0);
        const float *xs = xrow + v0 * VEC;
        float *o = out + v0 * VEC, *l = lin != NULL ? lin + v0 * VEC : NULL;

        switch (nv)
          {
          case 1:
            switch (nb)
              {
                ROW_CASES_8 (1)
                ROW_CASE (1, 9) ROW_CASE (1, 10) ROW_CASE (1, 11) ROW_CASE (1, 12)
                ROW_CASE (1, 13) ROW_CASE (1, 14) ROW_CASE (1, 15) ROW_CASE (1, 16)
              default:
                g_assert_not_reached ();
              }
            break;
          case 2:
            switch (nb)
              {
                ROW_CASES_8 (2)
                ROW_CASE (2, 9) ROW_CASE (2, 10) ROW_CASE (2, 11) ROW_CASE (2, 12)
              default:
                g_assert_not_reached ();
              }
            break;
          case 3:
            switch (nb)
              {
                ROW_CASES_8 (3)
              default:
                g_assert_not_reached ();
              }
            break;
          default:
            g_assert_not_reached ();
          }
      }
}

/* The maximum of one window for 16 windows side by side, channel plane @bc of a planar
 * band: taken in pool_band()'s order (from -FLT_MAX, (ky, kx) in turn), hence its bits.
 * Lanes past the row read the band's row padding and slack and are not kept. @pairs: 2x2
 * windows, stride 2 across (DeepID's). */
static inline __attribute__ ((always_inline)) TARGET __m512
pool_vec (const PsConvPack *p, const PsLayer *pool, const float *bc, int px, __mmask16 m,
          const gboolean pairs)
{
  const __m512i iota = _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512 acc = _mm512_set1_ps (-FLT_MAX);

  if (pairs)
    {
      /* each row's pairs from two loads */
      const __m512i even = _mm512_add_epi32 (iota, iota);
      const __m512i odd = _mm512_add_epi32 (even, _mm512_set1_epi32 (1));
      const float *r0 = bc + 2 * px, *r1 = r0 + p->OWS;
      const __m512 a0 = _mm512_loadu_ps (r0), a1 = _mm512_loadu_ps (r0 + VEC);
      const __m512 b0 = _mm512_loadu_ps (r1), b1 = _mm512_loadu_ps (r1 + VEC);

      acc = _mm512_max_ps (acc, _mm512_permutex2var_ps (a0, even, a1));
      acc = _mm512_max_ps (acc, _mm512_permutex2var_ps (a0, odd, a1));
      acc = _mm512_max_ps (acc, _mm512_permutex2var_ps (b0, even, b1));
      return _mm512_max_ps (acc, _mm512_permutex2var_ps (b0, odd, b1));
    }
  for (int ky = 0; ky < pool->kh; ky++)
    for (int kx = 0; kx < pool->kw; kx++)
      {
        const float *s = bc + (gsize) ky * p->OWS + (gsize) px * pool->sw + kx;

        if (pool->sw == 1)
          acc = _mm512_max_ps (acc, _mm512_loadu_ps (s));
        else
          acc = _mm512_max_ps (acc, _mm512_mask_i32gather_ps (
                                      acc, m, _mm512_mullo_epi32 (iota, _mm512_set1_epi32 (pool->sw)), s, 4));
      }
  return acc;
}

/* r[4g + i] (channel 4g + i of 16 pixels) to u[4g + j], whose 128-bit lane L holds
 * channels 4g … 4g+3 of pixel 4L + j: unpacks and shuffles within lanes. */
static inline __attribute__ ((always_inline)) TARGET void
transpose_4 (const __m512 *r, __m512 *u)
{
  const __m512 t0 = _mm512_unpacklo_ps (r[0], r[1]), t1 = _mm512_unpackhi_ps (r[0], r[1]);
  const __m512 t2 = _mm512_unpacklo_ps (r[2], r[3]), t3 = _mm512_unpackhi_ps (r[2], r[3]);

  u[0] = _mm512_shuffle_ps (t0, t2, 0x44);
  u[1] = _mm512_shuffle_ps (t0, t2, 0xee);
  u[2] = _mm512_shuffle_ps (t1, t3, 0x44);
  u[3] = _mm512_shuffle_ps (t1, t3, 0xee);
}

/* Row @q of max-pool windows over a planar band of conv rows into NHWC @d: 16 windows x up
 * to 16 channels at a time, transposed in registers (r[i] holds channel c0 + i of 16
 * pixels; 4 channels by transpose_4, 16 by it and whole-lane shuffles). */
static inline __attribute__ ((always_inline)) TARGET void
pool_row_planar_with (const PsConvPack *p, const PsLayer *pool, const float *band,
                      gsize cstride, int q, float *d, const gboolean pairs)
{
  const int POW = pool->out.w, OC = p->OC;
  const gsize row = (gsize) q * pool->sh * p->OWS;

  for (int px = 0; px < POW; px += VEC)
    {
      const int npx = MIN (VEC, POW - px);
      const __mmask16 m = npx >= VEC ? 0xffff : (__mmask16) ((1u << npx) - 1);
      float *dp = d + (gsize) px * OC;

      for (int c0 = 0; c0 < OC; c0 += VEC)
        {
          const int nc = MIN (VEC, OC - c0);
          const __mmask16 mc = nc >= VEC ? 0xffff : (__mmask16) ((1u << nc) - 1);
          const float *bc = band + c0 * cstride + row;
          __m512 r[VEC], u[VEC];

          if (nc <= 4)
            {
#pragma GCC unroll 4
              for (int i = 0; i < 4; i++)
                r[i] = i < nc ? pool_vec (p, pool, bc + i * cstride, px, m, pairs) : _mm512_setzero_ps ();
              transpose_4 (r, u);
              /* pixel 4L + j's channels are lane L of u[j], stored in place */
#pragma GCC unroll 4
              for (int j = 0; j < 4; j++)
#pragma GCC unroll 4
                for (int L = 0; L < 4; L++)
                  if (4 * L + j < npx)
                    _mm512_mask_storeu_ps (dp + (gsize) (4 * L + j) * OC + c0 - 4 * L,
                                           (__mmask16) (mc << (4 * L)), u[j]);
              continue;
            }
#pragma GCC unroll 16
          for (int i = 0; i < VEC; i++)
            r[i] = i < nc ? pool_vec (p, pool, bc + i * cstride, px, m, pairs) : _mm512_setzero_ps ();
#pragma GCC unroll 4
          for (int g = 0; g < 4; g++)
            transpose_4 (r + 4 * g, u + 4 * g);
#pragma GCC unroll 4
          for (int j = 0; j < 4; j++)
            {
              const __m512 v = _mm512_shuffle_f32x4 (u[j], u[4 + j], 0x88);
              const __m512 w = _mm512_shuffle_f32x4 (u[j], u[4 + j], 0xdd);
              const __m512 v2 = _mm512_shuffle_f32x4 (u[8 + j], u[12 + j], 0x88);
              const __m512 w2 = _mm512_shuffle_f32x4 (u[8 + j], u[12 + j], 0xdd);
              const __m512 out[4] = {
                _mm512_shuffle_f32x4 (v, v2, 0x88), /* pixel j */
                _mm512_shuffle_f32x4 (w, w2, 0x88), /* 4 + j */
                _mm512_shuffle_f32x4 (v, v2, 0xdd), /* 8 + j */
                _mm512_shuffle_f32x4 (w, w2, 0xdd), /* 12 + j */
              };

#pragma GCC unroll 4
              for (int L = 0; L < 4; L++)
                if (4 * L + j < npx)
                  _mm512_mask_storeu_ps (dp + (gsize) (4 * L + j) * OC + c0, mc, out[L]);
            }
        }
    }
}

static TARGET void
pool_row_planar (const PsConvPack *p, const PsLayer *pool, const float *band, gsize cstride,
                 int q, float *d)
{
  if (pool->kh == 2 && pool->kw == 2 && pool->sw == 2)
    pool_row_planar_with (p, pool, band, cstride, q, d, TRUE);
  else
    pool_row_planar_with (p, pool, band, cstride, q, d, FALSE);
}

/* ps_conv_forward_pool() on the row kernel; @planar: @x holds the images as planes
 * already (channels-first, ps_conv_reads_planar()). */
static TARGET void
rows_forward_pool (const PsConvPack *p, const PsLayer *pool, int n, const float *x,
                   PsConvFill fill, gpointer fill_data, gboolean planar, gboolean relu,
                   float *out, float *scratch)
{
  const int PB = rows_pool_band (p, pool), POH = pool->out.h, POW = pool->out.w;
  const gsize cstride = (gsize) band_conv_rows (pool, PB) * p->OWS;
  const gsize img = (gsize) p->H * p->W * p->C;
  float *band = scratch + p->xp_len;

  /* the slack is read, never kept: defined values all the same */
  memset (band + p->OC * cstride, 0, sizeof (float) * rows_pool_slack (pool));
  if (fill != NULL)
    memset (scratch + img, 0, sizeof (float) * (p->xp_len - img));
  for (int b = 0; b < n; b++)
    {
      const float *xp = scratch;

      /* The kernel reads up to 16 floats past an image's planes (lanes it does not
       * keep): the next image's, or the scratch copy's zeros after the last one. */
      if (fill != NULL)
        fill (b, scratch, fill_data);
      else if (!planar)
        to_planar (p, x + b * img, scratch);
      else if (b < n - 1)
        xp = x + b * img;
      else
        {
          memcpy (scratch, x + b * img, sizeof (float) * img);
          memset (scratch + img, 0, sizeof (float) * (p->xp_len - img));
        }
      for (int py = 0; py < POH; py += PB)
        {
          const int rows = MIN (PB, POH - py);
          const int y0 = py * pool->sh;

          /* The next image was written by the reading thread, on another core: a slice
           * of it each band, so that it is in this core's cache when its turn comes
           * (left to the hardware, the row kernel waits on it). */
          if (b < n - 1 && fill == NULL)
            {
              const char *next = (const char *) (x + (b + 1) * img);
              const gsize bytes = img * sizeof (float);
              const gsize from = bytes * py / POH, to = bytes * MIN (py + PB, POH) / POH;

              for (gsize o = from & ~(gsize) 63; o < to; o += 64)
                _mm_prefetch (next + o, _MM_HINT_T0);
            }
          for (int r = 0; r < band_conv_rows (pool, rows); r++)
            conv_row (p, xp, y0 + r, relu, band + r * p->OWS, NULL, cstride);
          for (int q = 0; q < rows; q++)
            pool_row_planar (p, pool, band, cstride, q,
                             out + (((gsize) b * POH + py + q) * POW) * p->OC);
        }
    }
}

#define MAX_SV 12 /* vectors of outputs per pass over a sparse input */
/* The weight rows a list of nonzero inputs picks lie scattered through the kernel (DeepID's
 * fc_2: 614 kB, in L2 at best), where the hardware does not foresee them: each is asked
 * for this many inputs ahead. Steps of a demo sweep -2.5 %, of a lab-sized one -3 %. */
#define SPARSE_AHEAD 8

/* The @NV vectors of weights (from @w) of input idx[@i + SPARSE_AHEAD], if any. */
static inline __attribute__ ((always_inline)) TARGET void
prefetch_ahead (const PsConvPack *p, const float *w, const int *idx, int i, int n, const int NV)
{
  if (i + SPARSE_AHEAD < n)
    {
      const char *ahead = (const char *) (w + (gsize) idx[i + SPARSE_AHEAD] * p->OCP);

#pragma GCC unroll 12
      for (int v = 0; v < NV; v++)
        _mm_prefetch (ahead + v * 64, _MM_HINT_T0);
    }
}

/* One image of a Dense layer over the inputs listed in @idx (in increasing order): the
 * same fused multiply-adds from the bias in the same order as tile(), without the
 * zero inputs (each would add exactly 0), hence the same bits. */
static inline __attribute__ ((always_inline)) TARGET void
sparse_tile (const PsConvPack *p, int ob, const int NV, const float *x, const int *idx,
             int nnz, float *lin, float *out, gboolean relu, __mmask16 last)
{
  __m512 acc[MAX_SV];
  const float *w = p->w + (gsize) ob * VEC;
  const __m512 zero = _mm512_setzero_ps ();

#pragma GCC unroll 12
  for (int v = 0; v < NV; v++)
    acc[v] = _mm512_load_ps (p->bias + (gsize) (ob + v) * VEC);
  for (int i = 0; i < nnz; i++)
    {
      const int k = idx[i];
      const float *wk = w + (gsize) k * p->OCP;
      const __m512 a = _mm512_set1_ps (x[k]);

      prefetch_ahead (p, w, idx, i, nnz, NV);

#pragma GCC unroll 12
      for (int v = 0; v < NV; v++)
        acc[v] = _mm512_fmadd_ps (a, _mm512_load_ps (wk + v * VEC), acc[v]);
    }
#pragma GCC unroll 12
  for (int v = 0; v < NV; v++)
    {
      __mmask16 m = v == NV - 1 ? last : 0xffff;
      gsize at = (gsize) (ob + v) * VEC;

      if (lin != NULL)
        _mm512_mask_storeu_ps (lin + at, m, acc[v]);
      _mm512_mask_storeu_ps (out + at, m, relu ? _mm512_max_ps (acc[v], zero) : acc[v]);
    }
}

#define SPARSE_CASE(NV) \
  case NV: \
    sparse_tile (p, ob, NV, x, idx, nnz, lin, out, relu, last); \
    break;

/* One image over its @nnz nonzero inputs listed in @idx. */
static TARGET void
sparse_row (const PsConvPack *p, const float *x, gboolean relu, float *lin, float *out,
            const int *idx, int nnz)
{
  const int nvec = p->OCP / VEC;

  for (int ob = 0; ob < nvec; ob += MAX_SV)
    {
      const int nv = MIN (MAX_SV, nvec - ob);
      const int tail = p->OC - (ob + nv - 1) * VEC;
      const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

      switch (nv)
        {
          SPARSE_CASE (1)
          SPARSE_CASE (2)
          SPARSE_CASE (3)
          SPARSE_CASE (4)
          SPARSE_CASE (5)
          SPARSE_CASE (6)
          SPARSE_CASE (7)
          SPARSE_CASE (8)
          SPARSE_CASE (9)
          SPARSE_CASE (10)
          SPARSE_CASE (11)
          SPARSE_CASE (12)
        default:
          g_assert_not_reached ();
        }
    }
}

#define UNION_ROWS 8  /* rows of one group at most */
#define UNION_ACC  24 /* accumulators of a group's tile: rows x vectors of outputs */

/* R rows at once over the inputs listed in @idx, the union of the rows' nonzero inputs
 * (row r's inputs at x + r * K). Each weight vector loaded feeds R rows. A row gets the
 * same fused multiply-adds from the bias in the same order as tile(), zero inputs included
 * where another row has that input (each adds exactly 0, as in tile()), hence the same
 * bits. */
static inline __attribute__ ((always_inline)) TARGET void
union_tile (const PsConvPack *p, int ob, const int NV, const int R, const float *x,
            const int *idx, int nu, float *lin, float *out, gboolean relu, __mmask16 last)
{
  __m512 acc[UNION_ROWS][UNION_ACC];
  const float *w = p->w + (gsize) ob * VEC;
  const __m512 zero = _mm512_setzero_ps ();
  const gsize K = p->K;

#pragma GCC unroll 12
  for (int v = 0; v < NV; v++)
    {
      __m512 b = _mm512_load_ps (p->bias + (gsize) (ob + v) * VEC);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++)
        acc[r][v] = b;
    }
  for (int u = 0; u < nu; u++)
    {
      const float *wk = w + (gsize) idx[u] * p->OCP, *xk = x + idx[u];
      __m512 wv[UNION_ACC];

      prefetch_ahead (p, w, idx, u, nu, NV);

#pragma GCC unroll 12
      for (int v = 0; v < NV; v++)
        wv[v] = _mm512_load_ps (wk + v * VEC);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++)
        {
          const __m512 a = _mm512_set1_ps (xk[r * K]);

#pragma GCC unroll 12
          for (int v = 0; v < NV; v++)
            acc[r][v] = _mm512_fmadd_ps (a, wv[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 12
    for (int v = 0; v < NV; v++)
      {
        __mmask16 m = v == NV - 1 ? last : 0xffff;
        gsize at = (gsize) r * p->OC + (gsize) (ob + v) * VEC;

        if (lin != NULL)
          _mm512_mask_storeu_ps (lin + at, m, acc[r][v]);
        _mm512_mask_storeu_ps (out + at, m, relu ? _mm512_max_ps (acc[r][v], zero) : acc[r][v]);
      }
}

#define UNION_CASE(R, NV) \
  case NV: \
    union_tile (p, ob, NV, R, x, idx, nu, lin, out, relu, last); \
    break;

/* R (8, 4 or 2) rows over the union @idx (@nu inputs) of their nonzero inputs. */
static TARGET void
union_rows (const PsConvPack *p, const int R, const float *x, gboolean relu, float *lin,
            float *out, const int *idx, int nu)
{
  const int nvec = p->OCP / VEC, max_nv = UNION_ACC / R;
  /* blocks of outputs as even as they can be (10 vectors: 3, 3, 2, 2 rather than 3, 3, 3, 1) */
  const int blocks = (nvec + max_nv - 1) / max_nv;

  for (int ob = 0, bl = 0; ob < nvec; ob += (nvec - ob + (blocks - bl) - 1) / (blocks - bl), bl++)
    {
      const int nv = (nvec - ob + (blocks - bl) - 1) / (blocks - bl);
      const int tail = p->OC - (ob + nv - 1) * VEC;
      const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

      if (R == 8)
        switch (nv)
          {
            UNION_CASE (8, 1) UNION_CASE (8, 2) UNION_CASE (8, 3)
          default:
            g_assert_not_reached ();
          }
      else if (R == 4)
        switch (nv)
          {
            UNION_CASE (4, 1) UNION_CASE (4, 2) UNION_CASE (4, 3)
            UNION_CASE (4, 4) UNION_CASE (4, 5) UNION_CASE (4, 6)
          default:
            g_assert_not_reached ();
          }
      else
        switch (nv)
          {
            UNION_CASE (2, 1) UNION_CASE (2, 2) UNION_CASE (2, 3) UNION_CASE (2, 4)
            UNION_CASE (2, 5) UNION_CASE (2, 6) UNION_CASE (2, 7) UNION_CASE (2, 8)
            UNION_CASE (2, 9) UNION_CASE (2, 10) UNION_CASE (2, 11) UNION_CASE (2, 12)
          default:
            g_assert_not_reached ();
          }
    }
}

/* 64-bit words of a row's input mask */
static inline int
mask_words (const PsConvPack *p)
{
  return (p->K + 63) / 64;
}

/* Which inputs of a row are nonzero (NaN included), one bit each, in @m; returns how
 * many. */
static TARGET int
row_mask (const PsConvPack *p, const float *x, guint64 *m)
{
  const __m512 zero = _mm512_setzero_ps ();
  int nnz = 0, wd = 0;

  /* whole words: four vectors each */
  for (; (wd + 1) * 64 <= p->K; wd++, x += 64)
    {
      guint64 bits = 0;

#pragma GCC unroll 4
      for (int q = 0; q < 4; q++)
        bits |= (guint64) _mm512_cmp_ps_mask (_mm512_loadu_ps (x + q * VEC), zero, _CMP_NEQ_UQ)
                << (16 * q);
      m[wd] = bits;
      nnz += __builtin_popcountll (bits);
    }
  if (wd * 64 < p->K)
    {
      guint64 bits = 0;

      for (int q = 0, k = wd * 64; k < p->K; q++, k += VEC)
        {
          __mmask16 in = p->K - k >= VEC ? 0xffff : (__mmask16) ((1u << (p->K - k)) - 1);
          __m512 v = _mm512_maskz_loadu_ps (in, x + q * VEC);

          bits |= (guint64) _mm512_mask_cmp_ps_mask (in, v, zero, _CMP_NEQ_UQ) << (16 * q);
        }
      m[wd] = bits;
      nnz += __builtin_popcountll (bits);
    }
  return nnz;
}

/* The inputs of the mask @m, in order, in @idx. */
static TARGET void
list_inputs (const PsConvPack *p, const guint64 *m, int *idx)
{
  const __m512i step = _mm512_set1_epi32 (VEC);
  __m512i iota = _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int n = 0;

  for (int wd = 0; wd < mask_words (p); wd++)
    for (int q = 0; q < 4; q++, iota = _mm512_add_epi32 (iota, step))
      {
        __mmask16 part = (__mmask16) (m[wd] >> (16 * q));

        _mm512_mask_compressstoreu_epi32 (idx + n, part, iota);
        n += __builtin_popcount (part);
      }
}

/* Rows one by one over their nonzero inputs; but runs of rows whose nonzero inputs mostly
 * coincide (the same image at successive steps of a sweep) go together over the union of
 * their inputs when that costs at most 3/2 of the rows' own inputs: each weight is then
 * loaded once for the group instead of once per row. Groups of 8, 4 or 2 rows, the largest
 * that pays. Each row's mask is made once, in a ring of the next UNION_ROWS rows; a
 * group's union is then a few word ORs. */
static TARGET void
forward_sparse (const PsConvPack *p, int n, const float *x, gboolean relu, float *lin,
                float *out, int *idx, guint64 *ring, guint64 *any)
{
  const int words = mask_words (p);
  int nnz[UNION_ROWS], made = 0;

  for (int b = 0; b < n;)
    {
      const float *xb = x + (gsize) b * p->K;
      float *lb = lin ? lin + (gsize) b * p->OC : NULL, *ob = out + (gsize) b * p->OC;
      int R;

      for (; made < MIN (b + UNION_ROWS, n); made++)
        nnz[made % UNION_ROWS] = row_mask (p, x + (gsize) made * p->K,
                                           ring + (gsize) (made % UNION_ROWS) * words);
      for (R = UNION_ROWS; R > 1; R /= 2)
        {
          int total = 0, nu = 0;

          if (n - b < R)
            continue;
          for (int r = 0; r < R; r++)
            total += nnz[(b + r) % UNION_ROWS];
          for (int wd = 0; wd < words; wd++)
            {
              guint64 u = 0;

              for (int r = 0; r < R; r++)
                u |= ring[(gsize) ((b + r) % UNION_ROWS) * words + wd];
              any[wd] = u;
              nu += __builtin_popcountll (u);
            }
          if (2 * nu * R <= 3 * total)
            {
              list_inputs (p, any, idx);
              union_rows (p, R, xb, relu, lb, ob, idx, nu);
              break;
            }
        }
      if (R == 1)
        {
          /* a group of one: its own nonzero inputs */
          list_inputs (p, ring + (gsize) (b % UNION_ROWS) * words, idx);
          sparse_row (p, xb, relu, lb, ob, idx, nnz[b % UNION_ROWS]);
        }
      b += R;
    }
}

/* @rows rows of max-pool windows over a band of conv rows; max_ps (a, b) is a > b ? a : b,
 * as MAX () is. */
static TARGET void
pool_band (const PsConvPack *p, const PsLayer *pool, const float *band, int rows, float *d)
{
  const int C = p->OC;

  for (int py = 0; py < rows; py++, band += (gsize) pool->sh * p->OW * C)
    for (int px = 0; px < pool->out.w; px++, d += C)
    for (int c = 0; c < C; c += VEC)
      {
        __mmask16 m = C - c >= VEC ? 0xffff : (__mmask16) ((1u << (C - c)) - 1);
        __m512 acc = _mm512_set1_ps (-FLT_MAX);

        for (int ky = 0; ky < pool->kh; ky++)
          for (int kx = 0; kx < pool->kw; kx++)
            acc = _mm512_max_ps (acc, _mm512_maskz_loadu_ps (
              m, band + ((gsize) ky * p->OW + px * pool->sw + kx) * C + c));
        _mm512_mask_storeu_ps (d + c, m, acc);
      }
}

static TARGET void
sub_scaled_avx512 (int n, float v, const float *w, float *y)
{
  const __m512 vv = _mm512_set1_ps (v);
  int j = 0;

  for (; j + VEC <= n; j += VEC)
    _mm512_storeu_ps (y + j, _mm512_sub_ps (_mm512_loadu_ps (y + j),
                                            _mm512_mul_ps (vv, _mm512_loadu_ps (w + j))));
  if (j < n)
    {
      __mmask16 m = (__mmask16) ((1u << (n - j)) - 1);
      _mm512_mask_storeu_ps (y + j, m, _mm512_sub_ps (_mm512_maskz_loadu_ps (m, y + j),
                                                      _mm512_mul_ps (vv, _mm512_maskz_loadu_ps (m, w + j))));
    }
}

/* y -= v[t] * w[t] for t < m in turn on NV vectors of y held in registers. */
static inline __attribute__ ((always_inline)) TARGET void
sub_sum_block (const int NV, int m, const float *v, const float *const *w, int j0, float *y,
               __mmask16 last)
{
  __m512 acc[16];

#pragma GCC unroll 16
  for (int q = 0; q < NV; q++)
    acc[q] = _mm512_maskz_loadu_ps (q == NV - 1 ? last : 0xffff, y + j0 + q * VEC);
  for (int t = 0; t < m; t++)
    {
      const __m512 vv = _mm512_set1_ps (v[t]);
      const float *wt = w[t] + j0;

#pragma GCC unroll 16
      for (int q = 0; q < NV; q++)
        acc[q] = _mm512_sub_ps (acc[q], _mm512_mul_ps (vv, _mm512_maskz_loadu_ps (
                                             q == NV - 1 ? last : 0xffff, wt + q * VEC)));
    }
#pragma GCC unroll 16
  for (int q = 0; q < NV; q++)
    _mm512_mask_storeu_ps (y + j0 + q * VEC, q == NV - 1 ? last : 0xffff, acc[q]);
}

#define SUB_CASE(NV) \
  case NV: \
    sub_sum_block (NV, m, v, w, j0, y, last); \
    break;

static TARGET void
sub_scaled_sum_avx512 (int n, int m, const float *v, const float *const *w, float *y)
{
  for (int j0 = 0; j0 < n; j0 += 16 * VEC)
    {
      const int nv = MIN (16, (n - j0 + VEC - 1) / VEC);
      const int tail = n - (j0 + (nv - 1) * VEC);
      const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

      switch (nv)
        {
          SUB_CASE (1) SUB_CASE (2) SUB_CASE (3) SUB_CASE (4)
          SUB_CASE (5) SUB_CASE (6) SUB_CASE (7) SUB_CASE (8)
          SUB_CASE (9) SUB_CASE (10) SUB_CASE (11) SUB_CASE (12)
          SUB_CASE (13) SUB_CASE (14) SUB_CASE (15) SUB_CASE (16)
        default:
          g_assert_not_reached ();
        }
    }
}

/* Rows of y, each with its own terms, vectors of y in registers for each row. */
static inline __attribute__ ((always_inline)) TARGET void
sub_rows_block (const int NV, int rows, const int *m, const float *v, const float *const *w,
                float *const *y, __mmask16 last)
{
  for (int r = 0; r < rows; v += m[r], w += m[r], r++)
    {
      __m512 acc[16];

#pragma GCC unroll 16
      for (int q = 0; q < NV; q++)
        acc[q] = _mm512_maskz_loadu_ps (q == NV - 1 ? last : 0xffff, y[r] + q * VEC);
      for (int t = 0; t < m[r]; t++)
        {
          const __m512 vv = _mm512_set1_ps (v[t]);

#pragma GCC unroll 16
          for (int q = 0; q < NV; q++)
            acc[q] = _mm512_sub_ps (acc[q], _mm512_mul_ps (vv, _mm512_maskz_loadu_ps (
                                                 q == NV - 1 ? last : 0xffff, w[t] + q * VEC)));
        }
#pragma GCC unroll 16
      for (int q = 0; q < NV; q++)
        _mm512_mask_storeu_ps (y[r] + q * VEC, q == NV - 1 ? last : 0xffff, acc[q]);
    }
}

#define SUB_ROWS_CASE(NV) \
  case NV: \
    sub_rows_block (NV, rows, m, v, w, y, last); \
    break;

static TARGET void
sub_scaled_rows_avx512 (int n, int rows, const int *m, const float *v, const float *const *w,
                        float *const *y)
{
  const int nv = (n + VEC - 1) / VEC;
  const int tail = n - (nv - 1) * VEC;
  const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

  if (nv > 16)
    {
      for (int r = 0; r < rows; v += m[r], w += m[r], r++)
        sub_scaled_sum_avx512 (n, m[r], v, w, y[r]);
      return;
    }
  switch (nv)
    {
      SUB_ROWS_CASE (1) SUB_ROWS_CASE (2) SUB_ROWS_CASE (3) SUB_ROWS_CASE (4)
      SUB_ROWS_CASE (5) SUB_ROWS_CASE (6) SUB_ROWS_CASE (7) SUB_ROWS_CASE (8)
      SUB_ROWS_CASE (9) SUB_ROWS_CASE (10) SUB_ROWS_CASE (11) SUB_ROWS_CASE (12)
      SUB_ROWS_CASE (13) SUB_ROWS_CASE (14) SUB_ROWS_CASE (15) SUB_ROWS_CASE (16)
    default:
      g_assert_not_reached ();
    }
}

/* Windows of K taps over NV vectors of outputs: the taps' weights in registers. A zero
 * value's term is masked out, not branched around: acc - 0 * w would not keep acc's bits
 * for an infinite w, the masked subtraction does, and where the zeros fall is not
 * predictable. */
static inline __attribute__ ((always_inline)) TARGET void
sub_windows_block (const int NV, const int K, int n, int npos, const int *in, const float *v,
                   const float *w, gsize wstride, float *y, __mmask16 last)
{
  __m512 wk[4][6];

#pragma GCC unroll 4
  for (int k = 0; k < K; k++)
#pragma GCC unroll 6
    for (int q = 0; q < NV; q++)
      wk[k][q] = _mm512_maskz_loadu_ps (q == NV - 1 ? last : 0xffff, w + k * wstride + q * VEC);
  for (int o = 0; o < npos; o++, in += K)
    {
      float *yo = y + (gsize) o * n;
      __m512 acc[6];

#pragma GCC unroll 6
      for (int q = 0; q < NV; q++)
        acc[q] = _mm512_maskz_loadu_ps (q == NV - 1 ? last : 0xffff, yo + q * VEC);
#pragma GCC unroll 4
      for (int k = 0; k < K; k++)
        {
          const float a = v[in[k]];
          const __mmask16 nz = a != 0.0f ? 0xffff : 0;
          const __m512 vv = _mm512_set1_ps (a);

#pragma GCC unroll 6
          for (int q = 0; q < NV; q++)
            acc[q] = _mm512_mask_sub_ps (acc[q], nz, acc[q], _mm512_mul_ps (vv, wk[k][q]));
        }
#pragma GCC unroll 6
      for (int q = 0; q < NV; q++)
        _mm512_mask_storeu_ps (yo + q * VEC, q == NV - 1 ? last : 0xffff, acc[q]);
    }
}

#define SUB_WINDOWS_K(K, NV) \
  case K: \
    sub_windows_block (NV, K, n, npos, in, v, w, wstride, y, last); \
    break;
#define SUB_WINDOWS_NV(NV) \
  case NV: \
    switch (K) \
      { \
        SUB_WINDOWS_K (1, NV) SUB_WINDOWS_K (2, NV) SUB_WINDOWS_K (3, NV) SUB_WINDOWS_K (4, NV) \
      default: \
        g_assert_not_reached (); \
      } \
    break;

static TARGET void
sub_windows_avx512 (int n, int K, int npos, const int *in, const float *v, const float *w,
                    gsize wstride, float *y)
{
  const int nv = (n + VEC - 1) / VEC;
  const int tail = n - (nv - 1) * VEC;
  const __mmask16 last = tail >= VEC ? 0xffff : (__mmask16) ((1u << tail) - 1);

  switch (nv)
    {
      SUB_WINDOWS_NV (1) SUB_WINDOWS_NV (2) SUB_WINDOWS_NV (3)
      SUB_WINDOWS_NV (4) SUB_WINDOWS_NV (5) SUB_WINDOWS_NV (6)
    default:
      g_assert_not_reached ();
    }
}

static TARGET double
sq_dist_avx512 (int n, const float *a, const float *b)
{
  __m512d acc = _mm512_setzero_pd ();
  double sum;
  int j = 0;

  for (; j + 8 <= n; j += 8)
    {
      __m512d d = _mm512_cvtps_pd (_mm256_sub_ps (_mm256_loadu_ps (a + j), _mm256_loadu_ps (b + j)));
      acc = _mm512_fmadd_pd (d, d, acc);
    }
  sum = _mm512_reduce_add_pd (acc);
  for (; j < n; j++)
    sum += (double) (a[j] - b[j]) * (a[j] - b[j]);
  return sum;
}

/* max (x, 0): the second operand for NaN and for -0, as the plain loop gives. */
static TARGET void
relu_avx512 (gsize n, const float *in, float *out)
{
  const __m512 zero = _mm512_setzero_ps ();
  gsize j = 0;

  for (; j + VEC <= n; j += VEC)
    _mm512_storeu_ps (out + j, _mm512_max_ps (_mm512_loadu_ps (in + j), zero));
  if (j < n)
    {
      __mmask16 m = (__mmask16) ((1u << (n - j)) - 1);
      _mm512_mask_storeu_ps (out + j, m, _mm512_max_ps (_mm512_maskz_loadu_ps (m, in + j), zero));
    }
}

static TARGET double
sq_norm_avx512 (int n, const float *a)
{
  __m512d acc = _mm512_setzero_pd ();
  double sum;
  int j = 0;

  for (; j + 8 <= n; j += 8)
    {
      __m512d d = _mm512_cvtps_pd (_mm256_loadu_ps (a + j));
      acc = _mm512_fmadd_pd (d, d, acc);
    }
  sum = _mm512_reduce_add_pd (acc);
  for (; j < n; j++)
    sum += (double) a[j] * a[j];
  return sum;
}

/* Rows without NaN: the largest value, its first index, the largest of the others. */
static TARGET gboolean
row_argmax_avx512 (int k, const float *row, int *best, float *second)
{
  __m512 mx = _mm512_set1_ps (-INFINITY), other = _mm512_set1_ps (-INFINITY);
  __mmask16 nan = 0;
  float m;
  int j, at = -1;

  for (j = 0; j + VEC <= k; j += VEC)
    {
      __m512 v = _mm512_loadu_ps (row + j);

      nan |= _mm512_cmp_ps_mask (v, v, _CMP_UNORD_Q);
      mx = _mm512_max_ps (mx, v);
    }
  if (j < k)
    {
      __mmask16 t = (__mmask16) ((1u << (k - j)) - 1);
      __m512 v = _mm512_mask_loadu_ps (_mm512_set1_ps (-INFINITY), t, row + j);

      nan |= _mm512_cmp_ps_mask (v, v, _CMP_UNORD_Q);
      mx = _mm512_max_ps (mx, v);
    }
  if (nan)
    return FALSE;
  m = _mm512_reduce_max_ps (mx);
  for (j = 0; j + VEC <= k && at < 0; j += VEC)
    {
      __mmask16 eq = _mm512_cmp_ps_mask (_mm512_loadu_ps (row + j), _mm512_set1_ps (m), _CMP_EQ_OQ);

      if (eq)
        at = j + __builtin_ctz (eq);
    }
  for (; j < k && at < 0; j++)
    if (row[j] == m)
      at = j;
  if (at < 0)
    return FALSE;
  /* the others: every value but the one at @at */
  for (j = 0; j + VEC <= k; j += VEC)
    {
      __m512 v = _mm512_loadu_ps (row + j);

      if (at >= j && at < j + VEC)
        v = _mm512_mask_blend_ps ((__mmask16) (1u << (at - j)), v, _mm512_set1_ps (-INFINITY));
      other = _mm512_max_ps (other, v);
    }
  for (; j < k; j++)
    if (j != at)
      other = _mm512_max_ps (other, _mm512_set1_ps (row[j]));
  *best = at;
  *second = MAX (-G_MAXFLOAT, _mm512_reduce_max_ps (other));
  return TRUE;
}

#endif /* HAVE_AVX512_KERNELS */

static gboolean
have_avx512 (void)
{
#ifdef HAVE_AVX512_KERNELS
  static gsize avx512 = 0;

  if (g_once_init_enter (&avx512))
    {
      __builtin_cpu_init ();
      g_once_init_leave (&avx512, __builtin_cpu_supports ("avx512f") ? 2 : 1);
    }
  return avx512 == 2;
#else
  return FALSE;
#endif
}

void
ps_conv_sub_scaled_sum (int n, int m, const float *v, const float *const *w, float *y)
{
#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 ())
    {
      sub_scaled_sum_avx512 (n, m, v, w, y);
      return;
    }
#endif
  for (int t = 0; t < m; t++)
    for (int j = 0; j < n; j++)
      y[j] -= v[t] * w[t][j];
}

gboolean
ps_conv_sub_windows (int n, int K, int npos, const int *in, const float *v, const float *w,
                     gsize wstride, float *y)
{
#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 () && n >= 1 && n <= 6 * VEC && K >= 1 && K <= 4)
    {
      sub_windows_avx512 (n, K, npos, in, v, w, wstride, y);
      return TRUE;
    }
#endif
  return FALSE;
}

void
ps_conv_sub_scaled_rows (int n, int rows, const int *m, const float *v, const float *const *w,
                         float *const *y)
{
#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 ())
    {
      if (n > 0)
        sub_scaled_rows_avx512 (n, rows, m, v, w, y);
      return;
    }
#endif
  for (int r = 0; r < rows; v += m[r], w += m[r], r++)
    for (int t = 0; t < m[r]; t++)
      for (int j = 0; j < n; j++)
        y[r][j] -= v[t] * w[t][j];
}

void
ps_conv_row_argmax (int k, const float *row, int *best_out, float *margin)
{
  int best = 0;
  float second = -G_MAXFLOAT;

#ifdef HAVE_AVX512_KERNELS
  if (k > 1 && have_avx512 () && row_argmax_avx512 (k, row, &best, &second))
    {
      *best_out = best;
      if (margin != NULL)
        *margin = row[best] - second;
      return;
    }
#endif
  for (int j = 1; j < k; j++)
    if (row[j] > row[best])
      {
        second = MAX (second, row[best]);
        best = j;
      }
    else
      second = MAX (second, row[j]);
  *best_out = best;
  if (margin != NULL)
    *margin = row[best] - second;
}

double
ps_conv_sq_dist (int n, const float *a, const float *b)
{
  double sum = 0;

#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 ())
    return sq_dist_avx512 (n, a, b);
#endif
  for (int j = 0; j < n; j++)
    sum += (double) (a[j] - b[j]) * (a[j] - b[j]);
  return sum;
}

gboolean
ps_conv_relu (gsize n, const float *in, float *out)
{
#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 ())
    {
      relu_avx512 (n, in, out);
      return TRUE;
    }
#endif
  return FALSE;
}

double
ps_conv_sq_norm (int n, const float *a)
{
  double sum = 0;

#ifdef HAVE_AVX512_KERNELS
  if (have_avx512 ())
    return sq_norm_avx512 (n, a);
#endif
  for (int j = 0; j < n; j++)
    sum += (double) a[j] * a[j];
  return sum;
}

void
ps_conv_sub_scaled (int n, float v, const float *w, float *y)
{
#ifdef HAVE_AVX512_KERNELS
  static gsize avx512 = 0;

  if (g_once_init_enter (&avx512))
    {
      __builtin_cpu_init ();
      g_once_init_leave (&avx512, __builtin_cpu_supports ("avx512f") ? 2 : 1);
    }
  if (avx512 == 2)
    {
      sub_scaled_avx512 (n, v, w, y);
      return;
    }
#endif
  for (int j = 0; j < n; j++)
    y[j] -= v * w[j];
}

void
ps_conv_forward (const PsConvPack *p, int n, const float *x, gboolean relu, float *linear,
                 float *out)
{
#ifdef HAVE_AVX512_KERNELS
  conv_range (p, x, 0, (gsize) n * p->OH * p->OW, relu, linear, out);
#else
  g_assert_not_reached ();
#endif
}

gboolean
ps_conv_can_sparse (const PsConvPack *p)
{
  return p != NULL && p->sparse;
}

gsize
ps_conv_sparse_scratch_size (const PsConvPack *p)
{
  /* the masks of a ring of rows and of their union, the nonzero inputs' indices */
  return (gsize) (UNION_ROWS + 1) * mask_words (p) * sizeof (guint64)
         + (gsize) p->K * sizeof (int);
}

void
ps_conv_forward_sparse (const PsConvPack *p, int n, const float *x, gboolean relu,
                        float *linear, float *out, gpointer scratch)
{
  g_return_if_fail (p->sparse);
#ifdef HAVE_AVX512_KERNELS
  guint64 *ring = scratch, *any = ring + (gsize) UNION_ROWS * mask_words (p);

  forward_sparse (p, n, x, relu, linear, out, (int *) (gpointer) (any + mask_words (p)), ring, any);
#else
  g_assert_not_reached ();
#endif
}

void
ps_conv_forward_pool (const PsConvPack *p, const PsLayer *pool, int n, const float *x,
                      gboolean relu, float *out, float *scratch)
{
#ifdef HAVE_AVX512_KERNELS
  const gsize plane = (gsize) p->OH * p->OW;
  const int C = p->OC, POH = pool->out.h, POW = pool->out.w;
  const int band = band_rows (p, pool);

  if (p->rows)
    {
      rows_forward_pool (p, pool, n, x, NULL, NULL, FALSE, relu, out, scratch);
      return;
    }
  for (int b = 0; b < n; b++)
    for (int py = 0; py < POH; py += band)
      {
        /* the conv rows under these rows of windows, in scratch */
        int rows = MIN (band, POH - py);
        gsize g0 = b * plane + (gsize) py * pool->sh * p->OW;
        float *d = out + (((gsize) b * POH + py) * POW) * C;

        conv_range (p, x, g0, g0 + (gsize) band_conv_rows (pool, rows) * p->OW, relu, NULL, scratch);
        pool_band (p, pool, scratch, rows, d);
      }
#else
  g_assert_not_reached ();
#endif
}

gboolean
ps_conv_reads_planar (const PsConvPack *p)
{
  /* with one column phase the planes are the channels-first image itself */
  return p != NULL && p->rows && p->sw == 1 && !p->padded;
}

gsize
ps_conv_padded_size (const PsConvPack *p)
{
  return p != NULL && p->padded ? (gsize) p->H * p->W * p->C : 0;
}

void
ps_conv_pad (const PsConvPack *p, int n, const float *x, float *xp)
{
  const gsize in_row = (gsize) p->IW * p->C, row = (gsize) p->W * p->C;
  /* the input's columns inside the frame (right or bottom padding may cut some) */
  const int cols = MIN (p->IW, p->W - p->pl), rows = MIN (p->IH, p->H - p->pt);

  g_return_if_fail (p->padded);
  for (int b = 0; b < n; b++)
    {
      const float *src = x + (gsize) b * p->IH * in_row;
      float *dst = xp + (gsize) b * p->H * row;

      for (int y = 0; y < p->H; y++)
        {
          float *d = dst + (gsize) y * row;
          int iy = y - p->pt;

          if (iy < 0 || iy >= rows)
            {
              memset (d, 0, sizeof (float) * row);
              continue;
            }
          memset (d, 0, sizeof (float) * p->pl * p->C);
          memcpy (d + (gsize) p->pl * p->C, src + (gsize) iy * in_row, sizeof (float) * cols * p->C);
          memset (d + (gsize) (p->pl + cols) * p->C, 0, sizeof (float) * (p->W - p->pl - cols) * p->C);
        }
    }
}

void
ps_conv_forward_pool_planar (const PsConvPack *p, const PsLayer *pool, int n, const float *x,
                             gboolean relu, float *out, float *scratch)
{
  g_return_if_fail (ps_conv_reads_planar (p));
#ifdef HAVE_AVX512_KERNELS
  rows_forward_pool (p, pool, n, x, NULL, NULL, TRUE, relu, out, scratch);
#endif
}

void
ps_conv_forward_pool_fill (const PsConvPack *p, const PsLayer *pool, int n, PsConvFill fill,
                           gpointer data, gboolean relu, float *out, float *scratch)
{
  g_return_if_fail (ps_conv_reads_planar (p));
#ifdef HAVE_AVX512_KERNELS
  rows_forward_pool (p, pool, n, NULL, fill, data, TRUE, relu, out, scratch);
#endif
}
