/* ps-model-config.c: builds the layer graph from a Keras model_config JSON */
#define G_LOG_DOMAIN "ps-model"

#include "ps-model.h"
#include "ps-h5.h"

#include <json-glib/json-glib.h>

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

/* Reads a pair like "kernel_size": [3, 3] (or a single int). */
static gboolean
get_pair (JsonObject *cfg, const char *key, int *a, int *b, int dflt)
{
  JsonNode *node = json_object_get_member (cfg, key);

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    {
      *a = *b = dflt;
      return dflt > 0;
    }
  if (JSON_NODE_HOLDS_VALUE (node))
    {
      *a = *b = (int) json_node_get_int (node);
      return *a > 0;
    }
  if (JSON_NODE_HOLDS_ARRAY (node))
    {
      JsonArray *arr = json_node_get_array (node);
      if (json_array_get_length (arr) != 2)
        return FALSE;
      *a = (int) json_array_get_int_element (arr, 0);
      *b = (int) json_array_get_int_element (arr, 1);
      return *a > 0 && *b > 0;
    }
  return FALSE;
}

static const char *
get_string (JsonObject *obj, const char *key, const char *dflt)
{
  JsonNode *node = obj ? json_object_get_member (obj, key) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_STRING)
    return dflt;
  return json_node_get_string (node);
}

static gboolean
get_bool (JsonObject *obj, const char *key, gboolean dflt)
{
  JsonNode *node = json_object_get_member (obj, key);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return dflt;
  return json_node_get_boolean (node);
}

static gboolean
parse_padding (JsonObject *cfg, PsLayer *l, GError **error)
{
  const char *pad = get_string (cfg, "padding", "valid");

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
  const char *fmt = get_string (cfg, "data_format", "channels_last");

  if (!g_str_equal (fmt, "channels_last"))
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "data_format “%s” is not supported", fmt);
  return TRUE;
}

static gboolean
parse_activation (JsonObject *cfg, PsLayer *l, GError **error)
{
  const char *act = get_string (cfg, "activation", "linear");

  if (!ps_activation_from_name (act, &l->activation))
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "activation “%s” is not supported", act);
  return TRUE;
}

static gboolean
parse_conv (JsonObject *cfg, PsLayer *l, GError **error)
{
  int d1, d2, groups;

  l->out.c = (int) json_object_get_int_member_with_default (cfg, "filters", 0);
  if (l->out.c <= 0 || !get_pair (cfg, "kernel_size", &l->kh, &l->kw, 0))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad filters or kernel_size");
  if (!get_pair (cfg, "strides", &l->sh, &l->sw, 1))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad strides");
  get_pair (cfg, "dilation_rate", &d1, &d2, 1);
  groups = (int) json_object_get_int_member_with_default (cfg, "groups", 1);
  if (d1 != 1 || d2 != 1 || groups != 1)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "dilated or grouped convolution is not supported");
  l->use_bias = get_bool (cfg, "use_bias", TRUE);
  return parse_padding (cfg, l, error) && check_channels_last (cfg, l, error)
         && parse_activation (cfg, l, error);
}

static gboolean
parse_pool (JsonObject *cfg, PsLayer *l, GError **error)
{
  if (!get_pair (cfg, "pool_size", &l->kh, &l->kw, 2))
    return fail (error, PS_ERROR_FORMAT, l->name, "bad pool_size");
  if (!get_pair (cfg, "strides", &l->sh, &l->sw, 0))
    {
      l->sh = l->kh;
      l->sw = l->kw;
    }
  return parse_padding (cfg, l, error) && check_channels_last (cfg, l, error);
}

static gboolean
parse_dense (JsonObject *cfg, PsLayer *l, GError **error)
{
  l->out.h = l->out.w = 1;
  l->out.c = (int) json_object_get_int_member_with_default (cfg, "units", 0);
  if (l->out.c <= 0)
    return fail (error, PS_ERROR_FORMAT, l->name, "bad units");
  l->use_bias = get_bool (cfg, "use_bias", TRUE);
  return parse_activation (cfg, l, error);
}

static gboolean
parse_input (JsonObject *cfg, PsLayer *l, GError **error)
{
  JsonArray *shape = NULL;

  if (json_object_has_member (cfg, "batch_input_shape"))
    shape = json_object_get_array_member (cfg, "batch_input_shape");
  else if (json_object_has_member (cfg, "batch_shape"))
    shape = json_object_get_array_member (cfg, "batch_shape");
  if (shape == NULL || json_array_get_length (shape) != 4)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "input must be an image (batch, h, w, c)");
  l->out.h = (int) json_array_get_int_element (shape, 1);
  l->out.w = (int) json_array_get_int_element (shape, 2);
  l->out.c = (int) json_array_get_int_element (shape, 3);
  if (l->out.h <= 0 || l->out.w <= 0 || l->out.c <= 0)
    return fail (error, PS_ERROR_FORMAT, l->name, "bad input shape");
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
      l->kind = PS_LAYER_DROPOUT;
      l->rate = json_object_get_double_member_with_default (cfg, "rate", 0.0);
      return TRUE;
    }
  return fail (error, PS_ERROR_UNSUPPORTED, l->name, "layer type “%s” is not supported", class_name);
}

