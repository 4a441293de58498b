/* What the token administration units share (token.c: the handle and the inventory;
 * token_keygen.c: key generation and requests; token_cert.c: certificate checks, install,
 * prune, rollback). Nothing outside token*.c includes this header. */
#ifndef PHC_TOKEN_IMPL_H
#define PHC_TOKEN_IMPL_H

#include <phconnect/token.h>

#include "config.h"
#include "log.h"
#include "p11.h"
#include "p11_module.h"
#include "rotation.h"
#include "trust.h"

#include <openssl/x509.h>
#include <stddef.h>

#define ID_MAX 64

struct phc_token {
    phc_config *cfg; /* reference */
    phc_log log;
    phc_p11 *p11;
    char *want_label; /* the key URI's object=; NULL: any label */
    unsigned char want_id[ID_MAX];
    size_t want_id_len;
    int has_id;
    struct phc_token_job *stuck; /* a call that did not answer in time, still out (token_bound.c) */
};

/* One of the client's keys. */
typedef struct tkey {
    CK_OBJECT_HANDLE priv;
    unsigned char id[ID_MAX];
    size_t id_len;
    char label[128];
    EVP_PKEY *pub; /* NULL when the token does not show the public half */
    char desc[32];
    int supported;
} tkey;

/* A certificate object that belongs to one of the keys (same CKA_ID). */
typedef struct tcert {
    CK_OBJECT_HANDLE h;
    X509 *x;
    size_t key; /* index into keys */
    long seq;   /* place in the install-order record (install_order.h), -1: not recorded */
} tcert;

/* What the token holds for the client, read afresh for each operation. */
typedef struct inventory {
    tkey *keys;
    size_t nkeys;
    tcert *certs;
    size_t ncerts;
    phc_trust *trust; /* the pinned CAs, for the chain rule; NULL when ca_file cannot be read */
    phc_install_order order; /* the install-order record as read with the certificates */
    size_t order_n;          /* how many certificates it names */
} inventory;

/* now, or the current time when now is 0. */
long long phc__token_now_or(long long now);

/* "RSA 2048", "EC P-256", ... into desc; *supported: whether phconnect uses such a key. */
void phc__token_describe_pub(EVP_PKEY *pub, char *desc, size_t len, int *supported);

/* The certificate half of a pair's description (subject, issuer, serial, SHA-256, dates). */
void phc__token_cert_fill(phc_pair_info *pi, X509 *x, long long now);

/* The key half of a pair's description (id, label, type). */
void phc__token_key_fill(phc_pair_info *pi, const tkey *k);

/* "'CN=x' (serial 0A)": how a certificate is named in messages. */
void phc__token_cert_words(char *out, size_t len, X509 *x);

/* "YYYY-MM-DD HH:MM:SS UTC", or "(unreadable time)". */
void phc__token_time_words(char *out, size_t len, long long t);

/* "label 'client' (id 01)"-style words for the keys the config's key URI selects. */
void phc__token_wanted_words(const phc_token *t, char *out, size_t len);

/* Reads the client's keys and their certificates from the token into inv (zeroed first);
 * release with phc__token_inventory_free. On failure inv holds nothing. */
PHC_WUR int phc__token_inventory_load(phc_token *t, inventory *inv, phc_errbuf *err);
void phc__token_inventory_free(inventory *inv);

/* The inventory at *now (0: the current time, written back) and the index of its active
 * certificate (or -1): what every change to the token starts from. PHC_ERR_INTERNAL without
 * a handle; on failure there is nothing to free. */
PHC_WUR int phc__token_inventory_at(phc_token *t, long long *now, inventory *inv, long *active,
                                    phc_errbuf *err);

/* The CKA_ID of object h into id (at most ID_MAX bytes). */
PHC_WUR int phc__token_object_id(phc_p11 *p, CK_OBJECT_HANDLE h, unsigned char *id, size_t *id_len,
                                 phc_errbuf *err);

/* Index of the active certificate (the rotation rule, rotation.h) in inv->certs, or -1. */
long phc__token_active_cert(const inventory *inv, long long now);

/* The state of certificate i, given the active one. */
phc_pair_state phc__token_cert_state(const inventory *inv, size_t i, long active, long long now);

/* How many certificates belong to key. */
size_t phc__token_key_ncerts(const inventory *inv, size_t key);

/* The pair description of certificate i, or of a key without a certificate. */
void phc__token_pair_of_cert(phc_pair_info *pi, const inventory *inv, size_t i, long active,
                             long long now);
void phc__token_pair_of_key(phc_pair_info *pi, const inventory *inv, size_t key);

/* An administration operation failed with *rc: when the token answered one of SoftHSM's
 * transient CK_RVs (CKR_GENERAL_ERROR, CKR_OBJECT_HANDLE_INVALID, CKR_FUNCTION_FAILED: a
 * token file read while another process rewrote it, p11_module.h) and attempts are left,
 * warns, sleeps, reopens the token and returns 1: run the operation again from the start
 * (every operation reads the token afresh first, so a second run is safe). 0 otherwise, with
 * *rc and err the final answer (" after N attempts" when there were several). */
int phc__token_again(phc_token *t, phc_p11_retry *r, int *rc, phc_errbuf *err);

/* The body of a public operation: call, run again while phc__token_again says so. */
#define PHC_TOKEN_RETRY(t, err, call)                                                              \
    do {                                                                                           \
        phc_p11_retry r_;                                                                          \
        int rc_;                                                                                   \
        phc__p11_retry_init(&r_);                                                                  \
        do {                                                                                       \
            phc__p11_last_fail_clear();                                                            \
            rc_ = (call);                                                                          \
        } while (rc_ && phc__token_again((t), &r_, &rc_, (err)));                                  \
        return rc_;                                                                                \
    } while (0)

/* The public operations' work, unbounded: token_bound.c runs each on a worker thread under
 * the config's connect_timeout (per token call) and the public phc_token_* functions are its
 * wrappers. Same contracts as the public functions of the same name. */
PHC_WUR int phc__token_open_now(phc_token **out, phc_config *cfg, const phc_client_opts *opts,
                                phc_errbuf *err);
void phc__token_free_now(phc_token *t);
PHC_WUR int phc__token_pairs_now(phc_token *t, long long now, phc_pair_list **out, phc_errbuf *err);
/* What phc_token_store_secret refuses before it touches the token (then
 * phc__p11_write_data with cfg's module, client_secret and pin stores it). */
PHC_WUR int phc__token_secret_check(const phc_config *cfg, size_t len, phc_errbuf *err);
PHC_WUR int phc__token_generate_now(phc_token *t, const char *key_type, int pending,
                                    char id_hex[PHC_ID_HEX_MAX], phc_errbuf *err);
PHC_WUR int phc__token_csr_now(phc_token *t, const char *id_hex, const char *subject,
                               char **pem_out, phc_errbuf *err);
PHC_WUR int phc__token_check_cert_now(phc_token *t, const char *pem, size_t len, long long now,
                                      phc_pair_info **out, int *already, phc_errbuf *err);
PHC_WUR int phc__token_install_cert_now(phc_token *t, const char *pem, size_t len, long long now,
                                        phc_pair_info **out, int *already, phc_errbuf *err);
PHC_WUR int phc__token_prune_now(phc_token *t, long long now, unsigned flags, phc_pair_list **out,
                                 phc_errbuf *err);
PHC_WUR int phc__token_rollback_now(phc_token *t, long long now, int dry_run, phc_pair_info **from,
                                    phc_pair_info **to, phc_errbuf *err);

#endif
