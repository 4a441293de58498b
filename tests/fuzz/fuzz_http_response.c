/* HTTP response handling in lib/http.c, end to end: the input is the byte stream a server
 * sends back (status line, header block, body), served by a real TLS server on 127.0.0.1
 * inside this process to a real phc__xfer_perform (libcurl, the pinned trust, the address
 * policy, the header and body callbacks, the field parser behind phc_response_header, the
 * redirect refusal and the error mapping). The field parser (lib/http_headers.c) is also
 * fuzzed alone by fuzz_http_headers; this reaches it the way a server can.
 *
 * The PKI (a CA and a server certificate for api.fuzz.test) is made in memory at start-up,
 * so the target needs nothing from the test fixtures. Each input gets a fresh connection
 * that resumes the TLS session, which keeps an execution cheap, on one transfer handle that
 * serves every input, as a pooled handle serves one thread's requests (state left in the
 * handle by one response must not harm the next: see corpus/folded-first-header).
 *
 * Promises checked beyond memory safety:
 *  - only the classes a server can cause come back: OK, HTTP, NETWORK, and POLICY only for
 *    a response over the size limits (bytes, header fields) or a redirect;
 *  - a response is handed out exactly for OK and HTTP, with status 2xx for OK only;
 *  - a 3xx is never followed and is PHC_ERR_POLICY;
 *  - the body never exceeds max_response_bytes; the header block is bounded;
 *  - messages and log lines are one line each. */
#include "fuzz.h"

#include "config.h"
#include "http.h"
#include "log.h"
#include "tls.h"
#include "trust.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOST "api.fuzz.test"
#define MAX_BODY 8192 /* small, so that the size limit is reachable by the fuzzer */

static struct {
    int ready;
    int listen_fd;
    SSL_CTX *server_ctx;
    phc_config *cfg;
    phc_trust *trust;
    phc_tls *tls;
    CURLSH *share;
    phc_log log;
    phc_http_setup setup;
    phc_xfer *xfer;
    pthread_t server;
    pthread_mutex_t mu;
    const uint8_t *data; /* the response the server sends next; guarded by mu */
    size_t size;
} g = {.listen_fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER};

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http_response setup: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

static void on_log(void *ud, phc_log_level level, const char *msg)
{
    FUZZ_CHECK(strpbrk(msg, "\r\n") == NULL);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ext && X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for pub, signed by signer (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *pub, const char *cn, X509 *issuer, EVP_PKEY *signer, int ca)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    static long serial = 1;
    if (!c || !name || !X509_set_version(c, 2) ||
        !ASN1_INTEGER_set(X509_get_serialNumber(c), serial++) ||
        !X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), 30L * 86400) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                    0) ||
        !X509_set_subject_name(c, name) ||
        !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) ||
        !X509_set_pubkey(c, pub))
        die("certificate fields");
    X509 *iss = issuer ? issuer : c;
    int ok = add_ext(c, iss, NID_subject_key_identifier, "hash") &&
             add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
    if (ca)
        ok = ok && add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    else
        ok = ok && add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(c, iss, NID_key_usage, "critical,digitalSignature") &&
             add_ext(c, iss, NID_ext_key_usage, "serverAuth") &&
             add_ext(c, iss, NID_subject_alt_name, "DNS:" HOST);
    if (!ok || !X509_sign(c, signer, EVP_sha256()))
        die("certificate extensions or signature");
    X509_NAME_free(name);
    return c;
}

/* Reads the request head (the target sends no body), so that closing afterwards cannot
 * turn into a reset that destroys the response in flight. */
static int read_request(SSL *ssl)
{
    char buf[8192];
    size_t len = 0;
    while (len < sizeof(buf) - 1) {
        int n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len));
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 0;
    }
    return -1;
}

static void serve(int fd)
{
    uint8_t *copy = NULL;
    SSL *ssl = SSL_new(g.server_ctx);
    if (!ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1 || read_request(ssl) != 0)
        goto out;
    /* A copy: the client may give up (size limit) and the fuzzer reuse its input while
     * this thread is still writing. */
    pthread_mutex_lock(&g.mu);
    size_t left = g.size;
    if (!(copy = malloc(left ? left : 1)))
        abort();
    if (left)
        memcpy(copy, g.data, left);
    pthread_mutex_unlock(&g.mu);
    const uint8_t *p = copy;
    while (left > 0) {
        int n = SSL_write(ssl, p, left > 16384 ? 16384 : (int)left);
        if (n <= 0)
            goto out; /* the client gave up (size limit): fine */
        p += n;
        left -= (size_t)n;
    }
    SSL_shutdown(ssl);
    shutdown(fd, SHUT_WR);
    /* Linger until the client closes: it decides when the response has ended. */
    char junk[4096];
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (poll(&pfd, 1, 10000) > 0 && recv(fd, junk, sizeof(junk), 0) > 0)
        ;
out:
    free(copy);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
}

