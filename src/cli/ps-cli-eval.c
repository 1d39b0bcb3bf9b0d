/* ps-cli-eval.c: "eval" — classify images, or score a model (B, B' or G) on data */
#define G_LOG_DOMAIN "prunescope-cli"

#include <stdio.h>
#include <string.h>

#include "ps-cli.h"
#include "ps-dataset-stream.h"
#include "ps-h5.h"
#include "ps-image.h"
#include "ps-infer.h"
#include "ps-repaired.h"

/* A plain model, or a G (whose class may be n_classes, "backdoored"). */
typedef struct {
  PsModel    *m;
  PsRepaired *g;
} Net;

static void
net_clear (Net *net)
{
  g_clear_pointer (&net->g, ps_repaired_free);
  g_clear_pointer (&net->m, ps_model_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Net, net_clear)

static gboolean
net_load (Net *net, const char *path, const char *scale, GError **error)
{
  if (!ps_repaired_file_is_g (path))
    return (net->m = ps_cli_load_model (path, scale, error)) != NULL;
  net->g = ps_repaired_load (path, error);
  if (net->g == NULL)
    return FALSE;
  if (scale != NULL)
    ps_cli_parse_scale (scale, &net->g->b_prime->input_scale);
  net->g->b->input_scale = net->g->b_prime->input_scale;
  net->m = ps_model_copy (net->g->b_prime); /* what its inputs and path are */
  return TRUE;
}

static gboolean
net_classify (const Net *net, const PsDataset *ds, int *classes, GError **error)
{
  return net->g ? ps_repaired_classify (net->g, ds, classes, NULL, error)
                : ps_infer_classes (net->m, ds, classes, NULL, error);
}

static int
eval_images (const Net *net, char **paths, int n)
{
  const PsModel *m = net->m;
  PsShape in = m->layers[m->input]->out;
  gsize img = (gsize) in.h * in.w * in.c;
  g_autofree guint8 *pixels = g_new (guint8, img * n);
  g_autofree int *labels = g_new0 (int, n);
  g_autofree int *classes = g_new (int, n);
  g_autoptr (PsDataset) ds = NULL;
  g_autoptr (GError) error = NULL;

  if (in.c != 3)
    {
      g_set_error (&error, PS_ERROR, PS_ERROR_UNSUPPORTED, "%s: the model takes %d channels, not RGB",
                   m->path, in.c);
      return ps_cli_fail (error);
    }
  for (int i = 0; i < n; i++)
    {
      g_autofree guint8 *rgb = ps_image_load_rgb (paths[i], in.h, in.w, &error);
      if (rgb == NULL)
        return ps_cli_fail (error);
      memcpy (pixels + i * img, rgb, img);
    }
  ds = ps_dataset_new_u8 (n, in.h, in.w, in.c, pixels, labels);
  if (!net_classify (net, ds, classes, &error))
    return ps_cli_fail (error);
  for (int i = 0; i < n; i++)
    printf ("%s\t%d\n", paths[i], classes[i]);
  return PS_EXIT_OK;
}

/* Images classified per round: a few of the stream's reads, enough batches for every core. */
#define SCORE_IMAGES 1024

/* The set is read a chunk at a time (never held whole), each chunk classified in turn.
 * The stream gives the file's values as floats (scale 1), which the model scales as it
 * would scale the loaded set: the same products, the same classes. */
static gboolean
score (const Net *net, const char *path, double *acc, GError **error)
{
  const PsModel *m = net->m;
  g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (path, error);
  const PsDataset *h;
  g_autofree float *pixels = NULL;
  g_autofree int *classes = NULL;
  PsDataset chunk = { 0 };
  gsize img;
  int per, read_max;

  if (st == NULL || !ps_infer_check_dataset (m, h = ps_dataset_stream_header (st), error))
    return FALSE;
  img = (gsize) h->h * h->w * h->c;
  per = CLAMP (h->n, 1, SCORE_IMAGES);
  read_max = ps_dataset_stream_chunk (st);
  pixels = g_try_malloc (img * per * sizeof (float));
  if (pixels == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_LIMIT, "%s: not enough memory for %d images", path, per);
      return FALSE;
    }
  classes = g_new (int, MAX (h->n, 1));
  chunk = (PsDataset) { .h = h->h, .w = h->w, .c = h->c, .f32 = pixels, .path = h->path };
  for (int start = 0; start < h->n; start += per)
    {
      chunk.n = MIN (per, h->n - start);
      for (int at = 0; at < chunk.n; at += read_max)
        if (!ps_dataset_stream_read (st, start + at, MIN (read_max, chunk.n - at), 1.0,
                                     pixels + at * img, error))
          return FALSE;
      chunk.labels = h->labels + start;
      if (!net_classify (net, &chunk, classes + start, error))
        return FALSE;
    }
  *acc = ps_infer_accuracy (classes, h->labels, h->n);
  return TRUE;
}

int
ps_cli_eval (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *data = NULL, *poisoned = NULL, *scale = NULL;
  g_auto (GStrv) images = NULL;
  g_auto (Net) net = { NULL };
  g_autoptr (GError) error = NULL;
  double s, acc;
  char num[G_ASCII_DTOSTR_BUF_SIZE];
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Model, weights or G file (HDF5)", "FILE" },
    { "data", 'd', 0, G_OPTION_ARG_FILENAME, &data, "Clean data: print classification accuracy", "FILE" },
    { "poisoned", 'p', 0, G_OPTION_ARG_FILENAME, &poisoned, "Poisoned data: print attack success rate", "FILE" },
    { "input-scale", 's', 0, G_OPTION_ARG_STRING, &scale, "Pixel scale: 1 (raw 0..255) or 1/255", "S" },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &images, NULL, "IMAGE…" },
    { NULL },
  };

  if (!ps_cli_parse ("eval", "--model FILE (IMAGE… | --data FILE [--poisoned FILE])",
                     "classify images or score data", entries, &argc, &argv))
    return PS_EXIT_USAGE;
  if (model_path == NULL || (scale && !ps_cli_parse_scale (scale, &s))
      || (images == NULL && data == NULL && poisoned == NULL)
      || (images != NULL && (data != NULL || poisoned != NULL)))
    {
      g_printerr ("prunescope-cli eval: need --model and either images or --data/--poisoned%s\n",
                  scale ? " (and --input-scale 1, 1/255 or a positive number)" : "");
      ps_cli_usage_error = TRUE;
      return PS_EXIT_USAGE;
    }
  if (!net_load (&net, model_path, scale, &error))
    return ps_cli_fail (error);
  if (images != NULL)
    return eval_images (&net, images, g_strv_length (images));

  if (data != NULL)
    {
      if (!score (&net, data, &acc, &error))
        return ps_cli_fail (error);
      /* a decimal point in every locale, as the lab's eval.py prints */
      printf ("Clean Classification accuracy: %s %%\n", g_ascii_formatd (num, sizeof num, "%.4f", acc));
    }
  if (poisoned != NULL)
    {
      if (!score (&net, poisoned, &acc, &error))
        return ps_cli_fail (error);
      printf ("Attack Success Rate: %s %%\n", g_ascii_formatd (num, sizeof num, "%.4f", acc));
    }
  return PS_EXIT_OK;
}
