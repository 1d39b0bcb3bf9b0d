/* fuzz-idx.c: ps_idx_load on any bytes, through zlib when they start like gzip */
#define G_LOG_DOMAIN "fuzz-idx"

#include "ps-fuzz.h"
#include "ps-idx.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (PsIdx) idx = NULL;
  gboolean gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  const char *path;
  gsize len = 1;

  ps_fuzz_init ();
  path = ps_fuzz_write (data, size, gz ? "data.idx.gz" : "data.idx");
  idx = ps_idx_load (path, NULL, &error);
  if (idx == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  g_assert (idx->n_dims >= 1 && idx->n_dims <= 4);
  for (int i = 0; i < idx->n_dims; i++)
    len *= idx->dims[i];
  g_assert (len == idx->len);
  if (idx->len > 0)
    {
      volatile guint8 last = idx->data[idx->len - 1];
      (void) last;
    }
  return 0;
}
