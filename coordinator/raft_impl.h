/*  coordinator/raft_impl.h - internals of the Raft core, shared by its files.

    Not a public header: only coordinator/raft*.c include it.

    raft_log.c       in-memory log (entries after the compaction point,
                     stable/committed/applied marks, latest snapshot bytes)
                     and reference-counted byte blobs
    raft_progress.c  per-follower replication progress, inflight window,
                     quorum arithmetic, configuration history
    raft.c           lifecycle, tick, step dispatch, elections, transfer
    raft_replicate.c leader: appends, heartbeats, snapshot chunks, commit;
                     follower: append, heartbeat and chunk handling
    raft_ready.c     outbox, events, ready/advance, read index, conf codec
*/
#ifndef DS_COORDINATOR_RAFT_IMPL_H
#define DS_COORDINATOR_RAFT_IMPL_H

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/raft.h"

/*  VOTE context that marks a campaign started by DS_RAFT_TIMEOUT_NOW: voters
    grant it even while they hold a leader lease (etcd's campaignTransfer). */
#define DS_RAFT_TRANSFER_CTX     "xfer"
#define DS_RAFT_TRANSFER_CTX_LEN 4u
#define DS_RAFT_MAX_EVENTS       256u
#define DS_RAFT_MAX_READS        1024u

/* ---- memory ---------------------------------------------------------- */

void *ds_raft_xmalloc(size_t n);
void *ds_raft_xcalloc(size_t n, size_t size);
void *ds_raft_xrealloc(void *p, size_t n);

/*  A blob is a reference-counted copy of bytes; the pointer returned is
    the first byte. len 0 gives NULL, and ref/unref accept NULL. */
uint8_t *ds_raft_blob_new(const uint8_t *data, uint64_t len);
void ds_raft_blob_ref(uint8_t *bytes);
void ds_raft_blob_unref(uint8_t *bytes);

/* ---- log --------------------------------------------------------------- */

typedef struct {
    ds_raft_entry_t *ents; /* ents[i] has index off_index + 1 + i; data are blobs */
    size_t n, cap;
    uint64_t off_index, off_term; /* the entry just before ents[0] */
    uint64_t stable;              /* last index handed to storage in a ready */
    uint64_t synced;              /* last index known durable (<= stable) */
    uint64_t committed;
    uint64_t applied; /* last index handed out for applying */
    ds_snapshot_meta_t snap;
    uint8_t *snap_data; /* blob, NULL if empty */
    uint64_t snap_len;
    bool snap_pending; /* received from the leader, not yet in a ready */
} ds_raft_log_t;

uint64_t ds_raft_log_last(const ds_raft_log_t *l);
uint64_t ds_raft_log_last_term(const ds_raft_log_t *l);
/*  Term of entry i; false if i is compacted away or after the last entry. */
bool ds_raft_log_term(const ds_raft_log_t *l, uint64_t i, uint64_t *term);
bool ds_raft_log_matches(const ds_raft_log_t *l, uint64_t i, uint64_t term);
const ds_raft_entry_t *ds_raft_log_at(const ds_raft_log_t *l, uint64_t i);
/*  Appends e (index must be last + 1); takes a new reference on nothing:
    the data is copied into a fresh blob. */
void ds_raft_log_append(ds_raft_log_t *l, uint64_t term, uint8_t type, const uint8_t *data,
                        uint32_t len);
void ds_raft_log_truncate(ds_raft_log_t *l, uint64_t from);
void ds_raft_log_compact(ds_raft_log_t *l, uint64_t upto);
void ds_raft_log_reset(ds_raft_log_t *l, uint64_t index, uint64_t term);
/*  Replaces the snapshot; takes over the caller's reference on data. */
void ds_raft_log_set_snapshot(ds_raft_log_t *l, const ds_snapshot_meta_t *meta, uint8_t *data,
                              uint64_t len);
