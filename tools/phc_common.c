#include "phc.h"

#include <stdarg.h>
#include <stdio.h>

int phc_tool_fail(const phc_errbuf *err)
{
    fprintf(stderr, "phc: %s\n", err->msg[0] ? err->msg : phc_err_name(err->code));
    return phc_err_exit_code(err->code);
}

int phc_tool_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("phc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return phc_err_exit_code(PHC_ERR_CONFIG);
}

static void log_to_stderr(void *ud, phc_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "phc: [%s] %s\n", names[level <= PHC_LOG_DEBUG ? level : PHC_LOG_DEBUG], msg);
}

int phc_tool_load_config(const phc_globals *g, phc_config **out)
{
    phc_errbuf err = {0};
    if (phc_config_load(out, g->config_path, &err) != PHC_OK)
        return phc_tool_fail(&err);
    return 0;
}

int phc_tool_open_client(const phc_globals *g, phc_client **out)
{
    phc_config *cfg = NULL;
    int rc = phc_tool_load_config(g, &cfg);
    if (rc != 0)
        return rc;
    phc_client_opts opts = {
        .log = log_to_stderr,
        .log_userdata = NULL,
        .level = g->verbose >= 2   ? PHC_LOG_DEBUG
                 : g->verbose == 1 ? PHC_LOG_INFO
                                   : PHC_LOG_WARN,
    };
    phc_errbuf err = {0};
    int prc = phc_client_new(out, cfg, &opts, &err);
    phc_config_free(cfg);
    return prc == PHC_OK ? 0 : phc_tool_fail(&err);
}
