/* ps-dataset.c: the lab's image sets, read in hyperslab chunks and stored compactly */
#define G_LOG_DOMAIN "ps-dataset"

#include "ps-dataset-private.h"
#include "ps-limits.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void
ps_dataset_free (PsDataset *ds)
{
  if (ds == NULL)
    return;
  g_free (ds->u8);
  g_free (ds->f32);
  g_free (ds->labels);
  g_free (ds->clean_labels);
  g_free (ds->index);
  g_free (ds->path);
  g_free (ds);
}

PsDataset *
ps_dataset_header (const PsDataset *ds)
{
  PsDataset *h = g_new0 (PsDataset, 1);

  h->n = ds->n, h->h = ds->h, h->w = ds->w, h->c = ds->c;
  h->labels = g_memdup2 (ds->labels, sizeof (int) * MAX (ds->n, 1));
  if (ds->clean_labels != NULL)
    h->clean_labels = g_memdup2 (ds->clean_labels, sizeof (int) * MAX (ds->n, 1));
  h->path = g_strdup (ds->path);
  return h;
}

PsDataset *
_ps_dataset_sample_of (const PsDataset *ds, int count)
{
  PsDataset *s = g_new0 (PsDataset, 1);

  s->n = CLAMP (count, 0, ds->n);
  s->h = ds->h, s->w = ds->w, s->c = ds->c;
  s->path = g_strdup (ds->path);
  s->labels = g_new (int, MAX (s->n, 1));
  s->index = g_new (int, MAX (s->n, 1));
  if (ds->clean_labels != NULL)
    s->clean_labels = g_new (int, MAX (s->n, 1));
  for (int i = 0; i < s->n; i++)
    {
      int from = (int) ((gint64) i * ds->n / s->n);

      s->index[i] = ds->index ? ds->index[from] : from;
      s->labels[i] = ds->labels[from];
      if (ds->clean_labels != NULL)
        s->clean_labels[i] = ds->clean_labels[from];
    }
  return s;
}

PsDataset *
ps_dataset_sample (const PsDataset *ds, int count)
{
  PsDataset *s;
  gsize img = (gsize) ds->h * ds->w * ds->c;

  g_return_val_if_fail (ds->u8 != NULL || ds->f32 != NULL, NULL);

  s = _ps_dataset_sample_of (ds, count);
  if (ds->u8 != NULL)
    s->u8 = g_new (guint8, img * MAX (s->n, 1));
  else
    s->f32 = g_new (float, img * MAX (s->n, 1));
  for (int i = 0; i < s->n; i++)
    {
      gsize from = (gsize) ((gint64) i * ds->n / s->n);

      if (ds->u8 != NULL)
        memcpy (s->u8 + i * img, ds->u8 + from * img, img);
      else
        memcpy (s->f32 + i * img, ds->f32 + from * img, img * sizeof (float));
    }
  return s;
}

gsize
ps_dataset_memory_size (const PsDataset *ds)
{
  gsize px = (gsize) ds->n * ds->h * ds->w * ds->c;

  return (ds->u8 ? px : px * sizeof (float)) + ds->n * sizeof (int) * (ds->clean_labels ? 2 : 1);
}

PsDataset *
ps_dataset_new_u8 (int n, int h, int w, int c, const guint8 *pixels, const int *labels)
{
  PsDataset *ds = g_new0 (PsDataset, 1);

  ds->n = n, ds->h = h, ds->w = w, ds->c = c;
  ds->u8 = g_memdup2 (pixels, (gsize) n * h * w * c);
  ds->labels = g_memdup2 (labels, sizeof (int) * MAX (n, 1));
  return ds;
}

typedef PsDatasetLayout Layout;

