/* ps-model-config.c: builds the layer graph from a Keras model_config JSON */
#define G_LOG_DOMAIN "ps-model"

#include "ps-model.h"
#include "ps-h5.h"
#include "ps-limits.h"

#include <json-glib/json-glib.h>
#include <string.h>

static gboolean
fail (GError **error, int code, const char *layer, const char *fmt, ...) G_GNUC_PRINTF (4, 5);

static gboolean
fail (GError **error, int code, const char *layer, const char *fmt, ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, fmt);
  msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  if (layer != NULL)
    g_set_error (error, PS_ERROR, code, "layer “%s”: %s", layer, msg);
  else
    g_set_error (error, PS_ERROR, code, "model_config: %s", msg);
  return FALSE;
}

/* Typed access to the JSON tree: a node of the wrong type is "absent" or an error of
 * ours, never a json-glib assertion. */
static JsonNode *
member (JsonObject *obj, const char *key)
{
  return obj != NULL ? json_object_get_member (obj, key) : NULL;
}

static JsonArray *
as_array (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

static JsonObject *
as_object (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

static const char *
as_string (JsonNode *node)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

static gboolean
as_int (JsonNode *node, gint64 *v)
{
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_INT64)
    return FALSE;
  *v = json_node_get_int (node);
  return TRUE;
}

static JsonNode *
element (JsonArray *arr, guint i)
{
  return arr != NULL && i < json_array_get_length (arr) ? json_array_get_element (arr, i) : NULL;
}

/* An integer member in [lo, hi], @dflt when absent or null; FALSE on anything else. */
static gboolean
get_int (JsonObject *obj, const char *key, gint64 lo, gint64 hi, gint64 dflt, int *out)
{
  JsonNode *node = member (obj, key);
  gint64 v = dflt;

  if (node != NULL && !JSON_NODE_HOLDS_NULL (node) && !as_int (node, &v))
    return FALSE;
  if (v < lo || v > hi)
    return FALSE;
  *out = (int) v;
  return TRUE;
}

/* Reads a pair like "kernel_size": [3, 3] (or a single int), each in 1..limit. */
static gboolean
get_pair (JsonObject *cfg, const char *key, int *a, int *b, int dflt)
{
  JsonNode *node = member (cfg, key);
  JsonArray *arr = as_array (node);
  gint64 x, y;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *a = *b = dflt;
      return dflt > 0;
    }
  if (arr != NULL)
    {
      if (json_array_get_length (arr) != 2 || !as_int (element (arr, 0), &x)
          || !as_int (element (arr, 1), &y))
        return FALSE;
    }
  else if (!as_int (node, &x))
    return FALSE;
  else
    y = x;
  if (x < 1 || y < 1 || x > PS_LIMIT_IMAGE_SIDE || y > PS_LIMIT_IMAGE_SIDE)
    return FALSE;
  *a = (int) x;
  *b = (int) y;
  return TRUE;
}

static const char *
get_string (JsonObject *obj, const char *key, const char *dflt)
{
  const char *s = as_string (member (obj, key));

  return s != NULL ? s : dflt;
}

/* A string option: @dflt when absent or null, NULL when present with another type. */
static const char *
get_option (JsonObject *obj, const char *key, const char *dflt)
{
  JsonNode *node = member (obj, key);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return dflt;
  return as_string (node);
}

static gboolean
get_bool (JsonObject *obj, const char *key, gboolean dflt)
{
  JsonNode *node = member (obj, key);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return dflt;
  return json_node_get_boolean (node);
}

static gboolean
parse_padding (JsonObject *cfg, PsLayer *l, GError **error)
{
  const char *pad = get_option (cfg, "padding", "valid");

  if (pad == NULL)
    return fail (error, PS_ERROR_FORMAT, l->name, "padding is not a string");
  if (g_str_equal (pad, "valid"))
    l->same = FALSE;
  else if (g_str_equal (pad, "same"))
    l->same = TRUE;
  else
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "padding “%s” is not supported", pad);
  return TRUE;
}

static gboolean
check_channels_last (JsonObject *cfg, PsLayer *l, GError **error)
{
  const char *fmt = get_option (cfg, "data_format", "channels_last");

  if (fmt == NULL)
    return fail (error, PS_ERROR_FORMAT, l->name, "data_format is not a string");
  if (!g_str_equal (fmt, "channels_last"))
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "data_format “%s” is not supported", fmt);
  return TRUE;
}