static void *server_main(void *arg)
{
    for (;;) {
        int fd = accept(g.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(fd);
    }
    return NULL;
}

static void setup(void)
{
    char ca_path[] = "/tmp/phc-fuzz-ca.XXXXXX", value[64];
    phc_errbuf err = {0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);

    signal(SIGPIPE, SIG_IGN);
    if (phc_global_init() != PHC_OK)
        die("phc_global_init");
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *srv_key = EVP_EC_gen("P-256");
    if (!ca_key || !srv_key)
        die("key generation");
    X509 *ca = make_cert(ca_key, "Fuzz Test CA", NULL, ca_key, 1);
    X509 *srv = make_cert(srv_key, HOST, ca, ca_key, 0);

    int fd = mkstemp(ca_path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !PEM_write_X509(f, ca) || fclose(f) != 0)
        die("writing the CA file");
    int rc = phc__trust_load(&g.trust, ca_path, NULL, 0, &err);
    unlink(ca_path);
    if (rc != PHC_OK)
        die(err.msg);

    if (!(g.server_ctx = SSL_CTX_new(TLS_server_method())) ||
        SSL_CTX_use_certificate(g.server_ctx, srv) != 1 ||
        SSL_CTX_use_PrivateKey(g.server_ctx, srv_key) != 1)
        die("server SSL_CTX");
    if ((g.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(g.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(g.listen_fd, 16) != 0 ||
        getsockname(g.listen_fd, (struct sockaddr *)&sa, &slen) != 0)
        die("listening socket");

    if (phc_config_new(&g.cfg, &err) != PHC_OK)
        die(err.msg);
    snprintf(value, sizeof(value), "https://" HOST ":%d", ntohs(sa.sin_port));
    if (phc_config_set(g.cfg, "url", value, &err) != PHC_OK ||
        phc_config_set(g.cfg, "pinned_ips", "127.0.0.1", &err) != PHC_OK ||
        phc_config_set(g.cfg, "connect_timeout", "5", &err) != PHC_OK ||
        phc_config_set(g.cfg, "timeout", "10", &err) != PHC_OK)
        die(err.msg);
    snprintf(value, sizeof(value), "%d", MAX_BODY);
    if (phc_config_set(g.cfg, "max_response_bytes", value, &err) != PHC_OK)
        die(err.msg);
    if (phc__tls_new(&g.tls, g.trust, NULL, NULL, g.cfg, &g.log, &err) != PHC_OK)
        die(err.msg);

    if (!(g.share = curl_share_init()) ||
        curl_share_setopt(g.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
        die("curl share");
    g.log = (phc_log){.fn = on_log, .level = PHC_LOG_DEBUG};
    g.setup = (phc_http_setup){.cfg = g.cfg, .tls = g.tls, .share = g.share, .log = &g.log};
    if (phc__xfer_new(&g.xfer, &g.setup, &err) != PHC_OK)
        die(err.msg);
    if (pthread_create(&g.server, NULL, server_main, NULL) != 0)
        die("server thread");
    /* The process ends with the fuzzer; the server and the handles live until then. */
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(srv_key);
    g.ready = 1;
}

static void check_response(int rc, const phc_response *resp, const phc_errbuf *err)
{
    fuzz_check_err(rc, err);
    FUZZ_CHECK(rc == PHC_OK || rc == PHC_ERR_HTTP || rc == PHC_ERR_POLICY || rc == PHC_ERR_NETWORK);
    FUZZ_CHECK((resp != NULL) == (rc == PHC_OK || rc == PHC_ERR_HTTP));
    /* What a server can do against policy: too much, or a redirect. Anything else it sends is
     * a broken answer (network), not a policy decision. */
    if (rc == PHC_ERR_POLICY && !strstr(err->msg, "larger than max_response_bytes") &&
        !strstr(err->msg, "response headers from") && !strstr(err->msg, "header fields") &&
        !strstr(err->msg, "redirects are never")) {
        fprintf(stderr, "policy error for a server's answer: %s\n", err->msg);
        FUZZ_CHECK(!"policy errors only for size and redirects");
    }
    if (!resp)
        return;
    long status = phc_response_status(resp);
    FUZZ_CHECK((rc == PHC_OK) == (status >= 200 && status <= 299));
    FUZZ_CHECK(status < 300 || status > 399);
    size_t blen = 0, hlen = 0;
    const char *body = phc_response_body(resp, &blen);
    const char *head = phc_response_headers(resp, &hlen);
    FUZZ_CHECK(body && body[blen] == '\0' && blen <= MAX_BODY);
    FUZZ_CHECK(head && head[hlen] == '\0' && hlen <= 64 * 1024);
    static const char *const names[] = {"Content-Type", "content-length", "Retry-After",
                                        "Location",     "X-Fuzz",         ""};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = phc_response_header(resp, names[i]);
        /* a value is a string inside the header block's copy, on one line */
        FUZZ_CHECK(!v || strpbrk(v, "\r\n") == NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.ready)
        setup();
    pthread_mutex_lock(&g.mu);
    g.data = data;
    g.size = size;
    pthread_mutex_unlock(&g.mu);

    phc_request req = {.version = PHC_REQUEST_VERSION,
                       .path = "/v2/asset/sites",
                       .flags = PHC_REQ_FRESH_CONNECTION};
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    int rc = phc__xfer_perform(g.xfer, &req, &resp, &err);
    if (getenv("PHC_FUZZ_VERBOSE"))
        fprintf(stderr, "rc %d status %ld: %s\n", rc, phc_response_status(resp), err.msg);
    check_response(rc, resp, &err);
    phc_response_free(resp);
    return 0;
}
