/*  tests/sim/test_raft_sim.c - deterministic simulation of Raft clusters.

    Drives 3 or 5 ds_raft cores through a simulated network and clock, with
    a fault schedule drawn from the seed: message drop, delay, duplication
    and reordering, symmetric and one-way partitions, crashes and restarts
    from persisted state only, and a disk that loses what was not synced
    (a node may crash while persisting a ready: its writes survive or not,
    and its messages are never sent). Clients propose, read (ReadIndex),
    transfer leadership and change membership; nodes take snapshots and
    compact, so laggards get snapshots in chunks.

    Half of the seeds run the leaders with asynchronous writes (Raft thesis
    10.2.1): a leader's ready that changes neither term nor vote nor
    carries a snapshot is acknowledged with ds_raft_advance_unsynced() and
    its entries and hard state go into a FIFO of pending writes, each
    flushed a few ms later and then reported with ds_raft_synced(). A crash
    loses the pending writes or keeps a prefix of them; a synchronous write
    first waits for all pending writes, as the replica does, and so does a
    snapshot (the replica flushes the WAL before every LMDB commit).

    After every step it checks: at most one leader per term; log matching
    (same index and term -> same entry and same previous term); a vote never
    changes within a term; leader completeness; every committed entry is
    durable on a majority of the leader's voters when the leader commits it
    (or, if no leader was seen committing it, of the applier's or the last
    committed voters when first applied) and never changes; all state
    machines apply the same sequence; ReadIndex never returns an index
    below what was committed before the read started. Then it heals the
    cluster and checks liveness: a leader is elected and a proposal commits
    on every voter within a bounded time.

    Usage: test_raft_sim [--seeds N] [--first S] [--seed S] [--verbose]
    DS_SIM_SEEDS overrides the default number of seeds.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator/raft.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_SANITIZED 1
#endif
#endif
#ifndef SIM_SANITIZED
#define SIM_SANITIZED 0
#endif

#define SIM_MAX_NODES 5
#define TICK_MS       10
#define TRACE_LEN     200
#define LIVENESS_MS   6000

/* ---- small utilities ------------------------------------------------------ */

static uint64_t s_rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ull;
}

static uint64_t s_hash(const uint8_t *p, size_t n, uint64_t h)
{
    h ^= 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static void *s_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p)
        abort();
    return p;
}

static void *s_xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        abort();
    return p;
}

static uint8_t *s_dup(const uint8_t *p, size_t n)
{
    if (!n)
        return NULL;
    uint8_t *q = s_xcalloc(1, n);
    memcpy(q, p, n);
    return q;
}

/* ---- trace -------------------------------------------------------------- */

enum {
    TR_SEND = 1,
    TR_DROP,
    TR_DUP,
    TR_DELIVER,
    TR_CRASH,
    TR_RESTART,
    TR_EVENT,
    TR_COMMIT,
    TR_PARTITION,
    TR_HEAL,
    TR_PROPOSE,
    TR_SNAP,
    TR_TRANSFER,
    TR_CONF,
    TR_READ,
    TR_NOTE,
    TR_WRITE, /* async write queued: index = last entry (0: hard state only), x = flush time */
    TR_SYNCED /* pending write on disk: sub 0 = reported synced, 1 = drained
                 in a ready, 2 = survived a crash; x = entries */
};

typedef struct {
    uint64_t t;
    uint8_t kind, node, peer;
    uint16_t sub;
    uint64_t term, index, x;
} tr_t;

/* ---- persisted state ---------------------------------------------------------- */

typedef struct {
    ds_raft_hard_state_t hs;
    bool has_snap;
    ds_snapshot_meta_t snap;
    uint8_t *snap_data;
    uint64_t snap_len;
    ds_raft_entry_t *ents; /* ents[i].index == base + i, base = snap.index + 1 */
    size_t n, cap;
} disk_t;

/*  An asynchronous write: written, not yet durable. */
typedef struct {
    uint64_t at; /* flush completes at this sim time */
    bool hs_changed;
    ds_raft_hard_state_t hs;
    ds_raft_entry_t *ents; /* copies, data owned */
    size_t n;
} pw_t;

typedef struct {
    uint64_t id;
    bool up, founder;
    ds_raft_t *r;
    disk_t disk;
    pw_t *pw; /* pending writes, FIFO */
    size_t n_pw, cap_pw;
    uint64_t seen_commit; /* commit index of its last ready */
    uint64_t applied, sm_hash;
    uint64_t next_tick, restart_at;
    uint32_t restarts;
} node_t;

typedef struct {
    bool set;
    uint8_t type;
    uint64_t term, dhash, smhash, cterm;
    uint64_t lterm; /* term of the entry a leader committed here (0: not seen) */
} orc_t;

typedef struct {
    uint64_t index, term, dhash, prev; /* prev = UINT64_MAX when unknown */
} lm_t;

typedef struct {
    uint64_t at, seq;
    ds_raft_msg_t m;
} pkt_t;

typedef struct {
    int n;
    bool members_mode; /* 5 nodes, 3 founders, membership changes */
    int drop_pm, dup_pm, long_pm;
    int dmin, dmax;
    int crash_pm, partition_pm, ready_crash_pm; /* per 5 ms action slot / per ready */
    int snap_every, keep, chunk, fill;
    int transfer_pm, read_pm, conf_pm, propose_pm;
    int batch, inflight, heartbeat;
    bool pre_vote, check_quorum;
    bool async;        /* leaders write asynchronously (advance_unsynced/synced) */
    int slow_flush_pm; /* async writes that take up to 30 ms more than 0..3 ms */
    uint64_t chaos_ms;
} prof_t;

typedef struct {
    uint64_t seed, rng;
    prof_t p;
    node_t nodes[SIM_MAX_NODES];
    uint64_t now;
    bool chaos;
    bool blocked[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
    uint64_t heal_partition_at;
    pkt_t **heap;
    size_t n_heap, cap_heap;
    uint64_t pkt_seq;
    orc_t *orc;
    size_t cap_orc;
    uint64_t orc_max;
    uint32_t conf_n; /* last committed configuration */
    uint64_t conf_voters[DS_MAX_MEMBERS];
    lm_t *lm;
    size_t cap_lm, n_lm;
    uint64_t *lot; /* leader of term */
    size_t cap_lot;
    uint64_t *read_min;
    size_t cap_reads, n_reads;
    uint64_t prop_seq;
    uint64_t next_action;
    /* liveness */
    uint64_t marker_index, marker_proposed_at, marker_term;
    /* trace */
    tr_t trace[TRACE_LEN];
    uint64_t n_trace;
    bool verbose;
    jmp_buf fail;
    /* stats */
    uint64_t st_msgs, st_commits, st_leaders, st_snapshots, st_transfers, st_confs, st_crashes,
        st_reads;
    uint64_t st_async, st_writes, st_synced, st_synced_commit, st_drained, st_lost,
        st_snap_inflight;
} sim_t;

typedef struct {
    uint64_t seeds, msgs, commits, leaders, snapshots, transfers, confs, crashes, reads, n3, n5;
    uint64_t async_seeds, async, writes, synced, synced_commit, drained, lost, snap_inflight;
} totals_t;

static void s_trace_print(const tr_t *e)
{
    static const char *const kinds[] = {"?",     "send",    "drop",     "dup",      "deliver",
                                        "crash", "restart", "event",    "commit",   "partition",
                                        "heal",  "propose", "snapshot", "transfer", "conf",
                                        "read",  "note",    "write",    "synced"};
    const int n_kinds = (int)(sizeof(kinds) / sizeof(kinds[0]));
    const char *sub = "";
    if (e->kind == TR_SEND || e->kind == TR_DROP || e->kind == TR_DUP || e->kind == TR_DELIVER)
        sub = ds_raft_msg_name(e->sub);
    else if (e->kind == TR_EVENT)
        sub = ds_raft_event_name(e->sub);
    else if (e->kind == TR_SYNCED)
        sub = e->sub == 0 ? "flushed" : e->sub == 1 ? "drained" : "kept by crash";
    printf("  t=%-6llu n%u %-9s %-18s peer=%u term=%llu index=%llu x=%llu\n",
           (unsigned long long)e->t, e->node, kinds[e->kind < n_kinds ? e->kind : 0], sub, e->peer,
           (unsigned long long)e->term, (unsigned long long)e->index, (unsigned long long)e->x);
}

static void s_tr(sim_t *s, uint8_t kind, uint64_t node, uint64_t peer, uint16_t sub, uint64_t term,
                 uint64_t index, uint64_t x)
{
    tr_t *e = &s->trace[s->n_trace++ % TRACE_LEN];
    *e = (tr_t){s->now, kind, (uint8_t)node, (uint8_t)peer, sub, term, index, x};
    if (s->verbose)
        s_trace_print(e);
}

static void s_fail(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));

