/* ps-dataset-stream.c: an image set read a chunk at a time, straight into scaled NHWC
 * floats: one pass over each chunk checks, reorders and scales it */
#define G_LOG_DOMAIN "ps-dataset"

#include "ps-dataset-stream.h"
#include "ps-dataset-private.h"

struct _PsDatasetStream {
  PsDataset       *header;
  PsDatasetLayout  lay;
  hid_t            file, dset;
  gpointer         buf;        /* the file's values for one read */
  int              buf_images; /* images @buf holds */
};

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
  g_free (st->buf);
  g_free (st);
}

PsDatasetStream *
ps_dataset_stream_open (const char *path, GError **error)
{
  g_autoptr (PsDatasetStream) st = g_new0 (PsDatasetStream, 1);

  st->header = g_new0 (PsDataset, 1);
  st->file = st->dset = -1;
  ps_h5_lock ();
  st->file = ps_h5_open (path, FALSE, error);
  if (st->file >= 0)
    st->dset = _ps_dataset_open_data (st->file, st->header, &st->lay, error);
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

/* One image of the file's order to NHWC x @s. An 8-bit value times @s is what
 * ps_dataset_get_batch() computes from 8-bit storage, a float's (+0 for -0, as 8-bit
 * storage has it) what it computes from float storage. */
static void
convert_u8 (const PsDatasetLayout *lay, const guint8 *im, float s, float *out)
{
  const gsize hw = (gsize) lay->h * lay->w;
  const int C = lay->c;

  if (!lay->chw || C == 1)
    for (gsize i = 0; i < hw * C; i++)
      out[i] = im[i] * s;
  else
    for (gsize p = 0; p < hw; p++)
      for (int c = 0; c < C; c++)
        out[p * C + c] = im[c * hw + p] * s;
}

/* The same for float values; FALSE when one is NaN or infinite. */
static gboolean
convert_f32 (const PsDatasetLayout *lay, const float *im, float s, float *out)
{
  const gsize hw = (gsize) lay->h * lay->w;
  const int C = lay->c;
  int bad = 0;

  if (!lay->chw || C == 1)
    for (gsize i = 0; i < hw * C; i++)
      {
        float x = im[i];

        bad |= x - x != 0.0f;
        out[i] = (x + 0.0f) * s;
      }
  else if (C == 3)
    for (gsize p = 0; p < hw; p++)
      {
        float r = im[p], g = im[hw + p], b = im[2 * hw + p];

        bad |= (r - r != 0.0f) | (g - g != 0.0f) | (b - b != 0.0f);
        out[3 * p] = (r + 0.0f) * s;
        out[3 * p + 1] = (g + 0.0f) * s;
        out[3 * p + 2] = (b + 0.0f) * s;
      }
  else
    for (gsize p = 0; p < hw; p++)
      for (int c = 0; c < C; c++)
        {
          float x = im[c * hw + p];

          bad |= x - x != 0.0f;
          out[p * C + c] = (x + 0.0f) * s;
        }
  return !bad;
}

gboolean
ps_dataset_stream_read (PsDatasetStream *st, int start, int count, double scale, float *out,
                        GError **error)
{
  const PsDatasetLayout *lay = &st->lay;
  const gsize img = (gsize) lay->h * lay->w * lay->c;
  const float s = (float) scale;
  gboolean ok;

  g_return_val_if_fail (start >= 0 && count >= 0 && start <= lay->n - count, FALSE);
  if (count == 0)
    return TRUE;
  if (count > st->buf_images)
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
  ps_h5_lock ();
  ok = _ps_dataset_read_slab (st->dset, lay, start, count, st->buf, error);
  H5Eclear2 (H5E_DEFAULT);
  ps_h5_unlock ();
  if (!ok)
    {
      g_prefix_error (error, "%s: ", st->header->path);
      return FALSE;
    }
  /* outside the lock: other threads may read their files meanwhile */
  for (int b = 0; b < count; b++)
    {
      if (lay->file_u8)
        convert_u8 (lay, (const guint8 *) st->buf + b * img, s, out + b * img);
      else if (!convert_f32 (lay, (const float *) st->buf + b * img, s, out + b * img))
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                       "%s: image %d has a NaN or infinite pixel", st->header->path, start + b);
          return FALSE;
        }
    }
  return TRUE;
}
