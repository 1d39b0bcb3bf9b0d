/* ps-file.h: what every reader and writer of files shares: inputs must be regular files,
 * outputs are written under a temporary name and renamed into place */
#pragma once

#include <gio/gio.h>

#include "ps-error.h"

G_BEGIN_DECLS

/* FALSE (with "no such file", "is a directory", "is a FIFO", ...) unless @path is an
 * existing regular file; checked before opening, so a FIFO never blocks a reader. */
gboolean  ps_file_check_regular      (const char     *path,
                                      GError        **error);

/* What identifies a regular file's version: size, modification time, inode and device
 * (a save renames a new file into place: a new inode). NULL unless @path is a regular file. */
char     *ps_file_stamp              (const char     *path);
/* The same of an open file. */
char     *ps_file_stamp_fd           (int             fd);

/* Writes @tmp_path, a new empty file beside the destination. */
typedef gboolean (*PsFileWriter)     (const char     *tmp_path,
                                      gconstpointer   data,
                                      GError        **error);
typedef gboolean (*PsStreamWriter)   (GOutputStream  *out,
                                      gconstpointer   data,
                                      GError        **error);

/* Writes @path atomically: @writer fills a temporary ".NAME.XXXXXXXX.tmp" in the same
 * folder, renamed over @path only when everything succeeded, removed otherwise, so a
 * failed write leaves the old file as it was. Temporaries of ours older than a minute
 * (an interrupted save) are removed first. Errors start with @path. */
gboolean  ps_file_write_atomic       (const char     *path,
                                      PsFileWriter    writer,
                                      gconstpointer   data,
                                      GError        **error);
/* The same for a writer of a GOutputStream. */
gboolean  ps_file_write_stream       (const char     *path,
                                      PsStreamWriter  writer,
                                      gconstpointer   data,
                                      GError        **error);
/* Writes @len bytes over the existing file @path; the error gives errno's reason. */
gboolean  ps_file_write_bytes        (const char     *path,
                                      const void     *data,
                                      gsize           len,
                                      GError        **error);
/* Removes our stale temporaries in @dir; returns how many. */
guint     ps_file_clean_stale        (const char     *dir,
                                      gint64          older_than_s);

G_END_DECLS
