/* phc_trust_check, the self-test behind `phc check --trust`, through the public API: each
 * finding's result and words, including the ones the integration test cannot reach (a decoy
 * directory no careless client looks at, bad options). */
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *pki;

static const phc_trust_finding *find(const phc_trust_report *r, const char *name)
{
    for (size_t i = 0; i < phc_trust_report_count(r); i++)
        if (strcmp(phc_trust_report_get(r, i)->name, name) == 0)
            return phc_trust_report_get(r, i);
    return NULL;
}

static phc_config *cfg_for(const char *ca, const char *sha, const char *profile)
{
    char path[512], url[] = "https://api.powerhub.test:8443";
    phc_config *cfg = NULL;
    phc_errbuf e = {0};
    snprintf(path, sizeof(path), "%s/%s", pki, ca);
    if (phc_config_new(&cfg, &e) != PHC_OK || phc_config_set(cfg, "url", url, &e) != PHC_OK ||
        phc_config_set(cfg, "ca_file", path, &e) != PHC_OK ||
        (sha && phc_config_set(cfg, "ca_sha256", sha, &e) != PHC_OK) ||
        (profile && phc_config_set(cfg, "x509_profile", profile, &e) != PHC_OK)) {
        fprintf(stderr, "config: %s\n", e.msg);
        phc_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static char *read_line(const char *name)
{
    static char buf[256];
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", pki, name);
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

static void test_no_decoy_dir(void)
{
    phc_config *cfg = cfg_for("ca.pem", NULL, NULL);
    phc_trust_report *r = NULL;
    phc_errbuf e = {0};
    CHECK(cfg && phc_trust_check(&r, cfg, NULL, &e) == PHC_OK && r);
    const phc_trust_finding *d = find(r, "decoy"), *s = find(r, "ca_sha256"),
                            *x = find(r, "ca_expiry");
    CHECK(d && d->result == PHC_TRUST_PASS &&
          strstr(d->detail, "a decoy CA in the connection's own store was refused: server "
                            "certificate 'CN=api.powerhub.test' issued by 'CN=phc trust "
                            "self-test decoy CA' refused: not issued by a pinned CA"));
    CHECK(s && s->result == PHC_TRUST_SKIPPED && strstr(s->detail, "ca_sha256 is not set"));
    CHECK(x && x->result == PHC_TRUST_PASS);
    CHECK(r && phc_trust_report_overall(r) == PHC_TRUST_PASS &&
          phc_trust_report_ca_not_after(r) > (long long)time(NULL));
    /* The accessors' edges: out of range and NULL are empty, not a crash. */
    CHECK(phc_trust_report_count(r) > 0 &&
          phc_trust_report_get(r, phc_trust_report_count(r)) == NULL);
    CHECK(phc_trust_report_count(NULL) == 0 && phc_trust_report_get(NULL, 0) == NULL &&
          phc_trust_report_overall(NULL) == PHC_TRUST_SKIPPED &&
          phc_trust_report_ca_not_after(NULL) == 0);
    CHECK(find(r, "chain") == NULL);
    phc_trust_report_free(r);
    phc_config_free(cfg);
}

static void test_decoy_dir_not_looked_at(void)
{
    /* The directory is given but SSL_CERT_FILE/DIR do not point at it: the refusal still
     * counts, but the test says it proved less. */
    char dir[] = "/tmp/phc-trustcheck.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    phc_config *cfg = cfg_for("ca.pem", NULL, NULL);
    phc_trust_check_opts o = PHC_TRUST_CHECK_OPTS_INIT;
    o.decoy_dir = dir;
    phc_trust_report *r = NULL;
    phc_errbuf e = {0};
    CHECK(cfg && phc_trust_check(&r, cfg, &o, &e) == PHC_OK);
    const phc_trust_finding *d = find(r, "decoy");
    CHECK(d && d->result == PHC_TRUST_WARN &&
          strstr(d->detail, "but a careless client did not find it either"));
    CHECK(r && phc_trust_report_overall(r) == PHC_TRUST_WARN);
    CHECK(rmdir(dir) == 0); /* the library removed what it wrote */
    phc_trust_report_free(r);

    /* With the environment pointing there, the control finds it. */
    char file[600];
    snprintf(file, sizeof(file), "%s/decoy-ca.pem", dir);
    CHECK(mkdir(dir, 0700) == 0);
    setenv("SSL_CERT_FILE", file, 1);
    setenv("SSL_CERT_DIR", dir, 1);
    r = NULL;
    CHECK(phc_trust_check(&r, cfg, &o, &e) == PHC_OK);
    d = find(r, "decoy");
    CHECK(d && d->result == PHC_TRUST_PASS && strstr(d->detail, "(a careless client accepts it)"));
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    CHECK(rmdir(dir) == 0);
    phc_trust_report_free(r);
    phc_config_free(cfg);
}

static void test_pins_expiry_chain(void)
{
    phc_trust_report *r = NULL;
    phc_errbuf e = {0};
    char sha[256];
    snprintf(sha, sizeof(sha), "%s", read_line("int-sha256.txt"));
    phc_config *cfg = cfg_for("ca.pem", sha, NULL);
    CHECK(cfg && phc_trust_check(&r, cfg, NULL, &e) == PHC_OK);
    const phc_trust_finding *s = find(r, "ca_sha256");
    CHECK(s && s->result == PHC_TRUST_FAIL &&
          strstr(s->detail, "which is not listed in ca_sha256"));
    CHECK(r && phc_trust_report_overall(r) == PHC_TRUST_FAIL && find(r, "decoy") == NULL);
    phc_trust_report_free(r);
    phc_config_free(cfg);

    /* A window longer than the CA lives: CRITICAL. */
    cfg = cfg_for("ca.pem", NULL, NULL);
    phc_trust_check_opts o = PHC_TRUST_CHECK_OPTS_INIT;
    o.warn_days = 8000;
    o.crit_days = 5000;
    r = NULL;
    CHECK(cfg && phc_trust_check(&r, cfg, &o, &e) == PHC_OK);
    s = find(r, "ca_expiry");
    CHECK(s && s->result == PHC_TRUST_FAIL && strstr(s->detail, "within the warning window"));
    phc_trust_report_free(r);

    /* A chain from another CA: the pin fails, nothing lifts it. */
    char chain[512];
    snprintf(chain, sizeof(chain), "%s/server-other.pem", pki);
    o = (phc_trust_check_opts)PHC_TRUST_CHECK_OPTS_INIT;
    o.chain_file = chain;
    r = NULL;
    CHECK(phc_trust_check(&r, cfg, &o, &e) == PHC_OK);
    s = find(r, "chain:pinned-ca");
    CHECK(s && s->result == PHC_TRUST_FAIL && strstr(s->detail, "not issued by a pinned CA"));
    s = find(r, "chain");
    CHECK(s && s->result == PHC_TRUST_FAIL && strstr(s->detail, "(rules: pinned-ca)"));
    phc_trust_report_free(r);

    /* Bad options. */
    o.chain_file = "/nonexistent/chain.pem";
    r = NULL;
    CHECK_ERR(phc_trust_check(&r, cfg, &o, &e), e, PHC_ERR_CONFIG,
              "cannot read chain file /nonexistent/chain.pem");
    CHECK(r == NULL);
    o.chain_file = NULL;
    o.version = 99;
    CHECK_ERR(phc_trust_check(&r, cfg, &o, &e), e, PHC_ERR_CONFIG,
              "phc_trust_check_opts version 99 is unknown to phconnect");
    phc_config_free(cfg);
    CHECK(strcmp(phc_trust_result_name(PHC_TRUST_WARN), "warn") == 0);
}

int main(void)
{
    pki = getenv("PHC_PKI");
    if (!pki) {
        fprintf(stderr, "PHC_PKI not set: run through ctest\n");
        return 2;
    }
    test_no_decoy_dir();
    test_decoy_dir_not_looked_at();
    test_pins_expiry_chain();
    TEST_MAIN_END();
}
