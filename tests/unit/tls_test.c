/* The server-certificate verifier driven with chains made here, in memory, one case per rule
 * of docs/trust.md: each case names the rule it proves and checks the refusal's code and
 * words (or the acceptance). The TLS policy is driven through real in-memory handshakes
 * against a server SSL_CTX of the test's own. */
#include "testutil.h"
#include "config.h"
#include "tls.h"
#include "x509_profile.h"
#include "log.h"

#include <openssl/dsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST "api.powerhub.test"

static void die(const char *what)
{
    fprintf(stderr, "tls_test: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    if (!k)
        die(curve);
    return k;
}

/* DSA with fresh 1024-bit parameters (a legacy root's key). */
static EVP_PKEY *dsa1024_key(void)
{
    EVP_PKEY *params = NULL, *k = NULL;
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL), *kc = NULL;
    if (!pc || EVP_PKEY_paramgen_init(pc) != 1 ||
        EVP_PKEY_CTX_set_dsa_paramgen_bits(pc, 1024) != 1 ||
        EVP_PKEY_CTX_set_dsa_paramgen_q_bits(pc, 160) != 1 || EVP_PKEY_paramgen(pc, &params) != 1 ||
        !(kc = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL)) || EVP_PKEY_keygen_init(kc) != 1 ||
        EVP_PKEY_keygen(kc, &k) != 1)
        die("DSA key");
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_CTX_free(kc);
    EVP_PKEY_free(params);
    return k;
}

static EVP_PKEY *rsa_key(size_t bits)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    if (!k)
        die("RSA key");
    return k;
}

/* What a test certificate looks like; zero means the well-formed default. */
typedef struct spec {
    const char *cn;     /* subject CN; NULL with empty_subject for none */
    const char *org;    /* optional O= after the CN */
    int org_repeat;     /* that many O= entries (default 1) */
    const char *ou;     /* optional OU= last */
    int empty_subject;  /* no subject at all */
    int ca;             /* CA:TRUE (critical), keyCertSign */
    const char *san;    /* e.g. "DNS:api.powerhub.test"; NULL: none (CA default none) */
    int no_san;         /* leaf without subjectAltName */
    int san_critical;   /* subjectAltName marked critical */
    const char *eku;    /* leaf EKU value; NULL: "serverAuth" */
    int no_eku;         /* leaf without extendedKeyUsage */
    int no_ski, no_aki; /* leave out the key identifiers */
    int bad_aki;        /* an authorityKeyIdentifier that does not parse */
    const char *nc;     /* nameConstraints value for a CA */
    const char *ku;     /* keyUsage value instead of the default */
    const EVP_MD *md;   /* signature digest; NULL: SHA-256 */
    long days;          /* validity from an hour ago; 0: 30 days; negative: expired */
} spec;

static void ext(X509 *c, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, c, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e || !X509_add_ext(c, e, -1))
        die(value);
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make(const spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    static long serial = 0x1000;
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (!c || !name || !X509_set_version(c, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(c), serial++))
        die("certificate");
    if (!s->empty_subject) {
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->cn, -1,
                                        -1, 0) ||
            (s->ou && !X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                                                  (const unsigned char *)s->ou, -1, -1, 0)))
            die("name");
        for (int i = 0; s->org && i < (s->org_repeat ? s->org_repeat : 1); i++)
            if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)s->org,
                                            -1, -1, 0))
                die("name");
    }
    long days = s->days ? s->days : 30;
    if (!X509_set_subject_name(c, name) ||
        !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(c, key) ||
        !X509_gmtime_adj(X509_getm_notBefore(c), days < 0 ? days * 86400 * 2 : -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), days * 86400))
        die("fields");
    X509 *iss = issuer ? issuer : c;
    if (!s->no_ski)
        ext(c, iss, NID_subject_key_identifier, "hash");
    if (s->bad_aki) {
        /* A SEQUENCE whose length runs past the end: not DER, so the extension fails to
         * parse (x509-limbo's "malformed AKI" root). */
        static const unsigned char junk[] = {0x30, 0x05, 0x80, 0x03, 0x01};
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *e = NULL;
        if (!os || !ASN1_OCTET_STRING_set(os, junk, sizeof(junk)) ||
            !(e = X509_EXTENSION_create_by_NID(NULL, NID_authority_key_identifier, 0, os)) ||
            !X509_add_ext(c, e, -1))
            die("bad AKI");
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
    } else if (!s->no_aki && issuer) {
        ext(c, iss, NID_authority_key_identifier, "keyid:always");
    }
    if (s->ca) {
        ext(c, iss, NID_basic_constraints, "critical,CA:TRUE");
        ext(c, iss, NID_key_usage, s->ku ? s->ku : "critical,keyCertSign,cRLSign");
        if (s->eku)
            ext(c, iss, NID_ext_key_usage, s->eku);
        if (s->nc)
            ext(c, iss, NID_name_constraints, s->nc);
        if (s->san)
            ext(c, iss, NID_subject_alt_name, s->san);
    } else {
        ext(c, iss, NID_basic_constraints, "critical,CA:FALSE");
        ext(c, iss, NID_key_usage, "critical,digitalSignature");
        if (!s->no_eku)
            ext(c, iss, NID_ext_key_usage, s->eku ? s->eku : "serverAuth");
        if (!s->no_san) {
            char v[512];
            snprintf(v, sizeof(v), "%s%s", s->san_critical ? "critical," : "",
                     s->san ? s->san : "DNS:" HOST);
            ext(c, iss, NID_subject_alt_name, v);
        }
    }
    if (!X509_sign(c, issuer_key ? issuer_key : key, s->md ? s->md : EVP_sha256()))
        die("sign");
    X509_NAME_free(name);
    return c;
}

