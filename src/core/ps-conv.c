/* ps-conv.c: direct Conv2D / Dense kernels. DeepID's convolutions have few channels
 * (K = 48…360, 20…80 outputs), so im2col + sgemm spends more time copying and packing than
 * multiplying. Here the weights are packed once ((kh, kw, in) x outputs rounded up to 16),
 * and each tile of R output pixels x NV vectors of 16 output channels is accumulated in
 * registers straight from the NHWC input: one weight load per vector and one broadcast per
 * pixel feed R x NV fused multiply-adds. Bias, ReLU and a following max-pool are applied
 * as the tile is stored. */
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

struct _PsConvPack {
  int    H, W, C;       /* input */
  int    OH, OW, OC;    /* output */
  int    sh, sw;
  int    K;             /* kh * kw * C */
  int    OCP;           /* OC rounded up to VEC */
  float *w;             /* K x OCP, zero beyond OC */
  float *bias;          /* OCP */
  int   *koff;          /* K: offset of each (ky, kx, c) from a window's first input */
  gboolean sparse;      /* a Dense layer with finite weights: zero inputs may be skipped */
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

PsConvPack *
ps_conv_pack_new (const PsLayer *l)
{
  PsConvPack *p;
  int kh, kw;

  if (!ps_conv_available ())
    return NULL;
  if (l->kind == PS_LAYER_CONV2D)
    {
      /* The kernels read whole windows inside the input (no padding), one group, no
       * dilation. */
      if (l->groups > 1 || l->dh > 1 || l->dw > 1 || l->pad_top != 0 || l->pad_left != 0
          || (l->out.h - 1) * l->sh + l->kh > l->in.h || (l->out.w - 1) * l->sw + l->kw > l->in.w)
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
      p->H = l->in.h, p->W = l->in.w, p->C = l->in.c;
      p->OH = l->out.h, p->OW = l->out.w;
      p->sh = l->sh, p->sw = l->sw;
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
  g_free (p);
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

gsize
ps_conv_pool_scratch_size (const PsConvPack *p, const PsLayer *pool)
{
  return (gsize) band_conv_rows (pool, band_rows (p, pool)) * p->OW * p->OC;
}

#ifdef HAVE_AVX512_KERNELS

/* One tile: R output pixels (inputs at xs[r], outputs at lin[r], out[r]) x NV vectors of
 * output channels from channel 16 * ob; @last masks the final vector's channels. Inlined
 * with constant R and NV so that the accumulators live in registers. */
static inline __attribute__ ((always_inline)) TARGET void
tile (const PsConvPack *p, int ob, const int NV, const int R, const float *const *xs,
      float *const *lin, float *const *out, gboolean relu, __mmask16 last)
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
      const int o = p->koff[k];
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
      tile (p, ob, NV, 1, xs, lpp, op, relu, last); \
    else \
      tile (p, ob, NV, tile_rows[NV], xs, lpp, op, relu, last); \
    break;

/* Output pixels g0 .. g1-1 (counted over all images, row-major) into lin/out, which hold
 * pixel g at (g - g0) * OC. */
static TARGET void
conv_range (const PsConvPack *p, const float *x, gsize g0, gsize g1, gboolean relu,
            float *lin, float *out)
{
  const gsize plane = (gsize) p->OH * p->OW, img = (gsize) p->H * p->W * p->C;
  const int nvec = p->OCP / VEC;

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
              gsize q = start + r, b = q / plane, rem = q % plane;
              int oy = (int) (rem / p->OW), ox = (int) (rem % p->OW);

              xs[r] = x + b * img + ((gsize) oy * p->sh * p->W + (gsize) ox * p->sw) * p->C;
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

#define MAX_SV 12 /* vectors of outputs per pass over a sparse input */

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

/* One image over its nonzero inputs. */
static TARGET void
sparse_row (const PsConvPack *p, const float *x, gboolean relu, float *lin, float *out, int *idx)
{
  const int nvec = p->OCP / VEC;
  const __m512i step = _mm512_set1_epi32 (VEC);
  __m512i iota = _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int nnz = 0, k = 0;

  /* the inputs that are not zero (NaN included), in order */
  for (; k + VEC <= p->K; k += VEC, iota = _mm512_add_epi32 (iota, step))
    {
      __mmask16 m = _mm512_cmp_ps_mask (_mm512_loadu_ps (x + k), _mm512_setzero_ps (), _CMP_NEQ_UQ);

      _mm512_mask_compressstoreu_epi32 (idx + nnz, m, iota);
      nnz += __builtin_popcount (m);
    }
  for (; k < p->K; k++)
    if (x[k] != 0.0f)
      idx[nnz++] = k;
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

/* R rows at once over the inputs listed in @idx, the union of the rows' nonzero inputs:
 * xt holds row r's input idx[u] at u * R + r. Each weight vector loaded feeds R rows.
 * A row gets the same fused multiply-adds from the bias in the same order as tile(),
 * zero inputs included where another row has that input (each adds exactly 0, as in
 * tile()), hence the same bits. */
static inline __attribute__ ((always_inline)) TARGET void
union_tile (const PsConvPack *p, int ob, const int NV, const int R, const float *xt,
            const int *idx, int nu, float *lin, float *out, gboolean relu, __mmask16 last)
{
  __m512 acc[UNION_ROWS][UNION_ACC];
  const float *w = p->w + (gsize) ob * VEC;
  const __m512 zero = _mm512_setzero_ps ();

#pragma GCC unroll 12
  for (int v = 0; v < NV; v++)
    {
      __m512 b = _mm512_load_ps (p->bias + (gsize) (ob + v) * VEC);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++)
        acc[r][v] = b;
    }
  for (int u = 0; u < nu; u++, xt += R)
    {
      const float *wk = w + (gsize) idx[u] * p->OCP;
      __m512 wv[UNION_ACC];

#pragma GCC unroll 12
      for (int v = 0; v < NV; v++)
        wv[v] = _mm512_load_ps (wk + v * VEC);
#pragma GCC unroll 8
      for (int r = 0; r < R; r++)
        {
          const __m512 a = _mm512_set1_ps (xt[r]);

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
    union_tile (p, ob, NV, R, xt, idx, nu, lin, out, relu, last); \
    break;

/* R (8, 4 or 2) rows over the union @idx (@nu inputs) of their nonzero inputs. */
static TARGET void
union_rows (const PsConvPack *p, const int R, const float *x, gboolean relu, float *lin,
            float *out, const int *idx, int nu, float *xt)
{
  const int nvec = p->OCP / VEC, max_nv = UNION_ACC / R;
  /* blocks of outputs as even as they can be (10 vectors: 3, 3, 2, 2 rather than 3, 3, 3, 1) */
  const int blocks = (nvec + max_nv - 1) / max_nv;

  for (int u = 0; u < nu; u++)
    for (int r = 0; r < R; r++)
      xt[u * R + r] = x[(gsize) r * p->K + idx[u]];
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

/* How many inputs are nonzero in one of R rows (returned) and in each row (summed in
 * @total), without listing them: most groups tried are not taken, and listing (a
 * compressing store) is the slow part. @any gets the union's mask per 16 inputs. */
static TARGET int
count_union (const PsConvPack *p, int R, const float *x, __mmask16 *any, int *total)
{
  int nu = 0, sum = 0, k = 0, v = 0;

  for (; k + VEC <= p->K; k += VEC, v++)
    {
      __mmask16 m_any = 0;

      for (int r = 0; r < R; r++)
        {
          __mmask16 m = _mm512_cmp_ps_mask (_mm512_loadu_ps (x + (gsize) r * p->K + k),
                                            _mm512_setzero_ps (), _CMP_NEQ_UQ);
          m_any |= m;
          sum += __builtin_popcount (m);
        }
      any[v] = m_any;
      nu += __builtin_popcount (m_any);
    }
  if (k < p->K)
    {
      __mmask16 m_any = 0;

      for (int r = 0; r < R; r++)
        for (int j = k; j < p->K; j++)
          if (x[(gsize) r * p->K + j] != 0.0f)
            m_any |= (__mmask16) (1u << (j - k)), sum++;
      any[v] = m_any;
      nu += __builtin_popcount (m_any);
    }
  *total = sum;
  return nu;
}

/* The inputs of the masks @any, in order. */
static TARGET void
list_union (const PsConvPack *p, const __mmask16 *any, int *idx)
{
  const __m512i step = _mm512_set1_epi32 (VEC);
  __m512i iota = _mm512_setr_epi32 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int nu = 0;

  for (int v = 0; v * VEC < p->K; v++, iota = _mm512_add_epi32 (iota, step))
    {
      _mm512_mask_compressstoreu_epi32 (idx + nu, any[v], iota);
      nu += __builtin_popcount (any[v]);
    }
}

/* Rows one by one over their nonzero inputs; but runs of rows whose nonzero inputs mostly
 * coincide (the same image at successive steps of a sweep) go together over the union of
 * their inputs when that costs at most 3/2 of the rows' own inputs: each weight is then
 * loaded once for the group instead of once per row. Groups of 8, 4 or 2 rows, the largest
 * that pays. */
static TARGET void
forward_sparse (const PsConvPack *p, int n, const float *x, gboolean relu, float *lin,
                float *out, int *idx, float *xt, __mmask16 *any)
{
  for (int b = 0; b < n;)
    {
      const float *xb = x + (gsize) b * p->K;
      float *lb = lin ? lin + (gsize) b * p->OC : NULL, *ob = out + (gsize) b * p->OC;
      int R;

      for (R = UNION_ROWS; R > 1; R /= 2)
        {
          int total, nu;

          if (n - b < R)
            continue;
          nu = count_union (p, R, xb, any, &total);
          if (2 * nu * R <= 3 * total)
            {
              list_union (p, any, idx);
              union_rows (p, R, xb, relu, lb, ob, idx, nu, xt);
              break;
            }
        }
      if (R == 1)
        sparse_row (p, xb, relu, lb, ob, idx);
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
  /* a group's inputs side by side, the nonzero inputs' indices, the union's masks */
  return (gsize) p->K * (UNION_ROWS * sizeof (float) + sizeof (int))
         + (p->K / VEC + 1) * sizeof (guint16);
}

void
ps_conv_forward_sparse (const PsConvPack *p, int n, const float *x, gboolean relu,
                        float *linear, float *out, gpointer scratch)
{
  g_return_if_fail (p->sparse);
#ifdef HAVE_AVX512_KERNELS
  float *xt = scratch;
  int *idx = (int *) (gpointer) (xt + (gsize) p->K * UNION_ROWS);

  forward_sparse (p, n, x, relu, linear, out, idx, xt, (__mmask16 *) (gpointer) (idx + p->K));
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
