/* The agent's configuration keys: accepted when well-formed, a config error naming the key and
 * its line otherwise; a client config with only `agent` needs no other key. */
#include <phconnect/phconnect.h>

#include "testutil.h"

static int parse(const char *text, phc_errbuf *e)
{
    phc_config *cfg = NULL;
    memset(e, 0, sizeof(*e));
    int rc = phc_config_parse(&cfg, text, strlen(text), "a.cnf", e);
    phc_config_free(cfg);
    return rc;
}

#define BASE                                                                                       \
    "[phconnect]\nurl = https://api.powerhub.test\nca_file = /etc/ssl/ca.pem\nclient_id = x\n"     \
    "client_secret = env:S\n"

int main(void)
{
    phc_errbuf e;
    /* A client-side config: nothing but the agent's socket. */
    CHECK(parse("[phconnect]\nagent = unix:/run/phconnect/agent.sock\n", &e) == PHC_OK);
    CHECK_ERR(parse("[phconnect]\nagent = tcp:127.0.0.1:8080\n", &e), e, PHC_ERR_CONFIG,
              "line 2: key 'agent': must be unix:PATH");
    CHECK_ERR(parse("[phconnect]\nagent = unix:relative.sock\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent': must be unix: followed by an absolute path");
    /* Without agent, the usual keys are still required. */
    CHECK_ERR(parse("[phconnect]\nagent_listen = unix:/tmp/a.sock\n", &e), e, PHC_ERR_CONFIG,
              "missing required key 'url'");

    CHECK(parse(BASE "agent_listen = unix:/run/phconnect/agent.sock\n", &e) == PHC_OK);
    CHECK(parse(BASE "agent_listen = tcp:127.0.0.1:7070\n", &e) == PHC_OK);
    CHECK(parse(BASE "agent_listen = tcp:[::1]:7070\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_listen = tcp:0.0.0.0:7070\n", &e), e, PHC_ERR_CONFIG,
              "line 6: key 'agent_listen': a tcp: address must be loopback");
    CHECK_ERR(parse(BASE "agent_listen = tcp:192.168.1.5:7070\n", &e), e, PHC_ERR_CONFIG,
              "must be loopback");
    CHECK_ERR(parse(BASE "agent_listen = tcp:[::]:7070\n", &e), e, PHC_ERR_CONFIG,
              "must be loopback");
    CHECK_ERR(parse(BASE "agent_listen = tcp:127.0.0.1:99999\n", &e), e, PHC_ERR_CONFIG,
              "must be loopback");
    CHECK(parse(BASE "agent_allow_users = alice, 1001,svc-ph\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_allow_users = alice,,bob\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent_allow_users': must be a comma-separated list of user names or uids");
    CHECK(parse(BASE "agent_group = phconnect\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_group = a b\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent_group': must be a group name or gid");
    CHECK(parse(BASE "agent_paths = GET /v2/asset/, POST /v2/asset/tokens\n", &e) == PHC_OK);
    CHECK(parse(BASE "agent_paths = * /v2/\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_paths = GET v2/asset\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent_paths': must be a comma-separated list of 'METHOD /prefix'");
    CHECK_ERR(parse(BASE "agent_paths = get /v2\n", &e), e, PHC_ERR_CONFIG, "'METHOD /prefix'");
    CHECK(parse(BASE "agent_max_clients = 64\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_max_clients = 0\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent_max_clients': must be a number from 1 to 65536");
    CHECK(parse(BASE "agent_max_request_bytes = 4M\n", &e) == PHC_OK);
    CHECK(parse(BASE "agent_max_request_bytes = 512k\n", &e) == PHC_OK);
    CHECK_ERR(parse(BASE "agent_max_request_bytes = 2G\n", &e), e, PHC_ERR_CONFIG,
              "key 'agent_max_request_bytes': must be a size");
    CHECK_ERR(parse(BASE "agent_max_request_bytes = -1\n", &e), e, PHC_ERR_CONFIG,
              "must be a size");
    CHECK_ERR(parse(BASE "agent_maxclients = 3\n", &e), e, PHC_ERR_CONFIG, "agent_maxclients");
    TEST_MAIN_END();
}
