/* ps-cli-sweep.c: "sweep" and "repair" — the pruning defense from the command line */
#define G_LOG_DOMAIN "prunescope-cli"

#include <gio/gio.h>
#include <gio/gunixoutputstream.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "ps-cli.h"
#include "ps-file.h"
#include "ps-onnx.h"
#include "ps-h5.h"
#include "ps-infer.h"
#include "ps-repaired.h"
#include "ps-sweep.h"

typedef struct {
  char *model, *valid, *test, *poisoned, *layer, *order, *scale;
} SweepArgs;

static void
sweep_args_clear (SweepArgs *a)
{
  g_free (a->model);
  g_free (a->valid);
  g_free (a->test);
  g_free (a->poisoned);
  g_free (a->layer);
  g_free (a->order);
  g_free (a->scale);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SweepArgs, sweep_args_clear)

#define SWEEP_ENTRIES(a) \
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &(a).model, "BadNet B (Keras model or weights file)", "FILE" }, \
  { "valid", 'v', 0, G_OPTION_ARG_FILENAME, &(a).valid, "Clean validation data (chooses order and stop)", "FILE" }, \
  { "test", 't', 0, G_OPTION_ARG_FILENAME, &(a).test, "Clean test data (reported)", "FILE" }, \
  { "poisoned", 'p', 0, G_OPTION_ARG_FILENAME, &(a).poisoned, "Poisoned test data (reported)", "FILE" }, \
  { "layer", 'l', 0, G_OPTION_ARG_STRING, &(a).layer, "Layer to prune (default: the last pooling layer; for ONNX the last feature map before pooling or flatten)", "NAME" }, \
  { "order", 0, 0, G_OPTION_ARG_STRING, &(a).order, "increasing (default) or decreasing mean activation", "ORDER" }, \
  { "input-scale", 's', 0, G_OPTION_ARG_STRING, &(a).scale, "Pixel scale: 1 (raw 0..255) or 1/255", "S" }

static gboolean
check_args (const char *cmd, SweepArgs *a)
{
  double s;
  const char *why = NULL;

  if (a->model == NULL || a->valid == NULL)
    why = "--model and --valid are required";
  else if (a->scale && !ps_cli_parse_scale (a->scale, &s))
    why = "--input-scale takes 1, 1/255 or a positive number";
  else if (a->order && !g_str_equal (a->order, "increasing") && !g_str_equal (a->order, "decreasing"))
    why = "--order is increasing or decreasing";
  if (why == NULL)
    return TRUE;
  g_printerr ("prunescope-cli %s: %s\n", cmd, why);
  ps_cli_usage_error = TRUE;
  return FALSE;
}

static void
on_progress (const PsSweepStep *step, double done, gpointer user_data)
{
  if (step != NULL)
    g_printerr ("\r%3.0f%%  step %d: channel %d removed, validation accuracy %.2f %%   ",
                100 * done, step->pruned, step->channel, step->valid_acc);
  else
    g_printerr ("\r%3.0f%%  running B on the data…   ", 100 * done);
}

/* Loads B, opens every set (checking its file and labels before any long pass), then runs
 * each set's first pass while a thread reads its images a chunk ahead: the reading keeps
 * the other core busy, and no set is ever held whole in memory. */
static PsSweep *
run_sweep (SweepArgs *a, PsModel **model_out, GError **error)
{
  g_autoptr (PsModel) m = ps_cli_load_badnet (a->model, a->scale, error);
  PsSweepOptions opt = { a->layer, a->order && g_str_equal (a->order, "decreasing") };
  PsSweepProgress progress = ps_cli_progress_wanted () ? on_progress : NULL;
  const char *paths[PS_N_SETS] = { a->valid, a->test, a->poisoned };
  PsDatasetStream *streams[PS_N_SETS] = { NULL };
  g_autoptr (PsSweep) s = NULL;
  gboolean ok = TRUE;

  if (m == NULL || (s = ps_sweep_new (m, &opt, error)) == NULL)
    {
      if (m != NULL)
        g_prefix_error (error, "%s: ", a->model);
      return NULL;
    }
  for (int k = 0; ok && k < PS_N_SETS; k++)
    if (paths[k] != NULL)
      {
        streams[k] = ps_dataset_stream_open (paths[k], error);
        ok = streams[k] != NULL
             && ps_infer_check_dataset (m, ps_dataset_stream_header (streams[k]), error);
        if (ok)
          ps_sweep_expect_images (s, ps_dataset_stream_header (streams[k])->n);
      }
  for (int k = 0; ok && k < PS_N_SETS; k++)
    if (streams[k] != NULL)
      {
        ok = ps_sweep_add_set_stream (s, k, streams[k], progress, NULL, NULL, error);
        g_clear_pointer (&streams[k], ps_dataset_stream_free);
      }
  for (int k = 0; k < PS_N_SETS; k++)
    g_clear_pointer (&streams[k], ps_dataset_stream_free);
  if (!ok)
    return NULL;
  if (!ps_sweep_finish (s, progress, NULL, NULL, error))
    {
      g_prefix_error (error, "%s: ", a->model);
      return NULL;
    }
  if (progress != NULL)
    g_printerr ("\n");
  *model_out = g_steal_pointer (&m);
  return g_steal_pointer (&s);
}

