/*  coordinator/raft_replicate.c - log replication, commit and snapshots.

    Leader side: APPENDs batched by max_append_entries/max_append_bytes and
    pipelined within the inflight window, heartbeats carrying a safe commit
    index, fast backtracking from the follower's (hint_index, hint_term),
    commit by counting only entries of the current term, and snapshot
    transfer in chunks of snapshot_chunk_size bytes, one chunk in flight.

    Follower side: the log-matching check, truncation of a conflicting
    suffix, the rejection hint, heartbeats, and assembly of snapshot chunks.

    Message fields as used here (beyond raft_msg.h's comments):
      APPEND_RESP   accept: index = last index known to match the leader.
                    reject: index = the rejected prev index (lets the
                    leader drop stale rejections), hint_index/hint_term.
      SNAPSHOT      snap = meta of the whole snapshot in every chunk.
      SNAPSHOT_RESP index = bytes assembled so far (next offset wanted);
                    reject = restart from offset 0. The last chunk is
                    answered with APPEND_RESP index = snapshot index.
*/
#include "coordinator/raft_impl.h"

/* ---- leader: sending ------------------------------------------------------ */

void ds_raft_append_local(ds_raft_t *r, uint8_t type, const uint8_t *data, uint32_t len)
{
    ds_raft_log_append(&r->log, r->term, type, data, len);
    uint64_t last = ds_raft_log_last(&r->log);
    ds_raft_pr_t *self = ds_raft_pr_get(r, r->id);
    if (self)
        self->next = last + 1;
    if (type == DS_ENTRY_CONF_CHANGE)
        ds_raft_conf_entry_appended(r, ds_raft_log_at(&r->log, last));
}

static void s_send_chunk(ds_raft_t *r, ds_raft_pr_t *pr)
{
    const ds_raft_log_t *l = &r->log;
    if (pr->snap_index != l->snap.index) {
        pr->snap_index = l->snap.index; /* a newer snapshot replaced it: restart */
        pr->snap_offset = 0;
    }
    uint64_t left = l->snap_len - pr->snap_offset;
    uint32_t len = left < r->cfg.snapshot_chunk_size ? (uint32_t)left : r->cfg.snapshot_chunk_size;
    ds_raft_msg_t *m = ds_raft_send(r, DS_RAFT_SNAPSHOT, pr->id);
    m->snap = l->snap;
    m->index = l->snap.index;
    m->log_term = l->snap.term;
    m->chunk_offset = pr->snap_offset;
    m->chunk.len = len;
    m->chunk.data = len ? l->snap_data + pr->snap_offset : NULL;
    m->chunk_last = pr->snap_offset + len == l->snap_len;
    if (len)
        ds_raft_hold_blob(r, l->snap_data);
    pr->snap_sent_end = pr->snap_offset + len;
    pr->snap_stall = 0;
}

static void s_start_snapshot(ds_raft_t *r, ds_raft_pr_t *pr)
{
    pr->state = DS_PR_SNAPSHOT;
    pr->probe_sent = false;
    pr->infl_start = pr->infl_count = 0;
    pr->snap_index = r->log.snap.index;
    pr->snap_offset = 0;
    ds_raft_event(r, DS_RAFT_EV_SNAPSHOT_SENDING, pr->id, pr->snap_index);
    s_send_chunk(r, pr);
}

/*  How many entries from `next` fit in one APPEND. */
static uint32_t s_batch(const ds_raft_t *r, uint64_t next)
{
    uint64_t last = ds_raft_log_last(&r->log);
    uint32_t n = 0;
    uint64_t bytes = 0;
    while (next + n <= last && n < r->cfg.max_append_entries) {
        uint32_t sz = ds_raft_log_at(&r->log, next + n)->data.len;
        if (n > 0 && bytes + sz > r->cfg.max_append_bytes)
            break;
        bytes += sz;
        n++;
    }
    return n;
}

bool ds_raft_send_append(ds_raft_t *r, ds_raft_pr_t *pr, bool allow_empty)
{
    if (pr->id == r->id || ds_raft_pr_paused(pr))
        return false;
    uint64_t last = ds_raft_log_last(&r->log);
    if (pr->next > last + 1)
        pr->next = last + 1;
    uint64_t prev = pr->next - 1, prev_term;
    if (!ds_raft_log_term(&r->log, prev, &prev_term)) {
        s_start_snapshot(r, pr); /* what it needs was compacted away */
        return true;
    }
    uint32_t n = s_batch(r, pr->next);
    if (n == 0 && !allow_empty)
        return false;
    ds_raft_msg_t *m = ds_raft_send(r, DS_RAFT_APPEND, pr->id);
    m->index = prev;
    m->log_term = prev_term;
    m->commit = r->log.committed;
    m->n_entries = n;
    if (n) {
        m->entries = ds_raft_hold_alloc(r, n * sizeof(ds_raft_entry_t));
        memcpy(m->entries, ds_raft_log_at(&r->log, pr->next), n * sizeof(ds_raft_entry_t));
        for (uint32_t i = 0; i < n; i++)
            if (m->entries[i].data.data)
                ds_raft_hold_blob(r, m->entries[i].data.data);
    }
    if (pr->state == DS_PR_REPLICATE && n) {
        pr->next += n;
        ds_raft_pr_infl_add(pr, pr->next - 1);
    } else if (pr->state == DS_PR_PROBE) {
        pr->probe_sent = true;
    }
    return true;
}

