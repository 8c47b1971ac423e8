/*  storage/wal.h - the Raft log and hard state in an append-only,
    checksummed write-ahead log: one write and one fdatasync per batch.

    Why not LMDB: a durable LMDB commit costs two device flushes (data,
    then the meta page) and several page writes even for one 100-byte
    entry; an append to a preallocated file costs one write and one
    flush, about a third of the time on this project's machines
    (bench/README.md). The Raft core keeps its whole log in memory
    (coordinator/raft_log.c), so the log on disk is only ever appended
    to and read back once, at start: exactly what a WAL does well.

    Layout: DIR holds segment files named by a hexadecimal sequence
    number (`0000000000000001.wal`), each preallocated
    (DS_WAL_SEGMENT_SIZE, or larger for one big batch). A segment is a
    sequence of records, each 8-byte aligned:

        u32 crc32c (of everything after it up to the end of the payload)
        u32 payload length
        u8  type, 3 bytes zero
        payload, zero-padded to a multiple of 8 (the padding is checked)

    Types (integers little-endian):
        ENTRY      index u64, term u64, entry type u8, data
        HARDSTATE  term u64, vote u64, commit u64
        RESET      index u64, term u64   (a snapshot was installed:
                                          the log restarts after index)

    An ENTRY with an index at or below the last one truncates the log
    from that index first (Raft's conflicting suffix), so truncation
    needs no record of its own. Every new segment starts with the
    current HARDSTATE, so old segments can be deleted whole.

    Reading back: segments in sequence order; in the last segment the
    first record whose checksum or shape fails ends the log (a write
    torn by a crash: it was never acknowledged) and the tail from there
    is cleared before new records go after it; the same failure in an
    earlier segment is corruption (DS_ECORRUPT, nothing is guessed).

    Durability: records are buffered by the append calls and reach the
    disk, in order, with ds_wal_sync() (write + fdatasync), or with
    ds_wal_flush() (write only: for the commit index, which Raft never
    needs durable). A new segment's directory entry is synced before
    anything in it counts as durable.

    Not thread-safe: one owner (the replica) calls everything; only the
    flush of ds_wal_sync_start runs on the WAL's own background thread.
*/
#ifndef DS_STORAGE_WAL_H
#define DS_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/raft_msg.h"

#define DS_WAL_SEGMENT_SIZE ((size_t)16 << 20) /* 16 MiB */

typedef struct ds_wal ds_wal_t;

/*  What the log holds, as read at open. entries[] is contiguous in
    index (entries[i].index == entries[0].index + i) and owned by the
    WAL until ds_wal_release_replay(): it is freed then, or at close. */
typedef struct {
    uint64_t term, vote, commit; /* the last hard state; zeros if none */
    bool has_hardstate;
    uint64_t reset_index, reset_term; /* the last RESET, zeros if none */
    const ds_raft_entry_t *entries;
    size_t n;
} ds_wal_replay_t;

/*  Opens (creating DIR and its first segment when there is none) and
    reads the log back into *replay. Returns 0, DS_ECORRUPT (with what
    and where in err), DS_EIO or DS_ENOMEM. */
