/* ps-train.c: the training loop.
 *
 * Determinism: a batch is always cut into N_TASKS slices, whatever the number of cores;
 * each slice has its own buffers and gradients, workers pick slices in any order, and the
 * slices' gradients are then summed in slice order. OpenBLAS runs single-threaded inside a
 * worker (ps_parallel), so a seed gives the same model bit for bit on a given machine. */
#define G_LOG_DOMAIN "ps-train"

#include "ps-train-private.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-parallel.h"
#include "ps-plan.h"

#include <math.h>
#include <string.h>

#define N_TASKS 4

/* One kernel or bias array of the model, with its optimizer state. */
typedef struct {
  float *w;
  gsize  len;
  float *sum;    /* the batch's gradient */
  float *m, *v;  /* momentum / Adam moments */
  float *keep;   /* NULL, or 1 where the weight may change and 0 where it stays zero */
} Param;

typedef struct {
  int          n;
  const int   *indices;  /* into the dataset, or NULL when x is given */
  const float *x;
  int         *labels;
  guint32      seed;
  double       loss;
  float      **out;      /* per layer; identity layers alias their input */
  float      **grad;
  float      **col;      /* per Conv2D: its im2col, kept for the backward pass */
  float      **mask;     /* per Dropout */
  gboolean    *owned;
  float       *scratch;
  float      **dparam;   /* per Param */
} Task;

struct _PsTrainer {
  PsModel        *model;
  PsTrainOptions  opt;
  int             task_batch;
  Task            tasks[N_TASKS];
  Param          *params;
  int             n_params;
  int            *param_of;  /* layer -> index of its kernel Param (bias follows), or -1 */
  GRand          *rand;
  gint64          step;
  int             batch_total;
  const PsDataset *ds;
};

void
ps_train_options_init (PsTrainOptions *opt)
{
  *opt = (PsTrainOptions) { PS_OPTIMIZER_ADAM, 1e-3, 0.9, 64, 1 };
}

void
ps_model_init_weights (PsModel *m, guint32 seed)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  for (int i = 0; i < m->n_layers; i++)
    {
      PsLayer *l = m->layers[i];
      gsize receptive = l->kind == PS_LAYER_CONV2D ? (gsize) l->kh * l->kw : 1;
      double limit = sqrt (6.0 / (receptive * (l->in.c + l->out.c)));

      if (!ps_layer_has_weights (l))
        continue;
      if (l->kernel == NULL)
        l->kernel = g_new (float, l->kernel_len);
      g_free (l->bias);
      l->bias = g_new0 (float, l->bias_len);
      for (gsize k = 0; k < l->kernel_len; k++)
        l->kernel[k] = (float) g_rand_double_range (rand, -limit, limit);
    }
}

static gboolean
is_alias (const PsModel *m, int i)
{
  const PsLayer *l = m->layers[i];

  return i != m->output && i != m->input
         && (l->kind == PS_LAYER_FLATTEN
             || (l->kind == PS_LAYER_ACTIVATION && l->activation == PS_ACT_LINEAR));
}

static void
task_init (Task *task, const PsTrainer *t)
{
  const PsModel *m = t->model;
  int nl = m->n_layers, b = t->task_batch;
  gsize scratch = 1;

  task->out = g_new0 (float *, nl);
  task->grad = g_new0 (float *, nl);
  task->col = g_new0 (float *, nl);
  task->mask = g_new0 (float *, nl);
  task->owned = g_new0 (gboolean, nl);
  task->labels = g_new0 (int, b);
  for (int i = 0; i < nl; i++)
    {
      const PsLayer *l = m->layers[i];
      gsize size = (gsize) b * ps_shape_size (l->out);

      if (is_alias (m, i))
        {
          task->out[i] = task->out[l->inputs[0]];
          task->grad[i] = task->grad[l->inputs[0]];
          continue;
        }
      task->owned[i] = TRUE;
      task->out[i] = g_new0 (float, size);
      /* No gradient is needed for the images themselves. */
      if (i != m->input)
        task->grad[i] = g_new0 (float, size);
      if (l->kind == PS_LAYER_CONV2D)
        task->col[i] = g_new0 (float, MAX (ps_layer_scratch_size (l, b), 1));
      if (l->kind == PS_LAYER_DROPOUT)
        task->mask[i] = g_new0 (float, size);
      scratch = MAX (scratch, ps_layer_scratch_size (l, b));
    }
  task->scratch = g_new0 (float, scratch);
  task->dparam = g_new0 (float *, t->n_params);
  for (int p = 0; p < t->n_params; p++)
    task->dparam[p] = g_new0 (float, t->params[p].len);
}

