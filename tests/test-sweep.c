/* test-sweep.c: the incremental sweep against a naive second path (B' rebuilt with zeroed
 * weights and run from scratch at every step) */
#define G_LOG_DOMAIN "test-sweep"

#include <math.h>
#include <string.h>

#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-parallel.h"
#include "ps-plan.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "ps-test-util.h"

typedef struct {
  PsModel   *model;
  PsDataset *sets[PS_N_SETS];
} Fixture;

/* Which small model a test runs on. */
typedef struct {
  gboolean    same_stride_2;
  const char *output_activation;
  guint32     seed;               /* one whose classes are spread out */
  float       common;             /* added to every output weight */
  float       shift;              /* taken from every output bias */
  int         filters;            /* channels of conv_b and pool_b; 0: 8 */
} Variant;

static const Variant plain = { FALSE, "softmax", 17 };
static const Variant strided = { TRUE, "softmax", 155 };
/* Output columns with a large common part and biases pulled down: pruning moves every
 * score down together, so the best one can reach zero, where a ReLU ties every class,
 * while the differences between scores, all the skip bounds, stay small. */
static const Variant relu_out = { FALSE, "relu", 15, 10, 12 };
static const Variant linear_out = { FALSE, "linear", 15, 10, 12 };
/* More channels than steps in a group of the sweep: steps run in several groups. */
static const Variant wide = { FALSE, "softmax", 19, 0, 0, 21 };

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  const Variant *v = data ? data : &plain;

  PsLayer *out;

  f->model = ps_test_small_model_wide (v->seed, 5, v->same_stride_2, v->output_activation,
                                       v->filters ? v->filters : 8);
  out = f->model->layers[f->model->output];
  for (gsize k = 0; k < out->kernel_len; k++)
    out->kernel[k] += v->common;
  for (gsize k = 0; k < out->bias_len; k++)
    out->bias[k] -= v->shift;
  f->sets[PS_SET_VALID] = ps_test_random_data (f->model, 300, 1);
  f->sets[PS_SET_TEST] = ps_test_random_data (f->model, 200, 2);
  f->sets[PS_SET_POISONED] = ps_test_random_data (f->model, 150, 3);
  for (int i = 0; i < f->sets[PS_SET_POISONED]->n; i++)
    f->sets[PS_SET_POISONED]->labels[i] = 0;
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  ps_model_free (f->model);
  for (int k = 0; k < PS_N_SETS; k++)
    ps_dataset_free (f->sets[k]);
}

/* The same order, and every row and prediction of every set (@n[k] images) at every step. */
static void
assert_same_steps (const PsSweep *a, const PsSweep *b, const int *n)
{
  g_assert_cmpint (ps_sweep_n_steps (a), ==, ps_sweep_n_steps (b));
  g_assert_cmpmem (ps_sweep_order (a), sizeof (int) * ps_sweep_n_channels (a),
                   ps_sweep_order (b), sizeof (int) * ps_sweep_n_channels (b));
  for (int step = 0; step < ps_sweep_n_steps (a); step++)
    {
      g_assert_cmpmem (ps_sweep_get_step (a, step), sizeof (PsSweepStep),
                       ps_sweep_get_step (b, step), sizeof (PsSweepStep));
      for (int k = 0; k < PS_N_SETS; k++)
        for (int i = 0; i < n[k]; i++)
          g_assert_cmpint (ps_sweep_prediction (a, k, step, i), ==, ps_sweep_prediction (b, k, step, i));
    }
}

/* The fixture's set sizes, for assert_same_steps(). */
static void
fixture_sizes (const Fixture *f, int *n)
{
  for (int k = 0; k < PS_N_SETS; k++)
    n[k] = f->sets[k]->n;
}

/* Mean of each channel of @layer over @ds, computed plainly. */
static double *
naive_means (const PsModel *m, int layer, const PsDataset *ds)
{
  PsShape s = m->layers[layer]->out;
  double *means = g_new0 (double, s.c);
  PsPlan *plan = ps_plan_new (m, 1);

  for (int i = 0; i < ds->n; i++)
    {
      const float *a;
      ps_dataset_get_batch (ds, i, 1, m->input_scale, ps_plan_output (plan, m->input));
      ps_plan_forward (plan, 1);
      a = ps_plan_output (plan, layer);
      for (int p = 0; p < s.h * s.w; p++)
        for (int c = 0; c < s.c; c++)
          means[c] += a[p * s.c + c];
    }
  for (int c = 0; c < s.c; c++)
    means[c] /= (double) ds->n * s.h * s.w;
  ps_plan_free (plan);
  return means;
}

