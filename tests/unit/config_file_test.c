/* Unit tests for lib/config_file.c: the file reader (NCONF with line numbers, sections, keys
 * given twice, hidden keys, syntax, size) and phc_config_load. */
#include "configtest.h"

/* Lines that mean something other than what they show: each is refused with its line. */
static void test_hidden_keys(void)
{
    char *t = text_with(NULL, NULL);
    char buf[8192];
    /* OpenSSL treats any name beginning with ".include" as an include */
    snprintf(buf, sizeof(buf), "%s.include_local = /etc/other.cnf\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: .include is not supported");
    snprintf(buf, sizeof(buf), "%s  .includedir=/etc/other.d\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: .include is not supported");
    snprintf(buf, sizeof(buf), "%s.pragma = dollarid:true\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key '.pragma': keys beginning with '.' are OpenSSL "
                  "directives and are not supported");
    snprintf(buf, sizeof(buf), "%sphconnect::.x = 1\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key '.x': keys beginning with '.'");
    /* a key name split over two lines: grep '^ca_file' would not show the second one */
    snprintf(buf, sizeof(buf), "%sca_file\\\n = /tmp/other.pem\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: ends in a backslash (a line continuation); write each "
                  "key with its value on one line");
    /* ... or a value, or a comment that swallows the next line */
    snprintf(buf, sizeof(buf), "%stimeout = 5\\\r\n0\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: ends in a backslash");
    snprintf(buf, sizeof(buf), "# note \\\n%s", t);
    BAD_TEXT(buf, "config test.cnf line 1: ends in a backslash");
    /* an escaped backslash at the end is a value, not a continuation: it passes the scanner
     * and the value is then checked like any other */
    free(t);
    phc_config *c = NULL;
    phc_errbuf e = {0};
    t = text_with("client_id", "a\\\\");
    CHECK(parse_str(&c, t, &e) == PHC_OK);
    CHECK(c && strcmp(phc_config_get(c, "client_id"), "a\\") == 0);
    phc_config_free(c);
    free(t);
    /* a reference to another key: the line alone does not say what the value is */
    t = text_with("cert", "${ca_file}");
    BAD_TEXT(t, "config test.cnf line 10: key 'cert': OpenSSL cannot read this line on its own");
    free(t);
}

