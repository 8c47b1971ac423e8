/*  storage/state.h - the replicated state machine's tables.

    Values are opaque bytes (protocol/ encodes them); this module owns
    keys, ordering, immutability of releases and, above all, the applied
    index: ds_state_apply() runs an entry's changes and records its index
    in ONE write transaction, so after a crash an entry is either fully
    applied and recorded, or neither - never applied twice, never skipped.

    Tables (ds_state_table_t) and keys:
      services     name                       -> bytes
      releases     service \0 version(u64 be) -> bytes (immutable)
      deployments  service name               -> bytes
      workers      worker name                -> bytes
      assignments  worker \0 service          -> bytes
      history      service \0 seq(u64 be)     -> bytes (seq 1, 2, 3... per service)
      tokens       token id                   -> bytes
      sessions     client id                  -> bytes
      kv           key                        -> bytes
    and DS_DB_STATE_META "applied" -> u64 be.

    Names are 1..DS_MAX_NAME bytes without NUL (token ids, client ids and
    kv keys 1..DS_MAX_LABEL);
    values at most DS_MAX_ENTRY_SIZE bytes. Keys read back from disk are
    checked again: a malformed key is DS_ECORRUPT.

    All table functions take a transaction: call them from the callback of
    ds_state_apply() (writes) or ds_store_read() (reads). Values returned
    as ds_val_t point into the map and live until the transaction ends.
    List functions call fn(ctx, row) per row; fn returns 0 to go on, > 0
    to stop early (the list then returns 0), < 0 to fail with that code.
*/
#ifndef DS_STORAGE_STATE_H
#define DS_STORAGE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

/*  State tables. The numbers are stable: they appear in snapshot images. */
typedef enum {
    DS_TABLE_SERVICES = 1,
    DS_TABLE_RELEASES = 2,
    DS_TABLE_DEPLOYMENTS = 3,
    DS_TABLE_WORKERS = 4,
    DS_TABLE_ASSIGNMENTS = 5,
    DS_TABLE_HISTORY = 6,
    DS_TABLE_TOKENS = 7,
    DS_TABLE_SESSIONS = 8, /* client id -> session (exactly-once replies) */
    DS_TABLE_KV = 9        /* key -> bytes (settings, consensus tests) */
} ds_state_table_t;

#define DS_STATE_TABLE_MIN 1
#define DS_STATE_TABLE_MAX 9

/*  One row handed to a list callback. Strings and val are valid only
    during the callback. */
typedef struct {
    ds_state_table_t table;
    const char *name;  /* service / worker / token id */
    const char *name2; /* assignments: the service; otherwise NULL */
    uint64_t num;      /* releases: version; history: seq; otherwise 0 */
    const uint8_t *val;
    size_t len;
} ds_state_row_t;

typedef int (*ds_state_row_fn)(void *ctx, const ds_state_row_t *row);

/* ---- applying entries ---- */

/*  Allows index > applied + 1 (the first entry after a snapshot install
    that did not record its index). index <= applied is still refused. */
#define DS_STATE_APPLY_AFTER_SNAPSHOT 0x1u

/*  Runs fn in the caller's transaction itself, not in a nested one, for
    an fn that keeps its refusals to itself (returns 0 with its verdict
    elsewhere, and discards a refused command's changes on its own, as
    coordinator/apply.c does): a nested transaction costs LMDB two large
    allocations and a merge of dirty-page lists. Any nonzero result of
    fn is then returned as a failure (its changes may be partly made, so
    the caller aborts the transaction), and the index does not advance. */
#define DS_STATE_APPLY_IN_PLACE 0x2u

/*  Applies the entry at `index`: runs fn(txn, ctx) in a nested
    transaction and records applied = index, all in the caller's write
    transaction. Requires index == applied + 1 (see flags); otherwise
    DS_ESTATE and nothing changes. fn may be NULL (no-op and
    configuration entries still advance the index).
    fn's result decides:
      0                    its changes are kept; *result = 0.
      DS_ENOMEM, DS_EIO, DS_ECORRUPT, DS_ESTORE_FULL, or any storage
      failure inside      everything is aborted; that code is returned
                           and the index does not advance.
      any other negative   a deterministic rejection of the command
                           (DS_EEXIST, DS_EINVAL...): fn's changes are
                           discarded, the index still advances, the
                           call returns 0 and *result = the code, for
                           the client's reply.
    `result` may be NULL. */
int ds_state_apply_txn(ds_txn_t *txn, uint64_t index, unsigned flags, ds_store_write_fn fn,
                       void *ctx, int *result) __attribute__((warn_unused_result));

/*  ds_state_apply_txn in its own write transaction (one commit, one
    fsync). fn may run more than once if the map grows. */
