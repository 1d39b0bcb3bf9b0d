/* fuzz-g.c: ps_repaired_load on any HDF5 bytes (the seeds are G files): B' as a Keras
 * model, then the "prunescope" group with B's weights and what was pruned */
#define G_LOG_DOMAIN "fuzz-g"

#include "ps-fuzz.h"
#include "ps-repaired.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsRepaired) g = NULL;
  const char *path;

  ps_fuzz_init ();
  path = ps_fuzz_write (data, size, "g.h5");
  g = ps_repaired_load (path, &error);
  ps_fuzz_check_handles ();
  if (g == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  ps_fuzz_exercise_repaired (g);
  return 0;
}
