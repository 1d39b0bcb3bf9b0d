/* test-dataset.c: image sets written here with the raw HDF5 API in the lab's layout
 * (data (N,3,H,W) channels-first, label (N,), optional clean_label (N,)), read back, saved
 * and broken on purpose */
#define G_LOG_DOMAIN "test-dataset"
#define _POSIX_C_SOURCE 200809L /* truncate () */

#include <glib/gstdio.h>
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "ps-dataset.h"
#include "ps-dataset-stream.h"
#include "ps-h5.h"
#include "ps-test-util.h"

/* A whole number 0..255 that differs along every axis. */
static double
pixel (int i, int c, int y, int x)
{
  return (i * 37 + c * 101 + y * 13 + x * 7) % 256;
}

static char *
tmp_path (const char *name)
{
  return g_build_filename (ps_test_tmpdir (), name, NULL);
}

/* Writes @data (doubles, in the order of @dims) as @ftype and, when @n_labels >= 0,
 * a float64 `label` of that length. */
static void
write_h5 (const char *path, hid_t ftype, int rank, const hsize_t *dims, const double *data,
          const double *labels, int n_labels)
{
  hid_t file = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space, dset;

  g_assert_cmpint (file, >=, 0);
  space = H5Screate_simple (rank, dims, NULL);
  dset = H5Dcreate2 (file, "data", ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  g_assert_cmpint (dset, >=, 0);
  g_assert_cmpint (H5Dwrite (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), >=, 0);
  H5Dclose (dset);
  H5Sclose (space);
  if (n_labels >= 0)
    {
      hsize_t n = n_labels;
      space = H5Screate_simple (1, &n, NULL);
      dset = H5Dcreate2 (file, "label", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      g_assert_cmpint (H5Dwrite (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels), >=, 0);
      H5Dclose (dset);
      H5Sclose (space);
    }
  g_assert_cmpint (H5Fclose (file), >=, 0);
}

/* The lab's layout, channels-first: pixel () divided by @div. */
typedef struct {
  int     n, c, h, w;
  double *data;
  double *labels;
} LabSet;

static LabSet *
lab_set_new (int n, int c, int h, int w, double div)
{
  LabSet *s = g_new0 (LabSet, 1);

  *s = (LabSet) { n, c, h, w, g_new (double, (gsize) n * c * h * w), g_new (double, MAX (n, 1)) };
  for (int i = 0; i < n; i++)
    {
      for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++)
            s->data[(((gsize) i * c + ch) * h + y) * w + x] = pixel (i, ch, y, x) / div;
      s->labels[i] = (i * 7) % 11;
    }
  return s;
}

static void
lab_set_free (LabSet *s)
{
  g_free (s->data);
  g_free (s->labels);
  g_free (s);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LabSet, lab_set_free)

static double *
lab_at (const LabSet *s, int i, int c, int y, int x)
{
  return &s->data[(((gsize) i * s->c + c) * s->h + y) * s->w + x];
}

static void
lab_set_write (const LabSet *s, const char *path, hid_t ftype)
{
  hsize_t dims[4] = { s->n, s->c, s->h, s->w };

  write_h5 (path, ftype, 4, dims, s->data, s->labels, s->n);
}

/* Adds dataset @name to the file at @path: @values as @ftype, shape @dims. */
static void
add_h5 (const char *path, const char *name, hid_t ftype, int rank, const hsize_t *dims,
        const double *values)
{
  hid_t file = H5Fopen (path, H5F_ACC_RDWR, H5P_DEFAULT);
  hid_t space = H5Screate_simple (rank, dims, NULL);
  hid_t dset = H5Dcreate2 (file, name, ftype, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);

  g_assert_cmpint (dset, >=, 0);
  g_assert_cmpint (H5Dwrite (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), >=, 0);
  H5Dclose (dset);
  H5Sclose (space);
  g_assert_cmpint (H5Fclose (file), >=, 0);
}

/* Every pixel of images @from..n-1 (NHWC in memory) against the channels-first source,
 * as the nearest float where the source is not a float32 number. */
static void
assert_pixels (const PsDataset *ds, const LabSet *s, int from)
{
  g_assert_cmpint (ds->n, ==, s->n);
  g_assert_cmpint (ds->h, ==, s->h);
  g_assert_cmpint (ds->w, ==, s->w);
  g_assert_cmpint (ds->c, ==, s->c);
  g_assert_true ((ds->u8 == NULL) != (ds->f32 == NULL));
  for (int i = from; i < s->n; i++)
    {
      g_assert_cmpint (ds->labels[i], ==, (int) s->labels[i]);
      for (int y = 0; y < s->h; y++)
        for (int x = 0; x < s->w; x++)
          for (int c = 0; c < s->c; c++)
            {
              gsize k = (((gsize) i * s->h + y) * s->w + x) * s->c + c;
              float want = (float) *lab_at (s, i, c, y, x);
              float got = ds->u8 ? ds->u8[k] : ds->f32[k];

              if (got != want)
                g_test_message ("image %d (y %d, x %d, c %d): %g, expected %g", i, y, x, c, got, want);
              g_assert_cmpfloat (got, ==, want);
            }
    }
}

static PsDataset *
load_ok (const char *path)
{
  g_autoptr (GError) error = NULL;
  PsDataset *ds = ps_dataset_load (path, &error);

  g_assert_no_error (error);
  g_assert_nonnull (ds);
  return ds;
}

/* ---- storage and layout ---- */

static void
check_storage (const char *name, hid_t ftype, double div, gboolean want_u8)
{
  g_autofree char *path = tmp_path (name);
  g_autoptr (LabSet) s = lab_set_new (5, 3, 6, 4, div);
  g_autoptr (PsDataset) ds = NULL;

  lab_set_write (s, path, ftype);
  ds = load_ok (path);
  g_assert_cmpstr (ds->path, ==, path);
  if (want_u8)
    g_assert_nonnull (ds->u8);
  else
    g_assert_nonnull (ds->f32);
  assert_pixels (ds, s, 0);
}

static void
test_float64_whole (void)
{
  check_storage ("f64-whole.h5", H5T_IEEE_F64LE, 1, TRUE);
}

static void
test_float64_fraction (void)
{
  /* thirds are not even float32 numbers: kept as the nearest float */
  check_storage ("f64-fraction.h5", H5T_IEEE_F64LE, 3, FALSE);
}

static void
test_float32_whole (void)
{
  check_storage ("f32-whole.h5", H5T_IEEE_F32LE, 1, TRUE);
}

static void
test_float32_fraction (void)
{
  check_storage ("f32-fraction.h5", H5T_IEEE_F32LE, 4, FALSE);
}

static void
test_uint8 (void)
{
  g_autofree char *hwc_path = tmp_path ("u8-hwc.h5");
  g_autofree char *chw_path = tmp_path ("u8-chw.h5");
  g_autoptr (LabSet) s = lab_set_new (4, 3, 5, 2, 1);
  g_autofree double *hwc = g_new (double, 4 * 5 * 2 * 3);
  hsize_t dims[4] = { 4, 5, 2, 3 };
  g_autoptr (PsDataset) a = NULL;
  g_autoptr (PsDataset) b = NULL;

  check_storage ("u8.h5", H5T_STD_U8LE, 1, TRUE);
  /* the same bytes channels-last: read straight through */
  for (int i = 0; i < 4; i++)
    for (int y = 0; y < 5; y++)
      for (int x = 0; x < 2; x++)
        for (int c = 0; c < 3; c++)
          hwc[((i * 5 + y) * 2 + x) * 3 + c] = *lab_at (s, i, c, y, x);
  write_h5 (hwc_path, H5T_STD_U8LE, 4, dims, hwc, s->labels, 4);
  lab_set_write (s, chw_path, H5T_STD_U8LE);
  a = load_ok (hwc_path);
  b = load_ok (chw_path);
  g_assert_nonnull (a->u8);
  assert_pixels (a, s, 0);
  g_assert_cmpmem (a->u8, 4 * 5 * 2 * 3, b->u8, 4 * 5 * 2 * 3);
}

static void
test_out_of_range (void)
{
  const double odd[] = { 256, -1, 1000, -0.5 };

  /* whole numbers outside 0..255 (and one below zero) need float storage */
  for (guint k = 0; k < G_N_ELEMENTS (odd); k++)
    {
      g_autofree char *path = tmp_path ("range.h5");
      g_autoptr (LabSet) s = lab_set_new (3, 3, 4, 5, 1);
      g_autoptr (PsDataset) ds = NULL;

      *lab_at (s, 2, 1, 3, 4) = odd[k];
      lab_set_write (s, path, H5T_IEEE_F64LE);
      ds = load_ok (path);
      g_assert_nonnull (ds->f32);
      assert_pixels (ds, s, 0);
    }
}

static void
test_transpose (void)
{
  g_autofree char *path = tmp_path ("transpose.h5");
  g_autoptr (LabSet) s = lab_set_new (2, 3, 4, 5, 1);
  g_autoptr (PsDataset) ds = NULL;
  const int img = 4 * 5 * 3;
  int total = 0;

  /* two marked pixels in an otherwise black set, on an H != W image */
  memset (s->data, 0, sizeof (double) * 2 * img);
  *lab_at (s, 1, 2, 3, 4) = 250; /* image 1, blue, bottom right */
  *lab_at (s, 0, 0, 1, 3) = 7;   /* image 0, red, row 1, column 3 */
  lab_set_write (s, path, H5T_IEEE_F64LE);
  ds = load_ok (path);
  g_assert_nonnull (ds->u8);
  g_assert_cmpint (ds->h, ==, 4);
  g_assert_cmpint (ds->w, ==, 5);
  g_assert_cmpint (ds->c, ==, 3);
  g_assert_cmpint (ds->u8[img + (3 * 5 + 4) * 3 + 2], ==, 250);
  g_assert_cmpint (ds->u8[(1 * 5 + 3) * 3 + 0], ==, 7);
  for (int k = 0; k < 2 * img; k++)
    total += ds->u8[k];
  g_assert_cmpint (total, ==, 257);
}

static void
test_grayscale (void)
{
  g_autofree char *path = tmp_path ("gray.h5");
  g_autoptr (LabSet) s = lab_set_new (4, 1, 5, 6, 1);
  g_autoptr (PsDataset) ds = NULL;

  lab_set_write (s, path, H5T_IEEE_F32LE);
  ds = load_ok (path);
  g_assert_cmpint (ds->c, ==, 1);
  assert_pixels (ds, s, 0);
}

static void
test_chunks (void)
{
  g_autofree char *path = tmp_path ("chunks.h5");
  g_autoptr (LabSet) s = lab_set_new (300, 3, 5, 4, 1);
  g_autoptr (PsDataset) ds = NULL;

  /* 300 images cross the 256-image read chunk */
  lab_set_write (s, path, H5T_IEEE_F64LE);
  ds = load_ok (path);
  g_assert_nonnull (ds->u8);
  assert_pixels (ds, s, 0);
  for (int i = 254; i < 300; i++)
    g_assert_cmpint (ds->labels[i], ==, (i * 7) % 11);
}

static void
test_chunks_late_fraction (void)
{
  g_autofree char *path = tmp_path ("late-fraction.h5");
  g_autoptr (LabSet) s = lab_set_new (300, 3, 5, 4, 1);
  g_autoptr (PsDataset) ds = NULL;

  /* one fraction in the last image: the images already stored 8-bit move to float */
  *lab_at (s, 299, 2, 4, 3) = 12.5;
  lab_set_write (s, path, H5T_IEEE_F32LE);
  ds = load_ok (path);
  g_assert_nonnull (ds->f32);
  assert_pixels (ds, s, 0);
}

/* ---- batches ---- */

static void
check_batches (const PsDataset *ds, const LabSet *s)
{
  const gsize img = (gsize) s->h * s->w * s->c;
  const double scale = 1.0 / 255;
  const int idx[] = { 4, 0, 4, 2 };
  g_autofree float *out = g_new (float, img * 4);

  ps_dataset_get_batch (ds, 2, 3, scale, out);
  for (int b = 0; b < 3; b++)
    for (int y = 0; y < s->h; y++)
      for (int x = 0; x < s->w; x++)
        for (int c = 0; c < s->c; c++)
          g_assert_cmpfloat_with_epsilon (out[b * img + ((gsize) y * s->w + x) * s->c + c],
                                          *lab_at (s, 2 + b, c, y, x) * scale, 1e-6);

  ps_dataset_gather (ds, idx, G_N_ELEMENTS (idx), 2.0, out);
  for (guint b = 0; b < G_N_ELEMENTS (idx); b++)
    for (int y = 0; y < s->h; y++)
      for (int x = 0; x < s->w; x++)
        for (int c = 0; c < s->c; c++)
          g_assert_cmpfloat (out[b * img + ((gsize) y * s->w + x) * s->c + c], ==,
                             (float) (*lab_at (s, idx[b], c, y, x) * 2.0));
}

static void
test_batch_scale (void)
{
  g_autofree char *p8 = tmp_path ("batch-u8.h5");
  g_autofree char *pf = tmp_path ("batch-f32.h5");
  g_autoptr (LabSet) whole = lab_set_new (5, 3, 3, 4, 1);
  g_autoptr (LabSet) quarters = lab_set_new (5, 3, 3, 4, 4);
  g_autoptr (PsDataset) d8 = NULL;
  g_autoptr (PsDataset) df = NULL;

  lab_set_write (whole, p8, H5T_IEEE_F64LE);
  lab_set_write (quarters, pf, H5T_IEEE_F64LE);
  d8 = load_ok (p8);
  df = load_ok (pf);
  g_assert_nonnull (d8->u8);
  g_assert_nonnull (df->f32);
  check_batches (d8, whole);
  check_batches (df, quarters);
}

/* A sample keeps evenly spaced images with their place in the set, also when it is taken
 * from another sample; a header keeps shape and labels, no pixels. */
static void
test_sample_and_header (void)
{
  g_autoptr (LabSet) quarters = lab_set_new (10, 3, 2, 4, 4);
  g_autofree char *pf = tmp_path ("sample-f32.h5");
  g_autoptr (PsDataset) ds = NULL;
  g_autoptr (PsDataset) s = NULL;
  g_autoptr (PsDataset) ss = NULL;
  g_autoptr (PsDataset) h = NULL;
  gsize img;

  lab_set_write (quarters, pf, H5T_IEEE_F64LE);
  ds = load_ok (pf);
  img = (gsize) ds->h * ds->w * ds->c;
  g_assert_null (ds->index);
  s = ps_dataset_sample (ds, 4);
  g_assert_cmpint (s->n, ==, 4);
  g_assert_nonnull (s->f32);
  for (int i = 0; i < s->n; i++)
    {
      g_assert_cmpint (s->index[i], ==, i * 10 / 4);
      g_assert_cmpint (s->labels[i], ==, ds->labels[s->index[i]]);
      g_assert_cmpmem (s->f32 + i * img, img * sizeof (float), ds->f32 + s->index[i] * img, img * sizeof (float));
    }
  ss = ps_dataset_sample (s, 3);
  g_assert_cmpint (ss->n, ==, 3);
  for (int i = 0; i < ss->n; i++)
    {
      g_assert_cmpint (ss->index[i], ==, s->index[i * 4 / 3]);
      g_assert_cmpint (ss->labels[i], ==, ds->labels[ss->index[i]]);
    }
  /* asking for more than there is gives the whole set, in order */
  g_clear_pointer (&s, ps_dataset_free);
  s = ps_dataset_sample (ds, 50);
  g_assert_cmpint (s->n, ==, 10);
  for (int i = 0; i < s->n; i++)
    g_assert_cmpint (s->index[i], ==, i);

  h = ps_dataset_header (ds);
  g_assert_null (h->u8);
  g_assert_null (h->f32);
  g_assert_cmpint (h->n, ==, 10);
  g_assert_cmpint (h->h * h->w * h->c, ==, (int) img);
  g_assert_cmpmem (h->labels, 10 * sizeof (int), ds->labels, 10 * sizeof (int));
  g_assert_cmpstr (h->path, ==, ds->path);
}

/* ---- saving ---- */

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

/* The names in @dir, sorted, joined by spaces. */
static char *
list_dir (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  g_assert_nonnull (d);
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static char *
fresh_dir (const char *name)
{
  char *dir = tmp_path (name);

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  return dir;
}

/* What is on disk, read plainly: shape (N,C,H,W), element type, pixels and labels. */
static void
assert_saved_layout (const char *path, const PsDataset *ds)
{
  const gsize img = (gsize) ds->h * ds->w * ds->c;
  hid_t file = H5Fopen (path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dset, space, type;
  hsize_t dims[4], ldims[1];
  g_autofree double *data = g_new (double, img * ds->n);
  g_autofree double *labels = g_new (double, ds->n);

  g_assert_cmpint (file, >=, 0);
  dset = H5Dopen2 (file, "data", H5P_DEFAULT);
  space = H5Dget_space (dset);
  g_assert_cmpint (H5Sget_simple_extent_ndims (space), ==, 4);
  H5Sget_simple_extent_dims (space, dims, NULL);
  g_assert_cmpuint (dims[0], ==, ds->n);
  g_assert_cmpuint (dims[1], ==, ds->c);
  g_assert_cmpuint (dims[2], ==, ds->h);
  g_assert_cmpuint (dims[3], ==, ds->w);
  type = H5Dget_type (dset);
  g_assert_cmpint (H5Tget_class (type), ==, ds->u8 ? H5T_INTEGER : H5T_FLOAT);
  g_assert_cmpuint (H5Tget_size (type), ==, ds->u8 ? 1 : 4);
  g_assert_cmpint (H5Dread (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), >=, 0);
  H5Tclose (type);
  H5Sclose (space);
  H5Dclose (dset);
  for (int i = 0; i < ds->n; i++)
    for (int c = 0; c < ds->c; c++)
      for (int y = 0; y < ds->h; y++)
        for (int x = 0; x < ds->w; x++)
          {
            gsize k = i * img + ((gsize) y * ds->w + x) * ds->c + c;
            double want = ds->u8 ? ds->u8[k] : ds->f32[k];
            g_assert_cmpfloat (data[(((gsize) i * ds->c + c) * ds->h + y) * ds->w + x], ==, want);
          }

  dset = H5Dopen2 (file, "label", H5P_DEFAULT);
  space = H5Dget_space (dset);
  g_assert_cmpint (H5Sget_simple_extent_ndims (space), ==, 1);
  H5Sget_simple_extent_dims (space, ldims, NULL);
  g_assert_cmpuint (ldims[0], ==, ds->n);
  g_assert_cmpint (H5Dread (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels), >=, 0);
  for (int i = 0; i < ds->n; i++)
    g_assert_cmpfloat (labels[i], ==, ds->labels[i]);
  H5Sclose (space);
  H5Dclose (dset);
  H5Fclose (file);
}

static void
assert_same_dataset (const PsDataset *a, const PsDataset *b)
{
  gsize px = (gsize) a->n * a->h * a->w * a->c;

  g_assert_cmpint (a->n, ==, b->n);
  g_assert_cmpint (a->h, ==, b->h);
  g_assert_cmpint (a->w, ==, b->w);
  g_assert_cmpint (a->c, ==, b->c);
  g_assert_true ((a->u8 != NULL) == (b->u8 != NULL));
  if (a->u8 != NULL)
    g_assert_cmpmem (a->u8, px, b->u8, px);
  else
    g_assert_cmpmem (a->f32, px * sizeof (float), b->f32, px * sizeof (float));
  g_assert_cmpmem (a->labels, a->n * sizeof (int), b->labels, b->n * sizeof (int));
}

static void
check_round_trip (const PsDataset *ds, const char *name)
{
  g_autofree char *dir = fresh_dir (name);
  g_autofree char *path = g_build_filename (dir, "set.h5", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) back = NULL;
  g_autofree char *files = NULL;

  g_assert_true (ps_dataset_save (ds, path, &error));
  g_assert_no_error (error);
  files = list_dir (dir);
  g_assert_cmpstr (files, ==, "set.h5");
  assert_saved_layout (path, ds);
  back = load_ok (path);
  assert_same_dataset (ds, back);
}

static gpointer
take_h5_lock (gpointer data)
{
  ps_h5_lock ();
  ps_h5_unlock ();
  return GINT_TO_POINTER (1);
}

/* A cancelled load stops between chunks, says so, and leaves HDF5 free for every thread. */
static void
test_load_cancelled (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 600, 8);
  g_autofree char *dir = fresh_dir ("cancel");
  g_autofree char *path = g_build_filename (dir, "set.h5", NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) back = NULL;
  GThread *thread;

  g_assert_true (ps_dataset_save (ds, path, &error));
  g_cancellable_cancel (cancellable);
  back = ps_dataset_load_cancellable (path, cancellable, &error);
  g_assert_null (back);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  thread = g_thread_new ("h5-lock", take_h5_lock, NULL);
  g_assert_cmpint (GPOINTER_TO_INT (g_thread_join (thread)), ==, 1);
  g_clear_error (&error);
  back = ps_dataset_load_cancellable (path, NULL, &error);
  g_assert_no_error (error);
  assert_same_dataset (ds, back);
}

static void
test_save_round_trip_u8 (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 300, 8);

  check_round_trip (ds, "trip-u8");
}

static int
deflate_filters (const char *path)
{
  hid_t file = H5Fopen (path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dset = H5Dopen2 (file, "data", H5P_DEFAULT);
  hid_t dcpl = H5Dget_create_plist (dset);
  int n = H5Pget_nfilters (dcpl), deflate = 0;

  for (int i = 0; i < n; i++)
    {
      unsigned flags;
      size_t nv = 0;
      deflate += H5Pget_filter2 (dcpl, i, &flags, &nv, NULL, 0, NULL, NULL) == H5Z_FILTER_DEFLATE;
    }
  H5Pclose (dcpl);
  H5Dclose (dset);
  H5Fclose (file);
  return deflate;
}

/* Saved plain or deflated, the same images come back; only the file differs. */
static void
test_save_uncompressed (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 200, 9);
  g_autofree char *plain = tmp_path ("plain.h5");
  g_autofree char *packed = tmp_path ("packed.h5");
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) a = NULL;
  g_autoptr (PsDataset) b = NULL;
  gsize img = (gsize) ds->h * ds->w * ds->c;

  g_assert_true (ps_dataset_save_compressed (ds, plain, FALSE, &error));
  g_assert_true (ps_dataset_save (ds, packed, &error));
  g_assert_cmpint (deflate_filters (plain), ==, 0);
  g_assert_cmpint (deflate_filters (packed), ==, 1);
  a = load_ok (plain);
  b = load_ok (packed);
  g_assert_nonnull (a->u8);
  g_assert_cmpmem (a->u8, img * ds->n, ds->u8, img * ds->n);
  g_assert_cmpmem (b->u8, img * ds->n, ds->u8, img * ds->n);
  g_assert_cmpmem (a->labels, sizeof (int) * ds->n, ds->labels, sizeof (int) * ds->n);
}

