/* Who may use the agent: the kernel's word on the peer of each Unix-socket connection
 * (SO_PEERCRED, taken at connect time, so it cannot be forged by the peer) against
 * agent_allow_users. The default is the agent's own user and root. */
#define _GNU_SOURCE
#include "phc_agent.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int all_digits(const char *s)
{
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

static int add_uid(phc_agent *a, uid_t u)
{
    for (size_t i = 0; i < a->n_allow; i++)
        if (a->allow[i] == u)
            return 0;
    uid_t *n = realloc(a->allow, (a->n_allow + 1) * sizeof(*n));
    if (!n)
        return -1;
    a->allow = n;
    a->allow[a->n_allow++] = u;
    return 0;
}

int phc_agent_peer_setup(phc_agent *a)
{
    a->group = (gid_t)-1;
    const char *g = phc_config_get(a->cfg, "agent_group");
    if (g) {
        if (all_digits(g)) {
            a->group = (gid_t)strtoul(g, NULL, 10);
        } else {
            struct group *gr = getgrnam(g);
            if (!gr) {
                fprintf(stderr, "phc: config key 'agent_group': no group '%s' on this host\n", g);
                return 2;
            }
            a->group = gr->gr_gid;
        }
    }
    const char *users = phc_config_get(a->cfg, "agent_allow_users");
    if (!users) {
        if (add_uid(a, geteuid()) != 0 || add_uid(a, 0) != 0)
            goto oom;
        return 0;
    }
    char *copy = strdup(users), *save = NULL;
    if (!copy)
        goto oom;
    for (char *u = strtok_r(copy, ", \t", &save); u; u = strtok_r(NULL, ", \t", &save)) {
        uid_t uid;
        if (all_digits(u)) {
            uid = (uid_t)strtoul(u, NULL, 10);
        } else {
            struct passwd *pw = getpwnam(u);
            if (!pw) {
                fprintf(stderr, "phc: config key 'agent_allow_users': no user '%s' on this host\n",
                        u);
                free(copy);
                return 2;
            }
            uid = pw->pw_uid;
        }
        if (add_uid(a, uid) != 0) {
            free(copy);
            goto oom;
        }
    }
    free(copy);
    return 0;
oom:
    fprintf(stderr, "phc: agent: out of memory\n");
    return 9;
}

int phc_agent_peer_check(const phc_agent *a, int fd, long *uid, long *pid)
{
    *uid = -1;
    *pid = -1;
    if (!a->is_unix)
        return 1;
    struct ucred cr;
    socklen_t len = sizeof(cr);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
        return 0;
    *uid = (long)cr.uid;
    *pid = (long)cr.pid;
    for (size_t i = 0; i < a->n_allow; i++)
        if (a->allow[i] == cr.uid)
            return 1;
    return 0;
}
