/* test-demo.c: the demo BadNet end to end on a small scale — IDX reading, the demo data and
 * its cache, make-demo, fine-pruning through the CLI and the G it saves, and bad input */
#define G_LOG_DOMAIN "test-demo"

#include <glib/gstdio.h>
#include <string.h>

#include "ps-demo.h"
#include "ps-finetune.h"
#include "ps-h5.h"
#include "ps-idx.h"
#include "ps-repaired.h"
#include "ps-test-util.h"

static gboolean
have_fashion_mnist (void)
{
  g_autofree char *path = g_build_filename (ps_demo_source_dir (), "train-images-idx3-ubyte.gz", NULL);

  if (g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  g_test_skip ("Fashion-MNIST (dataset-fashion-mnist) is not installed");
  return FALSE;
}

/* Writes an IDX file of unsigned bytes, gzip-compressed, cut after @keep bytes of the
 * uncompressed stream (-1: whole). */
static void
write_idx (const char *path, int n_dims, const int *dims, const guint8 *data, gssize keep)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileOutputStream) raw = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, NULL);
  g_autoptr (GZlibCompressor) gz = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
  g_autoptr (GOutputStream) out = g_converter_output_stream_new (G_OUTPUT_STREAM (raw), G_CONVERTER (gz));
  g_autoptr (GByteArray) bytes = g_byte_array_new ();
  guint8 head[4] = { 0, 0, 8, (guint8) n_dims };
  gsize len = 1;

  g_byte_array_append (bytes, head, 4);
  for (int i = 0; i < n_dims; i++)
    {
      guint8 be[4] = { dims[i] >> 24, dims[i] >> 16, dims[i] >> 8, dims[i] };
      g_byte_array_append (bytes, be, 4);
      len *= dims[i];
    }
  g_byte_array_append (bytes, data, len);
  g_assert_true (g_output_stream_write_all (out, bytes->data, keep < 0 ? bytes->len : (gsize) keep,
                                            NULL, NULL, NULL));
  g_assert_true (g_output_stream_close (out, NULL, NULL));
}

static void
test_idx_read (void)
{
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "small-idx3-ubyte.gz", NULL);
  g_autofree char *cut = g_build_filename (ps_test_tmpdir (), "cut-idx3-ubyte.gz", NULL);
  g_autofree char *plain = g_build_filename (ps_test_tmpdir (), "plain-idx3-ubyte", NULL);
  const int dims[3] = { 5, 4, 3 };
  guint8 data[60];
  g_autoptr (PsIdx) idx = NULL;
  g_autoptr (GError) error = NULL;

  for (int i = 0; i < 60; i++)
    data[i] = (guint8) (i * 7);
  write_idx (path, 3, dims, data, -1);
  idx = ps_idx_load (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (idx->n_dims, ==, 3);
  g_assert_cmpint (idx->dims[0], ==, 5);
  g_assert_cmpint (idx->dims[2], ==, 3);
  g_assert_cmpmem (idx->data, idx->len, data, sizeof data);

  /* A valid gzip stream of a cut IDX file. */
  write_idx (cut, 3, dims, data, 40);
  g_assert_null (ps_idx_load (cut, NULL, &error));
  g_assert_nonnull (strstr (error->message, cut));
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);

  /* A gzip file cut short. */
  {
    g_autofree char *text = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (path, &text, &len, NULL));
    g_assert_true (g_file_set_contents (cut, text, len / 2, NULL));
  }
  g_assert_null (ps_idx_load (cut, NULL, &error));
  g_assert_nonnull (strstr (error->message, cut));
  g_assert_nonnull (strstr (error->message, "truncated"));
  g_clear_error (&error);

  /* Not IDX at all. */
  g_assert_true (g_file_set_contents (cut, "PK\3\4 not an idx", -1, NULL));
  g_rename (cut, path);
  g_assert_null (ps_idx_load (path, NULL, &error));
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);

  /* Uncompressed, with the wrong magic. */
  g_assert_true (g_file_set_contents (plain, "\1\0\x08\3 not an idx", 16, NULL));
  g_assert_null (ps_idx_load (plain, NULL, &error));
  g_assert_error (error, PS_ERROR, PS_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, "not an IDX file"));
}

