/* ps-session.c: the document behind a window.
 *
 * Loads and sweeps run in GTask threads. A thread never sees the session's own objects: it
 * gets a copy of the model and references on the image sets (atomic refcounted boxes), so
 * opening other files or closing the window while it runs only makes its result stale.
 * Sweep progress follows Sysprof's document loader: the worker appends rows under a mutex and
 * queues one low-priority idle to announce them. */
#define G_LOG_DOMAIN "ps-session"

#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>

#include "ps-dataset-stream.h"
#include "ps-file.h"
#include "ps-infer.h"
#include "ps-onnx.h"
#include "ps-repaired.h"
#include "ps-session.h"
#ifdef HAVE_PS_DEMO
# include "ps-demo.h"
#endif

/* Images of each set the window keeps: the gallery shows some of them, and the input scale
 * check measures B on those of the validation set. */
#define SHOWN_SAMPLE 300

/* How often a running sweep updates the window. */
#define ANNOUNCE_HZ 10

/* What the session keeps of an image set, shared with worker threads (an atomic refcounted
 * box): its shape and labels, and a few hundred images spread over it for the window. A sweep
 * reads the set's pixels from the file, a chunk at a time while B runs (at lab scale they
 * would be a third of the memory, and a sweep needs them once) — if it is still the file
 * that was opened. */
typedef struct {
  PsDataset *header;   /* shape, labels, path; no pixels */
  PsDataset *sample;   /* up to SHOWN_SAMPLE images, with their indices in the set */
  char      *stamp;    /* the file as it was read (ps_file_stamp) */
} SetSource;

/* A finished sweep with exactly what it ran on. */
typedef struct {
  PsSweep    *sweep;
  PsModel    *model;
  SetSource  *sets[PS_N_SETS];
  PsVerdictOptions scale_check;  /* B on a sample at both input scales */
} Result;

typedef struct {
  PsSession  *session;   /* main thread only; the GTask keeps it alive */
  guint       inputs;    /* the session's inputs serial when it started */
  PsModel    *model;
  char       *layer;     /* the layer to prune, by name */
  PsSweep    *sweep;     /* one to go on with, or the one in progress (it refers to model) */
  SetSource  *sets[PS_N_SETS];
  PsVerdictOptions scale_check; /* filled by the thread after the sweep */
  GMutex      mutex;     /* guards the three fields below */
  GArray     *pending;   /* rows finished but not yet shown */
  double      fraction;
  guint       idle_id;
  gint64      announced; /* when the window was last told */
} SweepJob;

typedef struct {
  guint       serial;
  GPtrArray  *files;
  PsSlot      slot;
  gboolean    demo;
  GCancellable *cancellable; /* the task's: Cancel stops a set between chunks */
  /* results */
  PsModel    *model;
  SetSource  *sets[PS_N_SETS];
  GFile      *loaded[PS_N_SLOTS];
  char       *g_layer;   /* the layer a G opened as its B had pruned */
  GError     *error;     /* the first failure; the other files still load */
} LoadJob;

struct _PsSession {
  GObject       parent_instance;

  PsModel      *model;
  SetSource    *sets[PS_N_SETS];
  GFile        *files[PS_N_SLOTS];
  guint         slot_serial[PS_N_SLOTS];
  guint         load_serial;
  guint         cancel_serial;
  int           n_loads;
  int           n_loads_cancelled;
  int           n_threads;  /* tasks still running, stale ones included */

  SweepJob     *job;
  GCancellable *cancellable;
  GCancellable *load_cancellable; /* shared by the loads running */
  GArray       *rows;
  double        fraction;
  Result       *result;
  Result       *previous;   /* the last complete result, while a new sweep runs */
  gboolean      result_current; /* the result ran on the files and scale now loaded */
  guint         inputs;     /* serial of the files and scale loaded */
  /* A sweep the user cancelled, with its model, kept until the inputs change so that Run
   * Again goes on from where it stopped instead of starting over. */
  PsSweep      *partial;
  PsModel      *partial_model;
  gboolean      hold;
  char         *layer;      /* the layer chosen for the model; NULL: its default */
  GHashTable   *layers;     /* model file URI -> layer chosen, for this window's life */
};

