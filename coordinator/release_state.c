/*  coordinator/release_state.c - deploy, promote, pause, resume, abort,
    rollback and the rollout controller's batches as replicated
    state-machine commands. */
#include "coordinator/release_state.h"

#include "coordinator/worker_state.h"
#include "protocol/buf.h"
#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/messages.h"
#include "storage/state.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#define S_MAX_WORD 16u /* event and outcome names */

static const ds_field_t s_service_fields[] = {
    DS_F_STR(ds_service_record_t, name, DS_MAX_NAME),
    DS_F_U64(ds_service_record_t, created_at_ms),
    DS_F_U64(ds_service_record_t, current_version),
    DS_F_U64(ds_service_record_t, last_good_version),
};
const ds_desc_t ds_service_record_desc = DS_DESC(ds_service_record_t, "service", s_service_fields);

static const ds_field_t s_release_fields[] = {
    DS_F_U64(ds_release_t, version),
    DS_F_STRUCT(ds_release_t, spec, ds_spec_desc),
    DS_F_STR(ds_release_t, created_by, DS_FSM_MAX_CLIENT),
    DS_F_U64(ds_release_t, created_at_ms),
    DS_F_STR(ds_release_t, outcome, S_MAX_WORD),
};
const ds_desc_t ds_release_desc = DS_DESC(ds_release_t, "release", s_release_fields);

static const ds_field_t s_history_fields[] = {
    DS_F_U64(ds_history_t, seq),
    DS_F_U64(ds_history_t, version),
    DS_F_STR(ds_history_t, event, S_MAX_WORD),
    DS_F_STR(ds_history_t, outcome, S_MAX_WORD),
    DS_F_U64(ds_history_t, created_at_ms),
    DS_F_STR(ds_history_t, by, DS_FSM_MAX_CLIENT),
    DS_F_STR(ds_history_t, reason, DS_MAX_TEXT),
};
const ds_desc_t ds_history_desc = DS_DESC(ds_history_t, "history", s_history_fields);

typedef unsigned long long s_ull_t;

/*  What every command handler needs: the transaction, the entry and an
    arena for the records it loads (freed when the command is done). */
typedef struct {
    ds_txn_t *txn;
    uint64_t index;
    const ds_command_t *cmd;
    ds_arena_t *arena;
} s_ctx_t;

typedef int (*s_admin_fn)(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out,
                          char *err, size_t errlen);

const char *ds_release_state_outcome(const ds_deployment_t *dep)
{
    if (ds_rollout_is_live(dep))
        return "live";
    switch (dep->state) {
    case DS_ROLLOUT_SUCCEEDED:
        return "succeeded";
    case DS_ROLLOUT_ROLLED_BACK:
        return "rolled_back";
    case DS_ROLLOUT_ABORTED:
        return "aborted";
    default:
        return "failed";
    }
}

/* ---- records ------------------------------------------------------- */

static int s_decode(ds_txn_t *txn, const ds_desc_t *desc, const ds_val_t *v, ds_arena_t *arena,
                    void *obj, const char *what, const char *name)
{
    int rc = ds_codec_decode(desc, v->data, v->len, obj, arena, NULL);
    if (rc == DS_ENOMEM)
        return rc;
    return rc == 0 ? 0 : ds_txn_fail(txn, DS_ECORRUPT, "%s of %s is unreadable", what, name);
}

static int s_load(ds_txn_t *txn, ds_state_table_t table, const ds_desc_t *desc, const char *name,
                  ds_arena_t *arena, void *obj)
{
    ds_val_t v;
    int rc = ds_state_get(txn, table, name, &v);
    return rc != 0 ? rc : s_decode(txn, desc, &v, arena, obj, desc->name, name);
}

static int s_store(ds_txn_t *txn, ds_state_table_t table, const ds_desc_t *desc, const char *name,
                   const void *obj)
{
    ds_buf_t buf = {0};
    int rc = ds_codec_encode(desc, obj, &buf, NULL);
    if (rc == 0)
        rc = ds_state_put(txn, table, name, buf.data, buf.len);
    ds_buf_free(&buf);
    return rc;
}

static int s_last_seq(void *ctx, const ds_state_row_t *row)
{
    *(uint64_t *)ctx = row->num;
    return 1;
}

