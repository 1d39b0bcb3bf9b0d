/* test-train.c: the training engine — every layer's backward pass and the whole model's
 * loss gradient against finite differences, then training itself: it learns, a seed gives
 * one model, and frozen channels stay exactly zero */
#define G_LOG_DOMAIN "test-train"

#include <math.h>
#include <string.h>

#include "ps-infer.h"
#include "ps-plan.h"
#include "ps-train-private.h"
#include "ps-test-util.h"

#define EPS 1e-3

/* input -> the layer under test (fed @n_inputs times by the input) -> flatten -> dense */
static PsModel *
one_layer_model (const char *input_shape, const char *cls, const char *config, int n_inputs)
{
  g_autoptr (GString) s = g_string_new (NULL);
  g_autoptr (GError) error = NULL;
  PsModel *m;

  g_string_append_printf (s,
    "{\"class_name\": \"Functional\", \"config\": {\"name\": \"one\", \"layers\": ["
    "{\"class_name\": \"InputLayer\", \"name\": \"input\", \"config\": {\"name\": \"input\", "
    "\"batch_input_shape\": [null, %s]}, \"inbound_nodes\": []},"
    "{\"class_name\": \"%s\", \"name\": \"test\", \"config\": {\"name\": \"test\"%s%s}, "
    "\"inbound_nodes\": [[", input_shape, cls, *config ? ", " : "", config);
  for (int j = 0; j < n_inputs; j++)
    g_string_append_printf (s, "%s[\"input\", 0, 0, {}]", j ? ", " : "");
  g_string_append (s, "]]},"
    "{\"class_name\": \"Flatten\", \"name\": \"flat\", \"config\": {\"name\": \"flat\"}, \"inbound_nodes\": [[[\"test\", 0, 0, {}]]]},"
    "{\"class_name\": \"Dense\", \"name\": \"output\", \"config\": {\"name\": \"output\", \"units\": 2, \"activation\": \"softmax\"}, "
    "\"inbound_nodes\": [[[\"flat\", 0, 0, {}]]]}"
    "], \"input_layers\": [[\"input\", 0, 0]], \"output_layers\": [[\"output\", 0, 0]]}}");
  m = ps_model_new_from_config (s->str, &error);
  g_assert_no_error (error);
  ps_model_init_weights (m, 3);
  /* Non-zero biases, so that their gradients are exercised. */
  for (gsize k = 0; k < m->layers[1]->bias_len; k++)
    m->layers[1]->bias[k] = 0.1f * (float) ((int) (k % 5) - 2);
  return m;
}

typedef enum {
  INPUT_UNIFORM,   /* uniform in [-1, 1] */
  INPUT_DISTINCT,  /* all values at least 5 EPS apart: no max changes under a nudge */
  INPUT_AWAY,      /* at least 5 EPS away from zero: no ReLU kink under a nudge */
} InputKind;

typedef struct {
  const PsLayer *l;
  int            n;
  float         *x[PS_MAX_INPUTS];
  float         *out, *col, *mask;
  double        *r;      /* the loss is sum(r * output) */
} Check;

static double
loss_of (Check *c)
{
  const float *ins[PS_MAX_INPUTS];
  gsize size = (gsize) c->n * ps_shape_size (c->l->out);
  double loss = 0.0;

  for (int j = 0; j < c->l->n_inputs; j++)
    ins[j] = c->x[j];
  if (c->l->kind == PS_LAYER_DROPOUT)
    for (gsize k = 0; k < size; k++)
      c->out[k] = c->x[0][k] * c->mask[k];
  else
    ps_layer_forward (c->l, c->n, ins, NULL, c->out, c->col);
  for (gsize k = 0; k < size; k++)
    loss += c->r[k] * c->out[k];
  return loss;
}

/* Sign pattern of the output: a nudge that flips it crossed a kink (ReLU at zero). */
static guint
kink_signature (Check *c)
{
  gsize size = (gsize) c->n * ps_shape_size (c->l->out);
  guint h = 0;

  for (gsize k = 0; k < size; k++)
    h = h * 31 + (c->out[k] > 0.0f);
  return h;
}

/* Compares d(loss)/d(v[i]) with the analytic gradient @grad for every i; returns how many
 * coordinates were skipped because the nudge crossed a kink. */