enum { CHANGED, PROGRESS, FINISHED, FAILED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (PsSession, ps_session, G_TYPE_OBJECT)

/* ---- shared pieces ---- */

static void
set_source_clear (gpointer data)
{
  SetSource *src = data;

  ps_dataset_free (src->header);
  ps_dataset_free (src->sample);
  g_free (src->stamp);
}

/* Takes @header (no pixels), @sample and @stamp: the set's pixels are read by the sweep, a
 * chunk at a time. */
static SetSource *
set_source_new (PsDataset *header, PsDataset *sample, char *stamp)
{
  SetSource *src = g_atomic_rc_box_new0 (SetSource);

  src->header = header;
  src->sample = sample;
  src->stamp = stamp;
  return src;
}

static void
set_source_release (SetSource *src)
{
  if (src != NULL)
    g_atomic_rc_box_release_full (src, set_source_clear);
}

static GError *
set_source_changed (const SetSource *src)
{
  return g_error_new (PS_ERROR, PS_ERROR_FILE,
                      _("%s: the file changed on disk since it was opened; open it again"),
                      src->header->path);
}

/* The file read a chunk at a time while the sweep runs (as the CLI reads it), when it is
 * still the file that was opened. Runs on a worker thread. */
static PsDatasetStream *
set_source_open_stream (SetSource *src, GError **error)
{
  const PsDataset *h = src->header, *now;
  g_autofree char *stamp = ps_file_stamp (h->path);
  PsDatasetStream *stream;

  if (stamp == NULL || g_strcmp0 (stamp, src->stamp) != 0)
    {
      g_propagate_error (error, set_source_changed (src));
      return NULL;
    }
  if ((stream = ps_dataset_stream_open (h->path, error)) == NULL)
    return NULL;
  now = ps_dataset_stream_header (stream);
  if (now->n != h->n || now->h != h->h || now->w != h->w || now->c != h->c
      || memcmp (now->labels, h->labels, sizeof (int) * h->n) != 0)
    {
      ps_dataset_stream_free (stream);
      g_propagate_error (error, set_source_changed (src));
      return NULL;
    }
  return stream;
}

static void
result_clear (gpointer data)
{
  Result *r = data;

  ps_sweep_free (r->sweep);
  ps_model_free (r->model);
  for (int k = 0; k < PS_N_SETS; k++)
    set_source_release (r->sets[k]);
}

static void
result_release (Result *r)
{
  if (r != NULL)
    g_atomic_rc_box_release_full (r, result_clear);
}

static void
drop_partial (PsSession *self)
{
  g_clear_pointer (&self->partial, ps_sweep_free);
  g_clear_pointer (&self->partial_model, ps_model_free);
}

/* Keeps the application alive while a thread works, so quitting waits for it to stop. */
static void
session_hold (PsSession *self, gboolean hold)
{
  GApplication *app = g_application_get_default ();

  if (app == NULL || self->hold == hold)
    return;
  self->hold = hold;
  if (hold)
    g_application_hold (app);
  else
    g_application_release (app);
}

static void
thread_started (PsSession *self)
{
  self->n_threads++;
  session_hold (self, TRUE);
}

static void
thread_returned (PsSession *self)
{
  self->n_threads--;
  session_hold (self, self->n_threads > 0);
}

/* ---- the sweep ---- */

static void
sweep_job_free (gpointer data)
{
  SweepJob *job = data;

  ps_sweep_free (job->sweep);
  ps_model_free (job->model);
  g_free (job->layer);
  for (int k = 0; k < PS_N_SETS; k++)
    set_source_release (job->sets[k]);
  g_array_unref (job->pending);
  g_mutex_clear (&job->mutex);
  g_free (job);
}

static gboolean
sweep_job_announce (gpointer data)
{
  SweepJob *job = data;
  PsSession *self = job->session;
  gboolean current = self->job == job;

  g_mutex_lock (&job->mutex);
  job->idle_id = 0;
  job->announced = g_get_monotonic_time ();
  if (current)
    {
      g_array_append_vals (self->rows, job->pending->data, job->pending->len);
      self->fraction = job->fraction;
    }
  g_array_set_size (job->pending, 0);
  g_mutex_unlock (&job->mutex);

  if (current)
    g_signal_emit (self, signals[PROGRESS], 0);
  return G_SOURCE_REMOVE;
}

/* Runs on the sweep's thread. */
static void
sweep_job_progress (const PsSweepStep *step, double done, gpointer data)
{
  SweepJob *job = data;

  g_mutex_lock (&job->mutex);
  if (step != NULL)
    g_array_append_vals (job->pending, step, 1);
  job->fraction = done;
  if (step != NULL && job->idle_id != 0)
    {
      /* A finished step is news: the window hears of it when it is next idle, not at the
       * next tick (the steps come at the end, in a burst, and the thread may be done before
       * the tick). The source is alive: its callback clears idle_id under this lock. */
      GSource *pending = g_main_context_find_source_by_id (NULL, job->idle_id);

      if (pending != NULL)
        g_source_set_ready_time (pending, 0);
    }
  if (job->idle_id == 0)
    {
      /* At most ANNOUNCE_HZ times a second: each announcement costs the window a frame,
       * and the sweep reports far more often than anyone can read. */
      gint64 wait = job->announced + G_USEC_PER_SEC / ANNOUNCE_HZ - g_get_monotonic_time ();

      if (wait <= 0 || step != NULL)
        job->idle_id = g_idle_add_full (G_PRIORITY_LOW, sweep_job_announce, job, NULL);
      else
        job->idle_id = g_timeout_add_full (G_PRIORITY_LOW, (guint) (wait / 1000) + 1,
                                           sweep_job_announce, job, NULL);
    }
  g_mutex_unlock (&job->mutex);
}

typedef struct {
  SweepJob     *job;
  GCancellable *cancellable;
  GError       *error;
  gboolean      data_error; /* about a set's file, which the error names */
} SweepRun;

/* A thread of its own, at a lower priority that its workers inherit, so that on a machine
 * whose cores the sweep fills the UI thread still gets the CPU when it needs it. */
static gpointer
sweep_run_thread (gpointer data)
{
  SweepRun *run = data;
  SweepJob *job = run->job;
  PsSweep *sweep = job->sweep;
  PsSweepOptions options = { job->layer, FALSE };

  setpriority (PRIO_PROCESS, 0, 10);
  if (sweep == NULL)
    {
      gint64 n_images = 0;

      if ((sweep = job->sweep = ps_sweep_new (job->model, &options, &run->error)) == NULL)
        return GINT_TO_POINTER (FALSE);
      for (int k = 0; k < PS_N_SETS; k++)
        n_images += job->sets[k] ? job->sets[k]->header->n : 0;
      ps_sweep_expect_images (sweep, n_images);
    }
  if (ps_sweep_is_finished (sweep))
    return GINT_TO_POINTER (TRUE);
  /* Each set read a chunk at a time, the validation set first (the others then run every
   * step with their first pass); a sweep that goes on after a cancel has some sets
   * already. */
  for (int k = 0; k < PS_N_SETS; k++)
    if (job->sets[k] != NULL && !ps_sweep_has_set (sweep, k))
      {
        g_autoptr (PsDatasetStream) stream = set_source_open_stream (job->sets[k], &run->error);

        if (stream == NULL)
          {
            run->data_error = TRUE;
            return GINT_TO_POINTER (FALSE);
          }
        if (!ps_sweep_add_set_stream (sweep, k, stream, sweep_job_progress, job, run->cancellable,
                                      &run->error))
          {
            /* what the stream refused (a pixel, a chunk) names the set's file already */
            run->data_error = g_str_has_prefix (run->error->message, job->sets[k]->header->path);
            return GINT_TO_POINTER (FALSE);
          }
      }
  return GINT_TO_POINTER (ps_sweep_finish (sweep, sweep_job_progress, job, run->cancellable, &run->error));
}

static void
sweep_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  SweepJob *job = data;
  SweepRun run = { job, cancellable, NULL, FALSE };
  gboolean ok = GPOINTER_TO_INT (g_thread_join (g_thread_new ("ps-sweep", sweep_run_thread, &run)));

