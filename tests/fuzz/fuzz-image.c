/* fuzz-image.c: ps_image_load_rgb on any bytes (PNG, JPEG or whatever GdkPixbuf sniffs) */
#define G_LOG_DOMAIN "fuzz-image"

#include "ps-fuzz.h"
#include "ps-image.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

/* The lab's face size: what the CLI asks for when the image is not that size. */
#define LAB_H 55
#define LAB_W 47

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *rgb = NULL;
  const char *path;
  int w = 0, h = 0;

  ps_fuzz_init ();
  path = ps_fuzz_write (data, size, "image");
  /* Ask for the size the header declares when it is plausible, so that the pixel copy
   * runs too; otherwise for the lab's size, as a model would. */
  if (gdk_pixbuf_get_file_info (path, &w, &h) == NULL || w <= 0 || h <= 0 || w > 512 || h > 512)
    w = LAB_W, h = LAB_H;
  rgb = ps_image_load_rgb (path, h, w, &error);
  if (rgb == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  /* Every byte is read, so that ASan sees any short buffer. */
  volatile guint sum = 0;
  for (gsize i = 0; i < (gsize) h * w * 3; i++)
    sum += rgb[i];
  (void) sum;
  return 0;
}
