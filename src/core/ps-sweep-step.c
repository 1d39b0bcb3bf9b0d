/* ps-sweep-step.c: the per-image work of a sweep — the first pass (B on every image,
 * keeping the pruned layer's output and the frontier's linear outputs) and every step
 * (subtract the removed channel's contribution for the images where it was active, run
 * the rest of the network for those images only), in batches on all cores */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-conv.h"
#include "ps-h5.h"
#include "ps-huge.h"
#include "ps-parallel.h"
#include "ps-vec4.h"

#include <math.h>
#include <string.h>

typedef struct {
  PsSweep *s;
  SetData *d;
} PassJob;

static void steps_images (PsSweep *s, SetData *d, PsPlan *plan, int first, int last, int start,
                          int end);

static PsPlan *
worker_plan (PsSweep *s, int worker)
{
  if (s->plans[worker] == NULL)
    {
      s->plans[worker] = ps_plan_new (s->model, PS_SWEEP_BATCH);
      ps_plan_set_logits (s->plans[worker], TRUE);
      /* the layers the sweep reads back must be filled (the Dense layers after the pruned
       * one, reading ReLU outputs, run sparse as in every plan: DeepID's fc_2 reads
       * conv_4, four in five zeros) */
      ps_plan_set_fused (s->plans[worker], TRUE);
      ps_plan_keep_output (s->plans[worker], s->layer);
      if (s->h_layer >= 0)
        ps_plan_keep_output (s->plans[worker], s->h_layer);
      for (int f = 0; f < s->n_fronts; f++)
        if (s->fronts[f].kind != FRONT_MASK)
          ps_plan_keep_linear (s->plans[worker], s->fronts[f].layer);
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

/* The steps' caches of @n images in @d (the pruned layer's output, the fronts' states
 * when @with_state, what the output skip keeps, the predictions, the active channels);
 * FALSE when the large ones cannot be had. A set keeps no state: the fronts' outputs come
 * again from act, a block at a time (tens of megabytes less to write and read back). */
static gboolean
alloc_caches (PsSweep *s, SetData *d, gsize n, gboolean with_state)
{
  d->act = ps_huge_try_alloc (n * ps_shape_size (s->lshape) * sizeof (float));
  if (s->fronts[0].kind == FRONT_MASK)
    d->state = d->act;
  else if (with_state)
    d->state = ps_huge_try_alloc (n * s->state_size * sizeof (float));
  if (s->h_layer >= 0)
    {
      d->href = ps_huge_try_alloc (n * s->h_size * sizeof (float));
      d->skip = g_try_malloc (n * sizeof (PsSkipRecord));
    }
  if (d->act == NULL || (with_state && d->state == NULL)
      || (s->h_layer >= 0 && (d->href == NULL || d->skip == NULL)))
    return FALSE;
  d->preds = g_new (guint16, n * s->n_steps);
  /* which channels each image has active, so that a step finds its images quickly */
  if (s->n_channels <= 64)
    d->active = g_new (guint64, n);
  return TRUE;
}

/* The caches of one batch (PS_SWEEP_BATCH images), per worker: where a fused set's first
 * pass puts them, for its steps right after. */
static SetData *
batch_set (PsSweep *s, int worker)
{
  SetData *m = s->batch_sets[worker];

  if (m == NULL)
    {
      m = s->batch_sets[worker] = g_new0 (SetData, 1);
      m->n = PS_SWEEP_BATCH;
      /* a few hundred kilobytes: as g_new() would, abort without them */
      if (!alloc_caches (s, m, PS_SWEEP_BATCH, TRUE))
        g_error ("not enough memory for a batch of the sweep");
    }
  return m;
}

/* One image's pruned-layer output @act (channels last): adds each channel's values to
 * @sums (in position order, as a plain loop would), sets in @active (when not NULL: at
 * most 64 channels) the channels not all zero, and when @planes is not NULL copies
 * channel c to planes + c * hw. Four channels at a time on GCC vectors: the plain loops
 * branch on every value, and were a few percent of a sweep. */
static void
channel_stats (const PsSweep *s, const float *act, float *planes, double *sums, guint64 *active)
{
  const int C = s->n_channels;
  const gsize hw = (gsize) s->lshape.h * s->lshape.w;
  const PsVec4 zero = { 0 };
  guint64 bits = 0;
  int c = 0;

  for (; c + 4 <= C; c += 4)
    {
      PsVec4d sum;
      PsVec4i nz = { 0 };

      memcpy (&sum, sums + c, sizeof sum);
      for (gsize p = 0; p < hw; p++)
        {
          PsVec4 a = ps_vec4_load (act + p * C + c);

          sum += __builtin_convertvector (a, PsVec4d);
          nz |= a != zero;
          if (planes != NULL)
            for (int j = 0; j < 4; j++)
              planes[(gsize) (c + j) * hw + p] = a[j];
        }
      memcpy (sums + c, &sum, sizeof sum);
      for (int j = 0; j < 4 && c + j < 64; j++)
        bits |= (guint64) (nz[j] != 0) << (c + j);
    }
  for (; c < C; c++)
    for (gsize p = 0; p < hw; p++)
      {
        float a = act[p * C + c];

        sums[c] += a;
        if (a != 0.0f && c < 64)
          bits |= G_GUINT64_CONSTANT (1) << c;
        if (planes != NULL)
          planes[(gsize) c * hw + p] = a;
      }
  if (active != NULL)
    *active = bits;
}

/* A batch of a file's bytes, converted image by image as the first layer takes them:
 * into its scratch, still in the cache when it reads them. */
typedef struct {
  const PsDatasetStream *stream;
  const guint8          *bytes;
  gsize                  img;
  double                 scale;
} BytesBatch;

static void
fill_from_bytes (int b, float *out, gpointer data)
{
  const BytesBatch *batch = data;

  ps_dataset_stream_convert_bytes (batch->stream, batch->bytes + b * batch->img, 1, batch->scale,
                                   TRUE, out);
}

static void
first_pass_batch (int worker, int task, gpointer data)
{
  PassJob *job = data;
  PsSweep *s = job->s;
  SetData *d = job->d;
  /* where the batch's caches go: the set's own, or the worker's batch for a fused set */
  SetData *t = d->fused ? batch_set (s, worker) : d;
  PsPlan *plan;
  gsize asz = ps_shape_size (s->lshape);
  int start = task * PS_SWEEP_BATCH, count = MIN (PS_SWEEP_BATCH, d->n - start);
  int at = d->fused ? 0 : start; /* the batch's first image in t */
  int classes[PS_SWEEP_BATCH];
  double *sums = d->sums + (gsize) worker * s->n_channels;
  const float *act;

  if (g_cancellable_is_cancelled (s->cancellable))
    {
      /* a skipped batch counts as done for the reader, which may be waiting for its
       * chunk's buffer while other workers wait for a later chunk */
      if (d->feed != NULL)
        _ps_sweep_feed_release (d->feed, task);
      return;
    }
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
      gconstpointer px = _ps_sweep_feed_get (d->feed, task);
      const PsDataset *h = ps_dataset_stream_header (d->stream);
      BytesBatch bytes = { d->stream, px, (gsize) h->h * h->w * h->c, s->model->input_scale };

      if (px == NULL)
        return; /* the reading failed: the pass fails with its error */
      if (_ps_sweep_feed_has_bytes (d->feed) && d->planar)
        ps_plan_set_input_fill (plan, fill_from_bytes, &bytes);
      else if (_ps_sweep_feed_has_bytes (d->feed))
        ps_dataset_stream_convert_bytes (d->stream, px, count, bytes.scale, FALSE,
                                         ps_plan_output (plan, s->model->input));
      else if (d->planar)
        ps_plan_set_input_planar (plan, px);
      else
        ps_plan_set_input (plan, px);
      ps_plan_forward (plan, count);
      ps_plan_set_input (plan, NULL);
      _ps_sweep_feed_release (d->feed, task);
    }
  if (s->h_layer >= 0)
    for (int b = 0; b < count; b++)
      classes[b] = _ps_sweep_skip_record (s, t, at + b,
                                          ps_plan_output (plan, s->h_layer) + (gsize) b * s->h_size,
                                          ps_plan_output (plan, s->model->output) + (gsize) b * s->n_classes);
  else
    ps_plan_argmax (plan, count, classes);

  act = ps_plan_output (plan, s->layer);
  for (int b = 0; b < count; b++)
    {
      float *dst = s->act_by_channel ? t->act + (gsize) (at + b) * asz : NULL;

      if (dst == NULL)
        memcpy (t->act + (gsize) (at + b) * asz, act + (gsize) b * asz, sizeof (float) * asz);
      channel_stats (s, act + (gsize) b * asz, dst, sums,
                     t->active != NULL ? &t->active[at + b] : NULL);
    }
  for (int b = 0; b < count; b++)
    {
      float *st = t->state + (gsize) (at + b) * s->state_size;

      t->preds[at + b] = (guint16) classes[b];
      for (int f = 0; f < s->n_fronts && t->state != NULL && t->state != t->act; f++)
        {
          const Front *fr = &s->fronts[f];
          memcpy (st + fr->offset, ps_plan_linear (plan, fr->layer) + (gsize) b * fr->size,
                  sizeof (float) * fr->size);
        }
    }
  if (d->fused)
    {
      /* every step now, group by group as ps_sweep_finish() runs them (the same bits) */
      for (int first = 1; first < s->n_steps; first += PS_SWEEP_GROUP)
        steps_images (s, t, plan, first, MIN (first + PS_SWEEP_GROUP, s->n_steps), 0, count);
      for (int step = 0; step < s->n_steps; step++)
        memcpy (d->preds + (gsize) step * d->n + start, t->preds + (gsize) step * t->n,
                sizeof (guint16) * count);
    }
  g_atomic_int_inc (&s->done_batches);
  if (worker == 0)
    _ps_sweep_report (s, NULL);
}

static gboolean
alloc_set (PsSweep *s, SetData *d, GError **error)
{
  gsize n = MAX (d->n, 1);

  d->sums = g_new0 (double, (gsize) s->n_workers * s->n_channels);
  d->means = g_new0 (double, s->n_channels);
  d->hits = g_new0 (int, (gsize) s->n_steps * 3);
  if (d->fused)
    {
      /* the steps' caches are the workers' batches; the set keeps its classes */
      d->preds = g_new (guint16, n * s->n_steps);
      if (s->batch_sets == NULL)
        s->batch_sets = g_new0 (SetData *, s->n_workers);
      return TRUE;
    }
  if (!alloc_caches (s, d, n, FALSE))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "not enough memory for the sweep of %d images", d->n);
      return FALSE;
    }
  return TRUE;
}

