/* ps-sweep-private.h: what the parts of the sweep share (ps-sweep.c: the API and the
 * bookkeeping; ps-sweep-plan.c: which layers carry the state; ps-sweep-step.c: the
 * per-image work of the first pass and of every step) */
#pragma once

#include "ps-dataset-stream.h"
#include "ps-plan.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

#define PS_SWEEP_BATCH 64
/* Steps per group: an image keeps its state in the cache through a group, and its rows for
 * the group's steps go through the layers after the fronts together. */
#define PS_SWEEP_GROUP 16
#define PS_SWEEP_MAX_TERMS 256 /* rank-one terms applied to an image's state at once */

typedef enum {
  FRONT_CONV,   /* a Conv2D reading the pruned layer */
  FRONT_DENSE,  /* a Dense reading the pruned layer (through a Flatten or directly) */
  FRONT_MASK,   /* fallback: the pruned layer itself, channels zeroed */
} FrontKind;

typedef struct {
  FrontKind kind;
  int       layer;    /* model layer whose linear output (or output, for MASK) is the state */
  gsize     size;     /* floats per image */
  gsize     offset;   /* within an image's state */
  /* FRONT_CONV: the inputs under each output position's window, in the window's order:
   * output position o reads win_in[e] (a position of the pruned layer) with kernel tap
   * win_tap[e] (ky * kw + kx) for e in win_start[o] .. win_start[o + 1] - 1 */
  int      *win_start;
  int      *win_in;
  int      *win_tap;
  int       full_taps; /* kh * kw when every window has all its taps, in order (no padding) */
} Front;

typedef struct _PsSweepFeed PsSweepFeed;

/* Chunks of a streamed set in memory at once: one being computed, one read ahead, one to
 * spare so that a worker finishing a chunk late does not stall the reader. */
#define PS_SWEEP_FEED_SLOTS 3

/* The readers' chunk buffers, kept from one set to the next: fresh pages cost the kernel
 * more to hand out than the reading costs. */
typedef struct {
  gpointer slot[PS_SWEEP_FEED_SLOTS];
  gsize    bytes;  /* each */
} PsSweepFeedSlots;

/* What the output skip keeps of an image's last exact scores (ps-sweep-skip.c). */
typedef struct {
  float   gap;    /* best score minus the best of the other classes */
  float   h_norm; /* |href| */
  int     best;
} PsSkipRecord;

typedef struct {
  const PsDataset *ds;      /* only during its first pass (a stream's: no pixels) */
  PsDatasetStream *stream;  /* only during its first pass, when read from a stream */
  PsSweepFeed     *feed;    /* the stream's images, a chunk ahead of the workers */
  gboolean         planar;  /* the feed's images are channel planes (B's first layer reads them) */
  int              n;
  int             *labels;
  float           *act;     /* n x act_size: the pruned layer's output; when act_by_channel
                             * as channel planes (n x channels x h x w): the steps of one
                             * image read its channels one by one */
  float           *state;   /* n x state_size: frontier values; for a set with caches only
                             * while its steps run group by group (the fronts' outputs
                             * come again from act: state_from_act() in ps-sweep-step.c) */
  float           *href;    /* n x h_size: output layer input at the last exact scores */
  PsSkipRecord    *skip;    /* n: what the output skip needs of those scores */
  int              cache_at; /* state, href and skip hold image i at i - cache_at (a block's
                              * copies start at the block's first image) */
  guint16         *preds;   /* n_steps x n */
  guint64         *active;  /* n: bit c set when channel c is active (<= 64 channels) */
  double          *sums;    /* workers x channels, for the channel means */
  double          *means;   /* channels */
  gboolean         present;
  gboolean         fused;   /* every step ran with the first pass, a batch at a time:
                             * no caches (act, state, href, skip, active) */
  int             *hits;    /* n_steps x 3: B' correct, G correct, G flagged */
} SetData;

