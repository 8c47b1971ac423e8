/*  coordinator/raft.h - the Raft consensus core: a pure, deterministic library.

    The core does no I/O: no sockets, clock, disk or randomness beyond a
    seeded xorshift state in the config. It is driven by four inputs:

        ds_raft_tick()     one logical clock tick (the caller picks the period)
        ds_raft_step()     one message received from a peer
        ds_raft_propose()  a command to replicate (leader only)
        ds_raft_read_index(), ds_raft_transfer_leader(),
        ds_raft_propose_conf_change(), ds_raft_snapshot_taken()

    and answers with a "ready" batch (ds_raft_ready()) that the caller
    processes and acknowledges with ds_raft_advance().

    THE READY / ADVANCE CONTRACT

        while (ds_raft_has_ready(r)) {
            ds_raft_ready_t rd;
            ds_raft_ready(r, &rd);
            1. persist, durably (fsync), in one transaction if possible:
               - rd.snap_meta/snap_data if not NULL: replace the whole stored
                 log with this snapshot (drop every stored entry);
               - rd.entries: first delete every stored entry with index >=
                 rd.entries[0].index, then append them;
               - rd.hs if rd.hs_changed.
            2. only then send rd.msgs (in any order; they may be lost).
            3. apply: install rd.snap_data into the state machine if not NULL,
               then apply rd.committed in order; serve rd.reads once the
               state machine has applied index >= read.index.
            4. log rd.events if wanted.
            5. ds_raft_advance(r, &rd);
        }

    PERSISTENCE RULE: the messages of a ready may only be sent after the
    entries, hard state and snapshot of the same ready are durable. A vote
    or an append acknowledgement sent earlier can make a committed entry
    disappear after a crash. Two relaxations, both for a leader, whose
    appends and heartbeats promise nothing about its own disk (the core
    counts the leader's own entries for commit only once it is told they
    are durable): its DS_RAFT_APPEND and DS_RAFT_HEARTBEAT messages may
    leave before its write, and a leader's ready may be acknowledged with
    ds_raft_advance_unsynced() before its flush completes, followed by
    ds_raft_synced() when it does (Raft thesis, section 10.2.1).

    OWNERSHIP: every pointer in a ready (arrays, entry data, message
    entries, chunks, contexts, snapshot bytes) belongs to the core and stays
    valid until ds_raft_advance() returns. Between ds_raft_ready() and
    ds_raft_advance() the caller must not call any other function that
    takes a non-const ds_raft_t * (asserted): process the batch, advance,
    then feed the next inputs. Inputs (messages, proposals, snapshot bytes)
    are copied by the core; the caller keeps ownership of what it passes.

    ERRORS: functions that can fail return 0 or a negative DS_E* code.
    Messages from peers are untrusted: stale terms, indexes out of range,
    unknown senders and malformed fields are ignored (and reported as a
    DS_RAFT_EV_MSG_IGNORED event), never asserted. Allocation failure
    aborts the process: a half-applied Raft step cannot be rolled back.

    MEMBERSHIP: one voter is added or removed at a time through a
    DS_ENTRY_CONF_CHANGE entry whose data carries the full resulting voter
    set. A configuration takes effect as soon as its entry is in a member's
    log (appended, not committed: the rule from Ongaro's thesis, section
    4.1; a commit-time rule lets a member whose commit index lags count
    votes in an older configuration and so elect a second leader), and is
    undone if that entry is truncated. The leader accepts a new change only
    when the previous one is committed and it has committed an entry in its
    own term. The leader cannot remove itself: transfer leadership first.

    Thread safety: none; one ds_raft_t is used by one thread.
*/
#ifndef DS_COORDINATOR_RAFT_H
#define DS_COORDINATOR_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/raft_msg.h"

typedef struct ds_raft ds_raft_t;

typedef enum {
    DS_RAFT_FOLLOWER = 0,
    DS_RAFT_PRECANDIDATE = 1,
    DS_RAFT_CANDIDATE = 2,
    DS_RAFT_LEADER = 3
} ds_raft_role_t;

