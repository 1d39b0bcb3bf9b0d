/* replay.c: runs a fuzz target over every file of the given corpora (files or folders),
 * without libFuzzer, so that the plain and the sanitizer builds replay the seeds and the
 * inputs that once crashed a reader. */
#define G_LOG_DOMAIN "fuzz-replay"

#include "ps-fuzz.h"

#include <stdio.h>

static int replayed;

static void
replay_file (const char *path)
{
  g_autofree char *bytes = NULL;
  g_autoptr (GError) error = NULL;
  gsize len;

  if (!g_file_get_contents (path, &bytes, &len, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      exit (1);
    }
  /* Named before it runs: a crash then says which input it was. */
  printf ("%s\n", path);
  fflush (stdout);
  LLVMFuzzerTestOneInput ((const uint8_t *) bytes, len);
  replayed++;
}

static int
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char * const *) a, *(char * const *) b);
}

static void
replay_dir (const char *path)
{
  g_autoptr (GDir) dir = g_dir_open (path, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  /* A regression folder with nothing in it yet is not kept by git. */
  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_build_filename (path, name, NULL));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    replay_file (names->pdata[i]);
}

int
main (int argc, char **argv)
{
  for (int i = 1; i < argc; i++)
    {
      if (g_file_test (argv[i], G_FILE_TEST_IS_DIR))
        replay_dir (argv[i]);
      else if (g_file_test (argv[i], G_FILE_TEST_EXISTS))
        replay_file (argv[i]);
    }
  printf ("%d inputs replayed\n", replayed);
  /* No input at all means the seed generator broke, not that the reader is fine. */
  return replayed > 0 ? 0 : 1;
}