static void s_dump_nodes(sim_t *s)
{
    for (int i = 0; i < s->p.n; i++) {
        node_t *nd = &s->nodes[i];
        ds_raft_status_t st;
        if (!nd->up || !nd->r) {
            printf("  n%d down\n", i + 1);
            continue;
        }
        ds_raft_status(nd->r, &st);
        printf("  n%d %-12s term=%llu vote=%llu lead=%llu commit=%llu applied=%llu last=%llu/%llu "
               "snap=%llu voters=",
               i + 1, ds_raft_role_name(st.role), (unsigned long long)st.term,
               (unsigned long long)st.vote, (unsigned long long)st.lead,
               (unsigned long long)st.commit, (unsigned long long)st.applied,
               (unsigned long long)st.last_index, (unsigned long long)st.last_term,
               (unsigned long long)st.snap_index);
        for (uint32_t v = 0; v < st.n_voters; v++)
            printf("%s%llu", v ? "," : "", (unsigned long long)st.voters[v]);
        printf("\n");
    }
}

static void s_fail(sim_t *s, const char *fmt, ...)
{
    va_list ap;
    printf("\nFAIL seed=%llu t=%llu: ", (unsigned long long)s->seed, (unsigned long long)s->now);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\nlast %d events:\n", TRACE_LEN);
    uint64_t from = s->n_trace > TRACE_LEN ? s->n_trace - TRACE_LEN : 0;
    if (!s->verbose)
        for (uint64_t i = from; i < s->n_trace; i++)
            s_trace_print(&s->trace[i % TRACE_LEN]);
    printf("nodes:\n");
    s_dump_nodes(s);
    printf("FAIL seed=%llu: replay with: test_raft_sim --seed %llu --verbose\n",
           (unsigned long long)s->seed, (unsigned long long)s->seed);
    fflush(stdout);
    longjmp(s->fail, 1);
}

static uint64_t s_rnd(sim_t *s, uint64_t n)
{
    return n ? s_rng_next(&s->rng) % n : 0;
}

static bool s_pm(sim_t *s, int pm)
{
    return pm > 0 && (int)s_rnd(s, 1000) < pm;
}

/* ---- disk ------------------------------------------------------------------ */

static uint64_t s_disk_base(const disk_t *d)
{
    return (d->has_snap ? d->snap.index : 0) + 1;
}

static bool s_disk_term(const disk_t *d, uint64_t i, uint64_t *t)
{
    uint64_t base = s_disk_base(d);
    if (i == 0) {
        *t = 0;
        return true;
    }
    if (d->has_snap && i == d->snap.index) {
        *t = d->snap.term;
        return true;
    }
    if (i < base || i >= base + d->n)
        return false;
    *t = d->ents[i - base].term;
    return true;
}

static void s_disk_truncate(disk_t *d, size_t keep)
{
    while (d->n > keep)
        free(d->ents[--d->n].data.data);
}

static void s_disk_free(disk_t *d)
{
    s_disk_truncate(d, 0);
    free(d->ents);
    free(d->snap_data);
    memset(d, 0, sizeof(*d));
}

static void s_disk_set_snap(disk_t *d, const ds_snapshot_meta_t *m, const uint8_t *data,
                            uint64_t len)
{
    uint64_t old_base = s_disk_base(d);
    free(d->snap_data);
    d->has_snap = true;
    d->snap = *m;
    d->snap_data = s_dup(data, (size_t)len);
    d->snap_len = len;
    /* drop entries covered by the snapshot */
    size_t drop = m->index + 1 > old_base ? (size_t)(m->index + 1 - old_base) : 0;
    if (drop > d->n)
        drop = d->n;
    for (size_t i = 0; i < drop; i++)
        free(d->ents[i].data.data);
    if (drop) {
        memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
        d->n -= drop;
    }
}

/* ---- log matching oracle -------------------------------------------------------- */

static lm_t *s_lm_slot(lm_t *tab, size_t cap, uint64_t index, uint64_t term)
{
    size_t h = (size_t)((index * 0x9E3779B97F4A7C15ull) ^ (term * 0xC2B2AE3D27D4EB4Full));
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
        if (tab[i].index == 0 || (tab[i].index == index && tab[i].term == term))
            return &tab[i];
}

static void s_lm_grow(sim_t *s)
{
    size_t cap = s->cap_lm ? s->cap_lm * 2 : 4096;
    lm_t *tab = s_xcalloc(cap, sizeof(lm_t));
    for (size_t i = 0; i < s->cap_lm; i++)
        if (s->lm[i].index)
            *s_lm_slot(tab, cap, s->lm[i].index, s->lm[i].term) = s->lm[i];
    free(s->lm);
    s->lm = tab;
    s->cap_lm = cap;
}

static void s_lm_check(sim_t *s, const node_t *nd, const ds_raft_entry_t *e, uint64_t prev)
{
    if (s->n_lm * 2 >= s->cap_lm)
        s_lm_grow(s);
    uint64_t dh = s_hash(e->data.data, e->data.len, e->type);
    lm_t *slot = s_lm_slot(s->lm, s->cap_lm, e->index, e->term);
    if (slot->index == 0) {
        *slot = (lm_t){e->index, e->term, dh, prev};
        s->n_lm++;
        return;
    }
    if (slot->dhash != dh)
        s_fail(s, "log matching: n%llu wrote index=%llu term=%llu with different data",
               (unsigned long long)nd->id, (unsigned long long)e->index,
               (unsigned long long)e->term);
    if (prev != UINT64_MAX && slot->prev != UINT64_MAX && prev != slot->prev)
        s_fail(s, "log matching: n%llu index=%llu term=%llu follows term %llu, elsewhere %llu",
               (unsigned long long)nd->id, (unsigned long long)e->index,
               (unsigned long long)e->term, (unsigned long long)prev,
               (unsigned long long)slot->prev);
    if (slot->prev == UINT64_MAX)
        slot->prev = prev;
}

/* ---- persistence ------------------------------------------------------------- */

/*  Writes entries (replacing every stored entry from the first one's index
    on) and then the hard state, checking log matching and that term and
    vote never go back. */