static void test_keys_and_sections(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;

    /* unknown keys, with a suggestion when close */
    CHECK_ERR(parse_with(&c, "pinned_ip", "192.0.2.10", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 19: unknown key 'pinned_ip' (did you mean 'pinned_ips'?)");
    CHECK_ERR(parse_with(&c, "URL", "https://x", &e), e, PHC_ERR_CONFIG,
              "line 19: unknown key 'URL' (did you mean 'url'?)");
    CHECK_ERR(parse_with(&c, "frobnicate", "1", &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 19: unknown key 'frobnicate'");
    CHECK(strstr(e.msg, "did you mean") == NULL);
    CHECK_ERR(set_one("ca-file", "/x", &e), e, PHC_ERR_CONFIG,
              "config: unknown key 'ca-file' (did you mean 'ca_file'?)");

    /* a key given twice: both lines named */
    char *t = text_with(NULL, NULL);
    char buf[8192];
    snprintf(buf, sizeof(buf), "%s\n# again\ntimeout = 20\n", t);
    BAD_TEXT(buf, "config test.cnf line 21: key 'timeout' is given twice (lines 17 and 21)");

    /* a key before any section, or under a misspelt header */
    snprintf(buf, sizeof(buf), "timeout = 5\n%s", t);
    BAD_TEXT(buf, "config test.cnf line 1: key 'timeout' is outside the [phconnect] section");
    snprintf(buf, sizeof(buf), "%s[phconect]\nurl = https://x\n", t);
    BAD_TEXT(buf, "config test.cnf line 20: key 'url' is in section [phconect]; phconnect reads "
                  "only [phconnect]");
    snprintf(buf, sizeof(buf), "%s[ other ]\n\n  pin = env:X\n", t);
    BAD_TEXT(buf, "config test.cnf line 21: key 'pin' is in section [other]");
    snprintf(buf, sizeof(buf), "%sother::pin = env:X\n", t);
    BAD_TEXT(buf, "config test.cnf line 19: key 'pin' is in section [other]");
    /* ... but an empty section is harmless */
    snprintf(buf, sizeof(buf), "%s[empty]\n", t);
    CHECK(parse_str(&c, buf, &e) == PHC_OK);
    phc_config_free(c);
    c = NULL;
    /* phconnect::key from elsewhere lands in [phconnect] and is numbered */
    snprintf(buf, sizeof(buf), "%s[x]\nphconnect::timeout = 0\n", t);
    CHECK_ERR(parse_str(&c, buf, &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 20: key 'timeout' is given twice (lines 17 and 20)");
    free(t);

    BAD_TEXT("# nothing here\n", "config test.cnf: no [phconnect] section");
    BAD_TEXT("", "config test.cnf: no [phconnect] section");
    BAD_TEXT("[phconnect]\n", "config test.cnf: missing required key 'url'");
}

static void test_syntax(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;

    BAD_TEXT("[phconnect]\nurl = https://x\nca_file /etc/ca.pem\n",
             "config test.cnf line 3: missing equal sign");
    BAD_TEXT("# c\n[phconnect\nurl = https://x\n", "config test.cnf line 2: missing close square");
    BAD_TEXT("[phconnect]\n\nca_file = /etc/$nothere/ca.pem\n",
             "config test.cnf line 3: variable has no value");
    BAD_TEXT("[phconnect]\n.include /etc/other.cnf\n",
             "config test.cnf line 2: .include is not supported");
    BAD_TEXT("[phconnect]\n  .include=/etc/other.cnf\n", "line 2: .include is not supported");
    {
        static const char nul[] = "[phconnect]\nurl = https://x\0y\n";
        CHECK_ERR(phc_config_parse(&c, nul, sizeof(nul) - 1, "test.cnf", &e), e, PHC_ERR_CONFIG,
                  "config test.cnf line 2: contains a NUL byte");
    }

    /* OpenSSL syntax: comments, quotes, escapes, CRLF; line numbers follow physical lines */
    const char *text = "[phconnect]\r\n"
                       "url = https://x.example # the vendor endpoint\r\n"
                       "ca_file = \"/etc/ph conn/ca.pem\"\r\n"
                       "\r\n"
                       "ca_sha256 = " FP2 ", " FP1 "\r\n"
                       "pkcs11_module = /usr/lib/p\\$11.so\r\n"
                       "key = " KEY_URI "\r\n"
                       "pin = env:PHC_PIN\r\n"
                       "timeout = 0\r\n";
    CHECK_ERR(parse_str(&c, text, &e), e, PHC_ERR_CONFIG,
              "config test.cnf line 9: key 'timeout': must be a whole number");
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", text);
    char *p = strstr(buf, "timeout = 0");
    if (p)
        p[10] = '9';
    CHECK(parse_str(&c, buf, &e) == PHC_OK);
    if (c) {
        CHECK(strcmp(c->url, "https://x.example:443") == 0);
        CHECK(strcmp(c->ca_file, "/etc/ph conn/ca.pem") == 0);
        CHECK(c->n_ca_sha256 == 2);
        CHECK(strcmp(c->pkcs11_module, "/usr/lib/p$11.so") == 0); /* escaped '$' */
        CHECK(strcmp(c->key, KEY_URI) == 0);
        CHECK(c->timeout == 9);
    }
    phc_config_free(c);
    c = NULL;

    /* syntax errors leave nothing on OpenSSL's queue */
    BAD_TEXT("[phconnect]\nurl\n", "line 2: missing equal sign");
    CHECK(ERR_peek_error() == 0);

    /* a single-quoted '$' is literal */
    CHECK(parse_str(&c,
                    "[phconnect]\nurl = https://x\nca_file = '/srv/a$b/ca.pem'\n"
                    "client_id = a\nclient_secret = env:S\n",
                    &e) == PHC_OK);
    if (c)
        CHECK(strcmp(c->ca_file, "/srv/a$b/ca.pem") == 0);
    phc_config_free(c);
    c = NULL;

    /* $ENV:: expansion is OpenSSL's, and works */
    setenv("PHC_TEST_DIR", "/srv/phc", 1);
    CHECK(parse_str(&c,
                    "[phconnect]\nurl = https://x\nca_file = $ENV::PHC_TEST_DIR/ca.pem\n"
                    "client_id = a\nclient_secret = env:S\n",
                    &e) == PHC_OK);
    if (c)
        CHECK(strcmp(c->ca_file, "/srv/phc/ca.pem") == 0);
    phc_config_free(c);
    unsetenv("PHC_TEST_DIR");

    /* What the file shows is what the connector uses (issue 13, item 2) */
    test_hidden_keys();

    /* too large */
    size_t big = 1024 * 1024 + 1;
    char *huge = malloc(big);
    memset(huge, '#', big);
    CHECK_ERR(phc_config_parse(&c, huge, big, "test.cnf", &e), e, PHC_ERR_CONFIG,
              "config test.cnf: larger than 1048576 bytes");
    free(huge);
}

static void test_load(void)
{
    phc_errbuf e = {0};
    phc_config *c = NULL;
    char missing_path[128];
    snprintf(missing_path, sizeof(missing_path), "%s/nope.cnf", tmpdir);
    CHECK_ERR(phc_config_load(&c, missing_path, &e), e, PHC_ERR_CONFIG, missing_path);
    CHECK(strstr(e.msg, "No such file or directory") != NULL);
    CHECK(c == NULL);

    CHECK_ERR(phc_config_load(&c, tmpdir, &e), e, PHC_ERR_CONFIG, "not a regular file");

    char *t = text_with(NULL, NULL);
    char *good = write_file("good.cnf", t, strlen(t));
    free(t);
    CHECK(phc_config_load(&c, good, &e) == PHC_OK);
    if (c) {
        CHECK(strcmp(c->name, good) == 0);
        CHECK(c->port == 8443);
        /* A running client re-reads its trust keys from this file (issue 13, item 3). */
        CHECK(phc__config_path(c) && strcmp(phc__config_path(c), good) == 0);
        phc_config *src = NULL, *mixed = NULL;
        t = text_with("ca_file", "/etc/phconnect/new-ca.pem");
        CHECK(parse_str(&src, t, &e) == PHC_OK);
        free(t);
        CHECK(src && phc__config_path(src) == NULL); /* parsed from memory: no file */
        if (src) {
            phc_config *prog = NULL;
            CHECK(phc_config_new(&prog, &e) == PHC_OK);
            CHECK(prog && phc__config_path(prog) == NULL);
            phc_config_free(prog);
            CHECK(phc_config_set(src, "pinned_ips", "192.0.2.77", &e) == PHC_OK);
            CHECK(phc_config_set(src, "timeout", "7", &e) == PHC_OK);
            CHECK(phc__config_with_trust(&mixed, c, src, &e) == PHC_OK);
        }
        if (mixed) {
            CHECK(strcmp(mixed->ca_file, "/etc/phconnect/new-ca.pem") == 0); /* from src */
            CHECK(mixed->n_pinned_ips == 1 && strcmp(mixed->pinned_ips[0], "192.0.2.77") == 0);
            CHECK(mixed->n_ca_sha256 == 2);
            CHECK(mixed->timeout == 60); /* not a trust key: from the base */
            CHECK(strcmp(phc__config_path(mixed), good) == 0);
        }
        phc_config_free(mixed);
        mixed = NULL;
        /* a trust key the new file does not have is unset */
        t = text_with("pinned_ips", NULL);
        phc_config_free(src);
        src = NULL;
        CHECK(parse_str(&src, t, &e) == PHC_OK);
        free(t);
        CHECK(src && phc__config_with_trust(&mixed, c, src, &e) == PHC_OK);
        CHECK(mixed && mixed->n_pinned_ips == 0);
        phc_config_free(mixed);
        phc_config_free(src);
    }
    phc_config_free(c);
    c = NULL;

    t = text_with("timeout", "forever");
    char *bad = write_file("bad.cnf", t, strlen(t));
    free(t);
    char want[256];
    snprintf(want, sizeof(want), "config %s line 17: key 'timeout': must be a whole number", bad);
    CHECK_ERR(phc_config_load(&c, bad, &e), e, PHC_ERR_CONFIG, want);

    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big);
    memset(huge, '\n', big);
    char *hugep = write_file("huge.cnf", huge, big);
    free(huge);
    CHECK_ERR(phc_config_load(&c, hugep, &e), e, PHC_ERR_CONFIG, "larger than 1048576 bytes");

    unlink(good);
    unlink(bad);
    unlink(hugep);
    free(good);
    free(bad);
    free(hugep);
}

/* Relative paths name files beside the config file, whatever the working directory; a
 * config without a file resolves them against the working directory when they are set. */
static void test_relative_paths(void)
{
    const char *text = "[phconnect]\n"
                       "url = https://powerhub.example\n"
                       "ca_file = ca.pem\n"
                       "pkcs11_module = ./lib/p11.so\n"
                       "key = pkcs11:token=t;object=k;type=private\n"
                       "cert = certs/client.pem\n"
                       "pin = file:pin\n"
                       "client_id = x\n"
                       "client_secret = file:../s/secret\n";
    char sub[128], path[192], want[4400], cwd[4096], here[4096];
    phc_errbuf e = {0};
    phc_config *c = NULL;
    snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(path, sizeof(path), "%s/phc.cnf", sub);
    FILE *f = fopen(path, "w");
    CHECK(f && fputs(text, f) >= 0 && fclose(f) == 0);
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);

    /* loaded by an absolute name from elsewhere: beside the file */
    CHECK(chdir("/") == 0);
    CHECK(phc_config_load(&c, path, &e) == PHC_OK);
    if (c) {
        snprintf(want, sizeof(want), "%s/ca.pem", sub);
        CHECK(strcmp(c->ca_file, want) == 0);
        CHECK(strcmp(phc_config_get(c, "ca_file"), want) == 0); /* the path in effect */
        snprintf(want, sizeof(want), "%s/lib/p11.so", sub);
        CHECK(strcmp(c->pkcs11_module, want) == 0);
        snprintf(want, sizeof(want), "%s/certs/client.pem", sub);
        CHECK(strcmp(c->cert, want) == 0);
        snprintf(want, sizeof(want), "file:%s/pin", sub);
        CHECK(strcmp(c->pin, want) == 0);
        snprintf(want, sizeof(want), "file:%s/../s/secret", sub);
        CHECK(strcmp(c->client_secret, want) == 0);
        CHECK(strcmp(c->key, "pkcs11:token=t;object=k;type=private") == 0);
    }
    phc_config_free(c);
    c = NULL;

    /* loaded by a relative name: its directory is made absolute at load time */
    CHECK(chdir(tmpdir) == 0);
    CHECK(phc_config_load(&c, "etc/phc.cnf", &e) == PHC_OK);
    CHECK(chdir("/") == 0);
    if (c) {
        snprintf(want, sizeof(want), "%s/ca.pem", sub);
        CHECK(strcmp(c->ca_file, want) == 0);
        /* a running client re-reading its trust gets the same file */
        phc_config *mixed = NULL;
        CHECK(phc__config_with_trust(&mixed, c, c, &e) == PHC_OK);
        CHECK(mixed && strcmp(mixed->ca_file, want) == 0);
        phc_config_free(mixed);
    }
    phc_config_free(c);
    c = NULL;

    /* from memory or set programmatically: the working directory at the time it is set */
    CHECK(chdir(sub) == 0);
    CHECK(getcwd(here, sizeof(here)) != NULL);
    CHECK(phc_config_parse(&c, text, strlen(text), "(memory)", &e) == PHC_OK);
    CHECK(chdir("/") == 0);
    if (c) {
        snprintf(want, sizeof(want), "%s/ca.pem", here);
        CHECK(strcmp(c->ca_file, want) == 0);
        CHECK(phc_config_set(c, "ca_file", "other.pem", &e) == PHC_OK);
        CHECK(strcmp(c->ca_file, "/other.pem") == 0);
        CHECK(phc_config_set(c, "pin", "env:PHC_PIN", &e) == PHC_OK);
        CHECK(strcmp(c->pin, "env:PHC_PIN") == 0); /* not a path */
    }
    phc_config_free(c);
    CHECK(chdir(cwd) == 0);
    unlink(path);
    rmdir(sub);
}

int main(void)
{
    if (config_test_begin())
        return 1;
    test_keys_and_sections();
    test_syntax();
    test_load();
    test_relative_paths();
    config_test_end();
    TEST_MAIN_END();
}
