#include "http_headers.h"

#include "err.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int phc__http_fields_parse(phc_http_fields *f, const char *block, phc_errbuf *err)
{
    memset(f, 0, sizeof(*f));
    if (!block)
        block = "";
    f->buf_len = strlen(block) + 1;
    if (!(f->buf = OPENSSL_malloc(f->buf_len))) {
        f->buf_len = 0;
        return phc__err(err, PHC_ERR_INTERNAL, "out of memory");
    }
    memcpy(f->buf, block, f->buf_len);
    char *save = NULL;
    char *line = strtok_r(f->buf, "\r\n", &save); /* the status line */
    for (line = line ? strtok_r(NULL, "\r\n", &save) : NULL; line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        if (f->n == PHC_MAX_HEADERS) {
            phc__http_fields_free(f);
            return phc__err(err, PHC_ERR_POLICY,
                            "the response has more than %d header fields, the most the "
                            "connector reads",
                            PHC_MAX_HEADERS);
        }
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char *end = v + strlen(v);
        while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        f->names[f->n] = line;
        f->values[f->n++] = v;
    }
    return PHC_OK;
}

const char *phc__http_fields_get(const phc_http_fields *f, const char *name)
{
    if (!f || !name)
        return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (strcasecmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

void phc__http_fields_free(phc_http_fields *f)
{
    if (!f)
        return;
    /* The fields may be cookies or session ids: wiped like the block they came from. */
    if (f->buf)
        OPENSSL_clear_free(f->buf, f->buf_len);
    memset(f, 0, sizeof(*f));
}
