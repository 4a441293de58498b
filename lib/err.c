#include "err.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void vset(phc_errbuf *err, int code, const char *fmt, va_list ap) PHC_PRINTF(3, 0);
static void vset(phc_errbuf *err, int code, const char *fmt, va_list ap)
{
    err->code = code;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    /* Messages are one line by contract: a newline from a foreign string would let a
     * server or file inject a fake second log line. */
    for (char *p = err->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int phc__err(phc_errbuf *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err)
        vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int phc__err_ossl(phc_errbuf *err, int code, const char *fmt, ...)
{
    unsigned long e = ERR_peek_last_error();
    char reason[160] = "";
    if (e) {
        const char *r = ERR_reason_error_string(e);
        /* Only the reason's words: the "error:0A000418:SSL routines::..." form is for the
         * debug log, not an operator's one-line message. */
        if (r)
            snprintf(reason, sizeof(reason), "%s", r);
        else
            snprintf(reason, sizeof(reason), "unexplained OpenSSL error (library %d, reason %d)",
                     ERR_GET_LIB(e), ERR_GET_REASON(e));
    }
    ERR_clear_error();
    if (!err)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, fmt, ap);
    va_end(ap);
    /* the reason after the caller's words */
    if (reason[0]) {
        size_t n = strlen(err->msg);
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", reason);
    }
    return code;
}

int phc__err_copy(phc_errbuf *dst, const phc_errbuf *src)
{
    if (dst && src && dst != src)
        *dst = *src;
    return src ? src->code : PHC_ERR_INTERNAL;
}

const char *phc_err_name(int code)
{
    switch (code) {
    case PHC_OK:
        return "ok";
    case PHC_ERR_HTTP:
        return "http";
    case PHC_ERR_CONFIG:
        return "config";
    case PHC_ERR_HSM:
        return "hsm";
    case PHC_ERR_PIN:
        return "pin";
    case PHC_ERR_TRUST:
        return "trust";
    case PHC_ERR_POLICY:
        return "policy";
    case PHC_ERR_NETWORK:
        return "network";
    case PHC_ERR_AUTH:
        return "auth";
    default:
        return "internal";
    }
}

int phc_err_exit_code(int code)
{
    if (code > 0 || code < PHC_ERR_INTERNAL)
        return -PHC_ERR_INTERNAL;
    return -code;
}
