/* Helpers shared by the token-administration subcommands (enrol, csr, install, status,
 * check, prune, rollback, firewall, secret). Public API only, like every tool file. */
#ifndef PHC_ADMIN_H
#define PHC_ADMIN_H

#include "phc.h"

#include <stdio.h>

/* Loads the configuration and opens its token. On failure prints the one-line reason and
 * returns the exit status (*cfg / *t are NULL); 0 on success (caller frees both). */
int phc_admin_open(const phc_globals *g, phc_config **cfg, phc_token **t);

/* A token call that did not answer within connect_timeout is still out (err says so: the
 * library's "phc stopped waiting" messages): the process ends at once with status rc after
 * flushing its output, without the usual cleanup - closing the session or finalising the
 * module would call into the module that hangs, and its exit handlers could wait on the
 * stuck call. Returns when err says nothing of the kind. */
void phc_admin_quit_if_stuck(const phc_errbuf *err, int rc);

/* Reads a whole file (at most max bytes; "-" is stdin). Returns 0, or prints why and returns
 * the usage exit status. *out is NUL-terminated; free() it. */
int phc_admin_read_file(const char *path, size_t max, char **out, size_t *len);

/* "2026-03-01 12:00:00 UTC" (style 0) or "2026-03-01T12:00:00Z" (style 1) into buf. */
const char *phc_admin_time(char *buf, size_t len, long long t, int style);

/* A JSON string literal for s (quotes included) on f. */
void phc_admin_json_str(FILE *f, const char *s);

/* Why winner ranks above loser when their certificates have the very same notBefore and
 * notAfter (the install-order record, phc_install_order in token.h), as one clause about
 * winner ("it was installed later ..."); other names the loser in the clause ("this one",
 * "the other"). For install's warning and status's tie line. */
const char *phc_admin_tie_reason(char *buf, size_t len, const phc_pair_info *winner,
                                 const phc_pair_info *loser, const char *other);

/* Test hook, compiled in only with -DPHC_TEST_HOOKS=ON (test builds; a no-op otherwise) and
 * inert unless PHC_TEST_PAUSE_AT is set to step: prints
 * "phc: [test] paused at STEP (pid N)" on stderr and sleeps PHC_TEST_PAUSE_SECONDS (default
 * 30) so that a test can kill the process at exactly that step. */
void phc_admin_pause(const char *step);

#endif
