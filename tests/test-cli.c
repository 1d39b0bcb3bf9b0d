/* test-cli.c: the prunescope-cli contract, by running the program on a small model and
 * data made here and comparing what it prints with the library */
#define G_LOG_DOMAIN "test-cli"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <glib/gstdio.h>
#include <locale.h>
#include <math.h>
#include <string.h>

#include "ps-infer.h"
#include "ps-repaired.h"
#include "ps-sweep.h"
#include "ps-test-util.h"

#define CSV_HEADER \
  "pruned,fraction,channel,valid_acc,test_acc,asr,g_test_acc,g_asr,g_clean_flagged,g_poisoned_flagged"
#define N_CELLS 10

/* The inputs every test shares, made once: B (saved and read back as the CLI reads it),
 * clean validation and test sets labelled with B's own classes, a poisoned set
 * labelled with the target 0, and the library's sweep on them. */
typedef struct {
  char      *model;
  char      *sets[PS_N_SETS];
  PsModel   *m;
  PsDataset *ds[PS_N_SETS];
  PsSweep   *sweep;
} Inputs;

static char *
tmp_path (const char *name)
{
  return g_build_filename (ps_test_tmpdir (), name, NULL);
}

static PsDataset *
labelled_by (const PsModel *m, PsDataset *ds)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ps_infer_classes (m, ds, ds->labels, NULL, &error));
  g_assert_no_error (error);
  return ds;
}

static void
save_set (PsDataset *ds, const char *path)
{
  g_autoptr (GError) error = NULL;

  g_assert_true (ps_dataset_save (ds, path, &error));
  g_assert_no_error (error);
  ps_dataset_free (ds);
}

static const Inputs *
inputs (void)
{
  static Inputs in;
  static const char *names[PS_N_SETS] = { "valid.h5", "test.h5", "poisoned.h5" };
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) b = NULL;
  PsDataset *poisoned;

  if (in.m != NULL)
    return &in;
  /* seed 3 spreads B's classes over the images (many seeds give one class to most) */
  b = ps_test_small_model (3, 5);
  in.model = tmp_path ("model.h5");
  g_assert_true (ps_model_save (b, in.model, &error));
  g_assert_no_error (error);
  in.m = ps_model_load (in.model, &error);
  g_assert_no_error (error);
  for (int k = 0; k < PS_N_SETS; k++)
    in.sets[k] = tmp_path (names[k]);
  save_set (labelled_by (in.m, ps_test_random_data (in.m, 300, 1)), in.sets[PS_SET_VALID]);
  save_set (labelled_by (in.m, ps_test_random_data (in.m, 200, 2)), in.sets[PS_SET_TEST]);
  poisoned = ps_test_random_data (in.m, 150, 3);
  for (int i = 0; i < poisoned->n; i++)
    poisoned->labels[i] = 0;
  save_set (poisoned, in.sets[PS_SET_POISONED]);

  for (int k = 0; k < PS_N_SETS; k++)
    {
      in.ds[k] = ps_dataset_load (in.sets[k], &error);
      g_assert_no_error (error);
    }
  in.sweep = ps_sweep_run (in.m, (const PsDataset * const *) in.ds, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  return &in;
}

/* ---- running the program ---- */

typedef struct {
  int   status;
  char *out;
  char *err;
} Run;

static void
run_clear (Run *r)
{
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Run, run_clear)

static Run
run_argv (const char * const *argv)
{
  Run r = { 0 };
  g_autofree char *line = g_strjoinv (" ", (char **) argv);

  g_test_message ("prunescope-cli %s", line);
  r.status = ps_test_run_cli (argv, &r.out, &r.err);
  return r;
}

#define RUN(...) run_argv ((const char * const[]) { __VA_ARGS__, NULL })

static void
assert_usage_error (Run r)
{
  g_assert_cmpint (r.status, ==, 2);
  g_assert_cmpstr (r.err, !=, "");
  run_clear (&r);
}

/* Exit 1 and exactly one stderr line "prunescope-cli: ..." that names @file. */
static void
assert_input_error (Run r, const char *file)
{
  g_test_message ("stderr: %s", r.err);
  g_assert_cmpint (r.status, ==, 1);
  g_assert_true (g_str_has_prefix (r.err, "prunescope-cli: "));
  g_assert_true (g_str_has_suffix (r.err, "\n"));
  g_assert_true (strchr (r.err, '\n') == r.err + strlen (r.err) - 1);
  g_assert_nonnull (strstr (r.err, file));
  run_clear (&r);
}

/* Exit 0, and nothing on stderr: progress goes there only on a terminal. */
static void
assert_ok (const Run *r)
{
  if (r->status != 0)
    g_test_message ("stderr: %s", r->err);
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->err, ==, "");
}

static char *
fresh_dir (const char *name)
{
  char *dir = tmp_path (name);

  g_assert_cmpint (g_mkdir (dir, 0700), ==, 0);
  return dir;
}

static gboolean
dir_is_empty (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);

  g_assert_nonnull (d);
  return g_dir_read_name (d) == NULL;
}

/* ---- usage ---- */

static void
test_usage_no_args (void)
{
  const char *argv[] = { NULL };

  assert_usage_error (run_argv (argv));
}

static void
test_usage_unknown_command (void)
{
  assert_usage_error (RUN ("frobnicate"));
  assert_usage_error (RUN ("--frobnicate"));
}

