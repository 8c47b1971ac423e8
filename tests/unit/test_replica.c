/*  tests/unit/test_replica.c - three replicas on real LMDB files, wired by
    an in-memory message queue: commit, apply with exactly-once sessions,
    restart from disk, and catch-up by snapshot. */
#include "coordinator/apply.h"
#include "coordinator/fsm.h"
#include "coordinator/replica.h"
#include "protocol/error.h"
#include "protocol/msg.h"
#include "storage/hardstate.h"
#include "storage/raftlog.h"
#include "storage/state.h"
#include "storage/wal.h"
#include "tests/testutil.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_N        3
#define S_MAX_MSGS 4096

typedef struct {
    ds_raft_msg_t head; /* the message's fields, its pointers cleared */
    ds_buf_t env, body; /* the message, encoded: the queue owns a copy */
} s_wire_t;

typedef struct s_cluster s_cluster_t;

typedef struct {
    s_cluster_t *cl;
    uint64_t id;
    ds_replica_t *rep;
    char dir[300];
    bool down;
    uint64_t last_index, last_term;
    int last_result;
    size_t queued_at_apply; /* messages queued when last_index was applied */
    size_t installs;
    bool hold_snapshots; /* SNAPSHOT messages to it go to cl->held */
} s_node_t;

struct s_cluster {
    char root[256];
    s_node_t nodes[S_N];
    s_wire_t queue[S_MAX_MSGS];
    size_t n_queue;
    s_wire_t held[4]; /* held back for a test to deliver (hold_snapshots) */
    size_t n_held;
    uint64_t snapshot_entries;
    uint32_t snapshot_log_percent;
    uint64_t snapshot_log_max;
};

static void s_hook_send(void *ctx, const ds_raft_msg_t *msg)
{
    s_node_t *n = ctx;
    s_cluster_t *cl = n->cl;
    assert_true(cl->n_queue < S_MAX_MSGS);
    s_wire_t *w = &cl->queue[cl->n_queue++];
    memset(w, 0, sizeof *w);
    w->head = *msg;
    w->head.entries = NULL;
    w->head.chunk = (ds_bytes_t){0};
    w->head.context = (ds_bytes_t){0};
    ds_envelope_t env = {DS_PROTOCOL_VERSION, msg->type, 0, "t"};
    assert_int_equal(ds_msg_encode(&env, msg, &w->env, &w->body, NULL), 0);
}

static int s_hook_apply(void *ctx, ds_txn_t *txn, const ds_raft_entry_t *e, int *verdict)
{
    (void)ctx;
    return ds_apply_entry(txn, e, verdict);
}

static void s_hook_applied(void *ctx, uint64_t index, uint64_t term, int result)
{
    s_node_t *n = ctx;
    n->last_index = index;
    n->last_term = term;
    n->last_result = result;
    n->queued_at_apply = n->cl->n_queue;
}

static void s_hook_installed(void *ctx, uint64_t index)
{
    (void)index;
    ((s_node_t *)ctx)->installs++;
}