static gboolean
parse_activation (JsonObject *cfg, PsLayer *l, GError **error)
{
  const char *act = get_option (cfg, "activation", "linear");

  if (act == NULL)
    return fail (error, PS_ERROR_FORMAT, l->name, "activation is not a string");
  if (!ps_activation_from_name (act, &l->activation))
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "activation “%s” is not supported", act);
  return TRUE;
}

static gboolean
parse_conv (JsonObject *cfg, PsLayer *l, GError **error)
{
  int d1, d2, groups;

  if (!get_int (cfg, "filters", 1, PS_LIMIT_CHANNELS, 0, &l->out.c))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad filters (1 to %d)", PS_LIMIT_CHANNELS);
  if (!get_pair (cfg, "kernel_size", &l->kh, &l->kw, 0))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad kernel_size (1 to %d)", PS_LIMIT_IMAGE_SIDE);
  if (!get_pair (cfg, "strides", &l->sh, &l->sw, 1))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad strides (1 to %d)", PS_LIMIT_IMAGE_SIDE);
  if (!get_pair (cfg, "dilation_rate", &d1, &d2, 1) || !get_int (cfg, "groups", 1, G_MAXINT, 1, &groups))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad dilation_rate or groups");
  if (d1 != 1 || d2 != 1 || groups != 1)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "dilated or grouped convolution is not supported");
  l->use_bias = get_bool (cfg, "use_bias", TRUE);
  return parse_padding (cfg, l, error) && check_channels_last (cfg, l, error)
         && parse_activation (cfg, l, error);
}

static gboolean
parse_pool (JsonObject *cfg, PsLayer *l, GError **error)
{
  JsonNode *strides = member (cfg, "strides");

  if (!get_pair (cfg, "pool_size", &l->kh, &l->kw, 2))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad pool_size (1 to %d)", PS_LIMIT_IMAGE_SIDE);
  if (strides == NULL || JSON_NODE_HOLDS_NULL (strides))
    {
      l->sh = l->kh;
      l->sw = l->kw;
    }
  else if (!get_pair (cfg, "strides", &l->sh, &l->sw, 0))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad strides (1 to %d)", PS_LIMIT_IMAGE_SIDE);
  return parse_padding (cfg, l, error) && check_channels_last (cfg, l, error);
}

static gboolean
parse_dense (JsonObject *cfg, PsLayer *l, GError **error)
{
  l->out.h = l->out.w = 1;
  if (!get_int (cfg, "units", 1, PS_LIMIT_CHANNELS, 0, &l->out.c))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad units (1 to %d)", PS_LIMIT_CHANNELS);
  l->use_bias = get_bool (cfg, "use_bias", TRUE);
  return parse_activation (cfg, l, error);
}

static gboolean
parse_input (JsonObject *cfg, PsLayer *l, GError **error)
{
  JsonArray *shape = as_array (member (cfg, "batch_input_shape"));
  gint64 h, w, c;

  if (shape == NULL)
    shape = as_array (member (cfg, "batch_shape"));
  if (shape == NULL || json_array_get_length (shape) != 4)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "input must be an image (batch, h, w, c)");
  if (!as_int (element (shape, 1), &h) || !as_int (element (shape, 2), &w)
      || !as_int (element (shape, 3), &c) || h <= 0 || w <= 0 || c <= 0)
    return fail (error, PS_ERROR_FORMAT, l->name, "bad input shape");
  if (h > PS_LIMIT_IMAGE_SIDE || w > PS_LIMIT_IMAGE_SIDE || c > PS_LIMIT_CHANNELS
      || ps_limit_mul (h * w, c, PS_LIMIT_TENSOR) < 0)
    return fail (error, PS_ERROR_LIMIT, l->name,
                 "input %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " is larger than accepted (sides up to %d, %" G_GINT64_FORMAT " values)",
                 h, w, c, PS_LIMIT_IMAGE_SIDE, PS_LIMIT_TENSOR);
  l->out.h = (int) h;
  l->out.w = (int) w;
  l->out.c = (int) c;
  return TRUE;
}

