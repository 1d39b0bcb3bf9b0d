/* ps-repair.c: G = (B, B'). The file is a Keras model of B' plus a "prunescope" group
 * holding what G needs beyond it: the pruned channels and B's original weights wherever
 * B' differs from B. */
#define G_LOG_DOMAIN "ps-repair"

#include "ps-repair.h"
#include "ps-repair-private.h"
#include "ps-h5.h"
#include "ps-limits.h"

#include <math.h>
#include <string.h>

static const char *metric_names[9] = {
  "valid_acc", "test_acc", "asr", "g_test_acc", "g_asr", "g_clean_flagged",
  "g_poisoned_flagged", "fraction", "pruned",
};

void
_ps_repair_info_free (PsRepairInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->layer);
  g_free (info->channels);
  ps_model_free (info->original);
  g_free (info);
}

PsRepairInfo *
_ps_repair_info_copy (const PsRepairInfo *src)
{
  PsRepairInfo *info;

  if (src == NULL)
    return NULL;
  info = g_memdup2 (src, sizeof *src);
  info->layer = g_strdup (src->layer);
  info->channels = g_memdup2 (src->channels, sizeof (int) * MAX (src->n_channels, 1));
  info->original = src->original ? ps_model_copy (src->original) : NULL;
  return info;
}

gboolean
ps_repair_is_g (const PsModel *m)
{
  return m->repair != NULL && m->repair->original != NULL;
}

const PsModel *
ps_repair_original (const PsModel *g)
{
  return g->repair ? g->repair->original : NULL;
}

const char *
ps_repair_layer (const PsModel *g)
{
  return g->repair ? g->repair->layer : NULL;
}

const int *
ps_repair_channels (const PsModel *g, int *n)
{
  *n = g->repair ? g->repair->n_channels : 0;
  return g->repair ? g->repair->channels : NULL;
}

int
ps_repair_fine_tune_epochs (const PsModel *g, double *lr)
{
  gboolean tuned = g->repair != NULL && g->repair->fine_tuned;

  if (lr != NULL)
    *lr = tuned ? g->repair->ft_lr : 0.0;
  return tuned ? g->repair->ft_epochs : 0;
}

double
ps_repair_drop (const PsModel *g)
{
  return g->repair ? g->repair->drop : NAN;
}

/* The Conv2D/Dense whose output channels become @layer's channels through
 * zero-preserving layers (pooling, relu, dropout). */
PsLayer *
_ps_repair_feeding_layer (const PsModel *m, int layer, GError **error)
{
  int i = layer;

  for (;;)
    {
      PsLayer *l = m->layers[i];

      if (l->kind == PS_LAYER_CONV2D || l->kind == PS_LAYER_DENSE)
        {
          if (l->activation == PS_ACT_SOFTMAX)
            break;
          return l;
        }
      if (l->n_inputs != 1 || l->kind == PS_LAYER_FLATTEN
          || (l->kind == PS_LAYER_ACTIVATION && l->activation == PS_ACT_SOFTMAX))
        break;
      i = l->inputs[0];
    }
  g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
               "layer “%s” is not fed by a convolution or dense layer whose channels can be zeroed",
               m->layers[layer]->name);
  return NULL;
}

