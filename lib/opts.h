/* The versioned structs callers pass in (libgit2's options pattern, phconnect.h): the one
 * check of their version, made at every public entry point that takes one. */
#ifndef PHC_OPTS_H
#define PHC_OPTS_H

#include <phconnect/phconnect.h>

/* PHC_OK when version is one this library knows for the struct named name (its current one,
 * known; 0 is never known: an uninitialised struct), else PHC_ERR_CONFIG naming both. */
PHC_WUR int phc__version_check(const char *name, unsigned int version, unsigned int known,
                               phc_errbuf *err);

/* phc_client_opts as given (NULL: the defaults), checked: version and retry_max_attempts. */
PHC_WUR int phc__client_opts_check(const phc_client_opts *opts, phc_errbuf *err);

/* phc_global_opts as given (NULL: the defaults), checked: version and flags. */
PHC_WUR int phc__global_opts_check(const phc_global_opts *opts, phc_errbuf *err);

#endif
