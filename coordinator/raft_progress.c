/*  coordinator/raft_progress.c - replication progress, flow control,
    quorum arithmetic and the configuration history.

    Flow control (after etcd's tracker): a follower is in one of three
    states. PROBE: the leader does not know where the logs match; it sends
    one APPEND and waits for the answer (or the next heartbeat answer).
    REPLICATE: the logs match at `match`; the leader streams APPENDs
    optimistically from `next`, at most max_inflight of them unacknowledged.
    SNAPSHOT: the entries the follower needs are compacted away; the leader
    sends the snapshot chunk by chunk and appends nothing until it is
    installed.
*/
#include "coordinator/raft_impl.h"

void ds_raft_pr_init(ds_raft_pr_t *pr, uint64_t id, uint64_t next, uint32_t max_inflight)
{
    memset(pr, 0, sizeof(*pr));
    pr->id = id;
    pr->next = next;
    pr->state = DS_PR_PROBE;
    pr->infl_cap = max_inflight;
    pr->infl = ds_raft_xcalloc(max_inflight, sizeof(uint64_t));
}

void ds_raft_pr_free(ds_raft_pr_t *pr)
{
    free(pr->infl);
    memset(pr, 0, sizeof(*pr));
}

static void s_reset_state(ds_raft_pr_t *pr, uint8_t state)
{
    pr->state = state;
    pr->probe_sent = false;
    pr->infl_start = 0;
    pr->infl_count = 0;
    pr->snap_stall = 0;
}

void ds_raft_pr_become_probe(ds_raft_pr_t *pr)
{
    /* Coming back from a snapshot, the follower has at least the snapshot. */
    uint64_t from_snap = pr->state == DS_PR_SNAPSHOT ? pr->snap_index : 0;
    s_reset_state(pr, DS_PR_PROBE);
    pr->next = pr->match + 1;
    if (from_snap + 1 > pr->next)
        pr->next = from_snap + 1;
}

void ds_raft_pr_become_replicate(ds_raft_pr_t *pr)
{
    s_reset_state(pr, DS_PR_REPLICATE);
    pr->next = pr->match + 1;
}

bool ds_raft_pr_paused(const ds_raft_pr_t *pr)
{
    switch (pr->state) {
    case DS_PR_PROBE:
        return pr->probe_sent;
    case DS_PR_REPLICATE:
        return pr->infl_count >= pr->infl_cap;
    default:
        return true;
    }
}

void ds_raft_pr_infl_add(ds_raft_pr_t *pr, uint64_t last)
{
    assert(pr->infl_count < pr->infl_cap);
    pr->infl[(pr->infl_start + pr->infl_count) % pr->infl_cap] = last;
    pr->infl_count++;
}

void ds_raft_pr_infl_free_to(ds_raft_pr_t *pr, uint64_t index)
{
    while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % pr->infl_cap;
        pr->infl_count--;
    }
}

void ds_raft_pr_infl_free_first(ds_raft_pr_t *pr)
{
    if (pr->infl_count > 0)
        ds_raft_pr_infl_free_to(pr, pr->infl[pr->infl_start]);
}

/* ---- configuration ------------------------------------------------------ */

const ds_raft_confrec_t *ds_raft_conf_cur(const ds_raft_t *r)
{
    assert(r->n_confs > 0);
    return &r->confs[r->n_confs - 1];
}

bool ds_raft_is_voter(const ds_raft_t *r, uint64_t id)
{
    const ds_raft_confrec_t *c = ds_raft_conf_cur(r);
    for (uint32_t i = 0; i < c->n; i++)
        if (c->voters[i] == id)
            return true;
    return false;
}

