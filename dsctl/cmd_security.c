/*  dsctl/cmd_security.c - `dsctl keygen`, `dsctl token create|revoke|list`
    and `dsctl workers remove` (docs/security.md). */
#include "dsctl/cmd.h"

#include "dsctl/json.h"
#include "dsctl/render.h"
#include "dsctl/table.h"
#include "protocol/error.h"
#include "protocol/keys.h"
#include "protocol/limits.h"
#include "protocol/options.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_TOKEN_TTL_DEFAULT "24h"
#define S_SECRET_BYTES      24 /* 48 hex characters */

int ds_cmd_keygen(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    const char *out_dir = ".";
    ds_cmd_flag_t flags[] = {{"--out", true, &out_dir, NULL, NULL, 0}};
    char *pos[1] = {NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, pos, 1, 1);
    if (rc != 0)
        return rc;
    if (ds_keys_check_name(pos[0]) != 0)
        return ds_cmd_usage(ctx, self,
                            "NAME \"%s\" is not 1 to %u letters, digits, '.', '_' or '-' "
                            "(not starting with '.')",
                            pos[0], DS_MAX_NAME);
    char path[DS_MAX_PATH + 1], err[1024];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.key", out_dir, pos[0]) >= sizeof path)
        return ds_cmd_usage(ctx, self, "--out: the path is too long");
    rc = ds_keys_generate(path, pos[0], err, sizeof err);
    if (rc != 0) {
        fprintf(ctx->err, "dsctl: %s\n", err);
        return rc == DS_EINVAL ? DS_EXIT_USAGE : DS_EXIT_FAILED;
    }
    char key[DS_KEY_TEXT_LEN + 1] = "";
    if (ds_keys_load_public(path, key, err, sizeof err) != 0)
        key[0] = '\0';
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        ds_json_t *j = ds_json_new(ctx->out, true);
        if (!j)
            return DS_EXIT_FAILED;
        ds_json_object_begin(j);
        ds_json_key(j, "name");
        ds_json_str(j, pos[0]);
        ds_json_key(j, "public");
        ds_json_str(j, path);
        ds_json_key(j, "key");
        ds_json_str(j, key);
        ds_json_object_end(j);
        rc = ds_json_finish(j);
        ds_json_destroy(&j);
        return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
    }
    fprintf(ctx->out,
            "wrote %s (public key %s) and %s_secret (mode 0600)\n"
            "admit it: copy %s to the coordinators' keys directory as admins/%s.pub (or "
            "viewers/%s.pub) and restart them\n",
            path, key, path, path, pos[0], pos[0]);
    return DS_EXIT_OK;
}

/*  Random hex from /dev/urandom. Returns 0 or DS_EIO. */
static int s_random_hex(char *out, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        return DS_EINVAL;
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f ? fread(buf, 1, nbytes, f) : 0;
    if (f)
        fclose(f);
    if (got != nbytes)
        return DS_EIO;
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", buf[i]);
    return 0;
}

static int s_parse_label(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, const char *text, ds_kv_t *kv,
                         char *buf, size_t buflen)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || strlen(text) >= buflen)
        return ds_cmd_usage(ctx, self, "--label \"%s\" is not KEY=VALUE", text);
    snprintf(buf, buflen, "%s", text);
    buf[eq - text] = '\0';
    kv->key = buf;
    kv->value = buf + (eq - text) + 1;
    return 0;
}