/* ---------------------------------------------------------------------------------------- */

static char logbuf[4096];

static void on_log(void *ud, phc_log_level level, const char *msg)
{
    (void)ud;
    size_t n = strlen(logbuf);
    snprintf(logbuf + n, sizeof(logbuf) - n, "[%d] %s\n", (int)level, msg);
}

static phc_log test_log = {on_log, NULL, PHC_LOG_DEBUG};

/* A verifier as a connection builds it: the anchors pinned from a file, the config's host,
 * profile and minimum TLS version. */
typedef struct verifier {
    phc_trust *trust;
    phc_config *cfg;
    phc_tls *tls;
} verifier;

static void verifier_free(verifier *v)
{
    phc__tls_free(v->tls);
    phc__trust_free(v->trust);
    phc_config_free(v->cfg);
    memset(v, 0, sizeof(*v));
}

static int verifier_new(verifier *v, X509 *const *anchors, int n, const char *host,
                        const char *profile, const char *min_tls)
{
    char path[] = "/tmp/phc-tls-test.XXXXXX", url[256];
    phc_errbuf e = {0};
    memset(v, 0, sizeof(*v));
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    for (int i = 0; f && i < n; i++)
        PEM_write_X509(f, anchors[i]);
    if (!f || fclose(f) != 0)
        die("CA file");
    int rc = phc__trust_load(&v->trust, path, NULL, 0, &e);
    unlink(path);
    snprintf(url, sizeof(url), strchr(host, ':') ? "https://[%s]" : "https://%s", host);
    if (rc != PHC_OK || phc_config_new(&v->cfg, &e) != PHC_OK ||
        phc_config_set(v->cfg, "url", url, &e) != PHC_OK ||
        (profile && phc_config_set(v->cfg, "x509_profile", profile, &e) != PHC_OK) ||
        (min_tls && phc_config_set(v->cfg, "min_tls_version", min_tls, &e) != PHC_OK)) {
        fprintf(stderr, "verifier: %s\n", e.msg);
        return 0;
    }
    phc__trust_set_profile(v->trust, v->cfg->x509_profile);
    if (phc__tls_new(&v->tls, v->trust, NULL, NULL, v->cfg, &test_log, &e) != PHC_OK) {
        fprintf(stderr, "verifier: %s\n", e.msg);
        return 0;
    }
    return 1;
}

/* Runs the connection's verification on leaf + chain; returns the message ("" accepted). */
static const char *verify(const verifier *v, X509 *leaf, X509 *i1, X509 *i2, int *code)
{
    static phc_errbuf e;
    memset(&e, 0, sizeof(e));
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, leaf);
    if (i1)
        sk_X509_push(untrusted, i1);
    if (i2)
        sk_X509_push(untrusted, i2);
    phc_tls_report r;
    memset(&r, 0, sizeof(r));
    int ok = phc__tls_verify_chain(v->tls, leaf, untrusted, 0, &r, NULL);
    sk_X509_free(untrusted);
    *code = ok == 1 ? PHC_OK : phc__tls_report_err(v->tls, &r, &e);
    return e.msg;
}

/* Checks one verification: want NULL = accepted, else refused with PHC_ERR_TRUST and a
 * message containing want (and want2 when given). */
#define EXPECT(v, leaf, i1, i2, want, want2) expect_(__LINE__, v, leaf, i1, i2, want, want2)
static void expect_(int line, const verifier *v, X509 *leaf, X509 *i1, X509 *i2, const char *want,
                    const char *want2)
{
    int code = 0;
    const char *msg = verify(v, leaf, i1, i2, &code);
    int good = want
                   ? code == PHC_ERR_TRUST && strstr(msg, want) && (!want2 || strstr(msg, want2)) &&
                         strncmp(msg, "server certificate '", 20) == 0
                   : code == PHC_OK;
    if (getenv("TLS_TEST_VERBOSE"))
        printf("# line %d: %s\n", line, msg[0] ? msg : "(accepted)");
    if (good) {
        t_pass++;
    } else {
        t_fail++;
        fprintf(stderr, "tls_test.c:%d: wanted %s%s%s%s, got code %d: %s\n", line,
                want ? "refusal with '" : "acceptance", want ? want : "", want2 ? "' and '" : "",
                want2 ? want2 : "", code, msg);
    }
}

/* The PKI of most cases: a pinned root, an intermediate under it, the usual leaves. */
static EVP_PKEY *root_key, *int_key, *leaf_key;
static X509 *root, *inter;

static X509 *leaf_from_root(const spec *s)
{
    return make(s, leaf_key, root, root_key);
}

