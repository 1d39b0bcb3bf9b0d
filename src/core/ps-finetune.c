/* ps-finetune.c: fine-pruning. B' is trained with the channels pruning removed frozen at
 * zero (kernel columns and biases of the layer feeding the pruned one), so B' stays a pruned
 * network; B's classes are computed once, B''s after every epoch, and G's follow from both. */
#define G_LOG_DOMAIN "ps-finetune"

#include "ps-finetune.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-repair.h"
#include "ps-repair-private.h"

#include <math.h>

void
ps_finetune_options_init (PsFinetuneOptions *opt)
{
  *opt = (PsFinetuneOptions) { 3, 1e-4, PS_OPTIMIZER_ADAM, 64, 1 };
}

typedef struct {
  const PsDataset *ds[PS_N_SETS];
  int             *b[PS_N_SETS];    /* B's classes */
  int             *cur[PS_N_SETS];  /* B''s classes */
} Scores;

static void
scores_clear (Scores *s)
{
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_free (s->b[k]);
      g_free (s->cur[k]);
    }
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Scores, scores_clear)

/* B' alone: the same layers, without what makes it a G. */
static gboolean
classify_b_prime (const PsModel *g, const PsDataset *ds, int *classes,
                  GCancellable *cancellable, GError **error)
{
  PsModel b_prime = *g;

  b_prime.repair = NULL;
  return ps_infer_classes (&b_prime, ds, classes, cancellable, error);
}

static double
percent (int hits, int n)
{
  return n > 0 ? 100.0 * hits / n : NAN;
}

/* @what: 0 B' correct, 1 G correct, 2 G flags the input. */
static double
rate (const Scores *s, int k, int n_classes, int what)
{
  const PsDataset *ds = s->ds[k];
  int hits = 0;

  if (ds == NULL)
    return NAN;
  for (int i = 0; i < ds->n; i++)
    {
      int g = s->cur[k][i] == s->b[k][i] ? s->b[k][i] : n_classes;

      hits += what == 0 ? s->cur[k][i] == ds->labels[i]
            : what == 1 ? g == ds->labels[i]
            : g == n_classes;
    }
  return percent (hits, ds->n);
}

static gboolean
measure (const PsModel *g, Scores *s, PsFinetuneEpoch *e, GCancellable *cancellable,
         GError **error)
{
  int nc = g->n_classes;

  for (int k = 0; k < PS_N_SETS; k++)
    if (s->ds[k] != NULL && !classify_b_prime (g, s->ds[k], s->cur[k], cancellable, error))
      return FALSE;
  e->valid_acc = rate (s, PS_SET_VALID, nc, 0);
  e->test_acc = rate (s, PS_SET_TEST, nc, 0);
  e->asr = rate (s, PS_SET_POISONED, nc, 0);
  e->g_test_acc = rate (s, PS_SET_TEST, nc, 1);
  e->g_asr = rate (s, PS_SET_POISONED, nc, 1);
  e->g_clean_flagged = rate (s, PS_SET_TEST, nc, 2);
  e->g_poisoned_flagged = rate (s, PS_SET_POISONED, nc, 2);
  return TRUE;
}

static gboolean
prepare (const PsModel *g, const PsDataset * const sets[PS_N_SETS], Scores *s,
         GCancellable *cancellable, GError **error)
{
  g_autoptr (PsModel) b = ps_model_copy (ps_repair_original (g));

  b->input_scale = g->input_scale;
  for (int k = 0; k < PS_N_SETS; k++)
    {
      const PsDataset *ds = sets[k];

      s->ds[k] = ds;
      if (ds == NULL)
        continue;
      s->b[k] = g_new (int, MAX (ds->n, 1));
      s->cur[k] = g_new (int, MAX (ds->n, 1));
      if (!ps_infer_check_dataset (g, ds, error)
          || !ps_infer_classes (b, ds, s->b[k], cancellable, error))
        return FALSE;
    }
  return TRUE;
}

static PsTrainer *
new_trainer (PsModel *g, const PsFinetuneOptions *opt, GError **error)
{
  const PsRepairInfo *info = g->repair;
  int layer = ps_model_find_layer (g, info->layer);
  PsLayer *feed = layer >= 0 ? _ps_repair_feeding_layer (g, layer, error) : NULL;
  PsTrainOptions topt;
  PsTrainer *t;

  if (feed == NULL)
    return NULL;
  ps_train_options_init (&topt);
  topt.optimizer = opt->optimizer;
  topt.lr = opt->lr;
  topt.batch_size = opt->batch_size;
  topt.seed = opt->seed;
  t = ps_trainer_new (g, &topt);
  for (int i = 0; i < g->n_layers; i++)
    if (g->layers[i] == feed)
      ps_trainer_freeze_channels (t, i, info->channels, info->n_channels);
  return t;
}

typedef struct {
  PsFinetuneProgress progress;
  gpointer           user_data;
  int                epoch, epochs;
} Progress;

static void
on_batch (double done, double loss, gpointer data)
{
  Progress *p = data;

  p->progress (NULL, (p->epoch + done) / p->epochs, p->user_data);
}

static void
record (PsRepairInfo *info, const PsFinetuneOptions *opt, const PsFinetuneEpoch *e)
{
  const double v[7] = { e->valid_acc, e->test_acc, e->asr, e->g_test_acc, e->g_asr,
                        e->g_clean_flagged, e->g_poisoned_flagged };

  info->fine_tuned = TRUE;
  info->ft_epochs = opt->epochs;
  info->ft_lr = opt->lr;
  for (int i = 0; i < 7; i++)
    info->metrics[i] = v[i];
}

gboolean
ps_finetune (PsModel *g, const PsDataset * const sets[PS_N_SETS], const PsFinetuneOptions *opt,
             PsFinetuneProgress progress, gpointer user_data, GCancellable *cancellable,
             GError **error)
{
  g_auto (Scores) s = { 0 };
  g_autoptr (PsTrainer) t = NULL;
  PsFinetuneEpoch e = { 0, opt->epochs, NAN };
  Progress p = { progress, user_data, 0, MAX (opt->epochs, 1) };

  g_return_val_if_fail (ps_repair_is_g (g) && sets[PS_SET_VALID] != NULL, FALSE);
  if (!(opt->epochs >= 1 && opt->lr > 0 && isfinite (opt->lr)))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                   "fine-tuning needs at least one epoch and a positive learning rate");
      return FALSE;
    }
  if (!prepare (g, sets, &s, cancellable, error) || (t = new_trainer (g, opt, error)) == NULL
      || !measure (g, &s, &e, cancellable, error))
    return FALSE;
  if (progress != NULL)
    progress (&e, 0.0, user_data);
  for (p.epoch = 0; p.epoch < opt->epochs; p.epoch++)
    {
      e.epoch = p.epoch + 1;
      if (!ps_trainer_epoch (t, sets[PS_SET_VALID], progress ? on_batch : NULL, &p, cancellable,
                             &e.loss, error)
          || !measure (g, &s, &e, cancellable, error))
        return FALSE;
      if (progress != NULL)
        progress (&e, (double) e.epoch / opt->epochs, user_data);
    }
  record (g->repair, opt, &e);
  return TRUE;
}
