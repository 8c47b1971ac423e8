/*  tests/unit/test_raft.c - targeted behaviours of the Raft core.

    A tiny in-memory network delivers messages in order; tests cut links,
    tick nodes and craft messages by hand where a precise situation is
    needed. The randomized fault search lives in tests/sim/test_raft_sim.c.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/raft.h"

#define N_MAX 5

typedef struct {
    ds_raft_msg_t m;
} qmsg_t;

typedef struct {
    int n;
    ds_raft_t *node[N_MAX + 1];
    bool cut[N_MAX + 1][N_MAX + 1];
    qmsg_t *q;
    size_t nq, capq;
    /* observations */
    size_t sent[12]; /* messages sent, by type */
    uint64_t snap_installed[N_MAX + 1];
    uint64_t snap_len[N_MAX + 1];
    ds_raft_read_state_t reads[16];
    size_t n_reads;
    ds_raft_hard_state_t hs[N_MAX + 1];
    bool flush_later[N_MAX + 1]; /* leader readies advance unsynced */
} net_t;

static ds_raft_config_t s_cfg(uint64_t id, int voters)
{
    ds_raft_config_t c;
    ds_raft_config_defaults(&c, id);
    c.seed = id * 7919;
    c.n_voters = (uint32_t)voters;
    for (int i = 0; i < voters; i++)
        c.voters[i] = (uint64_t)i + 1;
    return c;
}

static void s_copy_msg(ds_raft_msg_t *dst, const ds_raft_msg_t *m)
{
    *dst = *m;
    if (m->n_entries) {
        dst->entries = calloc(m->n_entries, sizeof(ds_raft_entry_t));
        for (uint32_t i = 0; i < m->n_entries; i++) {
            dst->entries[i] = m->entries[i];
            if (m->entries[i].data.len) {
                dst->entries[i].data.data = malloc(m->entries[i].data.len);
                memcpy(dst->entries[i].data.data, m->entries[i].data.data, m->entries[i].data.len);
            }
        }
    }
    if (m->chunk.len) {
        dst->chunk.data = malloc(m->chunk.len);
        memcpy(dst->chunk.data, m->chunk.data, m->chunk.len);
    }
    if (m->context.len) {
        dst->context.data = malloc(m->context.len);
        memcpy(dst->context.data, m->context.data, m->context.len);
    }
}

static void s_free_msg(ds_raft_msg_t *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data.data);
    free(m->entries);
    free(m->chunk.data);
    free(m->context.data);
}

/*  Processes every ready of node i: "persists" (records hard state),
    queues its messages, records snapshots and reads, advances. */
static void s_drain(net_t *net, int i)
{
    ds_raft_t *r = net->node[i];
    while (r && ds_raft_has_ready(r)) {
        ds_raft_ready_t rd;
        ds_raft_ready(r, &rd);
        ds_raft_hard_state_t saved = net->hs[i];
        net->hs[i] = rd.hs;
        if (rd.snap_meta) {
            net->snap_installed[i] = rd.snap_meta->index;
            net->snap_len[i] = rd.snap_len;
        }
        for (size_t k = 0; k < rd.n_msgs; k++) {
            const ds_raft_msg_t *m = &rd.msgs[k];
            net->sent[m->type]++;
            if (net->cut[m->from][m->to] || !net->node[m->to])
                continue;
            if (net->nq == net->capq) {
                net->capq = net->capq ? net->capq * 2 : 64;
                net->q = realloc(net->q, net->capq * sizeof(qmsg_t));
            }
            s_copy_msg(&net->q[net->nq++].m, m);
        }
        for (size_t k = 0; k < rd.n_reads && net->n_reads < 16; k++)
            net->reads[net->n_reads++] = (ds_raft_read_state_t){{NULL, 0}, rd.reads[k].index};
        bool later = net->flush_later[i] && rd.role == DS_RAFT_LEADER && !rd.snap_meta &&
                     rd.hs.term == saved.term && rd.hs.vote == saved.vote;
        if (later)
            ds_raft_advance_unsynced(r, &rd);
        else
            ds_raft_advance(r, &rd);
    }
}

