/* ps-model.c: loading a Keras HDF5 model (full model or DeepID weights-only) */
#define G_LOG_DOMAIN "ps-model"

#include "ps-model.h"
#include "ps-h5.h"
#include "ps-limits.h"
#include "ps-onnx.h"
#include "ps-probe.h"

#include <math.h>
#include <string.h>

void
ps_model_free (PsModel *m)
{
  if (m == NULL)
    return;
  for (int i = 0; i < m->n_layers; i++)
    ps_layer_free (m->layers[i]);
  g_free (m->layers);
  g_free (m->config_json);
  g_free (m->keras_version);
  g_free (m->backend);
  g_free (m->path);
  g_clear_pointer (&m->onnx, g_bytes_unref);
  g_strfreev (m->aliases);
  g_free (m);
}

PsModel *
ps_model_copy (const PsModel *src)
{
  PsModel *m = g_memdup2 (src, sizeof *src);

  m->layers = g_new0 (PsLayer *, src->n_layers + 1);
  for (int i = 0; i < src->n_layers; i++)
    {
      PsLayer *l = g_memdup2 (src->layers[i], sizeof (PsLayer));
      l->name = g_strdup (l->name);
      l->kernel = g_memdup2 (l->kernel, l->kernel_len * sizeof (float));
      l->bias = g_memdup2 (l->bias, l->bias_len * sizeof (float));
      m->layers[i] = l;
    }
  m->config_json = g_strdup (src->config_json);
  m->keras_version = g_strdup (src->keras_version);
  m->backend = g_strdup (src->backend);
  m->path = g_strdup (src->path);
  m->onnx = src->onnx ? g_bytes_ref (src->onnx) : NULL;
  m->aliases = g_strdupv (src->aliases);
  return m;
}

int
ps_model_find_layer (const PsModel *m, const char *name)
{
  for (int i = 0; i < m->n_layers; i++)
    if (g_str_equal (m->layers[i]->name, name))
      return i;
  for (int i = 0; m->aliases != NULL && m->aliases[i] != NULL && m->aliases[i + 1] != NULL; i += 2)
    if (g_str_equal (m->aliases[i], name))
      return ps_model_find_layer (m, m->aliases[i + 1]);
  return -1;
}

int
ps_model_default_layer (const PsModel *m)
{
  if (m->onnx == NULL)
    return ps_model_last_pool (m);
  /* the input of the last layer that turns a feature map into a vector */
  for (int i = m->n_layers - 1; i >= 0; i--)
    {
      const PsLayer *l = m->layers[i];
      const PsLayer *in = l->n_inputs == 1 ? m->layers[l->inputs[0]] : NULL;

      /* a flatten of a 1x1 map (after global pooling) is not the place */
      if (in != NULL && in->rank == 4 && in->kind != PS_LAYER_INPUT
          && (l->kind == PS_LAYER_GLOBAL_AVGPOOL
              || (l->kind == PS_LAYER_FLATTEN && in->out.h * in->out.w > 1)))
        return l->inputs[0];
    }
  return -1;
}

gboolean
ps_model_layer_is_cut (const PsModel *m, int layer, GError **error)
{
  g_autofree gboolean *down = NULL;

  g_return_val_if_fail (layer >= 0 && layer < m->n_layers, FALSE);

  down = g_new0 (gboolean, m->n_layers);
  down[layer] = TRUE;
  for (int i = layer + 1; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];
      int from_down = 0;

      for (int j = 0; j < l->n_inputs; j++)
        from_down += down[l->inputs[j]];
      if (from_down > 0 && from_down < l->n_inputs)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                       "layer “%s” also reads layers before “%s”; choose a later layer to prune",
                       l->name, m->layers[layer]->name);
          return FALSE;
        }
      down[i] = from_down > 0;
    }
  if (!down[m->output])
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                   "the output does not depend on layer “%s”", m->layers[layer]->name);
      return FALSE;
    }
  return TRUE;
}

gboolean
ps_model_is_prunable (const PsModel *m, int layer)
{
  return ps_model_is_feature_map (m, layer) && ps_model_layer_is_cut (m, layer, NULL);
}