PsModel *
ps_repair_build (const PsModel *model, const PsSweep *sweep, int pruned, double drop,
                 GError **error)
{
  g_autoptr (PsModel) g = NULL;
  const PsModel *b = ps_repair_original (model) ? ps_repair_original (model) : model;
  const PsSweepStep *row;
  PsRepairInfo *info;
  PsLayer *feed;
  int layer;

  if (pruned < 0 || pruned >= ps_sweep_n_steps (sweep))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "cannot prune %d of %d channels",
                   pruned, ps_sweep_n_channels (sweep));
      return NULL;
    }
  layer = ps_model_find_layer (b, ps_sweep_layer_name (sweep));
  g_return_val_if_fail (layer >= 0, NULL);

  g = ps_model_copy (b);
  _ps_repair_info_free (g->repair);
  g->repair = NULL;
  feed = _ps_repair_feeding_layer (g, layer, error);
  if (feed == NULL)
    return NULL;
  for (int k = 0; k < pruned; k++)
    {
      int c = ps_sweep_order (sweep)[k];
      gsize rows = feed->kernel_len / feed->out.c;

      for (gsize r = 0; r < rows; r++)
        feed->kernel[r * feed->out.c + c] = 0.0f;
      feed->bias[c] = 0.0f;
    }

  info = g_new0 (PsRepairInfo, 1);
  info->layer = g_strdup (ps_sweep_layer_name (sweep));
  info->channels = g_memdup2 (ps_sweep_order (sweep), sizeof (int) * MAX (pruned, 1));
  info->n_channels = pruned;
  info->layer_channels = ps_sweep_n_channels (sweep);
  info->drop = drop;
  row = ps_sweep_get_step (sweep, pruned);
  {
    double v[9] = { row->valid_acc, row->test_acc, row->asr, row->g_test_acc, row->g_asr,
                    row->g_clean_flagged, row->g_poisoned_flagged, row->fraction, row->pruned };
    memcpy (info->metrics, v, sizeof v);
  }
  info->original = ps_model_copy (b);
  _ps_repair_info_free (info->original->repair);
  info->original->repair = NULL;
  g->repair = info;
  return g_steal_pointer (&g);
}

static gboolean
layer_differs (const PsLayer *a, const PsLayer *b)
{
  return memcmp (a->kernel, b->kernel, a->kernel_len * sizeof (float)) != 0
         || memcmp (a->bias, b->bias, a->bias_len * sizeof (float)) != 0;
}

