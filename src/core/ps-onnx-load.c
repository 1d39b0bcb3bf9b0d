/* ps-onnx-load.c: reads an ONNX graph (as torch.onnx.export writes CNNs) into a PsModel.
 * ONNX activations are NCHW, ours NHWC: weights are transposed to Keras layouts, and a
 * Gemm reading a flattened feature map gets its rows permuted to the NHWC order. Every
 * problem is one line naming the node. */
#define G_LOG_DOMAIN "ps-onnx"

#include "ps-onnx.h"
#include "ps-file.h"
#include "ps-error.h"
#include "ps-repaired.h"
#include "onnx.pb-c.h"

#include <math.h>
#include <string.h>

typedef struct {
  /* an activation: the layer that produces it */
  int      layer;       /* -1 for a constant */
  /* a constant */
  float   *data;
  gint64  *ints;        /* integer constants (shapes) keep their values */
  gsize    len;
  int      n_dims;
  gint64   dims[8];
  /* a 2-D tensor flattened from a feature map: ONNX's order is (c, y, x), ours (y, x, c) */
  PsShape  flat_from;
} Tensor;

typedef struct {
  Onnx__ModelProto *proto;
  Onnx__GraphProto *graph;
  GHashTable       *tensors;    /* name -> Tensor */
  GHashTable       *producer;   /* tensor name -> node index + 1 */
  GHashTable       *uses;       /* tensor name -> number of needed nodes reading it */
  GPtrArray        *layers;
  GPtrArray        *aliases;
  gint64            opset;
  const Onnx__NodeProto *node;  /* being translated, for messages */
} Loader;

static void
tensor_free (gpointer p)
{
  Tensor *t = p;

  g_free (t->data);
  g_free (t->ints);
  g_free (t);
}

static gboolean
fail (Loader *L, GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

/* Names come from the file: one printable line of bounded length, whatever they hold. */
static char *
printable (const char *text)
{
  char *s = g_utf8_make_valid (text ? text : "", -1);

  for (char *p = s; *p; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f)
      *p = '?';
  if (g_utf8_strlen (s, -1) > 200)
    {
      char *cut = g_utf8_offset_to_pointer (s, 200);
      *cut = '\0';
      cut = g_strconcat (s, "…", NULL);
      g_free (s);
      s = cut;
    }
  return s;
}

static gboolean
fail (Loader *L, GError **error, int code, const char *fmt, ...)
{
  g_autofree char *msg = NULL, *clean = NULL;
  va_list args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  if (L != NULL && L->node != NULL)
    {
      g_autofree char *full = g_strdup_printf ("node “%s” (%s): %s",
                                               L->node->name && *L->node->name ? L->node->name
                                               : L->node->n_output ? L->node->output[0] : "?",
                                               L->node->op_type ? L->node->op_type : "?", msg);
      clean = printable (full);
    }
  else
    clean = printable (msg);
  g_set_error_literal (error, PS_ERROR, code, clean);
  return FALSE;
}

gboolean
ps_onnx_is_onnx (const char *path)
{
  g_autoptr (GFile) file = NULL;
  g_autoptr (GFileInputStream) in = NULL;
  guchar head[8] = { 0 };

  if (g_str_has_suffix (path, ".onnx") || g_str_has_suffix (path, ".ONNX"))
    return TRUE;
  /* Only a regular file is looked into: opening a FIFO would block. */
  if (!ps_file_check_regular (path, NULL))
    return FALSE;
  /* HDF5 files start with their signature; an ONNX file with ir_version (field 1). */
  file = g_file_new_for_path (path);
  in = g_file_read (file, NULL, NULL);
  if (in == NULL || g_input_stream_read (G_INPUT_STREAM (in), head, sizeof head, NULL, NULL) < 2)
    return FALSE;
  return head[0] == 0x08 && head[1] > 0 && head[1] < 0x20;
}

/* ---- constants ---- */

static gboolean
check_dims (Loader *L, const char *name, const gint64 *dims, int n, gsize *count, GError **error)
{
  gsize total = 1;

  if (n > 8)
    return fail (L, error, PS_ERROR_LIMIT, "tensor “%s” has %d dimensions", name, n);
  for (int i = 0; i < n; i++)
    {
      if (dims[i] < 0 || dims[i] > PS_ONNX_MAX_DIM * (gint64) 64)
        return fail (L, error, PS_ERROR_LIMIT, "tensor “%s” declares dimension %" G_GINT64_FORMAT,
                     name, dims[i]);
      total *= (gsize) dims[i];
      if (total > PS_ONNX_MAX_ELEMENTS)
        return fail (L, error, PS_ERROR_LIMIT, "tensor “%s” declares more than %zu elements",
                     name, (gsize) PS_ONNX_MAX_ELEMENTS);
    }
  *count = total;
  return TRUE;
}

static float
half_to_float (guint16 h)
{
  guint32 sign = (guint32) (h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  union { guint32 u; float f; } v;

  if (exp == 0)
    return (sign ? -1.0f : 1.0f) * ldexpf ((float) man, -24);
  if (exp == 31)
    v.u = sign | 0x7f800000u | (man << 13);
  else
    v.u = sign | ((exp + 112) << 23) | (man << 13);
  return v.f;
}

/* Reads a TensorProto's values as floats (and, for integer types, as integers too). */
static Tensor *
read_tensor (Loader *L, const Onnx__TensorProto *tp, GError **error)
{
  g_autoptr (GPtrArray) hold = NULL;
  Tensor *t;
  gsize n = 0, width;
  const char *name = tp->name ? tp->name : "?";
  const guint8 *raw = tp->has_raw_data ? tp->raw_data.data : NULL;
  int type = tp->has_data_type ? tp->data_type : 0;

  if (!check_dims (L, name, tp->dims, (int) MIN (tp->n_dims, 9), &n, error))
    return NULL;
  if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED,
            "tensor “%s” keeps its data in an external file, which is not read", name);
      return NULL;
    }
  switch (type)
    {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: width = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: width = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: width = 2; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: width = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: width = 4; break;
    default:
      fail (L, error, PS_ERROR_UNSUPPORTED, "tensor “%s” has data type %d (float, double, "
            "float16, int32 and int64 are read)", name, type);
      return NULL;
    }
  {
    gsize have = raw ? tp->raw_data.len / width
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? tp->n_float_data
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? tp->n_double_data
                 : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? tp->n_int64_data
                 : tp->n_int32_data;
    if (have != n || (raw && tp->raw_data.len != n * width))
      {
        fail (L, error, PS_ERROR_FORMAT, "tensor “%s” has %zu values for %zu elements",
              name, have, n);
        return NULL;
      }
  }
  t = g_new0 (Tensor, 1);
  t->layer = -1;
  t->len = n;
  t->n_dims = (int) tp->n_dims;
  if (tp->n_dims > 0)
    memcpy (t->dims, tp->dims, sizeof (gint64) * tp->n_dims);
  t->data = g_new (float, MAX (n, 1));
  if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32)
    t->ints = g_new (gint64, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    {
      double v;

      switch (type)
        {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
          {
            float f;
            if (raw) memcpy (&f, raw + 4 * i, 4); else f = tp->float_data[i];
            t->data[i] = f;
            continue;
          }
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
          if (raw) memcpy (&v, raw + 8 * i, 8); else v = tp->double_data[i];
          t->data[i] = (float) v;
          continue;
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16:
          {
            guint16 h;
            if (raw) memcpy (&h, raw + 2 * i, 2); else h = (guint16) tp->int32_data[i];
            t->data[i] = half_to_float (h);
            continue;
          }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
          {
            gint64 x;
            if (raw) memcpy (&x, raw + 8 * i, 8); else x = tp->int64_data[i];
            t->ints[i] = x;
            break;
          }
        default:
          {
            gint32 x;
            if (raw) memcpy (&x, raw + 4 * i, 4); else x = tp->int32_data[i];
            t->ints[i] = x;
            break;
          }
        }
      t->data[i] = (float) t->ints[i];
    }
  for (gsize i = 0; i < n; i++)
    if (!isfinite (t->data[i]))
      {
        tensor_free (t);
        fail (L, error, PS_ERROR_FORMAT, "tensor “%s” has NaN or infinite values", name);
        return NULL;
      }
  return t;
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *
attr (Loader *L, const char *name)
{
  for (gsize i = 0; i < L->node->n_attribute; i++)
    if (g_strcmp0 (L->node->attribute[i]->name, name) == 0)
      return L->node->attribute[i];
  return NULL;
}

static gint64
attr_int (Loader *L, const char *name, gint64 dflt)
{
  const Onnx__AttributeProto *a = attr (L, name);
  return a && a->has_i ? a->i : dflt;
}

static float
attr_float (Loader *L, const char *name, float dflt)
{
  const Onnx__AttributeProto *a = attr (L, name);
  return a && a->has_f ? a->f : dflt;
}

/* A pair of ints (kernel_shape, strides, dilations) or four (pads). */
static gboolean
attr_ints (Loader *L, const char *name, int n, int *out, int dflt, GError **error)
{
  const Onnx__AttributeProto *a = attr (L, name);

  for (int i = 0; i < n; i++)
    out[i] = dflt;
  if (a == NULL)
    return TRUE;
  if ((int) a->n_ints != n)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "attribute %s has %zu values, expected %d "
                 "(only 2-D images are read)", name, a->n_ints, n);
  for (int i = 0; i < n; i++)
    {
      if (a->ints[i] < 0 || a->ints[i] > PS_ONNX_MAX_DIM)
        return fail (L, error, PS_ERROR_LIMIT, "attribute %s has value %" G_GINT64_FORMAT,
                     name, a->ints[i]);
      out[i] = (int) a->ints[i];
    }
  return TRUE;
}

