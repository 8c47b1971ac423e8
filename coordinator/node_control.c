/*  coordinator/node_control.c - the rollout controllers, run by the leader.

    Every DS_NODE_CONTROL_MS, and as soon as a batch it proposed has
    applied, the leader reads each service's deployment record, its
    release's selector, the registry's workers and their assignments, adds
    what the workers last reported (node_workers.c), and calls the pure
    controller (coordinator/rollout.h). Its decisions go through Raft as one
    DS_CMD_ROLLOUT batch per service; no new batch for a service is
    proposed until the previous one applied. A deployment that has ended
    (succeeded, rolled back) is kept converged the same way: a worker that
    joins later, or whose assignment is not the service's current version,
    is assigned it (docs/coordinator.md, "Rollouts on the leader").

    The controller runs only once this leader has applied its own first
    entry (so the records it reads are the latest) and has waited two
    worker heartbeats (so the soft state it adds is rebuilt). */
#include "coordinator/node_impl.h"

#include "coordinator/analysis.h"
#include "coordinator/fsm.h"
#include "coordinator/release_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "storage/state.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD        "control"
#define S_ARENA_CAP  (16u * 1024 * 1024)
#define S_MAX_PASSES DS_MAX_SERVICES

/* ---- the controller's input ------------------------------------------------------ */

typedef struct {
    ds_node_t *self;
    ds_txn_t *txn;
    ds_node_rollout_t *r;
    ds_arena_t *arena;
    uint32_t cap; /* 0 while counting */
    uint64_t leader_wall_ms;
} s_load_t;

static void s_observe(const s_load_t *l, const char *service, ds_rollout_worker_t *w)
{
    const ds_soft_worker_t *soft = ds_node_soft_worker(l->self, w->name);
    w->up = ds_node_worker_up(l->self, w->name);
    w->up_since_ms = soft ? soft->up_since_ms : l->leader_wall_ms;
    const ds_soft_instance_t *in = ds_node_soft_instance(soft, service, w->assigned);
    if (!in)
        return;
    w->version = in->st.version;
    w->state = in->st.state;
    w->health = in->st.health;
    w->healthy_since_ms = in->healthy_since_ms;
    w->restarts = in->st.restarts;
    w->reason = in->reason;
}

static int s_load_worker(void *ctx, const ds_worker_record_t *rec)
{
    s_load_t *l = ctx;
    ds_node_rollout_t *r = l->r;
    if (!ds_worker_state_selected(rec, r->spec.selector, r->spec.n_selector))
        return 0;
    if (!l->cap) {
        r->n_workers++;
        return 0;
    }
    if (r->n_workers == l->cap)
        return 1; /* the registry grew within the transaction: cannot happen */
    ds_rollout_worker_t *w = &r->workers[r->n_workers];
    size_t len = strlen(rec->name) + 1;
    if (!(w->name = ds_arena_alloc(l->arena, len)))
        return DS_ENOMEM;
    memcpy(w->name, rec->name, len);
    int rc = ds_worker_state_assigned(l->txn, rec->name, r->dep.service, &w->assigned);
    if (rc != 0)
        return rc;
    s_observe(l, r->dep.service, w);
    r->n_workers++;
    return 0;
}

int ds_node_rollout_load(ds_node_t *self, ds_txn_t *txn, const char *service, ds_arena_t *arena,
                         ds_node_rollout_t *out)
{
    *out = (ds_node_rollout_t){0};
    int rc = ds_release_state_deployment(txn, service, arena, &out->dep);
    ds_release_t rel;
    if (rc == 0)
        rc = ds_release_state_release(txn, service, out->dep.version, arena, &rel);
    if (rc != 0)
        return rc;
    out->spec = rel.spec;
    uint64_t wall = ds_clock_wall_ms(), since = self->now_ms - self->leader_since_ms;
    s_load_t l = {self, txn, out, arena, 0, wall > since ? wall - since : 0};
    rc = ds_worker_state_list(txn, s_load_worker, &l); /* count */
    if (rc == 0 && out->n_workers) {
        l.cap = out->n_workers;
        out->n_workers = 0;
        out->workers = ds_arena_alloc(arena, l.cap * sizeof *out->workers);
        rc = out->workers ? ds_worker_state_list(txn, s_load_worker, &l) : DS_ENOMEM;
    }
    out->in = (ds_rollout_input_t){&out->dep, out->workers, out->n_workers, wall, {0, NULL}};
    return rc;
}

/* ---- in-flight batches and what was last reported ------------------------------- */

static ds_inflight_t *s_inflight(ds_node_t *self, const char *service)
{
    for (size_t i = 0; i < self->n_inflight; i++)
        if (strcmp(self->inflight[i].service, service) == 0)
            return &self->inflight[i];
    return NULL;
}

