/*  coordinator/node_admin.c - deploy, rollback, promote, pause, resume and
    abort requests (deploy --dry-run is handed to node_dryrun.c).

    The leader checks each request against its applied state first, so a
    refusal says exactly why ("churn has a live deployment of version 4
    (baking) ...") and nothing is proposed. An accepted request is proposed
    as a release-state command (coordinator/release_state.h) with the
    caller's session (exactly once across retries); the state machine
    checks again when it applies, and the reply reports what the cluster
    now records. */
#include "coordinator/node_impl.h"

#include "coordinator/fsm.h"
#include "coordinator/release_state.h"
#include "protocol/error.h"
#include "protocol/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_MOD       "admin"
#define S_ARENA_CAP (16u * 1024 * 1024)

typedef struct {
    const char *service;
    ds_arena_t *arena;
    bool has_service, has_dep;
    ds_service_record_t svc;
    ds_deployment_t dep;
    uint64_t target; /* rollback: the release to go back to; 0 = none */
    uint64_t want;   /* rollback: to_version asked, 0 = last good */
    bool target_exists;
} s_view_t;

static int s_read_view(ds_txn_t *txn, void *ctx)
{
    s_view_t *v = ctx;
    int rc = ds_release_state_service(txn, v->service, v->arena, &v->svc);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    v->has_service = true;
    rc = ds_release_state_deployment(txn, v->service, v->arena, &v->dep);
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    v->has_dep = rc == 0;
    v->target = v->want;
    if (!v->target && (rc = ds_release_state_rollback_target(txn, &v->svc, &v->target)) != 0)
        return rc;
    if (!v->target)
        return 0;
    ds_release_t rel;
    rc = ds_release_state_release(txn, v->service, v->target, v->arena, &rel);
    v->target_exists = rc == 0;
    return rc == DS_ENOTFOUND ? 0 : rc;
}

/*  Reads what the leader has applied about `service`. The caller destroys
    v->arena. */
static int s_view(ds_node_t *self, const char *service, uint64_t want, s_view_t *v)
{
    *v = (s_view_t){.service = service, .want = want, .arena = ds_arena_new(S_ARENA_CAP)};
    if (!v->arena)
        return DS_ENOMEM;
    return ds_store_read(ds_replica_store(self->replica), s_read_view, v);
}

/* ---- checks before proposing -------------------------------------------------- */

static bool s_refuse_unknown(ds_node_t *self, ds_caller_t *caller, const s_view_t *v)
{
    if (v->has_service)
        return false;
    ds_node_reply_error(self, caller, DS_ENOTFOUND,
                        "unknown service %s: it has never been deployed (see dsctl status for "
                        "the services)",
                        v->service);
    return true;
}

static bool s_check_deploy(ds_node_t *self, ds_caller_t *caller, const ds_deploy_req_t *req,
                           const s_view_t *v)
{
    char err[512];
    ds_spec_t spec = req->spec;
    ds_spec_apply_defaults(&spec);
    if (ds_spec_validate(&spec, err, sizeof err) != 0) {
        ds_node_reply_error(self, caller, DS_EINVAL, "deploy %s: invalid spec: %s", req->service,
                            err);
        return false;
    }
    if (v->has_dep && ds_rollout_is_live(&v->dep) && !req->force) {
        ds_node_reply_error(self, caller, DS_ECONFLICT,
                            "%s has a live deployment of version %" PRIu64 " (%s): wait for it "
                            "(dsctl status %s), abort it (dsctl abort %s), or deploy with --force",
                            req->service, v->dep.version, ds_rollout_state_name(v->dep.state),
                            req->service, req->service);
        return false;
    }
    return true;
}

/*  deploy --dry-run: the spec is checked as for a deploy; the service
    need not exist and a live deployment does not matter, since nothing
    is recorded (coordinator/node_dryrun.c). */
static void s_dry_run(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_deploy_req_t *req = msg->body;
    char err[512];
    ds_spec_t spec = req->spec;
    ds_spec_apply_defaults(&spec);
    if (ds_spec_validate(&spec, err, sizeof err) != 0) {
        ds_node_reply_error(self, caller, DS_EINVAL, "deploy %s --dry-run: invalid spec: %s",
                            req->service, err);
        return;
    }
    ds_node_dry_run_start(self, caller, msg, &spec);
}

static bool s_check_rollback(ds_node_t *self, ds_caller_t *caller, const ds_service_req_t *req,
                             const s_view_t *v)
{
    if (s_refuse_unknown(self, caller, v))
        return false;
    if (!v->target) {
        ds_node_reply_error(self, caller, DS_ENOTFOUND,
                            "rollback %s: no release before version %" PRIu64
                            " has succeeded, so there is none to go back to; name one with --to "
                            "VERSION",
                            req->service, v->svc.current_version);
        return false;
    }
    if (!v->target_exists) {
        ds_node_reply_error(self, caller, DS_ENOTFOUND,
                            "rollback %s: there is no version %" PRIu64 " (see dsctl history %s)",
                            req->service, v->target, req->service);
        return false;
    }
    if (v->target == v->svc.current_version) {
        ds_node_reply_error(self, caller, DS_ESTATE,
                            "rollback %s: version %" PRIu64 " is already the current version",
                            req->service, v->target);
        return false;
    }
    return true;
}

typedef int (*s_action_fn)(const ds_rollout_input_t *, const char *, ds_rollout_out_t *, char *,
                           size_t);

