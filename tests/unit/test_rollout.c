/*  tests/unit/test_rollout.c - the deployment controller, driven with a
    simulated clock and simulated workers through every transition: canary
    picks, bake, waves, promote, pause/resume/abort, failures by health,
    deadlines and analysis, rollback, down workers, idempotence, a leader
    failover through the codec, and seeded random runs that check the
    invariants after every call. */
#include "coordinator/rollout.h"

#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/error.h"
#include "protocol/messages.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_SIM  16
#define OLD      3u
#define NEW      4u
#define BAKE     30000u
#define HEALTHY  60000u
#define PROGRESS 120000u
#define CAP      DS_ROLLOUT_DECISIONS_CAP(MAX_SIM, MAX_SIM)

typedef enum { GOOD, BAD, SLOW } behaviour_t;

/*  A worker as the simulation sees it: what it is assigned and what it
    runs. It starts what it is assigned on the next sim_tick(). */
typedef struct {
    char name[16];
    bool up;
    uint64_t up_since;
    uint64_t assigned;
    uint64_t version;
    uint8_t state;
    uint8_t health;
    uint64_t healthy_since;
    behaviour_t behaviour; /* of the new version */
    const char *reason;    /* the instance's account of a failure */
} sim_worker_t;

typedef struct {
    ds_deployment_t dep;
    ds_arena_t *arena;
    sim_worker_t w[MAX_SIM];
    uint32_t n;
    ds_rollout_worker_t view[MAX_SIM];
    ds_rollout_input_t in;
    ds_rollout_decision_t items[CAP];
    ds_rollout_out_t out;
    uint64_t now;
    char err[512];
} fx_t;

/* ---- fixture ------------------------------------------------------ */

static ds_strategy_t s_strategy(uint32_t canary, bool canary_pct, uint32_t wave, bool wave_pct,
                                bool auto_promote, bool auto_revert)
{
    return (ds_strategy_t){.canary = canary,
                           .canary_percent = canary_pct,
                           .max_parallel = wave,
                           .max_parallel_percent = wave_pct,
                           .bake_ms = BAKE,
                           .healthy_deadline_ms = HEALTHY,
                           .progress_deadline_ms = PROGRESS,
                           .auto_promote = auto_promote,
                           .auto_revert = auto_revert};
}

/*  n workers w01..wNN, all up, assigned and running OLD, healthy. */
static fx_t *s_fx_new(uint32_t n, ds_strategy_t strategy)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->arena = ds_arena_new(4u << 20);
    assert_non_null(fx->arena);
    fx->n = n;
    for (uint32_t i = 0; i < n; i++) {
        sim_worker_t *w = &fx->w[i];
        *w = (sim_worker_t){.up = true,
                            .up_since = 1,
                            .assigned = OLD,
                            .version = OLD,
                            .state = DS_INST_RUNNING,
                            .health = DS_HEALTH_PASSING,
                            .healthy_since = 1,
                            .behaviour = GOOD};
        snprintf(w->name, sizeof w->name, "w%02u", i + 1);
    }
    fx->now = 1000;
    ds_rollout_init(&fx->dep, 7, "churn", NEW, OLD, &strategy, fx->now);
    ds_rollout_out_init(&fx->out, fx->items, CAP);
    return fx;
}

static void s_fx_free(fx_t *fx)
{
    ds_arena_destroy(&fx->arena);
    free(fx);
}

static sim_worker_t *s_sim(fx_t *fx, const char *name)
{
    for (uint32_t i = 0; i < fx->n; i++)
        if (strcmp(fx->w[i].name, name) == 0)
            return &fx->w[i];
    return NULL;
}

static const ds_rollout_input_t *s_input(fx_t *fx)
{
    for (uint32_t i = 0; i < fx->n; i++) {
        const sim_worker_t *w = &fx->w[i];
        fx->view[i] = (ds_rollout_worker_t){.name = fx->w[i].name,
                                            .up = w->up,
                                            .up_since_ms = w->up_since,
                                            .assigned = w->assigned,
                                            .version = w->version,
                                            .state = w->state,
                                            .health = w->health,
                                            .healthy_since_ms = w->healthy_since,
                                            .reason = w->reason};
    }
    fx->in.dep = &fx->dep;
    fx->in.workers = fx->view;
    fx->in.n_workers = fx->n;
    fx->in.now_ms = fx->now;
    return &fx->in;
}

/*  Workers that are up start what they are assigned. */
static void s_sim_tick(fx_t *fx)
{
    for (uint32_t i = 0; i < fx->n; i++) {
        sim_worker_t *w = &fx->w[i];
        if (!w->up || w->version == w->assigned)
            continue;
        w->version = w->assigned;
        behaviour_t b = w->version == NEW ? w->behaviour : GOOD;
        w->state = b == SLOW ? DS_INST_STARTING : DS_INST_RUNNING;
        w->health = b == GOOD  ? DS_HEALTH_PASSING
                    : b == BAD ? DS_HEALTH_FAILING
                               : DS_HEALTH_UNKNOWN;
        w->healthy_since = b == GOOD ? fx->now : 0;
    }
}

static void s_set_health(fx_t *fx, const char *name, uint8_t health)
{
    sim_worker_t *w = s_sim(fx, name);
    assert_non_null(w);
    w->health = health;
    w->state = DS_INST_RUNNING;
    w->healthy_since = health == DS_HEALTH_PASSING ? fx->now : 0;
}

/*  Applies out's decisions to the record (through a batch, as every
    member would) and the assignments to the simulated workers. */
static void s_apply(fx_t *fx, const ds_deployment_t *from)
{
    ds_rollout_batch_t batch;
    ds_rollout_batch_fill(&batch, from, &fx->out);
    assert_int_equal(ds_rollout_apply_batch(&fx->dep, &batch, fx->arena), 0);
    for (uint32_t i = 0; i < fx->out.n; i++) {
        const ds_rollout_decision_t *d = &fx->out.items[i];
        sim_worker_t *w = d->kind == DS_ROLLOUT_ASSIGN ? s_sim(fx, d->worker) : NULL;
        if (w)
            w->assigned = d->version;
    }
}

/*  One leader round at fx->now: step, apply. Returns the decision count. */
static uint32_t s_step(fx_t *fx)
{
    ds_deployment_t before = fx->dep;
    int rc = ds_rollout_step(s_input(fx), &fx->out, fx->err, sizeof fx->err);
    if (rc)
        fail_msg("step: %s", fx->err);
    s_apply(fx, &before);
    return fx->out.n;
}

