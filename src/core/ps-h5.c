/* ps-h5.c: HDF5 helpers; HDF5 never prints, its error stack becomes a GError */
#define G_LOG_DOMAIN "ps-h5"

#include "ps-h5.h"
#include "ps-file.h"
#include "ps-limits.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <string.h>


static GRecMutex h5_lock;
/* Link access that never follows an external link into another file. */
static hid_t no_external_lapl = H5P_DEFAULT;

void
ps_h5_lock (void)
{
  static GPrivate quiet;

  g_rec_mutex_lock (&h5_lock);
  /* HDF5 prints its error stack unless told not to, which may hold per thread */
  if (g_private_get (&quiet) == NULL)
    {
      ps_h5_init ();
      H5Eset_auto2 (H5E_DEFAULT, NULL, NULL);
      g_private_set (&quiet, GINT_TO_POINTER (1));
    }
}

void
ps_h5_unlock (void)
{
  g_rec_mutex_unlock (&h5_lock);
}

static herr_t
deny_external (const char *parent_file, const char *parent_group, const char *child_file,
               const char *child_obj, unsigned *flags, hid_t fapl, void *data)
{
  return -1;
}

void
ps_h5_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      H5open ();
      H5Eset_auto2 (H5E_DEFAULT, NULL, NULL);
      no_external_lapl = H5Pcreate (H5P_LINK_ACCESS);
      H5Pset_elink_cb (no_external_lapl, deny_external, NULL);
      g_once_init_leave (&once, 1);
    }
}

typedef struct {
  char *innermost;   /* the most specific message outside plugin loading */
  char *reason;      /* what a system call said, a truncation, a missing filter */
} Walk;

/* "truncated file: eof = 204800, sblock->base_addr = 0, stored_eof = 1600000" */
static char *
truncation (const char *desc)
{
  const char *eof = strstr (desc, "eof = "), *stored = strstr (desc, "stored_eof = ");
  g_autofree char *have = NULL, *want = NULL;

  if (eof == NULL || stored == NULL)
    return NULL;
  have = g_format_size (g_ascii_strtoull (eof + 6, NULL, 10));
  want = g_format_size (g_ascii_strtoull (stored + 13, NULL, 10));
  return g_strdup_printf ("the file is truncated: %s of %s", have, want);
}

static char *
reason_of (const char *desc)
{
  const char *p;

  if (g_str_has_prefix (desc, "truncated file"))
    return truncation (desc);
  /* sec2 driver: "..., errno = 28, error message = 'No space left on device', ..." */
  if ((p = strstr (desc, "errno = ")) != NULL)
    return g_strdup (g_strerror ((int) g_ascii_strtoll (p + 8, NULL, 10)));
  if ((p = strstr (desc, "required filter '")) != NULL)
    {
      const char *name = p + 17, *end = strchr (name, '\'');
      g_autofree char *n = g_strndup (name, end ? (gsize) (end - name) : strlen (name));
      return g_strdup_printf ("its data needs the HDF5 filter “%s”, which is not installed", n);
    }
  return NULL;
}

static herr_t
walk_cb (unsigned n, const H5E_error2_t *e, void *data)
{
  Walk *w = data;

  if (e->desc == NULL || e->desc[0] == '\0')
    return 0;
  if (w->reason == NULL)
    w->reason = reason_of (e->desc);
  /* Walking downward, the last entry is the innermost and most specific; a plugin
   * search ("can't open directory /usr/lib/...") only follows a missing filter. */
  if (e->maj_num != H5E_PLUGIN)
    {
      g_free (w->innermost);
      w->innermost = g_strdup (e->desc);
    }
  return 0;
}

/* Sets @error from HDF5's error stack; a clear reason (truncation, errno, a missing
 * filter) replaces @what when @what is only a generic fallback. */
