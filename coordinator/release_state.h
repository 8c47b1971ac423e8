/*  coordinator/release_state.h - the release-state commands of the
    replicated state machine: deploy, promote, pause, resume, abort,
    rollback and the rollout controller's batches (docs/release-state.md).

    Every member applies the same command bytes to the same tables with
    the same result: time comes from the command's ts_ms, identity from
    its client, deployment ids from the entry's Raft index. Nothing here
    reads a clock or talks to workers; deciding which workers move to a
    version is the rollout controller's job on the leader
    (coordinator/rollout.h), whose batches are applied here.

    Tables written (storage/state.h):
      services     name -> ds_service_record_t
      releases     (service, version) -> ds_release_t, immutable
      deployments  name -> ds_deployment_t (the latest deployment)
      history      (service, seq) -> ds_history_t
      workers, assignments (through coordinator/worker_state.h)
*/
#ifndef DS_COORDINATOR_RELEASE_STATE_H
#define DS_COORDINATOR_RELEASE_STATE_H

#include "coordinator/fsm.h"
#include "coordinator/rollout.h"
#include "protocol/arena.h"
#include "protocol/codec.h"
#include "protocol/spec.h"
#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

/*  A service, created by its first deploy. */
typedef struct {
    char *name;
    uint64_t created_at_ms;
    uint64_t current_version;   /* the version that should run: the latest deployment's, or
                                   its previous version once it rolls back */
    uint64_t last_good_version; /* the latest version whose deployment succeeded; 0 = none */
} ds_service_record_t;

/*  A release, as stored. Immutable: `outcome` is the outcome when it was
    written ("live"); what became of it later is in the history and the
    deployment record (see docs/release-state.md). */
typedef struct {
    uint64_t version;
    ds_spec_t spec;
    char *created_by; /* the client that deployed it */
    uint64_t created_at_ms;
    char *outcome; /* "live", "succeeded", "failed", "rolled_back", "aborted" */
} ds_release_t;

/*  One history row. `seq` is the row's key (1, 2, 3... per service). */
typedef struct {
    uint64_t seq;
    uint64_t version;
    char *event;   /* "deploy", "abort", "promote", "pause", "resume", "rollback"; for the
                      controller's rows a state name ("canary", "succeeded"...) or an
                      event name ("skip") */
    char *outcome; /* the deployment's outcome after the event, as for releases */
    uint64_t created_at_ms;
    char *by;     /* the client, "" for the controller */
    char *reason; /* the request's reason or the controller's explanation */
} ds_history_t;

extern const ds_desc_t ds_service_record_desc;
extern const ds_desc_t ds_release_desc;
extern const ds_desc_t ds_history_desc;

/*  Applies a release-state command (DS_CMD_DEPLOY .. DS_CMD_ROLLBACK, or
    DS_CMD_ROLLOUT) whose decoded body is `body`, in the transaction of
    entry `index`. Returns 0; a deterministic rejection that changes
    nothing once the caller discards the nested transaction: DS_EINVAL
    (invalid spec or name; a rollout batch with a malformed decision or
    one that assigns a version that is not a release), DS_ECONFLICT
    (deploy while a deployment is live, without force; a rollout batch
    computed from another record: another deployment id, state, wave or
    progress time), DS_ENOTFOUND (unknown service, no deployment, missing
    release), DS_ESTATE (the deployment's state refuses the action, or
    rollback to the current version); or a storage error (DS_ENOMEM,
    DS_ECORRUPT, ...).

    DS_CMD_ROLLOUT (body ds_rollout_batch_t) applies the controller's
    decisions: the batch to the deployment record (ds_rollout_apply_batch),
    each ASSIGN to the worker registry (ds_worker_state_assign; a worker
    that is no longer registered is skipped), each TRANSITION and EVENT as
    a history row by "" (the controller), and a transition into succeeded
    or rolling_back to the service record (docs/release-state.md). */
int ds_release_state_apply(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd, const void *body)
    __attribute__((warn_unused_result));

/*  Name of the outcome of a deployment in its current state: "live" while
    ds_rollout_is_live(), else "succeeded", "failed", "rolled_back" or
    "aborted". Never NULL. */
const char *ds_release_state_outcome(const ds_deployment_t *dep);

/* ---- reads, for the leader and for status and history replies ---- */

/*  Reads service `name` into *out; its strings live in `arena`. Returns 0,
    DS_ENOTFOUND, DS_EINVAL (bad name), DS_ENOMEM, DS_ECORRUPT or a store
    error. */
int ds_release_state_service(ds_txn_t *txn, const char *name, ds_arena_t *arena,
                             ds_service_record_t *out) __attribute__((warn_unused_result));

/*  Reads the latest deployment of `service` into *out (strings in
    `arena`). Returns as ds_release_state_service. */
int ds_release_state_deployment(ds_txn_t *txn, const char *service, ds_arena_t *arena,
                                ds_deployment_t *out) __attribute__((warn_unused_result));

/*  Reads release `version` of `service` into *out (strings in `arena`).
    Returns as ds_release_state_service. */
int ds_release_state_release(ds_txn_t *txn, const char *service, uint64_t version,
                             ds_arena_t *arena, ds_release_t *out)
    __attribute__((warn_unused_result));

/*  The release `rollback` without --to goes back to: the last good
    version when the service is not on it (a deployment is live, or one
    failed), otherwise the newest release older than the current one
    whose deployment succeeded (history). *target is 0 when there is
    none. Returns 0 or a storage error. */
int ds_release_state_rollback_target(ds_txn_t *txn, const ds_service_record_t *svc,
                                     uint64_t *target) __attribute__((warn_unused_result));

/*  Calls fn(ctx, row) for the history of `service`, newest first, at most
    `limit` rows (0 = all). The row and its strings are valid only during
    the call. fn returns 0 to go on, > 0 to stop, < 0 to fail with that
    code. Returns 0, fn's negative code, DS_ENOMEM, DS_ECORRUPT or a store
    error. An unknown service has no history (0, no call). */
typedef int (*ds_release_history_fn)(void *ctx, const ds_history_t *row);
int ds_release_state_history(ds_txn_t *txn, const char *service, size_t limit,
                             ds_release_history_fn fn, void *ctx)
    __attribute__((warn_unused_result));

#endif
