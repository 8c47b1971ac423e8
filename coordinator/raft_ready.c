/*  coordinator/raft_ready.c - the outbox, events, ready/advance, ReadIndex
    and the conf-change codec.

    Everything the core emits accumulates in `out`. ds_raft_ready() moves it
    to `rd` and points the ready at it and at slices of the log; nothing
    may change the core until ds_raft_advance(), which frees `rd`. Blob
    references keep entry data and snapshot bytes alive for the messages
    even if the log is truncated or compacted before the ready is taken.
*/
#include "coordinator/raft_impl.h"

#define S_GROW(arr, n, cap)                                                                        \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 16;                                                          \
            (arr) = ds_raft_xrealloc((arr), (cap) * sizeof(*(arr)));                               \
        }                                                                                          \
    } while (0)

/* ---- outbox --------------------------------------------------------------- */

ds_raft_msg_t *ds_raft_send(ds_raft_t *r, uint16_t type, uint64_t to)
{
    ds_raft_box_t *b = &r->out;
    S_GROW(b->msgs, b->n_msgs, b->cap_msgs);
    ds_raft_msg_t *m = &b->msgs[b->n_msgs++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

void ds_raft_hold_blob(ds_raft_t *r, uint8_t *blob)
{
    ds_raft_box_t *b = &r->out;
    S_GROW(b->blobs, b->n_blobs, b->cap_blobs);
    ds_raft_blob_ref(blob);
    b->blobs[b->n_blobs++] = blob;
}

void *ds_raft_hold_alloc(ds_raft_t *r, size_t n)
{
    ds_raft_box_t *b = &r->out;
    S_GROW(b->allocs, b->n_allocs, b->cap_allocs);
    void *p = ds_raft_xmalloc(n);
    b->allocs[b->n_allocs++] = p;
    return p;
}

void ds_raft_event(ds_raft_t *r, uint16_t type, uint64_t peer, uint64_t index)
{
    ds_raft_box_t *b = &r->out;
    if (b->n_events >= DS_RAFT_MAX_EVENTS) {
        b->events_dropped++;
        return;
    }
    S_GROW(b->events, b->n_events, b->cap_events);
    b->events[b->n_events++] = (ds_raft_event_t){type, r->term, peer, index};
}

void ds_raft_box_free(ds_raft_box_t *b)
{
    for (size_t i = 0; i < b->n_blobs; i++)
        ds_raft_blob_unref(b->blobs[i]);
    for (size_t i = 0; i < b->n_allocs; i++)
        free(b->allocs[i]);
    free(b->msgs);
    free(b->blobs);
    free(b->allocs);
    free(b->reads);
    free(b->events);
    memset(b, 0, sizeof(*b));
}

/* ---- ReadIndex ---------------------------------------------------------------- */

int ds_raft_read_index(ds_raft_t *self, const uint8_t *ctx, uint32_t len)
{
    assert(!self->in_ready);
    if (self->role != DS_RAFT_LEADER)
        return DS_ENOTLEADER;
    if (len > DS_MAX_CONTEXT_SIZE || (len > 0 && !ctx))
        return DS_EINVAL;
    if (self->n_readq >= DS_RAFT_MAX_READS)
        return DS_ELIMIT;
    S_GROW(self->readq, self->n_readq, self->cap_readq);
    ds_raft_readreq_t *q = &self->readq[self->n_readq++];
    q->seq = 0;
    q->index = 0;
    q->ctx.len = len;
    q->ctx.data = len ? ds_raft_xmalloc(len) : NULL;
    if (len)
        memcpy(q->ctx.data, ctx, len);
    ds_raft_reads_start(self);
    return 0;
}

/*  Gives every read not yet in a round the current commit index and starts
    a heartbeat round for them, once the leader has committed in its term
    (before that, its commit index may be behind the cluster's). */
void ds_raft_reads_start(ds_raft_t *r)
{
    if (r->role != DS_RAFT_LEADER || r->n_readq == 0 || r->readq[r->n_readq - 1].seq != 0 ||
        !ds_raft_committed_in_term(r))
        return;
    uint64_t seq = ++r->read_seq;
    for (size_t i = r->n_readq; i > 0 && r->readq[i - 1].seq == 0; i--) {
        r->readq[i - 1].seq = seq;
        r->readq[i - 1].index = r->log.committed;
    }
    ds_raft_bcast_heartbeat(r, seq);
    ds_raft_reads_confirm(r);
}

/*  Releases the reads whose round a quorum has acknowledged. */
void ds_raft_reads_confirm(ds_raft_t *r)
{
    uint64_t acked = ds_raft_quorum_read_ack(r);
    size_t done = 0;
    while (done < r->n_readq && r->readq[done].seq != 0 && r->readq[done].seq <= acked) {
        ds_raft_box_t *b = &r->out;
        ds_raft_readreq_t *q = &r->readq[done++];
        S_GROW(b->reads, b->n_reads, b->cap_reads);
        b->reads[b->n_reads++] = (ds_raft_read_state_t){q->ctx, q->index};
        if (q->ctx.data) {
            S_GROW(b->allocs, b->n_allocs, b->cap_allocs);
            b->allocs[b->n_allocs++] = q->ctx.data;
        }
    }
    if (done == 0)
        return;
    memmove(r->readq, r->readq + done, (r->n_readq - done) * sizeof(*r->readq));
    r->n_readq -= done;
}

void ds_raft_reads_clear(ds_raft_t *r)
{
    for (size_t i = 0; i < r->n_readq; i++)
        free(r->readq[i].ctx.data);
    r->n_readq = 0;
}

/* ---- ready / advance ---------------------------------------------------------------- */

static ds_raft_hard_state_t s_hs(const ds_raft_t *r)
{
    return (ds_raft_hard_state_t){r->term, r->vote, r->log.committed};
}

static bool s_hs_equal(ds_raft_hard_state_t a, ds_raft_hard_state_t b)
{
    return a.term == b.term && a.vote == b.vote && a.commit == b.commit;
}

bool ds_raft_has_ready(const ds_raft_t *self)
{
    const ds_raft_log_t *l = &self->log;
    const ds_raft_box_t *b = &self->out;
    return b->n_msgs || b->n_reads || b->n_events || b->events_dropped || l->snap_pending ||
           ds_raft_log_last(l) > l->stable || l->committed > l->applied ||
           !s_hs_equal(s_hs(self), self->hs_saved);
}

void ds_raft_ready(ds_raft_t *self, ds_raft_ready_t *rd)
{
    assert(!self->in_ready);
    ds_raft_log_t *l = &self->log;
    memset(rd, 0, sizeof(*rd));
    self->in_ready = true;
    rd->hs = s_hs(self);
    rd->hs_changed = !s_hs_equal(rd->hs, self->hs_saved);
    self->rd_snap = l->snap_pending;
    if (l->snap_pending) {
        rd->snap_meta = &l->snap;
        rd->snap_data = l->snap_data;
        rd->snap_len = l->snap_len;
    }
    assert(l->stable >= l->off_index && l->applied >= l->off_index);
    self->rd_stable = ds_raft_log_last(l);
    if (self->rd_stable > l->stable) {
        rd->entries = &l->ents[l->stable - l->off_index];
        rd->n_entries = (size_t)(self->rd_stable - l->stable);
    }
    self->rd_applied = l->committed;
    if (l->committed > l->applied) {
        rd->committed = &l->ents[l->applied - l->off_index];
        rd->n_committed = (size_t)(l->committed - l->applied);
    }
    self->rd = self->out;
    memset(&self->out, 0, sizeof(self->out));
    ds_raft_box_t *b = &self->rd;
    if (b->events_dropped) {
        S_GROW(b->events, b->n_events, b->cap_events);
        b->events[b->n_events++] =
            (ds_raft_event_t){DS_RAFT_EV_EVENTS_DROPPED, self->term, 0, b->events_dropped};
    }
    rd->msgs = b->msgs;
    rd->n_msgs = b->n_msgs;
    rd->reads = b->reads;
    rd->n_reads = b->n_reads;
    rd->events = b->events;
    rd->n_events = b->n_events;
    rd->role = self->role;
    rd->lead = self->lead;
}

/*  The leader counts its own entries for commit once they are durable. */
static void s_own_synced(ds_raft_t *self)
{
    if (self->role != DS_RAFT_LEADER)
        return;
    ds_raft_pr_t *pr = ds_raft_pr_get(self, self->id);
    if (pr && pr->match < self->log.synced) {
        pr->match = self->log.synced;
        if (ds_raft_maybe_commit(self))
            ds_raft_bcast_append(self, true);
    }
}

static void s_advance(ds_raft_t *self, const ds_raft_ready_t *rd)
{
    assert(self->in_ready);
    self->in_ready = false;
    self->hs_saved = rd->hs;
    if (self->rd_snap)
        self->log.snap_pending = false;
    self->log.stable = self->rd_stable;
    self->log.applied = self->rd_applied;
    ds_raft_box_free(&self->rd);
}

void ds_raft_advance(ds_raft_t *self, const ds_raft_ready_t *rd)
{
    s_advance(self, rd);
    self->log.synced = self->log.stable;
    s_own_synced(self);
}

void ds_raft_advance_unsynced(ds_raft_t *self, const ds_raft_ready_t *rd)
{
    assert(self->role == DS_RAFT_LEADER && !rd->snap_meta);
    assert(rd->hs.term == self->hs_saved.term && rd->hs.vote == self->hs_saved.vote);
    s_advance(self, rd);
}

bool ds_raft_own_flush_needed(const ds_raft_t *self)
{
    const ds_raft_log_t *l = &self->log;
    return self->role == DS_RAFT_LEADER && l->synced < l->stable &&
           ds_raft_quorum_match_if_synced(self) > l->committed;
}

bool ds_raft_own_flush_may_wait(const ds_raft_t *self)
{
    uint64_t q = ds_raft_quorum_match_if_synced(self);
    uint32_t could = 0; /* followers that hold q, or were sent it and answer */
    for (uint32_t i = 0; i < self->n_prs; i++) {
        const ds_raft_pr_t *pr = &self->prs[i];
        if (pr->id == self->id)
            continue;
        if (pr->match >= q || (pr->state == DS_PR_REPLICATE && pr->recent_active && pr->next > q))
            could++;
    }
    return could >= ds_raft_quorum(self);
}

void ds_raft_synced(ds_raft_t *self, uint64_t index, uint64_t term)
{
    assert(!self->in_ready);
    ds_raft_log_t *l = &self->log;
    if (index <= l->synced || index > l->stable)
        return; /* already known, or written again since (truncated) */
    uint64_t t;
    if (index > l->off_index && (!ds_raft_log_term(l, index, &t) || t != term))
        return; /* that entry was replaced: its write no longer counts */
    l->synced = index;
    s_own_synced(self);
}

/* ---- conf-change codec -------------------------------------------------------------- */

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

uint32_t ds_raft_conf_encode(const ds_raft_conf_t *conf, uint8_t *buf)
{
    assert(conf->n_voters <= DS_MAX_MEMBERS);
    buf[0] = conf->op;
    s_put64(buf + 1, conf->node);
    buf[9] = (uint8_t)conf->n_voters;
    for (uint32_t i = 0; i < conf->n_voters; i++)
        s_put64(buf + 10 + 8 * i, conf->voters[i]);
    return 10 + 8 * conf->n_voters;
}

int ds_raft_conf_decode(const uint8_t *data, uint32_t len, ds_raft_conf_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!data || len < 10 || data[0] > DS_RAFT_CONF_REMOVE || data[9] > DS_MAX_MEMBERS ||
        len != 10u + 8u * data[9])
        return DS_EINVAL;
    out->op = data[0];
    out->node = s_get64(data + 1);
    out->n_voters = data[9];
    for (uint32_t i = 0; i < out->n_voters; i++) {
        out->voters[i] = s_get64(data + 10 + 8 * i);
        if (out->voters[i] == 0)
            return DS_EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if (out->voters[j] == out->voters[i])
                return DS_EINVAL;
    }
    return 0;
}

/* ---- names ---------------------------------------------------------------------------- */

const char *ds_raft_role_name(int role)
{
    static const char *const names[] = {"follower", "precandidate", "candidate", "leader"};
    return role >= 0 && role <= 3 ? names[role] : "unknown";
}

const char *ds_raft_event_name(int type)
{
    static const char *const names[] = {
        "unknown",          "became follower", "became precandidate", "became candidate",
        "became leader",    "quorum lost",     "conf changed",        "transfer started",
        "transfer aborted", "timeout now",     "snapshot sending",    "snapshot received",
        "message ignored",  "events dropped"};
    return type > 0 && type < (int)(sizeof(names) / sizeof(names[0])) ? names[type] : "unknown";
}

const char *ds_raft_msg_name(int type)
{
    static const char *const names[] = {
        "unknown",     "prevote",  "prevote_resp",  "vote",        "vote_resp", "append",
        "append_resp", "snapshot", "snapshot_resp", "timeout_now", "heartbeat", "heartbeat_resp"};
    return type > 0 && type < (int)(sizeof(names) / sizeof(names[0])) ? names[type] : "unknown";
}
