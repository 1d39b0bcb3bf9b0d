/* test-repair.c: the repaired network G — built at a sweep step, saved as a Keras model of
 * B' plus a "prunescope" group, loaded back, and laid out like the real Keras files */
#define G_LOG_DOMAIN "test-repair"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "ps-h5.h"
#include "ps-image.h"
#include "ps-infer.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "ps-test-util.h"

static void
test_roundtrip (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (3, 6);
  g_autoptr (PsDataset) valid = ps_test_random_data (m, 250, 4);
  g_autoptr (PsDataset) test = ps_test_random_data (m, 200, 5);
  const PsDataset *sets[PS_N_SETS] = { valid, test, NULL };
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "g.h5", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  g_autoptr (PsRepaired) g = NULL, back = NULL;
  g_autofree int *classes = g_new (int, test->n);
  const PsLayer *feed, *orig;
  const int *ch;
  int k = 5, n, flagged = 0;

  g_assert_no_error (error);
  g = ps_repaired_build (m, s, k, 2.5, &error);
  g_assert_no_error (error);
  g_assert_true (ps_repaired_save (g, path, &error));
  g_assert_true (ps_repaired_file_is_g (path));
  back = ps_repaired_load (path, &error);
  g_assert_no_error (error);

  g_assert_cmpstr (back->layer, ==, "pool_b");
  ch = back->channels;
  n = back->n_channels;
  g_assert_cmpint (n, ==, k);
  g_assert_cmpint (back->layer_channels, ==, ps_sweep_n_channels (s));
  g_assert_cmpmem (ch, n * sizeof (int), ps_sweep_order (s), k * sizeof (int));
  g_assert_cmpfloat (back->b_prime->input_scale, ==, m->input_scale);
  g_assert_cmpfloat (back->b->input_scale, ==, m->input_scale);
  g_assert_true (back->b_prime->scale_recorded);
  g_assert_cmpfloat (back->drop, ==, 2.5);
  g_assert_false (back->fine_tuned);
  g_assert_cmpfloat (back->metrics.test_acc, ==, ps_sweep_get_step (s, k)->test_acc);
  g_assert_cmpfloat (back->metrics.g_clean_flagged, ==, ps_sweep_get_step (s, k)->g_clean_flagged);
  g_assert_true (isnan (back->metrics.asr));

  /* B' has the pruned channels' kernel columns and biases at zero; B is intact. */
  feed = back->b_prime->layers[ps_model_find_layer (back->b_prime, "conv_b")];
  orig = m->layers[ps_model_find_layer (m, "conv_b")];
  for (int c = 0; c < feed->out.c; c++)
    {
      gboolean pruned = FALSE;
      for (int j = 0; j < n; j++)
        pruned |= ch[j] == c;
      for (gsize r = 0; r < feed->kernel_len / feed->out.c; r++)
        g_assert_cmpfloat (feed->kernel[r * feed->out.c + c], ==,
                           pruned ? 0.0f : orig->kernel[r * feed->out.c + c]);
      g_assert_cmpfloat (feed->bias[c], ==, pruned ? 0.0f : orig->bias[c]);
    }
  for (int i = 0; i < m->n_layers; i++)
    {
      const PsLayer *a = m->layers[i], *b = back->b->layers[i];
      g_assert_cmpmem (a->kernel, a->kernel_len * 4, b->kernel, b->kernel_len * 4);
      g_assert_cmpmem (a->bias, a->bias_len * 4, b->bias, b->bias_len * 4);
    }

  /* The loaded G classifies exactly as the sweep said G would at that step. */
  g_assert_true (ps_repaired_classify (back, test, classes, NULL, &error));
  for (int i = 0; i < test->n; i++)
    {
      g_assert_cmpint (classes[i], ==, ps_sweep_g_prediction (s, PS_SET_TEST, k, i));
      flagged += classes[i] == m->n_classes;
    }
  g_assert_cmpfloat (100.0 * flagged / test->n, ==, ps_sweep_get_step (s, k)->g_clean_flagged);
}

/* ---- the file layout, against a file Keras itself wrote ---- */

typedef struct {
  GHashTable *items; /* "path" or "path@attr" -> description */
} Layout;

static char *
describe_type (hid_t type)
{
  H5T_class_t cls = H5Tget_class (type);

  if (cls == H5T_STRING)
    return g_strdup_printf ("string/%s/%s", H5Tis_variable_str (type) > 0 ? "variable" : "fixed",
                            H5Tget_cset (type) == H5T_CSET_ASCII ? "ascii" : "utf-8");
  return g_strdup_printf ("class %d size %zu", cls, H5Tget_size (type));
}

