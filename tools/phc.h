/* The phc command: global options and the helpers every subcommand shares. Subcommands use
 * the public API only. */
#ifndef PHC_TOOL_H
#define PHC_TOOL_H

#include <phconnect/phconnect.h>

#include <getopt.h>
#include <sys/types.h>

typedef struct phc_globals {
    const char *config_path; /* --config, $PHC_CONFIG or the default */
    int verbose;             /* number of -v */
    int log_time;            /* --log-time: log lines carry a UTC timestamp */
    int keep_env_secrets;    /* env:NAME secrets stay in the environment (see phc.c) */
} phc_globals;

/* Prints "phc: <msg>" on stderr, with the CLI's hint (phc_tool_hinted), and returns the exit
 * status for err. */
int phc_tool_fail(const phc_errbuf *err);

/* err's message (or its class name) into out, with the phc command that does what the
 * library's message says inserted after it on the same line: "...; renew it (phc csr, then
 * phc install --probe)". The library names no phc command (tools/phc_hint.c). Returns out. */
#define PHC_HINTED_MAX (PHC_ERRMSG_MAX + 256)
const char *phc_tool_hinted(const phc_errbuf *err, char *out, size_t len);

/* Prints "phc: <formatted>" and returns 2 (usage). */
int phc_tool_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The process hardening of phc and phc-agent: no core file and not dumpable (no same-user
 * ptrace, /proc/PID/mem or /proc/PID/environ), since the PIN, the client secret and API tokens
 * pass through the process's memory. execve() makes a process dumpable again, so each program
 * calls it first thing. */
void phc_tool_harden(void);

/* One global option at argv[*i] (--config FILE, -c FILE, --config=FILE, -v..., --verbose,
 * --log-time) into g; *i moves past a value it takes. Returns 1 when it took the option, 0
 * when argv[*i] is not a global option, 2 after printing the usage line of a missing value. */
int phc_tool_global_opt(phc_globals *g, int argc, char **argv, int *i);

/* getopt_long for a subcommand, with what every subcommand shares: -v, -vv, --verbose and
 * --log-time are accepted after the subcommand's name too (phc request -v PATH, as curl users
 * type it) and do what they do before it; getopt's own messages are off (opterr = 0) and each
 * mistake is reported here as exactly one line, "phc: SUB: unknown option '--x' (see 'phc
 * help SUB')" and the like. Returns the option, -1 at the end, or '?' once the line is
 * printed: the caller then exits with its usage status. shortopts must not contain 'v' or
 * start with ':'; longopts hold at most 47 entries. The caller sets optind = 1 before the first
 * call. */
#define PHC_GETOPT_ERROR '?'
int phc_tool_getopt(const phc_globals *g, int argc, char **argv, const char *shortopts,
                    const struct option *longopts);

/* The name of the known word closest to word (edit distance at most 2, case-insensitive),
 * for "did you mean"; NULL when none is that close. names: n entries. */
const char *phc_tool_suggest(const char *word, const char *const *names, size_t n);

/* Loads the configuration named by g. On failure prints and returns the exit status. */
int phc_tool_load_config(const phc_globals *g, phc_config **out);

/* Loads the config and makes a client with the tool's stderr logger. */
int phc_tool_open_client(const phc_globals *g, phc_client **out);

/* Client options with the tool's stderr logger ("phc: [level] ...") at the level -v asks
 * for. */
phc_client_opts phc_tool_log_opts(const phc_globals *g);

/* Where an output path goes (-o, --csr-out, --prometheus). Atomic replacement is for
 * regular files only: replacing a device, a FIFO or a /proc/self/fd/N link would destroy it
 * (phc -o /dev/null as root once turned /dev/null into a regular file). */
enum phc_out_kind {
    PHC_OUT_STDOUT = 1, /* "-" */
    PHC_OUT_REPLACE,    /* a regular file, or nothing yet: temporary file renamed into place */
    PHC_OUT_IN_PLACE,   /* anything else (device, FIFO, socket, symbolic link) or anything
                         * under /dev or /proc: opened and written where it is, as curl does */
};
int phc_tool_output_kind(const char *path);

/* Writes a then b (either may be empty) to path as phc_tool_output_kind says. Replacing:
 * a temporary file in the same directory, fsync'ed, given mode and renamed into place, so
 * path is either the complete new content or untouched. In place: opened O_TRUNC (created
 * with mode if it vanished meanwhile), never renamed or chmod'ed. "-" is standard output.
 * Returns 0, or -1 with errno set (ENOMEM when nothing was tried). */
int phc_tool_write_output(const char *path, const void *a, size_t alen, const void *b, size_t blen,
                          mode_t mode);

/* phc_tool_write_output for what is no secret by default (request -o): a new file gets
 * 0666 less the umask, as curl -o creates it; a regular file that is replaced keeps its mode. */
int phc_tool_write_output_umask(const char *path, const void *a, size_t alen, const void *b,
                                size_t blen);

/* phc_global_init_opts as phc and phc-agent use it: libcurl, when a command loads it, with
 * allocators that wipe every block before freeing it (PHC_GLOBAL_WIPE_CURL_FREES). 0, or the
 * exit code after the one-line refusal on stderr. */
int phc_tool_global_init(void);

/* What every subcommand does with a config it loaded: checks the ownership and modes of the
 * files it names (phc_config_check_files: warnings on stderr, or an error with
 * strict_modes = error), then moves its env:NAME secrets out of the environment
 * (phc_config_take_env_secrets) unless g says to keep them. PHC_OK or the error in err. */
int phc_tool_config_ready(const phc_globals *g, const phc_config *cfg, phc_errbuf *err);

#define PHC_SUBCOMMAND(name, summary)                                                              \
    int phc_cmd_##name(const phc_globals *g, int argc, char **argv);
#include "subcommands.def"
#undef PHC_SUBCOMMAND

#endif
