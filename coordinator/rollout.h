/*  coordinator/rollout.h - the deployment controller of one service (pure).

    A deployment puts release `version` of a service on its selected
    workers: a canary first, a bake, then waves, or a failure and a
    rollback to the last good release (docs/rollout.md has the state
    diagram and every rule).

    The controller has no I/O, no clock and no randomness. The leader gives
    it the replicated deployment record, the selected workers with their
    replicated assignment and their observed (soft) status, an optional
    canary-analysis verdict and the time; it returns decisions as data:
    assign a version to a worker, enter a state, record a history event.
    The leader proposes the decisions of one call as one Raft command (see
    ds_rollout_batch_t); every member applies them to the record with
    ds_rollout_apply_batch() and to the worker registry itself.

    Level-triggered and idempotent: the decisions of a call depend only on
    its input, and once they are applied, a call with the same
    observations and time returns none. A new leader that calls it with
    the replicated record continues the same deployment.

    Ownership: the controller never allocates. Decisions borrow worker
    names from the input (workers or the record) and reason texts from the
    ds_rollout_out_t; they stay valid while both do. ds_rollout_apply*()
    copy what the record keeps into the caller's arena.
*/
#ifndef DS_COORDINATOR_ROLLOUT_H
#define DS_COORDINATOR_ROLLOUT_H

#include "protocol/arena.h"
#include "protocol/codec.h"
#include "protocol/spec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Deployment states. The numbers are stored and travel on the wire:
    never renumber, add new states at the end. */
typedef enum {
    DS_ROLLOUT_PENDING = 0,       /* recorded, nothing assigned yet */
    DS_ROLLOUT_CANARY = 1,        /* canaries assigned, waiting for them to be healthy */
    DS_ROLLOUT_BAKING = 2,        /* canaries healthy; must stay so for bake_ms */
    DS_ROLLOUT_CANARY_PASSED = 3, /* baked, no auto_promote: waits for promote */
    DS_ROLLOUT_PROMOTING = 4,     /* waves of max_parallel workers */
    DS_ROLLOUT_SUCCEEDED = 5,     /* every selected worker is assigned the version */
    DS_ROLLOUT_FAILED = 6,        /* failed; final unless auto_revert */
    DS_ROLLOUT_ROLLING_BACK = 7,  /* touched workers assigned the previous version */
    DS_ROLLOUT_ROLLED_BACK = 8,   /* they run it again */
    DS_ROLLOUT_PAUSED = 9,        /* frozen by an admin; resume returns to paused_from */
    DS_ROLLOUT_ABORTED = 10       /* stopped by an admin or a forced deploy */
} ds_rollout_state_t;
#define DS_ROLLOUT_STATE_MAX DS_ROLLOUT_ABORTED

/*  Kinds of decisions. */
typedef enum {
    DS_ROLLOUT_ASSIGN = 1,     /* worker should run version (0 = nothing) */
    DS_ROLLOUT_TRANSITION = 2, /* the deployment enters state/wave; a history record */
    DS_ROLLOUT_EVENT = 3       /* a history record without a state change */
} ds_rollout_kind_t;

/*  Kinds of history events (DS_ROLLOUT_EVENT). Stable numbers. */
typedef enum {
    DS_ROLLOUT_EV_SKIP = 1,   /* down workers passed over by a canary or wave pick */
    DS_ROLLOUT_EV_VERDICT = 2 /* the canary analysis' verdict behind a transition (the
                                 leader adds it to the batch; the controller never does) */
} ds_rollout_event_t;
#define DS_ROLLOUT_EV_MAX DS_ROLLOUT_EV_VERDICT

/*  The canary-analysis verdict, computed elsewhere from telemetry. */
typedef enum {
    DS_ROLLOUT_VERDICT_NONE = 0, /* no analysis configured: health alone decides */
    DS_ROLLOUT_VERDICT_PASS = 1,
    DS_ROLLOUT_VERDICT_FAIL = 2,        /* fails the bake */
    DS_ROLLOUT_VERDICT_INCONCLUSIVE = 3 /* keeps baking (the analyser applies on_inconclusive) */
} ds_rollout_verdict_result_t;

#define DS_ROLLOUT_REASON_MAX 256u /* bytes of one reason, with its NUL */
#define DS_ROLLOUT_MAX_TEXTS  16u  /* reasons one call can produce */

/*  Capacity of decisions that always suffices for one call. */
#define DS_ROLLOUT_DECISIONS_CAP(n_workers, n_touched)                                             \
    ((uint32_t)(n_workers) + (uint32_t)(n_touched) + DS_ROLLOUT_MAX_TEXTS)

