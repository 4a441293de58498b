/* Unit tests for lib/secret.c: reading PINs and client secrets from file: and env: sources,
 * every refusal path, and that no message ever contains the secret. */
#include "secret.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET "s3cr3t-4711"

static char tmpdir[64];

/* tmpdir/name, written with content (len bytes); caller frees the path. */
static char *write_file(const char *name, const char *content, size_t len)
{
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    sprintf(path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(content, 1, len, f) == len);
        fclose(f);
    }
    return path;
}

/* "file:" + path */
static char *file_src(const char *path)
{
    char *s = malloc(strlen(path) + 6);
    sprintf(s, "file:%s", path);
    return s;
}

/* Reads source and expects the value want. */
static void expect_value(const char *source, const char *want, size_t want_len)
{
    phc_errbuf e = {0};
    char *v = NULL;
    size_t len = 99;
    int rc = phc__secret_read(&v, &len, source, "PIN", PHC_ERR_PIN, &e);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK) {
        fprintf(stderr, "  %s: %s\n", source, e.msg);
        return;
    }
    CHECK(len == want_len);
    CHECK(v && memcmp(v, want, want_len) == 0 && v[want_len] == '\0');
    phc__secret_free(v, len);
}

/* Reads source, expects failure with code and text in the message and no secret in it. */
#define EXPECT_FAIL(source, what, errclass, want_code, want_text)                                  \
    do {                                                                                           \
        phc_errbuf e_ = {0};                                                                       \
        char *v_ = (char *)1;                                                                      \
        size_t l_ = 99;                                                                            \
        CHECK_ERR(phc__secret_read(&v_, &l_, (source), (what), (errclass), &e_), e_, (want_code),  \
                  (want_text));                                                                    \
        CHECK(v_ == NULL && l_ == 0);                                                              \
        CHECK(strstr(e_.msg, "s3cr3t") == NULL);                                                   \
    } while (0)