  /* A few hundred images at both scales: cheap next to the sweep, and a fact, not a guess. */
  ok = ok && ps_verdict_measure_scale (job->model, job->sets[PS_SET_VALID]->sample, SHOWN_SAMPLE,
                                       &job->scale_check, cancellable, &run.error);
  /* A cancelled sweep stays with the job for Run Again; any other failure lets it go. */
  if (!ok && !g_error_matches (run.error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_clear_pointer (&job->sweep, ps_sweep_free);
  if (!ok)
    {
      if (!run.data_error)
        g_prefix_error (&run.error, "%s: ", job->model->path ? job->model->path : _("model"));
      g_task_return_error (task, run.error);
    }
  else
    g_task_return_pointer (task, g_steal_pointer (&job->sweep), (GDestroyNotify) ps_sweep_free);
}

static void
show_result_rows (PsSession *self)
{
  PsSweep *sweep = self->result->sweep;

  g_array_set_size (self->rows, 0);
  for (int i = 0; i < ps_sweep_n_steps (sweep); i++)
    g_array_append_vals (self->rows, ps_sweep_get_step (sweep, i), 1);
  self->fraction = 1.0;
}

/* A sweep that stopped early gives back the complete one it was replacing. */
static void
restore_previous (PsSession *self)
{
  if (self->previous == NULL || self->result != NULL)
    return;
  self->result = g_steal_pointer (&self->previous);
  show_result_rows (self);
}

static void
install_result (PsSession *self, SweepJob *job, PsSweep *sweep)
{
  Result *r = g_atomic_rc_box_new0 (Result);

  r->sweep = sweep;
  r->scale_check = job->scale_check;
  r->model = g_steal_pointer (&job->model);
  for (int k = 0; k < PS_N_SETS; k++)
    r->sets[k] = g_steal_pointer (&job->sets[k]);
  result_release (self->result);
  g_clear_pointer (&self->previous, result_release);
  self->result = r;
  self->result_current = TRUE;
  show_result_rows (self);
}

static void
sweep_done (GObject *object, GAsyncResult *res, gpointer data)
{
  PsSession *self = PS_SESSION (object);
  SweepJob *job = g_task_get_task_data (G_TASK (res));
  g_autoptr (GError) error = NULL;
  PsSweep *sweep = g_task_propagate_pointer (G_TASK (res), &error);

  /* The thread has returned: no idle can be queued after this one is removed. */
  g_mutex_lock (&job->mutex);
  g_clear_handle_id (&job->idle_id, g_source_remove);
  g_mutex_unlock (&job->mutex);

  thread_returned (self);
  if (self->job != job)
    {
      ps_sweep_free (sweep);
      /* cancelled by the user, nothing newer started, inputs as they were: keep it */
      if (self->job == NULL && job->sweep != NULL && job->inputs == self->inputs
          && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          drop_partial (self);
          self->partial = g_steal_pointer (&job->sweep);
          self->partial_model = g_steal_pointer (&job->model);
        }
      return;
    }
  self->job = NULL;
  g_clear_object (&self->cancellable);
  if (sweep != NULL)
    install_result (self, job, sweep);
  else
    restore_previous (self);
  g_signal_emit (self, signals[PROGRESS], 0);
  if (sweep != NULL)
    g_signal_emit (self, signals[FINISHED], 0);
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_signal_emit (self, signals[FAILED], 0, error);
}

/* The files, the model or the input scale changed: results and a cancelled sweep no longer
 * answer for them. */
static void
inputs_changed (PsSession *self)
{
  self->result_current = FALSE;
  self->inputs++;
  drop_partial (self);
}

static void
stop_sweep (PsSession *self)
{
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->job = NULL;
}

static void
start_sweep (PsSession *self)
{
  g_autoptr (GTask) task = NULL;
  SweepJob *job;

  stop_sweep (self);
  /* Keep the last complete result until the new one is complete. */
  if (self->result != NULL)
    {
      g_clear_pointer (&self->previous, result_release);
      self->previous = g_steal_pointer (&self->result);
    }
  g_array_set_size (self->rows, 0);
  self->fraction = 0;
  if (!ps_session_can_run (self))
    {
      restore_previous (self);
      return;
    }

  job = g_new0 (SweepJob, 1);
  job->session = self;
  job->inputs = self->inputs;
  if (self->partial != NULL)
    {
      /* go on from where the cancelled sweep stopped: its rows are known */
      job->sweep = g_steal_pointer (&self->partial);
      job->model = g_steal_pointer (&self->partial_model);
      for (int i = 0; i < ps_sweep_n_steps_done (job->sweep); i++)
        g_array_append_vals (self->rows, ps_sweep_get_step (job->sweep, i), 1);
    }
  else
    job->model = ps_model_copy (self->model);
  job->layer = g_strdup (ps_session_get_layer (self));
  for (int k = 0; k < PS_N_SETS; k++)
    job->sets[k] = self->sets[k] ? g_atomic_rc_box_acquire (self->sets[k]) : NULL;
  g_mutex_init (&job->mutex);
  job->pending = g_array_new (FALSE, FALSE, sizeof (PsSweepStep));
  ps_verdict_options_init (&job->scale_check);

  self->job = job;
  self->cancellable = g_cancellable_new ();
  task = g_task_new (self, self->cancellable, sweep_done, NULL);
  g_task_set_source_tag (task, start_sweep);
  g_task_set_task_data (task, job, sweep_job_free);
  g_task_run_in_thread (task, sweep_thread);
  thread_started (self);
}

/* ---- loading ---- */

static void
load_job_free (gpointer data)
{
  LoadJob *job = data;

  g_ptr_array_unref (job->files);
  ps_model_free (job->model);
  g_free (job->g_layer);
  for (int k = 0; k < PS_N_SETS; k++)
    set_source_release (job->sets[k]);
  for (int k = 0; k < PS_N_SLOTS; k++)
    g_clear_object (&job->loaded[k]);
  g_clear_error (&job->error);
  g_free (job);
}

static void
load_job_fail (LoadJob *job, GError *error)
{
  if (job->error == NULL)
    job->error = error;
  else
    g_error_free (error);
}

/* A model, or the B of a G with the layer that G pruned: the defense is run again on the
 * original BadNet, from the same layer. */
static PsModel *
load_model (LoadJob *job, const char *path, GError **error)
{
  g_autoptr (PsRepaired) g = NULL;
  PsModel *b;

  if (!ps_repaired_file_is_g (path))
    {
      /* (a data file is tried as a model first: it must not clear the G's layer) */
      if ((b = ps_model_load (path, error)) != NULL)
        g_clear_pointer (&job->g_layer, g_free);
      return b;
    }
  if ((g = ps_repaired_load (path, error)) == NULL)
    return NULL;
  b = g_steal_pointer (&g->b);
  g_free (b->path);
  b->path = g_strdup (path);
  g_free (job->g_layer);
  job->g_layer = g_strdup (g->layer);
  return b;
}

static void
load_into (LoadJob *job, GFile *file, PsSlot slot)
{
  g_autofree char *path = g_file_get_path (file);
  GError *error = NULL;

  if (path == NULL)
    {
      g_autofree char *uri = g_file_get_uri (file);
      load_job_fail (job, g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                                       _("%s: only local files can be opened"), uri));
      return;
    }
  if (slot == PS_SLOT_MODEL)
    {
      PsModel *m = load_model (job, path, &error);
      if (m != NULL)
        {
          ps_model_free (job->model);
          job->model = m;
        }
    }
  else
    {
      /* The file checked as a load checks it, its labels and a sample for the window read
       * now; its pixels by the sweep, a chunk at a time while B runs (as the CLI reads
       * them). The stamp before and after: a file rewritten while it was read is not
       * taken, and the sweep reads it only if it is still this file. */
      g_autofree char *stamp = ps_file_stamp (path);
      g_autoptr (PsDatasetStream) st = ps_dataset_stream_open (path, &error);
      PsDataset *sample = st ? ps_dataset_stream_sample (st, SHOWN_SAMPLE, &error) : NULL;
      g_autofree char *after = sample ? ps_file_stamp (path) : NULL;

      if (sample != NULL && (stamp == NULL || g_strcmp0 (stamp, after) != 0))
        {
          g_set_error (&error, PS_ERROR, PS_ERROR_FILE,
                       _("%s: the file changed while it was read"), path);
          g_clear_pointer (&sample, ps_dataset_free);
        }
      if (sample != NULL)
        {
          set_source_release (job->sets[slot]);
          job->sets[slot] = set_source_new (ps_dataset_header (ps_dataset_stream_header (st)), sample,
                                            g_steal_pointer (&stamp));
        }
    }
  if (error != NULL)
    load_job_fail (job, error);
  else
    g_set_object (&job->loaded[slot], file);
}

/* The lab's layout: models/bd_net.h5 (or bd_weights.h5) and data/{cl,bd}/. */
static void
load_folder (LoadJob *job, GFile *folder, gboolean need_model)
{
  static const struct { const char *path; PsSlot slot; } lab[] = {
    { "models/bd_net.h5", PS_SLOT_MODEL },
    { "models/bd_weights.h5", PS_SLOT_MODEL },
    { "models/bd_net.onnx", PS_SLOT_MODEL },
    { "bd_net.onnx", PS_SLOT_MODEL },
    { "data/cl/valid.h5", PS_SLOT_VALID },
    { "data/cl/test.h5", PS_SLOT_TEST },
    { "data/bd/bd_test.h5", PS_SLOT_POISONED },
  };
  gboolean found_model = FALSE, found_any = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (lab); i++)
    {
      g_autoptr (GFile) file = g_file_resolve_relative_path (folder, lab[i].path);

      if ((lab[i].slot == PS_SLOT_MODEL && (found_model || !need_model))
          || !g_file_query_exists (file, NULL))
        continue;
      found_model |= lab[i].slot == PS_SLOT_MODEL;
      found_any = TRUE;
      load_into (job, file, lab[i].slot);
    }
  if (!found_any || (need_model && !found_model))
    {
      g_autofree char *name = g_file_get_parse_name (folder);
      load_job_fail (job, g_error_new (G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                                       _("%s: not a lab folder (expected models/bd_net.h5, "
                                         "models/bd_weights.h5 or bd_net.onnx, and "
                                         "data/cl/valid.h5)"), name));
    }
}

