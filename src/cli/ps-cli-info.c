/* ps-cli-info.c: "info" — what a model, G or dataset file holds */
#define G_LOG_DOMAIN "prunescope-cli"

#include <math.h>
#include <stdio.h>

#include "ps-cli.h"
#include "ps-h5.h"
#include "ps-onnx.h"
#include "ps-repaired.h"

/* The feature maps the sweep can prune, the default one marked. */
static void
print_candidates (const PsModel *m)
{
  int dflt = ps_model_default_layer (m);

  printf ("  feature maps to prune (--layer NAME, channels x height x width):\n");
  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];

      if (ps_model_is_prunable (m, i))
        printf ("    %s  %dx%dx%d%s\n", l->name, l->out.c, l->out.h, l->out.w,
                i == dflt ? "  (default)" : "");
    }
}

static void
print_model (const PsModel *m, const PsRepaired *g)
{
  if (m->onnx != NULL)
    {
      printf ("%s: %s, %d classes, %zu parameters\n", m->path,
              g != NULL ? "repaired network G as one ONNX graph" : "ONNX model",
              m->n_classes, ps_model_n_params (m));
      printf ("  input %dx%dx%d (channels first), input scale %g (the graph scales its pixels itself)\n",
              m->layers[m->input]->out.c, m->layers[m->input]->out.h, m->layers[m->input]->out.w,
              m->input_scale);
    }
  else
    {
      printf ("%s: %s, %d classes, %zu parameters\n", m->path,
              g != NULL ? "repaired network G (B' as a Keras model + prunescope group)"
              : m->weights_only ? "Keras weights-only file (DeepID topology)" : "Keras model",
              m->n_classes, ps_model_n_params (m));
      printf ("  Keras %s, input scale %g%s\n", m->keras_version ? m->keras_version : "?",
              m->input_scale, m->scale_recorded ? " (recorded in the file)" : " (default)");
    }
  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *l = m->layers[i];
      printf ("  %-14s %-13s %4d x %-4d x %-5d", l->name, ps_layer_kind_name (l->kind),
              l->out.h, l->out.w, l->out.c);
      if (ps_layer_has_weights (l) || l->kind == PS_LAYER_ACTIVATION)
        printf (" %-8s", ps_activation_name (l->activation));
      if (l->n_inputs > 0)
        {
          printf (" <-");
          for (int j = 0; j < l->n_inputs; j++)
            printf (" %s", m->layers[l->inputs[j]]->name);
        }
      printf ("\n");
    }
  if (g == NULL)
    print_candidates (m);
  if (g != NULL)
    {
      printf ("  G: class %d means backdoored; %d channels of “%s” pruned:", m->n_classes,
              g->n_channels, g->layer);
      for (int i = 0; i < g->n_channels; i++)
        printf (" %d", g->channels[i]);
      printf ("\n");
      if (!isnan (g->drop))
        printf ("  chosen at an accuracy drop of X = %g points\n", g->drop);
      if (g->fine_tuned)
        printf ("  fine-pruned: B' fine-tuned for %d epochs at learning rate %g\n", g->ft_epochs,
                g->ft_lr);
      else
        printf ("  pruning only (B' is B with the channels zeroed)\n");
    }
}

static void
print_dataset (const PsDataset *ds)
{
  int lo = G_MAXINT, hi = -1;
  g_autoptr (GHashTable) classes = g_hash_table_new (NULL, NULL);

  for (int i = 0; i < ds->n; i++)
    {
      lo = MIN (lo, ds->labels[i]);
      hi = MAX (hi, ds->labels[i]);
      g_hash_table_add (classes, GINT_TO_POINTER (ds->labels[i] + 1));
    }
  printf ("%s: %d images of %dx%dx%d, labels %d..%d (%u classes)%s, stored as %s (%.1f MB in memory)\n",
          ds->path, ds->n, ds->h, ds->w, ds->c, ds->n ? lo : 0, ds->n ? hi : 0,
          g_hash_table_size (classes), ds->clean_labels ? " and their true classes (clean_label)" : "",
          ds->u8 ? "8-bit" : "float", ps_dataset_memory_size (ds) / 1e6);
}

int
ps_cli_info (int argc, char **argv)
{
  g_auto (GStrv) files = NULL;
  const GOptionEntry entries[] = {
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &files, NULL, "FILE…" },
    { NULL },
  };

  if (!ps_cli_parse ("info", "FILE…", "describe model, G and dataset files", entries, &argc, &argv))
    return PS_EXIT_USAGE;
  if (files == NULL)
    {
      g_printerr ("prunescope-cli info: name at least one file\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  for (guint i = 0; files[i] != NULL; i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PsModel) m = NULL;
      g_autoptr (PsRepaired) g = NULL;
      g_autoptr (PsDataset) ds = NULL;
      hid_t f;
      gboolean is_data;

      if (ps_onnx_is_onnx (files[i]))
        {
          if (ps_repaired_file_is_g (files[i]) && (g = ps_repaired_load (files[i], &error)) != NULL)
            print_model (g->b_prime, g);
          else if (error == NULL && (m = ps_model_load (files[i], &error)) != NULL)
            print_model (m, NULL);
          else
            return ps_cli_fail (error);
          continue;
        }
      f = ps_h5_open (files[i], FALSE, &error);
      if (f < 0)
        {
          g_prefix_error (&error, "%s: ", files[i]);
          return ps_cli_fail (error);
        }
      is_data = ps_h5_exists (f, "data") && !ps_h5_has_attr (f, "model_config");
      H5Fclose (f);
      if (is_data && (ds = ps_dataset_load (files[i], &error)) != NULL)
        print_dataset (ds);
      else if (!is_data && ps_repaired_file_is_g (files[i])
               && (g = ps_repaired_load (files[i], &error)) != NULL)
        print_model (g->b_prime, g);
      else if (!is_data && g == NULL && error == NULL
               && (m = ps_model_load (files[i], &error)) != NULL)
        print_model (m, NULL);
      else
        return ps_cli_fail (error);
    }
  return PS_EXIT_OK;
}
