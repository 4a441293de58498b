/* phc prune [--yes] [--pending]: delete expired and retired pairs, never the active one.
 * Without --yes it only lists what it would delete. */
#include "phc_admin.h"

#include <getopt.h>

static void list(const char *what, const phc_pair_info *p, size_t n)
{
    char until[40];
    for (size_t i = 0; i < n; i++) {
        if (p[i].has_cert)
            printf("%s: id %s (%s) '%s', serial %s, valid until %s\n", what, p[i].id_hex,
                   phc_pair_state_name(p[i].state), p[i].subject, p[i].serial,
                   phc_admin_time(until, sizeof(until), p[i].not_after, 0));
        else
            printf("%s: id %s (pending key, %s, no certificate)\n", what, p[i].id_hex,
                   p[i].key_type);
    }
}

int phc_cmd_prune(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"yes", no_argument, NULL, 'y'},
        {"pending", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int yes = 0, c;
    unsigned flags = 0;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "yph", longopts)) != -1) {
        switch (c) {
        case 'y':
            yes = 1;
            break;
        case 'p':
            flags |= PHC_PRUNE_PENDING;
            break;
        case 'h':
            printf("usage: phc prune [--yes] [--pending]\n"
                   "  deletes expired and retired pairs (never the active one); without --yes\n"
                   "  it only lists them. --pending also deletes keys that have no certificate\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("prune takes no arguments: '%s'", argv[optind]);
    if (!yes)
        flags |= PHC_PRUNE_DRY_RUN;
    phc_config *cfg = NULL;
    phc_token *t = NULL;
    int rc = phc_admin_open(g, &cfg, &t);
    if (rc)
        return rc;
    phc_pair_info *p = NULL;
    size_t n = 0;
    phc_errbuf err = {0};
    int prc = phc_token_prune(t, 0, flags, &p, &n, &err);
    list(yes ? "deleted" : "would delete", p, n);
    if (prc != PHC_OK)
        rc = phc_tool_fail(&err);
    else if (!n)
        printf("nothing to prune on token '%s'\n", phc_token_label(t));
    else if (!yes)
        printf("nothing deleted: run 'phc prune --yes%s' to delete %s\n",
               flags & PHC_PRUNE_PENDING ? " --pending" : "", n == 1 ? "it" : "them");
    phc_free(p);
    phc_token_free(t);
    phc_config_free(cfg);
    return rc;
}