static char *
describe_space (hid_t space)
{
  hsize_t dims[8];
  int rank = H5Sget_simple_extent_ndims (space);
  g_autoptr (GString) s = g_string_new ("(");

  H5Sget_simple_extent_dims (space, dims, NULL);
  for (int i = 0; i < rank; i++)
    g_string_append_printf (s, "%s%llu", i ? "," : "", (unsigned long long) dims[i]);
  g_string_append_c (s, ')');
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static herr_t
attr_cb (hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
  Layout *lay = ((gpointer *) data)[0];
  const char *path = ((gpointer *) data)[1];
  hid_t attr = H5Aopen (loc, name, H5P_DEFAULT);
  hid_t type = H5Aget_type (attr), space = H5Aget_space (attr);
  g_autofree char *t = describe_type (type);
  g_autofree char *d = describe_space (space);

  /* Fixed-length string widths depend on the longest name: compare kinds, not widths. */
  g_hash_table_insert (lay->items, g_strdup_printf ("%s@%s", path, name),
                       g_strdup_printf ("attr %s %s", t, H5Tget_class (type) == H5T_STRING ? "" : d));
  H5Sclose (space);
  H5Tclose (type);
  H5Aclose (attr);
  return 0;
}

static herr_t
visit_cb (hid_t root, const char *name, const H5O_info_t *info, void *data)
{
  Layout *lay = data;
  hid_t obj = H5Oopen (root, name, H5P_DEFAULT);
  gpointer pair[2] = { lay, (gpointer) name };
  char *desc;

  if (g_str_has_prefix (name, "prunescope"))
    {
      H5Oclose (obj);
      return 0;
    }
  if (info->type == H5O_TYPE_DATASET)
    {
      hid_t type = H5Dget_type (obj), space = H5Dget_space (obj);
      g_autofree char *t = describe_type (type), *d = describe_space (space);
      desc = g_strdup_printf ("dataset %s %s", t, d);
      H5Sclose (space);
      H5Tclose (type);
    }
  else
    desc = g_strdup ("group");
  g_hash_table_insert (lay->items, g_strdup (name), desc);
  H5Aiterate2 (obj, H5_INDEX_NAME, H5_ITER_INC, NULL, attr_cb, pair);
  H5Oclose (obj);
  return 0;
}

static GHashTable *
read_layout (const char *path)
{
  Layout lay = { g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free) };
  g_autoptr (GError) error = NULL;
  hid_t f = ps_h5_open (path, FALSE, &error);

  g_assert_no_error (error);
  H5Ovisit (f, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &lay);
  H5Fclose (f);
  return lay.items;
}

static GPtrArray *
config_layers (const char *path)
{
  g_autoptr (GError) error = NULL;
  hid_t f = ps_h5_open (path, FALSE, &error);
  g_autofree char *json = ps_h5_read_attr_string (f, "model_config", &error);
  g_autoptr (JsonNode) root = NULL;
  JsonArray *layers;
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  H5Fclose (f);
  g_assert_no_error (error);
  root = json_from_string (json, &error);
  g_assert_no_error (error);
  layers = json_object_get_array_member (json_object_get_object_member (json_node_get_object (root), "config"), "layers");
  for (guint i = 0; i < json_array_get_length (layers); i++)
    {
      JsonObject *l = json_array_get_object_element (layers, i);
      g_ptr_array_add (out, g_strdup_printf ("%s:%s", json_object_get_string_member (l, "name"),
                                             json_object_get_string_member (l, "class_name")));
    }
  return out;
}

/* Keras 2.3 named that file's weights after TensorFlow variables ("conv_1/conv_1_1/kernel:0");
 * Keras reads them in weight_names order, whatever their names. */
static GHashTable *
normalize_weight_paths (GHashTable *in)
{
  GHashTable *out = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  GHashTableIter it;
  gpointer key, value;

  g_hash_table_iter_init (&it, in);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      g_auto (GStrv) parts = g_strsplit (key, "/", -1);
      g_autofree char *renamed = NULL;

      if (g_strv_length (parts) >= 3 && g_str_equal (parts[0], "model_weights"))
        {
          g_autofree char *want = g_strdup_printf ("%s_1", parts[1]);
          char *at = strchr (parts[2], '@');
          if (g_str_has_prefix (parts[2], want) && (parts[2][strlen (want)] == '\0' || at == parts[2] + strlen (want)))
            {
              g_autofree char *rest = g_strdup (parts[2] + strlen (want));
              g_free (parts[2]);
              parts[2] = g_strconcat (parts[1], rest, NULL);
            }
        }
      renamed = g_strjoinv ("/", parts);
      g_hash_table_insert (out, g_steal_pointer (&renamed), g_strdup (value));
    }
  g_hash_table_unref (in);
  return out;
}