static void
test_save_round_trip_f32 (void)
{
  g_autofree char *path = tmp_path ("trip-src.h5");
  g_autoptr (LabSet) s = lab_set_new (7, 3, 5, 3, 3);
  g_autoptr (PsDataset) ds = NULL;

  lab_set_write (s, path, H5T_IEEE_F64LE);
  ds = load_ok (path);
  g_assert_nonnull (ds->f32);
  check_round_trip (ds, "trip-f32");
}

static void
test_save_no_directory (void)
{
  g_autofree char *dir = fresh_dir ("save-nodir");
  g_autofree char *path = g_build_filename (dir, "missing", "set.h5", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 3, 8);
  g_autoptr (GError) error = NULL;
  g_autofree char *files = NULL;

  g_assert_false (ps_dataset_save (ds, path, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_null (strchr (error->message, '\n'));
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
  files = list_dir (dir);
  g_assert_cmpstr (files, ==, "");
}

static void
test_save_replace (void)
{
  g_autofree char *dir = fresh_dir ("save-replace");
  g_autofree char *path = g_build_filename (dir, "set.h5", NULL);
  g_autofree char *blocker = g_build_filename (dir, "taken.h5", NULL);
  g_autofree char *inside = g_build_filename (blocker, "keep", NULL);
  g_autoptr (PsModel) m = ps_test_small_model (1, 4);
  g_autoptr (PsDataset) old = ps_test_random_data (m, 20, 1);
  g_autoptr (PsDataset) ds = ps_test_random_data (m, 9, 2);
  g_autoptr (PsDataset) back = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree char *files = NULL;

  g_assert_true (ps_dataset_save (old, path, &error));
  g_assert_true (ps_dataset_save (ds, path, &error));
  g_assert_no_error (error);
  back = load_ok (path);
  assert_same_dataset (ds, back);
  files = list_dir (dir);
  g_assert_cmpstr (files, ==, "set.h5");

  /* A save that fails at the last moment (the name is a non-empty directory) leaves
   * what was there and no temporary file. */
  g_assert_cmpint (g_mkdir (blocker, 0700), ==, 0);
  g_assert_true (g_file_set_contents (inside, "x", -1, NULL));
  g_assert_false (ps_dataset_save (ds, blocker, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, blocker));
  g_clear_error (&error);
  g_free (files);
  files = list_dir (dir);
  g_assert_cmpstr (files, ==, "set.h5 taken.h5");
  g_assert_true (g_file_test (inside, G_FILE_TEST_IS_REGULAR));
}

/* ---- streams: a set read a chunk at a time ---- */

/* @path through a stream, read in pieces of several sizes and at several scales, gives
 * the very bits the loaded set's batches give; its header is the loaded set's. */
static void
assert_stream_same (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) ds = load_ok (path);
  g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (path, &error);
  const PsDataset *h;
  const gsize img = (gsize) ds->h * ds->w * ds->c;
  const double scales[] = { 1.0, 1.0 / 255, 0.3 };
  const int pieces[] = { 1, 7, 64, 256, 300, ds->n };
  g_autofree float *want = g_new (float, img * ds->n);
  g_autofree float *got = g_new (float, img * ds->n);

  g_assert_no_error (error);
  h = ps_dataset_stream_header (st);
  g_assert_cmpint (h->n, ==, ds->n);
  g_assert_cmpint (h->h, ==, ds->h);
  g_assert_cmpint (h->w, ==, ds->w);
  g_assert_cmpint (h->c, ==, ds->c);
  g_assert_null (h->u8);
  g_assert_null (h->f32);
  g_assert_cmpstr (h->path, ==, path);
  g_assert_cmpmem (h->labels, sizeof (int) * h->n, ds->labels, sizeof (int) * ds->n);
  g_assert_true ((h->clean_labels == NULL) == (ds->clean_labels == NULL));
  if (h->clean_labels != NULL)
    g_assert_cmpmem (h->clean_labels, sizeof (int) * h->n, ds->clean_labels, sizeof (int) * ds->n);
  /* a sample read through the stream: the loaded set's sample, storage and bits */
  for (int count = 1; count <= MIN (ds->n, 300); count = count * 7 + 2)
    {
      g_autoptr (PsDataset) a = ps_dataset_sample (ds, count);
      g_autoptr (PsDataset) b = ps_dataset_stream_sample (st, count, &error);

      g_assert_no_error (error);
      g_assert_cmpint (b->n, ==, a->n);
      g_assert_cmpmem (b->labels, sizeof (int) * b->n, a->labels, sizeof (int) * a->n);
      g_assert_cmpmem (b->index, sizeof (int) * b->n, a->index, sizeof (int) * a->n);
      g_assert_true ((b->clean_labels == NULL) == (a->clean_labels == NULL));
      if (a->clean_labels != NULL)
        g_assert_cmpmem (b->clean_labels, sizeof (int) * b->n, a->clean_labels, sizeof (int) * a->n);
      /* the same values; bytes for a set of whole numbers read 0..255 (the storage is the
       * sample's own choice: a fraction outside it makes the loaded set floats) */
      {
        g_autofree float *va = g_new (float, img * MAX (a->n, 1));
        g_autofree float *vb = g_new (float, img * MAX (b->n, 1));

        ps_dataset_get_batch (a, 0, a->n, 1.0, va);
        ps_dataset_get_batch (b, 0, b->n, 1.0, vb);
        g_assert_cmpmem (vb, sizeof (float) * img * b->n, va, sizeof (float) * img * a->n);
        if (a->u8 != NULL && count > 3)
          g_assert_nonnull (b->u8);
      }
      g_assert_cmpstr (b->path, ==, path);
    }
  for (guint k = 0; k < G_N_ELEMENTS (scales); k++)
    {
      ps_dataset_get_batch (ds, 0, ds->n, scales[k], want);
      for (guint p = 0; p < G_N_ELEMENTS (pieces); p++)
        {
          memset (got, 0xff, sizeof (float) * img * ds->n);
          for (int start = 0; start < ds->n; start += pieces[p])
            {
              g_assert_true (ps_dataset_stream_read (st, start, MIN (pieces[p], ds->n - start),
                                                     scales[k], got + start * img, &error));
              g_assert_no_error (error);
            }
          g_assert_cmpmem (got, sizeof (float) * img * ds->n, want, sizeof (float) * img * ds->n);
        }
      /* in any order: the last image, then the first */
      g_assert_true (ps_dataset_stream_read (st, ds->n - 1, 1, scales[k], got, &error));
      g_assert_cmpmem (got, sizeof (float) * img, want + (ds->n - 1) * img, sizeof (float) * img);
      g_assert_true (ps_dataset_stream_read (st, 0, 1, scales[k], got, &error));
      g_assert_cmpmem (got, sizeof (float) * img, want, sizeof (float) * img);
      /* as channel planes: the same values, each image channel by channel */
      {
        const gsize hw = (gsize) ds->h * ds->w;
        g_autofree float *planes = g_new (float, img * ds->n);

        memset (planes, 0xff, sizeof (float) * img * ds->n);
        for (int start = 0; start < ds->n; start += 7)
          g_assert_true (ps_dataset_stream_read_planar (st, start, MIN (7, ds->n - start), scales[k],
                                                        planes + start * img, &error));
        for (int i = 0; i < ds->n; i++)
          for (gsize q = 0; q < hw; q++)
            for (int c = 0; c < ds->c; c++)
              g_assert_cmpmem (&planes[i * img + c * hw + q], sizeof (float),
                               &want[i * img + q * ds->c + c], sizeof (float));
        /* a file of bytes read as they are, converted later (the sweep's reader and
         * workers): the same bits, either order */
        if (ps_dataset_stream_is_u8 (st))
          {
            g_autofree guint8 *bytes = g_new (guint8, img * ds->n);
            g_autofree float *conv = g_new (float, img * ds->n);

            for (int start = 0; start < ds->n; start += 64)
              g_assert_true (ps_dataset_stream_read_bytes (st, start, MIN (64, ds->n - start),
                                                           bytes + start * img, &error));
            ps_dataset_stream_convert_bytes (st, bytes, ds->n, scales[k], FALSE, conv);
            g_assert_cmpmem (conv, sizeof (float) * img * ds->n, want, sizeof (float) * img * ds->n);
            ps_dataset_stream_convert_bytes (st, bytes, ds->n, scales[k], TRUE, conv);
            g_assert_cmpmem (conv, sizeof (float) * img * ds->n, planes, sizeof (float) * img * ds->n);
          }
      }
    }
  g_assert_true (ps_dataset_stream_is_u8 (st) == (strstr (path, "-u8-") != NULL));
}

/* @s channels-last, as @ftype */
static void
lab_set_write_hwc (const LabSet *s, const char *path, hid_t ftype)
{
  g_autofree double *hwc = g_new (double, (gsize) s->n * s->h * s->w * s->c);
  hsize_t dims[4] = { s->n, s->h, s->w, s->c };

  for (int i = 0; i < s->n; i++)
    for (int y = 0; y < s->h; y++)
      for (int x = 0; x < s->w; x++)
        for (int c = 0; c < s->c; c++)
          hwc[(((gsize) i * s->h + y) * s->w + x) * s->c + c] = *lab_at (s, i, c, y, x);
  write_h5 (path, ftype, 4, dims, hwc, s->labels, s->n);
}

static void
test_stream_same (void)
{
  const struct {
    const char *name;
    hid_t       ftype;
    double      div;     /* 1: whole numbers (8-bit storage once loaded), else fractions */
    int         n, c, h, w;  /* sides of 4 x 5 and 7 x 7 pixels: whole vectors of four
                              * pixels, and one pixel after them */
    gboolean    hwc;
  } files[] = {
    { "s-f64-whole.h5", H5T_IEEE_F64LE, 1, 300, 3, 5, 4, FALSE },
    { "s-f64-frac.h5", H5T_IEEE_F64LE, 4, 301, 3, 7, 7, FALSE },
    { "s-f32-whole.h5", H5T_IEEE_F32LE, 1, 257, 3, 7, 7, FALSE },
    { "s-f32-frac.h5", H5T_IEEE_F32LE, 3, 65, 3, 5, 4, FALSE },
    { "s-u8-chw.h5", H5T_STD_U8LE, 1, 513, 3, 5, 4, FALSE },
    { "s-u8-chw-7.h5", H5T_STD_U8LE, 1, 70, 3, 7, 7, FALSE },
    { "s-u8-hwc.h5", H5T_STD_U8LE, 1, 63, 3, 7, 7, TRUE },
    { "s-f32-hwc.h5", H5T_IEEE_F32LE, 7, 129, 3, 5, 4, TRUE },
    { "s-f64-hwc-whole.h5", H5T_IEEE_F64LE, 1, 5, 3, 7, 7, TRUE },
    { "s-gray.h5", H5T_IEEE_F32LE, 2, 33, 1, 7, 7, FALSE },
    { "s-u8-gray.h5", H5T_STD_U8LE, 1, 3, 1, 5, 4, TRUE },
  };

  for (guint k = 0; k < G_N_ELEMENTS (files); k++)
    {
      g_autofree char *path = tmp_path (files[k].name);
      g_autoptr (LabSet) s = lab_set_new (files[k].n, files[k].c, files[k].h, files[k].w,
                                          files[k].div);

      g_test_message ("%s", files[k].name);
      if (files[k].hwc)
        lab_set_write_hwc (s, path, files[k].ftype);
      else
        lab_set_write (s, path, files[k].ftype);
      assert_stream_same (path);
    }
}

/* A -0 among whole pixels (a loaded set keeps 8-bit values: 0) and among fractions (float
 * values) gives 0 either way, as a stream gives it; so does one fraction late in the set. */
static void
test_stream_signed_zero (void)
{
  const double div[] = { 1, 4 };

  for (guint k = 0; k < G_N_ELEMENTS (div); k++)
    {
      g_autofree char *path = tmp_path ("s-minus-zero.h5");
      g_autoptr (LabSet) s = lab_set_new (270, 3, 5, 4, div[k]);
      g_autoptr (PsDataset) ds = NULL;
      float out[5 * 4 * 3];

      *lab_at (s, 3, 1, 2, 2) = -0.0;
      *lab_at (s, 260, 0, 0, 0) = -0.0;
      lab_set_write (s, path, H5T_IEEE_F32LE);
      ds = load_ok (path);
      ps_dataset_get_batch (ds, 3, 1, 1.0, out);
      g_assert_false (signbit (out[(2 * 4 + 2) * 3 + 1]));
      assert_stream_same (path);
    }
  {
    g_autofree char *path = tmp_path ("s-late-fraction.h5");
    g_autoptr (LabSet) s = lab_set_new (300, 3, 5, 4, 1);

    *lab_at (s, 299, 2, 4, 3) = 12.5;
    *lab_at (s, 1, 0, 0, 0) = -0.0;
    lab_set_write (s, path, H5T_IEEE_F64LE);
    assert_stream_same (path);
  }
}

/* A NaN in the second chunk: that read fails with the load's message, the first chunk
 * still reads, and a clean label set comes up front with the labels. */
static void
check_stream_nan (int c, int y, int x, gboolean hwc)
{
  g_autofree char *path = tmp_path ("s-nan.h5");
  g_autofree char *message = NULL;
  /* 5x3 channels-last: a shape that does not read as channels-first */
  const int h = hwc ? 5 : 3, w = 3;
  g_autoptr (LabSet) s = lab_set_new (300, 3, h, w, 1);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDatasetStream) st = NULL;
  g_autoptr (PsDataset) ds = NULL;
  g_autofree float *out = g_new (float, 256 * 3 * h * w), *want = g_new (float, 256 * 3 * h * w);
  double clean[300];
  hsize_t n = 300;

  *lab_at (s, 280, c, y, x) = INFINITY;
  if (hwc)
    lab_set_write_hwc (s, path, H5T_IEEE_F32LE);
  else
    lab_set_write (s, path, H5T_IEEE_F64LE);
  for (int i = 0; i < 300; i++)
    clean[i] = (i * 3) % 5;
  add_h5 (path, "clean_label", H5T_IEEE_F64LE, 1, &n, clean);
  st = ps_dataset_stream_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ps_dataset_stream_header (st)->clean_labels);
  g_assert_cmpint (ps_dataset_stream_header (st)->clean_labels[299], ==, (299 * 3) % 5);
  g_assert_false (ps_dataset_stream_read (st, 256, 44, 1.0, out, &error));
  message = g_strdup_printf ("%s: image 280 has a NaN or infinite pixel", path);
  g_assert_error (error, PS_ERROR, PS_ERROR_FORMAT);
  g_assert_cmpstr (error->message, ==, message);
  g_clear_error (&error);
  /* read as channel planes: the same */
  g_assert_false (ps_dataset_stream_read_planar (st, 256, 44, 1.0, out, &error));
  g_assert_error (error, PS_ERROR, PS_ERROR_FORMAT);
  g_assert_cmpstr (error->message, ==, message);
  g_clear_error (&error);
  g_assert_true (ps_dataset_stream_read (st, 0, 256, 1.0, out, &error));
  g_assert_no_error (error);
  /* the same images from a set without the bad one */
  g_clear_pointer (&st, ps_dataset_stream_free);
  *lab_at (s, 280, c, y, x) = 0;
  if (hwc)
    lab_set_write_hwc (s, path, H5T_IEEE_F32LE);
  else
    lab_set_write (s, path, H5T_IEEE_F64LE);
  ds = load_ok (path);
  ps_dataset_get_batch (ds, 0, 256, 1.0, want);
  g_assert_cmpmem (out, sizeof (float) * 256 * 3 * h * w, want, sizeof (float) * 256 * 3 * h * w);
}