static void s_open(s_node_t *n)
{
    ds_replica_config_t cfg = {0};
    ds_raft_config_defaults(&cfg.raft, n->id);
    cfg.raft.n_voters = S_N;
    for (uint32_t i = 0; i < S_N; i++)
        cfg.raft.voters[i] = i + 1;
    cfg.raft.seed = n->id;
    ds_store_opts_default(&cfg.store);
    cfg.store.nosync = true; /* the test checks logic, not the disk's fsync */
    cfg.snapshot_entries = n->cl->snapshot_entries;
    cfg.snapshot_log_percent = n->cl->snapshot_log_percent;
    cfg.snapshot_log_max = n->cl->snapshot_log_max;
    cfg.hooks = (ds_replica_hooks_t){
        s_hook_send, s_hook_apply, s_hook_applied, NULL, NULL, s_hook_installed, n};
    char err[512];
    int rc = ds_replica_open(&n->rep, n->dir, &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("open %s: %s", n->dir, err);
    n->down = false;
}

static int s_setup_with(void **state, uint32_t snapshot_log_percent)
{
    s_cluster_t *cl = calloc(1, sizeof *cl);
    assert_non_null(cl);
    assert_int_equal(ds_test_mkdtemp("replica", cl->root, sizeof cl->root), 0);
    cl->snapshot_entries = 32;
    cl->snapshot_log_percent = snapshot_log_percent;
    for (int i = 0; i < S_N; i++) {
        s_node_t *n = &cl->nodes[i];
        n->cl = cl;
        n->id = (uint64_t)i + 1;
        snprintf(n->dir, sizeof n->dir, "%s/n%d", cl->root, i + 1);
        s_open(n);
    }
    *state = cl;
    return 0;
}

/*  Snapshots every 32 entries, by entry count alone. */
static int s_setup(void **state)
{
    return s_setup_with(state, 0);
}

/*  Snapshots every 32 entries, once their data is as large as the image. */
static int s_setup_by_size(void **state)
{
    return s_setup_with(state, 100);
}

static void s_queue_clear(s_cluster_t *cl)
{
    for (size_t i = 0; i < cl->n_queue; i++) {
        ds_buf_free(&cl->queue[i].env);
        ds_buf_free(&cl->queue[i].body);
    }
    cl->n_queue = 0;
    for (size_t i = 0; i < cl->n_held; i++) {
        ds_buf_free(&cl->held[i].env);
        ds_buf_free(&cl->held[i].body);
    }
    cl->n_held = 0;
}

static int s_teardown(void **state)
{
    s_cluster_t *cl = *state;
    s_queue_clear(cl);
    for (int i = 0; i < S_N; i++)
        ds_replica_destroy(&cl->nodes[i].rep);
    ds_test_rmrf(cl->root);
    free(cl);
    return 0;
}

/*  Delivers every queued message (decoded from its wire form, as the
    node would), then lets each replica process. */
static void s_deliver(s_cluster_t *cl)
{
    size_t n = cl->n_queue;
    s_wire_t batch[S_MAX_MSGS];
    memcpy(batch, cl->queue, n * sizeof batch[0]);
    cl->n_queue = 0;
    for (size_t i = 0; i < n; i++) {
        ds_msg_t *m = NULL;
        assert_int_equal(ds_msg_decode(batch[i].env.data, batch[i].env.len, batch[i].body.data,
                                       batch[i].body.len, &m, NULL),
                         0);
        const ds_raft_msg_t *rm = m->body;
        s_node_t *to = &cl->nodes[rm->to - 1];
        bool hold = to->hold_snapshots && rm->type == DS_RAFT_SNAPSHOT && cl->n_held < 4;
        if (!to->down && !hold)
            (void)ds_raft_step(ds_replica_raft(to->rep), rm);
        ds_msg_destroy(&m);
        if (hold) {
            cl->held[cl->n_held++] = batch[i];
            continue;
        }
        ds_buf_free(&batch[i].env);
        ds_buf_free(&batch[i].body);
    }
    for (int i = 0; i < S_N; i++)
        if (!cl->nodes[i].down)
            assert_int_equal(ds_replica_process(cl->nodes[i].rep), 0);
}

/*  A leader flushes its log in the background: give the flush a moment
    (bounded) to finish, as the node's poll would. A snapshot export
    running on its thread is waited for, so that every run takes its
    snapshots at the same steps. */
static void s_await_background(s_node_t *n)
{
    int fd = ds_replica_wakeup_fd(n->rep);
    if (fd >= 0)
        (void)poll(&(struct pollfd){.fd = fd, .events = POLLIN}, 1, 5);
    assert_int_equal(ds_replica_finish_snapshot(n->rep), 0);
}

static void s_step(s_cluster_t *cl)
{
    for (int i = 0; i < S_N; i++)
        if (!cl->nodes[i].down) {
            s_await_background(&cl->nodes[i]);
            ds_raft_tick(ds_replica_raft(cl->nodes[i].rep));
            assert_int_equal(ds_replica_process(cl->nodes[i].rep), 0);
            /* the node's grace for the leader's own flush: one step */
            if (ds_replica_flush_waiting(cl->nodes[i].rep))
                assert_int_equal(ds_replica_flush_now(cl->nodes[i].rep), 0);
        }
    s_deliver(cl);
}

static s_node_t *s_leader(s_cluster_t *cl)
{
    for (int round = 0; round < 500; round++) {
        for (int i = 0; i < S_N; i++) {
            ds_raft_status_t st;
            if (cl->nodes[i].down)
                continue;
            ds_raft_status(ds_replica_raft(cl->nodes[i].rep), &st);
            if (st.role == DS_RAFT_LEADER)
                return &cl->nodes[i];
        }
        s_step(cl);
    }
    fail_msg("no leader elected in 500 steps");
    return NULL;
}

static uint64_t s_put(s_node_t *leader, const char *client, uint64_t req, const char *key,
                      const char *value)
{
    ds_kv_put_t put = {(char *)key, {(uint8_t *)value, (uint32_t)strlen(value)}};
    ds_buf_t buf = {0};
    uint64_t index;
    assert_int_equal(ds_fsm_encode(DS_CMD_KV_PUT, client, req, 1000, &put, &buf, NULL), 0);
    assert_int_equal(
        ds_raft_propose(ds_replica_raft(leader->rep), buf.data, (uint32_t)buf.len, &index), 0);
    ds_buf_free(&buf);
    assert_int_equal(ds_replica_process(leader->rep), 0);
    return index;
}

static void s_settle(s_cluster_t *cl, uint64_t index)
{
    for (int round = 0; round < 200; round++) {
        bool all = true;
        for (int i = 0; i < S_N; i++)
            if (!cl->nodes[i].down && ds_replica_applied(cl->nodes[i].rep) < index)
                all = false;
        if (all)
            return;
        s_step(cl);
    }
    fail_msg("index %llu not applied everywhere", (unsigned long long)index);
}

/*  `n` writes of key "k" by `client`, applied everywhere; the last index. */
static uint64_t s_put_settled(s_cluster_t *cl, s_node_t *leader, const char *client, int n)
{
    uint64_t index = 0;
    for (int i = 0; i < n; i++)
        index = s_put(leader, client, (uint64_t)i + 1, "k", "v");
    s_settle(cl, index);
    return index;
}

typedef struct {
    const char *key;
    ds_kv_record_t rec;
    ds_arena_t *arena;
    bool found;
} s_get_t;

static int s_get_txn(ds_txn_t *txn, void *ctx)
{
    s_get_t *g = ctx;
    ds_val_t v;
    int rc = ds_state_get(txn, DS_TABLE_KV, g->key, &v);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc == 0)
        rc = ds_codec_decode(&ds_kv_record_desc, v.data, v.len, &g->rec, g->arena, NULL);
    g->found = rc == 0;
    return rc;
}

