/*  coordinator/rollout.c - the deployment controller (pure; see rollout.h
    and docs/rollout.md). */
#include "coordinator/rollout.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/messages.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_ALL_WAVES  UINT32_MAX /* member filter: every touched worker */
#define S_MAX_CHAIN  12         /* transitions one call may chain (at most ~6 happen) */
#define S_SKIP_NAMES 4          /* down workers named in a skip event */

typedef unsigned long long s_ull_t;

static char s_empty[] = "";

/* ---- names -------------------------------------------------------- */

static const char *const s_state_names[] = {
    [DS_ROLLOUT_PENDING] = "pending",         [DS_ROLLOUT_CANARY] = "canary",
    [DS_ROLLOUT_BAKING] = "baking",           [DS_ROLLOUT_CANARY_PASSED] = "canary_passed",
    [DS_ROLLOUT_PROMOTING] = "promoting",     [DS_ROLLOUT_SUCCEEDED] = "succeeded",
    [DS_ROLLOUT_FAILED] = "failed",           [DS_ROLLOUT_ROLLING_BACK] = "rolling_back",
    [DS_ROLLOUT_ROLLED_BACK] = "rolled_back", [DS_ROLLOUT_PAUSED] = "paused",
    [DS_ROLLOUT_ABORTED] = "aborted",
};

static const char *const s_inst_names[] = {
    [DS_INST_PENDING] = "pending", [DS_INST_STAGING] = "staging",   [DS_INST_STARTING] = "starting",
    [DS_INST_RUNNING] = "running", [DS_INST_STOPPING] = "stopping", [DS_INST_STOPPED] = "stopped",
    [DS_INST_CRASHED] = "crashed", [DS_INST_FAILED] = "failed",
};

const char *ds_rollout_state_name(int state)
{
    if (state < 0 || state > DS_ROLLOUT_STATE_MAX)
        return "unknown";
    return s_state_names[state];
}

int ds_rollout_state_from_name(const char *name)
{
    for (int i = 0; name && i <= DS_ROLLOUT_STATE_MAX; i++)
        if (strcmp(name, s_state_names[i]) == 0)
            return i;
    return DS_EUNKNOWN;
}

const char *ds_rollout_event_name(int event)
{
    return event == DS_ROLLOUT_EV_SKIP      ? "skip"
           : event == DS_ROLLOUT_EV_VERDICT ? "verdict"
                                            : "unknown";
}

static const char *s_inst_name(uint8_t state)
{
    return state <= DS_INST_STATE_MAX ? s_inst_names[state] : "unknown";
}

static bool s_is_forward(uint8_t state)
{
    return state <= DS_ROLLOUT_PROMOTING;
}

bool ds_rollout_is_live(const ds_deployment_t *dep)
{
    if (dep->state == DS_ROLLOUT_FAILED)
        return dep->strategy.auto_revert;
    return s_is_forward(dep->state) || dep->state == DS_ROLLOUT_ROLLING_BACK ||
           dep->state == DS_ROLLOUT_PAUSED;
}

/* ---- wire descriptions -------------------------------------------- */

static const ds_field_t s_touch_fields[] = {
    DS_F_STR(ds_rollout_touch_t, worker, DS_MAX_NAME),
    DS_F_U32(ds_rollout_touch_t, wave, 0),
    DS_F_U64(ds_rollout_touch_t, assigned_at_ms),
};
static const ds_desc_t s_touch_desc = DS_DESC(ds_rollout_touch_t, "touched", s_touch_fields);

static const ds_field_t s_deployment_fields[] = {
    DS_F_U64(ds_deployment_t, id),
    DS_F_STR(ds_deployment_t, service, DS_MAX_NAME),
    DS_F_U64(ds_deployment_t, version),
    DS_F_U64(ds_deployment_t, prev_version),
    DS_F_U8(ds_deployment_t, state, DS_ROLLOUT_STATE_MAX),
    DS_F_U8(ds_deployment_t, paused_from, DS_ROLLOUT_STATE_MAX),
    DS_F_U32(ds_deployment_t, wave, DS_MAX_WORKERS),
    DS_F_U64(ds_deployment_t, started_at_ms),
    DS_F_U64(ds_deployment_t, state_at_ms),
    DS_F_U64(ds_deployment_t, progress_at_ms),
    DS_F_STR(ds_deployment_t, reason, DS_MAX_TEXT),
    DS_F_STR(ds_deployment_t, failure, DS_MAX_TEXT),
    DS_F_STRUCT(ds_deployment_t, strategy, ds_strategy_desc),
    DS_F_ARRAY(ds_deployment_t, touched, n_touched, s_touch_desc, DS_MAX_WORKERS),
};
const ds_desc_t ds_deployment_desc = DS_DESC(ds_deployment_t, "deployment", s_deployment_fields);

static const ds_field_t s_decision_fields[] = {
    DS_F_U8(ds_rollout_decision_t, kind, DS_ROLLOUT_EVENT),
    DS_F_U8(ds_rollout_decision_t, state, DS_ROLLOUT_STATE_MAX),
    DS_F_U8(ds_rollout_decision_t, event, DS_ROLLOUT_EV_MAX),
    DS_F_U32(ds_rollout_decision_t, wave, 0),
    DS_F_U64(ds_rollout_decision_t, at_ms),
    DS_F_STR(ds_rollout_decision_t, worker, DS_MAX_NAME),
    DS_F_U64(ds_rollout_decision_t, version),
    DS_F_STR(ds_rollout_decision_t, reason, DS_MAX_TEXT),
};
const ds_desc_t ds_rollout_decision_desc =
    DS_DESC(ds_rollout_decision_t, "decision", s_decision_fields);

