/* An HTTP/1.x response header block read into name/value fields: a pure parser (no I/O, no
 * libcurl), so that every rule is unit-tested and fuzzed on its own (tests/unit/
 * http_headers_test.c, tests/fuzz/fuzz_http_headers.c).
 *
 * The block is what libcurl hands the header callback for the final response: the status line,
 * then one field per line, lines ended by CRLF or LF. Empty lines and lines without ':' are
 * skipped; a name is the text before the first ':', a value the text after it without the
 * blanks (space, tab) around it. More than PHC_MAX_HEADERS fields is an error rather than a
 * silent drop: a field past the limit (a Retry-After, say) would otherwise change what the
 * connector does without a word. */
#ifndef PHC_HTTP_HEADERS_H
#define PHC_HTTP_HEADERS_H

#include <phconnect/phconnect.h>

#include <stddef.h>

#define PHC_MAX_HEADERS 128

typedef struct phc_http_fields {
    char *buf; /* a copy of the block; names and values point into it */
    size_t buf_len;
    const char *names[PHC_MAX_HEADERS];
    const char *values[PHC_MAX_HEADERS];
    size_t n;
} phc_http_fields;

/* Reads block (NUL-terminated; NULL reads as empty) into f, which must be zeroed or freed.
 * Returns PHC_OK; PHC_ERR_POLICY when the block has more than PHC_MAX_HEADERS fields (the
 * message names the limit); PHC_ERR_INTERNAL when out of memory. On failure f holds nothing. */
PHC_WUR int phc__http_fields_parse(phc_http_fields *f, const char *block, phc_errbuf *err);

/* The value of the first field named name (case-insensitive), or NULL. Borrowed from f. */
const char *phc__http_fields_get(const phc_http_fields *f, const char *name);

/* Releases (wiped) what parse allocated and zeroes f. NULL allowed. */
void phc__http_fields_free(phc_http_fields *f);

#endif