static void
set_error (GError **error, const char *what, gboolean what_is_generic)
{
  Walk w = { NULL, NULL };
  const char *msg;

  H5Ewalk2 (H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
  H5Eclear2 (H5E_DEFAULT);
  msg = w.reason ? w.reason : w.innermost;
  if (w.reason != NULL && what_is_generic)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s", w.reason);
  else
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s%s%s", what,
                 msg ? ": " : "", msg ? msg : "");
  g_free (w.reason);
  g_free (w.innermost);
}

void
ps_h5_set_error (GError **error, const char *what)
{
  set_error (error, what, FALSE);
}

hid_t
ps_h5_open (const char *path, gboolean writable, GError **error)
{
  hid_t fapl, file;

  ps_h5_init ();
  if (!ps_file_check_regular (path, error))
    return -1;
  fapl = H5Pcreate (H5P_FILE_ACCESS);
  /* Close everything with the file, so an error path never leaks it open. */
  H5Pset_fclose_degree (fapl, H5F_CLOSE_STRONG);
  file = H5Fopen (path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  /* Read the error stack before any other call clears it. */
  if (file < 0)
    set_error (error, "not a readable HDF5 file", TRUE);
  H5Pclose (fapl);
  return file;
}

gboolean
ps_h5_exists (hid_t loc, const char *path)
{
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  g_autoptr (GString) prefix = g_string_new (NULL);

  /* H5Lexists needs every intermediate link to exist. */
  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (parts[i][0] == '\0')
        continue;
      if (prefix->len > 0)
        g_string_append_c (prefix, '/');
      g_string_append (prefix, parts[i]);
      if (H5Lexists (loc, prefix->str, no_external_lapl) <= 0)
        {
          H5Eclear2 (H5E_DEFAULT);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
ps_h5_has_attr (hid_t loc, const char *name)
{
  htri_t r = H5Aexists (loc, name);

  H5Eclear2 (H5E_DEFAULT);
  return r > 0;
}

/* What a value of HDF5 class @cls is, for "stored as ..., expected ..." messages. */
static const char *
class_words (H5T_class_t cls)
{
  switch (cls)
    {
    case H5T_INTEGER: return "integers";
    case H5T_FLOAT: return "floating-point numbers";
    case H5T_STRING: return "strings";
    case H5T_COMPOUND: return "compound records";
    case H5T_ENUM: return "enumerations";
    case H5T_ARRAY: return "arrays";
    case H5T_VLEN: return "variable-length sequences";
    case H5T_REFERENCE: return "references";
    case H5T_OPAQUE: return "opaque bytes";
    case H5T_BITFIELD: return "bit fields";
    case H5T_TIME: return "times";
    case H5T_NO_CLASS:
    case H5T_NCLASSES:
    default: return "values of an unknown type";
    }
}

/* Number of elements of a dataspace, or -1 for one HDF5 cannot describe. */
static hssize_t
space_points (hid_t space)
{
  H5S_class_t cls = H5Sget_simple_extent_type (space);

  if (cls == H5S_NULL)
    return 0;
  if (cls != H5S_SCALAR && cls != H5S_SIMPLE)
    return -1;
  return H5Sget_simple_extent_npoints (space);
}

static hid_t
open_attr (hid_t loc, const char *name, GError **error)
{
  hid_t attr = H5Aopen (loc, name, H5P_DEFAULT);

  if (attr < 0)
    {
      H5Eclear2 (H5E_DEFAULT);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing attribute “%s”", name);
    }
  return attr;
}

static GStrv
read_vlen_strings (hid_t attr, hid_t ftype, hid_t space, hssize_t n, const char *name,
                   GError **error)
{
  g_autofree char **buf = g_new0 (char *, MAX (n, 1));
  hid_t mtype = H5Tcopy (H5T_C_S1);
  GStrv out = NULL;

  H5Tset_size (mtype, H5T_VARIABLE);
  H5Tset_cset (mtype, H5Tget_cset (ftype));
  if (H5Aread (attr, mtype, buf) < 0)
    ps_h5_set_error (error, name);
  else
    {
      out = g_new0 (char *, n + 1);
      for (hssize_t i = 0; i < n; i++)
        out[i] = g_strdup (buf[i] ? buf[i] : "");
      H5Dvlen_reclaim (mtype, space, H5P_DEFAULT, buf);
    }
  H5Tclose (mtype);
  return out;
}

static GStrv
read_fixed_strings (hid_t attr, hid_t ftype, hssize_t n, const char *name, GError **error)
{
  size_t len = H5Tget_size (ftype);
  gint64 total = ps_limit_mul (len, MAX (n, 1), PS_LIMIT_CONFIG_BYTES);
  g_autofree char *buf = NULL;
  hid_t mtype;
  GStrv out = NULL;

  if (len == 0 || total < 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                   "attribute “%s” declares %lld strings of %zu bytes (limit %d bytes in all)",
                   name, (long long) n, len, PS_LIMIT_CONFIG_BYTES);
      return NULL;
    }
  buf = g_malloc0 (total + 1);
  mtype = H5Tcopy (H5T_C_S1);
  H5Tset_size (mtype, len);
  H5Tset_strpad (mtype, H5T_STR_NULLPAD);
  if (H5Aread (attr, mtype, buf) < 0)
    ps_h5_set_error (error, name);
  else
    {
      out = g_new0 (char *, n + 1);
      for (hssize_t i = 0; i < n; i++)
        out[i] = g_strndup (buf + i * len, len);
    }
  H5Tclose (mtype);
  return out;
}

/* Reads a string attribute of any length kind into a NULL-terminated vector. */
static GStrv
read_strings (hid_t loc, const char *name, gboolean *is_string, GError **error)
{
  hid_t attr, ftype, space;
  hssize_t n;
  GStrv out = NULL;

  *is_string = TRUE;
  attr = open_attr (loc, name, error);
  if (attr < 0)
    return NULL;
  ftype = H5Aget_type (attr);
  space = H5Aget_space (attr);
  n = space_points (space);

  if (n < 0 || n > PS_LIMIT_NAMES)
    g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                 "attribute “%s” declares %lld strings (limit %d)", name, (long long) n,
                 PS_LIMIT_NAMES);
  else if (H5Tget_class (ftype) != H5T_STRING)
    {
      *is_string = FALSE;
      if (n == 0) /* Keras writes an empty float array for "no weights" */
        out = g_new0 (char *, 1);
      else
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                     "attribute “%s”: stored as %s, expected strings", name,
                     class_words (H5Tget_class (ftype)));
    }
  else if (H5Tis_variable_str (ftype) > 0)
    out = read_vlen_strings (attr, ftype, space, n, name, error);
  else
    out = read_fixed_strings (attr, ftype, n, name, error);
  H5Sclose (space);
  H5Tclose (ftype);
  H5Aclose (attr);
  H5Eclear2 (H5E_DEFAULT);
  return out;
}