static void
task_clear (Task *task, const PsTrainer *t)
{
  for (int i = 0; task->owned && i < t->model->n_layers; i++)
    if (task->owned[i])
      {
        g_free (task->out[i]);
        g_free (task->grad[i]);
        g_free (task->col[i]);
        g_free (task->mask[i]);
      }
  for (int p = 0; task->dparam && p < t->n_params; p++)
    g_free (task->dparam[p]);
  g_free (task->out);
  g_free (task->grad);
  g_free (task->col);
  g_free (task->mask);
  g_free (task->owned);
  g_free (task->labels);
  g_free (task->scratch);
  g_free (task->dparam);
}

static void
add_param (PsTrainer *t, float *w, gsize len)
{
  Param *p = &t->params[t->n_params++];

  p->w = w;
  p->len = len;
  p->sum = g_new0 (float, len);
  p->m = g_new0 (float, len);
  p->v = g_new0 (float, len);
}

PsTrainer *
ps_trainer_new (PsModel *model, const PsTrainOptions *opt)
{
  PsTrainer *t = g_new0 (PsTrainer, 1);
  PsActivation act = model->layers[model->output]->activation;

  g_return_val_if_fail (opt->batch_size > 0 && opt->lr > 0, NULL);
  g_return_val_if_fail (act == PS_ACT_SOFTMAX || act == PS_ACT_LINEAR, NULL);
  t->model = model;
  t->opt = *opt;
  t->task_batch = (opt->batch_size + N_TASKS - 1) / N_TASKS;
  t->rand = g_rand_new_with_seed (opt->seed);
  t->params = g_new0 (Param, 2 * model->n_layers);
  t->param_of = g_new (int, model->n_layers);
  for (int i = 0; i < model->n_layers; i++)
    {
      PsLayer *l = model->layers[i];

      t->param_of[i] = -1;
      if (!ps_layer_has_weights (l))
        continue;
      g_return_val_if_fail (l->kernel != NULL && l->bias != NULL, NULL);
      t->param_of[i] = t->n_params;
      add_param (t, l->kernel, l->kernel_len);
      add_param (t, l->bias, l->bias_len);
    }
  for (int k = 0; k < N_TASKS; k++)
    task_init (&t->tasks[k], t);
  return t;
}

void
ps_trainer_free (PsTrainer *t)
{
  if (t == NULL)
    return;
  for (int k = 0; k < N_TASKS; k++)
    task_clear (&t->tasks[k], t);
  for (int p = 0; p < t->n_params; p++)
    {
      g_free (t->params[p].sum);
      g_free (t->params[p].m);
      g_free (t->params[p].v);
      g_free (t->params[p].keep);
    }
  g_free (t->params);
  g_free (t->param_of);
  g_rand_free (t->rand);
  g_free (t);
}

static void
freeze (Param *p, gsize stride, int channel)
{
  if (p->keep == NULL)
    {
      p->keep = g_new (float, p->len);
      for (gsize i = 0; i < p->len; i++)
        p->keep[i] = 1.0f;
    }
  for (gsize i = channel; i < p->len; i += stride)
    p->keep[i] = p->w[i] = p->m[i] = p->v[i] = 0.0f;
}

void
ps_trainer_freeze_channels (PsTrainer *t, int layer, const int *channels, int n)
{
  const PsLayer *l = t->model->layers[layer];
  int p = t->param_of[layer];

  g_return_if_fail (p >= 0);
  for (int k = 0; k < n; k++)
    {
      g_return_if_fail (channels[k] >= 0 && channels[k] < l->out.c);
      freeze (&t->params[p], l->out.c, channels[k]);
      freeze (&t->params[p + 1], l->out.c, channels[k]);
    }
}

/* ---- one slice of a batch ---- */

