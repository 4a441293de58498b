/* The CLI's hints on library messages. The library says what to do in its own terms ("renew
 * it", "generate the first key pair"): its users are C programs, not operators at a shell.
 * The tool knows its commands, so it adds them here, on the same line. */
#include "phc.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* A hint goes right after the first occurrence of `after` in a message of class `code` (0:
 * any class); a message can take several.
 * "{id}" in a hint stands for the hex key id the message names ("key id 02"). The `after`
 * texts are the library's wording (tests/unit/tool_hint_test.c checks them against the
 * refusals the library makes). */
static const struct hint {
    int code;
    const char *after;
    const char *hint;
} hints[] = {
    {PHC_ERR_TRUST, "the server considers it expired; renew it",
     " (phc csr, then phc install --probe)"},
    {PHC_ERR_TRUST, "the vendor has revoked it; request a new certificate for a new key",
     " (phc csr --new-key, then phc install --probe)"},
    {PHC_ERR_HSM, "delete it and store the secret again", " with 'phc secret store'"},
    {PHC_ERR_HSM, "delete all but one, or store the value again", " (phc secret store)"},
    {PHC_ERR_CONFIG, "to renew, make a new request for that key or generate a pending key",
     " (phc csr, or phc csr --new-key)"},
    {PHC_ERR_HSM, "to renew: generate the first key pair", " (phc enrol)"},
    {PHC_ERR_CONFIG, "is already pending (no certificate yet): make its request again",
     " (phc csr --key-id {id})"},
    {PHC_ERR_CONFIG, "or delete the pending keys", " (phc prune --pending --yes)"},
    {PHC_ERR_HSM, ": choose one by its key id", " (phc csr --key-id ID)"},
    {PHC_ERR_HSM, "generate a key pair (the first one, or a pending one to renew)",
     " (phc enrol, or phc csr --new-key)"},
    {PHC_ERR_CONFIG, "no active pair: give a subject", " (--subject DN)"},
    {0, "the debug log", ", phc -vv,"},
};

/* The hex key id after "key id " in msg, into out (empty when there is none). */
static void key_id_of(const char *msg, char *out, size_t len)
{
    const char *p = strstr(msg, "key id ");
    size_t n = 0;
    if (p)
        for (p += strlen("key id "); n + 1 < len && isxdigit((unsigned char)p[n]); n++)
            out[n] = p[n];
    out[n] = '\0';
}

/* Appends s to out[*at..len), truncating; "{id}" becomes id. */
static void put(char *out, size_t len, size_t *at, const char *s, size_t n, const char *id)
{
    for (size_t i = 0; i < n && *at + 1 < len; i++) {
        if (id && i + 4 <= n && strncmp(s + i, "{id}", 4) == 0) {
            put(out, len, at, id, strlen(id), NULL);
            i += 3;
            continue;
        }
        out[(*at)++] = s[i];
    }
    out[*at] = '\0';
}

const char *phc_tool_hinted(const phc_errbuf *err, char *out, size_t len)
{
    const char *msg = err->msg[0] ? err->msg : phc_err_name(err->code);
    enum { NHINTS = sizeof(hints) / sizeof(hints[0]) };
    const char *at[NHINTS]; /* where each matching hint goes, NULL: nowhere */
    char id[2 * PHC_ID_HEX_MAX];
    key_id_of(msg, id, sizeof(id));
    for (size_t i = 0; i < NHINTS; i++) {
        const char *p =
            hints[i].code == 0 || hints[i].code == err->code ? strstr(msg, hints[i].after) : NULL;
        at[i] = p ? p + strlen(hints[i].after) : NULL;
    }
    size_t n = 0;
    const char *from = msg;
    out[0] = '\0';
    for (;;) {
        /* The next insertion point in the message, in message order. */
        size_t next = NHINTS;
        for (size_t i = 0; i < NHINTS; i++)
            if (at[i] && (next == NHINTS || at[i] < at[next]))
                next = i;
        if (next == NHINTS)
            break;
        put(out, len, &n, from, (size_t)(at[next] - from), NULL);
        put(out, len, &n, hints[next].hint, strlen(hints[next].hint), id);
        from = at[next];
        at[next] = NULL;
    }
    put(out, len, &n, from, strlen(from), NULL);
    return out;
}