static void
test_usage_help (void)
{
  const char *core[] = { "sweep", "repair", "eval", "info" };
  g_auto (Run) top = RUN ("--help");
  g_auto (GStrv) lines = NULL;
  gboolean in_commands = FALSE;
  guint found = 0;

  assert_ok (&top);
  /* every command the overview lists has its own --help */
  lines = g_strsplit (top.out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto (GStrv) words = NULL;

      if (g_str_has_prefix (lines[i], "Commands:"))
        {
          in_commands = TRUE;
          continue;
        }
      if (!in_commands || lines[i][0] != ' ')
        {
          in_commands = in_commands && lines[i][0] == ' ';
          continue;
        }
      words = g_strsplit_set (g_strstrip (lines[i]), " ", 2);
      {
        g_auto (Run) r = RUN (words[0], "--help");

        assert_ok (&r);
        g_assert_nonnull (strstr (r.out, "Usage"));
        g_assert_nonnull (strstr (r.out, words[0]));
        for (guint k = 0; k < G_N_ELEMENTS (core); k++)
          found += g_str_equal (words[0], core[k]);
      }
    }
  g_assert_cmpuint (found, ==, G_N_ELEMENTS (core));
}

static void
test_usage_sweep (void)
{
  const Inputs *in = inputs ();
  const char *model = in->model, *valid = in->sets[PS_SET_VALID];
  const char *bad_scales[] = { "abc", "0", "-1", "1/0", "1/", "/255", "2x" };

  assert_usage_error (RUN ("sweep", "--model", model));
  assert_usage_error (RUN ("sweep", "--valid", valid));
  assert_usage_error (RUN ("sweep", "--model", model, "--valid", valid, "--bogus"));
  for (guint i = 0; i < G_N_ELEMENTS (bad_scales); i++)
    assert_usage_error (RUN ("sweep", "--model", model, "--valid", valid,
                             "--input-scale", bad_scales[i]));
  assert_usage_error (RUN ("sweep", "--model", model, "--valid", valid, "--order", "sideways"));
}

static void
test_usage_repair (void)
{
  const Inputs *in = inputs ();
  const char *model = in->model, *valid = in->sets[PS_SET_VALID];
  g_autofree char *dir = fresh_dir ("usage-repair");
  g_autofree char *g = g_build_filename (dir, "G.h5", NULL);

  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "--drop", "1"));
  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "--pruned", "2"));
  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "--drop", "1",
                           "--pruned", "2", "-o", g));
  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "-o", g));
  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "--drop", "-1", "-o", g));
  assert_usage_error (RUN ("repair", "--model", model, "--valid", valid, "--drop", "1",
                           "--input-scale", "zero", "-o", g));
  g_assert_true (dir_is_empty (dir));
}

static void
test_usage_eval_info (void)
{
  const Inputs *in = inputs ();

  assert_usage_error (RUN ("eval", "--data", in->sets[PS_SET_TEST]));
  assert_usage_error (RUN ("eval", "--model", in->model));
  assert_usage_error (RUN ("info"));
}

/* ---- the sweep ---- */

typedef struct {
  int     n_rows;
  char ***cells; /* n_rows x N_CELLS */
} Csv;

static void
csv_free (Csv *csv)
{
  for (int i = 0; i < csv->n_rows; i++)
    g_strfreev (csv->cells[i]);
  g_free (csv->cells);
  g_free (csv);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Csv, csv_free)

/* Checks the header and the row shape, and splits the rows into cells. */
static Csv *
csv_parse (const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = g_strv_length (lines);
  Csv *csv = g_new0 (Csv, 1);

  g_assert_cmpuint (n, >=, 3);
  g_assert_cmpstr (lines[0], ==, CSV_HEADER);
  g_assert_cmpstr (lines[n - 1], ==, ""); /* ends with a newline */
  csv->n_rows = n - 2;
  csv->cells = g_new0 (char **, csv->n_rows);
  for (int i = 0; i < csv->n_rows; i++)
    {
      csv->cells[i] = g_strsplit (lines[i + 1], ",", -1);
      g_assert_cmpuint (g_strv_length (csv->cells[i]), ==, N_CELLS);
    }
  return csv;
}

static double
cell_number (const char *cell)
{
  char *end;
  double v;

  g_assert_cmpstr (cell, !=, "");
  v = g_ascii_strtod (cell, &end);
  g_assert_true (*end == '\0');
  return v;
}

/* A printed cell against the library's value, to the printed precision. */
static void
assert_cell (const char *cell, double want)
{
  if (isnan (want))
    {
      g_assert_cmpstr (cell, ==, "");
      return;
    }
  g_assert_cmpfloat_with_epsilon (cell_number (cell), want, 0.5e-4 + 1e-9);
}

