/* ps-infer.c: batched inference over a dataset with one plan per worker */
#define G_LOG_DOMAIN "ps-infer"

#include "ps-infer.h"
#include "ps-h5.h"
#include "ps-parallel.h"
#include "ps-plan.h"

#include <math.h>

typedef struct {
  const PsModel   *model;
  const PsDataset *ds;
  int             *classes;
  PsPlan         **plans;
  GCancellable    *cancellable;
} Job;

gboolean
ps_infer_check_dataset (const PsModel *m, const PsDataset *ds, GError **error)
{
  PsShape in = m->layers[m->input]->out;

  if (ds->h != in.h || ds->w != in.w || ds->c != in.c)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                   "%s: images are %dx%dx%d, the model takes %dx%dx%d",
                   ds->path ? ds->path : "data", ds->h, ds->w, ds->c, in.h, in.w, in.c);
      return FALSE;
    }
  for (int i = 0; i < ds->n; i++)
    if (ds->labels[i] >= m->n_classes)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                     "%s: label %d of image %d is not one of the model's %d classes",
                     ds->path ? ds->path : "data", ds->labels[i], i, m->n_classes);
        return FALSE;
      }
  for (int i = 0; ds->clean_labels != NULL && i < ds->n; i++)
    if (ds->clean_labels[i] >= m->n_classes)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                     "%s: clean_label %d of image %d is not one of the model's %d classes",
                     ds->path ? ds->path : "data", ds->clean_labels[i], i, m->n_classes);
        return FALSE;
      }
  return TRUE;
}

static void
run_batch (int worker, int task, gpointer data)
{
  Job *job = data;
  PsPlan *plan = job->plans[worker];
  PsShape in = job->model->layers[job->model->input]->out;
  int start = task * PS_INFER_BATCH;
  int count = MIN (PS_INFER_BATCH, job->ds->n - start);

  if (g_cancellable_is_cancelled (job->cancellable))
    return;
  if (plan == NULL)
    {
      plan = job->plans[worker] = ps_plan_new (job->model, PS_INFER_BATCH);
      ps_plan_set_logits (plan, TRUE);
      ps_plan_set_fused (plan, TRUE);
    }
  g_assert (in.h == job->ds->h);
  ps_dataset_get_batch (job->ds, start, count, job->model->input_scale,
                        ps_plan_output (plan, job->model->input));
  ps_plan_forward (plan, count);
  ps_plan_argmax (plan, count, job->classes + start);
}

static gboolean
classes_of (const PsModel *model, const PsDataset *ds, int *classes,
            GCancellable *cancellable, GError **error)
{
  int workers = ps_parallel_n_workers ();
  Job job = { model, ds, classes, g_new0 (PsPlan *, workers), cancellable };

  ps_parallel_for ((ds->n + PS_INFER_BATCH - 1) / PS_INFER_BATCH, run_batch, &job);
  for (int i = 0; i < workers; i++)
    ps_plan_free (job.plans[i]);
  g_free (job.plans);
  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

gboolean
ps_infer_classes (const PsModel *model, const PsDataset *ds, int *classes,
                  GCancellable *cancellable, GError **error)
{
  PsShape in = model->layers[model->input]->out;

  if (ds->h != in.h || ds->w != in.w || ds->c != in.c)
    return ps_infer_check_dataset (model, ds, error);
  return classes_of (model, ds, classes, cancellable, error);
}

double
ps_infer_accuracy (const int *classes, const int *labels, int n)
{
  int ok = 0;

  for (int i = 0; i < n; i++)
    ok += classes[i] == labels[i];
  return n > 0 ? 100.0 * ok / n : NAN;
}
