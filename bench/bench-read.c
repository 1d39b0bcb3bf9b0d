/* bench-read: the CPU time of getting image sets into the floats a model's first layer
 * takes, one thread, three ways: loading each set whole then copying it out batch by batch
 * (ps_dataset_load + ps_dataset_get_batch, as the app does), reading it a chunk at a time
 * (PsDatasetStream), and the same as channel planes (as the CLI sweep does for DeepID, whose
 * conv_1 reads planes). Each way runs three times, alternating; the best of each is printed.
 * Usage: bench-read FILE.h5... */
#define G_LOG_DOMAIN "bench-read"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ps-dataset.h"
#include "ps-dataset-stream.h"

#define BATCH 64

static double
cpu_now (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
wall_now (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* A checksum of every 97th value of the whole set (@first: the index of v[0] in it)
 * keeps the compiler from dropping the work and says whether both ways agree. */
static guint64
sum (const float *v, gsize first, gsize n)
{
  guint64 s = 0;

  for (gsize i = (97 - first % 97) % 97; i < n; i += 97)
    {
      guint32 bits;

      memcpy (&bits, &v[i], sizeof bits);
      s += bits * (guint64) (first + i);
    }
  return s;
}

/* The same checksum from a chunk of channel planes (images of @hw pixels, @c channels). */
static guint64
sum_planar (const float *v, gsize first, gsize n, gsize hw, int c)
{
  guint64 s = 0;
  gsize img = hw * c;

  for (gsize i = (97 - first % 97) % 97; i < n; i += 97)
    {
      gsize b = i / img, r = i % img;
      guint32 bits;

      memcpy (&bits, &v[b * img + (r % c) * hw + r / c], sizeof bits);
      s += bits * (guint64) (first + i);
    }
  return s;
}

static guint64
whole (const char *path, double scale, int *n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) ds = ps_dataset_load (path, &error);
  g_autofree float *out = NULL;
  gsize img;
  guint64 check = 0;

  if (ds == NULL)
    g_error ("%s", error->message);
  img = (gsize) ds->h * ds->w * ds->c;
  out = g_new (float, img * BATCH);
  for (int start = 0; start < ds->n; start += BATCH)
    {
      int count = MIN (BATCH, ds->n - start);

      ps_dataset_get_batch (ds, start, count, scale, out);
      check += sum (out, img * start, img * count);
    }
  *n = ds->n;
  return check;
}

static guint64
streamed (const char *path, double scale, gboolean planar, int *n)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (path, &error);
  const PsDataset *h;
  g_autofree float *out = NULL;
  gsize img;
  int chunk;
  guint64 check = 0;

  if (st == NULL)
    g_error ("%s", error->message);
  h = ps_dataset_stream_header (st);
  img = (gsize) h->h * h->w * h->c;
  chunk = ps_dataset_stream_chunk (st);
  out = g_new (float, img * chunk);
  for (int start = 0; start < h->n; start += chunk)
    {
      int count = MIN (chunk, h->n - start);

      if (!(planar ? ps_dataset_stream_read_planar : ps_dataset_stream_read) (st, start, count, scale,
                                                                              out, &error))
        g_error ("%s", error->message);
      check += planar ? sum_planar (out, img * start, img * count, (gsize) h->h * h->w, h->c)
                      : sum (out, img * start, img * count);
    }
  *n = h->n;
  return check;
}

int
main (int argc, char **argv)
{
  double best[3][2] = { { G_MAXDOUBLE, G_MAXDOUBLE }, { G_MAXDOUBLE, G_MAXDOUBLE },
                        { G_MAXDOUBLE, G_MAXDOUBLE } };
  guint64 checks[3] = { 0, 0, 0 };
  int images = 0;

  if (argc < 2)
    {
      fprintf (stderr, "usage: bench-read FILE.h5...\n");
      return 2;
    }
  for (int round = 0; round < 3; round++)
    for (int way = 0; way < 3; way++)
      {
        double c0 = cpu_now (), w0 = wall_now ();

        images = 0;
        checks[way] = 0;
        for (int i = 1; i < argc; i++)
          {
            int n;

            checks[way] += way == 0 ? whole (argv[i], 1.0 / 255, &n)
                                    : streamed (argv[i], 1.0 / 255, way == 2, &n);
            images += n;
          }
        best[way][0] = MIN (best[way][0], cpu_now () - c0);
        best[way][1] = MIN (best[way][1], wall_now () - w0);
      }
  printf ("%d images in %d files, one thread, best of 3\n", images, argc - 1);
  printf ("load whole + batches: %6.2f CPU s  %6.2f s wall\n", best[0][0], best[0][1]);
  printf ("read in chunks:       %6.2f CPU s  %6.2f s wall\n", best[1][0], best[1][1]);
  printf ("  as channel planes:  %6.2f CPU s  %6.2f s wall\n", best[2][0], best[2][1]);
  printf ("same floats: %s\n", checks[0] == checks[1] && checks[0] == checks[2] ? "yes (checksums equal)" : "NO");
  return checks[0] == checks[1] && checks[0] == checks[2] ? 0 : 1;
}