static void s_disk_write(sim_t *s, node_t *nd, const ds_raft_entry_t *ents, size_t n,
                         bool hs_changed, ds_raft_hard_state_t hs)
{
    disk_t *d = &nd->disk;
    for (size_t i = 0; i < n; i++) {
        const ds_raft_entry_t *e = &ents[i];
        uint64_t base = s_disk_base(d), prev;
        if (e->index < base || e->index > base + d->n)
            s_fail(s, "n%llu persists index %llu outside [%llu, %llu]", (unsigned long long)nd->id,
                   (unsigned long long)e->index, (unsigned long long)base,
                   (unsigned long long)(base + d->n));
        s_disk_truncate(d, (size_t)(e->index - base));
        if (!s_disk_term(d, e->index - 1, &prev))
            prev = UINT64_MAX;
        s_lm_check(s, nd, e, prev);
        if (d->n == d->cap) {
            d->cap = d->cap ? d->cap * 2 : 64;
            d->ents = s_xrealloc(d->ents, d->cap * sizeof(*d->ents));
        }
        d->ents[d->n] = *e;
        d->ents[d->n].data.data = s_dup(e->data.data, e->data.len);
        d->n++;
    }
    if (hs_changed) {
        if (hs.term < d->hs.term)
            s_fail(s, "n%llu term went back from %llu to %llu", (unsigned long long)nd->id,
                   (unsigned long long)d->hs.term, (unsigned long long)hs.term);
        if (hs.term == d->hs.term && d->hs.vote && hs.vote != d->hs.vote)
            s_fail(s, "n%llu changed its vote in term %llu from %llu to %llu",
                   (unsigned long long)nd->id, (unsigned long long)d->hs.term,
                   (unsigned long long)d->hs.vote, (unsigned long long)hs.vote);
        d->hs = hs;
    }
}

static void s_persist(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    disk_t *d = &nd->disk;
    if (rd->snap_meta) {
        s_disk_truncate(d, 0);
        s_disk_set_snap(d, rd->snap_meta, rd->snap_data, rd->snap_len);
        s_tr(s, TR_SNAP, nd->id, 0, 1, rd->snap_meta->term, rd->snap_meta->index, rd->snap_len);
    }
    s_disk_write(s, nd, rd->entries, rd->n_entries, rd->hs_changed, rd->hs);
}

/* ---- asynchronous leader writes ------------------------------------------------ */

/*  Async mode lets a leader's ready skip the synchronous write when it
    changes neither term nor vote (as persisted) and has no snapshot: those
    are the readies ds_raft_advance_unsynced() accepts. */
static bool s_async_eligible(const sim_t *s, const node_t *nd, const ds_raft_ready_t *rd)
{
    return s->p.async && rd->role == DS_RAFT_LEADER && !rd->snap_meta &&
           rd->hs.term == nd->disk.hs.term && rd->hs.vote == nd->disk.hs.vote;
}

static void s_pw_free(pw_t *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->ents[i].data.data);
    free(w->ents);
    memset(w, 0, sizeof(*w));
}

/*  Queues a copy of the ready's entries and hard state. Flushes complete in
    order: a write never completes before the one queued ahead of it. */
static void s_pw_push(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    if (nd->n_pw == nd->cap_pw) {
        nd->cap_pw = nd->cap_pw ? nd->cap_pw * 2 : 8;
        nd->pw = s_xrealloc(nd->pw, nd->cap_pw * sizeof(*nd->pw));
    }
    pw_t *w = &nd->pw[nd->n_pw++];
    memset(w, 0, sizeof(*w));
    w->at = s->now + s_rnd(s, 4);
    if (s_pm(s, s->p.slow_flush_pm))
        w->at += s_rnd(s, 30); /* a slow flush: followers answer first */
    if (nd->n_pw > 1 && w->at < nd->pw[nd->n_pw - 2].at)
        w->at = nd->pw[nd->n_pw - 2].at;
    w->hs_changed = rd->hs_changed;
    w->hs = rd->hs;
    w->n = rd->n_entries;
    if (w->n) {
        w->ents = s_xcalloc(w->n, sizeof(*w->ents));
        for (size_t i = 0; i < w->n; i++) {
            w->ents[i] = rd->entries[i];
            w->ents[i].data.data = s_dup(rd->entries[i].data.data, rd->entries[i].data.len);
        }
    }
    s->st_writes++;
    s_tr(s, TR_WRITE, nd->id, 0, 0, w->n ? w->ents[w->n - 1].term : 0,
         w->n ? w->ents[w->n - 1].index : 0, w->at);
}

/*  Moves the oldest pending write to disk. `how`: 0 = its flush completed,
    reported with ds_raft_synced(); 1 = drained inside a ready, where
    ds_raft_synced() is not allowed and the synchronous ds_raft_advance()
    that follows covers it; 2 = it survived a crash (the core is gone). */
static void s_pw_complete(sim_t *s, node_t *nd, int how)
{
    pw_t w = nd->pw[0];
    memmove(nd->pw, nd->pw + 1, (nd->n_pw - 1) * sizeof(*nd->pw));
    nd->n_pw--;
    s_disk_write(s, nd, w.ents, w.n, w.hs_changed, w.hs);
    uint64_t index = w.n ? w.ents[w.n - 1].index : 0, term = w.n ? w.ents[w.n - 1].term : 0;
    s_tr(s, TR_SYNCED, nd->id, 0, (uint16_t)how, term, index, w.n);
    s_pw_free(&w);
    if (how == 0 && index) {
        ds_raft_status_t before, after;
        ds_raft_status(nd->r, &before);
        ds_raft_synced(nd->r, index, term);
        ds_raft_status(nd->r, &after);
        s->st_synced++;
        s->st_synced_commit += after.commit > before.commit;
    } else if (how == 1) {
        s->st_drained++;
    }
}

/*  Completes every pending write, in order (the replica waits for its
    background flush before a synchronous write). */
static void s_pw_drain(sim_t *s, node_t *nd, int how)
{
    while (nd->n_pw)
        s_pw_complete(s, nd, how);
}

/*  A crash: the pending writes were written but not flushed, so all of
    them are lost or a prefix of them survives. */
static void s_pw_crash(sim_t *s, node_t *nd)
{
    if (!nd->n_pw)
        return;
    size_t keep = (size_t)s_rnd(s, nd->n_pw + 1);
    while (keep--)
        s_pw_complete(s, nd, 2);
    s->st_lost += nd->n_pw;
    for (size_t i = 0; i < nd->n_pw; i++)
        s_pw_free(&nd->pw[i]);
    nd->n_pw = 0;
}

/* ---- network ------------------------------------------------------------------ */

