/* The trust self-test (phconnect/trustcheck.h). Everything it proves goes through the code
 * requests use: the pinned store from phc__trust_load, the connection context from
 * phc__tls_configure, the verdict from phc__trust_check. Only the decoy is made here. */
#include "config.h"
#include "err.h"
#include "opts.h"
#include "tls.h"
#include "trust.h"
#include "x509_profile.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Opaque to callers (trustcheck.h) so it can grow. */
struct phc_trust_report {
    phc_trust_result overall; /* the worst of the findings, SKIPPED counting as PASS */
    size_t n;
    phc_trust_finding *findings;
    long long ca_not_after; /* earliest notAfter among the pinned CAs; 0 when not loaded */
};

#define DECOY_CA_NAME "phc trust self-test decoy CA"
#define MAX_CHAIN_ROUNDS 12

static int add(phc_trust_report *r, const char *name, phc_trust_result res, const char *fmt, ...)
    PHC_PRINTF(4, 5);

static int add(phc_trust_report *r, const char *name, phc_trust_result res, const char *fmt, ...)
{
    phc_trust_finding *grown = realloc(r->findings, (r->n + 1) * sizeof(*grown));
    if (!grown)
        return 0;
    r->findings = grown;
    phc_trust_finding *f = &r->findings[r->n++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->result = res;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
    if (res != PHC_TRUST_SKIPPED && res > r->overall)
        r->overall = res;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* The decoy: a throw-away CA and a server certificate for the configured host, well-formed
 * by every rule of ours, so that only the pin can refuse it. */

static int add_ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e && X509_add_ext(c, e, -1);
    X509_EXTENSION_free(e);
    return ok;
}

static X509 *decoy_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                        const char *san)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int ok = c && name && X509_set_version(c, 2) && RAND_bytes(serial, sizeof(serial)) == 1 &&
             (serial[0] &= 0x7f, bn = BN_bin2bn(serial, sizeof(serial), NULL)) &&
             BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c)) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                        -1, 0) &&
             X509_set_subject_name(c, name) &&
             X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) &&
             X509_set_pubkey(c, key) && X509_gmtime_adj(X509_getm_notBefore(c), -3600) &&
             X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509 *iss = issuer ? issuer : c;
    ok = ok && add_ext(c, iss, NID_subject_key_identifier, "hash");
    if (issuer)
        ok = ok && add_ext(c, iss, NID_authority_key_identifier, "keyid:always") &&
             add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(c, iss, NID_key_usage, "critical,digitalSignature") &&
             add_ext(c, iss, NID_ext_key_usage, "serverAuth") &&
             add_ext(c, iss, NID_subject_alt_name, san);
    else
        ok = ok && add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok = ok && X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
    BN_free(bn);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* Writes the decoy where a careless client looks: the file SSL_CERT_FILE names and the
 * hashed name SSL_CERT_DIR is searched by. Paths go to file/link for removal. */
static int plant(const char *dir, X509 *ca, char *file, char *link, size_t len)
{
    snprintf(file, len, "%s/decoy-ca.pem", dir);
    snprintf(link, len, "%s/%08lx.0", dir, X509_subject_name_hash(ca));
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i ? link : file, "wx");
        if (!f)
            return 0;
        int ok = PEM_write_X509(f, ca) == 1;
        if (fclose(f) != 0 || !ok)
            return 0;
    }
    return 1;
}

/* Would a client trusting the default paths (SSL_CERT_FILE / SSL_CERT_DIR) accept the decoy?
 * The control that shows the decoy really is where a careless client finds it. */
static int careless_accepts(X509 *leaf, const char *host)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok = st && ctx && X509_STORE_set_default_paths(st) &&
             X509_STORE_CTX_init(ctx, st, leaf, NULL) &&
             (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(X509_STORE_CTX_get0_param(ctx), host)
                    : X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0)) &&
             X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    ERR_clear_error();
    return ok;
}

/* One TLS handshake over a memory BIO pair between a client context configured exactly as a
 * request's (phc__tls_configure), to which a careless client's trust was added first (the
 * default paths and ca in its own store, as libcurl's CAINFO would), and a server presenting
 * leaf + ca. Returns 1 when the client completed the handshake. */
