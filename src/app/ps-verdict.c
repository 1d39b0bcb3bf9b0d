/* ps-verdict.c: the verdict at a chosen step. Every sentence it writes is checked against the
 * sweep's own numbers first: a warning names a measured fact, never a guess. */
#define G_LOG_DOMAIN "ps-verdict"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ps-infer.h"

#include "ps-verdict.h"

/* The poisoned set's attack success means little when B barely reacts to it. */
#define NO_BACKDOOR_BELOW 50.0

void
ps_verdict_options_init (PsVerdictOptions *options)
{
  *options = (PsVerdictOptions) {
    .drop = NAN, .scale = NAN, .sample_acc = NAN, .other_scale = NAN, .other_scale_acc = NAN,
  };
}

const char *
ps_verdict_level_name (PsVerdictLevel level)
{
  switch (level)
    {
    case PS_VERDICT_DISARMED: return _("Backdoor disarmed");
    case PS_VERDICT_WEAKENED: return _("Backdoor weakened");
    case PS_VERDICT_NOT_DISARMED: return _("Backdoor not disarmed");
    case PS_VERDICT_UNKNOWN:
    default: return _("Backdoor not measured");
    }
}

static int
compare_int (const void *a, const void *b)
{
  int x = *(const int *) a, y = *(const int *) b;
  return (x > y) - (x < y);
}

/* The most common label and its share in percent. */
static int
most_common_label (const int *labels, int n, double *share)
{
  g_autofree int *sorted = g_memdup2 (labels, sizeof (int) * n);
  int best = -1, best_count = 0;

  qsort (sorted, n, sizeof (int), compare_int);
  for (int i = 0, j; i < n; i = j)
    {
      for (j = i; j < n && sorted[j] == sorted[i]; j++)
        ;
      if (j - i > best_count)
        best = sorted[i], best_count = j - i;
    }
  *share = n > 0 ? 100.0 * best_count / n : NAN;
  return best;
}

static const char *
scale_name (double scale)
{
  return scale < 0.5 ? "1/255" : "1";
}

static void
add_note (PsVerdict *v, PsVerdictWarning flag, char *text)
{
  v->warnings |= flag;
  g_ptr_array_add (v->notes, text);
}

static void
check_inputs (PsVerdict *v, const PsSweep *sweep, const PsVerdictOptions *o)
{
  const PsSweepStep *r0 = ps_sweep_get_step (sweep, 0);
  int classes = ps_sweep_n_classes (sweep);
  double chance = 100.0 / MAX (classes, 1);

  /* Twice the rate of guessing, with half a point of slack for sampling noise. */
  if (r0->valid_acc <= 2 * chance + 0.5)
    add_note (v, PS_VERDICT_WARN_NEAR_CHANCE,
              g_strdup_printf (_("B classifies only %.2f %% of the validation set correctly, about "
                                 "what guessing among %d classes gives (%.2f %%): this model and "
                                 "this data do not fit together, so the sweep says nothing about "
                                 "the backdoor."), r0->valid_acc, classes, chance));
  if (!isnan (o->other_scale_acc) && !isnan (o->sample_acc)
      && o->other_scale_acc >= o->sample_acc + 20 && o->other_scale_acc >= 2 * o->sample_acc)
    add_note (v, PS_VERDICT_WARN_SCALE,
              g_strdup_printf (_("The input scale is probably wrong: on %d validation images B is "
                                 "right %.1f %% of the time at input scale %s, but %.1f %% at %s."),
                               o->sample_size, o->other_scale_acc, scale_name (o->other_scale),
                               o->sample_acc, scale_name (o->scale)));
  if (o->poisoned_labels != NULL && o->n_poisoned > 0)
    {
      v->target = most_common_label (o->poisoned_labels, o->n_poisoned, &v->target_share);
      if (v->target_share < PS_VERDICT_ONE_TARGET_SHARE)
        add_note (v, PS_VERDICT_WARN_MIXED_TARGETS,
                  g_strdup_printf (_("The poisoned set's labels are not one target class (the most "
                                     "common, %d, covers %.1f %%): its “attack success” counts "
                                     "agreement with those labels, not with an attack's target."),
                                   v->target, v->target_share));
    }
  if (!isnan (v->b_asr) && v->b_asr < NO_BACKDOOR_BELOW
      && !(v->warnings & PS_VERDICT_WARN_MIXED_TARGETS))
    add_note (v, PS_VERDICT_WARN_NO_BACKDOOR,
              g_strdup_printf (_("B's attack success on the poisoned set is only %.2f %%: the set "
                                 "hardly triggers B's backdoor, so it cannot show whether pruning "
                                 "removes it."), v->b_asr));
}

