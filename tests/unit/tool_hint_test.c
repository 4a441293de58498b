/* Library messages name no phc command; the tool adds it (tools/phc_hint.c). Refusals are
 * made by the library itself - on a real SoftHSM token, and from a TLS alert record - and
 * each is checked twice: the library's text names no CLI command or flag, and the tool's
 * line has the hint, exactly, on the same line. */
#include "alert.h"
#include "phc.h"
#include "tokentest.h"

#include <ctype.h>

/* 1 when m tells its reader to run phc: "phc " before a subcommand, or a --flag. */
static int names_cli(const char *m)
{
    for (const char *p = m; (p = strstr(p, "phc ")) != NULL; p++)
        if (islower((unsigned char)p[4]))
            return 1;
    return strstr(m, " --") || strstr(m, "(--") || strstr(m, "'--");
}

/* The library's message is neutral and the tool's line is exactly lib_text + what the hints
 * make of it. */
static void check_pair(const phc_errbuf *e, const char *want_lib, const char *want_tool)
{
    char out[PHC_HINTED_MAX];
    phc_tool_hinted(e, out, sizeof(out));
    CHECK(!names_cli(e->msg));
    CHECK(strcmp(e->msg, want_lib) == 0);
    CHECK(strcmp(out, want_tool) == 0);
    if (strcmp(e->msg, want_lib) != 0 || strcmp(out, want_tool) != 0)
        fprintf(stderr, "  lib:  %s\n  want: %s\n  tool: %s\n  want: %s\n", e->msg, want_lib, out,
                want_tool);
}

static void test_token_refusals(void)
{
    tok tk;
    phc_errbuf e = {0};
    char id[PHC_ID_HEX_MAX];
    if (tok_empty(&tk, "hints"))
        return;
    phc_config *cfg = config_for(&tk, "pkcs11:token=phc-test;object=other", NULL, NULL);
    phc_token *t = open_tok(cfg);
    if (t) {
        CHECK(phc_token_generate(t, NULL, 1, id, &e) == PHC_ERR_HSM);
        check_pair(&e,
                   "no key with label 'other' on token 'phc-test' to renew: generate the "
                   "first key pair",
                   "no key with label 'other' on token 'phc-test' to renew: generate the first "
                   "key pair (phc enrol)");
    }
    phc_token_free(t);
    phc_config_free(cfg);

    cfg = config_for(&tk, NULL, NULL, NULL);
    t = open_tok(cfg);
    if (t) {
        CHECK(phc_token_generate(t, "ec:P-256", 0, id, &e) == 0 && strcmp(id, "01") == 0);
        CHECK(phc_token_generate(t, NULL, 0, id, &e) == PHC_ERR_CONFIG);
        check_pair(&e,
                   "token 'phc-test' already holds a key with label 'client' (id 01): to renew, "
                   "make a new request for that key or generate a pending key",
                   "token 'phc-test' already holds a key with label 'client' (id 01): to renew, "
                   "make a new request for that key or generate a pending key (phc csr, or phc "
                   "csr --new-key)");
        CHECK(phc_token_generate(t, NULL, 1, id, &e) == PHC_ERR_CONFIG);
        check_pair(&e,
                   "key id 01 on token 'phc-test' is already pending (no certificate yet): make "
                   "its request again, or delete the pending keys",
                   "key id 01 on token 'phc-test' is already pending (no certificate yet): make "
                   "its request again (phc csr --key-id 01), or delete the pending keys (phc "
                   "prune --pending --yes)");
        char *csr = NULL;
        CHECK(phc_token_csr(t, "01", NULL, &csr, &e) == PHC_ERR_CONFIG && !csr);
        check_pair(&e,
                   "key id 01 has no certificate to copy the subject from, and there is no "
                   "active pair: give a subject",
                   "key id 01 has no certificate to copy the subject from, and there is no "
                   "active pair: give a subject (--subject DN)");
    }
    phc_token_free(t);
    phc_config_free(cfg);
}