static void
assert_matches_sweep (const Csv *csv, const PsSweep *s)
{
  int channels = ps_sweep_n_channels (s);
  g_autofree int *seen = g_new0 (int, channels);

  g_assert_cmpint (csv->n_rows, ==, channels + 1);
  for (int k = 0; k < csv->n_rows; k++)
    {
      char **c = csv->cells[k];
      const PsSweepStep *r = ps_sweep_get_step (s, k);
      int channel = (int) cell_number (c[2]);

      g_assert_cmpint ((int) cell_number (c[0]), ==, k);
      g_assert_cmpfloat_with_epsilon (cell_number (c[1]), (double) k / channels, 0.5e-6 + 1e-12);
      if (k == 0)
        g_assert_cmpint (channel, ==, -1);
      else
        {
          g_assert_cmpint (channel, >=, 0);
          g_assert_cmpint (channel, <, channels);
          seen[channel]++;
          g_assert_cmpint (channel, ==, ps_sweep_order (s)[k - 1]);
        }
      assert_cell (c[3], r->valid_acc);
      assert_cell (c[4], r->test_acc);
      assert_cell (c[5], r->asr);
      assert_cell (c[6], r->g_test_acc);
      assert_cell (c[7], r->g_asr);
      assert_cell (c[8], r->g_clean_flagged);
      assert_cell (c[9], r->g_poisoned_flagged);
    }
  for (int ch = 0; ch < channels; ch++)
    g_assert_cmpint (seen[ch], ==, 1);
}

static char *
sweep_all_text (void)
{
  const Inputs *in = inputs ();
  g_auto (Run) r = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                        "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED]);

  assert_ok (&r);
  return g_steal_pointer (&r.out);
}

static void
test_sweep_csv (void)
{
  const Inputs *in = inputs ();
  g_autofree char *text = sweep_all_text ();
  g_autoptr (Csv) csv = csv_parse (text);
  int pool = ps_model_find_layer (in->m, "pool_b");
  gboolean moved = FALSE;

  /* the default layer is the last pooling layer, pool_b */
  g_assert_cmpint (csv->n_rows, ==, in->m->layers[pool]->out.c + 1);
  assert_matches_sweep (csv, in->sweep);
  /* the data must make pruning matter, or the comparison proves little */
  for (int k = 1; k < csv->n_rows; k++)
    moved |= !g_str_equal (csv->cells[k][3], csv->cells[0][3]);
  g_assert_true (moved);
  g_assert_cmpstr (csv->cells[0][3], ==, "100.0000");
}

static void
test_sweep_valid_only (void)
{
  const Inputs *in = inputs ();
  g_autofree char *all = sweep_all_text ();
  g_autoptr (Csv) full = csv_parse (all);
  g_auto (Run) r = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID]);
  g_autoptr (Csv) csv = NULL;

  assert_ok (&r);
  csv = csv_parse (r.out);
  g_assert_cmpint (csv->n_rows, ==, full->n_rows);
  for (int k = 0; k < csv->n_rows; k++)
    {
      /* the validation set alone chooses the order */
      for (int j = 0; j < 4; j++)
        g_assert_cmpstr (csv->cells[k][j], ==, full->cells[k][j]);
      for (int j = 4; j < N_CELLS; j++)
        g_assert_cmpstr (csv->cells[k][j], ==, "");
    }
}

static void
test_sweep_csv_file (void)
{
  const Inputs *in = inputs ();
  g_autofree char *all = sweep_all_text ();
  g_autofree char *dir = fresh_dir ("csv");
  g_autofree char *path = g_build_filename (dir, "sweep.csv", NULL);
  g_autofree char *contents = NULL;
  g_auto (Run) r = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                        "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED],
                        "--csv", path);

  assert_ok (&r);
  g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, all);
  g_assert_cmpstr (r.out, ==, "");
}

static void
test_sweep_decreasing (void)
{
  const Inputs *in = inputs ();
  g_autofree char *all = sweep_all_text ();
  g_autoptr (Csv) up = csv_parse (all);
  g_auto (Run) r = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                        "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED],
                        "--order", "decreasing");
  g_autoptr (Csv) down = NULL;
  PsSweepOptions opt = { NULL, TRUE };
  g_autoptr (GError) error = NULL;
  g_autoptr (PsSweep) s = ps_sweep_run (in->m, (const PsDataset * const *) in->ds, &opt,
                                        NULL, NULL, NULL, &error);
  int n;

  g_assert_no_error (error);
  assert_ok (&r);
  down = csv_parse (r.out);
  n = down->n_rows - 1;
  g_assert_cmpint (down->n_rows, ==, up->n_rows);
  for (int k = 1; k <= n; k++)
    g_assert_cmpstr (down->cells[k][2], ==, up->cells[n + 1 - k][2]);
  assert_matches_sweep (down, s);
}

static gboolean
decimal_comma (const char *name)
{
  gboolean comma = setlocale (LC_NUMERIC, name) != NULL
                   && g_str_equal (localeconv ()->decimal_point, ",");

  setlocale (LC_NUMERIC, "C");
  return comma;
}

/* A locale that writes numbers with a decimal comma: an installed one, or one built
 * in the temp dir when the system has the sources; NULL if neither. */
static const char *
comma_locale (void)
{
  const char *candidates[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8" };
  g_autofree char *dir = tmp_path ("locale");
  g_autofree char *out = g_build_filename (dir, "de_DE.UTF-8", NULL);
  const char *argv[] = { "localedef", "-i", "de_DE", "-f", "UTF-8", out, NULL };

  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    if (decimal_comma (candidates[i]))
      return candidates[i];
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_mkdir (dir, 0700);
      g_spawn_sync (NULL, (char **) argv, NULL,
                    G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                    NULL, NULL, NULL, NULL, NULL, NULL);
    }
  g_setenv ("LOCPATH", dir, TRUE);
  if (decimal_comma ("de_DE.UTF-8"))
    return "de_DE.UTF-8";
  g_unsetenv ("LOCPATH");
  return NULL;
}