static gboolean
parse_layer_config (const char *class_name, JsonObject *cfg, PsLayer *l, GError **error)
{
  if (g_str_equal (class_name, "InputLayer"))
    {
      l->kind = PS_LAYER_INPUT;
      return parse_input (cfg, l, error);
    }
  if (g_str_equal (class_name, "Conv2D") || g_str_equal (class_name, "Convolution2D"))
    {
      l->kind = PS_LAYER_CONV2D;
      return parse_conv (cfg, l, error);
    }
  if (g_str_equal (class_name, "MaxPooling2D") || g_str_equal (class_name, "MaxPool2D"))
    {
      l->kind = PS_LAYER_MAXPOOL2D;
      return parse_pool (cfg, l, error);
    }
  if (g_str_equal (class_name, "Dense"))
    {
      l->kind = PS_LAYER_DENSE;
      return parse_dense (cfg, l, error);
    }
  if (g_str_equal (class_name, "Flatten"))
    {
      l->kind = PS_LAYER_FLATTEN;
      return check_channels_last (cfg, l, error);
    }
  if (g_str_equal (class_name, "Add"))
    {
      l->kind = PS_LAYER_ADD;
      return TRUE;
    }
  if (g_str_equal (class_name, "Activation") || g_str_equal (class_name, "ReLU"))
    {
      l->kind = PS_LAYER_ACTIVATION;
      if (g_str_equal (class_name, "ReLU"))
        {
          l->activation = PS_ACT_RELU;
          return TRUE;
        }
      return parse_activation (cfg, l, error);
    }
  if (g_str_equal (class_name, "Dropout"))
    {
      JsonNode *rate = member (cfg, "rate");

      l->kind = PS_LAYER_DROPOUT;
      l->rate = rate != NULL && JSON_NODE_HOLDS_VALUE (rate) ? json_node_get_double (rate) : 0.0;
      return TRUE;
    }
  return fail (error, PS_ERROR_UNSUPPORTED, l->name, "layer type “%s” is not supported", class_name);
}

/* Padding before the first row/column, as TensorFlow places "same" padding. Every value
 * is at most PS_LIMIT_IMAGE_SIDE, so 64 bits never overflow. */
static gint64
same_pad (gint64 in, gint64 k, gint64 s, gint64 *out)
{
  gint64 total;

  *out = (in + s - 1) / s;
  total = MAX ((*out - 1) * s + k - in, 0);
  return total / 2;
}

/* Output size of a window sliding over @in, 0 when the window does not fit. */
static gint64
window_out (const PsLayer *l, gint64 in, gint64 k, gint64 s, int *pad)
{
  gint64 out;

  if (l->same)
    {
      *pad = (int) same_pad (in, k, s, &out);
      return out;
    }
  *pad = 0;
  return in >= k ? (in - k) / s + 1 : 0;
}

static gboolean
infer_window (PsLayer *l, PsShape in, GError **error)
{
  int pad_top, pad_left;
  gint64 oh = window_out (l, in.h, l->kh, l->sh, &pad_top);
  gint64 ow = window_out (l, in.w, l->kw, l->sw, &pad_left);
  gint64 oc = l->kind == PS_LAYER_MAXPOOL2D ? in.c : l->out.c;
  gint64 window = (gint64) l->kh * l->kw * in.c;

  if (oh <= 0 || ow <= 0)
    return fail (error, PS_ERROR_MISMATCH, l->name, "input %dx%d is smaller than the window",
                 in.h, in.w);
  /* "same" padding never needs a window wider than twice the input: beyond, it only
   * reads padding (and a huge one would take forever). */
  if (l->kh > 2 * (gint64) in.h + 1 || l->kw > 2 * (gint64) in.w + 1)
    return fail (error, PS_ERROR_LIMIT, l->name, "window %dx%d is far larger than its input %dx%d",
                 l->kh, l->kw, in.h, in.w);
  if (ps_limit_mul (oh * ow, oc, PS_LIMIT_TENSOR) < 0
      || ps_limit_mul (oh * ow, window, PS_LIMIT_LAYER_WORK) < 0)
    return fail (error, PS_ERROR_LIMIT, l->name,
                 "output %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " from a %dx%dx%d window is larger than accepted",
                 oh, ow, oc, l->kh, l->kw, in.c);
  l->out.h = (int) oh;
  l->out.w = (int) ow;
  l->out.c = (int) oc;
  l->pad_top = pad_top;
  l->pad_left = pad_left;
  if (l->kind == PS_LAYER_CONV2D)
    {
      if (ps_limit_mul (window, l->out.c, PS_LIMIT_LAYER_WEIGHTS) < 0)
        return fail (error, PS_ERROR_LIMIT, l->name,
                     "a %dx%dx%dx%d kernel has more than %" G_GINT64_FORMAT " weights",
                     l->kh, l->kw, in.c, l->out.c, PS_LIMIT_LAYER_WEIGHTS);
      l->kernel_len = (gsize) window * l->out.c;
      l->bias_len = l->out.c;
    }
  return TRUE;
}

