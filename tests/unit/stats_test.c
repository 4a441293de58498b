/* stats unit: the process-wide counters and the per-thread facts of the last transfer, fed by
 * real requests to the mock Powerhub (tests/fixtures/mock_powerhub.c) over mutual TLS with the
 * key on a SoftHSM token: a full handshake, then a request on the kept-alive connection, a
 * request that never reaches a server; the certificate facts phc_client_stats reports; the
 * signature and reopen hooks; the refusal of NULL arguments. */
#include "stats.h"
#include "testclient.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <phconnect/stats.h>
#include <signal.h>
#include <time.h>

static pid_t g_mock = -1;

/* Starts the mock on an ephemeral port; returns the port or -1. */
static int start_mock(void)
{
    const char *mock = getenv("PHC_MOCK"), *pki = getenv("PHC_PKI");
    CHECK(mock && pki);
    if (!mock || !pki)
        return -1;
    char port_file[PATH_MAX], log[PATH_MAX], cert[PATH_MAX], key[PATH_MAX], ca[PATH_MAX];
    snprintf(port_file, sizeof(port_file), "%s/port", g_tmp);
    snprintf(log, sizeof(log), "%s/mock.log", g_tmp);
    snprintf(cert, sizeof(cert), "%s/server.pem", pki);
    snprintf(key, sizeof(key), "%s/server.key", pki);
    snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
    g_mock = fork();
    if (g_mock == 0) {
        execl(mock, mock, "--port", "0", "--port-file", port_file, "--log", log, "--cert", cert,
              "--key", key, "--client-ca", ca, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(port_file, "r");
        int port = -1;
        if (f && fscanf(f, "%d", &port) == 1 && port > 0) {
            fclose(f);
            return port;
        }
        if (f)
            fclose(f);
        usleep(50000);
    }
    fprintf(stderr, "mock did not start\n");
    return -1;
}

static void stop_mock(void)
{
    if (g_mock > 0) {
        kill(g_mock, SIGTERM);
        waitpid(g_mock, NULL, 0);
    }
}

static int request(phc_client *cl, phc_errbuf *e)
{
    phc_request req = PHC_REQUEST_INIT;
    req.path = "/v2/asset/sites";
    phc_response *r = NULL;
    int rc = phc_client_request(cl, &r, &req, e);
    phc_response_free(r);
    return rc;
}

static void stats(phc_client *cl, phc_stats *s)
{
    phc_errbuf e = {0};
    CHECK(phc_stats_init(s, PHC_STATS_VERSION) == 0);
    CHECK(phc_client_stats(cl, s, &e) == 0);
}

int main(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    phc_client *cl = NULL;
    phc_stats s0, s1, s2, s3;
    int reused = 7, resumed = 7;
    tok t;

    CHECK_ERR(phc_client_stats(NULL, &s0, &e), e, PHC_ERR_INTERNAL,
              "phc_client_stats: client or out is NULL");
    /* Nothing ran on this thread yet. */
    phc_client_last_connection(&reused, &resumed);
    CHECK(reused == -1 && resumed == -1);
    phc_client_last_connection(NULL, NULL);

    if (tt_begin("stats") || !tt_have_softhsm())
        TEST_MAIN_END();
    if (tc_token(&t, "tok", "/CN=stats-client"))
        goto out;
    int port = start_mock();
    if (port < 0)
        goto out;
    char url[64];
    snprintf(url, sizeof(url), "https://api.powerhub.test:%d", port);
    if (!(c = tc_config(&t, 1, url)))
        goto out;
    CHECK(phc_config_set(c, "pinned_ips", "127.0.0.1", &e) == 0);
    CHECK(phc_client_new(&cl, c, NULL, &e) == 0);
    if (!cl) {
        fprintf(stderr, "client: %s\n", e.msg);
        goto out;
    }
    CHECK_ERR(phc_client_stats(cl, NULL, &e), e, PHC_ERR_INTERNAL,
              "phc_client_stats: client or out is NULL");
    stats(cl, &s0);

    /* The certificate in use: the one on the token. */
    char pem[PATH_MAX + 16];
    snprintf(pem, sizeof(pem), "%s/client.pem", t.dir);
    FILE *f = fopen(pem, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    CHECK(x != NULL);
    if (x) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = BN_bn2hex(bn);
        char want[80];
        snprintf(want, sizeof(want), "%s%s", strlen(hex) % 2 ? "0" : "", hex);
        CHECK(s0.token_ok == 1 && strcmp(s0.cert_serial, want) == 0);
        struct tm tm;
        CHECK(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1 &&
              s0.cert_not_after == (long long)timegm(&tm));
        OPENSSL_free(hex);
        BN_free(bn);
        X509_free(x);
    }

    /* First request: a new connection with a full handshake, signed on the token. */
    int rc = request(cl, &e);
    CHECK(rc == 0);
    if (rc)
        fprintf(stderr, "request: %s\n", e.msg);
    stats(cl, &s1);
    CHECK(s1.requests == s0.requests + 1);
    CHECK(s1.handshakes_full == s0.handshakes_full + 1);
    CHECK(s1.connections_reused == s0.connections_reused);
    CHECK(s1.handshakes_resumed == s0.handshakes_resumed);
    CHECK(s1.token_signatures >= s0.token_signatures + 1);
    phc_client_last_connection(&reused, &resumed);
    CHECK(reused == 0 && resumed == 0);

    /* Second: on the kept-alive connection, no signature. */
    CHECK(request(cl, &e) == 0);
    stats(cl, &s2);
    CHECK(s2.requests == s1.requests + 1);
    CHECK(s2.connections_reused == s1.connections_reused + 1);
    CHECK(s2.handshakes_full == s1.handshakes_full);
    CHECK(s2.token_signatures == s1.token_signatures);
    phc_client_last_connection(&reused, &resumed);
    CHECK(reused == 1 && resumed == 0);

    /* The hooks the signing and reopening code call. */
    phc__stats_signature();
    phc__stats_reopen();
    phc__stats_reopen();
    phc__stats_reset_last();
    phc_client_last_connection(&reused, &resumed);
    CHECK(reused == -1 && resumed == -1);
    stats(cl, &s3);
    CHECK(s3.token_signatures == s2.token_signatures + 1);
    CHECK(s3.token_reopens == s2.token_reopens + 2);
    CHECK(s3.requests == s2.requests);
    phc_client_free(cl);
    cl = NULL;
    phc_config_free(c);
    c = NULL;

    /* A request that never reaches a server is not counted, and leaves "never reached". */
    stop_mock();
    g_mock = -1;
    if (!(c = tc_config(&t, 1, url)))
        goto out;
    CHECK(phc_config_set(c, "pinned_ips", "127.0.0.1", &e) == 0);
    CHECK(phc_client_new(&cl, c, NULL, &e) == 0);
    if (cl) {
        CHECK_ERR(request(cl, &e), e, PHC_ERR_NETWORK, "cannot connect");
        phc_client_last_connection(&reused, &resumed);
        CHECK(reused == -1 && resumed == -1);
        stats(cl, &s0);
        CHECK(s0.requests == s3.requests);
        CHECK(s0.handshakes_full == s3.handshakes_full);
    }
out:
    phc_client_free(cl);
    phc_config_free(c);
    stop_mock();
    tt_end();
    TEST_MAIN_END();
}
