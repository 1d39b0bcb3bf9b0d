/* ps-sweep-step.c: the per-image work of a sweep — the first pass (B on every image,
 * keeping the pruned layer's output and the frontier's linear outputs) and every step
 * (subtract the removed channel's contribution for the images where it was active, run
 * the rest of the network for those images only), in batches on all cores */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-conv.h"
#include "ps-h5.h"
#include "ps-parallel.h"

#include <math.h>
#include <string.h>

typedef struct {
  PsSweep *s;
  SetData *d;
} PassJob;

static PsPlan *
worker_plan (PsSweep *s, int worker)
{
  if (s->plans[worker] == NULL)
    {
      s->plans[worker] = ps_plan_new (s->model, PS_SWEEP_BATCH);
      ps_plan_set_logits (s->plans[worker], TRUE);
      /* the layers the sweep reads back must be filled */
      ps_plan_set_fused (s->plans[worker], TRUE);
      ps_plan_keep_output (s->plans[worker], s->layer);
      if (s->h_layer >= 0)
        ps_plan_keep_output (s->plans[worker], s->h_layer);
      for (int f = 0; f < s->n_fronts; f++)
        if (s->fronts[f].kind != FRONT_MASK)
          ps_plan_keep_linear (s->plans[worker], s->fronts[f].layer);
      /* the Dense layers after the pruned one read ReLU outputs, mostly zeros (DeepID's
       * fc_2 reads conv_4, four in five zeros; the output reads the merge's ReLU): the
       * plan runs them sparse on the batches where that holds, first pass included */
      for (int i = s->layer + 1; i < s->model->n_layers; i++)
        if (s->run[i] || i == s->model->output)
          ps_plan_set_sparse (s->plans[worker], i);
    }
  return s->plans[worker];
}

void
_ps_sweep_report (PsSweep *s, const PsSweepStep *step)
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
  int start = task * PS_SWEEP_BATCH, count = MIN (PS_SWEEP_BATCH, d->n - start);
  int classes[PS_SWEEP_BATCH];
  float margins[PS_SWEEP_BATCH];
  double *sums = d->sums + (gsize) worker * s->n_channels;
  const float *act;

  if (g_cancellable_is_cancelled (s->cancellable))
    return;
  plan = worker_plan (s, worker);
  if (d->feed == NULL)
    {
      ps_dataset_get_batch (d->ds, start, count, s->model->input_scale,
                            ps_plan_output (plan, s->model->input));
      ps_plan_forward (plan, count);
    }
  else
    {
      /* B reads the images where the reader put them, then lets their buffer go */
      const float *px = _ps_sweep_feed_get (d->feed, task);

      if (px == NULL)
        return; /* the reading failed: the pass fails with its error */
      ps_plan_set_input (plan, px);
      ps_plan_forward (plan, count);
      ps_plan_set_input (plan, NULL);
      _ps_sweep_feed_release (d->feed, task);
    }
  ps_plan_argmax_margin (plan, count, classes, margins);

  act = ps_plan_output (plan, s->layer);
  if (s->act_by_channel)
    {
      gsize hw = (gsize) s->lshape.h * s->lshape.w;

      for (int b = 0; b < count; b++)
        {
          const float *src = act + (gsize) b * asz;

          for (int c = 0; c < s->n_channels; c++)
            {
              float *dst = d->act + ((gsize) c * d->n + start + b) * hw;

              for (gsize p = 0; p < hw; p++)
                dst[p] = src[p * s->n_channels + c];
            }
        }
    }
  else
    memcpy (d->act + (gsize) start * asz, act, sizeof (float) * count * asz);
  for (gsize i = 0; i < (gsize) count * asz; i += s->n_channels)
    for (int c = 0; c < s->n_channels; c++)
      sums[c] += act[i + c];
  for (int b = 0; b < count; b++)
    {
      float *st = d->state + (gsize) (start + b) * s->state_size;

      if (d->active != NULL)
        {
          const float *a = act + (gsize) b * asz;
          guint64 bits = 0;

          for (gsize i = 0; i < asz; i += s->n_channels)
            for (int c = 0; c < s->n_channels; c++)
              if (a[i + c] != 0.0f)
                bits |= G_GUINT64_CONSTANT (1) << c;
          d->active[start + b] = bits;
        }
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
    _ps_sweep_report (s, NULL);
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
  /* which channels each image has active, so that a step finds its images quickly */
  if (s->n_channels <= 64)
    d->active = g_new (guint64, n);
  d->sums = g_new0 (double, (gsize) s->n_workers * s->n_channels);
  d->means = g_new0 (double, s->n_channels);
  d->hits = g_new0 (int, (gsize) s->n_steps * 3);
  return TRUE;
}

