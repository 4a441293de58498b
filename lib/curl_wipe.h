/* libcurl's allocators that wipe every block before freeing it (curl_wipe.c), installed by
 * curl_load.c when the application asked for them (PHC_GLOBAL_WIPE_CURL_FREES). */
#ifndef PHC_CURL_WIPE_H
#define PHC_CURL_WIPE_H

#include <curl/curl.h>

/* The five callbacks curl_global_init_mem takes. */
typedef struct phc_curl_allocs {
    curl_malloc_callback malloc_fn;
    curl_free_callback free_fn;
    curl_realloc_callback realloc_fn;
    curl_strdup_callback strdup_fn;
    curl_calloc_callback calloc_fn;
} phc_curl_allocs;

extern const phc_curl_allocs phc__curl_wiping_allocs;

/* How many blocks they wiped so far, in this process (for the tests). */
unsigned long phc__curl_wiped_frees(void);

#endif