static void s_run(net_t *net)
{
    for (int round = 0; round < 1000; round++) {
        for (int i = 1; i <= net->n; i++)
            s_drain(net, i);
        if (net->nq == 0)
            return;
        qmsg_t *q = net->q;
        size_t nq = net->nq;
        net->q = NULL;
        net->nq = net->capq = 0;
        for (size_t k = 0; k < nq; k++) {
            ds_raft_msg_t *m = &q[k].m;
            if (!net->cut[m->from][m->to] && net->node[m->to])
                assert_int_equal(ds_raft_step(net->node[m->to], m), 0);
            s_free_msg(m);
            s_drain(net, (int)m->to);
        }
        free(q);
    }
    fail_msg("network did not settle");
}

static void s_tick(net_t *net, int i, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        ds_raft_tick(net->node[i]);
        s_run(net);
    }
}

static void s_tick_all(net_t *net, int ticks)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 1; i <= net->n; i++)
            if (net->node[i])
                ds_raft_tick(net->node[i]);
        s_run(net);
    }
}

static void s_net_new(net_t *net, int n, void (*tweak)(ds_raft_config_t *))
{
    memset(net, 0, sizeof(*net));
    net->n = n;
    for (int i = 1; i <= n; i++) {
        ds_raft_config_t c = s_cfg((uint64_t)i, n);
        if (tweak)
            tweak(&c);
        net->node[i] = ds_raft_new(&c, NULL);
        assert_non_null(net->node[i]);
    }
    s_run(net);
}

static void s_net_free(net_t *net)
{
    for (int i = 1; i <= N_MAX; i++)
        ds_raft_destroy(&net->node[i]);
    for (size_t k = 0; k < net->nq; k++)
        s_free_msg(&net->q[k].m);
    free(net->q);
}

static void s_isolate(net_t *net, int v, bool cut)
{
    for (int i = 1; i <= N_MAX; i++) {
        net->cut[v][i] = cut && i != v;
        net->cut[i][v] = cut && i != v;
    }
}

static ds_raft_status_t s_st(net_t *net, int i)
{
    ds_raft_status_t st;
    ds_raft_status(net->node[i], &st);
    return st;
}

static void s_elect(net_t *net, int i)
{
    assert_int_equal(ds_raft_campaign(net->node[i]), 0);
    s_run(net);
    assert_int_equal(s_st(net, i).role, DS_RAFT_LEADER);
}

static void s_propose(net_t *net, int i, const char *data)
{
    uint64_t index;
    assert_int_equal(
        ds_raft_propose(net->node[i], (const uint8_t *)data, (uint32_t)strlen(data), &index), 0);
    s_run(net);
}

/* ---- elections -------------------------------------------------------------- */

static void test_three_nodes_elect_one_leader_and_commit(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_propose(&net, 1, "hello");
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(s_st(&net, i).lead, 1);
        assert_int_equal(s_st(&net, i).commit, 3); /* bootstrap, no-op, hello */
    }
    s_net_free(&net);
}

static void s_no_prevote(ds_raft_config_t *c)
{
    c->pre_vote = false;
    c->check_quorum = false;
}

static void test_vote_refused_when_log_behind(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, s_no_prevote);
    s_elect(&net, 1);
    s_propose(&net, 1, "x");
    /* n3 asks for a vote with only the bootstrap entry (index 1, term 1). */
    ds_raft_msg_t m = {
        .type = DS_RAFT_VOTE, .from = 3, .to = 2, .term = 5, .index = 1, .log_term = 1};
    size_t refused_before = net.sent[DS_RAFT_VOTE_RESP];
    assert_int_equal(ds_raft_step(net.node[2], &m), 0);
    ds_raft_ready_t rd;
    ds_raft_ready(net.node[2], &rd);
    assert_int_equal(rd.n_msgs, 1);
    assert_int_equal(rd.msgs[0].type, DS_RAFT_VOTE_RESP);
    assert_true(rd.msgs[0].reject);
    assert_int_equal(rd.hs.term, 5);
    assert_int_equal(rd.hs.vote, 0);
    ds_raft_advance(net.node[2], &rd);
    (void)refused_before;
    s_net_free(&net);
}

