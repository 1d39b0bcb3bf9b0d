/* ps-error.c: the engine's error domain */
#define G_LOG_DOMAIN "ps-error"

#include "ps-error.h"

G_DEFINE_QUARK (ps-error-quark, ps_error)
