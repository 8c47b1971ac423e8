/*  storage/store.h - one LMDB environment in a data directory.

    A ds_store_t owns one LMDB environment (data.mdb + lock.mdb in a
    directory created with mode 0700, files 0600) and a fixed set of named
    databases chosen when it is opened. Every other storage module works
    through it: write transactions run a callback that the store may run
    again after growing the memory map; read transactions run a callback
    on a consistent snapshot.

    Threads: a ds_store_t is used by one thread at a time, and transactions
    do not nest (opening one from inside another's callback is a
    programming error and asserts). That is what lets the store grow the
    memory map safely: LMDB requires that no transaction of this process is
    open while the map size changes, and between callbacks none is.

    Errors: functions that can fail return 0 or a negative DS_E* code from
    protocol/error.h. Functions on an open store also record a message for
    people in the store, read with ds_store_errmsg(); the open functions,
    which have no store yet, fill a caller's errbuf instead.
*/
#ifndef DS_STORAGE_STORE_H
#define DS_STORAGE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"

/*  Named databases. The numbers index arrays; the names on disk are in
    store.c. A store opens only the databases in its opts.dbs mask. */
typedef enum {
    DS_DB_RAFT_LOG = 0,    /* u64be index -> entry (raftlog.c) */
    DS_DB_RAFT_META = 1,   /* hard state, compaction point, snapshot meta */
    DS_DB_SERVICES = 2,    /* state machine tables (state.c) */
    DS_DB_RELEASES = 3,    /*   */
    DS_DB_DEPLOYMENTS = 4, /*   */
    DS_DB_WORKERS = 5,     /*   */
    DS_DB_ASSIGNMENTS = 6, /*   */
    DS_DB_HISTORY = 7,     /*   */
    DS_DB_TOKENS = 8,      /*   */
    DS_DB_STATE_META = 9,  /* applied index */
    DS_DB_WK_META = 10,    /* worker identity (workerstore.c) */
    DS_DB_WK_SERVICES = 11,
    DS_DB_WK_RELEASES = 12,
    DS_DB_SESSIONS = 13, /* state machine: client sessions (state.c) */
    DS_DB_KV = 14,       /* state machine: replicated key-value table */
    DS_DB_COUNT
} ds_db_t;

#define DS_STORE_DB_BIT(db) (1u << (unsigned)(db))
#define DS_STORE_DBS_COORDINATOR                                                                   \
    (DS_STORE_DB_BIT(DS_DB_RAFT_LOG) | DS_STORE_DB_BIT(DS_DB_RAFT_META) |                          \
     DS_STORE_DB_BIT(DS_DB_SERVICES) | DS_STORE_DB_BIT(DS_DB_RELEASES) |                           \
     DS_STORE_DB_BIT(DS_DB_DEPLOYMENTS) | DS_STORE_DB_BIT(DS_DB_WORKERS) |                         \
     DS_STORE_DB_BIT(DS_DB_ASSIGNMENTS) | DS_STORE_DB_BIT(DS_DB_HISTORY) |                         \
     DS_STORE_DB_BIT(DS_DB_TOKENS) | DS_STORE_DB_BIT(DS_DB_STATE_META) |                           \
     DS_STORE_DB_BIT(DS_DB_SESSIONS) | DS_STORE_DB_BIT(DS_DB_KV))
#define DS_STORE_DBS_WORKER                                                                        \
    (DS_STORE_DB_BIT(DS_DB_WK_META) | DS_STORE_DB_BIT(DS_DB_WK_SERVICES) |                         \
     DS_STORE_DB_BIT(DS_DB_WK_RELEASES))

#define DS_STORE_DEFAULT_MAP_SIZE     ((size_t)64 << 20) /* 64 MiB */
#define DS_STORE_DEFAULT_MAX_MAP_SIZE ((size_t)8 << 30)  /* 8 GiB */
#define DS_STORE_MAX_KEY              511u /* LMDB's default mdb_env_get_maxkeysize() */
#define DS_STORE_ERRMSG_SIZE          512u

typedef struct {
    size_t map_size;     /* initial memory map size in bytes; 0 = default */
    size_t max_map_size; /* the map grows by doubling up to this; 0 = default */
    bool nosync;         /* skip fsync on commit: ONLY for benchmarks and tests
                            that say so; a crash can then lose commits */
    uint32_t dbs;        /* DS_STORE_DB_BIT mask; 0 = DS_STORE_DBS_COORDINATOR */
} ds_store_opts_t;

typedef struct ds_store ds_store_t;
typedef struct ds_txn ds_txn_t;
typedef struct ds_cursor ds_cursor_t;

/*  A value read from the store. Points into the memory map: valid only
    until the transaction that read it ends or writes again. */
typedef struct {
    const uint8_t *data;
    size_t len;
} ds_val_t;

/*  Write callback: does its reads and writes through `txn` and returns 0
    to commit or a negative DS_E* code to abort (the code is returned by
    ds_store_write). It may be called more than once for one
    ds_store_write (after the map grows), so it must not keep side effects
    outside the transaction from an earlier call, or must reset them. */
typedef int (*ds_store_write_fn)(ds_txn_t *txn, void *ctx);