/*  Advances the clock by `ms` in ticks of 1 s: workers act, leader steps. */
static void s_run(fx_t *fx, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 1000) {
        fx->now += 1000;
        s_sim_tick(fx);
        (void)s_step(fx);
    }
}

static uint32_t s_count_assigned(const fx_t *fx, uint64_t version)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < fx->n; i++)
        n += fx->w[i].assigned == version;
    return n;
}

static const ds_rollout_decision_t *s_find(const fx_t *fx, uint8_t kind, uint8_t state)
{
    for (uint32_t i = 0; i < fx->out.n; i++) {
        const ds_rollout_decision_t *d = &fx->out.items[i];
        if (d->kind == kind && (kind != DS_ROLLOUT_TRANSITION || d->state == state))
            return d;
    }
    return NULL;
}

static void s_assert_state(const fx_t *fx, int state)
{
    if (fx->dep.state != state)
        fail_msg("state is %s, expected %s (reason: %s)", ds_rollout_state_name(fx->dep.state),
                 ds_rollout_state_name(state), fx->dep.reason);
}

/*  Drives a fresh deployment until the canary is baking. */
static void s_to_baking(fx_t *fx)
{
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_CANARY);
    s_run(fx, 1000);
    s_assert_state(fx, DS_ROLLOUT_BAKING);
}

/* ---- canary ------------------------------------------------------- */

static void test_canary_gets_new_version_first(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(5, s_strategy(1, false, 2, false, true, true));
    assert_int_equal(s_step(fx), 2);
    const ds_rollout_decision_t *t = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_CANARY);
    assert_non_null(t);
    assert_non_null(strstr(t->reason, "canary of version 4 on 1 of 5"));
    const ds_rollout_decision_t *a = s_find(fx, DS_ROLLOUT_ASSIGN, 0);
    assert_string_equal(a->worker, "w01");
    assert_int_equal(a->version, NEW);
    assert_int_equal(a->wave, 0);
    assert_int_equal(s_count_assigned(fx, NEW), 1);
    assert_int_equal(fx->dep.n_touched, 1);
    assert_string_equal(fx->dep.touched[0].worker, "w01");
    /* Nothing else happens while the canary starts. */
    assert_int_equal(s_step(fx), 0);
    fx->now += 500;
    assert_int_equal(s_step(fx), 0);
    assert_int_equal(s_count_assigned(fx, NEW), 1);
    s_fx_free(fx);
}

static void test_canary_percent_rounds_up(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(7, s_strategy(20, true, 1, false, true, true)); /* 1.4 -> 2 */
    (void)s_step(fx);
    assert_int_equal(s_count_assigned(fx, NEW), 2);
    assert_int_equal(s_sim(fx, "w01")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w02")->assigned, NEW);
    s_fx_free(fx);

    fx = s_fx_new(10, s_strategy(1, true, 1, false, true, true)); /* 0.1 -> at least 1 */
    (void)s_step(fx);
    assert_int_equal(s_count_assigned(fx, NEW), 1);
    s_fx_free(fx);

    fx = s_fx_new(3, s_strategy(100, true, 1, false, true, true)); /* all of them */
    (void)s_step(fx);
    assert_int_equal(s_count_assigned(fx, NEW), 3);
    s_fx_free(fx);
}

static void test_bake_requires_continuous_health(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    uint64_t healthy_at = s_sim(fx, "w01")->healthy_since;
    /* Healthy, but not yet for the whole bake. */
    fx->now = healthy_at + BAKE - 1000;
    assert_int_equal(s_step(fx), 0);
    /* A flap to unknown (no failure) restarts the bake. */
    s_set_health(fx, "w01", DS_HEALTH_UNKNOWN);
    assert_int_equal(s_step(fx), 0);
    s_assert_state(fx, DS_ROLLOUT_BAKING);
    fx->now += 1000;
    s_set_health(fx, "w01", DS_HEALTH_PASSING);
    uint64_t again = fx->now;
    fx->now = healthy_at + BAKE + 5000; /* the first bake would be over */
    assert_int_equal(s_step(fx), 0);
    s_assert_state(fx, DS_ROLLOUT_BAKING);
    fx->now = again + BAKE - 1;
    assert_int_equal(s_step(fx), 0);
    fx->now = again + BAKE;
    assert_true(s_step(fx) > 0);
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    assert_int_equal(fx->dep.wave, 1);
    s_fx_free(fx);
}

/* ---- after the end ------------------------------------------------ */

/*  A succeeded deployment keeps the selected workers on its version: a
    worker that joins later (assigned nothing) gets it once it is up;
    a down worker waits; a live deployment is left to ds_rollout_step. */
static void test_converge_assigns_the_current_release_to_late_workers(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 2, false, true, true));
    ds_rollout_converge(s_input(fx), &fx->out);
    assert_int_equal(fx->out.n, 0); /* pending: not converge's business */
    s_run(fx, 10 * PROGRESS);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    ds_rollout_converge(s_input(fx), &fx->out);
    assert_int_equal(fx->out.n, 0); /* everyone is on it */
    s_sim(fx, "w02")->assigned = 0; /* as a worker that joined after the end */
    s_sim(fx, "w03")->assigned = 0;
    s_sim(fx, "w03")->up = false;
    ds_rollout_converge(s_input(fx), &fx->out);
    assert_int_equal(fx->out.n, 1);
    assert_int_equal(fx->out.items[0].kind, DS_ROLLOUT_ASSIGN);
    assert_string_equal(fx->out.items[0].worker, "w02");
    assert_int_equal(fx->out.items[0].version, NEW);
    s_fx_free(fx);
}

/* ---- waves -------------------------------------------------------- */

static void test_auto_promote_runs_waves_in_order(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(7, s_strategy(1, false, 2, false, true, true));
    const char *order[7];
    uint32_t waves[7], n = 0;
    (void)s_step(fx);
    for (int round = 0; round < 200 && fx->dep.state != DS_ROLLOUT_SUCCEEDED; round++) {
        for (uint32_t i = 0; i < fx->out.n; i++)
            if (fx->out.items[i].kind == DS_ROLLOUT_ASSIGN) {
                assert_true(n < 7);
                order[n] = fx->out.items[i].worker;
                waves[n++] = fx->out.items[i].wave;
            }
        fx->now += 1000;
        s_sim_tick(fx);
        (void)s_step(fx);
        if (fx->dep.state == DS_ROLLOUT_SUCCEEDED)
            break;
    }
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    assert_int_equal(n, 7);
    const char *want[] = {"w01", "w02", "w03", "w04", "w05", "w06", "w07"};
    const uint32_t want_wave[] = {0, 1, 1, 2, 2, 3, 3};
    for (uint32_t i = 0; i < 7; i++) {
        assert_string_equal(order[i], want[i]);
        assert_int_equal(waves[i], want_wave[i]);
    }
    assert_int_equal(s_count_assigned(fx, NEW), 7);
    assert_int_equal(fx->dep.wave, 3);
    assert_int_equal(s_step(fx), 0);
    s_fx_free(fx);
}

