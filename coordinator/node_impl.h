/*  coordinator/node_impl.h - the node's internals, shared by node*.c only. */
#ifndef DS_COORDINATOR_NODE_IMPL_H
#define DS_COORDINATOR_NODE_IMPL_H

#include "coordinator/config.h"
#include "coordinator/node.h"
#include "coordinator/replica.h"
#include "protocol/msg.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define DS_NODE_MAX_PENDING  65536u /* writes waiting for commit */
#define DS_NODE_MAX_READS    4096u  /* reads waiting for ReadIndex */
#define DS_NODE_BATCH        512u   /* messages taken per socket per wake-up */
#define DS_NODE_HELLO_MS     1000u  /* how often members advertise their rpc endpoint */
#define DS_NODE_WRITE_TTL_MS 5000u  /* a write not committed by then is answered */
#define DS_NODE_EXPIRE_MS    60000u /* how often the leader expires idle sessions */

/*  Who asked, so the answer finds them. */
typedef struct {
    zframe_t *rid; /* ROUTER routing id, owned */
    uint64_t corr_id;
    uint16_t type; /* request type */
    uint64_t deadline_ms;
} ds_caller_t;

typedef struct {
    ds_caller_t caller;
    uint64_t index;
    uint64_t term;
    char key[DS_MAX_KV_KEY + 1];
} ds_pending_write_t;

typedef struct {
    ds_caller_t caller;
    uint64_t id;    /* ReadIndex context */
    uint64_t index; /* confirmed read index, 0 = waiting */
    ds_msg_t *req;  /* the request, owned */
} ds_pending_read_t;

typedef struct {
    uint64_t id;
    char peer[DS_MAX_ENDPOINT + 1];
    char rpc[DS_MAX_ENDPOINT + 1]; /* learned from its hello; "" until then */
    zsock_t *out;                  /* DEALER to its peer endpoint; NULL for self */
    uint64_t last_heard_ms;
} ds_peer_t;

struct ds_node {
    ds_coord_config_t cfg;
    char id_text[24];
    ds_replica_t *replica;
    zsock_t *peer_in;
    zsock_t *rpc;
    void *http; /* ZMQ_STREAM socket, or NULL */
    ds_peer_t peers[DS_MAX_MEMBERS];
    uint32_t n_peers;

    /* writes waiting for their entry to apply, in index order */
    ds_pending_write_t *writes;
    size_t n_writes, cap_writes;
    ds_pending_read_t *reads;
    size_t n_reads, cap_reads;
    uint64_t next_read_id;
    ds_caller_t transfer; /* a transfer-leader request waiting, rid NULL if none */
    uint64_t transfer_from_term;

    uint64_t now_ms;
    uint64_t started_ms;
    uint64_t next_tick_ms;
    uint64_t next_hello_ms;
    uint64_t next_expire_ms;
    uint8_t role;
    uint64_t lead;
    uint64_t elections; /* times this member became candidate */
    int fatal;          /* a storage failure: stop */
};

/* node.c */
uint64_t ds_node_clock_ms(void); /* monotonic: timers */
uint64_t ds_node_wall_ms(void);  /* wall clock: stamped into commands */
void ds_node_reply(ds_node_t *self, const ds_caller_t *to, uint16_t type, const void *body);
void ds_node_reply_error(ds_node_t *self, const ds_caller_t *to, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ds_node_reply_not_leader(ds_node_t *self, const ds_caller_t *to);
const ds_peer_t *ds_node_peer(const ds_node_t *self, uint64_t id);
void ds_node_caller_free(ds_caller_t *c);

/* node_rpc.c */
/*  Handles one request. A handler that must answer later keeps the
    caller's routing frame (caller->rid becomes NULL) and may keep the
    message (*msg becomes NULL). */
void ds_node_rpc_dispatch(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg);
void ds_node_writes_applied(ds_node_t *self, uint64_t index, uint64_t term, int result);
void ds_node_writes_fail_all(ds_node_t *self);
void ds_node_writes_expire(ds_node_t *self);
void ds_node_read_confirmed(ds_node_t *self, const ds_raft_read_state_t *rs);
void ds_node_reads_serve(ds_node_t *self);
void ds_node_reads_fail_all(ds_node_t *self);
void ds_node_transfer_check(ds_node_t *self);
void ds_node_propose_expiry(ds_node_t *self);

/* node_http.c */
int ds_node_http_bind(ds_node_t *self, char *err, size_t errlen);
void ds_node_http_handle(ds_node_t *self);
void ds_node_http_close(ds_node_t *self);

#endif
