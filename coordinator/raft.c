/*  coordinator/raft.c - lifecycle, clock, message dispatch and elections.

    Elections follow the Raft thesis with two extensions (chapter 9.6):

    PRE-VOTE: a follower whose election timer fires first asks "would you
    vote for me at term+1?" without changing any term. Only if a quorum says
    yes does it campaign for real. A node cut off from the cluster so never
    inflates its term, and cannot depose the leader when it comes back.

    CHECK-QUORUM: a leader that has not heard from a quorum during an
    election timeout steps down. A follower that heard from its leader less
    than an election timeout ago holds a lease: it ignores (pre-)vote
    requests, unless the request comes from a leader transfer.
*/
#include "coordinator/raft_impl.h"

/* ---- small helpers ------------------------------------------------------ */

static uint64_t s_rand(ds_raft_t *r)
{
    /* xorshift64* */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 2685821657736338717ull;
}

static void s_reset_timeouts(ds_raft_t *r)
{
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    r->rand_timeout = r->cfg.election_ticks + (uint32_t)(s_rand(r) % r->cfg.election_ticks);
}

static void s_set_term(ds_raft_t *r, uint64_t term)
{
    if (term != r->term) {
        r->term = term;
        r->vote = 0;
    }
}

static void s_reset_votes(ds_raft_t *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        r->prs[i].vote = 0;
}

bool ds_raft_promotable(const ds_raft_t *r)
{
    return ds_raft_is_voter(r, r->id) && !r->log.snap_pending;
}

static void s_abort_transfer(ds_raft_t *r)
{
    if (r->transferee) {
        ds_raft_event(r, DS_RAFT_EV_TRANSFER_ABORTED, r->transferee, 0);
        r->transferee = 0;
    }
}

/* ---- roles -------------------------------------------------------------- */

void ds_raft_become_follower(ds_raft_t *r, uint64_t term, uint64_t lead)
{
    bool changed = r->role != DS_RAFT_FOLLOWER || r->lead != lead || r->term != term;
    if (r->role == DS_RAFT_LEADER)
        ds_raft_reads_clear(r);
    s_abort_transfer(r);
    s_set_term(r, term);
    r->role = DS_RAFT_FOLLOWER;
    r->lead = lead;
    s_reset_timeouts(r);
    if (changed)
        ds_raft_event(r, DS_RAFT_EV_BECAME_FOLLOWER, lead, 0);
}

static void s_become_leader(ds_raft_t *r)
{
    assert(r->role == DS_RAFT_CANDIDATE);
    r->role = DS_RAFT_LEADER;
    r->lead = r->id;
    s_reset_timeouts(r);
    uint64_t last = ds_raft_log_last(&r->log);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        ds_raft_pr_t *pr = &r->prs[i];
        uint32_t cap = pr->infl_cap;
        uint64_t *infl = pr->infl;
        uint64_t id = pr->id;
        memset(pr, 0, sizeof(*pr));
        pr->id = id;
        pr->infl = infl;
        pr->infl_cap = cap;
        pr->next = last + 1;
        pr->state = DS_PR_PROBE;
        if (id == r->id) {
            pr->match = r->log.synced;
            pr->recent_active = true;
        }
    }
    r->read_seq = 0;
    ds_raft_event(r, DS_RAFT_EV_BECAME_LEADER, r->id, last + 1);
    /* A no-op in the new term lets the leader commit everything before it. */
    ds_raft_append_local(r, DS_ENTRY_NOOP, NULL, 0);
    ds_raft_bcast_append(r, true);
}

static void s_send_vote_requests(ds_raft_t *r, uint16_t type, uint64_t term, bool transfer)
{
    for (uint32_t i = 0; i < r->n_prs; i++) {
        if (r->prs[i].id == r->id)
            continue;
        ds_raft_msg_t *m = ds_raft_send(r, type, r->prs[i].id);
        m->term = term;
        m->index = ds_raft_log_last(&r->log);
        m->log_term = ds_raft_log_last_term(&r->log);
        if (transfer) {
            m->context.data = (uint8_t *)DS_RAFT_TRANSFER_CTX;
            m->context.len = DS_RAFT_TRANSFER_CTX_LEN;
        }
    }
}

