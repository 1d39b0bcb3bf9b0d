/* ps-finetune.c: fine-pruning. B' is trained with the channels pruning removed frozen at
 * zero (kernel columns and biases of the layer feeding the pruned one), so B' stays a pruned
 * network; B's classes are computed once, B''s after every epoch, and G's follow from both. */
#define G_LOG_DOMAIN "ps-finetune"

#include "ps-finetune.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-repaired.h"

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
      int g = ps_repaired_rule (s->b[k][i], s->cur[k][i], n_classes);

      hits += what == 0 ? s->cur[k][i] == ds->labels[i]
            : what == 1 ? g == ds->labels[i]
            : g == n_classes;
    }
  return percent (hits, ds->n);
}

static gboolean
measure (const PsRepaired *g, Scores *s, PsFinetuneEpoch *e, GCancellable *cancellable,
         GError **error)
{
  int nc = ps_repaired_n_classes (g);

  for (int k = 0; k < PS_N_SETS; k++)
    if (s->ds[k] != NULL && !ps_infer_classes (g->b_prime, s->ds[k], s->cur[k], cancellable, error))
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
prepare (const PsRepaired *g, const PsDataset * const sets[PS_N_SETS], Scores *s,
         GCancellable *cancellable, GError **error)
{
  for (int k = 0; k < PS_N_SETS; k++)
    {
      const PsDataset *ds = sets[k];

      s->ds[k] = ds;
      if (ds == NULL)
        continue;
      s->b[k] = g_new (int, MAX (ds->n, 1));
      s->cur[k] = g_new (int, MAX (ds->n, 1));
      if (!ps_infer_check_dataset (g->b, ds, error)
          || !ps_infer_classes (g->b, ds, s->b[k], cancellable, error))
        return FALSE;
    }
  return TRUE;
}

static PsTrainer *
new_trainer (PsRepaired *g, const PsFinetuneOptions *opt, GError **error)
{
  PsModel *bp = g->b_prime;
  int layer = ps_model_find_layer (bp, g->layer);
  PsLayer *feed = layer >= 0 ? ps_repaired_feeding_layer (bp, layer, error) : NULL;
  PsTrainOptions topt;
  PsTrainer *t;

  if (feed == NULL)
    return NULL;
  ps_train_options_init (&topt);
  topt.optimizer = opt->optimizer;
  topt.lr = opt->lr;
  topt.batch_size = opt->batch_size;
  topt.seed = opt->seed;
  t = ps_trainer_new (bp, &topt);
  for (int i = 0; i < bp->n_layers; i++)
    if (bp->layers[i] == feed)
      ps_trainer_freeze_channels (t, i, g->channels, g->n_channels);
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
record (PsRepaired *g, const PsFinetuneOptions *opt, const PsFinetuneEpoch *e)
{
  g->fine_tuned = TRUE;
  g->ft_epochs = opt->epochs;
  g->ft_lr = opt->lr;
  g->metrics.valid_acc = e->valid_acc;
  g->metrics.test_acc = e->test_acc;
  g->metrics.asr = e->asr;
  g->metrics.g_test_acc = e->g_test_acc;
  g->metrics.g_asr = e->g_asr;
  g->metrics.g_clean_flagged = e->g_clean_flagged;
  g->metrics.g_poisoned_flagged = e->g_poisoned_flagged;
}

gboolean
ps_finetune (PsRepaired *g, const PsDataset * const sets[PS_N_SETS], const PsFinetuneOptions *opt,
             PsFinetuneProgress progress, gpointer user_data, GCancellable *cancellable,
             GError **error)
{
  g_auto (Scores) s = { 0 };
  g_autoptr (PsTrainer) t = NULL;
  PsFinetuneEpoch e = { 0, opt->epochs, NAN };
  Progress p = { progress, user_data, 0, MAX (opt->epochs, 1) };

  g_return_val_if_fail (g != NULL && sets[PS_SET_VALID] != NULL, FALSE);
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
  record (g, opt, &e);
  return TRUE;
}