static void test_wave_waits_until_previous_wave_healthy(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(5, s_strategy(1, false, 2, false, true, true));
    s_sim(fx, "w02")->behaviour = SLOW; /* wave 1: w02, w03 */
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    assert_int_equal(fx->dep.wave, 1);
    s_run(fx, 20000); /* w02 still starting, within its healthy deadline */
    assert_int_equal(fx->dep.wave, 1);
    assert_int_equal(s_count_assigned(fx, NEW), 3);
    assert_int_equal(s_sim(fx, "w04")->assigned, OLD);
    s_set_health(fx, "w02", DS_HEALTH_PASSING);
    (void)s_step(fx);
    assert_int_equal(fx->dep.wave, 2);
    assert_int_equal(s_sim(fx, "w04")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w05")->assigned, NEW);
    s_fx_free(fx);
}

static void test_without_auto_promote_waits_for_promote(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, false, true));
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_CANARY_PASSED);
    assert_non_null(strstr(fx->dep.reason, "waiting for promote"));
    /* No deadline while a person decides. */
    s_run(fx, 10 * PROGRESS);
    s_assert_state(fx, DS_ROLLOUT_CANARY_PASSED);
    assert_int_equal(s_count_assigned(fx, NEW), 1);

    ds_deployment_t before = fx->dep;
    assert_int_equal(ds_rollout_promote(s_input(fx), "alice", &fx->out, fx->err, sizeof fx->err),
                     0);
    assert_int_equal(fx->out.n, 1);
    assert_non_null(strstr(fx->out.items[0].reason, "promoted by alice"));
    s_apply(fx, &before);
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    (void)s_step(fx);
    assert_int_equal(fx->dep.wave, 1);
    assert_int_equal(s_sim(fx, "w02")->assigned, NEW);
    s_run(fx, 5000);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    s_fx_free(fx);
}

/* ---- failures ----------------------------------------------------- */

static void test_unhealthy_canary_fails_and_reverts(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(4, s_strategy(2, false, 1, false, true, true));
    s_sim(fx, "w02")->behaviour = BAD;
    (void)s_step(fx);
    fx->now += 1000;
    s_sim_tick(fx);
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    const ds_rollout_decision_t *f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "w02 (canary) health check is failing"));
    assert_non_null(s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_ROLLING_BACK));
    assert_int_equal(s_count_assigned(fx, NEW), 0);
    assert_int_equal(s_sim(fx, "w01")->assigned, OLD);
    assert_int_equal(s_sim(fx, "w02")->assigned, OLD);
    /* Rolled back only once the touched workers run the old version. */
    assert_int_equal(s_step(fx), 0);
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    fx->now += 1000;
    s_sim_tick(fx);
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLED_BACK);
    assert_non_null(strstr(fx->dep.reason, "runs version 3 again"));
    assert_false(ds_rollout_is_live(&fx->dep));
    s_fx_free(fx);
}

static void test_failed_instance_reason_is_quoted_in_the_failure(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    (void)s_step(fx);
    fx->now += 1000;
    s_sim_tick(fx);
    sim_worker_t *w = s_sim(fx, "w01");
    w->state = DS_INST_FAILED;
    w->health = DS_HEALTH_UNKNOWN;
    w->healthy_since = 0;
    w->reason = "artifact sha256 mismatch: got 9f86d0, spec says 2c26b4";
    (void)s_step(fx);
    const ds_rollout_decision_t *f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "w01 (canary) instance failed: artifact sha256 mismatch"));
    s_fx_free(fx);
}

static void test_healthy_deadline_exceeded_fails(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_sim(fx, "w01")->behaviour = SLOW;
    (void)s_step(fx);
    uint64_t assigned_at = fx->now;
    fx->now += 1000;
    s_sim_tick(fx);
    fx->now = assigned_at + HEALTHY;
    assert_int_equal(s_step(fx), 0);
    s_assert_state(fx, DS_ROLLOUT_CANARY);
    fx->now += 1;
    (void)s_step(fx);
    const ds_rollout_decision_t *f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "w01 (canary) not healthy within the healthy deadline"));
    assert_non_null(strstr(f->reason, "instance is starting"));
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    s_fx_free(fx);
}

static void test_progress_deadline_exceeded_fails(void **state)
{
    (void)state;
    /* The canary keeps flapping between passing and unknown: never a
       health failure, never a full bake. */
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    uint64_t baking_at = fx->dep.progress_at_ms;
    for (int i = 0; fx->dep.state == DS_ROLLOUT_BAKING && i < 1000; i++) {
        fx->now += 10000;
        s_set_health(fx, "w01", i % 2 ? DS_HEALTH_PASSING : DS_HEALTH_UNKNOWN);
        (void)s_step(fx);
    }
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    assert_true(fx->now > baking_at + BAKE + PROGRESS);
    assert_true(fx->now <= baking_at + BAKE + PROGRESS + 10000);
    const ds_rollout_decision_t *f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "no progress for"));
    assert_non_null(strstr(f->reason, "in baking"));
    s_fx_free(fx);

    /* No canary worker is up at all. */
    fx = s_fx_new(2, s_strategy(1, false, 1, false, true, true));
    fx->w[0].up = fx->w[1].up = false;
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_CANARY);
    fx->now += PROGRESS;
    assert_int_equal(s_step(fx), 0);
    fx->now += 1;
    (void)s_step(fx);
    f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "no canary worker is up"));
    s_fx_free(fx);
}

