/* fuzz-model.c: ps_model_load on any HDF5 bytes (full Keras models, weights-only files,
 * G files: the corpus decides which parts of the reader the fuzzer starts from) */
#define G_LOG_DOMAIN "fuzz-model"

#include "ps-fuzz.h"
#include "ps-repair.h"

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
  if (ps_repair_is_g (m))
    {
      int n = 0;
      const int *ch = ps_repair_channels (m, &n);
      g_assert (ps_repair_layer (m) != NULL && ps_repair_original (m) != NULL);
      g_assert (n == 0 || ch != NULL);
      ps_fuzz_exercise_model (ps_repair_original (m));
    }
  ps_fuzz_exercise_model (m);
  return 0;
}
