/*  coordinator/node_workers.c - the worker side of the rpc endpoint: join
    (through Raft), heartbeats (soft state on the leader; they carry dry
    runs both ways, node_dryrun.c) and assignment fetches; and the table
    of what each worker last reported, from which the leader marks
    workers down after --worker-timeout. */
#include "coordinator/node_impl.h"

#include "coordinator/fsm.h"
#include "coordinator/token_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "workers"

/* ---- the soft table: sorted by name ------------------------------------------- */

static size_t s_lower_bound(const ds_node_t *self, const char *name)
{
    size_t lo = 0, hi = self->n_soft;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(self->soft[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const ds_soft_worker_t *ds_node_soft_worker(const ds_node_t *self, const char *name)
{
    size_t i = s_lower_bound(self, name);
    return i < self->n_soft && strcmp(self->soft[i].name, name) == 0 ? &self->soft[i] : NULL;
}

/*  Finds or inserts the entry of `name`. NULL when out of memory or the
    table holds DS_MAX_WORKERS already. */
static ds_soft_worker_t *s_soft_upsert(ds_node_t *self, const char *name)
{
    size_t i = s_lower_bound(self, name);
    if (i < self->n_soft && strcmp(self->soft[i].name, name) == 0)
        return &self->soft[i];
    if (ds_node_grow((void **)&self->soft, &self->cap_soft, self->n_soft, sizeof *self->soft,
                     DS_MAX_WORKERS) != 0)
        return NULL;
    memmove(&self->soft[i + 1], &self->soft[i], (self->n_soft - i) * sizeof *self->soft);
    self->n_soft++;
    ds_soft_worker_t *w = &self->soft[i];
    *w = (ds_soft_worker_t){0};
    snprintf(w->name, sizeof w->name, "%s", name);
    return w;
}

void ds_node_workers_reset(ds_node_t *self)
{
    ds_node_dry_run_reset(self); /* they wait for heartbeats to this leader */
    for (size_t i = 0; i < self->n_soft; i++)
        free(self->soft[i].instances);
    free(self->soft);
    self->soft = NULL;
    self->n_soft = self->cap_soft = 0;
}

bool ds_node_worker_up(const ds_node_t *self, const char *name)
{
    const ds_soft_worker_t *w = ds_node_soft_worker(self, name);
    if (w)
        return w->up;
    return self->now_ms < self->leader_since_ms + self->cfg.worker_timeout_ms;
}

const ds_soft_instance_t *ds_node_soft_instance(const ds_soft_worker_t *w, const char *service,
                                                uint64_t assigned)
{
    const ds_soft_instance_t *best = NULL;
    for (uint32_t i = 0; w && i < w->n_instances; i++) {
        const ds_soft_instance_t *in = &w->instances[i];
        if (strcmp(in->service, service) != 0)
            continue;
        if (in->st.version == assigned)
            return in;
        if (!best || in->st.version > best->st.version)
            best = in;
    }
    return best;
}

/*  Passing continuously since: kept while the same version keeps passing. */
static uint64_t s_healthy_since(const ds_soft_worker_t *old, const ds_instance_status_t *now,
                                uint64_t wall_ms)
{
    if (now->state != DS_INST_RUNNING || now->health != DS_HEALTH_PASSING)
        return 0;
    const ds_soft_instance_t *prev = ds_node_soft_instance(old, now->service, now->version);
    if (prev && prev->st.version == now->version && prev->healthy_since_ms)
        return prev->healthy_since_ms;
    return wall_ms;
}

static int s_soft_record(ds_soft_worker_t *w, const ds_heartbeat_t *hb, uint64_t wall_ms)
{
    uint32_t n = hb->n_instances < DS_MAX_INSTANCES ? hb->n_instances : DS_MAX_INSTANCES;
    ds_soft_instance_t *fresh = n ? calloc(n, sizeof *fresh) : NULL;
    if (n && !fresh)
        return DS_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        const ds_instance_status_t *st = &hb->instances[i];
        ds_soft_instance_t *in = &fresh[i];
        snprintf(in->service, sizeof in->service, "%s", st->service);
        snprintf(in->reason, sizeof in->reason, "%s", st->reason ? st->reason : "");
        in->st = *st;
        in->st.service = in->service;
        in->st.reason = in->reason;
        in->st.n_metrics = 0;
        in->st.metrics = NULL;
        in->healthy_since_ms = s_healthy_since(w, st, wall_ms);
    }
    free(w->instances);
    w->instances = fresh;
    w->n_instances = n;
    w->generation = hb->generation;
    w->telemetry = hb->telemetry;
    return 0;
}

void ds_node_workers_check(ds_node_t *self)
{
    ds_node_dry_run_check(self);
    for (size_t i = 0; i < self->n_soft; i++) {
        ds_soft_worker_t *w = &self->soft[i];
        if (!w->up || self->now_ms < w->last_seen_ms + self->cfg.worker_timeout_ms)
            continue;
        w->up = false;
        DS_LOG(DS_LOG_WARN, S_MOD, "worker down", "worker=%s silent_ms=%" PRIu64, w->name,
               self->now_ms - w->last_seen_ms);
        ds_node_event(self, "worker_down", "", "worker %s is down: no heartbeat for %" PRIu64 " ms",
                      w->name, self->now_ms - w->last_seen_ms);
    }
}

/*  Marks a worker seen now; returns its entry or NULL when the table is full. */
static ds_soft_worker_t *s_seen(ds_node_t *self, const char *name)
{
    ds_soft_worker_t *w = s_soft_upsert(self, name);
    if (!w)
        return NULL;
    if (!w->up) {
        bool returned = w->last_seen_ms != 0;
        w->up = true;
        w->up_since_ms = ds_clock_wall_ms();
        if (returned) {
            DS_LOG(DS_LOG_INFO, S_MOD, "worker up again", "worker=%s", name);
            ds_node_event(self, "worker_up", "", "worker %s is up again", name);
        }
    }
    w->last_seen_ms = self->now_ms;
    return w;
}

/* ---- registry reads ---------------------------------------------------------- */

typedef struct {
    const char *name;
    ds_arena_t *arena;
    ds_worker_record_t rec;
    ds_assignment_t assignment;
    bool with_assignment;
} s_reg_read_t;

static int s_reg_read(ds_txn_t *txn, void *ctx)
{
    s_reg_read_t *r = ctx;
    int rc = ds_worker_state_get(txn, r->name, r->arena, &r->rec);
    if (rc == 0 && r->with_assignment)
        rc = ds_worker_state_assignment(txn, r->name, r->arena, &r->assignment);
    return rc;
}

/*  Reads a worker's record (and its assignment). The caller destroys
    r->arena. Returns 0, DS_ENOTFOUND or a storage error. */
static int s_registry(ds_node_t *self, const char *name, bool with_assignment, s_reg_read_t *r)
{
    *r = (s_reg_read_t){.name = name, .with_assignment = with_assignment};
    r->arena = ds_arena_new(with_assignment ? 8u * 1024 * 1024 : 64u * 1024);
    if (!r->arena)
        return DS_ENOMEM;
    return ds_store_read(ds_replica_store(self->replica), s_reg_read, r);
}

static void s_reply_registry_error(ds_node_t *self, ds_caller_t *caller, const char *name, int rc)
{
    if (rc == DS_ENOTFOUND)
        ds_node_reply_error(self, caller, DS_ENOTFOUND,
                            "unknown worker %s: join first (the cluster has no record of it)",
                            name);
    else
        ds_node_reply_error(self, caller, rc, "reading worker %s failed: %s", name,
                            ds_store_errmsg(ds_replica_store(self->replica)));
}

/* ---- requests ------------------------------------------------------------------- */

/*  The rpc endpoints of the members known so far, so that a worker that
    was given one endpoint can find the next leader when this one dies. */
static uint32_t s_members(const ds_node_t *self, char **out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].rpc[0])
            out[n++] = (char *)self->peers[i].rpc;
    return n;
}