static gboolean
write_original (hid_t pg, const PsModel *g, GError **error)
{
  const PsModel *b = g->repair->original;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  hid_t og = H5Gcreate2 (pg, "original", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = og >= 0;

  for (int i = 0; ok && i < b->n_layers; i++)
    {
      const PsLayer *l = b->layers[i];
      g_autofree char *kp = g_strdup_printf ("%s/kernel", l->name);
      g_autofree char *bp = g_strdup_printf ("%s/bias", l->name);
      hsize_t kd[1] = { l->kernel_len }, bd[1] = { l->bias_len };

      if (!ps_layer_has_weights (l) || !layer_differs (l, g->layers[i]))
        continue;
      g_ptr_array_add (names, l->name);
      ok = ps_h5_write_floats (og, kp, 1, kd, l->kernel, error)
           && ps_h5_write_floats (og, bp, 1, bd, l->bias, error);
    }
  g_ptr_array_add (names, NULL);
  ok = ok && ps_h5_write_attr_strings (og, "layers", (const char * const *) names->pdata, error);
  if (og >= 0)
    H5Gclose (og);
  return ok;
}

static gboolean
write_prunescope (hid_t file, const PsModel *g, GError **error)
{
  const PsRepairInfo *info = g->repair;
  hid_t pg = H5Gcreate2 (file, "prunescope", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t mg;
  gboolean ok = pg >= 0;

  ok = ok && ps_h5_write_attr_string (pg, "kind", "repaired network G", error)
       && ps_h5_write_attr_double (pg, "format_version", 1, error)
       && ps_h5_write_attr_double (pg, "input_scale", g->input_scale, error)
       && ps_h5_write_attr_double (pg, "n_classes", g->n_classes, error)
       && ps_h5_write_attr_double (pg, "backdoor_class", g->n_classes, error)
       && ps_h5_write_attr_string (pg, "layer", info->layer, error)
       && ps_h5_write_attr_double (pg, "layer_channels", info->layer_channels, error)
       && ps_h5_write_attr_double (pg, "drop", info->drop, error)
       && ps_h5_write_attr_double (pg, "fine_tuned", info->fine_tuned, error)
       && ps_h5_write_attr_double (pg, "fine_tune_epochs", info->ft_epochs, error)
       && ps_h5_write_attr_double (pg, "fine_tune_lr", info->ft_lr, error)
       && ps_h5_write_ints (pg, "channels", info->n_channels, info->channels, error)
       && write_original (pg, g, error);
  if (ok)
    {
      mg = H5Gcreate2 (pg, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      for (int i = 0; ok && i < 9; i++)
        ok = ps_h5_write_attr_double (mg, metric_names[i], info->metrics[i], error);
      H5Gclose (mg);
    }
  if (pg >= 0)
    H5Gclose (pg);
  return ok;
}

static gboolean
write_g (hid_t file, gconstpointer data, GError **error)
{
  return _ps_model_write_keras (data, file, error) && write_prunescope (file, data, error);
}

gboolean
ps_repair_save (const PsModel *g, const char *path, GError **error)
{
  g_return_val_if_fail (ps_repair_is_g (g), FALSE);
  return ps_h5_write_file (path, write_g, g, error);
}

/* An optional number: @dflt when absent; an error when present but not one number. */
static gboolean
attr_or (hid_t loc, const char *name, double dflt, double *out, GError **error)
{
  *out = dflt;
  if (!ps_h5_has_attr (loc, name))
    return TRUE;
  if (ps_h5_read_attr_double (loc, name, out, error))
    return TRUE;
  g_prefix_error (error, "prunescope: ");
  return FALSE;
}

static gboolean
read_original (hid_t pg, PsModel *m, GError **error)
{
  g_autoptr (PsModel) b = ps_model_copy (m);
  hid_t og = ps_h5_exists (pg, "original") ? ps_h5_open_group (pg, "original", error) : -1;
  g_auto (GStrv) names = og >= 0 ? ps_h5_read_attr_strings (og, "layers", error) : NULL;

  if (names == NULL)
    {
      if (og >= 0)
        H5Gclose (og);
      if (error != NULL && *error != NULL)
        g_prefix_error (error, "prunescope/original: ");
      else
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "G without prunescope/original");
      return FALSE;
    }
  _ps_repair_info_free (b->repair);
  b->repair = NULL;
  for (guint i = 0; names[i] != NULL; i++)
    {
      int idx = ps_model_find_layer (b, names[i]);
      g_autofree char *kp = g_strdup_printf ("%s/kernel", names[i]);
      g_autofree char *bp = g_strdup_printf ("%s/bias", names[i]);
      hsize_t kd[1], bd[1];
      float *k, *bias;
      PsLayer *l;

      if (idx < 0 || !ps_layer_has_weights (b->layers[idx]))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                       "prunescope/original names “%s”, not a layer with weights", names[i]);
          H5Gclose (og);
          return FALSE;
        }
      l = b->layers[idx];
      /* Exactly the layer's sizes, checked before reading. */
      kd[0] = l->kernel_len, bd[0] = l->bias_len;
      k = ps_h5_read_floats (og, kp, 1, kd, error);
      bias = k ? ps_h5_read_floats (og, bp, 1, bd, error) : NULL;
      if (bias == NULL)
        {
          g_prefix_error (error, "prunescope/original/");
          g_free (k);
          H5Gclose (og);
          return FALSE;
        }
      g_free (l->kernel);
      g_free (l->bias);
      l->kernel = k;
      l->bias = bias;
    }
  H5Gclose (og);
  if (!ps_model_check_weights (b, error))
    return FALSE;
  m->repair->original = g_steal_pointer (&b);
  return TRUE;
}

