/*  tests/unit/test_release_state.c - deploy, promote, pause, resume, abort,
    rollback and the controller's rollout batches applied through
    ds_apply_entry on a real LMDB store. */
#define DS_FSM_TAG "release_state"
#include "tests/unit/fsm_fix.h"

#include "coordinator/apply.h"
#include "coordinator/fsm.h"
#include "coordinator/release_state.h"
#include "coordinator/rollout.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/messages.h"
#include "storage/state.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_SVC "churn"

static void s_spec(ds_spec_t *spec, const char *artifact)
{
    ds_spec_init(spec);
    spec->artifact = (char *)artifact;
    spec->command = "bin/serve --port ${PORT}";
    spec->strategy.canary = 1;
    spec->strategy.max_parallel = 2;
    ds_spec_apply_defaults(spec);
}

static int s_deploy(fx_t *fx, const char *client, uint64_t req_id, uint64_t ts,
                    const char *artifact, bool force)
{
    ds_deploy_req_t req = {.service = S_SVC, .force = force};
    s_spec(&req.spec, artifact);
    return s_apply(fx, DS_CMD_DEPLOY, client, req_id, ts, &req);
}

static int s_op(fx_t *fx, uint16_t type, const char *service, uint64_t to_version,
                const char *client, uint64_t req_id, uint64_t ts)
{
    ds_service_req_t req = {.service = (char *)service, .to_version = to_version, .reason = ""};
    return s_apply(fx, type, client, req_id, ts, &req);
}

/* ---- reading state ---- */

typedef struct {
    int rc;
    ds_arena_t *arena;
    ds_service_record_t svc;
    ds_deployment_t dep;
    ds_release_t rel;
    uint64_t version;
} read_t;

static int s_read_service(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->rc = ds_release_state_service(txn, S_SVC, r->arena, &r->svc);
    return 0;
}

static int s_read_deployment(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->rc = ds_release_state_deployment(txn, S_SVC, r->arena, &r->dep);
    return 0;
}

static int s_read_release(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->rc = ds_release_state_release(txn, S_SVC, r->version, r->arena, &r->rel);
    return 0;
}

static read_t *s_read(fx_t *fx, ds_store_read_fn fn, uint64_t version)
{
    read_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->arena = ds_arena_new(1u << 20);
    assert_non_null(r->arena);
    r->version = version;
    assert_int_equal(ds_store_read(fx->s, fn, r), 0);
    return r;
}

static void s_read_free(read_t *r)
{
    ds_arena_destroy(&r->arena);
    free(r);
}

/*  The history, oldest first, as "seq|event|version|outcome|by" lines. */
typedef struct {
    int n;
    char rows[32][160];
    uint64_t ts[32];
} hist_t;

static int s_hist_row(void *ctx, const ds_history_t *row)
{
    hist_t *h = ctx;
    if (h->n == 32)
        return 1;
    snprintf(h->rows[h->n], sizeof h->rows[h->n], "%llu|%s|%llu|%s|%s",
             (unsigned long long)row->seq, row->event, (unsigned long long)row->version,
             row->outcome, row->by);
    h->ts[h->n] = row->created_at_ms;
    h->n++;
    return 0;
}

static int s_read_history(ds_txn_t *txn, void *ctx)
{
    return ds_release_state_history(txn, S_SVC, 0, s_hist_row, ctx);
}

static void s_history(fx_t *fx, hist_t *h)
{
    hist_t newest = {0};
    assert_int_equal(ds_store_read(fx->s, s_read_history, &newest), 0);
    memset(h, 0, sizeof *h);
    for (int i = newest.n - 1; i >= 0; i--) {
        memcpy(h->rows[h->n], newest.rows[i], sizeof h->rows[0]);
        h->ts[h->n++] = newest.ts[i];
    }
}

/*  A digest of every release-state table (not the sessions), to show that
    a refused command changed nothing. */
typedef struct {
    uint64_t h;
    size_t rows;
} digest_t;

static int s_digest_row(void *ctx, const ds_state_row_t *row)
{
    digest_t *d = ctx;
    const uint8_t *p = row->val;
    d->h = (d->h ^ row->num ^ row->table) * 1099511628211ull;
    for (size_t i = 0; i < row->len; i++)
        d->h = (d->h ^ p[i]) * 1099511628211ull;
    d->rows++;
    return 0;
}

