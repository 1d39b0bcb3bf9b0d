/* test-plan.c: every forward op of the plan against a naive second path (plain loops in
 * double), through the direct kernels and through im2col + sgemm, then a whole network,
 * then argmax and its margin */
#define G_LOG_DOMAIN "test-plan"

#include <float.h>
#include <math.h>
#include <string.h>

#include "ps-conv.h"
#include "ps-plan.h"
#include "ps-test-util.h"
#include "ps-winograd.h"

#define BATCH 3
#define RTOL  1e-4

/* ---- a tensor in double, NHWC ---- */

typedef struct {
  int     n, h, w, c;
  double *v;
} Tensor;

static Tensor *
tensor_new (int n, int h, int w, int c)
{
  Tensor *t = g_new0 (Tensor, 1);

  *t = (Tensor) { n, h, w, c, g_new0 (double, (gsize) n * h * w * c) };
  return t;
}

static void
tensor_free (Tensor *t)
{
  if (t == NULL)
    return;
  g_free (t->v);
  g_free (t);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Tensor, tensor_free)

static gsize
tensor_size (const Tensor *t)
{
  return (gsize) t->n * t->h * t->w * t->c;
}

static double *
at (const Tensor *t, int b, int y, int x, int c)
{
  return &t->v[(((gsize) b * t->h + y) * t->w + x) * t->c + c];
}

static Tensor *
tensor_copy (const Tensor *t)
{
  Tensor *o = tensor_new (t->n, t->h, t->w, t->c);

  memcpy (o->v, t->v, tensor_size (t) * sizeof (double));
  return o;
}

/* ---- building models from small Keras configs ---- */

static void
add_layer (GString *json, const char *cls, const char *name, const char *config,
           const char *inputs)
{
  g_auto (GStrv) in = g_strsplit (inputs ? inputs : "", ",", -1);

  g_string_append_printf (json, "%s{\"class_name\": \"%s\", \"name\": \"%s\", "
                          "\"config\": {\"name\": \"%s\"%s%s}, \"inbound_nodes\": [",
                          json->str[json->len - 1] == '[' ? "" : ", ", cls, name, name,
                          config ? ", " : "", config ? config : "");
  if (inputs != NULL)
    {
      g_string_append (json, "[");
      for (guint i = 0; in[i] != NULL; i++)
        g_string_append_printf (json, "%s[\"%s\", 0, 0, {}]", i ? ", " : "", in[i]);
      g_string_append (json, "]");
    }
  g_string_append (json, "]}");
}

static GString *
model_begin (int h, int w, int c)
{
  GString *json = g_string_new ("{\"class_name\": \"Functional\", \"config\": {\"name\": \"t\", \"layers\": [");
  g_autofree char *shape = g_strdup_printf ("\"batch_input_shape\": [null, %d, %d, %d]", h, w, c);

  add_layer (json, "InputLayer", "input", shape, NULL);
  return json;
}

/* Ends with Flatten + Dense "output" after @last, and builds the model with seeded
 * random weights. */
static PsModel *
model_end (GString *json, const char *last, int classes, guint32 seed)
{
  g_autofree char *units = g_strdup_printf ("\"units\": %d, \"activation\": \"softmax\"", classes);
  g_autoptr (GError) error = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  PsModel *m;

  if (last != NULL)
    {
      add_layer (json, "Flatten", "flat_out", NULL, last);
      add_layer (json, "Dense", "output", units, "flat_out");
    }
  g_string_append (json, "], \"input_layers\": [[\"input\", 0, 0]], "
                         "\"output_layers\": [[\"output\", 0, 0]]}}");
  m = ps_model_new_from_config (json->str, &error);
  g_assert_no_error (error);
  g_assert_nonnull (m);
  for (int i = 0; i < m->n_layers; i++)
    {
      PsLayer *l = m->layers[i];

      if (!ps_layer_has_weights (l))
        continue;
      l->kernel = g_new (float, l->kernel_len);
      l->bias = g_new (float, l->bias_len);
      for (gsize k = 0; k < l->kernel_len; k++)
        l->kernel[k] = (float) g_rand_double_range (rand, -1, 1);
      for (gsize k = 0; k < l->bias_len; k++)
        l->bias[k] = (float) g_rand_double_range (rand, -0.5, 0.5);
    }
  g_string_free (json, TRUE);
  return m;
}

/* Random input in [lo, hi) written to the plan (as float) and kept in double. */
static Tensor *
random_input (const PsModel *m, PsPlan *plan, int n, double lo, double hi, guint32 seed)
{
  PsShape s = m->layers[m->input]->out;
  Tensor *t = tensor_new (n, s.h, s.w, s.c);
  float *buf = ps_plan_output (plan, m->input);
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  for (gsize i = 0; i < tensor_size (t); i++)
    {
      buf[i] = (float) g_rand_double_range (rand, lo, hi);
      t->v[i] = buf[i];
    }
  return t;
}

/* A plan buffer read back as a tensor of @layer's shape. */
static Tensor *
plan_tensor (const PsModel *m, PsPlan *plan, int layer, int n)
{
  PsShape s = m->layers[layer]->out;
  Tensor *t = tensor_new (n, s.h, s.w, s.c);
  const float *buf = ps_plan_output (plan, layer);

  for (gsize i = 0; i < tensor_size (t); i++)
    t->v[i] = buf[i];
  return t;
}

static void
assert_close (const Tensor *got, const Tensor *want, double rtol)
{
  double worst = 0;
  gsize worst_at = 0;

  g_assert_cmpint (got->n, ==, want->n);
  g_assert_cmpint (got->h, ==, want->h);
  g_assert_cmpint (got->w, ==, want->w);
  g_assert_cmpint (got->c, ==, want->c);
  for (gsize i = 0; i < tensor_size (want); i++)
    {
      double err = fabs (got->v[i] - want->v[i]) / MAX (1.0, fabs (want->v[i]));
      if (!(err <= worst))
        worst = err, worst_at = i;
    }
  if (worst > rtol)
    g_test_message ("element %" G_GSIZE_FORMAT ": %g, expected %g", worst_at,
                    got->v[worst_at], want->v[worst_at]);
  g_assert_cmpfloat (worst, <=, rtol);
}

/* ---- the naive ops ---- */

/* Output size and the padding before the first row, as TensorFlow defines them. */
static void
geometry (int in, int k, int s, gboolean same, int *out, int *before)
{
  if (same)
    {
      int total;
      *out = in / s + (in % s != 0);
      total = (*out - 1) * s + k - in;
      *before = total > 0 ? total / 2 : 0;
    }
  else
    {
      *out = (in - k) / s + 1;
      *before = 0;
    }
}

static void
naive_activation (Tensor *t, PsActivation act)
{
  if (act == PS_ACT_RELU)
    for (gsize i = 0; i < tensor_size (t); i++)
      t->v[i] = t->v[i] > 0 ? t->v[i] : 0;
  else if (act == PS_ACT_SOFTMAX)
    /* Keras: along the last axis, at every position */
    for (gsize p = 0; p < tensor_size (t) / t->c; p++)
      {
        double *row = t->v + p * t->c, mx = -INFINITY, sum = 0;
        for (int j = 0; j < t->c; j++)
          mx = MAX (mx, row[j]);
        for (int j = 0; j < t->c; j++)
          sum += exp (row[j] - mx);
        for (int j = 0; j < t->c; j++)
          row[j] = exp (row[j] - mx) / sum;
      }
}

static Tensor *
naive_conv (const Tensor *x, const PsLayer *l)
{
  int oh, ow, top, left, O = l->out.c;
  Tensor *y;

  geometry (x->h, l->kh, l->sh, l->same, &oh, &top);
  geometry (x->w, l->kw, l->sw, l->same, &ow, &left);
  y = tensor_new (x->n, oh, ow, O);
  for (int b = 0; b < x->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int o = 0; o < O; o++)
          {
            double sum = l->bias[o];
            for (int ky = 0; ky < l->kh; ky++)
              for (int kx = 0; kx < l->kw; kx++)
                for (int c = 0; c < x->c; c++)
                  {
                    int iy = oy * l->sh + ky - top, ix = ox * l->sw + kx - left;
                    if (iy < 0 || iy >= x->h || ix < 0 || ix >= x->w)
                      continue;
                    /* Keras kernel (kh, kw, in, out) */
                    sum += *at (x, b, iy, ix, c)
                           * l->kernel[((gsize) (ky * l->kw + kx) * x->c + c) * O + o];
                  }
            *at (y, b, oy, ox, o) = sum;
          }
  naive_activation (y, l->activation);
  return y;
}

static Tensor *
naive_pool (const Tensor *x, const PsLayer *l)
{
  int oh, ow, top, left;
  Tensor *y;

  geometry (x->h, l->kh, l->sh, l->same, &oh, &top);
  geometry (x->w, l->kw, l->sw, l->same, &ow, &left);
  y = tensor_new (x->n, oh, ow, x->c);
  for (int b = 0; b < x->n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int c = 0; c < x->c; c++)
          {
            double mx = -INFINITY;
            /* padding never wins: only real positions count */
            for (int ky = 0; ky < l->kh; ky++)
              for (int kx = 0; kx < l->kw; kx++)
                {
                  int iy = oy * l->sh + ky - top, ix = ox * l->sw + kx - left;
                  if (iy >= 0 && iy < x->h && ix >= 0 && ix < x->w)
                    mx = MAX (mx, *at (x, b, iy, ix, c));
                }
            *at (y, b, oy, ox, c) = mx;
          }
  return y;
}

static Tensor *
naive_flatten (const Tensor *x)
{
  Tensor *y = tensor_new (x->n, 1, 1, x->h * x->w * x->c);

  for (int b = 0; b < x->n; b++)
    for (int yy = 0; yy < x->h; yy++)
      for (int xx = 0; xx < x->w; xx++)
        for (int c = 0; c < x->c; c++)
          *at (y, b, 0, 0, (yy * x->w + xx) * x->c + c) = *at (x, b, yy, xx, c);
  return y;
}

static Tensor *
naive_dense (const Tensor *x, const PsLayer *l)
{
  int in = x->h * x->w * x->c, out = l->out.c;
  Tensor *y = tensor_new (x->n, 1, 1, out);

  for (int b = 0; b < x->n; b++)
    for (int o = 0; o < out; o++)
      {
        double sum = l->bias[o];
        for (int i = 0; i < in; i++)
          sum += x->v[(gsize) b * in + i] * l->kernel[(gsize) i * out + o];
        y->v[(gsize) b * out + o] = sum;
      }
  naive_activation (y, l->activation);
  return y;
}

static Tensor *
naive_add (Tensor **xs, int k)
{
  Tensor *y = tensor_copy (xs[0]);

  for (int j = 1; j < k; j++)
    for (gsize i = 0; i < tensor_size (y); i++)
      y->v[i] += xs[j]->v[i];
  return y;
}

/* The whole graph, layer by layer, from the input tensor. */
static Tensor **
naive_network (const PsModel *m, const Tensor *input)
{
  Tensor **t = g_new0 (Tensor *, m->n_layers);

  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];
      Tensor *x = l->n_inputs > 0 ? t[l->inputs[0]] : NULL;

      switch (l->kind)
        {
        case PS_LAYER_INPUT:
          t[i] = tensor_copy (input);
          break;
        case PS_LAYER_CONV2D:
          t[i] = naive_conv (x, l);
          break;
        case PS_LAYER_MAXPOOL2D:
          t[i] = naive_pool (x, l);
          break;
        case PS_LAYER_DENSE:
          t[i] = naive_dense (x, l);
          break;
        case PS_LAYER_FLATTEN:
          t[i] = naive_flatten (x);
          break;
        case PS_LAYER_ADD:
          {
            Tensor *xs[PS_MAX_INPUTS] = { NULL };
            for (int j = 0; j < l->n_inputs; j++)
              xs[j] = t[l->inputs[j]];
            t[i] = naive_add (xs, l->n_inputs);
          }
          break;
        case PS_LAYER_ACTIVATION:
          t[i] = tensor_copy (x);
          naive_activation (t[i], l->activation);
          break;
        case PS_LAYER_DROPOUT:
        default:
          t[i] = tensor_copy (x);
          break;
        }
    }
  return t;
}