static bool s_pkt_less(const pkt_t *a, const pkt_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void s_heap_push(sim_t *s, pkt_t *p)
{
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
        s->heap = s_xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
    }
    size_t i = s->n_heap++;
    while (i > 0 && s_pkt_less(p, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = p;
}

static pkt_t *s_heap_pop(sim_t *s)
{
    pkt_t *top = s->heap[0], *last = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_heap)
            break;
        if (c + 1 < s->n_heap && s_pkt_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!s_pkt_less(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap)
        s->heap[i] = last;
    return top;
}

static pkt_t *s_pkt_new(const ds_raft_msg_t *m)
{
    pkt_t *p = s_xcalloc(1, sizeof(*p));
    p->m = *m;
    if (m->n_entries) {
        p->m.entries = s_xcalloc(m->n_entries, sizeof(ds_raft_entry_t));
        for (uint32_t i = 0; i < m->n_entries; i++) {
            p->m.entries[i] = m->entries[i];
            p->m.entries[i].data.data = s_dup(m->entries[i].data.data, m->entries[i].data.len);
        }
    }
    p->m.chunk.data = s_dup(m->chunk.data, m->chunk.len);
    p->m.context.data = s_dup(m->context.data, m->context.len);
    return p;
}

static void s_pkt_free(pkt_t *p)
{
    for (uint32_t i = 0; i < p->m.n_entries; i++)
        free(p->m.entries[i].data.data);
    free(p->m.entries);
    free(p->m.chunk.data);
    free(p->m.context.data);
    free(p);
}

static uint64_t s_delay(sim_t *s)
{
    uint64_t d = (uint64_t)s->p.dmin + s_rnd(s, (uint64_t)(s->p.dmax - s->p.dmin + 1));
    if (s->chaos && s_pm(s, s->p.long_pm))
        d += 50 + s_rnd(s, 300);
    return d;
}

static void s_net_send(sim_t *s, const ds_raft_msg_t *m)
{
    s->st_msgs++;
    if (m->to == 0 || m->to > SIM_MAX_NODES)
        s_fail(s, "n%llu sends to unknown member %llu", (unsigned long long)m->from,
               (unsigned long long)m->to);
    if (s->blocked[m->from][m->to] || (s->chaos && s_pm(s, s->p.drop_pm))) {
        s_tr(s, TR_DROP, m->from, m->to, m->type, m->term, m->index, m->commit);
        return;
    }
    s_tr(s, TR_SEND, m->from, m->to, m->type, m->term, m->index, m->n_entries);
    int copies = s->chaos && s_pm(s, s->p.dup_pm) ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        pkt_t *p = s_pkt_new(m);
        p->at = s->now + s_delay(s);
        p->seq = s->pkt_seq++;
        s_heap_push(s, p);
        if (c)
            s_tr(s, TR_DUP, m->from, m->to, m->type, m->term, m->index, p->at);
    }
}

/* ---- oracle ---------------------------------------------------------------------- */

static orc_t *s_orc(sim_t *s, uint64_t index)
{
    if (index >= s->cap_orc) {
        size_t cap = s->cap_orc ? s->cap_orc : 1024;
        while (cap <= index)
            cap *= 2;
        s->orc = s_xrealloc(s->orc, cap * sizeof(orc_t));
        memset(s->orc + s->cap_orc, 0, (cap - s->cap_orc) * sizeof(orc_t));
        s->cap_orc = cap;
    }
    return &s->orc[index];
}

static bool s_disk_holds(const disk_t *d, uint64_t index, uint64_t term)
{
    uint64_t t;
    if (d->has_snap && d->snap.index >= index)
        return true;
    return s_disk_term(d, index, &t) && t == term;
}

static bool s_majority_holds(sim_t *s, uint32_t n, const uint64_t *voters, uint64_t index,
                             uint64_t term)
{
    uint32_t have = 0;
    for (uint32_t i = 0; i < n; i++)
        if (voters[i] >= 1 && voters[i] <= SIM_MAX_NODES &&
            s_disk_holds(&s->nodes[voters[i] - 1].disk, index, term))
            have++;
    return n > 0 && have >= n / 2 + 1;
}

static void s_orc_commit(sim_t *s, node_t *nd, const ds_raft_entry_t *e, uint64_t term)
{
    orc_t *o = s_orc(s, e->index);
    uint64_t dh = s_hash(e->data.data, e->data.len, e->type);
    if (o->set) {
        if (o->term != e->term || o->dhash != dh)
            s_fail(s,
                   "committed entry changed: n%llu applies index=%llu term=%llu, committed "
                   "term=%llu",
                   (unsigned long long)nd->id, (unsigned long long)e->index,
                   (unsigned long long)e->term, (unsigned long long)o->term);
        if (term < o->cterm)
            o->cterm = term;
        return;
    }
    o->set = true;
    o->type = e->type;
    o->term = e->term;
    o->dhash = dh;
    o->cterm = term;
    if (o->lterm && o->lterm != e->term)
        s_fail(s,
               "committed entry changed: n%llu applies index=%llu term=%llu, the leader "
               "committed term=%llu",
               (unsigned long long)nd->id, (unsigned long long)e->index,
               (unsigned long long)e->term, (unsigned long long)o->lterm);
    ds_raft_status_t st;
    ds_raft_status(nd->r, &st);
    /* Checked against the committing leader's configuration when it
       committed (s_check_commit); otherwise the applier's or the last
       committed one must do. */
    if (!o->lterm && !s_majority_holds(s, st.n_voters, st.voters, e->index, e->term) &&
        !s_majority_holds(s, s->conf_n, s->conf_voters, e->index, e->term))
        s_fail(s, "committed index=%llu term=%llu (seen by n%llu) is not durable on a majority",
               (unsigned long long)e->index, (unsigned long long)e->term,
               (unsigned long long)nd->id);
    if (e->index > s->orc_max)
        s->orc_max = e->index;
    if (e->type == DS_ENTRY_CONF_CHANGE) {
        ds_raft_conf_t cc;
        if (ds_raft_conf_decode(e->data.data, e->data.len, &cc) != 0)
            s_fail(s, "committed conf entry %llu does not decode", (unsigned long long)e->index);
        s->conf_n = cc.n_voters;
        memcpy(s->conf_voters, cc.voters, sizeof(cc.voters));
    }
    if (e->data.len >= 4 && memcmp(e->data.data, "LIVE", 4) == 0)
        s->marker_index = e->index;
    s->st_commits++;
    s_tr(s, TR_COMMIT, nd->id, 0, e->type, e->term, e->index, 0);
}

/* ---- state machine ------------------------------------------------------------------ */

static void s_sm_snapshot(const node_t *nd, uint8_t *buf, size_t len)
{
    uint64_t h = nd->sm_hash;
    for (int i = 0; i < 8; i++) {
        buf[i] = (uint8_t)(nd->applied >> (8 * i));
        buf[8 + i] = (uint8_t)(h >> (8 * i));
    }
    for (size_t i = 16; i < len; i++)
        buf[i] = (uint8_t)(h >> (i % 57));
}

static void s_sm_restore(sim_t *s, node_t *nd, const uint8_t *data, uint64_t len, uint64_t index)
{
    if (len < 16)
        s_fail(s, "n%llu snapshot too short (%llu bytes)", (unsigned long long)nd->id,
               (unsigned long long)len);
    uint64_t idx = 0, h = 0;
    for (int i = 7; i >= 0; i--) {
        idx = idx << 8 | data[i];
        h = h << 8 | data[8 + i];
    }
    if (idx != index)
        s_fail(s, "n%llu snapshot content is for index %llu, meta says %llu",
               (unsigned long long)nd->id, (unsigned long long)idx, (unsigned long long)index);
    orc_t *o = s_orc(s, index);
    if (o->set && o->smhash && o->smhash != h)
        s_fail(s, "n%llu snapshot at %llu has a different state machine",
               (unsigned long long)nd->id, (unsigned long long)index);
    nd->applied = idx;
    nd->sm_hash = h;
}

static void s_apply(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    if (rd->snap_meta)
        s_sm_restore(s, nd, rd->snap_data, rd->snap_len, rd->snap_meta->index);
    for (size_t i = 0; i < rd->n_committed; i++) {
        const ds_raft_entry_t *e = &rd->committed[i];
        if (e->index != nd->applied + 1)
            s_fail(s, "n%llu applies index %llu after %llu", (unsigned long long)nd->id,
                   (unsigned long long)e->index, (unsigned long long)nd->applied);
        s_orc_commit(s, nd, e, rd->hs.term);
        nd->sm_hash = s_hash(e->data.data, e->data.len, nd->sm_hash ^ e->index);
        nd->applied = e->index;
        orc_t *o = s_orc(s, e->index);
        if (!o->smhash)
            o->smhash = nd->sm_hash;
        else if (o->smhash != nd->sm_hash)
            s_fail(s, "n%llu state machine diverged at index %llu", (unsigned long long)nd->id,
                   (unsigned long long)e->index);
    }
}

/* ---- role checks ---------------------------------------------------------------------- */

static void s_check_leader(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    if (rd->role != DS_RAFT_LEADER)
        return;
    uint64_t term = rd->hs.term;
    if (term >= s->cap_lot) {
        size_t cap = s->cap_lot ? s->cap_lot : 64;
        while (cap <= term)
            cap *= 2;
        s->lot = s_xrealloc(s->lot, cap * sizeof(uint64_t));
        memset(s->lot + s->cap_lot, 0, (cap - s->cap_lot) * sizeof(uint64_t));
        s->cap_lot = cap;
    }
    if (s->lot[term] && s->lot[term] != nd->id)
        s_fail(s, "two leaders in term %llu: n%llu and n%llu", (unsigned long long)term,
               (unsigned long long)s->lot[term], (unsigned long long)nd->id);
    s->lot[term] = nd->id;
    for (size_t i = 0; i < rd->n_events; i++) {
        if (rd->events[i].type != DS_RAFT_EV_BECAME_LEADER || rd->events[i].term != term)
            continue;
        s->st_leaders++;
        for (uint64_t idx = 1; idx <= s->orc_max; idx++) {
            orc_t *o = s_orc(s, idx);
            if (o->set && o->cterm < term && !s_disk_holds(&nd->disk, idx, o->term))
                s_fail(s,
                       "leader completeness: n%llu leads term %llu without committed "
                       "index=%llu term=%llu",
                       (unsigned long long)nd->id, (unsigned long long)term,
                       (unsigned long long)idx, (unsigned long long)o->term);
        }
    }
}

/*  The term of `index` in a node's log: its pending writes (newest first),
    then its disk. False if compacted away. */
static bool s_node_term(const node_t *nd, uint64_t index, uint64_t *t)
{
    for (size_t w = nd->n_pw; w > 0; w--) {
        const pw_t *pw = &nd->pw[w - 1];
        if (pw->n && index >= pw->ents[0].index && index <= pw->ents[pw->n - 1].index) {
            *t = pw->ents[index - pw->ents[0].index].term;
            return true;
        }
    }
    if (nd->disk.has_snap && index <= nd->disk.snap.index)
        return false;
    return s_disk_term(&nd->disk, index, t);
}

/*  When a leader's commit index moves, the newly committed entries must be
    durable on a majority of the configuration it counted them in (its
    latest, appended or not). With asynchronous writes the leader's own
    copy may still be in flight, and a majority of the previous
    configuration need not hold them: single-server changes only promise
    that the two majorities overlap. */
static void s_check_commit(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    uint64_t from = nd->seen_commit;
    if (rd->hs.commit <= from)
        return;
    nd->seen_commit = rd->hs.commit;
    if (rd->role != DS_RAFT_LEADER)
        return;
    ds_raft_status_t st;
    ds_raft_status(nd->r, &st);
    for (uint64_t idx = from + 1; idx <= rd->hs.commit; idx++) {
        uint64_t t;
        if (!s_node_term(nd, idx, &t))
            continue; /* under its snapshot: committed long ago */
        if (!s_majority_holds(s, st.n_voters, st.voters, idx, t))
            s_fail(s,
                   "leader n%llu committed index=%llu term=%llu, not durable on a majority "
                   "of its voters",
                   (unsigned long long)nd->id, (unsigned long long)idx, (unsigned long long)t);
        orc_t *o = s_orc(s, idx);
        if ((o->lterm && o->lterm != t) || (o->set && o->term != t))
            s_fail(s,
                   "committed entry changed: leader n%llu committed index=%llu term=%llu, "
                   "before term=%llu",
                   (unsigned long long)nd->id, (unsigned long long)idx, (unsigned long long)t,
                   (unsigned long long)(o->set ? o->term : o->lterm));
        o->lterm = t;
    }
}

static void s_check_reads(sim_t *s, node_t *nd, const ds_raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_reads; i++) {
        const ds_raft_read_state_t *rs = &rd->reads[i];
        uint64_t id = 0;
        if (rs->ctx.len != 8)
            s_fail(s, "read state with a %u-byte context", rs->ctx.len);
        for (int b = 7; b >= 0; b--)
            id = id << 8 | rs->ctx.data[b];
        if (id >= s->n_reads)
            s_fail(s, "read state for unknown read %llu", (unsigned long long)id);
        s_tr(s, TR_READ, nd->id, 1, 0, rd->hs.term, rs->index, s->read_min[id]);
        if (rs->index < s->read_min[id])
            s_fail(s,
                   "stale read: n%llu answered read %llu at index %llu but %llu was "
                   "committed before it started",
                   (unsigned long long)nd->id, (unsigned long long)id,
                   (unsigned long long)rs->index, (unsigned long long)s->read_min[id]);
        s->st_reads++;
    }
}

