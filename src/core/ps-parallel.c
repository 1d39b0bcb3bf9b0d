/* ps-parallel.c: a minimal task loop over worker threads */
#define G_LOG_DOMAIN "ps-parallel"

#include "ps-parallel.h"

#include <cblas.h>
#include <stdlib.h>

typedef struct {
  int            n_tasks;
  int            next;
  PsParallelFunc func;
  gpointer       user_data;
} Job;

typedef struct {
  Job *job;
  int  worker;
} Worker;

/* OpenBLAS's own server threads, absent from its serial builds. Started, they spin on
 * sched_yield for about 0.1 s before they sleep, taking a core from the workers. */
extern int blas_thread_shutdown_ (void) __attribute__ ((weak));

int
ps_parallel_n_workers (void)
{
  static gsize n = 0;

  if (g_once_init_enter (&n))
    {
      const char *env = g_getenv ("PRUNESCOPE_THREADS");
      int v = env ? atoi (env) : (int) g_get_num_processors ();
      /* BLAS runs inside the workers, one thread each: OpenBLAS's threads go at once (a
       * probe's fork stops them, and OpenBLAS starts them again on its next call) */
      openblas_set_num_threads (1);
      if (blas_thread_shutdown_ != NULL)
        blas_thread_shutdown_ ();
      g_once_init_leave (&n, CLAMP (v, 1, 64));
    }
  return (int) n;
}

static gpointer
worker_main (gpointer data)
{
  Worker *w = data;
  Job *job = w->job;
  int task;

  while ((task = g_atomic_int_add (&job->next, 1)) < job->n_tasks)
    job->func (w->worker, task, job->user_data);
  return NULL;
}

void
ps_parallel_for (int n_tasks, PsParallelFunc func, gpointer user_data)
{
  int n = MIN (ps_parallel_n_workers (), MAX (n_tasks, 1));
  Job job = { n_tasks, 0, func, user_data };
  g_autofree Worker *workers = g_new0 (Worker, n);
  g_autofree GThread **threads = g_new0 (GThread *, n);

  for (int i = 0; i < n; i++)
    workers[i] = (Worker) { &job, i };
  for (int i = 1; i < n; i++)
    threads[i] = g_thread_new ("ps-worker", worker_main, &workers[i]);
  worker_main (&workers[0]);
  for (int i = 1; i < n; i++)
    g_thread_join (threads[i]);
}
