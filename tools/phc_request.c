/* phc request [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE|@-] [-o FILE] [-i] PATH */
#include "phc.h"
#include "phc_agent_client.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADERS 64
#define MAX_BODY (64L * 1024 * 1024)

static int read_all(FILE *f, char **out, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if ((long)n > MAX_BODY) {
            free(buf);
            errno = EFBIG;
            return -1;
        }
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) {
                free(buf);
                return -1;
            }
            buf = p;
        }
    }
    if (ferror(f)) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int load_body(const char *arg, char **out, size_t *len)
{
    if (arg[0] != '@') {
        *out = strdup(arg);
        *len = strlen(arg);
        return *out ? 0 : phc_tool_usage("out of memory");
    }
    const char *path = arg + 1;
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return phc_tool_usage("cannot read request body from %s: %s", path, strerror(errno));
    int rc = read_all(f, out, len);
    int saved = errno;
    if (f != stdin)
        fclose(f);
    if (rc != 0)
        return phc_tool_usage("cannot read request body from %s: %s", path, strerror(saved));
    return 0;
}

/* -o FILE: a regular file is replaced atomically (either the whole new response or
 * untouched); a device, FIFO or /proc/self/fd/N is written in place (phc_tool_write_output).
 * No -o, or -o -: standard output. */
static int write_output(const char *path, const char *head, size_t hlen, const char *body,
                        size_t blen)
{
    if (!path || strcmp(path, "-") == 0) {
        if ((hlen && fwrite(head, 1, hlen, stdout) != hlen) ||
            (blen && fwrite(body, 1, blen, stdout) != blen) || fflush(stdout) != 0) {
            fprintf(stderr, "phc: cannot write the response to standard output: %s\n",
                    strerror(errno));
            return 2;
        }
        return 0;
    }
    /* A response body is no secret by default: the file gets the user's umask, as with curl
     * (umask 077, or -o into a private directory, keeps one private). Out of memory is 9 here
     * as everywhere in this tool. */
    if (phc_tool_write_output_umask(path, head, hlen, body, blen) == 0)
        return 0;
    if (errno == ENOMEM)
        return 9;
    fprintf(stderr, "phc: cannot write the response to %s: %s\n", path, strerror(errno));
    return 2;
}

/* The same request through the agent (docs/agent.md): same output, same exit codes. */
static int request_via_agent(const char *agent, const char *method, const char *path,
                             const char *const *headers, const char *body, size_t body_len,
                             const char *output, int include)
{
    phc_request req = {PHC_REQUEST_VERSION, method, path, headers, body, body_len, 0};
    phc_agent_reply rep;
    phc_errbuf err = {0};
    int rc = 0, prc = phc_agent_client_request(agent, &req, &rep, &err);
    if (rep.status)
        rc = write_output(output, rep.head, include ? rep.hlen : 0, rep.body, rep.blen);
    if (prc != PHC_OK)
        rc = phc_tool_fail(&err);
    phc_agent_reply_free(&rep);
    return rc;
}

int phc_cmd_request(const phc_globals *g, int argc, char **argv)
{
    /* clang-format off */
    static const struct option longopts[] = {
        {"request", required_argument, NULL, 'X'},
        {"header", required_argument, NULL, 'H'},
        {"data", required_argument, NULL, 'd'},
        {"output", required_argument, NULL, 'o'},
        {"include", no_argument, NULL, 'i'},
        {"agent", required_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* clang-format on */
    const char *method = NULL, *data = NULL, *output = NULL, *agent_flag = NULL;
    const char *headers[MAX_HEADERS + 1] = {0};
    size_t nheaders = 0;
    int include = 0, c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "X:H:d:o:ih", longopts)) != -1) {
        switch (c) {
        case 'X':
            method = optarg;
            break;
        case 'H':
            if (nheaders == MAX_HEADERS)
                return phc_tool_usage("too many -H headers (at most %d)", MAX_HEADERS);
            headers[nheaders++] = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'o':
            output = optarg;
            break;
        case 'i':
            include = 1;
            break;
        case 'A':
            agent_flag = optarg;
            break;
        case 'h':
            printf("usage: phc request [-X METHOD] [-H 'Name: value']... [-d DATA|@FILE|@-] "
                   "[-o FILE] [-i] [--agent unix:PATH] PATH\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc - 1)
        return phc_tool_usage("request needs exactly one PATH (e.g. /v2/asset/sites)");
    const char *path = argv[optind];
    if (path[0] != '/')
        return phc_tool_usage("PATH must start with '/': '%s'", path);

    char *body = NULL;
    size_t body_len = 0;
    int rc;
    if (data && (rc = load_body(data, &body, &body_len)) != 0)
        return rc;

    char *agent = NULL;
    if ((rc = phc_agent_client_want(g, agent_flag, &agent)) != 0 || agent) {
        if (agent)
            rc = request_via_agent(agent, method, path, nheaders ? headers : NULL, body, body_len,
                                   output, include);
        free(agent);
        free(body);
        return rc;
    }
    phc_client *client = NULL;
    if ((rc = phc_tool_open_client(g, &client)) != 0) {
        free(body);
        return rc;
    }
    phc_request req = {
        .version = PHC_REQUEST_VERSION,
        .method = method,
        .path = path,
        .headers = nheaders ? headers : NULL,
        .body = body,
        .body_len = body_len,
    };
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    int prc = phc_client_request(client, &resp, &req, &err);
    if (resp) {
        size_t hlen = 0, blen = 0;
        const char *head = phc_response_headers(resp, &hlen);
        const char *rbody = phc_response_body(resp, &blen);
        rc = write_output(output, head, include ? hlen : 0, rbody, blen);
    }
    if (prc != PHC_OK)
        rc = phc_tool_fail(&err);
    phc_response_free(resp);
    phc_client_free(client);
    free(body);
    return rc;
}
