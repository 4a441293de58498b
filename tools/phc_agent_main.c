/* phc-agent: the agent's own program, which `phc agent` runs. A separate executable so that
 * the HTTP server library (libmicrohttpd and its TLS stack) and libsystemd are loaded by the
 * agent alone, never by every short-lived phc command. Takes the same global options as phc:
 * phc-agent [--config FILE] [-v] [agent] [--listen ADDR]. */
#include "phc_agent.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
    /* The same process hardening as phc (tools/phc.c): execve() made this process dumpable
     * again, and it holds the PIN, the client secret and the API tokens for its whole life. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    phc_globals g = {.config_path = NULL, .verbose = 0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (++i >= argc)
                return phc_tool_usage("--config needs a file name");
            g.config_path = argv[i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            g.config_path = a + 9;
        } else if (a[1] && strspn(a + 1, "v") == strlen(a + 1)) {
            g.verbose += (int)strlen(a + 1);
        } else {
            break; /* an option of the agent itself (--listen, --help) */
        }
    }
    if (i < argc && strcmp(argv[i], "agent") == 0)
        i++;
    if (!g.config_path)
        g.config_path = phc_config_default_path();
    /* libcurl's allocators wipe what they free (bearer tokens in header buffers); they must
     * be installed before the library initialises libcurl. */
    if (phc_tool_curl_init() != 0 || phc_global_init() != PHC_OK) {
        fprintf(stderr, "phc: cannot initialise libcurl\n");
        return 9;
    }
    /* getopt in phc_agent_main starts at argv[1]. */
    argv[i - 1] = "agent";
    int rc = phc_agent_main(&g, argc - (i - 1), argv + (i - 1));
    phc_global_cleanup();
    phc_tool_curl_cleanup();
    return rc;
}
