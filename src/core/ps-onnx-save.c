/* ps-onnx-save.c: G (or B' alone) written as one ONNX graph */
#define G_LOG_DOMAIN "ps-onnx"

#include "ps-onnx.h"
#include "ps-error.h"
#include "onnx.pb-c.h"

gboolean
ps_onnx_save_g (const PsModel *model, const PsOnnxPruning *pruning, gboolean b_prime_only,
                const char *path, GError **error)
{
  g_set_error (error, PS_ERROR, PS_ERROR_UNSUPPORTED, "not yet");
  return FALSE;
}
