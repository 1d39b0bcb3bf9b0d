/* ps-idx.c: IDX reading. The header is four magic bytes (0, 0, type, rank) and one
 * big-endian 32-bit size per dimension; the data follows. gzip is GLib's zlib converter. */
#define G_LOG_DOMAIN "ps-idx"

#include "ps-idx.h"
#include "ps-file.h"
#include "ps-limits.h"

#define IDX_UBYTE 0x08

void
ps_idx_free (PsIdx *idx)
{
  if (idx == NULL)
    return;
  g_free (idx->data);
  g_free (idx);
}

static GInputStream *
open_stream (const char *path, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) raw = g_file_read (file, cancellable, error);
  g_autoptr (GZlibDecompressor) gunzip = NULL;

  if (raw == NULL)
    return NULL;
  if (!g_str_has_suffix (path, ".gz"))
    return G_INPUT_STREAM (g_steal_pointer (&raw));
  gunzip = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
  return g_converter_input_stream_new (G_INPUT_STREAM (raw), G_CONVERTER (gunzip));
}

/* Reads exactly @len bytes; a short read is a truncated file. */
static gboolean
read_exactly (GInputStream *in, void *buf, gsize len, const char *what,
              GCancellable *cancellable, GError **error)
{
  gsize got = 0;

  g_autoptr (GError) local = NULL;

  if (!g_input_stream_read_all (in, buf, len, &got, cancellable, &local))
    {
      /* zlib's own words ("Need more input") do not say what is wrong with the file. */
      if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT))
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "truncated gzip file: it ends within %s", what);
      else if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
        g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "not a valid gzip file (%s)", local->message);
      else
        g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (got != len)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "truncated IDX file: %s has %" G_GSIZE_FORMAT " of %" G_GSIZE_FORMAT " bytes",
                   what, got, len);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_header (GInputStream *in, PsIdx *idx, GCancellable *cancellable, GError **error)
{
  guint8 magic[4], size[4];

  if (!read_exactly (in, magic, 4, "the header", cancellable, error))
    return FALSE;
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != IDX_UBYTE || magic[3] < 1 || magic[3] > 4)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                   "not an IDX file of unsigned bytes (magic %02x %02x %02x %02x)",
                   magic[0], magic[1], magic[2], magic[3]);
      return FALSE;
    }
  idx->n_dims = magic[3];
  idx->len = 1;
  for (int i = 0; i < idx->n_dims; i++)
    {
      if (!read_exactly (in, size, 4, "the header", cancellable, error))
        return FALSE;
      idx->dims[i] = (int) ((guint32) size[0] << 24 | (guint32) size[1] << 16 | (guint32) size[2] << 8 | size[3]);
      if (idx->dims[i] <= 0)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "IDX dimension %d is %d", i, idx->dims[i]);
          return FALSE;
        }
      if (ps_limit_mul (idx->len, idx->dims[i], PS_LIMIT_SET_VALUES) < 0)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_LIMIT,
                       "IDX file declares more than %" G_GINT64_FORMAT " values", PS_LIMIT_SET_VALUES);
          return FALSE;
        }
      idx->len *= idx->dims[i];
    }
  return TRUE;
}

PsIdx *
ps_idx_load (const char *path, GCancellable *cancellable, GError **error)
{
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (PsIdx) idx = g_new0 (PsIdx, 1);
  gboolean ok;

  if (!ps_file_check_regular (path, error))
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  /* GIO's message for a file it cannot open already names the file. */
  in = open_stream (path, cancellable, error);
  if (in == NULL)
    return NULL;
  ok = read_header (in, idx, cancellable, error);
  if (ok)
    {
      idx->data = g_try_malloc (idx->len);
      if (idx->data == NULL)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FILE, "not enough memory for %" G_GSIZE_FORMAT " bytes",
                       idx->len);
          ok = FALSE;
        }
    }
  ok = ok && read_exactly (in, idx->data, idx->len, "the data", cancellable, error);
  if (!ok)
    {
      g_prefix_error (error, "%s: ", path);
      return NULL;
    }
  return g_steal_pointer (&idx);
}