static void test_pinned_ok_and_foreign(void)
{
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    spec s = {.cn = HOST};
    X509 *good = leaf_from_root(&s);
    /* rule pinned-ca: a well-formed chain to the pinned root is accepted */
    EXPECT(&v, good, NULL, NULL, NULL, NULL);
    X509 *via_int = make(&s, leaf_key, inter, int_key);
    EXPECT(&v, via_int, inter, NULL, NULL, NULL);

    /* rule pinned-ca: another CA's certificate for the same name */
    EVP_PKEY *ok = ec_key("P-256");
    spec sr = {.cn = "Public Test CA", .ca = 1};
    X509 *other = make(&sr, ok, NULL, NULL);
    X509 *foreign = make(&s, leaf_key, other, ok);
    EXPECT(&v, foreign, NULL, NULL, "not issued by a pinned CA", "issued by 'CN=Public Test CA'");
    /* ... also when the server sends that CA along (self-signed, in the chain) */
    EXPECT(&v, foreign, other, NULL, "not issued by a pinned CA", "CN=Public Test CA");

    /* rule pinned-ca: a root with the pinned root's very name but another key */
    spec same = {.cn = "Powerhub Test Root CA", .ca = 1};
    X509 *twin = make(&same, ok, NULL, NULL);
    X509 *twin_leaf = make(&s, leaf_key, twin, ok);
    EXPECT(&v, twin_leaf, NULL, NULL, "refused", "Powerhub Test Root CA");
    EXPECT(&v, twin_leaf, twin, NULL, "refused", "Powerhub Test Root CA");

    /* rule pinned-ca: a chain through an unpinned root that cross-links to nothing pinned */
    spec si = {.cn = "Unpinned Issuing CA", .ca = 1};
    X509 *uint = make(&si, int_key, other, ok);
    X509 *deep = make(&s, leaf_key, uint, int_key);
    EXPECT(&v, deep, uint, other, "not issued by a pinned CA", "CN=Public Test CA");

    /* rule validity */
    spec sx = {.cn = HOST, .days = -1};
    X509 *expired = leaf_from_root(&sx);
    EXPECT(&v, expired, NULL, NULL, "certificate has expired", NULL);

    X509_free(good);
    X509_free(via_int);
    X509_free(other);
    X509_free(foreign);
    X509_free(twin);
    X509_free(twin_leaf);
    X509_free(uint);
    X509_free(deep);
    X509_free(expired);
    EVP_PKEY_free(ok);
    verifier_free(&v);
}

static void test_names(void)
{
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    /* rule san-name: the host must be a DNS subjectAltName */
    spec wrong = {.cn = HOST, .san = "DNS:wrong.powerhub.test"};
    X509 *w = leaf_from_root(&wrong);
    EXPECT(&v, w, NULL, NULL, "not valid for host '" HOST "'", NULL);
    /* rule san-only: a name only in the subject CN is not a name (RFC 9525 6.3) */
    spec cn_only = {.cn = HOST, .no_san = 1};
    X509 *c = leaf_from_root(&cn_only);
    EXPECT(&v, c, NULL, NULL, "not valid for host '" HOST "'",
           "it has no subjectAltName; a host name only in the subject CN is not accepted");
    /* ... and not even when the SAN lists other names (no CN fallback at all) */
    spec cn_plus = {.cn = HOST, .san = "DNS:other.powerhub.test"};
    X509 *cp = leaf_from_root(&cn_plus);
    EXPECT(&v, cp, NULL, NULL, "not valid for host", NULL);
    /* rule san-name: no partial wildcards ("api*.powerhub.test") */
    spec partial = {.cn = "x", .san = "DNS:api*.powerhub.test"};
    X509 *pw = leaf_from_root(&partial);
    EXPECT(&v, pw, NULL, NULL, "not valid for host", NULL);
    /* a full-label wildcard is a name (RFC 6125 6.4.3) */
    spec wild = {.cn = "x", .san = "DNS:*.powerhub.test"};
    X509 *wc = leaf_from_root(&wild);
    EXPECT(&v, wc, NULL, NULL, NULL, NULL);
    X509_free(w);
    X509_free(c);
    X509_free(cp);
    X509_free(pw);
    X509_free(wc);
    verifier_free(&v);

    /* rule san-ip: an IP literal URL is matched only against iPAddress SANs */
    verifier v4;
    CHECK(verifier_new(&v4, &root, 1, "127.0.0.1", NULL, NULL));
    spec ipok = {.cn = "x", .san = "IP:127.0.0.1"};
    spec ipother = {.cn = "x", .san = "IP:127.0.0.2"};
    spec ipdns = {.cn = "127.0.0.1", .san = "DNS:127.0.0.1"};
    spec ipcn = {.cn = "127.0.0.1", .no_san = 1};
    X509 *a = leaf_from_root(&ipok), *b = leaf_from_root(&ipother), *d = leaf_from_root(&ipdns),
         *e = leaf_from_root(&ipcn);
    EXPECT(&v4, a, NULL, NULL, NULL, NULL);
    EXPECT(&v4, b, NULL, NULL, "not valid for host '127.0.0.1'", NULL);
    EXPECT(&v4, d, NULL, NULL, "not valid for host '127.0.0.1'", NULL);
    EXPECT(&v4, e, NULL, NULL, "not valid for host '127.0.0.1'", "no subjectAltName");
    X509_free(a);
    X509_free(b);
    X509_free(d);
    X509_free(e);
    verifier_free(&v4);

    verifier v6;
    CHECK(verifier_new(&v6, &root, 1, "::1", NULL, NULL));
    spec ip6 = {.cn = "x", .san = "IP:::1"};
    X509 *six = leaf_from_root(&ip6), *four = leaf_from_root(&ipok);
    EXPECT(&v6, six, NULL, NULL, NULL, NULL);
    EXPECT(&v6, four, NULL, NULL, "not valid for host '::1'", NULL);
    X509_free(six);
    X509_free(four);
    verifier_free(&v6);
}

