/* phc secret store: read the client secret from standard input (without echo on a terminal)
 * and store it on the token where client_secret points. The secret never goes through argv,
 * the environment or a file of ours, and its buffer is wiped. */
#include "phc_admin.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <unistd.h>

/* Reads up to PHC_SECRET_MAX bytes; on a terminal one line without echo. Returns the length or -1
 * (buf is wiped by the caller in every case). */
static long read_secret(char *buf, size_t cap)
{
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    size_t n = 0;
    if (tty) {
        /* Echo off before the prompt: whatever is typed after it must not show. */
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
            return -1;
        fputs("client secret (not shown): ", stderr);
        fflush(stderr);
    }
    for (;;) {
        ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            n = (size_t)-1;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (tty && memchr(buf, '\n', n))
            break;
        if (n == cap)
            break;
    }
    if (tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (n == (size_t)-1)
        return -1;
    if (tty) {
        char *nl = memchr(buf, '\n', n);
        if (nl)
            n = (size_t)(nl - buf) + 1;
    }
    return (long)n;
}

int phc_cmd_secret(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "h", longopts)) != -1) {
        if (c != 'h')
            return 2; /* phc_tool_getopt said why */
        printf("usage: phc secret store < SECRET\n"
               "  stores the client secret from standard input (no echo on a terminal) in the\n"
               "  token data object that client_secret names (a pkcs11: URI)\n");
        return 0;
    }
    if (optind != argc - 1 || strcmp(argv[optind], "store") != 0)
        return phc_tool_usage("secret needs the word 'store' (phc secret store; the secret comes "
                              "from standard input, never from the command line)");
    phc_config *cfg = NULL;
    int rc = phc_tool_load_config(g, &cfg);
    if (rc)
        return rc;
    const char *where = phc_config_get(cfg, "client_secret");
    if (!where || strncasecmp(where, "pkcs11:", 7) != 0) {
        phc_config_free(cfg);
        return phc_tool_usage(
            "client_secret is %s: 'phc secret store' writes to a token data object, so set "
            "client_secret = pkcs11:token=...;object=client-secret;type=data first%s",
            where ? "a file: or env: source" : "not set",
            where ? " (or keep the secret in that file/variable yourself)" : "");
    }
    char buf[PHC_SECRET_MAX + 2];
    long n = read_secret(buf, sizeof(buf));
    phc_errbuf err = {0};
    if (n < 0) {
        rc = phc_tool_usage("cannot read the client secret from standard input: %s",
                            strerror(errno));
    } else {
        size_t len = (size_t)n;
        if (len && buf[len - 1] == '\n')
            len--;
        if (len && buf[len - 1] == '\r')
            len--;
        if (len == 0)
            rc = phc_tool_usage("no client secret on standard input");
        else if (len > PHC_SECRET_MAX)
            rc = phc_tool_usage("the client secret is longer than %d bytes", PHC_SECRET_MAX);
        else if (phc_token_store_secret(cfg, buf, len, &err) != PHC_OK)
            rc = phc_tool_fail(&err);
        else
            printf("client secret stored in the token data object %s\n", where);
    }
    explicit_bzero(buf, sizeof(buf));
    phc_admin_quit_if_stuck(&err, rc);
    phc_config_free(cfg);
    return rc;
}
