/* ps-dataset-stream.h: an image set read a chunk at a time, straight into the floats a
 * model's first layer takes, never held whole in memory */
#pragma once

#include "ps-dataset.h"

G_BEGIN_DECLS

typedef struct _PsDatasetStream PsDatasetStream;

/* Opens @path and checks it as ps_dataset_load() does (same limits, same messages), and
 * reads its labels; no pixel is read yet. */
PsDatasetStream *ps_dataset_stream_open      (const char             *path,
                                              GError                **error);
void             ps_dataset_stream_free      (PsDatasetStream        *stream);
/* Shape, labels, clean labels and path of the set (u8 and f32 NULL): enough to check it
 * against a model (ps_infer_check_dataset()). */
const PsDataset *ps_dataset_stream_header    (const PsDatasetStream  *stream);
/* Images per read that keep the conversion buffer small (at most 256, at least 1). */
int              ps_dataset_stream_chunk     (const PsDatasetStream  *stream);
/* Reads images @start .. @start+@count-1 as floats multiplied by @scale, NHWC: the same
 * bits ps_dataset_get_batch() gives once ps_dataset_load() has read the file. Fails, with
 * the file's name, on a pixel that is not finite or a file that cannot be read there (the
 * stream can still be read elsewhere). Takes the HDF5 lock for the read only; one thread
 * at a time may use a stream. */
gboolean         ps_dataset_stream_read      (PsDatasetStream        *stream,
                                              int                     start,
                                              int                     count,
                                              double                  scale,
                                              float                  *out,
                                              GError                **error);
/* The same values as channel planes (C x H x W per image), as the lab's files store
 * them and ps_plan_set_input_planar() reads them. */
gboolean         ps_dataset_stream_read_planar (PsDatasetStream      *stream,
                                                int                   start,
                                                int                   count,
                                                double                scale,
                                                float                *out,
                                                GError              **error);
/* Whether the file stores bytes: ps_dataset_stream_read_bytes() then reads them as they
 * are, a quarter of the floats' size, for the reader of a set to convert later. */
gboolean         ps_dataset_stream_is_u8     (const PsDatasetStream  *stream);
/* Images @start .. @start+@count-1 of a file of bytes, in the file's order. */
gboolean         ps_dataset_stream_read_bytes (PsDatasetStream       *stream,
                                               int                    start,
                                               int                    count,
                                               guint8                *out,
                                               GError               **error);
/* @count images read by ps_dataset_stream_read_bytes() as ps_dataset_stream_read() (or,
 * @planar, ps_dataset_stream_read_planar()) would have given them; any thread. */
void             ps_dataset_stream_convert_bytes (const PsDatasetStream *stream,
                                                  const guint8          *bytes,
                                                  int                    count,
                                                  double                 scale,
                                                  gboolean               planar,
                                                  float                 *out);
/* @count images evenly spaced over the set, as ps_dataset_sample() takes them from the set
 * loaded whole (with their indices and the same values), read one by one: stored as bytes
 * when every value read is a whole number 0..255 and one is above 1, else as floats. */
PsDataset       *ps_dataset_stream_sample    (PsDatasetStream        *stream,
                                              int                     count,
                                              GError                **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsDatasetStream, ps_dataset_stream_free)

G_END_DECLS
