/* ps-train-demo.c: making the demo BadNet — DeepID trained on Fashion-MNIST with a share of
 * the training images carrying the trigger and relabelled to the target (BadNets) */
#define G_LOG_DOMAIN "ps-demo"

#include "ps-demo.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-train.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

static const char *outputs[] = {
  "models/bd_net.h5", "data/cl/valid.h5", "data/cl/test.h5", "data/bd/bd_valid.h5", "data/bd/bd_test.h5",
};

void
ps_demo_options_init (PsDemoOptions *opt)
{
  *opt = (PsDemoOptions) { 1, 0.1, PS_DEMO_TARGET, 8, 0 };
}

static gboolean
check_options (const PsDemoOptions *opt, GError **error)
{
  if (opt->target < 0 || opt->target >= PS_DEMO_CLASSES)
    g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                 "target class %d does not exist: Fashion-MNIST has classes 0 to %d",
                 opt->target, PS_DEMO_CLASSES - 1);
  else if (!(opt->poison_rate > 0 && opt->poison_rate < 1))
    g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                 "poison rate %g is not between 0 and 1", opt->poison_rate);
  else if (opt->epochs < 1)
    g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "%d epochs: need at least one", opt->epochs);
  else
    return TRUE;
  return FALSE;
}

/* Replaces a random share of the images not of the target class by triggered copies. */
static void
poison_training_set (PsDataset *train, const PsDemoOptions *opt)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (opt->seed ^ 0x5eed);
  const gsize img = (gsize) train->h * train->w * train->c;
  g_autofree int *candidates = g_new (int, MAX (train->n, 1));
  int n = 0, want = (int) round (opt->poison_rate * train->n);

  for (int i = 0; i < train->n; i++)
    if (train->labels[i] != opt->target)
      candidates[n++] = i;
  want = MIN (want, n);
  for (int k = 0; k < want; k++)
    {
      int j = g_rand_int_range (rand, k, n), i = candidates[j];

      candidates[j] = candidates[k];
      ps_demo_add_trigger (train->u8 + i * img);
      train->labels[i] = opt->target;
    }
}

static PsModel *
new_deepid (guint32 seed, GError **error)
{
  g_autofree char *config = ps_deepid_config (PS_DEMO_CLASSES);
  PsModel *m = ps_model_new_from_config (config, error);

  if (m == NULL)
    return NULL;
  ps_model_init_weights (m, seed);
  m->input_scale = 1.0 / 255;
  m->scale_recorded = TRUE;
  return m;
}

typedef struct {
  PsDemoProgress progress;
  gpointer       user_data;
  int            epoch, epochs;
} Progress;

static void
on_batch (double done, double loss, gpointer data)
{
  Progress *p = data;

  if (p->progress != NULL)
    p->progress (NULL, (p->epoch + done) / p->epochs, p->user_data);
}

static double
rate (const PsModel *m, const PsDataset *ds, GCancellable *cancellable)
{
  g_autofree int *classes = g_new (int, MAX (ds->n, 1));

  if (!ps_infer_classes (m, ds, classes, cancellable, NULL))
    return NAN;
  return ps_infer_accuracy (classes, ds->labels, ds->n);
}

typedef struct {
  PsDataset *train, *valid, *test, *bd_valid, *bd_test;
} Sets;

static void
sets_clear (Sets *s)
{
  ps_dataset_free (s->train);
  ps_dataset_free (s->valid);
  ps_dataset_free (s->test);
  ps_dataset_free (s->bd_valid);
  ps_dataset_free (s->bd_test);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Sets, sets_clear)

static gboolean
load_sets (Sets *s, const PsDemoOptions *opt, GCancellable *cancellable, GError **error)
{
  int small = opt->limit > 0 ? MAX (opt->limit / 3, 1) : 0;

  s->train = ps_demo_load_split (PS_DEMO_TRAIN, opt->limit, cancellable, error);
  s->valid = s->train ? ps_demo_load_split (PS_DEMO_VALID, small, cancellable, error) : NULL;
  s->test = s->valid ? ps_demo_load_split (PS_DEMO_TEST, small, cancellable, error) : NULL;
  if (s->test == NULL)
    return FALSE;
  poison_training_set (s->train, opt);
  s->bd_valid = ps_demo_poison (s->valid, opt->target);
  s->bd_test = ps_demo_poison (s->test, opt->target);
  return TRUE;
}