static void test_strength(void)
{
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    spec s = {.cn = "weak.powerhub.test"};
    /* rule level2-key: RSA below 2048 bits on the leaf */
    EVP_PKEY *r1024 = rsa_key(1024), *r2048 = rsa_key(2048), *p192 = ec_key("prime192v1");
    X509 *weak = make(&s, r1024, root, root_key);
    EXPECT(&v, weak, NULL, NULL, "key too weak for security level 2",
           "(certificate 'CN=weak.powerhub.test')");
    X509 *strong = make(&s, r2048, root, root_key);
    EXPECT(&v, strong, NULL, NULL, NULL, NULL);
    /* rule level2-key: EC below 224 bits */
    X509 *p = make(&s, p192, root, root_key);
    EXPECT(&v, p, NULL, NULL, "key too weak for security level 2", NULL);
    /* rule level2-signature: SHA-1 on the leaf */
    spec sha1 = {.cn = "sha1.powerhub.test", .md = EVP_sha1()};
    X509 *l1 = leaf_from_root(&sha1);
    EXPECT(&v, l1, NULL, NULL, "signature too weak for security level 2",
           "(certificate 'CN=sha1.powerhub.test')");
    /* ... and on the intermediate */
    spec si = {.cn = "SHA-1 Issuing CA", .ca = 1, .md = EVP_sha1()};
    X509 *i1 = make(&si, int_key, root, root_key);
    X509 *under = make(&s, leaf_key, i1, int_key);
    EXPECT(&v, under, i1, NULL, "signature too weak for security level 2",
           "(certificate 'CN=SHA-1 Issuing CA')");
    /* ... and an intermediate with a weak key */
    spec sw = {.cn = "RSA-1024 Issuing CA", .ca = 1};
    X509 *iw = make(&sw, r1024, root, root_key);
    X509 *underw = make(&s, leaf_key, iw, r1024);
    EXPECT(&v, underw, iw, NULL, "key too weak for security level 2", "RSA-1024 Issuing CA");
    X509_free(weak);
    X509_free(strong);
    X509_free(p);
    X509_free(l1);
    X509_free(i1);
    X509_free(under);
    X509_free(iw);
    X509_free(underw);
    verifier_free(&v);

    /* rule level2-key on the pinned root itself (a P-192 root, pinned) */
    spec sr = {.cn = "P-192 Root", .ca = 1};
    X509 *weak_root = make(&sr, p192, NULL, NULL);
    verifier vw;
    CHECK(verifier_new(&vw, &weak_root, 1, HOST, NULL, NULL));
    spec sl = {.cn = HOST};
    X509 *l = make(&sl, leaf_key, weak_root, p192);
    EXPECT(&vw, l, NULL, NULL, "key too weak for security level 2", "P-192 Root");
    /* compatible never relaxes strength */
    verifier_free(&vw);
    CHECK(verifier_new(&vw, &weak_root, 1, HOST, "compatible", NULL));
    EXPECT(&vw, l, NULL, NULL, "key too weak for security level 2", "P-192 Root");
    X509_free(l);
    X509_free(weak_root);
    verifier_free(&vw);

    /* ... and a DSA-1024 root */
    EVP_PKEY *dsa = dsa1024_key();
    spec sd = {.cn = "DSA Root", .ca = 1};
    X509 *dsa_root = make(&sd, dsa, NULL, NULL);
    X509 *dl = make(&sl, leaf_key, dsa_root, dsa);
    CHECK(verifier_new(&vw, &dsa_root, 1, HOST, "compatible", NULL));
    EXPECT(&vw, dl, NULL, NULL, "key too weak for security level 2", "(certificate 'CN=DSA Root')");
    verifier_free(&vw);
    X509_free(dl);
    X509_free(dsa_root);
    EVP_PKEY_free(dsa);
    EVP_PKEY_free(r1024);
    EVP_PKEY_free(r2048);
    EVP_PKEY_free(p192);
}

