/* libcurl, loaded when the library first needs HTTP rather than when the process starts
 * (curl_load.c says how and why). The rest of the library calls libcurl's functions by their
 * own names, as before; this unit makes those calls reach the loaded libcurl. */
#ifndef PHC_CURL_LOAD_H
#define PHC_CURL_LOAD_H

#include "err.h"

/* The soname dlopen'd; phc__curl_set_soname changes it for tests. */
#define PHC_CURL_SONAME "libcurl.so.4"

/* Loads libcurl (once per process; a failure is remembered and reported again) and
 * initialises it (curl_global_init, or curl_global_init_mem with the wiping allocators when
 * phc_global_init_opts asked for them) unless this library already did. PHC_OK, or
 * PHC_ERR_INTERNAL "cannot load libcurl (libcurl.so.4): <the loader's reason>". Thread-safe.
 * Called where the library starts to need HTTP: a client, a generation, a transfer,
 * phc_version_libs. */
PHC_WUR int phc__curl_ready(phc_errbuf *err);

/* Loads libcurl without initialising it (what curl_version_info needs): PHC_OK, or the
 * error phc__curl_ready reports for a libcurl that cannot be loaded. */
PHC_WUR int phc__curl_load(phc_errbuf *err);

/* 1 once this library loaded libcurl (phc__curl_ready succeeded at least once), else 0. */
int phc__curl_is_loaded(void);

/* PHC_GLOBAL_* flags of phc_global_init_opts that concern libcurl, applied when it is
 * initialised next (phc__curl_ready). */
void phc__curl_set_flags(unsigned flags);

/* phc_global_cleanup's part: curl_global_cleanup when this library initialised libcurl (and
 * not at all when it never loaded it). libcurl stays mapped (see curl_load.c). */
void phc__curl_cleanup(void);

/* Unit tests only (the symbol is hidden in libphconnect.so, so no program can reach it): the
 * soname to load instead of PHC_CURL_SONAME, before the first phc__curl_ready. Borrowed. */
void phc__curl_set_soname(const char *soname);

#endif
