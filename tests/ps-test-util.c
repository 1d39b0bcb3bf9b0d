/* ps-test-util.c: fixtures, random models and data, running the CLI */
#define G_LOG_DOMAIN "ps-test"

#include "ps-test-util.h"
#include "ps-image.h"

#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *
ps_test_fixtures (void)
{
  const char *dir = g_getenv ("PS_FIXTURES");

  if (dir == NULL || !g_file_test (dir, G_FILE_TEST_IS_DIR))
    return NULL;
  return dir;
}

char *
ps_test_fixture (const char *relative)
{
  return g_build_filename (ps_test_fixtures (), relative, NULL);
}

static char *tmpdir;

static void
remove_tmpdir (void)
{
  g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmpdir);

  if (tmpdir != NULL && system (cmd) != 0)
    g_warning ("could not remove %s", tmpdir);
}

const char *
ps_test_tmpdir (void)
{
  if (tmpdir == NULL)
    {
      tmpdir = g_dir_make_tmp ("prunescope-test-XXXXXX", NULL);
      g_assert_nonnull (tmpdir);
      atexit (remove_tmpdir);
    }
  return tmpdir;
}

static const char small_config[] =
  "{\"class_name\": \"Functional\", \"config\": {\"name\": \"small\", \"layers\": ["
  "{\"class_name\": \"InputLayer\", \"name\": \"input\", \"config\": {\"name\": \"input\", \"batch_input_shape\": [null, 12, 10, 3]}, \"inbound_nodes\": []},"
  "{\"class_name\": \"Conv2D\", \"name\": \"conv_a\", \"config\": {\"name\": \"conv_a\", \"filters\": 6, \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"same\", \"activation\": \"relu\"}, \"inbound_nodes\": [[[\"input\", 0, 0, {}]]]},"
  "{\"class_name\": \"MaxPooling2D\", \"name\": \"pool_a\", \"config\": {\"name\": \"pool_a\", \"pool_size\": [2, 2], \"padding\": \"valid\"}, \"inbound_nodes\": [[[\"conv_a\", 0, 0, {}]]]},"
  "{\"class_name\": \"Conv2D\", \"name\": \"conv_b\", \"config\": {\"name\": \"conv_b\", \"filters\": %d, \"kernel_size\": [3, 3], \"strides\": [%d, %d], \"padding\": \"%s\", \"activation\": \"relu\"}, \"inbound_nodes\": [[[\"pool_a\", 0, 0, {}]]]},"
  "{\"class_name\": \"MaxPooling2D\", \"name\": \"pool_b\", \"config\": {\"name\": \"pool_b\", \"pool_size\": [2, 2], \"strides\": [1, 1], \"padding\": \"valid\"}, \"inbound_nodes\": [[[\"conv_b\", 0, 0, {}]]]},"
  "{\"class_name\": \"Conv2D\", \"name\": \"conv_c\", \"config\": {\"name\": \"conv_c\", \"filters\": 5, \"kernel_size\": [2, 2], \"strides\": [1, 1], \"padding\": \"valid\", \"activation\": \"relu\"}, \"inbound_nodes\": [[[\"pool_b\", 0, 0, {}]]]},"
  "{\"class_name\": \"Flatten\", \"name\": \"flat_a\", \"config\": {\"name\": \"flat_a\"}, \"inbound_nodes\": [[[\"pool_b\", 0, 0, {}]]]},"
  "{\"class_name\": \"Flatten\", \"name\": \"flat_b\", \"config\": {\"name\": \"flat_b\"}, \"inbound_nodes\": [[[\"conv_c\", 0, 0, {}]]]},"
  "{\"class_name\": \"Dense\", \"name\": \"fc_a\", \"config\": {\"name\": \"fc_a\", \"units\": 16, \"activation\": \"linear\"}, \"inbound_nodes\": [[[\"flat_a\", 0, 0, {}]]]},"
  "{\"class_name\": \"Dense\", \"name\": \"fc_b\", \"config\": {\"name\": \"fc_b\", \"units\": 16, \"activation\": \"linear\"}, \"inbound_nodes\": [[[\"flat_b\", 0, 0, {}]]]},"
  "{\"class_name\": \"Add\", \"name\": \"add\", \"config\": {\"name\": \"add\"}, \"inbound_nodes\": [[[\"fc_a\", 0, 0, {}], [\"fc_b\", 0, 0, {}]]]},"
  "{\"class_name\": \"Activation\", \"name\": \"act\", \"config\": {\"name\": \"act\", \"activation\": \"relu\"}, \"inbound_nodes\": [[[\"add\", 0, 0, {}]]]},"
  "{\"class_name\": \"Dropout\", \"name\": \"drop\", \"config\": {\"name\": \"drop\", \"rate\": 0.5}, \"inbound_nodes\": [[[\"act\", 0, 0, {}]]]},"
  "{\"class_name\": \"Dense\", \"name\": \"output\", \"config\": {\"name\": \"output\", \"units\": %d, \"activation\": \"%s\"}, \"inbound_nodes\": [[[\"drop\", 0, 0, {}]]]}"
  "], \"input_layers\": [[\"input\", 0, 0]], \"output_layers\": [[\"output\", 0, 0]]}}";