static void
check_against_naive (Fixture *f, const char *layer_name)
{
  g_autoptr (GError) error = NULL;
  PsSweepOptions opt = { layer_name, FALSE };
  g_autoptr (PsSweep) s = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, &opt,
                                        NULL, NULL, NULL, &error);
  int layer = ps_model_find_layer (f->model, layer_name);
  g_autofree double *means = NULL;
  int changed = 0;

  g_assert_no_error (error);
  g_assert_nonnull (s);
  g_assert_cmpint (ps_sweep_n_channels (s), ==, f->model->layers[layer]->out.c);

  /* The order is increasing mean activation on the validation set. */
  means = naive_means (f->model, layer, f->sets[PS_SET_VALID]);
  for (int c = 0; c < ps_sweep_n_channels (s); c++)
    g_assert_cmpfloat_with_epsilon (ps_sweep_channel_means (s, PS_SET_VALID)[c], means[c], 1e-4);
  for (int k = 1; k < ps_sweep_n_channels (s); k++)
    g_assert_cmpfloat (means[ps_sweep_order (s)[k - 1]], <=, means[ps_sweep_order (s)[k]]);

  for (int step = 0; step < ps_sweep_n_steps (s); step++)
    {
      g_autoptr (PsRepaired) g = ps_repaired_build (f->model, s, step, NAN, &error);
      const PsModel *bp;
      const PsSweepStep *row = ps_sweep_get_step (s, step);

      g_assert_no_error (error);
      bp = g->b_prime;
      for (int k = 0; k < PS_N_SETS; k++)
        {
          const PsDataset *ds = f->sets[k];
          g_autofree int *pb = g_new (int, ds->n);
          g_autofree int *pg = g_new (int, ds->n);
          int hits_b = 0, hits_g = 0, flagged = 0;
          double b_acc, g_acc, g_flag;

          g_assert_true (ps_infer_classes (bp, ds, pb, NULL, &error));
          g_assert_true (ps_repaired_classify (g, ds, pg, NULL, &error));
          for (int i = 0; i < ds->n; i++)
            {
              g_assert_cmpint (ps_sweep_prediction (s, k, step, i), ==, pb[i]);
              g_assert_cmpint (ps_sweep_g_prediction (s, k, step, i), ==, pg[i]);
              changed += pb[i] != ps_sweep_prediction (s, k, 0, i);
              hits_b += pb[i] == ds->labels[i];
              hits_g += pg[i] == ds->labels[i];
              flagged += pg[i] == f->model->n_classes;
            }
          ps_sweep_set_metrics (s, k, step, &b_acc, &g_acc, &g_flag);
          g_assert_cmpfloat (b_acc, ==, 100.0 * hits_b / ds->n);
          g_assert_cmpfloat (g_acc, ==, 100.0 * hits_g / ds->n);
          g_assert_cmpfloat (g_flag, ==, 100.0 * flagged / ds->n);
          if (k == PS_SET_VALID)
            g_assert_cmpfloat (row->valid_acc, ==, b_acc);
          if (k == PS_SET_TEST)
            g_assert_true (row->test_acc == b_acc && row->g_test_acc == g_acc && row->g_clean_flagged == g_flag);
          if (k == PS_SET_POISONED)
            g_assert_true (row->asr == b_acc && row->g_asr == g_acc && row->g_poisoned_flagged == g_flag);
        }
      g_assert_cmpint (row->pruned, ==, step);
      g_assert_cmpint (row->channel, ==, step ? ps_sweep_order (s)[step - 1] : -1);
    }
  /* Pruning must actually change predictions, and B must use several classes, or this
   * test proves little. */
  g_assert_cmpint (changed, >, 0);
  {
    int counts[5] = { 0 };
    for (int i = 0; i < f->sets[PS_SET_VALID]->n; i++)
      counts[ps_sweep_prediction (s, PS_SET_VALID, 0, i)]++;
    for (int c = 0; c < 5; c++)
      g_assert_cmpint (counts[c], <, f->sets[PS_SET_VALID]->n / 2);
  }
}