/* Guesses what a file is: a model if it loads as one, else an image set named like the lab's. */
static void
load_auto (LoadJob *job, GFile *file)
{
  g_autofree char *path = g_file_get_path (file);
  g_autofree char *base = g_file_get_basename (file);
  g_autofree char *lower = base ? g_ascii_strdown (base, -1) : NULL;
  PsModel *m;

  if (g_file_query_file_type (file, G_FILE_QUERY_INFO_NONE, NULL) == G_FILE_TYPE_DIRECTORY)
    {
      load_folder (job, file, TRUE);
      return;
    }
  if (path != NULL && (m = load_model (job, path, NULL)) != NULL)
    {
      ps_model_free (job->model);
      job->model = m;
      g_set_object (&job->loaded[PS_SLOT_MODEL], file);
      return;
    }
  if (lower != NULL && (strstr (lower, "bd") || strstr (lower, "poison") || strstr (lower, "backdoor")))
    load_into (job, file, PS_SLOT_POISONED);
  else if (lower != NULL && strstr (lower, "test"))
    load_into (job, file, PS_SLOT_TEST);
  else
    load_into (job, file, PS_SLOT_VALID);
}

#ifdef HAVE_PS_DEMO
static void
load_demo (LoadJob *job, GCancellable *cancellable)
{
  g_autofree char *model = NULL, *folder = NULL;
  GError *error = NULL;

  if ((model = ps_demo_model_path (&error)) == NULL
      || (folder = ps_demo_ensure_data (cancellable, &error)) == NULL)
    {
      load_job_fail (job, error);
      return;
    }
  {
    g_autoptr (GFile) mfile = g_file_new_for_path (model);
    g_autoptr (GFile) dfile = g_file_new_for_path (folder);
    load_into (job, mfile, PS_SLOT_MODEL);
    load_folder (job, dfile, FALSE);
  }
}
#endif

