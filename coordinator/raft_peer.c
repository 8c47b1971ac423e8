/*  coordinator/raft_peer.c - read-only views of the leader's progress. */
#include "coordinator/raft.h"
#include "coordinator/raft_impl.h"

int ds_raft_peer_status(const ds_raft_t *self, uint64_t id, ds_raft_peer_status_t *out)
{
    if (self->role != DS_RAFT_LEADER)
        return DS_ENOTLEADER;
    for (uint32_t i = 0; i < self->n_prs; i++) {
        const ds_raft_pr_t *pr = &self->prs[i];
        if (pr->id != id)
            continue;
        out->id = id;
        out->match = pr->match;
        out->next = pr->next;
        out->recent_active = id == self->id || pr->recent_active;
        return 0;
    }
    return DS_ENOTFOUND;
}