/* ---- node lifecycle -------------------------------------------------------------------- */

static void s_config(sim_t *s, node_t *nd, ds_raft_config_t *cfg)
{
    ds_raft_config_defaults(cfg, nd->id);
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = (uint32_t)s->p.heartbeat;
    cfg->max_append_entries = (uint32_t)s->p.batch;
    cfg->max_append_bytes = 256;
    cfg->max_inflight = (uint32_t)s->p.inflight;
    cfg->snapshot_chunk_size = (uint32_t)s->p.chunk;
    cfg->compact_keep = (uint32_t)s->p.keep;
    cfg->pre_vote = s->p.pre_vote;
    cfg->check_quorum = s->p.check_quorum;
    cfg->seed = s->seed * 131 + nd->id * 7919 + nd->restarts * 104729 + 1;
    if (nd->founder) {
        int founders = s->p.members_mode ? 3 : s->p.n;
        cfg->n_voters = (uint32_t)founders;
        for (int i = 0; i < founders; i++)
            cfg->voters[i] = (uint64_t)i + 1;
    }
}

static void s_crash(sim_t *s, node_t *nd, const char *why)
{
    (void)why;
    ds_raft_destroy(&nd->r);
    s_pw_crash(s, nd);
    nd->up = false;
    nd->restart_at = s->now + 20 + s_rnd(s, 1500);
    s->st_crashes++;
    s_tr(s, TR_CRASH, nd->id, 0, 0, nd->disk.hs.term, nd->applied, 0);
}

static void s_start(sim_t *s, node_t *nd)
{
    ds_raft_config_t cfg;
    s_config(s, nd, &cfg);
    disk_t *d = &nd->disk;
    cfg.applied = d->has_snap ? d->snap.index : 0;
    ds_raft_restore_t rs = {.hs = d->hs,
                            .snap_meta = d->has_snap ? &d->snap : NULL,
                            .snap_data = d->snap_data,
                            .snap_len = d->snap_len,
                            .entries = d->ents,
                            .n_entries = d->n};
    int rc = ds_raft_check(&cfg, &rs);
    nd->r = ds_raft_new(&cfg, &rs);
    if (!nd->r)
        s_fail(s, "n%llu cannot restart from its disk: %s", (unsigned long long)nd->id,
               ds_errname(rc));
    nd->up = true;
    nd->seen_commit = d->hs.commit;
    nd->applied = 0;
    nd->sm_hash = 0;
    if (d->has_snap)
        s_sm_restore(s, nd, d->snap_data, d->snap_len, d->snap.index);
    nd->next_tick = s->now + 1 + s_rnd(s, TICK_MS);
}

