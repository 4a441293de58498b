/* lib/curl_wipe.c through the public API: with PHC_GLOBAL_WIPE_CURL_FREES the library
 * initialises libcurl with allocators that wipe what libcurl frees; without the flag, or when
 * the application initialised libcurl itself first (libcurl keeps the allocators of its first
 * init), they are not used - which is what phconnect.h documents, and proves that the count
 * below can stay at zero. Each case runs in a child: libcurl is initialised once per process
 * as far as its allocators go.
 *
 * This executable links libcurl itself, as an application using both would: its own calls
 * (curl_global_init, curl_maprintf) go to libcurl.so, its curl_easy_* calls to the library's
 * forwarders, and all reach one libcurl. */
#include "curl_load.h"
#include "curl_wipe.h"
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <curl/curl.h>
#include <curl/mprintf.h>
#include <sys/wait.h>
#include <unistd.h>

/* Work that makes libcurl allocate, grow (realloc) and free: a handle with a URL and a
 * header list, and a formatted string longer than libcurl's first buffer. Returns 0 when
 * libcurl gave back what it was asked for. */
static int curl_work(void)
{
    char long_value[3000];
    memset(long_value, 'x', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Authorization: Bearer not-a-real-token");
    char *s = curl_maprintf("Authorization: Bearer %s", long_value);
    int ok =
        h && hdr && s && strlen(s) == strlen("Authorization: Bearer ") + strlen(long_value) &&
        curl_easy_setopt(h, CURLOPT_URL, "https://api.powerhub.test/v2/asset/sites") == CURLE_OK &&
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr) == CURLE_OK;
    curl_free(s);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    return ok ? 0 : -1;
}

static int init_with(unsigned flags)
{
    phc_global_opts o = PHC_GLOBAL_OPTS_INIT;
    o.flags = flags;
    phc_errbuf e = {0};
    int rc = phc_global_init_opts(&o, &e);
    if (rc == PHC_OK)
        rc = phc__curl_ready(&e); /* what a client, a generation or a transfer does first */
    if (rc != PHC_OK)
        fprintf(stderr, "init: %s\n", e.msg);
    return rc;
}

/* The flag: libcurl's frees are wiped. */
static void wiping(void)
{
    CHECK(init_with(PHC_GLOBAL_WIPE_CURL_FREES) == PHC_OK);
    unsigned long before = phc__curl_wiped_frees();
    CHECK(curl_work() == 0);
    unsigned long wiped = phc__curl_wiped_frees() - before;
    CHECK(wiped >= 4);
    printf("libcurl blocks wiped before free: %lu\n", wiped);
    phc_global_cleanup();
}

/* No flag: libcurl's own allocators. */
static void not_asked(void)
{
    CHECK(init_with(0) == PHC_OK);
    CHECK(curl_work() == 0);
    CHECK(phc__curl_wiped_frees() == 0);
    phc_global_cleanup();
}

/* The application initialised libcurl first: its allocators stay. */
static void app_first(void)
{
    CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK);
    CHECK(init_with(PHC_GLOBAL_WIPE_CURL_FREES) == PHC_OK);
    CHECK(curl_work() == 0);
    CHECK(phc__curl_wiped_frees() == 0);
    phc_global_cleanup();
    curl_global_cleanup();
}

static void in_child(const char *name, void (*fn)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        fn();
        fflush(NULL);
        _exit(t_fail > 100 ? 100 : t_fail);
    }
    int st = 0;
    int ok = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        fprintf(stderr, "case '%s' failed\n", name);
    CHECK(ok);
}

int main(void)
{
    in_child("PHC_GLOBAL_WIPE_CURL_FREES", wiping);
    in_child("no flag", not_asked);
    in_child("the application's curl_global_init first", app_first);
    TEST_MAIN_END();
}
