/*  coordinator/apply.h - applies committed commands to the state tables.

    Runs inside the transaction that ds_state_apply_txn() opens for the
    entry (see storage/state.h), so a command's changes, its client's
    session and the applied index commit together or not at all.
*/
#ifndef DS_COORDINATOR_APPLY_H
#define DS_COORDINATOR_APPLY_H

#include "protocol/limits.h"
#include "protocol/raft_msg.h"
#include "storage/store.h"

/*  Applies the command in `entry`. Returns 0 with the command's result in
    *verdict: 0, or a deterministic refusal (DS_EINVAL for a malformed
    command, DS_EUNKNOWN for an unknown type, or the command's own
    refusal), whose changes are discarded while its client's session still
    records it. A retried request (same client, a request id already
    applied) changes nothing and gets the first result again. Any other
    return is a storage error, which stops the member. */
int ds_apply_entry(ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict);

/*  What an applied command changes outside the state tables: the key
    registry of the member (protocol/keys.h). */
typedef enum {
    DS_APPLY_KEY_NONE = 0,
    DS_APPLY_KEY_PIN = 1,   /* a worker joined with `key`: admit it as worker `name` */
    DS_APPLY_KEY_REVOKE = 2 /* worker `name` was removed: revoke `key` */
} ds_apply_key_t;

typedef struct {
    ds_apply_key_t kind;
    char key[DS_MAX_NAME + 1];  /* Z85; "" when the worker has no key (insecure) */
    char name[DS_MAX_NAME + 1]; /* the worker */
} ds_apply_effect_t;

/*  ds_apply_entry that also reports, in *effect (cleared first), the
    key change of a command that applied with verdict 0. */
int ds_apply_entry_ex(ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict,
                      ds_apply_effect_t *effect);

#endif