/* A set cut short while a stream has it open: HDF5 would read the missing part as zeros;
 * the stream says the file changed, naming it, and reads nothing more. */
static void
test_stream_truncated (void)
{
  g_autofree char *path = tmp_path ("s-truncated.h5");
  g_autofree char *message = NULL;
  g_autoptr (LabSet) s = lab_set_new (300, 3, 5, 4, 4);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDatasetStream) st = NULL;
  g_autofree float *out = g_new (float, 300 * 5 * 4 * 3);
  GStatBuf sb;

  lab_set_write (s, path, H5T_IEEE_F32LE);
  st = ps_dataset_stream_open (path, &error);
  g_assert_no_error (error);
  g_assert_true (ps_dataset_stream_read (st, 0, 100, 1.0, out, &error));
  g_assert_cmpint (g_stat (path, &sb), ==, 0);
  g_assert_cmpint (truncate (path, sb.st_size / 2), ==, 0);
  message = g_strdup_printf ("%s: changed on disk while it was read", path);
  g_assert_false (ps_dataset_stream_read (st, 200, 100, 1.0, out, &error));
  g_assert_error (error, PS_ERROR, PS_ERROR_FILE);
  g_assert_cmpstr (error->message, ==, message);
  g_clear_error (&error);
  /* the part still there: the same answer, the file is not what was opened */
  g_assert_false (ps_dataset_stream_read_planar (st, 0, 10, 1.0, out, &error));
  g_assert_error (error, PS_ERROR, PS_ERROR_FILE);
  g_clear_error (&error);

  /* a file of bytes, read as bytes: the same */
  g_clear_pointer (&st, ps_dataset_stream_free);
  lab_set_write (s, path, H5T_STD_U8LE);
  st = ps_dataset_stream_open (path, &error);
  g_assert_no_error (error);
  g_assert_true (ps_dataset_stream_is_u8 (st));
  g_assert_true (ps_dataset_stream_read_bytes (st, 0, 100, (guint8 *) out, &error));
  g_assert_cmpint (g_stat (path, &sb), ==, 0);
  g_assert_cmpint (truncate (path, sb.st_size / 2), ==, 0);
  g_assert_false (ps_dataset_stream_read_bytes (st, 200, 100, (guint8 *) out, &error));
  g_assert_error (error, PS_ERROR, PS_ERROR_FILE);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_stream_nan (void)
{
  /* among the values converted four at a time, and the last value, after them; from a
   * channels-first file (read in place) and from a channels-last one (read as planes, it
   * is reordered) */
  check_stream_nan (1, 1, 0, FALSE);
  check_stream_nan (1, 2, 2, FALSE);
  check_stream_nan (2, 2, 2, FALSE);
  check_stream_nan (1, 1, 0, TRUE);
  check_stream_nan (1, 4, 2, TRUE);
}