/*  Returns true if it took a snapshot. */
static bool s_maybe_snapshot(sim_t *s, node_t *nd)
{
    ds_raft_status_t st;
    if (!s->p.snap_every || !nd->up)
        return false;
    ds_raft_status(nd->r, &st);
    if (nd->applied < st.snap_index + (uint64_t)s->p.snap_every || nd->applied != st.applied)
        return false;
    /* The pending writes go to disk first, as in coordinator/replica.c,
       where the snapshot's LMDB commit flushes the WAL before it: the
       leader may have applied entries its own flush has not reached. */
    s->st_snap_inflight += nd->n_pw != 0;
    if (nd->n_pw)
        s_pw_drain(s, nd, 0);
    size_t len = 16 + (size_t)s->p.fill;
    uint8_t *buf = s_xcalloc(1, len);
    s_sm_snapshot(nd, buf, len);
    int rc = ds_raft_snapshot_taken(nd->r, nd->applied, buf, len);
    if (rc != 0)
        s_fail(s, "n%llu snapshot_taken(%llu) failed: %s", (unsigned long long)nd->id,
               (unsigned long long)nd->applied, ds_errname(rc));
    ds_snapshot_meta_t meta;
    ds_raft_snapshot_meta(nd->r, &meta);
    orc_t *o = s_orc(s, meta.index);
    if (o->set && o->term != meta.term)
        s_fail(s, "n%llu snapshot meta term %llu != committed term %llu at %llu",
               (unsigned long long)nd->id, (unsigned long long)meta.term,
               (unsigned long long)o->term, (unsigned long long)meta.index);
    s_disk_set_snap(&nd->disk, &meta, buf, len);
    free(buf);
    s->st_snapshots++;
    s_tr(s, TR_SNAP, nd->id, 0, 0, meta.term, meta.index, len);
    return true;
}

/*  A leader's ready acknowledged before its write is durable: the write
    joins the pending FIFO and every message leaves at once. */
static void s_process_async(sim_t *s, node_t *nd, ds_raft_ready_t *rd)
{
    bool write = rd->n_entries || rd->hs_changed;
    if (write)
        s_pw_push(s, nd, rd);
    s->st_async++;
    if (s->chaos && write && s_pm(s, s->p.ready_crash_pm)) {
        /* Crash with the write issued, its messages sent or not. */
        if (s_rnd(s, 2)) {
            s_check_leader(s, nd, rd);
            for (size_t i = 0; i < rd->n_msgs; i++)
                s_net_send(s, &rd->msgs[i]);
        }
        s_crash(s, nd, "crash with unsynced writes");
        return;
    }
    for (size_t i = 0; i < rd->n_events; i++)
        s_tr(s, TR_EVENT, nd->id, rd->events[i].peer, rd->events[i].type, rd->events[i].term,
             rd->events[i].index, 0);
    s_check_leader(s, nd, rd);
    for (size_t i = 0; i < rd->n_msgs; i++)
        s_net_send(s, &rd->msgs[i]);
    s_apply(s, nd, rd);
    s_check_reads(s, nd, rd);
    ds_raft_advance_unsynced(nd->r, rd);
}

static void s_process(sim_t *s, node_t *nd)
{
    do {
        while (nd->up && ds_raft_has_ready(nd->r)) {
            ds_raft_ready_t rd;
            ds_raft_ready(nd->r, &rd);
            s_check_commit(s, nd, &rd);
            if (s_async_eligible(s, nd, &rd)) {
                s_process_async(s, nd, &rd);
                continue;
            }
            /* A synchronous write waits for the pending ones. */
            s_pw_drain(s, nd, 1);
            bool crash = s->chaos && (rd.n_entries || rd.hs_changed || rd.snap_meta) &&
                         s_pm(s, s->p.ready_crash_pm);
            if (!crash || s_rnd(s, 2))
                s_persist(s, nd, &rd); /* unsynced writes may or may not survive a crash */
            if (crash) {
                s_crash(s, nd, "crash while persisting");
                return;
            }
            for (size_t i = 0; i < rd.n_events; i++)
                s_tr(s, TR_EVENT, nd->id, rd.events[i].peer, rd.events[i].type, rd.events[i].term,
                     rd.events[i].index, 0);
            s_check_leader(s, nd, &rd);
            for (size_t i = 0; i < rd.n_msgs; i++)
                s_net_send(s, &rd.msgs[i]);
            s_apply(s, nd, &rd);
            s_check_reads(s, nd, &rd);
            ds_raft_advance(nd->r, &rd);
        }
        /* A snapshot drains the pending writes, which may commit more. */
    } while (s_maybe_snapshot(s, nd));
}

/*  Completes the pending writes whose flush time has come, oldest first. */
static void s_pw_due(sim_t *s, node_t *nd)
{
    if (!nd->up || !nd->n_pw || nd->pw[0].at > s->now)
        return;
    while (nd->n_pw && nd->pw[0].at <= s->now)
        s_pw_complete(s, nd, 0);
    s_process(s, nd);
}

/* ---- client and faults ------------------------------------------------------------------- */

static node_t *s_leader(sim_t *s)
{
    node_t *best = NULL;
    uint64_t best_term = 0;
    for (int i = 0; i < s->p.n; i++) {
        node_t *nd = &s->nodes[i];
        ds_raft_status_t st;
        if (!nd->up)
            continue;
        ds_raft_status(nd->r, &st);
        if (st.role == DS_RAFT_LEADER && st.term >= best_term) {
            best = nd;
            best_term = st.term;
        }
    }
    return best;
}

static void s_propose(sim_t *s, node_t *ld, const char *tag)
{
    uint8_t buf[64];
    size_t len = 12 + (size_t)s_rnd(s, 40);
    memset(buf, 0, sizeof(buf));
    memcpy(buf, tag, 4);
    uint64_t id = ++s->prop_seq;
    memcpy(buf + 4, &id, 8);
    for (size_t i = 12; i < len; i++)
        buf[i] = (uint8_t)s_rnd(s, 256);
    uint64_t index = 0;
    int rc = ds_raft_propose(ld->r, buf, (uint32_t)len, &index);
    if (rc != 0 && rc != DS_ESTATE && rc != DS_ELIMIT)
        s_fail(s, "propose on leader n%llu failed: %s", (unsigned long long)ld->id, ds_errname(rc));
    s_tr(s, TR_PROPOSE, ld->id, 0, (uint16_t)-rc, 0, index, id);
    s_process(s, ld);
}

static void s_read(sim_t *s, node_t *ld)
{
    if (s->n_reads == s->cap_reads) {
        s->cap_reads = s->cap_reads ? s->cap_reads * 2 : 64;
        s->read_min = s_xrealloc(s->read_min, s->cap_reads * sizeof(uint64_t));
    }
    uint64_t id = s->n_reads;
    uint8_t ctx[8];
    for (int b = 0; b < 8; b++)
        ctx[b] = (uint8_t)(id >> (8 * b));
    if (ds_raft_read_index(ld->r, ctx, 8) != 0)
        return;
    s->read_min[s->n_reads++] = s->orc_max;
    s_tr(s, TR_READ, ld->id, 0, 0, 0, s->orc_max, id);
    s_process(s, ld);
}

static void s_transfer(sim_t *s, node_t *ld)
{
    ds_raft_status_t st;
    ds_raft_status(ld->r, &st);
    uint64_t target = st.voters[s_rnd(s, st.n_voters)];
    if (target == ld->id)
        return;
    int rc = ds_raft_transfer_leader(ld->r, target);
    if (rc != 0)
        s_fail(s, "transfer to voter %llu failed: %s", (unsigned long long)target, ds_errname(rc));
    s->st_transfers++;
    s_tr(s, TR_TRANSFER, ld->id, target, 0, st.term, 0, 0);
    s_process(s, ld);
}

