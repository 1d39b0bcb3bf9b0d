/* ps-verdict.h: what a finished sweep says at a chosen step, in words the user can trust —
 * whether the backdoor is gone, and every reason not to believe the numbers. No GTK. */
#pragma once

#include <gio/gio.h>

#include "ps-sweep.h"

G_BEGIN_DECLS

/* G's attack success below these (percent) counts as disarmed / weakened. */
#define PS_VERDICT_DISARMED_BELOW 10.0
#define PS_VERDICT_WEAKENED_BELOW 50.0
/* The most common label of a poisoned set must cover this share (percent) for attack
 * success to mean "classified as the attack's target". */
#define PS_VERDICT_ONE_TARGET_SHARE 95.0

typedef enum {
  PS_VERDICT_UNKNOWN,       /* no poisoned set: attack success cannot be measured */
  PS_VERDICT_DISARMED,
  PS_VERDICT_WEAKENED,
  PS_VERDICT_NOT_DISARMED,
} PsVerdictLevel;

typedef enum {
  PS_VERDICT_WARN_NEAR_CHANCE   = 1 << 0, /* B is about as good as guessing on the validation set */
  PS_VERDICT_WARN_SCALE         = 1 << 1, /* B does far better at the other input scale */
  PS_VERDICT_WARN_UNREACHED     = 1 << 2, /* no step lowers validation accuracy by X */
  PS_VERDICT_WARN_MIXED_TARGETS = 1 << 3, /* the poisoned set's labels are not one class */
  PS_VERDICT_WARN_NO_BACKDOOR   = 1 << 4, /* the poisoned set hardly triggers B */
} PsVerdictWarning;

typedef struct {
  double      drop;             /* X in points; NAN when the step was chosen on the chart */
  double      scale;            /* the input scale the sweep ran at */
  /* B's accuracy on one sample of validation images at the sweep's scale and at the other
   * one (1 ↔ 1/255); NAN when not measured. */
  double      sample_acc;
  double      other_scale;
  double      other_scale_acc;
  int         sample_size;
  /* The poisoned set's labels, to check they name one target class; NULL without one. */
  const int  *poisoned_labels;
  int         n_poisoned;
} PsVerdictOptions;

typedef struct {
  PsVerdictLevel level;
  guint          warnings;      /* PsVerdictWarning flags */
  int            step;
  int            n_channels;
  double         b_asr, g_asr;  /* attack success of B and G (NAN without poisoned data) */
  double         b_acc, g_acc;  /* clean accuracy of B and G (test set, else validation) */
  double         flagged;       /* poisoned inputs G flags */
  int            target;        /* the poisoned set's most common label, -1 without one */
  double         target_share;  /* its share of the poisoned labels, percent */
  gboolean       suggest_save;  /* nothing stands against saving G */
  char          *headline;      /* "Backdoor disarmed", … */
  char          *summary;       /* the numbers in one sentence */
  char          *rule;          /* how the step was chosen, and whether X was reached */
  GPtrArray     *notes;         /* one sentence per warning, in the order of the flags */
} PsVerdict;

void       ps_verdict_options_init (PsVerdictOptions       *options);
/* @step must be a step of @sweep. */
PsVerdict *ps_verdict_new          (const PsSweep          *sweep,
                                    int                     step,
                                    const PsVerdictOptions *options);
void       ps_verdict_free         (PsVerdict              *verdict);
const char *ps_verdict_level_name  (PsVerdictLevel          level);

/* Measures B on @n_sample validation images spread over @valid, at @model's input scale and
 * at the other one (1 <-> 1/255), filling the sample fields of @options. Runs inference:
 * call it on a worker thread. */
gboolean   ps_verdict_measure_scale (const PsModel         *model,
                                     const PsDataset       *valid,
                                     int                    n_sample,
                                     PsVerdictOptions      *options,
                                     GCancellable          *cancellable,
                                     GError               **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsVerdict, ps_verdict_free)

G_END_DECLS