static int s_digest_fn(ds_txn_t *txn, void *ctx)
{
    int rc = ds_state_list(txn, DS_TABLE_SERVICES, s_digest_row, ctx);
    if (rc == 0)
        rc = ds_state_list(txn, DS_TABLE_DEPLOYMENTS, s_digest_row, ctx);
    if (rc == 0)
        rc = ds_state_releases_list(txn, S_SVC, 0, s_digest_row, ctx);
    if (rc == 0)
        rc = ds_state_history_list(txn, S_SVC, 0, s_digest_row, ctx);
    if (rc == 0)
        rc = ds_state_list(txn, DS_TABLE_WORKERS, s_digest_row, ctx);
    if (rc == 0)
        rc = ds_state_assignments_list(txn, NULL, s_digest_row, ctx);
    return rc;
}

static digest_t s_digest(fx_t *fx)
{
    digest_t d = {14695981039346656037ull, 0};
    assert_int_equal(ds_store_read(fx->s, s_digest_fn, &d), 0);
    return d;
}

static void s_assert_same(digest_t a, digest_t b)
{
    assert_int_equal(a.rows, b.rows);
    assert_true(a.h == b.h);
}

/*  Sets the stored deployment's state directly, a shortcut to the states
    the admin actions act on (the controller's own batches are tested
    below with real ds_rollout_step output). */
static int s_force_state_fn(ds_txn_t *txn, void *ctx)
{
    uint8_t state = *(uint8_t *)ctx;
    ds_arena_t *arena = ds_arena_new(1u << 20);
    if (!arena)
        return DS_ENOMEM;
    ds_deployment_t dep;
    int rc = ds_release_state_deployment(txn, S_SVC, arena, &dep);
    if (rc == 0) {
        dep.state = state;
        ds_buf_t buf = {0};
        rc = ds_codec_encode(&ds_deployment_desc, &dep, &buf, NULL);
        if (rc == 0)
            rc = ds_state_put(txn, DS_TABLE_DEPLOYMENTS, S_SVC, buf.data, buf.len);
        ds_buf_free(&buf);
    }
    ds_arena_destroy(&arena);
    return rc;
}

static void s_force_state(fx_t *fx, uint8_t state)
{
    int result = 1;
    fx->index++;
    assert_int_equal(ds_state_apply(fx->s, fx->index, 0, s_force_state_fn, &state, &result), 0);
    assert_int_equal(result, 0);
}

static uint8_t s_dep_state(fx_t *fx)
{
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->rc, 0);
    uint8_t state = r->dep.state;
    s_read_free(r);
    return state;
}

/* ---- the controller, as the leader runs it ---- */

#define S_MAX_SIM 4

/*  A simulated worker: it runs what it is assigned as soon as it is
    assigned, healthy unless the version is its bad one. */
typedef struct {
    const char *name;
    uint64_t version;
    uint64_t healthy_since;
    uint64_t bad_version;
} sim_t;

static void s_join_workers(fx_t *fx, sim_t *w, uint32_t n, uint64_t ts)
{
    for (uint32_t i = 0; i < n; i++) {
        ds_kv_t labels[] = {{"zone", "a"}};
        ds_join_req_t req = {.name = (char *)w[i].name,
                             .worker_id = (char *)w[i].name,
                             .n_labels = 1,
                             .labels = labels,
                             .software_version = "1.0",
                             .token = ""};
        assert_int_equal(s_apply(fx, DS_CMD_WORKER_JOIN, "", 0, ts, &req), 0);
    }
}

typedef struct {
    const char *worker;
    int rc;
    uint64_t version;
    ds_arena_t *arena;
    ds_worker_record_t w;
} reg_t;

static int s_read_assigned(ds_txn_t *txn, void *ctx)
{
    reg_t *r = ctx;
    r->rc = ds_worker_state_assigned(txn, r->worker, S_SVC, &r->version);
    return 0;
}

static uint64_t s_assigned(fx_t *fx, const char *worker)
{
    reg_t r = {.worker = worker};
    assert_int_equal(ds_store_read(fx->s, s_read_assigned, &r), 0);
    assert_int_equal(r.rc, 0);
    return r.version;
}

static int s_read_worker(ds_txn_t *txn, void *ctx)
{
    reg_t *r = ctx;
    r->rc = ds_worker_state_get(txn, r->worker, r->arena, &r->w);
    return 0;
}

static uint64_t s_generation(fx_t *fx, const char *worker)
{
    reg_t r = {.worker = worker, .arena = ds_arena_new(1u << 16)};
    assert_non_null(r.arena);
    assert_int_equal(ds_store_read(fx->s, s_read_worker, &r), 0);
    assert_int_equal(r.rc, 0);
    uint64_t g = r.w.generation;
    ds_arena_destroy(&r.arena);
    return g;
}

/*  One round of the leader's controller, computed but not proposed: the
    stored record (in r), the observed workers, the decisions (in out)
    and the batch that borrows from both. */
typedef struct {
    read_t *r;
    ds_rollout_worker_t view[S_MAX_SIM];
    ds_rollout_decision_t *items;
    ds_rollout_out_t out;
    ds_rollout_batch_t batch;
} plan_t;

