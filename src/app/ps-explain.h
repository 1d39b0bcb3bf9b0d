/* ps-explain.h: a human sentence in front of a technical error message. No GTK. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The first sentence a person reads about @error ("The file is truncated: 195 KB of 1.6 MB.");
 * the error's own message stays the technical detail. */
char *ps_explain_error (const GError *error);

G_END_DECLS