static void
naive_network_free (const PsModel *m, Tensor **t)
{
  for (int i = 0; i < m->n_layers; i++)
    tensor_free (t[i]);
  g_free (t);
}

/* ---- Conv2D ---- */

typedef struct {
  int h, w, cin, cout, kh, kw, sh, sw;
  gboolean same;
  const char *activation;
} ConvCase;

static void
check_conv (const ConvCase *cc)
{
  g_autofree char *cfg = g_strdup_printf (
    "\"filters\": %d, \"kernel_size\": [%d, %d], \"strides\": [%d, %d], "
    "\"padding\": \"%s\", \"activation\": \"%s\"",
    cc->cout, cc->kh, cc->kw, cc->sh, cc->sw, cc->same ? "same" : "valid", cc->activation);
  GString *json = model_begin (cc->h, cc->w, cc->cin);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;
  int conv;

  add_layer (json, "Conv2D", "conv", cfg, "input");
  m = model_end (json, "conv", 3, 11 + cc->kh * 7 + cc->cout);
  conv = ps_model_find_layer (m, "conv");
  /* max_batch above the batch run: a partial batch must work */
  plan = ps_plan_new (m, BATCH + 2);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, -1, 1, cc->h * 100 + cc->cin);
    g_autoptr (Tensor) want = NULL;
    g_autoptr (Tensor) got = NULL;

    ps_plan_forward (plan, BATCH);
    want = naive_conv (x, m->layers[conv]);
    got = plan_tensor (m, plan, conv, BATCH);
    assert_close (got, want, RTOL);
  }
  ps_plan_free (plan);
}

/* The kernels a plan may choose, by $PRUNESCOPE_CONV: its own choice, each direct kernel
 * wherever it applies, im2col + sgemm. */
static const char *const conv_modes[] = { NULL, "channels", "rows", "gemm" };

/* Every case through each direct kernel (where the CPU has them) and through im2col + sgemm. */
static void
check_conv_cases (const ConvCase *cases, gsize n)
{
  for (guint mode = 0; mode < G_N_ELEMENTS (conv_modes); mode++)
    {
      if (conv_modes[mode] != NULL)
        g_setenv ("PRUNESCOPE_CONV", conv_modes[mode], TRUE);
      for (gsize i = 0; i < n; i++)
        check_conv (&cases[i]);
      g_unsetenv ("PRUNESCOPE_CONV");
    }
}