int ds_wal_open(ds_wal_t **out, const char *dir, ds_wal_replay_t *replay, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  One segment's bytes read as ds_wal_open reads them, without files
    (for the fuzz target and tests). */
typedef struct {
    ds_wal_replay_t replay; /* entries point into the decoded bytes */
    uint64_t end;           /* offset after the last good record */
    bool torn;              /* a damaged record (not the zeros after the last) stopped it */
} ds_wal_decoded_t;

/*  Decodes `data` as segment 1. Returns 0, DS_ECORRUPT (a record that
    is well formed but breaks the log: a hole, an entry before a reset;
    `err` says which) or DS_ENOMEM. On success free *out with
    ds_wal_decoded_free; on failure *out is empty. */
int ds_wal_decode(const uint8_t *data, size_t size, ds_wal_decoded_t *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void ds_wal_decoded_free(ds_wal_decoded_t *d);

/*  Frees what the replay holds (call once the core has copied it). */
void ds_wal_release_replay(ds_wal_t *w);

/*  Closes the files and frees everything; buffered records not yet
    written are lost (as in a crash). Accepts NULL and *w NULL. */
void ds_wal_close(ds_wal_t **w);

/*  Buffers entries (n >= 1, consecutive indexes). entries[0].index may
    be at or below the last index, which truncates from there, but never
    at or below the last reset's index; right after a reset it must be
    that index + 1. A log with no entry and no reset (new, or its old
    segments compacted away) takes any first index. Returns 0, DS_EINVAL
    (indexes not consecutive, a hole after the last entry, an index at or
    before the reset, data over DS_MAX_ENTRY_SIZE) or DS_ENOMEM. */
int ds_wal_append(ds_wal_t *w, const ds_raft_entry_t *entries, size_t n)
    __attribute__((warn_unused_result));

/*  Buffers a hard state. Returns 0 or DS_ENOMEM. */
int ds_wal_hardstate(ds_wal_t *w, uint64_t term, uint64_t vote, uint64_t commit)
    __attribute__((warn_unused_result));

/*  Buffers a reset: every entry is dropped and the next append must be
    index + 1 (a snapshot at index/term was installed and saved before).
    Returns 0 or DS_ENOMEM. */
int ds_wal_reset(ds_wal_t *w, uint64_t index, uint64_t term) __attribute__((warn_unused_result));

/*  Writes the buffered records and flushes them to the device. Returns 0
    or DS_EIO (with the reason in ds_wal_errmsg): after DS_EIO the WAL
    refuses everything, since what reached the disk is unknown. */
int ds_wal_sync(ds_wal_t *w) __attribute__((warn_unused_result));

/*  Writes the buffered records without a flush. Returns 0 or DS_EIO. */
int ds_wal_flush(ds_wal_t *w) __attribute__((warn_unused_result));

/*  Writes the buffered records and starts their flush on a background
    thread (storage/flusher.h, started here the first time), returning at
    once; *pos is the position that becomes durable with them (bytes
    written since open). Completion is seen with ds_wal_sync_poll (when
    ds_wal_sync_fd is readable) or ds_wal_sync_wait. Every other write
    path (ds_wal_sync, a new segment, close) waits for a running flush
    first, so records reach the disk in order. Returns 0, DS_EIO or
    DS_ENOMEM. */
int ds_wal_sync_start(ds_wal_t *w, uint64_t *pos) __attribute__((warn_unused_result));

/*  The position known durable in *durable (see ds_wal_sync_start);
    does not wait. Returns 0, or DS_EIO if a background flush failed
    (then the WAL refuses everything, as after a failed ds_wal_sync). */
int ds_wal_sync_poll(ds_wal_t *w, uint64_t *durable) __attribute__((warn_unused_result));

/*  Waits for the background flush to finish; then as ds_wal_sync_poll. */
int ds_wal_sync_wait(ds_wal_t *w, uint64_t *durable) __attribute__((warn_unused_result));

/*  Bytes written since open (all segments): the position that
    ds_wal_sync_start would flush up to, after a ds_wal_flush. */
uint64_t ds_wal_written(const ds_wal_t *w);

/*  The position known durable so far, without asking the background
    flusher (ds_wal_sync_poll does). */
uint64_t ds_wal_durable(const ds_wal_t *w);

/*  A file descriptor that polls readable when a background flush
    finished; -1 before the first ds_wal_sync_start. Owned by the WAL. */
int ds_wal_sync_fd(const ds_wal_t *w);

/*  Deletes every segment but the current one whose entries all have
    index <= `index` (the index of a snapshot saved durably elsewhere).
    Returns 0 or DS_EIO. */
int ds_wal_compact(ds_wal_t *w, uint64_t index) __attribute__((warn_unused_result));

/*  Last index appended (buffered included), 0 when the log is empty. */
uint64_t ds_wal_last_index(const ds_wal_t *w);

/*  Segment files on disk (for tests and metrics). */
size_t ds_wal_segments(const ds_wal_t *w);

/*  Bytes of records written to the current segment. */
uint64_t ds_wal_offset(const ds_wal_t *w);

/*  The last error's text. */
const char *ds_wal_errmsg(const ds_wal_t *w);

#endif
