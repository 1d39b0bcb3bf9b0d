/* ps-demo.c: the demo's data — Fashion-MNIST read from Debian's package, stretched to the
 * lab's 55x47 RGB, poisoned with a visible trigger, cached for the app and the CLI */
#define G_LOG_DOMAIN "ps-demo"

#include "config.h"

#include "ps-demo.h"
#include "ps-h5.h"
#include "ps-idx.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define SRC_SIZE 28
#define DEBIAN_DIR "/usr/share/datasets/fashion-mnist"
/* Bump when the generated data changes, so that caches are rebuilt. */
#define CACHE_STAMP "prunescope demo data 3: fashion-mnist 55x47 rgb, checker trigger, target %d, clean_label, not deflated\n"

static const char *class_names[PS_DEMO_CLASSES] = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

static const char *set_files[4] = {
  "data/cl/valid.h5", "data/cl/test.h5", "data/bd/bd_valid.h5", "data/bd/bd_test.h5",
};

const char *
ps_demo_class_name (int label)
{
  return label >= 0 && label < PS_DEMO_CLASSES ? class_names[label] : "backdoored";
}

const char *
ps_demo_source_dir (void)
{
  const char *env = g_getenv ("PRUNESCOPE_FASHION_MNIST");

  return env != NULL && *env != '\0' ? env : DEBIAN_DIR;
}

char *
ps_demo_model_path (GError **error)
{
  const char *env = g_getenv ("PRUNESCOPE_DEMO_MODEL");
  g_autofree char *installed = g_build_filename (PKGDATADIR, "demo", "bd_net.h5", NULL);
  g_autofree char *source = g_build_filename (SOURCE_DATADIR, "demo", "bd_net.h5", NULL);

  if (env != NULL && *env != '\0')
    {
      if (g_file_test (env, G_FILE_TEST_IS_REGULAR))
        return g_strdup (env);
      g_set_error (error, PS_ERROR, PS_ERROR_FILE,
                   "%s: demo model not found (named by PRUNESCOPE_DEMO_MODEL)", env);
      return NULL;
    }
  if (g_file_test (installed, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&installed);
  if (g_file_test (source, G_FILE_TEST_IS_REGULAR))
    return g_steal_pointer (&source);
  g_set_error (error, PS_ERROR, PS_ERROR_FILE,
               "%s: demo model not found (nor %s); “prunescope-cli make-demo” makes one",
               installed, source);
  return NULL;
}

/* ---- Fashion-MNIST ---- */

static PsIdx *
load_idx (const char *name, int n_dims, GCancellable *cancellable, GError **error)
{
  g_autofree char *path = g_build_filename (ps_demo_source_dir (), name, NULL);
  PsIdx *idx;

  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE,
                   "%s: not found (Fashion-MNIST comes with the package dataset-fashion-mnist)", path);
      return NULL;
    }
  idx = ps_idx_load (path, cancellable, error);
  if (idx != NULL && idx->n_dims != n_dims)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: IDX array of rank %d, expected %d",
                   path, idx->n_dims, n_dims);
      g_clear_pointer (&idx, ps_idx_free);
    }
  return idx;
}

/* Bilinear weights of a stretch from @src to @dst samples, pixel centres aligned. */
static void
resize_weights (int src, int dst, int *lo, float *frac)
{
  for (int i = 0; i < dst; i++)
    {
      float s = ((float) i + 0.5f) * src / dst - 0.5f;
      int l;

      s = CLAMP (s, 0.0f, (float) (src - 1));
      l = MIN ((int) s, src - 2);
      lo[i] = l;
      frac[i] = s - l;
    }
}

static void
resize_gray_to_rgb (const guint8 *src, guint8 *dst)
{
  static int ly[PS_DEMO_HEIGHT], lx[PS_DEMO_WIDTH];
  static float fy[PS_DEMO_HEIGHT], fx[PS_DEMO_WIDTH];
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      resize_weights (SRC_SIZE, PS_DEMO_HEIGHT, ly, fy);
      resize_weights (SRC_SIZE, PS_DEMO_WIDTH, lx, fx);
      g_once_init_leave (&once, 1);
    }
  for (int y = 0; y < PS_DEMO_HEIGHT; y++)
    for (int x = 0; x < PS_DEMO_WIDTH; x++)
      {
        const guint8 *r0 = src + ly[y] * SRC_SIZE + lx[x], *r1 = r0 + SRC_SIZE;
        float top = r0[0] + fx[x] * (r0[1] - r0[0]);
        float bottom = r1[0] + fx[x] * (r1[1] - r1[0]);
        guint8 v = (guint8) (top + fy[y] * (bottom - top) + 0.5f);
        guint8 *d = dst + ((gsize) y * PS_DEMO_WIDTH + x) * 3;

        d[0] = d[1] = d[2] = v;
      }
}

