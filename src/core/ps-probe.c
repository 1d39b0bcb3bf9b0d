/* ps-probe.c: model files read by a child first (see ps-probe.h). The child is the same
 * program, started as "PROGRAM --ps-probe-model PATH"; it prints one line on stdout,
 * "ok" or "error MESSAGE". Anything else (a signal, a sanitizer's exit, no line, no end
 * within the time limit) means the library failed on the file. */
#define G_LOG_DOMAIN "ps-probe"

#include "ps-probe.h"
#include "ps-error.h"
#include "ps-file.h"
#include "ps-model.h"
#include "ps-repaired.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROBE_ARG "--ps-probe-model"
/* Reading the largest real model takes well under a second. */
#define PROBE_SECONDS 10

typedef struct {
  char *stamp;    /* size, mtime and inode when probed */
  char *message;  /* the error, NULL when the file read fine */
} Probed;

static char *probe_exe;          /* set when probing is enabled */
static GMutex probed_lock;
static GHashTable *probed;       /* path -> Probed */

gboolean
ps_probe_enabled (void)
{
  return probe_exe != NULL;
}

static int
child_main (const char *path)
{
  g_autoptr (GError) error = NULL;
  gboolean ok;

  if (ps_repaired_file_is_g (path))
    {
      g_autoptr (PsRepaired) g = ps_repaired_load (path, &error);
      ok = g != NULL;
    }
  else
    {
      g_autoptr (PsModel) m = ps_model_load (path, &error);
      ok = m != NULL;
    }
  if (ok)
    printf ("ok\n");
  else
    printf ("error %s\n", error->message);
  fflush (stdout);
  return 0;
}

gboolean
ps_probe_handle_args (int argc, char **argv, int *status)
{
  if (argc == 3 && g_str_equal (argv[1], PROBE_ARG))
    {
      *status = child_main (argv[2]);
      return TRUE;
    }
  if (probe_exe == NULL)
    probe_exe = g_file_read_link ("/proc/self/exe", NULL);
  return FALSE;
}

static void
probed_free (gpointer data)
{
  Probed *p = data;

  g_free (p->stamp);
  g_free (p->message);
  g_free (p);
}

/* TRUE when @path was probed as it is now; *@message is then its error or NULL. */
static gboolean
probed_before (const char *path, const char *stamp, char **message)
{
  const Probed *seen;
  gboolean hit;

  g_mutex_lock (&probed_lock);
  seen = probed ? g_hash_table_lookup (probed, path) : NULL;
  hit = seen != NULL && g_str_equal (seen->stamp, stamp);
  *message = hit ? g_strdup (seen->message) : NULL;
  g_mutex_unlock (&probed_lock);
  return hit;
}

static void
remember (const char *path, const char *stamp, const GError *error)
{
  Probed *p = g_new0 (Probed, 1);

  p->stamp = g_strdup (stamp);
  p->message = error ? g_strdup (error->message) : NULL;
  g_mutex_lock (&probed_lock);
  if (probed == NULL)
    probed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, probed_free);
  g_hash_table_replace (probed, g_strdup (path), p);
  g_mutex_unlock (&probed_lock);
}

/* Reads the child's stdout until it closes or @deadline (monotonic µs) passes. */
static gboolean
read_until (int fd, GString *out, gint64 deadline)
{
  char buf[4096];

  for (;;)
    {
      struct pollfd p = { fd, POLLIN, 0 };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t got;

      if (left <= 0)
        return FALSE;
      if (poll (&p, 1, (int) MIN (left, 1000)) < 0 && errno != EINTR)
        return FALSE;
      if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      got = read (fd, buf, sizeof buf);
      if (got > 0 && out->len < 65536)
        g_string_append_len (out, buf, got);
      else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
        return TRUE;
    }
}

static int
limit_seconds (void)
{
  const char *env = g_getenv ("PRUNESCOPE_PROBE_SECONDS");
  int s = env ? atoi (env) : 0;

  return s > 0 ? s : PROBE_SECONDS;
}

static gboolean probe (const char *path, GError **error);

gboolean
ps_probe_model_file (const char *path, GError **error)
{
  g_autofree char *stamp = NULL, *message = NULL;
  g_autoptr (GError) local = NULL;

  if (probe_exe == NULL || (stamp = ps_file_stamp (path)) == NULL)
    return TRUE;
  if (probed_before (path, stamp, &message))
    {
      if (message == NULL)
        return TRUE;
      g_set_error_literal (error, PS_ERROR, PS_ERROR_FORMAT, message);
      return FALSE;
    }
  if (probe (path, &local))
    {
      remember (path, stamp, NULL);
      return TRUE;
    }
  remember (path, stamp, local);
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

static gboolean
probe (const char *path, GError **error)
{
  const char *argv[] = { probe_exe, PROBE_ARG, path, NULL };
  /* the probe does no BLAS: OpenBLAS need not start (and spin) threads in it */
  g_auto (GStrv) envp = g_environ_setenv (g_get_environ (), "OPENBLAS_NUM_THREADS", "1", TRUE);
  g_autoptr (GString) out = g_string_new (NULL);
  g_autoptr (GError) spawn_error = NULL;
  int seconds = limit_seconds (), fd = -1, status = 0;
  gboolean finished;
  GPid pid;

  if (!g_spawn_async_with_pipes (NULL, (char **) argv, envp,
                                 G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL,
                                 NULL, NULL, &pid, NULL, &fd, NULL, &spawn_error))
    {
      g_warning ("cannot start a probe for %s: %s", path, spawn_error->message);
      return TRUE; /* read it here, unprotected, rather than not at all */
    }
  finished = read_until (fd, out, g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC);
  close (fd);
  if (!finished)
    kill (pid, SIGKILL);
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid (pid);

  if (!finished)
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                 "%s: reading it did not finish in %d s: the HDF5 library loops on its damaged metadata",
                 path, seconds);
  else if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && g_str_equal (out->str, "ok\n"))
    return TRUE;
  else if (WIFEXITED (status) && WEXITSTATUS (status) == 0 && g_str_has_prefix (out->str, "error ")
           && g_str_has_suffix (out->str, "\n"))
    {
      g_strchomp (out->str);
      g_set_error_literal (error, PS_ERROR, PS_ERROR_FORMAT, out->str + strlen ("error "));
    }
  else
    g_set_error (error, PS_ERROR, PS_ERROR_FORMAT,
                 "%s: the HDF5 library crashed reading it (%s): its metadata is damaged", path,
                 WIFSIGNALED (status) ? g_strsignal (WTERMSIG (status)) : "abnormal exit");
  return FALSE;
}