static plan_t *s_plan(fx_t *fx, sim_t *w, uint32_t n, uint64_t now)
{
    plan_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(p->r->rc, 0);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t assigned = s_assigned(fx, w[i].name);
        if (w[i].version != assigned) {
            w[i].version = assigned;
            w[i].healthy_since = now;
        }
        bool bad = assigned != 0 && assigned == w[i].bad_version;
        p->view[i] = (ds_rollout_worker_t){
            .name = (char *)w[i].name,
            .up = true,
            .up_since_ms = 1,
            .assigned = assigned,
            .version = assigned,
            .state = assigned ? DS_INST_RUNNING : DS_INST_STOPPED,
            .health = !assigned ? DS_HEALTH_UNKNOWN
                      : bad     ? DS_HEALTH_FAILING
                                : DS_HEALTH_PASSING,
            .healthy_since_ms = assigned && !bad ? w[i].healthy_since : 0,
        };
    }
    ds_rollout_input_t in = {.dep = &p->r->dep, .workers = p->view, .n_workers = n, .now_ms = now};
    uint32_t cap = DS_ROLLOUT_DECISIONS_CAP(n, p->r->dep.n_touched);
    p->items = calloc(cap, sizeof *p->items);
    assert_non_null(p->items);
    ds_rollout_out_init(&p->out, p->items, cap);
    char err[256];
    assert_int_equal(ds_rollout_step(&in, &p->out, err, sizeof err), 0);
    ds_rollout_batch_fill(&p->batch, &p->r->dep, &p->out);
    return p;
}

static void s_plan_free(plan_t *p)
{
    s_read_free(p->r);
    free(p->items);
    free(p);
}

/*  One leader round: plan and, if there are decisions, propose them as
    one DS_CMD_ROLLOUT by the controller. Returns the decision count. */
static uint32_t s_round(fx_t *fx, sim_t *w, uint32_t n, uint64_t now)
{
    plan_t *p = s_plan(fx, w, n, now);
    uint32_t decisions = p->out.n;
    if (decisions)
        assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, now, &p->batch), 0);
    s_plan_free(p);
    return decisions;
}

/*  Rounds every 5 s until the deployment is in `until` (bounded). */
static void s_drive(fx_t *fx, sim_t *w, uint32_t n, uint64_t *now, uint8_t until)
{
    for (int i = 0; i < 200 && s_dep_state(fx) != until; i++) {
        *now += 5000;
        (void)s_round(fx, w, n, *now);
    }
    assert_int_equal(s_dep_state(fx), until);
}

/* ---- tests ---- */

static void test_first_deploy_creates_service_and_v1(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t deploy_index = fx->index;

    read_t *r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->svc.name, S_SVC);
    assert_int_equal(r->svc.created_at_ms, 1000);
    assert_int_equal(r->svc.current_version, 1);
    assert_int_equal(r->svc.last_good_version, 0);
    s_read_free(r);

    r = s_read(fx, s_read_release, 1);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->rel.version, 1);
    assert_string_equal(r->rel.spec.artifact, "a1.tar.gz");
    assert_string_equal(r->rel.created_by, "alice");
    assert_int_equal(r->rel.created_at_ms, 1000);
    assert_string_equal(r->rel.outcome, "live");
    s_read_free(r);

    r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->dep.id, deploy_index);
    assert_int_equal(r->dep.version, 1);
    assert_int_equal(r->dep.prev_version, 0);
    assert_int_equal(r->dep.state, DS_ROLLOUT_PENDING);
    assert_int_equal(r->dep.started_at_ms, 1000);
    assert_int_equal(r->dep.strategy.max_parallel, 2);
    s_read_free(r);

    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.rows[0], "1|deploy|1|live|alice");
}

static void test_deploy_while_live_refused_and_changes_nothing(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    digest_t before = s_digest(fx);
    assert_int_equal(s_deploy(fx, "bob", 1, 2000, "a2.tar.gz", false), DS_ECONFLICT);
    s_assert_same(before, s_digest(fx));
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_PENDING);
}

static void test_forced_deploy_aborts_old_first(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    assert_int_equal(s_deploy(fx, "bob", 1, 2000, "a2.tar.gz", true), 0);

    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.rows[0], "1|deploy|1|live|alice");
    assert_string_equal(h.rows[1], "2|abort|1|aborted|bob");
    assert_string_equal(h.rows[2], "3|deploy|2|live|bob");

    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->dep.version, 2);
    assert_int_equal(r->dep.state, DS_ROLLOUT_PENDING);
    s_read_free(r);
}

