/* test-model.c: reading the lab's real BadNets (weights-only and full Keras models) and
 * reproducing an independent reference's predictions; bad model files */
#define G_LOG_DOMAIN "test-model"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "ps-h5.h"
#include "ps-image.h"
#include "ps-infer.h"
#include "ps-test-util.h"

typedef struct {
  char *model, *scale, *image;
  int   expected;
} Row;

static GPtrArray *
read_expected (void)
{
  g_autofree char *csv = ps_test_fixture ("expected_predictions.csv");
  g_autofree char *text = NULL;
  g_auto (GStrv) lines = NULL;
  GPtrArray *rows = g_ptr_array_new ();

  g_assert_true (g_file_get_contents (csv, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  g_assert_cmpstr (lines[0], ==, "model,input_scale,image,expected_class");
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = g_strsplit (g_strstrip (lines[i]), ",", -1);
      Row *r;

      if (lines[i][0] == '\0')
        continue;
      g_assert_cmpuint (g_strv_length (f), ==, 4);
      r = g_new0 (Row, 1);
      r->model = g_strdup (f[0]);
      r->scale = g_strdup (f[1]);
      r->image = g_strdup (f[2]);
      r->expected = atoi (f[3]);
      g_ptr_array_add (rows, r);
    }
  return rows;
}

static double
parse_scale (const char *s)
{
  return g_str_equal (s, "1/255") ? 1.0 / 255 : g_ascii_strtod (s, NULL);
}

static gboolean
need_fixtures (void)
{
  if (ps_test_fixtures () != NULL)
    return TRUE;
  g_test_skip ("../shared/fixtures/csaw is not here (a fresh clone): the lab's files are needed");
  return FALSE;
}

/* Every row of expected_predictions.csv through the library. */
static void
test_expected_library (void)
{
  g_autoptr (GPtrArray) rows = NULL;
  g_autoptr (GHashTable) models = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) ps_model_free);
  guint kinds = 0;

  if (!need_fixtures ())
    return;
  rows = read_expected ();
  g_assert_cmpuint (rows->len, ==, 105);
  for (guint i = 0; i < rows->len; i++)
    {
      Row *r = rows->pdata[i];
      g_autofree char *mpath = ps_test_fixture (r->model);
      g_autofree char *ipath = ps_test_fixture (r->image);
      g_autoptr (GError) error = NULL;
      g_autofree guint8 *rgb = NULL;
      g_autoptr (PsDataset) ds = NULL;
      PsModel *m = g_hash_table_lookup (models, r->model);
      int label = 0, cls = -1;

      if (m == NULL)
        {
          m = ps_model_load (mpath, &error);
          g_assert_no_error (error);
          g_hash_table_insert (models, g_strdup (r->model), m);
          kinds |= m->weights_only ? 1 : 2;
        }
      m->input_scale = parse_scale (r->scale);
      rgb = ps_image_load_rgb (ipath, 55, 47, &error);
      g_assert_no_error (error);
      ds = ps_dataset_new_u8 (1, 55, 47, 3, rgb, &label);
      g_assert_true (ps_infer_classes (m, ds, &cls, NULL, &error));
      if (cls != r->expected)
        g_test_message ("%s %s: %d, expected %d", r->model, r->image, cls, r->expected);
      g_assert_cmpint (cls, ==, r->expected);
    }
  g_assert_cmpuint (g_hash_table_size (models), ==, 7);
  g_assert_cmpuint (kinds, ==, 3); /* weights-only and full models both seen */
}

