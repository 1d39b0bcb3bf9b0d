/* ps-sweep.h: the pruning sweep — remove a layer's channels one by one, record every step */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-dataset-stream.h"
#include "ps-model.h"

G_BEGIN_DECLS

typedef enum {
  PS_SET_VALID,     /* clean validation data: the only set that chooses anything */
  PS_SET_TEST,      /* clean test data, for reporting */
  PS_SET_POISONED,  /* triggered test data labelled with the attack target, for reporting */
  PS_N_SETS
} PsSetKind;

/* One row of the sweep; rates in percent, NAN where the set was not given. */
typedef struct {
  int    pruned;             /* channels removed so far (the step number) */
  double fraction;           /* pruned / channels */
  int    channel;            /* channel removed at this step, -1 at step 0 */
  double valid_acc;          /* B' on validation */
  double test_acc;           /* B' on clean test */
  double asr;                /* B' attack success on poisoned */
  double g_test_acc;         /* G on clean test */
  double g_asr;              /* G attack success (poisoned classified as the target) */
  double g_clean_flagged;    /* clean test inputs G flags as backdoored */
  double g_poisoned_flagged; /* poisoned inputs G flags as backdoored (detection) */
} PsSweepStep;

typedef struct {
  const char *layer;       /* NULL: the last pooling layer */
  gboolean    decreasing;  /* prune the most active channels first */
} PsSweepOptions;

/* Called on the sweep's thread: @step is a finished row or NULL while inference runs;
 * @done goes from 0 to 1 over the whole sweep. */
typedef void (*PsSweepProgress) (const PsSweepStep *step,
                                 double             done,
                                 gpointer           user_data);

typedef struct _PsSweep PsSweep;

/* @sets is indexed by PsSetKind; the validation set is required, the others may be NULL.
 * Pixels are scaled by model->input_scale. The returned sweep is immutable. */
PsSweep            *ps_sweep_run             (const PsModel          *model,
                                              const PsDataset * const sets[PS_N_SETS],
                                              const PsSweepOptions   *options,
                                              PsSweepProgress         progress,
                                              gpointer                user_data,
                                              GCancellable           *cancellable,
                                              GError                **error);
void                ps_sweep_free            (PsSweep                *sweep);

/* The same in three parts, so that a caller can load a set, add it and free its images
 * before loading the next (the sweep keeps only what it computed). @model must stay
 * alive until ps_sweep_finish() returns. A cancelled (or failed) ps_sweep_add_set() leaves
 * the sweep as it was, so the set can be added again; a cancelled ps_sweep_finish() keeps
 * the steps it did, and calling it again goes on from the next one. A set added after the
 * validation set runs every step with its first pass (the order is known by then), keeping
 * nothing but its classes: add the validation set first. The validation set's own steps
 * run as soon as it is added (a cancel there leaves them to ps_sweep_finish()); finish
 * counts and reports every step. The results are the same bits in any order. */
PsSweep            *ps_sweep_new             (const PsModel          *model,
                                              const PsSweepOptions   *options,
                                              GError                **error);
/* Says how many images the sets to be added hold in all, so that progress runs once
 * from 0 to 1 across them (by default the first set added counts as the whole pass). */
void                ps_sweep_expect_images   (PsSweep                *sweep,
                                              gint64                  n_images);
gboolean            ps_sweep_add_set         (PsSweep                *sweep,
                                              PsSetKind               set,
                                              const PsDataset        *ds,
                                              PsSweepProgress         progress,
                                              gpointer                user_data,
                                              GCancellable           *cancellable,
                                              GError                **error);
/* The same, reading @stream's images during the pass, a chunk ahead of the computing, by
 * a thread of its own: the set is never held whole. An unreadable chunk (a pixel that is
 * not finite, a truncated file) fails with the stream's error and leaves the sweep as it
 * was, as a cancel does. */
gboolean            ps_sweep_add_set_stream  (PsSweep                *sweep,
                                              PsSetKind               set,
                                              PsDatasetStream        *stream,
                                              PsSweepProgress         progress,
                                              gpointer                user_data,
                                              GCancellable           *cancellable,
                                              GError                **error);
gboolean            ps_sweep_finish          (PsSweep                *sweep,
                                              PsSweepProgress         progress,
                                              gpointer                user_data,
                                              GCancellable           *cancellable,
                                              GError                **error);

int                 ps_sweep_n_steps         (const PsSweep          *sweep); /* channels + 1 */
/* Rows reported so far to the progress callback: all of them once finished; fewer after a
 * cancelled ps_sweep_finish(), whose rows up to there are final (a later finish reports only
 * the rows after them, though it may have computed some of those already). */
int                 ps_sweep_n_steps_done    (const PsSweep          *sweep);
gboolean            ps_sweep_is_finished     (const PsSweep          *sweep);
int                 ps_sweep_n_channels      (const PsSweep          *sweep);
int                 ps_sweep_n_classes       (const PsSweep          *sweep);
const char         *ps_sweep_layer_name      (const PsSweep          *sweep);
const PsSweepStep  *ps_sweep_get_step        (const PsSweep          *sweep,
                                              int                     step);
/* Channels in the order they are removed (n_channels of them). */
const int          *ps_sweep_order           (const PsSweep          *sweep);
/* Mean activation of each channel of the pruned layer on a set; NULL if not given. */
const double       *ps_sweep_channel_means   (const PsSweep          *sweep,
                                              PsSetKind               set);
/* First step whose validation accuracy is at least @drop points below step 0; -1 if none. */
int                 ps_sweep_stop_step       (const PsSweep          *sweep,
                                              double                  drop);
gboolean            ps_sweep_has_set         (const PsSweep          *sweep,
                                              PsSetKind               set);
/* B' class of image @index at @step (step 0 is B itself). */
int                 ps_sweep_prediction      (const PsSweep          *sweep,
                                              PsSetKind               set,
                                              int                     step,
                                              int                     index);
/* G's class: B's class where B and B' agree, else n_classes (backdoored). */
int                 ps_sweep_g_prediction    (const PsSweep          *sweep,
                                              PsSetKind               set,
                                              int                     step,
                                              int                     index);
/* Rates on any set at a step, in percent: B' accuracy, G accuracy, G flagged. */
void                ps_sweep_set_metrics     (const PsSweep          *sweep,
                                              PsSetKind               set,
                                              int                     step,
                                              double                 *b_acc,
                                              double                 *g_acc,
                                              double                 *g_flagged);
/* Writes the CSV (header + one row per step) the CLI prints. */
gboolean            ps_sweep_write_csv       (const PsSweep          *sweep,
                                              GOutputStream          *out,
                                              GError                **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsSweep, ps_sweep_free)

G_END_DECLS