static void test_versions_increase_and_releases_are_immutable(void **state)
{
    fx_t *fx = *state;
    const char *artifacts[] = {"a1.tar.gz", "a2.tar.gz", "a3.tar.gz"};
    for (uint64_t i = 0; i < 3; i++) {
        assert_int_equal(s_deploy(fx, "alice", i + 1, 1000 * (i + 1), artifacts[i], true), 0);
        read_t *r = s_read(fx, s_read_service, 0);
        assert_int_equal(r->svc.current_version, i + 1);
        s_read_free(r);
    }
    for (uint64_t v = 1; v <= 3; v++) {
        read_t *r = s_read(fx, s_read_release, v);
        assert_int_equal(r->rc, 0);
        assert_int_equal(r->rel.version, v);
        assert_string_equal(r->rel.spec.artifact, artifacts[v - 1]);
        assert_int_equal(r->rel.created_at_ms, 1000 * v);
        s_read_free(r);
    }
    read_t *r = s_read(fx, s_read_release, 4);
    assert_int_equal(r->rc, DS_ENOTFOUND);
    s_read_free(r);
}

static void test_invalid_spec_refused_and_changes_nothing(void **state)
{
    fx_t *fx = *state;
    ds_deploy_req_t req = {.service = S_SVC};
    s_spec(&req.spec, "a1.tar.gz");
    req.spec.command = ""; /* a release must run something */
    assert_int_equal(s_apply(fx, DS_CMD_DEPLOY, "alice", 1, 1000, &req), DS_EINVAL);
    read_t *r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->rc, DS_ENOTFOUND);
    s_read_free(r);

    assert_int_equal(s_deploy(fx, "alice", 2, 2000, "a1.tar.gz", false), 0);
    digest_t before = s_digest(fx);
    req.force = true;
    assert_int_equal(s_apply(fx, DS_CMD_DEPLOY, "alice", 3, 3000, &req), DS_EINVAL);
    s_assert_same(before, s_digest(fx));
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_PENDING);
}

static void test_promote_with_nothing_to_promote_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_op(fx, DS_CMD_PROMOTE, S_SVC, 0, "bob", 1, 500), DS_ENOTFOUND);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    digest_t before = s_digest(fx);
    assert_int_equal(s_op(fx, DS_CMD_PROMOTE, S_SVC, 0, "bob", 2, 2000), DS_ESTATE);
    s_assert_same(before, s_digest(fx));

    s_force_state(fx, DS_ROLLOUT_CANARY_PASSED);
    assert_int_equal(s_op(fx, DS_CMD_PROMOTE, S_SVC, 0, "bob", 3, 3000), 0);
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_PROMOTING);
    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.rows[1], "2|promote|1|live|bob");

    before = s_digest(fx);
    assert_int_equal(s_op(fx, DS_CMD_PROMOTE, S_SVC, 0, "bob", 4, 4000), DS_ESTATE);
    s_assert_same(before, s_digest(fx));
}

static void test_pause_and_resume(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    s_force_state(fx, DS_ROLLOUT_BAKING);
    assert_int_equal(s_op(fx, DS_CMD_PAUSE, S_SVC, 0, "bob", 1, 2000), 0);
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_PAUSED);

    digest_t before = s_digest(fx);
    assert_int_equal(s_op(fx, DS_CMD_PAUSE, S_SVC, 0, "bob", 2, 3000), DS_ESTATE);
    s_assert_same(before, s_digest(fx));

    /* A paused deployment is still live: a deploy is refused. */
    assert_int_equal(s_deploy(fx, "carol", 1, 3500, "a2.tar.gz", false), DS_ECONFLICT);

    assert_int_equal(s_op(fx, DS_CMD_RESUME, S_SVC, 0, "bob", 3, 4000), 0);
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_BAKING);
    assert_int_equal(s_op(fx, DS_CMD_RESUME, S_SVC, 0, "bob", 4, 5000), DS_ESTATE);

    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.rows[1], "2|pause|1|live|bob");
    assert_string_equal(h.rows[2], "3|resume|1|live|bob");
}

static void test_rollback_to_missing_version_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 1, "bob", 1, 500), DS_ENOTFOUND);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    digest_t before = s_digest(fx);
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 7, "bob", 2, 2000), DS_ENOTFOUND);
    /* Nothing has succeeded yet: there is no last good release. */
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 0, "bob", 3, 3000), DS_ENOTFOUND);
    /* Version 1 is the current one. */
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 1, "bob", 4, 4000), DS_ESTATE);
    s_assert_same(before, s_digest(fx));
}