/*  Configuration. Zero fields take the defaults of ds_raft_config_defaults(). */
typedef struct {
    uint64_t id; /* this member, nonzero */
    /* Bootstrap voters (including id), used only when the node starts with
       no persisted state at all: the core then writes them as entry 1
       (term 1, DS_ENTRY_CONF_CHANGE), identically on every founding member.
       A member that joins an existing cluster passes n_voters = 0 and
       learns the configuration from the leader. */
    uint32_t n_voters;
    uint64_t voters[DS_MAX_MEMBERS];
    uint32_t election_ticks;      /* election timeout; randomized in [T, 2T) (10) */
    uint32_t heartbeat_ticks;     /* leader heartbeat period, < election_ticks (1) */
    uint32_t max_append_entries;  /* entries per APPEND, <= DS_MAX_ENTRIES (64) */
    uint32_t max_append_bytes;    /* entry bytes per APPEND, soft limit (1 MiB) */
    uint32_t max_inflight;        /* pipelined APPENDs per follower (64) */
    uint32_t max_uncommitted;     /* uncommitted entries before propose fails (4096) */
    uint32_t snapshot_chunk_size; /* bytes per SNAPSHOT chunk, <= DS_MAX_CHUNK_SIZE (1 MiB) */
    uint64_t max_snapshot_size;   /* largest snapshot a follower assembles (1 GiB) */
    uint32_t compact_keep;        /* entries kept below a snapshot for laggards (0) */
    uint64_t applied;             /* restart: last index the state machine applied */
    uint64_t seed;                /* xorshift seed for election jitter (0 -> derived from id) */
    bool pre_vote;                /* Raft thesis 9.6 (defaults: true) */
    bool check_quorum;            /* leader steps down without a quorum; followers hold a lease */
} ds_raft_config_t;

/*  Fills *cfg with defaults for member `id`: pre_vote and check_quorum on. */
void ds_raft_config_defaults(ds_raft_config_t *cfg, uint64_t id);

typedef struct {
    uint64_t term;
    uint64_t vote; /* member voted for in `term`, 0 = none */
    uint64_t commit;
} ds_raft_hard_state_t;

/*  Persisted state to restart from. All pointers are read during
    ds_raft_new() only and stay the caller's. Entries with index <=
    snap_meta->index are skipped; the rest must be contiguous. */
typedef struct {
    ds_raft_hard_state_t hs;
    const ds_snapshot_meta_t *snap_meta; /* NULL if no snapshot */
    const uint8_t *snap_data;
    uint64_t snap_len;
    const ds_raft_entry_t *entries;
    size_t n_entries;
} ds_raft_restore_t;

/*  A confirmed linearizable read: serve it once applied >= index. */
typedef struct {
    ds_bytes_t ctx; /* the bytes given to ds_raft_read_index() */
    uint64_t index;
} ds_raft_read_state_t;

typedef enum {
    DS_RAFT_EV_BECAME_FOLLOWER = 1, /* peer = leader if known */
    DS_RAFT_EV_BECAME_PRECANDIDATE = 2,
    DS_RAFT_EV_BECAME_CANDIDATE = 3,
    DS_RAFT_EV_BECAME_LEADER = 4,
    DS_RAFT_EV_QUORUM_LOST = 5,        /* leader saw no quorum for an election timeout */
    DS_RAFT_EV_CONF_CHANGED = 6,       /* index = conf entry (or snapshot) index */
    DS_RAFT_EV_TRANSFER_STARTED = 7,   /* peer = target */
    DS_RAFT_EV_TRANSFER_ABORTED = 8,   /* peer = target */
    DS_RAFT_EV_TIMEOUT_NOW = 9,        /* campaigning at the leader's request; peer = leader */
    DS_RAFT_EV_SNAPSHOT_SENDING = 10,  /* peer = follower, index = snapshot index */
    DS_RAFT_EV_SNAPSHOT_RECEIVED = 11, /* peer = leader, index = snapshot index */
    DS_RAFT_EV_MSG_IGNORED = 12,       /* malformed message; peer = sender, index = type */
    DS_RAFT_EV_EVENTS_DROPPED = 13     /* index = how many events did not fit */
} ds_raft_event_type_t;

typedef struct {
    uint16_t type; /* ds_raft_event_type_t */
    uint64_t term; /* term when it happened */
    uint64_t peer;
    uint64_t index;
} ds_raft_event_t;

/*  One batch of work. See the contract at the top of this file. */
typedef struct {
    bool hs_changed;
    ds_raft_hard_state_t hs;
    const ds_snapshot_meta_t *snap_meta; /* snapshot received from the leader, or NULL */
    const uint8_t *snap_data;
    uint64_t snap_len;
    const ds_raft_entry_t *entries; /* to persist */
    size_t n_entries;
    const ds_raft_msg_t *msgs; /* to send after persisting */
    size_t n_msgs;
    const ds_raft_entry_t *committed; /* to apply, in order */
    size_t n_committed;
    const ds_raft_read_state_t *reads;
    size_t n_reads;
    const ds_raft_event_t *events;
    size_t n_events;
    uint8_t role;  /* soft state: ds_raft_role_t now */
    uint64_t lead; /* soft state: known leader, 0 = none */
} ds_raft_ready_t;

typedef struct {
    uint64_t id, term, vote, lead;
    uint8_t role;
    uint64_t commit, applied, last_index, last_term, first_index;
    uint64_t snap_index, snap_term;
    uint32_t n_voters;
    uint64_t voters[DS_MAX_MEMBERS];
    uint64_t transferee; /* leader transfer in progress, 0 = none */
} ds_raft_status_t;

