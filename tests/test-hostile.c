/* test-hostile.c: valid HDF5 (and images, and paths) that lie. Each case is made here,
 * with the HDF5 C API, from the demo BadNet and small sets and G files the test makes,
 * then given to the real prunescope-cli, which must answer with exit status 1 and exactly
 * one line naming the file and the problem: no signal, no sanitizer report, no HDF5 or
 * json-glib noise, within bounded time and memory. */
#define G_LOG_DOMAIN "test-hostile"
#define _DEFAULT_SOURCE

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <hdf5.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ps-demo.h"
#include "ps-h5.h"
#include "ps-limits.h"
#include "ps-test-util.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MEMORY_LIMIT ((rlim_t) 2 << 30)
#define SECONDS_LIMIT 60

static char *model, *weights, *set, *gfile;
static gint64 total_us, worst_us;
static char *worst_case;

static char *
tmp (const char *name)
{
  return g_build_filename (ps_test_tmpdir (), name, NULL);
}

/* ---- running the program under limits ---- */

static rlim_t fsize_limit = RLIM_INFINITY;

static void
child_limits (gpointer data)
{
  struct rlimit cpu = { SECONDS_LIMIT, SECONDS_LIMIT };

  /* A hang that burns no CPU (a FIFO) meets the alarm, one that does meets RLIMIT_CPU. */
  alarm (SECONDS_LIMIT);
  setrlimit (RLIMIT_CPU, &cpu);
  if (!UNDER_ASAN)
    {
      /* ASan reserves terabytes of shadow address space: no RLIMIT_AS there. */
      struct rlimit as = { MEMORY_LIMIT, MEMORY_LIMIT };
      setrlimit (RLIMIT_AS, &as);
    }
  if (fsize_limit != RLIM_INFINITY)
    {
      struct rlimit fs = { fsize_limit, fsize_limit };
      signal (SIGXFSZ, SIG_IGN); /* a full disk: write() fails with EFBIG */
      setrlimit (RLIMIT_FSIZE, &fs);
    }
}

typedef struct {
  int   status; /* exit status, or -signal */
  char *err;
} Run;

static Run
run_cli (const char * const *argv)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) envp = NULL;
  Run r = { 0 };
  int wait = 0;
  gint64 t0 = g_get_monotonic_time (), dt;

  g_ptr_array_add (args, (gpointer) g_getenv ("PS_CLI"));
  for (int i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (args, (gpointer) argv[i]);
  g_ptr_array_add (args, NULL);
  if (UNDER_ASAN)
    {
      /* ASan's allocation limit (1 GB at once) stands in for RLIMIT_AS: g_try_malloc fails */
      const char *old = g_getenv ("ASAN_OPTIONS");
      g_autofree char *opts = g_strconcat (old ? old : "", old ? ":" : "",
                                           "allocator_may_return_null=1:max_allocation_size_mb=1024",
                                           NULL);
      envp = g_environ_setenv (g_get_environ (), "ASAN_OPTIONS", opts, TRUE);
    }
  g_spawn_sync (NULL, (char **) args->pdata, envp, G_SPAWN_STDOUT_TO_DEV_NULL, child_limits,
                NULL, NULL, &r.err, &wait, &error);
  g_assert_no_error (error);
  dt = g_get_monotonic_time () - t0;
  total_us += dt;
  if (dt > worst_us)
    {
      worst_us = dt;
      g_free (worst_case);
      worst_case = g_strjoinv (" ", (char **) argv);
    }
  r.status = WIFEXITED (wait) ? WEXITSTATUS (wait) : WIFSIGNALED (wait) ? -WTERMSIG (wait) : -999;
  /* ASan says so when its allocation limit makes g_try_malloc fail: a note, not a report */
  if (UNDER_ASAN && g_str_has_prefix (r.err, "==") && strstr (r.err, "WARNING: AddressSanitizer failed to allocate"))
    {
      char *rest = g_strdup (strchr (r.err, '\n') + 1);
      g_free (r.err);
      r.err = rest;
    }
  return r;
}

/* Exit 1, one line "prunescope-cli: ...FILE...: ...EXPECT...". */
static void
assert_refused (const char * const *argv, const char *file, const char *expect)
{
  Run r = run_cli (argv);
  g_autofree char *err = r.err;
  const char *nl = err ? strchr (err, '\n') : NULL;

  g_test_message ("%s -> %d: %s", file, r.status, err);
  if (r.status != 1 || nl == NULL || nl[1] != '\0' || !g_str_has_prefix (err, "prunescope-cli: ")
      || strstr (err, file) == NULL || strstr (err, expect) == NULL)
    g_error ("%s: expected exit 1 and one line with “%s”, got %d and:\n%s", file, expect,
             r.status, err);
}

static void
refused_model (const char *file, const char *expect)
{
  const char *argv[] = { "info", file, NULL };
  assert_refused (argv, file, expect);
}

static void
refused_set (const char *file, const char *expect)
{
  const char *argv[] = { "eval", "--model", model, "--data", file, NULL };
  assert_refused (argv, file, expect);
}

/* ---- making files ---- */

static void
copy_file (const char *from, const char *to)
{
  g_autofree char *data = NULL;
  gsize len;
  g_autoptr (GError) error = NULL;

  g_file_get_contents (from, &data, &len, &error);
  g_assert_no_error (error);
  g_file_set_contents (to, data, len, &error);
  g_assert_no_error (error);
}

