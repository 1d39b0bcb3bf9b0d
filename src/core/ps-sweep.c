/* ps-sweep.c: the pruning sweep.
 *
 * Cost model: one full forward pass per image computes B's classes and caches (a) the
 * pruned layer's output and (b) the linear outputs of the first layers after it (the
 * "frontier"). Removing channel c changes the frontier by a rank-one update that only
 * touches images where c was active, so each step subtracts those contributions and
 * re-runs the small rest of the network for the affected images only. When the output is
 * a Dense layer, its (large) product is skipped for images whose class provably cannot
 * have changed: the scores move by at most |dh| * max_j |W_j - W_c| since the last exact
 * evaluation, which must stay below the margin between the best and second-best score. */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-parallel.h"
#include "ps-plan.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define BATCH 64

typedef enum {
  FRONT_CONV,   /* a Conv2D reading the pruned layer */
  FRONT_DENSE,  /* a Dense reading the pruned layer (through a Flatten or directly) */
  FRONT_MASK,   /* fallback: the pruned layer itself, channels zeroed */
} FrontKind;

typedef struct {
  FrontKind kind;
  int       layer;    /* model layer whose linear output (or output, for MASK) is the state */
  gsize     size;     /* floats per image */
  gsize     offset;   /* within an image's state */
} Front;

typedef struct {
  const PsDataset *ds;      /* only during its first pass */
  int              n;
  int             *labels;
  float           *act;     /* n x act_size: the pruned layer's output */
  float           *state;   /* n x state_size: frontier values */
  float           *href;    /* n x h_size: output layer input at the last exact scores */
  float           *margin;  /* n: best minus second-best score then */
  guint16         *preds;   /* n_steps x n */
  int             *affected;
  int              n_affected;
  double          *sums;    /* workers x channels, for the channel means */
  double          *means;   /* channels */
  gboolean         present;
  int             *hits;    /* n_steps x 3: B' correct, G correct, G flagged */
} SetData;

struct _PsSweep {
  const PsModel *model;     /* only during the run */
  char          *layer_name;
  int            layer;
  PsShape        lshape;
  int            n_channels;
  int            n_classes;
  int            n_steps;
  int           *order;
  Front          fronts[PS_MAX_INPUTS];
  int            n_fronts;
  gsize          state_size;
  gboolean      *run;       /* layers to run after the frontier */
  int            h_layer;   /* input of the output layer, when its skip applies; else -1 */
  gsize          h_size;
  double        *reach_out; /* per class c: max_j |W_j - W_c| of the output kernel */
  gboolean       finished;
  SetData        sets[PS_N_SETS];
  PsSweepStep   *steps;
  PsPlan       **plans;
  int            n_workers;
  /* progress, reported from the calling thread only */
  PsSweepProgress progress;
  gpointer       user_data;
  GCancellable  *cancellable;
  int            done_batches;
  int            total_batches;
  int            cur_step;
  gboolean       decreasing;
};

void
ps_sweep_free (PsSweep *s)
{
  if (s == NULL)
    return;
  for (int k = 0; k < PS_N_SETS; k++)
    {
      SetData *d = &s->sets[k];
      if (d->state != d->act)
        g_free (d->state);
      g_free (d->act);
      g_free (d->labels);
      g_free (d->href);
      g_free (d->margin);
      g_free (d->preds);
      g_free (d->affected);
      g_free (d->sums);
      g_free (d->means);
      g_free (d->hits);
    }
  if (s->plans != NULL)
    for (int i = 0; i < s->n_workers; i++)
      ps_plan_free (s->plans[i]);
  g_free (s->plans);
  g_free (s->layer_name);
  g_free (s->order);
  g_free (s->run);
  g_free (s->reach_out);
  g_free (s->steps);
  g_free (s);
}

/* ---- structure: which layers make the frontier, which run after it ---- */

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
      if (u->kind == PS_LAYER_CONV2D)
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