/* The same rows through prunescope-cli eval, one run per model. */
static void
test_expected_cli (void)
{
  g_autoptr (GPtrArray) rows = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint checked = 0;

  if (!need_fixtures ())
    return;
  rows = read_expected ();
  for (guint i = 0; i < rows->len; i++)
    {
      Row *r = rows->pdata[i];
      g_autofree char *mpath = NULL;
      g_autoptr (GPtrArray) args = NULL;
      g_autofree char *out = NULL, *err = NULL;
      g_auto (GStrv) lines = NULL;

      if (g_hash_table_contains (seen, r->model))
        continue;
      g_hash_table_add (seen, r->model);
      mpath = ps_test_fixture (r->model);
      args = g_ptr_array_new_with_free_func (g_free);
      g_ptr_array_add (args, g_strdup ("eval"));
      g_ptr_array_add (args, g_strdup ("--model"));
      g_ptr_array_add (args, g_strdup (mpath));
      g_ptr_array_add (args, g_strdup ("--input-scale"));
      g_ptr_array_add (args, g_strdup (r->scale));
      for (guint j = i; j < rows->len; j++)
        if (g_str_equal (((Row *) rows->pdata[j])->model, r->model))
          g_ptr_array_add (args, ps_test_fixture (((Row *) rows->pdata[j])->image));
      g_ptr_array_add (args, NULL);
      g_assert_cmpint (ps_test_run_cli ((const char * const *) args->pdata, &out, &err), ==, 0);

      lines = g_strsplit (out, "\n", -1);
      for (guint j = i, k = 0; j < rows->len; j++)
        {
          Row *o = rows->pdata[j];
          g_autofree char *ipath = NULL;
          g_autofree char *want = NULL;

          if (!g_str_equal (o->model, r->model))
            continue;
          ipath = ps_test_fixture (o->image);
          want = g_strdup_printf ("%s\t%d", ipath, o->expected);
          g_assert_cmpstr (lines[k], ==, want);
          k++;
          checked++;
        }
    }
  g_assert_cmpuint (checked, ==, 105);
}

/* The Keras 2.3 and 2.7 copies hold the same network; 45 channels of conv_3 are zero. */
static void
test_full_models_agree (void)
{
  g_autofree char *a_path = NULL, *b_path = NULL, *w_path = NULL;
  g_autoptr (PsModel) a = NULL, b = NULL, w = NULL;
  g_autoptr (GError) error = NULL;
  int conv3, zero = 0, changed = 0;

  if (!need_fixtures ())
    return;
  a_path = ps_test_fixture ("keras-models/lab3_pruned_keras2.3.h5");
  b_path = ps_test_fixture ("keras-models/lab3_pruned_45ch_keras2.7.h5");
  w_path = ps_test_fixture ("weights/lab3_bd_weights.h5");
  a = ps_model_load (a_path, &error);
  g_assert_no_error (error);
  b = ps_model_load (b_path, &error);
  g_assert_no_error (error);
  w = ps_model_load (w_path, &error);
  g_assert_no_error (error);
  g_assert_false (a->weights_only || b->weights_only);
  g_assert_true (w->weights_only);
  g_assert_cmpint (a->n_layers, ==, 15);
  g_assert_cmpint (a->n_classes, ==, 1283);
  g_assert_cmpuint (ps_model_n_params (a), ==, 601643);
  for (int i = 0; i < a->n_layers; i++)
    {
      g_assert_cmpstr (a->layers[i]->name, ==, b->layers[i]->name);
      g_assert_cmpuint (a->layers[i]->kernel_len, ==, b->layers[i]->kernel_len);
      if (a->layers[i]->kernel_len)
        g_assert_cmpmem (a->layers[i]->kernel, a->layers[i]->kernel_len * 4,
                         b->layers[i]->kernel, b->layers[i]->kernel_len * 4);
    }
  conv3 = ps_model_find_layer (a, "conv_3");
  for (int c = 0; c < 60; c++)
    {
      const PsLayer *l = a->layers[conv3], *o = w->layers[conv3];
      gboolean all_zero = TRUE, same = l->bias[c] == o->bias[c];

      for (gsize r = 0; r < l->kernel_len / 60; r++)
        {
          all_zero &= l->kernel[r * 60 + c] == 0.0f;
          same &= l->kernel[r * 60 + c] == o->kernel[r * 60 + c];
        }
      zero += all_zero;
      changed += !same;
    }
  /* That file zeroes the kernel columns only (its biases are B's): pruned from the lab3
   * BadNet, nothing else changed. */
  g_assert_cmpint (zero, ==, 45);
  g_assert_cmpint (changed, ==, 45);
}

