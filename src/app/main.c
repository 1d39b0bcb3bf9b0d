/* main.c: the prunescope executable */
#define G_LOG_DOMAIN "prunescope"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "ps-application.h"
#include "ps-h5.h"
#include "ps-probe.h"

int
main (int argc, char *argv[])
{
  g_autoptr (PsApplication) app = NULL;
  int status;

  /* Model files are read by a child of ours first: a file that crashes the HDF5 library
   * must not take the window down. */
  ps_h5_init ();
  if (ps_probe_handle_args (argc, argv, &status))
    return status;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_application_name (_("Prunescope"));

  app = ps_application_new (G_APPLICATION_DEFAULT_FLAGS);
  return g_application_run (G_APPLICATION (app), argc, argv);
}