/* A G of the real lab3 BadNet, pruned at 45 channels, next to Keras's own file. */
static void
test_keras_layout (void)
{
  g_autofree char *weights = NULL, *keras23 = NULL, *dir = NULL;
  g_autofree char *path = g_build_filename (ps_test_tmpdir (), "lab3-g.h5", NULL);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (PsDataset) faces = NULL;
  g_autoptr (PsSweep) s = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) ours = NULL, k23 = NULL;
  g_autoptr (GPtrArray) cfg_ours = NULL, cfg_k = NULL;
  g_autoptr (GDir) d = NULL;
  guint8 pixels[15 * 55 * 47 * 3];
  int labels[15], n = 0;
  GHashTableIter it;
  gpointer key, value;
  const char *name;

  if (ps_test_fixtures () == NULL)
    {
      g_test_skip ("../shared/fixtures/csaw is not here: the lab's files are needed");
      return;
    }
  weights = ps_test_fixture ("weights/lab3_bd_weights.h5");
  keras23 = ps_test_fixture ("keras-models/lab3_pruned_keras2.3.h5");
  dir = ps_test_fixture ("images");
  m = ps_model_load (weights, &error);
  g_assert_no_error (error);

  /* The fixture faces as a small validation set, labelled from their names. */
  d = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (d)) != NULL && n < 15)
    {
      g_autofree char *p = g_build_filename (dir, name, NULL);
      g_autofree guint8 *rgb = ps_image_load_rgb (p, 55, 47, &error);
      g_assert_no_error (error);
      memcpy (pixels + n * 55 * 47 * 3, rgb, 55 * 47 * 3);
      labels[n++] = atoi (strchr (name, '=') + 1);
    }
  faces = ps_dataset_new_u8 (n, 55, 47, 3, pixels, labels);
  {
    const PsDataset *sets[PS_N_SETS] = { faces, NULL, NULL };
    s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  }
  g_assert_no_error (error);
  g = ps_repaired_build (m, s, 45, NAN, &error);
  g_assert_no_error (error);
  g_assert_true (ps_repaired_save (g, path, &error));

  ours = read_layout (path);
  k23 = normalize_weight_paths (read_layout (keras23));
  /* Every object and attribute Keras 2.3 wrote is there with the same type and shape,
   * and nothing else outside the prunescope group. */
  g_hash_table_iter_init (&it, k23);
  while (g_hash_table_iter_next (&it, &key, &value))
    {
      const char *mine = g_hash_table_lookup (ours, key);

      if (mine == NULL)
        g_error ("%s is missing from G (Keras has %s)", (char *) key, (char *) value);
      g_assert_cmpstr (mine, ==, value);
    }
  g_assert_cmpuint (g_hash_table_size (ours), ==, g_hash_table_size (k23));

  cfg_ours = config_layers (path);
  cfg_k = config_layers (keras23);
  g_assert_cmpuint (cfg_ours->len, ==, cfg_k->len);
  for (guint i = 0; i < cfg_k->len; i++)
    g_assert_cmpstr (cfg_ours->pdata[i], ==, cfg_k->pdata[i]);

  /* Our reader opens it as G, and as a plain Keras model its B' is the pruned network. */
  {
    g_autoptr (PsRepaired) back = ps_repaired_load (path, &error);
    g_autoptr (PsModel) plain = NULL;
    g_assert_no_error (error);
    g_assert_cmpint (ps_repaired_n_classes (back), ==, 1283);
    plain = ps_model_load (path, &error);
    g_assert_no_error (error);
    g_assert_cmpint (plain->n_classes, ==, 1283);
    for (int i = 0; i < plain->n_layers; i++)
      if (ps_layer_has_weights (plain->layers[i]))
        g_assert_cmpmem (plain->layers[i]->kernel, plain->layers[i]->kernel_len * 4,
                         back->b_prime->layers[i]->kernel, back->b_prime->layers[i]->kernel_len * 4);
  }
}

