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

#define PS_H5_MAX_RANK 8

typedef struct {
  int          rank;
  hsize_t      dims[PS_H5_MAX_RANK];
  gint64       n;      /* values in all */
  H5T_class_t  cls;    /* H5T_INTEGER or H5T_FLOAT */
} PsH5Shape;

/* Opens a group or a dataset, refusing links that dangle or lead into another file and
 * objects of the other kind. */
hid_t     ps_h5_open_group         (hid_t        loc,
                                    const char  *path,
                                    GError     **error);
/* A dataset of numbers with at most @max_values values (else PS_ERROR_LIMIT), rank at
 * most PS_H5_MAX_RANK, stored in this file with filters this HDF5 has, and not declared
 * without any data. Nothing is read yet. */
hid_t     ps_h5_open_dataset       (hid_t        loc,
                                    const char  *path,
                                    gint64       max_values,
                                    PsH5Shape   *shape,
                                    GError     **error);
/* "(3, 3, 16, 32)" */
char     *ps_h5_shape_string       (int          rank,
                                    const hsize_t *dims);
/* Reads a float dataset whose shape must be exactly @want (checked before reading). */
float    *ps_h5_read_floats        (hid_t        loc,
                                    const char  *path,
                                    int          rank,
                                    const hsize_t *want,
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
/* A 1-D integer dataset of at most @max values. */
int      *ps_h5_read_ints          (hid_t        loc,
                                    const char  *path,
                                    gint64       max,
                                    gsize       *n,
                                    GError     **error);

/* Writes a new file atomically (ps_file_write_atomic): @writer fills it under a
 * temporary name beside @path. Errors start with @path and say why (errno's words). */
typedef gboolean (*PsH5Writer) (hid_t          file,
                                gconstpointer  data,
                                GError       **error);

gboolean  ps_h5_write_file         (const char  *path,
                                    PsH5Writer   writer,
                                    gconstpointer data,
                                    GError     **error);

G_END_DECLS
