/*  storage/state_image.h - the state machine as bytes, for Raft snapshots.

    A state image holds every row of the state tables (storage/state.h)
    and the applied index; a leader exports one, ships it in snapshot
    chunks, and a follower imports it in one transaction. The importer
    receives these bytes from the network, so the parser is a pure
    function that bounds every length against the buffer and checks
    everything before anything is written.

    Format (all integers big-endian):
      header   "DSSI"  version u8 (=1)  3 zero bytes  applied u64
      record*  table u8 (DS_STATE_TABLE_MIN..MAX)  klen u16 (1..DS_STORE_MAX_KEY)
               vlen u32 (<= DS_MAX_ENTRY_SIZE)  key  value
      trailer  0 u8  count u64 (records)  crc32 u32 (IEEE, of every byte
               before it)
    Records are in strictly increasing (table, key) order - the order
    export writes them - so a key appears once, and keys must be well
    formed for their table (ds_state_key_valid). Nothing may follow the
    trailer.
*/
#ifndef DS_STORAGE_STATE_IMAGE_H
#define DS_STORAGE_STATE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "storage/state.h"
#include "storage/store.h"

#define DS_STATE_IMAGE_VERSION 1u
#define DS_STATE_IMAGE_HEADER  16u
#define DS_STATE_IMAGE_TRAILER 13u

typedef struct {
    uint64_t applied;   /* applied index the image was taken at */
    uint64_t n_records; /* rows in the image */
} ds_state_image_info_t;

/*  The image trailer's checksum: CRC-32 (IEEE) of n bytes. Pure. Tests
    and fuzzers use it to build images whose checksum is right. */
uint32_t ds_state_image_crc32(const uint8_t *p, size_t n);

/*  Called per record by ds_state_image_parse; key and val point into the
    image buffer. Return 0 to go on or a negative code to stop with it. */
typedef int (*ds_state_image_fn)(void *ctx, ds_state_table_t table, const uint8_t *key, size_t klen,
                                 const uint8_t *val, size_t vlen);

/*  Validates the image buf/len completely (header, checksum, every record
    and the order) and only then calls fn (may be NULL) for each record in
    order. Fills *info (may be NULL). Pure: no I/O, no allocation.
    Returns 0, or DS_ETRUNCATED (input ends inside a field), DS_ECORRUPT
    (bad magic, checksum, order, count, reserved bytes or key),
    DS_EVERSION, DS_EUNKNOWN (table id), DS_ETOOBIG (a length above its
    limit), DS_ETRAILING, or fn's code; writes a message to errbuf (may be
    NULL) on failure. */
int ds_state_image_parse(const uint8_t *buf, size_t len, ds_state_image_info_t *info,
                         ds_state_image_fn fn, void *ctx, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

/*  Writes an image of every state table and the applied index as seen by
    txn. On success *out is a malloc'd buffer of *out_len bytes that the
    caller frees with free(). Returns 0, DS_ENOMEM, DS_ECORRUPT (a stored
    key is malformed) or a store error. */
int ds_state_export_txn(ds_txn_t *txn, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/*  ds_state_export_txn in its own read transaction. */
int ds_state_export(ds_store_t *s, uint8_t **out, size_t *out_len)
    __attribute__((warn_unused_result));

/*  The same from any thread (ds_store_read_detached): the last committed
    state, while the store's owner goes on writing. *applied is the
    image's applied index; a failure's reason goes to err. */
int ds_state_export_detached(ds_store_t *s, uint8_t **out, size_t *out_len, uint64_t *applied,
                             char *err, size_t errlen) __attribute__((warn_unused_result));

/*  Replaces every state table with the rows of the image and sets the
    applied index to the image's, in the caller's write transaction. The
    image is validated first; on any error nothing should be committed
    (the caller's callback returns the error). Does not touch the Raft
    log or snapshot meta: the coordinator installs a snapshot by calling,
    in one transaction, ds_state_import_txn, ds_raftlog_reset_txn and
    ds_snapmeta_save_txn. It does not check that the image is newer than
    the current state; Raft decides that. Returns 0, a parse error (see
    ds_state_image_parse, message in ds_store_errmsg) or a store error. */
int ds_state_import_txn(ds_txn_t *txn, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

/*  ds_state_import_txn in its own write transaction. */
int ds_state_import(ds_store_t *s, const uint8_t *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
