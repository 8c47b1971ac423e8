/*  tests/fuzz/fuzz_envelope.c - the envelope frame, decoded alone and as
    the first frame of a whole message.

    Input: the envelope frame's bytes. An envelope that decodes must name
    our version and a known type, and re-encode to an envelope that
    decodes to the same fields. */
#include "protocol/msg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const ds_codec_err_t *err)
{
    fprintf(stderr, "fuzz_envelope: %s: %s\n", what, err ? err->text : "");
    abort();
}

/*  Re-encodes a decoded envelope (with a zeroed body) and checks that it
    decodes to the same fields. */
static void s_check_round_trip(const ds_envelope_t *env)
{
    ds_buf_t out = {0}, body = {0};
    ds_codec_err_t err;
    void *zero = calloc(1, ds_msg_desc(env->type)->size);
    if (!zero)
        abort();
    if (ds_msg_encode(env, zero, &out, &body, &err) != 0)
        s_die("a decoded envelope does not re-encode", &err);
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(out.len, sizeof(ds_envelope_t)));
    ds_envelope_t again;
    if (!arena || ds_envelope_decode(out.data, out.len, &again, arena, &err) != 0)
        s_die("a re-encoded envelope does not decode", &err);
    if (again.version != env->version || again.type != env->type || again.corr_id != env->corr_id ||
        strcmp(again.sender, env->sender) != 0)
        s_die("the envelope changed in a round trip", NULL);
    ds_arena_destroy(&arena);
    ds_buf_free(&body);
    ds_buf_free(&out);
    free(zero);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(size, sizeof(ds_envelope_t)));
    if (!arena)
        return 0;
    ds_envelope_t env;
    ds_codec_err_t err;
    int rc = ds_envelope_decode(data, size, &env, arena, &err);
    if (rc == 0) {
        if (env.version != DS_PROTOCOL_VERSION || !ds_msg_desc(env.type) ||
            strlen(env.sender) > DS_MAX_NAME)
            s_die("an envelope was accepted that should not be", NULL);
        s_check_round_trip(&env);
    } else if (err.code != rc || err.text[0] == '\0') {
        s_die("a failed decode broke the error contract", &err);
    }
    ds_arena_destroy(&arena);

    /* The same bytes as the first frame of a message with an empty body:
       whatever the envelope says, the body decoder must refuse cleanly. */
    ds_msg_t *msg = NULL;
    rc = ds_msg_decode(data, size, "\x90", 1, &msg, &err);
    if (rc == 0 || msg)
        s_die("an empty body was accepted", NULL);
    return 0;
}