static void test_files(void)
{
    static const struct {
        const char *name, *content;
        const char *want;
    } ok[] = {
        {"lf", SECRET "\n", SECRET},
        {"crlf", SECRET "\r\n", SECRET},
        {"none", SECRET, SECRET},
        {"lead", " " SECRET "\n", " " SECRET}, /* leading blanks are the user's business */
        {"inner", "a b\tc\n", "a b\tc"},
        {"one", "7", "7"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char *path = write_file(ok[i].name, ok[i].content, strlen(ok[i].content));
        char *src = file_src(path);
        expect_value(src, ok[i].want, strlen(ok[i].want));
        unlink(path);
        free(src);
        free(path);
    }

    /* exactly 4 KiB is fine, one byte more is not (even if the extra byte is a newline) */
    char big[4097];
    memset(big, 'x', sizeof(big));
    char *path = write_file("max", big, 4096);
    char *src = file_src(path);
    expect_value(src, big, 4096);
    unlink(path);
    free(src);
    free(path);
    big[4096] = '\n';
    path = write_file("over", big, 4097);
    src = file_src(path);
    char want[256];
    snprintf(want, sizeof(want), "PIN file %s is larger than 4096 bytes", path);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    unlink(path);
    free(src);
    free(path);
}

/* mkdir tmpdir/name with mode; the path into buf. */
static const char *mkdir_in(char *buf, size_t len, const char *name, mode_t mode)
{
    snprintf(buf, len, "%s/%s", tmpdir, name);
    CHECK(mkdir(buf, 0700) == 0 && chmod(buf, mode) == 0);
    return buf;
}

/* Symbolic links are followed when the link, the file and every directory on the way belong
 * to root or this user and are writable by no one else; otherwise refused, naming the link,
 * its target and the element at fault. */
static void test_links(void)
{
    char want[1024], d1[128], d2[128], p[256], l[256], l2[256], src[300];

    /* Kubernetes' layout: pin -> ..data/pin, ..data -> ..2026_11_29 (relative links) */
    mkdir_in(d1, sizeof(d1), "..2026_11_29", 0755);
    snprintf(p, sizeof(p), "%s/pin", d1);
    FILE *f = fopen(p, "w");
    CHECK(f && fputs(SECRET "\n", f) >= 0 && fclose(f) == 0);
    snprintf(l, sizeof(l), "%s/..data", tmpdir);
    CHECK(symlink("..2026_11_29", l) == 0);
    snprintf(l2, sizeof(l2), "%s/pin", tmpdir);
    CHECK(symlink("..data/pin", l2) == 0);
    snprintf(src, sizeof(src), "file:%s", l2);
    expect_value(src, SECRET, strlen(SECRET));

    /* an absolute link to the same file */
    char abs[256];
    snprintf(abs, sizeof(abs), "%s/abs", tmpdir);
    CHECK(symlink(p, abs) == 0);
    snprintf(src, sizeof(src), "file:%s", abs);
    expect_value(src, SECRET, strlen(SECRET));

    /* the target's directory writable by its group: refused, naming all three */
    CHECK(chmod(d1, 0775) == 0);
    snprintf(src, sizeof(src), "file:%s", l2);
    snprintf(want, sizeof(want),
             "PIN file %s is a symbolic link to %s, not followed: %s is writable by its group "
             "(mode 0775)",
             l2, p, d1);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    snprintf(want, sizeof(want), "client secret file %s is a symbolic link to %s, not followed", l2,
             p);
    EXPECT_FAIL(src, "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG, want);
    CHECK(chmod(d1, 0755) == 0);

    /* the file itself writable by others */
    CHECK(chmod(p, 0602) == 0);
    snprintf(want, sizeof(want), "not followed: %s is writable by others (mode 0602)", p);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    CHECK(chmod(p, 0600) == 0);
    expect_value(src, SECRET, strlen(SECRET));

    /* a link, or the file, belonging to another user (root can hand them over) */
    if (geteuid() == 0) {
        CHECK(lchown(l, 65534, 65534) == 0);
        snprintf(want, sizeof(want),
                 "not followed: %s belongs to uid 65534, neither root nor this user (uid 0)", l);
        EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
        CHECK(lchown(l, 0, 0) == 0);
        CHECK(chown(p, 65534, 65534) == 0);
        snprintf(want, sizeof(want), "not followed: %s belongs to uid 65534", p);
        EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
        CHECK(chown(p, 0, 0) == 0);
    }

    /* a dangling link: the file does not exist */
    char dang[256];
    snprintf(dang, sizeof(dang), "%s/dangling", tmpdir);
    CHECK(symlink("nowhere", dang) == 0);
    snprintf(src, sizeof(src), "file:%s", dang);
    snprintf(want, sizeof(want), "PIN file %s does not exist", dang);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);

    /* a loop */
    char loop[256];
    snprintf(loop, sizeof(loop), "%s/loop", tmpdir);
    CHECK(symlink("loop", loop) == 0);
    snprintf(src, sizeof(src), "file:%s", loop);
    snprintf(want, sizeof(want), "PIN file %s is a symbolic link that was not followed", loop);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);

    unlink(loop);
    unlink(dang);
    unlink(abs);
    unlink(l2);
    unlink(l);
    unlink(p);
    rmdir(d1);
    (void)d2;
}

