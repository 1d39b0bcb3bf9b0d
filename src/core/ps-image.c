/* ps-image.c: image files through GdkPixbuf (no GTK) */
#define G_LOG_DOMAIN "ps-image"

#include "ps-image.h"
#include "ps-file.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <stdio.h>
#include <string.h>

/* Decodes through a loader, whose close reports a file that ends early: a truncated JPEG
 * or PNG is an error, not a partly grey image. */
static GdkPixbuf *
decode (const char *path, GError **error)
{
  g_autoptr (GdkPixbufLoader) loader = gdk_pixbuf_loader_new ();
  g_autoptr (GFile) file = g_file_new_for_path (path);
  g_autoptr (GFileInputStream) in = g_file_read (file, NULL, error);
  guint8 buf[65536];
  gssize n = 1;
  gboolean ok = in != NULL;

  while (ok && (n = g_input_stream_read (G_INPUT_STREAM (in), buf, sizeof buf, NULL, error)) > 0)
    ok = gdk_pixbuf_loader_write (loader, buf, n, error);
  ok = ok && n == 0;
  /* Close in every case (a loader left open warns); the first error wins. */
  if (!gdk_pixbuf_loader_close (loader, ok ? error : NULL) || !ok)
    return NULL;
  return g_object_ref (gdk_pixbuf_loader_get_pixbuf (loader));
}

/* GdkPixbuf's loaders return what they decoded of a file that ends early, so the end is
 * checked here: a PNG ends with its IEND chunk, a JPEG with its EOI marker. */
static gboolean
check_complete (const char *path, GError **error)
{
  static const guint8 png[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  static const guint8 iend[8] = { 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82 };
  guint8 head[8] = { 0 }, tail[64];
  FILE *f = fopen (path, "rb");
  long size;
  gsize len = 0;
  gboolean is_png, is_jpeg, ok = TRUE;

  if (f == NULL)
    return TRUE; /* the loader says why */
  /* Only the first and last bytes: the file may be large. */
  if (fread (head, 1, 8, f) == 8 && fseek (f, 0, SEEK_END) == 0 && (size = ftell (f)) >= 8
      && fseek (f, MAX (size - (long) sizeof tail, 0), SEEK_SET) == 0)
    len = fread (tail, 1, sizeof tail, f);
  fclose (f);
  is_png = memcmp (head, png, 8) == 0;
  is_jpeg = head[0] == 0xff && head[1] == 0xd8;
  if (is_png)
    ok = len >= 8 && memcmp (tail + len - 8, iend, 8) == 0;
  else if (is_jpeg)
    {
      /* some writers pad after the EOI marker */
      while (len > 2 && (tail[len - 1] == 0 || g_ascii_isspace (tail[len - 1])))
        len--;
      ok = len >= 2 && tail[len - 2] == 0xff && tail[len - 1] == 0xd9;
    }
  if (!ok)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "the %s image is truncated (it does not end with %s)",
                 is_png ? "PNG" : "JPEG", is_png ? "an IEND chunk" : "an end-of-image marker");
  return ok;
}

guint8 *
ps_image_load_rgb (const char *path, int h, int w, GError **error)
{
  g_autoptr (GdkPixbuf) pb = NULL;
  g_autoptr (GError) local = NULL;
  const guint8 *px;
  guint8 *out;
  int stride, nch, fw = 0, fh = 0;

  if (!ps_file_check_regular (path, &local))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s: %s", path, local->message);
      return NULL;
    }
  /* The size the header declares, before anything is decoded. */
  if (gdk_pixbuf_get_file_info (path, &fw, &fh) == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: not a readable image (PNG or JPEG)", path);
      return NULL;
    }
  if (fw != w || fh != h)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                   "%s: image is %d pixels high and %d wide, the model takes %d x %d",
                   path, fh, fw, h, w);
      return NULL;
    }
  if (!check_complete (path, &local))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: %s", path, local->message);
      return NULL;
    }
  pb = decode (path, &local);
  if (pb == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: not a readable image (%s)",
                   path, local ? local->message : "no image");
      return NULL;
    }
  if (gdk_pixbuf_get_width (pb) != w || gdk_pixbuf_get_height (pb) != h)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_MISMATCH,
                   "%s: image is %d pixels high and %d wide, the model takes %d x %d",
                   path, gdk_pixbuf_get_height (pb), gdk_pixbuf_get_width (pb), h, w);
      return NULL;
    }
  nch = gdk_pixbuf_get_n_channels (pb);
  if (gdk_pixbuf_get_colorspace (pb) != GDK_COLORSPACE_RGB || nch < 3
      || gdk_pixbuf_get_bits_per_sample (pb) != 8)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: not an 8-bit RGB image", path);
      return NULL;
    }
  /* An alpha channel is dropped; the lab's faces are opaque. */
  stride = gdk_pixbuf_get_rowstride (pb);
  px = gdk_pixbuf_read_pixels (pb);
  out = g_new (guint8, (gsize) h * w * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      memcpy (out + ((gsize) y * w + x) * 3, px + (gsize) y * stride + x * nch, 3);
  return out;
}