GStrv
ps_h5_read_attr_strings (hid_t loc, const char *name, GError **error)
{
  gboolean is_string;

  return read_strings (loc, name, &is_string, error);
}

char *
ps_h5_read_attr_string (hid_t loc, const char *name, GError **error)
{
  gboolean is_string;
  g_auto (GStrv) v = read_strings (loc, name, &is_string, error);

  if (v == NULL)
    return NULL;
  if (!is_string || v[0] == NULL || v[1] != NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "attribute “%s” is %s, expected one string",
                   name, v[0] == NULL ? "empty" : !is_string ? "not a string" : "a list");
      return NULL;
    }
  if (strlen (v[0]) > PS_LIMIT_CONFIG_BYTES)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "attribute “%s” is longer than %d bytes",
                   name, PS_LIMIT_CONFIG_BYTES);
      return NULL;
    }
  return g_strdup (v[0]);
}

gboolean
ps_h5_read_attr_double (hid_t loc, const char *name, double *value, GError **error)
{
  hid_t attr = open_attr (loc, name, error);
  hid_t type, space;
  H5T_class_t cls;
  hssize_t n;
  herr_t r = -1;

  if (attr < 0)
    return FALSE;
  type = H5Aget_type (attr);
  space = H5Aget_space (attr);
  cls = H5Tget_class (type);
  n = space_points (space);
  /* One value, scalar or 1-element: read into one double, never more. */
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "attribute “%s”: stored as %s, expected a number",
                 name, class_words (cls));
  else if (n != 1)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                 "attribute “%s” holds %lld values, expected one number", name, (long long) n);
  else if ((r = H5Aread (attr, H5T_NATIVE_DOUBLE, value)) < 0)
    ps_h5_set_error (error, name);
  H5Sclose (space);
  H5Tclose (type);
  H5Aclose (attr);
  H5Eclear2 (H5E_DEFAULT);
  return r >= 0;
}

