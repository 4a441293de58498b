/* Token administration: the key/certificate life cycle on the HSM (enrol, CSR, install,
 * status, prune, rollback) and the client secret stored as a token data object. Included by
 * phconnect.h; conventions as there.
 *
 * Pairs and rotation. The config's key URI names a label (object=) and optionally an id. All
 * private keys on the token with that label (and id) are the client's keys; they are told
 * apart by CKA_ID. A certificate object belongs to the key with the same CKA_ID. Each
 * certificate with its key is a pair; a key without any certificate is a pending pair. The
 * connector uses the pair whose certificate is valid now and newest (latest notBefore, ties:
 * latest notAfter, and the very same dates: the later installation, phc_install_order): that
 * pair is ACTIVE, other valid ones are RETIRED, and the rest are
 * EXPIRED, NOT_YET_VALID or PENDING. A rotation is therefore one new certificate object on
 * the token; a crash before it exists leaves the old pair active, after it the new one. A
 * certificate whose public key is not its key's (key_mismatch; anyone can write a public
 * certificate object without the PIN) is never ACTIVE, and the connector never uses it.
 * A phc_client picks its identity by the same rule.
 *
 * Times are seconds since the epoch (UTC); a `now` of 0 means the current time.
 *
 * Time bound. Every function here that talks to the token waits at most the config's
 * connect_timeout for each PKCS#11 call it makes (the work runs on a thread of its own; a
 * slow token that keeps answering is not cut off). When one call does not answer in time
 * the function returns PHC_ERR_HSM ("token 'T' in PKCS#11 module 'M' did not answer C_X
 * within N ms (connect_timeout); phc stopped waiting, the call may still complete on the
 * token") and leaves the thread to finish if the token ever answers; that thread owns copies
 * of the inputs and frees the results nobody takes. A PKCS#11 call cannot be cancelled: a
 * write may still be carried out (docs/runbook-rotation.md). The handle is then not called
 * into again until the token has answered (its calls fail at once with PHC_ERR_HSM, "has not
 * answered C_X of an earlier call"), and phc_token_free hands it to that thread. The log
 * callback may still be called from that thread. On a time-out the outputs are NULL (also
 * phc_token_prune's list: what it deleted is unknown).
 */
#ifndef PHCONNECT_TOKEN_H
#define PHCONNECT_TOKEN_H

#include <phconnect/phconnect.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Releases memory the token functions return as strings (phc_token_csr). NULL allowed. */
PHC_API void phc_free(void *p);

/* ---------------------------------------------------------------------------------- */
/* The token handle */

/* Administrative access to the token that cfg's key URI names. A handle is used by one thread
 * at a time; every call reads the token afresh (no cache to go stale). */
typedef struct phc_token phc_token;

/* Opens the token: loads cfg's pkcs11_module, finds the token of the key URI, logs in with
 * the PIN from cfg's pin source (one attempt, never retried). cfg is borrowed for the call;
 * the handle keeps its own reference (which freezes cfg). opts may be NULL (an unknown
 * opts->version is PHC_ERR_CONFIG); only its logging fields are used.
 * Errors: PHC_ERR_CONFIG (invalid config, no key/pkcs11_module/pin), PHC_ERR_HSM (module,
 * token), PHC_ERR_PIN.
 * Clients on the same module may be made and freed while a handle is held, from any thread:
 * the module is finalised only when its last user in the process is gone. */
PHC_API PHC_WUR int phc_token_open(phc_token **out, phc_config *cfg, const phc_client_opts *opts,
                                   phc_errbuf *err);

/* Logs nothing out (login state is shared by the process), closes the session. NULL ok. */
PHC_API void phc_token_free(phc_token *t);

/* The token's label. Borrowed from t. */
PHC_API const char *phc_token_label(const phc_token *t);

/* ---------------------------------------------------------------------------------- */
/* Pairs */

typedef enum phc_pair_state {
    PHC_PAIR_ACTIVE = 0,        /* the pair the connector uses */
    PHC_PAIR_RETIRED = 1,       /* valid, but a newer valid pair exists */
    PHC_PAIR_PENDING = 2,       /* a key without a certificate (awaiting one) */
    PHC_PAIR_EXPIRED = 3,       /* certificate expired (or its dates are unreadable) */
    PHC_PAIR_NOT_YET_VALID = 4, /* certificate valid only from a later time */
} phc_pair_state;