static void test_alert_refusals(void)
{
    X509 *cert = X509_new();
    CHECK(cert != NULL);
    if (!cert)
        return;
    const char *head = "server https://api.example.test:8443 refused client certificate '(empty "
                       "subject)' issued by '' (serial 0): TLS alert ";
    static const struct {
        int desc;
        const char *lib, *hint;
    } cases[] = {
        {45, "certificate_expired, the server considers it expired; renew it",
         " (phc csr, then phc install --probe)"},
        {44,
         "certificate_revoked, the vendor has revoked it; request a new certificate for a "
         "new key",
         " (phc csr --new-key, then phc install --probe)"},
        {48,
         "unknown_ca, the server does not trust the CA that issued it; is this certificate "
         "registered with the vendor?",
         ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        phc_alert_seen a;
        phc__alert_init(&a);
        a.received = cases[i].desc;
        a.cert_requested = 1;
        phc_errbuf e = {0};
        char lib[PHC_ERRMSG_MAX], tool[PHC_HINTED_MAX];
        snprintf(lib, sizeof(lib), "%s%s", head, cases[i].lib);
        snprintf(tool, sizeof(tool), "%s%s", lib, cases[i].hint);
        CHECK(phc__alert_refusal_err(&a, cert, "https://api.example.test:8443", &e) ==
              PHC_ERR_TRUST);
        check_pair(&e, lib, tool);
    }
    X509_free(cert);

    /* A connection that ended without an alert points at the debug log; the tool says how to
     * see it. */
    phc_alert_seen none;
    phc__alert_init(&none);
    phc_errbuf e = {.code = PHC_ERR_NETWORK};
    phc__alert_describe(e.msg, sizeof(e.msg), &none);
    check_pair(&e,
               "the connection ended without a TLS alert (closed or reset; the debug log has "
               "the detail)",
               "the connection ended without a TLS alert (closed or reset; the debug log, phc "
               "-vv, has the detail)");
}

/* The table's edges: the class must match, an unknown message passes unchanged, an empty one
 * is its class name, and a short buffer is truncated, terminated. */
static void test_edges(void)
{
    char out[PHC_HINTED_MAX];
    phc_errbuf e = {.code = PHC_ERR_NETWORK,
                    .msg = "TLS alert certificate_expired, the server considers it expired; "
                           "renew it"};
    CHECK(strcmp(phc_tool_hinted(&e, out, sizeof(out)), e.msg) == 0);
    e.code = PHC_ERR_TRUST;
    CHECK(strstr(phc_tool_hinted(&e, out, sizeof(out)), "renew it (phc csr, then phc install "
                                                        "--probe)") != NULL);
    phc_errbuf plain = {.code = PHC_ERR_HSM, .msg = "no token with label 'x'"};
    CHECK(strcmp(phc_tool_hinted(&plain, out, sizeof(out)), plain.msg) == 0);
    phc_errbuf empty = {.code = PHC_ERR_PIN};
    CHECK(strcmp(phc_tool_hinted(&empty, out, sizeof(out)), phc_err_name(PHC_ERR_PIN)) == 0);
    char small[20];
    CHECK(strcmp(phc_tool_hinted(&e, small, sizeof(small)), "TLS alert certifica") == 0);
    /* A message as long as the library makes them, hint included, still fits. */
    phc_errbuf full = {.code = PHC_ERR_TRUST};
    const char *tail = "; renew it";
    memset(full.msg, 'x', sizeof(full.msg) - 1);
    memcpy(full.msg + sizeof(full.msg) - 1 - strlen(tail) -
               strlen("the server considers it "
                      "expired"),
           "the server considers it expired; renew it",
           strlen("the server considers it "
                  "expired; renew it"));
    CHECK(strlen(phc_tool_hinted(&full, out, sizeof(out))) ==
          sizeof(full.msg) - 1 + strlen(" (phc csr, then phc install --probe)"));
}

int main(void)
{
    test_alert_refusals();
    test_edges();
    if (token_test_begin("tool-hint"))
        return 1;
    test_token_refusals();
    token_test_end();
    TEST_MAIN_END();
}
