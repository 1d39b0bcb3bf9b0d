/* ps-huge.c: large buffers on transparent huge pages */
#define _DEFAULT_SOURCE /* madvise() */
#define G_LOG_DOMAIN "ps-huge"

#include "ps-huge.h"

#include <stdlib.h>
#include <sys/mman.h>

/* The huge page of x86-64 and of arm64 with 4 KiB pages. */
#define HUGE_PAGE ((gsize) 2 << 20)

gpointer
ps_huge_try_alloc (gsize bytes)
{
  gsize whole;
  void *p;

  if (bytes < HUGE_PAGE)
    return g_try_malloc (MAX (bytes, 1));
  if (bytes > G_MAXSIZE - HUGE_PAGE)
    return NULL;
  /* whole huge pages: C's aligned_alloc() wants a multiple of the alignment */
  whole = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
  if ((p = aligned_alloc (HUGE_PAGE, whole)) == NULL)
    return NULL;
#ifdef MADV_HUGEPAGE
  /* only a hint: where the kernel has no huge pages to give, nothing changes */
  madvise (p, whole, MADV_HUGEPAGE);
#endif
  return p;
}

gpointer
ps_huge_alloc (gsize bytes)
{
  gpointer p = ps_huge_try_alloc (bytes);

  if (p == NULL)
    g_error ("%s: failed to allocate %" G_GSIZE_FORMAT " bytes", G_STRLOC, bytes);
  return p;
}