/* A failed save leaves an existing file alone and no temporary behind. */
static void
test_atomic_save (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (3, 4);
  g_autoptr (PsDataset) valid = ps_test_random_data (m, 60, 4);
  const PsDataset *sets[PS_N_SETS] = { valid, NULL, NULL };
  g_autofree char *dir = g_build_filename (ps_test_tmpdir (), "atomic", NULL);
  g_autofree char *blocker = g_build_filename (dir, "taken.h5", NULL);
  g_autofree char *nodir = g_build_filename (dir, "no", "such", "g.h5", NULL);
  g_autofree char *good = g_build_filename (dir, "g.h5", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  g_autoptr (PsRepaired) g = ps_repaired_build (m, s, 2, NAN, &error);
  g_autoptr (GDir) d = NULL;
  int entries = 0;

  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (blocker, 0755), ==, 0); /* a directory in the way */
  g_assert_false (ps_repaired_save (g, blocker, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (g_file_test (blocker, G_FILE_TEST_IS_DIR));
  g_clear_error (&error);
  g_assert_false (ps_repaired_save (g, nodir, &error));
  g_assert_true (g_str_has_prefix (error->message, nodir));
  g_clear_error (&error);

  g_assert_true (g_file_set_contents (good, "old", -1, NULL));
  g_assert_true (ps_repaired_save (g, good, &error));
  d = g_dir_open (dir, 0, NULL);
  while (g_dir_read_name (d) != NULL)
    entries++;
  g_assert_cmpint (entries, ==, 2); /* taken.h5 and g.h5: no temporaries */
  {
    g_autoptr (PsRepaired) back = ps_repaired_load (good, &error);
    g_assert_no_error (error);
    g_assert_cmpint (back->n_channels, ==, 2);
  }
}

/* Every step's G from one sweep: step 0 flags nothing; the last prunes every channel. */
static void
test_extremes (void)
{
  g_autoptr (PsModel) m = ps_test_small_model (9, 4);
  g_autoptr (PsDataset) valid = ps_test_random_data (m, 80, 2);
  const PsDataset *sets[PS_N_SETS] = { valid, NULL, NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_run (m, sets, NULL, NULL, NULL, NULL, &error);
  int last = ps_sweep_n_channels (s);
  g_autoptr (PsRepaired) g0 = ps_repaired_build (m, s, 0, NAN, &error);
  g_autoptr (PsRepaired) all = ps_repaired_build (m, s, last, NAN, &error);
  g_autoptr (PsRepaired) bad = NULL;
  g_autofree int *classes = g_new (int, valid->n);
  g_autofree int *bp = g_new (int, valid->n);
  int flagged = 0;

  g_assert_no_error (error);
  g_assert_true (ps_repaired_classify (g0, valid, classes, NULL, &error));
  for (int i = 0; i < valid->n; i++)
    g_assert_cmpint (classes[i], ==, ps_sweep_prediction (s, PS_SET_VALID, 0, i));

  /* Every channel of pool_b removed: everything after it sees zeros, so B' gives one class
   * to every image, and G flags every image B puts elsewhere. */
  g_assert_cmpint (all->n_channels, ==, last);
  g_assert_true (ps_infer_classes (all->b_prime, valid, bp, NULL, &error));
  g_assert_true (ps_repaired_classify (all, valid, classes, NULL, &error));
  for (int i = 0; i < valid->n; i++)
    {
      int b = ps_sweep_prediction (s, PS_SET_VALID, 0, i);

      g_assert_cmpint (bp[i], ==, bp[0]);
      g_assert_cmpint (bp[i], ==, ps_sweep_prediction (s, PS_SET_VALID, last, i));
      g_assert_cmpint (classes[i], ==, b == bp[0] ? b : m->n_classes);
      g_assert_cmpint (classes[i], ==, ps_sweep_g_prediction (s, PS_SET_VALID, last, i));
      flagged += classes[i] == m->n_classes;
    }
  g_assert_cmpint (flagged, >, 0);

  bad = ps_repaired_build (m, s, ps_sweep_n_steps (s), NAN, &error);
  g_assert_null (bad);
  g_assert_error (error, PS_ERROR, PS_ERROR_MISMATCH);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ps_h5_init ();
  g_test_add_func ("/repair/roundtrip", test_roundtrip);
  g_test_add_func ("/repair/keras-layout", test_keras_layout);
  g_test_add_func ("/repair/atomic-save", test_atomic_save);
  g_test_add_func ("/repair/extremes", test_extremes);
  return g_test_run ();
}