/*  Records a vote; returns +1 when won, -1 when lost, 0 when undecided. */
static int s_tally(ds_raft_t *r, uint64_t from, bool granted)
{
    ds_raft_pr_t *pr = ds_raft_pr_get(r, from);
    if (pr && pr->vote == 0)
        pr->vote = granted ? 1 : 2;
    uint32_t yes = 0, no = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        yes += r->prs[i].vote == 1;
        no += r->prs[i].vote == 2;
    }
    if (yes >= ds_raft_quorum(r))
        return 1;
    if (no >= ds_raft_quorum(r))
        return -1;
    return 0;
}

static void s_campaign(ds_raft_t *r, bool transfer)
{
    s_set_term(r, r->term + 1);
    r->vote = r->id;
    r->role = DS_RAFT_CANDIDATE;
    r->lead = 0;
    s_reset_timeouts(r);
    s_reset_votes(r);
    ds_raft_event(r, DS_RAFT_EV_BECAME_CANDIDATE, 0, 0);
    if (s_tally(r, r->id, true) > 0) {
        s_become_leader(r);
        return;
    }
    s_send_vote_requests(r, DS_RAFT_VOTE, r->term, transfer);
}

static void s_pre_campaign(ds_raft_t *r)
{
    r->role = DS_RAFT_PRECANDIDATE;
    r->lead = 0;
    s_reset_timeouts(r);
    s_reset_votes(r);
    ds_raft_event(r, DS_RAFT_EV_BECAME_PRECANDIDATE, 0, 0);
    if (s_tally(r, r->id, true) > 0) {
        s_campaign(r, false);
        return;
    }
    s_send_vote_requests(r, DS_RAFT_PREVOTE, r->term + 1, false);
}

static void s_hup(ds_raft_t *r)
{
    if (r->role == DS_RAFT_LEADER || !ds_raft_promotable(r))
        return;
    if (r->cfg.pre_vote)
        s_pre_campaign(r);
    else
        s_campaign(r, false);
}

/* ---- lifecycle ---------------------------------------------------------- */

void ds_raft_config_defaults(ds_raft_config_t *cfg, uint64_t id)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->id = id;
    cfg->election_ticks = 10;
    cfg->heartbeat_ticks = 1;
    cfg->max_append_entries = 64;
    cfg->max_append_bytes = 1u << 20;
    cfg->max_inflight = 64;
    cfg->max_uncommitted = 4096;
    cfg->snapshot_chunk_size = DS_MAX_CHUNK_SIZE;
    cfg->max_snapshot_size = 1ull << 30;
    cfg->pre_vote = true;
    cfg->check_quorum = true;
}

static void s_fill_defaults(ds_raft_config_t *c)
{
    ds_raft_config_t d;
    ds_raft_config_defaults(&d, c->id);
#define S_DEF(f)                                                                                   \
    if (!c->f)                                                                                     \
    c->f = d.f
    S_DEF(election_ticks);
    S_DEF(heartbeat_ticks);
    S_DEF(max_append_entries);
    S_DEF(max_append_bytes);
    S_DEF(max_inflight);
    S_DEF(max_uncommitted);
    S_DEF(snapshot_chunk_size);
    S_DEF(max_snapshot_size);
#undef S_DEF
    if (!c->seed)
        c->seed = 0x9E3779B97F4A7C15ull ^ (c->id * 0xBF58476D1CE4E5B9ull);
    if (!c->seed)
        c->seed = 1;
}

static int s_check_voters(uint32_t n, const uint64_t *voters)
{
    if (n > DS_MAX_MEMBERS)
        return DS_EINVAL;
    for (uint32_t i = 0; i < n; i++) {
        if (voters[i] == 0)
            return DS_EINVAL;
        for (uint32_t j = 0; j < i; j++)
            if (voters[i] == voters[j])
                return DS_EINVAL;
    }
    return 0;
}

static int s_check_config(const ds_raft_config_t *c)
{
    if (c->id == 0 || c->heartbeat_ticks >= c->election_ticks)
        return DS_EINVAL;
    if (c->max_append_entries > DS_MAX_ENTRIES || c->snapshot_chunk_size > DS_MAX_CHUNK_SIZE)
        return DS_EINVAL;
    return s_check_voters(c->n_voters, c->voters);
}

