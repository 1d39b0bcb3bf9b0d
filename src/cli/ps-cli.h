/* ps-cli.h: what the prunescope-cli commands share */
#pragma once

#include <glib.h>

#include "ps-dataset.h"
#include "ps-model.h"
#include "ps-repaired.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

#define PS_EXIT_OK    0
#define PS_EXIT_INPUT 1
#define PS_EXIT_USAGE 2

typedef int (*PsCliCommand) (int argc, char **argv);

int        ps_cli_sweep      (int argc, char **argv);
int        ps_cli_repair     (int argc, char **argv);
int        ps_cli_eval       (int argc, char **argv);
int        ps_cli_info       (int argc, char **argv);
int        ps_cli_make_demo  (int argc, char **argv);
int        ps_cli_demo       (int argc, char **argv);

/* Prints "prunescope-cli: MESSAGE" and returns PS_EXIT_INPUT. */
int        ps_cli_fail       (const GError  *error);
/* Parses argv with @entries; on bad usage prints the reason and returns FALSE. */
gboolean   ps_cli_parse      (const char    *command,
                              const char    *params,
                              const char    *summary,
                              const GOptionEntry *entries,
                              int           *argc,
                              char        ***argv);
/* "1", "1/255" or a decimal; FALSE on anything else. */
gboolean   ps_cli_parse_scale (const char   *text,
                               double       *scale);
/* Loads a model and applies --input-scale when one was given. */
PsModel   *ps_cli_load_model (const char    *path,
                              const char    *scale,
                              GError       **error);
/* The same for the network to defend: a G file gives its B (and says so on stderr). */
PsModel   *ps_cli_load_badnet (const char   *path,
                               const char   *scale,
                               GError      **error);
gboolean   ps_cli_progress_wanted (void);
/* Fine-tunes the G's B' on the data at @paths (validation required), printing each epoch. */
gboolean   ps_cli_fine_tune  (PsRepaired    *g,
                              const char * const paths[PS_N_SETS],
                              int            epochs,
                              double         lr,
                              GError       **error);

extern gboolean ps_cli_usage_error;

G_END_DECLS