static void
load_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  LoadJob *job = data;

  job->cancellable = cancellable;
#ifdef HAVE_PS_DEMO
  if (job->demo)
    load_demo (job, cancellable);
#endif
  for (guint i = 0; i < job->files->len; i++)
    {
      GFile *file = g_ptr_array_index (job->files, i);

      if (job->slot == PS_SLOT_AUTO)
        load_auto (job, file);
      else
        load_into (job, file, job->slot);
    }
  g_task_return_boolean (task, TRUE);
}

static const PsDataset *
candidate_set (PsSession *self, LoadJob *job, const gboolean *take, int k)
{
  if (take[k])
    return job->sets[k]->header;
  return self->sets[k] ? self->sets[k]->header : NULL;
}

/* Check first, then swap: a file that does not fit what stays loaded is refused and the
 * loaded one kept, so a mistake never throws away a working model, its data or its sweep. */
static void
check_load (PsSession *self, LoadJob *job, gboolean *take)
{
  const PsModel *model = take[PS_SLOT_MODEL] ? job->model : self->model;

  if (model == NULL)
    return;
  /* New data against the model it would run with. */
  for (int k = 0; k < PS_N_SETS; k++)
    {
      GError *error = NULL;

      if (take[k] && !ps_infer_check_dataset (model, job->sets[k]->header, &error))
        {
          take[k] = FALSE;
          load_job_fail (job, error);
        }
    }
  if (!take[PS_SLOT_MODEL])
    return;
  /* A new model against the data it would keep. */
  for (int k = 0; k < PS_N_SETS; k++)
    {
      const PsDataset *ds = candidate_set (self, job, take, k);
      g_autoptr (GError) error = NULL;

      if (ds != NULL && !take[k] && !ps_infer_check_dataset (model, ds, &error))
        {
          g_autofree char *name = g_file_get_parse_name (job->loaded[PS_SLOT_MODEL]);
          take[PS_SLOT_MODEL] = FALSE;
          load_job_fail (job, g_error_new (G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                           _("%s: does not fit the data already loaded, which was "
                                             "kept (%s). Open the model together with its data, "
                                             "or a lab folder."), name, error->message));
          break;
        }
    }
  if (!take[PS_SLOT_MODEL] && self->model != NULL)
    check_load (self, job, take);
}