/* The declared shape, checked against the limits before anything is allocated. */
static gboolean
read_layout (const PsH5Shape *shape, Layout *lay, GError **error)
{
  const hsize_t *d = shape->dims;
  g_autofree char *dims = ps_h5_shape_string (shape->rank, shape->dims);

  if (shape->rank != 4)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "dataset “data” has shape %s, expected (N, 3, H, W)", dims);
      return FALSE;
    }
  if (d[1] == 1 || d[1] == 3)
    *lay = (Layout) { .chw = TRUE, .c = (int) d[1] };
  else if (d[3] == 1 || d[3] == 3)
    *lay = (Layout) { .chw = FALSE, .c = (int) d[3] };
  else
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "dataset “data” has shape %s: no channel axis of 1 or 3", dims);
      return FALSE;
    }
  if (d[0] == 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "dataset “data” holds no images (shape %s)", dims);
      return FALSE;
    }
  {
    hsize_t h = lay->chw ? d[2] : d[1], w = lay->chw ? d[3] : d[2];

    if (d[0] > PS_LIMIT_SET_IMAGES || h > PS_LIMIT_IMAGE_SIDE || w > PS_LIMIT_IMAGE_SIDE
        || h == 0 || w == 0)
      {
        g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                     "dataset “data” has shape %s (accepted: up to %" G_GINT64_FORMAT
                     " images, sides 1 to %d)", dims, PS_LIMIT_SET_IMAGES, PS_LIMIT_IMAGE_SIDE);
        return FALSE;
      }
    lay->n = (int) d[0], lay->h = (int) h, lay->w = (int) w;
  }
  return TRUE;
}

/* A class per image from dataset @name: (N,) or (N, 1), whole numbers 0..32766. */
static int *
read_labels (hid_t file, const char *name, int n, GError **error)
{
  PsH5Shape shape;
  hid_t dset;
  g_autofree double *buf = NULL;
  int *labels;

  if (!ps_h5_exists (file, name))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing dataset “%s”", name);
      return NULL;
    }
  dset = ps_h5_open_dataset (file, name, PS_LIMIT_SET_IMAGES, &shape, error);
  if (dset < 0)
    return NULL;
  if (shape.n != n || shape.rank > 2 || (shape.rank == 2 && shape.dims[1] != 1))
    {
      g_autofree char *dims = ps_h5_shape_string (shape.rank, shape.dims);
      H5Dclose (dset);
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH, "“%s” has shape %s for %d images",
                   name, dims, n);
      return NULL;
    }
  buf = g_new (double, MAX (n, 1));
  if (H5Dread (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    {
      ps_h5_set_error (error, name);
      H5Dclose (dset);
      return NULL;
    }
  H5Dclose (dset);
  labels = g_new (int, MAX (n, 1));
  for (int i = 0; i < n; i++)
    {
      if (!(buf[i] >= 0 && buf[i] < G_MAXINT16) || buf[i] != floor (buf[i]))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s %d is %g, not a class",
                       name, i, buf[i]);
          g_free (labels);
          return NULL;
        }
      labels[i] = (int) buf[i];
    }
  return labels;
}

/* The optional true classes of a poisoned set: absent is fine, present must be right. */
static gboolean
read_clean_labels (hid_t file, PsDataset *ds, GError **error)
{
  if (!ps_h5_exists (file, "clean_label"))
    return TRUE;
  ds->clean_labels = read_labels (file, "clean_label", ds->n, error);
  return ds->clean_labels != NULL;
}

/* Moves 8-bit storage to float when a pixel is not a whole number 0..255. */
static gboolean
promote_to_float (PsDataset *ds, GError **error)
{
  gsize px = (gsize) ds->n * ds->h * ds->w * ds->c;

  ds->f32 = g_try_new (float, px);
  if (ds->f32 == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                   "not enough memory for %d images as floating-point values", ds->n);
      return FALSE;
    }
  for (gsize i = 0; i < px; i++)
    ds->f32[i] = ds->u8[i];
  g_clear_pointer (&ds->u8, g_free);
  return TRUE;
}