/*  Returns the version of `key` on node n (0 if absent) and checks its value. */
static uint64_t s_version(s_node_t *n, const char *key, const char *value)
{
    s_get_t g = {key, {0}, ds_arena_new(1 << 20), false};
    assert_int_equal(ds_store_read(ds_replica_store(n->rep), s_get_txn, &g), 0);
    uint64_t version = g.found ? g.rec.version : 0;
    if (g.found && value) {
        assert_int_equal(g.rec.value.len, strlen(value));
        assert_memory_equal(g.rec.value.data, value, strlen(value));
    }
    ds_arena_destroy(&g.arena);
    return version;
}

static void test_write_commits_and_applies_on_every_replica(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put(leader, "c1", 1, "model", "v1");
    s_settle(cl, index);
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_version(&cl->nodes[i], "model", "v1"), 1);
    assert_int_equal(leader->last_index, index);
    assert_int_equal(leader->last_result, 0);
}

/*  The leader answers its client (the applied hook) before it sends the
    followers the appends that only carry the new commit index. */
static void test_leader_answers_before_sending_the_commit_index(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put(leader, "c1", 1, "model", "v1");
    for (int round = 0; round < 200 && leader->last_index < index; round++)
        s_step(cl);
    assert_int_equal(leader->last_index, index);
    size_t commits = 0;
    for (size_t i = 0; i < cl->n_queue; i++) {
        const ds_raft_msg_t *m = &cl->queue[i].head;
        if (m->from != leader->id || m->type != DS_RAFT_APPEND || m->n_entries || m->commit < index)
            continue;
        assert_true(i >= leader->queued_at_apply);
        commits++;
    }
    assert_int_equal(commits, S_N - 1);
}