ds_raft_pr_t *ds_raft_pr_get(ds_raft_t *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

void ds_raft_conf_push(ds_raft_t *r, uint64_t index, uint32_t n, const uint64_t *voters)
{
    assert(n <= DS_MAX_MEMBERS);
    if (r->n_confs == r->cap_confs) {
        r->cap_confs = r->cap_confs ? r->cap_confs * 2 : 4;
        r->confs = ds_raft_xrealloc(r->confs, r->cap_confs * sizeof(*r->confs));
    }
    ds_raft_confrec_t *c = &r->confs[r->n_confs++];
    memset(c, 0, sizeof(*c));
    c->index = index;
    c->n = n;
    if (n)
        memcpy(c->voters, voters, n * sizeof(uint64_t));
}

/*  Drops configurations whose entries were truncated (index >= from). The
    first record (from the snapshot or bootstrap) always stays. */
void ds_raft_conf_truncate(ds_raft_t *r, uint64_t from)
{
    while (r->n_confs > 1 && r->confs[r->n_confs - 1].index >= from)
        r->n_confs--;
}

const ds_raft_confrec_t *ds_raft_conf_at(const ds_raft_t *r, uint64_t index)
{
    size_t i = r->n_confs;
    while (i > 1 && r->confs[i - 1].index > index)
        i--;
    return &r->confs[i - 1];
}

/*  Forgets configurations superseded at or before `index`. */
void ds_raft_conf_compact(ds_raft_t *r, uint64_t index)
{
    size_t keep = 0;
    while (keep + 1 < r->n_confs && r->confs[keep + 1].index <= index)
        keep++;
    if (keep == 0)
        return;
    memmove(r->confs, r->confs + keep, (r->n_confs - keep) * sizeof(*r->confs));
    r->n_confs -= keep;
}

/*  Makes the progress set match the current configuration, keeping the
    progress of members that stay. */
void ds_raft_conf_apply(ds_raft_t *r)
{
    const ds_raft_confrec_t *c = ds_raft_conf_cur(r);
    ds_raft_pr_t next[DS_MAX_MEMBERS];
    uint64_t last = ds_raft_log_last(&r->log);
    for (uint32_t i = 0; i < c->n; i++) {
        ds_raft_pr_t *old = ds_raft_pr_get(r, c->voters[i]);
        if (old) {
            next[i] = *old;
            old->id = 0; /* moved */
            old->infl = NULL;
        } else {
            ds_raft_pr_init(&next[i], c->voters[i], last + 1, r->cfg.max_inflight);
            next[i].recent_active = true; /* a new member gets one check-quorum period */
        }
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        ds_raft_pr_free(&r->prs[i]);
    memcpy(r->prs, next, c->n * sizeof(ds_raft_pr_t));
    r->n_prs = c->n;
    if (r->transferee && !ds_raft_pr_get(r, r->transferee))
        r->transferee = 0;
}

uint32_t ds_raft_quorum(const ds_raft_t *r)
{
    return r->n_prs / 2 + 1;
}

static int s_cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/*  The largest value that a quorum of voters has reached. */
static uint64_t s_quorum_value(const ds_raft_t *r, const uint64_t *vals)
{
    uint64_t sorted[DS_MAX_MEMBERS];
    if (r->n_prs == 0)
        return 0;
    memcpy(sorted, vals, r->n_prs * sizeof(uint64_t));
    qsort(sorted, r->n_prs, sizeof(uint64_t), s_cmp_desc);
    return sorted[ds_raft_quorum(r) - 1];
}

uint64_t ds_raft_quorum_match(const ds_raft_t *r)
{
    uint64_t vals[DS_MAX_MEMBERS];
    for (uint32_t i = 0; i < r->n_prs; i++)
        vals[i] = r->prs[i].match;
    return s_quorum_value(r, vals);
}

uint64_t ds_raft_quorum_match_if_synced(const ds_raft_t *r)
{
    uint64_t vals[DS_MAX_MEMBERS];
    for (uint32_t i = 0; i < r->n_prs; i++)
        vals[i] = r->prs[i].id == r->id ? r->log.stable : r->prs[i].match;
    return s_quorum_value(r, vals);
}

uint64_t ds_raft_quorum_read_ack(const ds_raft_t *r)
{
    uint64_t vals[DS_MAX_MEMBERS];
    for (uint32_t i = 0; i < r->n_prs; i++)
        vals[i] = r->prs[i].id == r->id ? r->read_seq : r->prs[i].read_ack;
    return s_quorum_value(r, vals);
}

bool ds_raft_quorum_active(const ds_raft_t *r)
{
    uint32_t active = 0;
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == r->id || r->prs[i].recent_active)
            active++;
    return active >= ds_raft_quorum(r);
}

/*  Called for every entry appended to the log (local or from the leader). */
void ds_raft_conf_entry_appended(ds_raft_t *r, const ds_raft_entry_t *e)
{
    ds_raft_conf_t cc;
    if (e->type != DS_ENTRY_CONF_CHANGE)
        return;
    /* Entries are validated before they are appended. */
    int rc = ds_raft_conf_decode(e->data.data, e->data.len, &cc);
    assert(rc == 0);
    (void)rc;
    ds_raft_conf_push(r, e->index, cc.n_voters, cc.voters);
    ds_raft_conf_apply(r);
    ds_raft_event(r, DS_RAFT_EV_CONF_CHANGED, cc.node, e->index);
}
