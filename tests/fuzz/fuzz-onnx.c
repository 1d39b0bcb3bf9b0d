/* fuzz-onnx.c: bytes straight into the ONNX reader; what it accepts is run once */
#define G_LOG_DOMAIN "fuzz-onnx"

#include "ps-fuzz.h"
#include "ps-onnx.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;

  ps_fuzz_init ();
  bytes = g_bytes_new (data, size);
  m = ps_onnx_load_bytes (bytes, "fuzz.onnx", &error);
  if (m == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  ps_fuzz_exercise_model (m);
  return 0;
}