static void
test_trigger_and_poison (void)
{
  const gsize img = PS_DEMO_HEIGHT * PS_DEMO_WIDTH * 3;
  g_autofree guint8 *px = g_new0 (guint8, img * 4);
  const int labels[4] = { 0, 3, 0, 7 };
  g_autoptr (PsDataset) clean = NULL, bd = NULL;
  gsize changed = 0;

  for (gsize i = 0; i < img * 4; i++)
    px[i] = (guint8) (i % 97 + 100);
  clean = ps_dataset_new_u8 (4, PS_DEMO_HEIGHT, PS_DEMO_WIDTH, 3, px, labels);
  bd = ps_demo_poison (clean, 0);
  /* Images of the target class are left out; the rest carry the trigger, labelled 0. */
  g_assert_cmpint (bd->n, ==, 2);
  g_assert_cmpint (bd->labels[0], ==, 0);
  g_assert_cmpint (bd->labels[1], ==, 0);
  /* ...and remember what they were. */
  g_assert_nonnull (bd->clean_labels);
  g_assert_cmpint (bd->clean_labels[0], ==, 3);
  g_assert_cmpint (bd->clean_labels[1], ==, 7);
  for (gsize i = 0; i < img; i++)
    if (bd->u8[i] != clean->u8[img + i])
      {
        int y = i / 3 / PS_DEMO_WIDTH, x = i / 3 % PS_DEMO_WIDTH;
        g_assert_cmpint (y, >=, PS_DEMO_HEIGHT / 2);
        g_assert_cmpint (x, >=, PS_DEMO_WIDTH / 2);
        /* The same patch on every poisoned image. */
        g_assert_cmpint (bd->u8[i], ==, bd->u8[img + i]);
        changed++;
      }
  /* Visible: a patch of dozens of pixels, both dark and bright cells. */
  g_assert_cmpuint (changed, >, 100);
}

