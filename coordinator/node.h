/*  coordinator/node.h - one running coordinator: sockets, clock and the
    replica wired together.

    The node binds the peer endpoint (Raft traffic from the other
    members), the rpc endpoint (dsctl and workers) and, if configured, the
    http endpoint (health and metrics). It runs one loop: wait for a
    message or the next Raft tick, feed the replica, let it persist, send,
    apply, and answer the clients whose requests committed or whose reads
    were confirmed. Everything that arrives in one wake-up is fed before
    the replica processes, so concurrent proposals share one fsync.

    A write is answered only after its entry committed on a majority
    (fsynced on each) and applied here; a read is answered only after a
    ReadIndex round confirmed this member still leads, unless the client
    asked for a stale read.
*/
#ifndef DS_COORDINATOR_NODE_H
#define DS_COORDINATOR_NODE_H

#include "coordinator/config.h"

#include <signal.h>
#include <stddef.h>

typedef struct ds_node ds_node_t;

/*  Opens the store, restores Raft, binds every endpoint. On success *out
    is a node the caller runs and destroys. Returns 0 or a DS_E code with
    `err` saying what failed and what to do. */
int ds_node_new(ds_node_t **out, const ds_coord_config_t *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Runs until *stop becomes nonzero (set it from a signal handler), or
    until a storage failure makes continuing unsafe. Returns 0 on a clean
    stop, or the DS_E code of the failure (already logged). */
int ds_node_run(ds_node_t *self, volatile sig_atomic_t *stop);

/*  Closes sockets and the store; sets *self_p to NULL. Accepts NULL. */
void ds_node_destroy(ds_node_t **self_p);

#endif