/* ---- errors ---- */

/* A stream of @path refuses it too, when opened or when read chunk by chunk as a load
 * reads it, with the same message. */
static void
assert_stream_fails (const char *path, const char *message)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (path, &error);

  if (st != NULL)
    {
      const PsDataset *h = ps_dataset_stream_header (st);
      int chunk = ps_dataset_stream_chunk (st);
      g_autofree float *out = g_new (float, (gsize) h->h * h->w * h->c * chunk);

      for (int start = 0; start < h->n; start += chunk)
        if (!ps_dataset_stream_read (st, start, MIN (chunk, h->n - start), 1.0, out, &error))
          break;
    }
  g_assert_nonnull (error);
  g_assert_cmpstr (error->message, ==, message);
}

static void
assert_load_fails (const char *path, const char *word)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) ds = ps_dataset_load (path, &error);

  g_assert_null (ds);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  /* one line that names the file and says what is wrong */
  g_assert_true (g_str_has_prefix (error->message, path));
  g_assert_cmpuint (strlen (error->message), >, strlen (path) + 4);
  g_assert_null (strchr (error->message, '\n'));
  if (word != NULL)
    g_assert_nonnull (strstr (error->message, word));
  assert_stream_fails (path, error->message);
}

static void
test_error_missing_label (void)
{
  g_autofree char *path = tmp_path ("no-label.h5");
  g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);
  hsize_t dims[4] = { 4, 3, 3, 3 };

  write_h5 (path, H5T_IEEE_F64LE, 4, dims, s->data, NULL, -1);
  assert_load_fails (path, "label");
}

