/* Unit tests for lib/tokendir.c: a SoftHSM configuration, token directory or token that
 * this process's user cannot read is named with its owner and mode; everything readable, a
 * module that is not SoftHSM, or a missing file is not a finding. The unreadable cases run
 * in a child that has dropped to uid 65534 (root reads everything). */
#include "tokendir.h"
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define NOBODY 65534

static char g_dir[64], g_conf[128], g_tokens[128], g_token[192];

/* Runs the check as uid NOBODY in a child; 1 when it found what want says (want NULL: that
 * it found nothing). */
static int as_nobody(const char *want)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char why[1024];
        if (setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
            _exit(3);
        int r = phc__tokendir_unreadable(MODULE, why, sizeof(why));
        if (want ? (r == 1 && strcmp(why, want) == 0) : (r == 0 && why[0] == '\0'))
            _exit(0);
        fprintf(stderr, "  got %d '%s', wanted '%s'\n", r, why, want ? want : "(nothing)");
        _exit(1);
    }
    int st = 0;
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void)
{
    char why[1024], want[1024];
    snprintf(g_dir, sizeof(g_dir), "/tmp/phc_tokendir_test.XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL && chmod(g_dir, 0755) == 0);
    snprintf(g_conf, sizeof(g_conf), "%s/softhsm2.conf", g_dir);
    snprintf(g_tokens, sizeof(g_tokens), "%s/tokens", g_dir);
    snprintf(g_token, sizeof(g_token), "%s/0be8cd66-a83b", g_tokens);
    FILE *f = fopen(g_conf, "w");
    CHECK(f &&
          fprintf(f,
                  "# test\ndirectories.tokendir = /nowhere\n"
                  "  directories.tokendir=%s  \nobjectstore.backend = file\n",
                  g_tokens) > 0 &&
          fclose(f) == 0);
    CHECK(mkdir(g_tokens, 0755) == 0 && mkdir(g_token, 0755) == 0);
    CHECK(chmod(g_conf, 0644) == 0);
    setenv("SOFTHSM2_CONF", g_conf, 1);

    /* not SoftHSM, or nothing unreadable: no finding */
    CHECK(phc__tokendir_unreadable("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", why,
                                   sizeof(why)) == 0 &&
          why[0] == '\0');
    CHECK(phc__tokendir_unreadable(MODULE, why, sizeof(why)) == 0);
    CHECK(phc__tokendir_unreadable(NULL, why, sizeof(why)) == 0);
    CHECK(phc__tokendir_unreadable(MODULE, NULL, 0) == 0);

    /* the store lock's directory: the last directories.tokendir line, as SoftHSM reads it */
    char store[PATH_MAX];
    CHECK(phc__tokendir_store(store, sizeof(store)) == 0 && strcmp(store, g_tokens) == 0);
    CHECK(phc__tokendir_store(store, 4) == -1); /* too long for the buffer: none */
    CHECK(phc__tokendir_named_softhsm(MODULE) && phc__tokendir_named_softhsm("libsofthsm2.so") &&
          !phc__tokendir_named_softhsm("/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so") &&
          !phc__tokendir_named_softhsm(NULL));

    if (geteuid() != 0) {
        fprintf(stderr, "not root: the unreadable cases need a uid to drop to\n");
        TEST_MAIN_END();
    }
    CHECK(as_nobody(NULL));

    /* a token directory only root can read: what SoftHSM shows as "no initialised token" */
    CHECK(chmod(g_token, 0700) == 0);
    snprintf(want, sizeof(want),
             "the token directory %s (owner uid 0, mode 0700) is not readable by uid 65534",
             g_token);
    CHECK(as_nobody(want));
    CHECK(chmod(g_token, 0755) == 0);

    /* the directory of all tokens: SoftHSM's C_Initialize fails (CKR_GENERAL_ERROR) */
    CHECK(chmod(g_tokens, 0700) == 0);
    snprintf(want, sizeof(want),
             "the token directory %s (owner uid 0, mode 0700) is not readable by uid 65534",
             g_tokens);
    CHECK(as_nobody(want));
    CHECK(chmod(g_tokens, 0755) == 0);

    /* the configuration itself */
    CHECK(chmod(g_conf, 0600) == 0);
    snprintf(want, sizeof(want),
             "the SoftHSM configuration %s (owner uid 0, mode 0600) is not readable by uid 65534",
             g_conf);
    CHECK(as_nobody(want));
    CHECK(chmod(g_conf, 0644) == 0);

    /* a directory above it that cannot be searched */
    CHECK(chmod(g_dir, 0700) == 0);
    snprintf(want, sizeof(want),
             "the directory %s (owner uid 0, mode 0700) above the SoftHSM configuration %s is "
             "not searchable by uid 65534",
             g_dir, g_conf);
    CHECK(as_nobody(want));
    CHECK(chmod(g_dir, 0755) == 0);

    /* a configuration that does not exist: the module's own message covers it */
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/missing.conf", g_dir);
    setenv("SOFTHSM2_CONF", missing, 1);
    CHECK(as_nobody(NULL));
    CHECK(phc__tokendir_store(store, sizeof(store)) == -1);

    rmdir(g_token);
    rmdir(g_tokens);
    unlink(g_conf);
    rmdir(g_dir);
    TEST_MAIN_END();
}
