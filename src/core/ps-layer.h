/* ps-layer.h: one layer of a network graph (Keras, or ONNX translated to it), weights in
 * Keras layouts */
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
  /* kinds read from ONNX graphs (forward in ps-layer-ops.c) */
  PS_LAYER_AFFINE,         /* y = x * kernel[c] + bias[c] (or x / kernel[c] + bias[c]):
                            * BatchNormalization, arithmetic with constants */
  PS_LAYER_AVGPOOL2D,
  PS_LAYER_GLOBAL_AVGPOOL, /* out 1 x 1 x c */
  PS_LAYER_UNARY,          /* elementwise, see PsUnary */
  PS_LAYER_CONCAT,         /* along channels */
} PsLayerKind;

typedef enum {
  PS_UNARY_LEAKY_RELU,     /* x < 0 ? alpha * x : x */
  PS_UNARY_CLIP,           /* clamp to [lo, hi] */
  PS_UNARY_SIGMOID,
} PsUnary;

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
  /* ONNX only (zero for Keras layers, meaning 1 / symmetric / unused) */
  int           groups;                /* conv: kernel is (kh,kw,in/groups,out) */
  int           dh, dw;                /* conv dilations */
  int           pad_bottom, pad_right; /* implied by the output size; kept to write back */
  gboolean      count_pad;             /* average pool divides by the whole window */
  gboolean      divide;                /* affine divides by kernel[c] */
  PsUnary       unary;
  float         alpha, lo, hi;         /* leaky relu slope, clip bounds */
  int           rank;                  /* 4 for a feature map (N,C,H,W), 2 for (N,K) */
  int           in_c[PS_MAX_INPUTS];   /* concat: channels of each input */
} PsLayer;

const char   *ps_layer_kind_name      (PsLayerKind      kind);
const char   *ps_activation_name      (PsActivation     act);
gboolean      ps_activation_from_name (const char      *name,
                                       PsActivation    *act);
gboolean      ps_layer_has_weights    (const PsLayer   *layer);
gsize         ps_shape_size           (PsShape          s);
void          ps_layer_free           (PsLayer         *layer);

G_END_DECLS