static void s_inflight_add(ds_node_t *self, const char *service, uint64_t index, uint64_t term)
{
    if (ds_node_grow((void **)&self->inflight, &self->cap_inflight, self->n_inflight,
                     sizeof *self->inflight, SIZE_MAX) != 0)
        return; /* untracked: at worst a duplicate batch, refused as stale */
    ds_inflight_t *f = &self->inflight[self->n_inflight++];
    snprintf(f->service, sizeof f->service, "%s", service);
    f->index = index;
    f->term = term;
}

void ds_node_control_applied(ds_node_t *self, uint64_t index)
{
    for (size_t i = 0; i < self->n_inflight;) {
        if (self->inflight[i].index <= index) {
            self->inflight[i] = self->inflight[--self->n_inflight];
            self->next_control_ms = self->now_ms; /* look again at once */
        } else {
            i++;
        }
    }
}

void ds_node_control_reset(ds_node_t *self)
{
    for (size_t i = 0; i < self->n_canaries; i++)
        free(self->canaries[i]);
    free(self->canaries);
    self->canaries = NULL;
    self->n_canaries = self->cap_canaries = 0;
    free(self->inflight);
    free(self->seen);
    self->inflight = NULL;
    self->seen = NULL;
    self->n_inflight = self->cap_inflight = self->n_seen = self->cap_seen = 0;
}

static ds_dep_seen_t *s_seen_slot(ds_node_t *self, const char *service, bool *fresh)
{
    *fresh = false;
    for (size_t i = 0; i < self->n_seen; i++)
        if (strcmp(self->seen[i].service, service) == 0)
            return &self->seen[i];
    if (ds_node_grow((void **)&self->seen, &self->cap_seen, self->n_seen, sizeof *self->seen,
                     SIZE_MAX) != 0)
        return NULL;
    ds_dep_seen_t *s = &self->seen[self->n_seen++];
    *s = (ds_dep_seen_t){0};
    snprintf(s->service, sizeof s->service, "%s", service);
    *fresh = true;
    return s;
}

/*  Emits an event when a deployment moved since this leader last looked
    (the first look after taking over only records). */
static void s_report(ds_node_t *self, const ds_deployment_t *dep)
{
    bool fresh;
    ds_dep_seen_t *s = s_seen_slot(self, dep->service, &fresh);
    if (!s || (s->id == dep->id && s->state == dep->state && s->wave == dep->wave))
        return;
    bool new_dep = !fresh && s->id != dep->id;
    *s = (ds_dep_seen_t){.id = dep->id, .state = dep->state, .wave = dep->wave};
    snprintf(s->service, sizeof s->service, "%s", dep->service);
    if (fresh)
        return;
    if (new_dep)
        ds_node_event(self, "deployment", dep->service,
                      "%s: deployment %" PRIu64 " of version %" PRIu64 " started", dep->service,
                      dep->id, dep->version);
    ds_node_event(self, "deployment", dep->service, "%s version %" PRIu64 ": %s%s%s", dep->service,
                  dep->version, ds_rollout_state_name(dep->state), dep->reason[0] ? " - " : "",
                  dep->reason);
}

/* ---- canary analysis ------------------------------------------------------------------ */

const ds_canary_series_t *ds_node_canary(const ds_node_t *self, const char *service)
{
    for (size_t i = 0; i < self->n_canaries; i++)
        if (strcmp(self->canaries[i]->service, service) == 0)
            return self->canaries[i];
    return NULL;
}

/*  The record of the deployment `dep`, made afresh for a new deployment. */
static ds_canary_series_t *s_canary_for(ds_node_t *self, const ds_deployment_t *dep)
{
    ds_canary_series_t *c = (ds_canary_series_t *)ds_node_canary(self, dep->service);
    if (!c) {
        if (ds_node_grow((void **)&self->canaries, &self->cap_canaries, self->n_canaries,
                         sizeof *self->canaries, SIZE_MAX) != 0)
            return NULL;
        if (!(c = calloc(1, sizeof *c)))
            return NULL;
        self->canaries[self->n_canaries++] = c;
        c->deployment_id = dep->id + 1; /* differs: reset below */
    }
    if (c->deployment_id != dep->id) {
        memset(c, 0, sizeof *c);
        snprintf(c->service, sizeof c->service, "%s", dep->service);
        c->deployment_id = dep->id;
        c->version = dep->version;
        c->baseline_version = dep->prev_version;
    }
    return c;
}

/*  When the canary started baking: the state's start while baking; in
    canary_passed the bake ended when it was entered. */
static uint64_t s_bake_started(const ds_deployment_t *dep)
{
    if (dep->state == DS_ROLLOUT_BAKING)
        return dep->state_at_ms;
    return dep->state_at_ms > dep->strategy.bake_ms ? dep->state_at_ms - dep->strategy.bake_ms : 0;
}

