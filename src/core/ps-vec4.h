/* ps-vec4.h: GCC's generic vectors of four (SSE2 on any x86-64, NEON on ARM), for the
 * portable loops that GCC's cheap vectoriser at -O2 leaves scalar */
#pragma once

#include <glib.h>
#include <string.h>

typedef float PsVec4 __attribute__ ((vector_size (16)));
typedef gint32 PsVec4i __attribute__ ((vector_size (16)));
typedef double PsVec4d __attribute__ ((vector_size (32)));

/* four floats from anywhere (no alignment asked) */
static inline PsVec4
ps_vec4_load (const float *p)
{
  PsVec4 v;

  memcpy (&v, p, sizeof v);
  return v;
}

static inline void
ps_vec4_store (PsVec4 v, float *p)
{
  memcpy (p, &v, sizeof v);
}

/* out = a + b over @n floats, four at a time (a sweep's steps run DeepID's merge for every
 * row; the backward passes add gradients); @out may be @a or @b */
static inline void
ps_vec4_add (const float *a, const float *b, float *out, gsize n)
{
  gsize i = 0;

  for (; i + 4 <= n; i += 4)
    ps_vec4_store (ps_vec4_load (a + i) + ps_vec4_load (b + i), out + i);
  for (; i < n; i++)
    out[i] = a[i] + b[i];
}