static void test_no_auto_revert_keeps_assignments(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, false));
    s_sim(fx, "w01")->behaviour = BAD;
    (void)s_step(fx);
    fx->now += 1000;
    s_sim_tick(fx);
    assert_int_equal(s_step(fx), 1);
    s_assert_state(fx, DS_ROLLOUT_FAILED);
    assert_null(s_find(fx, DS_ROLLOUT_ASSIGN, 0));
    assert_int_equal(s_sim(fx, "w01")->assigned, NEW);
    assert_false(ds_rollout_is_live(&fx->dep));
    s_run(fx, 2 * PROGRESS);
    s_assert_state(fx, DS_ROLLOUT_FAILED);
    assert_int_equal(s_sim(fx, "w01")->assigned, NEW);
    assert_int_equal(s_count_assigned(fx, NEW), 1);
    s_fx_free(fx);
}

static void test_failed_analysis_verdict_fails_bake(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    /* Inconclusive holds the bake even when health alone would pass. */
    fx->now += BAKE + 1000;
    fx->in.verdict = (ds_rollout_verdict_t){DS_ROLLOUT_VERDICT_INCONCLUSIVE, "3 of 10 samples"};
    assert_int_equal(ds_rollout_step(s_input(fx), &fx->out, fx->err, sizeof fx->err), 0);
    assert_int_equal(fx->out.n, 0);
    fx->in.verdict = (ds_rollout_verdict_t){DS_ROLLOUT_VERDICT_FAIL, "error ratio 0.04 > 0.01"};
    (void)s_step(fx);
    const ds_rollout_decision_t *f = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_FAILED);
    assert_non_null(f);
    assert_non_null(strstr(f->reason, "canary analysis failed: error ratio 0.04 > 0.01"));
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    assert_int_equal(s_sim(fx, "w01")->assigned, OLD);
    s_fx_free(fx);

    /* A passing verdict promotes and is quoted in the reason. */
    fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    fx->now += BAKE;
    fx->in.verdict = (ds_rollout_verdict_t){DS_ROLLOUT_VERDICT_PASS, "all checks within limits"};
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    const ds_rollout_decision_t *p = s_find(fx, DS_ROLLOUT_TRANSITION, DS_ROLLOUT_PROMOTING);
    assert_non_null(strstr(p->reason, "analysis passed: all checks within limits"));
    s_fx_free(fx);
}

/* ---- admin actions ------------------------------------------------ */

typedef int (*admin_fn)(const ds_rollout_input_t *, const char *, ds_rollout_out_t *, char *,
                        size_t);

static int s_admin(fx_t *fx, admin_fn fn)
{
    ds_deployment_t before = fx->dep;
    int rc = fn(s_input(fx), "bob", &fx->out, fx->err, sizeof fx->err);
    if (rc == 0)
        s_apply(fx, &before);
    else
        assert_int_equal(fx->out.n, 0);
    return rc;
}

static void test_pause_stops_progress_and_resume_continues(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    assert_int_equal(s_admin(fx, ds_rollout_pause), 0);
    s_assert_state(fx, DS_ROLLOUT_PAUSED);
    assert_int_equal(fx->dep.paused_from, DS_ROLLOUT_BAKING);
    assert_true(ds_rollout_is_live(&fx->dep));
    /* Frozen: past the bake and every deadline, not a single decision. */
    for (int i = 0; i < 10; i++) {
        fx->now += PROGRESS;
        assert_int_equal(s_step(fx), 0);
    }
    s_assert_state(fx, DS_ROLLOUT_PAUSED);
    assert_int_equal(s_admin(fx, ds_rollout_pause), DS_ESTATE);
    assert_non_null(strstr(fx->err, "already paused (in baking)"));
    assert_int_equal(s_admin(fx, ds_rollout_promote), DS_ESTATE);
    assert_non_null(strstr(fx->err, "resume it first"));

    assert_int_equal(s_admin(fx, ds_rollout_resume), 0);
    s_assert_state(fx, DS_ROLLOUT_BAKING);
    assert_non_null(strstr(fx->dep.reason, "resumed by bob"));
    assert_int_equal(s_admin(fx, ds_rollout_resume), DS_ESTATE);
    assert_non_null(strstr(fx->err, "not paused (it is baking)"));
    (void)s_step(fx); /* the canary stayed healthy during the pause */
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    s_run(fx, 10000);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    s_fx_free(fx);
}

/*  A fresh deployment driven to `target` (a live state). */
static fx_t *s_fx_in_state(int target)
{
    fx_t *fx =
        s_fx_new(5, s_strategy(1, false, 2, false, target != DS_ROLLOUT_CANARY_PASSED, true));
    if (target == DS_ROLLOUT_ROLLING_BACK)
        s_sim(fx, "w01")->behaviour = SLOW;
    if (target != DS_ROLLOUT_PENDING)
        (void)s_step(fx);
    if (target == DS_ROLLOUT_ROLLING_BACK) {
        fx->now += HEALTHY + 1;
        s_sim_tick(fx);
        (void)s_step(fx);
    } else if (target >= DS_ROLLOUT_BAKING) {
        s_run(fx, 1000);
    }
    if (target == DS_ROLLOUT_CANARY_PASSED || target == DS_ROLLOUT_PROMOTING) {
        fx->now += BAKE;
        (void)s_step(fx);
    }
    if (target == DS_ROLLOUT_PAUSED)
        assert_int_equal(s_admin(fx, ds_rollout_pause), 0);
    s_assert_state(fx, target);
    return fx;
}

static void test_abort_from_any_live_state(void **state)
{
    (void)state;
    const int live[] = {DS_ROLLOUT_PENDING,       DS_ROLLOUT_CANARY,    DS_ROLLOUT_BAKING,
                        DS_ROLLOUT_CANARY_PASSED, DS_ROLLOUT_PROMOTING, DS_ROLLOUT_PAUSED,
                        DS_ROLLOUT_ROLLING_BACK};
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
        fx_t *fx = s_fx_in_state(live[i]);
        uint64_t assigned[MAX_SIM];
        for (uint32_t k = 0; k < fx->n; k++)
            assigned[k] = fx->w[k].assigned;
        assert_true(ds_rollout_is_live(&fx->dep));
        assert_int_equal(s_admin(fx, ds_rollout_abort), 0);
        s_assert_state(fx, DS_ROLLOUT_ABORTED);
        assert_non_null(strstr(fx->dep.reason, "aborted by bob"));
        assert_false(ds_rollout_is_live(&fx->dep));
        /* Assignments stay; nothing moves any more. */
        s_run(fx, 2 * PROGRESS);
        for (uint32_t k = 0; k < fx->n; k++)
            assert_int_equal(fx->w[k].assigned, assigned[k]);
        assert_int_equal(s_admin(fx, ds_rollout_abort), DS_ESTATE);
        assert_non_null(strstr(fx->err, "abort: no live deployment of churn"));
        s_fx_free(fx);
    }
}