void ds_raft_bcast_append(ds_raft_t *r, bool allow_empty)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        ds_raft_send_append(r, &r->prs[i], allow_empty);
}

void ds_raft_bcast_heartbeat(ds_raft_t *r, uint64_t read_seq)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        ds_raft_pr_t *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        ds_raft_msg_t *m = ds_raft_send(r, DS_RAFT_HEARTBEAT, pr->id);
        m->commit = pr->match < r->log.committed ? pr->match : r->log.committed;
        if (read_seq) {
            uint8_t *ctx = ds_raft_hold_alloc(r, 8);
            for (int b = 0; b < 8; b++)
                ctx[b] = (uint8_t)(read_seq >> (8 * b));
            m->context.data = ctx;
            m->context.len = 8;
        }
    }
}

void ds_raft_leader_tick_snapshots(ds_raft_t *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        ds_raft_pr_t *pr = &r->prs[i];
        if (pr->state == DS_PR_SNAPSHOT && ++pr->snap_stall >= 3)
            s_send_chunk(r, pr); /* the chunk or its answer was lost: resend */
    }
}

/* ---- commit ----------------------------------------------------------------- */

void ds_raft_commit_to(ds_raft_t *r, uint64_t index)
{
    if (index <= r->log.committed)
        return;
    assert(index <= ds_raft_log_last(&r->log));
    r->log.committed = index;
}

bool ds_raft_committed_in_term(const ds_raft_t *r)
{
    uint64_t t;
    return ds_raft_log_term(&r->log, r->log.committed, &t) && t == r->term;
}

/*  Commits what a quorum has durably matched, but only through an entry of
    the current term (thesis 3.6.2, figure 3.7). Returns true if it moved. */
bool ds_raft_maybe_commit(ds_raft_t *r)
{
    uint64_t q = ds_raft_quorum_match(r), t;
    if (q <= r->log.committed || !ds_raft_log_term(&r->log, q, &t) || t != r->term)
        return false;
    ds_raft_commit_to(r, q);
    ds_raft_reads_start(r);
    return true;
}

/* ---- leader: answers ---------------------------------------------------------- */

static void s_on_reject(ds_raft_t *r, ds_raft_pr_t *pr, const ds_raft_msg_t *m)
{
    if (pr->state == DS_PR_SNAPSHOT)
        return;
    if (pr->state == DS_PR_REPLICATE && m->index <= pr->match)
        return; /* stale */
    if (pr->state == DS_PR_PROBE && m->index + 1 != pr->next)
        return; /* stale */
    uint64_t probe = m->hint_index, t;
    if (m->hint_term > 0)
        probe = ds_raft_log_find_conflict_by_term(&r->log, m->hint_index, m->hint_term, &t);
    uint64_t next = m->index < probe + 1 ? m->index : probe + 1;
    uint64_t last = ds_raft_log_last(&r->log);
    if (next > last + 1)
        next = last + 1;
    if (next < pr->match + 1)
        next = pr->match + 1;
    if (pr->state == DS_PR_REPLICATE)
        ds_raft_pr_become_probe(pr);
    pr->next = next;
    pr->probe_sent = false;
    ds_raft_send_append(r, pr, true);
}

void ds_raft_on_append_resp(ds_raft_t *r, const ds_raft_msg_t *m)
{
    ds_raft_pr_t *pr = ds_raft_pr_get(r, m->from);
    if (r->role != DS_RAFT_LEADER || !pr)
        return;
    pr->recent_active = true;
    if (m->reject) {
        s_on_reject(r, pr, m);
        return;
    }
    uint64_t last = ds_raft_log_last(&r->log);
    if (m->index > last)
        return; /* acknowledges entries we never had: bogus */
    bool updated = m->index > pr->match;
    if (updated)
        pr->match = m->index;
    if (pr->next < m->index + 1)
        pr->next = m->index + 1;
    if (pr->state == DS_PR_PROBE && m->index + 1 >= pr->next)
        ds_raft_pr_become_replicate(pr);
    else if (pr->state == DS_PR_SNAPSHOT && pr->match >= pr->snap_index)
        ds_raft_pr_become_replicate(pr);
    else if (pr->state == DS_PR_REPLICATE)
        ds_raft_pr_infl_free_to(pr, pr->match);
    if (updated && ds_raft_maybe_commit(r))
        ds_raft_bcast_append(r, true);
    else
        while (ds_raft_send_append(r, pr, false)) {
        }
    if (m->from == r->transferee && pr->match == last)
        ds_raft_send(r, DS_RAFT_TIMEOUT_NOW, m->from);
}

