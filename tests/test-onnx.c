/* test-onnx.c: ONNX models in and G out. Every operator is checked against plain NCHW
 * loops on small graphs built here; the fixture BadNet (PS_ONNX_FIXTURE) against PyTorch's
 * classes and the reference sweep; G written as ONNX, checked by onnx.checker, read back;
 * hostile files refused with one line. */
#include "config.h"

#include <glib/gstdio.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "ps-error.h"
#include "ps-infer.h"
#include "ps-onnx.h"
#include "ps-plan.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "ps-test-util.h"

/* ---- building ONNX graphs ---- */

typedef struct {
  int n, c, h, w;
} Dims;

typedef struct {
  GPtrArray  *garbage;
  GPtrArray  *nodes;
  GPtrArray  *inits;
  Dims        in;
  GRand      *rand;
  int         counter;
} Builder;

static gpointer
keep (Builder *b, gpointer p)
{
  g_ptr_array_add (b->garbage, p);
  return p;
}

static Builder *
builder_new (Dims in, guint32 seed)
{
  Builder *b = g_new0 (Builder, 1);

  b->garbage = g_ptr_array_new_with_free_func (g_free);
  b->nodes = g_ptr_array_new ();
  b->inits = g_ptr_array_new ();
  b->in = in;
  b->rand = g_rand_new_with_seed (seed);
  return b;
}

static void
builder_free (Builder *b)
{
  g_ptr_array_unref (b->garbage);
  g_ptr_array_unref (b->nodes);
  g_ptr_array_unref (b->inits);
  g_rand_free (b->rand);
  g_free (b);
}

static char *
fresh (Builder *b, const char *stem)
{
  return keep (b, g_strdup_printf ("%s_%d", stem, b->counter++));
}

static float *
randoms (Builder *b, gsize n, double lo, double hi)
{
  float *v = keep (b, g_new (float, MAX (n, 1)));

  for (gsize i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (b->rand, lo, hi);
  return v;
}

static const char *
init (Builder *b, const char *stem, const float *data, int n_dims, const gint64 *dims)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1));
  gsize n = 1;

  for (int i = 0; i < n_dims; i++)
    n *= dims[i];
  onnx__tensor_proto__init (t);
  t->name = fresh (b, stem);
  t->has_data_type = TRUE;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  t->n_dims = n_dims;
  t->dims = keep (b, g_memdup2 (dims, sizeof (gint64) * MAX (n_dims, 1)));
  t->n_float_data = n;
  t->float_data = keep (b, g_memdup2 (data, sizeof (float) * n));
  g_ptr_array_add (b->inits, t);
  return t->name;
}

static const char *
init_ints (Builder *b, const char *stem, const gint64 *v, gsize n)
{
  Onnx__TensorProto *t = keep (b, g_new0 (Onnx__TensorProto, 1));

  onnx__tensor_proto__init (t);
  t->name = fresh (b, stem);
  t->has_data_type = TRUE;
  t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  t->n_dims = 1;
  t->dims = keep (b, g_new (gint64, 1));
  t->dims[0] = n;
  t->n_int64_data = n;
  t->int64_data = keep (b, g_memdup2 (v, sizeof (gint64) * n));
  g_ptr_array_add (b->inits, t);
  return t->name;
}

/* A node with inputs (NULL-terminated); returns its output's name. */
static Onnx__NodeProto *
node (Builder *b, const char *op, const char *const *inputs)
{
  Onnx__NodeProto *n = keep (b, g_new0 (Onnx__NodeProto, 1));
  int k = 0;

  while (inputs[k] != NULL)
    k++;
  onnx__node_proto__init (n);
  n->op_type = (char *) op;
  n->name = fresh (b, op);
  n->n_input = k;
  n->input = keep (b, g_memdup2 (inputs, sizeof (char *) * MAX (k, 1)));
  n->n_output = 1;
  n->output = keep (b, g_new (char *, 1));
  n->output[0] = fresh (b, "t");
  g_ptr_array_add (b->nodes, n);
  return n;
}

static void
attr_ints (Builder *b, Onnx__NodeProto *n, const char *name, const gint64 *v, int count)
{
  Onnx__AttributeProto *a = keep (b, g_new0 (Onnx__AttributeProto, 1));
  Onnx__AttributeProto **list = keep (b, g_new0 (Onnx__AttributeProto *, n->n_attribute + 1));

  onnx__attribute_proto__init (a);
  a->name = (char *) name;
  a->has_type = TRUE;
  if (count < 0)
    {
      a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
      a->has_i = TRUE;
      a->i = v[0];
    }
  else
    {
      a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
      a->n_ints = count;
      a->ints = keep (b, g_memdup2 (v, sizeof (gint64) * count));
    }
  if (n->n_attribute > 0)
    memcpy (list, n->attribute, sizeof (gpointer) * n->n_attribute);
  list[n->n_attribute++] = a;
  n->attribute = list;
}

static void
attr_int (Builder *b, Onnx__NodeProto *n, const char *name, gint64 v)
{
  attr_ints (b, n, name, &v, -1);
}

static void
attr_float (Builder *b, Onnx__NodeProto *n, const char *name, float v)
{
  Onnx__AttributeProto *a = keep (b, g_new0 (Onnx__AttributeProto, 1));
  Onnx__AttributeProto **list = keep (b, g_new0 (Onnx__AttributeProto *, n->n_attribute + 1));

  onnx__attribute_proto__init (a);
  a->name = (char *) name;
  a->has_type = TRUE;
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
  a->has_f = TRUE;
  a->f = v;
  if (n->n_attribute > 0)
    memcpy (list, n->attribute, sizeof (gpointer) * n->n_attribute);
  list[n->n_attribute++] = a;
  n->attribute = list;
}

static Onnx__ValueInfoProto *
value_info (Builder *b, const char *name, int n_dims, const gint64 *dims)
{
  Onnx__ValueInfoProto *vi = keep (b, g_new0 (Onnx__ValueInfoProto, 1));
  Onnx__TypeProto *type = keep (b, g_new0 (Onnx__TypeProto, 1));
  Onnx__TypeProto__Tensor *tt = keep (b, g_new0 (Onnx__TypeProto__Tensor, 1));
  Onnx__TensorShapeProto *shape = keep (b, g_new0 (Onnx__TensorShapeProto, 1));

  onnx__value_info_proto__init (vi);
  onnx__type_proto__init (type);
  onnx__type_proto__tensor__init (tt);
  onnx__tensor_shape_proto__init (shape);
  shape->n_dim = n_dims;
  shape->dim = keep (b, g_new0 (Onnx__TensorShapeProto__Dimension *, n_dims));
  for (int i = 0; i < n_dims; i++)
    {
      Onnx__TensorShapeProto__Dimension *d = keep (b, g_new0 (Onnx__TensorShapeProto__Dimension, 1));
      onnx__tensor_shape_proto__dimension__init (d);
      if (i == 0)
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = "n";
      else
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[i];
      shape->dim[i] = d;
    }
  tt->has_elem_type = TRUE;
  tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  tt->shape = shape;
  type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  type->tensor_type = tt;
  vi->name = (char *) name;
  vi->type = type;
  return vi;
}