static gboolean
infer_shape (PsModel *m, PsLayer *l, GError **error)
{
  PsShape in;

  if (l->kind == PS_LAYER_INPUT)
    return TRUE;
  if (l->n_inputs == 0)
    return fail (error, PS_ERROR_FORMAT, l->name, "has no inbound layer");
  if (l->kind != PS_LAYER_ADD && l->n_inputs != 1)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "takes %d inputs", l->n_inputs);
  in = l->in = m->layers[l->inputs[0]]->out;

  switch (l->kind)
    {
    case PS_LAYER_CONV2D:
    case PS_LAYER_MAXPOOL2D:
      return infer_window (l, in, error);
    case PS_LAYER_DENSE:
      if (in.h != 1 || in.w != 1)
        return fail (error, PS_ERROR_UNSUPPORTED, l->name, "Dense on a %dx%dx%d tensor needs a Flatten",
                     in.h, in.w, in.c);
      if (ps_limit_mul (in.c, l->out.c, PS_LIMIT_LAYER_WEIGHTS) < 0)
        return fail (error, PS_ERROR_LIMIT, l->name,
                     "a %dx%d kernel has more than %" G_GINT64_FORMAT " weights",
                     in.c, l->out.c, PS_LIMIT_LAYER_WEIGHTS);
      l->kernel_len = (gsize) in.c * l->out.c;
      l->bias_len = l->out.c;
      break;
    case PS_LAYER_FLATTEN:
      /* in is within PS_LIMIT_TENSOR, so is its product */
      l->out = (PsShape) { 1, 1, (int) ps_shape_size (in) };
      break;
    case PS_LAYER_ADD:
      for (int i = 1; i < l->n_inputs; i++)
        {
          PsShape o = m->layers[l->inputs[i]]->out;
          if (o.h != in.h || o.w != in.w || o.c != in.c)
            return fail (error, PS_ERROR_MISMATCH, l->name, "adds tensors of different shapes");
        }
      l->out = in;
      break;
    case PS_LAYER_ACTIVATION:
    case PS_LAYER_DROPOUT:
    case PS_LAYER_INPUT:
    default:
      l->out = in;
      break;
    }
  return TRUE;
}

/* Keras 2 inbound_nodes: [[["name", node, tensor, {kwargs}], ...]]. */
static gboolean
parse_inbound (JsonObject *lobj, GHashTable *index, PsLayer *l, GError **error)
{
  JsonNode *nodes_node = member (lobj, "inbound_nodes");
  JsonArray *nodes = as_array (nodes_node), *node;

  if (nodes_node == NULL || JSON_NODE_HOLDS_NULL (nodes_node))
    return TRUE;
  if (nodes == NULL)
    return fail (error, PS_ERROR_FORMAT, l->name, "inbound_nodes is not a list");
  if (json_array_get_length (nodes) == 0)
    return TRUE;
  if (json_array_get_length (nodes) > 1)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "shared layers are not supported");
  node = as_array (element (nodes, 0));
  if (node == NULL || json_array_get_length (node) > PS_MAX_INPUTS)
    return fail (error, PS_ERROR_FORMAT, l->name, "bad inbound_nodes");
  for (guint i = 0; i < json_array_get_length (node); i++)
    {
      const char *src = as_string (element (as_array (element (node, i)), 0));
      gpointer idx;

      if (src == NULL || !g_hash_table_lookup_extended (index, src, NULL, &idx))
        return fail (error, PS_ERROR_FORMAT, l->name, "inbound layer “%s” is unknown or later",
                     src ? src : "?");
      l->inputs[l->n_inputs++] = GPOINTER_TO_INT (idx);
    }
  return TRUE;
}