static const char *
attr_string (Loader *L, const char *name, const char *dflt, char *buf, gsize size)
{
  const Onnx__AttributeProto *a = attr (L, name);

  if (a == NULL || !a->has_s)
    return dflt;
  g_strlcpy (buf, (const char *) a->s.data, MIN (size, a->s.len + 1));
  return buf;
}

/* ---- tensors and layers ---- */

static Tensor *
input_tensor (Loader *L, int i, GError **error)
{
  Tensor *t;

  if ((gsize) i >= L->node->n_input || L->node->input[i][0] == '\0')
    {
      fail (L, error, PS_ERROR_FORMAT, "input %d is missing", i + 1);
      return NULL;
    }
  t = g_hash_table_lookup (L->tensors, L->node->input[i]);
  if (t == NULL)
    fail (L, error, PS_ERROR_FORMAT, "input “%s” is neither a graph input, an initializer "
          "nor an earlier node's output", L->node->input[i]);
  return t;
}

static Tensor *
optional_const (Loader *L, int i, GError **error, gboolean *ok)
{
  Tensor *t;

  *ok = TRUE;
  if ((gsize) i >= L->node->n_input || L->node->input[i][0] == '\0')
    return NULL;
  t = input_tensor (L, i, error);
  if (t != NULL && t->layer >= 0)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "input “%s” must be a constant", L->node->input[i]);
      t = NULL;
    }
  *ok = t != NULL;
  return t;
}

static PsLayer *
layer_of (Loader *L, Tensor *t)
{
  return g_ptr_array_index (L->layers, t->layer);
}

static Tensor *
activation_input (Loader *L, int i, int rank, GError **error)
{
  Tensor *t = input_tensor (L, i, error);

  if (t == NULL)
    return NULL;
  if (t->layer < 0)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "input “%s” is a constant where a computed "
            "tensor is expected", L->node->input[i]);
      return NULL;
    }
  if (rank != 0 && layer_of (L, t)->rank != rank)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "input “%s” has rank %d, expected %d",
            L->node->input[i], layer_of (L, t)->rank, rank);
      return NULL;
    }
  if (t->flat_from.c > 0 && !g_str_equal (L->node->op_type, "Gemm")
      && !g_str_equal (L->node->op_type, "MatMul") && !g_str_equal (L->node->op_type, "Identity")
      && !g_str_equal (L->node->op_type, "Dropout"))
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "reads the flattened feature map “%s”; only Gemm "
            "and MatMul may read one", L->node->input[i]);
      return NULL;
    }
  return t;
}

static void
set_output (Loader *L, int layer, PsShape flat_from)
{
  Tensor *t = g_new0 (Tensor, 1);

  t->layer = layer;
  t->flat_from = flat_from;
  g_hash_table_replace (L->tensors, g_strdup (L->node->output[0]), t);
}

/* A new layer named after the node's first output, reading @in (NULL-terminated). */
static PsLayer *
add_layer (Loader *L, PsLayerKind kind, Tensor **in, int n_in, PsShape out, int rank)
{
  PsLayer *l = g_new0 (PsLayer, 1);

  l->name = g_strdup (L->node->output[0]);
  l->kind = kind;
  l->n_inputs = n_in;
  for (int i = 0; i < n_in; i++)
    l->inputs[i] = in[i]->layer;
  if (n_in > 0)
    l->in = layer_of (L, in[0])->out;
  l->out = out;
  l->rank = rank;
  g_ptr_array_add (L->layers, l);
  if (L->node->name != NULL && L->node->name[0] != '\0' && !g_str_equal (L->node->name, l->name))
    {
      g_ptr_array_add (L->aliases, g_strdup (L->node->name));
      g_ptr_array_add (L->aliases, g_strdup (l->name));
    }
  set_output (L, L->layers->len - 1, (PsShape) { 0 });
  return l;
}

static void
add_alias (Loader *L, Tensor *in)
{
  PsLayer *src = layer_of (L, in);

  set_output (L, in->layer, in->flat_from);
  g_ptr_array_add (L->aliases, g_strdup (L->node->output[0]));
  g_ptr_array_add (L->aliases, g_strdup (src->name));
  if (L->node->name != NULL && L->node->name[0] != '\0')
    {
      g_ptr_array_add (L->aliases, g_strdup (L->node->name));
      g_ptr_array_add (L->aliases, g_strdup (src->name));
    }
}

static gboolean
check_activation_size (Loader *L, PsShape s, GError **error)
{
  if (s.h <= 0 || s.w <= 0 || s.c <= 0)
    return fail (L, error, PS_ERROR_FORMAT, "output would be %dx%dx%d", s.h, s.w, s.c);
  if ((gsize) s.h * s.w * s.c > PS_ONNX_MAX_ELEMENTS / 64)
    return fail (L, error, PS_ERROR_LIMIT, "output of %dx%dx%d values per image is too big",
                 s.c, s.h, s.w);
  return TRUE;
}

