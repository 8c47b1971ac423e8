/*  coordinator/node_api.c - GET /api/status: one JSON document with what
    the web page shows: this member and the cluster, every service with
    its deployment, instances and canary chart, the workers, and the
    latest events. The leader knows everything; a follower answers from
    its applied state (instances and workers then say "unknown"). */
#include "coordinator/node_impl.h"

#include "protocol/error.h"
#include "protocol/json.h"
#include "protocol/replyjson.h"

#include <inttypes.h>
#include <string.h>

#define S_ARENA_CAP (64u * 1024 * 1024)
#define S_EVENTS    30u

/* ---- the cluster ------------------------------------------------------------------ */

static void s_cluster(ds_node_t *self, ds_json_t *j)
{
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    ds_json_key_u64(j, "member", self->cfg.id);
    ds_json_key_str(j, "role", ds_raft_role_name(self->role));
    ds_json_key_u64(j, "leader", st.lead);
    const ds_peer_t *lp = st.lead ? ds_node_peer(self, st.lead) : NULL;
    ds_json_key_str(j, "leader_http",
                    lp ? lp->http : ""); /* the page links to it from a follower */
    ds_json_key_u64(j, "term", st.term);
    ds_json_key_u64(j, "commit_index", st.commit);
    ds_json_key_u64(j, "applied_index", ds_replica_applied(self->replica));
    ds_json_key_u64(j, "now_ms", ds_clock_wall_ms());
    ds_json_key(j, "insecure");
    ds_json_bool(j, !ds_node_secure(self));
    ds_json_key(j, "members");
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < self->n_peers; i++) {
        ds_member_row_t row;
        ds_node_member_row(self, &self->peers[i], &st, &row);
        ds_json_object_begin(j);
        ds_json_key_u64(j, "id", row.id);
        ds_json_key_str(j, "rpc", row.rpc_endpoint);
        ds_json_key_str(j, "role", row.role);
        ds_json_key_u64(j, "lag", row.lag);
        ds_json_key(j, "reachable");
        ds_json_bool(j, row.reachable);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
}

/* ---- services ------------------------------------------------------------------------- */

static void s_canary(ds_node_t *self, ds_json_t *j, const char *service)
{
    const ds_canary_series_t *c = ds_node_canary(self, service);
    ds_json_key(j, "canary");
    if (!c) {
        ds_json_null(j);
        return;
    }
    ds_json_object_begin(j);
    ds_json_key_u64(j, "deployment_id", c->deployment_id);
    ds_json_key_u64(j, "version", c->version);
    ds_json_key_u64(j, "baseline_version", c->baseline_version);
    ds_json_key_str(j, "verdict", c->verdict);
    ds_json_key(j, "samples"); /* oldest first */
    ds_json_array_begin(j);
    for (uint32_t k = 0; k < c->n; k++) {
        const ds_canary_sample_t *s =
            &c->samples[(c->head + DS_NODE_CANARY_SAMPLES - c->n + k) % DS_NODE_CANARY_SAMPLES];
        ds_json_object_begin(j);
        ds_json_key_u64(j, "ts_ms", s->ts_ms);
        ds_json_key_f64(j, "canary_error_ratio", s->canary_error_ratio);
        ds_json_key_f64(j, "canary_p99_ms", s->canary_p99_ms);
        ds_json_key_f64(j, "canary_rate", s->canary_rate);
        ds_json_key_f64(j, "baseline_error_ratio", s->baseline_error_ratio);
        ds_json_key_f64(j, "baseline_p99_ms", s->baseline_p99_ms);
        ds_json_key_f64(j, "baseline_rate", s->baseline_rate);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
    ds_json_object_end(j);
}

static void s_service(ds_node_t *self, ds_json_t *j, const ds_service_status_t *s)
{
    ds_render_service_json_open(j, s);
    s_canary(self, j, s->service);
    ds_json_object_end(j);
}

static void s_services(ds_node_t *self, ds_json_t *j, ds_arena_t *arena)
{
    ds_query_req_t q = {"", true, 0};
    uint32_t n = 0;
    void *rows = NULL;
    ds_json_key(j, "services");
    ds_json_array_begin(j);
    if (ds_node_query_build(self, DS_MSG_STATUS, &q, arena, &n, &rows) == 0)
        for (uint32_t i = 0; i < n; i++)
            s_service(self, j, &((const ds_service_status_t *)rows)[i]);
    ds_json_array_end(j);
}

/* ---- workers and events ------------------------------------------------------------- */

static void s_workers(ds_node_t *self, ds_json_t *j, ds_arena_t *arena)
{
    ds_query_req_t q = {"", true, 0};
    uint32_t n = 0;
    void *rows = NULL;
    ds_json_key(j, "workers");
    if (ds_node_query_build(self, DS_MSG_WORKERS, &q, arena, &n, &rows) != 0)
        n = 0;
    ds_render_workers_json(j, &(ds_workers_reply_t){n, rows});
}

static void s_event(void *ctx, const ds_node_event_t *e)
{
    ds_event_t row = {e->seq, e->ts_ms, (char *)e->kind, (char *)e->service, (char *)e->message};
    ds_render_event_json(ctx, &row);
}

void ds_node_api_status(ds_node_t *self, FILE *out)
{
    ds_json_t *j = ds_json_new(out, false);
    ds_arena_t *arena = ds_arena_new(S_ARENA_CAP);
    if (!j || !arena) {
        fputs("{\"error\":\"out of memory\"}\n", out);
        goto out;
    }
    ds_json_object_begin(j);
    s_cluster(self, j);
    s_services(self, j, arena);
    s_workers(self, j, arena);
    ds_json_key(j, "events");
    ds_json_array_begin(j);
    ds_node_events_recent(self, S_EVENTS, s_event, j);
    ds_json_array_end(j);
    ds_json_object_end(j);
    (void)ds_json_finish(j);
out:
    ds_arena_destroy(&arena);
    ds_json_destroy(&j);
}