static void test_retried_request_is_applied_once(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    s_put(leader, "c1", 7, "k", "a");
    uint64_t index = s_put(leader, "c1", 7, "k", "a"); /* the same request again */
    s_settle(cl, index);
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_version(&cl->nodes[i], "k", "a"), 1);
    index = s_put(leader, "c1", 8, "k", "b"); /* a new request counts */
    s_settle(cl, index);
    assert_int_equal(s_version(leader, "k", "b"), 2);
}

static void test_malformed_command_is_rejected_deterministically(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index;
    const uint8_t junk[] = {0x93, 0x01, 0x02};
    assert_int_equal(ds_raft_propose(ds_replica_raft(leader->rep), junk, sizeof junk, &index), 0);
    assert_int_equal(ds_replica_process(leader->rep), 0);
    s_settle(cl, index);
    assert_int_equal(leader->last_index, index);
    assert_int_equal(leader->last_result, DS_EINVAL);
    for (int i = 0; i < S_N; i++)
        assert_true(ds_replica_applied(cl->nodes[i].rep) >= index);
}

static void test_restart_recovers_log_and_state_from_disk(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put(leader, "c2", 1, "kept", "yes");
    s_settle(cl, index);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    ds_replica_destroy(&f->rep);
    s_open(f);
    assert_int_equal(ds_replica_applied(f->rep), index);
    assert_int_equal(s_version(f, "kept", "yes"), 1);
    index = s_put(s_leader(cl), "c2", 2, "after", "restart");
    s_settle(cl, index);
    assert_int_equal(s_version(f, "after", "restart"), 1);
}

static void test_lagging_replica_catches_up_by_snapshot(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    f->down = true;
    ds_replica_destroy(&f->rep);
    uint64_t index = 0;
    char key[32], value[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(value, sizeof value, "value-%d", i);
        index = s_put(leader, "c3", (uint64_t)i + 1, key, value);
        if (i % 16 == 15)
            s_settle(cl, index);
    }
    s_settle(cl, index);
    s_open(f);
    s_settle(cl, index);
    assert_true(f->installs >= 1);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        snprintf(value, sizeof value, "value-%d", i);
        assert_int_equal(s_version(f, key, value), 1);
    }
    /* and a restart after the install reads the snapshot back from disk */
    ds_replica_destroy(&f->rep);
    s_open(f);
    assert_true(ds_replica_applied(f->rep) >= index);
}

/*  Moves node n's log and hard state from its WAL back into LMDB, as a
    version before the WAL kept them, and removes the WAL. */
static void s_make_legacy(s_node_t *n)
{
    char wal_dir[400];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", n->dir);
    ds_wal_t *w = NULL;
    ds_wal_replay_t rp;
    char err[512];
    assert_int_equal(ds_wal_open(&w, wal_dir, &rp, err, sizeof err), 0);
    assert_true(rp.has_hardstate && rp.n > 0);
    ds_store_t *store = NULL;
    ds_store_opts_t opts;
    ds_store_opts_default(&opts);
    assert_int_equal(ds_store_open(&store, n->dir, &opts, err, sizeof err), 0);
    uint64_t first = 0;
    assert_int_equal(ds_raftlog_first_index(store, &first), 0);
    size_t skip = 0;
    while (skip < rp.n && rp.entries[skip].index < first)
        skip++;
    assert_int_equal(ds_raftlog_append(store, rp.entries + skip, rp.n - skip), 0);
    ds_hardstate_t hs = {rp.term, rp.vote, rp.commit};
    assert_int_equal(ds_hardstate_save(store, &hs), 0);
    ds_store_destroy(&store);
    ds_wal_close(&w);
    ds_test_rmrf(wal_dir);
}