bool ds_raft_log_up_to_date(const ds_raft_log_t *l, uint64_t index, uint64_t term);
/*  Largest index <= index whose term is <= term (or the compaction point). */
uint64_t ds_raft_log_find_conflict_by_term(const ds_raft_log_t *l, uint64_t index, uint64_t term,
                                           uint64_t *term_out);
void ds_raft_log_free(ds_raft_log_t *l);

/* ---- progress ---------------------------------------------------------- */

typedef enum { DS_PR_PROBE = 0, DS_PR_REPLICATE = 1, DS_PR_SNAPSHOT = 2 } ds_raft_pr_state_t;

typedef struct {
    uint64_t id;
    uint64_t match, next;
    uint8_t state;      /* ds_raft_pr_state_t */
    bool probe_sent;    /* PROBE: one append in flight, wait for an answer */
    bool recent_active; /* heard from since the last check-quorum */
    uint8_t vote;       /* 0 unknown, 1 granted, 2 rejected */
    uint64_t read_ack;  /* highest read-index round acknowledged */
    uint64_t *infl;     /* REPLICATE: last index of each APPEND in flight (ring) */
    uint32_t infl_start, infl_count, infl_cap;
    uint64_t snap_index;    /* SNAPSHOT: snapshot being sent */
    uint64_t snap_offset;   /* SNAPSHOT: first byte of the chunk in flight */
    uint64_t snap_sent_end; /* SNAPSHOT: offset + len of the chunk in flight */
    uint32_t snap_stall;    /* SNAPSHOT: heartbeats without a chunk ack */
} ds_raft_pr_t;

void ds_raft_pr_init(ds_raft_pr_t *pr, uint64_t id, uint64_t next, uint32_t max_inflight);
void ds_raft_pr_free(ds_raft_pr_t *pr);
void ds_raft_pr_become_probe(ds_raft_pr_t *pr);
void ds_raft_pr_become_replicate(ds_raft_pr_t *pr);
bool ds_raft_pr_paused(const ds_raft_pr_t *pr);
void ds_raft_pr_infl_add(ds_raft_pr_t *pr, uint64_t last);
void ds_raft_pr_infl_free_to(ds_raft_pr_t *pr, uint64_t index);
void ds_raft_pr_infl_free_first(ds_raft_pr_t *pr);

/*  A configuration and the log index where it took effect. */
typedef struct {
    uint64_t index;
    uint32_t n;
    uint64_t voters[DS_MAX_MEMBERS];
} ds_raft_confrec_t;

/* ---- the core ---------------------------------------------------------- */

typedef struct {
    uint64_t seq;   /* heartbeat round that confirms it, 0 = not sent yet */
    uint64_t index; /* commit index when the round started */
    ds_bytes_t ctx; /* malloc'd copy */
} ds_raft_readreq_t;

/*  Everything a ready hands out, with the memory it keeps alive. */
typedef struct {
    ds_raft_msg_t *msgs;
    size_t n_msgs, cap_msgs;
    uint8_t **blobs; /* references held by messages */
    size_t n_blobs, cap_blobs;
    void **allocs; /* plain allocations owned by messages */
    size_t n_allocs, cap_allocs;
    ds_raft_read_state_t *reads;
    size_t n_reads, cap_reads;
    ds_raft_event_t *events;
    size_t n_events, cap_events;
    uint64_t events_dropped;
} ds_raft_box_t;

struct ds_raft {
    ds_raft_config_t cfg;
    uint64_t id;
    uint8_t role;
    uint64_t term, vote, lead;
    ds_raft_log_t log;

    /* configuration: the latest in the log; history for truncation and snapshots */
    ds_raft_confrec_t *confs;
    size_t n_confs, cap_confs;
    ds_raft_pr_t prs[DS_MAX_MEMBERS]; /* one per voter, same order as the conf */
    uint32_t n_prs;