/*  Read callback: same contract as a write callback, on a read-only
    transaction; it is called once. */
typedef int (*ds_store_read_fn)(ds_txn_t *txn, void *ctx);

/*  Cursor positioning. */
typedef enum {
    DS_CURSOR_FIRST,
    DS_CURSOR_LAST,
    DS_CURSOR_NEXT,
    DS_CURSOR_PREV,
    DS_CURSOR_SEEK /* first key >= the given key */
} ds_cursor_op_t;

/*  Sets every field of `opts` to its default. */
void ds_store_opts_default(ds_store_opts_t *opts);

/*  Opens (creating if needed) the environment in directory `dir`. The
    directory is created with mode 0700 if missing (its parent must exist);
    an existing directory that is group- or world-writable is refused with
    DS_EPERM. `opts` may be NULL for defaults. On success *out is a new
    store the caller closes with ds_store_destroy(). On failure returns
    DS_EINVAL (bad options), DS_EPERM, DS_EIO, DS_ENOMEM or DS_ECORRUPT (not
    an LMDB file) and writes a message into errbuf (may be NULL). */
int ds_store_open(ds_store_t **out, const char *dir, const ds_store_opts_t *opts, char *errbuf,
                  size_t errlen) __attribute__((warn_unused_result));

/*  Commits the batch transaction if one is open, closes the store and
    sets *self_p to NULL. Accepts NULL and *self_p == NULL. */
void ds_store_destroy(ds_store_t **self_p);

/*  Runs fn in one write transaction and commits it. If LMDB reports that
    the map is full (on a put or at commit), the transaction is aborted,
    the map is doubled (capped at max_map_size) and fn runs again from
    scratch. Returns 0 after commit; fn's negative code if fn failed (the
    transaction is aborted); the first storage error fn ignored; or
    DS_ESTORE_FULL when the map is at max_map_size and still too small,
    DS_EIO when commit or fsync fails. */
