/* ps-layer.c: names and bookkeeping of layer kinds */
#define G_LOG_DOMAIN "ps-layer"

#include "ps-layer.h"

const char *
ps_layer_kind_name (PsLayerKind kind)
{
  static const char *names[] = {
    "InputLayer", "Conv2D", "MaxPooling2D", "Dense", "Flatten", "Add", "Activation", "Dropout",
    "Affine", "AveragePooling2D", "GlobalAveragePooling2D", "Unary", "Concatenate",
  };

  g_return_val_if_fail (kind <= PS_LAYER_CONCAT, "?");
  return names[kind];
}

const char *
ps_activation_name (PsActivation act)
{
  switch (act)
    {
    case PS_ACT_RELU: return "relu";
    case PS_ACT_SOFTMAX: return "softmax";
    case PS_ACT_LINEAR:
    default: return "linear";
    }
}

gboolean
ps_activation_from_name (const char *name, PsActivation *act)
{
  if (g_strcmp0 (name, "linear") == 0 || name == NULL)
    *act = PS_ACT_LINEAR;
  else if (g_str_equal (name, "relu"))
    *act = PS_ACT_RELU;
  else if (g_str_equal (name, "softmax"))
    *act = PS_ACT_SOFTMAX;
  else
    return FALSE;
  return TRUE;
}

gboolean
ps_layer_has_weights (const PsLayer *layer)
{
  return layer->kind == PS_LAYER_CONV2D || layer->kind == PS_LAYER_DENSE;
}

gsize
ps_shape_size (PsShape s)
{
  return (gsize) s.h * s.w * s.c;
}

void
ps_layer_free (PsLayer *layer)
{
  if (layer == NULL)
    return;
  g_free (layer->name);
  g_free (layer->kernel);
  g_free (layer->bias);
  g_free (layer);
}
