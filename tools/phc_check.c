/* phc check [-w|--warn-days N] [-c|--crit-days N] [--prometheus FILE] [--json]
 * [--trust [--chain FILE]]: a monitoring plugin. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
 * with one summary line (and performance data) on stdout, or with --json one JSON object
 * holding the same; --prometheus also writes node_exporter textfile metrics, atomically, and
 * when it cannot the summary says so (UNKNOWN unless the result is worse already). --trust
 * runs only the offline trust self-test, one line per finding after the summary; without it
 * the self-test's decoy still runs and a failure is CRITICAL. */
#include "phc_admin.h"
#include "phc_trust.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OK = 0, WARNING = 1, CRITICAL = 2, UNKNOWN = 3 };
static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

typedef struct check {
    long warn, crit;
    long long now;
    int state;
    char text[1024];
    char perf[512];
    /* for the metrics */
    phc_pair_list *pairs;
    size_t npairs;
    phc_ca_list *ca;
    size_t nca;
    phc_endpoint ep;
    int have_key;
    phc_trust_report *trust; /* NULL when the self-test did not run */
} check;

static void add(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t len, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - n, fmt, ap);
    va_end(ap);
}

/* Judges something that expires at t; returns its days left. */
static long judge(check *c, long long t, int *st)
{
    long long left = t - c->now;
    long days = (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
    *st = left < c->crit * 86400LL ? CRITICAL : left < c->warn * 86400LL ? WARNING : OK;
    if (*st > c->state)
        c->state = *st;
    return days;
}

static const char *when(long days, char *buf, size_t len)
{
    if (days < 0)
        snprintf(buf, len, "expired %ld day%s ago", -days, days == -1 ? "" : "s");
    else
        snprintf(buf, len, "expires in %ld day%s", days, days == 1 ? "" : "s");
    return buf;
}

static void check_cert(check *c)
{
    const phc_pair_info *active = NULL;
    char w[64], d[40];
    for (size_t i = 0; i < c->npairs; i++)
        if (phc_pair_list_get(c->pairs, i)->state == PHC_PAIR_ACTIVE)
            active = phc_pair_list_get(c->pairs, i);
    if (!active) {
        c->state = CRITICAL;
        add(c->text, sizeof(c->text), "no valid certificate on the token%s",
            c->npairs ? " (see phc status)" : " (run phc enrol)");
        return;
    }
    if (active->key_mismatch) {
        c->state = CRITICAL;
        add(c->text, sizeof(c->text), "certificate '%s' (id %s) does not match its key",
            active->subject, active->id_hex);
        return;
    }
    /* A successor already installed (valid from before the active one expires) takes over:
     * what counts is when the last of them expires. */
    long long horizon = active->not_after;
    const phc_pair_info *last = active;
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < c->npairs; i++) {
            const phc_pair_info *p = phc_pair_list_get(c->pairs, i);
            if (p->state == PHC_PAIR_NOT_YET_VALID && !p->key_mismatch && p->key_supported &&
                p->not_before <= horizon && p->not_after > horizon) {
                horizon = p->not_after;
                last = p;
                changed = 1;
            }
        }
    }
    int st;
    long days = judge(c, horizon, &st);
    add(c->text, sizeof(c->text), "certificate '%s' (id %s) %s (%s)", active->subject,
        active->id_hex, when(days, w, sizeof(w)), phc_admin_time(d, sizeof(d), horizon, 0));
    if (last != active)
        add(c->text, sizeof(c->text), " counting successor id %s", last->id_hex);
    add(c->perf, sizeof(c->perf), "cert_days=%ld;%ld;%ld ", days, c->warn, c->crit);
}

static void check_ca(check *c)
{
    const phc_ca_info *first = NULL;
    char w[64];
    for (size_t i = 0; i < c->nca; i++)
        if (!first || phc_ca_list_get(c->ca, i)->not_after < first->not_after)
            first = phc_ca_list_get(c->ca, i);
    if (!first)
        return;
    int st;
    long days = judge(c, first->not_after, &st);
    add(c->text, sizeof(c->text), "%sCA '%s' %s", c->text[0] ? "; " : "", first->subject,
        when(days, w, sizeof(w)));
    add(c->perf, sizeof(c->perf), "ca_days=%ld;%ld;%ld ", days, c->warn, c->crit);
}