static void test_leaf_profile(void)
{
    verifier v, vc;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    CHECK(verifier_new(&vc, &root, 1, HOST, "compatible", NULL));
    /* rule leaf-end-entity */
    spec ca_leaf = {.cn = HOST,
                    .ca = 1,
                    .san = "DNS:" HOST,
                    .eku = "serverAuth",
                    .ku = "critical,digitalSignature,keyCertSign"};
    X509 *cl = leaf_from_root(&ca_leaf);
    EXPECT(&v, cl, NULL, NULL, "it is a CA certificate, not a server (end-entity) certificate",
           NULL);
    /* rule eku-serverauth: without serverAuth (OpenSSL's purpose check) */
    spec client_only = {.cn = HOST, .eku = "clientAuth"};
    X509 *co = leaf_from_root(&client_only);
    EXPECT(&v, co, NULL, NULL, "unsuitable certificate purpose", NULL);
    EXPECT(&vc, co, NULL, NULL, "unsuitable certificate purpose", NULL);
    /* rule eku-serverauth: with anyExtendedKeyUsage */
    spec any = {.cn = HOST, .eku = "serverAuth,anyExtendedKeyUsage"};
    X509 *an = leaf_from_root(&any);
    EXPECT(&v, an, NULL, NULL, "anyExtendedKeyUsage", NULL);
    /* rule eku-serverauth: no extendedKeyUsage at all */
    spec none = {.cn = HOST, .no_eku = 1};
    X509 *ne = leaf_from_root(&none);
    EXPECT(&v, ne, NULL, NULL, "it has no extendedKeyUsage", NULL);
    /* rule x509-strict: missing key identifiers */
    spec noaki = {.cn = HOST, .no_aki = 1};
    X509 *na = leaf_from_root(&noaki);
    EXPECT(&v, na, NULL, NULL, "no authorityKeyIdentifier key id", NULL);
    spec noski = {.cn = "No SKI Issuing CA", .ca = 1, .no_ski = 1};
    X509 *ins = make(&noski, int_key, root, root_key);
    /* The leaf's AKI key id is computed from a twin of that CA that has an SKI (same name and
     * key): the chain itself carries the CA without one. */
    spec twin = {.cn = "No SKI Issuing CA", .ca = 1};
    X509 *ins_twin = make(&twin, int_key, root, root_key);
    spec s = {.cn = HOST};
    X509 *under = make(&s, leaf_key, ins_twin, int_key);
    X509_free(ins_twin);
    EXPECT(&v, under, ins, NULL, "without subjectKeyIdentifier", "No SKI Issuing CA");
    /* compatible: exactly these are accepted */
    EXPECT(&vc, cl, NULL, NULL, NULL, NULL);
    EXPECT(&vc, an, NULL, NULL, NULL, NULL);
    EXPECT(&vc, ne, NULL, NULL, NULL, NULL);
    EXPECT(&vc, na, NULL, NULL, NULL, NULL);
    EXPECT(&vc, under, ins, NULL, NULL, NULL);
    /* ... and the name rules stay */
    spec cn_only = {.cn = HOST, .no_san = 1};
    X509 *c = leaf_from_root(&cn_only);
    EXPECT(&vc, c, NULL, NULL, "not valid for host", "no subjectAltName");
    X509_free(cl);
    X509_free(co);
    X509_free(an);
    X509_free(ne);
    X509_free(na);
    X509_free(ins);
    X509_free(under);
    X509_free(c);
    verifier_free(&v);
    verifier_free(&vc);
}

static void test_name_constraints(void)
{
    EVP_PKEY *k = ec_key("P-256");
    spec sc = {.cn = "Constrained CA", .ca = 1, .nc = "critical,permitted;DNS:powerhub.test"};
    X509 *cons = make(&sc, k, root, root_key);
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    spec in = {.cn = HOST};
    X509 *good = make(&in, leaf_key, cons, k);
    EXPECT(&v, good, cons, NULL, NULL, NULL);
    /* rule name-constraints: every SAN, not only the one that matched the host */
    spec out = {.cn = HOST, .san = "DNS:" HOST ",DNS:api.elsewhere.test"};
    X509 *bad = make(&out, leaf_key, cons, k);
    EXPECT(&v, bad, cons, NULL, "outside the CA's name constraints", NULL);
    spec outip = {.cn = HOST, .san = "DNS:" HOST ",IP:10.0.0.1"};
    spec ipcons = {.cn = "IP Constrained CA",
                   .ca = 1,
                   .nc = "critical,permitted;DNS:powerhub.test,permitted;IP:127.0.0.0/255.0.0.0"};
    X509 *ipc = make(&ipcons, k, root, root_key);
    X509 *badip = make(&outip, leaf_key, ipc, k);
    EXPECT(&v, badip, ipc, NULL, "outside the CA's name constraints", NULL);

    /* rule name-constraints (ours): a wildcard that covers an excluded host */
    spec sx = {.cn = "Excluding CA", .ca = 1, .nc = "critical,excluded;DNS:secret.powerhub.test"};
    X509 *excl = make(&sx, k, root, root_key);
    spec wild = {.cn = "x", .san = "DNS:*.powerhub.test"};
    X509 *w = make(&wild, leaf_key, excl, k);
    EXPECT(&v, w, excl, NULL, "reaches into a subtree the CA's name constraints exclude",
           "'*.powerhub.test' covers 'secret.powerhub.test'");
    /* an exact excluded host: OpenSSL's own check */
    spec direct = {.cn = "x", .san = "DNS:secret.powerhub.test,DNS:" HOST};
    X509 *dr = make(&direct, leaf_key, excl, k);
    EXPECT(&v, dr, excl, NULL, "outside the CA's name constraints", NULL);
    /* a wildcard one level away from the excluded subtree is fine */
    spec far = {.cn = "x", .san = "DNS:*.api.powerhub.test,DNS:" HOST};
    X509 *fr = make(&far, leaf_key, excl, k);
    EXPECT(&v, fr, excl, NULL, NULL, NULL);
    verifier vc;
    CHECK(verifier_new(&vc, &root, 1, HOST, "compatible", NULL));
    EXPECT(&vc, w, excl, NULL, "exclude", NULL);
    verifier_free(&vc);
    X509_free(cons);
    X509_free(good);
    X509_free(bad);
    X509_free(ipc);
    X509_free(badip);
    X509_free(excl);
    X509_free(w);
    X509_free(dr);
    X509_free(fr);
    EVP_PKEY_free(k);
    verifier_free(&v);
}