/* Packs the graph with input "x" and output @out (N, @classes). */
static GBytes *
builder_pack (Builder *b, const char *out, int classes)
{
  Onnx__ModelProto m;
  Onnx__GraphProto g;
  Onnx__OperatorSetIdProto opset, *opsets[1] = { &opset };
  Onnx__ValueInfoProto *ins[1], *outs[1];
  gint64 in_dims[4] = { 1, b->in.c, b->in.h, b->in.w }, out_dims[2] = { 1, classes };
  gsize size;
  guint8 *buf;

  onnx__model_proto__init (&m);
  onnx__graph_proto__init (&g);
  onnx__operator_set_id_proto__init (&opset);
  opset.domain = "";
  opset.has_version = TRUE;
  opset.version = 13;
  m.has_ir_version = TRUE;
  m.ir_version = 7;
  m.n_opset_import = 1;
  m.opset_import = opsets;
  m.producer_name = "test-onnx";
  ins[0] = value_info (b, "x", 4, in_dims);
  outs[0] = value_info (b, out, 2, out_dims);
  g.name = "test";
  g.n_node = b->nodes->len;
  g.node = (Onnx__NodeProto **) b->nodes->pdata;
  g.n_initializer = b->inits->len;
  g.initializer = (Onnx__TensorProto **) b->inits->pdata;
  g.n_input = 1;
  g.input = ins;
  g.n_output = 1;
  g.output = outs;
  m.graph = &g;
  size = onnx__model_proto__get_packed_size (&m);
  buf = g_malloc (size);
  onnx__model_proto__pack (&m, buf);
  return g_bytes_new_take (buf, size);
}

static char *
write_model (GBytes *bytes, const char *name)
{
  char *path = g_build_filename (ps_test_tmpdir (), name, NULL);

  g_assert_true (g_file_set_contents (path, g_bytes_get_data (bytes, NULL),
                                      g_bytes_get_size (bytes), NULL));
  return path;
}

/* ---- plain NCHW loops ---- */

typedef struct {
  Dims   d;
  float *v;  /* n x c x h x w */
} Ref;

static float *
at (Ref *r, int n, int c, int y, int x)
{
  return r->v + (((gsize) n * r->d.c + c) * r->d.h + y) * r->d.w + x;
}

static Ref
ref_new (Dims d)
{
  return (Ref) { d, g_new0 (float, (gsize) d.n * d.c * d.h * d.w) };
}

static Ref
ref_conv (Ref *x, const float *w, const float *bias, int M, int kh, int kw, int groups,
          const int pads[4], const int strides[2], const int dil[2])
{
  int cg = x->d.c / groups, mg = M / groups;
  Dims od = { x->d.n, M,
              (x->d.h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) / strides[0] + 1,
              (x->d.w + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) / strides[1] + 1 };
  Ref y = ref_new (od);

  for (int n = 0; n < od.n; n++)
    for (int m = 0; m < M; m++)
      for (int oy = 0; oy < od.h; oy++)
        for (int ox = 0; ox < od.w; ox++)
          {
            double s = bias ? bias[m] : 0.0;
            int g = m / mg;

            for (int c = 0; c < cg; c++)
              for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++)
                  {
                    int iy = oy * strides[0] + i * dil[0] - pads[0];
                    int ix = ox * strides[1] + j * dil[1] - pads[1];
                    if (iy >= 0 && iy < x->d.h && ix >= 0 && ix < x->d.w)
                      s += (double) w[(((gsize) m * cg + c) * kh + i) * kw + j]
                           * *at (x, n, g * cg + c, iy, ix);
                  }
            *at (&y, n, m, oy, ox) = (float) s;
          }
  return y;
}

static Ref
ref_pool (Ref *x, gboolean max, int k, const int pads[4], int stride, gboolean count_pad)
{
  Dims od = { x->d.n, x->d.c, (x->d.h + pads[0] + pads[2] - k) / stride + 1,
              (x->d.w + pads[1] + pads[3] - k) / stride + 1 };
  Ref y = ref_new (od);

  for (int n = 0; n < od.n; n++)
    for (int c = 0; c < od.c; c++)
      for (int oy = 0; oy < od.h; oy++)
        for (int ox = 0; ox < od.w; ox++)
          {
            double s = 0, best = -INFINITY;
            int cnt = 0;

            for (int i = 0; i < k; i++)
              for (int j = 0; j < k; j++)
                {
                  int iy = oy * stride + i - pads[0], ix = ox * stride + j - pads[1];
                  if (iy < 0 || iy >= x->d.h || ix < 0 || ix >= x->d.w)
                    continue;
                  s += *at (x, n, c, iy, ix);
                  best = MAX (best, *at (x, n, c, iy, ix));
                  cnt++;
                }
            *at (&y, n, c, oy, ox) = (float) (max ? best : s / (count_pad ? k * k : cnt));
          }
  return y;
}

/* ---- running a built graph: op -> Flatten -> Gemm(identity) -> output ---- */

static Ref
input_ref (Builder *b)
{
  Ref x = ref_new (b->in);
  gsize n = (gsize) b->in.n * b->in.c * b->in.h * b->in.w;

  for (gsize i = 0; i < n; i++)
    x.v[i] = (float) g_rand_double_range (b->rand, -1.0, 1.0);
  return x;
}

/* Appends Flatten and an identity Gemm (so the output is (N, K) in ONNX's NCHW order),
 * loads the model, runs it on @x and compares with @want. */
static void
check_graph (Builder *b, const char *t, Ref *x, Ref *want, double tol)
{
  gsize k = (gsize) want->d.c * want->d.h * want->d.w;
  g_autofree float *eye = g_new0 (float, k * k);
  gint64 wd[2] = { k, k };
  const char *flat, *gemm;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  PsPlan *plan;
  float *in, *out;
  PsShape s;

  for (gsize i = 0; i < k; i++)
    eye[i * k + i] = 1.0f;
  flat = node (b, "Flatten", (const char *[]) { t, NULL })->output[0];
  gemm = init (b, "eye", eye, 2, wd);
  t = node (b, "Gemm", (const char *[]) { flat, gemm, NULL })->output[0];
  bytes = builder_pack (b, t, (int) k);
  path = write_model (bytes, "op.onnx");
  m = ps_model_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (m->n_classes, ==, (int) k);
  s = m->layers[m->input]->out;
  g_assert_cmpint (s.c, ==, x->d.c);
  plan = ps_plan_new (m, x->d.n);
  in = ps_plan_output (plan, m->input);
  for (int n = 0; n < x->d.n; n++)
    for (int c = 0; c < s.c; c++)
      for (int y = 0; y < s.h; y++)
        for (int z = 0; z < s.w; z++)
          in[(((gsize) n * s.h + y) * s.w + z) * s.c + c] = *at (x, n, c, y, z);
  ps_plan_forward (plan, x->d.n);
  out = ps_plan_output (plan, m->output);
  for (gsize i = 0; i < (gsize) x->d.n * k; i++)
    if (fabs (out[i] - want->v[i]) > tol * (1.0 + fabs (want->v[i])))
      g_error ("value %zu: got %g, want %g", i, out[i], want->v[i]);
  ps_plan_free (plan);
}

