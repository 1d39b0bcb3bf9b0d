/* ps-fuzz.c: what the fuzz targets share */
#define G_LOG_DOMAIN "ps-fuzz"

#include "ps-fuzz.h"
#include "ps-h5.h"
#include "ps-infer.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>


/* Sanitizer settings every run of a target gets (ASAN_OPTIONS / LSAN_OPTIONS add to them).
 * HDF5 mallocs sizes it read from damaged metadata and copes with NULL, as glibc returns
 * in production: only a NULL that reaches Prunescope's own g_malloc is a defect (GLib then
 * aborts). Leaks inside libhdf5 and the image loaders are theirs, not the readers'. */
const char *__asan_default_options (void);
const char *__lsan_default_suppressions (void);

const char *
__asan_default_options (void)
{
  return "allocator_may_return_null=1";
}

const char *
__lsan_default_suppressions (void)
{
  return "leak:libhdf5\nleak:libgdk_pixbuf\nleak:libpng\nleak:libjpeg\n";
}

static char *dir;
static GHashTable *paths;

static void
remove_dir (void)
{
  GHashTableIter it;
  gpointer path;

  if (paths == NULL)
    return;
  g_hash_table_iter_init (&it, paths);
  while (g_hash_table_iter_next (&it, NULL, &path))
    g_unlink (path);
  g_rmdir (dir);
}

/* A critical (a failed g_return_if_fail, in json-glib for instance) is a defect the reader
 * let through. GLib stops on fatal messages with SIGTRAP, which the fuzzer does not catch;
 * abort() it catches and records. */
static void
log_handler (const char *domain, GLogLevelFlags level, const char *message, gpointer data)
{
  if ((level & G_LOG_LEVEL_ERROR) != 0
      || ((level & G_LOG_LEVEL_CRITICAL) != 0 && GPOINTER_TO_INT (data)))
    {
      /* GLib's own handler would stop the process with SIGTRAP itself. */
      fprintf (stderr, "%s: %s\n", domain ? domain : "(process)", message);
      abort ();
    }
  g_log_default_handler (domain, level, message, data);
}

void
ps_fuzz_init (void)
{
  const char *base;

  if (dir != NULL)
    return;
  g_setenv ("PRUNESCOPE_THREADS", "1", TRUE);
  ps_h5_init ();
  g_log_set_default_handler (log_handler,
                             GINT_TO_POINTER (g_strcmp0 (g_getenv ("PS_FUZZ_CRITICALS"), "warn") != 0));
  /* Memory-backed when possible: the fuzzer writes every input once. */
  base = g_file_test ("/dev/shm", G_FILE_TEST_IS_DIR) && access ("/dev/shm", W_OK) == 0
         ? "/dev/shm" : g_get_tmp_dir ();
  dir = g_build_filename (base, "prunescope-fuzz-XXXXXX", NULL);
  if (g_mkdtemp (dir) == NULL)
    {
      fprintf (stderr, "ps-fuzz: cannot create %s\n", dir);
      abort ();
    }
  paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  atexit (remove_dir);
}

const char *
ps_fuzz_write (const uint8_t *data, size_t size, const char *name)
{
  char *path = g_hash_table_lookup (paths, name);
  FILE *f;

  if (path == NULL)
    {
      path = g_build_filename (dir, name, NULL);
      g_hash_table_insert (paths, g_strdup (name), path);
    }
  f = fopen (path, "wb");
  if (f == NULL || (size > 0 && fwrite (data, 1, size, f) != size) || fclose (f) != 0)
    {
      fprintf (stderr, "ps-fuzz: cannot write %s\n", path);
      abort ();
    }
  return path;
}

void
ps_fuzz_check_error (const GError *error)
{
  if (error == NULL || error->message == NULL || error->message[0] == '\0')
    {
      fprintf (stderr, "ps-fuzz: a reader failed without saying why\n");
      abort ();
    }
  if (g_getenv ("PS_FUZZ_VERBOSE") != NULL)
    fprintf (stderr, "ps-fuzz: %s\n", error->message);
}

void
ps_fuzz_check_handles (void)
{
  ssize_t open_ids;

  ps_h5_lock ();
  open_ids = H5Fget_obj_count (H5F_OBJ_ALL, H5F_OBJ_ALL);
  ps_h5_unlock ();
  if (open_ids != 0)
    {
      fprintf (stderr, "ps-fuzz: %zd HDF5 identifiers still open after the input\n", open_ids);
      abort ();
    }
}

/* Small enough to run quickly, and every weight there. */
static gboolean
runnable (const PsModel *model)
{
  gsize activations = 0;
  const PsShape in = model->layers[model->input]->out;

  if (ps_model_n_params (model) > PS_FUZZ_RUN_MAX_PARAMS)
    return FALSE;
  for (int i = 0; i < model->n_layers; i++)
    {
      const PsLayer *l = model->layers[i];
      gsize s;

      if (ps_layer_has_weights (l) && (l->kernel == NULL || l->bias == NULL))
        return FALSE;
      s = ps_shape_size (l->out);
      if (s > PS_FUZZ_RUN_MAX_ACTIVATIONS || activations + s > PS_FUZZ_RUN_MAX_ACTIVATIONS)
        return FALSE;
      activations += s;
    }
  return in.h > 0 && in.w > 0 && in.c > 0;
}

static PsDataset *
blank_image (const PsModel *model)
{
  const PsShape in = model->layers[model->input]->out;
  g_autofree guint8 *px = g_malloc0 ((gsize) in.h * in.w * in.c);
  int label = 0;

  return ps_dataset_new_u8 (1, in.h, in.w, in.c, px, &label);
}

void
ps_fuzz_exercise_repaired (const PsRepaired *g)
{
  g_autoptr (PsRepaired) copy = NULL;
  g_autoptr (PsDataset) ds = NULL;
  g_autoptr (GError) error = NULL;
  int cls = -1;

  ps_fuzz_exercise_model (g->b);
  ps_fuzz_exercise_model (g->b_prime);
  if (!runnable (g->b) || !runnable (g->b_prime))
    return;
  copy = ps_repaired_copy (g);
  ds = blank_image (g->b);
  if (ps_repaired_classify (copy, ds, &cls, NULL, &error)
      && (cls < 0 || cls > ps_repaired_n_classes (copy)))
    {
      fprintf (stderr, "ps-fuzz: G class %d out of range (%d classes)\n", cls,
               ps_repaired_n_classes (copy));
      abort ();
    }
}

void
ps_fuzz_exercise_model (const PsModel *model)
{
  g_autoptr (PsModel) copy = NULL;
  g_autoptr (PsDataset) ds = NULL;
  g_autoptr (GError) error = NULL;
  int cls = -1;

  if (!runnable (model))
    return;
  copy = ps_model_copy (model);
  ds = blank_image (model);
  if (ps_infer_classes (copy, ds, &cls, NULL, &error)
      && (cls < 0 || cls >= copy->n_classes))
    {
      fprintf (stderr, "ps-fuzz: class %d out of range (%d classes)\n", cls, copy->n_classes);
      abort ();
    }
}

void
ps_fuzz_exercise_dataset (const PsDataset *ds)
{
  g_autofree float *img = NULL;

  if (ds->n < 1)
    return;
  img = g_new (float, (gsize) ds->h * ds->w * ds->c);
  ps_dataset_get_batch (ds, 0, 1, 1.0 / 255, img);
  for (int i = 0; i < ds->n; i++)
    if (ds->labels[i] < 0)
      {
        fprintf (stderr, "ps-fuzz: label %d of image %d accepted\n", ds->labels[i], i);
        abort ();
      }
}