/* "active", "retired", "pending", "expired", "not-yet-valid". Static. */
PHC_API const char *phc_pair_state_name(phc_pair_state s);

#define PHC_ID_HEX_MAX 129 /* 64-byte CKA_ID in hex + NUL */

/* How two valid certificates with the very same notBefore and notAfter (to the second) are
 * ranked. phc_token_install_cert records each certificate it stores in a private data object
 * on the token (label "phconnect install order"), and the later installation wins; a
 * certificate the record names ranks above one it does not (installed before the record
 * existed, or by another tool). Where neither is recorded, a fixed order of the two
 * certificates decides (OpenSSL's X509_cmp: SHA-1 of the DER): the same for every reader. */
typedef enum phc_install_order {
    PHC_ORDER_NONE = 0,       /* the token holds no install-order record */
    PHC_ORDER_RECORDED = 1,   /* the record was read */
    PHC_ORDER_UNREADABLE = 2, /* the record is private and the session is not logged in (or
                                 it could not be read): only the fixed order is known */
} phc_install_order;

typedef struct phc_pair_info {
    char id_hex[PHC_ID_HEX_MAX]; /* the key's CKA_ID, lowercase hex */
    char label[128];             /* the key's CKA_LABEL */
    char key_type[32];           /* "RSA 2048", "EC P-256", "RSA 1024 (unsupported)" */
    int key_supported;           /* RSA 2048-4096, EC P-256/P-384: the connector can use it */
    int has_cert;                /* 0: pending; the certificate fields below are empty */
    char subject[256];           /* RFC 2253 ("CN=client,O=Energy Co") */
    char issuer[256];
    char serial[80]; /* hex, as `openssl x509 -serial` prints it */
    char sha256[65]; /* SHA-256 of the certificate (DER), lowercase hex */
    long long not_before, not_after;
    long days_left;   /* whole days until not_after; negative once expired */
    int key_mismatch; /* the certificate's public key is not the key's: unusable */
    phc_pair_state state;
    long install_seq; /* place in the install-order record (greater: installed later); -1 when
                         the record does not name this certificate, or there is none */
    phc_install_order install_order; /* the record as read for this answer (the same for every
                                        pair of one list) */
    /* New fields go here, at the end: the library allocates every phc_pair_info (lists,
     * phc_pair_info **out), so a program never depends on its size. */
} phc_pair_info;

/* Releases a phc_pair_info the library returned through phc_pair_info **out. NULL allowed. */
PHC_API void phc_pair_info_free(phc_pair_info *p);

/* A list of pairs, made by the library (phc_token_pairs, phc_token_prune). The elements are
 * reached only through phc_pair_list_get, so phc_pair_info can grow at its end without a new
 * SONAME for these: do not copy an element by value into storage of your own size. */
typedef struct phc_pair_list phc_pair_list;

/* The number of pairs in l; 0 for NULL. */
PHC_API size_t phc_pair_list_count(const phc_pair_list *l);

/* The i-th pair (from 0), borrowed from l; NULL when i is not below the count. */
PHC_API const phc_pair_info *phc_pair_list_get(const phc_pair_list *l, size_t i);

/* NULL allowed. */
PHC_API void phc_pair_list_free(phc_pair_list *l);

/* Every pair of the client's keys at time now, ordered by id, then notBefore. On PHC_OK *out
 * (release with phc_pair_list_free) is a list, possibly empty; on failure NULL. */