static void
test_save_roundtrip (void)
{
  g_autofree char *src = NULL;
  g_autofree char *dst = g_build_filename (ps_test_tmpdir (), "roundtrip.h5", NULL);
  g_autoptr (PsModel) a = NULL, b = NULL;
  g_autoptr (GError) error = NULL;

  if (!need_fixtures ())
    return;
  src = ps_test_fixture ("weights/sunglasses_bd_weights.h5");
  a = ps_model_load (src, &error);
  g_assert_no_error (error);
  a->input_scale = 1.0 / 255;
  ps_model_save (a, dst, &error);
  g_assert_no_error (error);
  b = ps_model_load (dst, &error);
  g_assert_no_error (error);
  g_assert_false (b->weights_only);
  g_assert_true (b->scale_recorded);
  g_assert_cmpfloat (b->input_scale, ==, 1.0 / 255);
  g_assert_cmpint (b->n_layers, ==, a->n_layers);
  for (int i = 0; i < a->n_layers; i++)
    {
      g_assert_cmpmem (a->layers[i]->kernel, a->layers[i]->kernel_len * 4,
                       b->layers[i]->kernel, b->layers[i]->kernel_len * 4);
      g_assert_cmpmem (a->layers[i]->bias, a->layers[i]->bias_len * 4,
                       b->layers[i]->bias, b->layers[i]->bias_len * 4);
    }
}

/* ---- bad files ---- */

static void
expect_load_error (const char *path, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = ps_model_load (path, &error);

  g_assert_null (m);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, path));
  g_assert_null (strchr (error->message, '\n'));
  if (fragment != NULL && strstr (error->message, fragment) == NULL)
    g_error ("“%s” does not say “%s”", error->message, fragment);
}

static char *
copy_fixture (const char *rel, const char *name, gsize keep)
{
  g_autofree char *src = ps_test_fixture (rel);
  char *dst = g_build_filename (ps_test_tmpdir (), name, NULL);
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (src, &data, &len, NULL));
  g_assert_true (g_file_set_contents (dst, data, MIN (len, keep), NULL));
  return dst;
}

static void
test_bad_files (void)
{
  g_autofree char *missing = g_build_filename (ps_test_tmpdir (), "missing.h5", NULL);
  g_autofree char *text = g_build_filename (ps_test_tmpdir (), "text.h5", NULL);
  g_autofree char *trunc = NULL, *trunc2 = NULL;

  expect_load_error (missing, "no such file");
  g_assert_true (g_file_set_contents (text, "just text\n", -1, NULL));
  expect_load_error (text, "HDF5");
  if (!need_fixtures ())
    return;
  trunc = copy_fixture ("weights/lab3_bd_weights.h5", "trunc.h5", 100000);
  expect_load_error (trunc, NULL);
  trunc2 = copy_fixture ("keras-models/lab3_pruned_keras2.3.h5", "trunc2.h5", 2000000);
  expect_load_error (trunc2, NULL);
}

/* Flipping bytes anywhere in the file must give an error or a model, never a crash. */
static void
test_corrupted_files (void)
{
  g_autofree char *src = NULL;
  g_autofree char *data = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  gsize len;
  int errors = 0;

  if (!need_fixtures ())
    return;
  src = ps_test_fixture ("keras-models/lab3_pruned_keras2.3.h5");
  g_assert_true (g_file_get_contents (src, &data, &len, NULL));
  for (int round = 0; round < 40; round++)
    {
      g_autofree char *copy = g_memdup2 (data, len);
      g_autofree char *path = g_build_filename (ps_test_tmpdir (), "corrupt.h5", NULL);
      g_autoptr (GError) error = NULL;
      g_autoptr (PsModel) m = NULL;
      /* Half the rounds hit the metadata near the start, half anywhere. */
      gsize span = round % 2 ? len : 8192;

      for (int k = 0; k < 16; k++)
        copy[g_rand_int_range (rand, 0, span)] ^= (char) g_rand_int_range (rand, 1, 256);
      g_assert_true (g_file_set_contents (path, copy, len, NULL));
      m = ps_model_load (path, &error);
      g_assert_true ((m == NULL) != (error == NULL));
      errors += m == NULL;
    }
  g_assert_cmpint (errors, >, 0);
}