static void s_conf(sim_t *s, node_t *ld)
{
    ds_raft_status_t st;
    ds_raft_status(ld->r, &st);
    uint64_t node = 1 + s_rnd(s, (uint64_t)s->p.n);
    bool present = false;
    for (uint32_t i = 0; i < st.n_voters; i++)
        present |= st.voters[i] == node;
    if (node == ld->id || (present && st.n_voters <= 3) || (!present && st.n_voters >= 5))
        return;
    uint8_t op = present ? DS_RAFT_CONF_REMOVE : DS_RAFT_CONF_ADD;
    uint64_t index = 0;
    int rc = ds_raft_propose_conf_change(ld->r, op, node, &index);
    if (rc != 0 && rc != DS_ESTATE)
        s_fail(s, "conf change %s n%llu failed: %s", op == DS_RAFT_CONF_ADD ? "add" : "remove",
               (unsigned long long)node, ds_errname(rc));
    if (rc == 0)
        s->st_confs++;
    s_tr(s, TR_CONF, ld->id, node, op, st.term, index, (uint64_t)-rc);
    s_process(s, ld);
}

static void s_partition(sim_t *s)
{
    int n = s->p.n;
    memset(s->blocked, 0, sizeof(s->blocked));
    int kind = (int)s_rnd(s, 3);
    if (kind == 0) { /* isolate one node */
        int v = 1 + (int)s_rnd(s, (uint64_t)n);
        for (int i = 1; i <= n; i++)
            s->blocked[v][i] = s->blocked[i][v] = i != v;
    } else if (kind == 1) { /* split into two groups */
        uint32_t mask = (uint32_t)s_rnd(s, 1u << n);
        for (int i = 1; i <= n; i++)
            for (int j = 1; j <= n; j++)
                s->blocked[i][j] = ((mask >> (i - 1)) & 1) != ((mask >> (j - 1)) & 1);
    } else { /* a few one-way cuts */
        for (int k = 0; k < 1 + (int)s_rnd(s, 3); k++) {
            int a = 1 + (int)s_rnd(s, (uint64_t)n), b = 1 + (int)s_rnd(s, (uint64_t)n);
            s->blocked[a][b] = a != b;
        }
    }
    s->heal_partition_at = s->now + 100 + s_rnd(s, 1500);
    s_tr(s, TR_PARTITION, 0, 0, (uint16_t)kind, 0, 0, s->heal_partition_at);
}

static void s_chaos_actions(sim_t *s)
{
    if (s->heal_partition_at && s->now >= s->heal_partition_at) {
        memset(s->blocked, 0, sizeof(s->blocked));
        s->heal_partition_at = 0;
        s_tr(s, TR_HEAL, 0, 0, 0, 0, 0, 0);
    }
    if (!s->heal_partition_at && s_pm(s, s->p.partition_pm))
        s_partition(s);
    if (s_pm(s, s->p.crash_pm)) {
        node_t *nd = &s->nodes[s_rnd(s, (uint64_t)s->p.n)];
        if (nd->up)
            s_crash(s, nd, "crash");
    }
    node_t *ld = s_leader(s);
    if (!ld)
        return;
    if (s_pm(s, s->p.propose_pm))
        s_propose(s, ld, "DATA");
    if (ld->up && ds_raft_has_ready(ld->r) == false && s_pm(s, s->p.read_pm))
        s_read(s, ld);
    if (ld->up && s_pm(s, s->p.transfer_pm))
        s_transfer(s, ld);
    if (ld->up && s->p.members_mode && s_pm(s, s->p.conf_pm))
        s_conf(s, ld);
}

/* ---- main loop ------------------------------------------------------------------------- */

static void s_deliver(sim_t *s, pkt_t *p)
{
    node_t *nd = &s->nodes[p->m.to - 1];
    if (!nd->up || s->blocked[p->m.from][p->m.to]) {
        s_tr(s, TR_DROP, p->m.from, p->m.to, p->m.type, p->m.term, p->m.index, 1);
        return;
    }
    s_tr(s, TR_DELIVER, p->m.to, p->m.from, p->m.type, p->m.term, p->m.index, p->m.reject);
    int rc = ds_raft_step(nd->r, &p->m);
    if (rc != 0)
        s_fail(s, "n%llu rejected a well-formed %s: %s", (unsigned long long)nd->id,
               ds_raft_msg_name(p->m.type), ds_errname(rc));
    s_process(s, nd);
}

static uint64_t s_next_time(sim_t *s)
{
    uint64_t t = s->next_action;
    if (s->n_heap && s->heap[0]->at < t)
        t = s->heap[0]->at;
    for (int i = 0; i < s->p.n; i++) {
        node_t *nd = &s->nodes[i];
        uint64_t nt = nd->up ? nd->next_tick : nd->restart_at;
        if (nt < t)
            t = nt;
        if (nd->up && nd->n_pw && nd->pw[0].at < t)
            t = nd->pw[0].at;
    }
    return t;
}

static void s_step_time(sim_t *s)
{
    s->now = s_next_time(s);
    while (s->n_heap && s->heap[0]->at <= s->now) {
        pkt_t *p = s_heap_pop(s);
        s_deliver(s, p);
        s_pkt_free(p);
    }
    for (int i = 0; i < s->p.n; i++)
        s_pw_due(s, &s->nodes[i]);
    for (int i = 0; i < s->p.n; i++) {
        node_t *nd = &s->nodes[i];
        if (!nd->up && nd->restart_at <= s->now) {
            nd->restarts++;
            s_start(s, nd);
            s_tr(s, TR_RESTART, nd->id, 0, 0, nd->disk.hs.term, nd->applied, nd->disk.hs.commit);
            s_process(s, nd);
        } else if (nd->up && nd->next_tick <= s->now) {
            nd->next_tick += TICK_MS;
            ds_raft_tick(nd->r);
            s_process(s, nd);
        }
    }
    if (s->next_action <= s->now) {
        s->next_action = s->now + 5;
        if (s->chaos)
            s_chaos_actions(s);
    }
}

static void s_heal(sim_t *s)
{
    s->chaos = false;
    memset(s->blocked, 0, sizeof(s->blocked));
    s->heal_partition_at = 0;
    s->p.dmin = 1;
    s->p.dmax = 5;
    for (int i = 0; i < s->p.n; i++)
        if (!s->nodes[i].up)
            s->nodes[i].restart_at = s->now;
    s_tr(s, TR_HEAL, 0, 0, 1, 0, 0, 0);
}

static bool s_live(sim_t *s)
{
    node_t *ld = s_leader(s);
    if (!ld)
        return false;
    ds_raft_status_t st;
    ds_raft_status(ld->r, &st);
    if (s->marker_index == 0) {
        if (s->marker_term != st.term || s->now >= s->marker_proposed_at + 1000) {
            s->marker_term = st.term;
            s->marker_proposed_at = s->now;
            s_propose(s, ld, "LIVE");
        }
        return false;
    }
    for (uint32_t i = 0; i < st.n_voters; i++) {
        node_t *nd = &s->nodes[st.voters[i] - 1];
        if (!nd->up || nd->applied < s->marker_index)
            return false;
    }
    return true;
}

