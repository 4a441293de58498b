/* lib/opts.c: the structs callers pass in carry a version (libgit2's options pattern). Their
 * _INIT macros and _init functions agree, and every entry point taking one refuses a version it
 * does not know - 0 (a struct not set up) and a newer one - with PHC_ERR_CONFIG naming the
 * struct and the version, before it opens or reads anything. */
#include "opts.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

static void test_init_functions(void)
{
    phc_client_opts o;
    memset(&o, 0x5a, sizeof(o));
    CHECK(phc_client_opts_init(&o, PHC_CLIENT_OPTS_VERSION) == PHC_OK);
    phc_client_opts om = PHC_CLIENT_OPTS_INIT;
    CHECK(o.version == 1 && om.version == 1 && o.log == NULL && o.log_userdata == NULL &&
          o.level == PHC_LOG_ERROR && o.retry_max_attempts == 0 && o.retry_max_wait_ms == 0);
    CHECK(om.log == NULL && om.retry_max_attempts == 0 && om.retry_max_wait_ms == 0);
    o.retry_max_attempts = 7;
    CHECK(phc_client_opts_init(&o, 0) == PHC_ERR_CONFIG && o.retry_max_attempts == 7);
    CHECK(phc_client_opts_init(&o, 2) == PHC_ERR_CONFIG && o.retry_max_attempts == 7);
    CHECK(phc_client_opts_init(NULL, PHC_CLIENT_OPTS_VERSION) == PHC_ERR_CONFIG);

    phc_request r;
    memset(&r, 0x5a, sizeof(r));
    CHECK(phc_request_init(&r, PHC_REQUEST_VERSION) == PHC_OK);
    phc_request rm = PHC_REQUEST_INIT;
    CHECK(r.version == 1 && rm.version == 1 && r.method == NULL && r.path == NULL &&
          r.headers == NULL && r.body == NULL && r.body_len == 0 && r.flags == 0);
    CHECK(rm.path == NULL && rm.flags == 0);
    r.path = "/kept";
    CHECK(phc_request_init(&r, 0) == PHC_ERR_CONFIG && strcmp(r.path, "/kept") == 0);
    CHECK(phc_request_init(&r, 99) == PHC_ERR_CONFIG);
    CHECK(phc_request_init(NULL, PHC_REQUEST_VERSION) == PHC_ERR_CONFIG);

    phc_trust_check_opts t;
    memset(&t, 0x5a, sizeof(t));
    CHECK(phc_trust_check_opts_init(&t, PHC_TRUST_CHECK_OPTS_VERSION) == PHC_OK);
    phc_trust_check_opts tm = PHC_TRUST_CHECK_OPTS_INIT;
    CHECK(t.version == 1 && tm.version == 1 && t.decoy_dir == NULL && t.chain_file == NULL &&
          t.now == 0 && t.warn_days == 30 && t.crit_days == 7 && tm.warn_days == 30);
    CHECK(phc_trust_check_opts_init(&t, 0) == PHC_ERR_CONFIG && t.warn_days == 30);
    CHECK(phc_trust_check_opts_init(NULL, 1) == PHC_ERR_CONFIG);

    phc_stats st;
    memset(&st, 0x5a, sizeof(st));
    CHECK(phc_stats_init(&st, PHC_STATS_VERSION) == PHC_OK);
    phc_stats sm = PHC_STATS_INIT;
    CHECK(st.version == 1 && sm.version == 1 && st.token_ok == 0 && st.requests == 0 &&
          st.cert_serial[0] == '\0');
    CHECK(phc_stats_init(&st, 0) == PHC_ERR_CONFIG && phc_stats_init(NULL, 1) == PHC_ERR_CONFIG);

    phc_endpoint ep;
    memset(&ep, 0x5a, sizeof(ep));
    CHECK(phc_endpoint_init(&ep, PHC_ENDPOINT_VERSION) == PHC_OK);
    phc_endpoint epm = PHC_ENDPOINT_INIT;
    CHECK(ep.version == 1 && epm.version == 1 && ep.url == NULL && ep.host == NULL &&
          ep.port == 0 && ep.n_pinned_ips == 0 && ep.source_address == NULL &&
          ep.credential_expires == 0);
    CHECK(phc_endpoint_init(&ep, 2) == PHC_ERR_CONFIG && ep.version == 1);
    CHECK(phc_endpoint_init(NULL, 1) == PHC_ERR_CONFIG);
}

