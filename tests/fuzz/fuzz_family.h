/*  tests/fuzz/fuzz_family.h - the body of fuzz_peer, fuzz_worker and
    fuzz_admin: one target per link, each fuzzing the bodies of the message
    types that cross it.

    Input: the first byte picks a type, types[byte % n], where types are
    the ids 0..255 whose family is one of the target's families, in
    increasing order; the rest of the input is the body. The envelope is
    built valid in code, so every execution reaches the body decoder.
    A body that decodes must re-encode, and the re-encoding must decode
    and re-encode to the same bytes (the round trip is stable). */
#ifndef DS_TESTS_FUZZ_FAMILY_H
#define DS_TESTS_FUZZ_FAMILY_H

#include "protocol/msg.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FUZZ_MAX_TYPE 256u

/*  Aborts with a message: libFuzzer reports it as a crash with the input. */
static void s_fuzz_die(const char *what, uint16_t type, const ds_codec_err_t *err)
{
    fprintf(stderr, "fuzz: %s for type %u (%s): %s\n", what, type, ds_msg_type_name(type),
            err ? err->text : "");
    abort();
}

/*  Encodes `body` of `type` with a fixed envelope into `env` and `out`. */
static void s_fuzz_encode(uint16_t type, const void *body, ds_buf_t *env, ds_buf_t *out)
{
    ds_envelope_t e = {DS_PROTOCOL_VERSION, type, 42, "fuzz"};
    ds_codec_err_t err;
    if (ds_msg_encode(&e, body, env, out, &err) != 0)
        s_fuzz_die("a decoded body does not re-encode", type, &err);
}

static void s_fuzz_family(const uint8_t *data, size_t size, const ds_msg_family_t *families,
                          size_t nfamilies)
{
    /* One target binary has one family list: compute its types once. */
    static uint16_t types[S_FUZZ_MAX_TYPE];
    static size_t ntypes;
    static bool listed;
    for (unsigned t = 0; !listed && t < S_FUZZ_MAX_TYPE; t++)
        for (size_t i = 0; i < nfamilies; i++)
            if (ds_msg_family((uint16_t)t) == families[i])
                types[ntypes++] = (uint16_t)t;
    listed = true;
    if (size == 0 || ntypes == 0)
        return;
    uint16_t type = types[data[0] % ntypes];

    /* A valid envelope, from the real encoder and a zeroed body. */
    ds_buf_t env = {0}, ignored = {0}, first = {0}, second = {0};
    void *zero = calloc(1, ds_msg_desc(type)->size);
    if (!zero)
        abort();
    s_fuzz_encode(type, zero, &env, &ignored);
    free(zero);

    ds_msg_t *msg = NULL, *again = NULL;
    ds_codec_err_t err;
    int rc = ds_msg_decode(env.data, env.len, data + 1, size - 1, &msg, &err);
    if (rc != 0) {
        if (msg || err.code != rc || err.text[0] == '\0')
            s_fuzz_die("a failed decode broke the error contract", type, &err);
        goto done;
    }
    ds_buf_reset(&env);
    s_fuzz_encode(type, msg->body, &env, &first);
    if (ds_msg_decode(env.data, env.len, first.data, first.len, &again, &err) != 0)
        s_fuzz_die("a re-encoded body does not decode", type, &err);
    ds_buf_reset(&env);
    s_fuzz_encode(type, again->body, &env, &second);
    if (first.len != second.len || memcmp(first.data, second.data, first.len) != 0)
        s_fuzz_die("the round trip is not stable", type, NULL);
done:
    ds_msg_destroy(&again);
    ds_msg_destroy(&msg);
    ds_buf_free(&second);
    ds_buf_free(&first);
    ds_buf_free(&ignored);
    ds_buf_free(&env);
}

#endif
