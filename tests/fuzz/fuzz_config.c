/* The configuration file parser (phc_config_parse: NCONF plus phconnect's own line scanner
 * and per-key validation). Promises checked beyond memory safety:
 *  - a refusal is PHC_ERR_CONFIG with a one-line message and no config handed out;
 *  - an accepted file validates, and each raw value it reports passes phc_config_set on a
 *    fresh config (one validation path for files and programs, config.c's header says). */
#include "fuzz.h"

static const char *const keys[] = {
    "url",
    "ca_file",
    "ca_sha256",
    "pinned_ips",
    "source_address",
    "pkcs11_module",
    "key",
    "cert",
    "pin",
    "client_id",
    "client_secret",
    "token_path",
    "credential_expires",
    "connect_timeout",
    "timeout",
    "max_response_bytes",
};

static void replay(const phc_config *cfg)
{
    phc_config *copy = NULL;
    phc_errbuf err = {0};
    FUZZ_CHECK(phc_config_new(&copy, &err) == PHC_OK);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = phc_config_get(cfg, keys[i]);
        if (!v)
            continue;
        int rc = phc_config_set(copy, keys[i], v, &err);
        if (rc != PHC_OK) {
            fprintf(stderr, "file accepted %s but phc_config_set refused it: %s\n", keys[i],
                    err.msg);
            FUZZ_CHECK(!"same validation for file and phc_config_set");
        }
    }
    int rc = phc_config_validate(copy, &err);
    if (rc != PHC_OK)
        fprintf(stderr, "replayed config does not validate: %s\n", err.msg);
    FUZZ_CHECK(rc == PHC_OK);
    phc_config_free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    phc_config *cfg = NULL;
    phc_errbuf err = {0};
    int rc = phc_config_parse(&cfg, (const char *)data, size, "fuzz.cnf", &err);
    fuzz_check_err(rc, &err);
    if (rc != PHC_OK) {
        FUZZ_CHECK(rc == PHC_ERR_CONFIG);
        FUZZ_CHECK(cfg == NULL);
        return 0;
    }
    FUZZ_CHECK(cfg != NULL);
    FUZZ_CHECK(phc_config_validate(cfg, &err) == PHC_OK);
    FUZZ_CHECK(phc_config_get(cfg, "no_such_key") == NULL);
    replay(cfg);
    phc_config_free(cfg);
    return 0;
}
