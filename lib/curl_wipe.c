/* libcurl's allocators for applications that ask for them (PHC_GLOBAL_WIPE_CURL_FREES; phc
 * and phc-agent do): every block libcurl frees is wiped first. libcurl's buffers hold request
 * and response headers (the Basic credentials of a token request, bearer tokens) and bodies;
 * freed, they would stay readable in the heap until reused. They live in the library because
 * it is the library that loads and initialises libcurl (curl_load.c), at its first use.
 *
 * The block's size comes from malloc_usable_size (glibc; ASan and valgrind answer it too),
 * so no header of our own is needed and a pointer from these functions is an ordinary
 * malloc pointer. */
#include "curl_wipe.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static unsigned long wiped_frees; /* for the tests; atomic */

static void wipe_free(void *p)
{
    if (!p)
        return;
    explicit_bzero(p, malloc_usable_size(p));
    __atomic_add_fetch(&wiped_frees, 1, __ATOMIC_RELAXED);
    free(p);
}

static void *wipe_malloc(size_t n)
{
    return malloc(n);
}

static void *wipe_calloc(size_t n, size_t size)
{
    return calloc(n, size);
}

/* realloc would free the old block unwiped: copy into a new block instead. */
static void *wipe_realloc(void *p, size_t n)
{
    if (!p)
        return malloc(n);
    if (n == 0) {
        wipe_free(p);
        return NULL;
    }
    size_t old = malloc_usable_size(p);
    void *q = malloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    wipe_free(p);
    return q;
}

static char *wipe_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

const phc_curl_allocs phc__curl_wiping_allocs = {
    .malloc_fn = wipe_malloc,
    .free_fn = wipe_free,
    .realloc_fn = wipe_realloc,
    .strdup_fn = wipe_strdup,
    .calloc_fn = wipe_calloc,
};

unsigned long phc__curl_wiped_frees(void)
{
    return __atomic_load_n(&wiped_frees, __ATOMIC_RELAXED);
}
