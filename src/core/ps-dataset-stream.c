/* ps-dataset-stream.c: an image set read a chunk at a time, straight into scaled NHWC
 * floats (or channel planes): one pass over each chunk checks, reorders and scales it */
#define G_LOG_DOMAIN "ps-dataset"

#include "ps-dataset-stream.h"
#include "ps-dataset-private.h"
#include "ps-file.h"

struct _PsDatasetStream {
  PsDataset       *header;
  PsDatasetLayout  lay;
  hid_t            file, dset;
  gpointer         buf;        /* the file's values for one read */
  int              buf_images; /* images @buf holds */
  int              fd;         /* the file HDF5 reads (-1: unknown) */
  char            *stamp;      /* its size, modification time and inode when opened */
};

/* Whether the file is still as it was opened: HDF5 reads the part of a file cut short
 * since as zeros, and a set rewritten meanwhile would mix two sets' images. */
static gboolean
unchanged (const PsDatasetStream *st, GError **error)
{
  g_autofree char *now = NULL;

  if (st->stamp == NULL || g_strcmp0 (now = ps_file_stamp_fd (st->fd), st->stamp) == 0)
    return TRUE;
  g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: changed on disk while it was read",
               st->header->path);
  return FALSE;
}

void
ps_dataset_stream_free (PsDatasetStream *st)
{
  if (st == NULL)
    return;
  ps_h5_lock ();
  if (st->dset >= 0)
    H5Dclose (st->dset);
  if (st->file >= 0)
    H5Fclose (st->file);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  ps_dataset_free (st->header);
  g_free (st->stamp);
  g_free (st->buf);
  g_free (st);
}

PsDatasetStream *
ps_dataset_stream_open (const char *path, GError **error)
{
  g_autoptr (PsDatasetStream) st = g_new0 (PsDatasetStream, 1);

  st->header = g_new0 (PsDataset, 1);
  st->file = st->dset = st->fd = -1;
  ps_h5_lock ();
  st->file = ps_h5_open (path, FALSE, error);
  if (st->file >= 0)
    {
      int *handle = NULL;

      /* the default (sec2) driver's handle is the descriptor */
      if (H5Fget_vfd_handle (st->file, H5P_DEFAULT, (void **) &handle) >= 0 && handle != NULL)
        {
          st->fd = *handle;
          st->stamp = ps_file_stamp_fd (st->fd);
        }
      st->dset = _ps_dataset_open_data (st->file, st->header, &st->lay, error);
    }
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  if (st->dset < 0)
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  st->header->path = g_strdup (path);
  return g_steal_pointer (&st);
}

const PsDataset *
ps_dataset_stream_header (const PsDatasetStream *st)
{
  return st->header;
}

int
ps_dataset_stream_chunk (const PsDatasetStream *st)
{
  gsize img = (gsize) st->lay.h * st->lay.w * st->lay.c;

  return (int) CLAMP (PS_DATASET_CHUNK_VALUES / img, 1, PS_DATASET_CHUNK_IMAGES);
}

/* Images @start .. @start+@count-1 as the file stores them (HDF5 converting any number type
 * to the layout's), into @buf, under the HDF5 lock. */
static gboolean
read_slab (PsDatasetStream *st, int start, int count, gpointer buf, GError **error)
{
  gboolean ok;

  ps_h5_lock ();
  ok = _ps_dataset_read_slab (st->dset, &st->lay, start, count, buf, error);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  if (!ok)
    g_prefix_error (error, "%s: ", st->header->path);
  /* after the read: a change during it counts too */
  return ok && unchanged (st, error);
}

