/* phc csr [--subject DN] [--new-key [--key-type T] | --key-id ID] --csr-out FILE: a request
 * for renewal, with the current key or a new pending one. */
#include "phc_admin.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

int phc_cmd_csr(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subject", required_argument, NULL, 's'},
        {"new-key", no_argument, NULL, 'n'},
        {"key-type", required_argument, NULL, 't'},
        {"key-id", required_argument, NULL, 'i'},
        {"csr-out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *subject = NULL, *key_type = NULL, *out = NULL, *key_id = NULL;
    int new_key = 0, c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "s:nt:i:o:h", longopts)) != -1) {
        switch (c) {
        case 's':
            subject = optarg;
            break;
        case 'n':
            new_key = 1;
            break;
        case 't':
            key_type = optarg;
            break;
        case 'i':
            key_id = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            printf("usage: phc csr [--subject DN] [--new-key [--key-type T] | --key-id ID] "
                   "--csr-out FILE\n"
                   "  without --new-key: a request with the active pair's key (or --key-id)\n"
                   "  --new-key: a new pending key on the token; the active pair keeps serving\n"
                   "  DN defaults to the subject of the key's newest certificate\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("csr takes no arguments besides its options: '%s'", argv[optind]);
    if (!out)
        return phc_tool_usage("csr needs --csr-out FILE for the certificate request");
    if (key_type && !new_key)
        return phc_tool_usage("--key-type goes with --new-key (the current key keeps its type)");
    if (key_id && new_key)
        return phc_tool_usage("--key-id and --new-key exclude each other");
    phc_errbuf err = {0};
    if (subject && phc_subject_parse(subject, NULL, 0, &err) != PHC_OK)
        return phc_tool_fail(&err);

    phc_config *cfg = NULL;
    phc_token *t = NULL;
    int rc = phc_admin_open(g, &cfg, &t);
    if (rc)
        return rc;
    char id[PHC_ID_HEX_MAX] = "";
    char *pem = NULL;
    if (new_key && !subject) {
        /* The new key borrows the active pair's subject; without one, say so before a key
         * is made for nothing. */
        phc_pair_list *p = NULL;
        int have = 0;
        if (phc_token_pairs(t, 0, &p, &err) != PHC_OK) {
            rc = phc_tool_fail(&err);
            goto out;
        }
        for (size_t i = 0; i < phc_pair_list_count(p); i++)
            have |= phc_pair_list_get(p, i)->state == PHC_PAIR_ACTIVE;
        phc_pair_list_free(p);
        if (!have) {
            rc = phc_tool_usage("no active pair to copy the subject from: give --subject DN");
            goto out;
        }
    }
    if (new_key) {
        if (phc_token_generate(t, key_type, 1, id, &err) != PHC_OK) {
            rc = phc_tool_fail(&err);
            goto out;
        }
        printf("generated a new pending key pair (id %s) on token '%s'; the active pair keeps "
               "serving until its successor is installed\n",
               id, phc_token_label(t));
        key_id = id;
    }
    if (phc_token_csr(t, key_id, subject, &pem, &err) != PHC_OK) {
        char msg[PHC_HINTED_MAX];
        phc_tool_hinted(&err, msg, sizeof(msg));
        if (new_key)
            fprintf(stderr,
                    "phc: %s (the new key id %s is on the token; 'phc csr --key-id %s' makes "
                    "its request)\n",
                    msg, id, id);
        else
            fprintf(stderr, "phc: %s\n", msg);
        rc = phc_err_exit_code(err.code);
        goto out;
    }
    if (phc_tool_write_output(out, pem, strlen(pem), NULL, 0, 0644) != 0) {
        fprintf(stderr, "phc: cannot write the certificate request to %s: %s\n", out,
                strerror(errno));
        rc = 2;
        goto out;
    }
    if (!key_id) {
        /* Name the key the library chose: the active pair's, else the only pending one. */
        phc_pair_list *p = NULL;
        if (phc_token_pairs(t, 0, &p, &err) == PHC_OK) {
            for (size_t i = 0; i < phc_pair_list_count(p) && !id[0]; i++)
                if (phc_pair_list_get(p, i)->state == PHC_PAIR_ACTIVE)
                    snprintf(id, sizeof(id), "%s", phc_pair_list_get(p, i)->id_hex);
            for (size_t i = 0; i < phc_pair_list_count(p) && !id[0]; i++)
                if (phc_pair_list_get(p, i)->state == PHC_PAIR_PENDING)
                    snprintf(id, sizeof(id), "%s", phc_pair_list_get(p, i)->id_hex);
        }
        phc_pair_list_free(p);
        key_id = id;
    }
    printf("certificate request (key id %s) written to %s\n", key_id, out);
    printf("next: have the vendor sign it, then 'phc install CERT.pem'\n");
out:
    phc_admin_quit_if_stuck(&err, rc);
    phc_free(pem);
    phc_token_free(t);
    phc_config_free(cfg);
    return rc;
}
