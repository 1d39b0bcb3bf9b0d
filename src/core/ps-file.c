/* ps-file.c: regular-file checks and the one atomic writer every save goes through */
#define G_LOG_DOMAIN "ps-file"
#define _POSIX_C_SOURCE 200809L

#include "ps-file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STALE_AGE_S 60

static const char *
kind_of (mode_t mode)
{
  if (S_ISDIR (mode))
    return "is a directory, not a file";
  if (S_ISFIFO (mode))
    return "is a FIFO, not a regular file";
  if (S_ISCHR (mode) || S_ISBLK (mode))
    return "is a device, not a regular file";
  if (S_ISSOCK (mode))
    return "is a socket, not a regular file";
  return "is not a regular file";
}

static char *
stamp_of (const struct stat *st)
{
  return g_strdup_printf ("%jd:%jd.%09ld:%ju:%ju", (intmax_t) st->st_size, (intmax_t) st->st_mtim.tv_sec,
                          (long) st->st_mtim.tv_nsec, (uintmax_t) st->st_ino, (uintmax_t) st->st_dev);
}

char *
ps_file_stamp (const char *path)
{
  struct stat st;

  if (path == NULL || stat (path, &st) != 0 || !S_ISREG (st.st_mode))
    return NULL;
  return stamp_of (&st);
}

char *
ps_file_stamp_fd (int fd)
{
  struct stat st;

  if (fd < 0 || fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
    return NULL;
  return stamp_of (&st);
}

gboolean
ps_file_check_regular (const char *path, GError **error)
{
  GStatBuf st;

  if (path == NULL || path[0] == '\0')
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "empty file name");
      return FALSE;
    }
  /* stat, not open: opening a FIFO blocks until someone writes to it. */
  if (g_stat (path, &st) != 0)
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s",
                   saved == ENOENT ? "no such file" : g_strerror (saved));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s", kind_of (st.st_mode));
      return FALSE;
    }
  return TRUE;
}

/* ".NAME.XXXXXXXX.tmp", eight lower-case hex digits: the only names we ever remove. */
static gboolean
is_our_temp (const char *name)
{
  gsize len = strlen (name);
  const char *hex;

  if (len < 1 + 1 + 1 + 8 + 4 || name[0] != '.' || !g_str_has_suffix (name, ".tmp"))
    return FALSE;
  hex = name + len - 4 - 8;
  if (hex[-1] != '.')
    return FALSE;
  for (int i = 0; i < 8; i++)
    if (!g_ascii_isdigit (hex[i]) && !(hex[i] >= 'a' && hex[i] <= 'f'))
      return FALSE;
  return TRUE;
}

guint
ps_file_clean_stale (const char *dir, gint64 older_than_s)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  gint64 now = g_get_real_time () / G_USEC_PER_SEC;
  const char *name;
  guint removed = 0;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = NULL;
      GStatBuf st;

      if (!is_our_temp (name))
        continue;
      path = g_build_filename (dir, name, NULL);
      /* A save still running keeps its temporary fresh. */
      if (g_lstat (path, &st) == 0 && S_ISREG (st.st_mode)
          && now - (gint64) st.st_mtime >= older_than_s && g_unlink (path) == 0)
        removed++;
    }
  return removed;
}

static char *
create_temp (const char *dir, const char *base, GError **error)
{
  for (int attempt = 0; attempt < 16; attempt++)
    {
      char *tmp = g_strdup_printf ("%s/.%s.%08x.tmp", dir, base, g_random_int ());
      int fd = g_open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      int saved = errno;

      if (fd >= 0)
        {
          close (fd);
          return tmp;
        }
      g_free (tmp);
      if (saved != EEXIST)
        {
          g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot create a file in %s: %s",
                       dir, g_strerror (saved));
          return NULL;
        }
    }
  g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot create a temporary file in %s", dir);
  return NULL;
}

/* Data on disk before the rename, so a crash never leaves an empty file in place. */
static gboolean
sync_file (const char *path, GError **error)
{
  int fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  int r, saved;

  if (fd < 0)
    r = -1;
  else
    r = fsync (fd);
  saved = errno;
  if (fd >= 0)
    close (fd);
  if (r != 0)
    g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot write: %s", g_strerror (saved));
  return r == 0;
}

static gboolean
check_destination (const char *path, const char *dir, GError **error)
{
  GStatBuf st;

  if (path[0] == '\0' || g_str_has_suffix (path, G_DIR_SEPARATOR_S))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "not a file name");
      return FALSE;
    }
  if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot write in %s: no such directory", dir);
      return FALSE;
    }
  if (g_stat (path, &st) == 0 && !S_ISREG (st.st_mode))
    {
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "%s", kind_of (st.st_mode));
      return FALSE;
    }
  return TRUE;
}

gboolean
ps_file_write_atomic (const char *path, PsFileWriter writer, gconstpointer data,
                      GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = NULL;
  gboolean ok;

  ok = check_destination (path, dir, error);
  if (ok)
    {
      ps_file_clean_stale (dir, STALE_AGE_S);
      tmp = create_temp (dir, base, error);
      ok = tmp != NULL && writer (tmp, data, error) && sync_file (tmp, error);
    }
  if (ok && g_rename (tmp, path) != 0)
    {
      int saved = errno;
      g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot rename into place: %s",
                   g_strerror (saved));
      ok = FALSE;
    }
  if (!ok && tmp != NULL)
    g_unlink (tmp);
  if (!ok)
    g_prefix_error (error, "%s: ", path);
  return ok;
}

typedef struct {
  PsStreamWriter writer;
  gconstpointer  data;
} StreamJob;

gboolean
ps_file_write_bytes (const char *path, const void *data, gsize len, GError **error)
{
  const guint8 *p = data;
  gsize done = 0;
  int fd = g_open (path, O_WRONLY | O_TRUNC | O_CLOEXEC, 0);
  int saved = fd < 0 ? errno : 0;

  while (fd >= 0 && saved == 0 && done < len)
    {
      gssize n = write (fd, p + done, len - done);
      if (n < 0 && errno != EINTR)
        saved = errno;
      else if (n > 0)
        done += n;
    }
  if (fd >= 0 && close (fd) != 0 && saved == 0)
    saved = errno;
  if (saved != 0)
    g_set_error (error, PS_ERROR, PS_ERROR_FILE, "cannot write: %s", g_strerror (saved));
  return saved == 0;
}

/* The writer fills memory (CSV and the like are small), then plain write(2)s report the
 * reason of a failure (errno) rather than a stream's paraphrase. */
static gboolean
write_stream (const char *tmp_path, gconstpointer data, GError **error)
{
  const StreamJob *job = data;
  g_autoptr (GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autoptr (GBytes) bytes = NULL;

  if (!job->writer (mem, job->data, error) || !g_output_stream_close (mem, NULL, error))
    return FALSE;
  bytes = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (mem));
  return ps_file_write_bytes (tmp_path, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes),
                              error);
}

gboolean
ps_file_write_stream (const char *path, PsStreamWriter writer, gconstpointer data,
                      GError **error)
{
  StreamJob job = { writer, data };

  return ps_file_write_atomic (path, write_stream, &job, error);
}
