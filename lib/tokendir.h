/* Why a module shows no token to this process when the tokens are there: a module that keeps
 * its tokens in files (SoftHSM v2) finds none, or fails C_Initialize, when the process's user
 * cannot read them. A user who is not root then needs to hear that, not "no initialised
 * token". Read-only: looks at the module's configuration and directories, changes nothing. */
#ifndef PHC_TOKENDIR_H
#define PHC_TOKENDIR_H

#include <phconnect/phconnect.h>

#include <stddef.h>

/* For module (its path; SoftHSM v2 is recognised by its file name, libsofthsm2*): the
 * configuration file ($SOFTHSM2_CONF, else /etc/softhsm/softhsm2.conf), its
 * directories.tokendir, and each token directory inside it must be readable (and the
 * directories searchable) by this process's effective uid. Returns 1 with why (size whylen,
 * always NUL-terminated) naming the first that is not, its owner and mode and the uid, e.g.
 * "the token directory /var/lib/softhsm/tokens (owner uid 0, mode 0700) is not readable by
 * uid 65534"; 0 when everything is readable, the module is not one whose files are known, or
 * a name does not exist (another message covers that). */
int phc__tokendir_unreadable(const char *module, char *why, size_t whylen);

/* For a caller whose open of module just failed with rc: when rc is PHC_ERR_HSM and
 * phc__tokendir_unreadable finds a reason, err's message becomes "<reason>, so PKCS#11 module
 * '<module>' shows no token to this user (the module said: <the old message>)" - the
 * module's own words, "no initialised token" or a failed C_Initialize, would mislead a user
 * who is not root. Returns rc. */
int phc__tokendir_explain(int rc, const char *module, phc_errbuf *err);

/* SoftHSM v2's token directory for this process: directories.tokendir of $SOFTHSM2_CONF (else
 * /etc/softhsm/softhsm2.conf) into dir (size dirlen). 0 found, -1 not (no readable
 * configuration, no such line, too long). For a module already known to be SoftHSM. */
int phc__tokendir_store(char *dir, size_t dirlen);

/* 1 when module's file name is SoftHSM v2's (libsofthsm2*), 0 otherwise. */
int phc__tokendir_named_softhsm(const char *module);

#endif
