/* fuzz-h5-edit.c: valid HDF5, hostile content. The input is a list of edits applied with
 * the HDF5 API to one of the seed files (a Keras model, a weights-only file, a G, sets):
 * attributes and datasets replaced by others of any type, rank and declared size (huge
 * chunked ones without storage included), links deleted, dangling or cyclic. Then the
 * file's reader runs. Byte mutations mostly break HDF5's own metadata; these edits reach
 * the checks Prunescope itself must make. */
#define G_LOG_DOMAIN "fuzz-h5-edit"

#include "ps-fuzz.h"
#include "ps-h5.h"

#include <string.h>

typedef enum { READ_MODEL, READ_G, READ_DATASET } Reader;

static const struct {
  const char *file;
  Reader reader;
} templates[] = {
  { "model-keras/small.h5", READ_MODEL },
  { "g/g-pruned-2.h5", READ_G },
  { "model-weights/demo-weights.h5", READ_MODEL },
  { "dataset/rgb-u8.h5", READ_DATASET },
  { "dataset/rgb-float.h5", READ_DATASET },
};

/* Declared sizes worth trying: small, boundaries of int, and absurd. */
static const hsize_t sizes[] = {
  0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 60, 255, 1000, 65536, 100000,
  G_MAXINT32, (hsize_t) G_MAXINT32 + 1, G_MAXUINT32, (hsize_t) G_MAXUINT32 + 5,
  (hsize_t) 1 << 40, (hsize_t) 1 << 62, ((hsize_t) 1 << 62) + 1, ((hsize_t) 1 << 61) + 1,
};

/* Names the readers look for, beside those already in the file. */
static const char *extra_names[] = {
  "model_config", "layer_names", "weight_names", "input_scale", "layer", "layers",
  "channels", "layer_channels", "n_classes", "drop", "fine_tune_epochs", "keras_version",
  "backend", "data", "label", "prunescope", "original", "metrics", "model_weights",
};

typedef struct {
  const uint8_t *p;
  size_t         left;
} Input;

static guint
take (Input *in)
{
  if (in->left == 0)
    return 0;
  in->left--;
  return *in->p++;
}

static GBytes *template_bytes[G_N_ELEMENTS (templates)];

static GBytes *
template_data (guint i)
{
  if (template_bytes[i] == NULL)
    {
      g_autofree char *path = g_build_filename (PS_FUZZ_SEEDS, templates[i].file, NULL);
      g_autoptr (GError) error = NULL;
      char *data;
      gsize len;

      if (!g_file_get_contents (path, &data, &len, &error))
        g_error ("%s (build the fuzz-seeds target first)", error->message);
      template_bytes[i] = g_bytes_new_take (data, len);
    }
  return template_bytes[i];
}

/* Every object path of the file; the root first. */
static herr_t
collect (hid_t obj, const char *name, const H5O_info_t *info, void *data)
{
  g_ptr_array_add (data, g_strdup (name));
  return 0;
}

static char *
pick_name (Input *in, hid_t obj)
{
  H5O_info_t info;
  guint k = take (in);
  char buf[256];

  if (k < 128 && H5Oget_info2 (obj, &info, H5O_INFO_NUM_ATTRS) >= 0 && info.num_attrs > 0
      && H5Aget_name_by_idx (obj, ".", H5_INDEX_NAME, H5_ITER_INC, k % info.num_attrs, buf,
                             sizeof buf, H5P_DEFAULT) > 0)
    return g_strdup (buf);
  return g_strdup (extra_names[k % G_N_ELEMENTS (extra_names)]);
}

static hid_t
pick_type (guint k)
{
  hid_t t;

  switch (k % 9)
    {
    case 0: return H5Tcopy (H5T_IEEE_F32LE);
    case 1: return H5Tcopy (H5T_IEEE_F64LE);
    case 2: return H5Tcopy (H5T_STD_I32LE);
    case 3: return H5Tcopy (H5T_STD_U8LE);
    case 4: return H5Tcopy (H5T_STD_I64BE);
    case 5:
      t = H5Tcopy (H5T_C_S1);
      H5Tset_size (t, H5T_VARIABLE);
      return t;
    case 6:
      t = H5Tcopy (H5T_C_S1);
      H5Tset_size (t, 1 + k / 9 % 8);
      return t;
    case 7:
      t = H5Tcreate (H5T_COMPOUND, 8);
      H5Tinsert (t, "a", 0, H5T_NATIVE_FLOAT);
      H5Tinsert (t, "b", 4, H5T_NATIVE_INT);
      return t;
    default:
      return H5Tcopy (H5T_NATIVE_UINT16);
    }
}

/* A dataspace of rank 0..4 (or null) with declared sizes from the table. */
static hid_t
pick_space (Input *in, hsize_t *npoints)
{
  guint rank = take (in) % 6;
  hsize_t dims[4];

  *npoints = 1;
  if (rank == 5)
    {
      *npoints = 0;
      return H5Screate (H5S_NULL);
    }
  if (rank == 0)
    return H5Screate (H5S_SCALAR);
  for (guint i = 0; i < rank; i++)
    {
      dims[i] = sizes[take (in) % G_N_ELEMENTS (sizes)];
      *npoints = dims[i] != 0 && *npoints > G_MAXUINT64 / dims[i] ? G_MAXUINT64 : *npoints * dims[i];
    }
  return H5Screate_simple (rank, dims, NULL);
}

