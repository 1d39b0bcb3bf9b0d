/* ps-cli-finetune.c: "repair --fine-tune" — fine-pruning from the command line */
#define G_LOG_DOMAIN "prunescope-cli"

#include <math.h>
#include <stdio.h>

#include "ps-cli.h"
#include "ps-finetune.h"

static void
on_epoch (const PsFinetuneEpoch *e, double done, gpointer user_data)
{
  gboolean tty = GPOINTER_TO_INT (user_data);

  if (e == NULL)
    {
      if (tty)
        g_printerr ("\r%3.0f%%  fine-tuning…   ", 100 * done);
      return;
    }
  if (tty)
    g_printerr ("\r");
  if (e->epoch == 0)
    printf ("fine-tuning B' on the validation data for %d epochs\n  before: ", e->epochs);
  else
    printf ("  epoch %d/%d: loss %.4f, ", e->epoch, e->epochs, e->loss);
  printf ("validation accuracy %.2f %%", e->valid_acc);
  if (!isnan (e->test_acc))
    printf ("; clean test: B' %.2f %%, G %.2f %%", e->test_acc, e->g_test_acc);
  if (!isnan (e->asr))
    printf ("; attack success: B' %.2f %%, G %.2f %%", e->asr, e->g_asr);
  printf ("\n");
  fflush (stdout);
}

gboolean
ps_cli_fine_tune (PsRepaired *g, const char * const paths[PS_N_SETS], int epochs, double lr,
                  GError **error)
{
  PsDataset *sets[PS_N_SETS] = { NULL };
  PsFinetuneOptions opt;
  gboolean ok = TRUE;

  ps_finetune_options_init (&opt);
  opt.epochs = epochs;
  if (!isnan (lr))
    opt.lr = lr;
  for (int k = 0; ok && k < PS_N_SETS; k++)
    if (paths[k] != NULL)
      ok = (sets[k] = ps_dataset_load (paths[k], error)) != NULL;
  ok = ok && ps_finetune (g, (const PsDataset * const *) sets, &opt, on_epoch,
                          GINT_TO_POINTER (ps_cli_progress_wanted ()), NULL, error);
  for (int k = 0; k < PS_N_SETS; k++)
    ps_dataset_free (sets[k]);
  return ok;
}