static hid_t
open_copy (const char *base, const char *name, char **path)
{
  hid_t f;

  hid_t fapl = H5Pcreate (H5P_FILE_ACCESS);

  *path = tmp (name);
  copy_file (base, *path);
  /* large attributes need the dense storage of newer formats */
  H5Pset_libver_bounds (fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  f = H5Fopen (*path, H5F_ACC_RDWR, fapl);
  H5Pclose (fapl);
  g_assert_cmpint (f, >=, 0);
  return f;
}

static void
unlink_if (hid_t f, const char *path)
{
  if (ps_h5_exists (f, path))
    g_assert_cmpint (H5Ldelete (f, path, H5P_DEFAULT), >=, 0);
}

/* Replaces @path by a dataset of @type and shape; @data NULL leaves it unwritten. */
static void
put_dataset (hid_t f, const char *path, hid_t type, int rank, const hsize_t *dims,
             gboolean chunked, const void *data)
{
  hid_t space = H5Screate_simple (rank, dims, NULL);
  hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
  hid_t d;

  if (chunked)
    {
      hsize_t chunk[8];
      for (int i = 0; i < rank; i++)
        chunk[i] = MAX (1, MIN (dims[i], 64));
      H5Pset_chunk (dcpl, rank, chunk);
    }
  unlink_if (f, path);
  d = H5Dcreate2 (f, path, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  g_assert_cmpint (d, >=, 0);
  if (data != NULL)
    g_assert_cmpint (H5Dwrite (d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), >=, 0);
  H5Dclose (d);
  H5Pclose (dcpl);
  H5Sclose (space);
}

static void
put_attr (hid_t loc, const char *name, hid_t type, hid_t space, const void *data)
{
  hid_t a;

  if (H5Aexists (loc, name) > 0)
    H5Adelete (loc, name);
  a = H5Acreate2 (loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  g_assert_cmpint (a, >=, 0);
  if (data != NULL)
    g_assert_cmpint (H5Awrite (a, type, data), >=, 0);
  H5Aclose (a);
}

static herr_t
move_child (hid_t g, const char *name, const H5L_info_t *info, void *data)
{
  hid_t to = *(hid_t *) data;

  return H5Lmove (g, name, to, name, H5P_DEFAULT, H5P_DEFAULT);
}

/* Recreates the group @path (its children kept, its attributes dropped) in the newer
 * format, whose dense attribute storage holds attributes larger than 64 KB. */
static hid_t
fresh_group (hid_t f, const char *path)
{
  g_autofree char *old = g_strconcat (path, "-old", NULL);
  hid_t g, og;

  g_assert_cmpint (H5Lmove (f, path, f, old, H5P_DEFAULT, H5P_DEFAULT), >=, 0);
  g = H5Gcreate2 (f, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  og = H5Gopen2 (f, old, H5P_DEFAULT);
  H5Literate (og, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, move_child, &g);
  H5Gclose (og);
  H5Ldelete (f, old, H5P_DEFAULT);
  return g;
}

static void
put_attr_doubles (hid_t loc, const char *name, hsize_t n)
{
  g_autofree double *v = g_new0 (double, MAX (n, 1));
  hid_t space = H5Screate_simple (1, &n, NULL);

  for (hsize_t i = 0; i < n; i++)
    v[i] = 1.0;
  put_attr (loc, name, H5T_NATIVE_DOUBLE, space, v);
  H5Sclose (space);
}

static hid_t
string_type (void)
{
  hid_t t = H5Tcopy (H5T_C_S1);
  H5Tset_size (t, 8);
  return t;
}

static hid_t
compound_type (void)
{
  hid_t t = H5Tcreate (H5T_COMPOUND, 8);
  H5Tinsert (t, "re", 0, H5T_NATIVE_FLOAT);
  H5Tinsert (t, "im", 4, H5T_NATIVE_FLOAT);
  return t;
}

/* ---- the files every case starts from ---- */

static void
make_weights_only (void)
{
  hid_t src = H5Fopen (model, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dst = H5Fcreate (weights, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t wg = H5Gopen2 (src, "model_weights", H5P_DEFAULT);
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) names = ps_h5_read_attr_strings (wg, "layer_names", &error);

  g_assert_no_error (error);
  for (guint i = 0; names[i] != NULL; i++)
    g_assert_cmpint (H5Ocopy (wg, names[i], dst, names[i], H5P_DEFAULT, H5P_DEFAULT), >=, 0);
  g_assert_true (ps_h5_write_attr_strings (dst, "layer_names", (const char * const *) names, &error));
  H5Gclose (wg);
  H5Fclose (dst);
  H5Fclose (src);
}

static void
setup (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *demo = ps_demo_model_path (&error);
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsDataset) ds = NULL;

  g_assert_no_error (error);
  model = tmp ("model.h5");
  copy_file (demo, model);
  weights = tmp ("weights.h5");
  make_weights_only ();
  m = ps_model_load (model, &error);
  g_assert_no_error (error);
  ds = ps_test_random_data (m, 24, 5);
  set = tmp ("set.h5");
  g_assert_true (ps_dataset_save (ds, set, &error));
  g_assert_no_error (error);
  gfile = tmp ("G.h5");
  {
    const char *argv[] = { "repair", "--model", model, "--valid", set, "--pruned", "3", "-o", gfile, NULL };
    Run r = run_cli (argv);
    g_assert_cmpint (r.status, ==, 0);
    g_free (r.err);
  }
}

/* The starting files themselves are fine: a case that fails fails for its change. */
static void
test_baseline (void)
{
  const char *files[] = { model, weights, gfile };

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      const char *argv[] = { "info", files[i], NULL };
      Run r = run_cli (argv);
      g_assert_cmpint (r.status, ==, 0);
      g_assert_cmpstr (r.err, ==, "");
      g_free (r.err);
    }
  {
    const char *argv[] = { "eval", "--model", model, "--data", set, NULL };
    Run r = run_cli (argv);
    g_assert_cmpint (r.status, ==, 0);
    g_free (r.err);
  }
}

/* ---- 1, 8: attributes of the wrong shape or type ---- */

static void
test_attributes (void)
{
  static const struct { const char *name; hsize_t n; const char *expect; } arrays[] = {
    { "scale-1000.h5", 1000, "holds 1000 values, expected one number" },
    { "scale-2.h5", 2, "holds 2 values, expected one number" },
    { "scale-0.h5", 0, "holds 0 values" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (arrays); i++)
    {
      g_autofree char *path = NULL;
      hid_t f = open_copy (model, arrays[i].name, &path);
      hid_t pg = fresh_group (f, "prunescope");

      put_attr_doubles (pg, "input_scale", arrays[i].n);
      H5Gclose (pg);
      H5Fclose (f);
      refused_model (path, arrays[i].expect);
    }
  {
    g_autofree char *path = NULL;
    hid_t f = open_copy (model, "scale-string.h5", &path);
    hid_t pg = H5Gopen2 (f, "prunescope", H5P_DEFAULT);

    g_assert_true (ps_h5_write_attr_string (pg, "input_scale", "1/255", NULL));
    H5Gclose (pg);
    H5Fclose (f);
    refused_model (path, "stored as strings, expected a number");
  }
  {
    /* an empty (null dataspace) model_config */
    g_autofree char *path = NULL;
    hid_t f = open_copy (model, "config-null.h5", &path);
    hid_t space = H5Screate (H5S_NULL), type = string_type ();

    put_attr (f, "model_config", type, space, NULL);
    H5Sclose (space);
    H5Tclose (type);
    H5Fclose (f);
    refused_model (path, "“model_config” is empty");
  }
  {
    g_autofree char *path = NULL;
    hid_t f = open_copy (model, "config-number.h5", &path);

    put_attr_doubles (f, "model_config", 1);
    H5Fclose (f);
    refused_model (path, "expected strings");
  }
  {
    g_autofree char *path = NULL;
    hid_t f = open_copy (weights, "layer-names-ints.h5", &path);
    hsize_t n = 7;
    int v[7] = { 0 };
    hid_t space = H5Screate_simple (1, &n, NULL);

    put_attr (f, "layer_names", H5T_NATIVE_INT, space, v);
    H5Sclose (space);
    H5Fclose (f);
    refused_model (path, "stored as integers, expected strings");
  }
  {
    /* weight_names with a million names */
    g_autofree char *path = NULL;
    hid_t f = open_copy (model, "weight-names-many.h5", &path);
    hid_t lg = fresh_group (f, "model_weights/conv_1");
    hsize_t n = 1000000;
    g_autofree char *names = g_malloc0 (n);
    hid_t space = H5Screate_simple (1, &n, NULL), type = H5Tcopy (H5T_C_S1);

    H5Tset_size (type, 1);
    put_attr (lg, "weight_names", type, space, names);
    H5Tclose (type);
    H5Sclose (space);
    H5Gclose (lg);
    H5Fclose (f);
    refused_model (path, "declares 1000000 strings");
  }
}

/* ---- 3, 8: model_config JSON ---- */

static char *
read_config (void)
{
  hid_t f = H5Fopen (model, H5F_ACC_RDONLY, H5P_DEFAULT);
  g_autoptr (GError) error = NULL;
  char *json = ps_h5_read_attr_string (f, "model_config", &error);

  g_assert_no_error (error);
  H5Fclose (f);
  return json;
}

static char *
with_config (const char *name, const char *json)
{
  g_autofree char *path = NULL;
  hid_t f = open_copy (model, name, &path);

  g_assert_true (ps_h5_write_attr_string (f, "model_config", json, NULL));
  H5Fclose (f);
  return g_steal_pointer (&path);
}

/* The config with member @key of layer @layer (or of the top "config" when NULL, or of
 * the layer entry itself when @in_entry) set to the JSON @value. */
static char *
mutated_config (const char *layer, gboolean in_entry, const char *key, const char *value)
{
  g_autofree char *json = read_config ();
  g_autoptr (JsonNode) root = json_from_string (json, NULL);
  JsonObject *config = json_object_get_object_member (json_node_get_object (root), "config");
  JsonArray *layers = json_object_get_array_member (config, "layers");
  JsonObject *target = config;
  JsonNode *v = json_from_string (value, NULL);

  g_assert_nonnull (v);
  for (guint i = 0; layer != NULL && i < json_array_get_length (layers); i++)
    {
      JsonObject *l = json_array_get_object_element (layers, i);
      if (g_str_equal (json_object_get_string_member (l, "name"), layer))
        target = in_entry ? l : json_object_get_object_member (l, "config");
    }
  g_assert_true (layer == NULL || target != config);
  json_object_set_member (target, key, v);
  return json_to_string (root, FALSE);
}

static const struct {
  const char *layer;
  gboolean    in_entry;
  const char *key, *value, *expect;
} config_cases[] = {
  /* wrong types: a string where a list is, nested lists, objects for lists, ... */
  { "conv_1", FALSE, "kernel_size", "\"4\"", "bad kernel_size" },
  { "conv_1", FALSE, "kernel_size", "[[4], [4]]", "bad kernel_size" },
  { "conv_1", FALSE, "kernel_size", "[4, 4, 4]", "bad kernel_size" },
  { "conv_1", FALSE, "kernel_size", "4.5", "bad kernel_size" },
  { "conv_1", FALSE, "kernel_size", "{\"a\": 1}", "bad kernel_size" },
  { "conv_1", FALSE, "filters", "\"20\"", "bad filters" },
  { "conv_1", FALSE, "filters", "[20]", "bad filters" },
  { "conv_1", FALSE, "strides", "\"x\"", "bad strides" },
  { "conv_1", FALSE, "padding", "5", "conv_1" },
  { "conv_1", FALSE, "activation", "[\"relu\"]", "conv_1" },
  { "conv_1", FALSE, "dilation_rate", "\"2\"", "conv_1" },
  { "pool_1", FALSE, "pool_size", "{}", "bad pool_size" },
  { "pool_1", FALSE, "strides", "[true, 1]", "bad strides" },
  { "fc_1", FALSE, "units", "\"160\"", "bad units" },
  { "input", FALSE, "batch_input_shape", "\"55x47\"", "input must be an image" },
  { "input", FALSE, "batch_input_shape", "[null, \"55\", 47, 3]", "bad input shape" },
  { "conv_1", TRUE, "inbound_nodes", "{\"input\": 0}", "inbound_nodes is not a list" },
  { "conv_1", TRUE, "inbound_nodes", "[\"input\"]", "bad inbound_nodes" },
  { "conv_1", TRUE, "inbound_nodes", "[[\"input\"]]", "unknown" },
  { "conv_1", TRUE, "inbound_nodes", "[[[5, 0, 0, {}]]]", "unknown" },
  { "conv_1", TRUE, "config", "[]", "has no class_name, name or config" },
  { "conv_1", TRUE, "class_name", "7", "has no class_name, name or config" },
  { NULL, FALSE, "layers", "{\"a\": []}", "no layers" },
  { NULL, FALSE, "layers", "[5, 6]", "has no class_name" },
  { NULL, FALSE, "input_layers", "\"input\"", "input_layers" },
  { NULL, FALSE, "output_layers", "[[7, 0, 0]]", "output_layers" },
  /* 4, 5, 6: sizes */
  { "input", FALSE, "batch_input_shape", "[null, 65536, 65536, 3]", "larger than accepted" },
  { "input", FALSE, "batch_input_shape", "[null, 100000, 100000, 3]", "larger than accepted" },
  { "input", FALSE, "batch_input_shape", "[null, 4096, 4096, 1]", "conv_1" },
  { "input", FALSE, "batch_input_shape", "[null, 55, 47, 4294967299]", "larger than accepted" },
  { "pool_1", FALSE, "pool_size", "[2147483647, 2147483647]", "bad pool_size" },
  { "pool_1", FALSE, "pool_size", "[1073741824, 1073741824]", "bad pool_size" },
  { "pool_1", FALSE, "strides", "[2147483647, 1]", "bad strides" },
  { "pool_1", FALSE, "pool_size", "[8000, 8000]", "pool_1" },
  { "conv_1", FALSE, "kernel_size", "[4294967300, 4294967300]", "bad kernel_size" },
  { "conv_1", FALSE, "kernel_size", "[1, 1]", "conv_1" }, /* weights of the wrong shape */
  { "conv_1", FALSE, "filters", "1000000", "larger than accepted" },
  { "conv_1", FALSE, "filters", "4294967316", "bad filters" },
  { "fc_1", FALSE, "units", "1000000000", "bad units" },
  { "output", FALSE, "units", "1048576", "has more than 134217728 weights" },
  { "output", FALSE, "units", "500000", "has shape (160, 10), expected (160, 500000)" },
};

static void
test_config (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (config_cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("config-%02u.h5", i);
      g_autofree char *json = mutated_config (config_cases[i].layer, config_cases[i].in_entry,
                                              config_cases[i].key, config_cases[i].value);
      g_autofree char *path = with_config (name, json);
      g_autoptr (GError) error = NULL;
      g_autoptr (PsModel) m = ps_model_new_from_config (json, &error);

      /* in this process too: a json-glib critical would abort the test */
      g_test_message ("case %u: %s", i, error ? error->message : "parsed");
      refused_model (path, config_cases[i].expect);
    }
}

static void
test_config_nesting (void)
{
  static const int depths[] = { 65, 100000 };

  for (guint i = 0; i < G_N_ELEMENTS (depths); i++)
    {
      int d = depths[i];
      g_autofree char *json = g_malloc (2 * d + 1);
      g_autofree char *name = g_strdup_printf ("nested-%d.h5", d);
      g_autofree char *path = NULL;
      g_autoptr (GError) error = NULL;
      g_autoptr (PsModel) m = NULL;

      memset (json, '[', d);
      memset (json + d, ']', d);
      json[2 * d] = '\0';
      m = ps_model_new_from_config (json, &error);
      g_assert_error (error, PS_ERROR, PS_ERROR_LIMIT);
      path = with_config (name, json);
      refused_model (path, "nested deeper than");
    }
  {
    /* brackets inside strings do not count */
    g_autofree char *json = read_config ();
    g_autofree char *deep = g_strnfill (200, '[');
    g_autofree char *quoted = g_strdup_printf ("{\"note\": \"%s\", %s", deep, json + 1);
    g_autoptr (GError) error = NULL;
    g_autoptr (PsModel) m = ps_model_new_from_config (quoted, &error);

    g_assert_no_error (error);
  }
}

/* A second InputLayer feeding conv_4 (the pooled map's shape): never filled. */
static void
test_second_input (void)
{
  g_autofree char *json = read_config ();
  g_autoptr (JsonNode) root = json_from_string (json, NULL);
  JsonObject *config = json_object_get_object_member (json_node_get_object (root), "config");
  JsonArray *layers = json_object_get_array_member (config, "layers");
  g_autofree char *out = NULL, *path = NULL;

  json_array_add_element (layers, json_from_string (
    "{\"class_name\": \"InputLayer\", \"name\": \"input_2\", \"config\": {\"name\": \"input_2\","
    " \"batch_input_shape\": [null, 5, 4, 60]}, \"inbound_nodes\": []}", NULL));
  /* move it before conv_4, and feed conv_4 from it */
  {
    g_autoptr (JsonArray) reordered = json_array_new ();
    guint n = json_array_get_length (layers);

    for (guint i = 0; i + 1 < n; i++)
      {
        JsonObject *l = json_array_get_object_element (layers, i);
        if (g_str_equal (json_object_get_string_member (l, "name"), "conv_4"))
          {
            json_array_add_element (reordered, json_node_copy (json_array_get_element (layers, n - 1)));
            json_object_set_member (l, "inbound_nodes",
                                    json_from_string ("[[[\"input_2\", 0, 0, {}]]]", NULL));
          }
        json_array_add_element (reordered, json_node_copy (json_array_get_element (layers, i)));
      }
    json_object_set_array_member (config, "layers", json_array_ref (reordered));
  }
  out = json_to_string (root, FALSE);
  path = with_config ("second-input.h5", out);
  refused_model (path, "a second InputLayer");
}

/* ---- 2, 5, 8: weights and HDF5 objects that lie ---- */

#define KERNEL "model_weights/conv_1/conv_1/kernel:0"

static void
test_weights (void)
{
  hsize_t huge[1] = { (hsize_t) 1 << 40 }, big[1] = { 1000000000 }, million[1] = { 1000000 };
  hsize_t kdims[4] = { 4, 4, 3, 20 }, rank9[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 960 };
  g_autofree float *zeros = g_new0 (float, 1000000);
  struct {
    const char *name, *expect;
  } cases[] = {
    { "kernel-huge.h5", "more than the" },
    { "kernel-1e9.h5", "more than the" },
    { "kernel-1e6.h5", "has shape (1000000), expected (4, 4, 3, 20)" },
    { "kernel-strings.h5", "stored as strings, expected numbers" },
    { "kernel-compound.h5", "stored as compound records" },
    { "kernel-group.h5", "is a group, expected a dataset" },
    { "kernel-dangling.h5", "is a link to nothing" },
    { "kernel-external.h5", "external link" },
    { "kernel-virtual.h5", "virtual dataset" },
    { "kernel-filter.h5", "filter" },
    { "kernel-unwritten.h5", "stores none" },
    { "kernel-rank9.h5", "9 dimensions" },
    { "weights-external.h5", "external link" },
    { "kernel-nan.h5", "NaN" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = NULL;
      hid_t f = open_copy (model, cases[i].name, &path);

      switch (i)
        {
        case 0: put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 1, huge, TRUE, NULL); break;
        case 1: put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 1, big, TRUE, NULL); break;
        case 2: put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 1, million, FALSE, zeros); break;
        case 3:
          {
            hid_t t = string_type ();
            g_autofree char *s = g_malloc0 (8 * 960);
            put_dataset (f, KERNEL, t, 4, kdims, FALSE, s);
            H5Tclose (t);
          }
          break;
        case 4:
          {
            hid_t t = compound_type ();
            put_dataset (f, KERNEL, t, 4, kdims, FALSE, zeros);
            H5Tclose (t);
          }
          break;
        case 5:
          unlink_if (f, KERNEL);
          H5Gclose (H5Gcreate2 (f, KERNEL, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
          break;
        case 6:
          unlink_if (f, KERNEL);
          H5Lcreate_soft ("/nowhere/at/all", f, KERNEL, H5P_DEFAULT, H5P_DEFAULT);
          break;
        case 7:
          unlink_if (f, KERNEL);
          H5Lcreate_external (model, KERNEL, f, KERNEL, H5P_DEFAULT, H5P_DEFAULT);
          break;
        case 8:
          {
            hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
            hid_t space = H5Screate_simple (4, kdims, NULL);
            hid_t d;
            H5Pset_virtual (dcpl, space, model, KERNEL, space);
            unlink_if (f, KERNEL);
            d = H5Dcreate2 (f, KERNEL, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            g_assert_cmpint (d, >=, 0);
            H5Dclose (d);
            H5Sclose (space);
            H5Pclose (dcpl);
          }
          break;
        case 9:
          {
            hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
            hid_t space = H5Screate_simple (4, kdims, NULL);
            hid_t d;
            H5Pset_chunk (dcpl, 4, kdims);
            H5Pset_filter (dcpl, 32000, H5Z_FLAG_MANDATORY, 0, NULL);
            unlink_if (f, KERNEL);
            d = H5Dcreate2 (f, KERNEL, H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            g_assert_cmpint (d, >=, 0);
            g_assert_cmpint (H5Dwrite (d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros), >=, 0);
            H5Dclose (d);
            H5Sclose (space);
            H5Pclose (dcpl);
          }
          break;
        case 10: put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 4, kdims, TRUE, NULL); break;
        case 11: put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 9, rank9, FALSE, zeros); break;
        case 12:
          unlink_if (f, "model_weights");
          H5Lcreate_external (model, "model_weights", f, "model_weights", H5P_DEFAULT, H5P_DEFAULT);
          break;
        case 13:
          {
            g_autofree float *nan = g_new (float, 960);
            for (int k = 0; k < 960; k++)
              nan[k] = k == 7 ? NAN : 0.0f;
            put_dataset (f, KERNEL, H5T_NATIVE_FLOAT, 4, kdims, FALSE, nan);
          }
          break;
        default: g_assert_not_reached ();
        }
      H5Fclose (f);
      refused_model (path, cases[i].expect);
    }
  {
    /* weights-only: the class count comes from a bias declared 2^40 */
    g_autofree char *path = NULL;
    hid_t f = open_copy (weights, "weights-bias-huge.h5", &path);

    put_dataset (f, "output/output/bias:0", H5T_NATIVE_FLOAT, 1, huge, TRUE, NULL);
    H5Fclose (f);
    refused_model (path, "more than the");
  }
}

/* A filter of ours, registered only in this process: the CLI does not have it. */
static size_t
fake_lzf (unsigned flags, size_t n_values, const unsigned values[], size_t nbytes,
          size_t *buf_size, void **buf)
{
  return nbytes;
}

static void
register_fake_lzf (void)
{
  static const H5Z_class2_t cls = { H5Z_CLASS_T_VERS, 32000, 1, 1, "lzf", NULL, NULL, fake_lzf };

  g_assert_cmpint (H5Zregister (&cls), >=, 0);
}

/* ---- 5, 6, 8: data sets ---- */

static void
test_sets (void)
{
  hsize_t tall[4] = { 1, 3, (hsize_t) 1 << 31, 1 }, wide[4] = { 100, 3, 5000, 5000 };
  hsize_t n40[4] = { (hsize_t) 1 << 40, 3, 55, 47 }, n32[4] = { ((hsize_t) 1 << 32) + 5, 3, 55, 47 };
  hsize_t none[4] = { 0, 3, 55, 47 }, many[4] = { 60000, 3, 55, 47 }, rank3[3] = { 24, 165, 47 };
  hsize_t lab24[1] = { 24 }, lab23[1] = { 23 }, lab1e9[1] = { 1000000000 };
  hsize_t small[4] = { 24, 3, 55, 47 };
  g_autofree float *px = g_new0 (float, 24 * 3 * 55 * 47);
  struct {
    const char *name, *expect;
  } cases[] = {
    { "set-tall.h5", "more than the" },
    { "set-wide.h5", "more than the" },
    { "set-2e40.h5", "more than the" },
    { "set-2e32.h5", "more than the" },
    { "set-empty.h5", "holds no images" },
    { "set-unwritten.h5", "stores none" },
    { "set-rank3.h5", "expected (N, 3, H, W)" },
    { "set-compound.h5", "stored as compound records" },
    { "set-virtual.h5", "virtual dataset" },
    { "set-filter.h5", "filter" },
    { "label-strings.h5", "“label”: stored as strings, expected numbers" },
    { "label-group.h5", "“label” is a group, expected a dataset" },
    { "label-dangling.h5", "“label” is a link to nothing" },
    { "label-short.h5", "“label” has shape (23) for 24 images" },
    { "label-1e9.h5", "more than the" },
    { "label-external.h5", "external link" },
    { "label-fraction.h5", "not a class" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = NULL;
      hid_t f = open_copy (set, cases[i].name, &path);

      switch (i)
        {
        case 0: put_dataset (f, "data", H5T_NATIVE_UINT8, 4, tall, TRUE, NULL); break;
        case 1: put_dataset (f, "data", H5T_NATIVE_UINT8, 4, wide, TRUE, NULL); break;
        case 2: put_dataset (f, "data", H5T_NATIVE_UINT8, 4, n40, TRUE, NULL); break;
        case 3: put_dataset (f, "data", H5T_NATIVE_UINT8, 4, n32, TRUE, NULL); break;
        case 4:
          put_dataset (f, "data", H5T_NATIVE_UINT8, 4, none, FALSE, NULL);
          put_dataset (f, "label", H5T_NATIVE_DOUBLE, 1, none, FALSE, NULL);
          break;
        case 5: put_dataset (f, "data", H5T_NATIVE_UINT8, 4, many, TRUE, NULL); break;
        case 6: put_dataset (f, "data", H5T_NATIVE_FLOAT, 3, rank3, FALSE, px); break;
        case 7:
          {
            hid_t t = compound_type ();
            hsize_t half[4] = { 24, 3, 55, 47 };
            g_autofree float *two = g_new0 (float, 2 * 24 * 3 * 55 * 47);
            put_dataset (f, "data", t, 4, half, FALSE, two);
            H5Tclose (t);
          }
          break;
        case 8:
          {
            hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
            hid_t space = H5Screate_simple (4, small, NULL);
            H5Pset_virtual (dcpl, space, set, "data", space);
            unlink_if (f, "data");
            H5Dclose (H5Dcreate2 (f, "data", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
            H5Sclose (space);
            H5Pclose (dcpl);
          }
          break;
        case 9:
          {
            hid_t dcpl = H5Pcreate (H5P_DATASET_CREATE);
            hid_t space = H5Screate_simple (4, small, NULL);
            hid_t d;
            H5Pset_chunk (dcpl, 4, small);
            H5Pset_filter (dcpl, 32000, H5Z_FLAG_MANDATORY, 0, NULL);
            unlink_if (f, "data");
            d = H5Dcreate2 (f, "data", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Dwrite (d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, px);
            H5Dclose (d);
            H5Sclose (space);
            H5Pclose (dcpl);
          }
          break;
        case 10:
          {
            hid_t t = string_type ();
            g_autofree char *s = g_malloc0 (8 * 24);
            put_dataset (f, "label", t, 1, lab24, FALSE, s);
            H5Tclose (t);
          }
          break;
        case 11:
          unlink_if (f, "label");
          H5Gclose (H5Gcreate2 (f, "label", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
          break;
        case 12:
          unlink_if (f, "label");
          H5Lcreate_soft ("/gone", f, "label", H5P_DEFAULT, H5P_DEFAULT);
          break;
        case 13:
          {
            double l[23] = { 0 };
            put_dataset (f, "label", H5T_NATIVE_DOUBLE, 1, lab23, FALSE, l);
          }
          break;
        case 14: put_dataset (f, "label", H5T_NATIVE_DOUBLE, 1, lab1e9, TRUE, NULL); break;
        case 15:
          unlink_if (f, "label");
          H5Lcreate_external (set, "label", f, "label", H5P_DEFAULT, H5P_DEFAULT);
          break;
        case 16:
          {
            double l[24] = { 0.5 };
            put_dataset (f, "label", H5T_NATIVE_DOUBLE, 1, lab24, FALSE, l);
          }
          break;
        default: g_assert_not_reached ();
        }
      H5Fclose (f);
      refused_set (path, cases[i].expect);
    }
}

/* A compressed set within the limits whose values are fractions: a few hundred KB that
 * expand to 535 MB of bytes, then 2.1 GB of floats, which the memory limit refuses
 * (RLIMIT_AS, or ASan's allocation limit under ASan) where the set is loaded whole (`info`,
 * as the app loads a set). `eval` and `sweep` read a set a chunk at a time and never hold
 * it whole. */
static void
test_set_bomb (void)
{
  hsize_t dims[4] = { 69000, 3, 55, 47 }, chunk[4] = { 64, 3, 55, 47 }, lab[1] = { 69000 };
  g_autofree char *path = tmp ("set-bomb.h5");
  g_autofree double *block = g_new (double, 64 * 3 * 55 * 47);
  g_autofree double *labels = g_new0 (double, 69000);
  hid_t f, space, dcpl, d;

  for (gsize i = 0; i < 64 * 3 * 55 * 47; i++)
    block[i] = 0.5;
  f = H5Fcreate (path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  space = H5Screate_simple (4, dims, NULL);
  dcpl = H5Pcreate (H5P_DATASET_CREATE);
  H5Pset_chunk (dcpl, 4, chunk);
  H5Pset_deflate (dcpl, 9);
  /* every chunk holds the fill value 0.5: written once, never stored twice */
  {
    double fill = 0.5;
    H5Pset_fill_value (dcpl, H5T_NATIVE_DOUBLE, &fill);
  }
  d = H5Dcreate2 (f, "data", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  {
    hsize_t off[4] = { 0, 0, 0, 0 };
    hid_t ms = H5Screate_simple (4, chunk, NULL);
    H5Sselect_hyperslab (space, H5S_SELECT_SET, off, NULL, chunk, NULL);
    g_assert_cmpint (H5Dwrite (d, H5T_NATIVE_DOUBLE, ms, space, H5P_DEFAULT, block), >=, 0);
    H5Sclose (ms);
  }
  H5Dclose (d);
  H5Pclose (dcpl);
  H5Sclose (space);
  put_dataset (f, "label", H5T_NATIVE_DOUBLE, 1, lab, FALSE, labels);
  H5Fclose (f);
  {
    const char *argv[] = { "info", path, NULL };

    assert_refused (argv, path, "not enough memory");
  }
}

/* ---- G files ---- */

static char *
original_layer (void)
{
  hid_t f = H5Fopen (gfile, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t og = H5Gopen2 (f, "prunescope/original", H5P_DEFAULT);
  g_auto (GStrv) names = ps_h5_read_attr_strings (og, "layers", NULL);
  char *name;

  g_assert_nonnull (names);
  g_assert_nonnull (names[0]);
  name = g_strdup (names[0]);
  H5Gclose (og);
  H5Fclose (f);
  return name;
}

static void
test_g (void)
{
  g_autofree char *layer = original_layer ();
  g_autofree char *bias = g_strdup_printf ("prunescope/original/%s/bias", layer);
  hsize_t d60x0[2] = { 60, 0 }, huge[1] = { (hsize_t) 1 << 40 }, three[1] = { 3 };
  struct {
    const char *name, *expect;
  } cases[] = {
    { "g-bias-60x0.h5", "has shape (60, 0), expected (60)" },
    { "g-channels-huge.h5", "more than the" },
    { "g-channels-float.h5", "expected integers" },
    { "g-channels-range.h5", "99 is not a channel" },
    { "g-channels-twice.h5", "listed twice" },
    { "g-layer-list.h5", "a list" },
    { "g-drop-array.h5", "holds 1000 values" },
    { "g-metric-string.h5", "stored as strings" },
    { "g-no-original.h5", "prunescope/original" },
    { "g-original-group-dataset.h5", "is a dataset, expected a group" },
    { "g-original-unknown.h5", "not a layer with weights" },
    { "g-epochs-huge.h5", "fine_tune_epochs is" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = NULL;
      hid_t f = open_copy (gfile, cases[i].name, &path);
      hid_t pg = H5Gopen2 (f, "prunescope", H5P_DEFAULT);

      switch (i)
        {
        case 0:
          {
            float b[1] = { 0 };
            put_dataset (f, bias, H5T_NATIVE_FLOAT, 2, d60x0, FALSE, b);
          }
          break;
        case 1: put_dataset (f, "prunescope/channels", H5T_NATIVE_INT, 1, huge, TRUE, NULL); break;
        case 2:
          {
            double c[3] = { 1, 2, 3 };
            put_dataset (f, "prunescope/channels", H5T_NATIVE_DOUBLE, 1, three, FALSE, c);
          }
          break;
        case 3:
          {
            int c[3] = { 1, 2, 99 };
            put_dataset (f, "prunescope/channels", H5T_NATIVE_INT, 1, three, FALSE, c);
          }
          break;
        case 4:
          {
            int c[3] = { 1, 2, 1 };
            put_dataset (f, "prunescope/channels", H5T_NATIVE_INT, 1, three, FALSE, c);
          }
          break;
        case 5:
          {
            const char *two[] = { "pool_3", "pool_2", NULL };
            g_assert_true (ps_h5_write_attr_strings (pg, "layer", two, NULL));
          }
          break;
        case 6:
          {
            g_autofree char *pruned = ps_h5_read_attr_string (pg, "layer", NULL);

            g_assert_nonnull (pruned);
            H5Gclose (pg);
            pg = fresh_group (f, "prunescope");
            g_assert_true (ps_h5_write_attr_string (pg, "layer", pruned, NULL));
            put_attr_doubles (pg, "drop", 1000);
          }
          break;
        case 7:
          {
            hid_t mg = H5Gopen2 (pg, "metrics", H5P_DEFAULT);
            g_assert_true (ps_h5_write_attr_string (mg, "valid_acc", "90 %", NULL));
            H5Gclose (mg);
          }
          break;
        case 8: unlink_if (f, "prunescope/original"); break;
        case 9:
          {
            float z[1] = { 0 };
            hsize_t one[1] = { 1 };
            put_dataset (f, "prunescope/original", H5T_NATIVE_FLOAT, 1, one, FALSE, z);
          }
          break;
        case 10:
          {
            hid_t og = H5Gopen2 (pg, "original", H5P_DEFAULT);
            const char *names[] = { "pool_3", NULL };
            g_assert_true (ps_h5_write_attr_strings (og, "layers", names, NULL));
            H5Gclose (og);
          }
          break;
        case 11:
          {
            hid_t space = H5Screate (H5S_SCALAR);
            double v = 1099511627776.0;
            put_attr (pg, "fine_tune_epochs", H5T_NATIVE_DOUBLE, space, &v);
            H5Sclose (space);
          }
          break;
        default: g_assert_not_reached ();
        }
      H5Gclose (pg);
      H5Fclose (f);
      refused_model (path, cases[i].expect);
    }
}

/* ---- 7, 8: paths that are not files, files cut short, images ---- */

static void
test_paths (void)
{
  g_autofree char *dir = tmp ("a-directory.h5");
  g_autofree char *fifo = tmp ("a-fifo.h5");
  g_autofree char *onnx_fifo = tmp ("a-fifo.onnx");
  g_autofree char *empty = tmp ("empty.h5");
  g_autofree char *half = tmp ("half.h5");
  g_autofree char *data = NULL;
  gsize len;

  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_assert_cmpint (mkfifo (fifo, 0644), ==, 0);
  g_assert_cmpint (mkfifo (onnx_fifo, 0644), ==, 0);
  g_assert_true (g_file_set_contents (empty, "", 0, NULL));
  g_assert_true (g_file_get_contents (model, &data, &len, NULL));
  g_assert_true (g_file_set_contents (half, data, len / 8, NULL));

  refused_model (dir, "is a directory");
  refused_model (fifo, "is a FIFO");
  refused_model (onnx_fifo, "is a FIFO");
  refused_model ("/dev/null", "is a device");
  refused_model (empty, "not a readable HDF5 file");
  refused_model (half, "the file is truncated");
  refused_set (dir, "is a directory");
  refused_set (fifo, "is a FIFO");
  refused_set (half, "the file is truncated");
  {
    const char *argv[] = { "sweep", "--model", model, "--valid", fifo, NULL };
    assert_refused (argv, fifo, "is a FIFO");
  }
  {
    const char *argv[] = { "eval", "--model", model, fifo, NULL };
    assert_refused (argv, fifo, "is a FIFO");
  }
}

static char *
write_image (const char *name, const char *type, int w, int h)
{
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, w, h);
  char *path = tmp (name);
  guint8 *px = gdk_pixbuf_get_pixels (pb);
  int stride = gdk_pixbuf_get_rowstride (pb);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w * 3; x++)
      px[y * stride + x] = (guint8) g_random_int ();
  g_assert_true (gdk_pixbuf_save (pb, path, type, NULL, NULL));
  return path;
}

static void
cut (const char *from, const char *to, double fraction)
{
  g_autofree char *data = NULL;
  gsize len;

  g_assert_true (g_file_get_contents (from, &data, &len, NULL));
  g_assert_true (g_file_set_contents (to, data, (gssize) (len * fraction), NULL));
}

/* A PNG whose header declares 30000 x 30000 pixels, in a few hundred bytes. */
static char *
huge_png (void)
{
  g_autofree char *small = write_image ("huge-src.png", "png", 8, 8);
  g_autofree char *data = NULL;
  char *path = tmp ("huge.png");
  gsize len;
  guint8 *ihdr;
  guint32 crc;

  g_assert_true (g_file_get_contents (small, &data, &len, NULL));
  ihdr = (guint8 *) data + 16;  /* width, height after "IHDR" */
  for (int k = 0; k < 2; k++)
    {
      ihdr[k * 4 + 0] = 0, ihdr[k * 4 + 1] = 0;
      ihdr[k * 4 + 2] = 30000 >> 8, ihdr[k * 4 + 3] = 30000 & 0xff;
    }
  /* CRC-32 of "IHDR" + its 13 data bytes */
  crc = 0xffffffff;
  for (int i = 12; i < 12 + 17; i++)
    {
      crc ^= (guint8) data[i];
      for (int b = 0; b < 8; b++)
        crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
    }
  crc ^= 0xffffffff;
  data[29] = crc >> 24, data[30] = crc >> 16, data[31] = crc >> 8, data[32] = crc;
  g_assert_true (g_file_set_contents (path, data, len, NULL));
  return path;
}

static void
test_images (void)
{
  g_autofree char *png = write_image ("face.png", "png", 47, 55);
  g_autofree char *jpg = write_image ("face.jpg", "jpeg", 47, 55);
  g_autofree char *half_png = tmp ("half.png");
  g_autofree char *half_jpg = tmp ("half.jpg");
  g_autofree char *text = tmp ("text.png");
  g_autofree char *huge = huge_png ();
  struct {
    const char *path, *expect;
  } cases[] = {
    { half_png, "truncated" },
    { half_jpg, "truncated" },
    { text, "not a readable image" },
    { huge, "30000 pixels high and 30000 wide" },
  };

  cut (png, half_png, 0.5);
  cut (jpg, half_jpg, 0.5);
  g_assert_true (g_file_set_contents (text, "not an image\n", -1, NULL));
  {
    const char *argv[] = { "eval", "--model", model, png, jpg, NULL };
    Run r = run_cli (argv);
    g_assert_cmpint (r.status, ==, 0);
    g_free (r.err);
  }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const char *argv[] = { "eval", "--model", model, cases[i].path, NULL };
      assert_refused (argv, cases[i].path, cases[i].expect);
    }
}

/* ---- 7: saving: a full disk, interrupted saves, empty names ---- */

static void
assert_contents (const char *path, const char *want)
{
  g_autofree char *got = NULL;

  g_assert_true (g_file_get_contents (path, &got, NULL, NULL));
  g_assert_cmpstr (got, ==, want);
}

static guint
count_temps (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  guint n = 0;

  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] == '.' && g_str_has_suffix (name, ".tmp"))
      n++;
  return n;
}

static void
test_full_disk (void)
{
  g_autofree char *dir = tmp ("full");
  g_autofree char *g = g_build_filename (dir, "G.h5", NULL);
  g_autofree char *csv = g_build_filename (dir, "sweep.csv", NULL);

  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (g, "old G\n", -1, NULL));
  g_assert_true (g_file_set_contents (csv, "old CSV\n", -1, NULL));
  /* room for 1 KB, then none: neither the G file (1.6 MB) nor the CSV (4 KB) fits */
  for (int k = 0; k < 2; k++)
    {
      const char *repair[] = { "repair", "--model", model, "--valid", set, "--pruned", "3", "-o", g, NULL };
      const char *sweep[] = { "sweep", "--model", model, "--valid", set, "--csv", csv, NULL };

      fsize_limit = k == 0 ? 1024 : 0;
      assert_refused (repair, g, "File too large");
      assert_refused (sweep, csv, "File too large");
      fsize_limit = RLIM_INFINITY;
      assert_contents (g, "old G\n");
      assert_contents (csv, "old CSV\n");
      g_assert_cmpuint (count_temps (dir), ==, 0);
    }
}

static void
test_stale_temps (void)
{
  g_autofree char *dir = tmp ("stale");
  g_autofree char *g = g_build_filename (dir, "G.h5", NULL);
  g_autofree char *old = g_build_filename (dir, ".G.h5.0badc0de.tmp", NULL);
  g_autofree char *fresh = g_build_filename (dir, ".G.h5.12345678.tmp", NULL);
  g_autofree char *other = g_build_filename (dir, ".notes.tmp", NULL);
  g_autofree char *upper = g_build_filename (dir, ".G.h5.0BADC0DE.tmp", NULL);
  const char *repair[] = { "repair", "--model", model, "--valid", set, "--pruned", "3", "-o", g, NULL };
  struct timeval times[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
  Run r;

  g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
  for (const char **p = (const char *[]) { old, fresh, other, upper, NULL }; *p; p++)
    g_assert_true (g_file_set_contents (*p, "x", -1, NULL));
  g_assert_cmpint (utimes (old, times), ==, 0);
  g_assert_cmpint (utimes (other, times), ==, 0);
  g_assert_cmpint (utimes (upper, times), ==, 0);
  r = run_cli (repair);
  g_assert_cmpint (r.status, ==, 0);
  g_free (r.err);
  /* only ours, and only old ones */
  g_assert_false (g_file_test (old, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (fresh, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (upper, G_FILE_TEST_EXISTS));
}

static void
test_usage (void)
{
  const char *repair[] = { "repair", "--model", model, "--valid", set, "--pruned", "3", "-o", "", NULL };
  const char *sweep[] = { "sweep", "--model", model, "--valid", set, "--csv", "", NULL };
  const char *dir_out[] = { "repair", "--model", model, "--valid", set, "--pruned", "3", "-o", ps_test_tmpdir (), NULL };
  const char * const *usage[] = { repair, sweep };

  for (guint i = 0; i < G_N_ELEMENTS (usage); i++)
    {
      Run r = run_cli (usage[i]);
      g_assert_cmpint (r.status, ==, 2);
      g_assert_nonnull (strstr (r.err, "file name"));
      g_free (r.err);
    }
  assert_refused (dir_out, ps_test_tmpdir (), "is a directory");
}

static void
test_report (void)
{
  struct rusage ru;

  getrusage (RUSAGE_CHILDREN, &ru);
  g_test_message ("hostile cases: %.1f s of runs in all, slowest %.2f s (%s); "
                  "largest child peak RSS %ld MB%s", total_us / 1e6, worst_us / 1e6,
                  worst_case ? worst_case : "-", ru.ru_maxrss / 1024,
                  UNDER_ASAN ? " (ASan: its allocation limit instead of RLIMIT_AS)" : "");
  printf ("# hostile: %.1f s in all, slowest %.2f s, peak RSS %ld MB\n", total_us / 1e6,
          worst_us / 1e6, ru.ru_maxrss / 1024);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  ps_h5_init ();
  register_fake_lzf ();
  g_assert_nonnull (g_getenv ("PS_CLI"));
  setup ();
  g_test_add_func ("/hostile/baseline", test_baseline);
  g_test_add_func ("/hostile/attributes", test_attributes);
  g_test_add_func ("/hostile/config", test_config);
  g_test_add_func ("/hostile/config-nesting", test_config_nesting);
  g_test_add_func ("/hostile/second-input", test_second_input);
  g_test_add_func ("/hostile/weights", test_weights);
  g_test_add_func ("/hostile/sets", test_sets);
  g_test_add_func ("/hostile/set-bomb", test_set_bomb);
  g_test_add_func ("/hostile/g", test_g);
  g_test_add_func ("/hostile/paths", test_paths);
  g_test_add_func ("/hostile/images", test_images);
  g_test_add_func ("/hostile/full-disk", test_full_disk);
  g_test_add_func ("/hostile/stale-temps", test_stale_temps);
  g_test_add_func ("/hostile/usage", test_usage);
  g_test_add_func ("/hostile/report", test_report);
  return g_test_run ();
}