static void test_rollback_to_last_good_records_deployment(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t now = 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    hist_t h;
    s_history(fx, &h);
    int before = h.n;
    /* A succeeded deployment is not live: no force needed. */
    assert_int_equal(s_deploy(fx, "alice", 2, now + 1000, "a2.tar.gz", false), 0);
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.version, 2);
    assert_int_equal(r->dep.prev_version, 1);
    s_read_free(r);

    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 0, "bob", 1, now + 2000), 0);
    uint64_t rollback_index = fx->index;
    r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.id, rollback_index);
    assert_int_equal(r->dep.version, 1);
    assert_int_equal(r->dep.prev_version, 2);
    assert_int_equal(r->dep.state, DS_ROLLOUT_PENDING);
    s_read_free(r);
    r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->svc.current_version, 1);
    assert_int_equal(r->svc.last_good_version, 1);
    s_read_free(r);

    s_history(fx, &h);
    assert_int_equal(h.n, before + 3);
    char row[160];
    assert_string_equal(h.rows[0], "1|deploy|1|live|alice");
    snprintf(row, sizeof row, "%d|deploy|2|live|alice", before + 1);
    assert_string_equal(h.rows[before], row);
    snprintf(row, sizeof row, "%d|abort|2|aborted|bob", before + 2);
    assert_string_equal(h.rows[before + 1], row);
    snprintf(row, sizeof row, "%d|rollback|1|live|bob", before + 3);
    assert_string_equal(h.rows[before + 2], row);

    /* No new release: a rollback redeploys an existing one. */
    r = s_read(fx, s_read_release, 3);
    assert_int_equal(r->rc, DS_ENOTFOUND);
    s_read_free(r);
}

static void test_rollback_without_version_goes_to_the_previous_good_release(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    uint64_t now = 1000;
    assert_int_equal(s_deploy(fx, "alice", 1, now, "a1.tar.gz", false), 0);
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    assert_int_equal(s_deploy(fx, "alice", 2, now + 1000, "a2.tar.gz", false), 0);
    now += 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    /* On the last good release (2): back to the one before it that succeeded. */
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 0, "bob", 1, now + 1000), 0);
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.version, 1);
    assert_int_equal(r->dep.prev_version, 2);
    s_read_free(r);
    now += 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    /* Back on 1: nothing before it succeeded, so nothing changes. */
    digest_t before = s_digest(fx);
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 0, "bob", 2, now + 1000), DS_ENOTFOUND);
    s_assert_same(before, s_digest(fx));
}

static void test_rollback_promotes_by_itself_even_without_auto_promote(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    uint64_t now = 1000;
    ds_deploy_req_t req = {.service = S_SVC};
    s_spec(&req.spec, "a1.tar.gz");
    req.spec.strategy.auto_promote = false;
    assert_int_equal(s_apply(fx, DS_CMD_DEPLOY, "alice", 1, now, &req), 0);
    s_drive(fx, w, 2, &now, DS_ROLLOUT_CANARY_PASSED);
    assert_int_equal(s_op(fx, DS_CMD_PROMOTE, S_SVC, 0, "alice", 2, now), 0);
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    assert_int_equal(s_deploy(fx, "alice", 3, now + 1000, "a2.tar.gz", false), 0);
    now += 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    assert_int_equal(s_op(fx, DS_CMD_ROLLBACK, S_SVC, 1, "bob", 1, now + 1000), 0);
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.version, 1);
    assert_true(r->dep.strategy.auto_promote);
    s_read_free(r);
    now += 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
}

static void test_history_in_order_with_client_as_by(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    assert_int_equal(s_op(fx, DS_CMD_PAUSE, S_SVC, 0, "bob", 1, 2000), 0);
    assert_int_equal(s_op(fx, DS_CMD_RESUME, S_SVC, 0, "carol", 1, 3000), 0);
    assert_int_equal(s_op(fx, DS_CMD_ABORT, S_SVC, 0, "dave", 1, 4000), 0);
    assert_int_equal(s_op(fx, DS_CMD_ABORT, S_SVC, 0, "dave", 2, 5000), DS_ESTATE);
    assert_int_equal(s_deploy(fx, "erin", 1, 6000, "a2.tar.gz", false), 0);

    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 5);
    assert_string_equal(h.rows[0], "1|deploy|1|live|alice");
    assert_string_equal(h.rows[1], "2|pause|1|live|bob");
    assert_string_equal(h.rows[2], "3|resume|1|live|carol");
    assert_string_equal(h.rows[3], "4|abort|1|aborted|dave");
    assert_string_equal(h.rows[4], "5|deploy|2|live|erin");
    const uint64_t ts[] = {1000, 2000, 3000, 4000, 6000};
    for (int i = 0; i < 5; i++)
        assert_int_equal(h.ts[i], ts[i]);
}

