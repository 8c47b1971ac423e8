/*  storage/hardstate.h - Raft hard state: term, vote, commit.

    Stored in DS_DB_RAFT_META under "hardstate" as three big-endian u64s.
    Raft must persist term and vote before it answers any message that
    depends on them; saving inside the same transaction as appended
    entries (ds_hardstate_save_txn) costs one fsync for both.
*/
#ifndef DS_STORAGE_HARDSTATE_H
#define DS_STORAGE_HARDSTATE_H

#include <stdint.h>

#include "storage/store.h"

typedef struct {
    uint64_t term;
    uint64_t vote; /* member id voted for in `term`, 0 = none */
    uint64_t commit;
} ds_hardstate_t;

/*  Saves *hs, replacing the previous hard state. Returns 0 or a store
    error (DS_ESTORE_FULL, DS_EIO...). */
int ds_hardstate_save_txn(ds_txn_t *txn, const ds_hardstate_t *hs)
    __attribute__((warn_unused_result));
int ds_hardstate_save(ds_store_t *s, const ds_hardstate_t *hs) __attribute__((warn_unused_result));

/*  Loads the hard state into *hs; a store that never saved one gives all
    zeros. Returns 0, DS_ECORRUPT (stored value has the wrong size) or a
    store error. */
int ds_hardstate_load_txn(ds_txn_t *txn, ds_hardstate_t *hs) __attribute__((warn_unused_result));
int ds_hardstate_load(ds_store_t *s, ds_hardstate_t *hs) __attribute__((warn_unused_result));

#endif
