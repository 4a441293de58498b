/* The agent's listening socket. unix:PATH is the default because only a Unix socket tells the
 * agent who is calling (SO_PEERCRED) and lets file permissions keep other users out; a
 * loopback TCP port is reachable by every local user. Under systemd socket activation the
 * socket comes from systemd (sd_listen_fds) and systemd owns its file. */
#include "phc_agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define BACKLOG 511

static int fail_errno(const char *what, const char *where)
{
    fprintf(stderr, "phc: agent: cannot %s %s: %s\n", what, where, strerror(errno));
    return 7;
}

/* An existing file at path: a socket nobody answers on is a dead agent's and is replaced;
 * one that answers belongs to a running agent and is left alone; anything else is refused. */
static int clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : fail_errno("inspect", path);
    if (!S_ISSOCK(st.st_mode)) {
        fprintf(stderr, "phc: agent: %s exists and is not a socket; not replacing it\n", path);
        return 2;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return fail_errno("make a socket for", path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int live = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    int saved = errno;
    close(s);
    if (live || saved == EAGAIN) {
        fprintf(stderr, "phc: agent: another agent is already listening on %s\n", path);
        return 2;
    }
    if (unlink(path) != 0 && errno != ENOENT)
        return fail_errno("remove the stale socket", path);
    fprintf(stderr, "phc: agent: replaced the stale socket %s (no agent answered on it)\n", path);
    return 0;
}

static int open_unix(phc_agent *a, const char *path)
{
    int rc = clear_stale(path);
    if (rc)
        return rc;
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return fail_errno("make a socket for", path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    /* The file never exists with wider permissions than 0660, not even for a moment. */
    mode_t old = umask(0117);
    int b = bind(s, (struct sockaddr *)&sa, sizeof(sa));
    int saved = errno;
    umask(old);
    if (b != 0) {
        errno = saved;
        close(s);
        return fail_errno("listen on", path);
    }
    if ((a->group != (gid_t)-1 && chown(path, (uid_t)-1, a->group) != 0) ||
        chmod(path, 0660) != 0) {
        saved = errno;
        unlink(path);
        close(s);
        errno = saved;
        return fail_errno("set the owner group and mode 0660 of", path);
    }
    if (listen(s, BACKLOG) != 0) {
        saved = errno;
        unlink(path);
        close(s);
        errno = saved;
        return fail_errno("listen on", path);
    }
    a->listen_fd = s;
    a->is_unix = 1;
    if (!(a->unlink_path = strdup(path))) {
        unlink(path);
        close(s);
        a->listen_fd = -1;
        fprintf(stderr, "phc: agent: out of memory\n");
        return 9;
    }
    return 0;
}

static int open_tcp(phc_agent *a, const char *addr)
{
    char host[64];
    const char *port;
    int v6 = addr[0] == '[';
    if (v6) {
        const char *close_br = strchr(addr, ']');
        snprintf(host, sizeof(host), "%.*s", (int)(close_br - addr - 1), addr + 1);
        port = close_br + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
        port = colon + 1;
    }
    struct sockaddr_storage ss = {0};
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)atoi(port));
        inet_pton(AF_INET6, host, &s6->sin6_addr);
        sl = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)atoi(port));
        inet_pton(AF_INET, host, &s4->sin_addr);
        sl = sizeof(*s4);
    }
    int s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(s, (struct sockaddr *)&ss, sl) != 0 || listen(s, BACKLOG) != 0) {
        int saved = errno;
        if (s >= 0)
            close(s);
        errno = saved;
        return fail_errno("listen on", addr);
    }
    a->listen_fd = s;
    a->is_unix = 0;
    return 0;
}

int phc_agent_listen_open(phc_agent *a)
{
    a->listen_fd = -1;
    /* Socket activation: systemd passes the socket of phconnect-agent.socket. */
    int n = sd_listen_fds(1);
    if (n > 1) {
        fprintf(stderr, "phc: agent: systemd passed %d sockets; the agent takes exactly one\n", n);
        return 2;
    }
    if (n == 1) {
        int fd = SD_LISTEN_FDS_START;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            fprintf(stderr, "phc: agent: the socket systemd passed is not a listening stream "
                            "socket\n");
            return 2;
        }
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
            return fail_errno("inspect", "the socket systemd passed");
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        a->listen_fd = fd;
        a->is_unix = ss.ss_family == AF_UNIX;
        a->from_systemd = 1;
        return 0;
    }
    if (strncmp(a->listen, "unix:", 5) == 0)
        return open_unix(a, a->listen + 5);
    return open_tcp(a, a->listen + 4);
}

void phc_agent_listen_close(phc_agent *a)
{
    if (a->listen_fd >= 0)
        close(a->listen_fd);
    a->listen_fd = -1;
    if (a->unlink_path)
        unlink(a->unlink_path);
    free(a->unlink_path);
    a->unlink_path = NULL;
}