static gboolean
write_attr (hid_t loc, const char *name, hid_t type, hid_t space,
            const void *buf, GError **error)
{
  hid_t attr;
  herr_t r;

  if (H5Aexists (loc, name) > 0)
    H5Adelete (loc, name);
  attr = H5Acreate2 (loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr < 0)
    {
      ps_h5_set_error (error, name);
      return FALSE;
    }
  /* An empty attribute has nothing to write (and HDF5 refuses a NULL buffer). */
  r = buf != NULL ? H5Awrite (attr, type, buf) : 0;
  if (r < 0)
    ps_h5_set_error (error, name);
  H5Aclose (attr);
  return r >= 0;
}

gboolean
ps_h5_write_attr_string (hid_t loc, const char *name, const char *value, GError **error)
{
  hid_t type = H5Tcopy (H5T_C_S1);
  hid_t space = H5Screate (H5S_SCALAR);
  gboolean ok;

  /* Variable-length ASCII, as Keras 2.3 writes them: with h5py 2 they read back as bytes,
   * which is what Keras 2.3's loader decodes. */
  H5Tset_size (type, H5T_VARIABLE);
  H5Tset_cset (type, H5T_CSET_ASCII);
  ok = write_attr (loc, name, type, space, &value, error);
  H5Sclose (space);
  H5Tclose (type);
  return ok;
}

gboolean
ps_h5_write_attr_strings (hid_t loc, const char *name,
                          const char * const *values, GError **error)
{
  hsize_t n = values ? g_strv_length ((char **) values) : 0;
  size_t len = 1;
  g_autofree char *buf = NULL;
  hid_t type, space;
  gboolean ok;

  if (n == 0)
    return ps_h5_write_attr_empty (loc, name, error);

  /* Fixed-length, NUL-padded: what h5py makes of a numpy bytes array. */
  for (hsize_t i = 0; i < n; i++)
    len = MAX (len, strlen (values[i]));
  buf = g_malloc0 (n * len);
  for (hsize_t i = 0; i < n; i++)
    memcpy (buf + i * len, values[i], strlen (values[i]));

  type = H5Tcopy (H5T_C_S1);
  H5Tset_size (type, len);
  H5Tset_strpad (type, H5T_STR_NULLPAD);
  space = H5Screate_simple (1, &n, NULL);
  ok = write_attr (loc, name, type, space, buf, error);
  H5Sclose (space);
  H5Tclose (type);
  return ok;
}

gboolean
ps_h5_write_attr_double (hid_t loc, const char *name, double value, GError **error)
{
  hid_t space = H5Screate (H5S_SCALAR);
  gboolean ok = write_attr (loc, name, H5T_IEEE_F64LE, space, &value, error);

  H5Sclose (space);
  return ok;
}

gboolean
ps_h5_write_attr_empty (hid_t loc, const char *name, GError **error)
{
  hsize_t zero = 0;
  hid_t space = H5Screate_simple (1, &zero, NULL);
  gboolean ok = write_attr (loc, name, H5T_IEEE_F64LE, space, NULL, error);

  H5Sclose (space);
  return ok;
}

char *
ps_h5_shape_string (int rank, const hsize_t *dims)
{
  GString *s = g_string_new ("(");

  for (int i = 0; i < rank; i++)
    g_string_append_printf (s, "%s%llu", i ? ", " : "", (unsigned long long) dims[i]);
  g_string_append_c (s, ')');
  return g_string_free (s, FALSE);
}

