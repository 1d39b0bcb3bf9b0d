/* ps-repaired.c: G = (B, B'). The file is a Keras model of B' plus a "prunescope" group
 * holding what G needs beyond it: the pruned channels and B's original weights wherever
 * B' differs from B. */
#define G_LOG_DOMAIN "ps-repaired"

#include "ps-repaired.h"
#include "ps-onnx.h"
#include "ps-h5.h"
#include "ps-limits.h"
#include "ps-probe.h"

#include <math.h>
#include <string.h>

/* The metrics group: attribute names and the PsSweepStep fields they hold. */
static const struct {
  const char *name;
  gsize       offset;
} metric_fields[] = {
  { "valid_acc", G_STRUCT_OFFSET (PsSweepStep, valid_acc) },
  { "test_acc", G_STRUCT_OFFSET (PsSweepStep, test_acc) },
  { "asr", G_STRUCT_OFFSET (PsSweepStep, asr) },
  { "g_test_acc", G_STRUCT_OFFSET (PsSweepStep, g_test_acc) },
  { "g_asr", G_STRUCT_OFFSET (PsSweepStep, g_asr) },
  { "g_clean_flagged", G_STRUCT_OFFSET (PsSweepStep, g_clean_flagged) },
  { "g_poisoned_flagged", G_STRUCT_OFFSET (PsSweepStep, g_poisoned_flagged) },
  { "fraction", G_STRUCT_OFFSET (PsSweepStep, fraction) },
};

#define METRIC(step, i) G_STRUCT_MEMBER (double, (step), metric_fields[i].offset)

void
ps_repaired_free (PsRepaired *g)
{
  if (g == NULL)
    return;
  ps_model_free (g->b);
  ps_model_free (g->b_prime);
  g_free (g->layer);
  g_free (g->channels);
  g_free (g->path);
  g_free (g);
}

PsRepaired *
ps_repaired_copy (const PsRepaired *src)
{
  PsRepaired *g = g_memdup2 (src, sizeof *src);

  g->b = ps_model_copy (src->b);
  g->b_prime = ps_model_copy (src->b_prime);
  g->layer = g_strdup (src->layer);
  g->channels = g_memdup2 (src->channels, sizeof (int) * MAX (src->n_channels, 1));
  g->path = g_strdup (src->path);
  return g;
}

int
ps_repaired_n_classes (const PsRepaired *g)
{
  return g->b->n_classes;
}

PsLayer *
ps_repaired_feeding_layer (const PsModel *m, int layer, GError **error)
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

PsRepaired *
ps_repaired_build (const PsModel *b, const PsSweep *sweep, int pruned, double drop,
                   GError **error)
{
  g_autoptr (PsRepaired) g = NULL;
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

  g = g_new0 (PsRepaired, 1);
  g->b = ps_model_copy (b);
  g->b_prime = ps_model_copy (b);
  feed = ps_repaired_feeding_layer (g->b_prime, layer, error);
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
  g->layer = g_strdup (ps_sweep_layer_name (sweep));
  g->channels = g_memdup2 (ps_sweep_order (sweep), sizeof (int) * MAX (pruned, 1));
  g->n_channels = pruned;
  g->layer_channels = ps_sweep_n_channels (sweep);
  g->drop = drop;
  g->metrics = *ps_sweep_get_step (sweep, pruned);
  return g_steal_pointer (&g);
}

/* Saving */

static gboolean
layer_differs (const PsLayer *a, const PsLayer *b)
{
  return memcmp (a->kernel, b->kernel, a->kernel_len * sizeof (float)) != 0
         || memcmp (a->bias, b->bias, a->bias_len * sizeof (float)) != 0;
}

