/* The transfer layer below the client: pinned_ips hold even for a URL whose host is an IP
 * literal outside them (config validation refuses that; this proves the layer below does not
 * depend on it), also for an IPv6 literal, and request validation. */
#include "config.h"
#include "http.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static phc_config *config(const char *url, const char *pinned)
{
    phc_config *cfg = NULL;
    phc_errbuf e = {0};
    /* Set key by key without phc_config_validate: validation would refuse this url outside
     * pinned_ips before the transfer layer is ever reached, and that layer is what is tested. */
    if (phc_config_new(&cfg, &e) != PHC_OK || phc_config_set(cfg, "url", url, &e) != PHC_OK ||
        phc_config_set(cfg, "pinned_ips", pinned, &e) != PHC_OK ||
        phc_config_set(cfg, "connect_timeout", "2", &e) != PHC_OK) {
        fprintf(stderr, "config: %s\n", e.msg);
        phc_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static void test_pinned_only(void)
{
    /* A live listener at the URL's own address: it must see no connection. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &slen) == 0);
    char url[64];
    snprintf(url, sizeof(url), "https://127.0.0.1:%d", ntohs(sa.sin_port));
    phc_config *cfg = config(url, "127.0.0.2, ::1");
    CHECK(cfg != NULL);
    if (!cfg) {
        close(lfd);
        return;
    }
    phc_http_setup setup = {.cfg = cfg};
    phc_xfer *x = NULL;
    phc_errbuf e = {0};
    CHECK(phc__xfer_new(&x, &setup, &e) == PHC_OK);
    phc_response *resp = NULL;
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites"};
    CHECK_ERR(phc__xfer_perform(x, &req, &resp, &e), e, PHC_ERR_NETWORK,
              "addresses tried: 127.0.0.2, ::1)");
    CHECK(resp == NULL);
    CHECK(accept(lfd, NULL, NULL) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    phc__xfer_free(x);
    phc_config_free(cfg);
    close(lfd);
}

/* An IPv6-literal URL: libcurl cannot map it to other addresses (http.c says why), so it is
 * connected to as it is, and the socket guard refuses it when it is not pinned - a policy
 * refusal, with nothing reaching a live listener at that address. */
static void test_ipv6_literal_not_pinned(void)
{
    int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t slen = sizeof(sa);
    CHECK(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(lfd, 4) == 0 &&
          getsockname(lfd, (struct sockaddr *)&sa, &slen) == 0);
    char url[64];
    snprintf(url, sizeof(url), "https://[::1]:%d", ntohs(sa.sin6_port));
    phc_config *cfg = config(url, "127.0.0.2");
    CHECK(cfg != NULL);
    if (!cfg) {
        close(lfd);
        return;
    }
    phc_http_setup setup = {.cfg = cfg};
    phc_xfer *x = NULL;
    phc_errbuf e = {0};
    CHECK(phc__xfer_new(&x, &setup, &e) == PHC_OK);
    phc_response *resp = NULL;
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites"};
    CHECK_ERR(phc__xfer_perform(x, &req, &resp, &e), e, PHC_ERR_POLICY,
              "connection to ::1 refused by policy: the address is not in pinned_ips");
    CHECK(resp == NULL);
    CHECK(accept(lfd, NULL, NULL) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    phc__xfer_free(x);
    phc_config_free(cfg);
    close(lfd);
}

static void test_request_checks(void)
{
    phc_config *cfg = config("https://127.0.0.1:9", "127.0.0.1");
    CHECK(cfg != NULL);
    if (!cfg)
        return;
    phc_http_setup setup = {.cfg = cfg};
    phc_xfer *x = NULL;
    phc_errbuf e = {0};
    CHECK(phc__xfer_new(&x, &setup, &e) == PHC_OK);
    phc_response *resp = NULL;
    phc_request rel = {.version = PHC_REQUEST_VERSION, .path = "v2/asset/sites"};
    CHECK_ERR(phc__xfer_perform(x, &rel, &resp, &e), e, PHC_ERR_CONFIG, "must start with '/'");
    phc_request space = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset sites"};
    CHECK_ERR(phc__xfer_perform(x, &space, &resp, &e), e, PHC_ERR_CONFIG, "space or control");
    const char *inject[] = {"X-Test: a\r\nHost: evil", NULL};
    phc_request hdr = {
        .version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites", .headers = inject};
    CHECK_ERR(phc__xfer_perform(x, &hdr, &resp, &e), e, PHC_ERR_CONFIG, "one line");
    const char *noname[] = {"no colon here", NULL};
    phc_request hdr2 = {
        .version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites", .headers = noname};
    CHECK_ERR(phc__xfer_perform(x, &hdr2, &resp, &e), e, PHC_ERR_CONFIG, "Name: value");
    /* Host, in any case, and a control character anywhere in a header are refused; the
     * message names the header. A tab inside a value is fine. */
    static const struct {
        const char *header, *want;
    } bad[] = {
        {"Host: other.example", "header 'Host' is refused"},
        {"hOsT:other.example", "header 'Host' is refused"},
        {"X-Test: a\rb", "header 'X-Test' contains a control character"},
        {"X-Test: a\nb", "header 'X-Test' contains a control character"},
        {"X-Test: a\x01b", "header 'X-Test' contains a control character"},
        {"X-Test: a\x1f", "header 'X-Test' contains a control character"},
        {"X-Test: a\x7f", "header 'X-Test' contains a control character"},
        {"X-Te st: a", "header name is not an HTTP token"},
        {"X-Test\r\nHost: a", "header name is not an HTTP token"},
        {"Host : a", "header name is not an HTTP token"},
        {": a", "Name: value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *one[] = {"Accept: application/json", bad[i].header, NULL};
        phc_request r = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites", .headers = one};
        CHECK_ERR(phc__xfer_perform(x, &r, &resp, &e), e, PHC_ERR_CONFIG, bad[i].want);
    }
    /* Allowed: a tab in a value, an empty value, a Host-like name that is not Host. These go
     * on to the (closed) port and fail there, not in the check. */
    const char *fine[] = {"X-Test: a\tb", "X-Empty:", "X-Host: a", NULL};
    phc_request okh = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites", .headers = fine};
    int frc = phc__xfer_perform(x, &okh, &resp, &e);
    CHECK(frc != PHC_ERR_CONFIG);
    phc_response_free(resp);
    resp = NULL;
    phc_request method = {
        .version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites", .method = "GET /x HTTP/1.1\r\n"};
    CHECK_ERR(phc__xfer_perform(x, &method, &resp, &e), e, PHC_ERR_CONFIG, "invalid HTTP method");
    CHECK(resp == NULL);
    phc__xfer_free(x);
    phc_config_free(cfg);
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    test_pinned_only();
    test_ipv6_literal_not_pinned();
    test_request_checks();
    curl_global_cleanup();
    TEST_MAIN_END();
}
