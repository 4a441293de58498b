/* lib/client.c through the public API: refusals before anything is opened, a client on a
 * real SoftHSM token (made, reloaded without change, freed), a client with client
 * credentials only whose access token request meets a closed port, and a client used after
 * fork(), which refuses without touching the token or the network. */
#include "testclient.h"

#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
    phc_errbuf e = {0};
    phc_response *resp = NULL;
    phc_request req = {.version = PHC_REQUEST_VERSION, .path = "/v2/asset/sites"};
    phc_client *cl = NULL;
    phc_config *c = NULL;

    CHECK_ERR(phc_client_request(NULL, &resp, &req, &e), e, PHC_ERR_CONFIG, "no client");
    CHECK(resp == NULL);
    int changed = -1;
    CHECK_ERR(phc_client_reload(NULL, &changed, &e), e, PHC_ERR_CONFIG, "no client");
    CHECK(changed == 0);
    phc_client_free(NULL);

    /* an incomplete config is refused before anything is opened */
    CHECK(phc_config_new(&c, &e) == 0);
    CHECK_ERR(phc_client_new(&cl, c, NULL, &e), e, PHC_ERR_CONFIG, "missing required key 'url'");
    CHECK(cl == NULL);
    phc_config_free(c);
    c = NULL;

    if (tt_begin("client") || !tt_have_softhsm())
        TEST_MAIN_END();
    tok t;
    if (tc_token(&t, "tok", "/CN=client-unit"))
        goto out;

    /* on the token: made, reloaded (nothing changed), freed */
    if (!(c = tc_config(&t, 1, "https://127.0.0.1:1")))
        goto out;
    int rc = phc_client_new(&cl, c, NULL, &e);
    CHECK(rc == 0);
    if (rc) {
        fprintf(stderr, "client: %s\n", e.msg);
        goto out;
    }
    changed = -1;
    CHECK(phc_client_reload(cl, &changed, &e) == 0 && changed == 0);
    /* the config is frozen once a client uses it */
    CHECK_ERR(phc_config_set(c, "timeout", "5", &e), e, PHC_ERR_CONFIG, "in use by a client");

    /* after fork() the child's calls refuse, naming the parent */
    pid_t pid = fork();
    if (pid == 0) {
        phc_errbuf ce = {0};
        phc_response *cr = NULL;
        int crc = phc_client_request(cl, &cr, &req, &ce);
        _exit(crc == PHC_ERR_HSM && cr == NULL && strstr(ce.msg, "cannot be used after fork()")
                  ? 0
                  : 1);
    }
    int st = -1;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);

    /* a request not set up with PHC_REQUEST_INIT is refused before anything is sent */
    phc_request bad = req;
    bad.version = 0;
    CHECK_ERR(phc_client_request(cl, &resp, &bad, &e), e, PHC_ERR_CONFIG,
              "phc_request version 0 is unknown to phconnect");
    CHECK(resp == NULL);
    bad.version = PHC_REQUEST_VERSION + 1;
    CHECK_ERR(phc_client_request(cl, &resp, &bad, &e), e, PHC_ERR_CONFIG,
              "built against a newer phconnect");
    CHECK_ERR(phc_client_request(cl, &resp, NULL, &e), e, PHC_ERR_CONFIG, "no request");

    /* phc_stats is the caller's: its version says how much of it the program knows */
    phc_stats stats = {0};
    CHECK_ERR(phc_client_stats(cl, &stats, &e), e, PHC_ERR_CONFIG,
              "phc_stats version 0 is unknown");
    stats = (phc_stats)PHC_STATS_INIT;
    CHECK(phc_client_stats(cl, &stats, &e) == PHC_OK && stats.version == PHC_STATS_VERSION &&
          stats.token_ok == 1);
    CHECK(phc_client_stats(cl, &stats, &e) == PHC_OK); /* the filled struct can be used again */

    /* a closed port: the network error names the address */
    rc = phc_client_request(cl, &resp, &req, &e);
    CHECK_ERR(rc, e, PHC_ERR_NETWORK, "cannot connect to https://127.0.0.1:1");
    CHECK(resp == NULL);
    phc_client_free(cl);
    cl = NULL;
    phc_config_free(c);

    /* client credentials only: the access token request fails first, and says so */
    setenv("PHC_UNIT_TEST_SECRET", "s3cret", 1);
    if (!(c = tc_config(&t, 0, "https://127.0.0.1:1")))
        goto out;
    CHECK(phc_client_new(&cl, c, NULL, &e) == 0);
    rc = phc_client_request(cl, &resp, &req, &e);
    CHECK_ERR(rc, e, PHC_ERR_NETWORK,
              "requesting an API token from https://127.0.0.1:1/v1/auth/token: cannot connect");
    CHECK(resp == NULL && strstr(e.msg, "s3cret") == NULL);
out:
    phc_client_free(cl);
    phc_config_free(c);
    tt_end();
    TEST_MAIN_END();
}
