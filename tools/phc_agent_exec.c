/* phc agent: runs the phc-agent program (tools/phc_agent_main.c) in this process's place.
 * It lives next to phc (the build tree; an installation that keeps them together) or in
 * phconnect's libexec directory. */
#include "phc.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PHC_LIBEXECDIR
#define PHC_LIBEXECDIR "/usr/libexec/phconnect"
#endif
#ifndef PHC_LIBEXEC_FROM_BIN
#define PHC_LIBEXEC_FROM_BIN "../libexec/phconnect"
#endif

int phc_cmd_agent(const phc_globals *g, int argc, char **argv)
{
    char self[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    path[0] = '\0';
    if (n > 0) {
        self[n] = '\0';
        const char *dir = dirname(self);
        snprintf(path, sizeof(path), "%s/phc-agent", dir); /* the build tree */
        if (access(path, X_OK) != 0)
            snprintf(path, sizeof(path), "%s/%s/phc-agent", dir, PHC_LIBEXEC_FROM_BIN);
    }
    if (!path[0] || access(path, X_OK) != 0)
        snprintf(path, sizeof(path), "%s/phc-agent", PHC_LIBEXECDIR);
    /* phc-agent --config FILE [-v...] agent ARGS... */
    char **args = calloc((size_t)argc + 6, sizeof(*args));
    if (!args)
        return 9;
    size_t k = 0;
    args[k++] = path;
    args[k++] = "--config";
    args[k++] = (char *)g->config_path;
    char vs[8] = "-";
    if (g->verbose > 0) {
        for (int i = 0; i < g->verbose && i < 6; i++)
            vs[1 + i] = 'v';
        args[k++] = vs;
    }
    for (int i = 0; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    phc_global_cleanup();
    execv(path, args);
    fprintf(stderr, "phc: cannot run the agent program %s: %s\n", path, strerror(errno));
    free(args);
    return 9;
}
