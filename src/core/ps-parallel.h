/* ps-parallel.h: run numbered tasks on all cores, each worker with its own scratch */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef void (*PsParallelFunc) (int      worker,
                                int      task,
                                gpointer user_data);

/* Number of workers ps_parallel_for() uses (the machine's cores, at least 1). */
int   ps_parallel_n_workers (void);
/* Runs @func for tasks 0..@n_tasks-1; returns when all are done. BLAS is kept
 * single-threaded so that workers, not BLAS threads, share the cores. */
void  ps_parallel_for       (int            n_tasks,
                             PsParallelFunc func,
                             gpointer       user_data);

G_END_DECLS