void
ps_test_fill_weights (PsModel *m, guint32 seed, double bias_lo)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);

  for (int i = 0; i < m->n_layers; i++)
    {
      PsLayer *l = m->layers[i];
      double fan_in;

      if (!ps_layer_has_weights (l))
        continue;
      fan_in = (double) l->kernel_len / l->out.c;
      g_free (l->kernel);
      g_free (l->bias);
      l->kernel = g_new (float, l->kernel_len);
      l->bias = g_new (float, l->bias_len);
      for (gsize k = 0; k < l->kernel_len; k++)
        l->kernel[k] = (float) (g_rand_double_range (rand, -1, 1) * 1.7 / sqrt (fan_in));
      for (gsize k = 0; k < l->bias_len; k++)
        l->bias[k] = (float) g_rand_double_range (rand, bias_lo, 0.1);
    }
  m->input_scale = 1.0 / 255;
}

PsModel *
ps_test_small_model (guint32 seed, int classes)
{
  return ps_test_small_model_variant (seed, classes, FALSE, "softmax");
}

PsModel *
ps_test_small_model_variant (guint32 seed, int classes, gboolean conv_b_same_stride_2,
                             const char *output_activation)
{
  return ps_test_small_model_wide (seed, classes, conv_b_same_stride_2, output_activation, 8);
}

PsModel *
ps_test_deepid_model (guint32 seed, int classes, double bias_lo)
{
  g_autofree char *json = ps_deepid_config (classes);
  g_autoptr (GError) error = NULL;
  PsModel *m = ps_model_new_from_config (json, &error);

  g_assert_no_error (error);
  ps_test_fill_weights (m, seed, bias_lo);
  return m;
}

PsModel *
ps_test_small_model_wide (guint32 seed, int classes, gboolean conv_b_same_stride_2,
                          const char *output_activation, int conv_b_filters)
{
  int stride = conv_b_same_stride_2 ? 2 : 1;
  g_autofree char *json = g_strdup_printf (small_config, conv_b_filters, stride, stride,
                                           conv_b_same_stride_2 ? "same" : "valid",
                                           classes, output_activation);
  g_autoptr (GError) error = NULL;
  PsModel *m = ps_model_new_from_config (json, &error);
  PsLayer *out;

  g_assert_no_error (error);
  ps_test_fill_weights (m, seed, -0.3);
  /* Larger output weights spread the classes across images. */
  out = m->layers[m->output];
  for (gsize k = 0; k < out->kernel_len; k++)
    out->kernel[k] *= 4;
  return m;
}

PsDataset *
ps_test_random_data (const PsModel *m, int n, guint32 seed)
{
  PsShape in = m->layers[m->input]->out;
  gsize img = (gsize) in.h * in.w * in.c;
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  g_autofree guint8 *px = g_new (guint8, img * n);
  g_autofree int *labels = g_new (int, n);

  for (int i = 0; i < n; i++)
    {
      /* Each image gets its own brightness per channel and a bright square somewhere,
       * so that the network's classes vary across images. */
      double gain[3] = { g_rand_double (rand), g_rand_double (rand), g_rand_double (rand) };
      int sy = g_rand_int_range (rand, 0, in.h - 3), sx = g_rand_int_range (rand, 0, in.w - 3);

      for (gsize k = 0; k < img; k++)
        {
          int c = k % in.c, x = (k / in.c) % in.w, y = k / in.c / in.w;
          double v = g_rand_int_range (rand, 0, 256) * gain[c % 3];
          if (y >= sy && y < sy + 3 && x >= sx && x < sx + 3)
            v = 255;
          px[i * img + k] = (guint8) v;
        }
      labels[i] = g_rand_int_range (rand, 0, m->n_classes);
    }
  return ps_dataset_new_u8 (n, in.h, in.w, in.c, px, labels);
}

int
ps_test_run_cli (const char * const *argv, char **out, char **err)
{
  const char *cli = g_getenv ("PS_CLI");
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  int status = -1;

  g_assert_nonnull (cli);
  g_ptr_array_add (args, (gpointer) cli);
  for (int i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  /* The test's own stdout is TAP: a child's output must not land there. */
  g_spawn_sync (NULL, (char **) args->pdata, NULL,
                out ? G_SPAWN_DEFAULT : G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL,
                out, err, &status, &error);
  g_assert_no_error (error);
  return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

PsDataset *
ps_test_load_faces (const char *images, const char *prefix)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GDir) dir = g_dir_open (images, 0, &error);
  guint8 pixels[5 * 55 * 47 * 3];
  int labels[5], n = 0;
  const char *name;

  g_assert_no_error (error);
  while ((name = g_dir_read_name (dir)) != NULL && n < 5)
    if (g_str_has_prefix (name, prefix))
      {
        g_autofree char *file = g_build_filename (images, name, NULL);
        g_autofree guint8 *face = ps_image_load_rgb (file, 55, 47, &error);

        g_assert_no_error (error);
        memcpy (pixels + n * 55 * 47 * 3, face, 55 * 47 * 3);
        labels[n++] = atoi (strchr (name, '=') + 1);
      }
  g_assert_cmpint (n, ==, 5);
  return ps_dataset_new_u8 (n, 55, 47, 3, pixels, labels);
}