static int s_check_restore(const ds_raft_restore_t *rs)
{
    uint64_t prev = 0, prev_term = 0;
    if (rs->snap_meta) {
        prev = rs->snap_meta->index;
        prev_term = rs->snap_meta->term;
        if (s_check_voters(rs->snap_meta->n_voters, rs->snap_meta->voters) != 0)
            return DS_ECORRUPT;
        if (rs->snap_len > 0 && !rs->snap_data)
            return DS_EINVAL;
    }
    if (rs->n_entries > 0 && !rs->entries)
        return DS_EINVAL;
    for (size_t i = 0; i < rs->n_entries; i++) {
        const ds_raft_entry_t *e = &rs->entries[i];
        if (e->index <= (rs->snap_meta ? rs->snap_meta->index : 0))
            continue;
        ds_raft_conf_t cc;
        if (e->index != prev + 1 || e->term < prev_term || e->term > rs->hs.term)
            return DS_ECORRUPT;
        if (e->data.len > 0 && !e->data.data)
            return DS_EINVAL;
        if (e->type == DS_ENTRY_CONF_CHANGE && ds_raft_conf_decode(e->data.data, e->data.len, &cc))
            return DS_ECORRUPT;
        prev = e->index;
        prev_term = e->term;
    }
    if (prev_term > rs->hs.term)
        return DS_ECORRUPT;
    return 0;
}

int ds_raft_check(const ds_raft_config_t *cfg, const ds_raft_restore_t *restore)
{
    ds_raft_config_t c = *cfg;
    s_fill_defaults(&c);
    int rc = s_check_config(&c);
    if (rc == 0 && restore)
        rc = s_check_restore(restore);
    return rc;
}

static void s_restore(ds_raft_t *r, const ds_raft_restore_t *rs)
{
    uint64_t snap_index = 0;
    if (rs->snap_meta) {
        const ds_snapshot_meta_t *sm = rs->snap_meta;
        snap_index = sm->index;
        ds_raft_log_reset(&r->log, sm->index, sm->term);
        uint8_t *blob = ds_raft_blob_new(rs->snap_data, rs->snap_len);
        ds_raft_log_set_snapshot(&r->log, sm, blob, rs->snap_len);
        ds_raft_conf_push(r, sm->index, sm->n_voters, sm->voters);
    }
    for (size_t i = 0; i < rs->n_entries; i++) {
        const ds_raft_entry_t *e = &rs->entries[i];
        if (e->index <= snap_index)
            continue;
        ds_raft_log_append(&r->log, e->term, e->type, e->data.data, e->data.len);
    }
    r->term = rs->hs.term;
    r->vote = rs->hs.vote;
    r->log.stable = ds_raft_log_last(&r->log);
    r->log.synced = r->log.stable;
    uint64_t commit = rs->hs.commit;
    if (commit < snap_index)
        commit = snap_index;
    if (commit > r->log.stable)
        commit = r->log.stable;
    r->log.committed = commit;
    r->hs_saved = rs->hs;
}

static void s_bootstrap(ds_raft_t *r)
{
    ds_raft_conf_t cc = {.op = DS_RAFT_CONF_BOOTSTRAP, .node = 0, .n_voters = r->cfg.n_voters};
    uint8_t buf[DS_RAFT_CONF_MAX_SIZE];
    memcpy(cc.voters, r->cfg.voters, cc.n_voters * sizeof(uint64_t));
    uint32_t len = ds_raft_conf_encode(&cc, buf);
    r->term = 1;
    ds_raft_log_append(&r->log, 1, DS_ENTRY_CONF_CHANGE, buf, len);
}