static void
test_locale (void)
{
  const Inputs *in = inputs ();
  g_autofree char *all = sweep_all_text ();
  const char *comma = comma_locale ();
  g_autofree char *supp = tmp_path ("lsan.supp");
  g_autofree char *old_lsan = g_strdup (g_getenv ("LSAN_OPTIONS"));
  g_autofree char *lsan = NULL;

  /* the CSV keeps its decimal point where numbers are written with a comma */
  if (comma == NULL)
    {
      g_test_skip ("no locale with a decimal comma");
      return;
    }
  /* glibc keeps the locale path it reads for good, which LeakSanitizer (in the
   * sanitizer builds) would report as a leak of the program */
  g_assert_true (g_file_set_contents (supp, "leak:__argz_add_sep\n", -1, NULL));
  lsan = old_lsan ? g_strdup_printf ("%s:suppressions=%s", old_lsan, supp)
                  : g_strdup_printf ("suppressions=%s", supp);
  g_setenv ("LSAN_OPTIONS", lsan, TRUE);
  g_setenv ("LC_ALL", comma, TRUE);
  {
    g_auto (Run) r = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                          "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED]);
    g_auto (Run) e = RUN ("eval", "--model", in->model, "--data", in->sets[PS_SET_TEST],
                          "--poisoned", in->sets[PS_SET_POISONED]);
    g_auto (Run) c = { 0 };

    g_unsetenv ("LC_ALL");
    g_unsetenv ("LOCPATH");
    if (old_lsan != NULL)
      g_setenv ("LSAN_OPTIONS", old_lsan, TRUE);
    else
      g_unsetenv ("LSAN_OPTIONS");
    assert_ok (&r);
    g_assert_cmpstr (r.out, ==, all);
    /* and eval prints its rates as the lab's eval.py does */
    c = RUN ("eval", "--model", in->model, "--data", in->sets[PS_SET_TEST],
             "--poisoned", in->sets[PS_SET_POISONED]);
    assert_ok (&e);
    assert_ok (&c);
    g_assert_cmpstr (e.out, ==, c.out);
  }
}

/* ---- repair and eval ---- */

/* `eval --data` reads the set a round of images at a time: on a set of several rounds and a
 * part, with labels the model gets right for two images in three, it prints the accuracy
 * of the library's classes on the set loaded whole. */
static void
test_eval_rounds (void)
{
  const Inputs *in = inputs ();
  g_autofree char *path = tmp_path ("eval-rounds.h5");
  g_autoptr (PsDataset) ds = ps_test_random_data (in->m, 2500, 41);
  g_autoptr (GError) error = NULL;
  g_autofree int *classes = g_new (int, ds->n);
  char want[G_ASCII_DTOSTR_BUF_SIZE];
  g_autofree char *line = NULL;

  g_assert_true (ps_infer_classes (in->m, ds, classes, NULL, &error));
  for (int i = 0; i < ds->n; i++)
    ds->labels[i] = i % 3 == 0 ? (classes[i] + 1) % in->m->n_classes : classes[i];
  g_assert_true (ps_dataset_save (ds, path, &error));
  g_assert_no_error (error);
  g_ascii_formatd (want, sizeof want, "%.4f", ps_infer_accuracy (classes, ds->labels, ds->n));
  line = g_strdup_printf ("Clean Classification accuracy: %s %%\n", want);
  {
    g_auto (Run) e = RUN ("eval", "--model", in->model, "--data", path);

    assert_ok (&e);
    g_assert_cmpstr (e.out, ==, line);
    g_assert_cmpstr (want, ==, "66.6400");
  }
}

static double
printed_rate (const char *out, const char *label)
{
  const char *p = strstr (out, label);
  char *end;
  double v;

  g_assert_nonnull (p);
  p += strlen (label);
  v = g_ascii_strtod (p, &end);
  g_assert_true (end != p);
  g_assert_true (g_str_has_prefix (end, " %"));
  return v;
}