/* Whether every value of @v is a whole number 0..255 (adding 2^23 rounds a float in that
 * range to a whole number); written so that the compiler can vectorise it. */
static gboolean
whole_u8 (const float *v, gsize n)
{
  int frac = 0;

  for (gsize i = 0; i < n; i++)
    {
      float x = v[i];

      frac |= (x < 0.0f) | (x > 255.0f) | ((x + 0x1p23f) - 0x1p23f != x);
    }
  return !frac;
}

/* Whole numbers 0..255 to bytes; on x86-64 sixteen at a time with SSE2 (always there),
 * as GCC leaves the plain loop scalar. */
static void
to_u8 (const float *v, gsize n, guint8 *out)
{
  gsize i = 0;

#ifdef __SSE2__
  for (; i + 16 <= n; i += 16)
    {
      __m128i a = _mm_cvttps_epi32 (_mm_loadu_ps (v + i));
      __m128i b = _mm_cvttps_epi32 (_mm_loadu_ps (v + i + 4));
      __m128i c = _mm_cvttps_epi32 (_mm_loadu_ps (v + i + 8));
      __m128i d = _mm_cvttps_epi32 (_mm_loadu_ps (v + i + 12));

      _mm_storeu_si128 ((__m128i *) (out + i),
                        _mm_packus_epi16 (_mm_packs_epi32 (a, b), _mm_packs_epi32 (c, d)));
    }
#endif
  for (; i < n; i++)
    out[i] = (guint8) v[i];
}

/* Each image to height x width x channels floats (checked, -0 made 0) in one pass, into
 * float storage or @scratch; from @scratch to 8-bit storage while every value is whole. */
static gboolean
store_chunk (PsDataset *ds, const Layout *lay, int start, int count, const float *buf,
             float *scratch, GError **error)
{
  const gsize img = (gsize) lay->h * lay->w * lay->c;

  for (int b = 0; b < count; b++)
    {
      gsize at = (gsize) (start + b) * img;
      float *nhwc = ds->f32 != NULL ? ds->f32 + at : scratch;

      if (!_ps_dataset_convert_f32 (lay, buf + (gsize) b * img, 1.0f, FALSE, nhwc))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                       "image %d has a NaN or infinite pixel", start + b);
          return FALSE;
        }
      if (ds->u8 == NULL)
        continue;
      if (!whole_u8 (nhwc, img))
        {
          if (!promote_to_float (ds, error))
            return FALSE;
          memcpy (ds->f32 + at, nhwc, sizeof (float) * img);
          continue;
        }
      to_u8 (nhwc, img, ds->u8 + at);
    }
  return TRUE;
}

/* 8-bit pixels straight to height x width x channels: nothing to check. */
static void
store_chunk_u8 (PsDataset *ds, const Layout *lay, int start, int count, const guint8 *buf)
{
  const int H = lay->h, W = lay->w, C = lay->c;
  const gsize img = (gsize) H * W * C;

  if (!lay->chw)
    {
      memcpy (ds->u8 + (gsize) start * img, buf, img * count);
      return;
    }
  for (int b = 0; b < count; b++)
    {
      const guint8 *im = buf + (gsize) b * img;
      guint8 *to = ds->u8 + (gsize) (start + b) * img;

      for (int c = 0; c < C; c++)
        for (gsize p = 0; p < (gsize) H * W; p++)
          to[p * C + c] = im[(gsize) c * H * W + p];
    }
}

static gboolean
is_uint8 (hid_t dset)
{
  hid_t t = H5Dget_type (dset);
  gboolean u8;

  if (t < 0)
    return FALSE;
  u8 = H5Tget_class (t) == H5T_INTEGER && H5Tget_size (t) == 1 && H5Tget_sign (t) == H5T_SGN_NONE;
  H5Tclose (t);
  return u8;
}