static gboolean
parse_layers (PsModel *m, JsonArray *layers, gboolean sequential, GError **error)
{
  g_autoptr (GHashTable) index = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = json_array_get_length (layers);

  if (n > PS_LIMIT_LAYERS)
    return fail (error, PS_ERROR_LIMIT, NULL, "%u layers (limit %d)", n, PS_LIMIT_LAYERS);
  m->layers = g_new0 (PsLayer *, n + 1);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *lobj = as_object (element (layers, i));
      JsonObject *cfg = as_object (member (lobj, "config"));
      const char *cls = get_string (lobj, "class_name", NULL);
      const char *name = get_string (lobj, "name", get_string (cfg, "name", NULL));
      PsLayer *l;

      if (cls == NULL || cfg == NULL || name == NULL)
        return fail (error, PS_ERROR_FORMAT, NULL, "layer %u has no class_name, name or config", i);
      if (g_hash_table_contains (index, name))
        return fail (error, PS_ERROR_FORMAT, name, "appears twice");

      /* A Sequential model may start without an InputLayer. */
      if (sequential && i == 0 && !g_str_equal (cls, "InputLayer"))
        {
          l = g_new0 (PsLayer, 1);
          l->name = g_strdup ("input");
          m->layers[m->n_layers++] = l;
          m->layers = g_renew (PsLayer *, m->layers, n + 2);
          if (!parse_input (cfg, l, error))
            return FALSE;
          g_hash_table_insert (index, l->name, GINT_TO_POINTER (0));
        }

      l = g_new0 (PsLayer, 1);
      l->name = g_strdup (name);
      m->layers[m->n_layers++] = l;
      if (!parse_layer_config (cls, cfg, l, error))
        return FALSE;
      if (sequential && l->kind != PS_LAYER_INPUT)
        l->inputs[l->n_inputs++] = m->n_layers - 2;
      else if (!parse_inbound (lobj, index, l, error))
        return FALSE;
      if (!infer_shape (m, l, error))
        return FALSE;
      g_hash_table_insert (index, l->name, GINT_TO_POINTER (m->n_layers - 1));
    }
  return TRUE;
}

static int
endpoint (PsModel *m, JsonObject *config, const char *key, GError **error)
{
  JsonNode *node = member (config, key);
  JsonArray *arr = as_array (node);
  const char *name;
  int idx;

  if (node == NULL)
    return -1;
  if (arr == NULL || json_array_get_length (arr) != 1)
    {
      fail (error, PS_ERROR_UNSUPPORTED, NULL, "exactly one %s is supported", key);
      return -2;
    }
  name = as_string (element (as_array (element (arr, 0)), 0));
  idx = name ? ps_model_find_layer (m, name) : -1;
  if (idx < 0)
    {
      fail (error, PS_ERROR_FORMAT, NULL, "%s names an unknown layer", key);
      return -2;
    }
  return idx;
}

/* json-glib's parser recurses once per level: a file nested 10^5 deep would overflow the
 * stack, so the depth of the raw text is measured first. */
static int
json_depth (const char *text)
{
  int depth = 0, deepest = 0;
  gboolean in_string = FALSE;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (in_string)
        {
          if (*p == '\\' && p[1] != '\0')
            p++;
          else if (*p == '"')
            in_string = FALSE;
        }
      else if (*p == '"')
        in_string = TRUE;
      else if (*p == '[' || *p == '{')
        deepest = MAX (deepest, ++depth);
      else if (*p == ']' || *p == '}')
        depth--;
    }
  return deepest;
}

