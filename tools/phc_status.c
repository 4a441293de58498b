/* phc status [--json]: every key/certificate pair on the token with its state, the pinned CA
 * certificates, the pinned addresses and the client credential's expiry. */
#include "phc_admin.h"
#include "phc_trust.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

typedef struct status {
    phc_config *cfg;
    phc_token *t;
    phc_pair_list *pairs;
    size_t npairs;
    phc_ca_list *ca;
    size_t nca;
    phc_endpoint ep;
    long long now;
    phc_trust_report *trust; /* the trust self-test; NULL when it could not run (trust_err) */
    phc_errbuf trust_err;
} status;

static long days_until(long long t, long long now)
{
    long long d = t - now;
    return (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
}

/* Pairs with the very same dates as the active one: which rule put it first (token.h). */
static void print_ties(const status *s)
{
    const phc_pair_info *act = NULL;
    char why[400];
    for (size_t i = 0; i < s->npairs; i++)
        if (phc_pair_list_get(s->pairs, i)->state == PHC_PAIR_ACTIVE)
            act = phc_pair_list_get(s->pairs, i);
    for (size_t i = 0; act && i < s->npairs; i++) {
        const phc_pair_info *p = phc_pair_list_get(s->pairs, i);
        if (p != act && p->state == PHC_PAIR_RETIRED && !p->key_mismatch &&
            p->not_before == act->not_before && p->not_after == act->not_after)
            printf("tie: active pair %s (serial %s) and pair %s (serial %s) have the very same "
                   "notBefore and notAfter; %s\n",
                   act->id_hex, act->serial, p->id_hex, p->serial,
                   phc_admin_tie_reason(why, sizeof(why), act, p, "the other"));
    }
}

static void print_text(const status *s)
{
    char a[40], b[40];
    const char *key = phc_config_get(s->cfg, "key");
    if (s->t)
        printf("token '%s', keys named by %s\n", phc_token_label(s->t), key);
    else
        printf("token: none (no 'key' configured)\n");
    if (s->t && !s->npairs)
        printf("pairs: none (run 'phc enrol')\n");
    if (s->npairs)
        printf("%-4s %-13s %-9s %-20s %-20s %6s  %s\n", "ID", "STATE", "KEY", "NOT BEFORE",
               "NOT AFTER", "DAYS", "SUBJECT / ISSUER / SERIAL");
    for (size_t i = 0; i < s->npairs; i++) {
        const phc_pair_info *p = phc_pair_list_get(s->pairs, i);
        if (!p->has_cert) {
            printf("%-4s %-13s %-9s %-20s %-20s %6s  (no certificate yet)\n", p->id_hex,
                   phc_pair_state_name(p->state), p->key_type, "-", "-", "-");
            continue;
        }
        phc_admin_time(a, sizeof(a), p->not_before, 0);
        phc_admin_time(b, sizeof(b), p->not_after, 0);
        a[16] = b[16] = '\0'; /* minutes are enough in the table */
        printf("%-4s %-13s %-9s %-20s %-20s %6ld  %s / %s / %s%s\n", p->id_hex,
               phc_pair_state_name(p->state), p->key_type, a, b, p->days_left, p->subject,
               p->issuer, p->serial, p->key_mismatch ? " (DOES NOT MATCH ITS KEY)" : "");
    }
    print_ties(s);
    if (phc_config_get(s->cfg, "cert"))
        printf("note: the config sets 'cert'; the connector uses that certificate, not the "
               "active pair\n");
    for (size_t i = 0; i < s->nca; i++) {
        const phc_ca_info *ca = phc_ca_list_get(s->ca, i);
        printf("CA '%s': valid until %s (%ld days), sha256 %s\n", ca->subject,
               phc_admin_time(a, sizeof(a), ca->not_after, 0), ca->days_left, ca->sha256);
    }
    printf("url: %s\n", s->ep.url);
    printf("pinned addresses: ");
    for (size_t i = 0; i < s->ep.n_pinned_ips; i++)
        printf("%s%s", i ? ", " : "", s->ep.pinned_ips[i]);
    printf("%s\n", s->ep.n_pinned_ips ? "" : "none (DNS decides)");
    if (s->ep.source_address)
        printf("source address: %s\n", s->ep.source_address);
    if (s->ep.credential_expires)
        printf("client credential '%s': expires %s (%ld days)\n",
               phc_config_get(s->cfg, "client_id") ? phc_config_get(s->cfg, "client_id") : "",
               phc_admin_time(a, sizeof(a), s->ep.credential_expires, 0),
               days_until(s->ep.credential_expires, s->now));
    else
        printf("client credential: %s\n", phc_config_get(s->cfg, "client_id")
                                              ? "configured, no credential_expires set"
                                              : "not configured");
    const char *profile = phc_config_get(s->cfg, "x509_profile");
    const char *tls = phc_config_get(s->cfg, "min_tls_version");
    if (!s->trust) {
        printf("trust self-test: could not run: %s\n", s->trust_err.msg);
        return;
    }
    printf("trust self-test: %s (x509_profile %s, min_tls_version %s)\n",
           phc_trust_result_name(phc_trust_report_overall(s->trust)), profile ? profile : "strict",
           tls ? tls : "1.2");
    for (size_t i = 0; i < phc_trust_report_count(s->trust); i++) {
        const phc_trust_finding *f = phc_trust_report_get(s->trust, i);
        if (f->result == PHC_TRUST_FAIL || f->result == PHC_TRUST_WARN)
            printf("  %s: %s\n", f->name, f->detail);
    }
}

static void json_time(FILE *f, const char *name, long long t)
{
    char buf[40];
    fprintf(f, "\"%s\":", name);
    if (t)
        phc_admin_json_str(f, phc_admin_time(buf, sizeof(buf), t, 1));
    else
        fputs("null", f);
}

static void json_opt_str(FILE *f, const char *s)
{
    if (s)
        phc_admin_json_str(f, s);
    else
        fputs("null", f);
}

static void print_json(const status *s)
{
    FILE *f = stdout;
    const char *active = NULL;
    fputs("{\"token\":", f);
    if (s->t) {
        fputs("{\"label\":", f);
        phc_admin_json_str(f, phc_token_label(s->t));
        fputs(",\"key\":", f);
        phc_admin_json_str(f, phc_config_get(s->cfg, "key"));
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"pairs\":[", f);
    for (size_t i = 0; i < s->npairs; i++) {
        const phc_pair_info *p = phc_pair_list_get(s->pairs, i);
        if (p->state == PHC_PAIR_ACTIVE)
            active = p->id_hex;
        fprintf(f, "%s{\"id\":", i ? "," : "");
        phc_admin_json_str(f, p->id_hex);
        fputs(",\"label\":", f);
        phc_admin_json_str(f, p->label);
        fputs(",\"key_type\":", f);
        phc_admin_json_str(f, p->key_type);
        fputs(",\"state\":", f);
        phc_admin_json_str(f, phc_pair_state_name(p->state));
        fprintf(f, ",\"has_cert\":%s", p->has_cert ? "true" : "false");
        fputs(",\"subject\":", f);
        json_opt_str(f, p->has_cert ? p->subject : NULL);
        fputs(",\"issuer\":", f);
        json_opt_str(f, p->has_cert ? p->issuer : NULL);
        fputs(",\"serial\":", f);
        json_opt_str(f, p->has_cert ? p->serial : NULL);
        fputs(",\"sha256\":", f);
        json_opt_str(f, p->has_cert ? p->sha256 : NULL);
        fputc(',', f);
        json_time(f, "not_before", p->has_cert ? p->not_before : 0);
        fputc(',', f);
        json_time(f, "not_after", p->has_cert ? p->not_after : 0);
        if (p->has_cert)
            fprintf(f, ",\"not_after_epoch\":%lld,\"days_left\":%ld", p->not_after, p->days_left);
        else
            fputs(",\"not_after_epoch\":null,\"days_left\":null", f);
        fprintf(f, ",\"key_matches\":%s", p->has_cert && p->key_mismatch ? "false" : "true");
        if (p->install_seq >= 0)
            fprintf(f, ",\"install_seq\":%ld}", p->install_seq);
        else
            fputs(",\"install_seq\":null}", f);
    }
    fputs("],\"active\":", f);
    json_opt_str(f, active);
    static const char *const order[] = {"none", "recorded", "unreadable"};
    fputs(",\"install_order\":", f);
    json_opt_str(f, s->npairs ? order[phc_pair_list_get(s->pairs, 0)->install_order % 3] : NULL);
    fputs(",\"ca\":[", f);
    for (size_t i = 0; i < s->nca; i++) {
        const phc_ca_info *ca = phc_ca_list_get(s->ca, i);
        fprintf(f, "%s{\"subject\":", i ? "," : "");
        phc_admin_json_str(f, ca->subject);
        fputs(",\"sha256\":", f);
        phc_admin_json_str(f, ca->sha256);
        fputc(',', f);
        json_time(f, "not_after", ca->not_after);
        fprintf(f, ",\"days_left\":%ld}", ca->days_left);
    }
    fputs("],\"trust_selftest\":", f);
    json_opt_str(f, s->trust ? phc_trust_result_name(phc_trust_report_overall(s->trust)) : NULL);
    fputs(",\"url\":", f);
    phc_admin_json_str(f, s->ep.url);
    fputs(",\"pinned_ips\":[", f);
    for (size_t i = 0; i < s->ep.n_pinned_ips; i++) {
        fputs(i ? "," : "", f);
        phc_admin_json_str(f, s->ep.pinned_ips[i]);
    }
    fputs("],\"source_address\":", f);
    json_opt_str(f, s->ep.source_address);
    fputs(",\"client_id\":", f);
    json_opt_str(f, phc_config_get(s->cfg, "client_id"));
    fputc(',', f);
    json_time(f, "credential_expires", s->ep.credential_expires);
    if (s->ep.credential_expires)
        fprintf(f, ",\"credential_days_left\":%ld}\n",
                days_until(s->ep.credential_expires, s->now));
    else
        fputs(",\"credential_days_left\":null}\n", f);
}

int phc_cmd_status(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c, rc;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "jh", longopts)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            printf("usage: phc status [--json]\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("status takes no arguments: '%s'", argv[optind]);
    status s;
    memset(&s, 0, sizeof(s));
    s.ep = (phc_endpoint)PHC_ENDPOINT_INIT;
    s.now = (long long)time(NULL);
    phc_errbuf err = {0};
    if ((rc = phc_tool_load_config(g, &s.cfg)) != 0)
        return rc;
    if (phc_config_get(s.cfg, "key")) {
        phc_client_opts o = phc_tool_log_opts(g);
        if (phc_token_open(&s.t, s.cfg, &o, &err) != PHC_OK ||
            phc_token_pairs(s.t, s.now, &s.pairs, &err) != PHC_OK) {
            rc = phc_tool_fail(&err);
            goto out;
        }
    }
    if (phc_config_ca_certs(s.cfg, s.now, &s.ca, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    s.npairs = phc_pair_list_count(s.pairs);
    s.nca = phc_ca_list_count(s.ca);
    if (phc_config_endpoint(s.cfg, &s.ep, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    if (phc_tool_trust_check(s.cfg, NULL, 30, 7, &s.trust, &s.trust_err) != PHC_OK)
        s.trust = NULL;
    if (json)
        print_json(&s);
    else
        print_text(&s);
    if (fflush(stdout) != 0)
        rc = phc_tool_usage("cannot write to standard output");
out:
    phc_admin_quit_if_stuck(&err, rc);
    phc_pair_list_free(s.pairs);
    phc_ca_list_free(s.ca);
    phc_trust_report_free(s.trust);
    phc_token_free(s.t);
    phc_config_free(s.cfg);
    return rc;
}