static void test_promote_with_nothing_to_promote_refused(void **state)
{
    (void)state;
    /* 1 canary + 6 workers in waves of 2: promoting wave 2/3. */
    fx_t *fx = s_fx_new(7, s_strategy(1, false, 2, false, true, true));
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);
    s_run(fx, 1000);
    assert_int_equal(fx->dep.wave, 2);
    assert_int_equal(s_admin(fx, ds_rollout_promote), DS_ESTATE);
    assert_string_equal(fx->err,
                        "promote: nothing to promote, the deployment is promoting wave 2/3");
    s_fx_free(fx);

    fx = s_fx_in_state(DS_ROLLOUT_CANARY);
    assert_int_equal(s_admin(fx, ds_rollout_promote), DS_ESTATE);
    assert_non_null(strstr(fx->err, "not healthy yet"));
    s_fx_free(fx);

    fx = s_fx_in_state(DS_ROLLOUT_ROLLING_BACK);
    assert_int_equal(s_admin(fx, ds_rollout_promote), DS_ESTATE);
    assert_non_null(strstr(fx->err, "nothing to promote, version 4 failed and is rolling back"));
    assert_int_equal(s_admin(fx, ds_rollout_pause), DS_ESTATE);
    assert_non_null(strstr(fx->err, "a rollback cannot be paused"));
    s_fx_free(fx);

    fx = s_fx_new(1, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    const admin_fn fns[] = {ds_rollout_promote, ds_rollout_pause, ds_rollout_resume,
                            ds_rollout_abort};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(s_admin(fx, fns[i]), DS_ESTATE);
        assert_non_null(strstr(fx->err, "no live deployment of churn"));
        assert_non_null(strstr(fx->err, "ended succeeded"));
    }
    s_fx_free(fx);
}

/*  Promote during the bake skips the rest of it. */
static void test_promote_during_bake_skips_rest_of_bake(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    s_to_baking(fx);
    fx->now += 2000;
    assert_int_equal(s_admin(fx, ds_rollout_promote), 0);
    s_assert_state(fx, DS_ROLLOUT_PROMOTING);
    assert_non_null(strstr(fx->dep.reason, "rest of the bake skipped"));
    (void)s_step(fx);
    assert_int_equal(fx->dep.wave, 1);
    s_fx_free(fx);
}

/* ---- level-triggered ---------------------------------------------- */

static bool s_same_decisions(const ds_rollout_out_t *a, const ds_rollout_out_t *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++) {
        const ds_rollout_decision_t *x = &a->items[i], *y = &b->items[i];
        if (x->kind != y->kind || x->state != y->state || x->event != y->event ||
            x->wave != y->wave || x->at_ms != y->at_ms || x->version != y->version ||
            strcmp(x->worker, y->worker) || strcmp(x->reason, y->reason))
            return false;
    }
    return true;
}

static bool s_has_transition(const ds_rollout_out_t *out)
{
    for (uint32_t i = 0; i < out->n; i++)
        if (out->items[i].kind == DS_ROLLOUT_TRANSITION)
            return true;
    return false;
}

static void test_decisions_are_idempotent(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(6, s_strategy(2, false, 2, false, true, true));
    s_sim(fx, "w05")->behaviour = BAD; /* fails wave 2, then rolls back */
    ds_rollout_decision_t items[CAP];
    ds_rollout_out_t again;
    ds_rollout_out_init(&again, items, CAP);
    int transitions = 0;
    for (int round = 0; round < 100 && ds_rollout_is_live(&fx->dep); round++) {
        /* Same input twice: same decisions. */
        assert_int_equal(ds_rollout_step(s_input(fx), &fx->out, fx->err, sizeof fx->err), 0);
        assert_int_equal(ds_rollout_step(s_input(fx), &again, fx->err, sizeof fx->err), 0);
        assert_true(s_same_decisions(&fx->out, &again));
        /* Applied, then the same observations and time: nothing new. */
        ds_deployment_t before = fx->dep;
        s_apply(fx, &before);
        transitions += fx->out.n > 0;
        assert_int_equal(s_step(fx), 0);
        /* Applying a batch twice is refused: the record moved on. */
        if (fx->out.n == 0 && s_has_transition(&again)) {
            ds_rollout_batch_t batch;
            ds_rollout_batch_fill(&batch, &before, &again);
            assert_int_equal(ds_rollout_apply_batch(&fx->dep, &batch, fx->arena), DS_ECONFLICT);
        }
        fx->now += 1000;
        s_sim_tick(fx);
    }
    assert_true(transitions > 4);
    s_assert_state(fx, DS_ROLLOUT_ROLLED_BACK);
    assert_int_equal(s_count_assigned(fx, NEW), 0);
    s_fx_free(fx);
}

/*  Encodes a record and decodes it into `arena`, as a new leader reads it
    from LMDB. */
static void s_roundtrip(const ds_deployment_t *dep, ds_deployment_t *copy, ds_arena_t *arena)
{
    ds_buf_t buf = {0};
    ds_codec_err_t cerr;
    if (ds_codec_encode(&ds_deployment_desc, dep, &buf, &cerr))
        fail_msg("encode: %s", cerr.text);
    if (ds_codec_decode(&ds_deployment_desc, buf.data, buf.len, copy, arena, &cerr))
        fail_msg("decode: %s", cerr.text);
    ds_buf_free(&buf);
}

/*  Proposes out as a batch through the codec and applies the decoded
    batch, as a follower does. */
static void s_apply_via_wire(fx_t *fx, const ds_deployment_t *from)
{
    ds_rollout_batch_t batch, decoded;
    ds_rollout_batch_fill(&batch, from, &fx->out);
    ds_buf_t buf = {0};
    ds_codec_err_t cerr;
    if (ds_codec_encode(&ds_rollout_batch_desc, &batch, &buf, &cerr))
        fail_msg("encode batch: %s", cerr.text);
    if (ds_codec_decode(&ds_rollout_batch_desc, buf.data, buf.len, &decoded, fx->arena, &cerr))
        fail_msg("decode batch: %s", cerr.text);
    ds_buf_free(&buf);
    assert_int_equal(ds_rollout_apply_batch(&fx->dep, &decoded, fx->arena), 0);
    for (uint32_t i = 0; i < decoded.n_decisions; i++)
        if (decoded.decisions[i].kind == DS_ROLLOUT_ASSIGN)
            s_sim(fx, decoded.decisions[i].worker)->assigned = decoded.decisions[i].version;
}

