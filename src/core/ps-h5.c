/* ps-h5.c: HDF5 helpers; HDF5 never prints, its error stack becomes a GError */
#define G_LOG_DOMAIN "ps-h5"

#include "ps-h5.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>
#include <string.h>


static GRecMutex h5_lock;

void
ps_h5_lock (void)
{
  g_rec_mutex_lock (&h5_lock);
}

void
ps_h5_unlock (void)
{
  g_rec_mutex_unlock (&h5_lock);
}

void
ps_h5_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      H5open ();
      H5Eset_auto2 (H5E_DEFAULT, NULL, NULL);
      g_once_init_leave (&once, 1);
    }
}

static herr_t
walk_cb (unsigned n, const H5E_error2_t *e, void *data)
{
  char **msg = data;

  /* Walking downward, the last entry is the innermost and most specific. */
  if (e->desc != NULL && e->desc[0] != '\0')
    {
      g_free (*msg);
      *msg = g_strdup (e->desc);
    }
  return 0;
}

void
ps_h5_set_error (GError **error, const char *what)
{
  g_autofree char *msg = NULL;

  H5Ewalk2 (H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &msg);
  H5Eclear2 (H5E_DEFAULT);
  g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s%s%s", what,
               msg ? ": " : "", msg ? msg : "");
}

hid_t
ps_h5_open (const char *path, gboolean writable, GError **error)
{
  hid_t fapl, file;

  ps_h5_init ();
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "no such file");
      return -1;
    }
  fapl = H5Pcreate (H5P_FILE_ACCESS);
  /* Close everything with the file, so an error path never leaks it open. */
  H5Pset_fclose_degree (fapl, H5F_CLOSE_STRONG);
  file = H5Fopen (path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  /* Read the error stack before any other call clears it. */
  if (file < 0)
    ps_h5_set_error (error, "not a readable HDF5 file");
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
      if (H5Lexists (loc, prefix->str, H5P_DEFAULT) <= 0)
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

/* Reads a string attribute of any length kind into a NULL-terminated vector. */
static GStrv
read_strings (hid_t loc, const char *name, gboolean *is_string, GError **error)
{
  hid_t attr, ftype, space, mtype;
  hssize_t n;
  GStrv out = NULL;

  *is_string = TRUE;
  attr = H5Aopen (loc, name, H5P_DEFAULT);
  if (attr < 0)
    {
      H5Eclear2 (H5E_DEFAULT);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing attribute “%s”", name);
      return NULL;
    }
  ftype = H5Aget_type (attr);
  space = H5Aget_space (attr);
  n = H5Sget_simple_extent_npoints (space);

  if (H5Tget_class (ftype) != H5T_STRING)
    {
      *is_string = FALSE;
      if (n == 0) /* Keras writes an empty float array for "no weights" */
        out = g_new0 (char *, 1);
      else
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                     "attribute “%s” is not a string", name);
    }
  else if (H5Tis_variable_str (ftype) > 0)
    {
      char **buf = g_new0 (char *, MAX (n, 1));

      mtype = H5Tcopy (H5T_C_S1);
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
      g_free (buf);
      H5Tclose (mtype);
    }
  else
    {
      size_t len = H5Tget_size (ftype);
      g_autofree char *buf = g_malloc0 (len * MAX (n, 1) + 1);

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
    }
  H5Sclose (space);
  H5Tclose (ftype);
  H5Aclose (attr);
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
  if (!is_string || v[0] == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "attribute “%s” is not a string", name);
      return NULL;
    }
  return g_strdup (v[0]);
}