static void check_credential(check *c, const phc_config *cfg)
{
    char w[64];
    if (!c->ep.credential_expires) {
        if (phc_config_get(cfg, "client_id"))
            add(c->text, sizeof(c->text),
                "; client credential expiry unknown (set "
                "credential_expires)");
        return;
    }
    int st;
    long days = judge(c, c->ep.credential_expires, &st);
    add(c->text, sizeof(c->text), "; client credential %s", when(days, w, sizeof(w)));
    add(c->perf, sizeof(c->perf), "credential_days=%ld;%ld;%ld ", days, c->warn, c->crit);
}

/* Without pinned_ips the address comes from DNS: the pinned CA and the host name are still
 * checked, but a connection goes wherever the name points. That is a weaker setup than the
 * one the README promises, so it is a WARNING unless the operator says it is intended
 * (--allow-unpinned); the summary says it either way. */
static void check_pinning(check *c, int allow_unpinned)
{
    if (c->ep.n_pinned_ips)
        return;
    if (!allow_unpinned && c->state < WARNING)
        c->state = WARNING;
    add(c->text, sizeof(c->text),
        "%spinned_ips is unset: connections go to whatever address DNS gives for %s%s",
        c->text[0] ? "; " : "", c->ep.host ? c->ep.host : "the url's host",
        allow_unpinned ? " (--allow-unpinned)" : " (set pinned_ips, or --allow-unpinned)");
}

