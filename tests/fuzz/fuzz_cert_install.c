/* Certificate-install input: phc_token_check_cert (lib/token_cert.c), the checks `phc install`
 * runs before it stores anything - PEM parsing, validity window, CA flag, key usages, chain
 * to the pinned CA, key strength and signature algorithm, match with a key on the token -
 * against a real SoftHSM token.
 *
 * Each input is checked twice: as it is, and - when it holds a certificate OpenSSL can parse
 * - re-issued by the pinned CA for the token's key, with everything else (dates, names,
 * extensions, serial) as the input has it. A mutated certificate practically never carries
 * a valid signature, so without the second form every input would stop at the chain check;
 * with it, the later checks and the success path see the fuzzer's mutations too.
 *
 * Set-up (once per process): a token made by tests/fixtures/token.sh in a temporary
 * directory (removed at exit), a CA made in memory. Time is fixed (2026-01-01) so that the
 * committed corpus means the same thing every year.
 *
 * Promises checked beyond memory safety:
 *  - a refusal is PHC_ERR_CONFIG (not a certificate) or PHC_ERR_TRUST, on one line; nothing
 *    else (the token is fine);
 *  - an accepted certificate is the re-issued form (the raw input cannot chain to a CA made
 *    at start-up), its pair has a certificate, a supported key, no mismatch, and is not
 *    reported as already on the token (check never stores). */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fuzz.h"

#include <ftw.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#ifndef PHC_SRC_DIR
#error "PHC_SRC_DIR (the source tree, for tests/fixtures/token.sh) must be defined"
#endif

#define NOW 1767225600LL /* 2026-01-01T00:00:00Z */