static const ds_field_t s_batch_fields[] = {
    DS_F_STR(ds_rollout_batch_t, service, DS_MAX_NAME),
    DS_F_U64(ds_rollout_batch_t, deployment_id),
    DS_F_U8(ds_rollout_batch_t, from_state, DS_ROLLOUT_STATE_MAX),
    DS_F_U32(ds_rollout_batch_t, from_wave, DS_MAX_WORKERS),
    DS_F_U64(ds_rollout_batch_t, from_progress_at_ms),
    DS_F_ARRAY(ds_rollout_batch_t, decisions, n_decisions, ds_rollout_decision_desc,
               DS_ROLLOUT_DECISIONS_CAP(DS_MAX_WORKERS, DS_MAX_WORKERS)),
};
const ds_desc_t ds_rollout_batch_desc =
    DS_DESC(ds_rollout_batch_t, "rollout_batch", s_batch_fields);

/* ---- record basics ------------------------------------------------ */

void ds_rollout_init(ds_deployment_t *dep, uint64_t id, const char *service, uint64_t version,
                     uint64_t prev_version, const ds_strategy_t *strategy, uint64_t now_ms)
{
    *dep = (ds_deployment_t){
        .id = id,
        .service = (char *)service,
        .version = version,
        .prev_version = prev_version,
        .state = DS_ROLLOUT_PENDING,
        .started_at_ms = now_ms,
        .state_at_ms = now_ms,
        .progress_at_ms = now_ms,
        .reason = s_empty,
        .failure = s_empty,
        .strategy = *strategy,
    };
}

void ds_rollout_out_init(ds_rollout_out_t *out, ds_rollout_decision_t *items, uint32_t cap)
{
    out->items = items;
    out->cap = cap;
    out->n = 0;
    out->n_texts = 0;
}

/*  Enters `state`: the one place the record's state fields change, for
    the controller's own chaining and for ds_rollout_apply(). */
static void s_set_state(ds_deployment_t *dep, uint8_t state, uint32_t wave, uint64_t at_ms)
{
    if (state == DS_ROLLOUT_PAUSED && dep->state != DS_ROLLOUT_PAUSED)
        dep->paused_from = dep->state;
    if (state != dep->state)
        dep->state_at_ms = at_ms;
    dep->state = state;
    dep->wave = wave;
    dep->progress_at_ms = at_ms;
}

/*  Index of the first touched entry not less than `name`; *found says
    whether it is `name`. */