/* A G starts at the layer it pruned; a model opened again at the layer chosen for it
 * before; a new one at its default. */
static void
recall_layer (PsSession *self, const char *g_layer)
{
  char *uri = g_file_get_uri (self->files[PS_SLOT_MODEL]);
  const char *name;
  int layer;

  if (g_layer != NULL)
    g_hash_table_insert (self->layers, g_strdup (uri), g_strdup (g_layer));
  name = g_hash_table_lookup (self->layers, uri);
  layer = name ? ps_model_find_layer (self->model, name) : -1;
  g_free (uri);
  g_clear_pointer (&self->layer, g_free);
  if (layer >= 0 && ps_model_is_prunable (self->model, layer))
    self->layer = g_strdup (name);
}

/* Takes what a load produced, slot by slot, unless a later open already filled the slot. */
static gboolean
apply_load (PsSession *self, LoadJob *job)
{
  gboolean take[PS_N_SLOTS];
  gboolean changed = FALSE;

  for (int k = 0; k < PS_N_SLOTS; k++)
    take[k] = job->loaded[k] != NULL && self->slot_serial[k] <= job->serial;
  check_load (self, job, take);
  for (int k = 0; k < PS_N_SLOTS; k++)
    {
      if (!take[k])
        continue;
      self->slot_serial[k] = job->serial;
      g_set_object (&self->files[k], job->loaded[k]);
      if (k == PS_SLOT_MODEL)
        {
          ps_model_free (self->model);
          self->model = g_steal_pointer (&job->model);
          recall_layer (self, job->g_layer);
        }
      else
        {
          set_source_release (self->sets[k]);
          self->sets[k] = g_steal_pointer (&job->sets[k]);
        }
      changed = TRUE;
    }
  if (changed)
    inputs_changed (self);
  return changed;
}

static void
load_done (GObject *object, GAsyncResult *res, gpointer data)
{
  PsSession *self = PS_SESSION (object);
  LoadJob *job = g_task_get_task_data (G_TASK (res));
  gboolean changed = FALSE;

  thread_returned (self);
  self->n_loads--;
  if (job->serial <= self->cancel_serial)
    self->n_loads_cancelled--;
  else
    changed = apply_load (self, job);
  if (changed)
    {
      g_signal_emit (self, signals[CHANGED], 0);
      start_sweep (self);
    }
  g_signal_emit (self, signals[PROGRESS], 0);
  if (job->error != NULL && job->serial > self->cancel_serial)
    g_signal_emit (self, signals[FAILED], 0, job->error);
}

static void
start_load (PsSession *self, LoadJob *job)
{
  g_autoptr (GTask) task = NULL;

  if (self->load_cancellable == NULL)
    self->load_cancellable = g_cancellable_new ();
  task = g_task_new (self, self->load_cancellable, load_done, NULL);
  /* load_done runs even when cancelled: it keeps the busy count */
  g_task_set_return_on_cancel (task, FALSE);
  job->serial = ++self->load_serial;
  g_task_set_source_tag (task, start_load);
  g_task_set_task_data (task, job, load_job_free);
  self->n_loads++;
  g_task_run_in_thread (task, load_thread);
  thread_started (self);
  g_signal_emit (self, signals[PROGRESS], 0);
}

void
ps_session_open (PsSession *self, GFile **files, int n_files, PsSlot slot)
{
  LoadJob *job;

  g_return_if_fail (PS_IS_SESSION (self));
  g_return_if_fail (slot <= PS_SLOT_AUTO);

  job = g_new0 (LoadJob, 1);
  job->slot = slot;
  job->files = g_ptr_array_new_with_free_func (g_object_unref);
  for (int i = 0; i < n_files; i++)
    g_ptr_array_add (job->files, g_object_ref (files[i]));
  start_load (self, job);
}

gboolean
ps_session_has_demo (void)
{
#ifdef HAVE_PS_DEMO
  return TRUE;
#else
  return FALSE;
#endif
}

void
ps_session_open_demo (PsSession *self)
{
  LoadJob *job;

  g_return_if_fail (PS_IS_SESSION (self));

  job = g_new0 (LoadJob, 1);
  job->slot = PS_SLOT_AUTO;
  job->demo = TRUE;
  job->files = g_ptr_array_new_with_free_func (g_object_unref);
  start_load (self, job);
}

/* ---- saving G ---- */

typedef struct {
  Result *result;
  int     pruned;
  double  drop;
  char   *path;
} SaveJob;

static void
save_job_free (gpointer data)
{
  SaveJob *job = data;

  result_release (job->result);
  g_free (job->path);
  g_free (job);
}