static void
conv_case (Dims in, int M, int k, int groups, int pads[4], int strides[2], int dil[2],
           gboolean bias)
{
  Builder *b = builder_new (in, 7 + M + k + groups);
  Ref x = input_ref (b), y;
  int cg = in.c / groups;
  gint64 wd[4] = { M, cg, k, k }, bd[1] = { M };
  gint64 p64[4] = { pads[0], pads[1], pads[2], pads[3] }, s64[2] = { strides[0], strides[1] };
  gint64 d64[2] = { dil[0], dil[1] };
  float *w = randoms (b, (gsize) M * cg * k * k, -0.5, 0.5), *bv = randoms (b, M, -0.2, 0.2);
  Onnx__NodeProto *n;
  const char *wn = init (b, "w", w, 4, wd), *bn = bias ? init (b, "b", bv, 1, bd) : NULL;

  n = node (b, "Conv", (const char *[]) { "x", wn, bn, NULL });
  attr_ints (b, n, "pads", p64, 4);
  attr_ints (b, n, "strides", s64, 2);
  attr_ints (b, n, "dilations", d64, 2);
  attr_int (b, n, "group", groups);
  y = ref_conv (&x, w, bias ? bv : NULL, M, k, k, groups, pads, strides, dil);
  check_graph (b, n->output[0], &x, &y, 1e-4);
  g_free (x.v);
  g_free (y.v);
  builder_free (b);
}

static void
test_conv (void)
{
  int p0[4] = { 0, 0, 0, 0 }, p1[4] = { 1, 1, 1, 1 }, pa[4] = { 0, 1, 2, 1 }, pb[4] = { 2, 0, 1, 3 };
  int s1[2] = { 1, 1 }, s2[2] = { 2, 2 }, s21[2] = { 2, 1 }, d1[2] = { 1, 1 }, d2[2] = { 2, 2 };
  int d12[2] = { 1, 2 };

  conv_case ((Dims) { 2, 3, 7, 6 }, 5, 3, 1, p1, s1, d1, TRUE);     /* plain, bias */
  conv_case ((Dims) { 2, 3, 7, 6 }, 4, 3, 1, p0, s2, d1, FALSE);    /* no bias, stride 2 */
  conv_case ((Dims) { 2, 4, 7, 6 }, 6, 3, 2, p1, s1, d1, TRUE);     /* groups */
  conv_case ((Dims) { 2, 4, 8, 7 }, 8, 3, 4, p1, s21, d1, TRUE);    /* depthwise x2 */
  conv_case ((Dims) { 1, 3, 9, 8 }, 4, 3, 1, p1, s1, d2, TRUE);     /* dilations */
  conv_case ((Dims) { 1, 3, 9, 8 }, 6, 3, 3, pb, s1, d12, TRUE);    /* all at once */
  conv_case ((Dims) { 2, 3, 7, 6 }, 4, 3, 1, pa, s2, d1, TRUE);     /* asymmetric pads */
  conv_case ((Dims) { 2, 3, 5, 5 }, 4, 1, 1, pa, s1, d1, TRUE);     /* padded 1x1 */
}

static void
pool_case (const char *op, int k, int pads[4], int stride, gboolean count_pad)
{
  Dims in = { 2, 3, 7, 8 };
  Builder *b = builder_new (in, 11 + k);
  Ref x = input_ref (b), y;
  gint64 ks[2] = { k, k }, p64[4] = { pads[0], pads[1], pads[2], pads[3] }, s64[2] = { stride, stride };
  Onnx__NodeProto *n = node (b, op, (const char *[]) { "x", NULL });

  attr_ints (b, n, "kernel_shape", ks, 2);
  attr_ints (b, n, "pads", p64, 4);
  attr_ints (b, n, "strides", s64, 2);
  if (count_pad)
    attr_int (b, n, "count_include_pad", 1);
  y = ref_pool (&x, g_str_equal (op, "MaxPool"), k, pads, stride, count_pad);
  check_graph (b, n->output[0], &x, &y, 1e-5);
  g_free (x.v);
  g_free (y.v);
  builder_free (b);
}

static void
test_pool (void)
{
  int p0[4] = { 0, 0, 0, 0 }, pa[4] = { 0, 1, 1, 0 }, p1[4] = { 1, 1, 1, 1 };

  pool_case ("MaxPool", 2, p0, 2, FALSE);
  pool_case ("MaxPool", 3, pa, 2, FALSE);
  pool_case ("AveragePool", 3, p1, 1, FALSE);
  pool_case ("AveragePool", 3, p1, 2, TRUE);
  pool_case ("AveragePool", 2, pa, 1, FALSE);
}

/* BatchNormalization after a conv that nothing else reads (folded) and after the input
 * (its own layer), then the elementwise ops, concat, add and global pooling. */
static void
test_elementwise (void)
{
  Dims in = { 2, 3, 5, 4 };
  Builder *b = builder_new (in, 5);
  Ref x = input_ref (b), c1, y;
  int p1[4] = { 1, 1, 1, 1 }, s1[2] = { 1, 1 }, d1[2] = { 1, 1 };
  gint64 wd[4] = { 3, 3, 3, 3 }, cd[1] = { 3 }, cd3[3] = { 3, 1, 1 }, sd[1] = { 1 };
  gint64 p64[4] = { 1, 1, 1, 1 };
  float *w = randoms (b, 81, -0.5, 0.5);
  float *bn[2][4], *k1 = randoms (b, 3, 0.5, 2.0), *k2 = randoms (b, 3, -1.0, 1.0);
  float scalar = 3.0f;
  const char *bnn[2][4], *t, *conv_out, *bn_in, *lr, *cl, *sg, *sub, *mul, *dv, *cat;
  Onnx__NodeProto *n;

  for (int j = 0; j < 2; j++)
    for (int i = 0; i < 4; i++)
      {
        bn[j][i] = randoms (b, 3, i == 3 ? 0.3 : -1.0, i == 3 ? 2.0 : 1.0);
        bnn[j][i] = init (b, "bn", bn[j][i], 1, cd);
      }
  n = node (b, "Conv", (const char *[]) { "x", init (b, "w", w, 4, wd), NULL });
  attr_ints (b, n, "pads", p64, 4);
  conv_out = node (b, "BatchNormalization", (const char *[]) { n->output[0], bnn[0][0], bnn[0][1],
                                                               bnn[0][2], bnn[0][3], NULL })->output[0];
  bn_in = node (b, "BatchNormalization", (const char *[]) { "x", bnn[1][0], bnn[1][1], bnn[1][2],
                                                            bnn[1][3], NULL })->output[0];
  n = node (b, "LeakyRelu", (const char *[]) { conv_out, NULL });
  attr_float (b, n, "alpha", 0.2f);
  lr = n->output[0];
  cl = node (b, "Clip", (const char *[]) { bn_in, init (b, "lo", (float[]) { -0.3f }, 0, NULL),
                                           init (b, "hi", (float[]) { 0.4f }, 0, NULL), NULL })->output[0];
  sg = node (b, "Sigmoid", (const char *[]) { lr, NULL })->output[0];
  sub = node (b, "Sub", (const char *[]) { init (b, "k", k2, 3, cd3), cl, NULL })->output[0];
  mul = node (b, "Mul", (const char *[]) { sg, init (b, "k", k1, 3, cd3), NULL })->output[0];
  dv = node (b, "Div", (const char *[]) { sub, init (b, "s", &scalar, 1, sd), NULL })->output[0];
  t = node (b, "Add", (const char *[]) { mul, dv, NULL })->output[0];
  t = node (b, "Identity", (const char *[]) { t, NULL })->output[0];
  n = node (b, "Concat", (const char *[]) { t, dv, lr, NULL });
  attr_int (b, n, "axis", 1);
  cat = n->output[0];

  /* the same in plain loops */
  c1 = ref_conv (&x, w, NULL, 3, 3, 3, 1, p1, s1, d1);
  y = ref_new ((Dims) { in.n, 9, in.h, in.w });
  for (int nn = 0; nn < in.n; nn++)
    for (int c = 0; c < 3; c++)
      for (int yy = 0; yy < in.h; yy++)
        for (int xx = 0; xx < in.w; xx++)
          {
            double s0 = bn[0][0][c] / sqrt (bn[0][3][c] + 1e-5), s1v = bn[1][0][c] / sqrt (bn[1][3][c] + 1e-5);
            double a = (*at (&c1, nn, c, yy, xx) - bn[0][2][c]) * s0 + bn[0][1][c];
            double q = (*at (&x, nn, c, yy, xx) - bn[1][2][c]) * s1v + bn[1][1][c];
            double leaky = a < 0 ? 0.2 * a : a, clip = MIN (MAX (q, -0.3), 0.4);
            double sig = 1.0 / (1.0 + exp (-leaky));
            double d = (k2[c] - clip) / 3.0;

            *at (&y, nn, c, yy, xx) = (float) (sig * k1[c] + d);
            *at (&y, nn, 3 + c, yy, xx) = (float) d;
            *at (&y, nn, 6 + c, yy, xx) = (float) leaky;
          }
  check_graph (b, cat, &x, &y, 1e-4);
  g_free (x.v);
  g_free (y.v);
  g_free (c1.v);
  builder_free (b);
}