static PsRepaired *
load_g (const char *path, int want_pruned)
{
  const Inputs *in = inputs ();
  g_autoptr (GError) error = NULL;
  PsRepaired *g = ps_repaired_load (path, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (g->layer, ==, "pool_b");
  g_assert_cmpint (g->n_channels, ==, want_pruned);
  for (int i = 0; i < g->n_channels; i++)
    g_assert_cmpint (g->channels[i], ==, ps_sweep_order (in->sweep)[i]);
  return g;
}

static double
g_accuracy (const PsRepaired *g, const PsDataset *ds)
{
  g_autoptr (GError) error = NULL;
  g_autofree int *classes = g_new (int, ds->n);

  g_assert_true (ps_repaired_classify (g, ds, classes, NULL, &error));
  g_assert_no_error (error);
  return ps_infer_accuracy (classes, ds->labels, ds->n);
}

static void
test_repair_drop (void)
{
  const Inputs *in = inputs ();
  const PsSweep *s = in->sweep;
  g_autofree char *dir = fresh_dir ("repair-drop");
  g_autofree char *path = g_build_filename (dir, "G.h5", NULL);
  double base = ps_sweep_get_step (s, 0)->valid_acc, worst = base, x;
  char text[G_ASCII_DTOSTR_BUF_SIZE];
  int k = -1;

  /* X halfway to the largest drop; the stop is the first step that far down */
  for (int i = 0; i < ps_sweep_n_steps (s); i++)
    worst = MIN (worst, ps_sweep_get_step (s, i)->valid_acc);
  g_assert_cmpfloat (base - worst, >, 2);
  g_ascii_formatd (text, sizeof text, "%.3f", (base - worst) / 2);
  x = g_ascii_strtod (text, NULL);
  for (int i = 0; i < ps_sweep_n_steps (s) && k < 0; i++)
    if (ps_sweep_get_step (s, i)->valid_acc <= base - x)
      k = i;
  g_assert_cmpint (k, >, 0);

  {
    g_auto (Run) r = RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                          "--drop", text, "-o", path);
    g_auto (Run) e = { 0 };
    g_autoptr (PsRepaired) g = NULL;
    const PsSweepStep *row = ps_sweep_get_step (s, k);

    assert_ok (&r);
    g = load_g (path, k);
    {
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      g_assert_cmpstr (g_dir_read_name (d), ==, "G.h5");
      g_assert_null (g_dir_read_name (d));
    }

    /* the eval of the lab, through the program, the loaded G, and the sweep's G */
    e = RUN ("eval", "--model", path, "--data", in->sets[PS_SET_TEST],
             "--poisoned", in->sets[PS_SET_POISONED]);
    assert_ok (&e);
    g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Clean Classification accuracy: "),
                                    g_accuracy (g, in->ds[PS_SET_TEST]), 0.5e-4 + 1e-9);
    g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Clean Classification accuracy: "),
                                    row->g_test_acc, 0.5e-4 + 1e-9);
    g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Attack Success Rate: "),
                                    g_accuracy (g, in->ds[PS_SET_POISONED]), 0.5e-4 + 1e-9);
    g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Attack Success Rate: "),
                                    row->g_asr, 0.5e-4 + 1e-9);
  }
}

/* The metrics a G file records are what `eval` measures on that file. */
static void
assert_recorded_equals_eval (const char *g_path)
{
  const Inputs *in = inputs ();
  g_autoptr (GError) error = NULL;
  g_autoptr (PsRepaired) g = ps_repaired_load (g_path, &error);
  g_auto (Run) e = RUN ("eval", "--model", g_path, "--data", in->sets[PS_SET_TEST],
                        "--poisoned", in->sets[PS_SET_POISONED]);

  g_assert_no_error (error);
  assert_ok (&e);
  g_assert_false (isnan (g->metrics.g_test_acc) || isnan (g->metrics.g_asr));
  g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Clean Classification accuracy: "),
                                  g->metrics.g_test_acc, 0.5e-4 + 1e-9);
  g_assert_cmpfloat_with_epsilon (printed_rate (e.out, "Attack Success Rate: "),
                                  g->metrics.g_asr, 0.5e-4 + 1e-9);
}

/* A G given to repair is unwrapped to its B, said so, and the new G's record holds. */
static void
test_repair_from_g (void)
{
  const Inputs *in = inputs ();
  g_autofree char *dir = fresh_dir ("repair-from-g");
  g_autofree char *g1 = g_build_filename (dir, "G1.h5", NULL);
  g_autofree char *g2 = g_build_filename (dir, "G2.h5", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsRepaired) first = NULL, second = NULL;

  {
    g_auto (Run) r = RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                          "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED],
                          "--pruned", "3", "--fine-tune", "1", "--lr", "0.01", "-o", g1);
    assert_ok (&r);
  }
  assert_recorded_equals_eval (g1);
  first = ps_repaired_load (g1, &error);
  g_assert_no_error (error);
  g_assert_true (first->fine_tuned);
  {
    g_auto (Run) r = RUN ("repair", "--model", g1, "--valid", in->sets[PS_SET_VALID],
                          "--test", in->sets[PS_SET_TEST], "--poisoned", in->sets[PS_SET_POISONED],
                          "--pruned", "4", "-o", g2);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.err, "repaired network G"));
    g_assert_nonnull (strstr (r.err, g1));
  }
  assert_recorded_equals_eval (g2);
  second = ps_repaired_load (g2, &error);
  g_assert_no_error (error);
  g_assert_false (second->fine_tuned);
  g_assert_cmpint (second->n_channels, ==, 4);
  /* The second G's B is the first one's B, the original BadNet, bit for bit. */
  for (int i = 0; i < in->m->n_layers; i++)
    {
      const PsLayer *a = in->m->layers[i], *b = second->b->layers[i];

      if (ps_layer_has_weights (a))
        g_assert_cmpmem (a->kernel, a->kernel_len * 4, b->kernel, b->kernel_len * 4);
    }
}

static void
test_repair_pruned (void)
{
  const Inputs *in = inputs ();
  g_autofree char *dir = fresh_dir ("repair-pruned");
  g_autofree char *path = g_build_filename (dir, "G.h5", NULL);

  for (int k = 0; k <= ps_sweep_n_channels (in->sweep); k += 3)
    {
      g_autofree char *kt = g_strdup_printf ("%d", k);
      g_auto (Run) r = RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                            "--pruned", kt, "-o", path);
      g_autoptr (PsRepaired) g = NULL;

      assert_ok (&r);
      g = load_g (path, k);
    }
}

static void
test_repair_unreached (void)
{
  const Inputs *in = inputs ();
  g_autofree char *dir = fresh_dir ("repair-unreached");
  g_autofree char *path = g_build_filename (dir, "G.h5", NULL);
  g_autofree char *k = g_strdup_printf ("%d", ps_sweep_n_channels (in->sweep) + 1);

  assert_input_error (RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                           "--drop", "150", "-o", path), in->sets[PS_SET_VALID]);
  assert_input_error (RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                           "--pruned", k, "-o", path), in->model);
  g_assert_true (dir_is_empty (dir));
}

