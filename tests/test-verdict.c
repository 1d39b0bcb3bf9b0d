/* test-verdict.c: the verdict's words against the demo BadNet's real sweep (no display) —
 * disarmed at X = 10, not disarmed at X = 4, X out of reach, a wrong input scale measured
 * on real images, poisoned labels that are not one target, and the lab3 BadNet on the demo's
 * data (a model and data that do not belong together). */
#define G_LOG_DOMAIN "test-verdict"

#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ps-demo.h"
#include "ps-test-util.h"
#include "ps-verdict.h"

static PsModel *demo_model;
static PsDataset *demo_sets[PS_N_SETS];
static PsSweep *demo_sweep;

static PsDataset *
load_set (const char *dir, const char *relative)
{
  g_autofree char *path = g_build_filename (dir, relative, NULL);
  g_autoptr (GError) error = NULL;
  PsDataset *ds = ps_dataset_load (path, &error);

  g_assert_no_error (error);
  return ds;
}

static void
setup_demo (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *model = ps_demo_model_path (&error);
  g_autofree char *dir = NULL;

  g_assert_no_error (error);
  dir = ps_demo_ensure_data (NULL, &error);
  g_assert_no_error (error);
  demo_model = ps_model_load (model, &error);
  g_assert_no_error (error);
  demo_sets[PS_SET_VALID] = load_set (dir, "data/cl/valid.h5");
  demo_sets[PS_SET_TEST] = load_set (dir, "data/cl/test.h5");
  demo_sets[PS_SET_POISONED] = load_set (dir, "data/bd/bd_test.h5");
  demo_sweep = ps_sweep_run (demo_model, (const PsDataset * const *) demo_sets, NULL, NULL, NULL,
                             NULL, &error);
  g_assert_no_error (error);
}

static PsVerdict *
verdict_at (double drop, PsVerdictOptions *o)
{
  PsVerdictOptions defaults;
  int step = ps_sweep_stop_step (demo_sweep, drop);

  if (o == NULL)
    {
      ps_verdict_options_init (&defaults);
      o = &defaults;
    }
  o->drop = drop;
  if (step < 0)
    step = ps_sweep_n_steps (demo_sweep) - 1;
  return ps_verdict_new (demo_sweep, step, o);
}

static void
assert_contains (const char *text, const char *part)
{
  if (strstr (text, part) == NULL)
    g_error ("“%s” is not in “%s”", part, text);
}

/* The README's table: X = 10 prunes 37 channels, attack success 7.94 %, G 78.83 % clean. */
static void
test_disarmed (void)
{
  g_autoptr (PsVerdict) v = verdict_at (10, NULL);

  g_assert_cmpint (v->step, ==, 37);
  g_assert_cmpint (v->level, ==, PS_VERDICT_DISARMED);
  g_assert_cmpuint (v->warnings, ==, 0);
  g_assert_true (v->suggest_save);
  assert_contains (v->summary, "X = 10.0: 37 of 60 channels of “pool_3” pruned.");
  assert_contains (v->summary, "Attack success 99.99 % → 7.94 % (B′ and G)");
  assert_contains (v->summary, "90.71 % → 78.83 % (G)");
  assert_contains (v->summary, "G flags 92.0 % of poisoned inputs");
  assert_contains (v->rule, "it is 10.43 points lower");
  g_assert_cmpstr (v->headline, ==, "Backdoor disarmed");
}

static void
test_not_disarmed (void)
{
  g_autoptr (PsVerdict) v = verdict_at (4, NULL);

  g_assert_cmpint (v->step, ==, 31);
  g_assert_cmpint (v->level, ==, PS_VERDICT_NOT_DISARMED);
  g_assert_false (v->suggest_save);
  assert_contains (v->summary, "99.99 % → 73.87 %");
  g_assert_cmpstr (v->headline, ==, "Backdoor not disarmed");
}

