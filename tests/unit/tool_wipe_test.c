/* Unit test for tools/phc_wipe.c: phc's libcurl allocators wipe what libcurl frees, they are
 * the ones libcurl uses when phc installs them before phc_global_init, and phc_global_init
 * does not replace them (while installing them after it would have no effect: the order in
 * phc.c matters). */
#include "phc.h"
#include "testutil.h"

#include <curl/curl.h>
#include <curl/mprintf.h>

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

int main(void)
{
    /* phc's order: wiping allocators first, then the library's init. */
    CHECK(phc_tool_curl_init() == 0);
    CHECK(phc_global_init() == PHC_OK);
    unsigned long before = phc_tool_curl_wiped_frees();
    CHECK(curl_work() == 0);
    unsigned long wiped = phc_tool_curl_wiped_frees() - before;
    CHECK(wiped >= 4);
    printf("libcurl blocks wiped before free: %lu\n", wiped);
    phc_global_cleanup();
    phc_tool_curl_cleanup();

    /* The other order: libcurl keeps the allocators of its first init, so installing them
     * after phc_global_init changes nothing - which is why phc.c calls it first. */
    CHECK(phc_global_init() == PHC_OK);
    CHECK(phc_tool_curl_init() == 0);
    before = phc_tool_curl_wiped_frees();
    CHECK(curl_work() == 0);
    CHECK(phc_tool_curl_wiped_frees() == before);
    phc_tool_curl_cleanup();
    phc_global_cleanup();
    TEST_MAIN_END();
}