int ds_store_write(ds_store_t *s, ds_store_write_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/*  Like ds_store_write, but the commit skips one of LMDB's two flushes
    (MDB_NOMETASYNC): the data pages reach the disk, the meta page that
    makes them current may not, so an operating-system crash or power loss
    may undo this transaction (never corrupt the store; a process crash
    loses nothing). Only for writes that are redone after such a crash,
    e.g. applying entries that the Raft log still holds. */
int ds_store_write_lazy(ds_store_t *s, ds_store_write_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/*  Runs fn in a child of the store's batch transaction: one write
    transaction that stays open across calls (begun by the first) until
    ds_store_batch_commit(), so that a stream of small writes (applying
    committed Raft entries) costs no flush each. fn's changes are visible
    at once to ds_store_read on this thread (which then reads inside the
    batch) and become durable when the batch commits. A failing fn's
    changes are discarded, the batch keeps the rest. ds_store_write and
    ds_store_write_lazy commit the batch before their own transaction, and
    ds_store_destroy commits it. A process crash loses what the batch
    holds: only for writes that are redone after a crash, like
    ds_store_write_lazy. Room: a batch begins with at most half of the
    map in use (the map is grown first) and commits before its changes
    could dirty more than half of what is free, so its commit always has
    room (a commit needs pages of its own, and LMDB discards a transaction
    whose commit fails). A call that does not fit runs again in a new
    batch, after the map grew if it must. One thread only: the batch
    belongs to the thread that opened it. Returns like ds_store_write. */
int ds_store_batch_write(ds_store_t *s, ds_store_write_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/*  Commits the batch transaction, if one is open, with the lazy commit
    (see ds_store_write_lazy). Returns 0, DS_EIO, or DS_ESTORE_FULL if
    the map had no room for the commit (what the batch held is lost). */
int ds_store_batch_commit(ds_store_t *s) __attribute__((warn_unused_result));

/*  Called right before the batch transaction commits, wherever the
    commit comes from (ds_store_batch_commit, a batch that outgrew its
    room, ds_store_write, ds_store_destroy): the place to make durable
    what the batch's contents depend on (the coordinator flushes its
    write-ahead log there, so that applied state never becomes durable
    ahead of the log it came from). Returns 0, or a DS_E code with `why`
    filled: then the batch is discarded (its owner redoes it after a
    restart, see ds_store_batch_write) and the commit fails with that
    code. */
typedef int (*ds_store_commit_hook_fn)(void *ctx, char *why, size_t whylen);

/*  Sets (or clears, with fn NULL) the hook above. */
void ds_store_set_batch_hook(ds_store_t *s, ds_store_commit_hook_fn fn, void *ctx);

/*  Writes the open batch holds (0 when none is open). */
size_t ds_store_batch_writes(const ds_store_t *s);

/*  Runs fn in one read-only transaction (inside the batch transaction
    when one is open). Returns fn's result, or DS_EIO /
    DS_ENOMEM if the transaction cannot start. */
int ds_store_read(ds_store_t *s, ds_store_read_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/*  Runs fn in a read-only transaction of its own on the last committed
    state, from any thread: made for a thread other than the store's
    owner, while the owner goes on writing (its open batch is not seen).
    A map resize by the owner waits until fn returns. fn must only read
    through `txn` (no ds_store_* calls); a failure's reason is written to
    `err`, never to the store's message. Returns fn's result, or a DS_E
    code if the transaction cannot start. */
int ds_store_read_detached(ds_store_t *s, ds_store_read_fn fn, void *ctx, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Writes a compacted, consistent copy of the environment's data file to
    the new file `path` (mode 0600; DS_EEXIST if it exists) and fsyncs it.
    The copy is a valid data.mdb: put it in an empty directory under that
    name and ds_store_open() it. Returns 0 or DS_EEXIST / DS_EIO. */
int ds_store_copy_to(ds_store_t *s, const char *path) __attribute__((warn_unused_result));

/*  The message for the last error this store reported ("" if none).
    Owned by the store; valid until its next call. */
const char *ds_store_errmsg(const ds_store_t *s);

/*  The current memory map size in bytes. */
size_t ds_store_map_size(const ds_store_t *s);

/*  The store's directory, as given to ds_store_open. */
const char *ds_store_dir(const ds_store_t *s);

/*  The store this transaction belongs to. */
ds_store_t *ds_txn_store(ds_txn_t *txn);

/*  True for a read-only transaction. */
bool ds_txn_readonly(const ds_txn_t *txn);

/*  Looks up `key` in `db`. On success *out points into the map (see
    ds_val_t). Returns 0, DS_ENOTFOUND, DS_EINVAL (empty or too long key),
    DS_ECORRUPT or DS_EIO. */
int ds_txn_get(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen, ds_val_t *out)
    __attribute__((warn_unused_result));

#define DS_PUT_NOOVERWRITE 0x1u /* fail with DS_EEXIST if the key exists */
#define DS_PUT_APPEND                                                                              \
    0x2u /* key sorts after every key in db (fast bulk load);                                      \
            DS_EEXIST if it does not */

/*  Stores key -> val in `db` (copying both). Returns 0, DS_EEXIST (see
    flags), DS_EINVAL (read-only txn, bad key size), DS_ESTORE_FULL (the
    write callback will be retried after the map grows), DS_ELIMIT (too
    many dirty pages in one transaction) or DS_EIO. */
int ds_txn_put(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen, const void *val,
               size_t vlen, unsigned flags) __attribute__((warn_unused_result));

/*  Deletes `key` from `db`. Returns 0, DS_ENOTFOUND, or an error as for
    ds_txn_put. */
int ds_txn_del(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen)
    __attribute__((warn_unused_result));

/*  Deletes every key of `db` (the database stays). Returns 0 or an error
    as for ds_txn_put. */
int ds_txn_clear(ds_txn_t *txn, ds_db_t db) __attribute__((warn_unused_result));

/*  Opens a cursor on `db`. The caller closes it with ds_cursor_destroy()
    before the transaction's callback returns. Returns 0, DS_ENOMEM or
    DS_EIO. */
int ds_cursor_open(ds_txn_t *txn, ds_db_t db, ds_cursor_t **out)
    __attribute__((warn_unused_result));

/*  Closes a cursor and sets *self_p to NULL; accepts NULL. */
void ds_cursor_destroy(ds_cursor_t **self_p);

/*  Moves the cursor (for DS_CURSOR_SEEK, to the first key >= key/klen;
    key is ignored otherwise) and returns the entry there in *k / *v
    (either may be NULL). Returns 0, DS_ENOTFOUND when there is no such
    entry, or DS_ECORRUPT / DS_EIO. */
int ds_cursor_get(ds_cursor_t *c, ds_cursor_op_t op, const void *key, size_t klen, ds_val_t *k,
                  ds_val_t *v) __attribute__((warn_unused_result));

/*  Deletes the entry under the cursor; the next DS_CURSOR_NEXT returns
    the entry after it. Returns 0 or an error as for ds_txn_put. */
int ds_cursor_del(ds_cursor_t *c) __attribute__((warn_unused_result));

/*  Runs fn inside a nested (child) write transaction of `txn`. If fn
    returns 0 its changes join `txn`; otherwise they are discarded and
    `txn` continues as before fn. Returns fn's result, or a storage error
    (for which `txn` itself is then marked failed). */
int ds_txn_nested(ds_txn_t *txn, ds_store_write_fn fn, void *ctx)
    __attribute__((warn_unused_result));

/*  True if a storage-level failure (map full, I/O, corruption detected by
    LMDB, too many dirty pages) happened in this transaction: it will not
    commit. */
bool ds_txn_failed(const ds_txn_t *txn);

/*  Records a formatted message as the store's last error and returns
    `code`. For storage modules, so messages come from one place. */
int ds_store_fail(ds_store_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Like ds_store_fail, and also marks `txn` failed when code is
    DS_ECORRUPT: data read from disk is bad, so nothing must commit on top
    of it. Returns `code`. */
int ds_txn_fail(ds_txn_t *txn, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Big-endian u64 helpers for keys, so keys sort numerically. */
void ds_store_put_u64(uint8_t out[8], uint64_t v);
uint64_t ds_store_get_u64(const uint8_t in[8]);

#endif