/* GlobalAveragePool, Reshape to (N, -1), MatMul, Add of a bias, Softmax; and a Flatten of
 * a spatial map read by a Gemm with transB (the NCHW order of its rows). */
static void
test_dense (void)
{
  Dims in = { 3, 4, 3, 5 };
  Builder *b = builder_new (in, 9);
  Ref x = input_ref (b), y;
  int K = 4 * 3 * 5, N = 6;
  float *wm = randoms (b, 4 * 5, -1, 1), *bm = randoms (b, 5, -1, 1);
  float *wg = randoms (b, (gsize) N * K, -0.3, 0.3), *bg = randoms (b, N, -1, 1);
  gint64 dm[2] = { 4, 5 }, db[1] = { 5 }, dg[2] = { N, K }, dgb[1] = { N }, shape[2] = { 0, -1 };
  const char *gap, *r, *mm, *sm, *fl;
  Onnx__NodeProto *n;
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;

  /* head 1: pooled features -> softmax; only checked by building: output is head 2 */
  gap = node (b, "GlobalAveragePool", (const char *[]) { "x", NULL })->output[0];
  r = node (b, "Reshape", (const char *[]) { gap, init_ints (b, "shape", shape, 2), NULL })->output[0];
  mm = node (b, "MatMul", (const char *[]) { r, init (b, "wm", wm, 2, dm), NULL })->output[0];
  mm = node (b, "Add", (const char *[]) { mm, init (b, "bm", bm, 1, db), NULL })->output[0];
  sm = node (b, "Softmax", (const char *[]) { mm, NULL })->output[0];
  bytes = builder_pack (b, sm, 5);
  path = write_model (bytes, "dense1.onnx");
  m = ps_model_load (path, &error);
  g_assert_no_error (error);
  {
    PsPlan *plan = ps_plan_new (m, in.n);
    float *inp = ps_plan_output (plan, m->input), *out;

    for (int nn = 0; nn < in.n; nn++)
      for (int c = 0; c < in.c; c++)
        for (int yy = 0; yy < in.h; yy++)
          for (int xx = 0; xx < in.w; xx++)
            inp[(((gsize) nn * in.h + yy) * in.w + xx) * in.c + c] = *at (&x, nn, c, yy, xx);
    ps_plan_forward (plan, in.n);
    out = ps_plan_output (plan, m->output);
    for (int nn = 0; nn < in.n; nn++)
      {
        double z[5], mx = -INFINITY, sum = 0;
        for (int j = 0; j < 5; j++)
          {
            z[j] = bm[j];
            for (int c = 0; c < 4; c++)
              {
                double avg = 0;
                for (int p = 0; p < in.h * in.w; p++)
                  avg += *at (&x, nn, c, p / in.w, p % in.w);
                z[j] += avg / (in.h * in.w) * wm[c * 5 + j];
              }
            mx = MAX (mx, z[j]);
          }
        for (int j = 0; j < 5; j++)
          sum += exp (z[j] - mx);
        for (int j = 0; j < 5; j++)
          g_assert_cmpfloat_with_epsilon (out[nn * 5 + j], exp (z[j] - mx) / sum, 1e-5);
      }
    ps_plan_free (plan);
  }

  /* head 2: Flatten of the 4x3x5 map, Gemm transB; checked through an identity Gemm */
  fl = node (b, "Flatten", (const char *[]) { "x", NULL })->output[0];
  n = node (b, "Gemm", (const char *[]) { fl, init (b, "wg", wg, 2, dg), init (b, "bg", bg, 1, dgb), NULL });
  attr_int (b, n, "transB", 1);
  attr_float (b, n, "alpha", 0.5f);
  n = node (b, "Reshape", (const char *[]) { n->output[0], init_ints (b, "shape", shape, 2), NULL });
  y = ref_new ((Dims) { in.n, N, 1, 1 });
  for (int nn = 0; nn < in.n; nn++)
    for (int j = 0; j < N; j++)
      {
        double s = bg[j];
        for (int kk = 0; kk < K; kk++)
          s += 0.5 * wg[(gsize) j * K + kk] * x.v[(gsize) nn * K + kk];
        *at (&y, nn, j, 0, 0) = (float) s;
      }
  /* Gemm's output is 2-D: the identity Gemm reads it directly, no Flatten needed, but a
   * Flatten of a 2-D tensor must be harmless too */
  check_graph (b, n->output[0], &x, &y, 1e-4);
  g_free (x.v);
  g_free (y.v);
  builder_free (b);
}

/* ---- a small CNN BadNet built here: sweep, G.onnx round trip ---- */

/* The head above the pruned tensor: global pooling (the sweep zeroes the channel and runs
 * the rest), a grouped convolution (likewise), a flatten of the map into a Gemm (rank-one
 * updates of its rows, in NCHW order) or a plain convolution with asymmetric pads (rank-one
 * updates of its outputs). */
typedef enum { HEAD_GAP, HEAD_GROUPED, HEAD_FLATTEN, HEAD_CONV } Head;