static gboolean
stream_read (PsDatasetStream *st, int start, int count, double scale, gboolean planar,
             float *out, GError **error)
{
  const PsDatasetLayout *lay = &st->lay;
  const gsize img = (gsize) lay->h * lay->w * lay->c;
  const float s = (float) scale;
  /* floats in the order wanted (HDF5 converts float64 itself): read where they go and
   * checked there, one pass over them fewer */
  const gboolean in_place = !lay->file_u8 && (lay->chw == planar || lay->c == 1);

  g_return_val_if_fail (start >= 0 && count >= 0 && start <= lay->n - count, FALSE);
  if (count == 0)
    return TRUE;
  if (!in_place && count > st->buf_images)
    {
      g_free (st->buf);
      st->buf = g_try_malloc (img * count * (lay->file_u8 ? 1 : sizeof (float)));
      st->buf_images = st->buf != NULL ? count : 0;
      if (st->buf == NULL)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "%s: not enough memory for %d images",
                       st->header->path, count);
          return FALSE;
        }
    }
  if (!read_slab (st, start, count, in_place ? (gpointer) out : st->buf, error))
    return FALSE;
  /* outside the lock: other threads may read their files meanwhile */
  if (lay->file_u8)
    {
      ps_dataset_stream_convert_bytes (st, st->buf, count, scale, planar, out);
      return TRUE;
    }
  for (int b = 0; b < count; b++)
    {
      if (in_place)
        {
          if (!_ps_dataset_convert_f32_in_place (img, s, out + b * img))
            {
              g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                           "%s: image %d has a NaN or infinite pixel", st->header->path, start + b);
              return FALSE;
            }
        }
      else if (!_ps_dataset_convert_f32 (lay, (const float *) st->buf + b * img, s, planar,
                                         out + b * img))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                       "%s: image %d has a NaN or infinite pixel", st->header->path, start + b);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
ps_dataset_stream_read (PsDatasetStream *st, int start, int count, double scale, float *out,
                        GError **error)
{
  return stream_read (st, start, count, scale, FALSE, out, error);
}

gboolean
ps_dataset_stream_read_planar (PsDatasetStream *st, int start, int count, double scale,
                               float *out, GError **error)
{
  return stream_read (st, start, count, scale, TRUE, out, error);
}

gboolean
ps_dataset_stream_is_u8 (const PsDatasetStream *st)
{
  return st->lay.file_u8;
}

gboolean
ps_dataset_stream_read_bytes (PsDatasetStream *st, int start, int count, guint8 *out,
                              GError **error)
{
  g_return_val_if_fail (st->lay.file_u8, FALSE);
  g_return_val_if_fail (start >= 0 && count >= 0 && start <= st->lay.n - count, FALSE);
  return count == 0 || read_slab (st, start, count, out, error);
}

void
ps_dataset_stream_convert_bytes (const PsDatasetStream *st, const guint8 *bytes, int count,
                                 double scale, gboolean planar, float *out)
{
  const gsize img = (gsize) st->lay.h * st->lay.w * st->lay.c;

  g_return_if_fail (st->lay.file_u8);
  for (int b = 0; b < count; b++)
    _ps_dataset_convert_u8 (&st->lay, bytes + b * img, (float) scale, planar, out + b * img);
}

PsDataset *
ps_dataset_stream_sample (PsDatasetStream *st, int count, GError **error)
{
  const PsDataset *h = st->header;
  const gsize img = (gsize) h->h * h->w * h->c;
  g_autoptr (PsDataset) s = _ps_dataset_sample_of (h, count);
  g_autofree float *px = g_new (float, img * MAX (s->n, 1));
  gboolean whole = TRUE, above_one = FALSE;

  for (int i = 0; i < s->n; i++)
    if (!ps_dataset_stream_read (st, s->index[i], 1, 1.0, px + i * img, error))
      return NULL;
  /* Kept as a loaded set keeps its pixels: bytes when every value is a whole 0..255, and
   * one is above 1 (the set then reads 0..255; a sample of 0s and 1s may come from a set of
   * fractions, which a window shows scaled from 0..1). */
  for (gsize i = 0; whole && i < img * s->n; i++)
    {
      whole = px[i] >= 0.0f && px[i] <= 255.0f && px[i] == (float) (int) px[i];
      above_one |= px[i] > 1.0f;
    }
  if (whole && above_one)
    {
      s->u8 = g_new (guint8, img * MAX (s->n, 1));
      for (gsize i = 0; i < img * s->n; i++)
        s->u8[i] = (guint8) px[i];
    }
  else
    s->f32 = g_steal_pointer (&px);
  return g_steal_pointer (&s);
}