ds_raft_t *ds_raft_new(const ds_raft_config_t *cfg, const ds_raft_restore_t *restore)
{
    static const ds_raft_restore_t empty;
    if (!cfg || ds_raft_check(cfg, restore) != 0)
        return NULL;
    if (!restore)
        restore = &empty;
    ds_raft_t *r = ds_raft_xcalloc(1, sizeof(*r));
    r->cfg = *cfg;
    s_fill_defaults(&r->cfg);
    r->id = cfg->id;
    r->rng = r->cfg.seed;
    ds_raft_conf_push(r, 0, 0, NULL); /* no configuration known yet */
    bool fresh = !restore->snap_meta && restore->n_entries == 0 && restore->hs.term == 0;
    if (fresh && r->cfg.n_voters > 0)
        s_bootstrap(r);
    else
        s_restore(r, restore);
    for (uint64_t i = r->log.off_index + 1; i <= ds_raft_log_last(&r->log); i++) {
        const ds_raft_entry_t *e = ds_raft_log_at(&r->log, i);
        if (e->type == DS_ENTRY_CONF_CHANGE) {
            ds_raft_conf_t cc;
            int rc = ds_raft_conf_decode(e->data.data, e->data.len, &cc);
            assert(rc == 0);
            (void)rc;
            ds_raft_conf_push(r, i, cc.n_voters, cc.voters);
        }
    }
    ds_raft_conf_compact(r, r->log.off_index);
    ds_raft_conf_apply(r);
    r->log.applied = r->log.off_index;
    if (r->cfg.applied > r->log.applied && r->cfg.applied <= r->log.committed)
        r->log.applied = r->cfg.applied;
    r->role = DS_RAFT_FOLLOWER;
    s_reset_timeouts(r);
    return r;
}

void ds_raft_destroy(ds_raft_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ds_raft_t *r = *self_p;
    ds_raft_box_free(&r->out);
    ds_raft_box_free(&r->rd);
    ds_raft_reads_clear(r);
    free(r->readq);
    for (uint32_t i = 0; i < r->n_prs; i++)
        ds_raft_pr_free(&r->prs[i]);
    free(r->confs);
    free(r->asm_buf);
    ds_raft_log_free(&r->log);
    free(r);
    *self_p = NULL;
}

/* ---- clock -------------------------------------------------------------- */

static void s_tick_leader(ds_raft_t *r)
{
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum && !ds_raft_quorum_active(r)) {
            ds_raft_event(r, DS_RAFT_EV_QUORUM_LOST, 0, 0);
            ds_raft_become_follower(r, r->term, 0);
            return;
        }
        for (uint32_t i = 0; i < r->n_prs; i++)
            r->prs[i].recent_active = r->prs[i].id == r->id;
        s_abort_transfer(r);
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        /* Heartbeats carry the latest read round, so a lost round is retried. */
        ds_raft_bcast_heartbeat(r, r->n_readq ? r->read_seq : 0);
        ds_raft_leader_tick_snapshots(r);
    }
}

void ds_raft_tick(ds_raft_t *self)
{
    assert(!self->in_ready);
    if (self->role == DS_RAFT_LEADER) {
        s_tick_leader(self);
        return;
    }
    /* A member that cannot campaign lets its lease run out, so that it
       answers the pre-votes of those who can. */
    if (self->election_elapsed < UINT32_MAX)
        self->election_elapsed++;
    if (self->election_elapsed >= self->rand_timeout && ds_raft_promotable(self)) {
        self->election_elapsed = 0;
        s_hup(self);
    }
}

int ds_raft_campaign(ds_raft_t *self)
{
    assert(!self->in_ready);
    if (self->role == DS_RAFT_LEADER || !ds_raft_promotable(self))
        return DS_ESTATE;
    s_hup(self);
    return 0;
}

/* ---- votes -------------------------------------------------------------- */

static void s_on_vote_request(ds_raft_t *r, const ds_raft_msg_t *m)
{
    bool pre = m->type == DS_RAFT_PREVOTE;
    bool can_vote =
        r->vote == m->from || (r->vote == 0 && r->lead == 0) || (pre && m->term > r->term);
    /* Votes are given whatever our configuration says (thesis 4.2.3): a new
       member with an empty configuration must be able to vote. Removed
       members are kept from disrupting by pre-vote and the lease. */
    bool grant = can_vote && ds_raft_log_up_to_date(&r->log, m->index, m->log_term);
    ds_raft_msg_t *resp = ds_raft_send(r, pre ? DS_RAFT_PREVOTE_RESP : DS_RAFT_VOTE_RESP, m->from);
    resp->reject = !grant;
    /* A granted pre-vote answers in the future term the candidate asked about. */
    resp->term = grant ? m->term : r->term;
    if (grant && !pre) {
        r->vote = m->from;
        r->election_elapsed = 0;
    }
}