static char *
save_png (const PsDataset *ds, int index)
{
  g_autofree char *name = g_strdup_printf ("face-%d.png", index);
  char *path = tmp_path (name);
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, ds->w, ds->h);
  const guint8 *src = ds->u8 + (gsize) index * ds->h * ds->w * 3;
  guint8 *px = gdk_pixbuf_get_pixels (pb);
  int stride = gdk_pixbuf_get_rowstride (pb);
  g_autoptr (GError) error = NULL;

  for (int y = 0; y < ds->h; y++)
    memcpy (px + y * stride, src + (gsize) y * ds->w * 3, ds->w * 3);
  g_assert_true (gdk_pixbuf_save (pb, path, "png", &error, NULL));
  g_assert_no_error (error);
  return path;
}

/* `eval` on images prints PATH<TAB>CLASS, the library's class of the same pixels. */
static void
check_eval_images (const char *model_path, const PsModel *m, const PsRepaired *g,
                   const PsDataset *ds, const int *index, int n)
{
  g_autoptr (GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GString) want = g_string_new (NULL);
  g_autofree int *classes = g_new (int, ds->n);
  g_autoptr (GError) error = NULL;
  g_auto (Run) r = { 0 };

  if (g != NULL)
    g_assert_true (ps_repaired_classify (g, ds, classes, NULL, &error));
  else
    g_assert_true (ps_infer_classes (m, ds, classes, NULL, &error));
  g_ptr_array_add (argv, g_strdup ("eval"));
  g_ptr_array_add (argv, g_strdup ("--model"));
  g_ptr_array_add (argv, g_strdup (model_path));
  for (int i = 0; i < n; i++)
    {
      char *png = save_png (ds, index[i]);

      g_ptr_array_add (argv, png);
      g_string_append_printf (want, "%s\t%d\n", png, classes[index[i]]);
    }
  g_ptr_array_add (argv, NULL);
  r = run_argv ((const char * const *) argv->pdata);
  assert_ok (&r);
  g_assert_cmpstr (r.out, ==, want->str);
}

static void
test_eval_images (void)
{
  const Inputs *in = inputs ();
  const PsDataset *ds = in->ds[PS_SET_POISONED];
  g_autofree char *g_path = tmp_path ("eval-G.h5");
  g_auto (Run) r = RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                        "--pruned", "5", "-o", g_path);
  g_autoptr (PsRepaired) g = NULL;
  g_autoptr (GError) error = NULL;
  g_autofree int *classes = g_new (int, ds->n);
  int index[8], n = 0, nc;

  assert_ok (&r);
  g = ps_repaired_load (g_path, &error);
  g_assert_no_error (error);
  nc = ps_repaired_n_classes (g);
  /* images G flags as backdoored (class N) and images it does not */
  g_assert_true (ps_repaired_classify (g, ds, classes, NULL, &error));
  for (int i = 0; i < ds->n && n < 4; i++)
    if (classes[i] == nc)
      index[n++] = i;
  g_assert_cmpint (n, >, 0);
  for (int i = 0; i < ds->n && n < 8; i++)
    if (classes[i] != nc)
      index[n++] = i;
  check_eval_images (in->model, in->m, NULL, ds, index, n);
  check_eval_images (g_path, NULL, g, ds, index, n);
}

static void
test_info (void)
{
  const Inputs *in = inputs ();
  g_autofree char *g = tmp_path ("info-G.h5");
  g_auto (Run) r = RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                        "--pruned", "2", "-o", g);
  const char *files[] = { in->model, g, in->sets[PS_SET_VALID] };

  assert_ok (&r);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_auto (Run) info = RUN ("info", files[i]);

      assert_ok (&info);
      g_assert_nonnull (strstr (info.out, files[i]));
    }
  {
    g_auto (Run) info = RUN ("info", in->sets[PS_SET_VALID]);
    g_assert_nonnull (strstr (info.out, "300"));
  }
  /* A Keras model's feature maps are listed, its last pooling layer the default, and the
   * sweep takes every one of them. */
  {
    g_auto (Run) info = RUN ("info", in->model);
    const char *list = strstr (info.out, "feature maps to prune");
    g_auto (GStrv) lines = NULL;
    int n = 0, n_default = 0;

    g_assert_nonnull (list);
    lines = g_strsplit (list, "\n", -1);
    for (int i = 1; lines[i] != NULL && g_str_has_prefix (lines[i], "    "); i++, n++)
      {
        g_auto (GStrv) words = g_strsplit (g_strstrip (lines[i]), " ", -1);
        int layer = ps_model_find_layer (in->m, words[0]);
        g_auto (Run) sweep = RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                                  "--layer", words[0]);

        g_assert_cmpint (layer, >=, 0);
        g_assert_true (ps_model_is_prunable (in->m, layer));
        if (strstr (lines[i], "(default)") != NULL)
          {
            g_assert_cmpint (layer, ==, ps_model_last_pool (in->m));
            n_default++;
          }
        assert_ok (&sweep);
        g_assert_true (g_str_has_prefix (sweep.out, "pruned,"));
      }
    g_assert_cmpint (n, >=, 3);
    g_assert_cmpint (n_default, ==, 1);
  }
}