/*  Appends a history row for `dep`'s service and version, by `by`. */
static int s_history_by(s_ctx_t *c, const ds_deployment_t *dep, const char *by, const char *event,
                        const char *reason)
{
    uint64_t last = 0;
    int rc = ds_state_history_list(c->txn, dep->service, 1, s_last_seq, &last);
    if (rc != 0)
        return rc;
    ds_history_t row = {
        .seq = last + 1,
        .version = dep->version,
        .event = (char *)event,
        .outcome = (char *)ds_release_state_outcome(dep),
        .created_at_ms = c->cmd->ts_ms,
        .by = (char *)by,
        .reason = (char *)reason,
    };
    ds_buf_t buf = {0};
    uint64_t seq = 0;
    rc = ds_codec_encode(&ds_history_desc, &row, &buf, NULL);
    if (rc == 0)
        rc = ds_state_history_append(c->txn, dep->service, buf.data, buf.len, &seq);
    ds_buf_free(&buf);
    if (rc == 0 && seq != row.seq)
        rc = ds_txn_fail(c->txn, DS_ECORRUPT, "history of %s: appended seq %llu, expected %llu",
                         dep->service, (s_ull_t)seq, (s_ull_t)row.seq);
    return rc;
}

/*  Who asked, as history and releases record it: the client up to its
    first '/'. With CURVE the coordinator names an authenticated client
    "KEYNAME/SESSION" (docs/security.md, "Audit"), so this is the name of
    the key that signed the request; a plain client's name is kept whole. */
static const char *s_who(s_ctx_t *c)
{
    const char *client = c->cmd->client ? c->cmd->client : "";
    size_t len = strcspn(client, "/");
    if (client[len] == '\0')
        return client;
    char *who = ds_arena_alloc(c->arena, len + 1);
    if (!who)
        return client;
    memcpy(who, client, len);
    who[len] = '\0';
    return who;
}

/*  Appends a history row by the command's client. */
static int s_history(s_ctx_t *c, const ds_deployment_t *dep, const char *event, const char *reason)
{
    return s_history_by(c, dep, s_who(c), event, reason);
}

/*  Runs an admin action on `dep` and applies its transition to the
    record (the caller stores it), with a history row. A refusal is
    DS_ESTATE; `reason`, if not empty, is added to the row's reason. */
static int s_act(s_ctx_t *c, ds_deployment_t *dep, s_admin_fn fn, const char *event,
                 const char *reason)
{
    uint32_t cap = DS_ROLLOUT_DECISIONS_CAP(0, dep->n_touched);
    ds_rollout_decision_t *items = ds_arena_alloc(c->arena, (size_t)cap * sizeof *items);
    ds_rollout_out_t *out = ds_arena_alloc(c->arena, sizeof *out);
    if (!items || !out)
        return DS_ENOMEM;
    ds_rollout_out_init(out, items, cap);
    ds_rollout_input_t in = {.dep = dep, .now_ms = c->cmd->ts_ms};
    char err[256];
    int rc = fn(&in, s_who(c), out, err, sizeof err);
    if (rc == DS_ENOMEM || rc == DS_ELIMIT)
        return rc;
    if (rc != 0)
        return DS_ESTATE;
    const char *why = "";
    for (uint32_t i = 0; i < out->n; i++) {
        rc = ds_rollout_apply(dep, &out->items[i], c->arena);
        if (rc != 0)
            return rc == DS_ENOMEM ? rc : DS_ESTATE;
        if (out->items[i].kind == DS_ROLLOUT_TRANSITION)
            why = out->items[i].reason;
    }
    char text[DS_MAX_TEXT];
    snprintf(text, sizeof text, "%s%s%s", why, why[0] && reason[0] ? ": " : "", reason);
    return s_history(c, dep, event, text);
}

/* ---- commands ------------------------------------------------------ */

