/* phc firewall [--format nft|iptables|ip6tables] [--chain output|forward] [--source ADDR]:
 * egress rules that let this host reach the API's port only at the pinned addresses, for
 * the host's own firewall (chain output) or a perimeter firewall (chain forward, matched by
 * the host's source address). Printed on stdout; nothing is applied. */
#include "phc_admin.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <string.h>

static int family(const char *a)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, a, buf) == 1)
        return 4;
    if (inet_pton(AF_INET6, a, buf) == 1)
        return 6;
    return 0;
}

static void addrs(const phc_endpoint *ep, int fam, int cidr)
{
    int n = 0;
    for (size_t i = 0; i < ep->n_pinned_ips; i++)
        if (family(ep->pinned_ips[i]) == fam)
            printf("%s%s%s", n++ ? ", " : "", ep->pinned_ips[i],
                   cidr ? (fam == 4 ? "/32" : "/128") : "");
}

static size_t count(const phc_endpoint *ep, int fam)
{
    size_t n = 0;
    for (size_t i = 0; i < ep->n_pinned_ips; i++)
        n += family(ep->pinned_ips[i]) == fam;
    return n;
}

static void nft(const phc_endpoint *ep, const char *chain, const char *src)
{
    int sf = src ? family(src) : 0;
    char from[80] = "";
    if (src)
        snprintf(from, sizeof(from), "%s saddr %s ", sf == 4 ? "ip" : "ip6", src);
    /* Declaring, deleting and defining the table makes the file safe to load again. */
    printf("# load with: nft -f FILE (loading it again replaces the table)\n");
    printf("table inet phconnect_egress\ndelete table inet phconnect_egress\n");
    printf("table inet phconnect_egress {\n");
    printf("\tchain %s {\n", chain);
    printf("\t\ttype filter hook %s priority filter; policy accept;\n", chain);
    for (int fam = 4; fam <= 6; fam += 2) {
        if (!count(ep, fam) || (sf && sf != fam))
            continue;
        printf("\t\t%s%s daddr { ", from, fam == 4 ? "ip" : "ip6");
        addrs(ep, fam, 0);
        printf(" } tcp dport %d accept comment \"Powerhub API %s\"\n", ep->port, ep->host);
    }
    printf("\t\t%stcp dport %d reject with tcp reset comment \"phconnect: only pinned_ips\"\n",
           from, ep->port);
    printf("\t}\n}\n");
}

static int iptables(const phc_endpoint *ep, int fam, const char *chain, const char *src)
{
    const char *tool = fam == 4 ? "iptables" : "ip6tables";
    int sf = src ? family(src) : 0;
    if (!count(ep, fam))
        return phc_tool_usage("pinned_ips has no IPv%d address: use --format %s", fam,
                              fam == 4 ? "ip6tables" : "iptables");
    if (sf && sf != fam)
        return phc_tool_usage("--source/source_address %s is not IPv%d", src, fam);
    printf("# load with: %s-restore --noflush FILE\n", tool);
    if (count(ep, fam == 4 ? 6 : 4)) {
        printf("# IPv%d addresses (", fam == 4 ? 6 : 4);
        addrs(ep, fam == 4 ? 6 : 4, 0);
        printf("): phc firewall --format %s\n", fam == 4 ? "ip6tables" : "iptables");
    }
    printf("*filter\n:PHC-EGRESS - [0:0]\n");
    printf("-A %s%s%s -p tcp --dport %d -j PHC-EGRESS\n", chain, src ? " -s " : "", src ? src : "",
           ep->port);
    for (size_t i = 0; i < ep->n_pinned_ips; i++)
        if (family(ep->pinned_ips[i]) == fam)
            printf("-A PHC-EGRESS -d %s%s -p tcp --dport %d -m comment --comment \"Powerhub API "
                   "%s\" -j ACCEPT\n",
                   ep->pinned_ips[i], fam == 4 ? "/32" : "/128", ep->port, ep->host);
    printf("-A PHC-EGRESS -p tcp --dport %d -m comment --comment \"phconnect: only pinned_ips\" "
           "-j REJECT --reject-with tcp-reset\n",
           ep->port);
    printf("COMMIT\n");
    return 0;
}

int phc_cmd_firewall(const phc_globals *g, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"chain", required_argument, NULL, 'c'},
        {"source", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *format = "nft", *chain = "output", *src = NULL;
    int c;
    optind = 1;
    while ((c = phc_tool_getopt(g, argc, argv, "f:c:s:h", longopts)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'c':
            chain = optarg;
            break;
        case 's':
            src = optarg;
            break;
        case 'h':
            printf("usage: phc firewall [--format nft|iptables|ip6tables] [--chain "
                   "output|forward] [--source ADDR]\n"
                   "  prints egress rules: the URL's port only to pinned_ips (from ADDR, default\n"
                   "  source_address; a forward chain on a perimeter firewall needs one)\n");
            return 0;
        default:
            return 2; /* phc_tool_getopt said why */
        }
    }
    if (optind != argc)
        return phc_tool_usage("firewall takes no arguments: '%s'", argv[optind]);
    int fmt = !strcmp(format, "nft")         ? 0
              : !strcmp(format, "iptables")  ? 4
              : !strcmp(format, "ip6tables") ? 6
                                             : -1;
    if (fmt < 0)
        return phc_tool_usage("--format must be nft, iptables or ip6tables, not '%s'", format);
    if (strcmp(chain, "output") && strcmp(chain, "forward"))
        return phc_tool_usage("--chain must be output or forward, not '%s'", chain);
    if (src && !family(src))
        return phc_tool_usage("--source must be a numeric IPv4/IPv6 address, not '%s'", src);
    phc_config *cfg = NULL;
    int rc = phc_tool_load_config(g, &cfg);
    if (rc)
        return rc;
    phc_endpoint ep = PHC_ENDPOINT_INIT;
    phc_errbuf err = {0};
    if (phc_config_endpoint(cfg, &ep, &err) != PHC_OK) {
        rc = phc_tool_fail(&err);
        phc_config_free(cfg);
        return rc;
    }
    if (!src)
        src = ep.source_address;
    if (!ep.n_pinned_ips) {
        rc = phc_tool_usage("config %s has no 'pinned_ips': there is no address to allow (set the "
                            "vendor's fixed addresses first)",
                            g->config_path);
    } else if (!strcmp(chain, "forward") && !src) {
        rc = phc_tool_usage("--chain forward needs this host's address: set source_address or "
                            "give --source ADDR");
    } else {
        printf("# phc firewall: %s only at its pinned addresses (from %s)\n", ep.url,
               src ? src : "this host");
        if (fmt == 0)
            nft(&ep, chain, src);
        else
            rc = iptables(&ep, fmt, !strcmp(chain, "output") ? "OUTPUT" : "FORWARD", src);
    }
    phc_config_free(cfg);
    return rc;
}