/* Window geometry of Conv / MaxPool / AveragePool: pads [t, l, b, r], auto_pad. */
static gboolean
window (Loader *L, PsLayer *l, int dh, int dw, GError **error)
{
  int pads[4], strides[2];
  char buf[32];
  const char *auto_pad = attr_string (L, "auto_pad", "NOTSET", buf, sizeof buf);
  int eh = dh * (l->kh - 1) + 1, ew = dw * (l->kw - 1) + 1;

  if (!attr_ints (L, "pads", 4, pads, 0, error) || !attr_ints (L, "strides", 2, strides, 1, error))
    return FALSE;
  if (strides[0] < 1 || strides[1] < 1)
    return fail (L, error, PS_ERROR_FORMAT, "strides must be positive");
  l->sh = strides[0], l->sw = strides[1];
  if (g_str_equal (auto_pad, "SAME_UPPER") || g_str_equal (auto_pad, "SAME_LOWER"))
    {
      int oh = (l->in.h + l->sh - 1) / l->sh, ow = (l->in.w + l->sw - 1) / l->sw;
      int ph = MAX ((oh - 1) * l->sh + eh - l->in.h, 0), pw = MAX ((ow - 1) * l->sw + ew - l->in.w, 0);
      gboolean upper = g_str_equal (auto_pad, "SAME_UPPER");

      pads[0] = upper ? ph / 2 : ph - ph / 2, pads[2] = ph - pads[0];
      pads[1] = upper ? pw / 2 : pw - pw / 2, pads[3] = pw - pads[1];
    }
  else if (g_str_equal (auto_pad, "VALID"))
    memset (pads, 0, sizeof pads);
  else if (!g_str_equal (auto_pad, "NOTSET"))
    return fail (L, error, PS_ERROR_UNSUPPORTED, "auto_pad %s", auto_pad);
  l->pad_top = pads[0], l->pad_left = pads[1], l->pad_bottom = pads[2], l->pad_right = pads[3];
  l->out.h = (l->in.h + pads[0] + pads[2] - eh) / l->sh + 1;
  l->out.w = (l->in.w + pads[1] + pads[3] - ew) / l->sw + 1;
  if (l->in.h + pads[0] + pads[2] < eh || l->in.w + pads[1] + pads[3] < ew)
    return fail (L, error, PS_ERROR_FORMAT, "the window is larger than the padded %dx%d input",
                 l->in.h, l->in.w);
  return check_activation_size (L, l->out, error);
}

static gboolean
op_conv (Loader *L, GError **error)
{
  Tensor *x = activation_input (L, 0, 4, error), *w, *b;
  int ks[2], dil[2], groups = (int) attr_int (L, "group", 1);
  gboolean ok;
  PsLayer *l;
  int M, Cg, C;

  if (x == NULL)
    return FALSE;
  if ((w = optional_const (L, 1, error, &ok)) == NULL)
    return ok ? fail (L, error, PS_ERROR_FORMAT, "no weight") : FALSE;
  b = optional_const (L, 2, error, &ok);
  if (!ok)
    return FALSE;
  C = layer_of (L, x)->out.c;
  if (w->n_dims != 4)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "weight of rank %d (only 2-D convolutions)", w->n_dims);
  M = (int) w->dims[0], Cg = (int) w->dims[1];
  if (groups < 1 || C % groups != 0 || M % groups != 0 || Cg * groups != C)
    return fail (L, error, PS_ERROR_FORMAT, "weight (%d,%d,...) and group %d do not fit %d input channels",
                 M, Cg, groups, C);
  if (!attr_ints (L, "kernel_shape", 2, ks, 0, error) || !attr_ints (L, "dilations", 2, dil, 1, error))
    return FALSE;
  if ((ks[0] && ks[0] != w->dims[2]) || (ks[1] && ks[1] != w->dims[3]) || dil[0] < 1 || dil[1] < 1)
    return fail (L, error, PS_ERROR_FORMAT, "kernel_shape or dilations disagree with the weight");
  if (b != NULL && b->len != (gsize) M)
    return fail (L, error, PS_ERROR_FORMAT, "bias has %zu values for %d channels", b->len, M);

  l = add_layer (L, PS_LAYER_CONV2D, &x, 1, (PsShape) { 0, 0, M }, 4);
  l->kh = (int) w->dims[2], l->kw = (int) w->dims[3];
  l->groups = groups, l->dh = dil[0], l->dw = dil[1];
  if (!window (L, l, dil[0], dil[1], error))
    return FALSE;
  l->out.c = M;
  if ((gsize) l->out.h * l->out.w * l->kh * l->kw * Cg > PS_ONNX_MAX_PATCHES)
    return fail (L, error, PS_ERROR_LIMIT, "its patches would hold more than %zu values per image",
                 PS_ONNX_MAX_PATCHES);
  l->use_bias = b != NULL;
  l->kernel_len = w->len;
  l->kernel = g_new (float, w->len);
  /* (M, Cg, kh, kw) -> (kh, kw, Cg, M) */
  for (int m = 0; m < M; m++)
    for (int c = 0; c < Cg; c++)
      for (int y = 0; y < l->kh; y++)
        for (int z = 0; z < l->kw; z++)
          l->kernel[(((gsize) y * l->kw + z) * Cg + c) * M + m]
            = w->data[(((gsize) m * Cg + c) * l->kh + y) * l->kw + z];
  l->bias_len = M;
  l->bias = b ? g_memdup2 (b->data, sizeof (float) * M) : g_new0 (float, M);
  return TRUE;
}

/* Per-channel values of a constant broadcast against a (N,C,H,W) or (N,C) tensor. */
static gboolean
channel_values (Loader *L, Tensor *k, int C, int rank, float *out, GError **error)
{
  gsize big = 0;
  int axis = -1;

  for (int i = 0; i < k->n_dims; i++)
    if (k->dims[i] != 1)
      big++, axis = i;
  if (k->len == 1)
    {
      for (int c = 0; c < C; c++)
        out[c] = k->data[0];
      return TRUE;
    }
  /* the channel axis is second to last of 3 in (C,1,1), or the last one of a (N,C) tensor */
  if (big == 1 && k->len == (gsize) C
      && ((rank == 4 && k->n_dims >= 3 && axis == k->n_dims - 3)
          || (rank == 2 && axis == k->n_dims - 1)))
    {
      memcpy (out, k->data, sizeof (float) * C);
      return TRUE;
    }
  return fail (L, error, PS_ERROR_UNSUPPORTED, "constant of %zu values does not broadcast per "
               "channel over %d channels", k->len, C);
}

static PsLayer *
add_affine (Loader *L, Tensor *x)
{
  PsLayer *src = layer_of (L, x);
  PsLayer *l = add_layer (L, PS_LAYER_AFFINE, &x, 1, src->out, src->rank);

  l->kernel_len = l->bias_len = src->out.c;
  l->kernel = g_new (float, src->out.c);
  l->bias = g_new0 (float, src->out.c);
  for (int c = 0; c < src->out.c; c++)
    l->kernel[c] = 1.0f;
  return l;
}

static int
count_uses (Loader *L, const char *name)
{
  return GPOINTER_TO_INT (g_hash_table_lookup (L->uses, name));
}