gboolean
_ps_sweep_first_pass (PsSweep *s, SetData *d, GError **error)
{
  PassJob job = { s, d };

  gboolean fed = TRUE;

  if (!alloc_set (s, d, error))
    return FALSE;
  if (d->stream != NULL)
    {
      d->feed = _ps_sweep_feed_start (d->stream, PS_SWEEP_BATCH, s->model->input_scale,
                                      s->cancellable, error);
      if (d->feed == NULL)
        return FALSE;
    }
  ps_parallel_for ((d->n + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH, first_pass_batch, &job);
  if (d->feed != NULL)
    {
      g_autoptr (GError) feed_error = NULL;

      fed = _ps_sweep_feed_finish (g_steal_pointer (&d->feed), &feed_error);
      if (!fed && !g_cancellable_is_cancelled (s->cancellable))
        {
          g_propagate_error (error, g_steal_pointer (&feed_error));
          return FALSE;
        }
    }
  if (g_cancellable_set_error_if_cancelled (s->cancellable, error) || !fed)
    return FALSE;
  /* the calling thread may have run none of the batches (a busy machine) */
  _ps_sweep_report (s, NULL);
  for (int w = 0; w < s->n_workers; w++)
    for (int c = 0; c < s->n_channels; c++)
      d->means[c] += d->sums[(gsize) w * s->n_channels + c];
  for (int c = 0; c < s->n_channels; c++)
    d->means[c] /= (double) MAX (d->n, 1) * s->lshape.h * s->lshape.w;
  return TRUE;
}

/* ---- one step: remove a channel, update affected images ---- */

/* Channel @c of image @i of the pruned layer (when act_by_channel). */
static inline const float *
channel_of (const PsSweep *s, const SetData *d, int i, int c)
{
  return d->act + ((gsize) c * d->n + i) * s->lshape.h * s->lshape.w;
}

/* Subtracts channel @c's contribution of one image from its frontier state; @act is that
 * channel of the image (read by fronts other than MASK). */
static void
remove_channel (PsSweep *s, const float *act, float *state, int c)
{
  const PsShape L = s->lshape;

  for (int f = 0; f < s->n_fronts; f++)
    {
      const Front *fr = &s->fronts[f];
      const PsLayer *u = s->model->layers[fr->layer];
      float *st = state + fr->offset;
      float v[PS_SWEEP_MAX_TERMS];
      const float *w[PS_SWEEP_MAX_TERMS];
      int m = 0;

      if (fr->kind == FRONT_MASK)
        {
          for (int p = 0; p < L.h * L.w; p++)
            st[(gsize) p * L.c + c] = 0.0f;
          continue;
        }
      if (fr->kind == FRONT_DENSE)
        {
          /* every position of the channel in turn, as the rows come */
          for (int p = 0; p < L.h * L.w; p++)
            {
              if (act[p] == 0.0f)
                continue;
              v[m] = act[p];
              w[m++] = u->kernel + ((gsize) p * L.c + c) * u->out.c;
              if (m == PS_SWEEP_MAX_TERMS)
                {
                  ps_conv_sub_scaled_sum (u->out.c, m, v, w, st);
                  m = 0;
                }
            }
          if (m > 0)
            ps_conv_sub_scaled_sum (u->out.c, m, v, w, st);
          continue;
        }
      /* Conv: each output position gets the terms of the inputs under its window, in the
       * order of those inputs (row by row), as an input-by-input loop would give them. */
      for (int oy = 0; oy < u->out.h; oy++)
        for (int ox = 0; ox < u->out.w; ox++)
          {
            m = 0;
            for (int ky = 0; ky < u->kh; ky++)
              for (int kx = 0; kx < u->kw; kx++)
                {
                  int y = oy * u->sh + ky - u->pad_top, x = ox * u->sw + kx - u->pad_left;
                  float a;

                  if (y < 0 || y >= L.h || x < 0 || x >= L.w)
                    continue;
                  a = act[(gsize) y * L.w + x];
                  if (a == 0.0f)
                    continue;
                  if (m == PS_SWEEP_MAX_TERMS)
                    {
                      ps_conv_sub_scaled_sum (u->out.c, m, v, w, st + ((gsize) oy * u->out.w + ox) * u->out.c);
                      m = 0;
                    }
                  v[m] = a;
                  w[m++] = u->kernel + (((gsize) ky * u->kw + kx) * L.c + c) * u->out.c;
                }
            if (m > 0)
              ps_conv_sub_scaled_sum (u->out.c, m, v, w, st + ((gsize) oy * u->out.w + ox) * u->out.c);
          }
    }
}

/* Scores only the batch rows whose class may have changed; the others keep theirs. */
static void
score_batch (PsSweep *s, SetData *d, PsPlan *plan, int step, const int *rows, int count)
{
  float *h = ps_plan_output (plan, s->h_layer);
  const guint16 *prev = d->preds + (gsize) (step - 1) * d->n;
  int pick[PS_SWEEP_BATCH], n_pick = 0;
  int classes[PS_SWEEP_BATCH];
  float margins[PS_SWEEP_BATCH];

  for (int b = 0; b < count; b++)
    {
      int i = rows[b];
      const float *hr = d->href + (gsize) i * s->h_size, *hb = h + (gsize) b * s->h_size;
      double dist = ps_conv_sq_dist ((int) s->h_size, hb, hr);

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
update_rows (PsSweep *s, SetData *d, int worker, int step, int channel, const int *rows,
             int count)
{
  PsPlan *plan = worker_plan (s, worker);
  int classes[PS_SWEEP_BATCH];

  for (int b = 0; b < count; b++)
    {
      float *st = d->state + (gsize) rows[b] * s->state_size;

      remove_channel (s, s->act_by_channel ? channel_of (s, d, rows[b], channel) : NULL, st, channel);
      /* the fronts' outputs straight from the state (their linear buffers are not read) */
      for (int f = 0; f < s->n_fronts; f++)
        {
          const Front *fr = &s->fronts[f];
          float *dst = ps_plan_output (plan, fr->layer) + (gsize) b * fr->size;

          if (fr->kind == FRONT_MASK)
            memcpy (dst, st + fr->offset, sizeof (float) * fr->size);
          else
            {
              const PsLayer *u = s->model->layers[fr->layer];

              ps_activation_apply (u->activation, u->out.h * u->out.w, u->out.c, st + fr->offset, dst);
            }
        }
    }
  ps_plan_run_layers (plan, count, s->run);
  if (s->h_layer >= 0)
    {
      score_batch (s, d, plan, step, rows, count);
      return;
    }
  ps_plan_argmax (plan, count, classes);
  for (int b = 0; b < count; b++)
    d->preds[(gsize) step * d->n + rows[b]] = (guint16) classes[b];
}

typedef struct {
  PsSweep *s;
  int      first, last;           /* steps */
  int      tasks[PS_N_SETS + 1];  /* blocks of images before each set */
} StepsJob;

/* Steps first .. last-1 on one block of images: the block's state stays in the cache
 * from one step to the next. */
static void
steps_block (int worker, int task, gpointer data)
{
  StepsJob *job = data;
  PsSweep *s = job->s;
  const PsShape L = s->lshape;
  gsize asz = ps_shape_size (L);
  int k = 0, start, end;
  SetData *d;
  int rows[PS_SWEEP_BATCH];

  while (task >= job->tasks[k + 1])
    k++;
  d = &s->sets[k];
  start = (task - job->tasks[k]) * PS_SWEEP_BATCH;
  end = MIN (start + PS_SWEEP_BATCH, d->n);
  for (int step = job->first; step < job->last; step++)
    {
      int channel = s->order[step - 1], count = 0;

      memcpy (d->preds + (gsize) step * d->n + start, d->preds + (gsize) (step - 1) * d->n + start,
              sizeof (guint16) * (end - start));
      /* Only images where the channel is active can change. */
      if (d->active != NULL)
        {
          guint64 bit = G_GUINT64_CONSTANT (1) << channel;

          for (int i = start; i < end; i++)
            if (d->active[i] & bit)
              rows[count++] = i;
        }
      else
        for (int i = start; i < end; i++)
          {
            const float *a = s->act_by_channel ? channel_of (s, d, i, channel)
                                               : d->act + (gsize) i * asz + channel;
            gsize stride = s->act_by_channel ? 1 : (gsize) L.c;

            for (int p = 0; p < L.h * L.w; p++)
              if (a[p * stride] != 0.0f)
                {
                  rows[count++] = i;
                  break;
                }
          }
      if (count > 0)
        update_rows (s, d, worker, step, channel, rows, count);
    }
}

void
_ps_sweep_run_steps (PsSweep *s, int first, int last)
{
  StepsJob job = { s, first, last, { 0 } };

  for (int k = 0; k < PS_N_SETS; k++)
    job.tasks[k + 1] = job.tasks[k]
                       + (s->sets[k].present ? (s->sets[k].n + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH : 0);
  ps_parallel_for (job.tasks[PS_N_SETS], steps_block, &job);
}