/* ---- bad input ---- */

static char *
write_text (const char *name, const char *text)
{
  char *path = tmp_path (name);

  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
test_bad_model (void)
{
  const Inputs *in = inputs ();
  const char *valid = in->sets[PS_SET_VALID], *test = in->sets[PS_SET_TEST];
  g_autofree char *missing = tmp_path ("no-such-model.h5");
  g_autofree char *text = write_text ("text-model.h5", "this is not a model\n");
  g_autofree char *truncated = tmp_path ("truncated-model.h5");
  g_autofree char *dataset_as_model = g_strdup (valid);
  g_autofree char *contents = NULL;
  const char *bad[] = { missing, text, truncated };
  gsize len;

  g_assert_true (g_file_get_contents (in->model, &contents, &len, NULL));
  g_assert_true (g_file_set_contents (truncated, contents, len / 2, NULL));
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      assert_input_error (RUN ("sweep", "--model", bad[i], "--valid", valid), bad[i]);
      assert_input_error (RUN ("eval", "--model", bad[i], "--data", test), bad[i]);
      assert_input_error (RUN ("info", bad[i]), bad[i]);
    }
  /* a dataset is not a model */
  assert_input_error (RUN ("eval", "--model", dataset_as_model, "--data", test), dataset_as_model);
  /* a layer the model does not have */
  assert_input_error (RUN ("sweep", "--model", in->model, "--valid", valid, "--layer", "nosuch"),
                      in->model);
}

static void
test_corrupted_model (void)
{
  const Inputs *in = inputs ();
  g_autofree char *path = tmp_path ("corrupted-model.h5");
  g_autofree char *contents = NULL;
  gsize len;
  int failed = 0;

  /* 64 bytes of garbage at places across the file: whatever HDF5 makes of it, the
   * program never crashes and either works or says what is wrong in one line */
  g_assert_true (g_file_get_contents (in->model, &contents, &len, NULL));
  for (gsize at = 0; at + 64 <= len; at += len / 41 + 1)
    {
      g_autofree char *copy = g_memdup2 (contents, len);
      g_auto (Run) r = { 0 };

      for (int i = 0; i < 64; i++)
        copy[at + i] = (char) (0xA5 ^ (i * 29));
      g_assert_true (g_file_set_contents (path, copy, len, NULL));
      r = RUN ("eval", "--model", path, "--data", in->sets[PS_SET_TEST]);
      if (r.status != 0)
        {
          assert_input_error (r, path);
          r = (Run) { 0 };
          failed++;
        }
    }
  g_assert_cmpint (failed, >, 0);
}

static void
test_bad_data (void)
{
  const Inputs *in = inputs ();
  PsShape shape = in->m->layers[in->m->input]->out;
  g_autofree char *small = tmp_path ("small-images.h5");
  g_autofree char *labels = tmp_path ("big-labels.h5");
  g_autofree char *text = write_text ("text-data.h5", "1,2,3\n");
  g_autofree char *truncated = tmp_path ("truncated-data.h5");
  g_autofree char *contents = NULL;
  g_autofree guint8 *px = g_new0 (guint8, 4 * 8 * 8 * 3);
  g_autofree char *nan = tmp_path ("nan-late.h5");
  g_autofree char *damaged = tmp_path ("damaged-chunk.h5");
  const int few[] = { 0, 1, 2, 3 };
  const char *bad[] = { small, labels, text, truncated, nan, damaged };
  gsize len;

  /* images that do not fit the model */
  {
    g_autoptr (PsDataset) ds = ps_dataset_new_u8 (4, 8, 8, 3, px, few);
    g_autoptr (GError) error = NULL;
    g_assert_true (ps_dataset_save (ds, small, &error));
  }
  /* labels beyond the model's classes */
  {
    g_autoptr (PsDataset) ds = ps_test_random_data (in->m, 20, 4);
    g_autoptr (GError) error = NULL;
    ds->labels[13] = in->m->n_classes;
    g_assert_true (ps_dataset_save (ds, labels, &error));
  }
  g_assert_true (g_file_get_contents (in->sets[PS_SET_TEST], &contents, &len, NULL));
  g_assert_true (g_file_set_contents (truncated, contents, len / 2, NULL));
  /* found while B already runs over the set, the file read a chunk at a time: a pixel
   * that is not a number in the last chunk, a chunk that does not inflate */
  memset (contents + len / 2, 0x55, 256);
  g_assert_true (g_file_set_contents (damaged, contents, len, NULL));
  {
    g_autoptr (PsDataset) ds = ps_test_random_data (in->m, 300, 5);
    g_autoptr (GError) error = NULL;
    gsize values = (gsize) ds->n * ds->h * ds->w * ds->c;

    ds->f32 = g_new (float, values);
    for (gsize i = 0; i < values; i++)
      ds->f32[i] = ds->u8[i] / 2.0f;
    g_clear_pointer (&ds->u8, g_free);
    ds->f32[values - 5] = NAN;
    g_assert_true (ps_dataset_save (ds, nan, &error));
  }
  g_assert_cmpint (shape.h, !=, 8);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      assert_input_error (RUN ("sweep", "--model", in->model, "--valid", bad[i]), bad[i]);
      assert_input_error (RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                               "--test", bad[i]), bad[i]);
      assert_input_error (RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                               "--poisoned", bad[i]), bad[i]);
      assert_input_error (RUN ("eval", "--model", in->model, "--data", bad[i]), bad[i]);
      assert_input_error (RUN ("eval", "--model", in->model, "--poisoned", bad[i]), bad[i]);
    }
  assert_input_error (RUN ("info", text), text);
  assert_input_error (RUN ("info", truncated), truncated);
}