static void test_prevote_does_not_bump_term(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    uint64_t term = s_st(&net, 1).term;
    s_isolate(&net, 3, true);
    s_tick(&net, 3, 100); /* many election timeouts, all pre-votes lost */
    assert_int_equal(s_st(&net, 3).term, term);
    assert_true(net.sent[DS_RAFT_PREVOTE] > 0);
    s_net_free(&net);
}

static void test_partitioned_node_rejoining_does_not_depose_leader(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    uint64_t term = s_st(&net, 1).term;
    s_isolate(&net, 3, true);
    s_tick_all(&net, 60);
    s_propose(&net, 1, "while away");
    s_isolate(&net, 3, false);
    s_tick_all(&net, 60);
    assert_int_equal(s_st(&net, 1).role, DS_RAFT_LEADER);
    assert_int_equal(s_st(&net, 1).term, term);
    assert_int_equal(s_st(&net, 3).lead, 1);
    assert_int_equal(s_st(&net, 3).commit, s_st(&net, 1).commit);
    s_net_free(&net);
}

static void test_leader_steps_down_without_quorum(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_isolate(&net, 1, true);
    s_tick(&net, 1, 25); /* two election timeouts without answers */
    assert_int_equal(s_st(&net, 1).role, DS_RAFT_FOLLOWER);
    s_net_free(&net);
}

static void test_lease_ignores_vote_request_from_disruptive_node(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    uint64_t term = s_st(&net, 2).term;
    ds_raft_msg_t m = {
        .type = DS_RAFT_VOTE, .from = 3, .to = 2, .term = term + 5, .index = 100, .log_term = 100};
    assert_int_equal(ds_raft_step(net.node[2], &m), 0);
    assert_int_equal(s_st(&net, 2).term, term);
    assert_int_equal(s_st(&net, 2).lead, 1);
    s_net_free(&net);
}

/* ---- replication ---------------------------------------------------------------- */

static void test_propose_on_follower_returns_not_leader(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    uint64_t index;
    assert_int_equal(ds_raft_propose(net.node[2], (const uint8_t *)"x", 1, &index), DS_ENOTLEADER);
    assert_int_equal(ds_raft_read_index(net.node[2], NULL, 0), DS_ENOTLEADER);
    s_net_free(&net);
}

/*  Drives one node by hand: makes it leader of a term with votes crafted
    here, and returns the ready's messages count. */
static void s_drain_one(ds_raft_t *r)
{
    while (ds_raft_has_ready(r)) {
        ds_raft_ready_t rd;
        ds_raft_ready(r, &rd);
        ds_raft_advance(r, &rd);
    }
}

static void test_commit_only_counts_current_term_entries(void **state)
{
    (void)state;
    /* n1 restarts with an entry of term 2 that never committed. */
    uint8_t boot[DS_RAFT_CONF_MAX_SIZE];
    ds_raft_conf_t cc = {.op = DS_RAFT_CONF_BOOTSTRAP, .n_voters = 3, .voters = {1, 2, 3}};
    uint32_t blen = ds_raft_conf_encode(&cc, boot);
    ds_raft_entry_t ents[2] = {
        {.term = 1, .index = 1, .type = DS_ENTRY_CONF_CHANGE, .data = {boot, blen}},
        {.term = 2, .index = 2, .type = DS_ENTRY_NORMAL, .data = {(uint8_t *)"old", 3}}};
    ds_raft_restore_t rs = {
        .hs = {.term = 2, .vote = 1, .commit = 1}, .entries = ents, .n_entries = 2};
    ds_raft_config_t c = s_cfg(1, 0);
    c.pre_vote = false;
    ds_raft_t *r = ds_raft_new(&c, &rs);
    assert_non_null(r);
    assert_int_equal(ds_raft_campaign(r), 0);
    ds_raft_msg_t v = {.type = DS_RAFT_VOTE_RESP, .from = 2, .to = 1, .term = 3};
    assert_int_equal(ds_raft_step(r, &v), 0);
    s_drain_one(r);
    ds_raft_status_t st;
    ds_raft_status(r, &st);
    assert_int_equal(st.role, DS_RAFT_LEADER);
    assert_int_equal(st.last_index, 3); /* the no-op of term 3 */
    /* A majority (n1 + n2) now holds index 2 of term 2: not enough. */
    ds_raft_msg_t ack = {.type = DS_RAFT_APPEND_RESP, .from = 2, .to = 1, .term = 3, .index = 2};
    assert_int_equal(ds_raft_step(r, &ack), 0);
    s_drain_one(r);
    ds_raft_status(r, &st);
    assert_int_equal(st.commit, 1);
    /* Once the term-3 no-op is on a majority, everything before commits. */
    ack.index = 3;
    assert_int_equal(ds_raft_step(r, &ack), 0);
    s_drain_one(r);
    ds_raft_status(r, &st);
    assert_int_equal(st.commit, 3);
    ds_raft_destroy(&r);
}