static gboolean
op_batchnorm (Loader *L, GError **error)
{
  Tensor *x = activation_input (L, 0, 0, error), *p[4];
  float eps = attr_float (L, "epsilon", 1e-5f);
  PsLayer *src, *l;
  int C;
  gboolean ok;

  if (x == NULL)
    return FALSE;
  src = layer_of (L, x);
  C = src->out.c;
  for (int i = 0; i < 4; i++)
    {
      p[i] = optional_const (L, i + 1, error, &ok);
      if (!ok)
        return FALSE;
      if (p[i] == NULL || p[i]->len != (gsize) C)
        return fail (L, error, PS_ERROR_FORMAT, "parameter %d does not have %d values", i + 2, C);
    }
  if (L->node->n_output > 1 && L->node->output[1][0] != '\0')
    return fail (L, error, PS_ERROR_UNSUPPORTED, "training mode (more than one output)");
  /* Folding into the convolution is exact only when nothing else reads its output. */
  if (src->kind == PS_LAYER_CONV2D && src->activation == PS_ACT_LINEAR
      && count_uses (L, L->node->input[0]) == 1 && x->layer == (int) L->layers->len - 1)
    {
      l = src;
      g_free (l->name);
      l->name = g_strdup (L->node->output[0]);
      set_output (L, x->layer, (PsShape) { 0 });
    }
  else
    l = add_affine (L, x);
  for (int c = 0; c < C; c++)
    {
      float s = p[0]->data[c] / sqrtf (p[3]->data[c] + eps);
      float t = p[1]->data[c] - p[2]->data[c] * s;

      if (l->kind == PS_LAYER_CONV2D)
        {
          for (gsize r = 0; r < l->kernel_len / C; r++)
            l->kernel[r * C + c] *= s;
          l->bias[c] = l->bias[c] * s + t;
          l->use_bias = TRUE;
        }
      else
        l->kernel[c] = s, l->bias[c] = t;
    }
  return TRUE;
}

static gboolean
op_arith (Loader *L, GError **error)
{
  const char *op = L->node->op_type;
  Tensor *a = input_tensor (L, 0, error), *b = a ? input_tensor (L, 1, error) : NULL;
  Tensor *x, *k;
  PsLayer *src, *l;
  g_autofree float *v = NULL;

  if (a == NULL || b == NULL)
    return FALSE;
  if (a->layer >= 0 && b->layer >= 0)
    {
      Tensor *in[2] = { a, b };
      PsLayer *la = layer_of (L, a), *lb = layer_of (L, b);

      if (!g_str_equal (op, "Add"))
        return fail (L, error, PS_ERROR_UNSUPPORTED, "%s of two computed tensors", op);
      if (la->out.h != lb->out.h || la->out.w != lb->out.w || la->out.c != lb->out.c
          || la->rank != lb->rank || a->flat_from.c || b->flat_from.c)
        return fail (L, error, PS_ERROR_UNSUPPORTED, "adds tensors of different shapes");
      add_layer (L, PS_LAYER_ADD, in, 2, la->out, la->rank);
      return TRUE;
    }
  if (a->layer < 0 && b->layer < 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "%s of two constants", op);
  x = a->layer >= 0 ? a : b;
  k = a->layer >= 0 ? b : a;
  if (activation_input (L, x == a ? 0 : 1, 0, error) == NULL)
    return FALSE;
  src = layer_of (L, x);
  v = g_new (float, src->out.c);
  if (!channel_values (L, k, src->out.c, src->rank, v, error))
    return FALSE;
  if ((g_str_equal (op, "Div") && x == b))
    return fail (L, error, PS_ERROR_UNSUPPORTED, "divides a constant by a computed tensor");
  l = add_affine (L, x);
  for (int c = 0; c < src->out.c; c++)
    {
      if (g_str_equal (op, "Add"))
        l->bias[c] = v[c];
      else if (g_str_equal (op, "Sub"))
        {
          if (x == a)
            l->bias[c] = -v[c];
          else
            l->kernel[c] = -1.0f, l->bias[c] = v[c];
        }
      else if (g_str_equal (op, "Mul"))
        l->kernel[c] = v[c];
      else
        {
          if (v[c] == 0.0f)
            return fail (L, error, PS_ERROR_FORMAT, "divides by zero");
          l->kernel[c] = v[c];
          l->divide = TRUE;
        }
    }
  return TRUE;
}

static gboolean
op_activation (Loader *L, GError **error)
{
  const char *op = L->node->op_type;
  Tensor *x = activation_input (L, 0, 0, error);
  PsLayer *src, *l;

  if (x == NULL)
    return FALSE;
  src = layer_of (L, x);
  /* A Relu alone after a Conv, Gemm or affine layer becomes that layer's activation, as
   * in Keras (one pass less; the sweep then updates the linear values and re-activates). */
  if (g_str_equal (op, "Relu") && src->activation == PS_ACT_LINEAR
      && (src->kind == PS_LAYER_CONV2D || src->kind == PS_LAYER_DENSE || src->kind == PS_LAYER_AFFINE)
      && count_uses (L, L->node->input[0]) == 1 && x->layer == (int) L->layers->len - 1
      && x->flat_from.c == 0)
    {
      src->activation = PS_ACT_RELU;
      g_free (src->name);
      src->name = g_strdup (L->node->output[0]);
      set_output (L, x->layer, (PsShape) { 0 });
      if (L->node->name != NULL && L->node->name[0] != '\0')
        {
          g_ptr_array_add (L->aliases, g_strdup (L->node->name));
          g_ptr_array_add (L->aliases, g_strdup (src->name));
        }
      return TRUE;
    }
  if (g_str_equal (op, "Relu") || g_str_equal (op, "Softmax"))
    {
      if (g_str_equal (op, "Softmax"))
        {
          gint64 axis = attr_int (L, "axis", L->opset >= 13 ? -1 : 1);
          gboolean channels = src->rank == 2 ? (axis == 1 || axis == -1)
                              : (L->opset >= 13 && (axis == 1 || axis == -3));
          if (!channels)
            return fail (L, error, PS_ERROR_UNSUPPORTED, "softmax along axis %" G_GINT64_FORMAT
                         " of a rank-%d tensor (only along channels)", axis, src->rank);
        }
      l = add_layer (L, PS_LAYER_ACTIVATION, &x, 1, src->out, src->rank);
      l->activation = g_str_equal (op, "Relu") ? PS_ACT_RELU : PS_ACT_SOFTMAX;
      return TRUE;
    }
  l = add_layer (L, PS_LAYER_UNARY, &x, 1, src->out, src->rank);
  if (g_str_equal (op, "LeakyRelu"))
    l->unary = PS_UNARY_LEAKY_RELU, l->alpha = attr_float (L, "alpha", 0.01f);
  else if (g_str_equal (op, "Sigmoid"))
    l->unary = PS_UNARY_SIGMOID;
  else
    {
      gboolean ok;
      Tensor *lo = optional_const (L, 1, error, &ok), *hi;

      if (!ok || (hi = optional_const (L, 2, error, &ok), !ok))
        return FALSE;
      l->unary = PS_UNARY_CLIP;
      l->lo = lo ? lo->data[0] : attr_float (L, "min", -G_MAXFLOAT);
      l->hi = hi ? hi->data[0] : attr_float (L, "max", G_MAXFLOAT);
      if ((lo && lo->len != 1) || (hi && hi->len != 1))
        return fail (L, error, PS_ERROR_UNSUPPORTED, "min and max must be scalars");
    }
  return TRUE;
}

