/* phc: the Powerhub connector's command line. `phc [--config FILE] [-v] SUBCOMMAND ...` */
#include "phc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct subcommand {
    const char *name;
    int (*run)(const phc_globals *g, int argc, char **argv);
    const char *summary;
};

static const struct subcommand subcommands[] = {
#define PHC_SUBCOMMAND(name, summary) {#name, phc_cmd_##name, summary},
#include "subcommands.def"
#undef PHC_SUBCOMMAND
};

/* Subcommand names are C identifiers in subcommands.def; on the command line '-' stands
 * for '_' (phc engine-conf). */
static int name_matches(const char *arg, const char *name)
{
    for (; *arg && *name; arg++, name++)
        if (*arg != *name && !(*arg == '-' && *name == '_'))
            return 0;
    return *arg == *name;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: phc [--config FILE] [-v | -vv] [--log-time] SUBCOMMAND [ARGS]\n\n"
               "subcommands:\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        char shown[32];
        snprintf(shown, sizeof(shown), "%s", subcommands[i].name);
        for (char *p = shown; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(f, "  %-12s %s\n", shown, subcommands[i].summary);
    }
    fprintf(f, "  %-12s %s\n", "help", "help SUBCOMMAND: the same text as phc SUBCOMMAND --help");
    fprintf(f, "\nconfig: --config FILE, else $PHC_CONFIG, else /etc/phconnect/phconnect.cnf\n"
               "-v: the connection; -vv: also each request and response header (secrets\n"
               "redacted) and phase timings; --log-time: a UTC timestamp on each log line.\n"
               "All three may also follow the subcommand.\n"
               "exit codes: 0 ok, 1 http, 2 usage/config, 3 hsm, 4 pin, 5 trust, 6 policy,\n"
               "            7 network, 8 auth, 9 internal\n");
}

static const struct subcommand *find_subcommand(const char *arg)
{
    for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++)
        if (name_matches(arg, subcommands[k].name))
            return &subcommands[k];
    return NULL;
}

/* "phc: unknown subcommand 'reqest' (did you mean 'request'?)": one line, exit 2. */
static int unknown_subcommand(const char *arg)
{
    const char *names[sizeof(subcommands) / sizeof(subcommands[0]) + 1];
    char shown[sizeof(names) / sizeof(names[0])][32];
    size_t n = 0;
    for (; n < sizeof(subcommands) / sizeof(subcommands[0]); n++) {
        snprintf(shown[n], sizeof(shown[n]), "%s", subcommands[n].name);
        for (char *p = shown[n]; *p; p++)
            if (*p == '_')
                *p = '-';
        names[n] = shown[n];
    }
    names[n++] = "help";
    const char *best = phc_tool_suggest(arg, names, n);
    if (best)
        return phc_tool_usage("unknown subcommand '%s' (did you mean '%s'?)", arg, best);
    return phc_tool_usage("unknown subcommand '%s' (see phc --help)", arg);
}

int main(int argc, char **argv)
{
    phc_tool_harden();
    phc_globals g = {.config_path = NULL, .verbose = 0};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        int took = phc_tool_global_opt(&g, argc, argv, &i);
        if (took == 2)
            return 2;
        if (took) {
            continue;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("phc %s\n%s\n", phc_version(), phc_version_libs());
            return 0;
        } else {
            return phc_tool_usage("unknown option '%s' (see phc --help)", a);
        }
    }
    if (i >= argc)
        return phc_tool_usage("no subcommand given (see phc --help)");
    /* phc help SUB runs SUB --help: one text per subcommand, printed by both. */
    static char help_flag[] = "--help";
    char *help_argv[3] = {NULL, help_flag, NULL};
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 >= argc || strcmp(argv[i + 1], "help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 2 < argc)
            return phc_tool_usage("help takes one subcommand name: '%s'", argv[i + 2]);
        if (!find_subcommand(argv[i + 1]))
            return unknown_subcommand(argv[i + 1]);
        help_argv[0] = argv[i + 1];
        argv = help_argv;
        argc = 2;
        i = 0;
    }
    if (!g.config_path)
        g.config_path = phc_config_default_path();
    for (size_t k = 0; k < sizeof(subcommands) / sizeof(subcommands[0]); k++) {
        if (name_matches(argv[i], subcommands[k].name)) {
            /* bench starts phc and curl processes that read the same config: they need
             * its env: secrets. engine_conf reads the PIN itself and then takes them. */
            g.keep_env_secrets = strcmp(subcommands[k].name, "bench") == 0 ||
                                 strcmp(subcommands[k].name, "engine_conf") == 0;
            int rc = phc_tool_global_init();
            if (rc != 0)
                return rc;
            rc = subcommands[k].run(&g, argc - i, argv + i);
            phc_global_cleanup();
            return rc;
        }
    }
    return unknown_subcommand(argv[i]);
}