static void test_conflicting_suffix_truncated_with_hint(void **state)
{
    (void)state;
    ds_raft_config_t c = s_cfg(2, 3);
    ds_raft_t *r = ds_raft_new(&c, NULL);
    s_drain_one(r);
    /* Leader 1 of term 2 appends 2..5. */
    ds_raft_entry_t e[4];
    for (int i = 0; i < 4; i++)
        e[i] = (ds_raft_entry_t){.term = 2, .index = (uint64_t)i + 2, .data = {(uint8_t *)"a", 1}};
    ds_raft_msg_t app = {.type = DS_RAFT_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 2,
                         .index = 1,
                         .log_term = 1,
                         .n_entries = 4,
                         .entries = e};
    assert_int_equal(ds_raft_step(r, &app), 0);
    s_drain_one(r);
    /* Leader 3 of term 3 probes at (5, term 3): mismatch, hint = (5, 2). */
    ds_raft_msg_t probe = {
        .type = DS_RAFT_APPEND, .from = 3, .to = 2, .term = 3, .index = 5, .log_term = 3};
    assert_int_equal(ds_raft_step(r, &probe), 0);
    ds_raft_ready_t rd;
    ds_raft_ready(r, &rd);
    assert_int_equal(rd.n_msgs, 1);
    assert_true(rd.msgs[0].reject);
    assert_int_equal(rd.msgs[0].index, 5);
    assert_int_equal(rd.msgs[0].hint_index, 5);
    assert_int_equal(rd.msgs[0].hint_term, 2);
    ds_raft_advance(r, &rd);
    /* It sends (3, term 2) + entry 4 of term 3: 4 and 5 are replaced. */
    ds_raft_entry_t e4 = {.term = 3, .index = 4, .data = {(uint8_t *)"b", 1}};
    ds_raft_msg_t fix = {.type = DS_RAFT_APPEND,
                         .from = 3,
                         .to = 2,
                         .term = 3,
                         .index = 3,
                         .log_term = 2,
                         .n_entries = 1,
                         .entries = &e4};
    assert_int_equal(ds_raft_step(r, &fix), 0);
    ds_raft_ready(r, &rd);
    assert_int_equal(rd.n_entries, 1);
    assert_int_equal(rd.entries[0].index, 4);
    assert_int_equal(rd.entries[0].term, 3);
    assert_false(rd.msgs[0].reject);
    assert_int_equal(rd.msgs[0].index, 4);
    ds_raft_advance(r, &rd);
    ds_raft_status_t st;
    ds_raft_status(r, &st);
    assert_int_equal(st.last_index, 4);
    assert_int_equal(st.last_term, 3);
    ds_raft_destroy(&r);
}

