/* ps-sweep.c: the pruning sweep — its entry points, the order, the metrics of every step
 * and what callers read back. The per-image work is in ps-sweep-step.c, the choice of the
 * layers that carry the state in ps-sweep-plan.c. */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-parallel.h"
#include "ps-repaired.h"

#include <math.h>
#include <string.h>

void
_ps_sweep_set_data_clear (SetData *d)
{
  if (d->state != d->act)
    g_free (d->state);
  g_free (d->act);
  g_free (d->labels);
  g_free (d->href);
  g_free (d->skip);
  g_free (d->preds);
  g_free (d->active);
  g_free (d->sums);
  g_free (d->means);
  g_free (d->hits);
  memset (d, 0, sizeof *d);
}

static void
free_batch_sets (PsSweep *s)
{
  if (s->batch_sets == NULL)
    return;
  for (int i = 0; i < s->n_workers; i++)
    if (s->batch_sets[i] != NULL)
      {
        _ps_sweep_set_data_clear (s->batch_sets[i]);
        g_free (s->batch_sets[i]);
      }
  g_clear_pointer (&s->batch_sets, g_free);
}

void
ps_sweep_free (PsSweep *s)
{
  if (s == NULL)
    return;
  for (int k = 0; k < PS_N_SETS; k++)
    _ps_sweep_set_data_clear (&s->sets[k]);
  if (s->plans != NULL)
    for (int i = 0; i < s->n_workers; i++)
      ps_plan_free (s->plans[i]);
  g_free (s->plans);
  free_batch_sets (s);
  _ps_sweep_feed_slots_clear (&s->feed_slots);
  g_free (s->layer_name);
  g_free (s->order);
  g_free (s->run);
  g_free (s->front_run);
  for (int f = 0; f < s->n_fronts; f++)
    {
      g_free (s->fronts[f].win_start);
      g_free (s->fronts[f].win_in);
      g_free (s->fronts[f].win_tap);
    }
  g_free (s->reach_out);
  g_free (s->w_norm);
  g_free (s->steps);
  g_free (s);
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
      int g = ps_repaired_rule (b[i], p[i], s->n_classes);
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

/* Only the validation set chooses the order (once it has been added). */
static void
choose_order (PsSweep *s)
{
  if (s->ordered)
    return;
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
  s->ordered = TRUE;
}

/* ---- entry points ---- */

PsSweep *
ps_sweep_new (const PsModel *model, const PsSweepOptions *opt, GError **error)
{
  g_autoptr (PsSweep) s = g_new0 (PsSweep, 1);

  s->model = model;
  s->decreasing = opt && opt->decreasing;
  s->layer = opt && opt->layer ? ps_model_find_layer (model, opt->layer) : ps_model_default_layer (model);
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
  if (!_ps_sweep_plan_structure (s, error))
    return NULL;
  return g_steal_pointer (&s);
}

void
ps_sweep_expect_images (PsSweep *s, gint64 n_images)
{
  g_return_if_fail (n_images >= 0);
  s->total_batches += (int) MIN ((n_images + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH, G_MAXINT / 2);
}

static void run_steps_ahead (PsSweep *s);

/* @ds has the images, or only the header of @stream, which has them. */
static gboolean
add_set (PsSweep *s, PsSetKind set, const PsDataset *ds, PsDatasetStream *stream,
         PsSweepProgress progress, gpointer user_data, GCancellable *cancellable,
         GError **error)
{
  SetData *d = &s->sets[set];
  int batches_before = s->done_batches;
  gboolean ok;

  g_return_val_if_fail (!s->finished && !s->stepping && !d->present, FALSE);
  if (!ps_infer_check_dataset (s->model, ds, error))
    return FALSE;
  /* After the validation set, the order is known: a later set runs every step with its
   * first pass, a batch at a time, while the batch's values are still in the cache. */
  if (set != PS_SET_VALID && s->sets[PS_SET_VALID].present)
    {
      choose_order (s);
      d->fused = TRUE;
    }
  d->ds = ds;
  d->stream = stream;
  d->n = ds->n;
  d->labels = g_memdup2 (ds->labels, sizeof (int) * MAX (ds->n, 1));
  d->present = TRUE;
  s->progress = progress;
  s->user_data = user_data;
  s->cancellable = cancellable;
  if (s->total_batches == 0)
    s->total_batches = s->done_batches + (ds->n + PS_SWEEP_BATCH - 1) / PS_SWEEP_BATCH;
  ok = _ps_sweep_first_pass (s, d, error);
  d->ds = NULL; /* the caller may free the images now */
  d->stream = NULL;
  if (!ok)
    {
      /* as before: the set can be added again */
      _ps_sweep_set_data_clear (d);
      s->done_batches = batches_before;
    }
  else if (set == PS_SET_VALID)
    run_steps_ahead (s);
  return ok;
}

gboolean
ps_sweep_add_set (PsSweep *s, PsSetKind set, const PsDataset *ds, PsSweepProgress progress,
                  gpointer user_data, GCancellable *cancellable, GError **error)
{
  g_return_val_if_fail (ds->u8 != NULL || ds->f32 != NULL || ds->n == 0, FALSE);
  return add_set (s, set, ds, NULL, progress, user_data, cancellable, error);
}

gboolean
ps_sweep_add_set_stream (PsSweep *s, PsSetKind set, PsDatasetStream *stream,
                         PsSweepProgress progress, gpointer user_data,
                         GCancellable *cancellable, GError **error)
{
  return add_set (s, set, ps_dataset_stream_header (stream), stream, progress, user_data,
                  cancellable, error);
}

/* What only the steps read: once a set's steps have all run, they can go. */
static void
release_step_caches (SetData *d)
{
  if (d->state != d->act)
    g_free (d->state);
  d->state = NULL;
  g_clear_pointer (&d->act, g_free);
  g_clear_pointer (&d->href, g_free);
  g_clear_pointer (&d->skip, g_free);
  g_clear_pointer (&d->active, g_free);
}

static void
release_caches (PsSweep *s)
{
  for (int k = 0; k < PS_N_SETS; k++)
    {
      release_step_caches (&s->sets[k]);
      g_clear_pointer (&s->sets[k].labels, g_free);
    }
  for (int i = 0; i < s->n_workers; i++)
    g_clear_pointer (&s->plans[i], ps_plan_free);
  free_batch_sets (s);
}

/* The validation set's steps, as soon as its first pass has chosen the order: its caches
 * (tens of MB) are still in the CPU's cache then, and only there are the steps as cheap
 * as in a fused set; after the other sets' passes they would come back from memory,
 * which costs the steps twice their time. Their rows are counted and reported by finish.
 * Each block of images runs every step while its state, made again from act, is in the
 * cache; a cancel leaves every step to finish, which keeps the state between groups. A
 * pruned layer read by no linear front is itself the state, kept: its steps run group by
 * group, and a cancel stops between groups. */
static void
run_steps_ahead (PsSweep *s)
{
  choose_order (s);
  if (s->act_by_channel)
    {
      if (_ps_sweep_run_all_steps (s))
        s->steps_run = s->n_steps;
    }
  else
    while (s->steps_run < s->n_steps && !g_cancellable_is_cancelled (s->cancellable))
      {
        int first = MAX (s->steps_run, 1), last = MIN (first + PS_SWEEP_GROUP, s->n_steps);

        _ps_sweep_run_steps (s, first, last);
        s->steps_run = last;
        _ps_sweep_report (s, NULL);
      }
  if (s->steps_run == s->n_steps)
    for (int k = 0; k < PS_N_SETS; k++)
      if (s->sets[k].present && !s->sets[k].fused)
        release_step_caches (&s->sets[k]);
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

  s->stepping = TRUE;
  choose_order (s);

  /* no more sets come: the readers' buffers go before the steps */
  _ps_sweep_feed_slots_clear (&s->feed_slots);

  /* Step 0 is B itself. The others run a group at a time, image block by image block
   * (see ps-sweep-step.c), and their rows are reported after each group. A group always
   * runs whole: between groups the caches match the steps done, and a cancelled sweep goes
   * on from there (reporting first the rows it had not reported) when finish is called
   * again. */
  while (s->n_reported < s->n_steps)
    {
      if (s->n_reported == s->next_step)
        {
          int first = s->next_step;
          int last = first == 0 ? 1 : MIN (first + PS_SWEEP_GROUP, s->n_steps);

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return FALSE;
          /* the sets with caches keep their state from here to the last step */
          if (first == 1 && s->steps_run < s->n_steps && !_ps_sweep_restore_states (s, error))
            return FALSE;
          if (first > 0 && last > s->steps_run)
            _ps_sweep_run_steps (s, first, last);
          for (int step = first; step < last; step++)
            {
              for (int k = 0; k < PS_N_SETS; k++)
                if (s->sets[k].present)
                  count_hits (s, &s->sets[k], step);
              fill_row (s, step, step > 0 ? s->order[step - 1] : -1);
            }
          s->next_step = last;
        }
      while (s->n_reported < s->next_step)
        {
          s->cur_step = s->n_reported++;
          _ps_sweep_report (s, &s->steps[s->cur_step]);
          if (s->n_reported < s->n_steps
              && g_cancellable_set_error_if_cancelled (cancellable, error))
            return FALSE;
        }
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
        ps_sweep_expect_images (s, sets[k]->n);
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
int ps_sweep_n_steps_done (const PsSweep *s) { return s->n_reported; }
gboolean ps_sweep_is_finished (const PsSweep *s) { return s->finished; }
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

  return ps_repaired_rule (b, p, s->n_classes);
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
