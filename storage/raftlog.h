/*  storage/raftlog.h - the Raft log in the store.

    Entries live in DS_DB_RAFT_LOG under their index as a big-endian u64
    (so keys sort by index); the value is term (u64 be), type (u8), then
    the entry's data. Every value is validated when read: a short value,
    an unknown type, a data length above DS_MAX_ENTRY_SIZE or a hole in
    the indexes gives DS_ECORRUPT, never a crash.

    The log is contiguous: entries exist for every index in
    [first_index, last_index]. Compaction deletes a prefix and remembers
    the index and term of the last deleted entry (the "compaction point",
    in DS_DB_RAFT_META), so term(compacted index) still answers, as Raft's
    log matching check needs after a snapshot.

    Each operation comes in two forms: ds_raftlog_X(store, ...) runs it in
    its own write transaction (one fsync); ds_raftlog_X_txn(txn, ...) runs
    it inside a caller's transaction so the coordinator can append entries
    and save hard state with one commit.
*/
#ifndef DS_STORAGE_RAFTLOG_H
#define DS_STORAGE_RAFTLOG_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/raft_msg.h"
#include "storage/store.h"

/*  Entries read from the log. One allocation holds the array and every
    entry's data; the caller frees it with ds_raftlog_entries_free(). */
typedef struct {
    ds_raft_entry_t *entries;
    size_t n;
    size_t bytes; /* total data bytes */
} ds_raftlog_entries_t;

/*  Appends n entries (n >= 1). entries[0].index must be last_index + 1
    and indexes must be consecutive; terms must not decrease and must not
    be below the term of the last entry; type must be a ds_entry_type_t and
    data at most DS_MAX_ENTRY_SIZE bytes. To overwrite a conflicting
    suffix, truncate first. Data is copied. Returns 0, DS_EINVAL (bad
    entries), DS_ETOOBIG, DS_ESTATE (index does not follow the log),
    DS_ECORRUPT or a store error. */
int ds_raftlog_append_txn(ds_txn_t *txn, const ds_raft_entry_t *entries, size_t n)
    __attribute__((warn_unused_result));
int ds_raftlog_append(ds_store_t *s, const ds_raft_entry_t *entries, size_t n)
    __attribute__((warn_unused_result));

/*  Reads entries [lo, hi) into *out, stopping before the data total
    would exceed max_bytes, but always returning at least one entry when
    lo < hi (like etcd's maxSize). lo == hi gives zero entries. On
    success the caller owns *out and frees it with
    ds_raftlog_entries_free(); on failure *out is empty. Returns 0,
    DS_ENOTFOUND (lo <= compacted index: those entries are gone),
    DS_EINVAL (lo > hi or hi > last_index + 1), DS_ENOMEM, DS_ECORRUPT. */
int ds_raftlog_entries_txn(ds_txn_t *txn, uint64_t lo, uint64_t hi, size_t max_bytes,
                           ds_raftlog_entries_t *out) __attribute__((warn_unused_result));
int ds_raftlog_entries(ds_store_t *s, uint64_t lo, uint64_t hi, size_t max_bytes,
                       ds_raftlog_entries_t *out) __attribute__((warn_unused_result));

/*  Frees what ds_raftlog_entries filled and zeroes *e. Accepts NULL. */
void ds_raftlog_entries_free(ds_raftlog_entries_t *e);

/*  Term of the entry at `index`; for the compaction point (including 0
    on a fresh log, term 0) the remembered term. Returns 0, DS_ENOTFOUND
    (index compacted away or beyond the last entry) or DS_ECORRUPT. */
int ds_raftlog_term_txn(ds_txn_t *txn, uint64_t index, uint64_t *term)
    __attribute__((warn_unused_result));
int ds_raftlog_term(ds_store_t *s, uint64_t index, uint64_t *term)
    __attribute__((warn_unused_result));

/*  Index of the first entry still in the log: compacted index + 1 (so
    first == last + 1 when the log is empty). Returns 0 or DS_ECORRUPT. */
int ds_raftlog_first_index_txn(ds_txn_t *txn, uint64_t *index) __attribute__((warn_unused_result));
int ds_raftlog_first_index(ds_store_t *s, uint64_t *index) __attribute__((warn_unused_result));

/*  Index of the last entry, or the compacted index when the log is empty
    (0 on a fresh store). Returns 0 or DS_ECORRUPT. */
int ds_raftlog_last_index_txn(ds_txn_t *txn, uint64_t *index) __attribute__((warn_unused_result));
int ds_raftlog_last_index(ds_store_t *s, uint64_t *index) __attribute__((warn_unused_result));

/*  Deletes every entry with index >= `index` (a no-op beyond the last).
    Returns 0, DS_ESTATE (index <= compacted index: committed history
    cannot be truncated) or a store error. */
int ds_raftlog_truncate_txn(ds_txn_t *txn, uint64_t index) __attribute__((warn_unused_result));
int ds_raftlog_truncate(ds_store_t *s, uint64_t index) __attribute__((warn_unused_result));

/*  Deletes every entry with index <= `index` and records (index, term of
    index) as the compaction point. A no-op when index <= the compacted
    index. Returns 0, DS_EINVAL (index > last index) or a store error. */
int ds_raftlog_compact_txn(ds_txn_t *txn, uint64_t index) __attribute__((warn_unused_result));
int ds_raftlog_compact(ds_store_t *s, uint64_t index) __attribute__((warn_unused_result));

/*  For snapshot install: deletes every entry and sets the compaction
    point to (index, term), so the next append must be index + 1.
    Returns 0 or a store error. */
int ds_raftlog_reset_txn(ds_txn_t *txn, uint64_t index, uint64_t term)
    __attribute__((warn_unused_result));
int ds_raftlog_reset(ds_store_t *s, uint64_t index, uint64_t term)
    __attribute__((warn_unused_result));

#endif