/* The message names the struct, the version, the library and the likely cause. */
static void test_messages(void)
{
    phc_errbuf e = {0};
    CHECK(phc__version_check("phc_request", 1, 1, &e) == PHC_OK);
    CHECK_ERR(phc__version_check("phc_request", 0, 1, &e), e, PHC_ERR_CONFIG,
              "phc_request version 0 is unknown to phconnect " PHC_VERSION_STRING
              " (it knows 1): set the struct up with its _INIT macro or _init function");
    CHECK_ERR(phc__version_check("phc_client_opts", 3, 1, &e), e, PHC_ERR_CONFIG,
              "phc_client_opts version 3 is unknown to phconnect " PHC_VERSION_STRING
              " (it knows 1): the program was built against a newer phconnect");
    CHECK_ERR(phc__version_check("phc_x", 1, 2, &e), e, PHC_ERR_CONFIG,
              "phc_x version 1 is unknown to phconnect " PHC_VERSION_STRING
              " (it knows 2): the program was built against an older phconnect");
    CHECK(phc__client_opts_check(NULL, &e) == PHC_OK);
    phc_client_opts o = PHC_CLIENT_OPTS_INIT;
    o.retry_max_attempts = 1;
    o.retry_max_wait_ms = 5;
    CHECK(phc__client_opts_check(&o, &e) == PHC_OK);
    o.retry_max_attempts = -1;
    CHECK_ERR(phc__client_opts_check(&o, &e), e, PHC_ERR_CONFIG,
              "phc_client_opts.retry_max_attempts is -1: it must be 0 (the default, 3), 1 (no "
              "retry) or more");
}

/* The public entry points refuse before they look at the config: an empty config would
 * otherwise fail on its missing keys first. */
static void test_entry_points(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    CHECK(phc_config_new(&c, &e) == PHC_OK);
    phc_client *cl = (phc_client *)&e; /* must be reset to NULL */
    phc_client_opts o = PHC_CLIENT_OPTS_INIT;
    o.version = 0;
    CHECK_ERR(phc_client_new(&cl, c, &o, &e), e, PHC_ERR_CONFIG, "phc_client_opts version 0");
    CHECK(cl == NULL);
    o.version = PHC_CLIENT_OPTS_VERSION + 1;
    CHECK_ERR(phc_client_new(&cl, c, &o, &e), e, PHC_ERR_CONFIG,
              "phc_client_opts version 2 is unknown");
    o.version = PHC_CLIENT_OPTS_VERSION;
    o.retry_max_attempts = -3;
    CHECK_ERR(phc_client_new(&cl, c, &o, &e), e, PHC_ERR_CONFIG,
              "phc_client_opts.retry_max_attempts is -3");
    /* a valid struct gets as far as the config */
    o.retry_max_attempts = 1;
    CHECK_ERR(phc_client_new(&cl, c, &o, &e), e, PHC_ERR_CONFIG, "missing required key 'url'");
    CHECK_ERR(phc_client_new(&cl, c, NULL, &e), e, PHC_ERR_CONFIG, "missing required key 'url'");

    phc_token *t = NULL;
    o.version = 0;
    CHECK_ERR(phc_token_open(&t, c, &o, &e), e, PHC_ERR_CONFIG, "phc_client_opts version 0");
    CHECK(t == NULL);

    phc_trust_report *r = NULL;
    phc_trust_check_opts to = PHC_TRUST_CHECK_OPTS_INIT;
    to.version = 0;
    CHECK_ERR(phc_trust_check(&r, c, &to, &e), e, PHC_ERR_CONFIG, "phc_trust_check_opts version 0");
    CHECK(r == NULL);

    /* phc_endpoint is filled by the library: an unknown version is refused and out left as
     * it was, whatever the config holds. */
    CHECK(phc_config_set(c, "url", "https://api.powerhub.test:8443", &e) == PHC_OK);
    phc_endpoint ep = PHC_ENDPOINT_INIT;
    ep.version = 0;
    CHECK_ERR(phc_config_endpoint(c, &ep, &e), e, PHC_ERR_CONFIG,
              "phc_endpoint version 0 is unknown to phconnect " PHC_VERSION_STRING
              " (it knows 1): set the struct up with its _INIT macro or _init function");
    CHECK(ep.version == 0 && ep.url == NULL);
    ep.version = PHC_ENDPOINT_VERSION + 1;
    CHECK_ERR(phc_config_endpoint(c, &ep, &e), e, PHC_ERR_CONFIG,
              "phc_endpoint version 2 is unknown to phconnect " PHC_VERSION_STRING
              " (it knows 1): the program was built against a newer phconnect");
    CHECK(ep.url == NULL);
    ep.version = PHC_ENDPOINT_VERSION;
    CHECK_ERR(phc_config_endpoint(NULL, &ep, &e), e, PHC_ERR_CONFIG, "no configuration given");
    CHECK_ERR(phc_config_endpoint(c, NULL, &e), e, PHC_ERR_CONFIG, "no phc_endpoint given");
    CHECK(phc_config_endpoint(c, &ep, &e) == PHC_OK && ep.version == PHC_ENDPOINT_VERSION &&
          ep.port == 8443 && strcmp(ep.host, "api.powerhub.test") == 0 &&
          strcmp(ep.url, "https://api.powerhub.test:8443") == 0);
    phc_config_free(c);
}

int main(void)
{
    test_init_functions();
    test_messages();
    test_entry_points();
    TEST_MAIN_END();
}
