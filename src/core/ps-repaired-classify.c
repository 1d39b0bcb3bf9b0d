/* ps-repaired-classify.c: G's classes at little more than B's cost. B runs whole; B' reuses
 * every layer it computes exactly as B does, and the layers where it only zeroes channels of
 * B's output (the pruned layer and the zero-preserving layers between it and the layer it
 * is fed by) are copied from B with those channels zeroed. Only the rest of B' runs. */
#define G_LOG_DOMAIN "ps-repaired"

#include "ps-repaired.h"
#include "ps-infer.h"
#include "ps-parallel.h"
#include "ps-plan.h"

#include <string.h>

typedef enum {
  LAYER_SAME,    /* B' computes what B does */
  LAYER_MASKED,  /* B's output with some channels zero */
  LAYER_RUN,     /* B' must compute it */
} LayerState;

typedef struct {
  const PsRepaired *g;
  const PsDataset  *ds;
  int              *classes;
  LayerState       *state;
  gboolean         *run;      /* B' layers to run */
  gboolean         *copy;     /* B layers whose output B''s run layers read */
  gboolean         *zero;     /* per channel of each masked layer: zero in B' */
  int               max_c;
  PsPlan          **plans;    /* two per worker: B, B' */
  GCancellable     *cancellable;
} Job;

static gboolean
same_floats (const float *a, const float *b, gsize n)
{
  return memcmp (a, b, n * sizeof (float)) == 0;
}

/* TRUE when B' = B except that some output channels are zero in kernel and bias, and the
 * activation keeps zero at zero; @zero receives those channels. */
static gboolean
only_zeroes_channels (const PsLayer *b, const PsLayer *bp, gboolean *zero)
{
  int c = b->out.c;
  gsize rows = b->kernel_len / c;

  if (bp->activation != PS_ACT_LINEAR && bp->activation != PS_ACT_RELU)
    return FALSE;
  for (int k = 0; k < c; k++)
    {
      gboolean z = bp->bias[k] == 0.0f;

      for (gsize r = 0; z && r < rows; r++)
        z = bp->kernel[r * c + k] == 0.0f;
      zero[k] = z;
    }
  for (int k = 0; k < c; k++)
    {
      if (zero[k])
        continue;
      if (b->bias[k] != bp->bias[k])
        return FALSE;
      for (gsize r = 0; r < rows; r++)
        if (b->kernel[r * c + k] != bp->kernel[r * c + k])
          return FALSE;
    }
  return TRUE;
}

static gboolean
keeps_zero_channels (const PsLayer *l)
{
  return l->kind == PS_LAYER_MAXPOOL2D || l->kind == PS_LAYER_DROPOUT
         || (l->kind == PS_LAYER_ACTIVATION
             && (l->activation == PS_ACT_LINEAR || l->activation == PS_ACT_RELU));
}

/* TRUE when B' has B's layers, one for one (an ONNX G's B' has a mask layer of its own, and
 * parameters outside kernel columns, such as an affine layer's, are not compared). */
static gboolean
same_structure (const PsModel *b, const PsModel *bp)
{
  if (b->n_layers != bp->n_layers || b->input != bp->input)
    return FALSE;
  for (int i = 0; i < b->n_layers; i++)
    {
      const PsLayer *lb = b->layers[i], *lp = bp->layers[i];

      if (lb->kind != lp->kind || lb->n_inputs != lp->n_inputs
          || memcmp (lb->inputs, lp->inputs, sizeof (int) * lp->n_inputs) != 0
          || lb->kernel_len != lp->kernel_len || lb->bias_len != lp->bias_len
          || (!ps_layer_has_weights (lp) && lp->kernel_len > 0
              && !(same_floats (lb->kernel, lp->kernel, lp->kernel_len)
                   && same_floats (lb->bias, lp->bias, lp->bias_len))))
        return FALSE;
    }
  return TRUE;
}

