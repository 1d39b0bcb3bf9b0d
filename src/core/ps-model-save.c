/* ps-model-save.c: writes a model in the layout Keras 2.x itself writes (model_config +
 * model_weights), so that keras.models.load_model() opens it */
#define G_LOG_DOMAIN "ps-model"

#include "ps-model.h"
#include "ps-h5.h"

static gboolean
write_layer (hid_t wg, const PsLayer *l, GError **error)
{
  hid_t g = H5Gcreate2 (wg, l->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok;

  if (g < 0)
    {
      ps_h5_set_error (error, l->name);
      return FALSE;
    }
  if (ps_layer_has_weights (l))
    {
      g_autofree char *kname = g_strdup_printf ("%s/kernel:0", l->name);
      g_autofree char *bname = g_strdup_printf ("%s/bias:0", l->name);
      const char *names[] = { kname, bname, NULL };
      hsize_t kdims[4], bdims[1] = { l->bias_len };
      int rank;

      if (l->kind == PS_LAYER_CONV2D)
        {
          rank = 4;
          kdims[0] = l->kh, kdims[1] = l->kw, kdims[2] = l->in.c, kdims[3] = l->out.c;
        }
      else
        {
          rank = 2;
          kdims[0] = l->in.c, kdims[1] = l->out.c;
        }
      if (!l->use_bias)
        names[1] = NULL;
      ok = ps_h5_write_attr_strings (g, "weight_names", names, error)
           && ps_h5_write_floats (g, kname, rank, kdims, l->kernel, error)
           && (!l->use_bias || ps_h5_write_floats (g, bname, 1, bdims, l->bias, error));
    }
  else
    ok = ps_h5_write_attr_empty (g, "weight_names", error);
  H5Gclose (g);
  return ok;
}

static gboolean
write_version_attrs (hid_t loc, const PsModel *m, GError **error)
{
  return ps_h5_write_attr_string (loc, "backend", m->backend ? m->backend : "tensorflow", error)
         && ps_h5_write_attr_string (loc, "keras_version",
                                     m->keras_version ? m->keras_version : "2.3.1", error);
}

gboolean
_ps_model_write_keras (const PsModel *m, gint64 file, GError **error)
{
  g_autofree const char **names = g_new0 (const char *, m->n_layers + 1);
  hid_t wg;
  gboolean ok;

  if (!write_version_attrs (file, m, error)
      || !ps_h5_write_attr_string (file, "model_config", m->config_json, error))
    return FALSE;
  wg = H5Gcreate2 (file, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (wg < 0)
    {
      ps_h5_set_error (error, "model_weights");
      return FALSE;
    }
  for (int i = 0; i < m->n_layers; i++)
    names[i] = m->layers[i]->name;
  ok = write_version_attrs (wg, m, error)
       && ps_h5_write_attr_strings (wg, "layer_names", names, error);
  for (int i = 0; ok && i < m->n_layers; i++)
    ok = write_layer (wg, m->layers[i], error);
  H5Gclose (wg);
  return ok;
}

static gboolean
write_model (hid_t file, gconstpointer data, GError **error)
{
  const PsModel *m = data;
  hid_t g;
  gboolean ok;

  if (!_ps_model_write_keras (m, file, error))
    return FALSE;
  /* How the model wants its pixels scaled travels with it. */
  g = H5Gcreate2 (file, "prunescope", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0)
    {
      ps_h5_set_error (error, "prunescope");
      return FALSE;
    }
  ok = ps_h5_write_attr_double (g, "input_scale", m->input_scale, error);
  H5Gclose (g);
  return ok;
}

gboolean
ps_model_save (const PsModel *m, const char *path, GError **error)
{
  return ps_h5_write_file (path, write_model, m, error);
}
