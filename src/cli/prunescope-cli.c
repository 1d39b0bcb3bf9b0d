/* prunescope-cli: the headless face of the engine */
#define G_LOG_DOMAIN "prunescope-cli"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "ps-cli.h"
#include "ps-h5.h"
#include "ps-probe.h"

gboolean ps_cli_usage_error;

static const struct {
  const char  *name;
  PsCliCommand run;
  const char  *help;
} commands[] = {
  { "sweep",  ps_cli_sweep,  "prune channels one by one, print one CSV row per step" },
  { "repair", ps_cli_repair, "build the repaired network G at a drop X or a channel count" },
  { "eval",   ps_cli_eval,   "classify images, or measure accuracy and attack success on data" },
  { "info",   ps_cli_info,   "describe a model, G or dataset file" },
  { "demo",   ps_cli_demo,   "run the sweep on the demo BadNet (Fashion-MNIST, made on first use)" },
  { "make-demo", ps_cli_make_demo, "train the demo BadNet and write its data in the lab's layout" },
};

int
ps_cli_fail (const GError *error)
{
  /* UTF-8 as it is: g_printerr would turn quotes into "?" under LANG=C, as in scripts. */
  fprintf (stderr, "prunescope-cli: %s\n", error->message);
  return PS_EXIT_INPUT;
}

gboolean
ps_cli_parse (const char *command, const char *params, const char *summary,
              const GOptionEntry *entries, int *argc, char ***argv)
{
  g_autofree char *title = g_strdup_printf ("%s — %s", params, summary);
  g_autoptr (GOptionContext) ctx = g_option_context_new (title);
  g_autoptr (GError) error = NULL;

  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_set_strict_posix (ctx, FALSE);
  if (!g_option_context_parse (ctx, argc, argv, &error))
    {
      g_printerr ("prunescope-cli %s: %s\n", command, error->message);
      ps_cli_usage_error = TRUE;
      return FALSE;
    }
  return TRUE;
}

gboolean
ps_cli_parse_scale (const char *text, double *scale)
{
  char *end = NULL;
  double num, den = 1.0;

  num = g_ascii_strtod (text, &end);
  if (end == text)
    return FALSE;
  if (*end == '/')
    {
      const char *d = end + 1;
      den = g_ascii_strtod (d, &end);
      if (end == d)
        return FALSE;
    }
  if (*end != '\0' || !(num > 0) || !(den > 0) || !isfinite (num / den))
    return FALSE;
  *scale = num / den;
  return TRUE;
}

static PsModel *
with_scale (PsModel *m, const char *scale)
{
  if (m != NULL && scale != NULL)
    {
      m->input_scale = 0;
      ps_cli_parse_scale (scale, &m->input_scale);
    }
  return m;
}

PsModel *
ps_cli_load_model (const char *path, const char *scale, GError **error)
{
  return with_scale (ps_model_load (path, error), scale);
}

PsModel *
ps_cli_load_badnet (const char *path, const char *scale, GError **error)
{
  gboolean was_g = FALSE;
  PsModel *m = ps_repaired_load_b (path, &was_g, error);

  if (m != NULL && was_g)
    g_printerr ("prunescope-cli: %s: a repaired network G; the defense runs on its original B\n", path);
  return with_scale (m, scale);
}

gboolean
ps_cli_progress_wanted (void)
{
  return isatty (STDERR_FILENO);
}

static void
usage (FILE *out)
{
  fprintf (out, "Usage: prunescope-cli COMMAND [OPTION…]\n\n"
                "The pruning defense against backdoored networks (BadNets).\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, commands[i].help);
  fprintf (out, "\nRun “prunescope-cli COMMAND --help” for a command's options.\n");
}

int
main (int argc, char **argv)
{
  int status;

  setlocale (LC_ALL, "");
  g_set_prgname ("prunescope-cli");
  ps_h5_init ();
  if (ps_probe_handle_args (argc, argv, &status))
    return status;

  if (argc < 2)
    {
      usage (stderr);
      return PS_EXIT_USAGE;
    }
  if (g_str_equal (argv[1], "--help") || g_str_equal (argv[1], "-h") || g_str_equal (argv[1], "help"))
    {
      usage (stdout);
      return PS_EXIT_OK;
    }
  if (g_str_equal (argv[1], "--version"))
    {
      printf ("prunescope-cli %s\n", PACKAGE_VERSION);
      return PS_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (g_str_equal (argv[1], commands[i].name))
      {
        g_autofree char *prg = g_strdup_printf ("prunescope-cli %s", argv[1]);
        int rc;

        g_set_prgname (prg);
        rc = commands[i].run (argc - 1, argv + 1);
        return ps_cli_usage_error ? PS_EXIT_USAGE : rc;
      }
  fprintf (stderr, "prunescope-cli: unknown command “%s”\n", argv[1]);
  usage (stderr);
  return PS_EXIT_USAGE;
}
