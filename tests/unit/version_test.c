/* The version: one value from project(VERSION), the same in the header macros and at run
 * time; the check macro compares as numbers; the library versions line names all three. */
#include "testutil.h"

#include <phconnect/phconnect.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#if !PHC_VERSION_CHECK(0, 2, 0)
#error "phconnect is at least 0.2.0"
#endif

int main(void)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", PHC_VERSION_MAJOR, PHC_VERSION_MINOR,
             PHC_VERSION_PATCH);
    CHECK(strcmp(PHC_VERSION_STRING, want) == 0);
    CHECK(strcmp(phc_version(), PHC_VERSION_STRING) == 0);
    CHECK(PHC_VERSION_NUM ==
          ((PHC_VERSION_MAJOR << 16) | (PHC_VERSION_MINOR << 8) | PHC_VERSION_PATCH));

    /* The check macro: true up to the current version, false beyond it in every part. */
    CHECK(PHC_VERSION_CHECK(PHC_VERSION_MAJOR, PHC_VERSION_MINOR, PHC_VERSION_PATCH));
    CHECK(PHC_VERSION_CHECK(0, 0, 0));
    CHECK(!PHC_VERSION_CHECK(PHC_VERSION_MAJOR, PHC_VERSION_MINOR, PHC_VERSION_PATCH + 1));
    CHECK(!PHC_VERSION_CHECK(PHC_VERSION_MAJOR, PHC_VERSION_MINOR + 1, 0));
    CHECK(!PHC_VERSION_CHECK(PHC_VERSION_MAJOR + 1, 0, 0));
    /* A higher patch does not outweigh a lower minor (one byte per part). */
    if (PHC_VERSION_MINOR > 0)
        CHECK(PHC_VERSION_CHECK(PHC_VERSION_MAJOR, PHC_VERSION_MINOR - 1, 255));

    /* The libraries line reports what is loaded: OpenSSL and libcurl at run time. */
    const char *libs = phc_version_libs();
    char part[128];
    snprintf(part, sizeof(part), "OpenSSL/%s ", OpenSSL_version(OPENSSL_VERSION_STRING));
    CHECK(strstr(libs, part) == libs);
    snprintf(part, sizeof(part), " libcurl/%s ", curl_version_info(CURLVERSION_NOW)->version);
    CHECK(strstr(libs, part) != NULL);
    CHECK(strstr(libs, " libp11/") != NULL && strchr(libs, '\n') == NULL);
    CHECK(strstr(libs, "libp11/unknown") == NULL); /* the build passed pkg-config's version */
    CHECK(phc_version_libs() == libs);
    TEST_MAIN_END();
}
