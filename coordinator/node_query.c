/*  coordinator/node_query.c - status, history and workers replies.

    Each reply is built in one read transaction of the applied state; the
    leader adds what workers reported (soft state). A follower asked for a
    stale read answers from its own state and reports instance and worker
    states as "unknown" (it receives no heartbeats). */
#include "coordinator/node_impl.h"

#include "coordinator/release_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "storage/state.h"

#include <stdlib.h>
#include <string.h>

#define S_ARENA_CAP (64u * 1024 * 1024)

typedef struct {
    ds_node_t *self;
    const ds_query_req_t *q;
    ds_arena_t *arena;
    ds_txn_t *txn;
    uint32_t n, cap;
    void *rows; /* array of the reply's row type, in arena */
} s_query_t;

static char *s_dup(ds_arena_t *arena, const char *s)
{
    size_t len = strlen(s) + 1;
    char *d = ds_arena_alloc(arena, len);
    if (d)
        memcpy(d, s, len);
    return d;
}

static void *s_grow(s_query_t *q, size_t elem)
{
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 16;
        void *rows = ds_arena_alloc(q->arena, cap * elem);
        if (!rows)
            return NULL;
        if (q->n)
            memcpy(rows, q->rows, q->n * elem);
        q->rows = rows;
        q->cap = cap;
    }
    return (char *)q->rows + elem * q->n++;
}

/* ---- status ---------------------------------------------------------------------- */

static uint64_t s_desired(const ds_deployment_t *d)
{
    bool back = d->state == DS_ROLLOUT_ROLLING_BACK || d->state == DS_ROLLOUT_ROLLED_BACK;
    return back ? d->prev_version : d->version;
}

static int s_instance_rows(s_query_t *q, const ds_node_rollout_t *r, ds_service_status_t *s)
{
    s->instances = ds_arena_alloc(q->arena, (r->n_workers + 1) * sizeof *s->instances);
    if (!s->instances)
        return DS_ENOMEM;
    bool leader = ds_node_is_leader(q->self);
    for (uint32_t i = 0; i < r->n_workers; i++) {
        const ds_rollout_worker_t *w = &r->workers[i];
        const ds_soft_worker_t *soft = ds_node_soft_worker(q->self, w->name);
        const ds_soft_instance_t *in = ds_node_soft_instance(soft, s->service, w->assigned);
        if (!w->assigned && !in)
            continue;
        ds_instance_row_t *row = &s->instances[s->n_instances++];
        row->worker = w->name;
        row->version = in ? in->st.version : w->assigned;
        row->state = (char *)(in ? ds_inst_state_name(in->st.state) : "unknown");
        row->health = (char *)(in ? ds_health_state_name(in->st.health) : "unknown");
        row->port = in ? in->st.port : 0;
        row->restarts = in ? in->st.restarts : 0;
        row->reason = (char *)(in ? in->reason : "");
        if (leader && !w->up)
            row->state = "down";
    }
    return 0;
}

/*  The deployment's reason; once it failed, with why it failed (the
    reason of a rollback alone would not say). */
static char *s_reason(s_query_t *q, const ds_deployment_t *dep)
{
    if (!dep->failure || !dep->failure[0] || dep->state == DS_ROLLOUT_FAILED)
        return dep->reason;
    size_t len = strlen(dep->reason) + strlen(dep->failure) + 3;
    char *text = ds_arena_alloc(q->arena, len);
    if (!text)
        return dep->reason;
    snprintf(text, len, "%s; %s", dep->reason, dep->failure);
    return text;
}

static void s_deployment_row(s_query_t *q, const ds_node_rollout_t *r, ds_deployment_status_t *d)
{
    ds_rollout_progress_t p;
    ds_rollout_progress(&r->in, &p);
    const ds_deployment_t *dep = &r->dep;
    *d = (ds_deployment_status_t){.id = dep->id,
                                  .version = dep->version,
                                  .from_version = dep->prev_version,
                                  .state = (char *)ds_rollout_state_name(dep->state),
                                  .reason = s_reason(q, dep),
                                  .wave = dep->wave,
                                  .updated = p.updated,
                                  .healthy = p.healthy,
                                  .total = p.total,
                                  .started_at_ms = dep->started_at_ms,
                                  .updated_at_ms = dep->state_at_ms};
}

