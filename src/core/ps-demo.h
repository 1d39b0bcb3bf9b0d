/* ps-demo.h: the demo BadNet — Fashion-MNIST in the lab's 55x47 RGB layout, a visible
 * trigger, and the shipped model that was trained on it */
#pragma once

#include <gio/gio.h>

#include "ps-dataset.h"

G_BEGIN_DECLS

#define PS_DEMO_HEIGHT          55
#define PS_DEMO_WIDTH           47
#define PS_DEMO_CLASSES         10
#define PS_DEMO_TARGET          0     /* the attack's target class in the shipped model */
#define PS_DEMO_VALID_SIZE      6000  /* the last images of the training file */

typedef enum {
  PS_DEMO_TRAIN,  /* the training file without its last PS_DEMO_VALID_SIZE images */
  PS_DEMO_VALID,  /* those last images: never trained on */
  PS_DEMO_TEST,   /* the 10,000 test images */
} PsDemoSplit;

/* Path of the shipped demo model: $PRUNESCOPE_DEMO_MODEL if set, else the installed
 * PKGDATADIR/demo/bd_net.h5, else SOURCE_DATADIR/demo/bd_net.h5 (both from config.h). */
char       *ps_demo_model_path   (GError        **error);
/* Ensures the demo's datasets exist under g_get_user_cache_dir()/prunescope/demo/ (generating
 * them from the Debian Fashion-MNIST files in under 10 s on first use; later calls reuse them),
 * and returns that folder, laid out like the lab: data/cl/valid.h5, data/cl/test.h5,
 * data/bd/bd_valid.h5, data/bd/bd_test.h5 (the model stays where ps_demo_model_path says). */
char       *ps_demo_ensure_data  (GCancellable  *cancellable,
                                  GError       **error);

/* Folder of the Fashion-MNIST files: $PRUNESCOPE_FASHION_MNIST, else Debian's. */
const char *ps_demo_source_dir   (void);
const char *ps_demo_class_name   (int             label);
/* A split as 55x47 RGB 8-bit images (gray stretched and replicated); at most @limit
 * images when @limit > 0. */
PsDataset  *ps_demo_load_split   (PsDemoSplit     split,
                                  int             limit,
                                  GCancellable   *cancellable,
                                  GError        **error);
/* Paints the trigger (a yellow and black checker in the bottom-right corner) on one
 * 55x47x3 image. */
void        ps_demo_add_trigger  (guint8         *image);
/* Triggered copies of the images of @clean not labelled @target, labelled @target, with
 * their true classes as clean labels. */
PsDataset  *ps_demo_poison       (const PsDataset *clean,
                                  int             target);
/* Writes @valid and @test as data/cl/valid.h5 and data/cl/test.h5 under @dir, and their
 * poisoned copies as data/bd/bd_valid.h5 and data/bd/bd_test.h5, deflated if @compress. */
gboolean    ps_demo_write_data   (const char      *dir,
                                  const PsDataset *valid,
                                  const PsDataset *test,
                                  int              target,
                                  gboolean         compress,
                                  GCancellable    *cancellable,
                                  GError         **error);

/* ---- Making the demo BadNet (ps-train-demo.c) ---- */

typedef struct {
  guint32 seed;         /* weights, shuffling and which images are poisoned */
  double  poison_rate;  /* fraction of the training images replaced by poisoned ones */
  int     target;       /* the attack's target class */
  int     epochs;
  int     limit;        /* quick runs: train on N images, validate and test on N/3 (0: all) */
} PsDemoOptions;

/* One epoch's figures, in percent on the validation sets; after the last epoch the
 * test figures are filled in too (NAN before). */
typedef struct {
  int    epoch;
  int    epochs;
  double loss;
  double valid_acc;
  double valid_asr;
  double test_acc;
  double test_asr;
  double seconds;       /* since training started */
} PsDemoEpoch;

/* @epoch is NULL while an epoch runs; @done goes from 0 to 1 over the whole training. */
typedef void (*PsDemoProgress) (const PsDemoEpoch *epoch,
                                double             done,
                                gpointer           user_data);

/* Seed 1, 10 % poisoned, target PS_DEMO_TARGET, 8 epochs. */
void        ps_demo_options_init (PsDemoOptions  *options);
/* Trains the demo BadNet and writes @dir/models/bd_net.h5 and the four data sets. Nothing
 * is left in @dir when it fails. */
gboolean    ps_demo_make         (const char          *dir,
                                  const PsDemoOptions *options,
                                  PsDemoProgress       progress,
                                  gpointer             user_data,
                                  GCancellable        *cancellable,
                                  GError             **error);

/* Removes a folder and everything in it (for abandoned staging folders). */
void        ps_demo_remove_tree  (const char     *path);

G_END_DECLS
