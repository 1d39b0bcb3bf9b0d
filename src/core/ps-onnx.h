/* ps-onnx.h: ONNX models in (a graph translated to a PsModel) and G out (one ONNX graph) */
#pragma once

#include "ps-model.h"
#include "ps-repaired.h"
#include "ps-sweep.h"

G_BEGIN_DECLS

/* Limits on what an ONNX file may declare, checked before anything is allocated. */
#define PS_ONNX_MAX_FILE      ((gsize) 1 << 31)  /* bytes */
#define PS_ONNX_MAX_DIM       (1 << 16)          /* one dimension of a tensor */
#define PS_ONNX_MAX_ELEMENTS  ((gsize) 1 << 28)  /* one tensor (per image for activations) */
#define PS_ONNX_MAX_NODES     100000
#define PS_ONNX_MAX_ACTIVATIONS ((gsize) 1 << 24)  /* all layers' outputs of one image */
#define PS_ONNX_MAX_PATCHES   ((gsize) 1 << 25)   /* a convolution's im2col of one image */

/* TRUE when @path names an ONNX file (by its extension, or its first bytes). */
gboolean  ps_onnx_is_onnx  (const char  *path);
/* Reads an ONNX model (for a G written by ps_onnx_save_g(), its B'). */
PsModel  *ps_onnx_load     (const char  *path,
                            GError     **error);
/* Reads a G written by ps_onnx_save_g(). */
PsRepaired *ps_onnx_load_g (const char  *path,
                            GError     **error);
gboolean  ps_onnx_file_is_g (const char *path);
/* The same from the file's bytes; @name goes in messages. */
PsModel  *ps_onnx_load_bytes (GBytes    *bytes,
                              const char *name,
                              GError    **error);

/* What a G records beyond its networks. */
typedef struct {
  const char        *layer;       /* the pruned layer (an ONNX tensor name) */
  const int         *channels;    /* pruned channels in pruning order */
  int                n_pruned;
  double             drop;        /* X, NAN when chosen by channel count */
  const PsSweepStep *metrics;     /* the sweep's row at this step, or NULL */
} PsOnnxPruning;

/* Writes G as one ONNX graph computing G's class (B and B' share everything below the
 * pruned tensor), or with @b_prime_only B' alone. @model must have been read from ONNX. */
gboolean  ps_onnx_save_g   (const PsModel       *model,
                            const PsOnnxPruning *pruning,
                            gboolean             b_prime_only,
                            const char          *path,
                            GError             **error);

G_END_DECLS