/*  A worker speaks for itself only: its name is the envelope's sender. */
static bool s_sender_is(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg, const char *name)
{
    if (strcmp(msg->env.sender, name) == 0 && name[0])
        return true;
    ds_node_reply_error(self, caller, DS_EINVAL,
                        "worker name \"%s\" differs from the message sender \"%s\": a worker "
                        "sends as its own name",
                        name, msg->env.sender);
    return false;
}

typedef struct {
    const char *id;
    ds_arena_t *arena;
    ds_token_record_t rec;
} s_token_read_t;

static int s_token_read(ds_txn_t *txn, void *ctx)
{
    s_token_read_t *t = ctx;
    return ds_token_state_get(txn, t->id, t->arena, &t->rec);
}

/*  A key the cluster does not know joins with a token: refused here,
    before anything is proposed, when the token is malformed, unknown,
    wrong, revoked, expired or used up (logged, answered DS_EFORBIDDEN).
    Applying the join checks it again and counts the use. Returns 0 with
    the token's id and secret hash, or the error already answered. */
static int s_check_token(ds_node_t *self, const ds_join_req_t *req, ds_caller_t *caller,
                         char id[DS_MAX_NAME + 1], char hash[DS_TOKEN_HASH_LEN + 1])
{
    char why[128] = "";
    int rc = ds_token_parse(req->token, id, DS_MAX_NAME + 1, hash);
    if (rc != 0) {
        snprintf(id, DS_MAX_NAME + 1, "?");
        snprintf(why, sizeof why, "malformed (a token is ID.SECRET, from dsctl token create)");
    } else {
        s_token_read_t t = {id, ds_arena_new(64u * 1024), {0}};
        rc = t.arena ? ds_store_read(ds_replica_store(self->replica), s_token_read, &t) : DS_ENOMEM;
        if (rc == DS_ENOTFOUND || rc == DS_EINVAL)
            snprintf(why, sizeof why, "unknown token");
        else if (rc == 0)
            rc = ds_token_state_usable(&t.rec, hash, ds_clock_wall_ms(), why, sizeof why);
        ds_arena_destroy(&t.arena);
    }
    if (rc == 0)
        return 0;
    if (!why[0]) {
        ds_node_reply_error(self, caller, rc, "join of %s: cannot read token %s: %s", req->name, id,
                            ds_store_errmsg(ds_replica_store(self->replica)));
        return rc;
    }
    DS_LOG(DS_LOG_WARN, "auth", "join refused", "worker=%s key=%s token=%s why=\"%s\"", req->name,
           caller->key, id, why);
    ds_node_reply_error(self, caller, DS_EFORBIDDEN,
                        "forbidden: join of %s refused: token %s: %s (ask an admin for a new "
                        "one: dsctl token create)",
                        req->name, id, why);
    return DS_EFORBIDDEN;
}