static void
test_error_label_count (void)
{
  g_autofree char *path = tmp_path ("label-count.h5");
  g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);
  hsize_t dims[4] = { 4, 3, 3, 3 };

  write_h5 (path, H5T_IEEE_F64LE, 4, dims, s->data, s->labels, 3);
  assert_load_fails (path, "label");
}

static void
test_error_rank3 (void)
{
  g_autofree char *path = tmp_path ("rank3.h5");
  g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);
  hsize_t dims[3] = { 4, 9, 3 };

  write_h5 (path, H5T_IEEE_F64LE, 3, dims, s->data, s->labels, 4);
  assert_load_fails (path, "rank");
}

static void
test_error_no_channel_axis (void)
{
  g_autofree char *path = tmp_path ("channels.h5");
  g_autoptr (LabSet) s = lab_set_new (2, 4, 5, 6, 1);

  lab_set_write (s, path, H5T_IEEE_F64LE);
  assert_load_fails (path, "channel");
}

static void
test_error_nan_pixel (void)
{
  g_autofree char *path = tmp_path ("nan.h5");
  g_autoptr (LabSet) s = lab_set_new (300, 3, 3, 3, 1);

  /* in the second read chunk */
  *lab_at (s, 280, 1, 2, 0) = NAN;
  lab_set_write (s, path, H5T_IEEE_F64LE);
  assert_load_fails (path, "NaN");
}