static gboolean
plan_structure (PsSweep *s, GError **error)
{
  const PsModel *m = s->model;
  g_autofree gboolean *down = g_new0 (gboolean, m->n_layers);
  g_autofree gboolean *reach = g_new0 (gboolean, m->n_layers);
  gsize off = 0;

  /* Everything the output depends on must come through the pruned layer. */
  down[s->layer] = TRUE;
  for (int i = s->layer + 1; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];
      int from_down = 0;

      for (int j = 0; j < l->n_inputs; j++)
        from_down += down[l->inputs[j]];
      if (from_down > 0 && from_down < l->n_inputs)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                       "layer “%s” also reads layers before “%s”; choose a later layer to prune",
                       l->name, m->layers[s->layer]->name);
          return FALSE;
        }
      down[i] = from_down > 0;
    }
  if (!down[m->output])
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                   "the output does not depend on layer “%s”", m->layers[s->layer]->name);
      return FALSE;
    }

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
  if (o->kind != PS_LAYER_DENSE || !s->run[m->output])
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

/* ---- the first pass: B on every image, caches for the steps ---- */

typedef struct {
  PsSweep *s;
  SetData *d;
} PassJob;

static PsPlan *
worker_plan (PsSweep *s, int worker)
{
  if (s->plans[worker] == NULL)
    {
      s->plans[worker] = ps_plan_new (s->model, BATCH);
      ps_plan_set_logits (s->plans[worker], TRUE);
      for (int f = 0; f < s->n_fronts; f++)
        if (s->fronts[f].kind != FRONT_MASK)
          ps_plan_keep_linear (s->plans[worker], s->fronts[f].layer);
    }
  return s->plans[worker];
}

static void
report (PsSweep *s, const PsSweepStep *step)
{
  /* The first pass is about nine tenths of the work; steps share the rest. */
  double first = (double) s->done_batches / MAX (s->total_batches, 1);
  double steps = (double) s->cur_step / MAX (s->n_steps - 1, 1);

  if (s->progress != NULL)
    s->progress (step, 0.9 * MIN (first, 1.0) + 0.1 * steps, s->user_data);
}

static void
first_pass_batch (int worker, int task, gpointer data)
{
  PassJob *job = data;
  PsSweep *s = job->s;
  SetData *d = job->d;
  PsPlan *plan;
  gsize asz = ps_shape_size (s->lshape);
  int start = task * BATCH, count = MIN (BATCH, d->n - start);
  int classes[BATCH];
  float margins[BATCH];
  double *sums = d->sums + (gsize) worker * s->n_channels;
  const float *act;

  if (g_cancellable_is_cancelled (s->cancellable))
    return;
  plan = worker_plan (s, worker);
  ps_dataset_get_batch (d->ds, start, count, s->model->input_scale,
                        ps_plan_output (plan, s->model->input));
  ps_plan_forward (plan, count);
  ps_plan_argmax_margin (plan, count, classes, margins);

  act = ps_plan_output (plan, s->layer);
  memcpy (d->act + (gsize) start * asz, act, sizeof (float) * count * asz);
  for (gsize i = 0; i < (gsize) count * asz; i++)
    sums[i % s->n_channels] += act[i];
  for (int b = 0; b < count; b++)
    {
      float *st = d->state + (gsize) (start + b) * s->state_size;

      d->preds[start + b] = (guint16) classes[b];
      for (int f = 0; f < s->n_fronts && d->state != d->act; f++)
        {
          const Front *fr = &s->fronts[f];
          memcpy (st + fr->offset, ps_plan_linear (plan, fr->layer) + (gsize) b * fr->size,
                  sizeof (float) * fr->size);
        }
    }
  if (s->h_layer >= 0)
    {
      memcpy (d->href + (gsize) start * s->h_size, ps_plan_output (plan, s->h_layer),
              sizeof (float) * count * s->h_size);
      memcpy (d->margin + start, margins, sizeof (float) * count);
    }
  g_atomic_int_inc (&s->done_batches);
  if (worker == 0)
    report (s, NULL);
}