void ds_node_on_join(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_join_req_t *req = msg->body;
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (!s_sender_is(self, caller, msg, req->name))
        return;
    if (!req->worker_id[0]) {
        ds_node_reply_error(self, caller, DS_EINVAL,
                            "join of %s: worker_id is empty (a worker keeps a stable id in its "
                            "data directory)",
                            req->name);
        return;
    }
    /* Joins are idempotent: no session (a restarted worker reuses ids).
       The join token stays out of the log and snapshots. */
    ds_join_req_t rec = *req;
    rec.token = "";
    if (!ds_node_secure(self)) {
        ds_node_propose(self, caller, msg->env.sender, 0, DS_CMD_WORKER_JOIN, &rec, req->name);
        return;
    }
    ds_worker_join_cmd_t cmd = {rec, caller->key, "", ""};
    char id[DS_MAX_NAME + 1], hash[DS_TOKEN_HASH_LEN + 1];
    if (caller->role == DS_ROLE_PENDING) {
        int rc = s_check_token(self, req, caller, id, hash);
        if (rc != 0)
            return;
        cmd.token_id = id;
        cmd.token_hash = hash;
    }
    ds_node_propose(self, caller, msg->env.sender, 0, DS_CMD_WORKER_JOIN_KEYED, &cmd, req->name);
}

