/*  coordinator/node_dryrun.c - dsctl deploy --dry-run: a release's tests
    run on one worker, and nothing changes in what serves.

    Soft, like heartbeats: no Raft entry, no release, no deployment. The
    leader picks one selected worker that is up (one that does not run the
    service if it can), keeps the dsctl request waiting, and lists the
    job in every heartbeat reply to that worker until a heartbeat brings
    the result; the worker stages the release into a scratch directory,
    starts it on a free port, waits until it is healthy, runs its tests,
    stops it and deletes the directory (worker/reconcile.h, dry runs).
    The result answers the request (op_reply: state dry_run_passed or
    dry_run_failed, message "worker W: REASON"); the deadline
    (healthy_deadline + every test timeout + DS_NODE_DRY_SLACK_MS), a
    worker going down or the end of this leadership answers an error.
    A job the leader stops listing is cancelled by the worker, so a lost
    message or a new leader leaves nothing running. */
#include "coordinator/node_impl.h"

#include "coordinator/worker_state.h"
#include "protocol/codec.h"
#include "protocol/error.h"
#include "protocol/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "dryrun"

/* ---- the table -------------------------------------------------------------- */

static ds_dry_run_t *s_find_request(ds_node_t *self, const char *client, uint64_t corr_id)
{
    for (size_t i = 0; i < self->n_dry; i++)
        if (self->dry[i].corr_id == corr_id && strcmp(self->dry[i].client, client) == 0)
            return &self->dry[i];
    return NULL;
}

static void s_remove(ds_node_t *self, size_t i)
{
    ds_node_caller_free(&self->dry[i].caller);
    ds_arena_destroy(&self->dry[i].arena);
    self->dry[i] = self->dry[--self->n_dry];
}

/*  Answers the caller, if one waits, with what the dry run recorded. */
static void s_send(ds_node_t *self, ds_dry_run_t *d)
{
    if (!d->caller.rid)
        return;
    if (d->code != 0) {
        ds_node_reply_error(self, &d->caller, d->code, "%s", d->message);
    } else {
        ds_op_reply_t reply = {d->service, 0, 0, d->passed ? "dry_run_passed" : "dry_run_failed",
                               d->message, 0};
        ds_node_reply(self, &d->caller, DS_MSG_OP_REPLY, &reply);
    }
    ds_node_caller_free(&d->caller);
}