static void test_malformed_message_is_ignored(void **state)
{
    (void)state;
    ds_raft_config_t c = s_cfg(1, 3);
    ds_raft_t *r = ds_raft_new(&c, NULL);
    s_drain_one(r);
    ds_raft_msg_t bad = {.type = DS_RAFT_APPEND, .from = 2, .to = 9, .term = 1};
    assert_int_equal(ds_raft_step(r, &bad), DS_EINVAL);
    bad.to = 1;
    bad.type = 77;
    assert_int_equal(ds_raft_step(r, &bad), DS_EINVAL);
    /* An append whose entries skip an index is dropped without a change. */
    ds_raft_entry_t e = {.term = 1, .index = 9};
    ds_raft_msg_t gap = {.type = DS_RAFT_APPEND,
                         .from = 2,
                         .to = 1,
                         .term = 1,
                         .index = 1,
                         .log_term = 1,
                         .n_entries = 1,
                         .entries = &e};
    assert_int_equal(ds_raft_step(r, &gap), 0);
    ds_raft_status_t st;
    ds_raft_status(r, &st);
    assert_int_equal(st.last_index, 1);
    ds_raft_ready_t rd;
    ds_raft_ready(r, &rd);
    assert_true(rd.n_events >= 1);
    assert_int_equal(rd.events[rd.n_events - 1].type, DS_RAFT_EV_MSG_IGNORED);
    ds_raft_advance(r, &rd);
    ds_raft_destroy(&r);
}

static void s_small_chunks(ds_raft_config_t *c)
{
    c->snapshot_chunk_size = 16;
}

static void test_snapshot_sent_in_chunks_to_lagging_follower(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, s_small_chunks);
    s_elect(&net, 1);
    s_isolate(&net, 3, true);
    for (int i = 0; i < 5; i++)
        s_propose(&net, 1, "entry");
    ds_raft_status_t st = s_st(&net, 1);
    uint8_t snap[100];
    memset(snap, 0xab, sizeof(snap));
    assert_int_equal(ds_raft_snapshot_taken(net.node[1], st.applied, snap, sizeof(snap)), 0);
    assert_int_equal(s_st(&net, 1).first_index, st.applied + 1);
    s_isolate(&net, 3, false);
    s_tick_all(&net, 5);
    assert_true(net.sent[DS_RAFT_SNAPSHOT] >= 7); /* 100 bytes / 16 */
    assert_int_equal(net.snap_installed[3], st.applied);
    assert_int_equal(net.snap_len[3], sizeof(snap));
    assert_int_equal(s_st(&net, 3).commit, s_st(&net, 1).commit);
    s_propose(&net, 1, "after");
    assert_int_equal(s_st(&net, 3).last_index, s_st(&net, 1).last_index);
    s_net_free(&net);
}

/* ---- leader transfer, reads, membership ---------------------------------------------- */

static void test_transfer_leader_sends_timeout_now(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    assert_int_equal(ds_raft_transfer_leader(net.node[1], 2), 0);
    s_run(&net);
    assert_int_equal(net.sent[DS_RAFT_TIMEOUT_NOW], 1);
    assert_int_equal(s_st(&net, 2).role, DS_RAFT_LEADER);
    assert_int_equal(s_st(&net, 1).lead, 2);
    assert_int_equal(ds_raft_transfer_leader(net.node[2], 2), DS_EINVAL);
    s_net_free(&net);
}

static void test_propose_refused_during_transfer(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_isolate(&net, 2, true);
    s_propose(&net, 1, "behind");
    assert_int_equal(ds_raft_transfer_leader(net.node[1], 2), 0);
    uint64_t index;
    assert_int_equal(ds_raft_propose(net.node[1], (const uint8_t *)"x", 1, &index), DS_ESTATE);
    s_tick(&net, 1, 12); /* the transfer times out */
    assert_int_equal(s_st(&net, 1).transferee, 0);
    s_net_free(&net);
}

static void test_read_index_requires_heartbeat_quorum(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    uint64_t commit = s_st(&net, 1).commit;
    s_isolate(&net, 1, true);
    assert_int_equal(ds_raft_read_index(net.node[1], (const uint8_t *)"r1", 2), 0);
    s_run(&net);
    assert_int_equal(net.n_reads, 0); /* nobody confirmed the leadership */
    s_isolate(&net, 1, false);
    s_tick(&net, 1, 1); /* the next heartbeat carries the read round */
    assert_int_equal(net.n_reads, 1);
    assert_int_equal(net.reads[0].index, commit);
    s_net_free(&net);
}