/*  A worker that got the new version in this deployment. */
typedef struct {
    char *worker;
    uint32_t wave;           /* 0 = canary, k = wave k */
    uint64_t assigned_at_ms; /* when the assignment was decided */
} ds_rollout_touch_t;

/*  The replicated deployment record (stored in LMDB, see
    ds_deployment_desc). Strings are owned by whoever built the record
    (the decoder's arena, or the caller of ds_rollout_init). */
typedef struct {
    uint64_t id; /* unique per cluster; chosen by the caller */
    char *service;
    uint64_t version;      /* the release being deployed */
    uint64_t prev_version; /* the last good release; 0 = none (first deploy) */
    uint8_t state;         /* ds_rollout_state_t */
    uint8_t paused_from;   /* state to resume to, when paused */
    uint32_t wave;         /* 0 = canary; k >= 1 = promoting wave k */
    uint64_t started_at_ms;
    uint64_t state_at_ms;    /* when the current state was entered */
    uint64_t progress_at_ms; /* last transition, wave start or resume */
    char *reason;            /* why the deployment is in its state */
    char *failure;           /* why it failed (its `failed` reason), kept while it rolls back */
    ds_strategy_t strategy;  /* from the release's spec, defaults applied */
    uint32_t n_touched;
    ds_rollout_touch_t *touched; /* sorted by worker name (strcmp) */
    uint32_t touched_cap;        /* not on the wire: room in touched, 0 = n_touched */
} ds_deployment_t;

/*  One selected worker as the leader sees it. */
typedef struct {
    char *name;                /* borrowed; the array is sorted by name, no duplicates */
    bool up;                   /* not marked down by the heartbeat timeout */
    uint64_t up_since_ms;      /* soft: when it last came up; 0 = unknown */
    uint64_t assigned;         /* replicated: version it should run; 0 = none */
    uint64_t version;          /* observed: version of its instance; 0 = none */
    uint8_t state;             /* observed: ds_inst_state_t (protocol/messages.h) */
    uint8_t health;            /* observed: ds_health_state_t */
    uint64_t healthy_since_ms; /* soft: passing continuously since; 0 = not passing */
    uint32_t restarts;         /* observed */
    const char *reason;        /* observed: why the instance failed or fails; may be NULL */
} ds_rollout_worker_t;

typedef struct {
    uint8_t result;     /* ds_rollout_verdict_result_t */
    const char *reason; /* e.g. "error ratio 0.04 > 0.01"; may be NULL */
} ds_rollout_verdict_t;

/*  Everything one call looks at. */
typedef struct {
    const ds_deployment_t *dep;
    const ds_rollout_worker_t *workers; /* the selected workers, sorted by name */
    uint32_t n_workers;                 /* at most DS_MAX_WORKERS */
    uint64_t now_ms;                    /* the leader's clock */
    ds_rollout_verdict_t verdict;       /* for dep->version's canary; zero = none */
} ds_rollout_input_t;

/*  One decision. Borrowed strings: see the file comment. */
typedef struct {
    uint8_t kind;     /* ds_rollout_kind_t */
    uint8_t state;    /* transition: the state entered */
    uint8_t event;    /* event: ds_rollout_event_t */
    uint32_t wave;    /* transition: the wave; assign: the wave the worker joins */
    uint64_t at_ms;   /* the call's now_ms */
    char *worker;     /* assign */
    uint64_t version; /* assign */
    char *reason;     /* transition, event; "" for assign */
} ds_rollout_decision_t;

/*  The decisions of one call, in the order they must be applied. */
typedef struct {
    ds_rollout_decision_t *items; /* the caller's array of cap elements */
    uint32_t cap;
    uint32_t n;
    uint32_t n_texts;
    char texts[DS_ROLLOUT_MAX_TEXTS][DS_ROLLOUT_REASON_MAX];
} ds_rollout_out_t;

/*  What the leader proposes for one call: the decisions, and the record
    state they were computed from, so a batch that lost a race (an admin
    action or another batch applied first) changes nothing. */
typedef struct {
    char *service;
    uint64_t deployment_id;
    uint8_t from_state;
    uint32_t from_wave;
    uint64_t from_progress_at_ms;
    uint32_t n_decisions;
    ds_rollout_decision_t *decisions;
} ds_rollout_batch_t;

/*  Numbers for status and progress lines. */
typedef struct {
    uint32_t wave;     /* current wave, 0 = canary */
    uint32_t waves;    /* waves after the canary, estimated from the workers now */
    uint32_t canaries; /* the canary target */
    uint32_t updated;  /* selected workers that got the new version */
    uint32_t running;  /* selected workers running it */
    uint32_t healthy;  /* selected workers healthy on it */
    uint32_t reverted; /* touched workers running the previous version again */
    uint32_t down;     /* selected workers that are down */
    uint32_t total;    /* selected workers */
} ds_rollout_progress_t;

