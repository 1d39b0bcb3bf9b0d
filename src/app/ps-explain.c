/* ps-explain.c: reads the facts out of an error message (the file, HDF5's end-of-file
 * figures) and says them plainly. Falls back to a general sentence, never to a guess. */
#define G_LOG_DOMAIN "ps-explain"

#include "config.h"

#include <gio/gio.h>
#include <glib/gi18n.h>
#include <stdlib.h>
#include <string.h>

#include "ps-error.h"
#include "ps-explain.h"

/* The number after @key ("eof = 200000"), or -1. */
static gint64
number_after (const char *message, const char *key)
{
  const char *p = message;

  while ((p = strstr (p, key)) != NULL)
    {
      /* "eof" must not match inside "stored_eof". */
      if (p == message || !(g_ascii_isalnum (p[-1]) || p[-1] == '_'))
        {
          p += strlen (key);
          while (*p == ' ' || *p == '=')
            p++;
          return g_ascii_isdigit (*p) ? g_ascii_strtoll (p, NULL, 10) : -1;
        }
      p += strlen (key);
    }
  return -1;
}

/* The file an error names: messages start with "PATH: ". */
static char *
file_name (const char *message)
{
  const char *colon = strstr (message, ": ");
  g_autofree char *path = colon ? g_strndup (message, colon - message) : NULL;

  if (path == NULL || strchr (path, '/') == NULL)
    return NULL;
  return g_path_get_basename (path);
}

char *
ps_explain_error (const GError *error)
{
  const char *m = error->message;
  g_autofree char *name = file_name (m);
  const char *file = name ? name : _("The file");
  gint64 eof = number_after (m, "eof"), stored = number_after (m, "stored_eof");
  const char *cut, *of;

  if (strstr (m, "truncated") != NULL && eof >= 0 && stored > eof)
    {
      g_autofree char *have = g_format_size (eof), *want = g_format_size (stored);
      return g_strdup_printf (_("%s is truncated: it has %s of %s. Copy or download it again."),
                              file, have, want);
    }
  /* The reader's own figures: "the file is truncated: 200.0 kB of 1.6 MB". */
  if ((cut = strstr (m, "truncated: ")) != NULL && (of = strstr (cut, " of ")) != NULL)
    {
      g_autofree char *have = g_strndup (cut + strlen ("truncated: "), of - cut - strlen ("truncated: "));
      g_autofree char *want = g_strdup (of + strlen (" of "));

      g_strstrip (want);
      return g_strdup_printf (_("%s is truncated: it has %s of %s. Copy or download it again."),
                              file, have, want);
    }
  if (strstr (m, "truncated") != NULL)
    return g_strdup_printf (_("%s is truncated. Copy or download it again."), file);
  if (strstr (m, "signature not found") != NULL || strstr (m, "not a readable HDF5") != NULL)
    return g_strdup_printf (_("%s is not an HDF5 file."), file);
  if (strstr (m, "changed on disk") != NULL || strstr (m, "changed while it was read") != NULL)
    return g_strdup_printf (_("%s changed on disk since it was opened. Open it again."), file);
  if (g_error_matches (error, PS_ERROR, PS_ERROR_MISMATCH) || strstr (m, "does not fit") != NULL
      || strstr (m, "the model takes") != NULL)
    return g_strdup_printf (_("%s does not fit the model; what was loaded before is kept."), file);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) || strstr (m, "No such file") != NULL)
    return g_strdup_printf (_("%s was not found."), file);
  if (g_error_matches (error, PS_ERROR, PS_ERROR_UNSUPPORTED))
    return g_strdup_printf (_("%s uses something Prunescope cannot run."), file);
  if (g_error_matches (error, PS_ERROR, PS_ERROR_FORMAT) || g_error_matches (error, PS_ERROR, PS_ERROR_LIMIT))
    return g_strdup_printf (_("%s is not a model or image set Prunescope can read."), file);
  return g_strdup_printf (_("%s could not be used."), file);
}