/* Every tensor and the largest unrolled patches of one image, and all weights. */
static gboolean
check_totals (PsModel *m, GError **error)
{
  gint64 activations = 0, work = 0, weights = 0;

  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];

      activations += ps_shape_size (l->out);
      if (l->kind == PS_LAYER_CONV2D)
        work = MAX (work, (gint64) l->out.h * l->out.w * l->kh * l->kw * l->in.c);
      weights += l->kernel_len + l->bias_len;
    }
  if (activations + work > PS_LIMIT_ACTIVATIONS)
    return fail (error, PS_ERROR_LIMIT, NULL,
                 "one image needs %" G_GINT64_FORMAT " values of activations (limit %" G_GINT64_FORMAT ")",
                 activations + work, PS_LIMIT_ACTIVATIONS);
  if (weights > PS_LIMIT_MODEL_WEIGHTS)
    return fail (error, PS_ERROR_LIMIT, NULL,
                 "%" G_GINT64_FORMAT " weights (limit %" G_GINT64_FORMAT ")",
                 weights, PS_LIMIT_MODEL_WEIGHTS);
  return TRUE;
}

/* One input only: a layer fed by a second InputLayer would read memory nobody fills. */
static gboolean
check_single_input (PsModel *m, GError **error)
{
  for (int i = 0; i < m->n_layers; i++)
    if (i != m->input && m->layers[i]->kind == PS_LAYER_INPUT)
      return fail (error, PS_ERROR_UNSUPPORTED, m->layers[i]->name,
                   "a second InputLayer (only one input, “%s”, is supported)",
                   m->layers[m->input]->name);
  return TRUE;
}

PsModel *
ps_model_new_from_config (const char *config_json, GError **error)
{
  g_autoptr (PsModel) m = g_new0 (PsModel, 1);
  g_autoptr (JsonNode) root = NULL;
  g_autoptr (GError) local = NULL;
  JsonObject *obj, *config = NULL;
  JsonArray *layers = NULL;
  const char *cls;
  gboolean sequential;
  PsLayer *out;

  m->input_scale = 1.0;
  if (strlen (config_json) > PS_LIMIT_CONFIG_BYTES)
    {
      fail (error, PS_ERROR_LIMIT, NULL, "longer than %d bytes", PS_LIMIT_CONFIG_BYTES);
      return NULL;
    }
  if (json_depth (config_json) > PS_LIMIT_JSON_DEPTH)
    {
      fail (error, PS_ERROR_LIMIT, NULL, "JSON nested deeper than %d levels", PS_LIMIT_JSON_DEPTH);
      return NULL;
    }
  m->config_json = g_strdup (config_json);
  root = json_from_string (config_json, &local);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      fail (error, PS_ERROR_FORMAT, NULL, "not valid JSON%s%s",
            local ? ": " : "", local ? local->message : "");
      return NULL;
    }
  obj = json_node_get_object (root);
  cls = get_string (obj, "class_name", "");
  sequential = g_str_equal (cls, "Sequential");
  if (!sequential && !g_str_equal (cls, "Model") && !g_str_equal (cls, "Functional"))
    {
      fail (error, PS_ERROR_UNSUPPORTED, NULL, "model class “%s” is not supported", cls);
      return NULL;
    }
  /* old Sequential: a bare list of layers */
  layers = as_array (member (obj, "config"));
  if (layers == NULL && (config = as_object (member (obj, "config"))) != NULL)
    layers = as_array (member (config, "layers"));
  if (layers == NULL || json_array_get_length (layers) == 0)
    {
      fail (error, PS_ERROR_FORMAT, NULL, "no layers");
      return NULL;
    }
  if (!parse_layers (m, layers, sequential, error))
    return NULL;

  m->input = config ? endpoint (m, config, "input_layers", error) : -1;
  m->output = config ? endpoint (m, config, "output_layers", error) : -1;
  if (m->input == -2 || m->output == -2)
    return NULL;
  if (m->input < 0)
    m->input = 0;
  if (m->output < 0)
    m->output = m->n_layers - 1;
  if (m->layers[m->input]->kind != PS_LAYER_INPUT)
    {
      fail (error, PS_ERROR_FORMAT, NULL, "the model input is not an InputLayer");
      return NULL;
    }
  if (!check_single_input (m, error) || !check_totals (m, error))
    return NULL;
  out = m->layers[m->output];
  if (out->out.h != 1 || out->out.w != 1 || out->out.c < 2)
    {
      fail (error, PS_ERROR_UNSUPPORTED, NULL, "the output “%s” is not a class vector", out->name);
      return NULL;
    }
  m->n_classes = out->out.c;
  return g_steal_pointer (&m);
}