static int handshake(const phc_tls *tls, X509 *leaf, EVP_PKEY *key, X509 *ca,
                     phc_tls_report *report, phc_errbuf *err)
{
    int done = -1, cdone = 0, sdone = 0, cfail = 0, sfail = 0;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method()), *sctx = SSL_CTX_new(TLS_server_method());
    SSL *c = NULL, *s = NULL;
    BIO *cb = NULL, *sb = NULL;
    if (!cctx || !sctx || !SSL_CTX_use_certificate(sctx, leaf) ||
        !SSL_CTX_use_PrivateKey(sctx, key) || !SSL_CTX_add1_chain_cert(sctx, ca) ||
        !SSL_CTX_set_default_verify_paths(cctx) ||
        !X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca)) {
        phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot set up the self-test handshake");
        goto out;
    }
    if (phc__tls_configure(tls, cctx, report, err) != PHC_OK)
        goto out;
    if (!(c = SSL_new(cctx)) || !(s = SSL_new(sctx)) || !BIO_new_bio_pair(&cb, 0, &sb, 0)) {
        phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot set up the self-test handshake");
        BIO_free(cb);
        BIO_free(sb);
        goto out;
    }
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 32 && !(cdone && sdone) && !cfail && !sfail; i++) {
        int rc;
        if (!cdone && (rc = SSL_do_handshake(c)) != 1)
            cfail = SSL_get_error(c, rc) != SSL_ERROR_WANT_READ;
        else
            cdone = 1;
        if (!sdone && (rc = SSL_do_handshake(s)) != 1)
            sfail = SSL_get_error(s, rc) != SSL_ERROR_WANT_READ;
        else
            sdone = 1;
    }
    done = cdone && !cfail;
out:
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return done;
}

static int run_decoy(phc_trust_report *r, const phc_config *cfg, const phc_trust *trust,
                     const char *dir, phc_errbuf *err)
{
    int rc = PHC_ERR_INTERNAL;
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
    X509 *ca = NULL, *leaf = NULL;
    phc_tls *tls = NULL;
    char file[4096] = "", link[4096] = "", san[300];
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, cfg->host, ip) == 1 || inet_pton(AF_INET6, cfg->host, ip) == 1;
    snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", cfg->host);
    if (!ca_key || !key || !(ca = decoy_cert(ca_key, DECOY_CA_NAME, NULL, NULL, NULL)) ||
        !(leaf = decoy_cert(key, cfg->host, ca, ca_key, san))) {
        rc = phc__err_ossl(err, PHC_ERR_INTERNAL, "cannot make the decoy CA");
        goto out;
    }
    if (dir && !plant(dir, ca, file, link, sizeof(file))) {
        rc = phc__err(err, PHC_ERR_CONFIG, "cannot write the decoy CA into %s", dir);
        goto out;
    }
    if ((rc = phc__tls_new(&tls, trust, NULL, NULL, cfg, NULL, err)) != PHC_OK)
        goto out;
    int careless = dir ? careless_accepts(leaf, cfg->host) : 0;
    phc_tls_report report;
    memset(&report, 0, sizeof(report));
    phc_errbuf why = {0};
    int accepted = handshake(tls, leaf, key, ca, &report, err);
    if (accepted < 0) {
        rc = err ? err->code : PHC_ERR_INTERNAL;
        goto out;
    }
    const char *where = dir ? "in SSL_CERT_FILE, SSL_CERT_DIR and the connection's own store"
                            : "in the connection's own store";
    int ok;
    if (accepted) {
        ok = add(r, "decoy", PHC_TRUST_FAIL,
                 "a decoy CA %s was ACCEPTED for '%s': the pinned trust is not in force", where,
                 cfg->host);
    } else if (!report.failed) {
        ok = add(r, "decoy", PHC_TRUST_FAIL,
                 "the self-test handshake failed before the server certificate was verified: "
                 "the decoy proves nothing");
    } else {
        phc__tls_report_err(tls, &report, &why);
        if (dir && !careless)
            ok = add(r, "decoy", PHC_TRUST_WARN,
                     "a decoy CA %s was refused, but a careless client did not find it either "
                     "(SSL_CERT_FILE/SSL_CERT_DIR not pointing at it?): %s",
                     where, why.msg);
        else
            ok = add(r, "decoy", PHC_TRUST_PASS, "a decoy CA %s was refused%s: %s", where,
                     dir ? " (a careless client accepts it)" : "", why.msg);
    }
    rc = ok ? PHC_OK : phc__err(err, PHC_ERR_INTERNAL, "out of memory");
out:
    if (file[0])
        unlink(file);
    if (link[0])
        unlink(link);
    phc__tls_free(tls);
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* A given chain, rule by rule */