static int s_deploy(s_ctx_t *c, const ds_deploy_req_t *req)
{
    char err[256];
    if (ds_spec_validate(&req->spec, err, sizeof err) != 0)
        return DS_EINVAL;
    ds_service_record_t svc;
    int rc =
        s_load(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, req->service, c->arena, &svc);
    if (rc == DS_ENOTFOUND)
        svc = (ds_service_record_t){.name = req->service, .created_at_ms = c->cmd->ts_ms};
    else if (rc != 0)
        return rc;

    ds_deployment_t old;
    char reason[128] = "";
    rc = s_load(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, c->arena, &old);
    if (rc == 0) {
        if (ds_rollout_is_live(&old)) {
            if (!req->force)
                return DS_ECONFLICT;
            rc = s_act(c, &old, ds_rollout_abort, "abort", "a forced deploy replaces it");
            if (rc != 0)
                return rc;
            snprintf(reason, sizeof reason, "forced: aborted the deployment of version %llu",
                     (s_ull_t)old.version);
        }
    } else if (rc != DS_ENOTFOUND) {
        return rc;
    }

    uint64_t latest = 0;
    rc = ds_state_release_latest(c->txn, req->service, &latest);
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    ds_release_t rel = {
        .version = latest + 1,
        .spec = req->spec,
        .created_by = (char *)s_who(c),
        .created_at_ms = c->cmd->ts_ms,
        .outcome = "live",
    };
    ds_buf_t buf = {0};
    rc = ds_codec_encode(&ds_release_desc, &rel, &buf, NULL);
    if (rc == 0)
        rc = ds_state_release_put(c->txn, req->service, rel.version, buf.data, buf.len);
    ds_buf_free(&buf);
    if (rc != 0)
        return rc;

    ds_deployment_t dep;
    ds_rollout_init(&dep, c->index, req->service, rel.version, svc.last_good_version,
                    &req->spec.strategy, c->cmd->ts_ms);
    svc.current_version = rel.version;
    rc = s_store(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, &dep);
    if (rc == 0)
        rc = s_store(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, req->service, &svc);
    return rc != 0 ? rc : s_history(c, &dep, "deploy", reason);
}

static int s_admin(s_ctx_t *c, const ds_service_req_t *req, s_admin_fn fn, const char *event)
{
    ds_service_record_t svc;
    int rc =
        s_load(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, req->service, c->arena, &svc);
    if (rc != 0)
        return rc;
    ds_deployment_t dep;
    rc = s_load(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, c->arena, &dep);
    if (rc == 0)
        rc = s_act(c, &dep, fn, event, req->reason);
    if (rc == 0)
        rc = s_store(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, &dep);
    return rc;
}

/*  Records a deployment of an earlier release; the controller moves the
    workers (docs/release-state.md). */
static int s_rollback(s_ctx_t *c, const ds_service_req_t *req)
{
    ds_service_record_t svc;
    int rc =
        s_load(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, req->service, c->arena, &svc);
    if (rc != 0)
        return rc;
    ds_deployment_t old;
    rc = s_load(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, c->arena, &old);
    bool have_old = rc == 0;
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;

    uint64_t target = req->to_version;
    if (!target && (rc = ds_release_state_rollback_target(c->txn, &svc, &target)) != 0)
        return rc;
    if (target == 0)
        return DS_ENOTFOUND; /* no earlier release has succeeded */
    ds_release_t rel;
    ds_val_t v;
    rc = ds_state_release_get(c->txn, req->service, target, &v);
    if (rc == 0)
        rc = s_decode(c->txn, &ds_release_desc, &v, c->arena, &rel, "release", req->service);
    if (rc != 0)
        return rc;
    if (target == svc.current_version)
        return DS_ESTATE;

    char reason[DS_MAX_TEXT];
    snprintf(reason, sizeof reason, "rollback from version %llu to version %llu%s%s",
             (s_ull_t)svc.current_version, (s_ull_t)target, req->reason[0] ? ": " : "",
             req->reason);
    if (have_old && ds_rollout_is_live(&old)) {
        rc = s_act(c, &old, ds_rollout_abort, "abort", reason);
        if (rc != 0)
            return rc;
    }
    /* The release has run before: its canary promotes by itself, so the
       1-button rollback needs no second button. */
    ds_strategy_t strategy = rel.spec.strategy;
    strategy.auto_promote = true;
    ds_deployment_t dep;
    ds_rollout_init(&dep, c->index, req->service, target, svc.current_version, &strategy,
                    c->cmd->ts_ms);
    svc.current_version = target;
    rc = s_store(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, req->service, &dep);
    if (rc == 0)
        rc = s_store(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, req->service, &svc);
    return rc != 0 ? rc : s_history(c, &dep, "rollback", reason);
}