gboolean
ps_model_is_feature_map (const PsModel *m, int layer)
{
  g_return_val_if_fail (layer >= 0 && layer < m->n_layers, FALSE);

  /* walk back through layers that keep their input's shape; Keras layers carry no rank */
  for (int i = layer; i >= 0; i = m->layers[i]->inputs[0])
    {
      const PsLayer *l = m->layers[i];

      if (i == m->output || (i == layer && i == m->input))
        return FALSE;
      if (m->onnx != NULL)
        return l->rank == 4;
      switch (l->kind)
        {
        case PS_LAYER_INPUT:
        case PS_LAYER_CONV2D:
        case PS_LAYER_MAXPOOL2D:
        case PS_LAYER_AVGPOOL2D:
          return TRUE;
        case PS_LAYER_ACTIVATION:
        case PS_LAYER_DROPOUT:
        case PS_LAYER_ADD:
        case PS_LAYER_AFFINE:
        case PS_LAYER_UNARY:
        case PS_LAYER_CONCAT:
          if (l->n_inputs == 0 || l->inputs[0] >= i)
            return FALSE;
          break;
        default:
          return FALSE;
        }
    }
  return FALSE;
}

int
ps_model_last_pool (const PsModel *m)
{
  for (int i = m->n_layers - 1; i >= 0; i--)
    if (m->layers[i]->kind == PS_LAYER_MAXPOOL2D)
      return i;
  return -1;
}

gsize
ps_model_n_params (const PsModel *m)
{
  gsize n = 0;

  for (int i = 0; i < m->n_layers; i++)
    n += m->layers[i]->kernel_len + m->layers[i]->bias_len;
  return n;
}

gboolean
ps_model_check_weights (const PsModel *m, GError **error)
{
  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];

      for (gsize k = 0; k < l->kernel_len; k++)
        if (!isfinite (l->kernel[k]))
          goto bad;
      for (gsize k = 0; k < l->bias_len; k++)
        if (!isfinite (l->bias[k]))
          goto bad;
      continue;
    bad:
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "layer “%s” has NaN or infinite weights", l->name);
      return FALSE;
    }
  return TRUE;
}

static float *
read_weight (hid_t group, PsLayer *l, const char *wname, int rank, const hsize_t *want,
             GError **error)
{
  g_autofree char *path = g_strdup_printf ("%s/%s", l->name, wname);
  float *data = ps_h5_read_floats (group, path, rank, want, error);

  if (data == NULL)
    g_prefix_error (error, "layer “%s”: ", l->name);
  return data;
}

static gboolean
load_layer_weights (hid_t group, PsLayer *l, GError **error)
{
  g_auto (GStrv) names = NULL;
  hsize_t kdims[4], bdims[1] = { l->bias_len };
  int krank;
  guint want = l->use_bias ? 2 : 1;
  hid_t lg;

  if (!ps_h5_exists (group, l->name))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "no weights for layer “%s”", l->name);
      return FALSE;
    }
  lg = ps_h5_open_group (group, l->name, error);
  if (lg >= 0)
    {
      names = ps_h5_read_attr_strings (lg, "weight_names", error);
      H5Gclose (lg);
    }
  if (names == NULL)
    {
      g_prefix_error (error, "layer “%s”: ", l->name);
      return FALSE;
    }
  if (g_strv_length (names) != want)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "layer “%s” has %u weights, expected %u",
                   l->name, g_strv_length (names), want);
      return FALSE;
    }
  if (l->kind == PS_LAYER_CONV2D)
    {
      krank = 4;
      kdims[0] = l->kh, kdims[1] = l->kw, kdims[2] = l->in.c, kdims[3] = l->out.c;
    }
  else
    {
      krank = 2;
      kdims[0] = l->in.c, kdims[1] = l->out.c;
    }
  l->kernel = read_weight (group, l, names[0], krank, kdims, error);
  if (l->kernel == NULL)
    return FALSE;
  if (l->use_bias)
    l->bias = read_weight (group, l, names[1], 1, bdims, error);
  else
    l->bias = g_new0 (float, l->bias_len);
  return l->bias != NULL;
}

