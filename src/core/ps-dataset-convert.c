/* ps-dataset-convert.c: one image from the file's order to NHWC floats (or to channel
 * planes), checked and scaled in one pass, four values at a time */
#define G_LOG_DOMAIN "ps-dataset"

#include "ps-dataset-private.h"
#include "ps-vec4.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef unsigned char v4qu __attribute__ ((vector_size (4)));

static inline PsVec4
load4_u8 (const guint8 *p)
{
#ifdef __SSE2__
  /* GCC's generic widening picks the bytes out one by one; SSE2 unpacks them */
  int word;
  __m128i zero = _mm_setzero_si128 ();
  __m128i b;

  memcpy (&word, p, sizeof word);
  b = _mm_cvtsi32_si128 (word);
  return (PsVec4) _mm_cvtepi32_ps (_mm_unpacklo_epi16 (_mm_unpacklo_epi8 (b, zero), zero));
#else
  v4qu v;

  memcpy (&v, p, sizeof v);
  return __builtin_convertvector (__builtin_convertvector (v, PsVec4i), PsVec4);
#endif
}

/* Pixels p .. p+3 of the three planes as r g b r g b ...: six shuffles and three stores
 * where a plain loop stores twelve floats one by one (GCC does not vectorise it). */
static inline void
store_rgb4 (PsVec4 r, PsVec4 g, PsVec4 b, float *out)
{
  PsVec4 rg = __builtin_shuffle (r, g, (PsVec4i) { 0, 4, 1, 5 });   /* r0 g0 r1 g1 */
  PsVec4 gb = __builtin_shuffle (g, b, (PsVec4i) { 1, 5, 2, 6 });   /* g1 b1 g2 b2 */
  PsVec4 rg2 = __builtin_shuffle (r, g, (PsVec4i) { 2, 6, 3, 7 });  /* r2 g2 r3 g3 */
  PsVec4 o0 = __builtin_shuffle (rg, b, (PsVec4i) { 0, 1, 4, 2 });  /* r0 g0 b0 r1 */
  PsVec4 o1 = __builtin_shuffle (gb, r, (PsVec4i) { 0, 1, 6, 2 });  /* g1 b1 r2 g2 */
  PsVec4 o2 = __builtin_shuffle (rg2, b, (PsVec4i) { 6, 2, 3, 7 }); /* b2 r3 g3 b3 */

  memcpy (out, &o0, sizeof o0);
  memcpy (out + 4, &o1, sizeof o1);
  memcpy (out + 8, &o2, sizeof o2);
}

void
_ps_dataset_convert_u8 (const PsDatasetLayout *lay, const guint8 *im, float s,
                        gboolean planar, float *out)
{
  const gsize hw = (gsize) lay->h * lay->w;
  const int C = lay->c;
  gsize p = 0;

  if (lay->chw == planar || C == 1)
    {
      /* the file's order is the one wanted */
      gsize i = 0;

      for (; i + 4 <= hw * C; i += 4)
        ps_vec4_store (load4_u8 (im + i) * s, out + i);
      for (; i < hw * C; i++)
        out[i] = im[i] * s;
      return;
    }
  if (planar)
    {
      for (p = 0; p < hw; p++)
        for (int c = 0; c < C; c++)
          out[c * hw + p] = im[p * C + c] * s;
      return;
    }
  if (C == 3)
    for (; p + 4 <= hw; p += 4)
      store_rgb4 (load4_u8 (im + p) * s, load4_u8 (im + hw + p) * s,
                  load4_u8 (im + 2 * hw + p) * s, out + 3 * p);
  for (; p < hw; p++)
    for (int c = 0; c < C; c++)
      out[p * C + c] = im[c * hw + p] * s;
}

gboolean
_ps_dataset_convert_f32 (const PsDatasetLayout *lay, const float *im, float s,
                         gboolean planar, float *out)
{
  const gsize hw = (gsize) lay->h * lay->w;
  const int C = lay->c;
  int bad = 0;

  if (lay->chw == planar || C == 1)
    {
      /* the file's order is the one wanted; x - x is 0 for a finite x, NaN otherwise */
      PsVec4 nan = { 0 };
      gsize i = 0;

      for (; i + 4 <= hw * C; i += 4)
        {
          PsVec4 x = ps_vec4_load (im + i);

          nan += x - x;
          ps_vec4_store ((x + 0.0f) * s, out + i);
        }
      bad = (nan[0] != 0.0f) | (nan[1] != 0.0f) | (nan[2] != 0.0f) | (nan[3] != 0.0f);
      for (; i < hw * C; i++)
        {
          float x = im[i];

          bad |= x - x != 0.0f;
          out[i] = (x + 0.0f) * s;
        }
    }
  else if (planar)
    for (gsize p = 0; p < hw; p++)
      for (int c = 0; c < C; c++)
        {
          float x = im[p * C + c];

          bad |= x - x != 0.0f;
          out[c * hw + p] = (x + 0.0f) * s;
        }
  else if (C == 3)
    {
      /* x - x is 0 for a finite x, NaN otherwise: the sum stays 0 while all are finite */
      PsVec4 nan = { 0 };
      gsize p = 0;

      for (; p + 4 <= hw; p += 4)
        {
          PsVec4 r = ps_vec4_load (im + p), g = ps_vec4_load (im + hw + p), b = ps_vec4_load (im + 2 * hw + p);

          nan += (r - r) + (g - g) + (b - b);
          store_rgb4 ((r + 0.0f) * s, (g + 0.0f) * s, (b + 0.0f) * s, out + 3 * p);
        }
      bad = (nan[0] != 0.0f) | (nan[1] != 0.0f) | (nan[2] != 0.0f) | (nan[3] != 0.0f);
      for (; p < hw; p++)
        for (int c = 0; c < 3; c++)
          {
            float x = im[c * hw + p];

            bad |= x - x != 0.0f;
            out[p * 3 + c] = (x + 0.0f) * s;
          }
    }
  else
    for (gsize p = 0; p < hw; p++)
      for (int c = 0; c < C; c++)
        {
          float x = im[c * hw + p];

          bad |= x - x != 0.0f;
          out[p * C + c] = (x + 0.0f) * s;
        }
  return !bad;
}

gboolean
_ps_dataset_convert_f32_in_place (gsize n, float s, float *x)
{
  PsVec4 nan = { 0 };
  PsVec4i minus_zero = { 0 };
  int bad = 0;
  gsize i = 0;

  if (s != 1.0f)
    {
      for (; i + 4 <= n; i += 4)
        {
          PsVec4 v = ps_vec4_load (x + i);

          nan += v - v;
          ps_vec4_store ((v + 0.0f) * s, x + i);
        }
    }
  else
    {
      /* times 1 changes only a -0 (to +0): the values are only read, and written back
       * where there is one */
      for (; i + 4 <= n; i += 4)
        {
          PsVec4 v = ps_vec4_load (x + i);

          nan += v - v;
          minus_zero |= (PsVec4i) v == (PsVec4i) { G_MININT32, G_MININT32, G_MININT32, G_MININT32 };
        }
      if (minus_zero[0] | minus_zero[1] | minus_zero[2] | minus_zero[3])
        for (gsize j = 0; j < i; j++)
          x[j] = x[j] + 0.0f;
    }
  bad = (nan[0] != 0.0f) | (nan[1] != 0.0f) | (nan[2] != 0.0f) | (nan[3] != 0.0f);
  for (; i < n; i++)
    {
      bad |= x[i] - x[i] != 0.0f;
      x[i] = (x[i] + 0.0f) * s;
    }
  return !bad;
}