static s_action_fn s_action(uint16_t type)
{
    switch (type) {
    case DS_MSG_PROMOTE:
        return ds_rollout_promote;
    case DS_MSG_PAUSE:
        return ds_rollout_pause;
    case DS_MSG_RESUME:
        return ds_rollout_resume;
    default:
        return ds_rollout_abort;
    }
}

static bool s_check_action(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg,
                           const s_view_t *v)
{
    const ds_service_req_t *req = msg->body;
    if (s_refuse_unknown(self, caller, v))
        return false;
    if (!v->has_dep) {
        ds_node_reply_error(self, caller, DS_ENOTFOUND, "%s: %s has no deployment",
                            ds_msg_type_name(msg->env.type), req->service);
        return false;
    }
    ds_rollout_decision_t items[DS_ROLLOUT_DECISIONS_CAP(0, 0)];
    ds_rollout_out_t out;
    ds_rollout_out_init(&out, items, DS_ROLLOUT_DECISIONS_CAP(0, 0));
    ds_rollout_input_t in = {.dep = &v->dep, .now_ms = ds_clock_wall_ms()};
    char err[512];
    int rc = s_action(msg->env.type)(&in, msg->env.sender, &out, err, sizeof err);
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "%s", err);
        return false;
    }
    return true;
}

/* ---- requests ----------------------------------------------------------------------- */

static uint16_t s_command(uint16_t type)
{
    switch (type) {
    case DS_MSG_DEPLOY:
        return DS_CMD_DEPLOY;
    case DS_MSG_ROLLBACK:
        return DS_CMD_ROLLBACK;
    case DS_MSG_PROMOTE:
        return DS_CMD_PROMOTE;
    case DS_MSG_PAUSE:
        return DS_CMD_PAUSE;
    case DS_MSG_RESUME:
        return DS_CMD_RESUME;
    default:
        return DS_CMD_ABORT;
    }
}

static const char *s_service_of(const ds_msg_t *msg)
{
    if (msg->env.type == DS_MSG_DEPLOY)
        return ((const ds_deploy_req_t *)msg->body)->service;
    return ((const ds_service_req_t *)msg->body)->service;
}

static bool s_check(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg, const s_view_t *v)
{
    switch (msg->env.type) {
    case DS_MSG_DEPLOY:
        return s_check_deploy(self, caller, msg->body, v);
    case DS_MSG_ROLLBACK:
        return s_check_rollback(self, caller, msg->body, v);
    default:
        return s_check_action(self, caller, msg, v);
    }
}

void ds_node_on_admin(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    const char *service = s_service_of(msg);
    if (!service[0] || strlen(service) > DS_MAX_NAME) {
        ds_node_reply_error(self, caller, DS_EINVAL,
                            "%s: the service name must be 1 to %u characters",
                            ds_msg_type_name(msg->env.type), DS_MAX_NAME);
        return;
    }
    if (msg->env.type == DS_MSG_DEPLOY && ((const ds_deploy_req_t *)msg->body)->dry_run) {
        s_dry_run(self, caller, msg);
        return;
    }
    uint64_t want =
        msg->env.type == DS_MSG_ROLLBACK ? ((const ds_service_req_t *)msg->body)->to_version : 0;
    s_view_t v;
    int rc = s_view(self, service, want, &v);
    if (rc != 0)
        ds_node_reply_error(self, caller, rc, "reading %s failed: %s", service, ds_strerror(rc));
    else if (s_check(self, caller, msg, &v))
        ds_node_propose(self, caller, msg->env.sender, caller->corr_id, s_command(msg->env.type),
                        msg->body, service);
    ds_arena_destroy(&v.arena);
}

/* ---- replies once applied ----------------------------------------------------------- */

static void s_message(const ds_pending_write_t *w, const s_view_t *v, char *text, size_t len)
{
    const ds_deployment_t *d = &v->dep;
    switch (w->caller.type) {
    case DS_MSG_DEPLOY:
        snprintf(text, len,
                 "release %s v%" PRIu64 " recorded; deployment %" PRIu64 " starts with a canary",
                 d->service, d->version, d->id);
        break;
    case DS_MSG_ROLLBACK:
        snprintf(text, len, "rolling %s back to v%" PRIu64 " (deployment %" PRIu64 ")", d->service,
                 d->version, d->id);
        break;
    default:
        snprintf(text, len, "%s v%" PRIu64 ": %s", d->service, d->version, d->reason);
    }
}

void ds_node_admin_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index)
{
    s_view_t v;
    int rc = s_view(self, w->key, 0, &v);
    if (rc == 0 && !v.has_dep)
        rc = DS_ENOTFOUND;
    if (rc != 0) {
        ds_node_reply_error(self, &w->caller, rc,
                            "the request committed at index %" PRIu64
                            " but reading its result failed: %s (see dsctl status %s)",
                            index, ds_strerror(rc), w->key);
    } else {
        char text[DS_ROLLOUT_REASON_MAX + 128];
        s_message(w, &v, text, sizeof text);
        ds_op_reply_t reply = {w->key,   v.dep.version,
                               v.dep.id, (char *)ds_rollout_state_name(v.dep.state),
                               text,     index};
        ds_node_reply(self, &w->caller, DS_MSG_OP_REPLY, &reply);
        DS_LOG(DS_LOG_INFO, S_MOD, ds_msg_type_name(w->caller.type),
               "service=%s version=%" PRIu64 " deployment=%" PRIu64 " index=%" PRIu64, w->key,
               v.dep.version, v.dep.id, index);
    }
    ds_arena_destroy(&v.arena);
}
