/*  tests/fuzz/fuzz_spec.c - the release spec: decoded from the wire, then
    validated.

    Input: one ds_spec_t encoding. A spec that decodes must survive
    ds_spec_validate() (whatever its verdict, with a NUL-terminated
    message), re-encode, and round-trip to the same bytes. */
#include "protocol/codec.h"
#include "protocol/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const ds_codec_err_t *err)
{
    fprintf(stderr, "fuzz_spec: %s: %s\n", what, err ? err->text : "");
    abort();
}

/*  Encodes `spec` into `out`, which must succeed for a decoded spec. */
static void s_encode(const ds_spec_t *spec, ds_buf_t *out)
{
    ds_codec_err_t err;
    if (ds_codec_encode(&ds_spec_desc, spec, out, &err) != 0)
        s_die("a decoded spec does not re-encode", &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(size, sizeof(ds_spec_t)));
    if (!arena)
        return 0;
    ds_spec_t spec, again;
    ds_codec_err_t err;
    ds_buf_t first = {0}, second = {0};
    int rc = ds_codec_decode(&ds_spec_desc, data, size, &spec, arena, &err);
    if (rc != 0) {
        if (err.code != rc || err.text[0] == '\0')
            s_die("a failed decode broke the error contract", &err);
        goto done;
    }
    char why[256];
    memset(why, 'x', sizeof why);
    rc = ds_spec_validate(&spec, why, sizeof why);
    if (rc != 0 && memchr(why, '\0', sizeof why) == NULL)
        s_die("ds_spec_validate left its message unterminated", NULL);
    s_encode(&spec, &first);
    if (ds_codec_decode(&ds_spec_desc, first.data, first.len, &again, arena, &err) != 0)
        s_die("a re-encoded spec does not decode", &err);
    s_encode(&again, &second);
    if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
        s_die("the round trip is not stable", NULL);
    if (ds_spec_validate(&again, why, sizeof why) != rc)
        s_die("the verdict changed in a round trip", NULL);
done:
    ds_buf_free(&second);
    ds_buf_free(&first);
    ds_arena_destroy(&arena);
    return 0;
}
