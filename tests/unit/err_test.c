#include "err.h"
#include "testutil.h"

#include <openssl/err.h>
#include <openssl/pem.h>

int main(void)
{
    phc_errbuf e = {0};
    CHECK(phc__err(&e, PHC_ERR_TRUST, "bad %s", "cert") == PHC_ERR_TRUST);
    CHECK(e.code == PHC_ERR_TRUST && strcmp(e.msg, "bad cert") == 0);
    CHECK(phc__err(NULL, PHC_ERR_HSM, "ignored") == PHC_ERR_HSM);

    /* Messages stay on one line even when a foreign string carries a newline. */
    phc__err(&e, PHC_ERR_CONFIG, "value '%s'", "a\nb\rc");
    CHECK(strchr(e.msg, '\n') == NULL && strchr(e.msg, '\r') == NULL);

    /* OpenSSL's reason is appended and the queue is left empty. */
    BIO *b = BIO_new_file("/nonexistent/file.pem", "r");
    CHECK(b == NULL);
    phc__err_ossl(&e, PHC_ERR_CONFIG, "cannot read %s", "/nonexistent/file.pem");
    CHECK(strstr(e.msg, "cannot read /nonexistent/file.pem: ") == e.msg);
    CHECK(ERR_peek_error() == 0);

    /* A reason without a text never shows OpenSSL's raw "error:XXXXXXXX:..." form. */
    ERR_raise(ERR_LIB_USER, 999);
    phc__err_ossl(&e, PHC_ERR_INTERNAL, "step");
    CHECK(strcmp(e.msg, "step: unexplained OpenSSL error (library 128, reason 999)") == 0);
    CHECK(strstr(e.msg, "error:") == NULL && ERR_peek_error() == 0);

    /* Truncation keeps the buffer terminated. */
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    phc__err(&e, PHC_ERR_CONFIG, "%s", big);
    CHECK(strlen(e.msg) == PHC_ERRMSG_MAX - 1);

    for (int c = PHC_OK; c >= PHC_ERR_INTERNAL; c--)
        CHECK(phc_err_exit_code(c) == -c);
    CHECK(phc_err_exit_code(5) == 9 && phc_err_exit_code(-100) == 9);
    CHECK(strcmp(phc_err_name(PHC_ERR_PIN), "pin") == 0);
    CHECK(strcmp(phc_err_name(-100), "internal") == 0);

    phc_errbuf copy = {0};
    phc__err(&e, PHC_ERR_POLICY, "policy");
    CHECK(phc__err_copy(&copy, &e) == PHC_ERR_POLICY && strcmp(copy.msg, "policy") == 0);
    TEST_MAIN_END();
}
