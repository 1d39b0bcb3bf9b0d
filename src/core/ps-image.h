/* ps-image.h: single RGB images (PNG, JPEG) as model inputs */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Loads an RGB image of exactly @h x @w as NHWC bytes (h*w*3); anything else is an error. */
guint8 *ps_image_load_rgb (const char  *path,
                           int          h,
                           int          w,
                           GError     **error);

G_END_DECLS
