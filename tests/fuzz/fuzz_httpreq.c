/*  tests/fuzz/fuzz_httpreq.c - the HTTP request head reader, fed what any
    client of a coordinator's http endpoint may send.

    Whatever the bytes, the reader must return one of its four answers;
    give the same answer for the same bytes; on OK fill a NUL-terminated
    uppercase method and a path that starts with '/' and has no '?', with
    a head length within the input; on BAD give a reason; and answer
    INCOMPLETE for every proper prefix of a complete head. */
#include "protocol/httpreq.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_httpreq: %s\n", what);
    abort();
}

static void s_check_ok(const ds_httpreq_t *r, size_t size)
{
    if (memchr(r->method, '\0', sizeof r->method) == NULL || r->method[0] == '\0')
        s_die("a method that is empty or not terminated");
    for (const char *m = r->method; *m; m++)
        if (*m < 'A' || *m > 'Z')
            s_die("a method that is not uppercase letters");
    if (memchr(r->path, '\0', sizeof r->path) == NULL || r->path[0] != '/')
        s_die("a path that does not start with '/' or is not terminated");
    if (strchr(r->path, '?'))
        s_die("a query left in the path");
    if (r->head_len == 0 || r->head_len > size || r->head_len > DS_HTTPREQ_MAX_HEAD)
        s_die("a head length outside the input");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    ds_httpreq_t a, b;
    const char *why = NULL;
    ds_httpreq_status_t st = ds_httpreq_parse(text, size, &a, &why);
    if (ds_httpreq_parse(text, size, &b, NULL) != st || memcmp(&a, &b, sizeof a) != 0)
        s_die("two parses disagree");
    switch (st) {
    case DS_HTTPREQ_OK:
        s_check_ok(&a, size);
        for (size_t k = 0; k < a.head_len; k += 1 + a.head_len / 16)
            if (ds_httpreq_parse(text, k, &b, NULL) != DS_HTTPREQ_INCOMPLETE)
                s_die("a proper prefix of a complete head is not incomplete");
        break;
    case DS_HTTPREQ_BAD:
        if (!why || !why[0])
            s_die("a bad head without a reason");
        break;
    case DS_HTTPREQ_INCOMPLETE:
        if (size >= DS_HTTPREQ_MAX_HEAD)
            s_die("incomplete beyond the head limit");
        break;
    case DS_HTTPREQ_TOO_LARGE:
        if (size < DS_HTTPREQ_MAX_HEAD)
            s_die("too large below the head limit");
        break;
    default:
        s_die("an answer outside the enum");
    }
    return 0;
}