/* Prometheus label value: backslash, double quote and newline escaped. */
static void label(FILE *f, const char *name, const char *v, int last)
{
    fprintf(f, "%s=\"", name);
    for (; v && *v; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
    fprintf(f, "\"%s", last ? "" : ",");
}

static int write_metrics(const check *c, const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return -1;
    fprintf(f,
            "# HELP phc_check_status Result of phc check: 0 OK, 1 WARNING, 2 CRITICAL, 3 "
            "UNKNOWN.\n# TYPE phc_check_status gauge\nphc_check_status %d\n",
            c->state);
    fprintf(f,
            "# HELP phc_check_timestamp_seconds When phc check ran (Unix time).\n"
            "# TYPE phc_check_timestamp_seconds gauge\nphc_check_timestamp_seconds %lld\n",
            c->now);
    if (c->npairs) {
        fprintf(f, "# HELP phc_certificate_not_after_seconds notAfter of each certificate on the "
                   "token (Unix time).\n# TYPE phc_certificate_not_after_seconds gauge\n");
        for (size_t i = 0; i < c->npairs; i++) {
            const phc_pair_info *p = phc_pair_list_get(c->pairs, i);
            if (!p->has_cert)
                continue;
            fputs("phc_certificate_not_after_seconds{", f);
            label(f, "id", p->id_hex, 0);
            label(f, "state", phc_pair_state_name(p->state), 0);
            label(f, "serial", p->serial, 0);
            label(f, "subject", p->subject, 1);
            fprintf(f, "} %lld\n", p->not_after);
        }
        fprintf(f, "# HELP phc_pairs Key/certificate pairs on the token by state.\n"
                   "# TYPE phc_pairs gauge\n");
        for (int s = PHC_PAIR_ACTIVE; s <= PHC_PAIR_NOT_YET_VALID; s++) {
            size_t n = 0;
            for (size_t i = 0; i < c->npairs; i++)
                n += phc_pair_list_get(c->pairs, i)->state == (phc_pair_state)s;
            fputs("phc_pairs{", f);
            label(f, "state", phc_pair_state_name((phc_pair_state)s), 1);
            fprintf(f, "} %zu\n", n);
        }
    }
    if (c->nca) {
        fprintf(f, "# HELP phc_ca_not_after_seconds notAfter of each pinned CA certificate (Unix "
                   "time).\n# TYPE phc_ca_not_after_seconds gauge\n");
        for (size_t i = 0; i < c->nca; i++) {
            fputs("phc_ca_not_after_seconds{", f);
            label(f, "sha256", phc_ca_list_get(c->ca, i)->sha256, 0);
            label(f, "subject", phc_ca_list_get(c->ca, i)->subject, 1);
            fprintf(f, "} %lld\n", phc_ca_list_get(c->ca, i)->not_after);
        }
    }
    if (c->trust) {
        fprintf(f,
                "# HELP phc_trust_selftest Result of the trust self-test: 0 pass, 1 warn, 2 "
                "fail.\n# TYPE phc_trust_selftest gauge\nphc_trust_selftest %d\n",
                (int)phc_trust_report_overall(c->trust));
        fprintf(f, "# HELP phc_trust_selftest_finding Each finding of the trust self-test: 0 "
                   "pass, 1 warn, 2 fail, 3 skipped.\n# TYPE phc_trust_selftest_finding gauge\n");
        for (size_t i = 0; i < phc_trust_report_count(c->trust); i++) {
            const phc_trust_finding *tf = phc_trust_report_get(c->trust, i);
            fputs("phc_trust_selftest_finding{", f);
            label(f, "name", tf->name, 1);
            fprintf(f, "} %d\n", (int)tf->result);
        }
    }
    if (c->ep.url)
        fprintf(f,
                "# HELP phc_pinned_ips Number of pinned_ips (0: addresses come from DNS).\n"
                "# TYPE phc_pinned_ips gauge\nphc_pinned_ips %zu\n",
                c->ep.n_pinned_ips);
    if (c->ep.credential_expires)
        fprintf(f,
                "# HELP phc_credential_expires_seconds credential_expires of the client "
                "credential (Unix time).\n# TYPE phc_credential_expires_seconds gauge\n"
                "phc_credential_expires_seconds %lld\n",
                c->ep.credential_expires);
    if (fclose(f) != 0) {
        free(buf);
        return -1;
    }
    int rc = phc_tool_write_output(path, buf, len, NULL, 0, 0644);
    int saved = errno;
    free(buf);
    errno = saved;
    return rc;
}

/* The self-test's verdict in monitoring terms; --trust (full) reports every finding, a plain
 * check only a failed decoy (expiry is already judged from the same CA file). */
static void judge_trust(check *c, int full)
{
    static const int to_state[] = {OK, WARNING, CRITICAL, OK};
    const phc_trust_report *r = c->trust;
    for (size_t i = 0; i < phc_trust_report_count(r); i++) {
        const phc_trust_finding *f = phc_trust_report_get(r, i);
        if (!full && (strcmp(f->name, "decoy") != 0 || f->result != PHC_TRUST_FAIL))
            continue;
        int st = to_state[f->result];
        if (st > c->state)
            c->state = st;
        /* Each failed chain rule has its own line below the summary. */
        if (full && ((f->result != PHC_TRUST_FAIL && f->result != PHC_TRUST_WARN) ||
                     strncmp(f->name, "chain:", 6) == 0))
            continue;
        add(c->text, sizeof(c->text), "%s%s: %s", c->text[0] ? "; " : "", f->name, f->detail);
    }
    if (full && c->text[0] == '\0')
        add(c->text, sizeof(c->text),
            "trust self-test passed: a decoy CA was refused, the pinned CA file checks out");
    if (full && phc_trust_report_ca_not_after(r)) {
        long long left = phc_trust_report_ca_not_after(r) - c->now;
        add(c->perf, sizeof(c->perf), "ca_days=%ld;%ld;%ld ",
            (long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400)), c->warn, c->crit);
    }
}

/* perf ("name=value;warn;crit ...") as a JSON object {"name":{"value":V,"warn":W,"crit":C}}. */
static void json_perf(FILE *f, const char *perf)
{
    fputc('{', f);
    int first = 1;
    for (const char *p = perf; *p;) {
        size_t len = strcspn(p, " ");
        char item[128], name[64];
        long v, w, cr;
        snprintf(item, sizeof(item), "%.*s", (int)len, p);
        if (sscanf(item, "%63[^=]=%ld;%ld;%ld", name, &v, &w, &cr) == 4) {
            fputs(first ? "" : ",", f);
            phc_admin_json_str(f, name);
            fprintf(f, ":{\"value\":%ld,\"warn\":%ld,\"crit\":%ld}", v, w, cr);
            first = 0;
        }
        p += len;
        p += strspn(p, " ");
    }
    fputc('}', f);
}