static void s_on_vote_resp(ds_raft_t *r, const ds_raft_msg_t *m)
{
    bool pre = m->type == DS_RAFT_PREVOTE_RESP;
    if (pre ? r->role != DS_RAFT_PRECANDIDATE : r->role != DS_RAFT_CANDIDATE)
        return;
    /* Granted pre-votes carry term + 1; rejections carry our term. */
    if (pre && !m->reject && m->term != r->term + 1)
        return;
    if ((!pre || m->reject) && m->term != r->term)
        return;
    int outcome = s_tally(r, m->from, !m->reject);
    if (outcome > 0) {
        if (pre)
            s_campaign(r, false);
        else
            s_become_leader(r);
    } else if (outcome < 0) {
        ds_raft_become_follower(r, r->term, 0);
    }
}

static void s_on_timeout_now(ds_raft_t *r, const ds_raft_msg_t *m)
{
    if (r->role == DS_RAFT_LEADER || !ds_raft_promotable(r))
        return;
    ds_raft_event(r, DS_RAFT_EV_TIMEOUT_NOW, m->from, 0);
    s_campaign(r, true);
}

/* ---- step --------------------------------------------------------------- */

static bool s_is_vote_request(uint16_t t)
{
    return t == DS_RAFT_VOTE || t == DS_RAFT_PREVOTE;
}

static bool s_from_leader(uint16_t t)
{
    return t == DS_RAFT_APPEND || t == DS_RAFT_HEARTBEAT || t == DS_RAFT_SNAPSHOT;
}

static bool s_in_lease(const ds_raft_t *r, const ds_raft_msg_t *m)
{
    bool transfer = m->context.len == DS_RAFT_TRANSFER_CTX_LEN && m->context.data &&
                    memcmp(m->context.data, DS_RAFT_TRANSFER_CTX, DS_RAFT_TRANSFER_CTX_LEN) == 0;
    return r->cfg.check_quorum && r->lead != 0 && r->election_elapsed < r->cfg.election_ticks &&
           !(m->type == DS_RAFT_VOTE && transfer);
}

/*  Applies the term rules. Returns false if the message must be dropped. */
static bool s_step_term(ds_raft_t *r, const ds_raft_msg_t *m)
{
    if (m->term > r->term) {
        if (s_is_vote_request(m->type) && s_in_lease(r, m))
            return false;
        if (m->type == DS_RAFT_PREVOTE || (m->type == DS_RAFT_PREVOTE_RESP && !m->reject))
            return true; /* pre-votes never move the term */
        uint32_t elapsed = r->election_elapsed;
        ds_raft_become_follower(r, m->term, s_from_leader(m->type) ? m->from : 0);
        /* Only a granted vote resets the election timer (thesis 3.4): else
           candidates with stale logs could starve up-to-date members. */
        if (s_is_vote_request(m->type))
            r->election_elapsed = elapsed;
        return true;
    }
    if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == DS_RAFT_APPEND || m->type == DS_RAFT_HEARTBEAT)) {
            /* Tell a stale leader about our term so it steps down; without
               this a node with a higher term could be shut out forever. */
            ds_raft_send(r, DS_RAFT_APPEND_RESP, m->from);
        } else if (m->type == DS_RAFT_PREVOTE) {
            ds_raft_msg_t *resp = ds_raft_send(r, DS_RAFT_PREVOTE_RESP, m->from);
            resp->reject = true;
        }
        return false;
    }
    return true;
}

static int s_validate(const ds_raft_t *r, const ds_raft_msg_t *m)
{
    if (m->to != r->id || m->from == 0 || m->from == r->id)
        return DS_EINVAL;
    if (m->type < DS_RAFT_PREVOTE || m->type > DS_RAFT_HEARTBEAT_RESP)
        return DS_EINVAL;
    if (m->n_entries > DS_MAX_ENTRIES || (m->n_entries > 0 && !m->entries))
        return DS_EINVAL;
    if (m->context.len > DS_MAX_CONTEXT_SIZE || (m->context.len > 0 && !m->context.data))
        return DS_EINVAL;
    if (m->chunk.len > DS_MAX_CHUNK_SIZE || (m->chunk.len > 0 && !m->chunk.data))
        return DS_EINVAL;
    if (m->type == DS_RAFT_SNAPSHOT && s_check_voters(m->snap.n_voters, m->snap.voters) != 0)
        return DS_EINVAL;
    return 0;
}