static GBytes *
small_cnn (guint32 seed, int classes, Head head, const char **pruned)
{
  Dims in = { 1, 3, 12, 10 };
  Builder *b = builder_new (in, seed);
  gint64 w1[4] = { 8, 3, 3, 3 }, b1[1] = { 8 }, w2[4] = { 12, 8, 3, 3 }, b2[1] = { 12 };
  gint64 wg[4] = { 12, 3, 3, 3 }, wc[4] = { 6, 12, 3, 3 }, bc[1] = { 6 };
  gint64 wf[2] = { classes, 12 }, bf[1] = { classes }, p64[4] = { 1, 1, 1, 1 }, s2[2] = { 2, 2 };
  gint64 pa[4] = { 0, 1, 2, 1 }, wff[2] = { classes, 12 * 6 * 5 };
  gint64 ks[2] = { 2, 2 };
  float scale = 255.0f;
  const char *t;
  Onnx__NodeProto *n;
  GBytes *bytes;

  t = node (b, "Div", (const char *[]) { "x", init (b, "s", &scale, 0, NULL), NULL })->output[0];
  n = node (b, "Conv", (const char *[]) { t, init (b, "w1", randoms (b, 216, -0.5, 0.5), 4, w1),
                                          init (b, "b1", randoms (b, 8, -0.05, 0.1), 1, b1), NULL });
  attr_ints (b, n, "pads", p64, 4);
  t = node (b, "Relu", (const char *[]) { n->output[0], NULL })->output[0];
  n = node (b, "MaxPool", (const char *[]) { t, NULL });
  attr_ints (b, n, "kernel_shape", ks, 2);
  attr_ints (b, n, "strides", s2, 2);
  n = node (b, "Conv", (const char *[]) { n->output[0], init (b, "w2", randoms (b, 864, -0.3, 0.3), 4, w2),
                                          init (b, "b2", randoms (b, 12, -0.1, 0.1), 1, b2), NULL });
  attr_ints (b, n, "pads", p64, 4);
  t = node (b, "Relu", (const char *[]) { n->output[0], NULL })->output[0];
  *pruned = g_intern_string (t);
  if (head == HEAD_GROUPED || head == HEAD_CONV)
    {
      gboolean grouped = head == HEAD_GROUPED;
      n = node (b, "Conv", (const char *[]) { t, grouped ? init (b, "wg", randoms (b, 324, -0.3, 0.3), 4, wg)
                                                         : init (b, "wc", randoms (b, 648, -0.3, 0.3), 4, wc),
                                              grouped ? NULL : init (b, "bc", randoms (b, 6, -0.1, 0.1), 1, bc),
                                              NULL });
      attr_ints (b, n, "pads", grouped ? p64 : pa, 4);
      if (grouped)
        attr_int (b, n, "group", 4);
      else
        attr_ints (b, n, "strides", s2, 2);
      t = node (b, "Relu", (const char *[]) { n->output[0], NULL })->output[0];
      wf[1] = grouped ? 12 : 6;
    }
  if (head == HEAD_FLATTEN)
    {
      t = node (b, "Flatten", (const char *[]) { t, NULL })->output[0];
      wf[1] = wff[1];
    }
  else
    {
      t = node (b, "GlobalAveragePool", (const char *[]) { t, NULL })->output[0];
      t = node (b, "Flatten", (const char *[]) { t, NULL })->output[0];
    }
  n = node (b, "Gemm", (const char *[]) { t, init (b, "wf", randoms (b, wf[1] * classes, -1, 1), 2, wf),
                                          init (b, "bf", randoms (b, classes, -0.1, 0.1), 1, bf), NULL });
  attr_int (b, n, "transB", 1);
  bytes = builder_pack (b, n->output[0], classes);
  builder_free (b);
  return bytes;
}

/* A python3 that has Debian's python3-onnx (and numpy), or NULL. */
static const char *
python_with_onnx (void)
{
  static const char *found;
  static gboolean looked;
  const char *pythons[] = { "/usr/bin/python3", "python3" };

  for (guint i = 0; !looked && i < G_N_ELEMENTS (pythons); i++)
    {
      const char *argv[] = { pythons[i], "-c", "import onnx, numpy", NULL };
      int status = -1;

      if (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL
                        | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status, NULL)
          && g_spawn_check_wait_status (status, NULL))
        found = pythons[i];
      looked = found != NULL;
    }
  looked = TRUE;
  return found;
}

static gboolean
python_onnx_check (const char *path, char **why)
{
  g_autofree char *script = g_strdup_printf ("import onnx; onnx.checker.check_model(onnx.load('%s'), full_check=True)", path);
  const char *argv[] = { python_with_onnx (), "-c", script, NULL };
  int status = -1;

  *why = NULL;
  if (argv[0] == NULL)
    return FALSE;
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               NULL, why, &status, NULL));
  return g_spawn_check_wait_status (status, NULL);
}

/* G's class of the first @n images by tests/onnx-reference.py (numpy, independent of the C
 * reader); FALSE when python3-onnx is missing. */
static gboolean
reference_g_classes (const char *path, const PsDataset *data, int n, int *classes)
{
  g_autofree char *images = g_build_filename (ps_test_tmpdir (), "images.f32", NULL);
  g_autofree char *script = g_build_filename (g_getenv ("PS_TESTS_DIR"), "onnx-reference.py", NULL);
  g_autofree float *nhwc = g_new (float, (gsize) n * data->h * data->w * data->c);
  g_autofree float *nchw = g_new (float, (gsize) n * data->h * data->w * data->c);
  g_autofree char *out = NULL, *err = NULL;
  g_autofree char *sn = g_strdup_printf ("%d", n), *sc = g_strdup_printf ("%d", data->c);
  g_autofree char *sh = g_strdup_printf ("%d", data->h), *sw = g_strdup_printf ("%d", data->w);
  const char *argv[] = { python_with_onnx (), script, path, images, sn, sc, sh, sw, NULL };
  g_auto (GStrv) lines = NULL;
  int status = -1;

  if (argv[0] == NULL)
    return FALSE;
  ps_dataset_get_batch (data, 0, n, 1.0, nhwc);
  for (int b = 0; b < n; b++)
    for (int y = 0; y < data->h; y++)
      for (int x = 0; x < data->w; x++)
        for (int c = 0; c < data->c; c++)
          nchw[(((gsize) b * data->c + c) * data->h + y) * data->w + x]
            = nhwc[(((gsize) b * data->h + y) * data->w + x) * data->c + c];
  g_assert_true (g_file_set_contents (images, (const char *) nchw,
                                      sizeof (float) * n * data->h * data->w * data->c, NULL));
  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               &out, &err, &status, NULL));
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("onnx-reference.py failed: %s", err);
  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, (guint) n + 1);
  for (int i = 0; i < n; i++)
    classes[i] = (int) g_ascii_strtod (lines[i], NULL);
  return TRUE;
}

static void
check_with_onnx_checker (const char *path)
{
  g_autofree char *why = NULL;
  static int checked;

  /* a Python start costs about a second: check the first few files only */
  if (checked++ >= 4)
    return;

  if (python_onnx_check (path, &why))
    return;
  if (why == NULL)
    {
      g_test_message ("python3-onnx is missing: onnx.checker not run on %s", path);
      return;
    }
  g_error ("onnx.checker refuses %s: %s", path, why);
}

