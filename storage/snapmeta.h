/*  storage/snapmeta.h - metadata of the latest Raft snapshot.

    Stored in DS_DB_RAFT_META under "snapmeta": index u64, term u64,
    n_voters u32, then n_voters u64 member ids, all big-endian. The
    snapshot's data itself is a state image (storage/state.h,
    ds_state_export), and a consistent copy of the whole environment is
    ds_store_copy_to() (storage/store.h).
*/
#ifndef DS_STORAGE_SNAPMETA_H
#define DS_STORAGE_SNAPMETA_H

#include "protocol/raft_msg.h"
#include "storage/store.h"

/*  Saves *meta (n_voters at most DS_MAX_MEMBERS). Returns 0, DS_EINVAL
    or a store error. */
int ds_snapmeta_save_txn(ds_txn_t *txn, const ds_snapshot_meta_t *meta)
    __attribute__((warn_unused_result));
int ds_snapmeta_save(ds_store_t *s, const ds_snapshot_meta_t *meta)
    __attribute__((warn_unused_result));

/*  Loads the snapshot metadata into *meta; a store without a snapshot
    gives all zeros (index 0 means "no snapshot"). Returns 0, DS_ECORRUPT
    (bad size or voter count) or a store error. */
int ds_snapmeta_load_txn(ds_txn_t *txn, ds_snapshot_meta_t *meta)
    __attribute__((warn_unused_result));
int ds_snapmeta_load(ds_store_t *s, ds_snapshot_meta_t *meta) __attribute__((warn_unused_result));

#endif
