/* phc rollback [--yes]: undo the last installation. The active pair's certificate is deleted
 * (its key stays, pending, so the certificate can be installed again), which makes the newest
 * other valid pair active. Without --yes it only says what would happen. */
#include "phc_admin.h"

#include <getopt.h>

int phc_cmd_rollback(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int yes = 0, c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "yh", longopts)) != -1) {
        switch (c) {
        case 'y':
            yes = 1;
            break;
        case 'h':
            printf("usage: phc rollback [--yes]\n"
                   "  removes the active pair's certificate so that the previous valid pair\n"
                   "  serves again; without --yes it only says what would happen\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("rollback takes no arguments: '%s'", argv[optind]);
    phc_config *cfg = NULL;
    phc_token *t = NULL;
    int rc = phc_admin_open(g, &cfg, &t);
    if (rc)
        return rc;
    phc_pair_info *from = NULL, *to = NULL;
    phc_errbuf err = {0};
    char a[40], b[40];
    if (phc_token_rollback(t, 0, !yes, &from, &to, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
    } else {
        printf("%s certificate '%s' (serial %s) of key id %s, valid until %s\n",
               yes ? "removed" : "would remove", from->subject, from->serial, from->id_hex,
               phc_admin_time(a, sizeof(a), from->not_after, 0));
        printf("%s pair: id %s, '%s' (serial %s), valid until %s (%ld days)\n",
               yes ? "active" : "would become active", to->id_hex, to->subject, to->serial,
               phc_admin_time(b, sizeof(b), to->not_after, 0), to->days_left);
        if (!yes)
            printf("nothing changed: run 'phc rollback --yes' to do it\n");
        else
            printf("key id %s keeps its key; 'phc install' of the removed certificate undoes "
                   "this\n",
                   from->id_hex);
    }
    phc_admin_quit_if_stuck(&err, rc);
    phc_pair_info_free(from);
    phc_pair_info_free(to);
    phc_token_free(t);
    phc_config_free(cfg);
    return rc;
}