    uint32_t election_elapsed, heartbeat_elapsed, rand_timeout;
    uint64_t rng;
    uint64_t transferee;

    ds_raft_readreq_t *readq; /* pending reads, in request order */
    size_t n_readq, cap_readq;
    uint64_t read_seq;

    /* snapshot being assembled from chunks */
    bool asm_active;
    ds_snapshot_meta_t asm_meta;
    uint8_t *asm_buf;
    uint64_t asm_len, asm_cap;

    ds_raft_box_t out; /* accumulating for the next ready */
    ds_raft_box_t rd;  /* handed out in the current ready */
    bool in_ready;
    uint64_t rd_stable, rd_applied;
    bool rd_snap;
    ds_raft_hard_state_t hs_saved; /* last hard state handed out */
};

/* conf (raft_progress.c) */
const ds_raft_confrec_t *ds_raft_conf_cur(const ds_raft_t *r);
bool ds_raft_is_voter(const ds_raft_t *r, uint64_t id);
ds_raft_pr_t *ds_raft_pr_get(ds_raft_t *r, uint64_t id);
void ds_raft_conf_push(ds_raft_t *r, uint64_t index, uint32_t n, const uint64_t *voters);
void ds_raft_conf_truncate(ds_raft_t *r, uint64_t from);
const ds_raft_confrec_t *ds_raft_conf_at(const ds_raft_t *r, uint64_t index);
void ds_raft_conf_compact(ds_raft_t *r, uint64_t index);
void ds_raft_conf_apply(ds_raft_t *r);
uint32_t ds_raft_quorum(const ds_raft_t *r);
uint64_t ds_raft_quorum_match(const ds_raft_t *r);
/*  The same with the leader's own match at `stable`: what would commit
    if its background flush were done. */
uint64_t ds_raft_quorum_match_if_synced(const ds_raft_t *r);
bool ds_raft_quorum_active(const ds_raft_t *r);
uint64_t ds_raft_quorum_read_ack(const ds_raft_t *r);
void ds_raft_conf_entry_appended(ds_raft_t *r, const ds_raft_entry_t *e);

/* outbox and events (raft_ready.c) */
ds_raft_msg_t *ds_raft_send(ds_raft_t *r, uint16_t type, uint64_t to);
void ds_raft_hold_blob(ds_raft_t *r, uint8_t *blob);
void *ds_raft_hold_alloc(ds_raft_t *r, size_t n);
void ds_raft_event(ds_raft_t *r, uint16_t type, uint64_t peer, uint64_t index);
void ds_raft_reads_clear(ds_raft_t *r);
void ds_raft_reads_start(ds_raft_t *r);
void ds_raft_reads_confirm(ds_raft_t *r);
void ds_raft_box_free(ds_raft_box_t *b);

/* roles (raft.c) */
void ds_raft_become_follower(ds_raft_t *r, uint64_t term, uint64_t lead);
bool ds_raft_promotable(const ds_raft_t *r);

/* replication (raft_replicate.c) */
bool ds_raft_send_append(ds_raft_t *r, ds_raft_pr_t *pr, bool allow_empty);
void ds_raft_bcast_append(ds_raft_t *r, bool allow_empty);
void ds_raft_bcast_heartbeat(ds_raft_t *r, uint64_t read_seq);
bool ds_raft_maybe_commit(ds_raft_t *r);
void ds_raft_commit_to(ds_raft_t *r, uint64_t index);
bool ds_raft_committed_in_term(const ds_raft_t *r);
void ds_raft_leader_tick_snapshots(ds_raft_t *r);
void ds_raft_on_append(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_on_append_resp(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_on_heartbeat(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_on_heartbeat_resp(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_on_snapshot(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_on_snapshot_resp(ds_raft_t *r, const ds_raft_msg_t *m);
void ds_raft_append_local(ds_raft_t *r, uint8_t type, const uint8_t *data, uint32_t len);

#endif
