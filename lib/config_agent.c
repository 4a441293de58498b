/* Syntax of the agent's configuration keys (config_agent.h). The rules mirror what the agent
 * does with the values (tools/phc_agent_*.c); whatever the agent cannot use is refused here,
 * when the file is read, not when the first request arrives. */
#include "config_agent.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define MAX_CLIENTS 65536
#define MAX_REQUEST_BYTES (1024LL * 1024 * 1024)

static int fail(char *why, size_t len, const char *msg)
{
    snprintf(why, len, "%s", msg);
    return -1;
}

static int unix_path_ok(const char *p)
{
    struct sockaddr_un sun;
    return p[0] == '/' && strlen(p) < sizeof(sun.sun_path) && !strpbrk(p, " \t,");
}

/* Loopback only: every local user can reach a TCP port, so nothing beyond this host may. */
static int tcp_ok(const char *a)
{
    char host[64];
    const char *port;
    if (a[0] == '[') {
        const char *close = strchr(a, ']');
        if (!close || close[1] != ':' || (size_t)(close - a - 1) >= sizeof(host))
            return 0;
        memcpy(host, a + 1, (size_t)(close - a - 1));
        host[close - a - 1] = '\0';
        port = close + 2;
        unsigned char b[16];
        if (inet_pton(AF_INET6, host, b) != 1 || strcmp(host, "::1") != 0)
            return 0;
    } else {
        const char *colon = strrchr(a, ':');
        if (!colon || (size_t)(colon - a) >= sizeof(host))
            return 0;
        memcpy(host, a, (size_t)(colon - a));
        host[colon - a] = '\0';
        port = colon + 1;
        unsigned char b[4];
        if (inet_pton(AF_INET, host, b) != 1 || b[0] != 127)
            return 0;
    }
    char *end = NULL;
    long n = strtol(port, &end, 10);
    return isdigit((unsigned char)port[0]) && end && *end == '\0' && n >= 1 && n <= 65535;
}

static int listen_ok(const char *v, int tcp_allowed, char *why, size_t len)
{
    if (strncmp(v, "unix:", 5) == 0) {
        if (unix_path_ok(v + 5))
            return 0;
        return fail(why, len, "must be unix: followed by an absolute path of at most 107 bytes");
    }
    if (tcp_allowed && strncmp(v, "tcp:", 4) == 0) {
        if (tcp_ok(v + 4))
            return 0;
        return fail(why, len,
                    "a tcp: address must be loopback with a port (tcp:127.0.0.1:PORT or "
                    "tcp:[::1]:PORT): any other address would open the agent to other hosts");
    }
    return fail(why, len,
                tcp_allowed ? "must be unix:PATH or tcp:127.0.0.1:PORT"
                            : "must be unix:PATH (the agent's socket)");
}

/* A user or group name as useradd accepts it, or a numeric id. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 32)
        return 0;
    int digits = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isdigit(c))
            digits = 0;
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || (c == '$' && i == n - 1)))
            return 0;
    }
    return digits || !(s[0] == '-' || s[0] == '.');
}

/* Calls ok() on each comma-separated, blank-trimmed item; 0 when every item passes. */
static int each_item(const char *v, int (*ok)(const char *s, size_t n))
{
    const char *p = v;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *e = p + strcspn(p, ",");
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (!ok(p, (size_t)(t - p)))
            return -1;
        if (*e == '\0')
            return 0;
        p = e + 1;
    }
}

/* "METHOD /prefix": an upper-case method (or *) and a path prefix without blanks. */
static int path_rule_ok(const char *s, size_t n)
{
    size_t m = 0;
    while (m < n && (isupper((unsigned char)s[m]) || s[m] == '*'))
        m++;
    if (m == 0 || m > 16 || (s[0] == '*' && m != 1) || m >= n || s[m] != ' ')
        return 0;
    size_t p = m;
    while (p < n && s[p] == ' ')
        p++;
    if (p >= n || s[p] != '/')
        return 0;
    for (; p < n; p++)
        if ((unsigned char)s[p] <= 0x20 || (unsigned char)s[p] >= 0x7f || s[p] == '#')
            return 0;
    return 1;
}

static int number_ok(const char *v, long long lo, long long hi, int size, long long *out)
{
    char *end = NULL;
    if (!isdigit((unsigned char)v[0]))
        return 0;
    long long n = strtoll(v, &end, 10), mult = 1;
    if (size && end && *end) {
        if (*end == 'k' || *end == 'K')
            mult = 1024;
        else if (*end == 'm' || *end == 'M')
            mult = 1024 * 1024;
        else
            return 0;
        end++;
    }
    if (!end || *end || n < lo || n > hi / mult)
        return 0;
    *out = n * mult;
    return 1;
}

int phc__config_agent_check(const char *key, const char *v, char *why, size_t len)
{
    long long n;
    if (strcmp(key, "agent") == 0)
        return listen_ok(v, 0, why, len);
    if (strcmp(key, "agent_listen") == 0)
        return listen_ok(v, 1, why, len);
    if (strcmp(key, "agent_allow_users") == 0)
        return each_item(v, name_ok) == 0
                   ? 0
                   : fail(why, len, "must be a comma-separated list of user names or uids");
    if (strcmp(key, "agent_group") == 0)
        return name_ok(v, strlen(v)) ? 0 : fail(why, len, "must be a group name or gid");
    if (strcmp(key, "agent_paths") == 0)
        return each_item(v, path_rule_ok) == 0
                   ? 0
                   : fail(why, len,
                          "must be a comma-separated list of 'METHOD /prefix' entries, e.g. "
                          "'GET /v2/asset/, POST /v2/asset/tokens'");
    if (strcmp(key, "agent_max_clients") == 0)
        return number_ok(v, 1, MAX_CLIENTS, 0, &n)
                   ? 0
                   : fail(why, len, "must be a number from 1 to 65536");
    if (strcmp(key, "agent_max_request_bytes") == 0)
        return number_ok(v, 1, MAX_REQUEST_BYTES, 1, &n)
                   ? 0
                   : fail(why, len,
                          "must be a size from 1 byte to 1G: a number, optionally with k or M "
                          "(1024-based)");
    return fail(why, len, "is not an agent key");
}