static void s_assert_same_record(const ds_deployment_t *a, const ds_deployment_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->wave, b->wave);
    assert_int_equal(a->paused_from, b->paused_from);
    assert_int_equal(a->state_at_ms, b->state_at_ms);
    assert_int_equal(a->progress_at_ms, b->progress_at_ms);
    assert_string_equal(a->reason, b->reason);
    assert_int_equal(a->n_touched, b->n_touched);
    for (uint32_t i = 0; i < a->n_touched; i++) {
        assert_string_equal(a->touched[i].worker, b->touched[i].worker);
        assert_int_equal(a->touched[i].wave, b->touched[i].wave);
        assert_int_equal(a->touched[i].assigned_at_ms, b->touched[i].assigned_at_ms);
    }
}

/*  Leader A runs until the middle of the bake and dies; leader B decodes
    the replicated record and continues. A twin of A that never died runs
    on with the same observations: both must decide the same things. */
static void s_failover_case(behaviour_t last_worker)
{
    ds_strategy_t s = s_strategy(1, false, 2, false, true, true);
    fx_t *a = s_fx_new(5, s), *b = s_fx_new(5, s);
    a->w[4].behaviour = b->w[4].behaviour = last_worker;
    s_to_baking(a);
    a->now += BAKE / 2;
    assert_int_equal(s_step(a), 0);
    /* The new leader: the record from the codec, the worker registry
       (assignments) as replicated, observations from fresh heartbeats. */
    s_roundtrip(&a->dep, &b->dep, b->arena);
    memcpy(b->w, a->w, sizeof a->w);
    b->now = a->now;
    s_assert_same_record(&a->dep, &b->dep);
    for (int round = 0; round < 400 && ds_rollout_is_live(&a->dep); round++) {
        a->now += 1000;
        b->now += 1000;
        s_sim_tick(a);
        s_sim_tick(b);
        ds_deployment_t before = b->dep;
        (void)s_step(a);
        assert_int_equal(ds_rollout_step(s_input(b), &b->out, b->err, sizeof b->err), 0);
        assert_true(s_same_decisions(&a->out, &b->out));
        s_apply_via_wire(b, &before);
        s_assert_same_record(&a->dep, &b->dep);
    }
    assert_false(ds_rollout_is_live(&b->dep));
    s_assert_state(b, last_worker == GOOD ? DS_ROLLOUT_SUCCEEDED : DS_ROLLOUT_ROLLED_BACK);
    for (uint32_t k = 0; k < a->n; k++)
        assert_int_equal(a->w[k].assigned, b->w[k].assigned);
    s_fx_free(a);
    s_fx_free(b);
}

static void test_restart_from_record_continues_same_outcome(void **state)
{
    (void)state;
    s_failover_case(GOOD);
    s_failover_case(BAD);
}

/* ---- down workers ------------------------------------------------- */

static void test_down_worker_skipped(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(5, s_strategy(1, false, 2, false, true, true));
    s_sim(fx, "w01")->up = false; /* would be the canary */
    s_sim(fx, "w03")->up = false; /* would be in wave 1 */
    (void)s_step(fx);
    assert_int_equal(s_sim(fx, "w02")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w01")->assigned, OLD);
    const ds_rollout_decision_t *e = s_find(fx, DS_ROLLOUT_EVENT, 0);
    assert_non_null(e);
    assert_int_equal(e->event, DS_ROLLOUT_EV_SKIP);
    assert_string_equal(ds_rollout_event_name(e->event), "skip");
    assert_non_null(strstr(e->reason, "canary: passed over 1 down worker: w01"));
    s_run(fx, 1000);
    fx->now += BAKE;
    (void)s_step(fx);
    assert_int_equal(fx->dep.wave, 1);
    assert_int_equal(s_sim(fx, "w04")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w05")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w03")->assigned, OLD);
    e = s_find(fx, DS_ROLLOUT_EVENT, 0);
    assert_non_null(strstr(e->reason, "wave 1: passed over 2 down workers: w01, w03"));

    ds_rollout_progress_t p;
    ds_rollout_progress(s_input(fx), &p);
    assert_int_equal(p.down, 2);
    assert_int_equal(p.total, 5);
    assert_int_equal(p.updated, 3);
    char line[160];
    ds_rollout_summary(s_input(fx), line, sizeof line);
    assert_string_equal(line, "promoting wave 1/1: 3/5 updated, 1 healthy, 2 down");

    /* A canary that goes down is no failure either. */
    s_sim(fx, "w02")->up = false;
    s_run(fx, 1000);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    assert_non_null(strstr(fx->dep.reason, "down workers get it when they return"));
    /* The down ones are assigned the new release for when they return. */
    assert_int_equal(s_sim(fx, "w01")->assigned, NEW);
    assert_int_equal(s_sim(fx, "w03")->assigned, NEW);
    assert_int_equal(s_step(fx), 0);
    s_fx_free(fx);
}

/*  A down worker that returns during the waves is picked by the next one. */
static void test_returning_worker_joins_next_wave(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(4, s_strategy(1, false, 1, false, true, true));
    s_sim(fx, "w02")->up = false;
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);
    assert_int_equal(s_sim(fx, "w03")->assigned, NEW); /* wave 1 skips w02 */
    s_sim(fx, "w02")->up = true;
    s_sim(fx, "w02")->up_since = fx->now;
    s_run(fx, 1000);
    assert_int_equal(fx->dep.wave, 2);
    assert_int_equal(s_sim(fx, "w02")->assigned, NEW);
    s_run(fx, 5000);
    s_assert_state(fx, DS_ROLLOUT_SUCCEEDED);
    s_fx_free(fx);
}

/* ---- rollback details ---------------------------------------------- */

