/* ps-idx.h: IDX files (the MNIST family's format), plain or gzip-compressed */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* An unsigned-byte IDX array: dims[0] x dims[1] x ... */
typedef struct _PsIdx {
  int      n_dims;
  int      dims[4];
  guint8  *data;
  gsize    len;    /* product of dims */
} PsIdx;

/* Reads a whole IDX file of unsigned bytes (".gz" files through zlib). Errors name @path. */
PsIdx *ps_idx_load (const char    *path,
                    GCancellable  *cancellable,
                    GError       **error);
void   ps_idx_free (PsIdx         *idx);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsIdx, ps_idx_free)

G_END_DECLS