static void
test_error_bad_label (void)
{
  const double bad[] = { -1, 2.5, NAN };

  for (guint k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      g_autofree char *path = tmp_path ("bad-label.h5");
      g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);

      s->labels[3] = bad[k];
      lab_set_write (s, path, H5T_IEEE_F64LE);
      assert_load_fails (path, "label");
    }
}

static void
test_error_truncated (void)
{
  g_autofree char *path = tmp_path ("truncated.h5");
  g_autoptr (LabSet) s = lab_set_new (300, 3, 5, 4, 1);
  g_autofree char *contents = NULL;
  gsize len;

  lab_set_write (s, path, H5T_IEEE_F64LE);
  g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
  for (gsize cut = len / 2; cut >= 512; cut /= 8)
    {
      g_assert_true (g_file_set_contents (path, contents, cut, NULL));
      assert_load_fails (path, NULL);
    }
}

static void
test_error_not_hdf5 (void)
{
  g_autofree char *path = tmp_path ("text.h5");

  g_assert_true (g_file_set_contents (path, "label,data\n1,2\n", -1, NULL));
  assert_load_fails (path, NULL);
}

static void
test_error_missing_file (void)
{
  g_autofree char *path = tmp_path ("nowhere.h5");

  assert_load_fails (path, NULL);
}