static void test_retried_command_applies_once(void **state)
{
    fx_t *fx = *state;
    ds_deploy_req_t req = {.service = S_SVC};
    s_spec(&req.spec, "a1.tar.gz");
    ds_buf_t buf = {0};
    assert_int_equal(ds_fsm_encode(DS_CMD_DEPLOY, "alice", 7, 1000, &req, &buf, NULL), 0);
    assert_int_equal(s_apply_bytes(fx, &buf), 0);
    digest_t before = s_digest(fx);
    assert_int_equal(s_apply_bytes(fx, &buf), 0); /* answered from the session */
    ds_buf_free(&buf);
    s_assert_same(before, s_digest(fx));

    /* A refused request stays refused when retried, even after what
       refused it has gone: the session records the refusal. */
    assert_int_equal(s_deploy(fx, "alice", 8, 2000, "a2.tar.gz", false), DS_ECONFLICT);
    s_assert_same(before, s_digest(fx));
    assert_int_equal(s_op(fx, DS_CMD_ABORT, S_SVC, 0, "bob", 1, 2500), 0);
    assert_int_equal(s_deploy(fx, "alice", 8, 2000, "a2.tar.gz", false), DS_ECONFLICT);

    hist_t h;
    s_history(fx, &h);
    assert_int_equal(h.n, 2); /* deploy, abort: the retry deployed nothing */
}

/* ---- the controller's batches (DS_CMD_ROLLOUT) ---- */

static void test_rollout_batches_from_step_reach_success(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}, {.name = "w3"}};
    s_join_workers(fx, w, 3, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t dep_id = fx->index;

    /* The first round starts the canary: one transition, nothing assigned. */
    uint64_t now = 2000;
    assert_int_not_equal(s_round(fx, w, 3, now), 0);
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_CANARY);
    s_drive(fx, w, 3, &now, DS_ROLLOUT_SUCCEEDED);

    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(s_assigned(fx, w[i].name), 1);
        assert_int_equal(s_generation(fx, w[i].name), 2); /* one change each */
    }
    read_t *r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->svc.current_version, 1);
    assert_int_equal(r->svc.last_good_version, 1);
    s_read_free(r);
    r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.id, dep_id);
    assert_int_equal(r->dep.n_touched, 3);
    s_read_free(r);

    /* Every controller row is by "", named after the state it entered. */
    hist_t h;
    s_history(fx, &h);
    assert_true(h.n >= 4);
    assert_string_equal(h.rows[0], "1|deploy|1|live|alice");
    assert_string_equal(h.rows[1], "2|canary|1|live|");
    assert_string_equal(h.rows[2], "3|baking|1|live|");
    for (int i = 1; i < h.n; i++)
        assert_true(h.rows[i][strlen(h.rows[i]) - 1] == '|');
    char last[160];
    snprintf(last, sizeof last, "%d|succeeded|1|succeeded|", h.n);
    assert_string_equal(h.rows[h.n - 1], last);

    /* Applied: the next round decides nothing. */
    assert_int_equal(s_round(fx, w, 3, now + 5000), 0);
}

static void test_failed_rollout_rolls_back_and_service_follows(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1", .bad_version = 2},
                 {.name = "w2", .bad_version = 2},
                 {.name = "w3", .bad_version = 2}};
    s_join_workers(fx, w, 3, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t now = 1000;
    s_drive(fx, w, 3, &now, DS_ROLLOUT_SUCCEEDED);

    assert_int_equal(s_deploy(fx, "alice", 2, now, "a2.tar.gz", false), 0);
    s_drive(fx, w, 3, &now, DS_ROLLOUT_ROLLING_BACK);
    read_t *r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->svc.current_version, 1); /* desired is the old release again */
    assert_int_equal(r->svc.last_good_version, 1);
    s_read_free(r);
    r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.version, 2);
    assert_int_equal(r->dep.prev_version, 1);
    for (uint32_t i = 0; i < r->dep.n_touched; i++)
        assert_int_equal(s_assigned(fx, r->dep.touched[i].worker), 1);
    s_read_free(r);

    s_drive(fx, w, 3, &now, DS_ROLLOUT_ROLLED_BACK);
    r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->svc.current_version, 1);
    assert_int_equal(r->svc.last_good_version, 1);
    s_read_free(r);
    for (uint32_t i = 0; i < 3; i++)
        assert_int_equal(s_assigned(fx, w[i].name), 1);

    hist_t h;
    s_history(fx, &h);
    bool failed = false, rolling = false;
    for (int i = 0; i < h.n; i++) {
        failed = failed || strstr(h.rows[i], "|failed|2|live|") != NULL;
        rolling = rolling || strstr(h.rows[i], "|rolling_back|2|live|") != NULL;
    }
    assert_true(failed);
    assert_true(rolling);
    assert_non_null(strstr(h.rows[h.n - 1], "|rolled_back|2|rolled_back|"));

    /* The next deploy starts from the last good release. */
    assert_int_equal(s_deploy(fx, "alice", 3, now + 1000, "a3.tar.gz", false), 0);
    r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->dep.version, 3);
    assert_int_equal(r->dep.prev_version, 1);
    s_read_free(r);
}