/*  Records the answer, sends it, and keeps it for retries. */
static void s_answer(ds_node_t *self, ds_dry_run_t *d, int code, bool passed, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void s_answer(ds_node_t *self, ds_dry_run_t *d, int code, bool passed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    d->answered = true;
    d->code = code;
    d->passed = passed;
    d->expire_ms = self->now_ms + DS_NODE_DRY_KEEP_MS;
    ds_arena_destroy(&d->arena); /* the spec is no longer sent */
    memset(&d->spec, 0, sizeof d->spec);
    s_send(self, d);
    const char *outcome = code != 0 ? "gave up" : passed ? "passed" : "failed";
    DS_LOG(code || !passed ? DS_LOG_WARN : DS_LOG_INFO, S_MOD, "dry run answered",
           "id=%" PRIu64 " service=%s worker=%s outcome=%s message=%s", d->id, d->service,
           d->worker, outcome, d->message);
    ds_node_event(self, "dry_run", d->service, "dry run %" PRIu64 " of %s %s: %s", d->id,
                  d->service, outcome, d->message);
}

/* ---- choosing the worker ------------------------------------------------------ */

typedef struct {
    ds_node_t *self;
    const char *service;
    const ds_spec_t *spec;
    ds_txn_t *txn;
    char idle[DS_MAX_NAME + 1]; /* the first candidate that does not run the service */
    char busy[DS_MAX_NAME + 1]; /* the first one that does */
    uint32_t selected;          /* selected workers, up or not */
} s_pick_t;

static int s_pick_one(void *ctx, const ds_worker_record_t *w)
{
    s_pick_t *p = ctx;
    if (!ds_worker_state_selected(w, p->spec->selector, p->spec->n_selector))
        return 0;
    p->selected++;
    if (!ds_node_worker_up(p->self, w->name))
        return 0;
    uint64_t assigned = 0;
    int rc = ds_worker_state_assigned(p->txn, w->name, p->service, &assigned);
    if (rc == DS_EINVAL) /* a name the registry refuses: not assigned anywhere */
        assigned = 0;
    else if (rc != 0)
        return rc;
    bool runs = assigned != 0 ||
                ds_node_soft_instance(ds_node_soft_worker(p->self, w->name), p->service, 0);
    char *slot = runs ? p->busy : p->idle;
    if (!slot[0])
        snprintf(slot, DS_MAX_NAME + 1, "%s", w->name);
    return p->idle[0] ? 1 : 0; /* an idle one is the best there is */
}

static int s_pick_txn(ds_txn_t *txn, void *ctx)
{
    s_pick_t *p = ctx;
    p->txn = txn;
    return ds_worker_state_list(txn, s_pick_one, p);
}

/* ---- requests --------------------------------------------------------------------- */

/*  A copy of `spec` in a new arena. */
static int s_copy_spec(const ds_spec_t *spec, ds_arena_t **arena, ds_spec_t *out)
{
    ds_buf_t buf = {0};
    ds_codec_err_t err;
    int rc = ds_codec_encode(&ds_spec_desc, spec, &buf, &err);
    if (rc == 0) {
        *arena = ds_arena_new(ds_codec_arena_cap(buf.len, sizeof(ds_spec_t)) + 4096u);
        rc = *arena ? ds_codec_decode(&ds_spec_desc, buf.data, buf.len, out, *arena, &err)
                    : DS_ENOMEM;
        if (rc != 0)
            ds_arena_destroy(arena);
    }
    ds_buf_free(&buf);
    return rc;
}

static uint64_t s_deadline_ms(const ds_spec_t *spec)
{
    uint64_t ms = spec->strategy.healthy_deadline_ms + DS_NODE_DRY_SLACK_MS;
    for (uint32_t i = 0; i < spec->n_tests; i++)
        ms += spec->tests[i].timeout_ms;
    return ms;
}

/*  A retry of a request already here: it waits for the same dry run (the
    earlier attempt's routing frame is dropped), or gets its answer. */
static void s_retry(ds_node_t *self, ds_dry_run_t *d, ds_caller_t *caller)
{
    ds_node_caller_free(&d->caller);
    d->caller = *caller;
    caller->rid = NULL; /* kept */
    DS_LOG(DS_LOG_DEBUG, S_MOD, "dry run retried", "id=%" PRIu64 " client=%s answered=%s", d->id,
           d->client, d->answered ? "yes" : "no");
    if (d->answered)
        s_send(self, d);
}

void ds_node_dry_run_start(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg,
                           const ds_spec_t *spec)
{
    const ds_deploy_req_t *req = msg->body;
    ds_dry_run_t *known = s_find_request(self, msg->env.sender, msg->env.corr_id);
    if (known) {
        s_retry(self, known, caller);
        return;
    }
    if (self->n_dry >= DS_NODE_DRY_RUNS) {
        ds_node_reply_error(self, caller, DS_ELIMIT,
                            "deploy %s --dry-run: %u dry runs are under way or just answered; "
                            "retry in a minute",
                            req->service, DS_NODE_DRY_RUNS);
        return;
    }
    s_pick_t p = {.self = self, .service = req->service, .spec = spec};
    int rc = ds_store_read(ds_replica_store(self->replica), s_pick_txn, &p);
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "deploy %s --dry-run: reading the workers failed: %s",
                            req->service, ds_store_errmsg(ds_replica_store(self->replica)));
        return;
    }
    const char *worker = p.idle[0] ? p.idle : p.busy;
    if (!worker[0]) {
        ds_node_reply_error(self, caller, DS_ENOTFOUND,
                            "deploy %s --dry-run: no up worker matches the selector (%" PRIu32
                            " selected, none up; see dsctl workers)",
                            req->service, p.selected);
        return;
    }
    if (ds_node_grow((void **)&self->dry, &self->cap_dry, self->n_dry, sizeof *self->dry,
                     SIZE_MAX) != 0) {
        ds_node_reply_error(self, caller, DS_ENOMEM, "out of memory: retry later");
        return;
    }
    ds_dry_run_t *d = &self->dry[self->n_dry];
    *d = (ds_dry_run_t){.corr_id = msg->env.corr_id};
    rc = s_copy_spec(spec, &d->arena, &d->spec);
    if (rc != 0) {
        ds_node_reply_error(self, caller, rc, "deploy %s --dry-run: cannot keep the spec: %s",
                            req->service, ds_strerror(rc));
        return;
    }
    self->n_dry++;
    /* Unique across this member's leaderships: a worker may still hold
       a job of an earlier leader with a small number. */
    uint64_t floor = ds_clock_wall_ms() * 1000u;
    d->id = self->next_dry_id = self->next_dry_id >= floor ? self->next_dry_id + 1 : floor;
    snprintf(d->service, sizeof d->service, "%s", req->service);
    snprintf(d->worker, sizeof d->worker, "%s", worker);
    snprintf(d->client, sizeof d->client, "%s", msg->env.sender);
    d->caller = *caller;
    caller->rid = NULL; /* kept until answered */
    d->deadline_ms = self->now_ms + s_deadline_ms(&d->spec);
    DS_LOG(DS_LOG_INFO, S_MOD, "dry run",
           "id=%" PRIu64 " service=%s worker=%s deadline_ms=%" PRIu64, d->id, d->service, d->worker,
           s_deadline_ms(&d->spec));
    ds_node_event(self, "dry_run", d->service,
                  "dry run %" PRIu64 " of %s started on worker %s (%" PRIu32 " tests)", d->id,
                  d->service, d->worker, d->spec.n_tests);
}