void ds_node_join_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index)
{
    s_reg_read_t r;
    int rc = s_registry(self, w->key, true, &r);
    if (rc != 0) {
        s_reply_registry_error(self, &w->caller, w->key, rc);
    } else {
        char *members[DS_MAX_MEMBERS];
        ds_join_reply_t reply = {r.rec.worker_id, self->cfg.worker_heartbeat_ms, r.assignment,
                                 s_members(self, members), members};
        ds_node_reply(self, &w->caller, DS_MSG_JOIN_REPLY, &reply);
        bool known = ds_node_soft_worker(self, w->key) != NULL;
        (void)s_seen(self, w->key);
        DS_LOG(DS_LOG_INFO, S_MOD, "worker joined",
               "worker=%s index=%" PRIu64 " generation=%" PRIu64, w->key, index,
               r.assignment.generation);
        if (!known)
            ds_node_event(self, "worker_joined", "", "worker %s joined (generation %" PRIu64 ")",
                          w->key, r.assignment.generation);
    }
    ds_arena_destroy(&r.arena);
}

void ds_node_on_heartbeat(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_heartbeat_t *hb = msg->body;
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (!s_sender_is(self, caller, msg, hb->name))
        return;
    s_reg_read_t r;
    int rc = s_registry(self, hb->name, false, &r);
    if (rc != 0) {
        s_reply_registry_error(self, caller, hb->name, rc);
        goto out;
    }
    ds_soft_worker_t *w = s_seen(self, hb->name);
    if (!w || s_soft_record(w, hb, ds_clock_wall_ms()) != 0) {
        ds_node_reply_error(self, caller, DS_ELIMIT,
                            "this leader cannot track more workers (%u): heartbeat dropped",
                            DS_MAX_WORKERS);
        goto out;
    }
    if (ds_telemetry_heartbeat(self->telemetry, hb, ds_clock_wall_ms()) != 0)
        DS_LOG(DS_LOG_DEBUG, S_MOD, "telemetry dropped", "worker=%s", hb->name);
    /* Results first: a job answered now is no longer listed below, which
       tells the worker to forget it. */
    ds_node_dry_run_results(self, hb->name, hb);
    const ds_peer_t *me = ds_node_peer(self, self->cfg.id);
    char *members[DS_MAX_MEMBERS];
    ds_dry_run_job_t jobs[DS_MAX_DRY_RUNS];
    ds_heartbeat_reply_t reply = {.generation = r.rec.generation,
                                  .leader_id = self->cfg.id,
                                  .leader_rpc = me ? (char *)me->rpc : "",
                                  .members = members,
                                  .dry_runs = jobs};
    reply.n_members = s_members(self, members);
    reply.n_dry_runs = ds_node_dry_run_jobs(self, hb->name, jobs, DS_MAX_DRY_RUNS);
    ds_node_reply(self, caller, DS_MSG_HEARTBEAT_REPLY, &reply);
out:
    ds_arena_destroy(&r.arena);
}

void ds_node_on_assignment_req(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_assignment_req_t *req = msg->body;
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    if (!s_sender_is(self, caller, msg, req->name))
        return;
    s_reg_read_t r;
    int rc = s_registry(self, req->name, true, &r);
    if (rc != 0)
        s_reply_registry_error(self, caller, req->name, rc);
    else
        ds_node_reply(self, caller, DS_MSG_ASSIGNMENT, &r.assignment);
    ds_arena_destroy(&r.arena);
}
