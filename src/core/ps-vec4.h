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