static int s_service_status(s_query_t *q, const char *name)
{
    ds_service_record_t svc;
    int rc = ds_release_state_service(q->txn, name, q->arena, &svc);
    if (rc != 0)
        return rc;
    ds_service_status_t *s = s_grow(q, sizeof *s);
    if (!s)
        return DS_ENOMEM;
    *s = (ds_service_status_t){.service = svc.name, .current_version = svc.last_good_version};
    ds_node_rollout_t *r = ds_arena_alloc(q->arena, sizeof *r);
    if (!r)
        return DS_ENOMEM;
    rc = ds_node_rollout_load(q->self, q->txn, name, q->arena, r);
    if (rc == DS_ENOTFOUND)
        return 0; /* a service without a deployment */
    if (rc != 0)
        return rc;
    s->desired_version = s_desired(&r->dep);
    s->has_deployment = true;
    s_deployment_row(q, r, &s->deployment);
    return s_instance_rows(q, r, s);
}

static int s_collect_service(void *ctx, const ds_state_row_t *row)
{
    s_query_t *q = ctx;
    char name[DS_MAX_NAME + 1];
    snprintf(name, sizeof name, "%s", row->name);
    return s_service_status(q, name);
}

static int s_read_status(ds_txn_t *txn, void *ctx)
{
    s_query_t *q = ctx;
    q->txn = txn;
    if (q->q->service[0])
        return s_service_status(q, q->q->service);
    return ds_state_list(txn, DS_TABLE_SERVICES, s_collect_service, q);
}

/* ---- history ---------------------------------------------------------------------- */

static int s_history_row(void *ctx, const ds_history_t *h)
{
    s_query_t *q = ctx;
    ds_history_row_t *row = s_grow(q, sizeof *row);
    if (!row)
        return DS_ENOMEM;
    *row = (ds_history_row_t){h->seq,
                              h->version,
                              s_dup(q->arena, h->event),
                              s_dup(q->arena, h->outcome),
                              h->created_at_ms,
                              s_dup(q->arena, h->by[0] ? h->by : "controller"),
                              s_dup(q->arena, h->reason)};
    return row->event && row->outcome && row->by && row->reason ? 0 : DS_ENOMEM;
}

static int s_read_history(ds_txn_t *txn, void *ctx)
{
    s_query_t *q = ctx;
    ds_service_record_t svc;
    int rc = ds_release_state_service(txn, q->q->service, q->arena, &svc);
    if (rc != 0)
        return rc;
    size_t limit = q->q->limit && q->q->limit < DS_MAX_ROWS ? q->q->limit : DS_MAX_ROWS;
    return ds_release_state_history(txn, q->q->service, limit, s_history_row, q);
}

/* ---- workers ----------------------------------------------------------------------- */

static const char *s_worker_state(const ds_node_t *self, const ds_soft_worker_t *soft)
{
    if (!ds_node_is_leader(self))
        return "unknown";
    if (soft)
        return soft->up ? "up" : "down";
    /* Not heard from since this member took over: down once the timeout passed. */
    return self->now_ms < self->leader_since_ms + self->cfg.worker_timeout_ms ? "unknown" : "down";
}

static int s_worker_row(void *ctx, const ds_worker_record_t *rec)
{
    s_query_t *q = ctx;
    ds_worker_row_t *row = s_grow(q, sizeof *row);
    if (!row)
        return DS_ENOMEM;
    const ds_soft_worker_t *soft = ds_node_soft_worker(q->self, rec->name);
    *row = (ds_worker_row_t){.name = s_dup(q->arena, rec->name),
                             .state = (char *)s_worker_state(q->self, soft),
                             .generation = rec->generation,
                             .software_version = s_dup(q->arena, rec->software_version)};
    if (soft) {
        row->last_seen_ms = q->self->now_ms - soft->last_seen_ms;
        row->telemetry = soft->telemetry;
    }
    row->labels = ds_arena_alloc(q->arena, (rec->n_labels + 1) * sizeof *row->labels);
    if (!row->name || !row->software_version || !row->labels)
        return DS_ENOMEM;
    for (uint32_t i = 0; i < rec->n_labels; i++) {
        ds_kv_t *kv = &row->labels[row->n_labels++];
        kv->key = s_dup(q->arena, rec->labels[i].key);
        kv->value = s_dup(q->arena, rec->labels[i].value);
        if (!kv->key || !kv->value)
            return DS_ENOMEM;
    }
    return 0;
}

static int s_read_workers(ds_txn_t *txn, void *ctx)
{
    return ds_worker_state_list(txn, s_worker_row, ctx);
}

/* ---- dispatch ----------------------------------------------------------------------- */

