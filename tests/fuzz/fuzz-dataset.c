/* fuzz-dataset.c: ps_dataset_load on any HDF5 bytes */
#define G_LOG_DOMAIN "fuzz-dataset"

#include "ps-fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsDataset) ds = NULL;
  const char *path;

  ps_fuzz_init ();
  path = ps_fuzz_write (data, size, "data.h5");
  ds = ps_dataset_load (path, &error);
  ps_fuzz_check_handles ();
  if (ds == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  ps_fuzz_exercise_dataset (ds);
  return 0;
}
