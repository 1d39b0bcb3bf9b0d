/* ps-winograd.h: a 3x3 stride-1 convolution and the 2x2 max-pool after it, by Winograd's
 * F(2x2, 3x3) */
#pragma once

#include "ps-layer.h"

G_BEGIN_DECLS

typedef struct _PsWinograd PsWinograd;

PsWinograd *ps_winograd_new          (const PsLayer    *conv,
                                      const PsLayer    *pool);
void        ps_winograd_free         (PsWinograd       *wino);
gsize       ps_winograd_scratch_size (const PsWinograd *wino);
void        ps_winograd_forward_pool (const PsWinograd *wino,
                                      int               n,
                                      const float      *x,
                                      gboolean          relu,
                                      float            *out,
                                      float            *scratch);

G_END_DECLS