static int
compare_all (Check *c, float *v, gsize len, const float *grad, const char *what)
{
  int skipped = 0;
  guint sig0;

  loss_of (c);
  sig0 = kink_signature (c);
  for (gsize i = 0; i < len; i++)
    {
      float keep = v[i];
      double up, down, num;
      guint s_up, s_down;

      v[i] = keep + (float) EPS;
      up = loss_of (c);
      s_up = kink_signature (c);
      v[i] = keep - (float) EPS;
      down = loss_of (c);
      s_down = kink_signature (c);
      v[i] = keep;
      if (s_up != sig0 || s_down != sig0)
        {
          skipped++;
          continue;
        }
      num = (up - down) / (2 * EPS);
      if (fabs (num - grad[i]) > 2e-3 + 1e-2 * fabs (num))
        g_error ("%s %s[%" G_GSIZE_FORMAT "]: backward %g, finite differences %g",
                 ps_layer_kind_name (c->l->kind), what, i, grad[i], num);
    }
  return skipped;
}

static void
fill_input (float *x, gsize len, InputKind kind, GRand *rand)
{
  for (gsize i = 0; i < len; i++)
    {
      double v = g_rand_double_range (rand, -1, 1);

      if (kind == INPUT_AWAY)
        v = (v < 0 ? -1 : 1) * (5 * EPS + fabs (v));
      x[i] = (float) v;
    }
  if (kind == INPUT_DISTINCT)
    {
      /* A shuffled ramp. */
      for (gsize i = 0; i < len; i++)
        x[i] = (float) (5 * EPS * (double) i - 2.5 * EPS * (double) len);
      for (gsize i = len - 1; i > 0; i--)
        {
          gsize j = g_rand_int_range (rand, 0, (int) i + 1);
          float t = x[i];
          x[i] = x[j], x[j] = t;
        }
    }
}

static void
check_layer (const char *input_shape, const char *cls, const char *config, int n_inputs,
             InputKind kind)
{
  g_autoptr (PsModel) m = one_layer_model (input_shape, cls, config, n_inputs);
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  PsLayer *l = m->layers[1];
  Check c = { l, 3 };
  gsize in_size = c.n * ps_shape_size (l->in), out_size = c.n * ps_shape_size (l->out);
  g_autofree float *d = g_new (float, out_size);
  g_autofree float *dk = g_new0 (float, MAX (l->kernel_len, 1));
  g_autofree float *db = g_new0 (float, MAX (l->bias_len, 1));
  g_autofree float *scratch = g_new0 (float, MAX (ps_layer_scratch_size (l, c.n), 1));
  float *d_in[PS_MAX_INPUTS];
  const float *ins[PS_MAX_INPUTS];
  int skipped = 0, checked = 0;

  c.out = g_new (float, out_size);
  c.col = g_new0 (float, MAX (ps_layer_scratch_size (l, c.n), 1));
  c.mask = g_new (float, out_size);
  c.r = g_new (double, out_size);
  _ps_dropout_mask (l->rate, 5, out_size, c.mask);
  for (gsize k = 0; k < out_size; k++)
    c.r[k] = g_rand_double_range (rand, -1, 1);
  for (int j = 0; j < n_inputs; j++)
    {
      c.x[j] = g_new (float, in_size);
      fill_input (c.x[j], in_size, kind, rand);
      d_in[j] = g_new0 (float, in_size);
      ins[j] = c.x[j];
    }

  loss_of (&c);
  for (gsize k = 0; k < out_size; k++)
    d[k] = (float) c.r[k];
  _ps_layer_backward (l, c.n, ins, c.out, d, d_in, dk, db, c.col, scratch, c.mask, FALSE);

  for (int j = 0; j < n_inputs; j++)
    {
      skipped += compare_all (&c, c.x[j], in_size, d_in[j], "input");
      checked += in_size;
    }
  if (ps_layer_has_weights (l))
    {
      skipped += compare_all (&c, l->kernel, l->kernel_len, dk, "kernel");
      skipped += compare_all (&c, l->bias, l->bias_len, db, "bias");
      checked += l->kernel_len + l->bias_len;
    }
  g_test_message ("%s: %d of %d coordinates checked", cls, checked - skipped, checked);
  g_assert_cmpint (skipped, <, checked / 10);

  for (int j = 0; j < n_inputs; j++)
    {
      g_free (c.x[j]);
      g_free (d_in[j]);
    }
  g_free (c.out);
  g_free (c.col);
  g_free (c.mask);
  g_free (c.r);
}

