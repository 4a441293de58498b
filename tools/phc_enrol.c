/* phc enrol --subject DN [--key-type T] --csr-out FILE: the first key pair, generated on the
 * token, and its certificate request. */
#include "phc_admin.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>

/* Writes the request and tells the operator what comes next; shared wording with csr. */
static int write_csr(const char *path, const char *pem, const char *id)
{
    if (phc_tool_write_output(path, pem, strlen(pem), NULL, 0, 0644) != 0) {
        fprintf(stderr,
                "phc: cannot write the certificate request to %s: %s (the key id %s is on the "
                "token; 'phc csr --key-id %s --subject DN --csr-out FILE' makes its request)\n",
                path, strerror(errno), id, id);
        return 2;
    }
    return 0;
}

static const char *key_desc(phc_token *t, const char *id)
{
    static char desc[32];
    phc_pair_list *p = NULL;
    phc_errbuf err = {0};
    snprintf(desc, sizeof(desc), "key");
    if (phc_token_pairs(t, 0, &p, &err) == PHC_OK)
        for (size_t i = 0; i < phc_pair_list_count(p); i++)
            if (!strcmp(phc_pair_list_get(p, i)->id_hex, id))
                snprintf(desc, sizeof(desc), "%s", phc_pair_list_get(p, i)->key_type);
    phc_pair_list_free(p);
    return desc;
}

int phc_cmd_enrol(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"subject", required_argument, NULL, 's'},
        {"key-type", required_argument, NULL, 't'},
        {"csr-out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *subject = NULL, *key_type = "rsa:2048", *out = NULL;
    int c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "s:t:o:h", longopts)) != -1) {
        switch (c) {
        case 's':
            subject = optarg;
            break;
        case 't':
            key_type = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'h':
            printf("usage: phc enrol --subject DN [--key-type rsa:2048|rsa:3072|rsa:4096|ec:P-256|"
                   "ec:P-384] --csr-out FILE\n"
                   "  DN: '/O=Energy Co/CN=client' or 'CN=client,O=Energy Co'\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("enrol takes no arguments besides its options: '%s'", argv[optind]);
    if (!subject)
        return phc_tool_usage("enrol needs --subject DN (e.g. '/O=Energy Co/CN=client')");
    if (!out)
        return phc_tool_usage("enrol needs --csr-out FILE for the certificate request");
    phc_errbuf err = {0};
    char dn[256];
    /* A bad subject must not cost a key pair on the token. */
    if (phc_subject_parse(subject, dn, sizeof(dn), &err) != PHC_OK)
        return phc_tool_fail(&err);

    phc_config *cfg = NULL;
    phc_token *t = NULL;
    int rc = phc_admin_open(g, &cfg, &t);
    if (rc)
        return rc;
    char id[PHC_ID_HEX_MAX];
    char *pem = NULL;
    if (phc_token_generate(t, key_type, 0, id, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        goto out;
    }
    printf("generated %s key pair (id %s) on token '%s': sensitive, never extractable\n",
           key_desc(t, id), id, phc_token_label(t));
    if (phc_token_csr(t, id, subject, &pem, &err) != PHC_OK) {
        char msg[PHC_HINTED_MAX];
        fprintf(stderr,
                "phc: %s (the key id %s is on the token; 'phc csr --key-id %s' makes its "
                "request)\n",
                phc_tool_hinted(&err, msg, sizeof(msg)), id, id);
        rc = phc_err_exit_code(err.code);
        goto out;
    }
    if ((rc = write_csr(out, pem, id)) != 0)
        goto out;
    printf("certificate request for '%s' written to %s\n", dn, out);
    printf("next: have the vendor sign it, then 'phc install CERT.pem'\n");
out:
    phc_admin_quit_if_stuck(&err, rc);
    phc_free(pem);
    phc_token_free(t);
    phc_config_free(cfg);
    return rc;
}