static void
test_ensure_data (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL, *again = NULL, *valid_path = NULL, *bd_path = NULL;
  g_autoptr (PsDataset) valid = NULL, bd = NULL;
  GStatBuf st;
  gint64 start = g_get_monotonic_time ();
  double seconds;
  guint64 inode;

  if (!have_fashion_mnist ())
    return;
  dir = ps_demo_ensure_data (NULL, &error);
  seconds = (g_get_monotonic_time () - start) / 1e6;
  g_assert_no_error (error);
  /* how long is for benchmarks to judge; the test only reports it */
  g_test_message ("demo data made in %.1f s", seconds);
  g_assert_true (g_str_has_prefix (dir, g_get_user_cache_dir ()));

  valid_path = g_build_filename (dir, "data", "cl", "valid.h5", NULL);
  bd_path = g_build_filename (dir, "data", "bd", "bd_test.h5", NULL);
  valid = ps_dataset_load (valid_path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (valid->n, ==, PS_DEMO_VALID_SIZE);
  g_assert_cmpint (valid->h, ==, 55);
  g_assert_cmpint (valid->w, ==, 47);
  g_assert_nonnull (valid->u8);
  bd = ps_dataset_load (bd_path, &error);
  g_assert_no_error (error);
  for (int i = 0; i < bd->n; i++)
    g_assert_cmpint (bd->labels[i], ==, PS_DEMO_TARGET);
  g_assert_cmpint (bd->n, >, 8000);
  g_assert_cmpint (bd->n, <, 10000);

  /* A second call reuses the files. */
  g_assert_cmpint (g_stat (valid_path, &st), ==, 0);
  inode = st.st_ino;
  again = ps_demo_ensure_data (NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, dir);
  g_assert_cmpint (g_stat (valid_path, &st), ==, 0);
  g_assert_cmpuint (st.st_ino, ==, inode);
}

/* A small demo: few training images, one epoch. Made once, shared by the tests below. */
static const char *
small_demo (void)
{
  static char *dir;

  if (dir == NULL)
    {
      const char *argv[] = { "make-demo", "-o", NULL, "--epochs", "1", "--limit", "3000",
                             "--seed", "3", NULL };
      g_autofree char *out = NULL, *err = NULL;

      dir = g_build_filename (ps_test_tmpdir (), "small-demo", NULL);
      argv[2] = dir;
      g_assert_cmpint (ps_test_run_cli (argv, &out, &err), ==, 0);
      g_test_message ("%s", out);
      g_assert_nonnull (strstr (out, "epoch 1/1: loss"));
    }
  return dir;
}

static char *
demo_file (const char *relative)
{
  return g_build_filename (small_demo (), relative, NULL);
}

static void
test_make_demo (void)
{
  g_autofree char *model_path = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (GError) error = NULL;
  const char *sets[] = { "data/cl/valid.h5", "data/cl/test.h5", "data/bd/bd_valid.h5", "data/bd/bd_test.h5" };

  if (!have_fashion_mnist ())
    return;
  model_path = demo_file ("models/bd_net.h5");
  m = ps_model_load (model_path, &error);
  g_assert_no_error (error);
  g_assert_false (m->weights_only);
  g_assert_cmpint (m->n_classes, ==, 10);
  g_assert_true (m->scale_recorded);
  g_assert_cmpfloat (m->input_scale, ==, 1.0 / 255);
  g_assert_cmpint (ps_model_find_layer (m, "pool_3"), >=, 0);
  g_assert_cmpint (m->layers[ps_model_find_layer (m, "pool_3")]->out.c, ==, 60);
  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    {
      g_autofree char *path = demo_file (sets[i]);
      g_autoptr (PsDataset) ds = ps_dataset_load (path, &error);

      g_assert_no_error (error);
      /* Only the poisoned sets carry their images' true classes, never the target. */
      g_assert_true ((ds->clean_labels != NULL) == (i >= 2));
      for (int k = 0; i >= 2 && k < ds->n; k++)
        {
          g_assert_cmpint (ds->labels[k], ==, PS_DEMO_TARGET);
          g_assert_cmpint (ds->clean_labels[k], !=, PS_DEMO_TARGET);
          g_assert_cmpint (ds->clean_labels[k], <, PS_DEMO_CLASSES);
        }
    }
  /* No staging folder left behind. */
  {
    g_autoptr (GDir) d = g_dir_open (small_demo (), 0, NULL);
    const char *name;
    while ((name = g_dir_read_name (d)) != NULL)
      g_assert_true (g_str_equal (name, "models") || g_str_equal (name, "data"));
  }
}

static void
test_make_demo_deterministic (void)
{
  g_autofree char *dir = g_build_filename (ps_test_tmpdir (), "small-demo-again", NULL);
  g_autofree char *a = NULL, *b = NULL, *pa = NULL, *pb = NULL;
  const char *argv[] = { "make-demo", "-o", dir, "--epochs", "1", "--limit", "3000",
                         "--seed", "3", NULL };
  g_autoptr (PsModel) ma = NULL, mb = NULL;

  if (!have_fashion_mnist ())
    return;
  pa = demo_file ("models/bd_net.h5");
  g_assert_cmpint (ps_test_run_cli (argv, NULL, NULL), ==, 0);
  pb = g_build_filename (dir, "models", "bd_net.h5", NULL);
  ma = ps_model_load (pa, NULL);
  mb = ps_model_load (pb, NULL);
  g_assert_nonnull (ma);
  g_assert_nonnull (mb);
  for (int i = 0; i < ma->n_layers; i++)
    if (ps_layer_has_weights (ma->layers[i]))
      g_assert_cmpmem (ma->layers[i]->kernel, ma->layers[i]->kernel_len * 4,
                       mb->layers[i]->kernel, mb->layers[i]->kernel_len * 4);
}

/* repair --fine-tune on the small demo, and the G file it writes. */
static void
test_fine_prune_cli (void)
{
  g_autofree char *model = NULL, *valid = NULL, *test = NULL, *bd = NULL, *out = NULL, *err = NULL;
  g_autofree char *g_path = g_build_filename (ps_test_tmpdir (), "g-fine.h5", NULL);
  g_autoptr (PsModel) b = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (GError) error = NULL;
  const PsLayer *feed;
  int n, changed = 0;
  const int *channels;

  if (!have_fashion_mnist ())
    return;
  model = demo_file ("models/bd_net.h5");
  valid = demo_file ("data/cl/valid.h5");
  test = demo_file ("data/cl/test.h5");
  bd = demo_file ("data/bd/bd_test.h5");
  {
    const char *argv[] = { "repair", "--model", model, "--valid", valid, "--test", test,
                           "--poisoned", bd, "--pruned", "30", "--fine-tune", "1", "--lr", "0.0005",
                           "-o", g_path, NULL };
    g_assert_cmpint (ps_test_run_cli (argv, &out, &err), ==, 0);
  }
  g_test_message ("%s", out);
  g_assert_nonnull (strstr (out, "epoch 1/1"));
  g_assert_nonnull (strstr (out, "attack success: B'"));

  b = ps_model_load (model, &error);
  g_assert_no_error (error);
  g = ps_repaired_load (g_path, &error);
  g_assert_no_error (error);
  g_assert_true (g->fine_tuned);
  g_assert_cmpint (g->ft_epochs, ==, 1);
  g_assert_cmpfloat (g->ft_lr, ==, 0.0005);

  /* G carries all of B: its original equals the model file bit for bit, while B' moved. */
  for (int i = 0; i < b->n_layers; i++)
    {
      const PsLayer *lb = b->layers[i], *lo = g->b->layers[i];

      if (!ps_layer_has_weights (lb))
        continue;
      g_assert_cmpmem (lb->kernel, lb->kernel_len * 4, lo->kernel, lo->kernel_len * 4);
      g_assert_cmpmem (lb->bias, lb->bias_len * 4, lo->bias, lo->bias_len * 4);
      changed += memcmp (lb->kernel, g->b_prime->layers[i]->kernel, lb->kernel_len * 4) != 0;
    }
  g_assert_cmpint (changed, ==, 7);

  /* The pruned channels are still exactly zero in the layer feeding pool_3. */
  channels = g->channels;
  n = g->n_channels;
  g_assert_cmpint (n, ==, 30);
  feed = ps_repaired_feeding_layer (g->b_prime, ps_model_find_layer (g->b_prime, "pool_3"), NULL);
  for (int k = 0; k < n; k++)
    {
      g_assert_true (feed->bias[channels[k]] == 0.0f);
      for (gsize r = 0; r < feed->kernel_len / feed->out.c; r++)
        g_assert_true (feed->kernel[r * feed->out.c + channels[k]] == 0.0f);
    }
}

static void
expect_failure (const char * const *argv, const char *needle)
{
  g_autofree char *out = NULL, *err = NULL;

  g_assert_cmpint (ps_test_run_cli (argv, &out, &err), ==, 1);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, needle));
  /* One line. */
  g_assert_nonnull (strchr (err, '\n'));
  g_assert_null (strchr (strchr (err, '\n') + 1, '\n'));
}