/* A weights-only file: check it is DeepID and find its class count. */
static char *
deepid_config_for (hid_t file, GError **error)
{
  static const char *needed[] = { "conv_1", "conv_2", "conv_3", "conv_4", "fc_1", "fc_2", "output" };
  g_auto (GStrv) names = ps_h5_read_attr_strings (file, "layer_names", error);
  g_autoptr (GError) local = NULL;
  PsH5Shape shape;
  hid_t bias;

  if (names == NULL)
    return NULL;
  for (guint i = 0; i < G_N_ELEMENTS (needed); i++)
    if (!g_strv_contains ((const char * const *) names, needed[i]))
      {
        g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                     "weights-only file without the DeepID topology (no layer “%s”)", needed[i]);
        return NULL;
      }
  /* Only the class count is needed here: the weights are read with the layers. */
  bias = ps_h5_open_dataset (file, "output/output/bias:0", PS_LIMIT_CHANNELS, &shape, &local);
  if (bias >= 0)
    H5Dclose (bias);
  if (bias < 0 || shape.rank != 1 || shape.dims[0] < 2)
    {
      g_set_error (error, local ? local->domain : PS_ERROR, local ? local->code : PS_ERROR_FORMAT,
                   "weights-only file without a readable output/output/bias:0%s%s",
                   local ? ": " : "", local ? local->message : "");
      return NULL;
    }
  return ps_deepid_config ((int) shape.dims[0]);
}

/* Files Prunescope writes record the scale their model is used with. */
static gboolean
read_input_scale (hid_t file, PsModel *m, GError **error)
{
  hid_t pg;
  gboolean ok = TRUE;

  if (!ps_h5_exists (file, "prunescope"))
    return TRUE;
  pg = ps_h5_open_group (file, "prunescope", error);
  if (pg < 0)
    return FALSE;
  if (ps_h5_has_attr (pg, "input_scale"))
    {
      ok = ps_h5_read_attr_double (pg, "input_scale", &m->input_scale, error);
      if (!ok)
        g_prefix_error (error, "prunescope: ");
      if (ok && !(m->input_scale > 0 && isfinite (m->input_scale)))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                       "prunescope/input_scale is not a positive number");
          ok = FALSE;
        }
      m->scale_recorded = ok;
    }
  H5Gclose (pg);
  return ok;
}

static PsModel *
load_from_file (hid_t file, GError **error)
{
  g_autoptr (PsModel) m = NULL;
  g_autofree char *config = NULL;
  gboolean weights_only = FALSE;
  hid_t wgroup;

  if (ps_h5_has_attr (file, "model_config"))
    config = ps_h5_read_attr_string (file, "model_config", error);
  else if (ps_h5_has_attr (file, "layer_names"))
    {
      weights_only = TRUE;
      config = deepid_config_for (file, error);
    }
  else
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                 "not a Keras model (no model_config) nor a Keras weights file (no layer_names)");
  if (config == NULL)
    return NULL;

  m = ps_model_new_from_config (config, error);
  if (m == NULL)
    return NULL;
  m->weights_only = weights_only;
  m->keras_version = ps_h5_read_attr_string (file, "keras_version", NULL);
  m->backend = ps_h5_read_attr_string (file, "backend", NULL);

  if (weights_only)
    wgroup = H5Gopen2 (file, "/", H5P_DEFAULT);
  else if (ps_h5_exists (file, "model_weights"))
    wgroup = ps_h5_open_group (file, "model_weights", error);
  else
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "model file without model_weights");
      return NULL;
    }
  if (wgroup < 0)
    return NULL;
  for (int i = 0; i < m->n_layers; i++)
    if (ps_layer_has_weights (m->layers[i]) && !load_layer_weights (wgroup, m->layers[i], error))
      {
        H5Gclose (wgroup);
        return NULL;
      }
  H5Gclose (wgroup);
  if (!ps_model_check_weights (m, error))
    return NULL;
  if (!read_input_scale (file, m, error))
    return NULL;
  return g_steal_pointer (&m);
}

PsModel *
ps_model_load (const char *path, GError **error)
{
  PsModel *m = NULL;
  hid_t file;

  if (ps_onnx_is_onnx (path))
    return ps_onnx_load (path, error);

  if (!ps_probe_model_file (path, error))
    return NULL;
  ps_h5_lock ();
  file = ps_h5_open (path, FALSE, error);
  if (file >= 0)
    {
      m = load_from_file (file, error);
      H5Fclose (file);
      H5Eclear2 (H5E_DEFAULT);
    }
  ps_h5_unlock ();
  if (m == NULL)
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  m->path = g_strdup (path);
  return m;
}