/*  Checks the ASSIGN decisions of a batch against the tables before
    anything is applied: every assigned version is a release of the
    service (0 = nothing). */
static int s_check_assigns(s_ctx_t *c, const ds_rollout_batch_t *b)
{
    for (uint32_t i = 0; i < b->n_decisions; i++) {
        const ds_rollout_decision_t *d = &b->decisions[i];
        if (d->kind != DS_ROLLOUT_ASSIGN || d->version == 0)
            continue;
        ds_val_t v;
        int rc = ds_state_release_get(c->txn, b->service, d->version, &v);
        if (rc != 0)
            return rc == DS_ENOTFOUND ? DS_EINVAL : rc;
    }
    return 0;
}

/*  What the service record keeps of a transition: success makes the
    version the current and last good one; rolling back makes the
    previous version current again (rolled_back keeps it). */
static void s_service_follow(ds_service_record_t *svc, const ds_deployment_t *dep, uint8_t state)
{
    if (state == DS_ROLLOUT_SUCCEEDED) {
        svc->last_good_version = dep->version;
        svc->current_version = dep->version;
    } else if (state == DS_ROLLOUT_ROLLING_BACK) {
        svc->current_version = dep->prev_version;
    }
}

/*  The controller's decisions (docs/rollout.md, "How the leader uses it",
    step 4): the record, the worker registry, the history and the service
    record move together, or nothing does. */
static int s_rollout(s_ctx_t *c, const ds_rollout_batch_t *b)
{
    ds_service_record_t svc;
    int rc = s_load(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, b->service, c->arena, &svc);
    if (rc != 0)
        return rc;
    ds_deployment_t dep;
    rc = s_load(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, b->service, c->arena, &dep);
    if (rc != 0)
        return rc;
    if (b->deployment_id != dep.id)
        return DS_ECONFLICT;
    rc = ds_rollout_apply_batch(&dep, b, c->arena);
    if (rc == DS_ELIMIT)
        rc = DS_EINVAL; /* more touched workers than the cluster can have */
    if (rc == 0)
        rc = s_check_assigns(c, b);
    if (rc == 0)
        rc = s_store(c->txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, b->service, &dep);
    if (rc != 0)
        return rc;

    bool svc_changed = false;
    for (uint32_t i = 0; rc == 0 && i < b->n_decisions; i++) {
        const ds_rollout_decision_t *d = &b->decisions[i];
        switch (d->kind) {
        case DS_ROLLOUT_ASSIGN: {
            ds_val_t v;
            rc = ds_state_get(c->txn, DS_TABLE_WORKERS, d->worker, &v);
            if (rc == DS_ENOTFOUND) {
                rc = 0; /* the worker has gone: nothing to assign to */
                break;
            }
            if (rc == 0)
                rc = ds_worker_state_assign(c->txn, d->worker, b->service, d->version, dep.id,
                                            c->cmd->ts_ms);
            break;
        }
        case DS_ROLLOUT_TRANSITION:
            s_service_follow(&svc, &dep, d->state);
            svc_changed = svc_changed || d->state == DS_ROLLOUT_SUCCEEDED ||
                          d->state == DS_ROLLOUT_ROLLING_BACK;
            rc = s_history_by(c, &dep, "", ds_rollout_state_name(d->state),
                              d->reason ? d->reason : "");
            break;
        case DS_ROLLOUT_EVENT:
            rc = s_history_by(c, &dep, "", ds_rollout_event_name(d->event),
                              d->reason ? d->reason : "");
            break;
        default:
            rc = DS_EINVAL; /* ds_rollout_apply_batch checked the kinds */
            break;
        }
    }
    if (rc == 0 && svc_changed)
        rc = s_store(c->txn, DS_TABLE_SERVICES, &ds_service_record_desc, b->service, &svc);
    return rc;
}

