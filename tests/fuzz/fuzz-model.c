/* fuzz-model.c: ps_model_load on any HDF5 bytes (full Keras models or weights-only files:
 * the corpus decides which parts of the reader the fuzzer starts from) */
#define G_LOG_DOMAIN "fuzz-model"

#include "ps-fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;
  const char *path;

  ps_fuzz_init ();
  path = ps_fuzz_write (data, size, "model.h5");
  m = ps_model_load (path, &error);
  ps_fuzz_check_handles ();
  if (m == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  ps_fuzz_exercise_model (m);
  return 0;
}