static int read_chain(const char *path, STACK_OF(X509) * *out, phc_errbuf *err)
{
    BIO *in = BIO_new_file(path, "r");
    if (!in)
        return phc__err_ossl(err, PHC_ERR_CONFIG, "cannot read chain file %s", path);
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *c;
    while (chain && (c = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(chain, c)) {
            X509_free(c);
            break;
        }
    BIO_free(in);
    ERR_clear_error();
    if (!chain || sk_X509_num(chain) == 0) {
        sk_X509_pop_free(chain, X509_free);
        return phc__err(err, PHC_ERR_CONFIG, "chain file %s holds no PEM certificate", path);
    }
    *out = chain;
    return PHC_OK;
}

static const char *profile_name(int profile)
{
    return profile == PHC_X509_COMPATIBLE ? "compatible" : "strict";
}

/* Lifts one rule after another, starting from strict, until the chain passes or fails a rule
 * that nothing lifts (the pin, a broken signature): every rule it fails gets a finding, FAIL
 * when the configured profile enforces it, WARN when the configured profile lifts it. */
static int run_chain(phc_trust_report *r, const phc_config *cfg, const phc_trust *trust,
                     const char *path, long long now, phc_errbuf *err)
{
    STACK_OF(X509) *chain = NULL;
    int rc = read_chain(path, &chain, err);
    if (rc != PHC_OK)
        return rc;
    X509 *leaf = sk_X509_value(chain, 0);
    unsigned configured = phc__x509_relax_of(cfg->x509_profile), relax = 0;
    phc_verdict v;
    phc_errbuf msg = {0};
    int ok = 1, nfailed = 0, verdict;
    char failed_rules[256] = "";
    int result =
        phc__trust_check(trust, leaf, chain, X509_PURPOSE_SSL_SERVER, cfg->host, now, -1, &v, NULL);
    if (result < 0) {
        rc = phc__err(err, PHC_ERR_INTERNAL, "cannot set up certificate verification");
        goto out;
    }
    verdict = result;
    if (!verdict)
        phc__trust_refusal(&msg, "server certificate", &v, cfg->host, trust);
    for (int round = 0; ok && round < MAX_CHAIN_ROUNDS; round++) {
        phc_verdict rv;
        phc_errbuf why = {0};
        if (phc__trust_check(trust, leaf, chain, X509_PURPOSE_SSL_SERVER, cfg->host, now,
                             (int)relax, &rv, NULL) != 0)
            break;
        phc__trust_refusal(&why, "server certificate", &rv, cfg->host, trust);
        unsigned lift = phc__x509_relax_for(rv.error);
        const char *rule = phc__x509_rule_name(rv.error);
        if ((rv.error == X509_V_ERR_HOSTNAME_MISMATCH ||
             rv.error == X509_V_ERR_IP_ADDRESS_MISMATCH) &&
            !rv.leaf_has_san && !(relax & PHC_RELAX_SAN_ONLY)) {
            rule = "san-only";
            lift = PHC_RELAX_SAN_ONLY;
        }
        char name[48];
        snprintf(name, sizeof(name), "chain:%s", rule ? rule : "pinned-ca");
        int lifted_by_profile = lift && (configured & lift) == lift;
        ok = add(r, name, lifted_by_profile ? PHC_TRUST_WARN : PHC_TRUST_FAIL, "%s%s", why.msg,
                 lifted_by_profile ? " (lifted by x509_profile = compatible)" : "");
        size_t used = strlen(failed_rules);
        snprintf(failed_rules + used, sizeof(failed_rules) - used, "%s%s", used ? ", " : "",
                 rule ? rule : "pinned-ca");
        nfailed++;
        if (!lift || (relax & lift) == lift)
            break; /* nothing lifts it: the rest cannot be judged */
        relax |= lift;
    }
    if (ok) {
        if (verdict && !nfailed)
            ok = add(r, "chain", PHC_TRUST_PASS,
                     "the chain of '%s' passes every rule (x509_profile = %s)", v.subject,
                     profile_name(cfg->x509_profile));
        else if (verdict)
            ok = add(r, "chain", PHC_TRUST_WARN,
                     "the chain of '%s' is accepted under x509_profile = compatible only; "
                     "strict refuses it (rules: %s)",
                     v.subject, failed_rules);
        else
            ok = add(r, "chain", PHC_TRUST_FAIL,
                     "a connection would refuse this chain under x509_profile = %s (rules: %s): "
                     "%s",
                     profile_name(cfg->x509_profile), failed_rules, msg.msg);
    }
    rc = ok ? PHC_OK : phc__err(err, PHC_ERR_INTERNAL, "out of memory");
out:
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

/* ------------------------------------------------------------------------------------ */

static int run_expiry(phc_trust_report *r, const phc_trust *trust, const phc_trust_check_opts *o,
                      long long now)
{
    long long when = phc__trust_earliest_expiry(trust);
    r->ca_not_after = when;
    long long left = when - now;
    long days = (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
    phc_trust_result res = left < o->crit_days * 86400LL   ? PHC_TRUST_FAIL
                           : left < o->warn_days * 86400LL ? PHC_TRUST_WARN
                                                           : PHC_TRUST_PASS;
    if (days < 0)
        return add(r, "ca_expiry", res, "a pinned CA in %s expired %ld days ago",
                   phc__trust_ca_file(trust), -days);
    return add(r, "ca_expiry", res, "the first pinned CA in %s expires in %ld days%s",
               phc__trust_ca_file(trust), days,
               res == PHC_TRUST_PASS ? "" : " (within the warning window)");
}

int phc_trust_check(phc_trust_report **out, const phc_config *cfg, const phc_trust_check_opts *opts,
                    phc_errbuf *err)
{
    phc_trust_check_opts defaults = PHC_TRUST_CHECK_OPTS_INIT;
    const phc_trust_check_opts *o = opts ? opts : &defaults;
    if (!out || !cfg)
        return phc__err(err, PHC_ERR_INTERNAL, "phc_trust_check: out or cfg is NULL");
    *out = NULL;
    int vrc =
        phc__version_check("phc_trust_check_opts", o->version, PHC_TRUST_CHECK_OPTS_VERSION, err);
    if (vrc != PHC_OK)
        return vrc;
    if (!cfg->ca_file || !cfg->host)
        return phc__err(err, PHC_ERR_CONFIG, "config has no '%s'",
                        cfg->ca_file ? "url" : "ca_file");
    long long now = o->now ? o->now : (long long)time(NULL);
    phc_trust_report *r = calloc(1, sizeof(*r));
    if (!r)
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    phc_trust *trust = NULL;
    phc_errbuf lerr = {0};
    int rc = PHC_OK, ok = 1;
    if (phc__trust_load(&trust, cfg->ca_file, (const unsigned char(*)[32])cfg->ca_sha256,
                        cfg->n_ca_sha256, &lerr) != PHC_OK) {
        ok = add(r, cfg->n_ca_sha256 ? "ca_sha256" : "ca_file", PHC_TRUST_FAIL, "%s", lerr.msg);
        goto done;
    }
    phc__trust_set_profile(trust, cfg->x509_profile);
    if (cfg->n_ca_sha256)
        ok = add(r, "ca_sha256", PHC_TRUST_PASS,
                 "%s holds exactly the %zu certificate%s ca_sha256 pins", cfg->ca_file,
                 cfg->n_ca_sha256, cfg->n_ca_sha256 == 1 ? "" : "s");
    else
        ok = add(r, "ca_sha256", PHC_TRUST_SKIPPED, "ca_sha256 is not set: %s is trusted as it is",
                 cfg->ca_file);
    if (ok && (rc = run_decoy(r, cfg, trust, o->decoy_dir, err)) != PHC_OK)
        goto done;
    ok = ok && run_expiry(r, trust, o, now);
    if (ok && o->chain_file && (rc = run_chain(r, cfg, trust, o->chain_file, now, err)) != PHC_OK)
        goto done;
done:
    phc__trust_free(trust);
    if (rc == PHC_OK && !ok)
        rc = phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    if (rc != PHC_OK) {
        phc_trust_report_free(r);
        return rc;
    }
    *out = r;
    return PHC_OK;
}

void phc_trust_report_free(phc_trust_report *r)
{
    if (!r)
        return;
    free(r->findings);
    free(r);
}

phc_trust_result phc_trust_report_overall(const phc_trust_report *r)
{
    return r ? r->overall : PHC_TRUST_SKIPPED;
}

size_t phc_trust_report_count(const phc_trust_report *r)
{
    return r ? r->n : 0;
}

const phc_trust_finding *phc_trust_report_get(const phc_trust_report *r, size_t i)
{
    return r && i < r->n ? &r->findings[i] : NULL;
}

long long phc_trust_report_ca_not_after(const phc_trust_report *r)
{
    return r ? r->ca_not_after : 0;
}

const char *phc_trust_result_name(phc_trust_result r)
{
    switch (r) {
    case PHC_TRUST_PASS:
        return "pass";
    case PHC_TRUST_WARN:
        return "warn";
    case PHC_TRUST_FAIL:
        return "fail";
    default:
        return "skipped";
    }
}