static void
task_forward (const PsTrainer *t, Task *task)
{
  const PsModel *m = t->model;

  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];
      const float *ins[PS_MAX_INPUTS];
      gsize size = (gsize) task->n * ps_shape_size (l->out);

      if (i == m->input || is_alias (m, i))
        continue;
      for (int j = 0; j < l->n_inputs; j++)
        ins[j] = task->out[l->inputs[j]];
      if (l->kind == PS_LAYER_DROPOUT)
        {
          _ps_dropout_mask (l->rate, task->seed + (guint32) i * 2654435761u, size, task->mask[i]);
          for (gsize k = 0; k < size; k++)
            task->out[i][k] = ins[0][k] * task->mask[i][k];
        }
      else
        ps_layer_forward (l, task->n, ins, NULL, task->out[i], task->col[i]);
    }
}

/* Cross-entropy of the slice (summed) and its gradient before the output's activation,
 * already divided by the whole batch's size. */
static double
task_loss (const PsTrainer *t, Task *task)
{
  const PsModel *m = t->model;
  const PsLayer *o = m->layers[m->output];
  int k = m->n_classes;
  float *d = task->grad[m->output];
  double loss = 0.0;

  memcpy (d, task->out[m->output], sizeof (float) * task->n * k);
  if (o->activation == PS_ACT_LINEAR)
    ps_activation_apply (PS_ACT_SOFTMAX, task->n, k, d, d);
  for (int b = 0; b < task->n; b++)
    {
      float *row = d + (gsize) b * k;

      loss -= log (MAX (row[task->labels[b]], 1e-30f));
      row[task->labels[b]] -= 1.0f;
      for (int j = 0; j < k; j++)
        row[j] /= t->batch_total;
    }
  return loss;
}

static void
task_backward (const PsTrainer *t, Task *task)
{
  const PsModel *m = t->model;

  for (int i = 0; i < m->n_layers; i++)
    if (task->owned[i] && task->grad[i] != NULL && i != m->output)
      memset (task->grad[i], 0, sizeof (float) * task->n * ps_shape_size (m->layers[i]->out));
  for (int i = m->output; i > m->input; i--)
    {
      const PsLayer *l = m->layers[i];
      const float *ins[PS_MAX_INPUTS];
      float *d_in[PS_MAX_INPUTS];
      int p = t->param_of[i];

      if (is_alias (m, i))
        continue;
      for (int j = 0; j < l->n_inputs; j++)
        {
          ins[j] = task->out[l->inputs[j]];
          d_in[j] = task->grad[l->inputs[j]];
        }
      _ps_layer_backward (l, task->n, ins, task->out[i], task->grad[i], d_in,
                          p >= 0 ? task->dparam[p] : NULL, p >= 0 ? task->dparam[p + 1] : NULL,
                          task->col[i], task->scratch, task->mask[i], i == m->output);
    }
}

static void
run_task (int worker, int k, gpointer data)
{
  PsTrainer *t = data;
  Task *task = &t->tasks[k];
  const PsModel *m = t->model;
  float *x = task->out[m->input];
  gsize img = ps_shape_size (m->layers[m->input]->out);

  task->loss = 0.0;
  if (task->n == 0)
    return;
  if (task->indices != NULL)
    ps_dataset_gather (t->ds, task->indices, task->n, m->input_scale, x);
  else
    memcpy (x, task->x, sizeof (float) * img * task->n);
  task_forward (t, task);
  task->loss = task_loss (t, task);
  task_backward (t, task);
}

/* Runs the slices of a batch and sums their gradients, in slice order. */
static double
run_batch (PsTrainer *t, const int *indices, const float *x, const int *labels, int count,
           guint32 seed)
{
  const PsModel *m = t->model;
  gsize img = ps_shape_size (m->layers[m->input]->out);
  double loss = 0.0;

  g_assert (count <= t->task_batch * N_TASKS);
  t->batch_total = count;
  for (int k = 0; k < N_TASKS; k++)
    {
      Task *task = &t->tasks[k];
      int start = count * k / N_TASKS, end = count * (k + 1) / N_TASKS;

      task->n = end - start;
      task->indices = indices ? indices + start : NULL;
      task->x = x ? x + img * start : NULL;
      task->seed = seed * 31u + (guint32) k;
      for (int b = 0; b < task->n; b++)
        task->labels[b] = indices ? t->ds->labels[indices[start + b]] : labels[start + b];
    }
  ps_parallel_for (N_TASKS, run_task, t);
  for (int p = 0; p < t->n_params; p++)
    {
      Param *par = &t->params[p];

      memset (par->sum, 0, sizeof (float) * par->len);
      for (int k = 0; k < N_TASKS; k++)
        if (t->tasks[k].n > 0)
          for (gsize i = 0; i < par->len; i++)
            par->sum[i] += t->tasks[k].dparam[p][i];
    }
  for (int k = 0; k < N_TASKS; k++)
    loss += t->tasks[k].loss;
  return loss / count;
}

