/*  coordinator/worker_state.h - the replicated worker registry: who the
    workers are and which version of which service each should run.

    Commands of the replicated state machine (coordinator/fsm.h) write it:
    DS_CMD_WORKER_JOIN (ds_worker_state_join) and the ASSIGN decisions of
    a DS_CMD_ROLLOUT batch (ds_worker_state_assign, called by
    coordinator/release_state.c). Every member applies the same command
    bytes with the same result: time is the command's ts_ms, never a
    clock. What a worker reports about itself (heartbeats, instance
    status) is soft state on the leader and is not stored here.

    Tables written (storage/state.h):
      workers      name -> ds_worker_record_t
      assignments  (worker, service) -> ds_assignment_record_t

    A worker's `generation` counts changes of its assignments: the worker
    compares it with the generation it applies and fetches its assignment
    (ds_worker_state_assignment) when it is behind.

    All functions take a transaction of the store (ds_store_read for
    reads, the entry's write transaction for writes). Errors: 0, or a
    negative DS_E code; DS_ENOMEM, DS_ECORRUPT (an unreadable record; the
    transaction is marked failed) and store errors are storage failures.
*/
#ifndef DS_COORDINATOR_WORKER_STATE_H
#define DS_COORDINATOR_WORKER_STATE_H

#include "coordinator/fsm.h"
#include "protocol/arena.h"
#include "protocol/codec.h"
#include "protocol/messages.h"
#include "protocol/types.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stdint.h>

/*  A worker, as stored. */
typedef struct {
    char *name;
    char *worker_id;
    uint32_t n_labels;
    ds_kv_t *labels;
    ds_resources_t resources;
    char *software_version;
    uint64_t joined_at_ms;   /* first join (command ts) */
    uint64_t rejoined_at_ms; /* latest join */
    uint64_t generation;     /* 1 after the first join; +1 on every change of its assignments */
    char *key;               /* its pinned CURVE public key (Z85); "" joined insecurely */
} ds_worker_record_t;
extern const ds_desc_t ds_worker_record_desc;

/* An assignment row as stored: (worker, service) -> */
typedef struct {
    char *service;
    uint64_t version;       /* >= 1; a row with 0 is deleted instead */
    uint64_t deployment_id; /* the deployment that assigned it */
    uint64_t assigned_at_ms;
} ds_assignment_record_t;
extern const ds_desc_t ds_assignment_record_desc;

/*  DS_CMD_WORKER_JOIN (body ds_join_req_t), in the transaction of entry
    `index` with time cmd->ts_ms: creates the worker record, or updates
    it on a rejoin (worker_id, labels, resources, software version,
    rejoined_at_ms). generation starts at 1 and a rejoin does not change
    it; joined_at_ms is the first join's.
    A join whose worker_id differs from the stored one replaces the
    record's id: the name identifies the worker, and a re-imaged machine
    keeps its name and its assignments (the worker fetches them again).
    The join token is not checked here: the leader admits a worker before
    it proposes the command.
    Returns 0; DS_EINVAL for a bad name (empty, longer than DS_MAX_NAME),
    an empty worker_id, more than DS_MAX_LABELS labels, a bad label key
    (empty, longer than DS_MAX_NAME), a label value longer than
    DS_MAX_LABEL or a duplicate label key; or a storage failure. */
int ds_worker_state_join(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd,
                         const ds_join_req_t *req) __attribute__((warn_unused_result));

/*  The body of DS_CMD_WORKER_JOIN_KEYED: a join as the leader admitted
    it, with the worker's public key and the token it presented. */
typedef struct {
    ds_join_req_t join; /* its token is "": the secret stays out of the log */
    char *key;          /* the worker's CURVE public key (Z85); "" in --insecure mode */
    char *token_id;     /* "" when the key was known already (a rejoin) */
    char *token_hash;   /* hex SHA-256 of the token's secret */
} ds_worker_join_cmd_t;
extern const ds_desc_t ds_worker_join_cmd_desc;