static bool s_query(ds_node_t *self, const char *service, uint64_t version, uint64_t since,
                    uint64_t now, ds_telemetry_stats_t *out)
{
    if (!version)
        return false;
    uint32_t w = ds_telemetry_window_for(self->telemetry, now > since ? now - since : 0);
    ds_telemetry_key_t key = {DS_TELEMETRY_SERVICE, NULL, service, version};
    return ds_telemetry_query(self->telemetry, &key, w, since, now, out) == 0;
}

static void s_sample(ds_canary_series_t *c, const ds_telemetry_stats_t *canary,
                     const ds_telemetry_stats_t *baseline, uint64_t now)
{
    if (now < c->next_sample_ms)
        return;
    c->next_sample_ms = now + 2000;
    ds_canary_sample_t *s = &c->samples[c->head];
    *s = (ds_canary_sample_t){.ts_ms = now, .verdict = c->verdict_result};
    if (canary) {
        s->canary_error_ratio = canary->error_ratio;
        s->canary_p99_ms = canary->latency_p99_ms;
        s->canary_rate = canary->request_rate;
    }
    if (baseline) {
        s->baseline_error_ratio = baseline->error_ratio;
        s->baseline_p99_ms = baseline->latency_p99_ms;
        s->baseline_rate = baseline->request_rate;
    }
    c->head = (c->head + 1) % DS_NODE_CANARY_SAMPLES;
    if (c->n < DS_NODE_CANARY_SAMPLES)
        c->n++;
}

static bool s_analysing(const ds_deployment_t *dep)
{
    return dep->state == DS_ROLLOUT_BAKING || dep->state == DS_ROLLOUT_CANARY_PASSED;
}

/*  Evaluates the release's analysis on the canary's telemetry during
    bake, records a chart point, and sets the controller's verdict.
    Returns true when `v` holds a verdict (analysis configured, baking). */
static bool s_analyse(ds_node_t *self, ds_node_rollout_t *r, ds_analysis_verdict_t *v)
{
    const ds_deployment_t *dep = &r->dep;
    uint64_t now = r->in.now_ms;
    ds_canary_series_t *c = s_canary_for(self, dep);
    uint64_t since = dep->state == DS_ROLLOUT_PENDING || dep->state == DS_ROLLOUT_CANARY
                         ? dep->started_at_ms
                         : s_bake_started(dep);
    ds_telemetry_stats_t cs, bs;
    bool have_c = s_query(self, dep->service, dep->version, since, now, &cs);
    bool have_b = s_query(self, dep->service, dep->prev_version, since, now, &bs);
    bool judged = s_analysing(dep) && ds_analysis_configured(&r->spec.analysis);
    if (judged) {
        ds_analysis_input_t in = {&r->spec.analysis,
                                  have_c ? &cs : NULL,
                                  have_b ? &bs : NULL,
                                  s_bake_started(dep),
                                  dep->strategy.healthy_deadline_ms,
                                  now};
        ds_analysis_evaluate(&in, v);
        r->in.verdict = ds_analysis_rollout_verdict(v);
        if (c) {
            c->verdict_result = v->result;
            snprintf(c->verdict, sizeof c->verdict, "%s", v->summary);
        }
    }
    if (c && ds_rollout_is_live(dep))
        s_sample(c, have_c ? &cs : NULL, have_b ? &bs : NULL, now);
    return judged && v->result != DS_ROLLOUT_VERDICT_NONE;
}

/*  With a verdict behind a transition out of the bake, the batch also
    records the whole verdict (every check, value and threshold) in the
    history. Its text is the verdict's, which outlives the proposal. */
static void s_add_verdict(const ds_node_rollout_t *r, const ds_analysis_verdict_t *v,
                          ds_rollout_out_t *out)
{
    bool moved = false;
    for (uint32_t i = 0; i < out->n; i++)
        moved = moved || out->items[i].kind == DS_ROLLOUT_TRANSITION;
    if (!moved || out->n == out->cap)
        return;
    out->items[out->n++] = (ds_rollout_decision_t){.kind = DS_ROLLOUT_EVENT,
                                                   .event = DS_ROLLOUT_EV_VERDICT,
                                                   .wave = r->dep.wave,
                                                   .at_ms = r->in.now_ms,
                                                   .reason = (char *)v->summary};
}

/* ---- decisions --------------------------------------------------------------------- */