/* ---- the worker's side ------------------------------------------------------------- */

uint32_t ds_node_dry_run_jobs(const ds_node_t *self, const char *worker, ds_dry_run_job_t *out,
                              uint32_t cap)
{
    uint32_t n = 0;
    for (size_t i = 0; i < self->n_dry && n < cap; i++) {
        const ds_dry_run_t *d = &self->dry[i];
        if (d->answered || strcmp(d->worker, worker) != 0)
            continue;
        out[n++] = (ds_dry_run_job_t){d->id, (char *)d->service, 0, d->spec};
    }
    return n;
}

void ds_node_dry_run_results(ds_node_t *self, const char *worker, const ds_heartbeat_t *hb)
{
    for (uint32_t k = 0; k < hb->n_dry_runs; k++) {
        const ds_dry_run_result_t *r = &hb->dry_runs[k];
        for (size_t i = 0; i < self->n_dry; i++) {
            ds_dry_run_t *d = &self->dry[i];
            if (d->id != r->id || d->answered || strcmp(d->worker, worker) != 0)
                continue;
            s_answer(self, d, 0, r->passed, "worker %s: %s", worker, r->reason);
            break;
        }
    }
}

void ds_node_dry_run_check(ds_node_t *self)
{
    for (size_t i = 0; i < self->n_dry;) {
        ds_dry_run_t *d = &self->dry[i];
        if (d->answered && self->now_ms >= d->expire_ms) {
            s_remove(self, i);
            continue;
        }
        if (!d->answered && self->now_ms >= d->deadline_ms)
            s_answer(self, d, DS_ETIMEOUT, false,
                     "dry run of %s on worker %s: no result within %" PRIu64
                     " ms (healthy_deadline + the test timeouts + %u ms); the worker may be slow "
                     "or unreachable: see dsctl workers, then retry",
                     d->service, d->worker, s_deadline_ms(&d->spec), DS_NODE_DRY_SLACK_MS);
        else if (!d->answered && !ds_node_worker_up(self, d->worker))
            s_answer(self, d, DS_ETIMEOUT, false,
                     "dry run of %s: worker %s went down before it reported a result; retry "
                     "(another worker that is up will be chosen)",
                     d->service, d->worker);
        i++;
    }
}

void ds_node_dry_run_reset(ds_node_t *self)
{
    for (size_t i = 0; i < self->n_dry; i++) {
        ds_dry_run_t *d = &self->dry[i];
        if (!d->answered && d->caller.rid)
            ds_node_reply_error(self, &d->caller, DS_ENOTLEADER,
                                "leadership changed during the dry run of %s on worker %s: retry "
                                "(nothing was changed; the worker stops the dry run)",
                                d->service, d->worker);
        ds_node_caller_free(&d->caller);
        ds_arena_destroy(&d->arena);
    }
    free(self->dry);
    self->dry = NULL;
    self->n_dry = self->cap_dry = 0;
}