/* Values from the input: numbers from bytes, strings as short runs of input bytes. */
static void *
fill (Input *in, hid_t type, hsize_t n, char ***strings)
{
  gsize size = H5Tget_size (type);
  guint8 *buf;

  if (H5Tget_class (type) == H5T_STRING && H5Tis_variable_str (type))
    {
      char **v = g_new0 (char *, n + 1);
      for (hsize_t i = 0; i < n; i++)
        {
          guint len = take (in) % 24;
          v[i] = g_strndup ((const char *) in->p, MIN (len, in->left));
          in->p += MIN (len, in->left);
          in->left -= MIN (len, in->left);
        }
      *strings = v;
      return v;
    }
  buf = g_malloc0 (size * n + 1);
  for (gsize i = 0; i < size * n; i++)
    buf[i] = (guint8) take (in);
  return buf;
}

static void
set_attribute (Input *in, hid_t obj)
{
  g_autofree char *name = pick_name (in, obj);
  hid_t type = pick_type (take (in));
  hsize_t n;
  hid_t space = pick_space (in, &n);
  char **strings = NULL;

  if (H5Aexists (obj, name) > 0)
    H5Adelete (obj, name);
  /* Attributes live in the object header: only small ones can be written. */
  if (n <= 512)
    {
      hid_t attr = H5Acreate2 (obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
      void *buf = n > 0 ? fill (in, type, n, &strings) : NULL;
      if (attr >= 0 && buf != NULL)
        H5Awrite (attr, type, buf);
      if (strings != NULL)
        g_strfreev (strings);
      else
        g_free (buf);
      if (attr >= 0)
        H5Aclose (attr);
    }
  H5Sclose (space);
  H5Tclose (type);
}

/* Replaces the object at @path by a dataset; huge ones are chunked and never written. */
static void
set_dataset (Input *in, hid_t file, const char *path)
{
  hid_t type = pick_type (take (in));
  hsize_t n;
  hid_t space = pick_space (in, &n);
  hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
  hid_t dset;
  int rank = H5Sget_simple_extent_ndims (space);

  H5Ldelete (file, path, H5P_DEFAULT);
  if (n > 4096 && rank > 0)
    {
      hsize_t chunk[4] = { 1, 1, 1, 1 };
      H5Pset_chunk (dcpl, rank, chunk);
    }
  dset = H5Dcreate2 (file, path, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset >= 0 && n > 0 && n <= 4096)
    {
      char **strings = NULL;
      void *buf = fill (in, type, n, &strings);
      H5Dwrite (dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      if (strings != NULL)
        g_strfreev (strings);
      else
        g_free (buf);
    }
  if (dset >= 0)
    H5Dclose (dset);
  H5Pclose (dcpl);
  H5Sclose (space);
  H5Tclose (type);
}

static void
edit (Input *in, hid_t file, GPtrArray *objects)
{
  const char *path = objects->pdata[take (in) % objects->len];
  const char *other = objects->pdata[take (in) % objects->len];
  hid_t obj;

  switch (take (in) % 6)
    {
    case 0:
    case 1:
      obj = H5Oopen (file, path, H5P_DEFAULT);
      if (obj >= 0)
        {
          set_attribute (in, obj);
          H5Oclose (obj);
        }
      break;
    case 2:
    case 3:
      if (strcmp (path, ".") != 0)
        set_dataset (in, file, path);
      break;
    case 4:
      if (strcmp (path, ".") != 0)
        H5Ldelete (file, path, H5P_DEFAULT);
      break;
    default:
      /* A soft link that dangles, or a hard link that may make a cycle. */
      if (strcmp (path, ".") != 0 && H5Ldelete (file, path, H5P_DEFAULT) >= 0)
        {
          if (take (in) % 2)
            H5Lcreate_soft ("/nowhere", file, path, H5P_DEFAULT, H5P_DEFAULT);
          else
            H5Lcreate_hard (file, other, file, path, H5P_DEFAULT, H5P_DEFAULT);
        }
      break;
    }
}

static gboolean
apply_edits (const char *path, Input *in)
{
  g_autoptr (GPtrArray) objects = g_ptr_array_new_with_free_func (g_free);
  hid_t file;

  ps_h5_lock ();
  file = H5Fopen (path, H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0)
    {
      ps_h5_unlock ();
      return FALSE;
    }
  H5Ovisit2 (file, H5_INDEX_NAME, H5_ITER_INC, collect, objects, H5O_INFO_BASIC);
  for (int k = 0; k < 8 && in->left >= 4; k++)
    edit (in, file, objects);
  H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  Input in = { data, size };
  guint t = take (&in) % G_N_ELEMENTS (templates);
  GBytes *bytes;
  const char *path;
  g_autoptr (GError) error = NULL;

  ps_fuzz_init ();
  bytes = template_data (t);
  path = ps_fuzz_write (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), "edit.h5");
  if (!apply_edits (path, &in))
    g_error ("cannot open the template %s", templates[t].file);
  ps_fuzz_check_handles ();
  if (templates[t].reader == READ_MODEL)
    {
      g_autoptr (PsModel) m = ps_model_load (path, &error);
      ps_fuzz_check_handles ();
      if (m == NULL)
        ps_fuzz_check_error (error);
      else
        ps_fuzz_exercise_model (m);
    }
  else if (templates[t].reader == READ_G)
    {
      g_autoptr (PsRepaired) g = ps_repaired_load (path, &error);
      ps_fuzz_check_handles ();
      if (g == NULL)
        ps_fuzz_check_error (error);
      else
        ps_fuzz_exercise_repaired (g);
    }
  else
    {
      g_autoptr (PsDataset) ds = ps_dataset_load (path, &error);
      ps_fuzz_check_handles ();
      if (ds == NULL)
        ps_fuzz_check_error (error);
      else
        ps_fuzz_exercise_dataset (ds);
    }
  return 0;
}
