/* lib/curl_load.c: libcurl is loaded at the library's first HTTP use and not before
 * (phc_global_init leaves it alone; phc_version_libs and the first client load it), a libcurl
 * that cannot be loaded is one PHC_ERR_INTERNAL line naming the soname and the loader's
 * reason, remembered, and phc_global_opts is checked like the other versioned structs.
 *
 * This executable does not link libcurl (phc_core does not), so /proc/self/maps shows
 * whether the library loaded it. Each case that needs a process where libcurl was never
 * loaded runs in a child of its own. */
#include "curl_load.h"
#include "testclient.h"

#include <phconnect/phconnect.h>

#include <curl/curl.h>
#include <sys/wait.h>

/* 1 when an object whose name starts with "libcurl." is mapped into this process. */
static int libcurl_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        const char *slash = strrchr(line, '/');
        found = slash && strncmp(slash + 1, "libcurl.", 8) == 0;
    }
    fclose(f);
    return found;
}

/* Runs fn in a child; returns its failure count (its CHECK lines go to stderr). */
static int in_child(void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(t_fail > 100 ? 100 : t_fail);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* A soname the loader cannot find: the one-line error, remembered, on every path. */
static void missing_soname(void)
{
    phc__curl_set_soname("libcurl-phc-missing.so.4");
    phc_errbuf e = {0};
    const char *want = "cannot load libcurl (libcurl-phc-missing.so.4): libcurl-phc-missing.so.4: "
                       "cannot open shared object file";
    CHECK_ERR(phc__curl_ready(&e), e, PHC_ERR_INTERNAL, want);
    CHECK(strncmp(e.msg, want, strlen(want)) == 0 && !strchr(e.msg, '\n'));
    fprintf(stderr, "  refusal: %s\n", e.msg);
    /* Remembered: the same answer, no second attempt that could behave differently. */
    phc_errbuf e2 = {0};
    CHECK_ERR(phc__curl_load(&e2), e2, PHC_ERR_INTERNAL, want);
    CHECK(strcmp(e.msg, e2.msg) == 0);
    CHECK(!phc__curl_is_loaded());
    /* phc_version_libs still answers, without a version for libcurl. */
    CHECK(strstr(phc_version_libs(), " libcurl/? ") != NULL);
    /* PHC_GLOBAL_LOAD_CURL_NOW reports it from phc_global_init_opts itself. */
    phc_global_opts o = PHC_GLOBAL_OPTS_INIT;
    o.flags = PHC_GLOBAL_LOAD_CURL_NOW;
    phc_errbuf e3 = {0};
    CHECK_ERR(phc_global_init_opts(&o, &e3), e3, PHC_ERR_INTERNAL, want);
    /* A client cannot be made, and says why before touching anything else. */
    phc_config *cfg = tc_config(NULL, 0, "https://api.powerhub.test:8443");
    phc_client *c = NULL;
    phc_errbuf e4 = {0};
    CHECK_ERR(phc_client_new(&c, cfg, NULL, &e4), e4, PHC_ERR_INTERNAL, want);
    CHECK(c == NULL);
    phc_config_free(cfg);
    /* A forwarder reached without phc__curl_ready fails as libcurl's call would. */
    CHECK(curl_easy_init() == NULL);
    CHECK(curl_easy_setopt(NULL, CURLOPT_VERBOSE, 1L) == CURLE_FAILED_INIT);
    CHECK(libcurl_mapped() == 0);
    phc_global_cleanup(); /* nothing to clean up in libcurl: it never loaded */
}

/* A library that loads but is not libcurl: the missing symbol is named. */
static void not_libcurl(void)
{
    phc__curl_set_soname("libz.so.1");
    phc_errbuf e = {0};
    CHECK_ERR(phc__curl_ready(&e), e, PHC_ERR_INTERNAL, "cannot load libcurl (libz.so.1): ");
    CHECK(strstr(e.msg, "undefined symbol: curl_global_init") != NULL);
    fprintf(stderr, "  refusal: %s\n", e.msg);
}

/* The first client loads libcurl (a client with client credentials only: no token needed,
 * and no request is made). */
static void first_client(void)
{
    CHECK(phc_global_init() == PHC_OK);
    CHECK(libcurl_mapped() == 0);
    setenv("PHC_UNIT_TEST_SECRET", "not-a-real-secret", 1);
    phc_config *cfg = tc_config(NULL, 0, "https://api.powerhub.test:8443");
    phc_client *c = NULL;
    phc_errbuf e = {0};
    CHECK(libcurl_mapped() == 0); /* a configuration is no HTTP */
    int rc = phc_client_new(&c, cfg, NULL, &e);
    CHECK(rc == PHC_OK);
    if (rc != PHC_OK)
        fprintf(stderr, "phc_client_new: %s\n", e.msg);
    CHECK(libcurl_mapped() == 1);
    CHECK(phc__curl_is_loaded());
    phc_client_free(c);
    phc_config_free(cfg);
    phc_global_cleanup();
}

/* PHC_GLOBAL_LOAD_CURL_NOW loads (and initialises) it in phc_global_init_opts. */
static void load_now(void)
{
    phc_global_opts o = PHC_GLOBAL_OPTS_INIT;
    o.flags = PHC_GLOBAL_LOAD_CURL_NOW;
    CHECK(phc_global_init_opts(&o, NULL) == PHC_OK);
    CHECK(libcurl_mapped() == 1);
    phc_global_cleanup();
}

int main(void)
{
    if (tt_begin("curl_load"))
        return 1;

    /* Start and phc_global_init: libcurl is not in the process. */
    CHECK(libcurl_mapped() == 0);
    CHECK(phc_global_init() == PHC_OK);
    CHECK(libcurl_mapped() == 0);
    CHECK(!phc__curl_is_loaded());
    phc_global_cleanup(); /* with libcurl never loaded: nothing to undo */
    CHECK(libcurl_mapped() == 0);

    /* phc_global_opts: versioned, and flags this library does not know are refused. */
    phc_global_opts o;
    CHECK(phc_global_opts_init(&o, PHC_GLOBAL_OPTS_VERSION) == PHC_OK);
    CHECK(o.version == PHC_GLOBAL_OPTS_VERSION && o.flags == 0);
    CHECK(phc_global_opts_init(&o, PHC_GLOBAL_OPTS_VERSION + 1) == PHC_ERR_CONFIG);
    CHECK(phc_global_opts_init(NULL, PHC_GLOBAL_OPTS_VERSION) == PHC_ERR_CONFIG);
    phc_errbuf e = {0};
    phc_global_opts zero = {0};
    CHECK_ERR(phc_global_init_opts(&zero, &e), e, PHC_ERR_CONFIG,
              "phc_global_opts version 0 is unknown to phconnect");
    phc_global_opts odd = PHC_GLOBAL_OPTS_INIT;
    odd.flags = 0x80u | PHC_GLOBAL_WIPE_CURL_FREES;
    CHECK_ERR(phc_global_init_opts(&odd, &e), e, PHC_ERR_CONFIG,
              "phc_global_opts.flags has 0x80, unknown to phconnect");
    CHECK(libcurl_mapped() == 0);

    CHECK(in_child(missing_soname) == 0);
    CHECK(in_child(not_libcurl) == 0);
    CHECK(in_child(first_client) == 0);
    CHECK(in_child(load_now) == 0);

    /* phc_version_libs loads it (without initialising it) and reports the loaded version. */
    CHECK(phc_global_init() == PHC_OK);
    const char *libs = phc_version_libs();
    CHECK(libcurl_mapped() == 1);
    CHECK(phc__curl_is_loaded());
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    char part[128];
    snprintf(part, sizeof(part), " libcurl/%s ", cv ? cv->version : "(none)");
    CHECK(cv && strstr(libs, part) != NULL);
    printf("%s\n", libs);
    /* Then a transfer handle works through the forwarders, options of every type range. */
    CHECK(phc__curl_ready(NULL) == PHC_OK);
    CURL *h = curl_easy_init();
    CHECK(h != NULL);
    CHECK(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 1500L) == CURLE_OK);                 /* long */
    CHECK(curl_easy_setopt(h, CURLOPT_URL, "https://api.powerhub.test/") == CURLE_OK); /* ptr */
    CHECK(curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)1 << 33) == CURLE_OK);
    CHECK(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, (curl_write_callback)NULL) == CURLE_OK);
    /* libcurl read our string, not some other argument: it takes one and refuses the other. */
    CHECK(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK);
    CHECK(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "nonsense") != CURLE_OK);
    static int marker;
    void *back = NULL;
    CHECK(curl_easy_setopt(h, CURLOPT_PRIVATE, &marker) == CURLE_OK);
    CHECK(curl_easy_getinfo(h, CURLINFO_PRIVATE, &back) == CURLE_OK && back == &marker);
    curl_easy_cleanup(h);
    phc_global_cleanup();
    phc_global_cleanup(); /* twice: the second has nothing to undo */

    tt_end();
    TEST_MAIN_END();
}