static void test_read_index_waits_for_commit_in_term(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_isolate(&net, 2, true);
    s_isolate(&net, 3, true);
    /* n1 wins by hand-made votes but its no-op cannot commit yet. */
    assert_int_equal(ds_raft_campaign(net.node[1]), 0);
    s_run(&net);
    ds_raft_status_t st = s_st(&net, 1);
    ds_raft_msg_t pv = {.type = DS_RAFT_PREVOTE_RESP, .from = 2, .to = 1, .term = st.term + 1};
    assert_int_equal(ds_raft_step(net.node[1], &pv), 0);
    s_run(&net);
    ds_raft_msg_t v = {.type = DS_RAFT_VOTE_RESP, .from = 2, .to = 1, .term = st.term + 1};
    assert_int_equal(ds_raft_step(net.node[1], &v), 0);
    s_run(&net);
    assert_int_equal(s_st(&net, 1).role, DS_RAFT_LEADER);
    assert_int_equal(ds_raft_read_index(net.node[1], (const uint8_t *)"r", 1), 0);
    s_run(&net);
    assert_int_equal(net.n_reads, 0);
    s_isolate(&net, 2, false);
    s_isolate(&net, 3, false);
    s_tick(&net, 1, 2);
    assert_int_equal(net.n_reads, 1);
    assert_int_equal(net.reads[0].index, s_st(&net, 1).commit);
    s_net_free(&net);
}

static void test_conf_change_one_at_a_time(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    ds_raft_config_t c4 = s_cfg(4, 0); /* a joining member knows no configuration */
    net.node[4] = ds_raft_new(&c4, NULL);
    net.n = 4;
    s_elect(&net, 1);
    uint64_t index;
    s_isolate(&net, 2, true);
    s_isolate(&net, 3, true);
    assert_int_equal(ds_raft_propose_conf_change(net.node[1], DS_RAFT_CONF_ADD, 4, &index), 0);
    assert_int_equal(s_st(&net, 1).n_voters, 4); /* effective once appended */
    assert_int_equal(ds_raft_propose_conf_change(net.node[1], DS_RAFT_CONF_REMOVE, 3, &index),
                     DS_ESTATE);
    s_isolate(&net, 2, false);
    s_isolate(&net, 3, false);
    s_tick_all(&net, 3);
    assert_true(s_st(&net, 1).commit >= index);
    assert_int_equal(s_st(&net, 4).n_voters, 4);
    assert_int_equal(ds_raft_propose_conf_change(net.node[1], DS_RAFT_CONF_ADD, 4, &index),
                     DS_EEXIST);
    assert_int_equal(ds_raft_propose_conf_change(net.node[1], DS_RAFT_CONF_REMOVE, 1, &index),
                     DS_EINVAL);
    assert_int_equal(ds_raft_propose_conf_change(net.node[1], DS_RAFT_CONF_REMOVE, 3, &index), 0);
    s_tick_all(&net, 3);
    assert_int_equal(s_st(&net, 2).n_voters, 3);
    s_propose(&net, 1, "with 1,2,4");
    assert_int_equal(s_st(&net, 4).commit, s_st(&net, 1).commit);
    s_net_free(&net);
}

/* ---- restart ----------------------------------------------------------------------- */

