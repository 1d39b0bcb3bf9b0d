/* ps-model.h: a network (functional graph + weights) read from Keras HDF5 or ONNX */
#pragma once

#include "ps-layer.h"

G_BEGIN_DECLS

typedef struct _PsModel {
  PsLayer     **layers;       /* in topological order */
  int           n_layers;
  int           input;        /* index of the InputLayer */
  int           output;       /* index of the output layer */
  int           n_classes;
  double        input_scale;  /* pixels are multiplied by this before the network */
  gboolean      scale_recorded; /* the file said which scale it wants */
  char         *config_json;  /* Keras model_config, kept to write the model back */
  char         *keras_version;
  char         *backend;
  char         *path;
  gboolean      weights_only; /* topology came from the built-in DeepID */
  GBytes       *onnx;         /* the ONNX file it was read from (G is written from it) */
  char        **aliases;      /* NULL-terminated pairs (name, layer name): ONNX node names */
} PsModel;

PsModel  *ps_model_load             (const char     *path,
                                     GError        **error);
PsModel  *ps_model_new_from_config  (const char     *config_json,
                                     GError        **error);
PsModel  *ps_model_copy             (const PsModel  *model);
void      ps_model_free             (PsModel        *model);
int       ps_model_find_layer       (const PsModel  *model,
                                     const char     *name);
int       ps_model_last_pool        (const PsModel  *model);
/* The layer the sweep prunes by default: the last pooling layer of a Keras model, the last
 * feature map before global pooling / flatten of an ONNX one. */
int       ps_model_default_layer    (const PsModel  *model);
/* A feature map: a layer's output with a channel axis (channels x height x width), not the
 * input. */
gboolean  ps_model_is_feature_map   (const PsModel  *model,
                                     int             layer);
/* Whether everything the output depends on comes through @layer, as the sweep needs (else
 * an error naming the layer that goes around it). */
gboolean  ps_model_layer_is_cut     (const PsModel  *model,
                                     int             layer,
                                     GError        **error);
/* A feature map the sweep can prune: `info` lists these, the application offers them. */
gboolean  ps_model_is_prunable      (const PsModel  *model,
                                     int             layer);
gsize     ps_model_n_params         (const PsModel  *model);
gboolean  ps_model_check_weights    (const PsModel  *model,
                                     GError        **error);
gboolean  ps_model_save             (const PsModel  *model,
                                     const char     *path,
                                     GError        **error);
/* Writes the Keras layout (attributes, model_weights) into an open file. */
gboolean  _ps_model_write_keras     (const PsModel  *model,
                                     gint64          file,
                                     GError        **error);

/* The DeepID topology of the lab's architecture.py, as Keras model_config JSON. */
char     *ps_deepid_config          (int             n_classes);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PsModel, ps_model_free)

G_END_DECLS