static void
test_conv_valid (void)
{
  check_layer ("7, 6, 3", "Conv2D", "\"filters\": 4, \"kernel_size\": [3, 3], \"activation\": \"relu\"",
               1, INPUT_UNIFORM);
}

static void
test_conv_same_strided (void)
{
  check_layer ("7, 6, 2", "Conv2D", "\"filters\": 3, \"kernel_size\": [3, 2], \"strides\": [2, 2], "
               "\"padding\": \"same\", \"activation\": \"linear\"", 1, INPUT_UNIFORM);
}

static void
test_conv_pointwise (void)
{
  check_layer ("4, 3, 5", "Conv2D", "\"filters\": 3, \"kernel_size\": [1, 1], \"activation\": \"linear\"",
               1, INPUT_UNIFORM);
}

static void
test_maxpool (void)
{
  check_layer ("6, 5, 2", "MaxPooling2D", "\"pool_size\": [2, 2], \"padding\": \"valid\"", 1, INPUT_DISTINCT);
  check_layer ("5, 5, 2", "MaxPooling2D", "\"pool_size\": [3, 3], \"strides\": [2, 2], \"padding\": \"same\"",
               1, INPUT_DISTINCT);
  /* four channels at a time, and the ones left: overlapping windows, padding */
  check_layer ("6, 5, 5", "MaxPooling2D", "\"pool_size\": [2, 2], \"padding\": \"valid\"", 1, INPUT_DISTINCT);
  check_layer ("5, 6, 9", "MaxPooling2D", "\"pool_size\": [3, 3], \"strides\": [2, 1], \"padding\": \"same\"",
               1, INPUT_DISTINCT);
}

static void
test_dense (void)
{
  check_layer ("1, 1, 12", "Dense", "\"units\": 5, \"activation\": \"relu\"", 1, INPUT_UNIFORM);
  check_layer ("1, 1, 7", "Dense", "\"units\": 4, \"activation\": \"softmax\"", 1, INPUT_UNIFORM);
}

static void
test_flatten_add (void)
{
  check_layer ("3, 2, 4", "Flatten", "", 1, INPUT_UNIFORM);
  check_layer ("3, 2, 4", "Add", "", 2, INPUT_UNIFORM);
}

static void
test_activation (void)
{
  check_layer ("3, 2, 4", "Activation", "\"activation\": \"relu\"", 1, INPUT_AWAY);
  check_layer ("1, 1, 6", "Activation", "\"activation\": \"softmax\"", 1, INPUT_UNIFORM);
  /* on a feature map, softmax runs over the channels at every position */
  check_layer ("3, 2, 4", "Activation", "\"activation\": \"softmax\"", 1, INPUT_UNIFORM);
  check_layer ("4, 3, 2", "Conv2D", "\"filters\": 3, \"kernel_size\": [2, 2], \"activation\": \"softmax\"",
               1, INPUT_UNIFORM);
}

static void
test_dropout (void)
{
  g_autofree float *mask = g_new (float, 10000);
  int zeros = 0;

  check_layer ("3, 2, 4", "Dropout", "\"rate\": 0.5", 1, INPUT_UNIFORM);
  _ps_dropout_mask (0.3, 9, 10000, mask);
  for (int i = 0; i < 10000; i++)
    {
      zeros += mask[i] == 0.0f;
      g_assert_true (mask[i] == 0.0f || fabsf (mask[i] - 1.0f / 0.7f) < 1e-6f);
    }
  g_assert_cmpint (zeros, >, 2700);
  g_assert_cmpint (zeros, <, 3300);
}