static uint32_t s_touch_pos(const ds_deployment_t *dep, const char *name, bool *found)
{
    uint32_t lo = 0, hi = dep->n_touched;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (strcmp(dep->touched[mid].worker, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < dep->n_touched && strcmp(dep->touched[lo].worker, name) == 0;
    return lo;
}

static const ds_rollout_touch_t *s_find_touch(const ds_deployment_t *dep, const char *name)
{
    bool found;
    uint32_t i = s_touch_pos(dep, name, &found);
    return found ? &dep->touched[i] : NULL;
}

static const ds_rollout_worker_t *s_find_worker(const ds_rollout_input_t *in, const char *name)
{
    uint32_t lo = 0, hi = in->n_workers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(in->workers[mid].name, name);
        if (c == 0)
            return &in->workers[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*  `value` workers, or `value` percent of `total` rounded up; at least 1
    and at most total (when there are workers at all). */
static uint32_t s_target(uint32_t value, bool percent, uint32_t total)
{
    uint64_t n = value;
    if (percent)
        n = ((uint64_t)total * value + 99) / 100;
    if (n < 1)
        n = 1;
    if (total && n > total)
        n = total;
    return (uint32_t)n;
}

/* ---- observed status ---------------------------------------------- */

/*  Runs `version` (0: runs nothing for the service). */
static bool s_runs(const ds_rollout_worker_t *w, uint64_t version)
{
    if (version == 0)
        return w->version == 0 || w->state == DS_INST_STOPPED;
    return w->version == version && w->state == DS_INST_RUNNING;
}

static bool s_healthy(const ds_rollout_worker_t *w, uint64_t version)
{
    return s_runs(w, version) && w->health == DS_HEALTH_PASSING && w->healthy_since_ms != 0;
}

static bool s_failing(const ds_rollout_worker_t *w, uint64_t version)
{
    return w->up && w->version == version &&
           (w->health == DS_HEALTH_FAILING || w->state == DS_INST_FAILED);
}

static uint64_t s_healthy_for(const ds_rollout_worker_t *w, uint64_t now_ms)
{
    return now_ms > w->healthy_since_ms ? now_ms - w->healthy_since_ms : 0;
}

static int s_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*  snprintf in one place; cut text is fine in a reason. */
static int s_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

/*  Why `w` is not healthy on `version`, for reasons. */
static const char *s_why_not(const ds_rollout_worker_t *w, uint64_t version, char *buf, size_t len)
{
    if (!w->up)
        s_fmt(buf, len, "is down");
    else if (w->version != version && w->version == 0)
        s_fmt(buf, len, "runs no instance yet");
    else if (w->version != version)
        s_fmt(buf, len, "still runs version %llu", (s_ull_t)w->version);
    else if (w->state != DS_INST_RUNNING)
        s_fmt(buf, len, "instance is %s", s_inst_name(w->state));
    else if (w->health == DS_HEALTH_FAILING)
        s_fmt(buf, len, "health check is failing");
    else if (w->health != DS_HEALTH_PASSING || !w->healthy_since_ms)
        s_fmt(buf, len, "health is not known yet");
    else
        s_fmt(buf, len, "is healthy");
    return buf;
}

static const char *s_role(uint32_t wave, char *buf, size_t len)
{
    if (wave == 0)
        s_fmt(buf, len, "canary");
    else
        s_fmt(buf, len, "wave %u", wave);
    return buf;
}

/* ---- one call ----------------------------------------------------- */

typedef struct {
    const ds_rollout_input_t *in;
    ds_deployment_t dep; /* the record with this call's transitions applied */
    ds_rollout_out_t *out;
    uint32_t total;     /* selected workers */
    uint32_t canaries;  /* canary target */
    uint32_t wave_size; /* workers per wave */
    bool stop;          /* new-version assignments issued: end the call */
    bool entered_rollback;
    int rc;
    char *err;
    size_t errlen;
} s_step_t;

static ds_rollout_decision_t *s_push(s_step_t *st, uint8_t kind)
{
    ds_rollout_out_t *out = st->out;
    if (st->rc)
        return NULL;
    if (out->n >= out->cap) {
        st->rc = ds_errf(st->err, st->errlen, DS_ELIMIT,
                         "rollout: more than %u decisions; size the output with "
                         "DS_ROLLOUT_DECISIONS_CAP",
                         out->cap);
        return NULL;
    }
    ds_rollout_decision_t *d = &out->items[out->n++];
    *d = (ds_rollout_decision_t){
        .kind = kind, .at_ms = st->in->now_ms, .worker = s_empty, .reason = s_empty};
    return d;
}

static char *s_vtext(s_step_t *st, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static char *s_vtext(s_step_t *st, const char *fmt, va_list ap)
{
    ds_rollout_out_t *out = st->out;
    if (st->rc)
        return NULL;
    if (out->n_texts >= DS_ROLLOUT_MAX_TEXTS) {
        st->rc = ds_errf(st->err, st->errlen, DS_ELIMIT, "rollout: more than %u reasons in a call",
                         DS_ROLLOUT_MAX_TEXTS);
        return NULL;
    }
    char *t = out->texts[out->n_texts++];
    vsnprintf(t, DS_ROLLOUT_REASON_MAX, fmt, ap);
    return t;
}

static void s_transition(s_step_t *st, uint8_t state, uint32_t wave, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_transition(s_step_t *st, uint8_t state, uint32_t wave, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *reason = s_vtext(st, fmt, ap);
    va_end(ap);
    ds_rollout_decision_t *d = reason ? s_push(st, DS_ROLLOUT_TRANSITION) : NULL;
    if (!d)
        return;
    d->state = state;
    d->wave = wave;
    d->reason = reason;
    s_set_state(&st->dep, state, wave, st->in->now_ms);
    st->dep.reason = reason;
}

static void s_event(s_step_t *st, uint8_t event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_event(s_step_t *st, uint8_t event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *reason = s_vtext(st, fmt, ap);
    va_end(ap);
    ds_rollout_decision_t *d = reason ? s_push(st, DS_ROLLOUT_EVENT) : NULL;
    if (!d)
        return;
    d->event = event;
    d->wave = st->dep.wave;
    d->reason = reason;
}

static void s_assign(s_step_t *st, char *worker, uint64_t version, uint32_t wave)
{
    ds_rollout_decision_t *d = s_push(st, DS_ROLLOUT_ASSIGN);
    if (!d)
        return;
    d->worker = worker;
    d->version = version;
    d->wave = wave;
}

/* ---- checks over the touched workers ------------------------------ */

/*  Counts the touched workers of `wave` (S_ALL_WAVES: all) that are up
    and healthy on the new version; returns the first that is up but not
    healthy, or NULL. *up counts the members that are up. */
static const ds_rollout_touch_t *s_members(const s_step_t *st, uint32_t wave, uint32_t *up,
                                           uint32_t *healthy)
{
    const ds_rollout_touch_t *first = NULL;
    *up = *healthy = 0;
    for (uint32_t i = 0; i < st->dep.n_touched; i++) {
        const ds_rollout_touch_t *t = &st->dep.touched[i];
        const ds_rollout_worker_t *w = s_find_worker(st->in, t->worker);
        if ((wave != S_ALL_WAVES && t->wave != wave) || !w || !w->up)
            continue;
        (*up)++;
        if (s_healthy(w, st->dep.version))
            (*healthy)++;
        else if (!first)
            first = t;
    }
    return first;
}

static uint32_t s_count_wave(const ds_deployment_t *dep, uint32_t wave)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < dep->n_touched; i++)
        n += dep->touched[i].wave == wave;
    return n;
}

/*  Fails the deployment; the failed handler takes it from there. */
static void s_fail(s_step_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_fail(s_step_t *st, const char *fmt, ...)
{
    char reason[DS_ROLLOUT_REASON_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    s_transition(st, DS_ROLLOUT_FAILED, st->dep.wave, "version %llu failed: %s",
                 (s_ull_t)st->dep.version, reason);
}

/*  A touched worker whose new instance fails its health check or gave up. */
static bool s_check_failing(s_step_t *st)
{
    char role[32];
    for (uint32_t i = 0; i < st->dep.n_touched; i++) {
        const ds_rollout_touch_t *t = &st->dep.touched[i];
        const ds_rollout_worker_t *w = s_find_worker(st->in, t->worker);
        if (!w || !s_failing(w, st->dep.version))
            continue;
        bool why = w->reason && w->reason[0];
        s_fail(st, "%s (%s) %s%s%s", t->worker, s_role(t->wave, role, sizeof role),
               w->state == DS_INST_FAILED ? "instance failed" : "health check is failing",
               why ? ": " : "", why ? w->reason : "");
        return true;
    }
    return false;
}

static bool s_check_verdict(s_step_t *st)
{
    const ds_rollout_verdict_t *v = &st->in->verdict;
    if (v->result != DS_ROLLOUT_VERDICT_FAIL)
        return false;
    s_fail(st, "canary analysis failed: %s", v->reason && *v->reason ? v->reason : "no reason");
    return true;
}

/*  A member of `wave` that is up and still not healthy healthy_deadline
    after its assignment (or after it last came up, if later). */
static bool s_check_healthy_deadline(s_step_t *st, uint32_t wave)
{
    uint64_t now = st->in->now_ms, limit = st->dep.strategy.healthy_deadline_ms;
    char role[32], why[96];
    for (uint32_t i = 0; i < st->dep.n_touched; i++) {
        const ds_rollout_touch_t *t = &st->dep.touched[i];
        const ds_rollout_worker_t *w = s_find_worker(st->in, t->worker);
        if (t->wave != wave || !w || !w->up || s_healthy(w, st->dep.version))
            continue;
        uint64_t since = t->assigned_at_ms > w->up_since_ms ? t->assigned_at_ms : w->up_since_ms;
        if (now <= since || now - since <= limit)
            continue;
        s_fail(st, "%s (%s) not healthy within the healthy deadline of %llu ms: %s", t->worker,
               s_role(wave, role, sizeof role), (s_ull_t)limit,
               s_why_not(w, st->dep.version, why, sizeof why));
        return true;
    }
    return false;
}

/*  What the current phase waits for, for the progress deadline's reason. */
static const char *s_blocker(const s_step_t *st, uint32_t wave, char *buf, size_t len)
{
    uint32_t up, healthy;
    const ds_rollout_touch_t *t = s_members(st, wave, &up, &healthy);
    char role[32], why[96];
    if (t)
        s_fmt(buf, len, "%s (%s) %s", t->worker, s_role(t->wave, role, sizeof role),
              s_why_not(s_find_worker(st->in, t->worker), st->dep.version, why, sizeof why));
    else if (up == 0)
        s_fmt(buf, len, "no %s worker is up", wave == 0 ? "canary" : "selected");
    else if (st->in->verdict.result == DS_ROLLOUT_VERDICT_INCONCLUSIVE)
        s_fmt(buf, len, "canary analysis is inconclusive");
    else
        s_fmt(buf, len, "the canary has not stayed healthy for the bake time");
    return buf;
}

/*  No transition for progress_deadline (+ `extra_ms`) since the last one. */
static bool s_check_progress(s_step_t *st, uint32_t wave, uint64_t extra_ms)
{
    uint64_t now = st->in->now_ms, since = st->dep.progress_at_ms;
    uint64_t limit = st->dep.strategy.progress_deadline_ms + extra_ms;
    if (now <= since || now - since <= limit)
        return false;
    char what[160];
    s_fail(st, "no progress for %llu ms in %s: %s", (s_ull_t)(now - since),
           ds_rollout_state_name(st->dep.state), s_blocker(st, wave, what, sizeof what));
    return true;
}

/* ---- picking canaries and waves ----------------------------------- */

static uint32_t s_count_pickable(const s_step_t *st)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < st->in->n_workers; i++) {
        const ds_rollout_worker_t *w = &st->in->workers[i];
        n += w->up && !s_find_touch(&st->dep, w->name);
    }
    return n;
}

/*  Assigns the new version to up to `want` untouched, up workers in name
    order; names the down ones passed over in a skip event. */
static void s_pick(s_step_t *st, uint32_t want, uint32_t wave)
{
    char skipped[160] = "";
    size_t used = 0;
    uint32_t n_skipped = 0, picked = 0;
    for (uint32_t i = 0; i < st->in->n_workers && picked < want && !st->rc; i++) {
        const ds_rollout_worker_t *w = &st->in->workers[i];
        if (s_find_touch(&st->dep, w->name))
            continue;
        if (w->up) {
            s_assign(st, w->name, st->dep.version, wave);
            picked++;
        } else if (n_skipped++ < S_SKIP_NAMES && used < sizeof skipped) {
            int k = s_fmt(skipped + used, sizeof skipped - used, "%s%s", used ? ", " : "", w->name);
            used += k > 0 ? (size_t)k : 0;
        }
    }
    char role[32];
    if (picked && n_skipped)
        s_event(st, DS_ROLLOUT_EV_SKIP, "%s: passed over %u down worker%s: %s%s",
                s_role(wave, role, sizeof role), n_skipped, n_skipped == 1 ? "" : "s", skipped,
                n_skipped > S_SKIP_NAMES ? ", ..." : "");
    st->stop = picked > 0;
}

/*  Waves the deployment will have, estimated from the workers now. */
static uint32_t s_total_waves(const s_step_t *st)
{
    uint8_t state = st->dep.state == DS_ROLLOUT_PAUSED ? st->dep.paused_from : st->dep.state;
    if (!s_is_forward(state))
        return st->dep.wave;
    uint32_t left = s_count_pickable(st);
    if (state != DS_ROLLOUT_PROMOTING) {
        uint32_t have = s_count_wave(&st->dep, 0);
        uint32_t open = st->canaries > have ? st->canaries - have : 0;
        left -= open < left ? open : left;
    }
    return st->dep.wave + (left + st->wave_size - 1) / st->wave_size;
}

/* ---- state handlers ----------------------------------------------- */

static void s_on_pending(s_step_t *st)
{
    s_transition(st, DS_ROLLOUT_CANARY, 0,
                 "starting the canary of version %llu on %u of %u workers",
                 (s_ull_t)st->dep.version, st->canaries, st->total);
}

static void s_on_canary(s_step_t *st)
{
    if (s_check_failing(st) || s_check_healthy_deadline(st, 0) || s_check_progress(st, 0, 0))
        return;
    uint32_t have = s_count_wave(&st->dep, 0);
    if (have < st->canaries)
        s_pick(st, st->canaries - have, 0);
    if (st->stop || st->rc)
        return;
    uint32_t up, healthy;
    if (s_members(st, 0, &up, &healthy) || up == 0)
        return;
    s_transition(st, DS_ROLLOUT_BAKING, 0, "%u canar%s healthy on version %llu; baking for %llu ms",
                 up, up == 1 ? "y" : "ies", (s_ull_t)st->dep.version,
                 (s_ull_t)st->dep.strategy.bake_ms);
}

/*  The shortest time any up canary has been healthy; 0 when one is not. */
static uint64_t s_baked_ms(const s_step_t *st, uint32_t *up)
{
    uint64_t least = UINT64_MAX;
    *up = 0;
    for (uint32_t i = 0; i < st->dep.n_touched; i++) {
        const ds_rollout_touch_t *t = &st->dep.touched[i];
        const ds_rollout_worker_t *w = s_find_worker(st->in, t->worker);
        if (t->wave != 0 || !w || !w->up)
            continue;
        (*up)++;
        uint64_t ms = s_healthy(w, st->dep.version) ? s_healthy_for(w, st->in->now_ms) : 0;
        least = ms < least ? ms : least;
    }
    return *up ? least : 0;
}

static void s_on_baking(s_step_t *st)
{
    const ds_strategy_t *s = &st->dep.strategy;
    if (s_check_failing(st) || s_check_verdict(st) || s_check_progress(st, 0, s->bake_ms))
        return;
    uint32_t up;
    uint64_t baked = s_baked_ms(st, &up);
    const ds_rollout_verdict_t *v = &st->in->verdict;
    if (up == 0 || baked < s->bake_ms || v->result == DS_ROLLOUT_VERDICT_INCONCLUSIVE)
        return;
    char analysis[160] = "";
    if (v->result == DS_ROLLOUT_VERDICT_PASS)
        s_fmt(analysis, sizeof analysis, "; analysis passed%s%s", v->reason ? ": " : "",
              v->reason ? v->reason : "");
    if (s->auto_promote)
        s_transition(st, DS_ROLLOUT_PROMOTING, 0, "canary healthy for %llu ms%s; promoting",
                     (s_ull_t)baked, analysis);
    else
        s_transition(st, DS_ROLLOUT_CANARY_PASSED, 0,
                     "canary healthy for %llu ms%s; waiting for promote", (s_ull_t)baked, analysis);
}

static void s_on_canary_passed(s_step_t *st)
{
    if (s_check_failing(st))
        return;
    (void)s_check_verdict(st);
}

static void s_succeed(s_step_t *st)
{
    uint32_t up, healthy, wave = st->dep.wave;
    if (s_members(st, S_ALL_WAVES, &up, &healthy))
        return;
    s_transition(st, DS_ROLLOUT_SUCCEEDED, wave, "version %llu is healthy on %u worker%s%s",
                 (s_ull_t)st->dep.version, healthy, healthy == 1 ? "" : "s",
                 st->dep.n_touched < st->total ? "; down workers get it when they return" : "");
    /* Untouched workers left now are all down: they run the service's
       current release when they come back. */
    for (uint32_t i = 0; i < st->in->n_workers; i++) {
        const ds_rollout_worker_t *w = &st->in->workers[i];
        if (!s_find_touch(&st->dep, w->name) && w->assigned != st->dep.version)
            s_assign(st, w->name, st->dep.version, wave + 1);
    }
}

static void s_on_promoting(s_step_t *st)
{
    uint32_t wave = st->dep.wave, up, healthy;
    if (s_check_failing(st) || (wave > 0 && s_check_healthy_deadline(st, wave)) ||
        s_check_progress(st, wave > 0 ? wave : S_ALL_WAVES, 0))
        return;
    if (wave > 0 && s_members(st, wave, &up, &healthy))
        return;
    uint32_t left = s_count_pickable(st);
    if (left == 0) {
        s_succeed(st);
        return;
    }
    uint32_t n = left < st->wave_size ? left : st->wave_size, waves = s_total_waves(st);
    s_transition(st, DS_ROLLOUT_PROMOTING, wave + 1, "wave %u/%u: version %llu to %u worker%s",
                 wave + 1, waves, (s_ull_t)st->dep.version, n, n == 1 ? "" : "s");
    s_pick(st, st->wave_size, wave + 1);
}

static void s_on_failed(s_step_t *st)
{
    if (!st->dep.strategy.auto_revert)
        return;
    st->entered_rollback = true;
    s_transition(st, DS_ROLLOUT_ROLLING_BACK, st->dep.wave,
                 "rolling back %u worker%s to version %llu", st->dep.n_touched,
                 st->dep.n_touched == 1 ? "" : "s", (s_ull_t)st->dep.prev_version);
}

/*  Level-triggered: every selected worker not assigned the previous
    version gets it; touched workers no longer selected get it once, when
    the rollback starts (their assignment is not in the input). */
static void s_revert_assignments(s_step_t *st)
{
    uint64_t prev = st->dep.prev_version;
    for (uint32_t i = 0; i < st->in->n_workers; i++) {
        const ds_rollout_worker_t *w = &st->in->workers[i];
        if (w->assigned != prev)
            s_assign(st, w->name, prev, st->dep.wave);
    }
    for (uint32_t i = 0; st->entered_rollback && i < st->dep.n_touched; i++)
        if (!s_find_worker(st->in, st->dep.touched[i].worker))
            s_assign(st, st->dep.touched[i].worker, prev, st->dep.wave);
}

static void s_on_rolling_back(s_step_t *st)
{
    uint64_t prev = st->dep.prev_version, now = st->in->now_ms;
    s_revert_assignments(st);
    const char *waiting = NULL;
    uint32_t down = 0;
    for (uint32_t i = 0; i < st->dep.n_touched && !waiting; i++) {
        const ds_rollout_worker_t *w = s_find_worker(st->in, st->dep.touched[i].worker);
        if (!w || !w->up)
            down++;
        else if (!s_runs(w, prev))
            waiting = w->name;
    }
    if (!waiting) {
        s_transition(st, DS_ROLLOUT_ROLLED_BACK, st->dep.wave,
                     "every worker that got version %llu runs version %llu again%s",
                     (s_ull_t)st->dep.version, (s_ull_t)prev,
                     down ? " (down or removed workers get it when they return)" : "");
        return;
    }
    uint64_t since = st->dep.progress_at_ms;
    if (now > since && now - since > st->dep.strategy.progress_deadline_ms)
        s_transition(st, DS_ROLLOUT_ROLLED_BACK, st->dep.wave,
                     "version %llu is assigned everywhere, but %s has not confirmed it after "
                     "%llu ms",
                     (s_ull_t)prev, waiting, (s_ull_t)(now - since));
}

static void s_handle(s_step_t *st)
{
    switch (st->dep.state) {
    case DS_ROLLOUT_PENDING:
        s_on_pending(st);
        break;
    case DS_ROLLOUT_CANARY:
        s_on_canary(st);
        break;
    case DS_ROLLOUT_BAKING:
        s_on_baking(st);
        break;
    case DS_ROLLOUT_CANARY_PASSED:
        s_on_canary_passed(st);
        break;
    case DS_ROLLOUT_PROMOTING:
        s_on_promoting(st);
        break;
    case DS_ROLLOUT_FAILED:
        s_on_failed(st);
        break;
    case DS_ROLLOUT_ROLLING_BACK:
        s_on_rolling_back(st);
        break;
    default: /* paused: frozen; succeeded, rolled_back, aborted: done */
        break;
    }
}

/* ---- input checks ------------------------------------------------- */

static int s_check_input(const ds_rollout_input_t *in, char *err, size_t errlen)
{
    const ds_deployment_t *dep = in->dep;
    if (!dep || (in->n_workers && !in->workers))
        return ds_errf(err, errlen, DS_EINVAL, "rollout: no deployment or no worker array");
    if (in->n_workers > DS_MAX_WORKERS)
        return ds_errf(err, errlen, DS_EINVAL, "rollout: %u workers exceed the limit of %u",
                       in->n_workers, DS_MAX_WORKERS);
    if (dep->state > DS_ROLLOUT_STATE_MAX || dep->paused_from > DS_ROLLOUT_STATE_MAX)
        return ds_errf(err, errlen, DS_EINVAL, "rollout: state %u is out of range", dep->state);
    for (uint32_t i = 0; i < in->n_workers; i++) {
        const char *name = in->workers[i].name, *prev = i ? in->workers[i - 1].name : NULL;
        if (!name)
            return ds_errf(err, errlen, DS_EINVAL, "rollout: worker %u has no name", i);
        if (prev && strcmp(prev, name) >= 0)
            return ds_errf(err, errlen, DS_EINVAL,
                           "rollout: workers must be sorted by name without duplicates: "
                           "\"%s\" follows \"%s\"",
                           name, prev);
    }
    for (uint32_t i = 0; i < dep->n_touched; i++) {
        const char *name = dep->touched[i].worker;
        if (!name || (i && strcmp(dep->touched[i - 1].worker, name) >= 0))
            return ds_errf(err, errlen, DS_EINVAL,
                           "rollout: deployment %llu: touched workers are not sorted by name",
                           (s_ull_t)dep->id);
    }
    return 0;
}

static int s_begin(s_step_t *st, const ds_rollout_input_t *in, ds_rollout_out_t *out, char *err,
                   size_t errlen)
{
    if (!in || !out)
        return ds_errf(err, errlen, DS_EINVAL, "rollout: no input or no output");
    out->n = 0;
    out->n_texts = 0;
    int rc = s_check_input(in, err, errlen);
    if (rc)
        return rc;
    const ds_strategy_t *s = &in->dep->strategy;
    *st = (s_step_t){.in = in, .dep = *in->dep, .out = out, .err = err, .errlen = errlen};
    st->total = in->n_workers;
    st->canaries = s_target(s->canary, s->canary_percent, st->total);
    st->wave_size = s_target(s->max_parallel, s->max_parallel_percent, st->total);
    return 0;
}

int ds_rollout_step(const ds_rollout_input_t *in, ds_rollout_out_t *out, char *err, size_t errlen)
{
    s_step_t st;
    int rc = s_begin(&st, in, out, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < S_MAX_CHAIN && !st.stop && !st.rc; i++) {
        uint8_t state = st.dep.state;
        uint32_t wave = st.dep.wave;
        s_handle(&st);
        if (st.dep.state == state && st.dep.wave == wave)
            break;
    }
    return st.rc;
}

/* ---- admin actions ------------------------------------------------ */

static const char *s_by(const char *by)
{
    return by && *by ? by : "an admin";
}

static int s_refuse(s_step_t *st, const char *verb)
{
    const ds_deployment_t *d = &st->dep;
    if (!ds_rollout_is_live(d))
        return ds_errf(st->err, st->errlen, DS_ESTATE,
                       "%s: no live deployment of %s (the last one, version %llu, ended %s)", verb,
                       d->service ? d->service : "the service", (s_ull_t)d->version,
                       ds_rollout_state_name(d->state));
    if (d->state == DS_ROLLOUT_PAUSED)
        return ds_errf(st->err, st->errlen, DS_ESTATE,
                       "%s: the deployment of version %llu is paused (in %s); resume it first",
                       verb, (s_ull_t)d->version, ds_rollout_state_name(d->paused_from));
    return ds_errf(st->err, st->errlen, DS_ESTATE,
                   "%s: nothing to %s, version %llu failed and is rolling back to version %llu",
                   verb, verb, (s_ull_t)d->version, (s_ull_t)d->prev_version);
}

int ds_rollout_promote(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out,
                       char *err, size_t errlen)
{
    s_step_t st;
    int rc = s_begin(&st, in, out, err, errlen);
    if (rc)
        return rc;
    const ds_deployment_t *d = &st.dep;
    uint64_t baked = in->now_ms > d->state_at_ms ? in->now_ms - d->state_at_ms : 0;
    switch (d->state) {
    case DS_ROLLOUT_BAKING:
        s_transition(&st, DS_ROLLOUT_PROMOTING, 0,
                     "promoted by %s after %llu of %llu ms of bake (rest of the bake skipped)",
                     s_by(by), (s_ull_t)baked, (s_ull_t)d->strategy.bake_ms);
        return st.rc;
    case DS_ROLLOUT_CANARY_PASSED:
        s_transition(&st, DS_ROLLOUT_PROMOTING, 0, "promoted by %s", s_by(by));
        return st.rc;
    case DS_ROLLOUT_PENDING:
    case DS_ROLLOUT_CANARY:
        return ds_errf(err, errlen, DS_ESTATE,
                       "promote: the canary of version %llu is not healthy yet (state %s); "
                       "promote is possible once it is baking",
                       (s_ull_t)d->version, ds_rollout_state_name(d->state));
    case DS_ROLLOUT_PROMOTING:
        return ds_errf(err, errlen, DS_ESTATE,
                       "promote: nothing to promote, the deployment is promoting wave %u/%u",
                       d->wave, s_total_waves(&st));
    default:
        return s_refuse(&st, "promote");
    }
}

int ds_rollout_pause(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out, char *err,
                     size_t errlen)
{
    s_step_t st;
    int rc = s_begin(&st, in, out, err, errlen);
    if (rc)
        return rc;
    const ds_deployment_t *d = &st.dep;
    if (s_is_forward(d->state)) {
        s_transition(&st, DS_ROLLOUT_PAUSED, d->wave, "paused by %s in %s", s_by(by),
                     ds_rollout_state_name(d->state));
        return st.rc;
    }
    if (d->state == DS_ROLLOUT_PAUSED)
        return ds_errf(err, errlen, DS_ESTATE, "pause: the deployment is already paused (in %s)",
                       ds_rollout_state_name(d->paused_from));
    if (ds_rollout_is_live(d))
        return ds_errf(err, errlen, DS_ESTATE,
                       "pause: a rollback cannot be paused (version %llu failed and is rolling "
                       "back to version %llu); abort it instead",
                       (s_ull_t)d->version, (s_ull_t)d->prev_version);
    return s_refuse(&st, "pause");
}

int ds_rollout_resume(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out,
                      char *err, size_t errlen)
{
    s_step_t st;
    int rc = s_begin(&st, in, out, err, errlen);
    if (rc)
        return rc;
    const ds_deployment_t *d = &st.dep;
    if (d->state == DS_ROLLOUT_PAUSED) {
        if (!s_is_forward(d->paused_from))
            return ds_errf(err, errlen, DS_EINVAL, "resume: paused from %s, which cannot resume",
                           ds_rollout_state_name(d->paused_from));
        s_transition(&st, d->paused_from, d->wave, "resumed by %s in %s", s_by(by),
                     ds_rollout_state_name(d->paused_from));
        return st.rc;
    }
    if (ds_rollout_is_live(d))
        return ds_errf(err, errlen, DS_ESTATE, "resume: the deployment is not paused (it is %s)",
                       ds_rollout_state_name(d->state));
    return s_refuse(&st, "resume");
}

int ds_rollout_abort(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out, char *err,
                     size_t errlen)
{
    s_step_t st;
    int rc = s_begin(&st, in, out, err, errlen);
    if (rc)
        return rc;
    const ds_deployment_t *d = &st.dep;
    if (!ds_rollout_is_live(d))
        return s_refuse(&st, "abort");
    s_transition(&st, DS_ROLLOUT_ABORTED, d->wave,
                 "aborted by %s in %s; assignments left as they are", s_by(by),
                 ds_rollout_state_name(d->state == DS_ROLLOUT_PAUSED ? d->paused_from : d->state));
    return st.rc;
}

/* ---- applying decisions ------------------------------------------- */

static char *s_strdup(ds_arena_t *arena, const char *s)
{
    size_t len = strlen(s);
    char *copy = ds_arena_alloc(arena, len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}

/*  Makes room for one more touched entry, growing geometrically. */
static int s_touch_reserve(ds_deployment_t *dep, ds_arena_t *arena)
{
    uint32_t cap = dep->touched_cap > dep->n_touched ? dep->touched_cap : dep->n_touched;
    if (dep->n_touched < cap)
        return 0;
    uint32_t grown = cap < 8 ? 8 : cap * 2;
    ds_rollout_touch_t *t = ds_arena_alloc(arena, (size_t)grown * sizeof *t);
    if (!t)
        return DS_ENOMEM;
    if (dep->n_touched)
        memcpy(t, dep->touched, (size_t)dep->n_touched * sizeof *t);
    dep->touched = t;
    dep->touched_cap = grown;
    return 0;
}

static int s_touch_add(ds_deployment_t *dep, const ds_rollout_decision_t *d, ds_arena_t *arena)
{
    bool found;
    uint32_t pos = s_touch_pos(dep, d->worker, &found);
    if (found)
        return 0;
    if (dep->n_touched >= DS_MAX_WORKERS)
        return DS_ELIMIT;
    char *name = s_strdup(arena, d->worker);
    if (!name || s_touch_reserve(dep, arena))
        return DS_ENOMEM;
    memmove(&dep->touched[pos + 1], &dep->touched[pos],
            (size_t)(dep->n_touched - pos) * sizeof dep->touched[0]);
    dep->touched[pos] = (ds_rollout_touch_t){name, d->wave, d->at_ms};
    dep->n_touched++;
    return 0;
}

static int s_check_decision(const ds_rollout_decision_t *d)
{
    if (d->kind == DS_ROLLOUT_TRANSITION)
        return d->state <= DS_ROLLOUT_STATE_MAX ? 0 : DS_EINVAL;
    if (d->kind == DS_ROLLOUT_ASSIGN)
        return d->worker && *d->worker ? 0 : DS_EINVAL;
    return d->kind == DS_ROLLOUT_EVENT ? 0 : DS_EINVAL;
}

int ds_rollout_apply(ds_deployment_t *dep, const ds_rollout_decision_t *d, ds_arena_t *arena)
{
    int rc = s_check_decision(d);
    if (rc)
        return rc;
    if (d->kind == DS_ROLLOUT_ASSIGN) {
        if (d->version == 0 || d->version != dep->version)
            return 0;
        return s_touch_add(dep, d, arena);
    }
    if (d->kind != DS_ROLLOUT_TRANSITION)
        return 0;
    char *reason = s_strdup(arena, d->reason ? d->reason : "");
    if (!reason)
        return DS_ENOMEM;
    s_set_state(dep, d->state, d->wave, d->at_ms);
    dep->reason = reason;
    if (d->state == DS_ROLLOUT_FAILED)
        dep->failure = reason;
    return 0;
}

void ds_rollout_batch_fill(ds_rollout_batch_t *batch, const ds_deployment_t *dep,
                           const ds_rollout_out_t *out)
{
    *batch = (ds_rollout_batch_t){
        .service = dep->service,
        .deployment_id = dep->id,
        .from_state = dep->state,
        .from_wave = dep->wave,
        .from_progress_at_ms = dep->progress_at_ms,
        .n_decisions = out->n,
        .decisions = out->items,
    };
}

int ds_rollout_apply_batch(ds_deployment_t *dep, const ds_rollout_batch_t *batch, ds_arena_t *arena)
{
    if (batch->deployment_id != dep->id || batch->from_state != dep->state ||
        batch->from_wave != dep->wave || batch->from_progress_at_ms != dep->progress_at_ms)
        return DS_ECONFLICT;
    for (uint32_t i = 0; i < batch->n_decisions; i++)
        if (s_check_decision(&batch->decisions[i]))
            return DS_EINVAL;
    for (uint32_t i = 0; i < batch->n_decisions; i++) {
        int rc = ds_rollout_apply(dep, &batch->decisions[i], arena);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- progress ----------------------------------------------------- */

void ds_rollout_converge(const ds_rollout_input_t *in, ds_rollout_out_t *out)
{
    out->n = 0;
    out->n_texts = 0;
    const ds_deployment_t *dep = in->dep;
    uint64_t target;
    if (dep->state == DS_ROLLOUT_SUCCEEDED)
        target = dep->version;
    else if (dep->state == DS_ROLLOUT_ROLLED_BACK)
        target = dep->prev_version;
    else
        return;
    for (uint32_t i = 0; i < in->n_workers && out->n < out->cap; i++) {
        const ds_rollout_worker_t *w = &in->workers[i];
        if (w->assigned == target || !w->up)
            continue;
        out->items[out->n++] = (ds_rollout_decision_t){.kind = DS_ROLLOUT_ASSIGN,
                                                       .at_ms = in->now_ms,
                                                       .worker = w->name,
                                                       .version = target,
                                                       .reason = ""};
    }
}

void ds_rollout_progress(const ds_rollout_input_t *in, ds_rollout_progress_t *p)
{
    const ds_deployment_t *dep = in->dep;
    const ds_strategy_t *s = &dep->strategy;
    *p = (ds_rollout_progress_t){.wave = dep->wave, .total = in->n_workers};
    s_step_t st = {.in = in, .dep = *dep, .total = in->n_workers};
    st.canaries = s_target(s->canary, s->canary_percent, st.total);
    st.wave_size = s_target(s->max_parallel, s->max_parallel_percent, st.total);
    p->canaries = st.canaries;
    p->waves = s_total_waves(&st);
    for (uint32_t i = 0; i < in->n_workers; i++) {
        const ds_rollout_worker_t *w = &in->workers[i];
        p->down += !w->up;
        p->updated += w->assigned == dep->version;
        p->running += s_runs(w, dep->version);
        p->healthy += s_healthy(w, dep->version);
    }
    bool back = dep->state == DS_ROLLOUT_ROLLING_BACK || dep->state == DS_ROLLOUT_ROLLED_BACK;
    for (uint32_t i = 0; back && i < dep->n_touched; i++) {
        const ds_rollout_worker_t *w = s_find_worker(in, dep->touched[i].worker);
        p->reverted += w && s_runs(w, dep->prev_version);
    }
}

void ds_rollout_summary(const ds_rollout_input_t *in, char *buf, size_t len)
{
    ds_rollout_progress_t p;
    ds_rollout_progress(in, &p);
    const ds_deployment_t *d = in->dep;
    char phase[64], extra[64] = "";
    uint8_t shown = d->state == DS_ROLLOUT_PAUSED ? d->paused_from : d->state;
    if (shown == DS_ROLLOUT_PROMOTING && d->wave > 0)
        s_fmt(phase, sizeof phase, "%s%s wave %u/%u",
              d->state == DS_ROLLOUT_PAUSED ? "paused, " : "", "promoting", d->wave, p.waves);
    else if (d->state == DS_ROLLOUT_PAUSED)
        s_fmt(phase, sizeof phase, "paused (in %s)", ds_rollout_state_name(d->paused_from));
    else
        s_fmt(phase, sizeof phase, "%s", ds_rollout_state_name(d->state));
    if (p.down)
        s_fmt(extra, sizeof extra, ", %u down", p.down);
    if (d->state == DS_ROLLOUT_ROLLING_BACK || d->state == DS_ROLLOUT_ROLLED_BACK)
        s_fmt(extra + strlen(extra), sizeof extra - strlen(extra), ", %u/%u reverted", p.reverted,
              d->n_touched);
    s_fmt(buf, len, "%s: %u/%u updated, %u healthy%s", phase, p.updated, p.total, p.healthy, extra);
}