static void test_stale_batch_refused_and_changes_nothing(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t now = 2000;
    assert_int_not_equal(s_round(fx, w, 2, now), 0); /* canary */

    /* An admin pauses the deployment between the plan and its commit. */
    plan_t *p = s_plan(fx, w, 2, now + 5000);
    assert_int_not_equal(p->out.n, 0);
    assert_int_equal(s_op(fx, DS_CMD_PAUSE, S_SVC, 0, "bob", 1, now + 5000), 0);
    digest_t before = s_digest(fx);
    assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, now + 5000, &p->batch), DS_ECONFLICT);
    s_assert_same(before, s_digest(fx));
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_PAUSED);

    /* Another deployment id with the same state: refused too. */
    p->batch.from_state = DS_ROLLOUT_PAUSED;
    p->batch.deployment_id++;
    assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, now + 5000, &p->batch), DS_ECONFLICT);
    s_assert_same(before, s_digest(fx));
    s_plan_free(p);

    /* A batch of a deployment that a forced deploy replaced. */
    assert_int_equal(s_op(fx, DS_CMD_RESUME, S_SVC, 0, "bob", 2, now + 6000), 0);
    p = s_plan(fx, w, 2, now + 7000);
    assert_int_not_equal(p->out.n, 0);
    assert_int_equal(s_deploy(fx, "carol", 1, now + 7000, "a2.tar.gz", true), 0);
    before = s_digest(fx);
    assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, now + 7000, &p->batch), DS_ECONFLICT);
    s_assert_same(before, s_digest(fx));
    s_plan_free(p);
}

/*  A batch built by hand on the stored record, as the leader builds one
    for a worker that joined after the deployment ended. */
static int s_assign_batch(fx_t *fx, const char *service, const char *worker, uint64_t version)
{
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->rc, 0);
    ds_rollout_decision_t d = {.kind = DS_ROLLOUT_ASSIGN,
                               .at_ms = 90000,
                               .worker = (char *)worker,
                               .version = version,
                               .reason = ""};
    ds_rollout_batch_t b = {.service = (char *)service,
                            .deployment_id = r->dep.id,
                            .from_state = r->dep.state,
                            .from_wave = r->dep.wave,
                            .from_progress_at_ms = r->dep.progress_at_ms,
                            .n_decisions = 1,
                            .decisions = &d};
    int rc = s_apply(fx, DS_CMD_ROLLOUT, "", 0, 90000, &b);
    s_read_free(r);
    return rc;
}

static uint32_t s_touched(fx_t *fx)
{
    read_t *r = s_read(fx, s_read_deployment, 0);
    uint32_t n = r->dep.n_touched;
    s_read_free(r);
    return n;
}

static void test_assign_only_batch_for_finished_deployment(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t now = 1000;
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);
    assert_int_equal(s_deploy(fx, "alice", 2, now, "a2.tar.gz", false), 0);
    s_drive(fx, w, 2, &now, DS_ROLLOUT_SUCCEEDED);

    sim_t late[] = {{.name = "w9"}};
    s_join_workers(fx, late, 1, now);
    hist_t h;
    s_history(fx, &h);
    int rows = h.n;

    /* Another version than the deployment's: assigned, not touched. */
    assert_int_equal(s_assign_batch(fx, S_SVC, "w9", 1), 0);
    assert_int_equal(s_assigned(fx, "w9"), 1);
    assert_int_equal(s_touched(fx), 2);
    /* The deployment's version: assigned and touched. */
    assert_int_equal(s_assign_batch(fx, S_SVC, "w9", 2), 0);
    assert_int_equal(s_assigned(fx, "w9"), 2);
    assert_int_equal(s_generation(fx, "w9"), 3);
    assert_int_equal(s_touched(fx), 3);
    assert_int_equal(s_dep_state(fx), DS_ROLLOUT_SUCCEEDED);
    s_history(fx, &h);
    assert_int_equal(h.n, rows); /* assignments are not history */
    read_t *r = s_read(fx, s_read_service, 0);
    assert_int_equal(r->svc.current_version, 2);
    assert_int_equal(r->svc.last_good_version, 2);
    s_read_free(r);
}