static void s_profile(sim_t *s)
{
    prof_t *p = &s->p;
    p->n = s_rnd(s, 2) ? 5 : 3;
    p->members_mode = p->n == 5 && s_rnd(s, 3) == 0;
    int calm = s_rnd(s, 8) == 0; /* some seeds are gentle: exercise the happy path */
    p->drop_pm = calm ? 0 : (int)s_rnd(s, 150);
    p->dup_pm = calm ? 0 : (int)s_rnd(s, 50);
    p->long_pm = calm ? 0 : (int)s_rnd(s, 30);
    p->dmin = 1 + (int)s_rnd(s, 5);
    p->dmax = p->dmin + (int)s_rnd(s, 30);
    p->crash_pm = calm ? 0 : (int)s_rnd(s, 6);
    p->partition_pm = calm ? 0 : (int)s_rnd(s, 8);
    p->ready_crash_pm = calm ? 0 : (int)s_rnd(s, 4);
    p->snap_every = s_rnd(s, 3) ? 5 + (int)s_rnd(s, 40) : 0;
    p->keep = s_rnd(s, 2) ? 0 : (int)s_rnd(s, 10);
    p->chunk = 64 + (int)s_rnd(s, 500);
    p->fill = (int)s_rnd(s, 3000);
    p->transfer_pm = s_rnd(s, 2) ? (int)s_rnd(s, 6) : 0;
    p->read_pm = (int)s_rnd(s, 100);
    p->conf_pm = p->members_mode ? 5 + (int)s_rnd(s, 20) : 0;
    p->propose_pm = 50 + (int)s_rnd(s, 300);
    int v = (int)s_rnd(s, 10);
    /* Without pre-vote and the lease, a removed member that missed its
       removal keeps deposing leaders (thesis 4.2.3): membership changes
       require both, as in etcd. */
    p->pre_vote = v != 0 || p->members_mode;
    p->check_quorum = v > 1 || p->members_mode;
    p->chaos_ms = 2000 + s_rnd(s, 3000);
    p->batch = 1 + (int)s_rnd(s, 8);
    p->inflight = 1 + (int)s_rnd(s, 8);
    p->heartbeat = 1 + (int)s_rnd(s, 3);
    if (!calm && s_rnd(s, 4) == 0) { /* stormy: frequent crashes and leader changes */
        p->crash_pm = 10 + (int)s_rnd(s, 20);
        p->ready_crash_pm = 5 + (int)s_rnd(s, 20);
        p->partition_pm = 5 + (int)s_rnd(s, 20);
    }
    p->async = s_rnd(s, 2) != 0;
    p->slow_flush_pm = s_rnd(s, 2) ? 50 : (int)s_rnd(s, 400);
}

static void s_sim_free(sim_t *s)
{
    for (int i = 0; i < SIM_MAX_NODES; i++) {
        node_t *nd = &s->nodes[i];
        ds_raft_destroy(&nd->r);
        s_disk_free(&nd->disk);
        for (size_t w = 0; w < nd->n_pw; w++)
            s_pw_free(&nd->pw[w]);
        free(nd->pw);
    }
    while (s->n_heap)
        s_pkt_free(s_heap_pop(s));
    free(s->heap);
    free(s->orc);
    free(s->lm);
    free(s->lot);
    free(s->read_min);
}

static int s_run_seed(uint64_t seed, bool verbose, totals_t *tot)
{
    sim_t *s = s_xcalloc(1, sizeof(*s));
    s->seed = seed;
    s->rng = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    s->verbose = verbose;
    if (setjmp(s->fail)) {
        s_sim_free(s);
        free(s);
        return 1;
    }
    s_profile(s);
    if (verbose)
        printf("seed %llu: n=%d members=%d drop=%d dup=%d delay=%d..%d crash=%d part=%d "
               "rcrash=%d snap=%d keep=%d chunk=%d fill=%d xfer=%d read=%d conf=%d prop=%d "
               "prevote=%d cq=%d async=%d slowflush=%d chaos=%llums\n",
               (unsigned long long)seed, s->p.n, s->p.members_mode, s->p.drop_pm, s->p.dup_pm,
               s->p.dmin, s->p.dmax, s->p.crash_pm, s->p.partition_pm, s->p.ready_crash_pm,
               s->p.snap_every, s->p.keep, s->p.chunk, s->p.fill, s->p.transfer_pm, s->p.read_pm,
               s->p.conf_pm, s->p.propose_pm, s->p.pre_vote, s->p.check_quorum, s->p.async,
               s->p.slow_flush_pm, (unsigned long long)s->p.chaos_ms);
    for (int i = 0; i < s->p.n; i++) {
        s->nodes[i].id = (uint64_t)i + 1;
        s->nodes[i].founder = !s->p.members_mode || i < 3;
        s_start(s, &s->nodes[i]);
    }
    s->conf_n = s->p.members_mode ? 3 : (uint32_t)s->p.n;
    for (uint32_t i = 0; i < s->conf_n; i++)
        s->conf_voters[i] = i + 1;
    s->chaos = true;
    while (s->now < s->p.chaos_ms)
        s_step_time(s);
    s_heal(s);
    uint64_t deadline = s->now + LIVENESS_MS;
    uint64_t next_check = s->now;
    for (;;) {
        s_step_time(s);
        if (s->now >= next_check) {
            next_check = s->now + TICK_MS;
            if (s_live(s))
                break;
        }
        if (s->now > deadline)
            s_fail(s,
                   "liveness: no proposal committed on every voter within %d ms after "
                   "healing (leader=%s)",
                   LIVENESS_MS, s_leader(s) ? "yes" : "none");
    }
    tot->msgs += s->st_msgs;
    tot->commits += s->st_commits;
    tot->leaders += s->st_leaders;
    tot->snapshots += s->st_snapshots;
    tot->transfers += s->st_transfers;
    tot->confs += s->st_confs;
    tot->crashes += s->st_crashes;
    tot->reads += s->st_reads;
    tot->async_seeds += s->p.async;
    tot->async += s->st_async;
    tot->writes += s->st_writes;
    tot->synced += s->st_synced;
    tot->synced_commit += s->st_synced_commit;
    tot->drained += s->st_drained;
    tot->lost += s->st_lost;
    tot->snap_inflight += s->st_snap_inflight;
    if (s->p.n == 3)
        tot->n3++;
    else
        tot->n5++;
    tot->seeds++;
    s_sim_free(s);
    free(s);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t first = 1, count = SIM_SANITIZED ? 1500 : 10000;
    bool verbose = false, one = false;
    const char *env = getenv("DS_SIM_SEEDS");
    if (env && *env)
        count = strtoull(env, NULL, 10);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            first = strtoull(argv[++i], NULL, 10);
            count = 1;
            one = true;
        } else if (!strcmp(argv[i], "--seeds") && i + 1 < argc) {
            count = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--first") && i + 1 < argc) {
            first = strtoull(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = true;
        } else {
            fprintf(stderr, "usage: %s [--seeds N] [--first S] [--seed S] [--verbose]\n", argv[0]);
            return 2;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    totals_t tot;
    memset(&tot, 0, sizeof(tot));
    int failed = 0;
    for (uint64_t seed = first; seed < first + count; seed++) {
        if (s_run_seed(seed, verbose && one, &tot)) {
            failed = 1;
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%s: %llu seeds (%llu with 3 nodes, %llu with 5) in %.1fs: %llu messages, %llu "
           "commits, %llu elections won, %llu snapshots, %llu transfers, %llu conf changes, "
           "%llu crashes, %llu reads; async writes on %llu seeds: %llu async readies, %llu "
           "writes, %llu synced (%llu of them committed), %llu drained, %llu lost in crashes, %llu "
           "snapshots with writes in flight\n",
           failed ? "FAILED" : "ok", (unsigned long long)tot.seeds, (unsigned long long)tot.n3,
           (unsigned long long)tot.n5, secs, (unsigned long long)tot.msgs,
           (unsigned long long)tot.commits, (unsigned long long)tot.leaders,
           (unsigned long long)tot.snapshots, (unsigned long long)tot.transfers,
           (unsigned long long)tot.confs, (unsigned long long)tot.crashes,
           (unsigned long long)tot.reads, (unsigned long long)tot.async_seeds,
           (unsigned long long)tot.async, (unsigned long long)tot.writes,
           (unsigned long long)tot.synced, (unsigned long long)tot.synced_commit,
           (unsigned long long)tot.drained, (unsigned long long)tot.lost,
           (unsigned long long)tot.snap_inflight);
    return failed;
}