static gboolean
op_pool (Loader *L, GError **error)
{
  const char *op = L->node->op_type;
  Tensor *x = activation_input (L, 0, 4, error);
  int ks[2], dil[2];
  PsLayer *l, *src;

  if (x == NULL)
    return FALSE;
  src = layer_of (L, x);
  if (g_str_equal (op, "GlobalAveragePool"))
    {
      add_layer (L, PS_LAYER_GLOBAL_AVGPOOL, &x, 1, (PsShape) { 1, 1, src->out.c }, 4);
      return TRUE;
    }
  if (!attr_ints (L, "kernel_shape", 2, ks, 0, error) || !attr_ints (L, "dilations", 2, dil, 1, error))
    return FALSE;
  if (ks[0] < 1 || ks[1] < 1)
    return fail (L, error, PS_ERROR_FORMAT, "kernel_shape missing");
  if (dil[0] != 1 || dil[1] != 1 || attr_int (L, "ceil_mode", 0) != 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "dilated or ceil_mode pooling");
  if (L->node->n_output > 1 && L->node->output[1][0] != '\0')
    return fail (L, error, PS_ERROR_UNSUPPORTED, "pooling indices output");
  l = add_layer (L, g_str_equal (op, "MaxPool") ? PS_LAYER_MAXPOOL2D : PS_LAYER_AVGPOOL2D,
                 &x, 1, (PsShape) { 0, 0, src->out.c }, 4);
  l->kh = ks[0], l->kw = ks[1];
  l->count_pad = attr_int (L, "count_include_pad", 0) != 0;
  return window (L, l, 1, 1, error);
}

static gboolean
op_concat (Loader *L, GError **error)
{
  Tensor *in[PS_MAX_INPUTS] = { NULL };
  gint64 axis = attr_int (L, "axis", 1);
  int n = (int) L->node->n_input, c = 0, rank;
  PsShape s;
  PsLayer *l;

  if (n < 1 || n > PS_MAX_INPUTS)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "%d inputs (at most %d)", n, PS_MAX_INPUTS);
  for (int i = 0; i < n; i++)
    if ((in[i] = activation_input (L, i, 0, error)) == NULL)
      return FALSE;
  s = layer_of (L, in[0])->out;
  rank = layer_of (L, in[0])->rank;
  if (!(axis == 1 || axis == -rank + 1 || (rank == 2 && axis == -1)))
    return fail (L, error, PS_ERROR_UNSUPPORTED, "concatenates along axis %" G_GINT64_FORMAT
                 " (only channels)", axis);
  for (int i = 0; i < n; i++)
    {
      PsShape t = layer_of (L, in[i])->out;
      if (t.h != s.h || t.w != s.w || layer_of (L, in[i])->rank != rank)
        return fail (L, error, PS_ERROR_UNSUPPORTED, "concatenates tensors of different sizes");
      c += t.c;
    }
  s.c = c;
  if (!check_activation_size (L, s, error))
    return FALSE;
  l = add_layer (L, PS_LAYER_CONCAT, in, n, s, rank);
  for (int i = 0; i < n; i++)
    l->in_c[i] = layer_of (L, in[i])->out.c;
  return TRUE;
}

static gboolean
flatten_to (Loader *L, Tensor *x, GError **error)
{
  PsLayer *src = layer_of (L, x), *l;
  PsShape s = src->out;

  if (src->rank == 2)
    {
      add_alias (L, x);
      return TRUE;
    }
  l = add_layer (L, PS_LAYER_FLATTEN, &x, 1, (PsShape) { 1, 1, s.h * s.w * s.c }, 2);
  (void) l;
  /* only a spatial map with several channels has a different order in NCHW */
  if (s.h * s.w > 1 && s.c > 1)
    ((Tensor *) g_hash_table_lookup (L->tensors, L->node->output[0]))->flat_from = s;
  return TRUE;
}

static gboolean
op_flatten (Loader *L, GError **error)
{
  Tensor *x = activation_input (L, 0, 0, error);

  if (x == NULL)
    return FALSE;
  if (attr_int (L, "axis", 1) != 1)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "flatten axis %" G_GINT64_FORMAT " (only 1)",
                 attr_int (L, "axis", 1));
  return flatten_to (L, x, error);
}

static gboolean
op_reshape (Loader *L, GError **error)
{
  Tensor *x = activation_input (L, 0, 0, error), *shape;
  gboolean ok;
  PsLayer *src;
  gsize total;

  if (x == NULL)
    return FALSE;
  shape = optional_const (L, 1, error, &ok);
  if (!ok)
    return FALSE;
  if (shape == NULL || shape->ints == NULL)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "shape is not a constant of integers");
  src = layer_of (L, x);
  total = ps_shape_size (src->out);
  /* (N, -1), (0, K), (N, K) or (-1, K) with K all of an image's values: a flatten */
  if (shape->len == 2 && (shape->ints[1] == -1 || shape->ints[1] == (gint64) total)
      && (shape->ints[0] >= 0 || (shape->ints[0] == -1 && shape->ints[1] != -1)))
    return flatten_to (L, x, error);
  return fail (L, error, PS_ERROR_UNSUPPORTED, "reshape to anything but (N, %zu)", total);
}

static gboolean
op_dense (Loader *L, GError **error)
{
  gboolean gemm = g_str_equal (L->node->op_type, "Gemm"), ok;
  Tensor *x = activation_input (L, 0, 2, error), *w, *b = NULL;
  gboolean trans_b = gemm && attr_int (L, "transB", 0) != 0;
  float alpha = gemm ? attr_float (L, "alpha", 1.0f) : 1.0f, beta = gemm ? attr_float (L, "beta", 1.0f) : 1.0f;
  PsLayer *l;
  PsShape f;
  int K, N;

  if (x == NULL)
    return FALSE;
  if ((w = optional_const (L, 1, error, &ok)) == NULL)
    return ok ? fail (L, error, PS_ERROR_FORMAT, "no weight") : FALSE;
  if (gemm && (b = optional_const (L, 2, error, &ok), !ok))
    return FALSE;
  if (gemm && attr_int (L, "transA", 0) != 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "transA");
  K = layer_of (L, x)->out.c;
  if (w->n_dims != 2 || w->dims[trans_b ? 1 : 0] != K)
    return fail (L, error, PS_ERROR_MISMATCH, "weight does not take %d inputs", K);
  N = (int) w->dims[trans_b ? 0 : 1];
  if (N < 1)
    return fail (L, error, PS_ERROR_FORMAT, "weight has no outputs");
  if (b != NULL && b->len != 1 && b->len != (gsize) N)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "bias of %zu values for %d outputs", b->len, N);
  f = x->flat_from;
  l = add_layer (L, PS_LAYER_DENSE, &x, 1, (PsShape) { 1, 1, N }, 2);
  l->kernel_len = (gsize) K * N;
  l->kernel = g_new (float, l->kernel_len);
  for (int k = 0; k < K; k++)
    {
      /* ONNX's row k is (c, y, x) of the flattened map; ours is (y, x, c) */
      int row = k;
      if (f.c > 0)
        {
          int c = k / (f.h * f.w), p = k % (f.h * f.w);
          row = p * f.c + c;
        }
      for (int j = 0; j < N; j++)
        l->kernel[(gsize) row * N + j] = alpha * (trans_b ? w->data[(gsize) j * K + k]
                                                          : w->data[(gsize) k * N + j]);
    }
  l->bias_len = N;
  l->bias = g_new0 (float, N);
  l->use_bias = b != NULL;
  for (int j = 0; b != NULL && j < N; j++)
    l->bias[j] = beta * b->data[b->len == 1 ? 0 : j];
  return TRUE;
}