void ds_raft_on_heartbeat_resp(ds_raft_t *r, const ds_raft_msg_t *m)
{
    ds_raft_pr_t *pr = ds_raft_pr_get(r, m->from);
    if (r->role != DS_RAFT_LEADER || !pr)
        return;
    pr->recent_active = true;
    if (pr->state == DS_PR_PROBE)
        pr->probe_sent = false;
    else if (pr->state == DS_PR_REPLICATE && ds_raft_pr_paused(pr))
        ds_raft_pr_infl_free_first(pr);
    if (pr->match < ds_raft_log_last(&r->log))
        ds_raft_send_append(r, pr, true);
    if (m->context.len == 8) {
        uint64_t seq = 0;
        for (int b = 7; b >= 0; b--)
            seq = seq << 8 | m->context.data[b];
        if (seq > pr->read_ack && seq <= r->read_seq) {
            pr->read_ack = seq;
            ds_raft_reads_confirm(r);
        }
    }
}

void ds_raft_on_snapshot_resp(ds_raft_t *r, const ds_raft_msg_t *m)
{
    ds_raft_pr_t *pr = ds_raft_pr_get(r, m->from);
    if (r->role != DS_RAFT_LEADER || !pr)
        return;
    pr->recent_active = true;
    if (pr->state != DS_PR_SNAPSHOT)
        return;
    if (m->reject) {
        pr->snap_offset = 0;
        s_send_chunk(r, pr);
    } else if (m->index == pr->snap_sent_end && pr->snap_sent_end > pr->snap_offset) {
        pr->snap_offset = m->index;
        s_send_chunk(r, pr);
    }
}

/* ---- follower ------------------------------------------------------------------ */

static ds_raft_msg_t *s_reply(ds_raft_t *r, const ds_raft_msg_t *m, uint16_t type, uint64_t index)
{
    ds_raft_msg_t *resp = ds_raft_send(r, type, m->from);
    resp->index = index;
    return resp;
}

static bool s_entries_valid(const ds_raft_msg_t *m)
{
    uint64_t prev_term = m->log_term;
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const ds_raft_entry_t *e = &m->entries[i];
        ds_raft_conf_t cc;
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term)
            return false;
        if (e->data.len > DS_MAX_ENTRY_SIZE || (e->data.len > 0 && !e->data.data))
            return false;
        if (e->type > DS_ENTRY_CONF_CHANGE)
            return false;
        if (e->type == DS_ENTRY_CONF_CHANGE && ds_raft_conf_decode(e->data.data, e->data.len, &cc))
            return false;
        prev_term = e->term;
    }
    return true;
}

static void s_append_entries(ds_raft_t *r, const ds_raft_msg_t *m)
{
    uint32_t i = 0;
    uint64_t last = ds_raft_log_last(&r->log);
    for (; i < m->n_entries; i++) {
        const ds_raft_entry_t *e = &m->entries[i];
        if (e->index > last)
            break;
        if (ds_raft_log_matches(&r->log, e->index, e->term))
            continue;
        /* A conflict: e->index > m->index >= committed, so it is uncommitted. */
        size_t confs = r->n_confs;
        ds_raft_log_truncate(&r->log, e->index);
        ds_raft_conf_truncate(r, e->index);
        if (r->n_confs != confs) {
            ds_raft_conf_apply(r);
            ds_raft_event(r, DS_RAFT_EV_CONF_CHANGED, 0, e->index);
        }
        break;
    }
    for (; i < m->n_entries; i++) {
        const ds_raft_entry_t *e = &m->entries[i];
        ds_raft_log_append(&r->log, e->term, e->type, e->data.data, e->data.len);
        if (e->type == DS_ENTRY_CONF_CHANGE)
            ds_raft_conf_entry_appended(r, ds_raft_log_at(&r->log, e->index));
    }
}