static void test_rollback_waits_until_workers_run_previous_version(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(4, s_strategy(1, false, 2, false, true, true));
    s_sim(fx, "w03")->behaviour = BAD;
    s_to_baking(fx);
    fx->now += BAKE;
    (void)s_step(fx);             /* wave 1: w02, w03 */
    s_sim(fx, "w02")->up = false; /* down: gets the old version when back */
    fx->now += 1000;
    s_sim_tick(fx);
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    assert_non_null(strstr(fx->dep.reason, "rolling back 3 workers to version 3"));
    assert_int_equal(s_count_assigned(fx, NEW), 0);
    /* w03 is slow to restart the old version. */
    fx->now += 1000;
    assert_int_equal(s_step(fx), 0);
    ds_rollout_progress_t p;
    ds_rollout_progress(s_input(fx), &p);
    assert_int_equal(p.reverted, 1); /* w02 never left version 3 */
    s_sim_tick(fx);
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLED_BACK);
    assert_non_null(strstr(fx->dep.reason, "get it when they return"));
    s_fx_free(fx);

    /* A worker that never confirms does not hold the rollback forever. */
    fx = s_fx_new(2, s_strategy(1, false, 1, false, true, true));
    s_sim(fx, "w01")->behaviour = BAD;
    (void)s_step(fx);
    fx->now += 1000;
    s_sim_tick(fx);
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLING_BACK);
    fx->now += PROGRESS + 1; /* w01 never restarts (no sim tick) */
    (void)s_step(fx);
    s_assert_state(fx, DS_ROLLOUT_ROLLED_BACK);
    assert_non_null(strstr(fx->dep.reason, "w01 has not confirmed it"));
    s_fx_free(fx);
}

/* ---- names, codec, bad input -------------------------------------- */

static void test_state_names_are_stable(void **state)
{
    (void)state;
    const char *names[] = {"pending",     "canary",    "baking", "canary_passed",
                           "promoting",   "succeeded", "failed", "rolling_back",
                           "rolled_back", "paused",    "aborted"};
    for (int i = 0; i <= DS_ROLLOUT_STATE_MAX; i++) {
        assert_string_equal(ds_rollout_state_name(i), names[i]);
        assert_int_equal(ds_rollout_state_from_name(names[i]), i);
    }
    assert_string_equal(ds_rollout_state_name(99), "unknown");
    assert_string_equal(ds_rollout_state_name(-1), "unknown");
    assert_int_equal(ds_rollout_state_from_name("baked"), DS_EUNKNOWN);
    assert_int_equal(ds_rollout_state_from_name(NULL), DS_EUNKNOWN);
}

static void test_record_survives_codec(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(5, s_strategy(40, true, 2, false, false, true));
    s_to_baking(fx);
    ds_deployment_t copy;
    s_roundtrip(&fx->dep, &copy, fx->arena);
    s_assert_same_record(&fx->dep, &copy);
    assert_string_equal(copy.service, "churn");
    assert_int_equal(copy.version, NEW);
    assert_int_equal(copy.prev_version, OLD);
    assert_int_equal(copy.strategy.canary, 40);
    assert_true(copy.strategy.canary_percent);
    assert_false(copy.strategy.auto_promote);
    assert_int_equal(copy.strategy.bake_ms, BAKE);
    /* A state out of range is refused on decode. */
    fx->dep.state = DS_ROLLOUT_STATE_MAX + 1;
    ds_buf_t buf = {0};
    ds_codec_err_t cerr;
    assert_int_not_equal(ds_codec_encode(&ds_deployment_desc, &fx->dep, &buf, &cerr), 0);
    ds_buf_free(&buf);
    s_fx_free(fx);
}

static void test_bad_input_refused(void **state)
{
    (void)state;
    fx_t *fx = s_fx_new(3, s_strategy(1, false, 1, false, true, true));
    const ds_rollout_input_t *in = s_input(fx);
    fx->view[1].name = "w99"; /* out of order */
    assert_int_equal(ds_rollout_step(in, &fx->out, fx->err, sizeof fx->err), DS_EINVAL);
    assert_non_null(strstr(fx->err, "sorted by name"));
    in = s_input(fx);
    fx->view[1].name = fx->view[0].name; /* duplicate */
    assert_int_equal(ds_rollout_step(in, &fx->out, fx->err, sizeof fx->err), DS_EINVAL);
    in = s_input(fx);
    ds_rollout_out_t small;
    ds_rollout_out_init(&small, fx->items, 1);
    assert_int_equal(ds_rollout_step(in, &small, fx->err, sizeof fx->err), DS_ELIMIT);
    assert_non_null(strstr(fx->err, "DS_ROLLOUT_DECISIONS_CAP"));
    fx->dep.state = 77;
    assert_int_equal(ds_rollout_step(in, &fx->out, fx->err, sizeof fx->err), DS_EINVAL);
    assert_int_equal(ds_rollout_step(NULL, &fx->out, fx->err, sizeof fx->err), DS_EINVAL);
    /* A malformed decision is refused by apply. */
    ds_rollout_decision_t d = {.kind = DS_ROLLOUT_ASSIGN, .worker = NULL};
    fx->dep.state = DS_ROLLOUT_CANARY;
    assert_int_equal(ds_rollout_apply(&fx->dep, &d, fx->arena), DS_EINVAL);
    d = (ds_rollout_decision_t){.kind = 9};
    assert_int_equal(ds_rollout_apply(&fx->dep, &d, fx->arena), DS_EINVAL);
    s_fx_free(fx);
}

/* ---- randomized --------------------------------------------------- */

static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static uint32_t s_below(uint64_t *x, uint32_t n)
{
    return (uint32_t)(s_rand(x) % n);
}

static uint32_t s_allowed(const fx_t *fx, uint8_t state, uint32_t wave)
{
    const ds_strategy_t *s = &fx->dep.strategy;
    uint32_t n = fx->n;
    uint32_t c = s->canary_percent ? (n * s->canary + 99) / 100 : s->canary;
    uint32_t w = s->max_parallel_percent ? (n * s->max_parallel + 99) / 100 : s->max_parallel;
    c = c < 1 ? 1 : c > n ? n : c;
    w = w < 1 ? 1 : w;
    if (state == DS_ROLLOUT_PROMOTING)
        return c + wave * w;
    if (state == DS_ROLLOUT_SUCCEEDED)
        return n;
    return c;
}

/*  Random weather for one tick: health flaps, crashes, downs, returns. */
static void s_weather(fx_t *fx, uint64_t *seed)
{
    for (uint32_t i = 0; i < fx->n; i++) {
        sim_worker_t *w = &fx->w[i];
        uint32_t r = s_below(seed, 1000);
        if (r < 15) {
            w->up = !w->up;
            w->up_since = w->up ? fx->now : w->up_since;
        } else if (r < 40 && w->up && w->version) {
            uint8_t h = (uint8_t)s_below(seed, 3);
            if (h == DS_HEALTH_FAILING && w->version == NEW && s_below(seed, 4))
                h = DS_HEALTH_UNKNOWN; /* failures rarer than flaps */
            s_set_health(fx, w->name, h);
        }
    }
}

