/* phc prune [--yes] [--pending]: delete expired and retired pairs, never the active one.
 * Without --yes it only lists what it would delete. Either way it names each private key
 * that goes with them: a deleted key cannot be brought back, unlike a certificate. */
#include "phc_admin.h"

#include <getopt.h>
#include <string.h>
#include <time.h>

static void list(const char *what, const phc_pair_list *p)
{
    char until[40];
    for (size_t i = 0; i < phc_pair_list_count(p); i++) {
        if (phc_pair_list_get(p, i)->has_cert)
            printf("%s: id %s (%s) '%s', serial %s, valid until %s\n", what,
                   phc_pair_list_get(p, i)->id_hex,
                   phc_pair_state_name(phc_pair_list_get(p, i)->state),
                   phc_pair_list_get(p, i)->subject, phc_pair_list_get(p, i)->serial,
                   phc_admin_time(until, sizeof(until), phc_pair_list_get(p, i)->not_after, 0));
        else
            printf("%s: id %s (pending key, %s, no certificate)\n", what,
                   phc_pair_list_get(p, i)->id_hex, phc_pair_list_get(p, i)->key_type);
    }
}

/* The private keys the prune removes: the library deletes a key once no certificate of it is
 * left, so a key goes when every pair with its id (before the prune) is in the list. One
 * line per key; returns how many. */
static size_t list_keys(const char *what, const phc_pair_list *gone, const phc_pair_list *all)
{
    size_t keys = 0, ngone = phc_pair_list_count(gone), nall = phc_pair_list_count(all);
    for (size_t i = 0; i < ngone; i++) {
        int first = 1;
        size_t had = 0, going = 0;
        for (size_t j = 0; j < i; j++)
            first &=
                strcmp(phc_pair_list_get(gone, j)->id_hex, phc_pair_list_get(gone, i)->id_hex) != 0;
        if (!first)
            continue;
        for (size_t j = 0; j < nall; j++)
            had +=
                strcmp(phc_pair_list_get(all, j)->id_hex, phc_pair_list_get(gone, i)->id_hex) == 0;
        for (size_t j = 0; j < ngone; j++)
            going +=
                strcmp(phc_pair_list_get(gone, j)->id_hex, phc_pair_list_get(gone, i)->id_hex) == 0;
        if (going < had)
            continue;
        printf("%s: private key id %s, label '%s', type %s\n", what,
               phc_pair_list_get(gone, i)->id_hex, phc_pair_list_get(gone, i)->label,
               phc_pair_list_get(gone, i)->key_type);
        keys++;
    }
    return keys;
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
            printf("usage: phc prune [-y|--yes] [-p|--pending]\n"
                   "  deletes expired and retired pairs (never the active one) and each private\n"
                   "  key none of whose certificates is left; it lists every pair and private key\n"
                   "  it deletes, and without --yes it only lists them. --pending also deletes\n"
                   "  keys that have no certificate\n");
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
    phc_pair_list *p = NULL, *all = NULL;
    size_t n = 0, keys = 0;
    phc_errbuf err = {0};
    long long now = (long long)time(NULL);
    /* Every pair before the prune, with the same now: which keys lose their last certificate. */
    if (phc_token_pairs(t, now, &all, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    int prc = phc_token_prune(t, now, flags, &p, &err);
    n = phc_pair_list_count(p);
    list(yes ? "deleted" : "would delete", p);
    keys = list_keys(yes ? "deleted" : "would delete", p, all);
    if (prc != PHC_OK)
        rc = phc_tool_fail(&err);
    else if (!n)
        printf("nothing to prune on token '%s'\n", phc_token_label(t));
    else if (!yes)
        printf("nothing deleted: run 'phc prune --yes%s' to delete %s%s\n",
               flags & PHC_PRUNE_PENDING ? " --pending" : "", n == 1 ? "it" : "them",
               keys == 0   ? " (no private key among them)"
               : keys == 1 ? " (and the private key above, for good)"
                           : " (and the private keys above, for good)");
out:
    phc_admin_quit_if_stuck(&err, rc);
    phc_pair_list_free(all);
    phc_pair_list_free(p);
    phc_token_free(t);
    phc_config_free(cfg);
    return rc;
}