/* The whole small model (two branches, add, dropout, softmax) with the cross-entropy loss. */
static void
test_model_gradient (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (4, 5);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 8, 2);
  g_autoptr (PsTrainer) t = NULL;
  gsize img = ps_shape_size (m->layers[m->input]->out);
  g_autofree float *x = g_new (float, img * ds->n);
  PsTrainOptions opt;
  int checked = 0, bad = 0;

  ps_train_options_init (&opt);
  opt.batch_size = ds->n;
  t = ps_trainer_new (m, &opt);
  ps_dataset_get_batch (ds, 0, ds->n, m->input_scale, x);
  for (int i = 0; i < m->n_layers; i++)
    {
      PsLayer *l = m->layers[i];
      const float *dk, *db;
      g_autofree float *grad = NULL, *bgrad = NULL;

      if (!ps_layer_has_weights (l))
        continue;
      _ps_trainer_loss_grad (t, x, ds->labels, ds->n, 17);
      _ps_trainer_gradient (t, i, &dk, &db);
      grad = g_memdup2 (dk, sizeof (float) * l->kernel_len);
      bgrad = g_memdup2 (db, sizeof (float) * l->bias_len);
      /* Every weight and every bias, nudged a little: the loss has kinks (ReLU, max). */
      for (gsize k = 0; k < l->kernel_len + l->bias_len; k++)
        {
          gboolean is_bias = k >= l->kernel_len;
          float *v = is_bias ? &l->bias[k - l->kernel_len] : &l->kernel[k];
          double want = is_bias ? bgrad[k - l->kernel_len] : grad[k];
          float keep = *v;
          double up, down, num;

          *v = keep + 1e-4f;
          up = _ps_trainer_loss_grad (t, x, ds->labels, ds->n, 17);
          *v = keep - 1e-4f;
          down = _ps_trainer_loss_grad (t, x, ds->labels, ds->n, 17);
          *v = keep;
          num = (up - down) / 2e-4;
          checked++;
          if (fabs (num - want) > 1e-3 + 3e-2 * fabs (num))
            {
              g_test_message ("%s %s[%" G_GSIZE_FORMAT "]: backward %g, finite differences %g",
                              l->name, is_bias ? "bias" : "kernel",
                              is_bias ? k - l->kernel_len : k, want, num);
              bad++;
            }
        }
    }
  /* A nudge may cross a ReLU kink or change a window's maximum now and then. */
  g_assert_cmpint (bad, <=, checked / 20);
}

static double
accuracy (const PsModel *m, const PsDataset *ds)
{
  g_autofree int *classes = g_new (int, ds->n);

  g_assert_true (ps_infer_classes (m, ds, classes, NULL, NULL));
  return ps_infer_accuracy (classes, ds->labels, ds->n);
}

/* A learnable task: the class is which quadrant holds the bright square. */
static PsDataset *
quadrant_data (const PsModel *m, int n, guint32 seed)
{
  PsDataset *ds = ps_test_random_data (m, n, seed);
  PsShape in = m->layers[m->input]->out;
  gsize img = ps_shape_size (in);
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  memset (ds->u8, 0, img * n);
  for (int i = 0; i < n; i++)
    {
      int q = g_rand_int_range (rand, 0, 4);
      int y0 = (q / 2) * in.h / 2 + g_rand_int_range (rand, 0, in.h / 2 - 2);
      int x0 = (q % 2) * in.w / 2 + g_rand_int_range (rand, 0, in.w / 2 - 2);

      for (int y = y0; y < y0 + 3; y++)
        for (int x = x0; x < x0 + 3; x++)
          for (int c = 0; c < in.c; c++)
            ds->u8[i * img + ((gsize) y * in.w + x) * in.c + c] = 255;
      ds->labels[i] = q;
    }
  return ds;
}

static PsModel *
train_small (PsOptimizer optimizer, guint32 seed, int epochs, const PsDataset *ds, double *loss)
{
  PsModel *m = ps_test_small_model (1, 4);
  g_autoptr (PsTrainer) t = NULL;
  g_autoptr (GError) error = NULL;
  PsTrainOptions opt;

  ps_model_init_weights (m, seed);
  ps_train_options_init (&opt);
  opt.optimizer = optimizer;
  opt.lr = optimizer == PS_OPTIMIZER_SGD ? 0.05 : 3e-3;
  opt.batch_size = 32;
  opt.seed = seed;
  t = ps_trainer_new (m, &opt);
  for (int e = 0; e < epochs; e++)
    {
      g_assert_true (ps_trainer_epoch (t, ds, NULL, NULL, NULL, &loss[e], &error));
      g_assert_no_error (error);
    }
  return m;
}