gboolean
_ps_dataset_read_slab (hid_t dset, const Layout *lay, int start, int count, gpointer buf,
                       GError **error)
{
  hsize_t off[4] = { start, 0, 0, 0 };
  hsize_t cnt[4] = { count, 0, 0, 0 };
  hid_t fspace, mspace;
  gboolean ok = TRUE;

  if (lay->chw)
    cnt[1] = lay->c, cnt[2] = lay->h, cnt[3] = lay->w;
  else
    cnt[1] = lay->h, cnt[2] = lay->w, cnt[3] = lay->c;
  /* HDF5 converts float64 (or any other number type) to float one chunk at a time. */
  fspace = H5Dget_space (dset);
  H5Sselect_hyperslab (fspace, H5S_SELECT_SET, off, NULL, cnt, NULL);
  mspace = H5Screate_simple (4, cnt, NULL);
  if (H5Dread (dset, lay->file_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, mspace, fspace,
               H5P_DEFAULT, buf) < 0)
    {
      ps_h5_set_error (error, "cannot read “data”");
      ok = FALSE;
    }
  H5Sclose (mspace);
  H5Sclose (fspace);
  return ok;
}

static gboolean
read_pixels (hid_t dset, PsDataset *ds, const Layout *lay, GCancellable *cancellable,
             GError **error)
{
  const gsize img = (gsize) lay->h * lay->w * lay->c;
  const int chunk = (int) CLAMP (PS_DATASET_CHUNK_VALUES / img, 1, PS_DATASET_CHUNK_IMAGES);
  g_autofree gpointer buf = NULL;
  g_autofree float *scratch = NULL;
  gboolean ok = TRUE;

  ds->u8 = g_try_malloc ((gsize) lay->n * img);
  if (ds->u8 == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "not enough memory for %d images", lay->n);
      return FALSE;
    }
  /* an 8-bit file is read as bytes (a float buffer and the pixel checks are for the rest) */
  buf = lay->file_u8 ? g_malloc (img * chunk) : g_new (float, img * chunk);
  scratch = lay->file_u8 ? NULL : g_new (float, img);
  for (int start = 0; ok && start < lay->n; start += chunk)
    {
      int count = MIN (chunk, lay->n - start);

      ok = _ps_dataset_read_slab (dset, lay, start, count, buf, error);
      if (ok && lay->file_u8)
        store_chunk_u8 (ds, lay, start, count, buf);
      else
        ok = ok && store_chunk (ds, lay, start, count, buf, scratch, error);
      /* Between chunks other threads may use HDF5, and a cancelled load stops. */
      ps_h5_unlock ();
      ok = ok && !g_cancellable_set_error_if_cancelled (cancellable, error);
      ps_h5_lock ();
    }
  return ok;
}

hid_t
_ps_dataset_open_data (hid_t file, PsDataset *ds, Layout *lay, GError **error)
{
  PsH5Shape shape;
  hid_t dset;

  if (!ps_h5_exists (file, "data"))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "missing dataset “data” (not an image set)");
      return -1;
    }
  dset = ps_h5_open_dataset (file, "data", PS_LIMIT_SET_VALUES, &shape, error);
  if (dset < 0)
    return -1;
  if (read_layout (&shape, lay, error))
    {
      lay->file_u8 = is_uint8 (dset);
      ds->n = lay->n, ds->h = lay->h, ds->w = lay->w, ds->c = lay->c;
      ds->labels = read_labels (file, "label", lay->n, error);
      if (ds->labels != NULL && read_clean_labels (file, ds, error))
        return dset;
    }
  H5Dclose (dset);
  return -1;
}

static PsDataset *
load_from_file (hid_t file, GCancellable *cancellable, GError **error)
{
  g_autoptr (PsDataset) ds = g_new0 (PsDataset, 1);
  Layout lay;
  hid_t dset;
  gboolean ok;

  dset = _ps_dataset_open_data (file, ds, &lay, error);
  if (dset < 0)
    return NULL;
  ok = read_pixels (dset, ds, &lay, cancellable, error);
  H5Dclose (dset);
  return ok ? g_steal_pointer (&ds) : NULL;
}

