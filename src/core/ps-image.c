/* ps-image.c: image files through GdkPixbuf (no GTK) */
#define G_LOG_DOMAIN "ps-image"

#include "ps-image.h"
#include "ps-h5.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <string.h>

guint8 *
ps_image_load_rgb (const char *path, int h, int w, GError **error)
{
  g_autoptr (GdkPixbuf) pb = NULL;
  g_autoptr (GError) local = NULL;
  const guint8 *px;
  guint8 *out;
  int stride, nch;

  pb = gdk_pixbuf_new_from_file (path, &local);
  if (pb == NULL)
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FORMAT, "%s: not a readable image (%s)",
                   path, local->message);
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