int ds_cmd_token_create(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    const char *ttl = S_TOKEN_TTL_DEFAULT, *uses = "1", *id_flag = NULL;
    const char *labels[DS_MAX_LABELS];
    size_t n_labels = 0;
    ds_cmd_flag_t flags[] = {
        {"--ttl", true, &ttl, NULL, NULL, 0},
        {"--uses", true, &uses, NULL, NULL, 0},
        {"--id", true, &id_flag, NULL, NULL, 0},
        {"--label", true, labels, NULL, &n_labels, DS_MAX_LABELS},
    };
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 4, NULL, 0, 0);
    if (rc != 0)
        return rc;
    uint64_t ttl_ms = 0, n_uses = 0;
    if (strcmp(ttl, "0") != 0 &&
        (ds_parse_duration_ms(ttl, &ttl_ms) != 0 || ttl_ms > 365ull * 24 * 3600 * 1000))
        return ds_cmd_usage(ctx, self,
                            "--ttl: \"%s\" is not a duration up to a year (use 1h, 7d "
                            "as 168h, or 0 for never)",
                            ttl);
    if (strcmp(uses, "0") != 0 && ds_cmd_parse_count(uses, UINT32_MAX, &n_uses) != 0)
        return ds_cmd_usage(ctx, self, "--uses: \"%s\" is not a whole number (0: unlimited)", uses);
    char id[DS_MAX_NAME + 1], secret[2 * S_SECRET_BYTES + 1];
    if (id_flag)
        snprintf(id, sizeof id, "%s", id_flag);
    if ((!id_flag && s_random_hex(id, 6) != 0) || s_random_hex(secret, S_SECRET_BYTES) != 0) {
        fputs("dsctl: cannot read /dev/urandom for the token's secret\n", ctx->err);
        return DS_EXIT_FAILED;
    }
    if (id_flag && (strlen(id_flag) > DS_MAX_NAME ||
                    strspn(id_flag, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
                                    "MNOPQRSTUVWXYZ0123456789_-") != strlen(id_flag) ||
                    !id_flag[0]))
        return ds_cmd_usage(ctx, self, "--id \"%s\" is not 1 to %u letters, digits, '_' or '-'",
                            id_flag, DS_MAX_NAME);
    ds_kv_t kvs[DS_MAX_LABELS];
    static char bufs[DS_MAX_LABELS][DS_MAX_NAME + DS_MAX_LABEL + 2];
    for (size_t i = 0; i < n_labels; i++)
        if ((rc = s_parse_label(ctx, self, labels[i], &kvs[i], bufs[i], sizeof bufs[i])) != 0)
            return rc;
    ds_token_create_t req = {id, secret, ttl_ms, (uint32_t)n_uses, (uint32_t)n_labels, kvs};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_TOKEN_CREATE, &req, DS_MSG_OP_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_op_reply_t *op = reply->body;
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        ds_json_t *j = ds_json_new(ctx->out, true);
        if (j) {
            ds_json_object_begin(j);
            ds_json_key(j, "id");
            ds_json_str(j, id);
            ds_json_key(j, "token");
            char token[2 * DS_MAX_NAME + 2];
            snprintf(token, sizeof token, "%s.%s", id, secret);
            ds_json_str(j, token);
            ds_json_key_u64(j, "ttl_ms", ttl_ms);
            ds_json_key_u64(j, "uses", n_uses);
            ds_json_key_u64(j, "index", op->index);
            ds_json_object_end(j);
            rc = ds_json_finish(j) == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
            ds_json_destroy(&j);
        } else {
            rc = DS_EXIT_FAILED;
        }
    } else {
        fprintf(ctx->out, "%s.%s\n", id, secret);
        fprintf(ctx->err,
                "token %s: %s uses, %s; give it to a new worker: dsworker --token TOKEN "
                "(it is shown only now)\n",
                id, n_uses ? uses : "unlimited", ttl_ms ? ttl : "never expires");
    }
    ds_msg_destroy(&reply);
    return rc;
}

/*  token revoke ID, workers remove NAME: one name, an op reply. */
static int s_simple(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv, uint16_t type)
{
    char *pos[1] = {NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, NULL, 0, pos, 1, 1);
    if (rc != 0)
        return rc;
    if (!pos[0][0] || strlen(pos[0]) > DS_MAX_NAME)
        return ds_cmd_usage(ctx, self, "\"%s\" is not a name of 1 to %u bytes", pos[0],
                            DS_MAX_NAME);
    ds_token_revoke_t revoke = {pos[0]};
    ds_worker_remove_t remove = {pos[0]};
    const void *body = type == DS_MSG_TOKEN_REVOKE ? (const void *)&revoke : (const void *)&remove;
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, type, body, DS_MSG_OP_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_op_reply_t *op = reply->body;
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        ds_json_t *j = ds_json_new(ctx->out, true);
        if (j) {
            ds_render_op_json(j, op, false);
            rc = ds_json_finish(j) == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
            ds_json_destroy(&j);
        } else {
            rc = DS_EXIT_FAILED;
        }
    } else {
        fprintf(ctx->out, "%s (index %" PRIu64 ")\n", op->message, op->index);
    }
    ds_msg_destroy(&reply);
    return rc;
}

