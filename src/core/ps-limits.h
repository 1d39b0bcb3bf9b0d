/* ps-limits.h: the largest sizes Prunescope accepts from a file, checked before anything
 * is allocated. A file is hostile until proven otherwise: what it declares (dimensions,
 * counts, nesting) is compared with these first, in 64-bit arithmetic, and a file beyond
 * them is refused with PS_ERROR_LIMIT. They are generous for real use (the lab's DeepID:
 * 55x47x3 inputs, 1283 classes, tens of thousands of images; ImageNet-sized 224x224
 * networks such as VGG-16 or ResNet-50 fit) and keep memory bounded. */
#pragma once

#include <glib.h>

#include "ps-error.h"

G_BEGIN_DECLS

/* Images and model inputs: height and width. */
#define PS_LIMIT_IMAGE_SIDE        8192
/* Channels of a layer (filters, units, classes). */
#define PS_LIMIT_CHANNELS          (1 << 20)
/* Values of one layer's output for one image (64 MB of floats). */
#define PS_LIMIT_TENSOR            ((gint64) 1 << 24)
/* Work of one layer for one image: a convolution's unrolled patches, a pooling's window
 * reads (256 MB of floats); bounds memory and time alike. */
#define PS_LIMIT_LAYER_WORK        ((gint64) 1 << 26)
/* Every layer's output for one image plus the largest unrolled patches (256 MB). A batch
 * of inference multiplies this by its size (32 or 64 images). */
#define PS_LIMIT_ACTIVATIONS       ((gint64) 1 << 26)
/* Weights of one layer (VGG-16's first dense layer has 103 M) and of a whole model. */
#define PS_LIMIT_LAYER_WEIGHTS     ((gint64) 1 << 27)
#define PS_LIMIT_MODEL_WEIGHTS     ((gint64) 1 << 28)
#define PS_LIMIT_LAYERS            4096
/* A data set: images, and pixel values in all (512 MB at 8 bits per value, 2 GB as
 * floats when the values are not whole numbers 0..255). */
#define PS_LIMIT_SET_IMAGES        ((gint64) 1 << 24)
#define PS_LIMIT_SET_VALUES        ((gint64) 1 << 29)
/* Keras model_config text, and how deep its JSON may nest (Keras needs about 8). */
#define PS_LIMIT_CONFIG_BYTES      (16 << 20)
#define PS_LIMIT_JSON_DEPTH        64
/* Strings in one attribute (layer_names, weight_names, ...). */
#define PS_LIMIT_NAMES             65536

/* a * b, or -1 when either is negative or the product passes @limit. */
static inline gint64
ps_limit_mul (gint64 a, gint64 b, gint64 limit)
{
  if (a < 0 || b < 0 || (b != 0 && a > limit / b) || a * b > limit)
    return -1;
  return a * b;
}

G_END_DECLS
