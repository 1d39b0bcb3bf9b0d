/* ps-layer.h: one layer of a Keras functional graph, weights in Keras layouts */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PS_MAX_INPUTS 8

typedef enum {
  PS_LAYER_INPUT,
  PS_LAYER_CONV2D,
  PS_LAYER_MAXPOOL2D,
  PS_LAYER_DENSE,
  PS_LAYER_FLATTEN,
  PS_LAYER_ADD,
  PS_LAYER_ACTIVATION,
  PS_LAYER_DROPOUT,
} PsLayerKind;

typedef enum {
  PS_ACT_LINEAR,
  PS_ACT_RELU,
  PS_ACT_SOFTMAX,
} PsActivation;

/* Activations are NHWC; a Dense output is 1 x 1 x units. */
typedef struct {
  int h, w, c;
} PsShape;

typedef struct {
  char         *name;
  PsLayerKind   kind;
  PsActivation  activation;
  int           n_inputs;
  int           inputs[PS_MAX_INPUTS]; /* indices of earlier layers in the model */
  PsShape       in;                    /* shape of inputs[0] */
  PsShape       out;
  int           kh, kw;                /* conv kernel or pool window */
  int           sh, sw;                /* strides */
  gboolean      same;                  /* "same" padding, else "valid" */
  int           pad_top, pad_left;
  double        rate;                  /* dropout rate */
  float        *kernel;                /* conv (kh,kw,in,out), dense (in,out) */
  float        *bias;                  /* out channels; zeros when use_bias is false */
  gboolean      use_bias;
  gsize         kernel_len;
  gsize         bias_len;
} PsLayer;

const char   *ps_layer_kind_name      (PsLayerKind      kind);
const char   *ps_activation_name      (PsActivation     act);
gboolean      ps_activation_from_name (const char      *name,
                                       PsActivation    *act);
gboolean      ps_layer_has_weights    (const PsLayer   *layer);
gsize         ps_shape_size           (PsShape          s);
void          ps_layer_free           (PsLayer         *layer);

G_END_DECLS