static void test_an_old_data_directory_moves_its_log_into_the_wal(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put(leader, "c4", 1, "old", "layout");
    s_settle(cl, index);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    ds_replica_destroy(&f->rep);
    s_make_legacy(f);
    s_open(f);
    assert_int_equal(ds_replica_applied(f->rep), index);
    uint64_t last = 0, first = 0;
    assert_int_equal(ds_raftlog_last_index(ds_replica_store(f->rep), &last), 0);
    assert_int_equal(ds_raftlog_first_index(ds_replica_store(f->rep), &first), 0);
    assert_true(first > last); /* LMDB's copy of the log is gone */
    ds_replica_destroy(&f->rep);
    s_open(f); /* and the WAL alone restores it */
    assert_int_equal(ds_replica_applied(f->rep), index);
    index = s_put(s_leader(cl), "c4", 2, "new", "entries");
    s_settle(cl, index);
    assert_int_equal(s_version(f, "new", "entries"), 1);
}

static int s_open_err(s_node_t *n, char *err, size_t errlen)
{
    ds_replica_config_t cfg = {0};
    ds_raft_config_defaults(&cfg.raft, n->id);
    cfg.raft.n_voters = S_N;
    for (uint32_t i = 0; i < S_N; i++)
        cfg.raft.voters[i] = i + 1;
    ds_store_opts_default(&cfg.store);
    return ds_replica_open(&n->rep, n->dir, &cfg, err, errlen);
}

static void test_a_wal_that_lost_entries_or_vanished_is_refused(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put_settled(cl, leader, "c5", 80);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    ds_replica_destroy(&f->rep);
    f->down = true;
    char wal_dir[400], err[512];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", f->dir);

    ds_test_rmrf(wal_dir); /* gone: term and vote would be forgotten */
    assert_int_equal(s_open_err(f, err, sizeof err), DS_ECORRUPT);
    assert_non_null(strstr(err, "no term or vote"));
    assert_null(f->rep);

    ds_test_rmrf(wal_dir); /* a log that starts after a hole */
    ds_wal_t *w = NULL;
    ds_wal_replay_t rp;
    assert_int_equal(ds_wal_open(&w, wal_dir, &rp, err, sizeof err), 0);
    ds_raft_entry_t e = {.term = 2, .index = index + 5, .type = DS_ENTRY_NOOP};
    assert_int_equal(ds_wal_append(w, &e, 1), 0);
    assert_int_equal(ds_wal_hardstate(w, 2, 0, 0), 0);
    assert_int_equal(ds_wal_sync(w), 0);
    ds_wal_close(&w);
    assert_int_equal(s_open_err(f, err, sizeof err), DS_ECORRUPT);
    assert_non_null(strstr(err, "entries are missing"));
    assert_null(f->rep);
}

static int s_snapdata_in_lmdb(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    ds_val_t v;
    return ds_txn_get(txn, DS_DB_RAFT_META, "snapdata", 8, &v);
}

static int s_files_in(const char *dir, char *last, size_t lastlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') {
            snprintf(last, lastlen, "%.63s", e->d_name); /* ours are 20 bytes */
            n++;
        }
    closedir(d);
    return n;
}

/*  A snapshot a member takes itself keeps its image in DIR/snap (one
    file, named by its index), not in LMDB; a restart reads it from
    there, removes what a crash left beside it, and refuses to start,
    saying why, when the image is gone. */