/* Every link on the way must be one HDF5 can follow inside this file. */
static gboolean
check_links (hid_t loc, const char *path, GError **error)
{
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  g_autoptr (GString) prefix = g_string_new (NULL);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      H5L_info_t info;

      if (parts[i][0] == '\0')
        continue;
      if (prefix->len > 0)
        g_string_append_c (prefix, '/');
      g_string_append (prefix, parts[i]);
      if (H5Lexists (loc, prefix->str, no_external_lapl) <= 0
          || H5Lget_info (loc, prefix->str, &info, no_external_lapl) < 0)
        {
          H5Eclear2 (H5E_DEFAULT);
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing “%s”", path);
          return FALSE;
        }
      if (info.type != H5L_TYPE_HARD && info.type != H5L_TYPE_SOFT)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                       "“%s” is an external link (into another file), which is not followed",
                       prefix->str);
          return FALSE;
        }
      if (H5Oexists_by_name (loc, prefix->str, no_external_lapl) <= 0)
        {
          H5Eclear2 (H5E_DEFAULT);
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s” is a link to nothing", prefix->str);
          return FALSE;
        }
    }
  return TRUE;
}

static hid_t
open_object (hid_t loc, const char *path, H5I_type_t want, GError **error)
{
  hid_t obj;
  H5I_type_t type;

  ps_h5_init ();
  if (!check_links (loc, path, error))
    return -1;
  obj = H5Oopen (loc, path, no_external_lapl);
  if (obj < 0)
    {
      ps_h5_set_error (error, path);
      return -1;
    }
  type = H5Iget_type (obj);
  if (type != want)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s” is a %s, expected a %s", path,
                   type == H5I_GROUP ? "group" : type == H5I_DATASET ? "dataset" : "named type",
                   want == H5I_GROUP ? "group" : "dataset");
      H5Oclose (obj);
      return -1;
    }
  return obj;
}

hid_t
ps_h5_open_group (hid_t loc, const char *path, GError **error)
{
  return open_object (loc, path, H5I_GROUP, error);
}

/* Where the data lives and how it is encoded: only inside this file, with filters
 * this HDF5 has. */
static gboolean
check_storage (hid_t dset, const char *path, GError **error)
{
  hid_t dcpl = H5Dget_create_plist (dset);
  H5D_layout_t layout = H5Pget_layout (dcpl);
  int n_filters = H5Pget_nfilters (dcpl);
  gboolean ok = TRUE;

  if (layout == H5D_VIRTUAL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                   "“%s” is a virtual dataset (its data lives in other files)", path);
      ok = FALSE;
    }
  else if (H5Pget_external_count (dcpl) > 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                   "“%s” keeps its data in external raw files, which are not read", path);
      ok = FALSE;
    }
  for (int i = 0; ok && i < n_filters; i++)
    {
      char name[64] = "";
      unsigned flags, config;
      size_t n_values = 0;
      H5Z_filter_t id = H5Pget_filter2 (dcpl, i, &flags, &n_values, NULL, sizeof name, name, &config);

      if (id < 0 || H5Zfilter_avail (id) <= 0)
        {
          name[sizeof name - 1] = '\0';
          g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED,
                       "“%s” is compressed with the HDF5 filter %d%s%s%s, which is not installed",
                       path, (int) id, name[0] ? " (“" : "", name, name[0] ? "”)" : "");
          ok = FALSE;
        }
    }
  H5Pclose (dcpl);
  H5Eclear2 (H5E_DEFAULT);
  return ok;
}