static void test_file_refusals(void)
{
    char want[256];

    /* empty, and empty after the newline is dropped */
    char *path = write_file("empty", "", 0);
    char *src = file_src(path);
    snprintf(want, sizeof(want), "PIN file %s is empty", path);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    unlink(path);
    free(src);
    free(path);
    path = write_file("nl", "\r\n", 2);
    src = file_src(path);
    snprintf(want, sizeof(want), "client secret file %s is empty", path);
    EXPECT_FAIL(src, "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG, want);
    unlink(path);
    free(src);
    free(path);

    /* a NUL would silently shorten the secret */
    path = write_file("nul", "s3cr3t\0x", 8);
    src = file_src(path);
    snprintf(want, sizeof(want), "PIN file %s contains a NUL byte", path);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    unlink(path);
    free(src);
    free(path);

    /* missing */
    char missing[128];
    snprintf(missing, sizeof(missing), "file:%s/missing", tmpdir);
    snprintf(want, sizeof(want), "PIN file %s/missing does not exist", tmpdir);
    EXPECT_FAIL(missing, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    EXPECT_FAIL(missing, "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG,
                "client secret file /tmp/");

    /* a directory */
    char dir[128];
    snprintf(dir, sizeof(dir), "file:%s", tmpdir);
    snprintf(want, sizeof(want), "PIN file %s is not a regular file", tmpdir);
    EXPECT_FAIL(dir, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);

    /* a FIFO: refused without hanging */
    char fifo[128];
    snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
    CHECK(mkfifo(fifo, 0600) == 0);
    src = file_src(fifo);
    snprintf(want, sizeof(want), "PIN file %s is not a regular file", fifo);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    unlink(fifo);
    free(src);

    /* whitespace past the one final newline: refused, the bytes counted, never sent */
    static const struct {
        const char *name, *content, *tail;
    } ws[] = {
        {"two_lf", SECRET "\n\n", "(1 byte beyond"},
        {"cr_only", SECRET "\r", "(1 byte beyond"},
        {"blank_lf", SECRET " \n", "(1 byte beyond"},
        {"tabs", SECRET "\t\t\r\n", "(2 bytes beyond"},
    };
    for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++) {
        path = write_file(ws[i].name, ws[i].content, strlen(ws[i].content));
        src = file_src(path);
        snprintf(want, sizeof(want), "PIN file %s has whitespace after its value %s", path,
                 ws[i].tail);
        EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
        snprintf(want, sizeof(want), "client secret file %s has whitespace after its value", path);
        EXPECT_FAIL(src, "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG, want);
        unlink(path);
        free(src);
        free(path);
    }
    path = write_file("blanks", " \n\n", 3);
    src = file_src(path);
    snprintf(want, sizeof(want), "PIN file %s is empty (only whitespace)", path);
    EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
    unlink(path);
    free(src);
    free(path);

    test_links();

    /* unreadable (meaningless as root, who reads anything) */
    if (geteuid() != 0) {
        path = write_file("noperm", SECRET, strlen(SECRET));
        chmod(path, 0);
        src = file_src(path);
        snprintf(want, sizeof(want), "cannot open PIN file %s: Permission denied", path);
        EXPECT_FAIL(src, "PIN", PHC_ERR_PIN, PHC_ERR_PIN, want);
        unlink(path);
        free(src);
        free(path);
    }
}

static void test_env(void)
{
    setenv("PHC_TEST_PIN", SECRET, 1);
    expect_value("env:PHC_TEST_PIN", SECRET, strlen(SECRET));
    setenv("PHC_TEST_PIN", SECRET "\n", 1);
    expect_value("env:PHC_TEST_PIN", SECRET, strlen(SECRET));

    unsetenv("PHC_TEST_PIN");
    EXPECT_FAIL("env:PHC_TEST_PIN", "PIN", PHC_ERR_PIN, PHC_ERR_PIN,
                "PIN source env:PHC_TEST_PIN is not set");
    EXPECT_FAIL("env:PHC_TEST_PIN", "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG,
                "client secret source env:PHC_TEST_PIN is not set");
    setenv("PHC_TEST_PIN", "", 1);
    EXPECT_FAIL("env:PHC_TEST_PIN", "PIN", PHC_ERR_PIN, PHC_ERR_PIN,
                "PIN source env:PHC_TEST_PIN is empty");
    setenv("PHC_TEST_PIN", "\n", 1);
    EXPECT_FAIL("env:PHC_TEST_PIN", "PIN", PHC_ERR_PIN, PHC_ERR_PIN,
                "PIN source env:PHC_TEST_PIN is empty");

    char big[4098];
    memset(big, '9', 4097);
    big[4097] = '\0';
    setenv("PHC_TEST_PIN", big, 1);
    EXPECT_FAIL("env:PHC_TEST_PIN", "PIN", PHC_ERR_PIN, PHC_ERR_PIN,
                "PIN source env:PHC_TEST_PIN is longer than 4096 bytes");
    unsetenv("PHC_TEST_PIN");
}

/* Whether a child process (/usr/bin/env) sees NAME in the environment it inherits. */
static int child_sees(const char *name)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "/usr/bin/env | grep -q '^%s='", name);
    int st = system(cmd);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* phc_config_take_env_secrets: the variables named by pin and client_secret leave the
 * environment (a child no longer inherits them) and env:NAME still reads the value. */
static void test_take_env(void)
{
    static const char cnf[] = "[phconnect]\n"
                              "url = https://api.powerhub.test\n"
                              "ca_file = /nonexistent/ca.pem\n"
                              "client_id = cid-1\n"
                              "client_secret = env:PHC_TEST_TAKE_SECRET\n"
                              "pkcs11_module = /nonexistent/module.so\n"
                              "key = pkcs11:token=t;object=k;type=private\n"
                              "pin = env:PHC_TEST_TAKE_PIN\n";
    phc_config *cfg = NULL;
    phc_errbuf e = {0};
    setenv("PHC_TEST_TAKE_PIN", SECRET, 1);
    setenv("PHC_TEST_TAKE_SECRET", "other-" SECRET, 1);
    setenv("PHC_TEST_TAKE_OTHER", "kept", 1);
    CHECK(phc_config_parse(&cfg, cnf, sizeof(cnf) - 1, "take.cnf", &e) == PHC_OK);
    CHECK(child_sees("PHC_TEST_TAKE_PIN")); /* the check is real */
    CHECK(phc_config_take_env_secrets(cfg, &e) == PHC_OK);
    CHECK(getenv("PHC_TEST_TAKE_PIN") == NULL);
    CHECK(getenv("PHC_TEST_TAKE_SECRET") == NULL);
    CHECK(!child_sees("PHC_TEST_TAKE_PIN"));
    CHECK(!child_sees("PHC_TEST_TAKE_SECRET"));
    CHECK(child_sees("PHC_TEST_TAKE_OTHER"));
    expect_value("env:PHC_TEST_TAKE_PIN", SECRET, strlen(SECRET));
    expect_value("env:PHC_TEST_TAKE_SECRET", "other-" SECRET, strlen("other-" SECRET));
    /* Twice is a no-op; a later setenv of the same name does not replace the taken value. */
    setenv("PHC_TEST_TAKE_PIN", "later", 1);
    CHECK(phc_config_take_env_secrets(cfg, &e) == PHC_OK);
    expect_value("env:PHC_TEST_TAKE_PIN", SECRET, strlen(SECRET));
    unsetenv("PHC_TEST_TAKE_PIN");
    unsetenv("PHC_TEST_TAKE_OTHER");
    CHECK(phc_config_take_env_secrets(NULL, &e) == PHC_OK);
    /* A taken value gets the same checks as one read from the environment. */
    static const char cnf2[] = "[phconnect]\n"
                               "url = https://api.powerhub.test\n"
                               "ca_file = /nonexistent/ca.pem\n"
                               "client_id = cid-1\n"
                               "client_secret = env:PHC_TEST_TAKE_BIG\n";
    phc_config *cfg2 = NULL;
    char big[4098];
    memset(big, '9', 4097);
    big[4097] = '\0';
    setenv("PHC_TEST_TAKE_BIG", big, 1);
    CHECK(phc_config_parse(&cfg2, cnf2, sizeof(cnf2) - 1, "take2.cnf", &e) == PHC_OK);
    CHECK(phc_config_take_env_secrets(cfg2, &e) == PHC_OK);
    CHECK(getenv("PHC_TEST_TAKE_BIG") == NULL);
    EXPECT_FAIL("env:PHC_TEST_TAKE_BIG", "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG,
                "client secret source env:PHC_TEST_TAKE_BIG is longer than 4096 bytes");
    phc_config_free(cfg2);
    /* phc_global_cleanup forgets (wipes) them: then the variable is simply not set. */
    phc__secret_env_clear();
    EXPECT_FAIL("env:PHC_TEST_TAKE_PIN", "PIN", PHC_ERR_PIN, PHC_ERR_PIN,
                "PIN source env:PHC_TEST_TAKE_PIN is not set");
    phc_config_free(cfg);
}

static void test_bad_sources(void)
{
    /* a malformed source may be the secret itself: refused as config, never quoted */
    EXPECT_FAIL(SECRET, "PIN", PHC_ERR_PIN, PHC_ERR_CONFIG,
                "PIN source must be file:/path or env:NAME");
    EXPECT_FAIL("file:s3cr3t", "PIN", PHC_ERR_PIN, PHC_ERR_CONFIG,
                "PIN source must be file:/path or env:NAME");
    EXPECT_FAIL("env:s3cr3t-x", "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG,
                "client secret source must be file:/path or env:NAME");
    EXPECT_FAIL("env:", "PIN", PHC_ERR_PIN, PHC_ERR_CONFIG, "PIN source must be");
    EXPECT_FAIL("pkcs11:object=s3cr3t", "client secret", PHC_ERR_CONFIG, PHC_ERR_CONFIG,
                "client secret source must be file:/path or env:NAME");
    EXPECT_FAIL(NULL, "PIN", PHC_ERR_PIN, PHC_ERR_CONFIG, "PIN source must be");

    phc_errbuf e = {0};
    CHECK_ERR(phc__secret_read(NULL, NULL, "env:X", "PIN", PHC_ERR_PIN, &e), e, PHC_ERR_INTERNAL,
              "out is NULL");
    /* err is optional */
    char *v = NULL;
    size_t len = 0;
    CHECK(phc__secret_read(&v, &len, "env:PHC_TEST_UNSET_VAR", "PIN", PHC_ERR_PIN, NULL) ==
          PHC_ERR_PIN);
    phc__secret_free(NULL, 0);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/phc_secret_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_files();
    test_file_refusals();
    test_env();
    test_take_env();
    test_bad_sources();
    rmdir(tmpdir);
    TEST_MAIN_END();
}