struct _PsSweep {
  const PsModel *model;     /* only during the run */
  char          *layer_name;
  int            layer;
  PsShape        lshape;
  int            n_channels;
  int            n_classes;
  int            n_steps;
  int           *order;
  Front          fronts[PS_MAX_INPUTS];
  int            n_fronts;
  gsize          state_size;
  gboolean       act_by_channel; /* else act is as the layer wrote it: the MASK state */
  gboolean      *run;       /* layers to run after the frontier */
  gboolean      *front_run; /* the fronts, and a Flatten before one: the state from act */
  int            h_layer;   /* input of the output layer, when its skip applies; else -1 */
  gsize          h_size;
  double        *reach_out; /* per class c: max_j |W_j - W_c| of the output kernel */
  double        *w_norm;    /* per class c: |W_c| */
  double         max_w_norm, max_bias;
  double         gamma;     /* relative rounding bound of one score */
  gboolean       finished;
  gboolean       ordered;   /* the order is chosen (by the validation set) */
  gboolean       stepping;  /* ps_sweep_finish() has begun: no more sets can be added */
  int            next_step; /* steps done so far (a cancelled finish goes on from here) */
  int            steps_run; /* steps the sets with caches have run ahead of finish */
  int            n_reported; /* rows reported to the progress callback */
  SetData        sets[PS_N_SETS];
  PsSweepFeedSlots feed_slots;  /* until the steps start */
  PsSweepStep   *steps;
  PsPlan       **plans;
  SetData      **batch_sets; /* per worker: one batch's caches, for the fused sets */
  int            n_workers;
  /* progress, reported from the calling thread only */
  PsSweepProgress progress;
  gpointer       user_data;
  GCancellable  *cancellable;
  int            done_batches;
  int            total_batches;
  int            cur_step;
  gboolean       decreasing;
};


gboolean  _ps_sweep_plan_structure (PsSweep  *s,
                                    GError  **error);
/* B on every image of @d, keeping what the steps need; when the order is chosen already,
 * every step too, a batch at a time (the set is then fused). */
gboolean  _ps_sweep_first_pass     (PsSweep  *s,
                                    SetData  *d,
                                    GError  **error);
void      _ps_sweep_set_data_clear (SetData  *d);
/* Every step on the sets with caches, image block by image block, each block's state
 * made again from its act cache: FALSE when cancelled (the sets' caches as they were). */
gboolean  _ps_sweep_run_all_steps  (PsSweep  *s);
/* The state of every image of the sets with caches, for their steps group by group: FALSE
 * when the memory cannot be had. */
gboolean  _ps_sweep_restore_states (PsSweep  *s,
                                    GError  **error);
/* Steps @first .. @last-1 on every set. */
void      _ps_sweep_run_steps      (PsSweep  *s,
                                    int       first,
                                    int       last);
/* A thread reading @stream into a few chunk buffers ahead of the first pass's batches of
 * @batch images, scaled by @scale (@planar: as channel planes). */
PsSweepFeed *_ps_sweep_feed_start   (PsDatasetStream *stream,
                                     int              batch,
                                     double           scale,
                                     gboolean         planar,
                                     PsSweepFeedSlots *slots,
                                     GCancellable    *cancellable,
                                     GError         **error);
/* Waits for batch @batch's images (NULL once the reading has failed or was cancelled):
 * floats, or for a file of bytes its bytes as they are (ps_dataset_stream_read_bytes()),
 * which the worker converts image by image as the first layer takes them, four times less
 * for the reader to write and the worker to read. Each batch got is released, which
 * frees its chunk's buffer once all its batches are. */
gconstpointer _ps_sweep_feed_get    (PsSweepFeed     *feed,
                                     int              batch);
gboolean     _ps_sweep_feed_has_bytes (PsSweepFeed   *feed);
void         _ps_sweep_feed_release (PsSweepFeed     *feed,
                                     int              batch);
/* Stops the reader and frees @feed (not its slots); FALSE with the reading's error if it
 * failed. */
gboolean     _ps_sweep_feed_finish  (PsSweepFeed     *feed,
                                     GError         **error);
void         _ps_sweep_feed_slots_clear (PsSweepFeedSlots *slots);
void      _ps_sweep_report         (PsSweep           *s,
                                    const PsSweepStep *step);
/* ps-sweep-skip.c */
void      _ps_sweep_skip_plan      (PsSweep           *s);
int       _ps_sweep_skip_record    (const PsSweep     *s,
                                    SetData           *d,
                                    int                i,
                                    const float       *h,
                                    const float       *z);
gboolean  _ps_sweep_skip_holds     (const PsSweep     *s,
                                    const SetData     *d,
                                    int                i,
                                    const float       *h);

G_END_DECLS
