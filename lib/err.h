/* Error reporting inside the library: every failure goes through phc__err*, which
 * fills the caller's optional phc_errbuf and returns the code, so call sites read
 *     return phc__err(err, PHC_ERR_HSM, "token '%s' not found", label);
 * Foreign errors are translated at one boundary each: OpenSSL here (phc__err_ossl),
 * CK_RV in hsm.c, CURLcode in http.c. */
#ifndef PHC_ERR_H
#define PHC_ERR_H

#include <phconnect/phconnect.h>

#if defined(__GNUC__)
#define PHC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PHC_PRINTF(a, b)
#endif

/* Sets err (may be NULL) and returns code. */
int phc__err(phc_errbuf *err, int code, const char *fmt, ...) PHC_PRINTF(3, 4);

/* As phc__err, then appends ": <reason>" from OpenSSL's error queue (if any) and clears it. */
int phc__err_ossl(phc_errbuf *err, int code, const char *fmt, ...) PHC_PRINTF(3, 4);

/* Copies src into dst (either may be NULL); returns src->code. */
int phc__err_copy(phc_errbuf *dst, const phc_errbuf *src);

#endif
