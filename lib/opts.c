#include "opts.h"

#include "err.h"

#include <phconnect/token.h>
#include <phconnect/trustcheck.h>

int phc__version_check(const char *name, unsigned int version, unsigned int known, phc_errbuf *err)
{
    if (version == known)
        return PHC_OK;
    /* Say the likely cause in the caller's words: a struct set up without its *_INIT, or a
     * program built against a newer phconnect than the one it runs with. */
    return phc__err(err, PHC_ERR_CONFIG,
                    "%s version %u is unknown to phconnect %s (it knows %u): %s", name, version,
                    PHC_VERSION_STRING, known,
                    version == 0      ? "set the struct up with its _INIT macro or _init function"
                    : version > known ? "the program was built against a newer phconnect"
                                      : "the program was built against an older phconnect");
}

int phc__client_opts_check(const phc_client_opts *opts, phc_errbuf *err)
{
    if (!opts)
        return PHC_OK;
    int rc = phc__version_check("phc_client_opts", opts->version, PHC_CLIENT_OPTS_VERSION, err);
    if (rc != PHC_OK)
        return rc;
    if (opts->retry_max_attempts < 0)
        return phc__err(err, PHC_ERR_CONFIG,
                        "phc_client_opts.retry_max_attempts is %d: it must be 0 (the default, "
                        "3), 1 (no retry) or more",
                        opts->retry_max_attempts);
    return PHC_OK;
}

int phc__global_opts_check(const phc_global_opts *opts, phc_errbuf *err)
{
    if (!opts)
        return PHC_OK;
    int rc = phc__version_check("phc_global_opts", opts->version, PHC_GLOBAL_OPTS_VERSION, err);
    if (rc != PHC_OK)
        return rc;
    unsigned unknown = opts->flags & ~(PHC_GLOBAL_WIPE_CURL_FREES | PHC_GLOBAL_LOAD_CURL_NOW);
    if (unknown)
        return phc__err(err, PHC_ERR_CONFIG,
                        "phc_global_opts.flags has 0x%x, unknown to phconnect %s: the program "
                        "was built against a newer phconnect",
                        unknown, PHC_VERSION_STRING);
    return PHC_OK;
}

int phc_global_opts_init(phc_global_opts *opts, unsigned int version)
{
    int rc = phc__version_check("phc_global_opts", version, PHC_GLOBAL_OPTS_VERSION, NULL);
    if (rc == PHC_OK && opts)
        *opts = (phc_global_opts)PHC_GLOBAL_OPTS_INIT;
    return opts ? rc : PHC_ERR_CONFIG;
}

int phc_client_opts_init(phc_client_opts *opts, unsigned int version)
{
    int rc = phc__version_check("phc_client_opts", version, PHC_CLIENT_OPTS_VERSION, NULL);
    if (rc == PHC_OK && opts)
        *opts = (phc_client_opts)PHC_CLIENT_OPTS_INIT;
    return opts ? rc : PHC_ERR_CONFIG;
}

int phc_request_init(phc_request *req, unsigned int version)
{
    int rc = phc__version_check("phc_request", version, PHC_REQUEST_VERSION, NULL);
    if (rc == PHC_OK && req)
        *req = (phc_request)PHC_REQUEST_INIT;
    return req ? rc : PHC_ERR_CONFIG;
}

int phc_trust_check_opts_init(phc_trust_check_opts *opts, unsigned int version)
{
    int rc =
        phc__version_check("phc_trust_check_opts", version, PHC_TRUST_CHECK_OPTS_VERSION, NULL);
    if (rc == PHC_OK && opts)
        *opts = (phc_trust_check_opts)PHC_TRUST_CHECK_OPTS_INIT;
    return opts ? rc : PHC_ERR_CONFIG;
}

int phc_stats_init(phc_stats *out, unsigned int version)
{
    int rc = phc__version_check("phc_stats", version, PHC_STATS_VERSION, NULL);
    if (rc == PHC_OK && out)
        *out = (phc_stats)PHC_STATS_INIT;
    return out ? rc : PHC_ERR_CONFIG;
}

int phc_endpoint_init(phc_endpoint *out, unsigned int version)
{
    int rc = phc__version_check("phc_endpoint", version, PHC_ENDPOINT_VERSION, NULL);
    if (rc == PHC_OK && out)
        *out = (phc_endpoint)PHC_ENDPOINT_INIT;
    return out ? rc : PHC_ERR_CONFIG;
}