static void
test_linear_front (Fixture *f, gconstpointer data)
{
  /* pool_b feeds a Conv2D and a Flatten -> Dense: the rank-one update path. */
  check_against_naive (f, "pool_b");
}

static void
test_conv_front_same_padding (Fixture *f, gconstpointer data)
{
  /* pool_a feeds conv_b ("same" padding, stride 2): a convolution front on a larger map. */
  const PsLayer *conv_b = f->model->layers[ps_model_find_layer (f->model, "conv_b")];

  g_assert_true (conv_b->same && conv_b->sh == 2 && conv_b->sw == 2);
  g_assert_cmpint (conv_b->out.h, ==, 3);
  g_assert_cmpint (conv_b->out.w, ==, 3);
  check_against_naive (f, "pool_a");
}

static void
test_output_activations (Fixture *f, gconstpointer data)
{
  /* The output-layer skip is a bound only on linear scores (or logits under softmax); a
   * ReLU output must be recomputed, a linear one may be skipped: both exact. */
  check_against_naive (f, "pool_b");
  check_against_naive (f, "conv_b");
}

static void
test_many_channels (Fixture *f, gconstpointer data)
{
  g_assert_cmpint (f->model->layers[ps_model_find_layer (f->model, "pool_b")]->out.c, ==, 21);
  check_against_naive (f, "pool_b");
  check_against_naive (f, "conv_b");
}

static void
test_mask_front (Fixture *f, gconstpointer data)
{
  /* conv_b feeds a max pool, which is not linear: the masking path. */
  check_against_naive (f, "conv_b");
}

static void
test_default_layer_and_stop (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, NULL,
                                        NULL, NULL, NULL, &error);
  double base;

  g_assert_no_error (error);
  g_assert_cmpstr (ps_sweep_layer_name (s), ==, "pool_b");
  base = ps_sweep_get_step (s, 0)->valid_acc;
  for (double drop = 0; drop <= 30; drop += 0.5)
    {
      int k = ps_sweep_stop_step (s, drop), first = -1;

      for (int j = 0; j < ps_sweep_n_steps (s) && first < 0; j++)
        if (base - ps_sweep_get_step (s, j)->valid_acc >= drop)
          first = j;
      g_assert_cmpint (k, ==, first);
    }
  g_assert_cmpint (ps_sweep_stop_step (s, 0), ==, 0);
}

static void
test_decreasing (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  PsSweepOptions inc = { NULL, FALSE }, dec = { NULL, TRUE };
  const PsDataset *valid[PS_N_SETS] = { f->sets[PS_SET_VALID], NULL, NULL };
  g_autoptr (PsSweep) a = ps_sweep_run (f->model, valid, &inc, NULL, NULL, NULL, &error);
  g_autoptr (PsSweep) b = ps_sweep_run (f->model, valid, &dec, NULL, NULL, NULL, &error);
  int n = ps_sweep_n_channels (a);

  g_assert_no_error (error);
  for (int k = 0; k < n; k++)
    g_assert_cmpint (ps_sweep_order (a)[k], ==, ps_sweep_order (b)[n - 1 - k]);
  g_assert_true (isnan (ps_sweep_get_step (a, 3)->test_acc));
  g_assert_false (ps_sweep_has_set (a, PS_SET_TEST));
}

static void
cancel_on_step (const PsSweepStep *step, double done, gpointer data)
{
  if (step != NULL && step->pruned == 2)
    g_cancellable_cancel (data);
}

static void
test_cancel (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) c = g_cancellable_new ();
  PsSweep *s = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, NULL,
                             cancel_on_step, c, c, &error);

  g_assert_null (s);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
record_done (const PsSweepStep *step, double done, gpointer data)
{
  g_array_append_val ((GArray *) data, done);
}

typedef struct {
  GArray *done;
  GArray *rows;  /* the steps reported */
} Record;

static void
record_step (const PsSweepStep *step, double done, gpointer data)
{
  Record *r = data;

  g_array_append_val (r->done, done);
  if (step != NULL)
    g_array_append_val (r->rows, step->pruned);
}

/* A cancelled first pass leaves the sweep as it was, a cancelled finish keeps its steps:
 * adding the set again and finishing again give the uninterrupted sweep exactly, each row
 * reported once. */