static void test_partial_chain(void)
{
    spec s = {.cn = HOST};
    X509 *under_int = make(&s, leaf_key, inter, int_key);
    X509 *under_root = leaf_from_root(&s);
    /* rule partial-chain: an intermediate pin anchors a chain, and -v says so */
    verifier v;
    CHECK(verifier_new(&v, &inter, 1, HOST, NULL, NULL));
    logbuf[0] = '\0';
    EXPECT(&v, under_int, NULL, NULL, NULL, NULL);
    CHECK(strstr(logbuf, "[2] server certificate 'CN=" HOST
                         "' trusted at the pinned intermediate 'CN=Powerhub Test Issuing CA' "
                         "(partial chain") != NULL);
    EXPECT(&v, under_root, NULL, NULL, "not issued by a pinned CA", NULL);
    verifier_free(&v);
    /* with only the root pinned, nothing is said (a full chain) */
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    logbuf[0] = '\0';
    EXPECT(&v, under_int, inter, NULL, NULL, NULL);
    CHECK(strstr(logbuf, "partial chain") == NULL);
    verifier_free(&v);

    /* rule partial-chain: a root whose authorityKeyIdentifier does not parse is not a valid
     * self-signed root; pinned alone it anchors nothing ... */
    EVP_PKEY *k = ec_key("P-256");
    spec sb = {.cn = "Malformed AKI Root", .ca = 1, .bad_aki = 1};
    X509 *bad_root = make(&sb, k, NULL, NULL);
    X509 *l = make(&s, leaf_key, bad_root, k);
    CHECK(verifier_new(&v, &bad_root, 1, HOST, NULL, NULL));
    EXPECT(&v, l, NULL, NULL, "refused", "Malformed AKI Root");
    verifier_free(&v);
    CHECK(verifier_new(&v, &bad_root, 1, HOST, "compatible", NULL));
    EXPECT(&v, l, NULL, NULL, "refused", "Malformed AKI Root");
    verifier_free(&v);
    /* ... nor when an intermediate pin turns partial chains on */
    X509 *both[2] = {bad_root, inter};
    CHECK(verifier_new(&v, both, 2, HOST, "compatible", NULL));
    EXPECT(&v, l, NULL, NULL, "refused", "Malformed AKI Root");
    verifier_free(&v);

    /* rule partial-chain: a root whose authorityKeyIdentifier names another key is not
     * self-signed to OpenSSL; with partial chains on (an intermediate pin) OpenSSL would take
     * it as an anchor of its own. Pinned as a root, it must anchor nothing. */
    EVP_PKEY *k2 = ec_key("P-256");
    spec sm = {.cn = "Mismatched AKI Root", .ca = 1};
    X509 *namesake = make(&sm, k2, NULL, NULL);
    X509 *mis_root = make(&sm, k, namesake, k); /* AKI from namesake, signed by itself */
    X509 *ml = make(&s, leaf_key, mis_root, k);
    X509 *pins[2] = {mis_root, inter};
    CHECK(verifier_new(&v, pins, 1, HOST, NULL, NULL));
    EXPECT(&v, ml, NULL, NULL, "refused", "Mismatched AKI Root");
    verifier_free(&v);
    CHECK(verifier_new(&v, pins, 2, HOST, NULL, NULL));
    EXPECT(&v, ml, NULL, NULL, "the pinned root it ends at is not a valid self-signed certificate",
           "Mismatched AKI Root");
    verifier_free(&v);
    CHECK(verifier_new(&v, pins, 2, HOST, "compatible", NULL));
    EXPECT(&v, ml, NULL, NULL, "the pinned root it ends at is not a valid self-signed certificate",
           "Mismatched AKI Root");
    verifier_free(&v);
    X509_free(namesake);
    X509_free(mis_root);
    X509_free(ml);
    EVP_PKEY_free(k2);
    X509_free(bad_root);
    X509_free(l);
    X509_free(under_int);
    X509_free(under_root);
    EVP_PKEY_free(k);
}

static void test_messages(void)
{
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, "compatible", NULL));
    /* a leaf with an empty subject is described by serial and SAN */
    spec empty = {.empty_subject = 1, .san = "DNS:other.powerhub.test", .san_critical = 1};
    X509 *e = leaf_from_root(&empty);
    EXPECT(&v, e, NULL, NULL, "server certificate '(empty subject, serial 0x",
           ", SAN other.powerhub.test)' issued by 'CN=Powerhub Test Root CA'");
    /* long names are shortened in the middle; the reason still fits */
    char org[61];
    memset(org, 'x', 60);
    org[60] = '\0';
    spec lng = {.cn = "long.powerhub.test",
                .org = org,
                .org_repeat = 5,
                .ou = "TAILMARKER",
                .san = "DNS:nope.powerhub.test"};
    X509 *ln = leaf_from_root(&lng);
    int code = 0;
    const char *msg = verify(&v, ln, NULL, NULL, &code);
    CHECK(code == PHC_ERR_TRUST);
    printf("# %s\n", msg);
    /* RFC 2253 prints the last RDN first: both ends survive, the middle goes */
    CHECK(strstr(msg, "server certificate 'O=xxx") != NULL);
    CHECK(strstr(msg, "xxx...xxx") != NULL);
    CHECK(strstr(msg, "x,OU=TAILMARKER,CN=long.powerhub.test' issued by") != NULL);
    CHECK(strstr(msg, "not valid for host '" HOST "'") != NULL);
    X509_free(e);
    X509_free(ln);
    verifier_free(&v);
}