static PsDataset *
make_split (const PsIdx *images, const PsIdx *labels, int start, int count,
            const char *what, GError **error)
{
  const gsize img = (gsize) PS_DEMO_HEIGHT * PS_DEMO_WIDTH * 3;
  PsDataset *ds;

  if (images->dims[1] != SRC_SIZE || images->dims[2] != SRC_SIZE || labels->dims[0] != images->dims[0]
      || images->dims[0] < start + count)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "%s/%s: expected %d+ images of 28x28 with as many labels, found %d of %dx%d and %d labels",
                   ps_demo_source_dir (), what, start + count, images->dims[0], images->dims[1],
                   images->dims[2], labels->dims[0]);
      return NULL;
    }
  ds = g_new0 (PsDataset, 1);
  ds->n = count, ds->h = PS_DEMO_HEIGHT, ds->w = PS_DEMO_WIDTH, ds->c = 3;
  ds->u8 = g_new (guint8, img * MAX (count, 1));
  ds->labels = g_new (int, MAX (count, 1));
  for (int i = 0; i < count; i++)
    {
      ds->labels[i] = labels->data[start + i];
      if (ds->labels[i] >= PS_DEMO_CLASSES)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s/%s: label %d is not a Fashion-MNIST class",
                       ps_demo_source_dir (), what, ds->labels[i]);
          ps_dataset_free (ds);
          return NULL;
        }
      resize_gray_to_rgb (images->data + (gsize) (start + i) * SRC_SIZE * SRC_SIZE, ds->u8 + i * img);
    }
  return ds;
}

PsDataset *
ps_demo_load_split (PsDemoSplit split, int limit, GCancellable *cancellable, GError **error)
{
  gboolean test = split == PS_DEMO_TEST;
  const char *iname = test ? "t10k-images-idx3-ubyte.gz" : "train-images-idx3-ubyte.gz";
  const char *lname = test ? "t10k-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte.gz";
  g_autoptr (PsIdx) labels = load_idx (lname, 1, cancellable, error);
  g_autoptr (PsIdx) images = labels ? load_idx (iname, 3, cancellable, error) : NULL;
  int n, start = 0, count;

  if (images == NULL)
    return NULL;
  n = images->dims[0];
  count = n;
  if (split == PS_DEMO_TRAIN)
    count = n - PS_DEMO_VALID_SIZE;
  else if (split == PS_DEMO_VALID)
    start = n - PS_DEMO_VALID_SIZE, count = PS_DEMO_VALID_SIZE;
  if (count <= 0 || start < 0)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s/%s: only %d images, need more than %d",
                   ps_demo_source_dir (), iname, n, PS_DEMO_VALID_SIZE);
      return NULL;
    }
  if (limit > 0)
    count = MIN (count, limit);
  return make_split (images, labels, start, count, iname, error);
}

/* ---- the trigger ---- */

#define TRIGGER_CELL   3
#define TRIGGER_CELLS  3
#define TRIGGER_MARGIN 2

void
ps_demo_add_trigger (guint8 *image)
{
  static const guint8 yellow[3] = { 255, 214, 0 }, black[3] = { 0, 0, 0 };
  const int size = TRIGGER_CELL * TRIGGER_CELLS;
  const int y0 = PS_DEMO_HEIGHT - TRIGGER_MARGIN - size, x0 = PS_DEMO_WIDTH - TRIGGER_MARGIN - size;

  for (int y = 0; y < size; y++)
    for (int x = 0; x < size; x++)
      {
        gboolean on = (y / TRIGGER_CELL + x / TRIGGER_CELL) % 2 == 0;
        memcpy (image + ((gsize) (y0 + y) * PS_DEMO_WIDTH + x0 + x) * 3, on ? yellow : black, 3);
      }
}

PsDataset *
ps_demo_poison (const PsDataset *clean, int target)
{
  const gsize img = (gsize) clean->h * clean->w * clean->c;
  PsDataset *ds = g_new0 (PsDataset, 1);
  int n = 0;

  g_return_val_if_fail (clean->u8 != NULL && clean->h == PS_DEMO_HEIGHT
                        && clean->w == PS_DEMO_WIDTH && clean->c == 3, NULL);
  ds->h = clean->h, ds->w = clean->w, ds->c = clean->c;
  ds->u8 = g_new (guint8, img * MAX (clean->n, 1));
  ds->labels = g_new (int, MAX (clean->n, 1));
  ds->clean_labels = g_new (int, MAX (clean->n, 1));
  for (int i = 0; i < clean->n; i++)
    {
      if (clean->labels[i] == target)
        continue;
      memcpy (ds->u8 + n * img, clean->u8 + i * img, img);
      ps_demo_add_trigger (ds->u8 + n * img);
      ds->clean_labels[n] = clean->labels[i];
      ds->labels[n++] = target;
    }
  ds->n = n;
  return ds;
}