static void
test_resume (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) c = g_cancellable_new ();
  g_autoptr (GCancellable) now = g_cancellable_new ();
  g_autoptr (PsSweep) ref = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, NULL,
                                          NULL, NULL, NULL, &error);
  g_autoptr (PsSweep) s = ps_sweep_new (f->model, NULL, &error);
  g_autoptr (GArray) done = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr (GArray) rows = g_array_new (FALSE, FALSE, sizeof (int));
  Record record = { done, rows };
  int total = 0, kept;
  double prev = 0;

  g_assert_no_error (error);
  for (int k = 0; k < PS_N_SETS; k++)
    total += f->sets[k]->n;
  ps_sweep_expect_images (s, total);
  g_assert_true (ps_sweep_add_set (s, PS_SET_VALID, f->sets[PS_SET_VALID], record_done, done, NULL, &error));
  g_cancellable_cancel (now);
  g_assert_false (ps_sweep_add_set (s, PS_SET_TEST, f->sets[PS_SET_TEST], record_done, done, now, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (ps_sweep_has_set (s, PS_SET_TEST));
  for (int k = PS_SET_TEST; k < PS_N_SETS; k++)
    g_assert_true (ps_sweep_add_set (s, k, f->sets[k], record_done, done, NULL, &error));

  g_assert_false (ps_sweep_finish (s, cancel_on_step, c, c, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (ps_sweep_is_finished (s));
  /* steps run in groups: the group holding step 2, at least, is done */
  g_assert_cmpint (ps_sweep_n_steps_done (s), >=, 3);
  if (ps_sweep_n_channels (s) > 16)
    g_assert_cmpint (ps_sweep_n_steps_done (s), <, ps_sweep_n_steps (s));
  kept = ps_sweep_n_steps_done (s);
  g_assert_true (ps_sweep_finish (s, record_step, &record, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (ps_sweep_is_finished (s));
  g_assert_cmpint (ps_sweep_n_steps_done (s), ==, ps_sweep_n_steps (s));
  /* going on reports the rows after those done, each once */
  g_assert_cmpint (rows->len, ==, ps_sweep_n_steps (s) - kept);
  for (guint i = 0; i < rows->len; i++)
    g_assert_cmpint (g_array_index (rows, int, i), ==, kept + (int) i);

  {
    int n[PS_N_SETS];

    fixture_sizes (f, n);
    assert_same_steps (s, ref, n);
  }
  /* progress never ran past the end, and the set added twice counted once */
  for (guint i = 0; i < done->len; i++)
    {
      double d = g_array_index (done, double, i);
      g_assert_cmpfloat (d, <=, 1.0);
      prev = d;
    }
  g_assert_cmpfloat (prev, ==, 1.0);
}

/* Cancels at the @n-th report of the value the one before had: on one worker, the first
 * pass reports after each batch and once more when done, then the validation set's steps
 * after each block of images; so 2 stops them before any block, 3 after the first. */
typedef struct {
  GCancellable *cancellable;
  int           n;
  int           seen;
  double        last;
} CancelRepeat;

static void
cancel_on_repeat (const PsSweepStep *step, double done, gpointer data)
{
  CancelRepeat *c = data;

  c->seen = done == c->last ? c->seen + 1 : 1;
  c->last = done;
  if (c->seen == c->n)
    g_cancellable_cancel (c->cancellable);
}

/* The validation set's steps run ahead of finish, image block by image block, with no
 * state kept between its pass and them: cancelled before any block or after one, they
 * all run again in finish (the state made again from act, the skip records as the pass
 * left them), and the sweep is the uninterrupted one. One worker, in a subprocess: the
 * reports then come in a known order. */
static void
test_resume_ahead (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) ref = NULL;
  int n[PS_N_SETS];

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }
  g_setenv ("PRUNESCOPE_THREADS", "1", TRUE);
  g_assert_cmpint (ps_parallel_n_workers (), ==, 1);
  ref = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  fixture_sizes (f, n);
  /* more than one block of images, or "after one block" would be "after all" */
  g_assert_cmpint (f->sets[PS_SET_VALID]->n, >, 64);
  for (int at = 2; at <= 3; at++)
    {
      g_autoptr (GCancellable) c = g_cancellable_new ();
      CancelRepeat cancel = { c, at, 0, -1 };
      g_autoptr (PsSweep) s = ps_sweep_new (f->model, NULL, &error);

      g_assert_no_error (error);
      g_assert_true (ps_sweep_add_set (s, PS_SET_VALID, f->sets[PS_SET_VALID], cancel_on_repeat,
                                       &cancel, c, &error));
      g_assert_no_error (error);
      g_assert_true (g_cancellable_is_cancelled (c));
      for (int k = PS_SET_TEST; k < PS_N_SETS; k++)
        g_assert_true (ps_sweep_add_set (s, k, f->sets[k], NULL, NULL, NULL, &error));
      g_assert_true (ps_sweep_finish (s, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      assert_same_steps (s, ref, n);
    }
}

static void
test_bad_layers (Fixture *f, gconstpointer data)
{
  const char *bad[] = { "conv_c", "output", "input", "nope" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      PsSweepOptions opt = { bad[i], FALSE };
      PsSweep *s = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, &opt,
                                 NULL, NULL, NULL, &error);
      g_assert_null (s);
      g_assert_nonnull (error);
      g_test_message ("%s: %s", bad[i], error->message);
    }
}

static void
test_labels_out_of_range (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  PsSweep *s;

  f->sets[PS_SET_TEST]->labels[5] = 99;
  s = ps_sweep_run (f->model, (const PsDataset * const *) f->sets, NULL, NULL, NULL, NULL, &error);
  g_assert_null (s);
  g_assert_error (error, PS_ERROR, PS_ERROR_MISMATCH);
}

/* Sets added one at a time (as the CLI does) with their total announced: progress rises
 * once from 0 to 1, each set taking its share of the first pass. */
static void
test_progress_over_sets (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_new (f->model, NULL, &error);
  g_autoptr (GArray) done = g_array_new (FALSE, FALSE, sizeof (double));
  double after_first, prev = 0;
  int total = 0;

  for (int k = 0; k < PS_N_SETS; k++)
    total += f->sets[k]->n;
  ps_sweep_expect_images (s, total);
  g_assert_true (ps_sweep_add_set (s, PS_SET_VALID, f->sets[PS_SET_VALID], record_done, done, NULL, &error));
  after_first = g_array_index (done, double, done->len - 1);
  /* the validation set is 300 of 650 images: about 0.9 * 300 / 650 of the whole */
  g_assert_cmpfloat (after_first, <, 0.5);
  g_assert_cmpfloat (after_first, >, 0.3);
  for (int k = PS_SET_TEST; k < PS_N_SETS; k++)
    g_assert_true (ps_sweep_add_set (s, k, f->sets[k], record_done, done, NULL, &error));
  g_assert_true (ps_sweep_finish (s, record_done, done, NULL, &error));
  g_assert_no_error (error);
  for (guint i = 0; i < done->len; i++)
    {
      double d = g_array_index (done, double, i);
      g_assert_cmpfloat (d, >=, prev);
      g_assert_cmpfloat (d, <=, 1.0);
      prev = d;
    }
  g_assert_cmpfloat (prev, ==, 1.0);
}

/* ---- sets read a chunk at a time ---- */

/* The fixture's sets as files: the validation set grown (more chunks than the reader has
 * buffers, and a last batch of 40) as fractions, stored float; the clean test set 8-bit;
 * the poisoned set float. @tag names the files. */
/* The validation set is grown to 1,000 images, or to 8 batches per worker where there are
 * more than 2, so that a cancel at the first progress report falls mid-pass. */
static int set_files_n[PS_N_SETS] = { 1000, 200, 150 };

static void
write_set_files (Fixture *f, const char *tag, char *paths[PS_N_SETS])
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) big = NULL;

  set_files_n[PS_SET_VALID] = MAX (1000, 8 * 64 * ps_parallel_n_workers () + 40);
  big = ps_test_random_data (f->model, set_files_n[PS_SET_VALID], 1);

  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autofree char *name = g_strdup_printf ("stream-%s-%d.h5", tag, k);
      PsDataset *ds = k == PS_SET_VALID ? big : f->sets[k];
      gsize px = (gsize) ds->n * ds->h * ds->w * ds->c;

      paths[k] = g_build_filename (ps_test_tmpdir (), name, NULL);
      if (k != PS_SET_TEST)
        {
          /* quarters, and one in three pixels left whole */
          ds->f32 = g_new (float, px);
          for (gsize i = 0; i < px; i++)
            ds->f32[i] = ds->u8[i] + (i % 3 == 0 ? 0.0f : 0.25f * (i % 4));
          g_clear_pointer (&ds->u8, g_free);
        }
      g_assert_true (ps_dataset_save (ds, paths[k], &error));
      g_assert_no_error (error);
    }
}

static void
free_paths (char *paths[PS_N_SETS])
{
  for (int k = 0; k < PS_N_SETS; k++)
    g_free (paths[k]);
}

/* The sweep of the sets loaded whole from @paths. */
static PsSweep *
sweep_loaded (Fixture *f, char *paths[PS_N_SETS])
{
  g_autoptr (GError) error = NULL;
  PsDataset *sets[PS_N_SETS];
  PsSweep *s;

  for (int k = 0; k < PS_N_SETS; k++)
    {
      sets[k] = ps_dataset_load (paths[k], &error);
      g_assert_no_error (error);
    }
  s = ps_sweep_run (f->model, (const PsDataset * const *) sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  for (int k = 0; k < PS_N_SETS; k++)
    ps_dataset_free (sets[k]);
  return s;
}

static PsDatasetStream *
open_ok (const char *path)
{
  g_autoptr (GError) error = NULL;
  PsDatasetStream *st = ps_dataset_stream_open (path, &error);

  g_assert_no_error (error);
  return st;
}

/* Every row, channel mean, order and prediction of every set at every step. */
static void
assert_same_sweep (const PsSweep *a, const PsSweep *b)
{
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_assert_true (ps_sweep_has_set (a, k) && ps_sweep_has_set (b, k));
      for (int c = 0; c < ps_sweep_n_channels (a); c++)
        g_assert_cmpfloat_with_epsilon (ps_sweep_channel_means (a, k)[c],
                                        ps_sweep_channel_means (b, k)[c], 1e-9);
    }
  assert_same_steps (a, b, set_files_n);
}

/* Streamed sets give the sweep of the same sets loaded whole, bit for bit. */
static void
test_stream_same (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  char *paths[PS_N_SETS];
  g_autoptr (PsSweep) ref = NULL;
  g_autoptr (PsSweep) s = NULL;
  g_autoptr (GArray) done = g_array_new (FALSE, FALSE, sizeof (double));
  double prev = 0;

  write_set_files (f, "same", paths);
  ref = sweep_loaded (f, paths);
  s = ps_sweep_new (f->model, NULL, &error);
  ps_sweep_expect_images (s, set_files_n[0] + set_files_n[1] + set_files_n[2]);
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autoptr (PsDatasetStream) st = open_ok (paths[k]);

      g_assert_true (ps_sweep_add_set_stream (s, k, st, record_done, done, NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_true (ps_sweep_finish (s, record_done, done, NULL, &error));
  g_assert_no_error (error);
  assert_same_sweep (s, ref);
  /* progress rose once from 0 to 1 */
  for (guint i = 0; i < done->len; i++)
    {
      double d = g_array_index (done, double, i);
      g_assert_cmpfloat (d, >=, prev);
      prev = d;
    }
  g_assert_cmpfloat (prev, ==, 1.0);
  free_paths (paths);
}

/* Fails a set mid-stream with @error_message (when not NULL: a prefix), checks that the
 * sweep did not take it, then adds the good file's stream. */
static void
add_fails_then_again (PsSweep *s, PsSetKind k, PsDatasetStream *bad, const char *good,
                      const char *error_message, gboolean exact)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDatasetStream) st = open_ok (good);

  g_assert_false (ps_sweep_add_set_stream (s, k, bad, NULL, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  if (exact)
    g_assert_cmpstr (error->message, ==, error_message);
  else
    g_assert_true (g_str_has_prefix (error->message, error_message));
  g_assert_null (strchr (error->message, '\n'));
  g_assert_false (ps_sweep_has_set (s, k));
  g_clear_error (&error);
  g_assert_true (ps_sweep_add_set_stream (s, k, st, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* A NaN after the reader's buffers have come round, and a damaged chunk of a deflated
 * file: the one-line error, the sweep left able to take the set again, and then the
 * sweep of the good files exactly. */
static void
test_stream_bad_chunk (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  char *paths[PS_N_SETS];
  g_autofree char *nan_path = g_build_filename (ps_test_tmpdir (), "stream-nan.h5", NULL);
  g_autofree char *bad_path = g_build_filename (ps_test_tmpdir (), "stream-damaged.h5", NULL);
  g_autofree char *message = g_strdup_printf ("%s: image 900 has a NaN or infinite pixel", nan_path);
  g_autofree char *prefix = g_strdup_printf ("%s: ", bad_path);
  g_autofree char *bytes = NULL;
  g_autoptr (PsSweep) ref = NULL;
  g_autoptr (PsSweep) s = NULL;
  g_autoptr (PsDatasetStream) nan = NULL;
  g_autoptr (PsDatasetStream) bad = NULL;
  gsize len;

  write_set_files (f, "bad", paths);
  ref = sweep_loaded (f, paths);
  {
    g_autoptr (PsDataset) ds = ps_dataset_load (paths[PS_SET_VALID], &error);

    g_assert_no_error (error);
    ds->f32[(gsize) 900 * ds->h * ds->w * ds->c + 17] = NAN;
    g_assert_true (ps_dataset_save (ds, nan_path, &error));
  }
  /* the poisoned set's file with bytes overwritten in the middle of its pixels */
  g_assert_true (g_file_get_contents (paths[PS_SET_POISONED], &bytes, &len, NULL));
  memset (bytes + len / 2, 0x55, 256);
  g_assert_true (g_file_set_contents (bad_path, bytes, len, NULL));

  s = ps_sweep_new (f->model, NULL, &error);
  nan = open_ok (nan_path);
  add_fails_then_again (s, PS_SET_VALID, nan, paths[PS_SET_VALID], message, TRUE);
  bad = open_ok (bad_path);
  add_fails_then_again (s, PS_SET_POISONED, bad, paths[PS_SET_POISONED], prefix, FALSE);
  {
    g_autoptr (PsDatasetStream) st = open_ok (paths[PS_SET_TEST]);

    g_assert_true (ps_sweep_add_set_stream (s, PS_SET_TEST, st, NULL, NULL, NULL, &error));
  }
  g_assert_true (ps_sweep_finish (s, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  assert_same_sweep (s, ref);
  free_paths (paths);
}

static void
cancel_now (const PsSweepStep *step, double done, gpointer data)
{
  g_cancellable_cancel (data);
}

/* Cancelled mid-stream (at the first progress report, the reader a chunk ahead): the set
 * is not taken, and the same stream added again gives the uninterrupted sweep. */
static void
test_stream_cancel (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GCancellable) c = g_cancellable_new ();
  char *paths[PS_N_SETS];
  PsDatasetStream *st[PS_N_SETS];
  g_autoptr (PsSweep) ref = NULL;
  g_autoptr (PsSweep) s = NULL;

  write_set_files (f, "cancel", paths);
  ref = sweep_loaded (f, paths);
  s = ps_sweep_new (f->model, NULL, &error);
  for (int k = 0; k < PS_N_SETS; k++)
    st[k] = open_ok (paths[k]);
  g_assert_false (ps_sweep_add_set_stream (s, PS_SET_VALID, st[PS_SET_VALID], cancel_now, c, c, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_false (ps_sweep_has_set (s, PS_SET_VALID));
  g_clear_error (&error);
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_assert_true (ps_sweep_add_set_stream (s, k, st[k], NULL, NULL, NULL, &error));
      g_assert_no_error (error);
      ps_dataset_stream_free (st[k]);
    }
  g_assert_true (ps_sweep_finish (s, NULL, NULL, NULL, &error));
  assert_same_sweep (s, ref);
  free_paths (paths);
}

/* Sets added after the validation set run every step with their first pass, a batch at
 * a time (the order is known by then); added before it, they wait for ps_sweep_finish().
 * Both ways give the same sweep, bit for bit: on the rank-one fronts and on the masked
 * layer, increasing and decreasing, with steps in one group and in several. */
static void
test_fused_sets (Fixture *f, gconstpointer data)
{
  const char *layers[] = { "pool_b", "conv_b" };

  for (guint l = 0; l < G_N_ELEMENTS (layers); l++)
    for (int decreasing = 0; decreasing < 2; decreasing++)
      {
        g_autoptr (GError) error = NULL;
        PsSweepOptions opt = { layers[l], decreasing };
        g_autoptr (PsSweep) fused = ps_sweep_run (f->model, (const PsDataset * const *) f->sets,
                                                  &opt, NULL, NULL, NULL, &error);
        g_autoptr (PsSweep) later = ps_sweep_new (f->model, &opt, &error);
        const PsSetKind order[] = { PS_SET_POISONED, PS_SET_TEST, PS_SET_VALID };
        int n[PS_N_SETS];

        g_assert_no_error (error);
        for (guint k = 0; k < G_N_ELEMENTS (order); k++)
          g_assert_true (ps_sweep_add_set (later, order[k], f->sets[order[k]], NULL, NULL, NULL, &error));
        g_assert_true (ps_sweep_finish (later, NULL, NULL, NULL, &error));
        g_assert_no_error (error);
        fixture_sizes (f, n);
        assert_same_steps (fused, later, n);
      }
}

/* A DeepID's first layer takes a file of bytes image by image, each converted as it
 * reads it (the demo's case; other models get the batch converted): the sweep of the
 * streamed sets is the loaded sets' sweep, bit for bit. */
static void
test_stream_bytes_deepid (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = ps_test_deepid_model (11, 6, -0.3);
  g_autoptr (PsSweep) ref = NULL;
  g_autoptr (PsSweep) s = NULL;
  int n[PS_N_SETS] = { 200, 130, 70 };
  PsDataset *sets[PS_N_SETS];
  char *paths[PS_N_SETS];

  m->input_scale = 1.0 / 255;
  {
    PsPlan *plan = ps_plan_new (m, 8);

    ps_plan_set_fused (plan, TRUE);
    g_assert_true (ps_plan_reads_planar (plan));
    ps_plan_free (plan);
  }
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autofree char *name = g_strdup_printf ("stream-bytes-%d.h5", k);

      sets[k] = ps_test_random_data (m, n[k], 40 + k);
      paths[k] = g_build_filename (ps_test_tmpdir (), name, NULL);
      g_assert_true (ps_dataset_save (sets[k], paths[k], &error));
      g_assert_no_error (error);
    }
  ref = ps_sweep_run (m, (const PsDataset * const *) sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  s = ps_sweep_new (m, NULL, &error);
  g_assert_no_error (error);
  for (int k = 0; k < PS_N_SETS; k++)
    {
      g_autoptr (PsDatasetStream) st = open_ok (paths[k]);

      g_assert_true (ps_dataset_stream_is_u8 (st));
      g_assert_true (ps_sweep_add_set_stream (s, k, st, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_true (ps_sweep_finish (s, NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  assert_same_steps (ref, s, n);
  for (int k = 0; k < PS_N_SETS; k++)
    {
      ps_dataset_free (sets[k]);
      g_free (paths[k]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
#define ADD_V(path, v, fn) g_test_add (path, Fixture, &v, fixture_setup, fn, fixture_teardown)
  ADD ("/sweep/naive/linear-front", test_linear_front);
  ADD_V ("/sweep/naive/conv-front-same-padding", strided, test_conv_front_same_padding);
  ADD_V ("/sweep/naive/relu-output", relu_out, test_output_activations);
  ADD_V ("/sweep/naive/linear-output", linear_out, test_output_activations);
  ADD ("/sweep/naive/mask-front", test_mask_front);
  ADD_V ("/sweep/naive/many-channels", wide, test_many_channels);
  ADD ("/sweep/fused-sets", test_fused_sets);
  ADD_V ("/sweep/fused-sets/many-channels", wide, test_fused_sets);
  ADD ("/sweep/stop-rule", test_default_layer_and_stop);
  ADD ("/sweep/decreasing", test_decreasing);
  ADD ("/sweep/cancel", test_cancel);
  ADD ("/sweep/resume", test_resume);
  ADD_V ("/sweep/resume-between-groups", wide, test_resume);
  ADD ("/sweep/resume-steps-ahead", test_resume_ahead);
  ADD_V ("/sweep/resume-steps-ahead/many-channels", wide, test_resume_ahead);
  ADD ("/sweep/progress-over-sets", test_progress_over_sets);
  ADD ("/sweep/bad-layers", test_bad_layers);
  ADD ("/sweep/labels-out-of-range", test_labels_out_of_range);
  ADD ("/sweep/stream/same", test_stream_same);
  ADD ("/sweep/stream/bad-chunk", test_stream_bad_chunk);
  ADD ("/sweep/stream/cancel", test_stream_cancel);
  g_test_add_func ("/sweep/stream/bytes-deepid", test_stream_bytes_deepid);
  return g_test_run ();
}
