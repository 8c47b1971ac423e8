/*  protocol/raft_msg.h - the Raft peer message, as the pure Raft core sees it.

    One struct serves every Raft message type, in the style of etcd's
    raftpb.Message; the `type` field says which fields are meaningful. The
    wire codec (protocol/msg.h) encodes only the fields of each type.

    Ownership: in a message produced by ds_msg_decode() every pointer points
    into the decoded message's arena. In a message the Raft core emits, the
    pointers belong to the core and stay valid until the next call into it.
*/
#ifndef DS_PROTOCOL_RAFT_MSG_H
#define DS_PROTOCOL_RAFT_MSG_H

#include "protocol/limits.h"
#include "protocol/types.h"

/*  Raft message types. The numbers are the envelope's message type ids
    and are stable on the wire. */
typedef enum {
    DS_RAFT_PREVOTE = 1,       /* pre-vote request: would you vote for me? */
    DS_RAFT_PREVOTE_RESP = 2,  /* reject=false grants the pre-vote */
    DS_RAFT_VOTE = 3,          /* vote request: index/log_term = candidate's last entry */
    DS_RAFT_VOTE_RESP = 4,     /* reject=false grants the vote */
    DS_RAFT_APPEND = 5,        /* entries after (index, log_term); commit = leader commit */
    DS_RAFT_APPEND_RESP = 6,   /* index = last matched; on reject, hint_index/hint_term */
    DS_RAFT_SNAPSHOT = 7,      /* one chunk of a snapshot being installed */
    DS_RAFT_SNAPSHOT_RESP = 8, /* index = chunk offset acknowledged, reject = restart */
    DS_RAFT_TIMEOUT_NOW = 9,   /* leader transfer: start an election now */
    DS_RAFT_HEARTBEAT = 10,    /* commit = min(leader commit, follower match); context */
    DS_RAFT_HEARTBEAT_RESP = 11
} ds_raft_type_t;

/*  Entry kinds in the log. */
typedef enum {
    DS_ENTRY_NORMAL = 0,     /* a state-machine command */
    DS_ENTRY_NOOP = 1,       /* appended by a new leader to commit its term */
    DS_ENTRY_CONF_CHANGE = 2 /* membership change, data = ds_conf_change encoding */
} ds_entry_type_t;

typedef struct {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* ds_entry_type_t */
    ds_bytes_t data;
} ds_raft_entry_t;

/*  Snapshot metadata: the last entry it covers and the voters at that
    point. */
typedef struct {
    uint64_t index;
    uint64_t term;
    uint32_t n_voters;
    uint64_t voters[DS_MAX_MEMBERS];
} ds_snapshot_meta_t;

typedef struct {
    uint16_t type; /* ds_raft_type_t */
    uint64_t from;
    uint64_t to;
    uint64_t term;
    uint64_t log_term;   /* APPEND: term of `index`; VOTE: term of last entry */
    uint64_t index;      /* APPEND: prev index; VOTE: last index; RESP: match */
    uint64_t commit;     /* APPEND/HEARTBEAT: leader's commit index */
    bool reject;         /* *_RESP */
    uint64_t hint_index; /* APPEND_RESP reject: follower's hint for backtracking */
    uint64_t hint_term;  /* APPEND_RESP reject: term at hint_index */
    uint32_t n_entries;  /* APPEND */
    ds_raft_entry_t *entries;
    ds_snapshot_meta_t snap; /* SNAPSHOT */
    uint64_t chunk_offset;   /* SNAPSHOT: byte offset of `chunk` in the snapshot */
    ds_bytes_t chunk;        /* SNAPSHOT: at most DS_MAX_CHUNK_SIZE bytes */
    bool chunk_last;         /* SNAPSHOT: this chunk completes the snapshot */
    ds_bytes_t context;      /* HEARTBEAT(_RESP): ReadIndex context */
} ds_raft_msg_t;

#endif