int ds_release_state_apply(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd, const void *body)
{
    assert(txn && cmd && body);
    /* Room for a service, a deployment with every worker touched, a
       release and the decisions of one admin action. */
    ds_arena_t *arena = ds_arena_new(4 * ds_codec_arena_cap(DS_MAX_ENTRY_SIZE, 4096));
    if (!arena)
        return DS_ENOMEM;
    s_ctx_t c = {txn, index, cmd, arena};
    int rc;
    switch (cmd->type) {
    case DS_CMD_DEPLOY:
        rc = s_deploy(&c, body);
        break;
    case DS_CMD_PROMOTE:
        rc = s_admin(&c, body, ds_rollout_promote, "promote");
        break;
    case DS_CMD_PAUSE:
        rc = s_admin(&c, body, ds_rollout_pause, "pause");
        break;
    case DS_CMD_RESUME:
        rc = s_admin(&c, body, ds_rollout_resume, "resume");
        break;
    case DS_CMD_ABORT:
        rc = s_admin(&c, body, ds_rollout_abort, "abort");
        break;
    case DS_CMD_ROLLBACK:
        rc = s_rollback(&c, body);
        break;
    case DS_CMD_ROLLOUT:
        rc = s_rollout(&c, body);
        break;
    default:
        rc = DS_EUNKNOWN;
        break;
    }
    ds_arena_destroy(&arena);
    return rc;
}

/* ---- reads --------------------------------------------------------- */

static int s_read(ds_txn_t *txn, ds_state_table_t table, const ds_desc_t *desc, const char *name,
                  ds_arena_t *arena, void *obj)
{
    assert(txn && name && arena && obj);
    return s_load(txn, table, desc, name, arena, obj);
}

int ds_release_state_service(ds_txn_t *txn, const char *name, ds_arena_t *arena,
                             ds_service_record_t *out)
{
    return s_read(txn, DS_TABLE_SERVICES, &ds_service_record_desc, name, arena, out);
}

int ds_release_state_deployment(ds_txn_t *txn, const char *service, ds_arena_t *arena,
                                ds_deployment_t *out)
{
    return s_read(txn, DS_TABLE_DEPLOYMENTS, &ds_deployment_desc, service, arena, out);
}

int ds_release_state_release(ds_txn_t *txn, const char *service, uint64_t version,
                             ds_arena_t *arena, ds_release_t *out)
{
    assert(txn && service && arena && out);
    ds_val_t v;
    int rc = ds_state_release_get(txn, service, version, &v);
    return rc != 0 ? rc : s_decode(txn, &ds_release_desc, &v, arena, out, "release", service);
}

typedef struct {
    ds_txn_t *txn;
    ds_release_history_fn fn;
    void *ctx;
} s_history_ctx_t;

static int s_history_row(void *ctx, const ds_state_row_t *row)
{
    s_history_ctx_t *h = ctx;
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(row->len, sizeof(ds_history_t)));
    if (!arena)
        return DS_ENOMEM;
    ds_history_t rec;
    ds_val_t v = {.data = row->val, .len = row->len};
    int rc = s_decode(h->txn, &ds_history_desc, &v, arena, &rec, "history", row->name);
    if (rc == 0) {
        rec.seq = row->num; /* the key is authoritative */
        rc = h->fn(h->ctx, &rec);
    }
    ds_arena_destroy(&arena);
    return rc;
}

int ds_release_state_history(ds_txn_t *txn, const char *service, size_t limit,
                             ds_release_history_fn fn, void *ctx)
{
    assert(txn && service && fn);
    s_history_ctx_t h = {txn, fn, ctx};
    return ds_state_history_list(txn, service, limit, s_history_row, &h);
}

typedef struct {
    uint64_t below;
    uint64_t found;
} s_target_ctx_t;

static int s_find_succeeded(void *ctx, const ds_history_t *row)
{
    s_target_ctx_t *t = ctx;
    if (strcmp(row->event, "succeeded") != 0 || row->version >= t->below)
        return 0;
    t->found = row->version;
    return 1;
}

int ds_release_state_rollback_target(ds_txn_t *txn, const ds_service_record_t *svc,
                                     uint64_t *target)
{
    assert(txn && svc && target);
    *target = 0;
    if (svc->last_good_version && svc->last_good_version != svc->current_version) {
        *target = svc->last_good_version;
        return 0;
    }
    s_target_ctx_t t = {svc->current_version, 0};
    int rc = ds_release_state_history(txn, svc->name, 0, s_find_succeeded, &t);
    *target = t.found;
    return rc;
}