static gboolean
alloc_set (PsSweep *s, SetData *d, GError **error)
{
  gsize n = MAX (d->n, 1);
  gboolean mask = s->fronts[0].kind == FRONT_MASK;

  d->act = g_try_malloc (n * ps_shape_size (s->lshape) * sizeof (float));
  d->state = mask ? d->act : g_try_malloc (n * s->state_size * sizeof (float));
  if (s->h_layer >= 0)
    {
      d->href = g_try_malloc (n * s->h_size * sizeof (float));
      d->margin = g_try_malloc (n * sizeof (float));
    }
  if (d->act == NULL || d->state == NULL || (s->h_layer >= 0 && (d->href == NULL || d->margin == NULL)))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "not enough memory for the sweep of %d images", d->n);
      return FALSE;
    }
  d->preds = g_new (guint16, n * s->n_steps);
  d->affected = g_new (int, n);
  d->sums = g_new0 (double, (gsize) s->n_workers * s->n_channels);
  d->means = g_new0 (double, s->n_channels);
  d->hits = g_new0 (int, (gsize) s->n_steps * 3);
  return TRUE;
}

static gboolean
first_pass (PsSweep *s, SetData *d, GError **error)
{
  PassJob job = { s, d };

  if (!alloc_set (s, d, error))
    return FALSE;
  ps_parallel_for ((d->n + BATCH - 1) / BATCH, first_pass_batch, &job);
  if (g_cancellable_set_error_if_cancelled (s->cancellable, error))
    return FALSE;
  for (int w = 0; w < s->n_workers; w++)
    for (int c = 0; c < s->n_channels; c++)
      d->means[c] += d->sums[(gsize) w * s->n_channels + c];
  for (int c = 0; c < s->n_channels; c++)
    d->means[c] /= (double) MAX (d->n, 1) * s->lshape.h * s->lshape.w;
  return TRUE;
}

/* ---- one step: remove a channel, update affected images ---- */

typedef struct {
  PsSweep *s;
  SetData *d;
  int      channel;
  int      step;
} StepJob;

/* Subtracts channel @c's contribution of one image from its frontier state. */
static void
remove_channel (PsSweep *s, float *act, float *state, int c)
{
  const PsShape L = s->lshape;

  for (int f = 0; f < s->n_fronts; f++)
    {
      const Front *fr = &s->fronts[f];
      const PsLayer *u = s->model->layers[fr->layer];
      float *st = state + fr->offset;

      if (fr->kind == FRONT_MASK)
        {
          for (int p = 0; p < L.h * L.w; p++)
            st[(gsize) p * L.c + c] = 0.0f;
          continue;
        }
      for (int y = 0; y < L.h; y++)
        for (int x = 0; x < L.w; x++)
          {
            float v = act[((gsize) y * L.w + x) * L.c + c];

            if (v == 0.0f)
              continue;
            if (fr->kind == FRONT_DENSE)
              {
                const float *w = u->kernel + (((gsize) y * L.w + x) * L.c + c) * u->out.c;
                for (int j = 0; j < u->out.c; j++)
                  st[j] -= v * w[j];
                continue;
              }
            /* Every conv output position whose window covers (y, x). */
            for (int ky = 0; ky < u->kh; ky++)
              for (int kx = 0; kx < u->kw; kx++)
                {
                  int oy = y + u->pad_top - ky, ox = x + u->pad_left - kx;
                  const float *w;
                  float *o;

                  if (oy < 0 || ox < 0 || oy % u->sh || ox % u->sw)
                    continue;
                  oy /= u->sh, ox /= u->sw;
                  if (oy >= u->out.h || ox >= u->out.w)
                    continue;
                  w = u->kernel + (((gsize) ky * u->kw + kx) * L.c + c) * u->out.c;
                  o = st + ((gsize) oy * u->out.w + ox) * u->out.c;
                  for (int j = 0; j < u->out.c; j++)
                    o[j] -= v * w[j];
                }
          }
    }
}