/* The result as one JSON object on stdout (docs/contract.md lists the fields). */
static void print_json(const check *c, const char *prom, int prom_ok)
{
    FILE *f = stdout;
    fputs("{\"state\":", f);
    phc_admin_json_str(f, state_names[c->state]);
    fprintf(f, ",\"exit_code\":%d,\"summary\":", c->state);
    phc_admin_json_str(f, c->text);
    fputs(",\"perfdata\":", f);
    json_perf(f, c->perf);
    fputs(",\"findings\":[", f);
    for (size_t i = 0; i < phc_trust_report_count(c->trust); i++) {
        const phc_trust_finding *tf = phc_trust_report_get(c->trust, i);
        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        phc_admin_json_str(f, tf->name);
        fputs(",\"result\":", f);
        phc_admin_json_str(f, phc_trust_result_name(tf->result));
        fputs(",\"detail\":", f);
        phc_admin_json_str(f, tf->detail);
        fputc('}', f);
    }
    fputs("],\"prometheus\":", f);
    if (prom) {
        fputs("{\"file\":", f);
        phc_admin_json_str(f, prom);
        fprintf(f, ",\"written\":%s}", prom_ok ? "true" : "false");
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
}

static long days_arg(const char *opt, const char *v, int *bad)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < 0 || n > 36500) {
        *bad = phc_tool_usage("%s must be a number of days from 0 to 36500: '%s'", opt, v);
        return 0;
    }
    return n;
}