static void
save_thread (GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  SaveJob *job = data;
  g_autoptr (PsRepaired) g = NULL;
  GError *error = NULL;

  if (job->result->model->onnx != NULL)
    {
      /* a model read from ONNX gets its G as one ONNX graph */
      const PsSweep *s = job->result->sweep;
      PsOnnxPruning p = { ps_sweep_layer_name (s), ps_sweep_order (s), job->pruned, job->drop,
                          ps_sweep_get_step (s, job->pruned) };

      if (!ps_onnx_save_g (job->result->model, &p, FALSE, job->path, &error))
        g_task_return_error (task, error);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }
  g = ps_repaired_build (job->result->model, job->result->sweep, job->pruned, job->drop, &error);
  if (g == NULL || !ps_repaired_save (g, job->path, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
save_done (GObject *object, GAsyncResult *res, gpointer data)
{
  g_autoptr (GTask) outer = data;
  GError *error = NULL;

  thread_returned (PS_SESSION (object));
  if (g_task_propagate_boolean (G_TASK (res), &error))
    g_task_return_boolean (outer, TRUE);
  else
    g_task_return_error (outer, error);
}

void
ps_session_save_g_async (PsSession *self, int pruned, double drop, GFile *file,
                         GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data)
{
  g_autoptr (GTask) outer = g_task_new (self, cancellable, callback, user_data);
  g_autoptr (GTask) inner = NULL;
  g_autofree char *path = g_file_get_path (file);
  SaveJob *job;

  g_return_if_fail (PS_IS_SESSION (self));
  g_task_set_source_tag (outer, ps_session_save_g_async);
  if (self->result == NULL || path == NULL)
    {
      g_task_return_new_error (outer, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%s",
                               self->result ? _("G can only be saved to a local file")
                                            : _("There is no finished sweep to build G from"));
      return;
    }
  /* the file's name must not promise another format than the model's */
  {
    g_autofree char *lower = g_ascii_strdown (path, -1);
    gboolean onnx = self->result->model->onnx != NULL;

    if ((onnx && (g_str_has_suffix (lower, ".h5") || g_str_has_suffix (lower, ".hdf5")))
        || (!onnx && g_str_has_suffix (lower, ".onnx")))
      {
        g_task_return_new_error (outer, G_IO_ERROR, G_IO_ERROR_INVALID_FILENAME, "%s",
                                 onnx ? _("G of an ONNX model is saved as one ONNX graph: name the file .onnx")
                                      : _("G of a Keras model is saved as HDF5: name the file .h5"));
        return;
      }
  }
  job = g_new0 (SaveJob, 1);
  job->result = g_atomic_rc_box_acquire (self->result);
  job->pruned = pruned;
  job->drop = drop;
  job->path = g_steal_pointer (&path);
  /* The inner task runs the thread; the outer one answers the caller after the hold is
   * released on this thread. */
  inner = g_task_new (self, cancellable, save_done, g_steal_pointer (&outer));
  g_task_set_task_data (inner, job, save_job_free);
  g_task_run_in_thread (inner, save_thread);
  thread_started (self);
}

gboolean
ps_session_save_g_finish (PsSession *self, GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- the rest of the API ---- */

void
ps_session_set_input_scale (PsSession *self, double scale)
{
  g_return_if_fail (PS_IS_SESSION (self));
  g_return_if_fail (scale > 0);

  if (self->model == NULL || self->model->input_scale == scale)
    return;
  self->model->input_scale = scale;
  inputs_changed (self);
  g_signal_emit (self, signals[CHANGED], 0);
  start_sweep (self);
  g_signal_emit (self, signals[PROGRESS], 0);
}

double
ps_session_get_input_scale (PsSession *self)
{
  return self->model ? self->model->input_scale : NAN;
}

gboolean
ps_session_set_layer (PsSession *self, const char *name, GError **error)
{
  int layer;

  g_return_val_if_fail (PS_IS_SESSION (self), FALSE);
  g_return_val_if_fail (name != NULL, FALSE);

  if (self->model == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, _("No model is loaded"));
      return FALSE;
    }
  layer = ps_model_find_layer (self->model, name);
  if (layer < 0 || !ps_model_is_feature_map (self->model, layer))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("The model has no feature map “%s” to prune"), name);
      return FALSE;
    }
  if (!ps_model_layer_is_cut (self->model, layer, error))
    return FALSE;
  name = self->model->layers[layer]->name; /* a node name becomes its tensor's */
  if (g_strcmp0 (name, ps_session_get_layer (self)) == 0)
    return TRUE;
  g_free (self->layer);
  self->layer = g_strdup (name);
  g_hash_table_insert (self->layers, g_file_get_uri (self->files[PS_SLOT_MODEL]), g_strdup (name));
  inputs_changed (self);
  g_signal_emit (self, signals[CHANGED], 0);
  start_sweep (self);
  g_signal_emit (self, signals[PROGRESS], 0);
  return TRUE;
}

const char *
ps_session_get_layer (PsSession *self)
{
  int layer;

  if (self->model == NULL)
    return NULL;
  if (self->layer != NULL)
    return self->layer;
  layer = ps_model_default_layer (self->model);
  return layer >= 0 ? self->model->layers[layer]->name : NULL;
}

void
ps_session_run (PsSession *self)
{
  /* Nothing changed since the last complete sweep: it is still the answer. */
  if (self->result != NULL && self->result_current && self->job == NULL)
    {
      g_signal_emit (self, signals[PROGRESS], 0);
      return;
    }
  start_sweep (self);
  g_signal_emit (self, signals[PROGRESS], 0);
}

static void
cancel_loads (PsSession *self)
{
  /* the loads running stop between chunks; later ones get a fresh cancellable */
  if (self->load_cancellable != NULL)
    g_cancellable_cancel (self->load_cancellable);
  g_clear_object (&self->load_cancellable);
  self->cancel_serial = self->load_serial;
  self->n_loads_cancelled = self->n_loads;
}

void
ps_session_cancel (PsSession *self)
{
  cancel_loads (self);
  stop_sweep (self);
  restore_previous (self);
  g_signal_emit (self, signals[PROGRESS], 0);
}

int
ps_session_get_resumable_steps (PsSession *self)
{
  if (self->partial == NULL)
    return -1;
  return ps_sweep_n_steps_done (self->partial);
}

gboolean
ps_session_get_busy (PsSession *self)
{
  return self->n_loads > self->n_loads_cancelled || self->job != NULL;
}

gboolean
ps_session_can_run (PsSession *self)
{
  return self->model != NULL && self->sets[PS_SET_VALID] != NULL;
}

double
ps_session_get_fraction (PsSession *self)
{
  if (self->job == NULL && self->n_loads > self->n_loads_cancelled)
    return -1;
  return self->fraction;
}

const char *
ps_session_get_activity (PsSession *self)
{
  if (self->job != NULL)
    return self->rows->len == 0 ? _("Running B on the data…") : _("Pruning channels…");
  if (self->n_loads > self->n_loads_cancelled)
    return _("Loading…");
  return NULL;
}

GFile *
ps_session_get_file (PsSession *self, PsSlot slot)
{
  g_return_val_if_fail (slot < PS_N_SLOTS, NULL);
  return self->files[slot];
}

const PsModel *
ps_session_get_model (PsSession *self)
{
  return self->model;
}

const PsSweepStep *
ps_session_get_rows (PsSession *self, int *n_rows)
{
  *n_rows = self->rows->len;
  return (const PsSweepStep *) (gpointer) self->rows->data;
}

const PsSweep *
ps_session_get_sweep (PsSession *self)
{
  return self->result ? self->result->sweep : NULL;
}

const PsModel *
ps_session_get_sweep_model (PsSession *self)
{
  return self->result ? self->result->model : NULL;
}

const PsDataset *
ps_session_get_sweep_data (PsSession *self, PsSetKind set)
{
  return self->result && self->result->sets[set] ? self->result->sets[set]->sample : NULL;
}

const PsDataset *
ps_session_get_sweep_header (PsSession *self, PsSetKind set)
{
  return self->result && self->result->sets[set] ? self->result->sets[set]->header : NULL;
}

gboolean
ps_session_get_sweep_current (PsSession *self)
{
  /* the layer too, so that a sweep of another layer is never taken for this one's */
  return self->result != NULL && self->result_current
         && g_strcmp0 (ps_sweep_layer_name (self->result->sweep), ps_session_get_layer (self)) == 0;
}

void
ps_session_get_verdict_options (PsSession *self, PsVerdictOptions *options)
{
  const PsDataset *poisoned = ps_session_get_sweep_header (self, PS_SET_POISONED);

  ps_verdict_options_init (options);
  if (self->result == NULL)
    return;
  *options = self->result->scale_check;
  options->drop = NAN;
  options->poisoned_labels = poisoned ? poisoned->labels : NULL;
  options->n_poisoned = poisoned ? poisoned->n : 0;
}

/* ---- GObject ---- */

static void
ps_session_dispose (GObject *object)
{
  PsSession *self = PS_SESSION (object);

  cancel_loads (self);
  stop_sweep (self);
  G_OBJECT_CLASS (ps_session_parent_class)->dispose (object);
}

static void
ps_session_finalize (GObject *object)
{
  PsSession *self = PS_SESSION (object);

  ps_model_free (self->model);
  for (int k = 0; k < PS_N_SETS; k++)
    set_source_release (self->sets[k]);
  for (int k = 0; k < PS_N_SLOTS; k++)
    g_clear_object (&self->files[k]);
  g_clear_pointer (&self->result, result_release);
  g_clear_pointer (&self->previous, result_release);
  drop_partial (self);
  g_array_unref (self->rows);
  g_free (self->layer);
  g_hash_table_unref (self->layers);
  G_OBJECT_CLASS (ps_session_parent_class)->finalize (object);
}

static void
ps_session_class_init (PsSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = ps_session_dispose;
  object_class->finalize = ps_session_finalize;

  /* Files, model or input scale changed. */
  signals[CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                   0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  /* New rows, progress, or busy state. */
  signals[PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[FINISHED] = g_signal_new ("sweep-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                    0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[FAILED] = g_signal_new ("failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
ps_session_init (PsSession *self)
{
  self->rows = g_array_new (FALSE, FALSE, sizeof (PsSweepStep));
  self->layers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

PsSession *
ps_session_new (void)
{
  return g_object_new (PS_TYPE_SESSION, NULL);
}