/*  DS_CMD_WORKER_JOIN_KEYED: as ds_worker_state_join, and also
    - with a token (token_id not ""): the token must be usable at
      cmd->ts_ms (ds_token_state_consume: one use is counted in this
      transaction) or the join is DS_EFORBIDDEN; its labels are added to
      the worker's (the token's value wins for a key in both);
    - pins `key` in the record: a worker whose record holds another key is
      refused with DS_EEXIST (remove it first: dsctl workers remove), so a
      token can never take over a joined worker's name.
    Returns 0, DS_EINVAL, DS_EFORBIDDEN, DS_EEXIST or a storage failure. */
int ds_worker_state_join_keyed(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd,
                               const ds_worker_join_cmd_t *body)
    __attribute__((warn_unused_result));

/*  DS_CMD_WORKER_REMOVE: deletes worker `name` and all its assignments,
    and copies its pinned key (or "") into `key` (DS_MAX_NAME + 1 bytes)
    so the caller can revoke it. Returns 0, DS_ENOTFOUND, DS_EINVAL or a
    storage failure. */
int ds_worker_state_remove(ds_txn_t *txn, const char *name, char key[DS_MAX_NAME + 1])
    __attribute__((warn_unused_result));

/*  Sets the version `worker` should run of `service` (0 = nothing: the
    row is deleted), recording the deployment and the time. Bumps the
    worker's generation if the version changed; assigning the version the
    worker already has (or 0 when it has none) changes nothing, not even
    the row's deployment id.
    Returns 0; DS_ENOTFOUND for an unknown worker; DS_EINVAL for a bad
    worker or service name; or a storage failure. */
int ds_worker_state_assign(ds_txn_t *txn, const char *worker, const char *service, uint64_t version,
                           uint64_t deployment_id, uint64_t ts_ms)
    __attribute__((warn_unused_result));

/*  Reads worker `name` into *out; strings live in `arena`. Returns 0,
    DS_ENOTFOUND, DS_EINVAL (bad name), DS_ENOMEM or DS_ECORRUPT. */
int ds_worker_state_get(ds_txn_t *txn, const char *name, ds_arena_t *arena, ds_worker_record_t *out)
    __attribute__((warn_unused_result));

/*  A ds_worker_state_list callback: returns 0 to go on, > 0 to stop,
    < 0 to fail with that code. */
typedef int (*ds_worker_state_fn)(void *ctx, const ds_worker_record_t *w);

/* All workers in name order; each record valid only during the call.
   Returns 0 (also when fn stopped early), fn's negative code, DS_ENOMEM,
   DS_ECORRUPT or a store error. */
int ds_worker_state_list(ds_txn_t *txn, ds_worker_state_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* The version worker should run of service; 0 when none (also for an
   unknown worker). Returns 0, DS_EINVAL (bad names), DS_ECORRUPT or a
   store error. */
int ds_worker_state_assigned(ds_txn_t *txn, const char *worker, const char *service,
                             uint64_t *version) __attribute__((warn_unused_result));

/* The worker's whole assignment as it travels to the worker: generation,
   and for each assigned service (in service name order) the version and
   the release's full spec (read from the releases table), strings in
   arena. Returns 0, DS_ENOTFOUND (unknown worker), DS_EINVAL (bad name),
   DS_ECORRUPT (an assigned release is missing or unreadable), DS_ENOMEM
   or a store error. */
int ds_worker_state_assignment(ds_txn_t *txn, const char *worker, ds_arena_t *arena,
                               ds_assignment_t *out) __attribute__((warn_unused_result));

/* True when every selector pair matches one of the worker's labels (an
   empty selector selects every worker). Pure. */
bool ds_worker_state_selected(const ds_worker_record_t *w, const ds_kv_t *selector,
                              uint32_t n_selector);

#endif
