/* ps-probe.h: a model file is read first by a child process, so that a defect of the HDF5
 * library on damaged metadata (a crash, or an endless loop, inside the library itself)
 * ends the child, not the program: the program reports the file and goes on. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Programs that can act as their own probe call this at start with @argv: when it is a
 * probe request, it does the probe and returns TRUE with *@status set (the caller exits
 * with it). Otherwise it enables probing of model files and returns FALSE. */
gboolean  ps_probe_handle_args (int           argc,
                                char        **argv,
                                int          *status);
gboolean  ps_probe_enabled     (void);
/* Reads @path as a model (or a G) in a child process; TRUE when the child read it. Its
 * error is the child's, or says that the file crashed or stalled the HDF5 library. A
 * path probed before, unchanged since, is not probed again. TRUE at once when probing
 * is not enabled. */
gboolean  ps_probe_model_file  (const char   *path,
                                GError      **error);

G_END_DECLS