/* The pruned channels: distinct, each one of the layer's. */
static gboolean
check_channels (const PsRepairInfo *info, GError **error)
{
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);

  if (info->layer_channels < 1 || info->n_channels > info->layer_channels)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "prunescope: %d channels pruned of a layer of %d", info->n_channels,
                   info->layer_channels);
      return FALSE;
    }
  for (int i = 0; i < info->n_channels; i++)
    if (info->channels[i] < 0 || info->channels[i] >= info->layer_channels
        || !g_hash_table_add (seen, GINT_TO_POINTER (info->channels[i] + 1)))
      {
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                     "prunescope/channels: channel %d is out of range or listed twice",
                     info->channels[i]);
        return FALSE;
      }
  return TRUE;
}

static gboolean
read_numbers (hid_t pg, PsRepairInfo *info, GError **error)
{
  double v[5];

  if (!attr_or (pg, "layer_channels", 0, &v[0], error) || !attr_or (pg, "drop", NAN, &v[1], error)
      || !attr_or (pg, "fine_tuned", 0, &v[2], error)
      || !attr_or (pg, "fine_tune_epochs", 0, &v[3], error)
      || !attr_or (pg, "fine_tune_lr", 0, &v[4], error))
    return FALSE;
  if (!(v[0] >= 0 && v[0] <= PS_LIMIT_CHANNELS) || !(v[3] >= 0 && v[3] <= G_MAXINT))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "prunescope: layer_channels or fine_tune_epochs out of range");
      return FALSE;
    }
  info->layer_channels = (int) v[0];
  info->drop = v[1];
  info->fine_tuned = v[2] != 0;
  info->ft_epochs = (int) v[3];
  info->ft_lr = v[4];
  return TRUE;
}

static gboolean
read_metrics (hid_t pg, PsRepairInfo *info, GError **error)
{
  hid_t mg;
  gboolean ok = TRUE;

  for (int i = 0; i < 9; i++)
    info->metrics[i] = NAN;
  if (!ps_h5_exists (pg, "metrics"))
    return TRUE;
  if ((mg = ps_h5_open_group (pg, "metrics", error)) < 0)
    return FALSE;
  for (int i = 0; ok && i < 9; i++)
    ok = attr_or (mg, metric_names[i], NAN, &info->metrics[i], error);
  H5Gclose (mg);
  return ok;
}

gboolean
_ps_repair_info_load (PsModel *m, gint64 file, GError **error)
{
  PsRepairInfo *info;
  hid_t pg;
  gsize n = 0;
  gboolean ok = TRUE;

  if (!ps_h5_exists (file, "prunescope"))
    return TRUE;
  pg = ps_h5_open_group (file, "prunescope", error);
  if (pg < 0)
    return FALSE;
  if (ps_h5_has_attr (pg, "input_scale"))
    {
      m->scale_recorded = TRUE;
      if (!attr_or (pg, "input_scale", 1.0, &m->input_scale, error)
          || !(m->input_scale > 0 && isfinite (m->input_scale)))
        {
          H5Gclose (pg);
          if (error == NULL || *error == NULL)
            g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "bad prunescope/input_scale");
          return FALSE;
        }
    }
  if (!ps_h5_has_attr (pg, "layer"))
    {
      H5Gclose (pg);
      return TRUE;
    }

  info = m->repair = g_new0 (PsRepairInfo, 1);
  info->layer = ps_h5_read_attr_string (pg, "layer", error);
  if (info->layer == NULL)
    g_prefix_error (error, "prunescope: ");
  info->channels = info->layer ? ps_h5_read_ints (pg, "channels", PS_LIMIT_CHANNELS, &n, error) : NULL;
  if (info->layer != NULL && info->channels == NULL)
    g_prefix_error (error, "prunescope/");
  info->n_channels = (int) n;
  ok = info->channels != NULL;
  if (ok && ps_model_find_layer (m, info->layer) < 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "pruned layer “%s” is not in the model", info->layer);
      ok = FALSE;
    }
  ok = ok && read_numbers (pg, info, error) && check_channels (info, error)
       && read_metrics (pg, info, error) && read_original (pg, m, error);
  H5Gclose (pg);
  return ok;
}