static gboolean
write_original (hid_t pg, const PsRepaired *g, GError **error)
{
  const PsModel *b = g->b;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  hid_t og = H5Gcreate2 (pg, "original", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = og >= 0;

  if (!ok)
    ps_h5_set_error (error, "prunescope/original");
  for (int i = 0; ok && i < b->n_layers; i++)
    {
      const PsLayer *l = b->layers[i];
      g_autofree char *kp = g_strdup_printf ("%s/kernel", l->name);
      g_autofree char *bp = g_strdup_printf ("%s/bias", l->name);
      hsize_t kd[1] = { l->kernel_len }, bd[1] = { l->bias_len };

      if (!ps_layer_has_weights (l) || !layer_differs (l, g->b_prime->layers[i]))
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
write_metrics (hid_t pg, const PsRepaired *g, GError **error)
{
  hid_t mg = H5Gcreate2 (pg, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = mg >= 0;

  if (!ok)
    ps_h5_set_error (error, "prunescope/metrics");
  for (guint i = 0; ok && i < G_N_ELEMENTS (metric_fields); i++)
    ok = ps_h5_write_attr_double (mg, metric_fields[i].name, METRIC (&g->metrics, i), error);
  ok = ok && ps_h5_write_attr_double (mg, "pruned", g->n_channels, error);
  if (mg >= 0)
    H5Gclose (mg);
  return ok;
}

static gboolean
write_prunescope (hid_t file, const PsRepaired *g, GError **error)
{
  const PsModel *bp = g->b_prime;
  hid_t pg = H5Gcreate2 (file, "prunescope", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  gboolean ok = pg >= 0;

  if (!ok)
    ps_h5_set_error (error, "prunescope");
  ok = ok && ps_h5_write_attr_string (pg, "kind", "repaired network G", error)
       && ps_h5_write_attr_double (pg, "format_version", 1, error)
       && ps_h5_write_attr_double (pg, "input_scale", bp->input_scale, error)
       && ps_h5_write_attr_double (pg, "n_classes", bp->n_classes, error)
       && ps_h5_write_attr_double (pg, "backdoor_class", bp->n_classes, error)
       && ps_h5_write_attr_string (pg, "layer", g->layer, error)
       && ps_h5_write_attr_double (pg, "layer_channels", g->layer_channels, error)
       && ps_h5_write_attr_double (pg, "drop", g->drop, error)
       && ps_h5_write_attr_double (pg, "fine_tuned", g->fine_tuned, error)
       && ps_h5_write_attr_double (pg, "fine_tune_epochs", g->ft_epochs, error)
       && ps_h5_write_attr_double (pg, "fine_tune_lr", g->ft_lr, error)
       && ps_h5_write_ints (pg, "channels", g->n_channels, g->channels, error)
       && write_original (pg, g, error)
       && write_metrics (pg, g, error);
  if (pg >= 0)
    H5Gclose (pg);
  return ok;
}

static gboolean
write_g (hid_t file, gconstpointer data, GError **error)
{
  const PsRepaired *g = data;

  return _ps_model_write_keras (g->b_prime, file, error) && write_prunescope (file, g, error);
}

gboolean
ps_repaired_save (const PsRepaired *g, const char *path, GError **error)
{
  g_return_val_if_fail (g != NULL && g->b != NULL && g->b_prime != NULL, FALSE);
  return ps_h5_write_file (path, write_g, g, error);
}

/* Loading */

/* An optional number: @dflt when absent; an error when present but not one number. */
static gboolean
attr_or (hid_t loc, const char *name, double dflt, double *out, GError **error)
{
  *out = dflt;
  if (!ps_h5_has_attr (loc, name) || ps_h5_read_attr_double (loc, name, out, error))
    return TRUE;
  g_prefix_error (error, "prunescope: ");
  return FALSE;
}

/* B: B' with the weights the file keeps under prunescope/original. */
static gboolean
read_original (hid_t pg, PsRepaired *g, GError **error)
{
  g_autoptr (PsModel) b = ps_model_copy (g->b_prime);
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
                       "prunescope/original names “%s”, which is not a layer with weights", names[i]);
          H5Gclose (og);
          return FALSE;
        }
      l = b->layers[idx];
      /* Exactly the layer's sizes, checked before anything is read. */
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
  g->b = g_steal_pointer (&b);
  return TRUE;
}

static gboolean
read_channels (hid_t pg, PsRepaired *g, GError **error)
{
  int layer = ps_model_find_layer (g->b_prime, g->layer);
  g_autoptr (GHashTable) seen = g_hash_table_new (NULL, NULL);
  gsize n = 0;

  if (layer < 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "pruned layer “%s” is not in the model", g->layer);
      return FALSE;
    }
  g->channels = ps_h5_read_ints (pg, "channels", PS_LIMIT_CHANNELS, &n, error);
  if (g->channels == NULL)
    {
      g_prefix_error (error, "prunescope/");
      return FALSE;
    }
  g->layer_channels = g->b_prime->layers[layer]->out.c;
  if (n > (gsize) g->layer_channels)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "prunescope/channels lists %zu channels, “%s” has %d",
                   n, g->layer, g->layer_channels);
      return FALSE;
    }
  g->n_channels = (int) n;
  for (int i = 0; i < g->n_channels; i++)
    if (g->channels[i] < 0 || g->channels[i] >= g->layer_channels)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "prunescope/channels: %d is not a channel of “%s”",
                     g->channels[i], g->layer);
        return FALSE;
      }
    else if (!g_hash_table_add (seen, GINT_TO_POINTER (g->channels[i] + 1)))
      {
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "prunescope/channels: channel %d is listed twice",
                     g->channels[i]);
        return FALSE;
      }
  return TRUE;
}

