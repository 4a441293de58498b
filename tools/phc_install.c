/* phc install [--probe [--probe-path PATH]] CERT.pem: check a certificate the vendor issued
 * and store it on the token next to its key, which makes it the active pair.
 *
 * Order, so that a crash (or kill -9) at any step leaves a token the connector works with:
 * read and check (nothing written), optionally probe with exactly this pair (nothing
 * written), then one certificate object is created. PHC_TEST_PAUSE_AT=opened|checked|probed|
 * stored stops at that step for the crash tests (see phc_admin_pause). */
#define _GNU_SOURCE /* memfd_create */
#include "phc_admin.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CERT_MAX (1024 * 1024)

static void say_pair(const char *what, const phc_pair_info *p)
{
    char until[40];
    printf("%s: id %s (%s), '%s' issued by '%s', serial %s, valid until %s (%ld days)\n", what,
           p->id_hex, p->key_type, p->subject, p->issuer, p->serial,
           phc_admin_time(until, sizeof(until), p->not_after, 0), p->days_left);
}

/* When the certificate just stored (or found) is valid but not the active pair, says so on
 * stderr and why, by the rotation rule (token.h): the active pair's certificate starts
 * later, or starts in the same second and ends later, or has the very same dates and was
 * installed later (or, unrecorded, wins the fixed order): phc_admin_tie_reason. */
static void explain_not_active(const phc_pair_info *mine, const phc_pair_list *pairs)
{
    size_t n = phc_pair_list_count(pairs);
    const phc_pair_info *act = NULL;
    for (size_t i = 0; i < n; i++)
        if (phc_pair_list_get(pairs, i)->state == PHC_PAIR_ACTIVE)
            act = phc_pair_list_get(pairs, i);
    if (mine->state != PHC_PAIR_RETIRED || !act)
        return;
    char a[40], b[40], why[400];
    if (act->not_before != mine->not_before)
        fprintf(stderr,
                "phc: [warning] the certificate is stored but is not the active pair: the active "
                "pair's certificate (id %s, serial %s) has a later notBefore (%s; this one %s), "
                "and the newest notBefore wins\n",
                act->id_hex, act->serial, phc_admin_time(a, sizeof(a), act->not_before, 0),
                phc_admin_time(b, sizeof(b), mine->not_before, 0));
    else if (act->not_after != mine->not_after)
        fprintf(stderr,
                "phc: [warning] the certificate is stored but is not the active pair: the active "
                "pair's certificate (id %s, serial %s) has the same notBefore and a later "
                "notAfter (%s; this one %s), which breaks the tie\n",
                act->id_hex, act->serial, phc_admin_time(a, sizeof(a), act->not_after, 0),
                phc_admin_time(b, sizeof(b), mine->not_after, 0));
    else
        fprintf(stderr,
                "phc: [warning] the certificate is stored but is not the active pair: the active "
                "pair's certificate (id %s, serial %s) has the very same notBefore and notAfter, "
                "and %s ('phc rollback --yes' removes that certificate)\n",
                act->id_hex, act->serial,
                phc_admin_tie_reason(why, sizeof(why), act, mine, "this one"));
}

/* An anonymous in-memory file holding pem, and its /proc/self/fd path in path: what the
 * probe's client reads as its certificate file. Returns the descriptor, or -1. */