static char *
write_png (const char *name, int w, int h)
{
  char *path = tmp_path (name);
  g_autoptr (GdkPixbuf) pb = gdk_pixbuf_new (GDK_COLORSPACE_RGB, FALSE, 8, w, h);
  g_autoptr (GError) error = NULL;

  gdk_pixbuf_fill (pb, 0x806040ff);
  g_assert_true (gdk_pixbuf_save (pb, path, "png", &error, NULL));
  g_assert_no_error (error);
  return path;
}

static void
test_bad_image (void)
{
  const Inputs *in = inputs ();
  PsShape s = in->m->layers[in->m->input]->out;
  g_autofree char *good = write_png ("good.png", s.w, s.h);
  g_autofree char *swapped = write_png ("swapped.png", s.h, s.w);
  g_autofree char *bigger = write_png ("bigger.png", s.w + 1, s.h);
  g_autofree char *text = write_text ("text.png", "not an image\n");
  g_autofree char *missing = tmp_path ("no-such.png");
  const char *bad[] = { swapped, bigger, text, missing };

  g_assert_cmpint (s.w, !=, s.h);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      assert_input_error (RUN ("eval", "--model", in->model, bad[i]), bad[i]);
      /* a bad image among good ones still fails, naming the bad one */
      assert_input_error (RUN ("eval", "--model", in->model, good, bad[i]), bad[i]);
    }
}

static void
test_bad_output (void)
{
  const Inputs *in = inputs ();
  g_autofree char *dir = fresh_dir ("bad-output");
  g_autofree char *nodir = g_build_filename (dir, "missing", NULL);
  g_autofree char *g = g_build_filename (nodir, "G.h5", NULL);
  g_autofree char *csv = g_build_filename (nodir, "sweep.csv", NULL);

  assert_input_error (RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                           "--pruned", "2", "-o", g), g);
  assert_input_error (RUN ("sweep", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                           "--csv", csv), csv);
  g_assert_false (g_file_test (nodir, G_FILE_TEST_EXISTS));
  g_assert_true (dir_is_empty (dir));

  /* failures before or while saving leave no G, partial or whole */
  {
    g_autofree char *out = g_build_filename (dir, "G.h5", NULL);
    g_autofree char *text = write_text ("text-valid.h5", "no\n");

    assert_input_error (RUN ("repair", "--model", in->model, "--valid", text,
                             "--pruned", "2", "-o", out), text);
    assert_input_error (RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                             "--drop", "101", "-o", out), in->sets[PS_SET_VALID]);
    g_assert_true (dir_is_empty (dir));
    /* a G that cannot be renamed into place (a directory has the name) */
    g_assert_cmpint (g_mkdir (out, 0700), ==, 0);
    {
      g_autofree char *inside = g_build_filename (out, "keep", NULL);
      g_autoptr (GDir) d = NULL;

      g_assert_true (g_file_set_contents (inside, "x", -1, NULL));
      assert_input_error (RUN ("repair", "--model", in->model, "--valid", in->sets[PS_SET_VALID],
                               "--pruned", "2", "-o", out), out);
      d = g_dir_open (dir, 0, NULL);
      g_assert_cmpstr (g_dir_read_name (d), ==, "G.h5");
      g_assert_null (g_dir_read_name (d));
    }
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/cli/usage/no-args", test_usage_no_args);
  g_test_add_func ("/cli/usage/unknown-command", test_usage_unknown_command);
  g_test_add_func ("/cli/usage/help", test_usage_help);
  g_test_add_func ("/cli/usage/sweep", test_usage_sweep);
  g_test_add_func ("/cli/usage/repair", test_usage_repair);
  g_test_add_func ("/cli/usage/eval-info", test_usage_eval_info);
  g_test_add_func ("/cli/sweep/csv", test_sweep_csv);
  g_test_add_func ("/cli/sweep/valid-only", test_sweep_valid_only);
  g_test_add_func ("/cli/sweep/csv-file", test_sweep_csv_file);
  g_test_add_func ("/cli/sweep/decreasing", test_sweep_decreasing);
  g_test_add_func ("/cli/repair/drop", test_repair_drop);
  g_test_add_func ("/cli/repair/pruned", test_repair_pruned);
  g_test_add_func ("/cli/repair/unreached", test_repair_unreached);
  g_test_add_func ("/cli/repair/from-g", test_repair_from_g);
  g_test_add_func ("/cli/eval/images", test_eval_images);
  g_test_add_func ("/cli/eval/rounds", test_eval_rounds);
  g_test_add_func ("/cli/info", test_info);
  g_test_add_func ("/cli/locale", test_locale);
  g_test_add_func ("/cli/bad-input/model", test_bad_model);
  g_test_add_func ("/cli/bad-input/corrupted-model", test_corrupted_model);
  g_test_add_func ("/cli/bad-input/data", test_bad_data);
  g_test_add_func ("/cli/bad-input/image", test_bad_image);
  g_test_add_func ("/cli/bad-input/output", test_bad_output);

  return g_test_run ();
}
