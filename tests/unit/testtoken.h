/* SoftHSM fixtures shared by the unit tests that work on real tokens: a private temporary
 * directory per run, and per case a token directory (tests/fixtures/token.sh) that SoftHSM
 * is pointed at through SOFTHSM2_CONF. Each test is its own executable, so everything here
 * is static; a test that leaves a helper unused must not fail -Werror for it. */
#ifndef PHC_TESTTOKEN_H
#define PHC_TESTTOKEN_H

#include "err.h"
#include "testutil.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

#define TT_HELPER __attribute__((unused)) static

static char g_src[PATH_MAX];
static char g_tmp[1024];

/* Runs a shell command; returns its exit status (or -1). */
TT_HELPER int PHC_PRINTF(1, 2) sh(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) {
        fprintf(stderr, "command failed to run: %s\n", cmd);
        return -1;
    }
    if (WEXITSTATUS(st))
        fprintf(stderr, "command exited %d: %s\n", WEXITSTATUS(st), cmd);
    return WEXITSTATUS(st);
}

/* Sets g_src (PHC_SRC, else /work/main) and makes g_tmp, TMPDIR/phc-NAME-XXXXXX. */
TT_HELPER int tt_begin(const char *name)
{
    const char *src = getenv("PHC_SRC");
    snprintf(g_src, sizeof(g_src), "%s", src && *src ? src : "/work/main");
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmp, sizeof(g_tmp), "%s/phc-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return -1;
    }
    return 0;
}

/* Removes g_tmp unless PHC_KEEP_TMP asks to keep it for a post-mortem. */
TT_HELPER void tt_end(void)
{
    if (!getenv("PHC_KEEP_TMP"))
        sh("rm -rf '%s'", g_tmp);
}

/* Whether SoftHSM is installed; its absence is a failed check, not a skip. */
TT_HELPER int tt_have_softhsm(void)
{
    if (access(MODULE, R_OK) == 0)
        return 1;
    fprintf(stderr, "SoftHSM (%s) missing\n", MODULE);
    CHECK(0);
    return 0;
}

typedef struct tok {
    char dir[PATH_MAX];
    char pin[PATH_MAX + 16]; /* "file:DIR/pin" */
} tok;

/* Names a token directory g_tmp/name and its PIN source. */
TT_HELPER void tok_paths(tok *t, const char *name)
{
    snprintf(t->dir, sizeof(t->dir), "%s/%s", g_tmp, name);
    snprintf(t->pin, sizeof(t->pin), "file:%s/pin", t->dir);
}

/* Points SoftHSM at t even when making it failed (rc != 0), so a case can never go on with
 * the previous case's token; records rc as one check and returns it. */
TT_HELPER int tok_use(const tok *t, int rc)
{
    char conf[PATH_MAX + 16];
    snprintf(conf, sizeof(conf), "%s/softhsm2.conf", t->dir);
    setenv("SOFTHSM2_CONF", conf, 1);
    CHECK(rc == 0);
    return rc;
}

/* Writes text to t->dir/name and puts its PIN source, "file:DIR/name", in src: a PIN file
 * other than the token's own. */
TT_HELPER void tok_pin_file(const tok *t, const char *name, const char *text, char *src,
                            size_t srclen)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    int n = snprintf(src, srclen, "file:%s", path);
    if (n < 0 || (size_t)n >= srclen)
        CHECK(0); /* a cut path would test some other file */
}

/* A fresh token in g_tmp/name: token.sh init DIR args; points SoftHSM at it. */
TT_HELPER int tok_init(tok *t, const char *name, const char *args)
{
    tok_paths(t, name);
    return tok_use(t, sh("bash '%s/tests/fixtures/token.sh' init '%s' %s >/dev/null", g_src, t->dir,
                         args ? args : ""));
}

#endif