/* Pruning every channel of the demo leaves about chance: 95 points are out of reach. */
static void
test_unreached (void)
{
  g_autoptr (PsVerdict) v = verdict_at (95, NULL);
  const PsSweepStep *last = ps_sweep_get_step (demo_sweep, 60);

  g_assert_cmpint (v->step, ==, 60);
  g_assert_cmpuint (v->warnings, ==, PS_VERDICT_WARN_UNREACHED);
  g_assert_false (v->suggest_save);
  g_assert_null (strstr (v->rule, "it is"));
  assert_contains (v->rule, "No step lowers validation accuracy by X = 95.0");
  g_assert_cmpfloat (last->valid_acc, >, 91.27 - 95);
  g_assert_null (strstr (v->summary, "X = 95"));
}

/* The scale check is measured on real validation images, not guessed: the demo's B (a ReLU
 * network) is nearly as good at the wrong scale, so no warning may appear. */
static void
test_scale (void)
{
  g_autoptr (PsModel) wrong = ps_model_copy (demo_model);
  g_autoptr (GError) error = NULL;
  PsVerdictOptions o, ok;

  ps_verdict_options_init (&ok);
  g_assert_true (ps_verdict_measure_scale (demo_model, demo_sets[PS_SET_VALID], 300, &ok, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (ok.sample_size, ==, 300);
  g_assert_cmpfloat (ok.sample_acc, >, 80);
  g_assert_cmpfloat (ok.other_scale, ==, 1.0);

  wrong->input_scale = 1.0;
  ps_verdict_options_init (&o);
  g_assert_true (ps_verdict_measure_scale (wrong, demo_sets[PS_SET_VALID], 300, &o, NULL, &error));
  g_assert_cmpfloat (o.sample_acc, ==, ok.other_scale_acc);
  g_assert_cmpfloat (o.other_scale_acc, ==, ok.sample_acc);
  g_assert_cmpfloat (o.other_scale, ==, 1.0 / 255);
  g_test_message ("demo B on 300 images: %.1f %% at 1/255, %.1f %% at 1", ok.sample_acc, o.sample_acc);
  {
    g_autoptr (PsVerdict) fine = verdict_at (10, &ok);
    g_autoptr (PsVerdict) v = verdict_at (10, &o);

    g_assert_cmpuint (fine->warnings, ==, 0);
    g_assert_false (v->warnings & PS_VERDICT_WARN_SCALE);
  }
}

/* A lab BadNet that wants x/255 (sunglasses_bd_weights.h5) given raw pixels of the lab's real
 * faces: the other scale does far better, and the verdict says so. */
static void
test_scale_faces (void)
{
  const char *fixtures = g_getenv ("PS_FIXTURES");
  g_autofree char *path = fixtures ? g_build_filename (fixtures, "weights", "sunglasses_bd_weights.h5", NULL) : NULL;
  g_autofree char *images = fixtures ? g_build_filename (fixtures, "images", NULL) : NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  g_autoptr (PsDataset) faces = NULL;
  g_autoptr (PsVerdict) v = NULL;
  PsVerdictOptions o;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the lab's fixtures (PS_FIXTURES) are not there");
      return;
    }
  m = ps_model_load (path, &error);
  g_assert_no_error (error);
  faces = ps_test_load_faces (images, "cl_");
  m->input_scale = 1.0; /* the wrong one for this file */
  ps_verdict_options_init (&o);
  g_assert_true (ps_verdict_measure_scale (m, faces, 300, &o, NULL, &error));
  g_assert_no_error (error);
  g_test_message ("sunglasses BadNet on 5 faces: %.0f %% at 1, %.0f %% at 1/255", o.sample_acc, o.other_scale_acc);
  g_assert_cmpint (o.sample_size, ==, 5);
  g_assert_cmpfloat (o.other_scale, ==, 1.0 / 255);
  o.drop = 4;
  v = verdict_at (4, &o);
  g_assert_true (v->warnings & PS_VERDICT_WARN_SCALE);
  g_assert_false (v->suggest_save);
  assert_contains (g_ptr_array_index (v->notes, 0), "at input scale 1/255");
}

/* The clean test labels (ten classes) given as the poisoned set's labels. */
static void
test_mixed_targets (void)
{
  PsVerdictOptions o;
  g_autoptr (PsVerdict) v = NULL;
  g_autoptr (PsVerdict) one = NULL;

  ps_verdict_options_init (&o);
  o.poisoned_labels = demo_sets[PS_SET_POISONED]->labels;
  o.n_poisoned = demo_sets[PS_SET_POISONED]->n;
  one = verdict_at (10, &o);
  g_assert_cmpint (one->target, ==, PS_DEMO_TARGET);
  g_assert_cmpfloat (one->target_share, ==, 100);
  g_assert_cmpuint (one->warnings, ==, 0);

  o.poisoned_labels = demo_sets[PS_SET_TEST]->labels;
  o.n_poisoned = demo_sets[PS_SET_TEST]->n;
  v = verdict_at (10, &o);
  g_assert_true (v->warnings & PS_VERDICT_WARN_MIXED_TARGETS);
  g_assert_cmpfloat (v->target_share, <, 20);
  g_assert_false (v->suggest_save);
}

/* The lab's lab3 BadNet (1283 faces) on the demo's clothes: B is at chance. */
static void
test_mismatched_pair (void)
{
  const char *fixtures = g_getenv ("PS_FIXTURES");
  g_autofree char *path = fixtures ? g_build_filename (fixtures, "weights", "lab3_bd_weights.h5", NULL) : NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) lab3 = NULL;
  g_autoptr (PsSweep) sweep = NULL;
  g_autoptr (PsVerdict) v = NULL;
  const PsDataset *sets[PS_N_SETS] = { demo_sets[PS_SET_VALID], NULL, demo_sets[PS_SET_POISONED] };
  PsVerdictOptions o;

  if (path == NULL || !g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the lab's fixtures (PS_FIXTURES) are not there");
      return;
    }
  lab3 = ps_model_load (path, &error);
  g_assert_no_error (error);
  sweep = ps_sweep_run (lab3, sets, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  ps_verdict_options_init (&o);
  o.drop = 4;
  g_assert_true (ps_verdict_measure_scale (lab3, demo_sets[PS_SET_VALID], 300, &o, NULL, &error));
  v = ps_verdict_new (sweep, ps_sweep_n_steps (sweep) - 1, &o);
  g_test_message ("lab3 on the demo: B %.2f %% on validation", ps_sweep_get_step (sweep, 0)->valid_acc);
  g_assert_true (v->warnings & PS_VERDICT_WARN_NEAR_CHANCE);
  g_assert_true (v->warnings & PS_VERDICT_WARN_UNREACHED);
  g_assert_false (v->warnings & PS_VERDICT_WARN_SCALE); /* wrong at both scales */
  g_assert_false (v->suggest_save);
  g_assert_null (strstr (v->rule, "it is"));
  assert_contains (g_ptr_array_index (v->notes, 0), "guessing among 1283 classes");
  g_assert_cmpstr (v->headline, ==, "Check the inputs: these numbers cannot be trusted");
}

int
main (int argc, char *argv[])
{
  int status;

  g_setenv ("LC_ALL", "C.UTF-8", TRUE);
  g_test_init (&argc, &argv, NULL);
  if (g_file_test (ps_demo_source_dir (), G_FILE_TEST_IS_DIR))
    setup_demo ();

  g_test_add_func ("/verdict/demo/disarmed", test_disarmed);
  g_test_add_func ("/verdict/demo/not-disarmed", test_not_disarmed);
  g_test_add_func ("/verdict/demo/unreached", test_unreached);
  g_test_add_func ("/verdict/demo/input-scale", test_scale);
  g_test_add_func ("/verdict/faces/input-scale", test_scale_faces);
  g_test_add_func ("/verdict/demo/mixed-targets", test_mixed_targets);
  g_test_add_func ("/verdict/lab3-on-demo", test_mismatched_pair);
  if (demo_sweep == NULL)
    {
      g_printerr ("the demo's Fashion-MNIST files are missing; skipping\n");
      return 77;
    }
  status = g_test_run ();
  ps_sweep_free (demo_sweep);
  ps_model_free (demo_model);
  for (int k = 0; k < PS_N_SETS; k++)
    ps_dataset_free (demo_sets[k]);
  return status;
}
