/* The library's version at run time (phc_version) and the versions of the libraries it runs
 * with (phc_version_libs), for `phc --version` and bug reports. */
#include <phconnect/phconnect.h>

#include "curl_load.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>

#ifndef PHC_LIBP11_VERSION
#define PHC_LIBP11_VERSION "unknown"
#endif

const char *phc_version(void)
{
    return PHC_VERSION_STRING;
}

static char libs[256];
static pthread_once_t libs_once = PTHREAD_ONCE_INIT;

/* OpenSSL and libcurl report the version actually loaded; libp11 has no such call, so its
 * version is the one phconnect was built against. libcurl is loaded for this (curl_load.c),
 * not initialised: "libcurl/?" when it cannot be loaded. */
static void libs_init(void)
{
    const curl_version_info_data *cv =
        phc__curl_load(NULL) == PHC_OK ? curl_version_info(CURLVERSION_NOW) : NULL;
    snprintf(libs, sizeof(libs), "OpenSSL/%s libcurl/%s libp11/%s (at build time)",
             OpenSSL_version(OPENSSL_VERSION_STRING), cv && cv->version ? cv->version : "?",
             PHC_LIBP11_VERSION);
}

const char *phc_version_libs(void)
{
    pthread_once(&libs_once, libs_init);
    return libs;
}
