/*  dsctl/cmd_kv.c - `dsctl kv put` and `dsctl kv get`. */
#include "dsctl/cmd.h"

#include "dsctl/json.h"
#include "protocol/limits.h"

#include <inttypes.h>
#include <string.h>

static int s_check_key(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, const char *key)
{
    size_t n = strlen(key);
    if (n == 0)
        return ds_cmd_usage(ctx, self, "KEY is empty (use a name such as rollout.max_waves)");
    if (n > DS_MAX_KV_KEY)
        return ds_cmd_usage(ctx, self, "KEY is %zu bytes; the limit is %u", n, DS_MAX_KV_KEY);
    return 0;
}

/*  Writes {"key", "found", "value", "index", "version", "mod_index"};
    value null when not found; found/value only for reads. */
static int s_kv_json(ds_cmd_ctx_t *ctx, const ds_kv_reply_t *kv, const char *key, bool with_value)
{
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_json_object_begin(j);
    ds_json_key(j, "key");
    ds_json_str(j, kv->key[0] ? kv->key : key);
    if (with_value) {
        ds_json_key(j, "found");
        ds_json_bool(j, kv->found);
        ds_json_key(j, "value");
        if (kv->found)
            ds_json_strn(j, kv->value.data, kv->value.len);
        else
            ds_json_null(j);
    }
    ds_json_key_u64(j, "index", kv->index);
    if (kv->found) {
        ds_json_key_u64(j, "version", kv->version);
        ds_json_key_u64(j, "mod_index", kv->mod_index);
    }
    ds_json_object_end(j);
    int rc = ds_json_finish(j);
    ds_json_destroy(&j);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

int ds_cmd_kv_put(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    char *pos[2] = {NULL, NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, NULL, 0, pos, 2, 2);
    if (rc == 0)
        rc = s_check_key(ctx, self, pos[0]);
    if (rc != 0)
        return rc;
    size_t vlen = strlen(pos[1]);
    if (vlen > DS_MAX_KV_VALUE)
        return ds_cmd_usage(ctx, self, "VALUE is %zu bytes; the limit is %u", vlen,
                            DS_MAX_KV_VALUE);
    ds_kv_put_t req = {pos[0], {(uint8_t *)pos[1], (uint32_t)vlen}};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_KV_PUT, &req, DS_MSG_KV_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_kv_reply_t *kv = reply->body;
    if (ctx->settings.output == DS_OUTPUT_JSON)
        rc = s_kv_json(ctx, kv, pos[0], false);
    else
        fprintf(ctx->out, "committed at index %" PRIu64 "\n", kv->index);
    ds_msg_destroy(&reply);
    return rc;
}

int ds_cmd_kv_get(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    char *pos[1] = {NULL};
    bool stale = false;
    ds_cmd_flag_t flags[] = {{"--stale", false, NULL, &stale, NULL, 0}};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, pos, 1, 1);
    if (rc == 0)
        rc = s_check_key(ctx, self, pos[0]);
    if (rc != 0)
        return rc;
    ds_kv_get_t req = {pos[0], stale};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_KV_GET, &req, DS_MSG_KV_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_kv_reply_t *kv = reply->body;
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        rc = s_kv_json(ctx, kv, pos[0], true);
    } else if (kv->found) {
        if (kv->value.len > 0)
            fwrite(kv->value.data, 1, kv->value.len, ctx->out);
        fputc('\n', ctx->out);
    }
    if (!kv->found) {
        fprintf(ctx->err, "dsctl: key \"%s\" not found (`dsctl kv put %s VALUE` writes it)\n",
                pos[0], pos[0]);
        rc = DS_EXIT_FAILED;
    }
    ds_msg_destroy(&reply);
    return rc;
}
