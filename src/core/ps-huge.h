/* ps-huge.h: large buffers on transparent huge pages. The engine's big buffers (a plan's
 * layer outputs, a set's caches, the readers' chunks) are walked image after image; with
 * 4 KiB pages, each page costs a TLB miss, which a virtual machine pays twice (its own page
 * tables, then the host's). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @bytes, NULL when there is not enough memory; from 2 MiB on, aligned to a huge page and
 * marked for huge pages (a hint: without them it is ordinary memory). Freed with g_free(). */
gpointer  ps_huge_try_alloc  (gsize  bytes);
/* The same, aborting as g_malloc() does when there is not enough memory. */
gpointer  ps_huge_alloc      (gsize  bytes);

G_END_DECLS
