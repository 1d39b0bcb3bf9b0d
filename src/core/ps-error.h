/* ps-error.h: the engine's error domain, for every problem a file or an argument can have */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define PS_ERROR (ps_error_quark ())

typedef enum {
  PS_ERROR_FILE,        /* cannot open, read or write a file */
  PS_ERROR_FORMAT,      /* the file is readable but not what we expect */
  PS_ERROR_UNSUPPORTED, /* a layer type or option we do not run */
  PS_ERROR_MISMATCH,    /* shapes or classes disagree between model and data */
  PS_ERROR_LIMIT,       /* a declared size beyond what Prunescope accepts (see ps-limits.h) */
} PsErrorCode;

GQuark ps_error_quark (void);

G_END_DECLS