gboolean
ps_h5_read_attr_double (hid_t loc, const char *name, double *value, GError **error)
{
  hid_t attr = H5Aopen (loc, name, H5P_DEFAULT);
  herr_t r;

  if (attr < 0)
    {
      H5Eclear2 (H5E_DEFAULT);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing attribute “%s”", name);
      return FALSE;
    }
  r = H5Aread (attr, H5T_NATIVE_DOUBLE, value);
  H5Aclose (attr);
  if (r < 0)
    {
      ps_h5_set_error (error, name);
      return FALSE;
    }
  return TRUE;
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

float *
ps_h5_read_floats (hid_t loc, const char *path, int *rank, hsize_t *dims, GError **error)
{
  hid_t dset, space;
  hssize_t n;
  float *data;
  int r;

  if (!ps_h5_exists (loc, path))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing dataset “%s”", path);
      return NULL;
    }
  dset = H5Dopen2 (loc, path, H5P_DEFAULT);
  if (dset < 0)
    {
      ps_h5_set_error (error, path);
      return NULL;
    }
  space = H5Dget_space (dset);
  r = H5Sget_simple_extent_ndims (space);
  if (r < 0 || r > 8)
    {
      H5Sclose (space);
      H5Dclose (dset);
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "dataset “%s” has rank %d", path, r);
      return NULL;
    }
  H5Sget_simple_extent_dims (space, dims, NULL);
  n = H5Sget_simple_extent_npoints (space);
  data = g_try_malloc (MAX (n, 1) * sizeof (float));
  if (data == NULL || H5Dread (dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    {
      ps_h5_set_error (error, path);
      g_clear_pointer (&data, g_free);
    }
  *rank = r;
  H5Sclose (space);
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
  H5Sclose (space);
  if (dset < 0)
    {
      ps_h5_set_error (error, path);
      return FALSE;
    }
  r = H5Dwrite (dset, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose (dset);
  if (r < 0)
    {
      ps_h5_set_error (error, path);
      return FALSE;
    }
  return TRUE;
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
ps_h5_read_ints (hid_t loc, const char *path, gsize *n, GError **error)
{
  hid_t dset, space;
  hssize_t npts;
  int *data;

  if (!ps_h5_exists (loc, path))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing dataset “%s”", path);
      return NULL;
    }
  dset = H5Dopen2 (loc, path, H5P_DEFAULT);
  space = H5Dget_space (dset);
  npts = H5Sget_simple_extent_npoints (space);
  data = g_new0 (int, MAX (npts, 1));
  if (H5Dread (dset, H5T_NATIVE_INT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    {
      ps_h5_set_error (error, path);
      g_clear_pointer (&data, g_free);
    }
  *n = npts;
  H5Sclose (space);
  H5Dclose (dset);
  return data;
}

static hid_t
create_temp (const char *path, char **tmp_path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  hid_t file = -1;

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot write in %s: no such directory", dir);
      return -1;
    }
  /* HDF5 creates the file with the user's umask; EXCL never reuses an existing name. */
  for (int attempt = 0; file < 0 && attempt < 8; attempt++)
    {
      g_free (*tmp_path);
      *tmp_path = g_strdup_printf ("%s/.%s.%08x.tmp", dir, base, g_random_int ());
      file = H5Fcreate (*tmp_path, H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT);
      if (file < 0 && !g_file_test (*tmp_path, G_FILE_TEST_EXISTS))
        break;
    }
  if (file < 0)
    {
      ps_h5_set_error (error, "cannot create HDF5 file");
      g_clear_pointer (tmp_path, g_free);
    }
  return file;
}

gboolean
ps_h5_write_file (const char *path, PsH5Writer writer, gconstpointer data, GError **error)
{
  g_autofree char *tmp = NULL;
  gboolean ok;
  hid_t file;

  ps_h5_init ();
  ps_h5_lock ();
  file = create_temp (path, &tmp, error);
  ok = file >= 0 && writer (file, data, error);
  if (file >= 0 && H5Fclose (file) < 0 && ok)
    {
      ps_h5_set_error (error, "cannot finish writing");
      ok = FALSE;
    }
  ps_h5_unlock ();
  if (ok && g_rename (tmp, path) != 0)
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot rename into place: %s",
                   g_strerror (saved));
      ok = FALSE;
    }
  if (!ok && file >= 0)
    g_unlink (tmp);
  if (!ok)
    g_prefix_error (error, "%s: ", path);
  return ok;
}