static struct {
    int ready;
    char dir[64];
    phc_config *cfg;
    phc_token *token;
    EVP_PKEY *ca_key;
    X509 *ca;
    EVP_PKEY *token_pub;
} g;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_cert_install setup: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    phc_token_free(g.token);
    phc_config_free(g.cfg);
    if (g.dir[0])
        nftw(g.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static X509 *make_ca(EVP_PKEY *key)
{
    X509 *c = X509_new();
    X509_NAME *n = X509_NAME_new();
    X509V3_CTX ctx;
    X509_EXTENSION *bc = NULL, *ku = NULL;
    if (!c || !n || !X509_set_version(c, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(c), 1) ||
        !ASN1_TIME_set(X509_getm_notBefore(c), (time_t)(NOW - 3650 * 86400LL)) ||
        !ASN1_TIME_set(X509_getm_notAfter(c), (time_t)(NOW + 3650 * 86400LL)) ||
        !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"Fuzz Vendor CA",
                                    -1, -1, 0) ||
        !X509_set_subject_name(c, n) || !X509_set_issuer_name(c, n) || !X509_set_pubkey(c, key))
        die("CA fields");
    X509V3_set_ctx(&ctx, c, c, NULL, NULL, 0);
    if (!(bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE")) ||
        !(ku = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) ||
        !X509_add_ext(c, bc, -1) || !X509_add_ext(c, ku, -1) || !X509_sign(c, key, EVP_sha256()))
        die("CA extensions or signature");
    X509_EXTENSION_free(bc);
    X509_EXTENSION_free(ku);
    X509_NAME_free(n);
    return c;
}

static void set(const char *key, const char *value)
{
    phc_errbuf err = {0};
    if (phc_config_set(g.cfg, key, value, &err) != PHC_OK)
        die(err.msg);
}

static void setup(void)
{
    char cmd[512], path[128];
    phc_errbuf err = {0};
    snprintf(g.dir, sizeof(g.dir), "/tmp/phc-fuzz-cert.XXXXXX");
    if (!mkdtemp(g.dir))
        die("mkdtemp");
    snprintf(cmd, sizeof(cmd),
             "bash '%s/tests/fixtures/token.sh' init '%s/tok' phc-fuzz ec:P-256 >/dev/null",
             PHC_SRC_DIR, g.dir);
    if (system(cmd) != 0)
        die("token.sh init failed");
    snprintf(path, sizeof(path), "%s/tok/softhsm2.conf", g.dir);
    setenv("SOFTHSM2_CONF", path, 1);

    snprintf(path, sizeof(path), "%s/tok/pub.pem", g.dir);
    FILE *f = fopen(path, "r");
    if (!f || !(g.token_pub = PEM_read_PUBKEY(f, NULL, NULL, NULL)))
        die("reading the token's public key");
    fclose(f);
    if (!(g.ca_key = EVP_EC_gen("P-256")))
        die("CA key");
    g.ca = make_ca(g.ca_key);
    snprintf(path, sizeof(path), "%s/ca.pem", g.dir);
    if (!(f = fopen(path, "w")) || !PEM_write_X509(f, g.ca) || fclose(f) != 0)
        die("writing the CA file");

    if (phc_config_new(&g.cfg, &err) != PHC_OK)
        die(err.msg);
    set("url", "https://api.fuzz.test");
    set("ca_file", path);
    set("pkcs11_module", "/usr/lib/softhsm/libsofthsm2.so");
    set("key", "pkcs11:token=phc-fuzz;object=client;type=private");
    snprintf(path, sizeof(path), "file:%s/tok/pin", g.dir);
    set("pin", path);
    if (phc_token_open(&g.token, g.cfg, NULL, &err) != PHC_OK)
        die(err.msg);
    /* Registered after SoftHSM's own exit handlers, so it runs before them. */
    atexit(teardown);
    g.ready = 1;
}

/* The input's first certificate re-issued by the CA for the token key, as PEM; NULL when
 * the input holds none OpenSSL can parse or re-sign. */
static char *reissue(const uint8_t *data, size_t size, size_t *len)
{
    BIO *in = BIO_new_mem_buf(data, (int)size), *out = NULL;
    X509 *x = in ? PEM_read_bio_X509(in, NULL, NULL, NULL) : NULL;
    char *pem = NULL;
    BUF_MEM *mem = NULL;
    if (!x || !X509_set_issuer_name(x, X509_get_subject_name(g.ca)) ||
        !X509_set_pubkey(x, g.token_pub) || !X509_sign(x, g.ca_key, EVP_sha256()) ||
        !(out = BIO_new(BIO_s_mem())) || !PEM_write_bio_X509(out, x))
        goto out;
    BIO_get_mem_ptr(out, &mem);
    if (!(pem = malloc(mem->length)))
        abort();
    memcpy(pem, mem->data, mem->length);
    *len = mem->length;
out:
    ERR_clear_error();
    X509_free(x);
    BIO_free(in);
    BIO_free(out);
    return pem;
}

static void check(const char *pem, size_t len, int reissued)
{
    phc_pair_info *pi = NULL;
    int already = -1;
    phc_errbuf err = {0};
    int rc = phc_token_check_cert(g.token, pem, len, NOW, &pi, &already, &err);
    if (getenv("PHC_FUZZ_VERBOSE"))
        fprintf(stderr, "%s: rc %d %s\n", reissued ? "re-issued" : "as given", rc,
                rc ? err.msg : phc_pair_state_name(pi->state));
    fuzz_check_err(rc, &err);
    if (rc != PHC_OK) {
        if (rc != PHC_ERR_CONFIG && rc != PHC_ERR_TRUST)
            fprintf(stderr, "unexpected class %d: %s\n", rc, err.msg);
        FUZZ_CHECK(rc == PHC_ERR_CONFIG || rc == PHC_ERR_TRUST);
        FUZZ_CHECK(pi == NULL);
        return;
    }
    FUZZ_CHECK(reissued);
    FUZZ_CHECK(pi && pi->has_cert && pi->key_supported && !pi->key_mismatch);
    FUZZ_CHECK(already == 0);
    FUZZ_CHECK(pi && memchr(pi->subject, '\0', sizeof(pi->subject)) != NULL);
    phc_pair_info_free(pi);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    check((const char *)data, size, 0);
    size_t len = 0;
    char *pem = reissue(data, size, &len);
    if (pem)
        check(pem, len, 1);
    free(pem);
    return 0;
}