static gboolean
write_csv (GOutputStream *out, gconstpointer sweep, GError **error)
{
  return ps_sweep_write_csv (sweep, out, error);
}

int
ps_cli_sweep (int argc, char **argv)
{
  g_auto (SweepArgs) a = { 0 };
  g_autofree char *csv = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsSweep) s = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GOutputStream) out = NULL;
  const GOptionEntry entries[] = {
    SWEEP_ENTRIES (a),
    { "csv", 'o', 0, G_OPTION_ARG_FILENAME, &csv, "Write the CSV here instead of standard output", "FILE" },
    { NULL },
  };

  if (!ps_cli_parse ("sweep", "--model B.h5 --valid valid.h5", "the pruning sweep as CSV",
                     entries, &argc, &argv) || !check_args ("sweep", &a))
    return PS_EXIT_USAGE;
  if (csv != NULL && csv[0] == '\0')
    {
      g_printerr ("prunescope-cli sweep: --csv needs a file name\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  s = run_sweep (&a, &m, &error);
  if (s == NULL)
    return ps_cli_fail (error);

  /* A file through the atomic writer: a failed write leaves the old CSV as it was. */
  if (csv != NULL)
    return ps_file_write_stream (csv, write_csv, s, &error) ? PS_EXIT_OK : ps_cli_fail (error);
  out = g_unix_output_stream_new (STDOUT_FILENO, FALSE);
  if (!ps_sweep_write_csv (s, out, &error) || !g_output_stream_close (out, NULL, &error))
    {
      g_prefix_error (&error, "standard output: ");
      return ps_cli_fail (error);
    }
  return PS_EXIT_OK;
}

static void
print_metrics (const PsSweep *s, int k)
{
  const PsSweepStep *r = ps_sweep_get_step (s, k);

  printf ("  validation accuracy of B': %.2f %% (B: %.2f %%)\n", r->valid_acc,
          ps_sweep_get_step (s, 0)->valid_acc);
  if (!isnan (r->test_acc))
    printf ("  clean test accuracy: B' %.2f %%, G %.2f %% (%.2f %% flagged)\n",
            r->test_acc, r->g_test_acc, r->g_clean_flagged);
  if (!isnan (r->asr))
    printf ("  attack success: B' %.2f %%, G %.2f %% (%.2f %% of poisoned inputs flagged)\n",
            r->asr, r->g_asr, r->g_poisoned_flagged);
}

/* An ONNX model's G is one ONNX graph made from the model's own. */
static int
repair_onnx (SweepArgs *a, const PsModel *m, const PsSweep *s, int k, double drop,
             int fine_tune, gboolean b_prime, const char *output)
{
  g_autoptr (GError) error = NULL;
  PsOnnxPruning p = { ps_sweep_layer_name (s), ps_sweep_order (s), k, drop, ps_sweep_get_step (s, k) };

  if (m->onnx == NULL)
    g_set_error (&error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                 "%s: a Keras model's G is saved as HDF5 (-o G.h5), without --b-prime", a->model);
  else if (!g_str_has_suffix (output, ".onnx"))
    g_set_error (&error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                 "%s: an ONNX model's G is saved as ONNX (-o G.onnx)", output);
  else if (fine_tune > 0)
    g_set_error (&error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                 "%s: fine-tuning is for Keras models only", a->model);
  if (error != NULL || !ps_onnx_save_g (m, &p, b_prime, output, &error))
    return ps_cli_fail (error);
  printf ("%s: %s saved: %d of %d channels of “%s” pruned\n", output, b_prime ? "B'" : "G", k,
          ps_sweep_n_channels (s), ps_sweep_layer_name (s));
  print_metrics (s, k);
  return PS_EXIT_OK;
}

int
ps_cli_repair (int argc, char **argv)
{
  g_auto (SweepArgs) a = { 0 };
  g_autofree char *output = NULL;
  double drop = NAN, lr = NAN;
  int pruned = -1, k, fine_tune = 0;
  gboolean b_prime = FALSE;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (PsSweep) s = NULL;
  g_autoptr (GError) error = NULL;
  const GOptionEntry entries[] = {
    SWEEP_ENTRIES (a),
    { "drop", 'x', 0, G_OPTION_ARG_DOUBLE, &drop, "Stop when validation accuracy has dropped X points", "X" },
    { "pruned", 'k', 0, G_OPTION_ARG_INT, &pruned, "Prune exactly K channels", "K" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Where to save G (HDF5, or ONNX for an ONNX model)", "G.h5|G.onnx" },
    { "b-prime", 0, 0, G_OPTION_ARG_NONE, &b_prime, "With an ONNX model: write B' alone, not G", NULL },
    { "fine-tune", 0, 0, G_OPTION_ARG_INT, &fine_tune, "Then fine-tune B' on the validation data (fine-pruning)", "EPOCHS" },
    { "lr", 0, 0, G_OPTION_ARG_DOUBLE, &lr, "Fine-tuning learning rate (default 0.0001)", "L" },
    { NULL },
  };

  if (!ps_cli_parse ("repair", "--model B.h5 --valid valid.h5 (--drop X | --pruned K) -o G.h5",
                     "build the repaired network G", entries, &argc, &argv)
      || !check_args ("repair", &a))
    return PS_EXIT_USAGE;
  if (output != NULL && output[0] == '\0')
    {
      g_printerr ("prunescope-cli repair: -o needs a file name\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  if (output == NULL || isnan (drop) == (pruned < 0) || (!isnan (drop) && !(drop >= 0)))
    {
      g_printerr ("prunescope-cli repair: need -o G.h5 and exactly one of --drop X (X >= 0) or --pruned K\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  if (fine_tune < 0 || (!isnan (lr) && (fine_tune == 0 || !(lr > 0))))
    {
      g_printerr ("prunescope-cli repair: --fine-tune takes a number of epochs, --lr a positive rate with it\n");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  s = run_sweep (&a, &m, &error);
  if (s == NULL)
    return ps_cli_fail (error);

  k = isnan (drop) ? pruned : ps_sweep_stop_step (s, drop);
  if (k < 0 || k >= ps_sweep_n_steps (s))
    {
      if (isnan (drop))
        g_set_error (&error, PS_ERROR, PS_ERROR_MISMATCH, "%s: layer “%s” has only %d channels",
                     a.model, ps_sweep_layer_name (s), ps_sweep_n_channels (s));
      else
        g_set_error (&error, PS_ERROR, PS_ERROR_MISMATCH,
                     "%s: validation accuracy never drops by %g points, even with every channel pruned",
                     a.valid, drop);
      return ps_cli_fail (error);
    }
  if (m->onnx != NULL || b_prime || g_str_has_suffix (output, ".onnx"))
    return repair_onnx (&a, m, s, k, drop, fine_tune, b_prime, output);
  g = ps_repaired_build (m, s, k, drop, &error);
  if (g == NULL)
    {
      g_prefix_error (&error, "%s: ", a.model);
      return ps_cli_fail (error);
    }
  if (fine_tune > 0)
    {
      const char *paths[PS_N_SETS] = { a.valid, a.test, a.poisoned };

      printf ("pruned %d of %d channels of “%s”\n", k, ps_sweep_n_channels (s), ps_sweep_layer_name (s));
      print_metrics (s, k);
      if (!ps_cli_fine_tune (g, paths, fine_tune, lr, &error))
        return ps_cli_fail (error);
    }
  if (!ps_repaired_save (g, output, &error))
    return ps_cli_fail (error);

  printf ("%s: G saved: %d of %d channels of “%s” pruned%s\n", output, k,
          ps_sweep_n_channels (s), ps_sweep_layer_name (s), fine_tune > 0 ? ", then fine-tuned" : "");
  if (fine_tune == 0)
    print_metrics (s, k);
  return PS_EXIT_OK;
}