/* ---------------------------------------------------------------------------------------- */
/* Handshakes in memory: the SSL_CTX a connection gets, configured by phc__tls_configure. */

typedef struct hs_result {
    int client_ok;
    phc_tls_report report;
    char version[16], cipher[64];
} hs_result;

static SSL_CTX *server_ctx(X509 *cert, EVP_PKEY *key, X509 *chain1, const char *ciphers,
                           int max_version)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_security_level(s, 0);
    if (!s || SSL_CTX_use_certificate(s, cert) != 1 || SSL_CTX_use_PrivateKey(s, key) != 1 ||
        (chain1 && SSL_CTX_add1_chain_cert(s, chain1) != 1))
        die("server SSL_CTX");
    if (ciphers && SSL_CTX_set_cipher_list(s, ciphers) != 1)
        die(ciphers);
    if (max_version)
        SSL_CTX_set_max_proto_version(s, max_version);
    return s;
}

/* One handshake between a phconnect client context (extra_ca added to its own store, as
 * libcurl would add a CA file) and sctx, over a memory BIO pair. */
static void handshake(const verifier *v, SSL_CTX *sctx, X509 *extra_ca, hs_result *out)
{
    memset(out, 0, sizeof(*out));
    phc_errbuf e = {0};
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    if (!cctx)
        die("client SSL_CTX");
    /* The careless client's trust: the defaults (SSL_CERT_FILE/DIR) and a CA of its own. */
    SSL_CTX_set_default_verify_paths(cctx);
    if (extra_ca)
        X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), extra_ca);
    if (phc__tls_configure(v->tls, cctx, &out->report, &e) != PHC_OK)
        die(e.msg);
    SSL *c = SSL_new(cctx), *s = SSL_new(sctx);
    BIO *cb = NULL, *sb = NULL;
    if (!c || !s || !BIO_new_bio_pair(&cb, 0, &sb, 0))
        die("SSL");
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    SSL_set_tlsext_host_name(c, HOST);
    int cdone = 0, sdone = 0, cfail = 0, sfail = 0;
    for (int i = 0; i < 50 && !(cdone && sdone) && !cfail && !sfail; i++) {
        if (!cdone) {
            int r = SSL_do_handshake(c);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
                cfail = 1;
        }
        if (!sdone) {
            int r = SSL_do_handshake(s);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
                sfail = 1;
        }
    }
    out->client_ok = cdone && !cfail;
    snprintf(out->version, sizeof(out->version), "%s", SSL_get_version(c));
    snprintf(out->cipher, sizeof(out->cipher), "%s", cdone ? SSL_get_cipher_name(c) : "");
    ERR_clear_error();
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);
}

