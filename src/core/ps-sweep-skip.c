/* ps-sweep-skip.c: the proof that an image's class has not changed at a step, so that the
 * output layer (a Dense layer: 1,283 classes on the lab's BadNets) need not run for it.
 *
 * When an image was last scored exactly, at output-layer input href, with best class c and
 * gap g to the best other class, its scores at a new input h are z(href) + W (h - href):
 * class c stays the best while |W_c - W_j| |h - href| (at most reach_c |dh|) stays below g
 * for every j. The test leaves room for the float rounding of the scores, computed in
 * float both times: each within n 2^-24 (|b_j| + |W_j| |h|) of its real value.
 * (Checking the few closest rivals one by one with their dot products, and the bound only
 * for the rest, was measured on the lab-sized data: it spared 2.6 % of the scorings, less
 * than it cost.) */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-conv.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void
_ps_sweep_skip_plan (PsSweep *s)
{
  const PsModel *m = s->model;
  const PsLayer *o = m->layers[m->output];
  int k = o->out.c, h = o->in.c;
  g_autofree float *gram = NULL;
  double max_norm = 0.0, max_bias = 0.0;

  s->h_layer = -1;
  /* The bound is on the scores the class is the argmax of: the linear output itself, or
   * the logits under a softmax (which keeps their order). A ReLU or any clipping output
   * makes ties the bound does not see, so such outputs are recomputed. */
  if (o->kind != PS_LAYER_DENSE || !s->run[m->output]
      || (o->activation != PS_ACT_LINEAR && o->activation != PS_ACT_SOFTMAX))
    return;
  gram = g_new (float, (gsize) k * k);
  cblas_sgemm (CblasRowMajor, CblasTrans, CblasNoTrans, k, k, h, 1.0f, o->kernel, k,
               o->kernel, k, 0.0f, gram, k);
  s->reach_out = g_new0 (double, k);
  s->w_norm = g_new (double, k);
  for (int c = 0; c < k; c++)
    {
      double sq = 0.0;

      /* from the kernel itself: the Gram matrix's diagonal is rounded */
      for (int i = 0; i < h; i++)
        sq += (double) o->kernel[(gsize) i * k + c] * o->kernel[(gsize) i * k + c];
      s->w_norm[c] = sqrt (sq);
      max_norm = MAX (max_norm, s->w_norm[c]);
      max_bias = MAX (max_bias, fabs (o->bias[c]));
    }
  for (int c = 0; c < k; c++)
    for (int j = 0; j < k; j++)
      {
        double d2 = (double) gram[(gsize) j * k + j] + gram[(gsize) c * k + c]
                    - 2.0 * gram[(gsize) j * k + c];
        s->reach_out[c] = MAX (s->reach_out[c], sqrt (MAX (d2, 0.0)));
      }
  for (int c = 0; c < k; c++)
    s->reach_out[c] = s->reach_out[c] * 1.001 + 1e-6; /* the Gram matrix is rounded */
  s->max_w_norm = max_norm;
  s->max_bias = max_bias;
  /* each score's rounding: h products and the bias, summed in float */
  s->gamma = (h + 2) * 0x1p-24 / (1.0 - (h + 2) * 0x1p-24);
  s->h_layer = o->inputs[0];
  s->h_size = h;
  s->run[m->output] = FALSE; /* run by hand, for the images that need it */
}

static double
norm (int n, const float *x)
{
  return sqrt (ps_conv_sq_norm (n, x));
}

/* Records image @i's exact scores @z at output-layer input @h; returns its class. */
int
_ps_sweep_skip_record (const PsSweep *s, SetData *d, int i, const float *h, const float *z)
{
  PsSkipRecord *r = &d->skip[i - d->cache_at];
  int best;
  float margin;

  ps_conv_row_argmax (s->n_classes, z, &best, &margin);
  memcpy (d->href + (gsize) (i - d->cache_at) * s->h_size, h, sizeof (float) * s->h_size);
  r->best = (guint16) best;
  r->h_norm = (float) norm ((int) s->h_size, h);
  /* NaN anywhere: never skip (every comparison with NaN fails) */
  r->gap = isnan (r->h_norm) ? NAN : margin;
  return best;
}

/* Whether image @i's class provably has not changed now that the output layer's input
 * is @h. */
gboolean
_ps_sweep_skip_holds (const PsSweep *s, const SetData *d, int i, const float *h)
{
  const PsLayer *o = s->model->layers[s->model->output];
  const PsSkipRecord *r = &d->skip[i - d->cache_at];
  const int n = (int) s->h_size, c = r->best;
  double dh = sqrt (ps_conv_sq_dist (n, h, d->href + (gsize) (i - d->cache_at) * s->h_size));
  double hmax = r->h_norm + dh; /* at least |h| */
  /* the scores' rounding at href and at h, and the gap's own */
  double room = 2.0 * s->gamma * ((s->w_norm[c] + s->max_w_norm) * hmax + fabs (o->bias[c])
                                  + s->max_bias)
                + 0x1p-24 * fabs (r->gap);

  return r->gap - s->reach_out[c] * dh > room;
}
