/* ps-h5.h: thin helpers over the HDF5 C API that turn its error stack into GErrors */
#pragma once

#include <glib.h>
#include <hdf5.h>

#include "ps-error.h"

G_BEGIN_DECLS

void      ps_h5_init               (void);
/* Debian's HDF5 is built without thread safety: every entry point that reads or writes
 * a file holds this (recursive) lock, so threads may load and save at the same time. */
void      ps_h5_lock               (void);
void      ps_h5_unlock             (void);

/* Sets @error to "@what: <innermost HDF5 message>" */
void      ps_h5_set_error          (GError     **error,
                                    const char  *what);

hid_t     ps_h5_open               (const char  *path,
                                    gboolean     writable,
                                    GError     **error);
gboolean  ps_h5_exists             (hid_t        loc,
                                    const char  *path);

/* Attributes: strings may be fixed- or variable-length, scalar or 1-D. */
gboolean  ps_h5_has_attr           (hid_t        loc,
                                    const char  *name);
char     *ps_h5_read_attr_string   (hid_t        loc,
                                    const char  *name,
                                    GError     **error);
GStrv     ps_h5_read_attr_strings  (hid_t        loc,
                                    const char  *name,
                                    GError     **error);
gboolean  ps_h5_read_attr_double   (hid_t        loc,
                                    const char  *name,
                                    double      *value,
                                    GError     **error);
gboolean  ps_h5_write_attr_string  (hid_t        loc,
                                    const char  *name,
                                    const char  *value,
                                    GError     **error);
gboolean  ps_h5_write_attr_strings (hid_t        loc,
                                    const char  *name,
                                    const char * const *values,
                                    GError     **error);
gboolean  ps_h5_write_attr_double  (hid_t        loc,
                                    const char  *name,
                                    double       value,
                                    GError     **error);
gboolean  ps_h5_write_attr_empty   (hid_t        loc,
                                    const char  *name,
                                    GError     **error);

/* Reads a whole float dataset; @dims receives its shape (at most 8 dims). */
float    *ps_h5_read_floats        (hid_t        loc,
                                    const char  *path,
                                    int         *rank,
                                    hsize_t     *dims,
                                    GError     **error);
gboolean  ps_h5_write_floats       (hid_t        loc,
                                    const char  *path,
                                    int          rank,
                                    const hsize_t *dims,
                                    const float *data,
                                    GError     **error);
gboolean  ps_h5_write_ints         (hid_t        loc,
                                    const char  *path,
                                    gsize        n,
                                    const int   *data,
                                    GError     **error);
int      *ps_h5_read_ints          (hid_t        loc,
                                    const char  *path,
                                    gsize       *n,
                                    GError     **error);

/* Writes a new file atomically: @writer fills it under a temporary name beside @path,
 * which is renamed over @path only when everything succeeded. Errors start with @path. */
typedef gboolean (*PsH5Writer) (hid_t          file,
                                gconstpointer  data,
                                GError       **error);

gboolean  ps_h5_write_file         (const char  *path,
                                    PsH5Writer   writer,
                                    gconstpointer data,
                                    GError     **error);

G_END_DECLS