static gboolean
op_identity (Loader *L, GError **error)
{
  Tensor *x = input_tensor (L, 0, error);

  if (x == NULL)
    return FALSE;
  if (x->layer < 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "identity of a constant");
  if (L->node->n_output > 1 && L->node->output[1][0] != '\0' && count_uses (L, L->node->output[1]) > 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "dropout mask is used");
  add_alias (L, x);
  return TRUE;
}

static gboolean
op_constant (Loader *L, GError **error)
{
  const Onnx__AttributeProto *a = attr (L, "value");
  Tensor *t;

  if (a != NULL && a->t != NULL)
    {
      if ((t = read_tensor (L, a->t, error)) == NULL)
        return FALSE;
    }
  else if ((a = attr (L, "value_float")) != NULL && a->has_f)
    {
      t = g_new0 (Tensor, 1);
      t->layer = -1, t->len = 1, t->data = g_new (float, 1), t->data[0] = a->f;
    }
  else if ((a = attr (L, "value_floats")) != NULL && a->n_floats > 0 && a->n_floats < PS_ONNX_MAX_ELEMENTS)
    {
      t = g_new0 (Tensor, 1);
      t->layer = -1, t->len = a->n_floats, t->n_dims = 1, t->dims[0] = a->n_floats;
      t->data = g_memdup2 (a->floats, sizeof (float) * a->n_floats);
    }
  else if (((a = attr (L, "value_ints")) != NULL && a->n_ints > 0 && a->n_ints < PS_ONNX_MAX_ELEMENTS)
           || ((a = attr (L, "value_int")) != NULL && a->has_i))
    {
      gsize n = a->has_i ? 1 : a->n_ints;
      t = g_new0 (Tensor, 1);
      t->layer = -1, t->len = n, t->n_dims = a->has_i ? 0 : 1, t->dims[0] = n;
      t->ints = g_new (gint64, n);
      t->data = g_new (float, n);
      for (gsize i = 0; i < n; i++)
        t->data[i] = (float) (t->ints[i] = a->has_i ? a->i : a->ints[i]);
    }
  else
    return fail (L, error, PS_ERROR_UNSUPPORTED, "constant without a readable value");
  g_hash_table_replace (L->tensors, g_strdup (L->node->output[0]), t);
  return TRUE;
}

typedef gboolean (*OpFunc) (Loader *L, GError **error);

static const struct { const char *name; OpFunc func; } ops[] = {
  { "Conv", op_conv },
  { "BatchNormalization", op_batchnorm },
  { "Relu", op_activation }, { "LeakyRelu", op_activation }, { "Sigmoid", op_activation },
  { "Clip", op_activation }, { "Softmax", op_activation },
  { "MaxPool", op_pool }, { "AveragePool", op_pool }, { "GlobalAveragePool", op_pool },
  { "Add", op_arith }, { "Sub", op_arith }, { "Mul", op_arith }, { "Div", op_arith },
  { "Gemm", op_dense }, { "MatMul", op_dense },
  { "Flatten", op_flatten }, { "Reshape", op_reshape }, { "Concat", op_concat },
  { "Identity", op_identity }, { "Dropout", op_identity },
  { "Constant", op_constant },
};

/* ---- the graph ---- */

/* The nodes the output needs, in an order where every node follows its inputs' producers
 * (depth first from the output, without recursion: hostile graphs may be deep). */
static int *
needed_nodes (Loader *L, const char *output, int *n_order, GError **error)
{
  Onnx__GraphProto *g = L->graph;
  g_autofree guint8 *state = g_new0 (guint8, MAX (g->n_node, 1)); /* 1 open, 2 done */
  g_autofree int *stack = g_new (int, MAX (g->n_node, 1));
  g_autofree gsize *next = g_new0 (gsize, MAX (g->n_node, 1));
  int *order = g_new (int, MAX (g->n_node, 1));
  int sp = 0, n = 0;
  gpointer p = g_hash_table_lookup (L->producer, output);

  *n_order = 0;
  if (p == NULL)
    {
      g_free (order);
      fail (L, error, PS_ERROR_FORMAT, "no node computes the output “%s”", output);
      return NULL;
    }
  stack[sp++] = GPOINTER_TO_INT (p) - 1;
  state[stack[0]] = 1;
  while (sp > 0)
    {
      int v = stack[sp - 1];
      const Onnx__NodeProto *node = g->node[v];

      if (next[v] < node->n_input)
        {
          gpointer q = g_hash_table_lookup (L->producer, node->input[next[v]++]);
          int u = GPOINTER_TO_INT (q) - 1;

          if (q == NULL || state[u] == 2)
            continue;
          if (state[u] == 1)
            {
              g_free (order);
              L->node = node;
              fail (L, error, PS_ERROR_FORMAT, "the graph has a cycle through input “%s”",
                    node->input[next[v] - 1]);
              return NULL;
            }
          state[u] = 1;
          stack[sp++] = u;
          continue;
        }
      state[v] = 2;
      order[n++] = v;
      sp--;
    }
  *n_order = n;
  return order;
}

static gboolean
read_input (Loader *L, GError **error)
{
  Onnx__GraphProto *g = L->graph;
  const Onnx__ValueInfoProto *vi = NULL;
  PsShape s;
  gint64 d[4];

  for (gsize i = 0; i < g->n_input; i++)
    if (g->input[i]->name == NULL)
      return fail (L, error, PS_ERROR_FORMAT, "a graph input has no name");
    else if (!g_hash_table_contains (L->tensors, g->input[i]->name))
      {
        if (vi != NULL)
          return fail (L, error, PS_ERROR_UNSUPPORTED, "the graph has more than one input "
                       "(“%s”, “%s”)", vi->name, g->input[i]->name);
        vi = g->input[i];
      }
  if (vi == NULL)
    return fail (L, error, PS_ERROR_FORMAT, "the graph has no input");
  if (vi->type == NULL || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
      || vi->type->tensor_type->shape == NULL || vi->type->tensor_type->shape->n_dim != 4)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "input “%s” is not an image batch (N,C,H,W)",
                 vi->name);
  for (int i = 1; i < 4; i++)
    {
      const Onnx__TensorShapeProto__Dimension *dim = vi->type->tensor_type->shape->dim[i];
      if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
        return fail (L, error, PS_ERROR_UNSUPPORTED, "input “%s”: dimension %d is not fixed "
                     "(only the batch may vary)", vi->name, i);
      d[i] = dim->dim_value;
      if (d[i] < 1 || d[i] > PS_ONNX_MAX_DIM)
        return fail (L, error, PS_ERROR_LIMIT, "input “%s”: dimension %d is %" G_GINT64_FORMAT,
                     vi->name, i, d[i]);
    }
  s = (PsShape) { (int) d[2], (int) d[3], (int) d[1] };
  if ((gsize) s.h * s.w * s.c > PS_ONNX_MAX_ELEMENTS / 64)
    return fail (L, error, PS_ERROR_LIMIT, "input “%s” is too big", vi->name);
  {
    PsLayer *l = g_new0 (PsLayer, 1);
    Tensor *t = g_new0 (Tensor, 1);

    l->name = g_strdup (vi->name);
    l->kind = PS_LAYER_INPUT;
    l->in = l->out = s;
    l->rank = 4;
    g_ptr_array_add (L->layers, l);
    t->layer = L->layers->len - 1;
    g_hash_table_replace (L->tensors, g_strdup (vi->name), t);
  }
  return TRUE;
}