/* Saves G at @k, reads it back, and checks G's class on every image against the sweep. */
static void
check_g_round_trip (const PsModel *b, const PsSweep *s, const PsDataset *data, int k,
                    const char *name, gboolean thorough)
{
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), name, NULL);
  g_autofree char *bp_path = g_strconcat (path, ".bprime.onnx", NULL);
  PsOnnxPruning p = { ps_sweep_layer_name (s), ps_sweep_order (s), k, 2.5, ps_sweep_get_step (s, k) };
  g_autoptr (GError) error = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (PsModel) bp = NULL;
  g_autofree int *classes = g_new (int, data->n);
  g_autofree int *bp_classes = g_new (int, data->n);

  g_assert_true (ps_onnx_save_g (b, &p, FALSE, path, &error));
  g_assert_no_error (error);
  g_assert_true (ps_onnx_save_g (b, &p, TRUE, bp_path, &error));
  check_with_onnx_checker (path);
  check_with_onnx_checker (bp_path);

  g_assert_true (ps_repaired_file_is_g (path));
  g_assert_false (ps_repaired_file_is_g (bp_path));
  g = ps_repaired_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g->layer, ==, ps_sweep_layer_name (s));
  g_assert_cmpint (g->n_channels, ==, k);
  for (int i = 0; i < k; i++)
    g_assert_cmpint (g->channels[i], ==, ps_sweep_order (s)[i]);
  g_assert_cmpfloat (g->drop, ==, 2.5);
  g_assert_cmpfloat (g->metrics.g_test_acc, ==, ps_sweep_get_step (s, k)->g_test_acc);
  g_assert_true (ps_repaired_classify (g, data, classes, NULL, &error));
  for (int i = 0; i < data->n; i++)
    g_assert_cmpint (classes[i], ==, ps_sweep_g_prediction (s, PS_SET_TEST, k, i));

  bp = ps_model_load (bp_path, &error);
  g_assert_no_error (error);
  /* the G graph itself (ArgMax, Equal, Where), run by an independent numpy reading; float64
   * there and float32 here may part on a near tie, so a few disagreements are allowed */
  {
    int n = MIN (data->n, 60), agree = 0, flagged_ref = 0, flagged = 0;
    g_autofree int *ref = g_new (int, n);

    if (reference_g_classes (path, data, n, ref))
      {
        for (int i = 0; i < n; i++)
          {
            agree += ref[i] == classes[i];
            flagged_ref += ref[i] == b->n_classes;
            flagged += classes[i] == b->n_classes;
          }
        g_test_message ("G.onnx at %d pruned: numpy agrees on %d of %d images (%d flagged, %d here)",
                        k, agree, n, flagged_ref, flagged);
        g_assert_cmpint (agree, >=, n - 2);
      }
    else
      g_test_message ("python3-onnx is missing: G.onnx not run by the numpy reference");
  }
  if (!thorough)
    return;
  g_assert_true (ps_infer_classes (bp, data, bp_classes, NULL, &error));
  for (int i = 0; i < data->n; i++)
    g_assert_cmpint (bp_classes[i], ==, ps_sweep_prediction (s, PS_SET_TEST, k, i));

  /* G's B, pruned again, gives the same G; B' alone is not pruned again */
  {
    g_autofree char *again = g_strconcat (path, ".again.onnx", NULL);
    g_autoptr (PsRepaired) g2 = NULL;
    g_autofree int *classes2 = g_new (int, data->n);

    g_assert_true (ps_onnx_save_g (g->b, &p, FALSE, again, &error));
    g_assert_no_error (error);
    if (k == 0)
      check_with_onnx_checker (again);
    g2 = ps_repaired_load (again, &error);
    g_assert_no_error (error);
    g_assert_cmpint (g2->b->n_layers, ==, g->b->n_layers);
    g_assert_true (ps_repaired_classify (g2, data, classes2, NULL, &error));
    g_assert_cmpmem (classes2, sizeof (int) * data->n, classes, sizeof (int) * data->n);
    g_assert_false (ps_onnx_save_g (bp, &p, FALSE, again, &error));
    g_assert_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED);
  }
}

static void
small_g_case (Head head)
{
  const char *pruned;
  g_autoptr (GBytes) bytes = small_cnn (3 + head, 5, head, &pruned);
  g_autofree char *path = write_model (bytes, "small.onnx");
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = ps_model_load (path, &error);
  g_autoptr (PsDataset) valid = NULL, test = NULL;
  g_autoptr (PsSweep) s = NULL;
  const PsDataset *sets[PS_N_SETS] = { NULL };
  PsSweepOptions opt = { pruned, FALSE };
  int changed = 0;

  g_assert_no_error (error);
  if (head == HEAD_GAP)
    g_assert_cmpint (ps_model_default_layer (m), ==, ps_model_find_layer (m, pruned));
  valid = ps_test_random_data (m, 150, 1);
  test = ps_test_random_data (m, 120, 2);
  sets[PS_SET_VALID] = valid;
  sets[PS_SET_TEST] = test;
  s = ps_sweep_run (m, sets, &opt, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ps_sweep_layer_name (s), ==, pruned);
  for (int k = 1; k < ps_sweep_n_steps (s); k++)
    for (int i = 0; i < test->n; i++)
      changed += ps_sweep_g_prediction (s, PS_SET_TEST, k, i) == m->n_classes;
  g_assert_cmpint (changed, >, 0); /* pruning flags something, or the test is empty */
  for (int k = 0; k < ps_sweep_n_steps (s); k += 3)
    check_g_round_trip (m, s, test, k, "small-g.onnx", TRUE);
}

static void
test_small_g (void)
{
  small_g_case (HEAD_GAP);
  small_g_case (HEAD_GROUPED);
  small_g_case (HEAD_FLATTEN);
  small_g_case (HEAD_CONV);
}

/* The CLI on a small ONNX model: info lists the feature maps, sweep takes a node name,
 * repair writes G.onnx (and refuses HDF5), eval measures what G recorded. */
static void
test_cli (void)
{
  const char *pruned, *node_name = NULL;
  g_autoptr (GBytes) bytes = small_cnn (21, 4, HEAD_GAP, &pruned);
  g_autofree char *path = write_model (bytes, "cli.onnx");
  g_autofree char *vp = g_build_filename (ps_test_tmpdir (), "cli-valid.h5", NULL);
  g_autofree char *tp = g_build_filename (ps_test_tmpdir (), "cli-test.h5", NULL);
  g_autofree char *gp = g_build_filename (ps_test_tmpdir (), "cli-g.onnx", NULL);
  g_autofree char *hp = g_build_filename (ps_test_tmpdir (), "cli-g.h5", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = ps_model_load (path, &error);
  g_autoptr (PsDataset) valid = NULL, test = NULL;
  g_autoptr (PsSweep) s = NULL;
  const PsDataset *sets[PS_N_SETS] = { NULL };
  g_autofree char *out = NULL, *err = NULL, *line = NULL, *acc = NULL;
  char num[G_ASCII_DTOSTR_BUF_SIZE];

  g_assert_no_error (error);
  for (int i = 0; m->aliases[i] != NULL; i += 2)
    if (g_str_equal (m->aliases[i + 1], pruned) && g_str_has_prefix (m->aliases[i], "Relu_"))
      node_name = m->aliases[i];
  g_assert_nonnull (node_name);
  valid = ps_test_random_data (m, 100, 5);
  test = ps_test_random_data (m, 80, 6);
  g_assert_true (ps_dataset_save (valid, vp, &error));
  g_assert_true (ps_dataset_save (test, tp, &error));
  sets[PS_SET_VALID] = valid, sets[PS_SET_TEST] = test;
  s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  {
    const char *argv[] = { "info", path, NULL };
    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    line = g_strdup_printf ("    %s  12x6x5  (default)\n", pruned);
    g_assert_nonnull (strstr (out, line));
    g_clear_pointer (&out, g_free);
  }
  {
    const char *argv[] = { "sweep", "--model", path, "--valid", vp, "--test", tp, "--layer", node_name, NULL };
    g_auto (GStrv) rows = NULL;

    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    rows = g_strsplit (out, "\n", -1);
    g_assert_cmpuint (g_strv_length (rows), ==, (guint) ps_sweep_n_steps (s) + 2);
    for (int k = 1; k < ps_sweep_n_steps (s); k++)
      {
        g_auto (GStrv) f = g_strsplit (rows[k + 1], ",", -1);
        g_assert_cmpint (atoi (f[2]), ==, ps_sweep_order (s)[k - 1]);
      }
    g_clear_pointer (&out, g_free);
  }
  {
    const char *argv[] = { "repair", "--model", path, "--valid", vp, "--test", tp, "--pruned", "5", "-o", hp, NULL };
    g_assert_cmpint (ps_test_run_cli (argv, NULL, &err), ==, 1);
    g_assert_nonnull (strstr (err, "saved as ONNX"));
    g_clear_pointer (&err, g_free);
    argv[10] = gp;
    g_assert_cmpint (ps_test_run_cli (argv, NULL, NULL), ==, 0);
  }
  {
    const char *argv[] = { "eval", "--model", gp, "--data", tp, NULL };
    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    acc = g_strdup_printf ("Clean Classification accuracy: %s %%",
                           g_ascii_formatd (num, sizeof num, "%.4f", ps_sweep_get_step (s, 5)->g_test_acc));
    g_assert_nonnull (strstr (out, acc));
    g_clear_pointer (&out, g_free);
  }
  {
    const char *argv[] = { "info", gp, NULL };
    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    g_assert_nonnull (strstr (out, "repaired network G as one ONNX graph"));
  }
}

/* ---- hostile files ---- */

static void
expect_refused (const char *name, const guint8 *data, gsize len, const char *needle)
{
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), name, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autofree char *out = NULL, *err = NULL;
  const char *argv[] = { "info", path, NULL };

  g_assert_true (g_file_set_contents (path, (const char *) data, len, NULL));
  m = ps_model_load (path, &error);
  g_assert_null (m);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", name, error->message);
  g_assert_null (strchr (error->message, '\n'));
  g_assert_true (g_str_has_prefix (error->message, path));
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("“%s” does not mention “%s”", error->message, needle);
  g_assert_cmpint (ps_test_run_cli (argv, &out, &err), ==, 1);
  if (strlen (err) == 0 || strchr (err, '\n') != err + strlen (err) - 1)
    g_error ("the CLI did not say one line: %s", err);
}