static void s_random_admin(fx_t *fx, uint64_t *seed)
{
    static const admin_fn fns[] = {ds_rollout_pause, ds_rollout_resume, ds_rollout_promote};
    if (s_below(seed, 100) < 3)
        (void)s_admin(fx, fns[s_below(seed, 3)]);
}

static void s_check_invariants(fx_t *fx, bool failed_before)
{
    uint8_t st = fx->dep.state;
    uint32_t assigned_new = s_count_assigned(fx, NEW);
    uint8_t shown = st == DS_ROLLOUT_PAUSED ? fx->dep.paused_from : st;
    /* Never more workers on the new version than the phase allows. */
    if (shown <= DS_ROLLOUT_SUCCEEDED)
        assert_true(assigned_new <= s_allowed(fx, shown, fx->dep.wave));
    /* Once failed, the new version is never assigned again. */
    bool failed = failed_before;
    for (uint32_t i = 0; i < fx->out.n; i++) {
        const ds_rollout_decision_t *d = &fx->out.items[i];
        if (d->kind == DS_ROLLOUT_TRANSITION && d->state == DS_ROLLOUT_FAILED)
            failed = true;
        if (failed && d->kind == DS_ROLLOUT_ASSIGN)
            assert_int_not_equal(d->version, NEW);
    }
    /* Rolling back or rolled back: every touched worker has the old one. */
    if (st == DS_ROLLOUT_ROLLED_BACK || st == DS_ROLLOUT_ROLLING_BACK)
        for (uint32_t i = 0; i < fx->dep.n_touched; i++)
            assert_int_equal(s_sim(fx, fx->dep.touched[i].worker)->assigned, OLD);
    if (st == DS_ROLLOUT_SUCCEEDED)
        assert_int_equal(assigned_new, fx->n);
    /* The record's touched list is exactly who got the new version. */
    if (shown <= DS_ROLLOUT_SUCCEEDED)
        assert_int_equal(fx->dep.n_touched, assigned_new);
}

/*  Returns the final state of one seeded run. */
static uint8_t s_random_run(uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    uint32_t n = 1 + s_below(&x, 12);
    bool pct = s_below(&x, 2);
    ds_strategy_t s =
        s_strategy(pct ? 1 + s_below(&x, 100) : 1 + s_below(&x, 3), pct, 1 + s_below(&x, 4), false,
                   s_below(&x, 4) != 0, s_below(&x, 5) != 0);
    fx_t *fx = s_fx_new(n, s);
    for (uint32_t i = 0; i < n; i++)
        fx->w[i].behaviour = s_below(&x, 20) == 0 ? BAD : s_below(&x, 10) == 0 ? SLOW : GOOD;
    bool failed = false;
    for (int tick = 0; tick < 600; tick++) {
        fx->now += 500 + s_below(&x, 4000);
        s_weather(fx, &x);
        s_sim_tick(fx);
        s_random_admin(fx, &x);
        (void)s_step(fx);
        s_check_invariants(fx, failed);
        /* Level-triggered: after applying, nothing more to decide. */
        assert_int_equal(s_step(fx), 0);
        if (tick % 50 == 0) { /* a failover: a decoded record decides the same */
            ds_deployment_t copy;
            s_roundtrip(&fx->dep, &copy, fx->arena);
            s_assert_same_record(&fx->dep, &copy);
        }
        uint8_t st = fx->dep.state;
        failed = failed || st == DS_ROLLOUT_FAILED || st == DS_ROLLOUT_ROLLING_BACK ||
                 st == DS_ROLLOUT_ROLLED_BACK;
        if (!ds_rollout_is_live(&fx->dep))
            break;
    }
    uint8_t end = fx->dep.state;
    s_fx_free(fx);
    return end;
}

static void test_randomized_invariants(void **state)
{
    (void)state;
    uint32_t ends[DS_ROLLOUT_STATE_MAX + 1] = {0};
    for (uint64_t seed = 1; seed <= 400; seed++)
        ends[s_random_run(seed)]++;
    /* The weather is rough enough to reach every outcome. */
    for (int i = 0; i <= DS_ROLLOUT_STATE_MAX; i++)
        if (ends[i])
            print_message("%s: %u\n", ds_rollout_state_name(i), ends[i]);
    assert_true(ends[DS_ROLLOUT_SUCCEEDED] > 0);
    assert_true(ends[DS_ROLLOUT_ROLLED_BACK] > 0);
    assert_true(ends[DS_ROLLOUT_FAILED] > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canary_gets_new_version_first),
        cmocka_unit_test(test_canary_percent_rounds_up),
        cmocka_unit_test(test_bake_requires_continuous_health),
        cmocka_unit_test(test_converge_assigns_the_current_release_to_late_workers),
        cmocka_unit_test(test_auto_promote_runs_waves_in_order),
        cmocka_unit_test(test_wave_waits_until_previous_wave_healthy),
        cmocka_unit_test(test_without_auto_promote_waits_for_promote),
        cmocka_unit_test(test_unhealthy_canary_fails_and_reverts),
        cmocka_unit_test(test_failed_instance_reason_is_quoted_in_the_failure),
        cmocka_unit_test(test_healthy_deadline_exceeded_fails),
        cmocka_unit_test(test_progress_deadline_exceeded_fails),
        cmocka_unit_test(test_no_auto_revert_keeps_assignments),
        cmocka_unit_test(test_failed_analysis_verdict_fails_bake),
        cmocka_unit_test(test_pause_stops_progress_and_resume_continues),
        cmocka_unit_test(test_abort_from_any_live_state),
        cmocka_unit_test(test_promote_with_nothing_to_promote_refused),
        cmocka_unit_test(test_promote_during_bake_skips_rest_of_bake),
        cmocka_unit_test(test_decisions_are_idempotent),
        cmocka_unit_test(test_restart_from_record_continues_same_outcome),
        cmocka_unit_test(test_down_worker_skipped),
        cmocka_unit_test(test_returning_worker_joins_next_wave),
        cmocka_unit_test(test_rollback_waits_until_workers_run_previous_version),
        cmocka_unit_test(test_state_names_are_stable),
        cmocka_unit_test(test_record_survives_codec),
        cmocka_unit_test(test_bad_input_refused),
        cmocka_unit_test(test_randomized_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