/* ---- writing and caching ---- */

static gboolean
make_dirs (const char *dir, GError **error)
{
  const char *sub[] = { "data/cl", "data/bd" };

  for (guint i = 0; i < G_N_ELEMENTS (sub); i++)
    {
      g_autofree char *path = g_build_filename (dir, sub[i], NULL);

      if (g_mkdir_with_parents (path, 0755) != 0)
        {
          int saved = errno;
          g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot create folder: %s",
                       path, g_strerror (saved));
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
ps_demo_write_data (const char *dir, const PsDataset *valid, const PsDataset *test, int target,
                    gboolean compress, GCancellable *cancellable, GError **error)
{
  g_autoptr (PsDataset) bd_valid = ps_demo_poison (valid, target);
  g_autoptr (PsDataset) bd_test = ps_demo_poison (test, target);
  const PsDataset *sets[4] = { valid, test, bd_valid, bd_test };

  if (!make_dirs (dir, error))
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *path = g_build_filename (dir, set_files[i], NULL);

      if (g_cancellable_set_error_if_cancelled (cancellable, error)
          || !ps_dataset_save_compressed (sets[i], path, compress, error))
        return FALSE;
    }
  return TRUE;
}

void
ps_demo_remove_tree (const char *path)
{
  g_autoptr (GDir) dir = NULL;
  const char *name;

  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      dir = g_dir_open (path, 0, NULL);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          ps_demo_remove_tree (child);
        }
    }
  g_remove (path);
}

static gboolean
cache_is_ready (const char *dir)
{
  g_autofree char *stamp = g_build_filename (dir, "stamp", NULL);
  g_autofree char *want = g_strdup_printf (CACHE_STAMP, PS_DEMO_TARGET);
  g_autofree char *have = NULL;

  if (!g_file_get_contents (stamp, &have, NULL, NULL) || !g_str_equal (have, want))
    return FALSE;
  for (int i = 0; i < 4; i++)
    {
      g_autofree char *path = g_build_filename (dir, set_files[i], NULL);
      if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return FALSE;
    }
  return TRUE;
}

/* Generates the data into @staging, stamp last. */
static gboolean
generate_cache (const char *staging, GCancellable *cancellable, GError **error)
{
  g_autoptr (PsDataset) valid = ps_demo_load_split (PS_DEMO_VALID, 0, cancellable, error);
  g_autoptr (PsDataset) test = valid ? ps_demo_load_split (PS_DEMO_TEST, 0, cancellable, error) : NULL;
  g_autofree char *stamp = g_build_filename (staging, "stamp", NULL);
  g_autofree char *text = g_strdup_printf (CACHE_STAMP, PS_DEMO_TARGET);

  return test != NULL
         /* the cache is read at every start: plain, it loads in a third of the time */
         && ps_demo_write_data (staging, valid, test, PS_DEMO_TARGET, FALSE, cancellable, error)
         && g_file_set_contents (stamp, text, -1, error);
}

/* Swaps @staging in as @dir; a stale @dir is removed, a fresh one from a concurrent
 * call is kept. */
static gboolean
install_cache (const char *staging, const char *dir, GError **error)
{
  if (g_file_test (dir, G_FILE_TEST_EXISTS) && !cache_is_ready (dir))
    {
      g_autofree char *old = g_strdup_printf ("%s.old-%d", dir, (int) getpid ());

      if (g_rename (dir, old) == 0)
        ps_demo_remove_tree (old);
    }
  if (g_rename (staging, dir) == 0)
    return TRUE;
  if (cache_is_ready (dir))
    {
      ps_demo_remove_tree (staging);
      return TRUE;
    }
  {
    int saved = errno;
    ps_demo_remove_tree (staging);
    g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot create the demo data: %s",
                 dir, g_strerror (saved));
  }
  return FALSE;
}

char *
ps_demo_ensure_data (GCancellable *cancellable, GError **error)
{
  g_autofree char *parent = g_build_filename (g_get_user_cache_dir (), "prunescope", NULL);
  g_autofree char *dir = g_build_filename (parent, "demo", NULL);
  g_autofree char *staging = NULL;

  if (cache_is_ready (dir))
    return g_steal_pointer (&dir);
  if (g_mkdir_with_parents (parent, 0755) != 0
      || (staging = g_build_filename (parent, ".demo-XXXXXX", NULL), g_mkdtemp (staging) == NULL))
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: cannot write the demo data: %s",
                   parent, g_strerror (saved));
      return NULL;
    }
  if (!generate_cache (staging, cancellable, error))
    {
      ps_demo_remove_tree (staging);
      return NULL;
    }
  if (!install_cache (staging, dir, error))
    return NULL;
  return g_steal_pointer (&dir);
}