static void s_reply(ds_node_t *self, ds_caller_t *caller, uint16_t type, s_query_t *q)
{
    if (type == DS_MSG_STATUS) {
        /* dsctl status warns when the cluster runs --insecure */
        ds_status_reply_t reply = {!ds_node_secure(self), q->n, q->rows};
        ds_node_reply(self, caller, DS_MSG_STATUS_REPLY, &reply);
    } else if (type == DS_MSG_HISTORY) {
        ds_history_reply_t reply = {(char *)q->q->service, q->n, q->rows};
        ds_node_reply(self, caller, DS_MSG_HISTORY_REPLY, &reply);
    } else {
        ds_workers_reply_t reply = {q->n, q->rows};
        ds_node_reply(self, caller, DS_MSG_WORKERS_REPLY, &reply);
    }
}

int ds_node_query_build(ds_node_t *self, uint16_t type, const ds_query_req_t *req,
                        ds_arena_t *arena, uint32_t *n, void **rows)
{
    s_query_t q = {self, req, arena, NULL, 0, 0, NULL};
    ds_store_read_fn fn = type == DS_MSG_STATUS    ? s_read_status
                          : type == DS_MSG_HISTORY ? s_read_history
                                                   : s_read_workers;
    int rc = ds_store_read(ds_replica_store(self->replica), fn, &q);
    *n = q.n;
    *rows = q.rows;
    return rc;
}

void ds_node_serve_query(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    uint16_t type = msg->env.type;
    s_query_t q = {self, msg->body, ds_arena_new(S_ARENA_CAP), NULL, 0, 0, NULL};
    int rc = q.arena ? ds_node_query_build(self, type, q.q, q.arena, &q.n, &q.rows) : DS_ENOMEM;
    if (rc == DS_ENOTFOUND)
        ds_node_reply_error(self, caller, rc,
                            "unknown service %s: it has never been deployed (dsctl status lists "
                            "the services)",
                            q.q->service);
    else if (rc != 0)
        ds_node_reply_error(self, caller, rc, "reading the state failed: %s", ds_strerror(rc));
    else
        s_reply(self, caller, type, &q);
    ds_arena_destroy(&q.arena);
}

/* ---- top ------------------------------------------------------------------------------- */

typedef struct {
    ds_node_t *self;
    ds_arena_t *arena;
    ds_top_service_t *rows;
    uint32_t n, cap;
    const char *only; /* service filter, "" = all */
} s_top_t;

/*  Instances of (service, version) passing their health check now. */
static uint32_t s_healthy_now(const ds_node_t *self, const char *service, uint64_t version)
{
    uint32_t n = 0;
    for (size_t i = 0; i < self->n_soft; i++) {
        const ds_soft_worker_t *w = &self->soft[i];
        for (uint32_t k = 0; w->up && k < w->n_instances; k++)
            n += strcmp(w->instances[k].service, service) == 0 &&
                 w->instances[k].st.version == version &&
                 w->instances[k].st.health == DS_HEALTH_PASSING;
    }
    return n;
}

static int s_top_row(void *ctx, const ds_telemetry_key_t *key, const ds_telemetry_stats_t *st)
{
    s_top_t *t = ctx;
    if (t->only[0] && strcmp(t->only, key->service) != 0)
        return 0;
    if (t->n == t->cap)
        return 1;
    char *service = s_dup(t->arena, key->service);
    if (!service)
        return DS_ENOMEM;
    t->rows[t->n++] = (ds_top_service_t){service,
                                         key->version,
                                         st->instances,
                                         s_healthy_now(t->self, key->service, key->version),
                                         st->request_rate,
                                         st->error_ratio,
                                         st->latency_p99_ms,
                                         st->cpu_pct,
                                         (uint64_t)st->rss_kb};
    return 0;
}

void ds_node_on_top(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_query_req_t *req = msg->body;
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    ds_query_req_t all = {"", true, 0};
    s_top_t t = {self, ds_arena_new(S_ARENA_CAP), NULL, 0, DS_MAX_ROWS, req->service};
    uint32_t n_workers = 0;
    void *workers = NULL;
    int rc = t.arena ? 0 : DS_ENOMEM;
    if (rc == 0 && !(t.rows = ds_arena_alloc(t.arena, t.cap * sizeof *t.rows)))
        rc = DS_ENOMEM;
    if (rc == 0)
        rc = ds_node_query_build(self, DS_MSG_WORKERS, &all, t.arena, &n_workers, &workers);
    if (rc == 0)
        rc = ds_telemetry_each(self->telemetry, DS_TELEMETRY_SERVICE, 0, ds_clock_wall_ms(),
                               s_top_row, &t);
    if (rc < 0) {
        ds_node_reply_error(self, caller, rc, "top: %s", ds_strerror(rc));
    } else {
        ds_top_reply_t reply = {n_workers, workers, t.n, t.rows};
        ds_node_reply(self, caller, DS_MSG_TOP_REPLY, &reply);
    }
    ds_arena_destroy(&t.arena);
}