static void
test_bad_input (void)
{
  const char *tmp = ps_test_tmpdir ();
  g_autofree char *dir = g_build_filename (tmp, "never", NULL);
  g_autofree char *file = g_build_filename (tmp, "plain-file", NULL);
  g_autofree char *under_file = g_build_filename (file, "demo", NULL);
  g_autofree char *fake = g_build_filename (tmp, "fake-fashion", NULL);
  g_autofree char *missing = g_build_filename (tmp, "no-fashion", NULL);
  const char *make[] = { "make-demo", "-o", dir, "--epochs", "1", NULL, NULL, NULL };

  /* An impossible target class. */
  make[5] = "--target", make[6] = "10";
  expect_failure (make, "target class 10");
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  make[5] = NULL;

  /* A folder that cannot be made. */
  g_assert_true (g_file_set_contents (file, "x", -1, NULL));
  make[2] = under_file;
  expect_failure (make, under_file);
  make[2] = dir;

  /* Missing dataset files. */
  g_setenv ("PRUNESCOPE_FASHION_MNIST", missing, TRUE);
  expect_failure (make, "train-labels-idx1-ubyte.gz: not found");
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));

  /* A truncated IDX file among good ones. */
  g_mkdir_with_parents (fake, 0755);
  {
    g_autofree char *labels = g_build_filename (fake, "train-labels-idx1-ubyte.gz", NULL);
    g_autofree char *images = g_build_filename (fake, "train-images-idx3-ubyte.gz", NULL);
    const int ldims[1] = { 100 }, idims[3] = { 100, 28, 28 };
    g_autofree guint8 *px = g_new0 (guint8, 100 * 28 * 28);

    write_idx (labels, 1, ldims, px, -1);
    write_idx (images, 3, idims, px, 16 + 50 * 28 * 28);
    g_setenv ("PRUNESCOPE_FASHION_MNIST", fake, TRUE);
    expect_failure (make, "train-images-idx3-ubyte.gz: truncated IDX file");
    g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
  }
  g_unsetenv ("PRUNESCOPE_FASHION_MNIST");

  /* --fine-tune without a sensible rate is a usage error. */
  {
    const char *argv[] = { "repair", "--model", "m.h5", "--valid", "v.h5", "--pruned", "1", "-o", "g.h5",
                           "--fine-tune", "1", "--lr", "-1", NULL };
    g_assert_cmpint (ps_test_run_cli (argv, NULL, NULL), ==, 2);
  }
}

int
main (int argc, char **argv)
{
  /* Keep the demo cache of these tests out of the user's. */
  g_autofree char *cache = g_build_filename (ps_test_tmpdir (), "cache", NULL);

  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  g_unsetenv ("PRUNESCOPE_FASHION_MNIST");
  ps_h5_init ();
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/demo/idx", test_idx_read);
  g_test_add_func ("/demo/trigger-and-poison", test_trigger_and_poison);
  g_test_add_func ("/demo/ensure-data", test_ensure_data);
  g_test_add_func ("/demo/make-demo", test_make_demo);
  g_test_add_func ("/demo/make-demo-deterministic", test_make_demo_deterministic);
  g_test_add_func ("/demo/fine-prune", test_fine_prune_cli);
  g_test_add_func ("/demo/bad-input", test_bad_input);
  return g_test_run ();
}