static void test_bad_batches_refused_and_change_nothing(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}};
    s_join_workers(fx, w, 1, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    digest_t before = s_digest(fx);

    /* A service with no record, a version that is not a release, a
       decision naming no worker. */
    assert_int_equal(s_assign_batch(fx, "ghost", "w1", 1), DS_ENOTFOUND);
    assert_int_equal(s_assign_batch(fx, S_SVC, "w1", 9), DS_EINVAL);
    assert_int_equal(s_assign_batch(fx, S_SVC, "", 1), DS_EINVAL);
    s_assert_same(before, s_digest(fx));

    /* A worker that is not registered (any more) is skipped; the record
       still counts it as touched. */
    assert_int_equal(s_assign_batch(fx, S_SVC, "gone", 1), 0);
    assert_int_equal(s_touched(fx), 1);
    assert_int_equal(s_assigned(fx, "w1"), 0);
    reg_t reg = {.worker = "gone", .arena = ds_arena_new(1u << 16)};
    assert_non_null(reg.arena);
    assert_int_equal(ds_store_read(fx->s, s_read_worker, &reg), 0);
    assert_int_equal(reg.rc, DS_ENOTFOUND);
    ds_arena_destroy(&reg.arena);
}

static void test_batch_touching_too_many_workers_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    read_t *r = s_read(fx, s_read_deployment, 0);
    assert_int_equal(r->rc, 0);
    uint32_t n = DS_MAX_WORKERS + 1;
    ds_rollout_decision_t *d = calloc(n, sizeof *d);
    char(*names)[8] = calloc(n, sizeof *names);
    assert_non_null(d);
    assert_non_null(names);
    for (uint32_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "x%05u", i);
        d[i] = (ds_rollout_decision_t){
            .kind = DS_ROLLOUT_ASSIGN, .worker = names[i], .version = 1, .reason = ""};
    }
    ds_rollout_batch_t b = {.service = S_SVC,
                            .deployment_id = r->dep.id,
                            .from_state = r->dep.state,
                            .from_wave = r->dep.wave,
                            .from_progress_at_ms = r->dep.progress_at_ms,
                            .n_decisions = n - 1,
                            .decisions = d};
    /* Every worker the cluster can have: fine (none is registered, so
       nothing is assigned, but each counts as touched). */
    assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, 2000, &b), 0);
    assert_int_equal(s_touched(fx), DS_MAX_WORKERS);
    /* One more is a refusal, not a storage failure: the member goes on. */
    b.n_decisions = 1;
    b.decisions = &d[n - 1];
    digest_t before = s_digest(fx);
    assert_int_equal(s_apply(fx, DS_CMD_ROLLOUT, "", 0, 3000, &b), DS_EINVAL);
    s_assert_same(before, s_digest(fx));
    free(names);
    free(d);
    s_read_free(r);
}

static void test_rollout_batch_with_session_applies_once(void **state)
{
    fx_t *fx = *state;
    sim_t w[] = {{.name = "w1"}, {.name = "w2"}};
    s_join_workers(fx, w, 2, 500);
    assert_int_equal(s_deploy(fx, "alice", 1, 1000, "a1.tar.gz", false), 0);
    uint64_t now = 2000;
    assert_int_not_equal(s_round(fx, w, 2, now), 0); /* canary */

    plan_t *p = s_plan(fx, w, 2, now + 5000); /* assigns the canary */
    assert_int_not_equal(p->out.n, 0);
    ds_buf_t buf = {0};
    assert_int_equal(
        ds_fsm_encode(DS_CMD_ROLLOUT, "leader-1", 5, now + 5000, &p->batch, &buf, NULL), 0);
    s_plan_free(p);
    assert_int_equal(s_apply_bytes(fx, &buf), 0);
    digest_t once = s_digest(fx);
    uint64_t g1 = s_generation(fx, "w1"), g2 = s_generation(fx, "w2");
    assert_int_equal(g1 + g2, 3); /* one canary assigned */

    /* The retry is answered from the session: 0 again, nothing applied
       (without the session the batch would be stale, DS_ECONFLICT). */
    assert_int_equal(s_apply_bytes(fx, &buf), 0);
    ds_buf_free(&buf);
    s_assert_same(once, s_digest(fx));
    assert_int_equal(s_generation(fx, "w1"), g1);
    assert_int_equal(s_generation(fx, "w2"), g2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_deploy_creates_service_and_v1, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_deploy_while_live_refused_and_changes_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_forced_deploy_aborts_old_first, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_versions_increase_and_releases_are_immutable, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_spec_refused_and_changes_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_promote_with_nothing_to_promote_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_pause_and_resume, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollback_without_version_goes_to_the_previous_good_release, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_promotes_by_itself_even_without_auto_promote,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_to_missing_version_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_to_last_good_records_deployment, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_history_in_order_with_client_as_by, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_retried_command_applies_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rollout_batches_from_step_reach_success, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_rollout_rolls_back_and_service_follows, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_stale_batch_refused_and_changes_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_assign_only_batch_for_finished_deployment, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_batches_refused_and_change_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_touching_too_many_workers_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rollout_batch_with_session_applies_once, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
