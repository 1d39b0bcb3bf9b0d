/* ps-sweep-feed.c: a set's images for the first pass, read by a thread of their own a
 * chunk ahead of the workers, into a few buffers reused round and round: the reading
 * overlaps with the computing and the set is never held whole */
#define G_LOG_DOMAIN "ps-sweep"

#include "ps-sweep-private.h"
#include "ps-error.h"
#include "ps-huge.h"

struct _PsSweepFeed {
  PsDatasetStream *stream;
  GCancellable    *cancellable;
  double           scale;
  gboolean         planar;    /* channel planes, for a first layer that reads them */
  gboolean         bytes;     /* the file's bytes in the slots, for the workers to convert */
  int              n, batch, chunk_batches, n_chunks;
  gsize            img;
  gsize            esize;     /* bytes per value in the slots */
  guint8          *slot[PS_SWEEP_FEED_SLOTS];
  GThread         *thread;
  GMutex           lock;
  GCond            cond;
  int              filled;    /* batches read */
  int             *left;      /* per chunk: its batches not released yet */
  gboolean         failed;    /* the reading stopped on an error (or a cancel) */
  gboolean         stop;      /* the pass is over: the reader leaves */
  GError          *error;
};

static gpointer
feed_main (gpointer data)
{
  PsSweepFeed *f = data;
  const int chunk_images = f->chunk_batches * f->batch;

  for (int j = 0; j < f->n_chunks; j++)
    {
      guint8 *slot = f->slot[j % PS_SWEEP_FEED_SLOTS];
      gboolean ok;

      g_mutex_lock (&f->lock);
      while (!f->stop && j >= PS_SWEEP_FEED_SLOTS && f->left[j - PS_SWEEP_FEED_SLOTS] > 0)
        g_cond_wait (&f->cond, &f->lock);
      ok = !f->stop;
      g_mutex_unlock (&f->lock);
      if (!ok)
        break;
      /* The first chunk in two reads, its first batch alone: the workers start on it
       * while the reader reads the rest. (Reading every chunk a batch at a time could
       * decompress a file's larger chunks again for each batch.) */
      for (int b = 0; ok && b < f->chunk_batches && j * chunk_images + b * f->batch < f->n;)
        {
          int nb = j == 0 && b == 0 ? 1 : f->chunk_batches - b;
          int start = j * chunk_images + b * f->batch, count = MIN (nb * f->batch, f->n - start);
          guint8 *at = slot + (gsize) b * f->batch * f->img * f->esize;
          GError *error = NULL;

          ok = !g_cancellable_set_error_if_cancelled (f->cancellable, &error);
          if (ok && f->bytes)
            ok = ps_dataset_stream_read_bytes (f->stream, start, count, at, &error);
          else if (ok)
            ok = (f->planar ? ps_dataset_stream_read_planar : ps_dataset_stream_read) (
                   f->stream, start, count, f->scale, (float *) at, &error);
          b += nb;
          g_mutex_lock (&f->lock);
          if (ok)
            f->filled = j * f->chunk_batches + b;
          else
            {
              f->failed = TRUE;
              f->error = error;
            }
          g_cond_broadcast (&f->cond);
          g_mutex_unlock (&f->lock);
        }
      if (!ok)
        break;
    }
  return NULL;
}

PsSweepFeed *
_ps_sweep_feed_start (PsDatasetStream *stream, int batch, double scale, gboolean planar,
                      PsSweepFeedSlots *slots, GCancellable *cancellable, GError **error)
{
  const PsDataset *h = ps_dataset_stream_header (stream);
  PsSweepFeed *f = g_new0 (PsSweepFeed, 1);
  gsize slot_bytes;

  f->stream = stream;
  f->cancellable = cancellable;
  f->scale = scale;
  f->planar = planar;
  f->bytes = ps_dataset_stream_is_u8 (stream);
  f->esize = f->bytes ? 1 : sizeof (float);
  f->n = h->n;
  f->batch = batch;
  f->img = (gsize) h->h * h->w * h->c;
  /* whole batches per chunk, the chunk about the size the stream reads at once */
  f->chunk_batches = MAX (1, ps_dataset_stream_chunk (stream) / batch);
  f->n_chunks = (f->n + f->chunk_batches * batch - 1) / (f->chunk_batches * batch);
  f->left = g_new (int, MAX (f->n_chunks, 1));
  for (int j = 0; j < f->n_chunks; j++)
    f->left[j] = MIN (f->chunk_batches, (f->n - j * f->chunk_batches * batch + batch - 1) / batch);
  slot_bytes = f->esize * f->img * f->chunk_batches * batch;
  if (slots->bytes < slot_bytes)
    {
      gboolean ok = TRUE;

      _ps_sweep_feed_slots_clear (slots);
      for (int i = 0; i < PS_SWEEP_FEED_SLOTS; i++)
        ok = ok && (slots->slot[i] = ps_huge_try_alloc (slot_bytes)) != NULL;
      if (!ok)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "%s: not enough memory to read %d images",
                       h->path, f->chunk_batches * batch);
          _ps_sweep_feed_slots_clear (slots);
          _ps_sweep_feed_finish (f, NULL);
          return NULL;
        }
      slots->bytes = slot_bytes;
    }
  for (int i = 0; i < PS_SWEEP_FEED_SLOTS; i++)
    f->slot[i] = slots->slot[i];
  g_mutex_init (&f->lock);
  g_cond_init (&f->cond);
  f->thread = g_thread_new ("ps-read", feed_main, f);
  return f;
}

gboolean
_ps_sweep_feed_has_bytes (PsSweepFeed *f)
{
  return f->bytes;
}

gconstpointer
_ps_sweep_feed_get (PsSweepFeed *f, int batch)
{
  int j = batch / f->chunk_batches;
  const guint8 *px = NULL;

  g_mutex_lock (&f->lock);
  while (!f->failed && f->filled <= batch)
    g_cond_wait (&f->cond, &f->lock);
  if (!f->failed)
    px = f->slot[j % PS_SWEEP_FEED_SLOTS]
         + (gsize) (batch - j * f->chunk_batches) * f->batch * f->img * f->esize;
  g_mutex_unlock (&f->lock);
  return px;
}

void
_ps_sweep_feed_release (PsSweepFeed *f, int batch)
{
  int j = batch / f->chunk_batches;

  g_mutex_lock (&f->lock);
  if (--f->left[j] == 0)
    g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

gboolean
_ps_sweep_feed_finish (PsSweepFeed *f, GError **error)
{
  gboolean ok;

  if (f->thread != NULL)
    {
      g_mutex_lock (&f->lock);
      f->stop = TRUE;
      g_cond_broadcast (&f->cond);
      g_mutex_unlock (&f->lock);
      g_thread_join (f->thread);
      g_mutex_clear (&f->lock);
      g_cond_clear (&f->cond);
    }
  ok = f->error == NULL;
  if (f->error != NULL)
    g_propagate_error (error, f->error);
  g_free (f->left);
  g_free (f);
  return ok;
}

void
_ps_sweep_feed_slots_clear (PsSweepFeedSlots *slots)
{
  for (int i = 0; i < PS_SWEEP_FEED_SLOTS; i++)
    g_clear_pointer (&slots->slot[i], g_free);
  slots->bytes = 0;
}