static void s_dispatch(ds_raft_t *r, const ds_raft_msg_t *m)
{
    switch (m->type) {
    case DS_RAFT_PREVOTE:
    case DS_RAFT_VOTE:
        s_on_vote_request(r, m);
        break;
    case DS_RAFT_PREVOTE_RESP:
    case DS_RAFT_VOTE_RESP:
        s_on_vote_resp(r, m);
        break;
    case DS_RAFT_APPEND:
        ds_raft_on_append(r, m);
        break;
    case DS_RAFT_APPEND_RESP:
        ds_raft_on_append_resp(r, m);
        break;
    case DS_RAFT_HEARTBEAT:
        ds_raft_on_heartbeat(r, m);
        break;
    case DS_RAFT_HEARTBEAT_RESP:
        ds_raft_on_heartbeat_resp(r, m);
        break;
    case DS_RAFT_SNAPSHOT:
        ds_raft_on_snapshot(r, m);
        break;
    case DS_RAFT_SNAPSHOT_RESP:
        ds_raft_on_snapshot_resp(r, m);
        break;
    case DS_RAFT_TIMEOUT_NOW:
        s_on_timeout_now(r, m);
        break;
    default:
        break;
    }
}

int ds_raft_step(ds_raft_t *self, const ds_raft_msg_t *msg)
{
    assert(!self->in_ready);
    int rc = s_validate(self, msg);
    if (rc != 0) {
        ds_raft_event(self, DS_RAFT_EV_MSG_IGNORED, msg->from, msg->type);
        return rc;
    }
    if (!s_step_term(self, msg))
        return 0;
    if (s_from_leader(msg->type) && self->role != DS_RAFT_LEADER) {
        /* Same term: whoever sends appends is the leader of this term. */
        if (self->role != DS_RAFT_FOLLOWER || self->lead != msg->from)
            ds_raft_become_follower(self, self->term, msg->from);
        self->election_elapsed = 0;
    } else if (s_from_leader(msg->type)) {
        return 0; /* two leaders in one term cannot happen; ignore */
    }
    s_dispatch(self, msg);
    return 0;
}

/* ---- client requests ---------------------------------------------------- */

int ds_raft_propose(ds_raft_t *self, const uint8_t *data, uint32_t len, uint64_t *index_out)
{
    assert(!self->in_ready);
    if (self->role != DS_RAFT_LEADER)
        return DS_ENOTLEADER;
    if (self->transferee)
        return DS_ESTATE;
    if (len > DS_MAX_ENTRY_SIZE ||
        ds_raft_log_last(&self->log) - self->log.committed >= self->cfg.max_uncommitted)
        return DS_ELIMIT;
    ds_raft_append_local(self, DS_ENTRY_NORMAL, data, len);
    if (index_out)
        *index_out = ds_raft_log_last(&self->log);
    ds_raft_bcast_append(self, false);
    return 0;
}

static int s_conf_build(ds_raft_t *r, uint8_t op, uint64_t node, ds_raft_conf_t *cc)
{
    const ds_raft_confrec_t *cur = ds_raft_conf_cur(r);
    bool present = ds_raft_is_voter(r, node);
    cc->op = op;
    cc->node = node;
    cc->n_voters = 0;
    if (node == 0 || (op != DS_RAFT_CONF_ADD && op != DS_RAFT_CONF_REMOVE))
        return DS_EINVAL;
    if (op == DS_RAFT_CONF_ADD && present)
        return DS_EEXIST;
    if (op == DS_RAFT_CONF_REMOVE && !present)
        return DS_ENOTFOUND;
    if (op == DS_RAFT_CONF_REMOVE && node == r->id)
        return DS_EINVAL;
    if (op == DS_RAFT_CONF_ADD && cur->n >= DS_MAX_MEMBERS)
        return DS_ELIMIT;
    for (uint32_t i = 0; i < cur->n; i++)
        if (cur->voters[i] != node)
            cc->voters[cc->n_voters++] = cur->voters[i];
    if (op == DS_RAFT_CONF_ADD)
        cc->voters[cc->n_voters++] = node;
    return 0;
}

