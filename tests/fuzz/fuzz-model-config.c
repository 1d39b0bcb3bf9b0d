/* fuzz-model-config.c: bytes straight into ps_model_new_from_config as Keras JSON */
#define G_LOG_DOMAIN "fuzz-model-config"

#include "ps-fuzz.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *json = g_strndup ((const char *) data, size);
  g_autoptr (GError) error = NULL;
  g_autoptr (PsModel) m = NULL;

  ps_fuzz_init ();
  m = ps_model_new_from_config (json, &error);
  if (m == NULL)
    {
      ps_fuzz_check_error (error);
      return 0;
    }
  /* A config has no weights: zeros are enough to run the shapes it declares. */
  if (ps_model_n_params (m) <= PS_FUZZ_RUN_MAX_PARAMS)
    for (int i = 0; i < m->n_layers; i++)
      if (ps_layer_has_weights (m->layers[i]))
        {
          PsLayer *l = m->layers[i];
          g_free (l->kernel);
          g_free (l->bias);
          l->kernel = g_new0 (float, l->kernel_len);
          l->bias = g_new0 (float, l->bias_len);
        }
  ps_fuzz_exercise_model (m);
  return 0;
}