static gboolean
read_metrics (hid_t pg, PsRepaired *g, GError **error)
{
  gboolean ok = TRUE;
  hid_t mg;

  for (guint i = 0; i < G_N_ELEMENTS (metric_fields); i++)
    METRIC (&g->metrics, i) = NAN;
  g->metrics.pruned = g->n_channels;
  g->metrics.channel = g->n_channels > 0 ? g->channels[g->n_channels - 1] : -1;
  if (!ps_h5_exists (pg, "metrics"))
    return TRUE;
  if ((mg = ps_h5_open_group (pg, "metrics", error)) < 0)
    return FALSE;
  for (guint i = 0; ok && i < G_N_ELEMENTS (metric_fields); i++)
    ok = attr_or (mg, metric_fields[i].name, NAN, &METRIC (&g->metrics, i), error);
  H5Gclose (mg);
  return ok;
}

static gboolean
read_settings (hid_t pg, PsRepaired *g, GError **error)
{
  double tuned, epochs;

  if (!attr_or (pg, "drop", NAN, &g->drop, error) || !attr_or (pg, "fine_tuned", 0, &tuned, error)
      || !attr_or (pg, "fine_tune_epochs", 0, &epochs, error)
      || !attr_or (pg, "fine_tune_lr", 0, &g->ft_lr, error))
    return FALSE;
  if (!(epochs >= 0 && epochs <= G_MAXINT))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "prunescope: fine_tune_epochs is %g", epochs);
      return FALSE;
    }
  g->fine_tuned = tuned != 0;
  g->ft_epochs = (int) epochs;
  return TRUE;
}

static gboolean
read_prunescope (hid_t file, PsRepaired *g, GError **error)
{
  hid_t pg;
  gboolean ok;

  if (!ps_h5_exists (file, "prunescope"))
    pg = -1;
  else if ((pg = ps_h5_open_group (file, "prunescope", error)) < 0)
    return FALSE;
  if (pg < 0 || !ps_h5_has_attr (pg, "layer"))
    {
      if (pg >= 0)
        H5Gclose (pg);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "not a repaired network G (no prunescope/layer)");
      return FALSE;
    }
  g->layer = ps_h5_read_attr_string (pg, "layer", error);
  if (g->layer == NULL)
    g_prefix_error (error, "prunescope: ");
  ok = g->layer != NULL && read_channels (pg, g, error) && read_settings (pg, g, error)
       && read_metrics (pg, g, error) && read_original (pg, g, error);
  H5Gclose (pg);
  return ok;
}

PsRepaired *
ps_repaired_load (const char *path, GError **error)
{
  g_autoptr (PsRepaired) g = NULL;
  hid_t file;
  gboolean ok;

  if (ps_onnx_is_onnx (path))
    return ps_onnx_load_g (path, error);
  if (!ps_probe_model_file (path, error))
    return NULL;
  g = g_new0 (PsRepaired, 1);
  ps_h5_lock ();
  g->b_prime = ps_model_load (path, error); /* prefixes its errors with @path */
  if (g->b_prime == NULL)
    {
      ps_h5_unlock ();
      return NULL;
    }
  file = ps_h5_open (path, FALSE, error);
  ok = file >= 0 && read_prunescope (file, g, error);
  if (file >= 0)
    H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  if (!ok)
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  g->b->input_scale = g->b_prime->input_scale;
  g->b->scale_recorded = g->b_prime->scale_recorded;
  g->path = g_strdup (path);
  return g_steal_pointer (&g);
}

gboolean
ps_repaired_file_is_g (const char *path)
{
  gboolean is_g = FALSE;
  hid_t file, pg;

  if (ps_onnx_is_onnx (path))
    return ps_onnx_file_is_g (path);
  if (!ps_probe_model_file (path, NULL))
    return FALSE; /* the reader that follows says what is wrong */
  ps_h5_lock ();
  file = ps_h5_open (path, FALSE, NULL);
  if (file >= 0)
    {
      if (ps_h5_exists (file, "prunescope")
          && (pg = H5Gopen2 (file, "prunescope", H5P_DEFAULT)) >= 0)
        {
          is_g = ps_h5_has_attr (pg, "layer");
          H5Gclose (pg);
        }
      H5Fclose (file);
    }
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  return is_g;
}

PsModel *
ps_repaired_load_b (const char *path, gboolean *was_g, GError **error)
{
  g_autoptr (PsRepaired) g = NULL;
  gboolean is_g = ps_repaired_file_is_g (path);
  PsModel *b;

  if (was_g != NULL)
    *was_g = is_g;
  if (!is_g)
    return ps_model_load (path, error);
  g = ps_repaired_load (path, error);
  if (g == NULL)
    return NULL;
  b = g_steal_pointer (&g->b);
  g_free (b->path);
  b->path = g_strdup (path);
  return b;
}
