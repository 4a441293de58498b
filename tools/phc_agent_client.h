/* phc request through the agent: the client side (tools/phc_agent_client.c). A minimal
 * HTTP/1.1 client over AF_UNIX: this path needs neither libcurl's transfer code nor the
 * token, and answers with the same output and exit codes as direct mode. */
#ifndef PHC_AGENT_CLIENT_H
#define PHC_AGENT_CLIENT_H

#include "phc.h"

typedef struct phc_agent_reply {
    long status; /* 0: no answer */
    char *head;  /* status line and headers, CRLF separated, ending with an empty line */
    size_t hlen;
    char *body;
    size_t blen;
} phc_agent_reply;

/* Which agent, if any, phc request goes through: --agent (flag, may be NULL), else
 * $PHC_AGENT, else the config's 'agent' key. *path (malloc'ed socket path) stays NULL for
 * direct mode. Returns 0, or prints "phc: ..." and returns the exit status. */
int phc_agent_client_want(const phc_globals *g, const char *flag, char **path);

/* Sends req to the agent at path. PHC_OK (2xx) or PHC_ERR_HTTP (other status, no Phc-Error)
 * fill *out; an agent's own failure (Phc-Error) or an unreachable agent return its class
 * with err set to the message phc prints. */
int phc_agent_client_request(const char *path, const phc_request *req, phc_agent_reply *out,
                             phc_errbuf *err);

void phc_agent_reply_free(phc_agent_reply *r);

#endif