/* @m, packed as it is now, refused as expect_refused() says. */
static void
expect_model_refused (const Onnx__ModelProto *m, const char *name, const char *needle)
{
  g_autofree guint8 *buf = g_malloc (onnx__model_proto__get_packed_size (m));
  gsize size = onnx__model_proto__pack (m, buf);

  expect_refused (name, buf, size, needle);
}

static void
test_hostile (void)
{
  const char *pruned;
  g_autoptr (GBytes) good = small_cnn (4, 3, HEAD_GAP, &pruned);
  gsize len;
  const guint8 *data = g_bytes_get_data (good, &len);
  Onnx__ModelProto *m;

  /* truncated */
  expect_refused ("truncated.onnx", data, len / 2, "protobuf");
  expect_refused ("empty.onnx", data, 0, NULL);

  /* a cycle: the first conv reads the last node's output */
  m = onnx__model_proto__unpack (NULL, len, data);
  {
    Onnx__NodeProto *first = m->graph->node[1], *last = m->graph->node[m->graph->n_node - 2];
    char *saved = first->input[0];

    first->input[0] = last->output[0];
    expect_model_refused (m, "cycle.onnx", "cycle");
    first->input[0] = saved;
  }
  /* a huge declared dimension */
  {
    Onnx__TensorProto *t = m->graph->initializer[1];
    gint64 saved = t->dims[0];

    t->dims[0] = G_GINT64_CONSTANT (1) << 40;
    expect_model_refused (m, "huge.onnx", "declares");
    t->dims[0] = saved;
  }
  /* a huge input */
  {
    Onnx__TensorShapeProto__Dimension *d = m->graph->input[0]->type->tensor_type->shape->dim[2];
    gint64 saved = d->dim_value;

    d->dim_value = G_GINT64_CONSTANT (1) << 33;
    expect_model_refused (m, "huge-input.onnx", "dimension");
    d->dim_value = saved;
  }
  /* a missing initializer: drop the first conv's weight */
  {
    Onnx__TensorProto **inits = m->graph->initializer;
    gsize n = m->graph->n_initializer;
    Onnx__TensorProto *kept[64];

    g_assert_cmpuint (n, <, 64);
    memcpy (kept, inits, sizeof (gpointer) * n);
    memmove (kept + 1, kept + 2, sizeof (gpointer) * (n - 2));
    m->graph->initializer = kept;
    m->graph->n_initializer = n - 1;
    expect_model_refused (m, "missing.onnx", "neither a graph input");
    m->graph->initializer = inits;
    m->graph->n_initializer = n;
  }
  /* external tensor data */
  {
    Onnx__TensorProto *t = m->graph->initializer[1];

    t->has_data_location = TRUE;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    expect_model_refused (m, "external.onnx", "external file");
    t->has_data_location = FALSE;
  }
  /* names with control characters still give one line */
  {
    char *saved = m->graph->node[1]->domain;

    m->graph->node[1]->domain = "evil\ndomain\r\x01";
    expect_model_refused (m, "newline.onnx", "evil?domain");
    m->graph->node[1]->domain = saved;
  }
  /* an operator we do not run */
  {
    char *saved = m->graph->node[2]->op_type;

    m->graph->node[2]->op_type = "Tanh";
    expect_model_refused (m, "tanh.onnx", "Tanh");
    m->graph->node[2]->op_type = saved;
  }
  onnx__model_proto__free_unpacked (m, NULL);
}

/* Seeded byte mutations of small models (a replay-sized cousin of fuzzing, run under the
 * sanitizers in CI): each is read or refused with one line, and what is read runs. */
static void
test_mutations (void)
{
  int read = 0, refused = 0;

  for (int head = HEAD_GAP; head <= HEAD_CONV; head++)
    {
      const char *pruned;
      g_autoptr (GBytes) good = small_cnn (40 + head, 3, head, &pruned);
      gsize len;
      const guint8 *data = g_bytes_get_data (good, &len);
      GRand *rand = g_rand_new_with_seed (77 + head);

      for (int t = 0; t < 150; t++)
        {
          g_autofree guint8 *copy = g_memdup2 (data, len);
          gsize n = len;
          g_autoptr (GBytes) bytes = NULL;
          g_autoptr (GError) error = NULL;
          g_autoptr (PsModel) m = NULL;

          for (int k = g_rand_int_range (rand, 1, 4); k > 0; k--)
            copy[g_rand_int_range (rand, 0, (gint32) len)] = (guint8) g_rand_int (rand);
          if (t % 5 == 0)
            n = g_rand_int_range (rand, 1, (gint32) len);
          bytes = g_bytes_new (copy, n);
          m = ps_onnx_load_bytes (bytes, "mutant.onnx", &error);
          if (m == NULL)
            {
              g_assert_nonnull (error);
              g_assert_null (strchr (error->message, '\n'));
              refused++;
              continue;
            }
          read++;
          {
            PsPlan *plan = ps_plan_new (m, 2);
            memset (ps_plan_output (plan, m->input), 0,
                    sizeof (float) * 2 * ps_shape_size (m->layers[m->input]->out));
            ps_plan_forward (plan, 2);
            ps_plan_free (plan);
          }
        }
      g_rand_free (rand);
    }
  g_test_message ("mutants: %d read, %d refused", read, refused);
  g_assert_cmpint (refused, >, 0);
}

/* ---- the fixture: a PreAct-ResNet BadNet exported by PyTorch ---- */

static const char *
onnx_fixture (void)
{
  const char *dir = g_getenv ("PS_ONNX_FIXTURE");

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_test_skip ("the onnx-preact fixture is missing (PS_ONNX_FIXTURE)");
      return NULL;
    }
  return dir;
}

static PsDataset *
fixture_data (const char *dir, const char *rel)
{
  g_autofree char *path = g_build_filename (dir, rel, NULL);
  g_autoptr (GError) error = NULL;
  PsDataset *ds = ps_dataset_load (path, &error);

  g_assert_no_error (error);
  return ds;
}