static void
describe_rule (PsVerdict *v, const PsSweep *sweep, const PsVerdictOptions *o)
{
  const PsSweepStep *r0 = ps_sweep_get_step (sweep, 0);
  const PsSweepStep *r = ps_sweep_get_step (sweep, v->step);
  const char *layer = ps_sweep_layer_name (sweep);

  if (isnan (o->drop))
    {
      v->rule = g_strdup_printf (_("Layer “%s”. Step chosen on the chart: validation accuracy is "
                                   "%.2f points below B’s %.2f %%."),
                                 layer, r0->valid_acc - r->valid_acc, r0->valid_acc);
      return;
    }
  if (ps_sweep_stop_step (sweep, o->drop) < 0)
    {
      double worst = 0;
      int worst_step = 0;

      for (int k = 0; k < ps_sweep_n_steps (sweep); k++)
        if (r0->valid_acc - ps_sweep_get_step (sweep, k)->valid_acc > worst)
          worst = r0->valid_acc - ps_sweep_get_step (sweep, k)->valid_acc, worst_step = k;
      v->rule = g_strdup_printf (_("Layer “%s”. No step lowers validation accuracy by X = %.1f "
                                   "points: the most is %.2f points, at %d channels. The last "
                                   "step is shown."), layer, o->drop, worst, worst_step);
      add_note (v, PS_VERDICT_WARN_UNREACHED,
                g_strdup_printf (_("No step reaches X = %.1f: pruning every channel lowers "
                                   "validation accuracy by at most %.2f points."), o->drop, worst));
      return;
    }
  v->rule = g_strdup_printf (_("Layer “%s”. First step where validation accuracy is at least "
                               "X = %.1f points below B’s %.2f %%: it is %.2f points lower."),
                             layer, o->drop, r0->valid_acc, r0->valid_acc - r->valid_acc);
}

static void
describe (PsVerdict *v, const PsSweep *sweep, const PsVerdictOptions *o)
{
  g_autoptr (GString) s = g_string_new (NULL);
  const char *acc_set = ps_sweep_has_set (sweep, PS_SET_TEST) ? _("clean test") : _("validation");

  if (!isnan (o->drop) && !(v->warnings & PS_VERDICT_WARN_UNREACHED))
    g_string_append_printf (s, "X = %.1f: ", o->drop);
  g_string_append_printf (s, ngettext ("%d of %d channel of “%s” pruned.",
                                       "%d of %d channels of “%s” pruned.", v->n_channels),
                          v->step, v->n_channels, ps_sweep_layer_name (sweep));
  g_string_append_c (s, ' ');
  if (isnan (v->b_asr))
    g_string_append_printf (s, _("Clean accuracy (%s) %.2f %% → %.2f %% (G). Without a poisoned "
                                 "set nothing can be known about the backdoor: open poisoned test "
                                 "data to measure attack success."), acc_set, v->b_acc, v->g_acc);
  else
    g_string_append_printf (s, _("Attack success %.2f %% → %.2f %% (B′ and G), clean accuracy "
                                 "(%s) %.2f %% → %.2f %% (G); G flags %.1f %% of poisoned inputs."),
                            v->b_asr, v->g_asr, acc_set, v->b_acc, v->g_acc, v->flagged);
  v->summary = g_string_free (g_steal_pointer (&s), FALSE);
}