int ds_state_apply(ds_store_t *s, uint64_t index, unsigned flags, ds_store_write_fn fn, void *ctx,
                   int *result) __attribute__((warn_unused_result));

/*  The last applied index (0 on a fresh store). Returns 0 or DS_ECORRUPT. */
int ds_state_applied_txn(ds_txn_t *txn, uint64_t *index) __attribute__((warn_unused_result));
int ds_state_applied(ds_store_t *s, uint64_t *index) __attribute__((warn_unused_result));

/*  Sets the applied index outright (snapshot import). Returns 0 or a
    store error. */
int ds_state_set_applied_txn(ds_txn_t *txn, uint64_t index) __attribute__((warn_unused_result));

/* ---- name-keyed tables: services, deployments, workers, tokens,
        sessions, kv ---- */

/*  Stores name -> val in `table` (one of the name-keyed tables;
    others assert), replacing any value. Returns 0, DS_EINVAL (bad name),
    DS_ETOOBIG (value) or a store error. */
int ds_state_put(ds_txn_t *txn, ds_state_table_t table, const char *name, const void *val,
                 size_t len) __attribute__((warn_unused_result));

/*  Looks name up. Returns 0, DS_ENOTFOUND, DS_EINVAL or a store error. */
int ds_state_get(ds_txn_t *txn, ds_state_table_t table, const char *name, ds_val_t *out)
    __attribute__((warn_unused_result));

/*  Deletes name. Returns 0, DS_ENOTFOUND, DS_EINVAL or a store error.
    Deleting a service does not delete its releases or history. */
int ds_state_del(ds_txn_t *txn, ds_state_table_t table, const char *name)
    __attribute__((warn_unused_result));

/*  Lists the table in name order. Returns 0, fn's negative code,
    DS_ECORRUPT or a store error. */
int ds_state_list(ds_txn_t *txn, ds_state_table_t table, ds_state_row_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* ---- releases (immutable) ---- */

/*  Stores release (service, version >= 1). Putting an existing version
    again with identical bytes is a no-op; with different bytes it is
    DS_EEXIST. Returns 0, DS_EEXIST, DS_EINVAL, DS_ETOOBIG or a store
    error. */
int ds_state_release_put(ds_txn_t *txn, const char *service, uint64_t version, const void *val,
                         size_t len) __attribute__((warn_unused_result));

/*  Returns 0, DS_ENOTFOUND, DS_EINVAL or a store error. */
int ds_state_release_get(ds_txn_t *txn, const char *service, uint64_t version, ds_val_t *out)
    __attribute__((warn_unused_result));

/*  Highest version of `service`. Returns 0, DS_ENOTFOUND (no release),
    DS_EINVAL, DS_ECORRUPT or a store error. */
int ds_state_release_latest(ds_txn_t *txn, const char *service, uint64_t *version)
    __attribute__((warn_unused_result));

/*  Lists the releases of `service` newest first, at most `limit` rows
    (0 = all). Returns as ds_state_list. */
int ds_state_releases_list(ds_txn_t *txn, const char *service, size_t limit, ds_state_row_fn fn,
                           void *ctx) __attribute__((warn_unused_result));

/* ---- assignments ---- */

/*  Stores (worker, service) -> val, replacing. Returns as ds_state_put. */
int ds_state_assignment_put(ds_txn_t *txn, const char *worker, const char *service, const void *val,
                            size_t len) __attribute__((warn_unused_result));
int ds_state_assignment_get(ds_txn_t *txn, const char *worker, const char *service, ds_val_t *out)
    __attribute__((warn_unused_result));
int ds_state_assignment_del(ds_txn_t *txn, const char *worker, const char *service)
    __attribute__((warn_unused_result));

/*  Lists assignments of `worker` (NULL = all workers) in (worker,
    service) order. Returns as ds_state_list. */
int ds_state_assignments_list(ds_txn_t *txn, const char *worker, ds_state_row_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/* ---- history ---- */

/*  Appends an event to the history of `service` with the next sequence
    number (1 for the first), written to *seq if not NULL. Returns as
    ds_state_put. */
int ds_state_history_append(ds_txn_t *txn, const char *service, const void *val, size_t len,
                            uint64_t *seq) __attribute__((warn_unused_result));

/*  Lists the history of `service` newest first, at most `limit` rows
    (0 = all). Returns as ds_state_list. */
int ds_state_history_list(ds_txn_t *txn, const char *service, size_t limit, ds_state_row_fn fn,
                          void *ctx) __attribute__((warn_unused_result));

/* ---- for snapshot images (state_image.c) ---- */

/*  True if key/klen is a well-formed key of `table`. Pure. */
bool ds_state_key_valid(ds_state_table_t table, const uint8_t *key, size_t klen);

/*  The database behind a table. Asserts on an unknown table. */
ds_db_t ds_state_table_db(ds_state_table_t table);

#endif