/*  Membership change operations (ds_raft_propose_conf_change). */
typedef enum {
    DS_RAFT_CONF_BOOTSTRAP = 0,
    DS_RAFT_CONF_ADD = 1,
    DS_RAFT_CONF_REMOVE = 2
} ds_raft_conf_op_t;

/*  A decoded DS_ENTRY_CONF_CHANGE entry: the change and the voter set it
    produces. Encoding (little-endian): op u8, node u64, n u8, n x u64. */
typedef struct {
    uint8_t op; /* ds_raft_conf_op_t */
    uint64_t node;
    uint32_t n_voters;
    uint64_t voters[DS_MAX_MEMBERS];
} ds_raft_conf_t;

#define DS_RAFT_CONF_MAX_SIZE (1u + 8u + 1u + 8u * DS_MAX_MEMBERS)

/*  Checks a configuration and restore state. Returns 0, DS_EINVAL (bad
    config: id 0, heartbeat >= election, sizes over the DS_MAX_* limits,
    duplicate or zero voters) or DS_ECORRUPT (restored state inconsistent:
    gaps, terms going back, entries newer than the term). */
int ds_raft_check(const ds_raft_config_t *cfg, const ds_raft_restore_t *restore)
    __attribute__((warn_unused_result));

/*  Creates a core from `cfg` and persisted state (`restore` NULL or empty
    for a fresh node). Copies everything it keeps. Returns the core, or
    NULL if ds_raft_check() fails. The caller destroys it. */
ds_raft_t *ds_raft_new(const ds_raft_config_t *cfg, const ds_raft_restore_t *restore);

/*  Frees the core and everything a pending ready pointed to; sets *self_p
    to NULL. Accepts NULL and a pointer to NULL. */
void ds_raft_destroy(ds_raft_t **self_p);

/*  Advances the logical clock by one tick: elections, heartbeats,
    check-quorum, transfer timeouts, snapshot chunk retransmission. */
void ds_raft_tick(ds_raft_t *self);

/*  Processes one message from a peer. Returns 0 when the message was
    processed or ignored as stale, DS_EINVAL when it was malformed or not
    addressed to this member (it is then ignored and reported as an event). */
int ds_raft_step(ds_raft_t *self, const ds_raft_msg_t *msg);

/*  Appends a DS_ENTRY_NORMAL entry with a copy of data[0..len). On success
    stores its index in *index_out (if not NULL); it is committed when it
    shows up in a ready's committed list with the same index and term.
    Returns 0, DS_ENOTLEADER, DS_ESTATE (leader transfer in progress) or
    DS_ELIMIT (len > DS_MAX_ENTRY_SIZE or max_uncommitted reached). */
int ds_raft_propose(ds_raft_t *self, const uint8_t *data, uint32_t len, uint64_t *index_out)
    __attribute__((warn_unused_result));

/*  Proposes adding (DS_RAFT_CONF_ADD) or removing (DS_RAFT_CONF_REMOVE)
    voter `node`. Returns 0 (index in *index_out), DS_ENOTLEADER,
    DS_ESTATE (a change is still uncommitted, the leader has not committed
    in its term yet, or a transfer is in progress), DS_EEXIST (already a
    voter), DS_ENOTFOUND (not a voter), DS_EINVAL (bad op, node 0, removing
    the leader itself) or DS_ELIMIT (DS_MAX_MEMBERS voters). */
int ds_raft_propose_conf_change(ds_raft_t *self, uint8_t op, uint64_t node, uint64_t *index_out)
    __attribute__((warn_unused_result));

/*  Starts transferring leadership to voter `target`: the leader stops
    accepting proposals, catches the target up and sends it
    DS_RAFT_TIMEOUT_NOW; the transfer is abandoned after an election
    timeout. Returns 0, DS_ENOTLEADER, or DS_EINVAL (target is this member
    or not a voter). */
int ds_raft_transfer_leader(ds_raft_t *self, uint64_t target) __attribute__((warn_unused_result));

/*  Requests a linearizable read (ReadIndex, thesis 6.4). The leader
    records its commit index (once it has committed an entry in its own
    term), confirms its leadership with a heartbeat round, and then returns
    {ctx, index} in a ready's reads. Requests are dropped without notice if
    leadership is lost: the caller times them out. Returns 0,
    DS_ENOTLEADER, DS_EINVAL (len > DS_MAX_CONTEXT_SIZE) or DS_ELIMIT
    (too many pending reads). */
int ds_raft_read_index(ds_raft_t *self, const uint8_t *ctx, uint32_t len)
    __attribute__((warn_unused_result));

