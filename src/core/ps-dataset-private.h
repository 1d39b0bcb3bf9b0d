/* ps-dataset-private.h: what the whole-set reader (ps-dataset.c) and the chunk reader
 * (ps-dataset-stream.c) share: opening and checking a set's file, reading a hyperslab */
#pragma once

#include "ps-dataset.h"
#include "ps-h5.h"

G_BEGIN_DECLS

/* Images held by a conversion buffer at most, and floats (16 MB) however large they are. */
#define PS_DATASET_CHUNK_IMAGES 256
#define PS_DATASET_CHUNK_VALUES (1 << 22)

/* Layout on disk: channels-first (N,C,H,W) as in the lab, or channels-last (N,H,W,C). */
typedef struct {
  gboolean chw;
  gboolean file_u8;  /* stored as 8-bit unsigned: read as bytes, nothing to check */
  int      n, h, w, c;
} PsDatasetLayout;

/* With the HDF5 lock held: opens dataset “data” of @file, checks its shape against the
 * limits and reads the labels (and clean labels) into @ds (n, h, w, c set too).
 * Returns the open dataset, or -1 with @error set (messages without the file's name). */
hid_t     _ps_dataset_open_data   (hid_t                  file,
                                   PsDataset             *ds,
                                   PsDatasetLayout       *lay,
                                   GError               **error);
/* With the HDF5 lock held: images @start .. @start+@count-1 as the file orders them, as
 * bytes (file_u8) or floats (HDF5 converts float64 and the rest). */
gboolean  _ps_dataset_read_slab   (hid_t                  dset,
                                   const PsDatasetLayout *lay,
                                   int                    start,
                                   int                    count,
                                   gpointer               buf,
                                   GError               **error);

/* ps_dataset_sample() without the pixels: its images' indices, labels and clean labels. */
PsDataset *_ps_dataset_sample_of   (const PsDataset       *ds,
                                    int                    count);

/* One image of the file's order (@lay) to NHWC floats times @s (@planar: to channel
 * planes, C x H x W). An 8-bit value times @s is what ps_dataset_get_batch() computes from
 * 8-bit storage, a float value (+0 for -0, as 8-bit storage has it) times @s what it
 * computes from float storage. */
void      _ps_dataset_convert_u8  (const PsDatasetLayout *lay,
                                   const guint8          *image,
                                   float                  s,
                                   gboolean               planar,
                                   float                 *out);
/* The same for float values; FALSE when one is NaN or infinite. */
gboolean  _ps_dataset_convert_f32 (const PsDatasetLayout *lay,
                                   const float           *image,
                                   float                  s,
                                   gboolean               planar,
                                   float                 *out);
/* The same in place, for @n floats already in the order wanted. */
gboolean  _ps_dataset_convert_f32_in_place (gsize  n,
                                            float  s,
                                            float *values);

G_END_DECLS