PHC_API PHC_WUR int phc_token_pairs(phc_token *t, long long now, phc_pair_list **out,
                                    phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* Keys and requests */

/* Generates a key pair on the token: sensitive, never extractable, CKA_TOKEN, signing only,
 * label from the key URI. key_type: "rsa:2048" (default when NULL), "rsa:3072", "rsa:4096",
 * "ec:P-256", "ec:P-384".
 * pending 0 (first enrolment): refused (PHC_ERR_CONFIG) when a key with the URI's label/id
 *   is on the token already; the id is the URI's id, else the lowest id no object uses.
 * pending 1 (renewal with a new key): the token must hold a key already; the new key gets a
 *   new id and stays pending until its certificate is installed, so the current pair keeps
 *   serving. Refused when the key URI pins an id= (the connector would never see the new key)
 *   or when a pending key exists already (naming it). key_type NULL: the current key's type.
 * id_hex (may be NULL) receives the new pair's id. */
PHC_API PHC_WUR int phc_token_generate(phc_token *t, const char *key_type, int pending,
                                       char id_hex[PHC_ID_HEX_MAX], phc_errbuf *err);

/* A PKCS#10 request signed on the token (C_Sign; SHA-256 with RSA PKCS#1 v1.5 or ECDSA),
 * verified before it is returned. id_hex: the key to use; NULL: the active pair's key, else
 * the only pending key. subject: "/O=Energy Co/CN=client" (as `openssl req -subj`, first RDN
 * first) or "CN=client,O=Energy Co" (RFC 4514, as phc_pair_info.subject shows it); NULL:
 * the subject of that key's newest certificate, else of the active pair's. *pem_out (release with
 * phc_free) holds the PEM text. */
PHC_API PHC_WUR int phc_token_csr(phc_token *t, const char *id_hex, const char *subject,
                                  char **pem_out, phc_errbuf *err);

/* Parses subject as phc_token_csr does (PHC_ERR_CONFIG naming the problem) and writes its
 * RFC 2253 form to rfc2253 (may be NULL): to check a subject before a key is generated. */
PHC_API PHC_WUR int phc_subject_parse(const char *subject, char *rfc2253, size_t len,
                                      phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* Certificates */

/* Clock skew tolerated for a new certificate's notBefore (seconds). */
#define PHC_INSTALL_SKEW 300

/* Checks a certificate for installation without changing the token. pem: the certificate
 * first, optionally followed by intermediates. Checks, in order: it is a PEM certificate
 * (else PHC_ERR_CONFIG); inside its validity window (notBefore up to PHC_INSTALL_SKEW in the
 * future is accepted); not a CA; chains to a CA pinned by the config (ca_file, ca_sha256);
 * usable for TLS client authentication (extended key usage clientAuth when the extension is
 * present, key usage digitalSignature when present); not weaker than allowed (RSA >=
 * min_rsa_bits, EC P-256/P-384, no MD5/SHA-1 signature); its public key is one of the
 * client's keys on the token. Each refusal is PHC_ERR_TRUST naming the certificate and the
 * reason. On success *out (out may be NULL; release with phc_pair_info_free) describes the
 * pair the certificate makes, with its state as it would be once installed, and *already
 * (may be NULL) is 1 when this exact certificate is on the token already. On failure *out is
 * NULL. */
PHC_API PHC_WUR int phc_token_check_cert(phc_token *t, const char *pem, size_t len, long long now,
                                         phc_pair_info **out, int *already, phc_errbuf *err);

/* phc_token_check_cert, then stores the certificate as one certificate object with the
 * key's label and id (nothing when it is there already). Before the certificate, its SHA-256
 * is appended to the token's install-order record (phc_install_order), so that it wins a tie
 * on the very same dates; a token that refuses the record (no login, no data objects) gets
 * the certificate all the same, with a warning logged, and ties stay with the fixed order. A
 * refusal leaves the token unchanged. */
PHC_API PHC_WUR int phc_token_install_cert(phc_token *t, const char *pem, size_t len, long long now,
                                           phc_pair_info **out, int *already, phc_errbuf *err);

/* Prune flags */
#define PHC_PRUNE_DRY_RUN 0x1u /* only report what would be deleted */
#define PHC_PRUNE_PENDING 0x2u /* also delete pending keys (abandoned renewals) */

/* Deletes the certificates of EXPIRED and RETIRED pairs, and a key once no certificate of it
 * is left (with PHC_PRUNE_PENDING also keys that never had one). Never the ACTIVE pair, its
 * key, or a NOT_YET_VALID pair. out may be NULL; else *out (release with
 * phc_pair_list_free) lists what was (or with PHC_PRUNE_DRY_RUN would be) deleted, possibly
 * nothing. On an error part may have been deleted; *out then lists what was. */
PHC_API PHC_WUR int phc_token_prune(phc_token *t, long long now, unsigned flags,
                                    phc_pair_list **out, phc_errbuf *err);

/* Undoes the last installation: deletes the active pair's certificate (its key stays,
 * pending, so the certificate can be installed again later) so that the newest other valid
 * pair becomes active. Refused (PHC_ERR_HSM) when there is no active pair or no other valid
 * pair to fall back to. On success *from and *to (from, to may be NULL; release each with
 * phc_pair_info_free) receive the pair given up and the pair that becomes active; on failure
 * NULL. dry_run 1 only fills them. */
PHC_API PHC_WUR int phc_token_rollback(phc_token *t, long long now, int dry_run,
                                       phc_pair_info **from, phc_pair_info **to, phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* Client secret */

/* Stores secret (len bytes of text) as the data object that cfg's client_secret names (a
 * "pkcs11:" URI; otherwise PHC_ERR_CONFIG), on its token, with cfg's module and PIN. An
 * existing object is replaced (new one created first, then the old one deleted). The secret
 * is borrowed and not kept; wiping it is the caller's. len: 1 to PHC_SECRET_MAX (else
 * PHC_ERR_CONFIG). */
PHC_API PHC_WUR int phc_token_store_secret(phc_config *cfg, const void *secret, size_t len,
                                           phc_errbuf *err);

/* ---------------------------------------------------------------------------------- */
/* What status and monitoring show besides the pairs */

typedef struct phc_ca_info {
    char subject[256]; /* RFC 2253 */
    char sha256[65];   /* as ca_sha256 takes it */
    long long not_before, not_after;
    long days_left;
} phc_ca_info;

/* A list of CA certificates, made by the library (phc_config_ca_certs); as phc_pair_list. */
typedef struct phc_ca_list phc_ca_list;

/* The number of CAs in l; 0 for NULL. */
PHC_API size_t phc_ca_list_count(const phc_ca_list *l);

/* The i-th CA (from 0), borrowed from l; NULL when i is not below the count. */
PHC_API const phc_ca_info *phc_ca_list_get(const phc_ca_list *l, size_t i);

/* NULL allowed. */
PHC_API void phc_ca_list_free(phc_ca_list *l);

/* The pinned CA certificates (ca_file, checked against ca_sha256 when set). On PHC_OK *out
 * (release with phc_ca_list_free) is a list; on failure NULL. Errors: PHC_ERR_CONFIG as
 * phc_client_new reports them. */
PHC_API PHC_WUR int phc_config_ca_certs(const phc_config *cfg, long long now, phc_ca_list **out,
                                        phc_errbuf *err);

/* Where and how the configured client connects, for tools that must repeat it (firewall
 * rules, status). Allocated by the caller and filled by the library: like the options it
 * carries a version, set by PHC_ENDPOINT_INIT (or phc_endpoint_init), which tells the library
 * how much of it the program knows. */
typedef struct phc_endpoint {
    unsigned int version; /* PHC_ENDPOINT_VERSION */
    const char *url;      /* normalised "https://host:port" */
    const char *host;     /* without brackets */
    int port;
    const char *const *pinned_ips; /* numeric, normalised */
    size_t n_pinned_ips;
    const char *source_address;   /* NULL when unset */
    long long credential_expires; /* 0 when unset */
} phc_endpoint;

#define PHC_ENDPOINT_VERSION 1
#ifdef __cplusplus
#define PHC_ENDPOINT_INIT                                                                          \
    {                                                                                              \
        PHC_ENDPOINT_VERSION                                                                       \
    }
#else
#define PHC_ENDPOINT_INIT                                                                          \
    {                                                                                              \
        .version = PHC_ENDPOINT_VERSION                                                            \
    }
#endif

/* Sets *out to PHC_ENDPOINT_INIT for version (PHC_ENDPOINT_VERSION); PHC_ERR_CONFIG when the
 * library does not know version (out is then left alone). */
PHC_API PHC_WUR int phc_endpoint_init(phc_endpoint *out, unsigned int version);

/* Fills *out (its version set as by PHC_ENDPOINT_INIT) from cfg; every pointer is borrowed
 * from cfg. PHC_ERR_CONFIG, out left alone, when the version is unknown or cfg or out is
 * NULL. */
PHC_API PHC_WUR int phc_config_endpoint(const phc_config *cfg, phc_endpoint *out, phc_errbuf *err);

#ifdef __cplusplus
}
#endif

#endif