PsVerdict *
ps_verdict_new (const PsSweep *sweep, int step, const PsVerdictOptions *options)
{
  PsVerdictOptions defaults;
  PsVerdict *v;
  PsSetKind clean;
  double unused, bp_asr;

  g_return_val_if_fail (sweep != NULL, NULL);
  g_return_val_if_fail (step >= 0 && step < ps_sweep_n_steps (sweep), NULL);
  if (options == NULL)
    {
      ps_verdict_options_init (&defaults);
      options = &defaults;
    }

  v = g_new0 (PsVerdict, 1);
  v->notes = g_ptr_array_new_with_free_func (g_free);
  v->step = step;
  v->n_channels = ps_sweep_n_channels (sweep);
  v->target = -1;
  v->target_share = NAN;
  v->b_asr = v->g_asr = v->flagged = NAN;
  clean = ps_sweep_has_set (sweep, PS_SET_TEST) ? PS_SET_TEST : PS_SET_VALID;
  ps_sweep_set_metrics (sweep, clean, 0, &v->b_acc, &unused, &unused);
  ps_sweep_set_metrics (sweep, clean, step, &unused, &v->g_acc, &unused);
  if (ps_sweep_has_set (sweep, PS_SET_POISONED))
    {
      ps_sweep_set_metrics (sweep, PS_SET_POISONED, 0, &v->b_asr, &unused, &unused);
      ps_sweep_set_metrics (sweep, PS_SET_POISONED, step, &bp_asr, &v->g_asr, &v->flagged);
    }

  if (isnan (v->g_asr))
    v->level = PS_VERDICT_UNKNOWN;
  else if (v->g_asr < PS_VERDICT_DISARMED_BELOW)
    v->level = PS_VERDICT_DISARMED;
  else if (v->g_asr < PS_VERDICT_WEAKENED_BELOW)
    v->level = PS_VERDICT_WEAKENED;
  else
    v->level = PS_VERDICT_NOT_DISARMED;

  check_inputs (v, sweep, options);
  describe_rule (v, sweep, options);
  describe (v, sweep, options);
  /* Inputs that do not fit make every number meaningless; X not reached is only a note. */
  if (v->warnings & ~(guint) PS_VERDICT_WARN_UNREACHED)
    v->headline = g_strdup (_("Check the inputs: these numbers cannot be trusted"));
  else
    v->headline = g_strdup_printf ("%s", ps_verdict_level_name (v->level));
  v->suggest_save = v->warnings == 0 && v->level == PS_VERDICT_DISARMED;
  return v;
}

void
ps_verdict_free (PsVerdict *verdict)
{
  if (verdict == NULL)
    return;
  g_free (verdict->headline);
  g_free (verdict->summary);
  g_free (verdict->rule);
  g_ptr_array_unref (verdict->notes);
  g_free (verdict);
}

gboolean
ps_verdict_measure_scale (const PsModel *model, const PsDataset *valid, int n_sample,
                          PsVerdictOptions *options, GCancellable *cancellable, GError **error)
{
  g_autoptr (PsDataset) own = NULL;
  const PsDataset *sample;
  g_autoptr (PsModel) other = NULL;
  g_autofree int *classes = NULL;

  g_return_val_if_fail (model != NULL && valid != NULL && options != NULL, FALSE);

  if (valid->n == 0 || n_sample <= 0)
    return TRUE;
  /* the window already keeps a sample that small: no copy of it */
  own = valid->n > n_sample ? ps_dataset_sample (valid, n_sample) : NULL;
  sample = own ? own : valid;
  classes = g_new (int, sample->n);
  if (!ps_infer_classes (model, sample, classes, cancellable, error))
    return FALSE;
  options->scale = model->input_scale;
  options->sample_acc = ps_infer_accuracy (classes, sample->labels, sample->n);
  other = ps_model_copy (model);
  other->input_scale = model->input_scale < 0.5 ? 1.0 : 1.0 / 255;
  if (!ps_infer_classes (other, sample, classes, cancellable, error))
    return FALSE;
  options->other_scale = other->input_scale;
  options->other_scale_acc = ps_infer_accuracy (classes, sample->labels, sample->n);
  options->sample_size = sample->n;
  return TRUE;
}