/* Scores only the batch rows whose class may have changed; the others keep theirs. */
static void
score_batch (PsSweep *s, SetData *d, PsPlan *plan, int step, const int *rows, int count)
{
  float *h = ps_plan_output (plan, s->h_layer);
  const guint16 *prev = d->preds + (gsize) (step - 1) * d->n;
  int pick[BATCH], n_pick = 0;
  int classes[BATCH];
  float margins[BATCH];

  for (int b = 0; b < count; b++)
    {
      int i = rows[b];
      const float *hr = d->href + (gsize) i * s->h_size, *hb = h + (gsize) b * s->h_size;
      double dist = 0;

      for (gsize j = 0; j < s->h_size; j++)
        dist += (double) (hb[j] - hr[j]) * (hb[j] - hr[j]);
      if (sqrt (dist) * s->reach_out[prev[i]] < d->margin[i])
        continue;
      /* Compact the rows to score at the front of the buffer (n_pick <= b). */
      if (n_pick != b)
        memmove (h + (gsize) n_pick * s->h_size, hb, sizeof (float) * s->h_size);
      pick[n_pick++] = b;
    }
  if (n_pick == 0)
    return;
  ps_plan_run_layer (plan, s->model->output, n_pick);
  ps_plan_argmax_margin (plan, n_pick, classes, margins);
  for (int r = 0; r < n_pick; r++)
    {
      int i = rows[pick[r]];
      d->preds[(gsize) step * d->n + i] = (guint16) classes[r];
      d->margin[i] = margins[r];
      memcpy (d->href + (gsize) i * s->h_size, h + (gsize) r * s->h_size, sizeof (float) * s->h_size);
    }
}

static void
step_batch (int worker, int task, gpointer data)
{
  StepJob *job = data;
  PsSweep *s = job->s;
  SetData *d = job->d;
  gsize asz = ps_shape_size (s->lshape);
  int start = task * BATCH, count = MIN (BATCH, d->n_affected - start);
  const int *rows = d->affected + start;
  PsPlan *plan = worker_plan (s, worker);
  int classes[BATCH];

  for (int b = 0; b < count; b++)
    {
      float *st = d->state + (gsize) rows[b] * s->state_size;

      remove_channel (s, d->act + (gsize) rows[b] * asz, st, job->channel);
      for (int f = 0; f < s->n_fronts; f++)
        {
          const Front *fr = &s->fronts[f];
          float *dst = fr->kind == FRONT_MASK ? ps_plan_output (plan, fr->layer)
                                              : ps_plan_linear (plan, fr->layer);
          memcpy (dst + (gsize) b * fr->size, st + fr->offset, sizeof (float) * fr->size);
        }
    }
  for (int f = 0; f < s->n_fronts; f++)
    if (s->fronts[f].kind != FRONT_MASK)
      ps_plan_activate (plan, s->fronts[f].layer, count);
  ps_plan_run_layers (plan, count, s->run);
  if (s->h_layer >= 0)
    {
      score_batch (s, d, plan, job->step, rows, count);
      return;
    }
  ps_plan_argmax (plan, count, classes);
  for (int b = 0; b < count; b++)
    d->preds[(gsize) job->step * d->n + rows[b]] = (guint16) classes[b];
}