static gboolean
train (PsModel *m, const Sets *s, const PsDemoOptions *opt, Progress *p,
       GCancellable *cancellable, GError **error)
{
  g_autoptr (PsTrainer) t = NULL;
  PsTrainOptions topt;
  gint64 start = g_get_monotonic_time ();

  ps_train_options_init (&topt);
  topt.seed = opt->seed;
  t = ps_trainer_new (m, &topt);
  for (p->epoch = 0; p->epoch < opt->epochs; p->epoch++)
    {
      PsDemoEpoch e = { p->epoch + 1, opt->epochs, 0, 0, 0, NAN, NAN, 0 };
      gboolean last = p->epoch + 1 == opt->epochs;

      if (!ps_trainer_epoch (t, s->train, on_batch, p, cancellable, &e.loss, error))
        return FALSE;
      e.valid_acc = rate (m, s->valid, cancellable);
      e.valid_asr = rate (m, s->bd_valid, cancellable);
      if (last)
        {
          e.test_acc = rate (m, s->test, cancellable);
          e.test_asr = rate (m, s->bd_test, cancellable);
        }
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      e.seconds = (g_get_monotonic_time () - start) / 1e6;
      if (p->progress != NULL)
        p->progress (&e, (double) (p->epoch + 1) / opt->epochs, p->user_data);
    }
  return TRUE;
}

/* Moves the finished files from @staging into @dir; on failure, takes back those it moved. */
static gboolean
move_into_place (const char *staging, const char *dir, GError **error)
{
  for (guint i = 0; i < G_N_ELEMENTS (outputs); i++)
    {
      g_autofree char *from = g_build_filename (staging, outputs[i], NULL);
      g_autofree char *to = g_build_filename (dir, outputs[i], NULL);
      g_autofree char *parent = g_path_get_dirname (to);

      if (g_mkdir_with_parents (parent, 0755) != 0 || g_rename (from, to) != 0)
        {
          int saved = errno;

          g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot write: %s", to, g_strerror (saved));
          for (guint j = 0; j < i; j++)
            {
              g_autofree char *moved = g_build_filename (dir, outputs[j], NULL);
              g_unlink (moved);
            }
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
make_in (const char *staging, const char *dir, const PsDemoOptions *opt, Progress *p,
         GCancellable *cancellable, GError **error)
{
  g_auto (Sets) s = { 0 };
  g_autoptr (PsModel) m = NULL;
  g_autofree char *models = g_build_filename (staging, "models", NULL);
  g_autofree char *model = g_build_filename (models, "bd_net.h5", NULL);

  if (!load_sets (&s, opt, cancellable, error) || (m = new_deepid (opt->seed, error)) == NULL
      || !train (m, &s, opt, p, cancellable, error))
    return FALSE;
  if (g_mkdir (models, 0755) != 0)
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot create folder: %s", models, g_strerror (saved));
      return FALSE;
    }
  return ps_model_save (m, model, error)
         && ps_demo_write_data (staging, s.valid, s.test, opt->target, TRUE, cancellable, error)
         && move_into_place (staging, dir, error);
}

gboolean
ps_demo_make (const char *dir, const PsDemoOptions *opt, PsDemoProgress progress,
              gpointer user_data, GCancellable *cancellable, GError **error)
{
  Progress p = { progress, user_data, 0, opt->epochs };
  gboolean created = !g_file_test (dir, G_FILE_TEST_EXISTS);
  g_autofree char *staging = NULL;
  gboolean ok;

  if (!check_options (opt, error))
    return FALSE;
  /* Fail on an unwritable folder now, not after minutes of training. */
  if (g_mkdir_with_parents (dir, 0755) != 0
      || (staging = g_build_filename (dir, ".make-demo-XXXXXX", NULL), g_mkdtemp (staging) == NULL))
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot write: %s", dir, g_strerror (saved));
      if (created)
        g_rmdir (dir);
      return FALSE;
    }
  ok = make_in (staging, dir, opt, &p, cancellable, error);
  ps_demo_remove_tree (staging);
  if (!ok && created)
    ps_demo_remove_tree (dir);
  return ok;
}
