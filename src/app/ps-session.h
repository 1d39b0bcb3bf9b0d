/* ps-session.h: a BadNet, its data and its pruning sweep; loads and sweeps off the UI thread */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"
#include "ps-model.h"
#include "ps-sweep.h"
#include "ps-verdict.h"

G_BEGIN_DECLS

typedef enum {
  PS_SLOT_VALID = PS_SET_VALID,
  PS_SLOT_TEST = PS_SET_TEST,
  PS_SLOT_POISONED = PS_SET_POISONED,
  PS_SLOT_MODEL,
  PS_N_SLOTS,
  PS_SLOT_AUTO = PS_N_SLOTS, /* a lab folder, a model, or data named like the lab's files */
} PsSlot;

#define PS_TYPE_SESSION (ps_session_get_type ())

G_DECLARE_FINAL_TYPE (PsSession, ps_session, PS, SESSION, GObject)

PsSession         *ps_session_new              (void);
/* Opens files (models, image sets, lab folders); with PS_SLOT_AUTO each file finds its slot. */
void               ps_session_open             (PsSession      *self,
                                                GFile         **files,
                                                int             n_files,
                                                PsSlot          slot);
gboolean           ps_session_has_demo         (void);
void               ps_session_open_demo        (PsSession      *self);
void               ps_session_set_input_scale  (PsSession      *self,
                                                double          scale);
/* NAN without a model. */
double             ps_session_get_input_scale  (PsSession      *self);
/* Chooses the feature map to prune (a layer, ONNX tensor or node name) and sweeps it; the
 * choice lasts while the window does, per model file. FALSE if the model has no such map. */
gboolean           ps_session_set_layer        (PsSession      *self,
                                                const char     *name,
                                                GError        **error);
/* The layer the sweep prunes: the one chosen, else the model's default; NULL without one. */
const char        *ps_session_get_layer        (PsSession      *self);
/* Restarts the sweep for the current model and data. */
void               ps_session_run              (PsSession      *self);
void               ps_session_cancel           (PsSession      *self);

gboolean           ps_session_get_busy         (PsSession      *self);
/* After a cancelled sweep, which Run goes on with: the steps it has done (0 while its first
 * pass had not ended); -1 when a Run would start over. */
int                ps_session_get_resumable_steps (PsSession   *self);
gboolean           ps_session_can_run          (PsSession      *self);
/* 0..1, or -1 while the amount of work is unknown (loading). */
double             ps_session_get_fraction     (PsSession      *self);
const char        *ps_session_get_activity     (PsSession      *self);
GFile             *ps_session_get_file         (PsSession      *self,
                                                PsSlot          slot);
const PsModel     *ps_session_get_model        (PsSession      *self);
/* The rows known so far (all of them once the sweep has finished). */
const PsSweepStep *ps_session_get_rows         (PsSession      *self,
                                                int            *n_rows);
/* The finished sweep with the model and data it ran on; NULL while none. */
const PsSweep     *ps_session_get_sweep        (PsSession      *self);
const PsModel     *ps_session_get_sweep_model  (PsSession      *self);
/* The images of a set the window can show: a few hundred spread over the set, each with its
 * index in the set (PsDataset.index); NULL if the sweep had no such set. */
const PsDataset   *ps_session_get_sweep_data   (PsSession      *self,
                                                PsSetKind       set);
/* The whole set's shape and labels (no pixels). */
const PsDataset   *ps_session_get_sweep_header (PsSession      *self,
                                                PsSetKind       set);
/* FALSE when the sweep shown ran on other files, another input scale or another layer (a
 * newer sweep was cancelled or failed, and the last complete one was kept). */
gboolean           ps_session_get_sweep_current (PsSession     *self);
/* What the verdict needs beyond the sweep: the input scale check, the poisoned labels. */
void               ps_session_get_verdict_options (PsSession   *self,
                                                   PsVerdictOptions *options);
/* Builds G at @pruned steps and saves it, on a worker thread. */
void               ps_session_save_g_async     (PsSession      *self,
                                                int             pruned,
                                                double          drop,
                                                GFile          *file,
                                                GCancellable   *cancellable,
                                                GAsyncReadyCallback callback,
                                                gpointer        user_data);
gboolean           ps_session_save_g_finish    (PsSession      *self,
                                                GAsyncResult   *result,
                                                GError        **error);

G_END_DECLS
