/*  coordinator/apply.h - applies committed commands to the state tables.

    Runs inside the transaction that ds_state_apply_txn() opens for the
    entry (see storage/state.h), so a command's changes, its client's
    session and the applied index commit together or not at all.
*/
#ifndef DS_COORDINATOR_APPLY_H
#define DS_COORDINATOR_APPLY_H

#include "protocol/raft_msg.h"
#include "storage/store.h"

/*  Applies the command in `entry`. A retried request (same client, a
    request id it has already applied) changes nothing and returns the
    first result again. Returns 0; a deterministic rejection (DS_EINVAL
    for a malformed command, DS_EUNKNOWN for an unknown type, or the
    command's own refusal), which ds_state_apply_txn records as the
    entry's result; or a storage error, which stops the member. */
int ds_apply_entry(ds_txn_t *txn, const ds_raft_entry_t *entry);

#endif