static void
run_step (PsSweep *s, SetData *d, int step, int channel)
{
  StepJob job = { s, d, channel, step };
  const PsShape L = s->lshape;
  gsize asz = ps_shape_size (L);

  memcpy (d->preds + (gsize) step * d->n, d->preds + (gsize) (step - 1) * d->n,
          sizeof (guint16) * d->n);
  /* Only images where the channel is active can change. */
  d->n_affected = 0;
  for (int i = 0; i < d->n; i++)
    {
      const float *a = d->act + (gsize) i * asz;
      for (int p = 0; p < L.h * L.w; p++)
        if (a[(gsize) p * L.c + channel] != 0.0f)
          {
            d->affected[d->n_affected++] = i;
            break;
          }
    }
  ps_parallel_for ((d->n_affected + BATCH - 1) / BATCH, step_batch, &job);
}

/* ---- metrics ---- */

static void
count_hits (PsSweep *s, SetData *d, int step)
{
  const guint16 *b = d->preds;
  const guint16 *p = d->preds + (gsize) step * d->n;
  int *h = d->hits + step * 3;

  for (int i = 0; i < d->n; i++)
    {
      int g = p[i] == b[i] ? p[i] : s->n_classes;
      h[0] += p[i] == d->labels[i];
      h[1] += g == d->labels[i];
      h[2] += g == s->n_classes;
    }
}

static double
rate (const SetData *d, int step, int which)
{
  if (!d->present)
    return NAN;
  return d->n > 0 ? 100.0 * d->hits[step * 3 + which] / d->n : NAN;
}

static void
fill_row (PsSweep *s, int step, int channel)
{
  PsSweepStep *r = &s->steps[step];
  const SetData *v = &s->sets[PS_SET_VALID], *t = &s->sets[PS_SET_TEST], *p = &s->sets[PS_SET_POISONED];

  r->pruned = step;
  r->fraction = (double) step / s->n_channels;
  r->channel = channel;
  r->valid_acc = rate (v, step, 0);
  r->test_acc = rate (t, step, 0);
  r->asr = rate (p, step, 0);
  r->g_test_acc = rate (t, step, 1);
  r->g_asr = rate (p, step, 1);
  r->g_clean_flagged = rate (t, step, 2);
  r->g_poisoned_flagged = rate (p, step, 2);
}

static int
compare_means (gconstpointer a, gconstpointer b, gpointer data)
{
  const double *means = data;
  int x = *(const int *) a, y = *(const int *) b;

  if (means[x] != means[y])
    return means[x] < means[y] ? -1 : 1;
  return x - y;
}

/* ---- entry points ---- */