static gboolean
translate_node (Loader *L, const Onnx__NodeProto *node, GError **error)
{
  L->node = node;
  if (node->n_output < 1 || node->output[0][0] == '\0')
    return fail (L, error, PS_ERROR_FORMAT, "node without output");
  if (node->op_type == NULL)
    return fail (L, error, PS_ERROR_FORMAT, "node without an operator");
  if (node->domain != NULL && node->domain[0] != '\0' && !g_str_equal (node->domain, "ai.onnx"))
    return fail (L, error, PS_ERROR_UNSUPPORTED, "operator domain “%s”", node->domain);
  for (guint i = 0; i < G_N_ELEMENTS (ops); i++)
    if (g_strcmp0 (node->op_type, ops[i].name) == 0)
      return ops[i].func (L, error);
  return fail (L, error, PS_ERROR_UNSUPPORTED, "operator %s is not supported", node->op_type);
}

static gboolean
index_graph (Loader *L, GError **error)
{
  Onnx__GraphProto *g = L->graph;

  if (g->n_node > PS_ONNX_MAX_NODES)
    return fail (L, error, PS_ERROR_LIMIT, "the graph has %zu nodes", g->n_node);
  for (gsize i = 0; i < g->n_node; i++)
    for (gsize j = 0; j < g->node[i]->n_output; j++)
      if (g->node[i]->output[j][0] != '\0')
        g_hash_table_replace (L->producer, g_strdup (g->node[i]->output[j]), GINT_TO_POINTER (i + 1));
  for (gsize i = 0; i < g->n_initializer; i++)
    {
      Tensor *t = read_tensor (L, g->initializer[i], error);
      if (t == NULL)
        return FALSE;
      g_hash_table_replace (L->tensors, g_strdup (g->initializer[i]->name ? g->initializer[i]->name : ""), t);
    }
  if (g->n_sparse_initializer > 0)
    return fail (L, error, PS_ERROR_UNSUPPORTED, "sparse initializers");
  return TRUE;
}

/* A layer renamed by folding (Conv + BatchNormalization, Conv + Relu) no longer holds the
 * values its old names meant: those names are dropped rather than misread. */
static void
drop_stale_aliases (Loader *L)
{
  g_autoptr (GHashTable) names = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < L->layers->len; i++)
    g_hash_table_add (names, ((PsLayer *) g_ptr_array_index (L->layers, i))->name);
  for (guint i = 0; i + 1 < L->aliases->len;)
    if (g_hash_table_contains (names, g_ptr_array_index (L->aliases, i + 1)))
      i += 2;
    else
      {
        g_free (g_ptr_array_index (L->aliases, i));
        g_free (g_ptr_array_index (L->aliases, i + 1));
        g_ptr_array_remove_range (L->aliases, i, 2);
      }
}

/* Builds the model computing @output; the loader's tensors are reset first. */
static PsModel *
build_model (Loader *L, const char *output, GError **error)
{
  g_autoptr (PsModel) m = g_new0 (PsModel, 1);
  g_autofree int *order = NULL;
  int n_order;
  Tensor *out;

  g_hash_table_remove_all (L->tensors);
  g_hash_table_remove_all (L->uses);
  L->layers = g_ptr_array_new ();
  L->aliases = g_ptr_array_new ();
  L->node = NULL;
  if (!index_graph (L, error) || !read_input (L, error))
    goto fail;
  order = needed_nodes (L, output, &n_order, error);
  if (order == NULL)
    goto fail;
  for (int i = 0; i < n_order; i++)
    for (gsize j = 0; j < L->graph->node[order[i]]->n_input; j++)
      {
        const char *in = L->graph->node[order[i]]->input[j];
        g_hash_table_replace (L->uses, g_strdup (in), GINT_TO_POINTER (count_uses (L, in) + 1));
      }
  g_hash_table_replace (L->uses, g_strdup (output), GINT_TO_POINTER (count_uses (L, output) + 1));
  for (int i = 0; i < n_order; i++)
    if (!translate_node (L, L->graph->node[order[i]], error))
      goto fail;
  L->node = NULL;
  out = g_hash_table_lookup (L->tensors, output);
  if (out == NULL || out->layer < 0 || layer_of (L, out)->rank != 2 || out->flat_from.c > 0)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "the output “%s” is not class scores (N, classes)", output);
      goto fail;
    }
  if (layer_of (L, out)->out.c < 2)
    {
      fail (L, error, PS_ERROR_UNSUPPORTED, "the output “%s” has fewer than 2 classes", output);
      goto fail;
    }
  {
    gsize total = 0;
    for (guint i = 0; i < L->layers->len; i++)
      total += ps_shape_size (((PsLayer *) g_ptr_array_index (L->layers, i))->out);
    if (total > PS_ONNX_MAX_ACTIVATIONS)
      {
        fail (L, error, PS_ERROR_LIMIT, "the layers hold %zu values per image (at most %zu)",
              total, PS_ONNX_MAX_ACTIVATIONS);
        goto fail;
      }
  }
  m->n_layers = L->layers->len;
  drop_stale_aliases (L);
  g_ptr_array_add (L->layers, NULL);
  m->layers = (PsLayer **) g_ptr_array_free (L->layers, FALSE);
  g_ptr_array_add (L->aliases, NULL);
  m->aliases = (char **) g_ptr_array_free (L->aliases, FALSE);
  L->layers = L->aliases = NULL;
  m->input = 0;
  m->output = out->layer;
  m->n_classes = m->layers[m->output]->out.c;
  m->input_scale = 1.0;       /* the graph scales its input itself */
  m->scale_recorded = TRUE;
  return g_steal_pointer (&m);

fail:
  if (L->layers != NULL)
    g_ptr_array_set_free_func (L->layers, (GDestroyNotify) ps_layer_free), g_ptr_array_free (L->layers, TRUE);
  if (L->aliases != NULL)
    g_ptr_array_set_free_func (L->aliases, g_free), g_ptr_array_free (L->aliases, TRUE);
  L->layers = L->aliases = NULL;
  return NULL;
}

static const char *
metadata (const Onnx__ModelProto *p, const char *key)
{
  for (gsize i = 0; i < p->n_metadata_props; i++)
    if (g_strcmp0 (p->metadata_props[i]->key, key) == 0)
      return p->metadata_props[i]->value;
  return NULL;
}