static void
test_conv_valid_stride1 (void)
{
  const ConvCase cases[] = {
    { 7, 6, 3, 4, 3, 3, 1, 1, FALSE, "linear" },
    { 5, 9, 1, 2, 2, 2, 1, 1, FALSE, "linear" },
    { 6, 6, 5, 7, 5, 5, 1, 1, FALSE, "relu" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_valid_stride2 (void)
{
  const ConvCase cases[] = {
    { 9, 8, 3, 4, 3, 3, 2, 2, FALSE, "linear" },
    { 10, 7, 2, 3, 2, 2, 2, 2, FALSE, "linear" },
    { 9, 9, 4, 2, 3, 3, 2, 1, FALSE, "relu" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_same_stride1 (void)
{
  const ConvCase cases[] = {
    { 7, 6, 3, 4, 3, 3, 1, 1, TRUE, "linear" },
    /* even kernels pad more after than before */
    { 8, 5, 2, 3, 4, 2, 1, 1, TRUE, "linear" },
    { 5, 5, 6, 5, 5, 5, 1, 1, TRUE, "relu" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_same_stride2 (void)
{
  const ConvCase cases[] = {
    { 7, 6, 3, 4, 3, 3, 2, 2, TRUE, "linear" },
    { 8, 8, 3, 4, 3, 3, 2, 2, TRUE, "linear" },
    { 9, 10, 2, 5, 4, 4, 2, 2, TRUE, "linear" },
    { 6, 7, 3, 2, 2, 3, 2, 1, TRUE, "relu" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_kernel_3x2 (void)
{
  const ConvCase cases[] = {
    { 7, 6, 3, 4, 3, 2, 1, 1, FALSE, "linear" },
    { 7, 6, 3, 4, 3, 2, 1, 1, TRUE, "linear" },
    { 8, 9, 2, 3, 3, 2, 2, 2, TRUE, "linear" },
    { 9, 8, 2, 3, 2, 3, 2, 1, FALSE, "relu" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_channels (void)
{
  const ConvCase cases[] = {
    { 5, 4, 1, 1, 3, 3, 1, 1, TRUE, "linear" },
    { 5, 4, 1, 9, 3, 3, 1, 1, FALSE, "linear" },
    { 5, 4, 8, 1, 2, 2, 1, 1, TRUE, "linear" },
    { 4, 4, 16, 12, 3, 3, 1, 1, TRUE, "linear" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_1x1 (void)
{
  /* 1x1 stride 1 reads its input directly; with a stride it goes through im2col */
  const ConvCase cases[] = {
    { 5, 6, 4, 3, 1, 1, 1, 1, FALSE, "linear" },
    { 5, 6, 4, 3, 1, 1, 1, 1, TRUE, "relu" },
    { 5, 6, 4, 3, 1, 1, 2, 2, FALSE, "linear" },
    { 5, 6, 4, 3, 1, 1, 2, 2, TRUE, "linear" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_conv_softmax (void)
{
  const ConvCase cases[] = {
    { 5, 6, 3, 4, 3, 3, 1, 1, TRUE, "softmax" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
}

/* ---- the direct kernels: tiles, remainders, fused max-pool ---- */

static void
test_conv_direct_tiles (void)
{
  /* output channels around the 16-wide vectors and the 6-vector blocks (5 … 113);
   * output planes smaller than a tile, so that tiles span images (1, 4, 12 pixels) */
  const ConvCase cases[] = {
    { 55, 47, 3, 20, 4, 4, 1, 1, FALSE, "relu" },   /* DeepID conv_1 */
    { 12, 10, 40, 60, 3, 3, 1, 1, FALSE, "relu" },  /* conv_3 */
    { 5, 4, 60, 80, 2, 2, 1, 1, FALSE, "relu" },    /* conv_4: 12 pixels */
    { 3, 3, 7, 5, 2, 2, 1, 1, FALSE, "linear" },    /* 4 pixels */
    { 2, 2, 9, 16, 2, 2, 1, 1, FALSE, "relu" },     /* 1 pixel */
    { 6, 7, 4, 100, 3, 3, 1, 1, FALSE, "linear" },  /* blocks of 6 + 1 vectors */
    { 4, 5, 3, 113, 2, 3, 1, 1, FALSE, "relu" },
    { 9, 8, 5, 40, 3, 2, 2, 1, FALSE, "relu" },     /* strides */
    { 11, 11, 2, 33, 3, 3, 3, 2, FALSE, "linear" },
  };
  check_conv_cases (cases, G_N_ELEMENTS (cases));
  if (!ps_conv_available ())
    g_test_message ("no direct kernels on this CPU: im2col + sgemm checked twice");
}

static void
test_dense_direct (void)
{
  /* output Dense layers of 2 … 113 units (softmax) after a hidden one of 37 */
  const int units[] = { 2, 16, 20, 97, 113 };

  for (int gemm = 0; gemm < 2; gemm++)
    {
      if (gemm)
        g_setenv ("PRUNESCOPE_CONV", "gemm", TRUE);
      for (guint u = 0; u < G_N_ELEMENTS (units); u++)
        {
          GString *json = model_begin (3, 5, 7);
          g_autoptr (PsModel) m = NULL;
          PsPlan *plan;

          add_layer (json, "Flatten", "flat", NULL, "input");
          add_layer (json, "Dense", "hidden", "\"units\": 37, \"activation\": \"relu\"", "flat");
          m = model_end (json, "hidden", units[u], 40 + u);
          plan = ps_plan_new (m, 9);
          {
            g_autoptr (Tensor) x = random_input (m, plan, 9, -1, 1, 77 + u);
            Tensor **want = NULL;

            ps_plan_forward (plan, 9);
            want = naive_network (m, x);
            for (int i = 1; i < m->n_layers; i++)
              {
                g_autoptr (Tensor) got = plan_tensor (m, plan, i, 9);
                assert_close (got, want[i], RTOL);
              }
            naive_network_free (m, want);
          }
          ps_plan_free (plan);
        }
      g_unsetenv ("PRUNESCOPE_CONV");
    }
}

/* The sweep's rank-one update: the same bits as the plain loop (product, then difference). */
static void
test_sub_scaled (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (9);
  const int sizes[] = { 1, 5, 15, 16, 17, 80, 160, 161 };

  for (guint k = 0; k < G_N_ELEMENTS (sizes); k++)
    {
      int n = sizes[k];
      g_autofree float *w = g_new (float, n + 1);
      g_autofree float *y = g_new (float, n + 1);
      g_autofree float *want = g_new (float, n + 1);
      float v = (float) g_rand_double_range (rand, -2, 2);

      for (int j = 0; j <= n; j++)
        {
          w[j] = (float) g_rand_double_range (rand, -3, 3);
          y[j] = want[j] = (float) g_rand_double_range (rand, -3, 3);
        }
      for (int j = 0; j < n; j++)
        want[j] -= v * w[j];
      ps_conv_sub_scaled (n, v, w, y);
      /* and nothing past the end */
      g_assert_cmpmem (y, sizeof (float) * (n + 1), want, sizeof (float) * (n + 1));
    }
}

/* A Dense layer over mostly-zero inputs, image by image over the nonzero ones only: the
 * same bits as the register-blocked kernel (linear values and ReLU), whatever the sizes
 * (1 … 16 vectors of outputs, inputs not a multiple of 16), with NaN and negative inputs
 * kept; and a layer with an infinite weight is never run that way. */
static void
test_dense_sparse (void)
{
  const int ins[] = { 1, 15, 16, 37, 960 };
  const int units[] = { 1, 16, 20, 160, 200, 250 };
  const double zeros[] = { 0.0, 0.8, 1.0 };
  const int n = 5;

  if (!ps_conv_available ())
    {
      g_test_skip ("the direct kernels need AVX-512");
      return;
    }
  for (guint a = 0; a < G_N_ELEMENTS (ins); a++)
    for (guint u = 0; u < G_N_ELEMENTS (units); u++)
      {
        g_autofree char *cfg = g_strdup_printf ("\"units\": %d, \"activation\": \"relu\"", units[u]);
        GString *json = model_begin (1, 1, ins[a]);
        g_autoptr (PsModel) m = NULL;
        g_autoptr (GRand) rand = g_rand_new_with_seed (a * 31 + u);
        PsLayer *l;
        PsConvPack *pack;
        int K = ins[a], C = units[u];
        g_autofree float *x = g_new (float, (gsize) n * K);
        g_autofree gpointer scratch = NULL;

        add_layer (json, "Flatten", "flat", NULL, "input");
        add_layer (json, "Dense", "fc", cfg, "flat");
        m = model_end (json, "fc", 3, 900 + a * 7 + u);
        l = m->layers[ps_model_find_layer (m, "fc")];
        pack = ps_conv_pack_new (l);
        g_assert_true (ps_conv_can_sparse (pack));
        g_assert_cmpuint (ps_conv_sparse_scratch_size (pack), >=, K * sizeof (int));
        scratch = g_malloc (ps_conv_sparse_scratch_size (pack));
        for (guint z = 0; z < G_N_ELEMENTS (zeros); z++)
          for (int relu = 0; relu < 2; relu++)
            {
              g_autofree float *lin_d = g_new (float, (gsize) n * C + 1);
              g_autofree float *out_d = g_new (float, (gsize) n * C + 1);
              g_autofree float *lin_s = g_new (float, (gsize) n * C + 1);
              g_autofree float *out_s = g_new (float, (gsize) n * C + 1);
              int nonzero = 0;

              for (int k = 0; k < n * K; k++)
                {
                  x[k] = g_rand_double (rand) < zeros[z] ? 0.0f : (float) g_rand_double_range (rand, -1, 3);
                  nonzero += x[k] != 0.0f;
                }
              if (z == 1 && n * K > 40)
                {
                  x[3] = NAN; /* NaN is not zero: it must reach the outputs */
                  g_assert_cmpint (nonzero, >, 0);
                  g_assert_cmpint (nonzero, <, n * K / 2);
                }
              /* the element past the end is a sentinel */
              lin_d[n * C] = out_d[n * C] = lin_s[n * C] = out_s[n * C] = 42.0f;
              ps_conv_forward (pack, n, x, relu, lin_d, out_d);
              ps_conv_forward_sparse (pack, n, x, relu, lin_s, out_s, scratch);
              g_assert_cmpmem (lin_s, sizeof (float) * (n * C + 1), lin_d, sizeof (float) * (n * C + 1));
              g_assert_cmpmem (out_s, sizeof (float) * (n * C + 1), out_d, sizeof (float) * (n * C + 1));
              /* and the values are the layer's: bias where every input is zero */
              if (z == 2)
                for (int c = 0; c < C; c++)
                  g_assert_cmpfloat (lin_s[c], ==, l->bias[c]);
            }
        ps_conv_pack_free (pack);
        l->kernel[l->kernel_len / 2] = INFINITY;
        pack = ps_conv_pack_new (l);
        g_assert_false (ps_conv_can_sparse (pack));
        ps_conv_pack_free (pack);
      }
}

/* Rows whose zeros mostly coincide (one image at successive steps of a sweep) go through
 * the sparse kernel together, over the union of their nonzero inputs; each row must still
 * get exactly the register-blocked kernel's bits, for groups of 8, 4 and 2 rows and a row
 * alone (15 rows), outputs of 1 to 81 vectors, and with rows that differ too much to go
 * together mixed in. */
static void
test_dense_sparse_groups (void)
{
  const int units[] = { 5, 16, 40, 160, 1283 };
  const int K = 200, n = 15;

  if (!ps_conv_available ())
    {
      g_test_skip ("the direct kernels need AVX-512");
      return;
    }
  for (guint u = 0; u < G_N_ELEMENTS (units); u++)
    for (int mixed = 0; mixed < 2; mixed++)
      {
        g_autofree char *cfg = g_strdup_printf ("\"units\": %d, \"activation\": \"relu\"", units[u]);
        GString *json = model_begin (1, 1, K);
        g_autoptr (PsModel) m = NULL;
        g_autoptr (GRand) rand = g_rand_new_with_seed (77 + u * 2 + mixed);
        int C = units[u];
        g_autofree float *x = g_new (float, (gsize) n * K);
        g_autofree float *lin_d = g_new (float, (gsize) n * C);
        g_autofree float *out_d = g_new (float, (gsize) n * C);
        g_autofree float *lin_s = g_new (float, (gsize) n * C);
        g_autofree float *out_s = g_new (float, (gsize) n * C);
        g_autofree gpointer scratch = NULL;
        PsConvPack *pack;

        add_layer (json, "Flatten", "flat", NULL, "input");
        add_layer (json, "Dense", "fc", cfg, "flat");
        m = model_end (json, "fc", 3, 40 + u);
        pack = ps_conv_pack_new (m->layers[ps_model_find_layer (m, "fc")]);
        scratch = g_malloc (ps_conv_sparse_scratch_size (pack));
        /* each row: the one before with a few inputs changed (a new random row every 5th
         * when @mixed); a quarter of the inputs nonzero */
        for (int r = 0; r < n; r++)
          for (int k = 0; k < K; k++)
            {
              gboolean fresh = r == 0 || g_rand_double (rand) < 0.03 || (mixed && r % 5 == 0);

              x[r * K + k] = !fresh ? x[(r - 1) * K + k]
                             : g_rand_double (rand) < 0.75 ? 0.0f
                             : (float) g_rand_double_range (rand, -1, 2);
            }
        ps_conv_forward (pack, n, x, TRUE, lin_d, out_d);
        ps_conv_forward_sparse (pack, n, x, TRUE, lin_s, out_s, scratch);
        g_assert_cmpmem (lin_s, sizeof (float) * n * C, lin_d, sizeof (float) * n * C);
        g_assert_cmpmem (out_s, sizeof (float) * n * C, out_d, sizeof (float) * n * C);
        ps_conv_pack_free (pack);
      }
}

/* A plan told that a Dense layer reads mostly zeros gives the same bits as one that is
 * not, on batches where the sparse kernel runs (ReLU outputs with a negative bias) and
 * where it does not (dense inputs). */
static void
test_plan_sparse (void)
{
  if (!ps_conv_available ())
    {
      g_test_skip ("the direct kernels need AVX-512");
      return;
    }
  for (int shift = 0; shift < 2; shift++)
    {
      GString *json = model_begin (4, 5, 6);
      g_autoptr (PsModel) m = NULL;
      PsPlan *plain, *sparse;
      int hidden, fc, zeros = 0;

      add_layer (json, "Flatten", "flat", NULL, "input");
      add_layer (json, "Dense", "hidden", "\"units\": 90, \"activation\": \"relu\"", "flat");
      add_layer (json, "Dense", "fc", "\"units\": 70, \"activation\": \"relu\"", "hidden");
      m = model_end (json, "fc", 11, 5 + shift);
      hidden = ps_model_find_layer (m, "hidden");
      fc = ps_model_find_layer (m, "fc");
      /* pull the hidden layer's bias down: most of its ReLU outputs become zeros */
      for (int c = 0; c < 90 && shift; c++)
        m->layers[hidden]->bias[c] -= 3.0f;
      plain = ps_plan_new (m, 33);
      sparse = ps_plan_new (m, 33);
      for (int i = 0; i < m->n_layers; i++)
        ps_plan_set_sparse (plain, i, FALSE);
      ps_plan_set_sparse (sparse, fc, TRUE);
      ps_plan_set_sparse (sparse, m->output, TRUE);
      ps_plan_set_sparse (sparse, ps_model_find_layer (m, "flat"), TRUE); /* not Dense: ignored */
      {
        g_autoptr (Tensor) x = random_input (m, plain, 33, 0, 1, 12);
        memcpy (ps_plan_output (sparse, m->input), ps_plan_output (plain, m->input),
                sizeof (float) * tensor_size (x));
      }
      ps_plan_forward (plain, 33);
      ps_plan_forward (sparse, 33);
      for (int k = 0; k < 33 * 90; k++)
        zeros += ps_plan_output (plain, hidden)[k] == 0.0f;
      /* both kinds of batch occur */
      if (shift)
        g_assert_cmpint (zeros * 3, >=, 2 * 33 * 90);
      else
        g_assert_cmpint (zeros * 3, <, 2 * 33 * 90);
      for (int i = 1; i < m->n_layers; i++)
        g_assert_cmpmem (ps_plan_output (sparse, i), sizeof (float) * 33 * ps_shape_size (m->layers[i]->out),
                         ps_plan_output (plain, i), sizeof (float) * 33 * ps_shape_size (m->layers[i]->out));
      ps_plan_free (plain);
      ps_plan_free (sparse);
    }
}

/* Images read where the caller keeps them (ps_plan_set_input): every layer the same bits
 * as from the plan's own input buffer, the images left as they were, the identity layer on
 * the input following it, and the plan's buffer back after NULL. On a convolutional model
 * and on one whose input goes through a Flatten. */
static void
check_plan_input (PsModel *m)
{
  const int n = 7;
  gsize img = ps_shape_size (m->layers[m->input]->out);
  PsPlan *own = ps_plan_new (m, n), *ext = ps_plan_new (m, n);
  float *own_input = ps_plan_output (ext, m->input);
  g_autoptr (Tensor) x = random_input (m, own, n, 0, 1, 21);
  g_autofree float *images = g_memdup2 (ps_plan_output (own, m->input), sizeof (float) * n * img);
  g_autofree float *kept = g_memdup2 (images, sizeof (float) * n * img);

  ps_plan_set_input (ext, images);
  g_assert_true (ps_plan_output (ext, m->input) == images);
  ps_plan_forward (own, n);
  ps_plan_forward (ext, n);
  for (int i = 0; i < m->n_layers; i++)
    g_assert_cmpmem (ps_plan_output (ext, i), sizeof (float) * n * ps_shape_size (m->layers[i]->out),
                     ps_plan_output (own, i), sizeof (float) * n * ps_shape_size (m->layers[i]->out));
  g_assert_cmpmem (images, sizeof (float) * n * img, kept, sizeof (float) * n * img);
  /* back to its own buffer, which the next images go into */
  ps_plan_set_input (ext, NULL);
  g_assert_true (ps_plan_output (ext, m->input) == own_input);
  memcpy (own_input, images, sizeof (float) * n * img);
  ps_plan_forward (ext, n);
  g_assert_cmpmem (ps_plan_output (ext, m->output), sizeof (float) * n * ps_shape_size (m->layers[m->output]->out),
                   ps_plan_output (own, m->output), sizeof (float) * n * ps_shape_size (m->layers[m->output]->out));
  /* freed while reading the caller's images: the plan frees its own buffer, not those */
  ps_plan_set_input (ext, images);
  ps_plan_free (ext);
  ps_plan_free (own);
  g_assert_cmpmem (images, sizeof (float) * n * img, kept, sizeof (float) * n * img);
}

/* A plan set up as the sweep's, running only DeepID's fronts (flatten_1, conv_4, fc_1) on
 * pool_3's output put back in place, for other rows and fewer of them: their linear values
 * the same bits as the whole pass gave (the sweep makes a set's state again so). */
static PsPlan *
sweep_like_plan (const PsModel *m, int pool_3, int conv_4, int fc_1)
{
  PsPlan *plan = ps_plan_new (m, 64);

  ps_plan_set_logits (plan, TRUE);
  ps_plan_set_fused (plan, TRUE);
  ps_plan_keep_output (plan, pool_3);
  ps_plan_keep_linear (plan, conv_4);
  ps_plan_keep_linear (plan, fc_1);
  return plan;
}

static void
test_fronts_again (void)
{
  g_autoptr (PsModel) m = ps_test_deepid_model (23, 6, -0.3);
  g_autoptr (PsDataset) ds = NULL;
  int pool_3, conv_4, fc_1, flat_1;
  g_autofree gboolean *run = NULL;
  PsPlan *whole, *again;
  const int from = 5, count = 37;

  m->input_scale = 1.0 / 255;
  ds = ps_test_random_data (m, 64, 9);
  pool_3 = ps_model_find_layer (m, "pool_3");
  conv_4 = ps_model_find_layer (m, "conv_4");
  fc_1 = ps_model_find_layer (m, "fc_1");
  flat_1 = m->layers[fc_1]->inputs[0];
  whole = sweep_like_plan (m, pool_3, conv_4, fc_1);
  again = sweep_like_plan (m, pool_3, conv_4, fc_1);
  ps_dataset_get_batch (ds, 0, ds->n, m->input_scale, ps_plan_output (whole, m->input));
  ps_plan_forward (whole, ds->n);

  run = g_new0 (gboolean, m->n_layers);
  run[flat_1] = run[conv_4] = run[fc_1] = TRUE;
  memcpy (ps_plan_output (again, pool_3),
          ps_plan_output (whole, pool_3) + (gsize) from * ps_shape_size (m->layers[pool_3]->out),
          sizeof (float) * count * ps_shape_size (m->layers[pool_3]->out));
  ps_plan_run_layers (again, count, run);
  for (int l = 0; l < 2; l++)
    {
      int layer = l == 0 ? conv_4 : fc_1;
      gsize size = ps_shape_size (m->layers[layer]->out);

      g_assert_cmpmem (ps_plan_linear (again, layer), sizeof (float) * count * size,
                       ps_plan_linear (whole, layer) + (gsize) from * size, sizeof (float) * count * size);
    }
  ps_plan_free (whole);
  ps_plan_free (again);
}

static void
test_plan_input (void)
{
  g_autoptr (PsModel) conv = ps_test_small_model (4, 5);
  GString *json = model_begin (4, 5, 3);
  g_autoptr (PsModel) flat = NULL;
  int f;

  check_plan_input (conv);
  add_layer (json, "Flatten", "flat", NULL, "input");
  add_layer (json, "Dense", "hidden", "\"units\": 30, \"activation\": \"relu\"", "flat");
  flat = model_end (json, "hidden", 6, 9);
  f = ps_model_find_layer (flat, "flat");
  check_plan_input (flat);
  {
    PsPlan *p = ps_plan_new (flat, 2);
    float images[2 * 60] = { 0 };

    ps_plan_set_input (p, images);
    g_assert_true (ps_plan_output (p, f) == images);
    ps_plan_set_input (p, NULL);
    g_assert_true (ps_plan_output (p, f) == ps_plan_output (p, flat->input));
    ps_plan_free (p);
  }
}

/* Several rank-one terms at once, held in registers: the same bits as applying them one
 * by one with ps_conv_sub_scaled(), for 1 … 300 values (more than the 16 vectors held at a
 * time) and 1 … 33 terms; nothing past the end is touched. */
static void
test_sub_scaled_sum (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (21);
  const int sizes[] = { 1, 15, 16, 80, 160, 257, 300 };
  const int terms[] = { 1, 2, 4, 33 };

  for (guint a = 0; a < G_N_ELEMENTS (sizes); a++)
    for (guint b = 0; b < G_N_ELEMENTS (terms); b++)
      {
        int n = sizes[a], m = terms[b];
        g_autofree float *y = g_new (float, n + 1);
        g_autofree float *want = g_new (float, n + 1);
        g_autofree float *v = g_new (float, m);
        g_autofree float *wbuf = g_new (float, (gsize) m * (n + 1));
        g_autofree const float **w = g_new (const float *, m);

        for (int j = 0; j <= n; j++)
          y[j] = want[j] = (float) g_rand_double_range (rand, -3, 3);
        for (int t = 0; t < m; t++)
          {
            v[t] = (float) g_rand_double_range (rand, -2, 2);
            w[t] = wbuf + (gsize) t * (n + 1);
            for (int j = 0; j <= n; j++)
              wbuf[(gsize) t * (n + 1) + j] = (float) g_rand_double_range (rand, -3, 3);
          }
        for (int t = 0; t < m; t++)
          ps_conv_sub_scaled (n, v[t], w[t], want);
        ps_conv_sub_scaled_sum (n, m, v, w, y);
        g_assert_cmpmem (y, sizeof (float) * (n + 1), want, sizeof (float) * (n + 1));
      }
}

/* Affine (multiply or divide, then the bias, then maybe the ReLU) and global average
 * pooling on vectors of four channels: the plain loops' bits, for 1 … 19 channels, with
 * NaN, infinities and zeros of both signs among the inputs. */
static void
test_elementwise_ops (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (31);
  const int channels[] = { 1, 3, 4, 7, 16, 19 };
  const float special[] = { NAN, INFINITY, -INFINITY, 0.0f, -0.0f };
  const int n = 3, h = 5, w = 4;

  for (guint a = 0; a < G_N_ELEMENTS (channels); a++)
    {
      const int C = channels[a];
      const gsize len = (gsize) n * h * w * C;
      g_autofree float *x = g_new (float, len);
      g_autofree float *y = g_new (float, len);
      g_autofree float *want = g_new (float, len);
      g_autofree float *k = g_new (float, C);
      g_autofree float *b = g_new (float, C);
      PsLayer l = { .in = { h, w, C }, .out = { h, w, C }, .n_inputs = 1, .kernel = k, .bias = b };
      const float *ins[1] = { x };

      for (gsize i = 0; i < len; i++)
        x[i] = i % 11 == 5 ? special[i % G_N_ELEMENTS (special)]
                           : (float) g_rand_double_range (rand, -4, 4);
      for (int c = 0; c < C; c++)
        {
          k[c] = (float) g_rand_double_range (rand, 0.1, 3);
          b[c] = (float) g_rand_double_range (rand, -1, 1);
        }
      /* -0 x k + -0 is -0: the ReLU must let it through, as the plain loop does */
      b[0] = -0.0f;
      l.kind = PS_LAYER_AFFINE;
      for (int mode = 0; mode < 4; mode++)
        {
          l.divide = mode & 1;
          l.activation = mode & 2 ? PS_ACT_RELU : PS_ACT_LINEAR;
          for (gsize i = 0; i < len; i++)
            {
              int c = (int) (i % C);
              float v = (l.divide ? x[i] / k[c] : x[i] * k[c]) + b[c];

              want[i] = l.activation == PS_ACT_RELU && v < 0.0f ? 0.0f : v;
            }
          ps_layer_forward (&l, n, ins, NULL, y, NULL);
          g_assert_cmpmem (y, sizeof (float) * len, want, sizeof (float) * len);
        }
      l.kind = PS_LAYER_GLOBAL_AVGPOOL;
      l.out = (PsShape) { 1, 1, C };
      for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
          {
            float sum = 0.0f;

            for (int p = 0; p < h * w; p++)
              sum += x[((gsize) i * h * w + p) * C + c];
            want[i * C + c] = sum / (float) (h * w);
          }
      ps_layer_forward (&l, n, ins, NULL, y, NULL);
      g_assert_cmpmem (y, sizeof (float) * n * C, want, sizeof (float) * n * C);
    }
}

/* A padded convolution runs on the direct kernels, its input copied into a zeroed frame
 * first: the frame holds the input at the padding's offsets, zeros around (the values
 * themselves are checked against the plain loops by the /plan/conv/same-* cases). */
static void
test_conv_padded_frame (void)
{
  GString *json = model_begin (5, 4, 3);
  g_autoptr (PsModel) m = NULL;
  const PsLayer *conv;
  PsConvPack *pack;
  g_autofree float *x = NULL, *frame = NULL;

  add_layer (json, "Conv2D", "conv",
             "\"filters\": 6, \"kernel_size\": [3, 4], \"padding\": \"same\"", "input");
  m = model_end (json, "conv", 3, 7);
  conv = m->layers[ps_model_find_layer (m, "conv")];
  pack = ps_conv_pack_new (conv);
  if (!ps_conv_available ())
    {
      g_assert_null (pack);
      g_test_skip ("no AVX-512 on this CPU");
      return;
    }
  g_assert_nonnull (pack);
  /* 3x4 "same" on 5x4: one row above and below, one column left, two right */
  g_assert_cmpuint (ps_conv_padded_size (pack), ==, 7 * 7 * 3);
  x = g_new (float, 2 * 5 * 4 * 3);
  for (int i = 0; i < 2 * 5 * 4 * 3; i++)
    x[i] = (float) (i + 1);
  frame = g_new (float, 2 * ps_conv_padded_size (pack));
  memset (frame, 0xff, sizeof (float) * 2 * ps_conv_padded_size (pack));
  ps_conv_pad (pack, 2, x, frame);
  for (int b = 0; b < 2; b++)
    for (int y = 0; y < 7; y++)
      for (int xx = 0; xx < 7; xx++)
        for (int c = 0; c < 3; c++)
          {
            int iy = y - 1, ix = xx - 1;
            float want = iy >= 0 && iy < 5 && ix >= 0 && ix < 4 ? x[((b * 5 + iy) * 4 + ix) * 3 + c] : 0.0f;

            g_assert_cmpfloat (frame[((b * 7 + y) * 7 + xx) * 3 + c], ==, want);
          }
  ps_conv_pack_free (pack);

  /* A file's huge strides and padding would ask for a frame of millions of values for a
   * 2x2 output: such a layer stays on im2col (a few patches), as does one whose stride
   * times its output would overflow. */
  {
    float k[2] = { 1, 2 }, b[1] = { 0 };
    PsLayer big = { .kind = PS_LAYER_CONV2D, .activation = PS_ACT_LINEAR, .n_inputs = 1,
                    .in = { 1, 1, 2 }, .out = { 2, 2, 1 }, .kh = 1, .kw = 1, .sh = 1000,
                    .sw = 1000, .pad_top = 500, .pad_left = 500, .pad_bottom = 500,
                    .pad_right = 500, .kernel = k, .bias = b, .kernel_len = 2, .bias_len = 1 };

    g_assert_null (ps_conv_pack_new (&big));
    big.sh = big.sw = G_MAXINT / 2;
    g_assert_null (ps_conv_pack_new (&big));
  }
}

/* Windows of K taps with their weights in registers: the same bits as each window's
 * nonzero terms applied one by one with ps_conv_sub_scaled(), for 1 … 96 values and 1 … 4
 * taps, on inputs with zeros (left out: an infinite weight beside them must not make a
 * NaN) and a NaN (kept, as v != 0 keeps it); nothing past the last row is touched. Where
 * it does not fit it says so and touches nothing. */
static void
test_sub_windows (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (29);
  const int sizes[] = { 1, 15, 16, 17, 80, 96 };
  const int npos = 7, n_in = 11;

  if (!ps_conv_available ())
    {
      g_assert_false (ps_conv_sub_windows (16, 4, 1, (int[4]) { 0 }, (float[1]) { 1 }, (float[64]) { 0 }, 16, (float[16]) { 0 }));
      g_test_skip ("no AVX-512 on this CPU");
      return;
    }
  for (guint a = 0; a < G_N_ELEMENTS (sizes); a++)
    for (int K = 1; K <= 4; K++)
      {
        const int n = sizes[a];
        const gsize wstride = (gsize) n + 3, len = (gsize) npos * n + 1;
        g_autofree float *y = g_new (float, len);
        g_autofree float *want = g_new (float, len);
        g_autofree float *v = g_new (float, n_in);
        g_autofree float *w = g_new (float, K * wstride);
        g_autofree int *in = g_new (int, npos * K);

        for (gsize j = 0; j < len; j++)
          y[j] = want[j] = (float) g_rand_double_range (rand, -3, 3);
        for (int i = 0; i < n_in; i++)
          v[i] = i % 3 == 0 ? 0.0f : (float) g_rand_double_range (rand, -2, 2);
        v[5] = -0.0f;
        if (n > 1)
          v[7] = NAN;
        for (gsize j = 0; j < K * wstride; j++)
          w[j] = (float) g_rand_double_range (rand, -3, 3);
        w[0] = INFINITY;
        for (int e = 0; e < npos * K; e++)
          in[e] = g_rand_int_range (rand, 0, n_in);
        for (int o = 0; o < npos; o++)
          for (int k = 0; k < K; k++)
            if (v[in[o * K + k]] != 0.0f)
              ps_conv_sub_scaled (n, v[in[o * K + k]], w + k * wstride, want + (gsize) o * n);
        g_assert_true (ps_conv_sub_windows (n, K, npos, in, v, w, wstride, y));
        g_assert_cmpmem (y, sizeof (float) * len, want, sizeof (float) * len);
      }
  /* too many taps or values for the registers */
  {
    float y[97] = { 1 }, v[1] = { 1 }, w[5 * 97] = { 1 };
    int in[5] = { 0 };

    g_assert_false (ps_conv_sub_windows (16, 5, 1, in, v, w, 16, y));
    g_assert_false (ps_conv_sub_windows (97, 1, 1, in, v, w, 97, y));
    g_assert_cmpfloat (y[0], ==, 1.0f);
  }
}

/* The class and margin: the plain loop's, bit for bit, on rows with ties, infinities,
 * zeros of both signs and NaN, 1 … 1283 scores. */
static void
test_row_argmax (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (23);
  const int sizes[] = { 1, 2, 15, 16, 17, 33, 160, 1283 };
  const float special[] = { INFINITY, -INFINITY, 0.0f, -0.0f, NAN, 7.0f };

  for (guint a = 0; a < G_N_ELEMENTS (sizes); a++)
    for (int trial = 0; trial < 200; trial++)
      {
        int k = sizes[a], best = 0, got;
        g_autofree float *row = g_new (float, k);
        float second = -G_MAXFLOAT, margin;

        for (int j = 0; j < k; j++)
          {
            /* few distinct values: many ties */
            row[j] = (float) g_rand_int_range (rand, -3, 4);
            if (g_rand_int_range (rand, 0, 50) == 0)
              row[j] = special[g_rand_int_range (rand, 0, G_N_ELEMENTS (special) - (trial % 3 == 0 ? 0 : 1))];
          }
        for (int j = 1; j < k; j++)
          if (row[j] > row[best])
            {
              second = MAX (second, row[best]);
              best = j;
            }
          else
            second = MAX (second, row[j]);
        ps_conv_row_argmax (k, row, &got, &margin);
        g_assert_cmpint (got, ==, best);
        if (isnan (row[best] - second))
          g_assert_true (isnan (margin));
        else
          g_assert_cmpfloat (margin, ==, row[best] - second);
      }
}

/* The output skip's squared distance: the plain double sum, to rounding. */
static void
test_sq_dist (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (22);

  for (int n = 0; n < 40; n += 3)
    {
      float a[40], b[40];
      double want = 0;

      for (int j = 0; j < n; j++)
        {
          a[j] = (float) g_rand_double_range (rand, -5, 5);
          b[j] = (float) g_rand_double_range (rand, -5, 5);
          want += (double) (a[j] - b[j]) * (a[j] - b[j]);
        }
      g_assert_cmpfloat_with_epsilon (ps_conv_sq_dist (n, a, b), want, 1e-12 * (1 + want));
    }
}

typedef struct {
  int h, w, cin, cout, kh, kw;  /* a valid stride-1 convolution */
  int ph, pw, psh, psw;         /* then a valid max-pool */
  const char *activation;
} FusedCase;

/* conv -> max-pool in a fused plan: the pool and everything after it match the plain
 * loops; asking for the conv's own output fills it again. */
static void
check_fused (const FusedCase *fc, int n)
{
  g_autofree char *conv_cfg = g_strdup_printf (
    "\"filters\": %d, \"kernel_size\": [%d, %d], \"activation\": \"%s\"",
    fc->cout, fc->kh, fc->kw, fc->activation);
  g_autofree char *pool_cfg = g_strdup_printf ("\"pool_size\": [%d, %d], \"strides\": [%d, %d]",
                                               fc->ph, fc->pw, fc->psh, fc->psw);

  for (int keep = 0; keep < 2; keep++)
    {
      GString *json = model_begin (fc->h, fc->w, fc->cin);
      g_autoptr (PsModel) m = NULL;
      PsPlan *plan;
      int conv, pool;

      add_layer (json, "Conv2D", "conv", conv_cfg, "input");
      add_layer (json, "MaxPooling2D", "pool", pool_cfg, "conv");
      m = model_end (json, "pool", 7, fc->cout + fc->h);
      conv = ps_model_find_layer (m, "conv");
      pool = ps_model_find_layer (m, "pool");
      plan = ps_plan_new (m, n + 1);
      ps_plan_set_fused (plan, TRUE);
      if (keep)
        ps_plan_keep_output (plan, conv);
      {
        g_autoptr (Tensor) x = random_input (m, plan, n, -1, 1, fc->h * 7 + fc->cout);
        Tensor **want = NULL;

        /* a conv output that is never written must not be read: poison it */
        memset (ps_plan_output (plan, conv), 0xff,
                sizeof (float) * n * ps_shape_size (m->layers[conv]->out));
        ps_plan_forward (plan, n);
        want = naive_network (m, x);
        for (int i = pool; i < m->n_layers; i++)
          {
            g_autoptr (Tensor) got = plan_tensor (m, plan, i, n);
            assert_close (got, want[i], RTOL);
          }
        if (keep)
          {
            g_autoptr (Tensor) got = plan_tensor (m, plan, conv, n);
            assert_close (got, want[conv], RTOL);
          }
        naive_network_free (m, want);
      }
      ps_plan_free (plan);
    }
}

static void
test_conv_fused_pool (void)
{
  const FusedCase cases[] = {
    { 55, 47, 3, 20, 4, 4, 2, 2, 2, 2, "relu" },   /* DeepID conv_1 + pool_1 */
    { 26, 22, 20, 40, 3, 3, 2, 2, 2, 2, "relu" },  /* conv_2 + pool_2 */
    { 12, 10, 40, 60, 3, 3, 2, 2, 2, 2, "relu" },  /* conv_3 + pool_3 */
    { 9, 10, 3, 5, 2, 2, 2, 2, 2, 2, "linear" },   /* odd conv rows and columns left out */
    { 11, 9, 2, 17, 3, 3, 3, 3, 2, 2, "relu" },    /* overlapping windows */
    { 7, 30, 3, 6, 2, 3, 1, 2, 1, 1, "linear" },   /* 1-row windows, stride 1 */
    { 4, 4, 3, 100, 2, 2, 3, 3, 3, 3, "relu" },    /* one window per image */
    /* Winograd's (3x3 stride 1, then 2x2 stride 2): an odd conv row and column left out,
     * channel counts that leave vectors part full, fewer windows than a register tile */
    { 13, 12, 5, 17, 3, 3, 2, 2, 2, 2, "linear" },
    { 9, 9, 33, 100, 3, 3, 2, 2, 2, 2, "relu" },
    { 6, 6, 3, 20, 3, 3, 2, 2, 2, 2, "relu" },
  };

  for (guint mode = 0; mode < 3; mode++)
    {
      if (conv_modes[mode] != NULL)
        g_setenv ("PRUNESCOPE_CONV", conv_modes[mode], TRUE);
      for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
        {
          check_fused (&cases[i], 3);
          check_fused (&cases[i], 1);
        }
      g_unsetenv ("PRUNESCOPE_CONV");
    }
}

/* ---- Winograd's F(2x2, 3x3) and F(4x4, 3x3) against the sums in double ---- */

typedef struct {
  int h, w, cin, cout;
  const char *activation;
} WinoCase;

/* Each pool output against conv + bias (+ ReLU) + max-pool computed in double: within
 * 2^-20 of the scale of its sums (the largest sum of |w x| + |b| in its window) by
 * F(2x2, 3x3), 2^-17 by F(4x4, 3x3) (its transforms multiply by up to 8 and 25: measured
 * 2^-19.5 here); the direct kernel, summing in float, is within K 2^-24 of it (2^-16.5
 * for conv_2's K = 180). F(4x4) takes the windows in the even part of the pool's rows and
 * columns, F(2x2) the others. */
static void
check_winograd (const WinoCase *wc, int n)
{
  g_autofree char *conv_cfg = g_strdup_printf (
    "\"filters\": %d, \"kernel_size\": [3, 3], \"activation\": \"%s\"", wc->cout, wc->activation);
  GString *json = model_begin (wc->h, wc->w, wc->cin);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (wc->cin * 31 + wc->cout);
  const PsLayer *conv, *pool;
  PsWinograd *wino;
  g_autofree float *x = NULL, *out = NULL, *scratch = NULL;
  gboolean relu = g_str_equal (wc->activation, "relu");
  gboolean f4 = g_strcmp0 (g_getenv ("PRUNESCOPE_WINOGRAD"), "2") != 0;
  int ph4 = 0, pw4 = 0;
  double worst[2] = { 0.0, 0.0 };

  add_layer (json, "Conv2D", "conv", conv_cfg, "input");
  add_layer (json, "MaxPooling2D", "pool", "\"pool_size\": [2, 2], \"strides\": [2, 2]", "conv");
  m = model_end (json, "pool", 3, wc->cout + wc->h);
  conv = m->layers[ps_model_find_layer (m, "conv")];
  pool = m->layers[ps_model_find_layer (m, "pool")];
  if (f4 && pool->out.h >= 2 && pool->out.w >= 2)
    ph4 = pool->out.h / 2 * 2, pw4 = pool->out.w / 2 * 2;
  wino = ps_winograd_new (conv, pool);
  if (!ps_conv_available ())
    {
      g_assert_null (wino);
      g_test_skip ("no AVX-512 on this CPU: the plans use im2col + sgemm");
      return;
    }
  g_assert_nonnull (wino);
  x = g_new (float, (gsize) n * wc->h * wc->w * wc->cin);
  for (gsize i = 0; i < (gsize) n * wc->h * wc->w * wc->cin; i++)
    x[i] = (float) g_rand_double_range (rand, -1, 1);
  out = g_new (float, (gsize) n * ps_shape_size (pool->out));
  /* exactly the size asked for: the sanitizers see a write past it */
  scratch = g_new (float, ps_winograd_scratch_size (wino));
  ps_winograd_forward_pool (wino, n, x, relu, out, scratch);
  for (int b = 0; b < n; b++)
    for (int py = 0; py < pool->out.h; py++)
      for (int px = 0; px < pool->out.w; px++)
        for (int o = 0; o < wc->cout; o++)
          {
            double best = -G_MAXDOUBLE, scale = 0.0, got, err;
            gboolean by4 = py < ph4 && px < pw4;

            for (int wy = 0; wy < 2; wy++)
              for (int wx = 0; wx < 2; wx++)
                {
                  int oy = 2 * py + wy, ox = 2 * px + wx;
                  double sum = conv->bias[o], abs_sum = fabs (conv->bias[o]);

                  for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++)
                      for (int c = 0; c < wc->cin; c++)
                        {
                          double v = x[(((gsize) b * wc->h + oy + ky) * wc->w + ox + kx) * wc->cin + c];
                          double k = conv->kernel[((gsize) (ky * 3 + kx) * wc->cin + c) * wc->cout + o];

                          sum += v * k;
                          abs_sum += fabs (v * k);
                        }
                  best = MAX (best, relu ? MAX (sum, 0.0) : sum);
                  scale = MAX (scale, abs_sum);
                }
            got = out[(((gsize) b * pool->out.h + py) * pool->out.w + px) * wc->cout + o];
            err = fabs (got - best) / scale;
            worst[by4] = MAX (worst[by4], err);
            g_assert_cmpfloat (err, <=, by4 ? 0x1p-17 : 0x1p-20);
          }
  g_test_message ("%dx%dx%d -> %d: worst error of the sums' scale %.2g by F(2x2, 3x3), %.2g by "
                  "F(4x4, 3x3)", wc->h, wc->w, wc->cin, wc->cout, worst[0], worst[1]);
  ps_winograd_free (wino);
}

static void
test_conv_winograd (void)
{
  const WinoCase cases[] = {
    { 26, 22, 20, 40, "relu" },   /* DeepID's conv_2 + pool_2, all by F(4x4) */
    { 12, 10, 40, 60, "relu" },   /* conv_3 + pool_3: its last row of windows by F(2x2) */
    { 13, 12, 5, 17, "linear" },  /* an odd conv row and column left out */
    { 9, 9, 33, 100, "relu" },    /* seven vectors of outputs: two register tiles across */
    { 6, 6, 3, 20, "relu" },      /* four windows an image: fewer than a register tile */
    { 11, 11, 33, 100, "linear" }, /* a conv row and column left out, odd counts */
    { 14, 16, 7, 20, "relu" },    /* the last column of windows by F(2x2), no row */
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      check_winograd (&cases[i], 3);
      check_winograd (&cases[i], 1);
    }
  /* $PRUNESCOPE_WINOGRAD=2 keeps F(2x2) where F(4x4) would be taken */
  g_setenv ("PRUNESCOPE_WINOGRAD", "2", TRUE);
  check_winograd (&cases[0], 3);
  check_winograd (&cases[1], 1);
  g_unsetenv ("PRUNESCOPE_WINOGRAD");
}

/* Where Winograd's kernel does not apply, or is not asked for, it says so (NULL): the
 * plan then runs a direct kernel. */
static void
test_conv_winograd_choice (void)
{
  const char *const other[] = { "channels", "rows", "gemm" };
  GString *json = model_begin (12, 10, 4);
  g_autoptr (PsModel) m = NULL;
  PsLayer *conv, *pool;
  PsWinograd *wino;

  add_layer (json, "Conv2D", "conv", "\"filters\": 8, \"kernel_size\": [3, 3]", "input");
  add_layer (json, "MaxPooling2D", "pool", "\"pool_size\": [2, 2], \"strides\": [2, 2]", "conv");
  m = model_end (json, "pool", 3, 5);
  conv = m->layers[ps_model_find_layer (m, "conv")];
  pool = m->layers[ps_model_find_layer (m, "pool")];
  if (!ps_conv_available ())
    {
      g_test_skip ("no AVX-512 on this CPU");
      return;
    }
  wino = ps_winograd_new (conv, pool);
  g_assert_nonnull (wino);
  ps_winograd_free (wino);
  g_setenv ("PRUNESCOPE_CONV", "winograd", TRUE);
  wino = ps_winograd_new (conv, pool);
  g_assert_nonnull (wino);
  ps_winograd_free (wino);
  for (guint i = 0; i < G_N_ELEMENTS (other); i++)
    {
      g_setenv ("PRUNESCOPE_CONV", other[i], TRUE);
      g_assert_null (ps_winograd_new (conv, pool));
    }
  g_unsetenv ("PRUNESCOPE_CONV");
  /* an infinite weight: the transforms would make NaNs the direct kernel does not */
  conv->kernel[5] = INFINITY;
  g_assert_null (ps_winograd_new (conv, pool));
  conv->kernel[5] = 0.5f;
  /* a pool of other windows */
  pool->kh = 3;
  g_assert_null (ps_winograd_new (conv, pool));
  pool->kh = 2;
  /* strides */
  conv->sh = 2;
  g_assert_null (ps_winograd_new (conv, pool));
}

/* ---- the row kernel against the channel kernel: the same bits ---- */

typedef struct {
  int h, w, cin, cout, kh, kw, sh, sw;  /* a valid convolution */
  int ph, pw, psh, psw;                 /* then a valid max-pool; ph == 0: none */
  const char *activation;
} RowsCase;

/* A plan on each direct kernel, given the same input. */
static PsPlan *
rows_plan (const PsModel *m, const char *mode, int n, const float *input)
{
  PsPlan *plan;

  g_setenv ("PRUNESCOPE_CONV", mode, TRUE);
  plan = ps_plan_new (m, n + 2);
  g_unsetenv ("PRUNESCOPE_CONV");
  memcpy (ps_plan_output (plan, m->input), input,
          sizeof (float) * n * ps_shape_size (m->layers[m->input]->out));
  return plan;
}

static void
assert_same_bits (const PsModel *m, PsPlan *a, PsPlan *b, int layer, int n, gboolean linear)
{
  gsize len = sizeof (float) * n * ps_shape_size (m->layers[layer]->out);

  if (linear)
    g_assert_cmpmem (ps_plan_linear (a, layer), len, ps_plan_linear (b, layer), len);
  else
    g_assert_cmpmem (ps_plan_output (a, layer), len, ps_plan_output (b, layer), len);
}

/* @rc on the row kernel and on the channel kernel, in a plan with the pool fused and in one
 * without (keeping the linear values): every layer's output the same bits; and the row
 * kernel's against the plain loops. */
static void
check_rows (const RowsCase *rc, int n)
{
  g_autofree char *conv_cfg = g_strdup_printf (
    "\"filters\": %d, \"kernel_size\": [%d, %d], \"strides\": [%d, %d], \"activation\": \"%s\"",
    rc->cout, rc->kh, rc->kw, rc->sh, rc->sw, rc->activation);
  g_autofree char *pool_cfg = g_strdup_printf ("\"pool_size\": [%d, %d], \"strides\": [%d, %d]",
                                               rc->ph, rc->pw, rc->psh, rc->psw);
  GString *json = model_begin (rc->h, rc->w, rc->cin);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (rc->w * 13 + rc->cout);
  g_autofree float *input = NULL;
  g_autoptr (Tensor) x = NULL;
  g_autofree float *planes = NULL, *kept = NULL;
  int conv, last;

  add_layer (json, "Conv2D", "conv", conv_cfg, "input");
  if (rc->ph > 0)
    add_layer (json, "MaxPooling2D", "pool", pool_cfg, "conv");
  m = model_end (json, rc->ph > 0 ? "pool" : "conv", 5, rc->h + rc->cout);
  conv = ps_model_find_layer (m, "conv");
  last = rc->ph > 0 ? ps_model_find_layer (m, "pool") : conv;
  x = tensor_new (n, rc->h, rc->w, rc->cin);
  input = g_new (float, tensor_size (x));
  for (gsize i = 0; i < tensor_size (x); i++)
    x->v[i] = input[i] = (float) g_rand_double_range (rand, -1, 1);

  /* the row kernel does run */
  {
    PsConvPack *pack;

    g_setenv ("PRUNESCOPE_CONV", "rows", TRUE);
    pack = ps_conv_pack_new (m->layers[conv]);
    g_unsetenv ("PRUNESCOPE_CONV");
    g_assert_true (ps_conv_pack_uses_rows (pack));
    ps_conv_pack_free (pack);
  }
  /* the same images channels-first, as the lab's files have them */
  planes = g_new (float, tensor_size (x) + 16);
  for (int b = 0; b < n; b++)
    for (int q = 0; q < rc->h * rc->w; q++)
      for (int c = 0; c < rc->cin; c++)
        planes[((gsize) b * rc->cin + c) * rc->h * rc->w + q] = input[((gsize) b * rc->h * rc->w + q) * rc->cin + c];
  kept = g_memdup2 (planes, sizeof (float) * tensor_size (x));
  for (int fused = 0; fused < 2; fused++)
    {
      PsPlan *rows = rows_plan (m, "rows", n, input);
      PsPlan *channels = rows_plan (m, "channels", n, input);
      PsPlan *planar = rows_plan (m, "rows", n, input);
      Tensor **want = naive_network (m, x);

      if (fused)
        {
          ps_plan_set_fused (rows, TRUE);
          ps_plan_set_fused (channels, TRUE);
          ps_plan_set_fused (planar, TRUE);
        }
      else
        {
          ps_plan_keep_linear (rows, conv);
          ps_plan_keep_linear (channels, conv);
          ps_plan_keep_linear (planar, conv);
        }

      /* nothing written past the batch */
      memset (ps_plan_output (rows, last), 0x7f, sizeof (float) * (n + 2) * ps_shape_size (m->layers[last]->out));
      ps_plan_forward (rows, n);
      ps_plan_forward (channels, n);
      {
        const guchar *past = (const guchar *) (ps_plan_output (rows, last) + n * ps_shape_size (m->layers[last]->out));

        for (gsize k = 0; k < sizeof (float) * 2 * ps_shape_size (m->layers[last]->out); k++)
          g_assert_cmpuint (past[k], ==, 0x7f);
      }
      for (int i = fused ? last : conv; i < m->n_layers; i++)
        {
          g_autoptr (Tensor) got = plan_tensor (m, rows, i, n);

          assert_same_bits (m, rows, channels, i, n, FALSE);
          assert_close (got, want[i], RTOL);
        }
      if (!fused)
        assert_same_bits (m, rows, channels, conv, n, TRUE);
      /* planes read as they are where the row kernel with its pool reads one column phase;
       * reordered by the plan otherwise: the same bits either way, the planes untouched */
      g_assert_cmpint (ps_plan_reads_planar (planar), ==, fused && rc->ph > 0 && rc->sw == 1);
      memset (ps_plan_output (planar, m->input), 0, sizeof (float) * tensor_size (x));
      ps_plan_set_input_planar (planar, planes);
      ps_plan_forward (planar, n);
      for (int i = fused ? last : conv; i < m->n_layers; i++)
        assert_same_bits (m, rows, planar, i, n, FALSE);
      g_assert_cmpmem (planes, sizeof (float) * tensor_size (x), kept, sizeof (float) * tensor_size (x));
      ps_plan_free (planar);
      naive_network_free (m, want);
      ps_plan_free (rows);
      ps_plan_free (channels);
    }
}

static void
test_conv_rows (void)
{
  const RowsCase cases[] = {
    { 55, 47, 3, 20, 4, 4, 1, 1, 2, 2, 2, 2, "relu" },    /* DeepID conv_1 + pool_1 */
    { 55, 47, 3, 20, 4, 4, 1, 1, 0, 0, 0, 0, "relu" },    /* without the pool */
    { 26, 22, 20, 40, 3, 3, 1, 1, 2, 2, 2, 2, "relu" },   /* conv_2: 20 columns, 16 + 4 */
    /* output columns 1, 15, 16, 17, 33, 48, 49 (chunks of 3 + 1 vectors), 70 (3 + 2) */
    { 6, 4, 2, 5, 3, 4, 1, 1, 0, 0, 0, 0, "linear" },
    { 7, 17, 3, 9, 2, 3, 1, 1, 2, 2, 2, 2, "relu" },
    { 5, 18, 1, 1, 2, 3, 1, 1, 0, 0, 0, 0, "linear" },
    { 6, 19, 4, 17, 3, 3, 1, 1, 3, 3, 2, 2, "relu" },     /* overlapping pool windows */
    { 4, 35, 3, 33, 2, 3, 1, 1, 2, 3, 1, 3, "linear" },   /* 5 blocks of channels; pool stride 3 */
    { 5, 50, 2, 24, 3, 3, 1, 1, 2, 2, 2, 1, "relu" },     /* pool stride 1 across */
    { 3, 51, 5, 16, 2, 4, 1, 1, 0, 0, 0, 0, "relu" },
    { 4, 72, 3, 8, 3, 3, 1, 1, 1, 2, 1, 2, "linear" },
    { 9, 26, 3, 20, 3, 3, 1, 1, 2, 3, 2, 2, "relu" },    /* 2x3 windows, stride 2 */
    /* strides: column phases of the planar input */
    { 11, 40, 3, 20, 3, 3, 2, 2, 2, 2, 2, 2, "relu" },
    { 9, 37, 2, 7, 3, 4, 1, 3, 0, 0, 0, 0, "linear" },
    { 12, 30, 4, 40, 4, 2, 3, 2, 2, 2, 2, 2, "relu" },
    /* channels per tile at one vector of columns: 16, then 10 + 10 */
    { 6, 10, 3, 16, 3, 3, 1, 1, 0, 0, 0, 0, "relu" },
    { 8, 12, 3, 20, 3, 3, 1, 1, 2, 2, 2, 2, "linear" },
  };

  if (!ps_conv_available ())
    {
      g_test_skip ("the direct kernels need AVX-512");
      return;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      check_rows (&cases[i], 4);
      check_rows (&cases[i], 1);
    }
}

/* Each layer's kernel is the one with fewer vector multiply-adds: DeepID's conv_1 (20
 * channels, 44 columns) on rows, its conv_2 (40 channels, 20 columns) and conv_3 on
 * channels. */
static void
test_conv_rows_choice (void)
{
  const struct { int h, w, cin, cout, kh; gboolean rows; } cases[] = {
    { 55, 47, 3, 20, 4, TRUE },
    { 26, 22, 20, 40, 3, FALSE },
    { 12, 10, 40, 60, 3, FALSE },
    { 40, 40, 3, 16, 3, FALSE }, /* full vectors both ways: the channel kernel */
    /* 16 columns: rows need 24/32 and 28/32 of the channel kernel's multiply-adds; the
     * row kernel's transpositions need it to save a fifth */
    { 10, 18, 3, 24, 3, TRUE },
    { 10, 18, 3, 28, 3, FALSE },
  };

  if (!ps_conv_available ())
    {
      g_test_skip ("the direct kernels need AVX-512");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *cfg = g_strdup_printf (
        "\"filters\": %d, \"kernel_size\": [%d, %d], \"activation\": \"relu\"",
        cases[i].cout, cases[i].kh, cases[i].kh);
      GString *json = model_begin (cases[i].h, cases[i].w, cases[i].cin);
      g_autoptr (PsModel) m = NULL;
      PsConvPack *pack;

      add_layer (json, "Conv2D", "conv", cfg, "input");
      m = model_end (json, "conv", 2, 3);
      pack = ps_conv_pack_new (m->layers[ps_model_find_layer (m, "conv")]);
      g_assert_cmpint (ps_conv_pack_uses_rows (pack), ==, cases[i].rows);
      ps_conv_pack_free (pack);
    }
}

/* ---- MaxPooling2D ---- */

typedef struct {
  int h, w, c, ph, pw, sh, sw; /* sh == 0: no strides in the config */
  gboolean same;
} PoolCase;

static void
check_pool (const PoolCase *pc, double lo, double hi)
{
  g_autofree char *strides = pc->sh ? g_strdup_printf (", \"strides\": [%d, %d]", pc->sh, pc->sw)
                                    : g_strdup ("");
  g_autofree char *cfg = g_strdup_printf ("\"pool_size\": [%d, %d]%s, \"padding\": \"%s\"",
                                          pc->ph, pc->pw, strides, pc->same ? "same" : "valid");
  GString *json = model_begin (pc->h, pc->w, pc->c);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;
  int pool;

  add_layer (json, "MaxPooling2D", "pool", cfg, "input");
  m = model_end (json, "pool", 2, 5);
  pool = ps_model_find_layer (m, "pool");
  plan = ps_plan_new (m, BATCH);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, lo, hi, pc->h * 31 + pc->ph);
    g_autoptr (Tensor) want = NULL;
    g_autoptr (Tensor) got = NULL;

    ps_plan_forward (plan, BATCH);
    want = naive_pool (x, m->layers[pool]);
    got = plan_tensor (m, plan, pool, BATCH);
    /* a maximum is one of the inputs: exact */
    assert_close (got, want, 0);
  }
  ps_plan_free (plan);
}

static void
check_pool_cases (const PoolCase *cases, gsize n)
{
  for (gsize i = 0; i < n; i++)
    {
      check_pool (&cases[i], -1, 1);
      /* all negative: a zero from padding would win */
      check_pool (&cases[i], -2, -0.1);
    }
}

static void
test_pool_valid (void)
{
  const PoolCase cases[] = {
    { 8, 6, 3, 2, 2, 2, 2, FALSE },
    { 7, 9, 2, 2, 2, 2, 2, FALSE },
    { 7, 6, 4, 2, 2, 1, 1, FALSE },
    { 9, 8, 3, 3, 3, 3, 3, FALSE },
    { 9, 8, 3, 3, 3, 2, 2, FALSE },
    { 7, 7, 2, 3, 3, 1, 1, FALSE },
  };
  check_pool_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_pool_same (void)
{
  const PoolCase cases[] = {
    { 8, 6, 3, 2, 2, 2, 2, TRUE },
    { 7, 9, 2, 2, 2, 2, 2, TRUE },
    { 7, 6, 4, 2, 2, 1, 1, TRUE },
    { 9, 8, 3, 3, 3, 3, 3, TRUE },
    { 8, 7, 3, 3, 3, 2, 2, TRUE },
    { 7, 7, 2, 3, 3, 1, 1, TRUE },
    { 6, 5, 2, 3, 2, 2, 1, TRUE },
  };
  check_pool_cases (cases, G_N_ELEMENTS (cases));
}

static void
test_pool_default_strides (void)
{
  /* Keras: strides default to the pool size */
  const PoolCase cases[] = {
    { 8, 6, 3, 2, 2, 0, 0, FALSE },
    { 9, 8, 2, 3, 3, 0, 0, FALSE },
    { 7, 8, 2, 3, 3, 0, 0, TRUE },
  };
  check_pool_cases (cases, G_N_ELEMENTS (cases));
}

/* ---- Dense, Flatten, Dropout ---- */

static void
test_dense (void)
{
  GString *json = model_begin (3, 4, 2);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;

  add_layer (json, "Flatten", "flat", NULL, "input");
  add_layer (json, "Dense", "hidden", "\"units\": 9, \"activation\": \"relu\"", "flat");
  add_layer (json, "Dense", "linear", "\"units\": 5", "hidden");
  add_layer (json, "Dense", "output", "\"units\": 6, \"activation\": \"softmax\"", "linear");
  m = model_end (json, NULL, 6, 3);
  plan = ps_plan_new (m, BATCH);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, -1, 1, 17);
    Tensor **want;

    ps_plan_forward (plan, BATCH);
    want = naive_network (m, x);
    for (int i = 0; i < m->n_layers; i++)
      {
        g_autoptr (Tensor) got = plan_tensor (m, plan, i, BATCH);
        assert_close (got, want[i], RTOL);
      }
    /* softmax rows sum to 1 */
    for (int b = 0; b < BATCH; b++)
      {
        double sum = 0;
        for (int j = 0; j < 6; j++)
          sum += ps_plan_output (plan, m->output)[b * 6 + j];
        g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-5);
      }
    naive_network_free (m, want);
  }
  ps_plan_free (plan);
}

static void
test_flatten_dropout (void)
{
  GString *json = model_begin (5, 4, 3);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;
  int conv, drop, flat;

  add_layer (json, "Conv2D", "conv", "\"filters\": 3, \"kernel_size\": [2, 2], \"activation\": \"relu\"", "input");
  add_layer (json, "Dropout", "drop", "\"rate\": 0.5", "conv");
  add_layer (json, "Flatten", "flat", NULL, "drop");
  add_layer (json, "Dense", "output", "\"units\": 4, \"activation\": \"softmax\"", "flat");
  m = model_end (json, NULL, 4, 8);
  conv = ps_model_find_layer (m, "conv");
  drop = ps_model_find_layer (m, "drop");
  flat = ps_model_find_layer (m, "flat");
  plan = ps_plan_new (m, BATCH);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, 0, 1, 4);
    g_autoptr (Tensor) c = NULL;
    g_autoptr (Tensor) d = NULL;
    g_autoptr (Tensor) f = NULL;
    g_autoptr (Tensor) want = NULL;
    Tensor **net;

    ps_plan_forward (plan, BATCH);
    c = plan_tensor (m, plan, conv, BATCH);
    d = plan_tensor (m, plan, drop, BATCH);
    f = plan_tensor (m, plan, flat, BATCH);
    /* Dropout is the identity at inference: bit for bit */
    assert_close (d, c, 0);
    /* Flatten keeps Keras' (h, w, c) order: bit for bit */
    want = naive_flatten (c);
    assert_close (f, want, 0);
    net = naive_network (m, x);
    {
      g_autoptr (Tensor) out = plan_tensor (m, plan, m->output, BATCH);
      assert_close (out, net[m->output], RTOL);
    }
    naive_network_free (m, net);
  }
  ps_plan_free (plan);
}

/* ---- Add ---- */

static void
test_add (void)
{
  const char *conv = "\"filters\": 4, \"kernel_size\": [3, 3], \"padding\": \"same\"";
  GString *json = model_begin (6, 5, 2);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;

  add_layer (json, "Conv2D", "a", conv, "input");
  add_layer (json, "Conv2D", "b", conv, "input");
  add_layer (json, "Conv2D", "c", conv, "input");
  add_layer (json, "Add", "add2", NULL, "a,b");
  add_layer (json, "Add", "add3", NULL, "a,b,c");
  add_layer (json, "Add", "sum", NULL, "add2,add3");
  m = model_end (json, "sum", 3, 21);
  plan = ps_plan_new (m, BATCH);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, -1, 1, 9);
    const char *names[] = { "a", "b", "c", "add2", "add3", "sum" };
    Tensor *t[G_N_ELEMENTS (names)];
    Tensor *xs[3];

    ps_plan_forward (plan, BATCH);
    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      t[i] = plan_tensor (m, plan, ps_model_find_layer (m, names[i]), BATCH);
    /* the addends differ, or the sums prove nothing */
    g_assert_cmpfloat (fabs (t[0]->v[0] - t[1]->v[0]), >, 1e-6);
    xs[0] = t[0], xs[1] = t[1], xs[2] = t[2];
    {
      g_autoptr (Tensor) two = naive_add (xs, 2);
      g_autoptr (Tensor) three = naive_add (xs, 3);
      g_autoptr (Tensor) sum = NULL;

      assert_close (t[3], two, 1e-6);
      assert_close (t[4], three, 1e-6);
      xs[0] = two, xs[1] = three;
      sum = naive_add (xs, 2);
      assert_close (t[5], sum, 1e-6);
    }
    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      tensor_free (t[i]);
  }
  ps_plan_free (plan);
}

/* ---- Activation ---- */

/* ReLU bit for bit as the plain loop: every length around the vector width, in place and
 * not, with NaN, infinities, -0 and denormals among the values. */
static void
test_relu_exact (void)
{
  const float special[] = { NAN, -NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 1e-45f, -1e-45f, FLT_MAX, -FLT_MAX };
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);

  for (int n = 0; n <= 70; n++)
    for (int in_place = 0; in_place < 2; in_place++)
      {
        g_autofree float *in = g_new (float, n + 1);
        g_autofree float *out = g_new (float, n + 2);
        g_autofree float *want = g_new (float, n + 1);

        for (int i = 0; i < n; i++)
          in[i] = g_rand_int_range (rand, 0, 4) == 0 ? special[g_rand_int_range (rand, 0, G_N_ELEMENTS (special))]
                                                     : (float) g_rand_double_range (rand, -2, 2);
        for (int i = 0; i < n; i++)
          want[i] = in[i] > 0.0f ? in[i] : 0.0f;
        out[n] = 42.0f;
        if (in_place)
          {
            memcpy (out, in, sizeof (float) * n);
            ps_activation_apply (PS_ACT_RELU, 1, n, out, out);
          }
        else
          ps_activation_apply (PS_ACT_RELU, 1, n, in, out);
        g_assert_cmpmem (out, sizeof (float) * n, want, sizeof (float) * n);
        g_assert_cmpfloat (out[n], ==, 42.0f); /* nothing written past the end */
      }
}

static void
test_activation (void)
{
  GString *json = model_begin (3, 4, 5);
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;

  add_layer (json, "Activation", "relu", "\"activation\": \"relu\"", "input");
  add_layer (json, "Activation", "softmax_map", "\"activation\": \"softmax\"", "input");
  add_layer (json, "Activation", "linear", "\"activation\": \"linear\"", "input");
  add_layer (json, "Flatten", "flat", NULL, "input");
  add_layer (json, "Activation", "softmax_vec", "\"activation\": \"softmax\"", "flat");
  add_layer (json, "Add", "sum", NULL, "relu,softmax_map,linear");
  m = model_end (json, "sum", 3, 2);
  plan = ps_plan_new (m, BATCH);
  {
    g_autoptr (Tensor) x = random_input (m, plan, BATCH, -3, 3, 6);
    Tensor **want;
    const char *names[] = { "relu", "softmax_map", "linear", "softmax_vec" };

    ps_plan_forward (plan, BATCH);
    want = naive_network (m, x);
    for (guint i = 0; i < G_N_ELEMENTS (names); i++)
      {
        int l = ps_model_find_layer (m, names[i]);
        g_autoptr (Tensor) got = plan_tensor (m, plan, l, BATCH);

        assert_close (got, want[l], RTOL);
        if (g_str_has_prefix (names[i], "softmax"))
          for (gsize p = 0; p < tensor_size (got) / got->c; p++)
            {
              double sum = 0;
              for (int j = 0; j < got->c; j++)
                sum += got->v[p * got->c + j];
              g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-5);
            }
      }
    naive_network_free (m, want);
  }
  ps_plan_free (plan);
}

/* ---- a whole network ---- */

static void
test_small_model (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (3, 7);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 8, 5);
  PsShape in = m->layers[m->input]->out;
  g_autoptr (Tensor) x = tensor_new (ds->n, in.h, in.w, in.c);
  PsPlan *plan = ps_plan_new (m, ds->n);
  PsPlan *logits = ps_plan_new (m, ds->n);
  g_autofree int *classes = g_new (int, ds->n);
  g_autofree int *logit_classes = g_new (int, ds->n);
  Tensor **want;
  int decided = 0;

  ps_dataset_get_batch (ds, 0, ds->n, m->input_scale, ps_plan_output (plan, m->input));
  ps_dataset_get_batch (ds, 0, ds->n, m->input_scale, ps_plan_output (logits, m->input));
  for (gsize i = 0; i < tensor_size (x); i++)
    x->v[i] = ds->u8[i] * m->input_scale;
  ps_plan_set_logits (logits, TRUE);
  ps_plan_forward (plan, ds->n);
  ps_plan_forward (logits, ds->n);
  want = naive_network (m, x);

  /* every layer, the output's probabilities included */
  for (int i = 0; i < m->n_layers; i++)
    {
      g_autoptr (Tensor) got = plan_tensor (m, plan, i, ds->n);
      g_assert_cmpint (m->layers[i]->out.h, ==, want[i]->h);
      g_assert_cmpint (m->layers[i]->out.w, ==, want[i]->w);
      g_assert_cmpint (m->layers[i]->out.c, ==, want[i]->c);
      assert_close (got, want[i], RTOL);
    }

  /* logits are the output layer's values before its softmax */
  {
    const PsLayer *out = m->layers[m->output];
    PsLayer lin = *out;
    g_autoptr (Tensor) got = plan_tensor (m, logits, m->output, ds->n);
    g_autoptr (Tensor) want_logits = NULL;

    lin.activation = PS_ACT_LINEAR;
    want_logits = naive_dense (want[out->inputs[0]], &lin);
    assert_close (got, want_logits, RTOL);
  }

  /* the class is the naive argmax wherever the naive scores are not nearly tied */
  ps_plan_argmax (plan, ds->n, classes);
  ps_plan_argmax (logits, ds->n, logit_classes);
  for (int b = 0; b < ds->n; b++)
    {
      const double *p = want[m->output]->v + (gsize) b * m->n_classes;
      int best = 0;
      double second = -INFINITY;

      for (int j = 1; j < m->n_classes; j++)
        if (p[j] > p[best])
          best = j;
      for (int j = 0; j < m->n_classes; j++)
        if (j != best)
          second = MAX (second, p[j]);
      if (p[best] - second < 1e-4)
        continue;
      decided++;
      g_assert_cmpint (classes[b], ==, best);
      g_assert_cmpint (logit_classes[b], ==, best);
    }
  g_assert_cmpint (decided, >=, ds->n / 2);

  naive_network_free (m, want);
  ps_plan_free (plan);
  ps_plan_free (logits);
}

/* ---- argmax and margin ---- */

static void
check_argmax_rows (PsModel *m, PsPlan *plan, const float *rows, int n)
{
  int k = m->n_classes;
  g_autofree int *classes = g_new (int, n);
  g_autofree int *plain = g_new (int, n);
  g_autofree float *margins = g_new (float, n);

  memcpy (ps_plan_output (plan, m->output), rows, sizeof (float) * n * k);
  ps_plan_argmax_margin (plan, n, classes, margins);
  ps_plan_argmax (plan, n, plain);
  for (int b = 0; b < n; b++)
    {
      const float *r = rows + (gsize) b * k;
      int best = 0;
      double second = -INFINITY;

      /* the first of equal maxima */
      for (int j = 1; j < k; j++)
        if (r[j] > r[best])
          best = j;
      for (int j = 0; j < k; j++)
        if (j != best)
          second = MAX (second, (double) r[j]);
      g_assert_cmpint (classes[b], ==, best);
      g_assert_cmpint (plain[b], ==, best);
      g_assert_cmpfloat (margins[b], ==, (float) (r[best] - second));
    }
}

static void
test_argmax_margin (void)
{
  GString *json = model_begin (1, 1, 3);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (99);
  PsPlan *plan;
  enum { K = 5, N = 64 };
  /* the best first, last, between, tied, and everything negative */
  const float fixed[][K] = {
    { 9, 1, 2, 3, 4 },
    { 1, 2, 3, 4, 9 },
    { 1, 7, 2, 9, 3 },
    { 4, 9, 1, 9, 2 },
    { -5, -1, -3, -2, -4 },
    { 3, 3, 3, 3, 3 },
    { 0.5f, 0.25f, 0.125f, 0, -1 },
  };
  g_autofree float *rows = g_new (float, N * K);

  add_layer (json, "Flatten", "flat", NULL, "input");
  add_layer (json, "Dense", "output", "\"units\": 5", "flat");
  m = model_end (json, NULL, K, 1);
  plan = ps_plan_new (m, N);

  check_argmax_rows (m, plan, (const float *) fixed, G_N_ELEMENTS (fixed));
  {
    g_autofree int *classes = g_new (int, G_N_ELEMENTS (fixed));
    g_autofree float *margins = g_new (float, G_N_ELEMENTS (fixed));

    /* values worked out by hand for the rows above */
    ps_plan_argmax_margin (plan, G_N_ELEMENTS (fixed), classes, margins);
    g_assert_cmpint (classes[0], ==, 0);
    g_assert_cmpfloat (margins[0], ==, 5);
    g_assert_cmpint (classes[1], ==, 4);
    g_assert_cmpfloat (margins[1], ==, 5);
    g_assert_cmpint (classes[3], ==, 1);
    g_assert_cmpfloat (margins[3], ==, 0);
    g_assert_cmpint (classes[4], ==, 1);
    g_assert_cmpfloat (margins[4], ==, 1);
  }

  for (int i = 0; i < N * K; i++)
    rows[i] = (float) g_rand_double_range (rand, -10, 10);
  check_argmax_rows (m, plan, rows, N);
  ps_plan_free (plan);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/plan/conv/valid-stride1", test_conv_valid_stride1);
  g_test_add_func ("/plan/conv/valid-stride2", test_conv_valid_stride2);
  g_test_add_func ("/plan/conv/same-stride1", test_conv_same_stride1);
  g_test_add_func ("/plan/conv/same-stride2", test_conv_same_stride2);
  g_test_add_func ("/plan/conv/kernel-3x2", test_conv_kernel_3x2);
  g_test_add_func ("/plan/conv/channels", test_conv_channels);
  g_test_add_func ("/plan/conv/1x1", test_conv_1x1);
  g_test_add_func ("/plan/conv/softmax", test_conv_softmax);
  g_test_add_func ("/plan/conv/direct-tiles", test_conv_direct_tiles);
  g_test_add_func ("/plan/conv/fused-pool", test_conv_fused_pool);
  g_test_add_func ("/plan/conv/winograd", test_conv_winograd);
  g_test_add_func ("/plan/conv/winograd-choice", test_conv_winograd_choice);
  g_test_add_func ("/plan/conv/rows", test_conv_rows);
  g_test_add_func ("/plan/conv/rows-choice", test_conv_rows_choice);
  g_test_add_func ("/plan/dense/direct", test_dense_direct);
  g_test_add_func ("/plan/sub-scaled", test_sub_scaled);
  g_test_add_func ("/plan/sub-scaled-sum", test_sub_scaled_sum);
  g_test_add_func ("/plan/sub-windows", test_sub_windows);
  g_test_add_func ("/plan/elementwise-ops", test_elementwise_ops);
  g_test_add_func ("/plan/conv/padded-frame", test_conv_padded_frame);
  g_test_add_func ("/plan/sq-dist", test_sq_dist);
  g_test_add_func ("/plan/row-argmax", test_row_argmax);
  g_test_add_func ("/plan/dense/sparse", test_dense_sparse);
  g_test_add_func ("/plan/dense/sparse-groups", test_dense_sparse_groups);
  g_test_add_func ("/plan/dense/sparse-plan", test_plan_sparse);
  g_test_add_func ("/plan/pool/valid", test_pool_valid);
  g_test_add_func ("/plan/pool/same", test_pool_same);
  g_test_add_func ("/plan/pool/default-strides", test_pool_default_strides);
  g_test_add_func ("/plan/dense", test_dense);
  g_test_add_func ("/plan/flatten-dropout", test_flatten_dropout);
  g_test_add_func ("/plan/add", test_add);
  g_test_add_func ("/plan/activation", test_activation);
  g_test_add_func ("/plan/activation/relu-exact", test_relu_exact);
  g_test_add_func ("/plan/model/small", test_small_model);
  g_test_add_func ("/plan/model/caller-input", test_plan_input);
  g_test_add_func ("/plan/model/fronts-again", test_fronts_again);
  g_test_add_func ("/plan/argmax-margin", test_argmax_margin);

  return g_test_run ();
}