static void test_restart_keeps_term_vote_and_log(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_propose(&net, 1, "durable");
    ds_raft_status_t before = s_st(&net, 2);
    uint8_t boot[DS_RAFT_CONF_MAX_SIZE];
    ds_raft_conf_t cc = {.op = DS_RAFT_CONF_BOOTSTRAP, .n_voters = 3, .voters = {1, 2, 3}};
    uint32_t blen = ds_raft_conf_encode(&cc, boot);
    ds_raft_entry_t ents[3] = {
        {.term = 1, .index = 1, .type = DS_ENTRY_CONF_CHANGE, .data = {boot, blen}},
        {.term = before.term, .index = 2, .type = DS_ENTRY_NOOP},
        {.term = before.term, .index = 3, .data = {(uint8_t *)"durable", 7}}};
    ds_raft_restore_t rs = {.hs = net.hs[2], .entries = ents, .n_entries = 3};
    ds_raft_config_t c = s_cfg(2, 3);
    ds_raft_destroy(&net.node[2]);
    net.node[2] = ds_raft_new(&c, &rs);
    assert_non_null(net.node[2]);
    ds_raft_status_t after = s_st(&net, 2);
    assert_int_equal(after.term, before.term);
    assert_int_equal(after.vote, before.vote);
    assert_int_equal(after.commit, before.commit);
    assert_int_equal(after.last_index, 3);
    /* committed entries after `applied` are handed out again */
    ds_raft_ready_t rd;
    ds_raft_ready(net.node[2], &rd);
    assert_int_equal(rd.n_committed, 3);
    ds_raft_advance(net.node[2], &rd);
    s_net_free(&net);
}

/* ---- a leader's flush in the background ------------------------------------------- */

/*  A leader whose readies advance unsynced counts its own entries for
    commit only once ds_raft_synced() says so; what a majority of
    followers holds commits, and is applied, without it. */
static void test_leader_counts_own_entries_only_when_synced(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_propose(&net, 1, "x");
    assert_int_equal(s_st(&net, 1).commit, 3);
    uint64_t term = s_st(&net, 1).term;
    net.flush_later[1] = true;

    /* n3 is cut off: the quorum is n1 + n2, and n1's copy is not durable. */
    s_isolate(&net, 3, true);
    assert_false(ds_raft_own_flush_needed(net.node[1]));
    s_propose(&net, 1, "y");
    assert_int_equal(s_st(&net, 2).last_index, 4);
    assert_int_equal(s_st(&net, 1).commit, 3);
    assert_true(ds_raft_own_flush_needed(net.node[1])); /* n1 + n2 would commit 4 */
    ds_raft_synced(net.node[1], 4, term + 1);           /* not the term of entry 4: ignored */
    ds_raft_synced(net.node[1], 9, term);               /* never handed out: ignored */
    s_run(&net);
    assert_int_equal(s_st(&net, 1).commit, 3);
    ds_raft_synced(net.node[1], 4, term);
    s_run(&net);
    assert_int_equal(s_st(&net, 1).commit, 4);
    assert_int_equal(s_st(&net, 1).applied, 4);
    assert_false(ds_raft_own_flush_needed(net.node[1]));

    /* n2 + n3 durable is a majority: entry 5 commits and is applied
       without n1's own copy. */
    s_isolate(&net, 3, false);
    s_propose(&net, 1, "z");
    s_tick_all(&net, 3); /* heartbeats bring n3 up to date */
    assert_int_equal(s_st(&net, 1).commit, 5);
    assert_int_equal(s_st(&net, 1).applied, 5);
    assert_int_equal(s_st(&net, 3).commit, 5);
    assert_false(ds_raft_own_flush_needed(net.node[1])); /* unsynced, but not needed */
    ds_raft_synced(net.node[1], 4, term);                /* already known: nothing changes */
    ds_raft_synced(net.node[1], 5, term);
    s_run(&net);
    assert_int_equal(s_st(&net, 1).commit, 5);

    /* n2 alone again: entry 6 needs n1's flush. */
    s_isolate(&net, 3, true);
    s_propose(&net, 1, "w");
    assert_true(ds_raft_own_flush_needed(net.node[1]));
    assert_int_equal(s_st(&net, 1).commit, 5);
    assert_int_equal(s_st(&net, 1).applied, 5);
    ds_raft_synced(net.node[1], 6, term);
    s_run(&net);
    assert_int_equal(s_st(&net, 1).commit, 6);
    assert_int_equal(s_st(&net, 1).applied, 6);
    s_net_free(&net);
}

/*  A single member is its own quorum: its flush is needed at once and
    cannot wait for anyone; with a follower that is sent the entry and
    answers, it may wait. */