/* Writes @ds channels-last, (N,H,W,C) uint8. */
static char *
save_nhwc (const PsDataset *ds)
{
  char *path = g_build_filename (ps_test_tmpdir (), "nhwc.h5", NULL);
  hid_t f = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t d[4] = { ds->n, ds->h, ds->w, ds->c }, dl[1] = { ds->n };
  hid_t sp = H5Screate_simple (4, d, NULL), sl = H5Screate_simple (1, dl, NULL);
  hid_t dd = H5Dcreate2 (f, "data", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t dlb = H5Dcreate2 (f, "label", H5T_NATIVE_INT, sl, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

  g_assert_nonnull (ds->u8);
  g_assert_cmpint (H5Dwrite (dd, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->u8), >=, 0);
  g_assert_cmpint (H5Dwrite (dlb, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, ds->labels), >=, 0);
  H5Dclose (dd), H5Dclose (dlb), H5Sclose (sp), H5Sclose (sl), H5Fclose (f);
  return path;
}

static void
test_fixture_classes (void)
{
  const char *dir = onnx_fixture ();
  g_autofree char *model = NULL, *csv = NULL, *text = NULL, *nhwc = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsDataset) test = NULL, bd = NULL, test2 = NULL;
  g_autofree int *ct = NULL, *cb = NULL, *c2 = NULL;
  g_auto (GStrv) lines = NULL;
  int rows = 0;

  if (dir == NULL)
    return;
  model = g_build_filename (dir, "bd_net.onnx", NULL);
  m = ps_model_load (model, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (m->input_scale, ==, 1.0);
  test = fixture_data (dir, "data/cl/test.h5");
  bd = fixture_data (dir, "data/bd/bd_test.h5");
  ct = g_new (int, test->n);
  cb = g_new (int, bd->n);
  g_assert_true (ps_infer_classes (m, test, ct, NULL, &error));
  g_assert_true (ps_infer_classes (m, bd, cb, NULL, &error));
  csv = g_build_filename (dir, "expected_predictions.csv", NULL);
  g_assert_true (g_file_get_contents (csv, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (int i = 1; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], ",", 3);
      int index, cls;

      if (g_strv_length (f) != 3)
        continue;
      index = atoi (f[1]), cls = atoi (f[2]);
      g_assert_cmpint (g_str_equal (f[0], "test") ? ct[index] : cb[index], ==, cls);
      rows++;
    }
  g_assert_cmpint (rows, ==, 40);

  /* the same images channels-last give the same classes (the first 200) */
  {
    g_autoptr (PsDataset) part = ps_dataset_new_u8 (200, test->h, test->w, test->c, test->u8, test->labels);
    nhwc = save_nhwc (part);
  }
  test2 = ps_dataset_load (nhwc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (test2->n, ==, 200);
  c2 = g_new (int, test2->n);
  g_assert_true (ps_infer_classes (m, test2, c2, NULL, &error));
  g_assert_cmpmem (c2, sizeof (int) * test2->n, ct, sizeof (int) * test2->n);

  /* through the CLI: the accuracies PyTorch measured (info.json) */
  {
    g_autofree char *tp = g_build_filename (dir, "data/cl/test.h5", NULL);
    g_autofree char *bp = g_build_filename (dir, "data/bd/bd_test.h5", NULL);
    g_autofree char *out = NULL;
    const char *argv[] = { "eval", "--model", model, "--data", tp, "--poisoned", bp, NULL };

    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    g_assert_nonnull (strstr (out, "Clean Classification accuracy: 88.8000 %"));
    g_assert_nonnull (strstr (out, "Attack Success Rate: 99.8880 %"));
  }
}

static void
test_fixture_sweep (void)
{
  const char *dir = onnx_fixture ();
  g_autofree char *model = NULL, *ref = NULL, *text = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsDataset) valid = NULL, test = NULL, bd = NULL;
  g_autoptr (PsSweep) s = NULL;
  const PsDataset *sets[PS_N_SETS];
  g_auto (GStrv) lines = NULL;
  int rows = 0;

  if (dir == NULL)
    return;
  model = g_build_filename (dir, "bd_net.onnx", NULL);
  m = ps_model_load (model, &error);
  g_assert_no_error (error);
  valid = fixture_data (dir, "data/cl/valid.h5");
  test = fixture_data (dir, "data/cl/test.h5");
  bd = fixture_data (dir, "data/bd/bd_test.h5");
  sets[PS_SET_VALID] = valid, sets[PS_SET_TEST] = test, sets[PS_SET_POISONED] = bd;
  s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (ps_sweep_layer_name (s), ==, "/m/Relu_output_0");

  ref = g_build_filename (dir, "ref_sweep.csv", NULL);
  g_assert_true (g_file_get_contents (ref, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (int i = 1; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      g_auto (GStrv) f = g_strsplit (lines[i], ",", -1);
      const PsSweepStep *r;
      double got[7], want[7];

      g_assert_cmpuint (g_strv_length (f), ==, 10);
      r = ps_sweep_get_step (s, atoi (f[0]));
      g_assert_cmpint (r->channel, ==, atoi (f[2]));
      {
        double v[7] = { r->valid_acc, r->test_acc, r->asr, r->g_test_acc, r->g_asr,
                        r->g_clean_flagged, r->g_poisoned_flagged };
        memcpy (got, v, sizeof v);
      }
      for (int j = 0; j < 7; j++)
        {
          want[j] = g_ascii_strtod (f[3 + j], NULL);
          if (fabs (got[j] - want[j]) > 0.05)
            g_error ("step %s column %d: %.4f, reference %.4f", f[0], 3 + j, got[j], want[j]);
        }
      rows++;
    }
  g_assert_cmpint (rows, ==, 65);

  /* G at 20 channels as ONNX: read back, its recorded metrics are what eval measures */
  check_g_round_trip (m, s, test, 20, "fixture-g.onnx", FALSE);
  {
    g_autofree char *gp = g_build_filename (ps_test_tmpdir (), "fixture-g.onnx", NULL);
    g_autofree char *tp = g_build_filename (dir, "data/cl/test.h5", NULL);
    g_autofree char *bp = g_build_filename (dir, "data/bd/bd_test.h5", NULL);
    g_autofree char *out = NULL, *want_acc = NULL, *want_asr = NULL;
    const char *argv[] = { "eval", "--model", gp, "--data", tp, "--poisoned", bp, NULL };
    g_autoptr (PsRepaired) g = ps_repaired_load (gp, &error);

    g_assert_no_error (error);
    g_assert_cmpint (ps_test_run_cli (argv, &out, NULL), ==, 0);
    want_acc = g_strdup_printf ("Clean Classification accuracy: %.4f %%", g->metrics.g_test_acc);
    want_asr = g_strdup_printf ("Attack Success Rate: %.4f %%", g->metrics.g_asr);
    g_assert_nonnull (strstr (out, want_acc));
    g_assert_nonnull (strstr (out, want_asr));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/onnx/ops/conv", test_conv);
  g_test_add_func ("/onnx/ops/pool", test_pool);
  g_test_add_func ("/onnx/ops/elementwise", test_elementwise);
  g_test_add_func ("/onnx/ops/dense", test_dense);
  g_test_add_func ("/onnx/g/small", test_small_g);
  g_test_add_func ("/onnx/cli", test_cli);
  g_test_add_func ("/onnx/bad/hostile", test_hostile);
  g_test_add_func ("/onnx/bad/mutations", test_mutations);
  g_test_add_func ("/onnx/fixture/classes", test_fixture_classes);
  g_test_add_func ("/onnx/fixture/sweep", test_fixture_sweep);
  return g_test_run ();
}
