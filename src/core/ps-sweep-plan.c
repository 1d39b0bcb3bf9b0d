/* ps-sweep-plan.c: which layers carry a sweep's state. The "frontier" is the layers that
 * read the pruned layer linearly (a Conv2D, or a Dense through a Flatten): removing a channel
 * is a rank-one update of their linear outputs. Only the layers after them run again (the
 * output layer only where ps-sweep-skip.c cannot prove the class unchanged). */
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

/* The window of every output position of a Conv2D front, inside the pruned layer. */
static void
plan_windows (PsSweep *s, Front *fr)
{
  const PsLayer *u = s->model->layers[fr->layer];
  const PsShape L = s->lshape;
  int npos = u->out.h * u->out.w, e = 0;

  fr->win_start = g_new (int, npos + 1);
  fr->win_in = g_new (int, (gsize) npos * u->kh * u->kw);
  fr->win_tap = g_new (int, (gsize) npos * u->kh * u->kw);
  for (int oy = 0, o = 0; oy < u->out.h; oy++)
    for (int ox = 0; ox < u->out.w; ox++, o++)
      {
        fr->win_start[o] = e;
        for (int ky = 0; ky < u->kh; ky++)
          for (int kx = 0; kx < u->kw; kx++)
            {
              int y = oy * u->sh + ky - u->pad_top, x = ox * u->sw + kx - u->pad_left;

              if (y < 0 || y >= L.h || x < 0 || x >= L.w)
                continue;
              fr->win_in[e] = y * L.w + x;
              fr->win_tap[e++] = ky * u->kw + kx;
            }
      }
  fr->win_start[npos] = e;
  fr->full_taps = e == npos * u->kh * u->kw ? u->kh * u->kw : 0;
}

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
  for (int f = 0; f < s->n_fronts; f++)
    if (s->fronts[f].kind == FRONT_CONV)
      plan_windows (s, &s->fronts[f]);

  /* what makes the state from the pruned layer's output */
  s->front_run = g_new0 (gboolean, m->n_layers);
  for (int f = 0; f < s->n_fronts && s->fronts[f].kind != FRONT_MASK; f++)
    {
      const PsLayer *u = m->layers[s->fronts[f].layer];

      s->front_run[s->fronts[f].layer] = TRUE;
      if (u->inputs[0] != s->layer)
        s->front_run[u->inputs[0]] = TRUE; /* its Flatten */
    }
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
  _ps_sweep_skip_plan (s);
  return TRUE;
}
