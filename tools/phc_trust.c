#include "phc_trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* setenv/unsetenv back to what it was; value NULL: unset. */
static void restore(const char *name, const char *value)
{
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
}

int phc_tool_trust_check(const phc_config *cfg, const char *chain, long warn_days, long crit_days,
                         phc_trust_report **out, phc_errbuf *err)
{
    *out = NULL;
    const char *tmp = getenv("TMPDIR");
    char dir[4096], file[4200];
    snprintf(dir, sizeof(dir), "%s/phc-trust.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        snprintf(err->msg, sizeof(err->msg), "cannot make a directory for the decoy CA: %s",
                 strerror(errno));
        err->code = PHC_ERR_INTERNAL;
        return PHC_ERR_INTERNAL;
    }
    snprintf(file, sizeof(file), "%s/decoy-ca.pem", dir);
    char *old_file = getenv("SSL_CERT_FILE") ? strdup(getenv("SSL_CERT_FILE")) : NULL;
    char *old_dir = getenv("SSL_CERT_DIR") ? strdup(getenv("SSL_CERT_DIR")) : NULL;
    setenv("SSL_CERT_FILE", file, 1);
    setenv("SSL_CERT_DIR", dir, 1);
    phc_trust_check_opts o = PHC_TRUST_CHECK_OPTS_INIT;
    o.decoy_dir = dir;
    o.chain_file = chain;
    o.warn_days = warn_days;
    o.crit_days = crit_days;
    int rc = phc_trust_check(out, cfg, &o, err);
    restore("SSL_CERT_FILE", old_file);
    restore("SSL_CERT_DIR", old_dir);
    free(old_file);
    free(old_dir);
    rmdir(dir);
    return rc;
}