static void test_own_flush_may_wait_only_for_followers_that_can_answer(void **state)
{
    (void)state;
    net_t net;
    s_net_new(&net, 1, NULL);
    s_elect(&net, 1);
    net.flush_later[1] = true;
    s_propose(&net, 1, "solo");
    assert_true(ds_raft_own_flush_needed(net.node[1]));
    assert_false(ds_raft_own_flush_may_wait(net.node[1]));
    ds_raft_status_t st = s_st(&net, 1);
    ds_raft_synced(net.node[1], st.last_index, st.term);
    s_run(&net);
    assert_int_equal(s_st(&net, 1).commit, st.last_index);
    assert_false(ds_raft_own_flush_needed(net.node[1]));
    s_net_free(&net);

    /* Three members, n3 cut off: n2 answered, so n1's copy is what the
       quorum waits for, and n3 (replicating, recently heard from, sent
       the entry) could still complete it: the flush may wait. */
    s_net_new(&net, 3, NULL);
    s_elect(&net, 1);
    s_propose(&net, 1, "x");
    net.flush_later[1] = true;
    s_isolate(&net, 3, true);
    s_propose(&net, 1, "y");
    assert_true(ds_raft_own_flush_needed(net.node[1]));
    assert_true(ds_raft_own_flush_may_wait(net.node[1]));
    /* After check-quorum rounds n3 is no longer recently active. */
    s_tick_all(&net, 40);
    assert_int_equal(s_st(&net, 1).role, DS_RAFT_LEADER); /* n2 keeps its quorum */
    assert_true(ds_raft_own_flush_needed(net.node[1]));
    assert_false(ds_raft_own_flush_may_wait(net.node[1]));
    s_net_free(&net);
}

static void test_bad_config_and_restore_rejected(void **state)
{
    (void)state;
    ds_raft_config_t c = s_cfg(0, 3);
    assert_int_equal(ds_raft_check(&c, NULL), DS_EINVAL);
    assert_null(ds_raft_new(&c, NULL));
    c = s_cfg(1, 3);
    c.voters[2] = 1; /* duplicate */
    assert_int_equal(ds_raft_check(&c, NULL), DS_EINVAL);
    c = s_cfg(1, 3);
    ds_raft_entry_t ents[2] = {{.term = 1, .index = 1}, {.term = 1, .index = 3}};
    ds_raft_restore_t rs = {.hs = {.term = 1}, .entries = ents, .n_entries = 2};
    assert_int_equal(ds_raft_check(&c, &rs), DS_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_nodes_elect_one_leader_and_commit),
        cmocka_unit_test(test_vote_refused_when_log_behind),
        cmocka_unit_test(test_prevote_does_not_bump_term),
        cmocka_unit_test(test_partitioned_node_rejoining_does_not_depose_leader),
        cmocka_unit_test(test_leader_steps_down_without_quorum),
        cmocka_unit_test(test_lease_ignores_vote_request_from_disruptive_node),
        cmocka_unit_test(test_propose_on_follower_returns_not_leader),
        cmocka_unit_test(test_commit_only_counts_current_term_entries),
        cmocka_unit_test(test_conflicting_suffix_truncated_with_hint),
        cmocka_unit_test(test_malformed_message_is_ignored),
        cmocka_unit_test(test_snapshot_sent_in_chunks_to_lagging_follower),
        cmocka_unit_test(test_transfer_leader_sends_timeout_now),
        cmocka_unit_test(test_propose_refused_during_transfer),
        cmocka_unit_test(test_read_index_requires_heartbeat_quorum),
        cmocka_unit_test(test_read_index_waits_for_commit_in_term),
        cmocka_unit_test(test_conf_change_one_at_a_time),
        cmocka_unit_test(test_restart_keeps_term_vote_and_log),
        cmocka_unit_test(test_bad_config_and_restore_rejected),
        cmocka_unit_test(test_leader_counts_own_entries_only_when_synced),
        cmocka_unit_test(test_own_flush_may_wait_only_for_followers_that_can_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