static void s_propose_batch(ds_node_t *self, const ds_node_rollout_t *r,
                            const ds_rollout_out_t *out)
{
    ds_rollout_batch_t batch;
    ds_rollout_batch_fill(&batch, &r->dep, out);
    ds_buf_t buf = {0};
    ds_codec_err_t err;
    uint64_t index = 0;
    int rc = ds_fsm_encode(DS_CMD_ROLLOUT, "", 0, r->in.now_ms, &batch, &buf, &err);
    if (rc == 0)
        rc = ds_raft_propose(ds_replica_raft(self->replica), buf.data, (uint32_t)buf.len, &index);
    if (rc == 0) {
        ds_raft_status_t st;
        ds_raft_status(ds_replica_raft(self->replica), &st);
        s_inflight_add(self, r->dep.service, index, st.term);
        DS_LOG(DS_LOG_DEBUG, S_MOD, "proposed rollout batch",
               "service=%s decisions=%u index=%" PRIu64, r->dep.service, out->n, index);
    } else {
        DS_LOG(DS_LOG_WARN, S_MOD, "rollout batch not proposed", "service=%s err=%s detail=%s",
               r->dep.service, ds_errname(rc), rc == DS_ENOTLEADER ? "" : err.text);
    }
    ds_buf_free(&buf);
}

typedef struct {
    ds_node_t *self;
    const char *service;
    ds_arena_t *arena;
    ds_node_rollout_t r;
} s_pass_t;

static int s_pass_load(ds_txn_t *txn, void *ctx)
{
    s_pass_t *p = ctx;
    return ds_node_rollout_load(p->self, txn, p->service, p->arena, &p->r);
}

static void s_control_service(ds_node_t *self, const char *service)
{
    s_pass_t p = {.self = self, .service = service, .arena = ds_arena_new(S_ARENA_CAP)};
    int rc = p.arena ? ds_store_read(ds_replica_store(self->replica), s_pass_load, &p) : DS_ENOMEM;
    if (rc != 0) {
        if (rc != DS_ENOTFOUND)
            DS_LOG(DS_LOG_WARN, S_MOD, "cannot read the deployment", "service=%s err=%s", service,
                   ds_errname(rc));
        goto out;
    }
    s_report(self, &p.r.dep);
    uint32_t cap = DS_ROLLOUT_DECISIONS_CAP(p.r.n_workers, p.r.dep.n_touched);
    ds_rollout_decision_t *items = ds_arena_alloc(p.arena, cap * sizeof *items);
    ds_rollout_out_t *out = ds_arena_alloc(p.arena, sizeof *out);
    if (!items || !out)
        goto out;
    ds_rollout_out_init(out, items, cap);
    char err[256] = "";
    ds_analysis_verdict_t *verdict = ds_arena_alloc(p.arena, sizeof *verdict);
    bool judged = verdict && s_analyse(self, &p.r, verdict);
    if (ds_rollout_is_live(&p.r.dep))
        rc = ds_rollout_step(&p.r.in, out, err, sizeof err);
    else
        ds_rollout_converge(&p.r.in, out);
    if (rc == 0 && judged && s_analysing(&p.r.dep))
        s_add_verdict(&p.r, verdict, out);
    if (rc != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "controller refused its input", "service=%s err=%s detail=%s",
               service, ds_errname(rc), err);
    else if (out->n)
        s_propose_batch(self, &p.r, out);
out:
    ds_arena_destroy(&p.arena);
}

/* ---- the pass ------------------------------------------------------------------------ */

typedef struct {
    char (*names)[DS_MAX_NAME + 1];
    size_t n, cap;
} s_names_t;

static int s_collect(void *ctx, const ds_state_row_t *row)
{
    s_names_t *n = ctx;
    if (n->n == n->cap)
        return 1;
    snprintf(n->names[n->n++], DS_MAX_NAME + 1, "%s", row->name);
    return 0;
}

static int s_list_deployments(ds_txn_t *txn, void *ctx)
{
    return ds_state_list(txn, DS_TABLE_DEPLOYMENTS, s_collect, ctx);
}

static bool s_ready(const ds_node_t *self)
{
    return ds_node_is_leader(self) && ds_replica_applied(self->replica) >= self->leader_index &&
           self->now_ms >= self->leader_since_ms + 2u * self->cfg.worker_heartbeat_ms;
}

void ds_node_control(ds_node_t *self)
{
    if (!s_ready(self) || self->now_ms < self->next_control_ms)
        return;
    self->next_control_ms = self->now_ms + DS_NODE_CONTROL_MS;
    ds_telemetry_expire(self->telemetry, ds_clock_wall_ms());
    s_names_t names = {calloc(S_MAX_PASSES, sizeof *names.names), 0, S_MAX_PASSES};
    if (!names.names)
        return;
    if (ds_store_read(ds_replica_store(self->replica), s_list_deployments, &names) == 0)
        for (size_t i = 0; i < names.n; i++)
            if (!s_inflight(self, names.names[i]))
                s_control_service(self, names.names[i]);
    free(names.names);
}
