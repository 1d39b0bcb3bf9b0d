/* ps-cli-demo.c: "make-demo" trains the demo BadNet; "demo" runs the pruning sweep on the
 * shipped demo model and its data */
#define G_LOG_DOMAIN "prunescope-cli"

#include <stdio.h>

#include "ps-cli.h"
#include "ps-demo.h"
#include "ps-h5.h"

static void
on_demo_progress (const PsDemoEpoch *e, double done, gpointer user_data)
{
  gboolean tty = GPOINTER_TO_INT (user_data);

  if (e == NULL)
    {
      if (tty)
        g_printerr ("\r%3.0f%%  training…   ", 100 * done);
      return;
    }
  if (tty)
    g_printerr ("\r");
  printf ("epoch %d/%d: loss %.4f, validation accuracy %.2f %%, attack success %.2f %% (%.0f s)\n",
          e->epoch, e->epochs, e->loss, e->valid_acc, e->valid_asr, e->seconds);
  if (e->epoch == e->epochs)
    printf ("test: clean accuracy %.2f %%, attack success %.2f %%\n", e->test_acc, e->test_asr);
  fflush (stdout);
}

int
ps_cli_make_demo (int argc, char **argv)
{
  g_autofree char *dir = NULL;
  g_autoptr (GError) error = NULL;
  PsDemoOptions opt;
  int seed = -1;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &dir, "Folder to write (models/ and data/ as in the lab)", "DIR" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed (default 1)", "S" },
    { "poison-rate", 0, 0, G_OPTION_ARG_DOUBLE, &opt.poison_rate, "Share of training images poisoned (default 0.1)", "R" },
    { "target", 0, 0, G_OPTION_ARG_INT, &opt.target, "Class the trigger leads to (default 0)", "T" },
    { "epochs", 0, 0, G_OPTION_ARG_INT, &opt.epochs, "Training epochs (default 8)", "E" },
    { "limit", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &opt.limit, "Quick run: N training images, N/3 to validate and test", "N" },
    { NULL },
  };

  ps_demo_options_init (&opt);
  if (!ps_cli_parse ("make-demo", "-o DIR", "train the demo BadNet on Fashion-MNIST",
                     entries, &argc, &argv))
    return PS_EXIT_USAGE;
  if (dir == NULL || seed < -1)
    {
      g_printerr ("prunescope-cli make-demo: need -o DIR (and a seed >= 0)\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  if (seed >= 0)
    opt.seed = (guint32) seed;
  if (!ps_demo_make (dir, &opt, on_demo_progress, GINT_TO_POINTER (ps_cli_progress_wanted ()),
                     NULL, &error))
    return ps_cli_fail (error);
  printf ("%s: demo BadNet written (models/bd_net.h5, data/cl, data/bd)\n", dir);
  return PS_EXIT_OK;
}

/* The sweep command on the demo's files, so the two print the very same CSV. */
int
ps_cli_demo (int argc, char **argv)
{
  g_autofree char *csv = NULL, *layer = NULL, *order = NULL, *model = NULL, *dir = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  const char *sets[][2] = {
    { "--valid", "data/cl/valid.h5" }, { "--test", "data/cl/test.h5" }, { "--poisoned", "data/bd/bd_test.h5" },
  };
  const GOptionEntry entries[] = {
    { "csv", 'o', 0, G_OPTION_ARG_FILENAME, &csv, "Write the CSV here instead of standard output", "FILE" },
    { "layer", 'l', 0, G_OPTION_ARG_STRING, &layer, "Layer to prune (default: the last pooling layer)", "NAME" },
    { "order", 0, 0, G_OPTION_ARG_STRING, &order, "increasing (default) or decreasing mean activation", "ORDER" },
    { NULL },
  };

  if (!ps_cli_parse ("demo", "", "the pruning sweep on the demo BadNet (Fashion-MNIST)",
                     entries, &argc, &argv))
    return PS_EXIT_USAGE;
  if ((model = ps_demo_model_path (&error)) == NULL || (dir = ps_demo_ensure_data (NULL, &error)) == NULL)
    return ps_cli_fail (error);

  g_ptr_array_add (args, g_strdup ("sweep"));
  g_ptr_array_add (args, g_strdup ("--model"));
  g_ptr_array_add (args, g_strdup (model));
  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    {
      g_ptr_array_add (args, g_strdup (sets[i][0]));
      g_ptr_array_add (args, g_build_filename (dir, sets[i][1], NULL));
    }
  if (csv != NULL)
    g_ptr_array_add (args, g_strdup_printf ("--csv=%s", csv));
  if (layer != NULL)
    g_ptr_array_add (args, g_strdup_printf ("--layer=%s", layer));
  if (order != NULL)
    g_ptr_array_add (args, g_strdup_printf ("--order=%s", order));
  g_ptr_array_add (args, NULL);
  return ps_cli_sweep ((int) args->len - 1, (char **) args->pdata);
}