static void
test_error_empty_file (void)
{
  g_autofree char *path = tmp_path ("empty.h5");

  g_assert_true (g_file_set_contents (path, "", 0, NULL));
  assert_load_fails (path, NULL);
}

/* ---- clean labels: the true classes of a poisoned set ---- */

static void
test_clean_label (void)
{
  g_autofree char *path = tmp_path ("clean-label.h5");
  g_autofree char *plain = tmp_path ("no-clean-label.h5");
  g_autofree char *saved = tmp_path ("clean-label-saved.h5");
  g_autoptr (LabSet) s = lab_set_new (5, 3, 4, 3, 1);
  const double truth[5] = { 3, 1, 4, 1, 5 };
  hsize_t column[2] = { 5, 1 };
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) ds = NULL, none = NULL, back = NULL;

  for (int i = 0; i < s->n; i++)
    s->labels[i] = 7;  /* the attack's target */
  lab_set_write (s, plain, H5T_IEEE_F64LE);
  lab_set_write (s, path, H5T_IEEE_F64LE);
  /* as uint8 in a (N, 1) column: another type and shape a writer may choose */
  add_h5 (path, "clean_label", H5T_STD_U8LE, 2, column, truth);

  none = ps_dataset_load (plain, &error);
  g_assert_no_error (error);
  g_assert_null (none->clean_labels);
  ds = ps_dataset_load (path, &error);
  g_assert_no_error (error);
  assert_pixels (ds, s, 0);
  g_assert_nonnull (ds->clean_labels);
  for (int i = 0; i < s->n; i++)
    g_assert_cmpint (ds->clean_labels[i], ==, (int) truth[i]);
  g_assert_cmpuint (ps_dataset_memory_size (ds), ==, ps_dataset_memory_size (none) + 5 * sizeof (int));

  /* saved and read back: still there, as float64 (N,) like `label` */
  g_assert_true (ps_dataset_save (ds, saved, &error));
  g_assert_no_error (error);
  back = ps_dataset_load (saved, &error);
  g_assert_no_error (error);
  assert_same_dataset (ds, back);
  g_assert_nonnull (back->clean_labels);
  g_assert_cmpmem (back->clean_labels, 5 * sizeof (int), ds->clean_labels, 5 * sizeof (int));

  /* A sample and a header keep each image's true class. */
  {
    g_autoptr (PsDataset) sample = ps_dataset_sample (ds, 3);
    g_autoptr (PsDataset) header = ps_dataset_header (ds);

    g_assert_nonnull (sample->clean_labels);
    for (int i = 0; i < sample->n; i++)
      g_assert_cmpint (sample->clean_labels[i], ==, (int) truth[sample->index[i]]);
    g_assert_nonnull (header->clean_labels);
    g_assert_cmpmem (header->clean_labels, 5 * sizeof (int), ds->clean_labels, 5 * sizeof (int));
  }
}