static void
check_learns (PsOptimizer optimizer)
{
  g_autoptr (PsModel) probe = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) train = quadrant_data (probe, 600, 5);
  g_autoptr (PsDataset) test = quadrant_data (probe, 200, 6);
  double loss[6];
  g_autoptr (PsModel) m = train_small (optimizer, 2, 6, train, loss);

  g_test_message ("loss %.3f -> %.3f, test accuracy %.1f %%", loss[0], loss[5], accuracy (m, test));
  g_assert_cmpfloat (loss[5], <, 0.5 * loss[0]);
  g_assert_cmpfloat (accuracy (m, test), >, 90.0);
}

static void
test_learns_adam (void)
{
  check_learns (PS_OPTIMIZER_ADAM);
}

static void
test_learns_sgd (void)
{
  check_learns (PS_OPTIMIZER_SGD);
}

static gboolean
same_weights (const PsModel *a, const PsModel *b)
{
  for (int i = 0; i < a->n_layers; i++)
    if (ps_layer_has_weights (a->layers[i])
        && (memcmp (a->layers[i]->kernel, b->layers[i]->kernel, a->layers[i]->kernel_len * 4) != 0
            || memcmp (a->layers[i]->bias, b->layers[i]->bias, a->layers[i]->bias_len * 4) != 0))
      return FALSE;
  return TRUE;
}

static void
test_deterministic (void)
{
  g_autoptr (PsModel) probe = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) train = quadrant_data (probe, 300, 5);
  double loss[2];
  g_autoptr (PsModel) a = train_small (PS_OPTIMIZER_ADAM, 7, 2, train, loss);
  g_autoptr (PsModel) b = train_small (PS_OPTIMIZER_ADAM, 7, 2, train, loss);
  g_autoptr (PsModel) c = train_small (PS_OPTIMIZER_ADAM, 8, 2, train, loss);

  g_assert_true (same_weights (a, b));
  g_assert_false (same_weights (a, c));
}

static void
test_freeze (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsModel) before = NULL;
  g_autoptr (PsDataset) train = quadrant_data (m, 200, 5);
  g_autoptr (PsTrainer) t = NULL;
  PsTrainOptions opt;
  int layer = ps_model_find_layer (m, "conv_b");
  const int frozen[] = { 1, 4, 6 };
  PsLayer *l = m->layers[layer];
  double loss;

  ps_train_options_init (&opt);
  t = ps_trainer_new (m, &opt);
  ps_trainer_freeze_channels (t, layer, frozen, G_N_ELEMENTS (frozen));
  before = ps_model_copy (m);
  g_assert_true (ps_trainer_epoch (t, train, NULL, NULL, NULL, &loss, NULL));
  for (gsize r = 0; r < l->kernel_len / l->out.c; r++)
    for (int c = 0; c < l->out.c; c++)
      {
        gboolean is_frozen = c == 1 || c == 4 || c == 6;
        if (is_frozen)
          g_assert_true (l->kernel[r * l->out.c + c] == 0.0f);
      }
  for (guint k = 0; k < G_N_ELEMENTS (frozen); k++)
    g_assert_true (l->bias[frozen[k]] == 0.0f);
  /* The other channels did learn. */
  g_assert_true (l->bias[0] != before->layers[layer]->bias[0]);
  g_assert_false (same_weights (m, before));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/train/backward/conv-valid", test_conv_valid);
  g_test_add_func ("/train/backward/conv-same-strided", test_conv_same_strided);
  g_test_add_func ("/train/backward/conv-pointwise", test_conv_pointwise);
  g_test_add_func ("/train/backward/maxpool", test_maxpool);
  g_test_add_func ("/train/backward/dense", test_dense);
  g_test_add_func ("/train/backward/flatten-add", test_flatten_add);
  g_test_add_func ("/train/backward/activation", test_activation);
  g_test_add_func ("/train/backward/dropout", test_dropout);
  g_test_add_func ("/train/model-gradient", test_model_gradient);
  g_test_add_func ("/train/learns/adam", test_learns_adam);
  g_test_add_func ("/train/learns/sgd", test_learns_sgd);
  g_test_add_func ("/train/deterministic", test_deterministic);
  g_test_add_func ("/train/freeze", test_freeze);
  return g_test_run ();
}
