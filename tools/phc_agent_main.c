/* phc-agent: the agent's own program, which `phc agent` runs. A separate executable so that
 * the HTTP server library (libmicrohttpd and its TLS stack) and libsystemd are loaded by the
 * agent alone, never by every short-lived phc command. Takes the same global options as phc:
 * phc-agent [--config FILE] [-v] [agent] [--listen ADDR]. */
#include "phc_agent.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    phc_tool_harden(); /* execve() made this process dumpable again */
    phc_globals g = {.config_path = NULL, .verbose = 0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int took = phc_tool_global_opt(&g, argc, argv, &i);
        if (took == 2)
            return 2;
        if (!took)
            break; /* an option of the agent itself (--listen, --help) */
    }
    if (i < argc && strcmp(argv[i], "agent") == 0)
        i++;
    if (!g.config_path)
        g.config_path = phc_config_default_path();
    /* libcurl's allocators wipe what they free (bearer tokens in header buffers). */
    int rc = phc_tool_global_init();
    if (rc != 0)
        return rc;
    /* getopt in phc_agent_main starts at argv[1]. */
    argv[i - 1] = "agent";
    rc = phc_agent_main(&g, argc - (i - 1), argv + (i - 1));
    phc_global_cleanup();
    return rc;
}