int ds_cmd_token_revoke(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_simple(ctx, self, argc, argv, DS_MSG_TOKEN_REVOKE);
}

int ds_cmd_workers_remove(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_simple(ctx, self, argc, argv, DS_MSG_WORKER_REMOVE);
}

static void s_token_json(ds_json_t *j, const ds_token_row_t *t)
{
    ds_json_object_begin(j);
    ds_json_key(j, "id");
    ds_json_str(j, t->id);
    ds_json_key_u64(j, "created_at_ms", t->created_at_ms);
    ds_json_key_u64(j, "expires_at_ms", t->expires_at_ms);
    ds_json_key_u64(j, "uses", t->uses);
    ds_json_key_u64(j, "used", t->used);
    ds_json_key(j, "revoked");
    ds_json_bool(j, t->revoked);
    ds_json_key(j, "created_by");
    ds_json_str(j, t->created_by);
    ds_json_key(j, "labels");
    ds_json_object_begin(j);
    for (uint32_t i = 0; i < t->n_labels; i++) {
        ds_json_key(j, t->labels[i].key);
        ds_json_str(j, t->labels[i].value);
    }
    ds_json_object_end(j);
    ds_json_object_end(j);
}

static int s_tokens_table(FILE *out, const ds_token_list_reply_t *r)
{
    static const char *const headers[] = {"ID", "EXPIRES", "USED", "REVOKED", "BY", "LABELS"};
    ds_table_t *t = ds_table_new(headers, 6);
    if (!t)
        return DS_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r->n_tokens; i++) {
        const ds_token_row_t *tk = &r->tokens[i];
        char expires[40] = "never", used[48], labels[512] = "";
        if (tk->expires_at_ms)
            ds_render_rfc3339(tk->expires_at_ms, false, expires, sizeof expires);
        if (tk->uses)
            snprintf(used, sizeof used, "%" PRIu32 "/%" PRIu32, tk->used, tk->uses);
        else
            snprintf(used, sizeof used, "%" PRIu32 "/-", tk->used);
        size_t n = 0;
        for (uint32_t k = 0; k < tk->n_labels && n < sizeof labels; k++)
            n += (size_t)snprintf(labels + n, sizeof labels - n, "%s%s=%s", k ? "," : "",
                                  tk->labels[k].key, tk->labels[k].value);
        const char *cells[] = {tk->id,         expires, used, tk->revoked ? "yes" : "no",
                               tk->created_by, labels};
        rc = ds_table_add_row(t, cells);
    }
    if (rc == 0)
        rc = ds_table_print(t, out);
    ds_table_destroy(&t);
    return rc;
}

int ds_cmd_token_list(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool stale = false;
    ds_cmd_flag_t flags[] = {{"--stale", false, NULL, &stale, NULL, 0}};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, NULL, 0, 0);
    if (rc != 0)
        return rc;
    ds_query_req_t q = {"", stale, 0};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_TOKEN_LIST, &q, DS_MSG_TOKEN_LIST_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_token_list_reply_t *r = reply->body;
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        ds_json_t *j = ds_json_new(ctx->out, true);
        if (j) {
            ds_json_array_begin(j);
            for (uint32_t i = 0; i < r->n_tokens; i++)
                s_token_json(j, &r->tokens[i]);
            ds_json_array_end(j);
            rc = ds_json_finish(j) == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
            ds_json_destroy(&j);
        } else {
            rc = DS_EXIT_FAILED;
        }
    } else {
        rc = s_tokens_table(ctx->out, r) == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
    }
    ds_msg_destroy(&reply);
    return rc;
}
