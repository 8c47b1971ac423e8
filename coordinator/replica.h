/*  coordinator/replica.h - a durable Raft member: the pure core on a
    write-ahead log (storage/wal.h: the log and hard state, in DIR/wal)
    and LMDB (the state tables, the applied index, the snapshot).

    A replica owns the Raft core (coordinator/raft.h), the WAL and the
    member's store (storage/). It restores the core from both on open, and
    ds_replica_process() runs the ready/advance loop with the persistence
    rule kept: entries, hard state and snapshots are durable (WAL sync;
    LMDB commit for a snapshot) before the messages of the same ready go
    out through the send hook; committed entries are then applied to the
    state tables, each with its applied index in the same transaction, and
    reported to the applied hook. docs/coordinator.md, "The replica".

    It takes snapshots by itself once `snapshot_entries` entries were
    applied since the last one and, with `snapshot_log_percent` P, once
    those entries hold at least P % of the last image's bytes (so that
    exporting a large state costs no more than the log it replaces), or
    once they hold `snapshot_log_max` bytes:
    the state tables are exported as a state image (on a thread of its
    own, storage/exporter.h, from the last committed state; the loop
    takes the result at a later ds_replica_process), handed to the core
    (which ships it to lagging followers in chunks), stored, and the WAL
    segments it covers are deleted. A snapshot received from the leader
    replaces the state tables and the snapshot in one transaction, then
    resets the WAL.

    A leader does not wait for its own flush: its readies are written at
    once and flushed on the WAL's background thread while the caller
    goes on feeding messages (ds_raft_advance_unsynced), and only when a
    commit needs its own copy (ds_replica_flush_waiting); the core counts
    the leader's own copy towards a quorum once the flush completed
    (ds_replica_wakeup_fd). Committed entries are applied at once, even
    before the leader's own flush (a majority holds them durably); the
    WAL is flushed before any LMDB commit, so the durable state tables
    never get ahead of the local log. Followers, candidates, and any ready that
    installs a snapshot or changes the term or vote wait for the
    background flush and then write synchronously.

    No sockets, no clock: the caller feeds ticks and messages through
    ds_replica_raft() and calls ds_replica_process() after each input.
*/
#ifndef DS_COORDINATOR_REPLICA_H
#define DS_COORDINATOR_REPLICA_H

#include "coordinator/raft.h"
#include "storage/store.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ds_replica ds_replica_t;

typedef struct {
    /* Sends one Raft message (after what it depends on is durable). */
    void (*send)(void *ctx, const ds_raft_msg_t *msg);
    /* Applies a committed DS_ENTRY_NORMAL entry inside `txn` (the batch
       transaction itself: DS_STATE_APPLY_IN_PLACE): returns 0 with the
       entry's result in *verdict (a refusal whose own changes the hook
       already discarded, as ds_apply_entry does), or a storage error,
       which stops the replica. */
    int (*apply)(void *ctx, ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict);
    /* Called after the transaction that applied `index` committed, with
       the apply result (0 for no-op and configuration entries). */
    void (*applied)(void *ctx, uint64_t index, uint64_t term, int result);
    /* A confirmed ReadIndex: serve it once ds_replica_applied() >= index. */
    void (*read)(void *ctx, const ds_raft_read_state_t *rs);
    /* Something the core reports (role changes, ...), for logs. */
    void (*event)(void *ctx, const ds_raft_event_t *ev);
    /* The state tables were replaced by a snapshot at `index`. */
    void (*installed)(void *ctx, uint64_t index);
    void *ctx;
} ds_replica_hooks_t;

typedef struct {
    ds_raft_config_t raft;     /* id, voters, timing; applied is filled in */
    ds_store_opts_t store;     /* LMDB options */
    uint64_t snapshot_entries; /* applied entries between snapshots (0 = 8192) */
    /* and the bytes of those entries, in percent of the last image's
       (0 = by entries alone; above) */
    uint32_t snapshot_log_percent;
    /* but never more log bytes than this between snapshots (0 = 64 MiB):
       the core keeps that log in memory, and a restart replays it */
    uint64_t snapshot_log_max;
    ds_replica_hooks_t hooks;
} ds_replica_config_t;

/*  Opens the store in `dir` (and the WAL in `dir`/wal) and restores the core from it (a fresh
    directory bootstraps cfg->raft.voters). On success *out is a replica
    the caller destroys. Returns 0, or a DS_E code with `err` filled:
    DS_EINVAL (configuration), DS_ECORRUPT (stored state inconsistent),
    or a store error. */
int ds_replica_open(ds_replica_t **out, const char *dir, const ds_replica_config_t *cfg, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/*  Destroys the core and closes the store; sets *self_p to NULL. Accepts
    NULL. */
void ds_replica_destroy(ds_replica_t **self_p);

/*  The core, for tick/step/propose/read_index/transfer. Owned by the
    replica. */
ds_raft_t *ds_replica_raft(ds_replica_t *self);

/*  The store, for reads (ds_store_read). Owned by the replica. */
ds_store_t *ds_replica_store(ds_replica_t *self);

/*  Makes what was applied durable: commits the store's batch transaction
    (see s_apply in replica.c). The node calls it every 100 ms; the
    replica also does every 256 applying readies, before every other
    write and at close. Returns 0 or a storage error. */
int ds_replica_commit_applied(ds_replica_t *self) __attribute__((warn_unused_result));

/*  Processes every pending ready: persist, send, apply, advance; then
    takes a snapshot if one is due. Returns 0, or a storage error (with
    ds_replica_errmsg) after which the member must stop: its disk no
    longer follows its Raft state. */
int ds_replica_process(ds_replica_t *self) __attribute__((warn_unused_result));

/*  A file descriptor that polls readable when a background flush of the
    leader's log finished: call ds_replica_process() then. -1 while no
    flush ran yet (poll it again after each ds_replica_process()). */
int ds_replica_wakeup_fd(const ds_replica_t *self);

/*  True when a commit waits for the leader's own flush and the followers
    may still complete it first (see s_flush_when_needed in replica.c):
    the caller calls ds_replica_flush_now() if this stays true for a
    moment (the node waits DS_NODE_FLUSH_GRACE_MS). */
bool ds_replica_flush_waiting(const ds_replica_t *self);

/*  Starts the background flush of the leader's log now. Returns 0 or a
    storage error (as ds_replica_process). */
int ds_replica_flush_now(ds_replica_t *self) __attribute__((warn_unused_result));

/*  The last index applied to the state tables. */
uint64_t ds_replica_applied(const ds_replica_t *self);

/*  The message of the last failure. Owned by the replica. */
const char *ds_replica_errmsg(const ds_replica_t *self);

/*  Waits for a snapshot export running on its thread and takes the
    snapshot (what ds_replica_process does once the export is done);
    nothing when none runs. For tests that step replicas in lockstep.
    Returns 0 or the error that stops the replica. */
int ds_replica_finish_snapshot(ds_replica_t *self) __attribute__((warn_unused_result));

#endif