static void
write_with_clean_label (const char *path, hid_t ftype, int rank, const hsize_t *dims,
                        const double *values)
{
  g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);

  lab_set_write (s, path, H5T_IEEE_F64LE);
  add_h5 (path, "clean_label", ftype, rank, dims, values);
}

static void
test_error_clean_label (void)
{
  g_autofree char *path = tmp_path ("bad-clean-label.h5");
  const double good[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
  const double bad[] = { -1, 2.5, NAN, 40000 };
  hsize_t three = 3, four = 4, pairs[2] = { 4, 2 };

  /* a count that is not the images' */
  write_with_clean_label (path, H5T_IEEE_F64LE, 1, &three, good);
  assert_load_fails (path, "“clean_label” has shape (3) for 4 images");
  /* two columns */
  write_with_clean_label (path, H5T_IEEE_F64LE, 2, pairs, good);
  assert_load_fails (path, "clean_label");
  /* values that are not classes */
  for (guint k = 0; k < G_N_ELEMENTS (bad); k++)
    {
      double v[4] = { 1, 2, 3, bad[k] };

      write_with_clean_label (path, H5T_IEEE_F64LE, 1, &four, v);
      assert_load_fails (path, "clean_label 3 is");
    }
  /* text, not numbers */
  {
    g_autoptr (LabSet) s = lab_set_new (4, 3, 3, 3, 1);
    hid_t file, space, dset, str = H5Tcopy (H5T_C_S1);

    lab_set_write (s, path, H5T_IEEE_F64LE);
    H5Tset_size (str, 4);
    file = H5Fopen (path, H5F_ACC_RDWR, H5P_DEFAULT);
    space = H5Screate_simple (1, &four, NULL);
    dset = H5Dcreate2 (file, "clean_label", str, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    g_assert_cmpint (H5Dwrite (dset, str, H5S_ALL, H5S_ALL, H5P_DEFAULT, "cat dog cow pig "), >=, 0);
    H5Dclose (dset);
    H5Sclose (space);
    H5Tclose (str);
    H5Fclose (file);
    assert_load_fails (path, "clean_label");
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/dataset/load/float64-whole", test_float64_whole);
  g_test_add_func ("/dataset/load/float64-fraction", test_float64_fraction);
  g_test_add_func ("/dataset/load/float32-whole", test_float32_whole);
  g_test_add_func ("/dataset/load/float32-fraction", test_float32_fraction);
  g_test_add_func ("/dataset/load/uint8", test_uint8);
  g_test_add_func ("/dataset/load/cancelled", test_load_cancelled);
  g_test_add_func ("/dataset/load/out-of-range", test_out_of_range);
  g_test_add_func ("/dataset/load/transpose", test_transpose);
  g_test_add_func ("/dataset/load/grayscale", test_grayscale);
  g_test_add_func ("/dataset/load/chunks", test_chunks);
  g_test_add_func ("/dataset/load/chunks-late-fraction", test_chunks_late_fraction);
  g_test_add_func ("/dataset/batch/scale", test_batch_scale);
  g_test_add_func ("/dataset/stream/same-bits", test_stream_same);
  g_test_add_func ("/dataset/stream/signed-zero", test_stream_signed_zero);
  g_test_add_func ("/dataset/stream/nan", test_stream_nan);
  g_test_add_func ("/dataset/stream/truncated", test_stream_truncated);
  g_test_add_func ("/dataset/sample-and-header", test_sample_and_header);
  g_test_add_func ("/dataset/save/round-trip-u8", test_save_round_trip_u8);
  g_test_add_func ("/dataset/save/round-trip-f32", test_save_round_trip_f32);
  g_test_add_func ("/dataset/save/uncompressed", test_save_uncompressed);
  g_test_add_func ("/dataset/save/no-directory", test_save_no_directory);
  g_test_add_func ("/dataset/save/replace", test_save_replace);
  g_test_add_func ("/dataset/load/clean-label", test_clean_label);
  g_test_add_func ("/dataset/error/clean-label", test_error_clean_label);
  g_test_add_func ("/dataset/error/missing-label", test_error_missing_label);
  g_test_add_func ("/dataset/error/label-count", test_error_label_count);
  g_test_add_func ("/dataset/error/rank3", test_error_rank3);
  g_test_add_func ("/dataset/error/no-channel-axis", test_error_no_channel_axis);
  g_test_add_func ("/dataset/error/nan-pixel", test_error_nan_pixel);
  g_test_add_func ("/dataset/error/bad-label", test_error_bad_label);
  g_test_add_func ("/dataset/error/truncated", test_error_truncated);
  g_test_add_func ("/dataset/error/not-hdf5", test_error_not_hdf5);
  g_test_add_func ("/dataset/error/empty-file", test_error_empty_file);
  g_test_add_func ("/dataset/error/missing-file", test_error_missing_file);

  return g_test_run ();
}