static void
plan_layers (Job *job)
{
  const PsModel *b = job->g->b, *bp = job->g->b_prime;
  gsize n = (gsize) MAX (bp->n_layers, 0);

  job->max_c = 1;
  for (gsize i = 0; i < n; i++)
    job->max_c = MAX (job->max_c, bp->layers[i]->out.c);
  job->state = g_new (LayerState, n);
  job->run = g_new0 (gboolean, n);
  job->copy = g_new0 (gboolean, n);
  job->zero = g_new0 (gboolean, n * (gsize) job->max_c);
  if (!same_structure (b, bp))
    {
      /* B' runs whole, from B's input */
      for (int i = 0; i < (int) n; i++)
        job->run[i] = (job->state[i] = i == bp->input ? LAYER_SAME : LAYER_RUN) == LAYER_RUN;
      job->copy[bp->input] = TRUE;
      return;
    }
  for (int i = 0; i < (int) n; i++)
    {
      const PsLayer *lb = b->layers[i], *lp = bp->layers[i];
      gboolean inputs_same = TRUE, one_masked_input = lp->n_inputs == 1;

      for (int j = 0; j < lp->n_inputs; j++)
        {
          inputs_same &= job->state[lp->inputs[j]] == LAYER_SAME;
          one_masked_input &= job->state[lp->inputs[j]] == LAYER_MASKED;
        }
      if (ps_layer_has_weights (lp))
        {
          if (inputs_same && same_floats (lb->kernel, lp->kernel, lp->kernel_len)
              && same_floats (lb->bias, lp->bias, lp->bias_len))
            job->state[i] = LAYER_SAME;
          else if (inputs_same && only_zeroes_channels (lb, lp, job->zero + (gsize) i * job->max_c))
            job->state[i] = LAYER_MASKED;
          else
            job->state[i] = LAYER_RUN;
        }
      else if (inputs_same)
        job->state[i] = LAYER_SAME;
      else if (one_masked_input && keeps_zero_channels (lp))
        {
          job->state[i] = LAYER_MASKED;
          memcpy (job->zero + (gsize) i * job->max_c, job->zero + (gsize) lp->inputs[0] * job->max_c,
                  sizeof (gboolean) * lp->out.c);
        }
      else
        job->state[i] = LAYER_RUN;
      job->run[i] = job->state[i] == LAYER_RUN;
      for (int j = 0; job->run[i] && j < lp->n_inputs; j++)
        job->copy[lp->inputs[j]] |= job->state[lp->inputs[j]] != LAYER_RUN;
    }
  /* B' with no layer of its own (nothing pruned): its output is B's. */
  job->copy[bp->output] |= job->state[bp->output] != LAYER_RUN;
}

static void
copy_from_b (Job *job, PsPlan *pb, PsPlan *pp, int i, int count)
{
  const PsLayer *l = job->g->b_prime->layers[i];
  gsize size = ps_shape_size (l->out), pixels = size / l->out.c;
  float *dst = ps_plan_output (pp, i);
  const gboolean *zero = job->zero + (gsize) i * job->max_c;

  memcpy (dst, ps_plan_output (pb, i), sizeof (float) * size * count);
  if (job->state[i] != LAYER_MASKED)
    return;
  for (gsize p = 0; p < pixels * count; p++)
    for (int c = 0; c < l->out.c; c++)
      if (zero[c])
        dst[p * l->out.c + c] = 0.0f;
}

static void
run_batch (int worker, int task, gpointer data)
{
  Job *job = data;
  const PsModel *b = job->g->b, *bp = job->g->b_prime;
  int start = task * PS_INFER_BATCH;
  int count = MIN (PS_INFER_BATCH, job->ds->n - start);
  g_autofree int *cb = g_new (int, count);
  g_autofree int *cp = g_new (int, count);
  PsPlan **plans = job->plans + 2 * worker;

  if (g_cancellable_is_cancelled (job->cancellable))
    return;
  if (plans[0] == NULL)
    {
      plans[0] = ps_plan_new (b, PS_INFER_BATCH);
      plans[1] = ps_plan_new (bp, PS_INFER_BATCH);
      ps_plan_set_logits (plans[0], TRUE);
      ps_plan_set_logits (plans[1], TRUE);
    }
  ps_dataset_get_batch (job->ds, start, count, b->input_scale, ps_plan_output (plans[0], b->input));
  ps_plan_forward (plans[0], count);
  for (int i = 0; i < bp->n_layers; i++)
    if (job->copy[i])
      copy_from_b (job, plans[0], plans[1], i, count);
  ps_plan_run_layers (plans[1], count, job->run);
  ps_plan_argmax (plans[0], count, cb);
  ps_plan_argmax (plans[1], count, cp);
  for (int i = 0; i < count; i++)
    job->classes[start + i] = ps_repaired_rule (cb[i], cp[i], b->n_classes);
}

gboolean
ps_repaired_classify (const PsRepaired *g, const PsDataset *ds, int *classes,
                      GCancellable *cancellable, GError **error)
{
  int workers = ps_parallel_n_workers ();
  Job job = { g, ds, classes };

  PsShape in = g->b_prime->layers[g->b_prime->input]->out;

  if (ds->h != in.h || ds->w != in.w || ds->c != in.c)
    return ps_infer_check_dataset (g->b_prime, ds, error);
  job.cancellable = cancellable;
  job.plans = g_new0 (PsPlan *, 2 * workers);
  plan_layers (&job);
  ps_parallel_for ((ds->n + PS_INFER_BATCH - 1) / PS_INFER_BATCH, run_batch, &job);
  for (int i = 0; i < 2 * workers; i++)
    ps_plan_free (job.plans[i]);
  g_free (job.plans);
  g_free (job.state);
  g_free (job.run);
  g_free (job.copy);
  g_free (job.zero);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}