int phc_cmd_check(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"warn-days", required_argument, NULL, 'w'},
        {"crit-days", required_argument, NULL, 'c'},
        {"prometheus", required_argument, NULL, 'p'},
        {"trust", no_argument, NULL, 't'},
        {"chain", required_argument, NULL, 'C'},
        {"allow-unpinned", no_argument, NULL, 'U'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    check c;
    memset(&c, 0, sizeof(c));
    c.ep = (phc_endpoint)PHC_ENDPOINT_INIT;
    c.warn = 30;
    c.crit = 7;
    const char *prom = NULL, *chain = NULL;
    int opt, bad = 0, trust_only = 0, allow_unpinned = 0, json = 0, prom_ok = 1;
    optind = 1;
    while ((opt = phc_tool_getopt(g, argc, argv, "w:c:p:h", longopts)) != -1) {
        switch (opt) {
        case 'w':
            c.warn = days_arg("--warn-days", optarg, &bad);
            break;
        case 'c':
            c.crit = days_arg("--crit-days", optarg, &bad);
            break;
        case 'p':
            prom = optarg;
            break;
        case 't':
            trust_only = 1;
            break;
        case 'C':
            chain = optarg;
            trust_only = 1;
            break;
        case 'U':
            allow_unpinned = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            printf("usage: phc check [-w|--warn-days N (30)] [-c|--crit-days N (7)] [--json] "
                   "[--prometheus FILE] [--allow-unpinned] [--trust [--chain SERVER-CHAIN.pem]]\n"
                   "  -w, -c    WARNING / CRITICAL when something expires within N days\n"
                   "  --json    one JSON object (state, exit_code, summary, perfdata, findings,\n"
                   "            prometheus) instead of the plugin line\n"
                   "  --prometheus  also node_exporter textfile metrics; a file that cannot be\n"
                   "            written makes an OK result UNKNOWN and is named in the summary\n"
                   "  --trust   only the offline trust self-test: a decoy CA must be refused, "
                   "ca_file must match ca_sha256, the CA must not expire within the window\n"
                   "  --chain   also judge a server chain (leaf first) rule by rule\n"
                   "  --allow-unpinned  a config without pinned_ips is not a WARNING\n"
                   "exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (monitoring-plugin codes)\n");
            return 0;
        default:
            bad = 1; /* phc_tool_getopt said why */
        }
        if (bad)
            return UNKNOWN;
    }
    if (optind != argc) {
        phc_tool_usage("check takes no arguments: '%s'", argv[optind]);
        return UNKNOWN;
    }
    if (c.crit > c.warn) {
        phc_tool_usage("--crit-days (%ld) must not exceed --warn-days (%ld)", c.crit, c.warn);
        return UNKNOWN;
    }
    c.now = (long long)time(NULL);
    phc_config *cfg = NULL;
    phc_token *t = NULL;
    phc_errbuf err = {0};
    /* Every failure to look is UNKNOWN, with the reason on the summary line. */
    phc_errbuf cerr = {0};
    if (phc_config_load(&cfg, g->config_path, &cerr) != PHC_OK ||
        phc_tool_config_ready(g, cfg, &cerr) != PHC_OK) {
        c.state = UNKNOWN;
        snprintf(c.text, sizeof(c.text), "%s", cerr.msg);
        goto report;
    }
    if (phc_config_endpoint(cfg, &c.ep, &cerr) != PHC_OK) {
        c.state = UNKNOWN;
        snprintf(c.text, sizeof(c.text), "%s", cerr.msg);
        goto report;
    }
    if (trust_only) {
        if (phc_tool_trust_check(cfg, chain, c.warn, c.crit, &c.trust, &err) != PHC_OK) {
            c.state = UNKNOWN;
            snprintf(c.text, sizeof(c.text), "%s", err.msg);
            goto report;
        }
        judge_trust(&c, 1);
        goto report;
    }
    c.have_key = phc_config_get(cfg, "key") != NULL;
    if (c.have_key) {
        phc_client_opts o = phc_tool_log_opts(g);
        if (phc_token_open(&t, cfg, &o, &err) != PHC_OK ||
            phc_token_pairs(t, c.now, &c.pairs, &err) != PHC_OK) {
            c.state = UNKNOWN;
            snprintf(c.text, sizeof(c.text), "%s", err.msg);
            goto report;
        }
        c.npairs = phc_pair_list_count(c.pairs);
        check_cert(&c);
    }
    if (phc_config_ca_certs(cfg, c.now, &c.ca, &err) != PHC_OK) {
        c.state = UNKNOWN;
        snprintf(c.text, sizeof(c.text), "%s", err.msg);
        goto report;
    }
    c.nca = phc_ca_list_count(c.ca);
    check_ca(&c);
    check_credential(&c, cfg);
    /* The decoy needs nothing but the CA file: a self-test that cannot run is not a finding. */
    if (phc_tool_trust_check(cfg, NULL, c.warn, c.crit, &c.trust, &err) == PHC_OK)
        judge_trust(&c, 0);
    check_pinning(&c, allow_unpinned);
report:
    /* The metrics first: a file that cannot be written is part of the result the summary
     * (and the exit status) reports, not a line beside it. */
    if (prom && write_metrics(&c, prom) != 0) {
        int saved = errno;
        prom_ok = 0;
        if (c.state == OK)
            c.state = UNKNOWN;
        add(c.text, sizeof(c.text), "%scannot write metrics to %s: %s", c.text[0] ? "; " : "", prom,
            strerror(saved));
    }
    if (c.state == UNKNOWN)
        fprintf(stderr, "phc: %s\n", c.text);
    if (c.perf[0])
        c.perf[strlen(c.perf) - 1] = '\0';
    if (json) {
        print_json(&c, prom, prom_ok);
        goto out;
    }
    printf("PHC %s - %s", state_names[c.state], c.text);
    if (c.perf[0])
        printf(" | %s", c.perf);
    printf("\n");
    for (size_t i = 0; trust_only && i < phc_trust_report_count(c.trust); i++) {
        const phc_trust_finding *tf = phc_trust_report_get(c.trust, i);
        printf("%s: %s - %s\n", tf->name, phc_trust_result_name(tf->result), tf->detail);
    }
out:
    phc_admin_quit_if_stuck(&err, (int)c.state);
    phc_pair_list_free(c.pairs);
    phc_ca_list_free(c.ca);
    phc_trust_report_free(c.trust);
    phc_token_free(t);
    phc_config_free(cfg);
    return c.state;
}