PsSweep *
ps_sweep_new (const PsModel *model, const PsSweepOptions *opt, GError **error)
{
  g_autoptr (PsSweep) s = g_new0 (PsSweep, 1);

  s->model = model;
  s->decreasing = opt && opt->decreasing;
  s->layer = opt && opt->layer ? ps_model_find_layer (model, opt->layer) : ps_model_last_pool (model);
  if (s->layer < 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "the model has no layer “%s”",
                   opt && opt->layer ? opt->layer : "(pooling)");
      return NULL;
    }
  if (s->layer == model->input || s->layer == model->output)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED, "cannot prune the model's %s layer",
                   s->layer == model->input ? "input" : "output");
      return NULL;
    }
  if (model->n_classes >= G_MAXUINT16)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED, "too many classes (%d)", model->n_classes);
      return NULL;
    }
  s->layer_name = g_strdup (model->layers[s->layer]->name);
  s->lshape = model->layers[s->layer]->out;
  s->n_channels = s->lshape.c;
  s->n_classes = model->n_classes;
  s->n_steps = s->n_channels + 1;
  s->n_workers = ps_parallel_n_workers ();
  s->plans = g_new0 (PsPlan *, s->n_workers);
  s->steps = g_new0 (PsSweepStep, s->n_steps);
  s->order = g_new (int, s->n_channels);
  if (!plan_structure (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

gboolean
ps_sweep_add_set (PsSweep *s, PsSetKind set, const PsDataset *ds, PsSweepProgress progress,
                  gpointer user_data, GCancellable *cancellable, GError **error)
{
  SetData *d = &s->sets[set];
  gboolean ok;

  g_return_val_if_fail (!s->finished && !d->present, FALSE);
  if (!ps_infer_check_dataset (s->model, ds, error))
    return FALSE;
  d->ds = ds;
  d->n = ds->n;
  d->labels = g_memdup2 (ds->labels, sizeof (int) * MAX (ds->n, 1));
  d->present = TRUE;
  s->progress = progress;
  s->user_data = user_data;
  s->cancellable = cancellable;
  if (s->total_batches == 0)
    s->total_batches = s->done_batches + (ds->n + BATCH - 1) / BATCH;
  ok = first_pass (s, d, error);
  d->ds = NULL; /* the caller may free the images now */
  return ok;
}

static void
release_caches (PsSweep *s)
{
  for (int k = 0; k < PS_N_SETS; k++)
    {
      SetData *d = &s->sets[k];

      if (d->state != d->act)
        g_free (d->state);
      d->state = NULL;
      g_clear_pointer (&d->act, g_free);
      g_clear_pointer (&d->href, g_free);
      g_clear_pointer (&d->margin, g_free);
      g_clear_pointer (&d->affected, g_free);
      g_clear_pointer (&d->labels, g_free);
    }
  for (int i = 0; i < s->n_workers; i++)
    g_clear_pointer (&s->plans[i], ps_plan_free);
}

gboolean
ps_sweep_finish (PsSweep *s, PsSweepProgress progress, gpointer user_data,
                 GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (!s->finished, FALSE);
  if (!s->sets[PS_SET_VALID].present)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "the sweep needs clean validation data");
      return FALSE;
    }
  s->progress = progress;
  s->user_data = user_data;
  s->cancellable = cancellable;

  /* Only the validation set chooses the order. */
  for (int c = 0; c < s->n_channels; c++)
    s->order[c] = c;
  g_qsort_with_data (s->order, s->n_channels, sizeof (int), compare_means,
                     s->sets[PS_SET_VALID].means);
  if (s->decreasing)
    for (int i = 0; i < s->n_channels / 2; i++)
      {
        int t = s->order[i];
        s->order[i] = s->order[s->n_channels - 1 - i];
        s->order[s->n_channels - 1 - i] = t;
      }

  for (int step = 0; step < s->n_steps; step++)
    {
      int channel = step > 0 ? s->order[step - 1] : -1;

      for (int k = 0; k < PS_N_SETS; k++)
        if (s->sets[k].present)
          {
            if (step > 0)
              run_step (s, &s->sets[k], step, channel);
            count_hits (s, &s->sets[k], step);
          }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      fill_row (s, step, channel);
      s->cur_step = step;
      report (s, &s->steps[step]);
    }

  /* The caches are only needed while sweeping. */
  release_caches (s);
  s->finished = TRUE;
  s->model = NULL;
  s->progress = NULL;
  s->cancellable = NULL;
  return TRUE;
}

PsSweep *
ps_sweep_run (const PsModel *model, const PsDataset * const sets[PS_N_SETS],
              const PsSweepOptions *opt, PsSweepProgress progress, gpointer user_data,
              GCancellable *cancellable, GError **error)
{
  g_autoptr (PsSweep) s = ps_sweep_new (model, opt, error);

  if (s == NULL)
    return NULL;
  if (sets[PS_SET_VALID] == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "the sweep needs clean validation data");
      return NULL;
    }
  /* Check every set before the long first passes. */
  for (int k = 0; k < PS_N_SETS; k++)
    if (sets[k] != NULL)
      {
        if (!ps_infer_check_dataset (model, sets[k], error))
          return NULL;
        s->total_batches += (sets[k]->n + BATCH - 1) / BATCH;
      }
  for (int k = 0; k < PS_N_SETS; k++)
    if (sets[k] != NULL
        && !ps_sweep_add_set (s, k, sets[k], progress, user_data, cancellable, error))
      return NULL;
  if (!ps_sweep_finish (s, progress, user_data, cancellable, error))
    return NULL;
  return g_steal_pointer (&s);
}