PsDataset *
ps_dataset_load (const char *path, GError **error)
{
  return ps_dataset_load_cancellable (path, NULL, error);
}

PsDataset *
ps_dataset_load_cancellable (const char *path, GCancellable *cancellable, GError **error)
{
  PsDataset *ds = NULL;
  hid_t file;

  ps_h5_lock ();
  file = ps_h5_open (path, FALSE, error);
  if (file >= 0)
    {
      ds = load_from_file (file, cancellable, error);
      H5Fclose (file);
      H5Eclear2 (H5E_DEFAULT);
    }
  ps_h5_unlock ();
  if (ds == NULL)
    {
      if (error == NULL || !g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  ds->path = g_strdup (path);
  return ds;
}

gboolean
ps_dataset_peek_count (const char *path, int *n, GError **error)
{
  gboolean ok = FALSE;
  PsH5Shape shape;
  Layout lay;
  hid_t file, dset = -1;

  ps_h5_lock ();
  file = ps_h5_open (path, FALSE, error);
  if (file >= 0)
    dset = ps_h5_open_dataset (file, "data", PS_LIMIT_SET_VALUES, &shape, error);
  if (dset >= 0)
    {
      ok = read_layout (&shape, &lay, error);
      H5Dclose (dset);
    }
  if (file >= 0)
    H5Fclose (file);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  if (!ok)
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  *n = lay.n;
  return TRUE;
}

/* Sixteen pixels at a time on GCC vectors (which -O2 does not do by itself here): every
 * image of a pass goes through this. The same products as the plain loop. */
typedef float PsPixels __attribute__ ((vector_size (64)));
typedef guint8 PsPixelsU8 __attribute__ ((vector_size (16)));

static void
copy_image (const PsDataset *ds, int index, double scale, float *out)
{
  const gsize img = (gsize) ds->h * ds->w * ds->c;
  const float s = (float) scale;
  gsize i = 0;

  if (ds->u8 != NULL)
    {
      const guint8 *p = ds->u8 + (gsize) index * img;

      for (; i + 16 <= img; i += 16)
        {
          PsPixelsU8 v;
          PsPixels f;

          memcpy (&v, p + i, sizeof v);
          f = __builtin_convertvector (v, PsPixels) * s;
          memcpy (out + i, &f, sizeof f);
        }
      for (; i < img; i++)
        out[i] = p[i] * s;
    }
  else
    {
      const float *p = ds->f32 + (gsize) index * img;

      for (; i + 16 <= img; i += 16)
        {
          PsPixels f;

          memcpy (&f, p + i, sizeof f);
          f = f * s;
          memcpy (out + i, &f, sizeof f);
        }
      for (; i < img; i++)
        out[i] = p[i] * s;
    }
}

void
ps_dataset_get_batch (const PsDataset *ds, int start, int count, double scale, float *out)
{
  const gsize img = (gsize) ds->h * ds->w * ds->c;

  for (int b = 0; b < count; b++)
    copy_image (ds, start + b, scale, out + b * img);
}

void
ps_dataset_gather (const PsDataset *ds, const int *indices, int count, double scale, float *out)
{
  const gsize img = (gsize) ds->h * ds->w * ds->c;

  for (int b = 0; b < count; b++)
    copy_image (ds, indices[b], scale, out + b * img);
}

static gboolean
write_data (hid_t file, const PsDataset *ds, gboolean compress, GError **error)
{
  const gsize img = (gsize) ds->h * ds->w * ds->c;
  hsize_t dims[4] = { ds->n, ds->c, ds->h, ds->w };
  hsize_t chunk[4] = { MAX (1, MIN (ds->n, 64)), ds->c, ds->h, ds->w };
  hid_t space, dcpl, dset, ftype, mtype;
  gboolean ok = TRUE;

  ftype = ds->u8 ? H5T_STD_U8LE : H5T_IEEE_F32LE;
  mtype = ds->u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
  space = H5Screate_simple (4, dims, NULL);
  dcpl = H5Pcreate (H5P_DATASET_CREATE);
  if (ds->n > 0)
    {
      H5Pset_chunk (dcpl, 4, chunk);
      if (compress)
        H5Pset_deflate (dcpl, 1);
    }
  dset = H5Dcreate2 (file, "data", ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (dset < 0)
    ps_h5_set_error (error, "cannot create “data”");
  H5Pclose (dcpl);
  if (dset < 0)
    {
      H5Sclose (space);
      return FALSE;
    }
  /* Channels-first on disk, one image at a time through a small buffer. */
  {
    gsize esize = ds->u8 ? 1 : sizeof (float);
    g_autofree guint8 *buf = g_malloc (img * esize);
    hsize_t one[4] = { 1, ds->c, ds->h, ds->w };
    hid_t mspace = H5Screate_simple (4, one, NULL);

    for (int i = 0; ok && i < ds->n; i++)
      {
        hsize_t off[4] = { i, 0, 0, 0 };

        for (int c = 0; c < ds->c; c++)
          for (int y = 0; y < ds->h; y++)
            for (int x = 0; x < ds->w; x++)
              {
                gsize s = (gsize) i * img + ((gsize) y * ds->w + x) * ds->c + c;
                gsize d = ((gsize) c * ds->h + y) * ds->w + x;
                if (ds->u8)
                  buf[d] = ds->u8[s];
                else
                  ((float *) buf)[d] = ds->f32[s];
              }
        H5Sselect_hyperslab (space, H5S_SELECT_SET, off, NULL, one, NULL);
        if (H5Dwrite (dset, mtype, mspace, space, H5P_DEFAULT, buf) < 0)
          {
            ps_h5_set_error (error, "cannot write “data”");
            ok = FALSE;
          }
      }
    H5Sclose (mspace);
  }
  H5Sclose (space);
  H5Dclose (dset);
  return ok;
}

static gboolean
write_labels (hid_t file, const char *name, const int *classes, int n, GError **error)
{
  g_autofree double *labels = g_new (double, MAX (n, 1));
  hsize_t dims = n;
  hid_t space, dset;
  gboolean ok;

  /* Labels as float64, like the lab's files. */
  for (int i = 0; i < n; i++)
    labels[i] = classes[i];
  space = H5Screate_simple (1, &dims, NULL);
  dset = H5Dcreate2 (file, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ok = dset >= 0 && H5Dwrite (dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) >= 0;
  if (!ok)
    {
      g_autofree char *what = g_strdup_printf ("cannot write “%s”", name);
      ps_h5_set_error (error, what);
    }
  if (dset >= 0)
    H5Dclose (dset);
  H5Sclose (space);
  return ok;
}

typedef struct {
  const PsDataset *ds;
  gboolean         compress;
} SaveArgs;

static gboolean
write_dataset_file (hid_t file, gconstpointer data, GError **error)
{
  const SaveArgs *args = data;
  const PsDataset *ds = args->ds;

  return write_data (file, ds, args->compress, error) && write_labels (file, "label", ds->labels, ds->n, error)
         && (ds->clean_labels == NULL
             || write_labels (file, "clean_label", ds->clean_labels, ds->n, error));
}

gboolean
ps_dataset_save_compressed (const PsDataset *ds, const char *path, gboolean compress, GError **error)
{
  SaveArgs args = { ds, compress };

  return ps_h5_write_file (path, write_dataset_file, &args, error);
}

gboolean
ps_dataset_save (const PsDataset *ds, const char *path, GError **error)
{
  return ps_dataset_save_compressed (ds, path, TRUE, error);
}