gboolean
_ps_sweep_first_pass (PsSweep *s, SetData *d, GError **error)
{
  PassJob job = { s, d };

  if (!alloc_set (s, d, error))
    return FALSE;
  if (d->stream != NULL)
    {
      /* images as channel planes when B's first layer reads them so (the plans are
       * alike: the first one tells) */
      d->planar = ps_plan_reads_planar (worker_plan (s, 0));
      d->feed = _ps_sweep_feed_start (d->stream, PS_SWEEP_BATCH, s->model->input_scale, d->planar,
                                      &s->feed_slots, s->cancellable, error);
      if (d->feed == NULL)
        return FALSE;
    }
  ps_parallel_for ((d->n + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH, first_pass_batch, &job);
  if (d->feed != NULL)
    {
      g_autoptr (GError) feed_error = NULL;

      /* a cancelled pass says so, whatever the reading said */
      if (!_ps_sweep_feed_finish (g_steal_pointer (&d->feed), &feed_error)
          && !g_cancellable_is_cancelled (s->cancellable))
        {
          g_propagate_error (error, g_steal_pointer (&feed_error));
          return FALSE;
        }
    }
  if (g_cancellable_set_error_if_cancelled (s->cancellable, error))
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
  return d->act + ((gsize) i * s->n_channels + c) * s->lshape.h * s->lshape.w;
}

/* Subtracts channel @c's contribution of one image from its frontier state; @act is that
 * channel of the image (read by fronts other than MASK). The terms are gathered without
 * branching on the zeros (a zero input is skipped: its term would subtract exactly 0),
 * then applied at once. */
static void
remove_channel (PsSweep *s, const float *act, float *state, int c)
{
  const PsShape L = s->lshape;
  const int hw = L.h * L.w;

  for (int f = 0; f < s->n_fronts; f++)
    {
      const Front *fr = &s->fronts[f];
      const PsLayer *u = s->model->layers[fr->layer];
      float *st = state + fr->offset;
      float v[PS_SWEEP_MAX_TERMS];
      const float *w[PS_SWEEP_MAX_TERMS];
      int m[PS_SWEEP_MAX_TERMS];
      float *y[PS_SWEEP_MAX_TERMS];
      int t = 0, rows = 0;

      if (fr->kind == FRONT_MASK)
        {
          for (int p = 0; p < hw; p++)
            st[(gsize) p * L.c + c] = 0.0f;
          continue;
        }
      /* the loops below read the layer's fields once: the stores into w[] might
       * otherwise alias them, and the compiler would load them again for every term */
      const int OC = u->out.c;
      const float *kc = u->kernel + (gsize) c * OC; /* channel c's weights at tap 0 */
      const gsize tap = (gsize) L.c * OC;          /* from one tap (or position) to the next */

      if (fr->kind == FRONT_DENSE)
        {
          /* every position of the channel in turn, as the rows come */
          for (int p = 0; p < hw; p++)
            {
              float a = act[p];

              v[t] = a;
              w[t] = kc + p * tap;
              t += a != 0.0f;
              if (t == PS_SWEEP_MAX_TERMS || p == hw - 1)
                {
                  ps_conv_sub_scaled_rows (OC, 1, &t, v, w, &st);
                  t = 0;
                }
            }
          continue;
        }
      /* Conv: each output position gets the terms of the inputs under its window, in the
       * order of those inputs (row by row), as an input-by-input loop would give them. A
       * position may take its terms in two parts: the same operations in the same order. */
      const int npos = u->out.h * u->out.w;
      const int *win_start = fr->win_start, *win_in = fr->win_in, *win_tap = fr->win_tap;

      /* Whole windows (DeepID's conv_4: 2x2 over 5x4, no padding): the kernel holds the
       * channel's taps in registers and reads the inputs where they are. */
      if (fr->full_taps > 0
          && ps_conv_sub_windows (OC, fr->full_taps, npos, win_in, act, kc, tap, st))
        continue;

      for (int o = 0; o < npos; o++)
        {
          int t0 = t;

          for (int e = win_start[o]; e < win_start[o + 1]; e++)
            {
              float a = act[win_in[e]];

              v[t] = a;
              w[t] = kc + win_tap[e] * tap;
              t += a != 0.0f;
              if (t == PS_SWEEP_MAX_TERMS)
                {
                  m[rows] = t - t0;
                  y[rows++] = st + (gsize) o * OC;
                  ps_conv_sub_scaled_rows (OC, rows, m, v, w, y);
                  t = t0 = rows = 0;
                }
            }
          if (t > t0)
            {
              m[rows] = t - t0;
              y[rows++] = st + (gsize) o * OC;
            }
        }
      if (rows > 0)
        ps_conv_sub_scaled_rows (u->out.c, rows, m, v, w, y);
    }
}

/* A plan row of a block of steps: which image, at which step. */
typedef struct {
  int image;
  int step;
} RowRef;

/* The class of each row whose class may have changed (-1 for the others: they keep the
 * class of the step before). A row is scored unless ps-sweep-skip.c proves its class
 * unchanged since the image was last scored; the rows of an image come in step order, and
 * once one is scored the image's later rows are too (their reference moved). */
static void
score_rows (PsSweep *s, SetData *d, PsPlan *plan, const RowRef *refs, int count, int *cls)
{
  float *h = ps_plan_output (plan, s->h_layer);
  int pick[PS_SWEEP_BATCH], n_pick = 0;

  for (int r = 0; r < count; r++)
    {
      int i = refs[r].image;
      const float *hb = h + (gsize) r * s->h_size;
      gboolean scored_before = n_pick > 0 && refs[pick[n_pick - 1]].image == i;

      cls[r] = -1;
      if (!scored_before && _ps_sweep_skip_holds (s, d, i, hb))
        continue;
      /* Compact the rows to score at the front of the buffer (n_pick <= r). */
      if (n_pick != r)
        memmove (h + (gsize) n_pick * s->h_size, hb, sizeof (float) * s->h_size);
      pick[n_pick++] = r;
    }
  if (n_pick == 0)
    return;
  ps_plan_run_layer (plan, s->model->output, n_pick);
  for (int k = 0; k < n_pick; k++)
    cls[pick[k]] = _ps_sweep_skip_record (s, d, refs[pick[k]].image, h + (gsize) k * s->h_size,
                                          ps_plan_output (plan, s->model->output)
                                          + (gsize) k * s->n_classes);
}

/* Runs the layers after the fronts on the @count rows filled for images @from .. @to-1 and
 * steps @first .. @last-1, and writes those images' classes at those steps. */
static void
finish_rows (PsSweep *s, SetData *d, PsPlan *plan, int first, int last, int from, int to,
             const RowRef *refs, int count)
{
  int cls[PS_SWEEP_BATCH];
  int r = 0;

  if (count > 0)
    {
      ps_plan_run_layers (plan, count, s->run);
      if (s->h_layer >= 0)
        score_rows (s, d, plan, refs, count, cls);
      else
        ps_plan_argmax (plan, count, cls);
    }
  for (int i = from; i < to; i++)
    for (int step = first; step < last; step++)
      {
        guint16 *p = d->preds + (gsize) step * d->n + i;

        if (r < count && refs[r].image == i && refs[r].step == step)
          {
            *p = cls[r] >= 0 ? (guint16) cls[r] : p[-(gssize) d->n];
            r++;
          }
        else
          *p = p[-(gssize) d->n];
      }
}

/* Whether channel @c of image @i is active (not all zeros). */
static gboolean
channel_active (const PsSweep *s, const SetData *d, int i, int c)
{
  const PsShape L = s->lshape;
  const float *a;
  gsize stride;

  if (d->active != NULL)
    return (d->active[i] >> c) & 1;
  a = s->act_by_channel ? channel_of (s, d, i, c) : d->act + (gsize) i * ps_shape_size (L) + c;
  stride = s->act_by_channel ? 1 : (gsize) L.c;
  for (int p = 0; p < L.h * L.w; p++)
    if (a[p * stride] != 0.0f)
      return TRUE;
  return FALSE;
}

/* Removes the step's channel from image @i's state and writes the fronts' outputs into
 * plan row @row. */
static void
step_image (PsSweep *s, SetData *d, PsPlan *plan, int i, int channel, int row)
{
  float *st = d->state + (gsize) (i - d->cache_at) * s->state_size;

  remove_channel (s, s->act_by_channel ? channel_of (s, d, i, channel) : NULL, st, channel);
  /* the fronts' outputs straight from the state (their linear buffers are not read) */
  for (int f = 0; f < s->n_fronts; f++)
    {
      const Front *fr = &s->fronts[f];
      float *dst = ps_plan_output (plan, fr->layer) + (gsize) row * fr->size;

      if (fr->kind == FRONT_MASK)
        memcpy (dst, st + fr->offset, sizeof (float) * fr->size);
      else
        {
          const PsLayer *u = s->model->layers[fr->layer];

          ps_activation_apply (u->activation, u->out.h * u->out.w, u->out.c, st + fr->offset, dst);
        }
    }
}

typedef struct {
  PsSweep *s;
  int      tasks[PS_N_SETS + 1];  /* blocks of images before each set */
} BlocksJob;

static void
blocks_job_init (BlocksJob *job, PsSweep *s)
{
  job->s = s;
  job->tasks[0] = 0;
  for (int k = 0; k < PS_N_SETS; k++)
    job->tasks[k + 1] = job->tasks[k]
                        + (s->sets[k].present && !s->sets[k].fused
                             ? (s->sets[k].n + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH : 0);
}

/* Block @task of @job: its set, returned, and its images @start .. @end-1. */
static SetData *
job_block (const BlocksJob *job, int task, int *start, int *end)
{
  int k = 0;

  while (task >= job->tasks[k + 1])
    k++;
  *start = (task - job->tasks[k]) * PS_SWEEP_BATCH;
  *end = MIN (*start + PS_SWEEP_BATCH, job->s->sets[k].n);
  return &job->s->sets[k];
}

typedef struct {
  BlocksJob blocks;
  int       first, last;  /* steps */
} StepsJob;

/* The rows of images @from .. @to-1 (their steps in @mask, bit step - @first; their first
 * row at @row): step by step, so that a step's weights (one channel's) serve every image
 * of the block while in the cache; each image's state sees its steps in order. */
static void
fill_rows (PsSweep *s, SetData *d, PsPlan *plan, int first, int last, int from, int to,
           const guint32 *mask, const int *row, RowRef *refs)
{
  for (int step = first; step < last; step++)
    {
      const guint32 bit = 1u << (step - first);

      for (int i = from; i < to; i++)
        if (mask[i - from] & bit)
          {
            int r = row[i - from] + __builtin_popcount (mask[i - from] & (bit - 1));

            step_image (s, d, plan, i, s->order[step - 1], r);
            refs[r] = (RowRef) { i, step };
          }
    }
}

/* Steps first .. last-1 on one block of images (at most PS_SWEEP_BATCH). An image's rows
 * for successive steps sit side by side in the plan, where the Dense layers after the
 * fronts, reading mostly zeros in nearly the same places, take them together
 * (ps_conv_forward_sparse). */
static void
steps_images (PsSweep *s, SetData *d, PsPlan *plan, int first, int last, int start, int end)
{
  int from = start, count = 0;
  RowRef refs[PS_SWEEP_BATCH];
  guint32 mask[PS_SWEEP_BATCH];
  int row[PS_SWEEP_BATCH];

  G_STATIC_ASSERT (PS_SWEEP_GROUP <= PS_SWEEP_BATCH && PS_SWEEP_GROUP <= 32);
  g_assert (end - start <= PS_SWEEP_BATCH);
  for (int i = start; i < end; i++)
    {
      guint32 m = 0;
      int n;

      /* Only the steps whose channel is active in the image can change it. */
      for (int step = first; step < last; step++)
        if (channel_active (s, d, i, s->order[step - 1]))
          m |= 1u << (step - first);
      n = __builtin_popcount (m);
      if (count + n > PS_SWEEP_BATCH)
        {
          fill_rows (s, d, plan, first, last, from, i, mask, row, refs);
          finish_rows (s, d, plan, first, last, from, i, refs, count);
          from = i;
          count = 0;
        }
      mask[i - from] = m;
      row[i - from] = count;
      count += n;
    }
  fill_rows (s, d, plan, first, last, from, end, mask, row, refs);
  finish_rows (s, d, plan, first, last, from, end, refs, count);
}

static void
steps_block (int worker, int task, gpointer data)
{
  StepsJob *job = data;
  int start, end;
  SetData *d = job_block (&job->blocks, task, &start, &end);

  steps_images (job->blocks.s, d, worker_plan (job->blocks.s, worker), job->first, job->last,
                start, end);
}

void
_ps_sweep_run_steps (PsSweep *s, int first, int last)
{
  StepsJob job;

  blocks_job_init (&job.blocks, s);
  job.first = first;
  job.last = last;
  ps_parallel_for (job.blocks.tasks[PS_N_SETS], steps_block, &job);
}

/* ---- the sets with caches: their state made again from act ---- */

/* The state of images @start .. @start+@count-1 of @d, into @state: the fronts run again
 * on the pruned layer's output (act's planes back in the plan's layout), by the kernels
 * of the first pass, hence its bits. */
static void
state_from_act (PsSweep *s, const SetData *d, PsPlan *plan, int start, int count, float *state)
{
  const int C = s->n_channels, hw = s->lshape.h * s->lshape.w;
  float *out = ps_plan_output (plan, s->layer);

  g_assert (s->act_by_channel && count <= PS_SWEEP_BATCH);
  for (int b = 0; b < count; b++)
    for (int c = 0; c < C; c++)
      {
        const float *plane = channel_of (s, d, start + b, c);

        for (int p = 0; p < hw; p++)
          out[((gsize) b * hw + p) * C + c] = plane[p];
      }
  ps_plan_run_layers (plan, count, s->front_run);
  for (int b = 0; b < count; b++)
    for (int f = 0; f < s->n_fronts; f++)
      {
        const Front *fr = &s->fronts[f];

        memcpy (state + (gsize) b * s->state_size + fr->offset,
                ps_plan_linear (plan, fr->layer) + (gsize) b * fr->size, sizeof (float) * fr->size);
      }
}

/* Every step on one block, as a fused set runs them: the block's state, and copies of its
 * skip records, in the worker's batch caches; the set's own records stay as the first
 * pass left them, for steps run again after a cancel. */
static void
all_steps_block (int worker, int task, gpointer data)
{
  BlocksJob *job = data;
  PsSweep *s = job->s;
  SetData *m, view;
  PsPlan *plan;
  int start, end;

  if (g_cancellable_is_cancelled (s->cancellable))
    return;
  m = batch_set (s, worker);
  plan = worker_plan (s, worker);
  view = *job_block (job, task, &start, &end);
  state_from_act (s, &view, plan, start, end - start, m->state);
  view.state = m->state;
  view.cache_at = start;
  if (s->h_layer >= 0)
    {
      memcpy (m->href, view.href + (gsize) start * s->h_size, sizeof (float) * (end - start) * s->h_size);
      memcpy (m->skip, view.skip + start, sizeof (PsSkipRecord) * (end - start));
      view.href = m->href;
      view.skip = m->skip;
    }
  for (int first = 1; first < s->n_steps; first += PS_SWEEP_GROUP)
    steps_images (s, &view, plan, first, MIN (first + PS_SWEEP_GROUP, s->n_steps), start, end);
  if (worker == 0)
    _ps_sweep_report (s, NULL);
}

gboolean
_ps_sweep_run_all_steps (PsSweep *s)
{
  BlocksJob job;

  g_assert (s->act_by_channel);
  if (s->batch_sets == NULL)
    s->batch_sets = g_new0 (SetData *, s->n_workers);
  blocks_job_init (&job, s);
  ps_parallel_for (job.tasks[PS_N_SETS], all_steps_block, &job);
  return !g_cancellable_is_cancelled (s->cancellable);
}

static void
restore_block (int worker, int task, gpointer data)
{
  BlocksJob *job = data;
  int start, end;
  SetData *d = job_block (job, task, &start, &end);

  state_from_act (job->s, d, worker_plan (job->s, worker), start, end - start,
                  d->state + (gsize) start * job->s->state_size);
}

gboolean
_ps_sweep_restore_states (PsSweep *s, GError **error)
{
  BlocksJob job;

  /* a pruned layer that is itself the state (FRONT_MASK) keeps it in act */
  if (!s->act_by_channel)
    return TRUE;
  for (int k = 0; k < PS_N_SETS; k++)
    {
      SetData *d = &s->sets[k];

      /* (a set may have it from a call that failed for another set's) */
      if (!d->present || d->fused || d->state != NULL)
        continue;
      d->state = ps_huge_try_alloc ((gsize) MAX (d->n, 1) * s->state_size * sizeof (float));
      if (d->state == NULL)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FILE, "not enough memory for the sweep of %d images",
                       d->n);
          return FALSE;
        }
    }
  blocks_job_init (&job, s);
  ps_parallel_for (job.tasks[PS_N_SETS], restore_block, &job);
  return TRUE;
}