static int memory_file(const char *pem, size_t len, char *path, size_t pathsz)
{
    int fd = memfd_create("phc-install-cert", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, pem + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    snprintf(path, pathsz, "/proc/self/fd/%d", fd);
    return fd;
}

/* One real request with exactly this certificate and its key, on a fresh connection with a
 * full handshake. The certificate is the copy in memory that install stores, not the file
 * read again by name: a file replaced in between must not make the probe test another
 * certificate than the one that is stored. */
static int probe(const phc_globals *g, const char *cert_name, const char *pem, size_t len,
                 const char *path)
{
    phc_config *cfg = NULL;
    phc_client *client = NULL;
    phc_response *resp = NULL;
    phc_errbuf err = {0};
    char mem_path[64];
    int rc = phc_tool_load_config(g, &cfg);
    if (rc)
        return rc;
    int fd = memory_file(pem, len, mem_path, sizeof(mem_path));
    if (fd < 0) {
        fprintf(stderr, "phc: cannot hold the certificate for the probe in memory: %s\n",
                strerror(errno));
        phc_config_free(cfg);
        return 9;
    }
    phc_client_opts o = phc_tool_log_opts(g);
    phc_request req = {.version = PHC_REQUEST_VERSION,
                       .path = path,
                       .flags = PHC_REQ_FRESH_CONNECTION | PHC_REQ_NO_SESSION_REUSE};
    if (phc_config_set(cfg, "cert", mem_path, &err) != PHC_OK ||
        phc_client_new(&client, cfg, &o, &err) != PHC_OK ||
        phc_client_request(client, &resp, &req, &err) != PHC_OK) {
        char msg[PHC_HINTED_MAX];
        fprintf(stderr, "phc: probe with %s failed, nothing was installed: %s\n", cert_name,
                phc_tool_hinted(&err, msg, sizeof(msg)));
        rc = phc_err_exit_code(err.code);
    } else {
        printf("probe: GET %s with this certificate and its token key: HTTP %ld\n", path,
               phc_response_status(resp));
    }
    phc_response_free(resp);
    phc_client_free(client);
    phc_config_free(cfg);
    close(fd);
    return rc;
}

int phc_cmd_install(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"probe", no_argument, NULL, 'p'},
        {"probe-path", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *probe_path = "/v2/asset/sites";
    int do_probe = 0, c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "pP:h", longopts)) != -1) {
        switch (c) {
        case 'p':
            do_probe = 1;
            break;
        case 'P':
            probe_path = optarg;
            do_probe = 1;
            break;
        case 'h':
            printf("usage: phc install [--probe [--probe-path PATH]] CERT.pem\n"
                   "  checks the certificate (pinned CA, key on the token, clientAuth, validity,\n"
                   "  strength) and stores it next to its key; --probe first makes one request\n"
                   "  (GET PATH, default /v2/asset/sites) with exactly this certificate\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc - 1)
        return phc_tool_usage("install needs exactly one certificate file (PEM)");
    if (probe_path[0] != '/')
        return phc_tool_usage("--probe-path must start with '/': '%s'", probe_path);
    const char *file = argv[optind];
    char *pem = NULL;
    size_t len = 0;
    int rc = phc_admin_read_file(file, CERT_MAX, &pem, &len);
    if (rc)
        return rc;

    phc_config *cfg = NULL;
    phc_token *t = NULL;
    phc_pair_info *pi = NULL;
    phc_pair_list *pairs = NULL;
    size_t n = 0;
    int already = 0;
    phc_errbuf err = {0};
    if ((rc = phc_admin_open(g, &cfg, &t)) != 0)
        goto out;
    if (phc_config_get(cfg, "cert"))
        fprintf(stderr, "phc: [warning] the config sets 'cert', so the connector keeps using that "
                        "certificate; remove 'cert' to let it use the newest valid pair\n");
    phc_admin_pause("opened");
    if (phc_token_check_cert(t, pem, len, 0, &pi, &already, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    phc_admin_pause("checked");
    if (already) {
        say_pair("already on the token, nothing stored", pi);
        goto report;
    }
    if (do_probe) {
        /* The probe's client loads the module through libp11, which ends every session of
         * the process when it lets go: ours must not be open across it. */
        phc_token_free(t);
        t = NULL;
        if ((rc = probe(g, file, pem, len, probe_path)) != 0)
            goto out;
        phc_admin_pause("probed");
        phc_config_free(cfg);
        cfg = NULL;
        if ((rc = phc_admin_open(g, &cfg, &t)) != 0)
            goto out;
    }
    phc_pair_info_free(pi);
    if (phc_token_install_cert(t, pem, len, 0, &pi, &already, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    phc_admin_pause("stored");
    say_pair(already ? "already on the token, nothing stored" : "installed", pi);
report:
    if (phc_token_pairs(t, 0, &pairs, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    int any = 0;
    n = phc_pair_list_count(pairs);
    for (size_t i = 0; i < n; i++)
        if (phc_pair_list_get(pairs, i)->state == PHC_PAIR_ACTIVE) {
            say_pair("active pair", phc_pair_list_get(pairs, i));
            any = 1;
        }
    if (!any)
        printf("active pair: none yet\n");
    for (size_t i = 0; i < n; i++)
        if (phc_pair_list_get(pairs, i)->has_cert &&
            strcmp(phc_pair_list_get(pairs, i)->sha256, pi->sha256) == 0)
            explain_not_active(phc_pair_list_get(pairs, i), pairs);
    if (pi->state == PHC_PAIR_NOT_YET_VALID) {
        char from[40];
        printf("the new certificate is valid from %s; the connector switches to it then\n",
               phc_admin_time(from, sizeof(from), pi->not_before, 0));
    }
out:
    phc_admin_quit_if_stuck(&err, rc);
    phc_pair_info_free(pi);
    phc_pair_list_free(pairs);
    phc_token_free(t);
    phc_config_free(cfg);
    free(pem);
    return rc;
}