/* ---- accessors ---- */

int ps_sweep_n_steps (const PsSweep *s) { return s->n_steps; }
int ps_sweep_n_channels (const PsSweep *s) { return s->n_channels; }
int ps_sweep_n_classes (const PsSweep *s) { return s->n_classes; }
const char *ps_sweep_layer_name (const PsSweep *s) { return s->layer_name; }
const int *ps_sweep_order (const PsSweep *s) { return s->order; }

const PsSweepStep *
ps_sweep_get_step (const PsSweep *s, int step)
{
  g_return_val_if_fail (step >= 0 && step < s->n_steps, NULL);
  return &s->steps[step];
}

const double *
ps_sweep_channel_means (const PsSweep *s, PsSetKind set)
{
  return s->sets[set].present ? s->sets[set].means : NULL;
}

gboolean
ps_sweep_has_set (const PsSweep *s, PsSetKind set)
{
  return s->sets[set].present;
}

int
ps_sweep_set_size (const PsSweep *s, PsSetKind set)
{
  return s->sets[set].present ? s->sets[set].n : 0;
}

int
ps_sweep_stop_step (const PsSweep *s, double drop)
{
  double base = s->steps[0].valid_acc;

  for (int k = 0; k < s->n_steps; k++)
    if (s->steps[k].valid_acc <= base - drop)
      return k;
  return -1;
}

int
ps_sweep_prediction (const PsSweep *s, PsSetKind set, int step, int index)
{
  const SetData *d = &s->sets[set];

  g_return_val_if_fail (d->present && index >= 0 && index < d->n, -1);
  g_return_val_if_fail (step >= 0 && step < s->n_steps, -1);
  return d->preds[(gsize) step * d->n + index];
}

int
ps_sweep_g_prediction (const PsSweep *s, PsSetKind set, int step, int index)
{
  int b = ps_sweep_prediction (s, set, 0, index);
  int p = ps_sweep_prediction (s, set, step, index);

  return b == p ? p : s->n_classes;
}

void
ps_sweep_set_metrics (const PsSweep *s, PsSetKind set, int step,
                      double *b_acc, double *g_acc, double *g_flagged)
{
  const SetData *d = &s->sets[set];

  *b_acc = rate (d, step, 0);
  *g_acc = rate (d, step, 1);
  *g_flagged = rate (d, step, 2);
}

static void
append_cell (GString *line, double v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  /* a decimal point whatever the locale: a decimal comma would split the cell */
  g_string_append_c (line, ',');
  if (!isnan (v))
    g_string_append (line, g_ascii_formatd (buf, sizeof buf, "%.4f", v));
}

gboolean
ps_sweep_write_csv (const PsSweep *s, GOutputStream *out, GError **error)
{
  g_autoptr (GString) text = g_string_new (
    "pruned,fraction,channel,valid_acc,test_acc,asr,g_test_acc,g_asr,"
    "g_clean_flagged,g_poisoned_flagged\n");

  for (int k = 0; k < s->n_steps; k++)
    {
      const PsSweepStep *r = &s->steps[k];
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      g_string_append_printf (text, "%d,%s,%d", r->pruned,
                              g_ascii_formatd (buf, sizeof buf, "%.6f", r->fraction), r->channel);
      append_cell (text, r->valid_acc);
      append_cell (text, r->test_acc);
      append_cell (text, r->asr);
      append_cell (text, r->g_test_acc);
      append_cell (text, r->g_asr);
      append_cell (text, r->g_clean_flagged);
      append_cell (text, r->g_poisoned_flagged);
      g_string_append_c (text, '\n');
    }
  return g_output_stream_write_all (out, text->str, text->len, NULL, NULL, error);
}