int ds_raft_propose_conf_change(ds_raft_t *self, uint8_t op, uint64_t node, uint64_t *index_out)
{
    assert(!self->in_ready);
    if (self->role != DS_RAFT_LEADER)
        return DS_ENOTLEADER;
    if (self->transferee || ds_raft_conf_cur(self)->index > self->log.committed ||
        !ds_raft_committed_in_term(self))
        return DS_ESTATE;
    ds_raft_conf_t cc;
    int rc = s_conf_build(self, op, node, &cc);
    if (rc != 0)
        return rc;
    uint8_t buf[DS_RAFT_CONF_MAX_SIZE];
    uint32_t len = ds_raft_conf_encode(&cc, buf);
    ds_raft_append_local(self, DS_ENTRY_CONF_CHANGE, buf, len);
    if (index_out)
        *index_out = ds_raft_log_last(&self->log);
    /* A smaller quorum may already cover entries waiting for commit. */
    ds_raft_bcast_append(self, ds_raft_maybe_commit(self));
    return 0;
}

int ds_raft_transfer_leader(ds_raft_t *self, uint64_t target)
{
    assert(!self->in_ready);
    if (self->role != DS_RAFT_LEADER)
        return DS_ENOTLEADER;
    ds_raft_pr_t *pr = ds_raft_pr_get(self, target);
    if (target == self->id || !pr)
        return DS_EINVAL;
    if (self->transferee == target)
        return 0;
    s_abort_transfer(self);
    self->transferee = target;
    self->election_elapsed = 0;
    ds_raft_event(self, DS_RAFT_EV_TRANSFER_STARTED, target, 0);
    if (pr->match == ds_raft_log_last(&self->log))
        ds_raft_send(self, DS_RAFT_TIMEOUT_NOW, target);
    else
        ds_raft_send_append(self, pr, true);
    return 0;
}

/* ---- snapshots ---------------------------------------------------------- */

int ds_raft_snapshot_taken(ds_raft_t *self, uint64_t index, const uint8_t *data, uint64_t len)
{
    assert(!self->in_ready);
    if (index > self->log.applied || index <= self->log.snap.index || index <= self->log.off_index)
        return DS_EINVAL;
    if (len > 0 && !data)
        return DS_EINVAL;
    if (len > self->cfg.max_snapshot_size)
        return DS_ELIMIT;
    ds_snapshot_meta_t meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = index;
    int ok = ds_raft_log_term(&self->log, index, &meta.term);
    assert(ok);
    (void)ok;
    const ds_raft_confrec_t *c = ds_raft_conf_at(self, index);
    meta.n_voters = c->n;
    memcpy(meta.voters, c->voters, c->n * sizeof(uint64_t));
    ds_raft_log_set_snapshot(&self->log, &meta, ds_raft_blob_new(data, len), len);
    uint64_t keep = self->cfg.compact_keep;
    uint64_t upto = index > keep ? index - keep : 0;
    if (upto > self->log.off_index) {
        ds_raft_log_compact(&self->log, upto);
        ds_raft_conf_compact(self, upto);
    }
    return 0;
}

void ds_raft_snapshot_meta(const ds_raft_t *self, ds_snapshot_meta_t *meta)
{
    *meta = self->log.snap;
}

void ds_raft_status(const ds_raft_t *self, ds_raft_status_t *st)
{
    const ds_raft_confrec_t *c = ds_raft_conf_cur(self);
    memset(st, 0, sizeof(*st));
    st->id = self->id;
    st->term = self->term;
    st->vote = self->vote;
    st->lead = self->lead;
    st->role = self->role;
    st->commit = self->log.committed;
    st->applied = self->log.applied;
    st->last_index = ds_raft_log_last(&self->log);
    st->last_term = ds_raft_log_last_term(&self->log);
    st->first_index = self->log.off_index + 1;
    st->snap_index = self->log.snap.index;
    st->snap_term = self->log.snap.term;
    st->n_voters = c->n;
    memcpy(st->voters, c->voters, c->n * sizeof(uint64_t));
    st->transferee = self->transferee;
}