static void
test_unsupported_and_bad_configs (void)
{
  static const struct { const char *json, *fragment; } cases[] = {
    { "{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
      "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_input_shape\": [null, 8, 8, 3]}, \"inbound_nodes\": []},"
      "{\"class_name\": \"BatchNormalization\", \"name\": \"bn\", \"config\": {}, \"inbound_nodes\": [[[\"in\", 0, 0, {}]]]}]}}",
      "BatchNormalization" },
    { "{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
      "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_input_shape\": [null, 8, 8, 3]}, \"inbound_nodes\": []},"
      "{\"class_name\": \"Conv2D\", \"name\": \"c\", \"config\": {\"filters\": 2, \"kernel_size\": [3, 3], \"activation\": \"tanh\"}, \"inbound_nodes\": [[[\"in\", 0, 0, {}]]]}]}}",
      "tanh" },
    { "{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
      "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_input_shape\": [null, 8, 8, 3]}, \"inbound_nodes\": []},"
      "{\"class_name\": \"Dense\", \"name\": \"d\", \"config\": {\"units\": 4}, \"inbound_nodes\": [[[\"nowhere\", 0, 0, {}]]]}]}}",
      "nowhere" },
    { "{\"class_name\": \"Functional\", \"config\": {\"layers\": ["
      "{\"class_name\": \"InputLayer\", \"name\": \"in\", \"config\": {\"batch_input_shape\": [null, 2, 2, 3]}, \"inbound_nodes\": []},"
      "{\"class_name\": \"Conv2D\", \"name\": \"c\", \"config\": {\"filters\": 2, \"kernel_size\": [3, 3]}, \"inbound_nodes\": [[[\"in\", 0, 0, {}]]]}]}}",
      "smaller" },
    { "{\"class_name\": \"Model\", \"config\": {\"layers\": [", "JSON" },
    { "{\"class_name\": \"Graph\", \"config\": {}}", "Graph" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (PsModel) m = ps_model_new_from_config (cases[i].json, &error);

      g_assert_null (m);
      g_assert_nonnull (error);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, cases[i].fragment));
    }
}

static void
test_wrong_shapes_and_nan (void)
{
  g_autofree char *src = NULL;
  g_autofree char *shape = g_build_filename (ps_test_tmpdir (), "shape.h5", NULL);
  g_autofree char *nan = g_build_filename (ps_test_tmpdir (), "nan.h5", NULL);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (GError) error = NULL;
  char *p;

  if (!need_fixtures ())
    return;
  src = ps_test_fixture ("weights/lab3_bd_weights.h5");
  m = ps_model_load (src, &error);
  g_assert_no_error (error);

  /* A config that promises 21 filters over weights that have 20. */
  {
    g_autoptr (PsModel) bad = ps_model_copy (m);
    p = strstr (bad->config_json, "\"filters\": 20");
    g_assert_nonnull (p);
    memcpy (p, "\"filters\": 21", 13);
    g_assert_true (ps_model_save (bad, shape, &error));
    expect_load_error (shape, "conv_1");
  }
  {
    g_autoptr (PsModel) bad = ps_model_copy (m);
    bad->layers[ps_model_find_layer (bad, "fc_2")]->kernel[77] = NAN;
    g_assert_true (ps_model_save (bad, nan, &error));
    expect_load_error (nan, "NaN");
  }
}

/* A weights-only file must be the lab's DeepID; anything else is refused. */
static void
test_weights_only_not_deepid (void)
{
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "other.h5", NULL);
  const char *names[] = { "input", "conv_1", "dense_9", NULL };
  g_autoptr (GError) error = NULL;
  hid_t f;

  ps_h5_init ();
  f = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  g_assert_true (ps_h5_write_attr_strings (f, "layer_names", names, &error));
  H5Fclose (f);
  expect_load_error (path, "DeepID");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/model/fixtures/library", test_expected_library);
  g_test_add_func ("/model/fixtures/cli", test_expected_cli);
  g_test_add_func ("/model/fixtures/full-models-agree", test_full_models_agree);
  g_test_add_func ("/model/save/roundtrip", test_save_roundtrip);
  g_test_add_func ("/model/bad/files", test_bad_files);
  g_test_add_func ("/model/bad/corrupted", test_corrupted_files);
  g_test_add_func ("/model/bad/configs", test_unsupported_and_bad_configs);
  g_test_add_func ("/model/bad/shapes-and-nan", test_wrong_shapes_and_nan);
  g_test_add_func ("/model/bad/weights-only-not-deepid", test_weights_only_not_deepid);
  return g_test_run ();
}