void ds_raft_on_append(ds_raft_t *r, const ds_raft_msg_t *m)
{
    if (m->index < r->log.committed) {
        s_reply(r, m, DS_RAFT_APPEND_RESP, r->log.committed);
        return;
    }
    if (!s_entries_valid(m)) {
        ds_raft_event(r, DS_RAFT_EV_MSG_IGNORED, m->from, m->type);
        return;
    }
    if (!ds_raft_log_matches(&r->log, m->index, m->log_term)) {
        uint64_t last = ds_raft_log_last(&r->log), t;
        uint64_t hint = ds_raft_log_find_conflict_by_term(
            &r->log, m->index < last ? m->index : last, m->log_term, &t);
        ds_raft_msg_t *resp = s_reply(r, m, DS_RAFT_APPEND_RESP, m->index);
        resp->reject = true;
        resp->hint_index = hint;
        resp->hint_term = t;
        return;
    }
    s_append_entries(r, m);
    uint64_t last_new = m->index + m->n_entries;
    ds_raft_commit_to(r, m->commit < last_new ? m->commit : last_new);
    s_reply(r, m, DS_RAFT_APPEND_RESP, last_new);
}

void ds_raft_on_heartbeat(ds_raft_t *r, const ds_raft_msg_t *m)
{
    uint64_t last = ds_raft_log_last(&r->log);
    ds_raft_commit_to(r, m->commit < last ? m->commit : last);
    ds_raft_msg_t *resp = s_reply(r, m, DS_RAFT_HEARTBEAT_RESP, 0);
    if (m->context.len) {
        uint8_t *ctx = ds_raft_hold_alloc(r, m->context.len);
        memcpy(ctx, m->context.data, m->context.len);
        resp->context.data = ctx;
        resp->context.len = m->context.len;
    }
}

/* ---- follower: snapshot chunks ----------------------------------------------------- */

static void s_install(ds_raft_t *r, const ds_raft_msg_t *m)
{
    ds_snapshot_meta_t meta = r->asm_meta;
    r->asm_active = false;
    if (ds_raft_log_matches(&r->log, meta.index, meta.term)) {
        /* We already hold these entries: no need to replace the log. */
        ds_raft_commit_to(r, meta.index);
        s_reply(r, m, DS_RAFT_APPEND_RESP, r->log.committed);
        return;
    }
    ds_raft_log_reset(&r->log, meta.index, meta.term);
    r->log.applied = meta.index;
    ds_raft_log_set_snapshot(&r->log, &meta, ds_raft_blob_new(r->asm_buf, r->asm_len), r->asm_len);
    r->log.snap_pending = true;
    r->n_confs = 0;
    ds_raft_conf_push(r, meta.index, meta.n_voters, meta.voters);
    ds_raft_conf_apply(r);
    ds_raft_event(r, DS_RAFT_EV_SNAPSHOT_RECEIVED, m->from, meta.index);
    s_reply(r, m, DS_RAFT_APPEND_RESP, meta.index);
}

static bool s_chunk_fits(ds_raft_t *r, const ds_raft_msg_t *m)
{
    uint64_t end = m->chunk_offset + m->chunk.len;
    if (end < m->chunk_offset || end > r->cfg.max_snapshot_size)
        return false;
    if (end > r->asm_cap) {
        uint64_t cap = r->asm_cap ? r->asm_cap : 4096;
        while (cap < end)
            cap *= 2;
        r->asm_buf = ds_raft_xrealloc(r->asm_buf, (size_t)cap);
        r->asm_cap = cap;
    }
    return true;
}

void ds_raft_on_snapshot(ds_raft_t *r, const ds_raft_msg_t *m)
{
    const ds_snapshot_meta_t *sm = &m->snap;
    if (sm->index <= r->log.committed) {
        s_reply(r, m, DS_RAFT_APPEND_RESP, r->log.committed);
        return;
    }
    bool same = r->asm_active && r->asm_meta.index == sm->index && r->asm_meta.term == sm->term;
    if (m->chunk_offset == 0) {
        r->asm_active = true;
        r->asm_meta = *sm;
        r->asm_len = 0;
    } else if (!same || m->chunk_offset > r->asm_len) {
        s_reply(r, m, DS_RAFT_SNAPSHOT_RESP, 0)->reject = true;
        return;
    } else if (m->chunk_offset + m->chunk.len <= r->asm_len && !m->chunk_last) {
        s_reply(r, m, DS_RAFT_SNAPSHOT_RESP, r->asm_len); /* duplicate */
        return;
    }
    if (!s_chunk_fits(r, m)) {
        r->asm_active = false;
        s_reply(r, m, DS_RAFT_SNAPSHOT_RESP, 0)->reject = true;
        return;
    }
    if (m->chunk.len)
        memcpy(r->asm_buf + m->chunk_offset, m->chunk.data, m->chunk.len);
    r->asm_len = m->chunk_offset + m->chunk.len;
    if (m->chunk_last)
        s_install(r, m);
    else
        s_reply(r, m, DS_RAFT_SNAPSHOT_RESP, r->asm_len);
}