static void test_snapshot_image_lives_in_its_own_file(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t index = s_put_settled(cl, leader, "c6", 100);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    assert_int_equal(ds_replica_finish_snapshot(f->rep), 0); /* an export may still run */
    char snap_dir[400], name[64], path[500], err[1024];
    snprintf(snap_dir, sizeof snap_dir, "%s/snap", f->dir);
    assert_int_equal(s_files_in(snap_dir, name, sizeof name), 1);
    assert_int_equal(strlen(name), 20); /* 16 hex digits + ".img" */
    assert_int_equal(ds_store_read(ds_replica_store(f->rep), s_snapdata_in_lmdb, NULL),
                     DS_ENOTFOUND);

    ds_replica_destroy(&f->rep);
    f->down = true;
    snprintf(path, sizeof path, "%s/00000000000000ff.img.tmp", snap_dir);
    FILE *junk = fopen(path, "w");
    assert_non_null(junk);
    fclose(junk);
    assert_int_equal(s_open_err(f, err, sizeof err), 0);
    assert_true(ds_replica_applied(f->rep) >= index);
    char again[64];
    assert_int_equal(s_files_in(snap_dir, again, sizeof again), 1);
    assert_string_equal(again, name);

    ds_replica_destroy(&f->rep);
    snprintf(path, sizeof path, "%s/%s", snap_dir, name);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(s_open_err(f, err, sizeof err), DS_ECORRUPT);
    assert_non_null(strstr(err, "has no usable image"));
    assert_non_null(strstr(err, name));
    assert_null(f->rep);
}

static void s_reopen(s_node_t *n, uint64_t snapshot_entries);

static uint64_t s_snap_index(s_node_t *n)
{
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(n->rep), &st);
    return st.snap_index;
}

/*  `n` writes of `value` to `key`, each applied everywhere before the
    next, so that every member applies them one ready at a time and takes
    its snapshots at the same indexes. */
static void s_put_one_by_one(s_cluster_t *cl, s_node_t *leader, const char *client, int n,
                             const char *key, const char *value)
{
    for (int i = 0; i < n; i++)
        s_settle(cl, s_put(leader, client, (uint64_t)i + 1, key, value));
    for (int i = 0; i < S_N; i++)
        assert_int_equal(ds_replica_finish_snapshot(cl->nodes[i].rep), 0);
}

/*  A 1 KB value, NUL-terminated. */
static void s_big_value(char big[1024])
{
    memset(big, 'x', 1023);
    big[1023] = '\0';
}

/*  40 distinct keys of 1 KB by `client` (a state of about 40 KB), then
    the snapshot it brings; returns the leader's snapshot index. */
static uint64_t s_put_big_state(s_cluster_t *cl, s_node_t *leader, const char *client)
{
    char big[1024], key[16];
    s_big_value(big);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "big%02d", i);
        s_settle(cl, s_put(leader, client, (uint64_t)i + 1, key, big));
    }
    s_put_one_by_one(cl, leader, client, 0, NULL, NULL); /* takes the running exports */
    uint64_t first = s_snap_index(leader);
    assert_true(first >= 32);
    return first;
}

static void test_snapshot_waits_for_a_log_as_large_as_its_image(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t first = s_put_big_state(cl, leader, "c7");
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_snap_index(&cl->nodes[i]), first);

    /* 100 small entries: three times snapshot_entries, a few KB of log */
    s_put_one_by_one(cl, leader, "c8", 100, "k", "v");
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_snap_index(&cl->nodes[i]), first);

    /* a restarted follower counts the log it already applied */
    s_node_t *f = &cl->nodes[leader->id % S_N];
    ds_replica_destroy(&f->rep);
    s_open(f);
    assert_int_equal(s_snap_index(f), first);

    /* 1 KB entries to one key: the log outgrows the image, the state
       does not; every member snapshots at the same entry */
    char big[1024];
    s_big_value(big);
    s_put_one_by_one(cl, leader, "c9", 40, "k", big);
    uint64_t second = s_snap_index(leader);
    assert_true(second > first + 100);
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_snap_index(&cl->nodes[i]), second);
}

static void test_the_log_between_snapshots_is_bounded_in_bytes(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    uint64_t first = s_put_big_state(cl, leader, "c12");

    /* at most 4 KiB of log: 100 small entries (a few KB) are enough */
    cl->snapshot_log_max = 4096;
    for (int i = 0; i < S_N; i++)
        s_reopen(&cl->nodes[i], cl->snapshot_entries);
    leader = s_leader(cl);
    s_put_one_by_one(cl, leader, "c13", 100, "k", "v");
    uint64_t second = s_snap_index(leader);
    assert_true(second > first);
    for (int i = 0; i < S_N; i++)
        assert_int_equal(s_snap_index(&cl->nodes[i]), second);
}