/* Padding before the first row/column, as TensorFlow places "same" padding. */
static int
same_pad (int in, int k, int s, int *out)
{
  int total;

  *out = (in + s - 1) / s;
  total = MAX ((*out - 1) * s + k - in, 0);
  return total / 2;
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
      if (l->same)
        {
          l->pad_top = same_pad (in.h, l->kh, l->sh, &l->out.h);
          l->pad_left = same_pad (in.w, l->kw, l->sw, &l->out.w);
        }
      else
        {
          l->out.h = in.h >= l->kh ? (in.h - l->kh) / l->sh + 1 : 0;
          l->out.w = in.w >= l->kw ? (in.w - l->kw) / l->sw + 1 : 0;
        }
      if (l->kind == PS_LAYER_MAXPOOL2D)
        l->out.c = in.c;
      if (l->out.h <= 0 || l->out.w <= 0)
        return fail (error, PS_ERROR_MISMATCH, l->name, "input %dx%d is smaller than the window",
                     in.h, in.w);
      if (l->kind == PS_LAYER_CONV2D)
        {
          l->kernel_len = (gsize) l->kh * l->kw * in.c * l->out.c;
          l->bias_len = l->out.c;
        }
      break;
    case PS_LAYER_DENSE:
      if (in.h != 1 || in.w != 1)
        return fail (error, PS_ERROR_UNSUPPORTED, l->name, "Dense on a %dx%dx%d tensor needs a Flatten",
                     in.h, in.w, in.c);
      l->kernel_len = (gsize) in.c * l->out.c;
      l->bias_len = l->out.c;
      break;
    case PS_LAYER_FLATTEN:
      l->out = (PsShape) { 1, 1, in.h * in.w * in.c };
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
  JsonArray *nodes, *node;

  if (!json_object_has_member (lobj, "inbound_nodes"))
    return TRUE;
  nodes = json_object_get_array_member (lobj, "inbound_nodes");
  if (nodes == NULL || json_array_get_length (nodes) == 0)
    return TRUE;
  if (json_array_get_length (nodes) > 1)
    return fail (error, PS_ERROR_UNSUPPORTED, l->name, "shared layers are not supported");
  node = json_array_get_array_element (nodes, 0);
  if (node == NULL || json_array_get_length (node) > PS_MAX_INPUTS)
    return fail (error, PS_ERROR_FORMAT, l->name, "bad inbound_nodes");
  for (guint i = 0; i < json_array_get_length (node); i++)
    {
      JsonArray *ref = json_array_get_array_element (node, i);
      const char *src = ref ? json_array_get_string_element (ref, 0) : NULL;
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

  m->layers = g_new0 (PsLayer *, n + 1);
  for (guint i = 0; i < n; i++)
    {
      JsonObject *lobj = json_array_get_object_element (layers, i);
      JsonObject *cfg = lobj ? json_object_get_object_member (lobj, "config") : NULL;
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
  JsonArray *arr, *ref;
  const char *name;
  int idx;

  if (!json_object_has_member (config, key))
    return -1;
  arr = json_object_get_array_member (config, key);
  if (arr == NULL || json_array_get_length (arr) != 1)
    {
      fail (error, PS_ERROR_UNSUPPORTED, NULL, "exactly one %s is supported", key);
      return -2;
    }
  ref = json_array_get_array_element (arr, 0);
  name = ref ? json_array_get_string_element (ref, 0) : NULL;
  idx = name ? ps_model_find_layer (m, name) : -1;
  if (idx < 0)
    {
      fail (error, PS_ERROR_FORMAT, NULL, "%s names an unknown layer", key);
      return -2;
    }
  return idx;
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
  if (json_object_has_member (obj, "config"))
    {
      JsonNode *cn = json_object_get_member (obj, "config");
      if (JSON_NODE_HOLDS_ARRAY (cn)) /* old Sequential: a bare list of layers */
        layers = json_node_get_array (cn);
      else if (JSON_NODE_HOLDS_OBJECT (cn))
        {
          config = json_node_get_object (cn);
          if (json_object_has_member (config, "layers"))
            layers = json_object_get_array_member (config, "layers");
        }
    }
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
  out = m->layers[m->output];
  if (out->out.h != 1 || out->out.w != 1 || out->out.c < 2)
    {
      fail (error, PS_ERROR_UNSUPPORTED, NULL, "the output “%s” is not a class vector", out->name);
      return NULL;
    }
  m->n_classes = out->out.c;
  return g_steal_pointer (&m);
}
