/* ps-sweep-plan.c: which layers carry a sweep's state. The "frontier" is the layers that
 * read the pruned layer linearly (a Conv2D, or a Dense through a Flatten): removing a channel
 * is a rank-one update of their linear outputs. Only the layers after them run again. When
 * the output is a Dense layer, its product is skipped for images whose class provably
 * cannot have changed: the scores move by at most |dh| * max_j |W_j - W_c| since the last
 * exact evaluation, which must stay below the margin between the best and second-best. */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-h5.h"
#include "ps-layer-ops.h"

#include <cblas.h>
#include <math.h>

static int
consumers (const PsModel *m, int layer, int *out)
{
  int n = 0;

  for (int i = layer + 1; i < m->n_layers; i++)
    for (int j = 0; j < m->layers[i]->n_inputs; j++)
      if (m->layers[i]->inputs[j] == layer)
        {
          if (n < PS_MAX_INPUTS)
            out[n] = i;
          n++;
          break;
        }
  return n;
}

static gboolean
add_front (PsSweep *s, FrontKind kind, int layer)
{
  if (s->n_fronts == PS_MAX_INPUTS)
    return FALSE;
  s->fronts[s->n_fronts++] = (Front) { kind, layer,
                                        ps_shape_size (s->model->layers[layer]->out), 0 };
  return TRUE;
}

/* The fast path needs every reader of the pruned layer to be linear in it. */
static gboolean
find_linear_fronts (PsSweep *s)
{
  const PsModel *m = s->model;
  int cons[PS_MAX_INPUTS], n = consumers (m, s->layer, cons);

  if (n == 0 || n > PS_MAX_INPUTS)
    return FALSE;
  for (int i = 0; i < n; i++)
    {
      const PsLayer *u = m->layers[cons[i]];

      if (u->n_inputs != 1)
        return FALSE;
      if (u->kind == PS_LAYER_CONV2D && !ps_layer_ops_conv_is_general (u))
        {
          if (!add_front (s, FRONT_CONV, cons[i]))
            return FALSE;
        }
      else if (u->kind == PS_LAYER_DENSE)
        {
          if (!add_front (s, FRONT_DENSE, cons[i]))
            return FALSE;
        }
      else if (u->kind == PS_LAYER_FLATTEN)
        {
          int fc[PS_MAX_INPUTS], nf = consumers (m, cons[i], fc);

          if (nf == 0 || nf > PS_MAX_INPUTS)
            return FALSE;
          for (int j = 0; j < nf; j++)
            if (m->layers[fc[j]]->kind != PS_LAYER_DENSE || !add_front (s, FRONT_DENSE, fc[j]))
              return FALSE;
        }
      else
        return FALSE;
    }
  return TRUE;
}

static void plan_output_skip (PsSweep *s);

gboolean
_ps_sweep_plan_structure (PsSweep *s, GError **error)
{
  const PsModel *m = s->model;
  g_autofree gboolean *reach = g_new0 (gboolean, m->n_layers);
  gsize off = 0;

  /* Everything the output depends on must come through the pruned layer. */
  if (!ps_model_layer_is_cut (m, s->layer, error))
    return FALSE;

  if (!find_linear_fronts (s))
    {
      s->n_fronts = 0;
      add_front (s, FRONT_MASK, s->layer);
    }
  for (int f = 0; f < s->n_fronts; f++)
    {
      s->fronts[f].offset = off;
      off += s->fronts[f].size;
      reach[s->fronts[f].layer] = TRUE;
    }
  s->state_size = off;
  s->act_by_channel = s->fronts[0].kind != FRONT_MASK;

  s->run = g_new0 (gboolean, m->n_layers);
  for (int i = s->layer + 1; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];

      gboolean fed = FALSE;

      for (int j = 0; j < l->n_inputs; j++)
        fed |= reach[l->inputs[j]];
      s->run[i] = fed && !reach[i]; /* fronts are filled from the state, not run */
      reach[i] |= fed;
    }
  plan_output_skip (s);
  return TRUE;
}

/* The output skip needs a Dense output run after the frontier; precomputes, per class c,
 * max_j |W_j - W_c| from the Gram matrix of the output kernel's columns. */
static void
plan_output_skip (PsSweep *s)
{
  const PsModel *m = s->model;
  const PsLayer *o = m->layers[m->output];
  int k = o->out.c, h = o->in.c;
  g_autofree float *gram = NULL;

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
  for (int c = 0; c < k; c++)
    for (int j = 0; j < k; j++)
      {
        double d2 = (double) gram[(gsize) j * k + j] + gram[(gsize) c * k + c]
                    - 2.0 * gram[(gsize) j * k + c];
        s->reach_out[c] = MAX (s->reach_out[c], sqrt (MAX (d2, 0.0)));
      }
  for (int c = 0; c < k; c++)
    s->reach_out[c] = s->reach_out[c] * 1.001 + 1e-6; /* room for float rounding */
  s->h_layer = o->inputs[0];
  s->h_size = h;
  s->run[m->output] = FALSE; /* run by hand, for the images that need it */
}

