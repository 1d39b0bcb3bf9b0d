/* ps-dataset.h: an image set in the lab's layout (data (N,3,H,W) + label (N,), and for a
 * poisoned set optionally clean_label (N,)), kept compact */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _PsDataset {
  int      n;
  int      h, w, c;
  guint8  *u8;      /* NHWC pixels when every value is a whole number 0..255 */
  float   *f32;     /* NHWC pixels otherwise (exactly one of u8/f32 is set) */
  int     *labels;  /* n labels */
  /* n true classes of the images before poisoning (dataset “clean_label”), or NULL when the
   * set does not carry them; the poisoned images' `labels` are the attack's target */
  int     *clean_labels;
  int     *index;   /* a sample of a larger set: each image's index there; else NULL */
  char    *path;
} PsDataset;

PsDataset *ps_dataset_load         (const char       *path,
                                    GError          **error);
/* The same, stopping with G_IO_ERROR_CANCELLED between chunks once @cancellable is
 * cancelled; other threads may read or write HDF5 files between the chunks. */
PsDataset *ps_dataset_load_cancellable (const char    *path,
                                        GCancellable  *cancellable,
                                        GError       **error);
/* The number of images @path declares, checked as a load would, without reading them. */
gboolean   ps_dataset_peek_count   (const char       *path,
                                    int              *n,
                                    GError          **error);
/* Builds a dataset from NHWC uint8 pixels (takes copies). */
PsDataset *ps_dataset_new_u8       (int               n,
                                    int               h,
                                    int               w,
                                    int               c,
                                    const guint8     *pixels,
                                    const int        *labels);
/* @count images evenly spaced over @ds (image i * n / count), with their indices. */
PsDataset *ps_dataset_sample       (const PsDataset  *ds,
                                    int               count);
/* Shape, labels and path of @ds without its pixels (u8 and f32 NULL): enough to check a
 * set against a model, never to be read as images. */
PsDataset *ps_dataset_header       (const PsDataset  *ds);
void       ps_dataset_free         (PsDataset        *ds);
/* Writes @count images from @start as floats multiplied by @scale, NHWC. */
void       ps_dataset_get_batch    (const PsDataset  *ds,
                                    int               start,
                                    int               count,
                                    double            scale,
                                    float            *out);
/* Same for a list of image indices. */
void       ps_dataset_gather       (const PsDataset  *ds,
                                    const int        *indices,
                                    int               count,
                                    double            scale,
                                    float            *out);
/* Saves in the lab's layout: data (N,c,h,w) uint8 or float32, label (N,), and clean_label
 * (N,) when @ds has clean labels, the pixels deflated. Atomic. */
gboolean   ps_dataset_save         (const PsDataset  *ds,
                                    const char       *path,
                                    GError          **error);
/* The same, the pixels deflated or not (a file read often from a local disk, such as the
 * demo's cache, loads several times faster without: no inflating). */
gboolean   ps_dataset_save_compressed (const PsDataset *ds,
                                       const char      *path,
                                       gboolean         compress,
                                       GError         **error);
gsize      ps_dataset_memory_size  (const PsDataset  *ds);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsDataset, ps_dataset_free)

G_END_DECLS
