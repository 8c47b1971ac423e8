/*  dsctl/cmd_cluster.c - `dsctl cluster status` and `cluster transfer-leader`. */
#include "dsctl/cmd.h"

#include "dsctl/json.h"
#include "dsctl/table.h"
#include "protocol/error.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- cluster status ----------------------------------------------- */

static void s_status_json(ds_json_t *j, const ds_cluster_status_reply_t *st)
{
    ds_json_object_begin(j);
    ds_json_key(j, "leader");
    if (st->leader)
        ds_json_u64(j, st->leader);
    else
        ds_json_null(j);
    ds_json_key_u64(j, "term", st->term);
    ds_json_key_u64(j, "commit_index", st->commit_index);
    ds_json_key_u64(j, "applied_index", st->applied_index);
    ds_json_key(j, "members");
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < st->n_members; i++) {
        const ds_member_row_t *m = &st->members[i];
        ds_json_object_begin(j);
        ds_json_key_u64(j, "id", m->id);
        ds_json_key(j, "peer_endpoint");
        ds_json_str(j, m->peer_endpoint);
        ds_json_key(j, "rpc_endpoint");
        ds_json_str(j, m->rpc_endpoint);
        ds_json_key(j, "role");
        ds_json_str(j, m->role);
        ds_json_key_u64(j, "match_index", m->match_index);
        ds_json_key_u64(j, "lag", m->lag);
        ds_json_key(j, "reachable");
        ds_json_bool(j, m->reachable);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
    ds_json_object_end(j);
}

static int s_print_json(ds_cmd_ctx_t *ctx, const ds_cluster_status_reply_t *st)
{
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    s_status_json(j, st);
    int rc = ds_json_finish(j);
    ds_json_destroy(&j);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

static int s_member_row(ds_table_t *t, const ds_member_row_t *m)
{
    char id[24], match[24], lag[24];
    snprintf(id, sizeof id, "%" PRIu64, m->id);
    snprintf(match, sizeof match, "%" PRIu64, m->match_index);
    snprintf(lag, sizeof lag, "%" PRIu64, m->lag);
    const char *cells[] = {
        id, m->role, m->rpc_endpoint, m->peer_endpoint, match, lag, m->reachable ? "yes" : "no"};
    return ds_table_add_row(t, cells);
}

static int s_print_table(ds_cmd_ctx_t *ctx, const ds_cluster_status_reply_t *st)
{
    static const char *const headers[] = {"ID", "ROLE", "RPC", "PEER", "MATCH", "LAG", "REACHABLE"};
    char leader[24] = "none";
    if (st->leader)
        snprintf(leader, sizeof leader, "%" PRIu64, st->leader);
    fprintf(ctx->out,
            "leader: %s  term: %" PRIu64 "  commit: %" PRIu64 "  applied: %" PRIu64 "\n\n", leader,
            st->term, st->commit_index, st->applied_index);
    ds_table_t *t = ds_table_new(headers, sizeof headers / sizeof headers[0]);
    int rc = t ? 0 : DS_ENOMEM;
    for (size_t c = 4; t && c <= 5; c++)
        ds_table_align_right(t, c);
    for (uint32_t i = 0; rc == 0 && i < st->n_members; i++)
        rc = s_member_row(t, &st->members[i]);
    if (rc == 0)
        rc = ds_table_print(t, ctx->out);
    ds_table_destroy(&t);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

int ds_cmd_cluster_status(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    int rc = ds_cmd_parse(ctx, self, argc, argv, NULL, 0, NULL, 0, 0);
    if (rc != 0)
        return rc;
    ds_query_req_t req = {.service = "", .stale = false, .limit = 0};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_CLUSTER_STATUS, &req, DS_MSG_CLUSTER_STATUS_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_cluster_status_reply_t *st = reply->body;
    rc = ctx->settings.output == DS_OUTPUT_JSON ? s_print_json(ctx, st) : s_print_table(ctx, st);
    ds_msg_destroy(&reply);
    return rc;
}

/* ---- cluster transfer-leader -------------------------------------- */

/*  Parses a member id: a decimal number from 1 up. */
static int s_member_id(const char *text, uint64_t *id)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!*text || *end || errno || v == 0 || text[0] == '-' || text[0] == '+')
        return DS_EINVAL;
    *id = v;
    return 0;
}

static int s_print_op(ds_cmd_ctx_t *ctx, const ds_op_reply_t *op)
{
    if (ctx->settings.output == DS_OUTPUT_TABLE) {
        fprintf(ctx->out, "leadership transfer: %s%s%s\n", op->state[0] ? op->state : "requested",
                op->message[0] ? ": " : "", op->message);
        return DS_EXIT_OK;
    }
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_json_object_begin(j);
    ds_json_key(j, "state");
    ds_json_str(j, op->state);
    ds_json_key(j, "message");
    ds_json_str(j, op->message);
    ds_json_key_u64(j, "index", op->index);
    ds_json_object_end(j);
    int rc = ds_json_finish(j);
    ds_json_destroy(&j);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

int ds_cmd_cluster_transfer(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    const char *to = NULL;
    ds_cmd_flag_t flags[] = {{"--to", true, &to, NULL, NULL, 0}};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, NULL, 0, 0);
    if (rc != 0)
        return rc;
    ds_transfer_req_t req = {.target = 0};
    if (to && s_member_id(to, &req.target) != 0)
        return ds_cmd_usage(ctx, self,
                            "--to: \"%s\" is not a member id (use a number such as 2; "
                            "`dsctl cluster status` lists them)",
                            to);
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_CLUSTER_TRANSFER, &req, DS_MSG_OP_REPLY, &reply);
    if (rc != 0)
        return rc;
    rc = s_print_op(ctx, reply->body);
    ds_msg_destroy(&reply);
    return rc;
}