extern const ds_desc_t ds_deployment_desc;
extern const ds_desc_t ds_rollout_decision_desc;
extern const ds_desc_t ds_rollout_batch_desc;

/*  Returns the stable name of a state ("canary", "rolling_back"), or
    "unknown" for a number out of range. Never NULL. */
const char *ds_rollout_state_name(int state);

/*  Returns the state named `name`, or DS_EUNKNOWN. */
int ds_rollout_state_from_name(const char *name);

/*  Returns the stable name of an event kind ("skip"), or "unknown". */
const char *ds_rollout_event_name(int event);

/*  True while the deployment is live: a new deploy must abort it first.
    A failed deployment with auto_revert is live until it rolled back. */
bool ds_rollout_is_live(const ds_deployment_t *dep);

/*  Fills `dep` as a new pending deployment started at now_ms. `service`
    is borrowed; `strategy` is copied. */
void ds_rollout_init(ds_deployment_t *dep, uint64_t id, const char *service, uint64_t version,
                     uint64_t prev_version, const ds_strategy_t *strategy, uint64_t now_ms);

/*  Prepares `out` to collect up to `cap` decisions into `items`. */
void ds_rollout_out_init(ds_rollout_out_t *out, ds_rollout_decision_t *items, uint32_t cap);

/*  The controller: resets `out`, then fills it with the decisions that
    move the deployment on (none when there is nothing to do). Returns 0;
    DS_EINVAL when the input is malformed (workers not sorted or
    duplicated, a state out of range) or DS_ELIMIT when `out` is smaller
    than DS_ROLLOUT_DECISIONS_CAP, with `err` set. On failure the partial
    decisions must not be applied. */
int ds_rollout_step(const ds_rollout_input_t *in, ds_rollout_out_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Admin actions. Each resets `out` and, when the state allows it, fills
    it with the transition to apply (`by` names who asked, for the
    reason) and returns 0; otherwise returns DS_ESTATE with `err` saying
    why, e.g. "promote: nothing to promote, the deployment is promoting
    wave 2/3". Promote is allowed in baking (it skips the rest of the
    bake) and canary_passed; pause in pending, canary, baking,
    canary_passed and promoting; resume in paused; abort in every live
    state. The next ds_rollout_step() does the work. */
int ds_rollout_promote(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out,
                       char *err, size_t errlen) __attribute__((warn_unused_result));
int ds_rollout_pause(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));
int ds_rollout_resume(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out,
                      char *err, size_t errlen) __attribute__((warn_unused_result));
int ds_rollout_abort(const ds_rollout_input_t *in, const char *by, ds_rollout_out_t *out, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/*  For a deployment that has ended, keeps the workers on the release the
    service runs: resets `out`, then assigns every selected worker that is
    up and assigned another version the deployment's version (succeeded)
    or its previous version (rolled_back; 0 = nothing). A worker that
    joins later gets the current release this way. A failed deployment
    without auto-revert and an aborted one leave assignments alone, as
    does a live one (ds_rollout_step's job). Never fails; at most out->cap
    decisions. */
void ds_rollout_converge(const ds_rollout_input_t *in, ds_rollout_out_t *out);

/*  Applies one decision to the record: a transition sets state, wave,
    timestamps and reason; assigning dep->version to a worker adds it to
    touched (once); other decisions change nothing in the record (the
    worker registry is the caller's). Strings are copied into `arena`,
    which must outlive `dep`. Returns 0, DS_EINVAL for a malformed
    decision, or DS_ENOMEM when the arena is full. */
int ds_rollout_apply(ds_deployment_t *dep, const ds_rollout_decision_t *d, ds_arena_t *arena)
    __attribute__((warn_unused_result));

/*  Fills `batch` for proposing the decisions in `out`, computed from
    `dep` (both borrowed). */
void ds_rollout_batch_fill(ds_rollout_batch_t *batch, const ds_deployment_t *dep,
                           const ds_rollout_out_t *out);

/*  Applies a whole batch in order. Returns DS_ECONFLICT, changing
    nothing, when the record is no longer the one the batch was computed
    from (another id, state, wave or progress time); otherwise as
    ds_rollout_apply(). */
int ds_rollout_apply_batch(ds_deployment_t *dep, const ds_rollout_batch_t *batch, ds_arena_t *arena)
    __attribute__((warn_unused_result));

/*  Computes the progress numbers. Never fails. */
void ds_rollout_progress(const ds_rollout_input_t *in, ds_rollout_progress_t *p);

/*  Writes a one-line summary for status and --wait lines into buf, e.g.
    "promoting wave 2/3: 7/12 updated, 6 healthy, 1 down". */
void ds_rollout_summary(const ds_rollout_input_t *in, char *buf, size_t len);

#endif