/*  Reopens n from its directory with its own snapshot interval. */
static void s_reopen(s_node_t *n, uint64_t snapshot_entries)
{
    s_cluster_t *cl = n->cl;
    uint64_t usual = cl->snapshot_entries;
    ds_replica_destroy(&n->rep);
    cl->snapshot_entries = snapshot_entries;
    s_open(n);
    cl->snapshot_entries = usual;
}

/*  Steps the held message w into n and processes. */
static int s_deliver_held(s_node_t *n, s_wire_t *w)
{
    ds_msg_t *m = NULL;
    assert_int_equal(ds_msg_decode(w->env.data, w->env.len, w->body.data, w->body.len, &m, NULL),
                     0);
    (void)ds_raft_step(ds_replica_raft(n->rep), m->body);
    ds_msg_destroy(&m);
    return ds_replica_process(n->rep);
}

static void test_an_install_supersedes_a_running_export(void **state)
{
    s_cluster_t *cl = *state;
    s_node_t *leader = s_leader(cl);
    s_node_t *f = &cl->nodes[leader->id % S_N];
    s_reopen(f, 100000); /* f applies 60 entries and takes no snapshot */
    s_put_settled(cl, leader, "c10", 60);
    assert_int_equal(s_snap_index(f), 0);

    ds_replica_destroy(&f->rep); /* down while the leader compacts */
    f->down = true;
    uint64_t last = s_put_settled(cl, leader, "c11", 100);
    assert_int_equal(ds_replica_finish_snapshot(leader->rep), 0);
    uint64_t leader_snap = s_snap_index(leader);
    assert_true(leader_snap > 64);

    s_reopen(f, 100000); /* f answers; the snapshot the leader sends is held */
    f->hold_snapshots = true;
    for (int i = 0; i < 200 && cl->n_held == 0; i++)
        s_step(cl);
    assert_int_equal(cl->n_held, 1);
    f->hold_snapshots = false;

    /* reopened with 32: its first process starts an export of its 60
       entries; the leader's snapshot arrives before anything takes it */
    s_reopen(f, 32);
    assert_int_equal(ds_replica_process(f->rep), 0);
    assert_int_equal(s_deliver_held(f, &cl->held[0]), 0);
    assert_int_equal(f->installs, 1);
    assert_int_equal(s_snap_index(f), leader_snap);
    char snap_dir[400], name[64];
    snprintf(snap_dir, sizeof snap_dir, "%s/snap", f->dir);
    assert_int_equal(s_files_in(snap_dir, name, sizeof name), 0); /* the export's image went */

    s_settle(cl, last);
    assert_int_equal(ds_replica_finish_snapshot(f->rep), 0);
    assert_int_equal(s_version(f, "k", "v"), s_version(leader, "k", "v"));
    s_reopen(f, 32);
    assert_true(ds_replica_applied(f->rep) >= last);
    assert_int_equal(s_snap_index(f), leader_snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_commits_and_applies_on_every_replica, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_leader_answers_before_sending_the_commit_index,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_retried_request_is_applied_once, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_command_is_rejected_deterministically,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_recovers_log_and_state_from_disk, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_an_old_data_directory_moves_its_log_into_the_wal,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_a_wal_that_lost_entries_or_vanished_is_refused,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_waits_for_a_log_as_large_as_its_image,
                                        s_setup_by_size, s_teardown),
        cmocka_unit_test_setup_teardown(test_the_log_between_snapshots_is_bounded_in_bytes,
                                        s_setup_by_size, s_teardown),
        cmocka_unit_test_setup_teardown(test_an_install_supersedes_a_running_export, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_image_lives_in_its_own_file, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_lagging_replica_catches_up_by_snapshot, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
