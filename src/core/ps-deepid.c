/* ps-deepid.c: the DeepID topology of the lab's architecture.py, for weights-only files */
#define G_LOG_DOMAIN "ps-model"

#include "ps-model.h"

/* Keras 2.3-style model_config; Keras loads it, and so do we, through one code path. */
char *
ps_deepid_config (int n_classes)
{
  g_autoptr (GString) s = g_string_new (NULL);
  static const struct {
    const char *name, *cls, *in, *in2, *cfg;
  } layers[] = {
    { "input", "InputLayer", NULL, NULL,
      "\"batch_input_shape\": [null, 55, 47, 3], \"dtype\": \"float32\", \"sparse\": false" },
    { "conv_1", "Conv2D", "input", NULL, "\"filters\": 20, \"kernel_size\": [4, 4]" },
    { "pool_1", "MaxPooling2D", "conv_1", NULL, NULL },
    { "conv_2", "Conv2D", "pool_1", NULL, "\"filters\": 40, \"kernel_size\": [3, 3]" },
    { "pool_2", "MaxPooling2D", "conv_2", NULL, NULL },
    { "conv_3", "Conv2D", "pool_2", NULL, "\"filters\": 60, \"kernel_size\": [3, 3]" },
    { "pool_3", "MaxPooling2D", "conv_3", NULL, NULL },
    { "conv_4", "Conv2D", "pool_3", NULL, "\"filters\": 80, \"kernel_size\": [2, 2]" },
    { "flatten_1", "Flatten", "pool_3", NULL, "\"data_format\": \"channels_last\"" },
    { "flatten_2", "Flatten", "conv_4", NULL, "\"data_format\": \"channels_last\"" },
    { "fc_1", "Dense", "flatten_1", NULL, "\"units\": 160" },
    { "fc_2", "Dense", "flatten_2", NULL, "\"units\": 160" },
    { "add_1", "Add", "fc_1", "fc_2", NULL },
    { "activation_1", "Activation", "add_1", NULL, "\"activation\": \"relu\"" },
    { "output", "Dense", "activation_1", NULL, NULL },
  };

  g_string_append (s, "{\"class_name\": \"Model\", \"config\": {\"name\": \"model_1\", \"layers\": [");
  for (guint i = 0; i < G_N_ELEMENTS (layers); i++)
    {
      const char *cls = layers[i].cls;

      g_string_append_printf (s, "%s{\"name\": \"%s\", \"class_name\": \"%s\", \"config\": {\"name\": \"%s\", "
                              "\"trainable\": true",
                              i ? ", " : "", layers[i].name, cls, layers[i].name);
      if (g_str_equal (cls, "Conv2D"))
        g_string_append_printf (s, ", \"dtype\": \"float32\", %s, \"strides\": [1, 1], \"padding\": \"valid\", "
                                "\"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], "
                                "\"activation\": \"relu\", \"use_bias\": true", layers[i].cfg);
      else if (g_str_equal (cls, "MaxPooling2D"))
        g_string_append (s, ", \"dtype\": \"float32\", \"pool_size\": [2, 2], \"padding\": \"valid\", "
                         "\"strides\": [2, 2], \"data_format\": \"channels_last\"");
      else if (g_str_equal (cls, "Dense") && g_str_equal (layers[i].name, "output"))
        g_string_append_printf (s, ", \"dtype\": \"float32\", \"units\": %d, \"activation\": \"softmax\", "
                                "\"use_bias\": true", n_classes);
      else if (g_str_equal (cls, "Dense"))
        g_string_append_printf (s, ", \"dtype\": \"float32\", %s, \"activation\": \"linear\", \"use_bias\": true",
                                layers[i].cfg);
      else if (layers[i].cfg != NULL)
        g_string_append_printf (s, ", %s", layers[i].cfg);
      g_string_append (s, "}, \"inbound_nodes\": [");
      if (layers[i].in != NULL)
        g_string_append_printf (s, "[[\"%s\", 0, 0, {}]%s%s%s]", layers[i].in,
                                layers[i].in2 ? ", [\"" : "", layers[i].in2 ? layers[i].in2 : "",
                                layers[i].in2 ? "\", 0, 0, {}]" : "");
      g_string_append (s, "]}");
    }
  g_string_append (s, "], \"input_layers\": [[\"input\", 0, 0]], "
                   "\"output_layers\": [[\"output\", 0, 0]]}}");
  return g_string_free (g_steal_pointer (&s), FALSE);
}