/* ---- optimizers ---- */

static void
sgd_update (const PsTrainOptions *o, Param *p)
{
  float lr = (float) o->lr, mu = (float) o->momentum;

  for (gsize i = 0; i < p->len; i++)
    {
      p->m[i] = mu * p->m[i] - lr * p->sum[i];
      p->w[i] += p->m[i];
    }
}

/* Keras' Adam: epsilon 1e-7, bias correction folded into the step size. */
static void
adam_update (const PsTrainOptions *o, Param *p, gint64 step)
{
  const double b1 = 0.9, b2 = 0.999;
  float lr_t = (float) (o->lr * sqrt (1.0 - pow (b2, (double) step)) / (1.0 - pow (b1, (double) step)));

  for (gsize i = 0; i < p->len; i++)
    {
      float g = p->sum[i];

      p->m[i] = (float) b1 * p->m[i] + (float) (1.0 - b1) * g;
      p->v[i] = (float) b2 * p->v[i] + (float) (1.0 - b2) * g * g;
      p->w[i] -= lr_t * p->m[i] / (sqrtf (p->v[i]) + 1e-7f);
    }
}

static void
optimizer_step (PsTrainer *t)
{
  t->step++;
  for (int k = 0; k < t->n_params; k++)
    {
      Param *p = &t->params[k];

      if (p->keep != NULL)
        for (gsize i = 0; i < p->len; i++)
          p->sum[i] *= p->keep[i];
      if (t->opt.optimizer == PS_OPTIMIZER_SGD)
        sgd_update (&t->opt, p);
      else
        adam_update (&t->opt, p, t->step);
      /* Frozen weights stay exactly zero, whatever rounding the update did. */
      if (p->keep != NULL)
        for (gsize i = 0; i < p->len; i++)
          p->w[i] *= p->keep[i];
    }
}

gboolean
ps_trainer_epoch (PsTrainer *t, const PsDataset *ds, PsTrainProgress progress, gpointer user_data,
                  GCancellable *cancellable, double *loss, GError **error)
{
  g_autofree int *order = NULL;
  double total = 0.0;

  if (!ps_infer_check_dataset (t->model, ds, error))
    return FALSE;
  order = g_new (int, MAX (ds->n, 1));
  for (int i = 0; i < ds->n; i++)
    order[i] = i;
  for (int i = ds->n - 1; i > 0; i--)
    {
      int j = g_rand_int_range (t->rand, 0, i + 1), tmp = order[i];
      order[i] = order[j], order[j] = tmp;
    }
  t->ds = ds;
  for (int start = 0; start < ds->n; start += t->opt.batch_size)
    {
      int count = MIN (t->opt.batch_size, ds->n - start);
      guint32 seed = g_rand_int (t->rand);

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      total += run_batch (t, order + start, NULL, NULL, count, seed) * count;
      if (!isfinite (total))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                       "training diverged (the loss is not finite); try a smaller learning rate");
          return FALSE;
        }
      optimizer_step (t);
      if (progress != NULL)
        progress ((double) (start + count) / ds->n, total / (start + count), user_data);
    }
  t->ds = NULL;
  *loss = ds->n > 0 ? total / ds->n : 0.0;
  return TRUE;
}

double
_ps_trainer_loss_grad (PsTrainer *t, const float *x, const int *labels, int n, guint32 seed)
{
  return run_batch (t, NULL, x, labels, n, seed);
}

void
_ps_trainer_gradient (PsTrainer *t, int layer, const float **d_kernel, const float **d_bias)
{
  int p = t->param_of[layer];

  g_return_if_fail (p >= 0);
  *d_kernel = t->params[p].sum;
  *d_bias = t->params[p + 1].sum;
}