/* A G written by Prunescope: B and B' from their two heads, plus the pruning. */
static PsRepaired *
read_g (Loader *L, GError **error)
{
  const Onnx__ModelProto *p = L->proto;
  const char *b_out = metadata (p, "prunescope.b_logits"), *bp_out = metadata (p, "prunescope.b_prime_logits");
  const char *layer = metadata (p, "prunescope.layer"), *channels = metadata (p, "prunescope.channels");
  const char *drop = metadata (p, "prunescope.drop");
  g_autoptr (PsRepaired) g = g_new0 (PsRepaired, 1);
  g_auto (GStrv) parts = NULL;
  double v[9];
  static const char *metric_keys[9] = {
    "valid_acc", "test_acc", "asr", "g_test_acc", "g_asr", "g_clean_flagged",
    "g_poisoned_flagged", "fraction", "pruned",
  };

  if (b_out == NULL || bp_out == NULL || layer == NULL || channels == NULL)
    {
      fail (L, error, PS_ERROR_FORMAT, "G without its prunescope.* metadata");
      return NULL;
    }
  if ((g->b = build_model (L, b_out, error)) == NULL || (g->b_prime = build_model (L, bp_out, error)) == NULL)
    return NULL;
  if (g->b->n_classes != g->b_prime->n_classes || ps_model_find_layer (g->b, layer) < 0)
    {
      fail (L, error, PS_ERROR_FORMAT, "G's two networks disagree");
      return NULL;
    }
  g->layer = g_strdup (layer);
  parts = g_strsplit (channels, ",", -1);
  g->n_channels = channels[0] ? (int) g_strv_length (parts) : 0;
  g->layer_channels = g->b->layers[ps_model_find_layer (g->b, layer)]->out.c;
  g->channels = g_new0 (int, MAX (g->n_channels, 1));
  for (int i = 0; i < g->n_channels; i++)
    {
      gint64 c;
      if (!g_ascii_string_to_signed (parts[i], 10, 0, g->layer_channels - 1, &c, NULL))
        {
          fail (L, error, PS_ERROR_FORMAT, "G's channel “%s” is not a channel", parts[i]);
          return NULL;
        }
      g->channels[i] = (int) c;
    }
  g->drop = drop && *drop ? g_ascii_strtod (drop, NULL) : NAN;
  for (int i = 0; i < 9; i++)
    {
      g_autofree char *key = g_strdup_printf ("prunescope.metrics.%s", metric_keys[i]);
      const char *text = metadata (p, key);
      v[i] = text && *text ? g_ascii_strtod (text, NULL) : NAN;
    }
  g->metrics = (PsSweepStep) { g->n_channels, v[7], g->n_channels ? g->channels[g->n_channels - 1] : -1,
                               v[0], v[1], v[2], v[3], v[4], v[5], v[6] };
  return g_steal_pointer (&g);
}

/* Parses @bytes into a model (B' for a G) or, when @g is given, a G. */
static gboolean
decode (GBytes *bytes, const char *name, PsModel **model, PsRepaired **g, GError **error)
{
  Loader L = { 0 };
  g_autoptr (GError) local = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);
  gboolean is_g;

  if ((L.proto = onnx__model_proto__unpack (NULL, len, data)) == NULL)
    g_set_error (&local, PS_ERROR, PS_ERROR_FORMAT, "not an ONNX model (the protobuf does not parse)");
  else if ((L.graph = L.proto->graph) == NULL || L.graph->n_output < 1 || L.graph->output[0]->name == NULL)
    g_set_error (&local, PS_ERROR, PS_ERROR_FORMAT, "ONNX model without a graph or an output");
  else
    {
      L.tensors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, tensor_free);
      L.producer = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      L.uses = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      for (gsize i = 0; i < L.proto->n_opset_import; i++)
        if (L.proto->opset_import[i]->domain == NULL || L.proto->opset_import[i]->domain[0] == '\0')
          L.opset = L.proto->opset_import[i]->version;
      is_g = g_strcmp0 (metadata (L.proto, "prunescope.kind"), "G") == 0;
      if (g != NULL && !is_g)
        g_set_error (&local, PS_ERROR, PS_ERROR_FORMAT, "not a repaired network G");
      else if (g != NULL)
        *g = read_g (&L, &local);
      else
        {
          const char *out = is_g ? metadata (L.proto, "prunescope.b_prime_logits") : NULL;
          *model = build_model (&L, out ? out : L.graph->output[0]->name, &local);
        }
      g_hash_table_unref (L.tensors);
      g_hash_table_unref (L.producer);
      g_hash_table_unref (L.uses);
    }
  if (L.proto != NULL)
    onnx__model_proto__free_unpacked (L.proto, NULL);
  if (local == NULL && g != NULL)
    {
      if (ps_model_check_weights ((*g)->b, &local) && ps_model_check_weights ((*g)->b_prime, &local))
        {
          (*g)->b->onnx = g_bytes_ref (bytes), (*g)->b_prime->onnx = g_bytes_ref (bytes);
          (*g)->b->path = g_strdup (name), (*g)->b_prime->path = g_strdup (name);
          (*g)->path = g_strdup (name);
        }
      else
        g_clear_pointer (g, ps_repaired_free);
    }
  else if (local == NULL)
    {
      if (ps_model_check_weights (*model, &local))
        (*model)->onnx = g_bytes_ref (bytes), (*model)->path = g_strdup (name);
      else
        g_clear_pointer (model, ps_model_free);
    }
  if (local != NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: ", name);
      return FALSE;
    }
  return TRUE;
}

PsModel *
ps_onnx_load_bytes (GBytes *bytes, const char *name, GError **error)
{
  PsModel *m = NULL;

  decode (bytes, name, &m, NULL, error);
  return m;
}

static GBytes *
read_file (const char *path, GError **error)
{
  g_autofree char *contents = NULL;
  gsize len = 0;
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInfo) finfo = g_file_query_info (file, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                   G_FILE_QUERY_INFO_NONE, NULL, NULL);

  if (!ps_file_check_regular (path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  if (finfo != NULL && (gsize) g_file_info_get_size (finfo) > PS_ONNX_MAX_FILE)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "%s: file larger than %zu bytes", path,
                   PS_ONNX_MAX_FILE);
      return NULL;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    {
      (*error)->domain = PS_ERROR, (*error)->code = PS_ERROR_FILE;
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&contents), len);
}

PsModel *
ps_onnx_load (const char *path, GError **error)
{
  g_autoptr (GBytes) bytes = read_file (path, error);

  return bytes ? ps_onnx_load_bytes (bytes, path, error) : NULL;
}

PsRepaired *
ps_onnx_load_g (const char *path, GError **error)
{
  g_autoptr (GBytes) bytes = read_file (path, error);
  PsRepaired *g = NULL;

  if (bytes != NULL)
    decode (bytes, path, NULL, &g, error);
  return g;
}

gboolean
ps_onnx_file_is_g (const char *path)
{
  g_autoptr (GBytes) bytes = read_file (path, NULL);
  Onnx__ModelProto *proto;
  gboolean is_g;

  if (bytes == NULL)
    return FALSE;
  proto = onnx__model_proto__unpack (NULL, g_bytes_get_size (bytes), g_bytes_get_data (bytes, NULL));
  if (proto == NULL)
    return FALSE;
  is_g = g_strcmp0 (metadata (proto, "prunescope.kind"), "G") == 0;
  onnx__model_proto__free_unpacked (proto, NULL);
  return is_g;
}