/*  Starts an election now (a pre-vote first if enabled), as if the election
    timer had fired. Returns 0, or DS_ESTATE if this member is the leader or
    not a voter. */
int ds_raft_campaign(ds_raft_t *self) __attribute__((warn_unused_result));

/*  Tells the core the caller took a snapshot of the state machine at
    `index` (<= applied) whose bytes are data[0..len). The core copies the
    bytes (it sends them to lagging followers), records the term and the
    voters at `index` in the snapshot meta, and compacts its in-memory log
    (keeping compact_keep entries below index). Returns 0, DS_EINVAL
    (index > applied or not newer than the current snapshot) or DS_ELIMIT
    (len > max_snapshot_size). Read the resulting meta with
    ds_raft_snapshot_meta(). */
int ds_raft_snapshot_taken(ds_raft_t *self, uint64_t index, const uint8_t *data, uint64_t len)
    __attribute__((warn_unused_result));

/*  Copies the meta of the latest snapshot (index 0 if none) into *meta. */
void ds_raft_snapshot_meta(const ds_raft_t *self, ds_snapshot_meta_t *meta);

/*  Returns true if a ready has work: messages, entries or hard state to
    persist, a snapshot, committed entries, read states or events. */
bool ds_raft_has_ready(const ds_raft_t *self);

/*  Fills *rd with the pending batch and hands its memory to the caller
    until ds_raft_advance(). See the contract at the top of this file. */
void ds_raft_ready(ds_raft_t *self, ds_raft_ready_t *rd);

/*  Acknowledges that *rd (from the last ds_raft_ready()) was persisted,
    sent and applied. Frees what rd pointed to. */
void ds_raft_advance(ds_raft_t *self, const ds_raft_ready_t *rd);

/*  Like ds_raft_advance(), for a leader's ready whose entries were
    written but are not yet durable (their flush runs in the background,
    Raft thesis 10.2.1): the leader does not count them towards a quorum
    until ds_raft_synced() says they are. Committed entries are handed
    out for applying as usual, also those not yet durable here (they are
    durable on a majority): a caller that makes applied state durable
    must first make its log durable up to it (the replica flushes the WAL
    before every LMDB commit). Allowed only for a ready of a
    leader (rd->role) with no snapshot and no change of term or vote
    (those need the synchronous path). Everything else of the contract
    holds: the ready's messages may all be sent at once, since none of
    them promises anything about the leader's own log. */
void ds_raft_advance_unsynced(ds_raft_t *self, const ds_raft_ready_t *rd);

/*  The entries up to `index` (the last of them of term `term`), handed
    out in earlier readies, are now durable. Ignored if they were
    truncated or replaced since. Call it outside a ready; it may make a
    ready (a commit). */
void ds_raft_synced(ds_raft_t *self, uint64_t index, uint64_t term);

/*  True when the leader's own unsynced entries are what a commit waits
    for: with them counted, a quorum would hold more than is committed.
    A caller that defers the leader's flush (to keep the device free for
    the followers' flushes, which commit without it) starts the flush
    when this turns true. */
bool ds_raft_own_flush_needed(const ds_raft_t *self);

/*  When ds_raft_own_flush_needed(): true if followers alone may still
    complete that quorum soon (enough of them already hold the entry, or
    were sent it and are replicating and recently heard from), so the
    leader's flush can wait a moment; false if only its own copy can
    (a follower is down or lagging): flush now. */
bool ds_raft_own_flush_may_wait(const ds_raft_t *self);

/*  Copies a summary of the core's state into *st. */
void ds_raft_status(const ds_raft_t *self, ds_raft_status_t *st);

/*  Decodes a DS_ENTRY_CONF_CHANGE entry's data. Returns 0 or DS_EINVAL. */
int ds_raft_conf_decode(const uint8_t *data, uint32_t len, ds_raft_conf_t *out)
    __attribute__((warn_unused_result));

/*  Encodes *conf into buf (DS_RAFT_CONF_MAX_SIZE bytes). Returns the length. */
uint32_t ds_raft_conf_encode(const ds_raft_conf_t *conf, uint8_t *buf);

/*  The leader's view of one member's replication. */
typedef struct {
    uint64_t id;
    uint64_t match;     /* highest index known to be on that member */
    uint64_t next;      /* next index to send */
    bool recent_active; /* heard from within the last election timeout */
} ds_raft_peer_status_t;

/*  Copies the leader's progress of voter `id` into *out (for this member
    itself: its last index). Returns 0, DS_ENOTLEADER or DS_ENOTFOUND. */
int ds_raft_peer_status(const ds_raft_t *self, uint64_t id, ds_raft_peer_status_t *out);

/*  Names for logs. Never return NULL. */
const char *ds_raft_role_name(int role);
const char *ds_raft_event_name(int type);
const char *ds_raft_msg_name(int type);

#endif