static gboolean
read_shape (hid_t dset, const char *path, gint64 max_values, PsH5Shape *shape, GError **error)
{
  hid_t space = H5Dget_space (dset);
  H5S_class_t cls = H5Sget_simple_extent_type (space);
  int rank = H5Sget_simple_extent_ndims (space);
  gboolean ok = TRUE;

  shape->rank = 0;
  shape->n = cls == H5S_NULL ? 0 : 1;
  if ((cls != H5S_SIMPLE && cls != H5S_SCALAR && cls != H5S_NULL) || rank < 0
      || rank > PS_H5_MAX_RANK)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s” has %d dimensions", path, rank);
      ok = FALSE;
    }
  else if (cls == H5S_SIMPLE)
    {
      shape->rank = rank;
      H5Sget_simple_extent_dims (space, shape->dims, NULL);
      /* The product in 64 bits, refused as soon as it passes the limit. */
      for (int i = 0; ok && i < rank; i++)
        if ((shape->n = ps_limit_mul (shape->n, shape->dims[i] > G_MAXINT64 ? -1 : (gint64) shape->dims[i],
                                      max_values)) < 0)
          {
            g_autofree char *dims = ps_h5_shape_string (rank, shape->dims);
            g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                         "“%s” declares the shape %s, more than the %lld values accepted",
                         path, dims, (long long) max_values);
            ok = FALSE;
          }
    }
  H5Sclose (space);
  return ok;
}

hid_t
ps_h5_open_dataset (hid_t loc, const char *path, gint64 max_values, PsH5Shape *shape,
                    GError **error)
{
  hid_t dset = open_object (loc, path, H5I_DATASET, error);
  hid_t type;
  gboolean ok;

  if (dset < 0)
    return -1;
  type = H5Dget_type (dset);
  shape->cls = H5Tget_class (type);
  H5Tclose (type);
  ok = check_storage (dset, path, error) && read_shape (dset, path, max_values, shape, error);
  if (ok && shape->cls != H5T_INTEGER && shape->cls != H5T_FLOAT)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s”: stored as %s, expected numbers",
                   path, class_words (shape->cls));
      ok = FALSE;
    }
  /* A dataset declared with no data written reads as its fill value: a hostile file's
   * way to make a reader allocate what the file never paid for. */
  if (ok && shape->n > 0 && H5Dget_storage_size (dset) == 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s” declares %lld values but stores none",
                   path, (long long) shape->n);
      ok = FALSE;
    }
  H5Eclear2 (H5E_DEFAULT);
  if (!ok)
    {
      H5Dclose (dset);
      return -1;
    }
  return dset;
}

static gboolean
same_shape (const PsH5Shape *shape, int rank, const hsize_t *want)
{
  if (shape->rank != rank)
    return FALSE;
  for (int i = 0; i < rank; i++)
    if (shape->dims[i] != want[i])
      return FALSE;
  return TRUE;
}

float *
ps_h5_read_floats (hid_t loc, const char *path, int rank, const hsize_t *want, GError **error)
{
  PsH5Shape shape;
  hid_t dset = ps_h5_open_dataset (loc, path, PS_LIMIT_LAYER_WEIGHTS, &shape, error);
  float *data = NULL;

  if (dset < 0)
    return NULL;
  /* The shape is checked before anything is allocated or read. */
  if (!same_shape (&shape, rank, want))
    {
      g_autofree char *got = ps_h5_shape_string (shape.rank, shape.dims);
      g_autofree char *exp = ps_h5_shape_string (rank, want);
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "“%s” has shape %s, expected %s",
                   path, got, exp);
    }
  else
    {
      data = g_try_malloc (MAX (shape.n, 1) * sizeof (float));
      if (data == NULL)
        g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "“%s”: not enough memory for %lld values",
                     path, (long long) shape.n);
      else if (shape.n > 0
               && H5Dread (dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        {
          ps_h5_set_error (error, path);
          g_clear_pointer (&data, g_free);
        }
    }
  H5Dclose (dset);
  return data;
}