static void test_handshakes(void)
{
    verifier v;
    CHECK(verifier_new(&v, &root, 1, HOST, NULL, NULL));
    spec s = {.cn = HOST};
    X509 *good = leaf_from_root(&s);
    hs_result r;

    SSL_CTX *sg = server_ctx(good, leaf_key, NULL, NULL, 0);
    handshake(&v, sg, NULL, &r);
    CHECK(r.client_ok && !r.report.failed && strcmp(r.version, "TLSv1.3") == 0);

    /* rule pinned-ca: a CA in the SSL_CTX's own store (libcurl's CAINFO) and in
     * SSL_CERT_FILE reaches nothing */
    EVP_PKEY *dk = ec_key("P-256");
    spec sd = {.cn = "Decoy CA", .ca = 1};
    X509 *decoy = make(&sd, dk, NULL, NULL);
    X509 *dleaf = make(&s, leaf_key, decoy, dk);
    SSL_CTX *sdc = server_ctx(dleaf, leaf_key, NULL, NULL, 0);
    handshake(&v, sdc, decoy, &r);
    CHECK(!r.client_ok && r.report.failed);
    phc_errbuf e = {0};
    CHECK_ERR(phc__tls_report_err(v.tls, &r.report, &e), e, PHC_ERR_TRUST,
              "issued by 'CN=Decoy CA' refused: not issued by a pinned CA");

    /* TLS policy: TLS 1.2 only with ECDHE + AEAD */
    SSL_CTX *s12 = server_ctx(good, leaf_key, NULL, NULL, TLS1_2_VERSION);
    handshake(&v, s12, NULL, &r);
    CHECK(r.client_ok && strcmp(r.version, "TLSv1.2") == 0 &&
          strncmp(r.cipher, "ECDHE-ECDSA-", 12) == 0);
    SSL_CTX *scbc = server_ctx(good, leaf_key, NULL, "ECDHE-ECDSA-AES128-SHA256", TLS1_2_VERSION);
    handshake(&v, scbc, NULL, &r);
    CHECK(!r.client_ok && !r.report.failed);
    SSL_CTX *snull = server_ctx(good, leaf_key, NULL, "NULL:@SECLEVEL=0", TLS1_2_VERSION);
    handshake(&v, snull, NULL, &r);
    CHECK(!r.client_ok);
    /* options an OPENSSL_CONF could have set are cleared, ours set */
    SSL_CTX *pre = SSL_CTX_new(TLS_client_method());
    phc_tls_report pr;
    SSL_CTX_set_options(pre, SSL_OP_LEGACY_SERVER_CONNECT |
                                 SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION |
                                 SSL_OP_NO_EXTENDED_MASTER_SECRET | SSL_OP_ALLOW_NO_DHE_KEX |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_security_level(pre, 0);
    CHECK(pre && phc__tls_configure(v.tls, pre, &pr, &e) == PHC_OK);
    uint64_t opts = SSL_CTX_get_options(pre);
    CHECK((opts & (SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION |
                   SSL_OP_NO_EXTENDED_MASTER_SECRET | SSL_OP_ALLOW_NO_DHE_KEX |
                   SSL_OP_IGNORE_UNEXPECTED_EOF)) == 0);
    CHECK((opts & SSL_OP_NO_RENEGOTIATION) && SSL_CTX_get_security_level(pre) == 2);
    CHECK(SSL_CTX_get_min_proto_version(pre) == TLS1_2_VERSION);
    SSL_CTX_free(pre);
    /* min_tls_version = 1.3 refuses a TLS 1.2 server */
    verifier v13;
    CHECK(verifier_new(&v13, &root, 1, HOST, NULL, "1.3"));
    handshake(&v13, s12, NULL, &r);
    CHECK(!r.client_ok);
    handshake(&v13, sg, NULL, &r);
    CHECK(r.client_ok && strcmp(r.version, "TLSv1.3") == 0);
    verifier_free(&v13);

    /* rule level2-key in a handshake: a trust refusal from our verifier, naming the
     * certificate, not a protocol failure */
    EVP_PKEY *r1024 = rsa_key(1024);
    spec sw = {.cn = "weak.powerhub.test", .san = "DNS:" HOST};
    X509 *weak = make(&sw, r1024, root, root_key);
    SSL_CTX *swk = server_ctx(weak, r1024, NULL, NULL, 0);
    handshake(&v, swk, NULL, &r);
    CHECK(!r.client_ok && r.report.failed);
    CHECK_ERR(phc__tls_report_err(v.tls, &r.report, &e), e, PHC_ERR_TRUST,
              "key too weak for security level 2 (RSA/DSA below 2048 bits, EC below 224 bits) "
              "(certificate 'CN=weak.powerhub.test')");
    SSL_CTX *swk12 = server_ctx(weak, r1024, NULL, NULL, TLS1_2_VERSION);
    handshake(&v, swk12, NULL, &r);
    CHECK(!r.client_ok && r.report.failed);

    SSL_CTX_free(sg);
    SSL_CTX_free(sdc);
    SSL_CTX_free(s12);
    SSL_CTX_free(scbc);
    SSL_CTX_free(snull);
    SSL_CTX_free(swk);
    SSL_CTX_free(swk12);
    X509_free(good);
    X509_free(decoy);
    X509_free(dleaf);
    X509_free(weak);
    EVP_PKEY_free(dk);
    EVP_PKEY_free(r1024);
    verifier_free(&v);
}

static void test_config_keys(void)
{
    phc_config *cfg = NULL;
    phc_errbuf e = {0};
    CHECK(phc_config_new(&cfg, &e) == PHC_OK);
    CHECK(cfg->x509_profile == PHC_X509_STRICT && cfg->min_tls_version == 12);
    CHECK_ERR(phc_config_set(cfg, "x509_profile", "lenient", &e), e, PHC_ERR_CONFIG,
              "key 'x509_profile': must be strict or compatible");
    CHECK_ERR(phc_config_set(cfg, "min_tls_version", "1.1", &e), e, PHC_ERR_CONFIG,
              "key 'min_tls_version': must be 1.2 or 1.3");
    CHECK(phc_config_set(cfg, "min_tls_version", "1.3", &e) == PHC_OK &&
          cfg->min_tls_version == 13);
    CHECK(phc_config_set(cfg, "x509_profile", "compatible", &e) == PHC_OK &&
          cfg->x509_profile == PHC_X509_COMPATIBLE);
    phc_config_free(cfg);
}

int main(void)
{
    root_key = ec_key("P-256");
    int_key = ec_key("P-256");
    leaf_key = ec_key("P-256");
    spec sr = {.cn = "Powerhub Test Root CA", .ca = 1};
    spec si = {.cn = "Powerhub Test Issuing CA", .ca = 1};
    root = make(&sr, root_key, NULL, NULL);
    inter = make(&si, int_key, root, root_key);

    test_config_keys();
    test_pinned_ok_and_foreign();
    test_names();
    test_strength();
    test_leaf_profile();
    test_name_constraints();
    test_partial_chain();
    test_messages();
    test_handshakes();

    X509_free(root);
    X509_free(inter);
    EVP_PKEY_free(root_key);
    EVP_PKEY_free(int_key);
    EVP_PKEY_free(leaf_key);
    TEST_MAIN_END();
}