/* Creates every missing group on the way to @path's parent. */
static gboolean
make_parents (hid_t loc, const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  hid_t lcpl;
  hid_t g;

  if (g_str_equal (dir, ".") || g_str_equal (dir, "/") || ps_h5_exists (loc, dir))
    return TRUE;
  lcpl = H5Pcreate (H5P_LINK_CREATE);
  H5Pset_create_intermediate_group (lcpl, 1);
  g = H5Gcreate2 (loc, dir, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose (lcpl);
  if (g < 0)
    {
      ps_h5_set_error (error, dir);
      return FALSE;
    }
  H5Gclose (g);
  return TRUE;
}

static gboolean
write_dataset (hid_t loc, const char *path, int rank, const hsize_t *dims,
               hid_t ftype, hid_t mtype, const void *data, GError **error)
{
  hid_t space, dset;
  herr_t r;

  if (!make_parents (loc, path, error))
    return FALSE;
  space = H5Screate_simple (rank, dims, NULL);
  dset = H5Dcreate2 (loc, path, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  /* Read the error stack before any other call clears it. */
  if (dset < 0)
    ps_h5_set_error (error, path);
  H5Sclose (space);
  if (dset < 0)
    return FALSE;
  r = H5Dwrite (dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (r < 0)
    ps_h5_set_error (error, path);
  H5Dclose (dset);
  return r >= 0;
}

gboolean
ps_h5_write_floats (hid_t loc, const char *path, int rank, const hsize_t *dims,
                    const float *data, GError **error)
{
  return write_dataset (loc, path, rank, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, error);
}

gboolean
ps_h5_write_ints (hid_t loc, const char *path, gsize n, const int *data, GError **error)
{
  hsize_t dims[1] = { n };

  return write_dataset (loc, path, 1, dims, H5T_STD_I32LE, H5T_NATIVE_INT, data, error);
}

int *
ps_h5_read_ints (hid_t loc, const char *path, gint64 max, gsize *n, GError **error)
{
  PsH5Shape shape;
  hid_t dset = ps_h5_open_dataset (loc, path, max, &shape, error);
  int *data = NULL;

  if (dset < 0)
    return NULL;
  if (shape.rank != 1)
    {
      g_autofree char *got = ps_h5_shape_string (shape.rank, shape.dims);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s” has shape %s, expected a list",
                   path, got);
    }
  else if (shape.cls != H5T_INTEGER)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "“%s”: stored as %s, expected integers",
                 path, class_words (shape.cls));
  else
    {
      data = g_new0 (int, MAX (shape.n, 1));
      if (shape.n > 0 && H5Dread (dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        {
          ps_h5_set_error (error, path);
          g_clear_pointer (&data, g_free);
        }
      *n = shape.n;
    }
  H5Dclose (dset);
  return data;
}

typedef struct {
  PsH5Writer    writer;
  gconstpointer data;
} H5Job;

/* HDF5 builds the file in memory (the core driver, no backing store), and the finished
 * image goes to disk by plain writes: a full disk is then errno's reason, and HDF5 never
 * holds a file it failed to flush (it would crash flushing it again at exit). */
static gboolean
write_h5 (const char *tmp_path, gconstpointer data, GError **error)
{
  const H5Job *job = data;
  hid_t fapl = H5Pcreate (H5P_FILE_ACCESS);
  g_autofree guint8 *image = NULL;
  ssize_t size = -1;
  hid_t file;
  gboolean ok;

  H5Pset_fclose_degree (fapl, H5F_CLOSE_STRONG);
  H5Pset_fapl_core (fapl, 1 << 20, FALSE);
  ps_h5_lock ();
  file = H5Fcreate (tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose (fapl);
  if (file < 0)
    set_error (error, "cannot create HDF5 file", TRUE);
  ok = file >= 0 && job->writer (file, job->data, error);
  if (ok && (H5Fflush (file, H5F_SCOPE_GLOBAL) < 0
             || (size = H5Fget_file_image (file, NULL, 0)) < 0
             || (image = g_try_malloc (MAX (size, 1))) == NULL
             || H5Fget_file_image (file, image, size) != size))
    {
      set_error (error, "cannot build the file in memory", TRUE);
      ok = FALSE;
    }
  if (file >= 0)
    H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  return ok && ps_file_write_bytes (tmp_path, image, size, error);
}

gboolean
ps_h5_write_file (const char *path, PsH5Writer writer, gconstpointer data, GError **error)
{
  H5Job job = { writer, data };

  ps_h5_init ();
  return ps_file_write_atomic (path, write_h5, &job, error);
}
