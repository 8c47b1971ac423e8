/*  coordinator/replica.c - the Raft core on LMDB: restore, persist, apply,
    snapshot. */
#include "coordinator/replica.h"

#include "storage/hardstate.h"
#include "storage/raftlog.h"
#include "storage/snapmeta.h"
#include "storage/state.h"
#include "storage/state_image.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SNAPDATA_KEY             "snapdata"
#define S_DEFAULT_SNAPSHOT_ENTRIES 8192u

typedef struct {
    uint64_t index;
    uint64_t term;
    int result;
} s_outcome_t;

struct ds_replica {
    ds_store_t *store;
    ds_raft_t *raft;
    ds_replica_hooks_t hooks;
    uint64_t snapshot_entries;
    uint64_t applied;
    uint64_t snap_index;
    uint64_t durable_term; /* term and vote as last written durably */
    uint64_t durable_vote;
    s_outcome_t *outcomes; /* results of the last apply transaction */
    size_t n_outcomes;
    size_t cap_outcomes;
    char errmsg[512];
};

__attribute__((format(printf, 3, 4))) static int s_fail(ds_replica_t *self, int code,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->errmsg, sizeof self->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- restore -------------------------------------------------------- */

typedef struct {
    ds_hardstate_t hs;
    ds_snapshot_meta_t meta;
    uint8_t *snap_data;
    size_t snap_len;
    ds_raftlog_entries_t log;
    uint64_t applied;
} s_restore_t;

static int s_load_snapdata(ds_txn_t *txn, s_restore_t *st)
{
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, S_SNAPDATA_KEY, strlen(S_SNAPDATA_KEY), &v);
    if (rc == DS_ENOTFOUND)
        return ds_txn_fail(txn, DS_ECORRUPT, "snapshot %llu has no data",
                           (unsigned long long)st->meta.index);
    if (rc != 0)
        return rc;
    if (!(st->snap_data = malloc(v.len ? v.len : 1)))
        return DS_ENOMEM;
    memcpy(st->snap_data, v.data, v.len);
    st->snap_len = v.len;
    return 0;
}

static int s_load(ds_txn_t *txn, void *ctx)
{
    s_restore_t *st = ctx;
    uint64_t first, last;
    int rc = ds_hardstate_load_txn(txn, &st->hs);
    if (rc == 0)
        rc = ds_snapmeta_load_txn(txn, &st->meta);
    if (rc == 0 && st->meta.index > 0)
        rc = s_load_snapdata(txn, st);
    if (rc == 0)
        rc = ds_state_applied_txn(txn, &st->applied);
    if (rc == 0)
        rc = ds_raftlog_first_index_txn(txn, &first);
    if (rc == 0)
        rc = ds_raftlog_last_index_txn(txn, &last);
    if (rc == 0 && last >= first)
        rc = ds_raftlog_entries_txn(txn, first, last + 1, SIZE_MAX, &st->log);
    return rc;
}

static void s_restore_free(s_restore_t *st)
{
    free(st->snap_data);
    ds_raftlog_entries_free(&st->log);
}

static int s_start_core(ds_replica_t *self, const ds_replica_config_t *cfg, s_restore_t *st)
{
    ds_raft_config_t rc_cfg = cfg->raft;
    rc_cfg.applied = st->applied;
    ds_raft_restore_t restore = {
        .hs = {.term = st->hs.term, .vote = st->hs.vote, .commit = st->hs.commit},
        .snap_meta = st->meta.index ? &st->meta : NULL,
        .snap_data = st->snap_data,
        .snap_len = st->snap_len,
        .entries = st->log.entries,
        .n_entries = st->log.n,
    };
    if (st->applied < st->meta.index)
        return s_fail(self, DS_ECORRUPT, "applied index %llu is behind snapshot %llu",
                      (unsigned long long)st->applied, (unsigned long long)st->meta.index);
    int rc = ds_raft_check(&rc_cfg, &restore);
    if (rc != 0)
        return s_fail(self, rc, "stored Raft state does not fit the configuration: %s",
                      ds_strerror(rc));
    self->raft = ds_raft_new(&rc_cfg, &restore);
    assert(self->raft);
    self->applied = st->applied;
    self->snap_index = st->meta.index;
    self->durable_term = st->hs.term;
    self->durable_vote = st->hs.vote;
    return 0;
}

int ds_replica_open(ds_replica_t **out, const char *dir, const ds_replica_config_t *cfg, char *err,
                    size_t errlen)
{
    assert(out && dir && cfg);
    *out = NULL;
    ds_replica_t *self = calloc(1, sizeof *self);
    if (!self)
        return DS_ENOMEM;
    self->hooks = cfg->hooks;
    self->snapshot_entries =
        cfg->snapshot_entries ? cfg->snapshot_entries : S_DEFAULT_SNAPSHOT_ENTRIES;
    s_restore_t st = {0};
    int rc = ds_store_open(&self->store, dir, &cfg->store, self->errmsg, sizeof self->errmsg);
    if (rc != 0)
        goto err_free;
    rc = ds_store_read(self->store, s_load, &st);
    if (rc != 0) {
        s_fail(self, rc, "cannot read the Raft state in %s: %s", dir, ds_store_errmsg(self->store));
        goto err_free;
    }
    rc = s_start_core(self, cfg, &st);
    if (rc != 0)
        goto err_free;
    s_restore_free(&st);
    *out = self;
    return 0;
err_free:
    if (err && errlen)
        snprintf(err, errlen, "%s", self->errmsg);
    s_restore_free(&st);
    ds_replica_destroy(&self);
    return rc;
}

void ds_replica_destroy(ds_replica_t **self_p)
{
    assert(self_p);
    ds_replica_t *self = *self_p;
    if (!self)
        return;
    ds_raft_destroy(&self->raft);
    ds_store_destroy(&self->store);
    free(self->outcomes);
    free(self);
    *self_p = NULL;
}

ds_raft_t *ds_replica_raft(ds_replica_t *self)
{
    return self->raft;
}

ds_store_t *ds_replica_store(ds_replica_t *self)
{
    return self->store;
}

uint64_t ds_replica_applied(const ds_replica_t *self)
{
    return self->applied;
}

const char *ds_replica_errmsg(const ds_replica_t *self)
{
    return self->errmsg;
}

/* ---- persist ---------------------------------------------------------- */

static int s_put_snapdata(ds_txn_t *txn, const uint8_t *data, size_t len)
{
    return ds_txn_put(txn, DS_DB_RAFT_META, S_SNAPDATA_KEY, strlen(S_SNAPDATA_KEY), data, len, 0);
}

/*  A snapshot from the leader replaces state tables, log and snapshot. */
static int s_install_txn(ds_txn_t *txn, const ds_raft_ready_t *rd)
{
    int rc = ds_state_import_txn(txn, rd->snap_data, rd->snap_len);
    if (rc == 0)
        rc = ds_raftlog_reset_txn(txn, rd->snap_meta->index, rd->snap_meta->term);
    if (rc == 0)
        rc = ds_snapmeta_save_txn(txn, rd->snap_meta);
    if (rc == 0)
        rc = s_put_snapdata(txn, rd->snap_data, rd->snap_len);
    return rc;
}

static int s_persist_txn(ds_txn_t *txn, void *ctx)
{
    const ds_raft_ready_t *rd = ctx;
    int rc = 0;
    if (rd->snap_meta)
        rc = s_install_txn(txn, rd);
    if (rc == 0 && rd->n_entries) {
        rc = ds_raftlog_truncate_txn(txn, rd->entries[0].index);
        if (rc == 0)
            rc = ds_raftlog_append_txn(txn, rd->entries, rd->n_entries);
    }
    if (rc == 0 && rd->hs_changed) {
        ds_hardstate_t hs = {.term = rd->hs.term, .vote = rd->hs.vote, .commit = rd->hs.commit};
        rc = ds_hardstate_save_txn(txn, &hs);
    }
    return rc;
}

/* ---- apply ------------------------------------------------------------ */

typedef struct {
    ds_replica_t *self;
    const ds_raft_entry_t *entry;
    int verdict;
} s_apply_one_t;

static int s_apply_entry(ds_txn_t *txn, void *ctx)
{
    s_apply_one_t *one = ctx;
    one->verdict = 0;
    return one->self->hooks.apply(one->self->hooks.ctx, txn, one->entry, &one->verdict);
}

static int s_outcome_push(ds_replica_t *self, const ds_raft_entry_t *e, int result)
{
    if (self->n_outcomes == self->cap_outcomes) {
        size_t cap = self->cap_outcomes ? self->cap_outcomes * 2 : 64;
        s_outcome_t *grown = realloc(self->outcomes, cap * sizeof *grown);
        if (!grown)
            return DS_ENOMEM;
        self->outcomes = grown;
        self->cap_outcomes = cap;
    }
    self->outcomes[self->n_outcomes++] = (s_outcome_t){e->index, e->term, result};
    return 0;
}

typedef struct {
    ds_replica_t *self;
    const ds_raft_ready_t *rd;
    uint64_t applied;
} s_apply_ctx_t;

/*  Applies the committed entries of a ready, each with its applied index. */
static int s_apply_entries_txn(ds_txn_t *txn, s_apply_ctx_t *a)
{
    ds_replica_t *self = a->self;
    self->n_outcomes = 0; /* the callback may run again after map growth */
    for (size_t i = 0; i < a->rd->n_committed; i++) {
        const ds_raft_entry_t *e = &a->rd->committed[i];
        if (e->index <= a->applied)
            continue; /* already in the state tables (snapshot install) */
        s_apply_one_t one = {self, e, 0};
        bool normal = e->type == DS_ENTRY_NORMAL && self->hooks.apply;
        int result = 0;
        int rc = ds_state_apply_txn(txn, e->index, 0, normal ? s_apply_entry : NULL, &one, &result);
        if (rc == 0 && result == 0)
            result = one.verdict;
        if (rc == 0)
            rc = s_outcome_push(self, e, result);
        if (rc != 0)
            return rc;
        a->applied = e->index;
    }
    return 0;
}

/*  One transaction, one fsync per ready: what Raft needs durable (log,
    hard state, snapshot) and the entries it committed, applied. Applying
    before the messages go out costs no safety: those entries are
    committed already. */
static int s_ready_txn(ds_txn_t *txn, void *ctx)
{
    s_apply_ctx_t *a = ctx;
    a->applied = a->rd->snap_meta ? a->rd->snap_meta->index : a->self->applied;
    int rc = s_persist_txn(txn, (void *)a->rd);
    return rc != 0 ? rc : s_apply_entries_txn(txn, a);
}

/*  Raft needs the log, the snapshot, the term and the vote durable before
    the messages go out. A ready that only moves the commit index and
    applies entries needs no such promise: after an operating-system crash
    the commit index is learned again and the entries, still in the log,
    are applied again. Such readies take the lazy commit (one flush, not
    two). Snapshots, which compact the log, are always written durably. */
static bool s_needs_sync(const ds_replica_t *self, const ds_raft_ready_t *rd)
{
    return rd->snap_meta || rd->n_entries ||
           (rd->hs_changed &&
            (rd->hs.term != self->durable_term || rd->hs.vote != self->durable_vote));
}

static int s_write_ready(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    if (!rd->snap_meta && !rd->n_entries && !rd->hs_changed && !rd->n_committed)
        return 0; /* messages only: nothing to make durable */
    s_apply_ctx_t a = {self, rd, self->applied};
    int rc = s_needs_sync(self, rd) ? ds_store_write(self->store, s_ready_txn, &a)
                                    : ds_store_write_lazy(self->store, s_ready_txn, &a);
    if (rc != 0)
        return s_fail(self, rc, "persisting and applying Raft state failed: %s",
                      ds_store_errmsg(self->store));
    if (rd->snap_meta) {
        self->snap_index = rd->snap_meta->index;
        if (self->hooks.installed)
            self->hooks.installed(self->hooks.ctx, rd->snap_meta->index);
    }
    self->applied = a.applied;
    if (rd->hs_changed) {
        self->durable_term = rd->hs.term;
        self->durable_vote = rd->hs.vote;
    }
    return 0;
}

/*  A leader's appends and heartbeats promise nothing about its own disk:
    the core counts the leader's own entries only once they are durable
    (advance), so they may leave before the leader's write, and the
    follower's write overlaps the leader's (Raft thesis, 10.2.1). Every
    other message (votes, acknowledgements) waits for the write. */
static bool s_may_precede_write(const ds_raft_ready_t *rd, const ds_raft_msg_t *m)
{
    return rd->role == DS_RAFT_LEADER &&
           (m->type == DS_RAFT_APPEND || m->type == DS_RAFT_HEARTBEAT);
}

static void s_send(ds_replica_t *self, const ds_raft_ready_t *rd, bool before_write)
{
    for (size_t i = 0; i < rd->n_msgs; i++)
        if (s_may_precede_write(rd, &rd->msgs[i]) == before_write)
            self->hooks.send(self->hooks.ctx, &rd->msgs[i]);
}

static void s_notify(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    for (size_t i = 0; self->hooks.read && i < rd->n_reads; i++)
        self->hooks.read(self->hooks.ctx, &rd->reads[i]);
    for (size_t i = 0; self->hooks.event && i < rd->n_events; i++)
        self->hooks.event(self->hooks.ctx, &rd->events[i]);
}

static void s_report_outcomes(ds_replica_t *self)
{
    for (size_t i = 0; self->hooks.applied && i < self->n_outcomes; i++)
        self->hooks.applied(self->hooks.ctx, self->outcomes[i].index, self->outcomes[i].term,
                            self->outcomes[i].result);
    self->n_outcomes = 0;
}

/* ---- snapshots ---------------------------------------------------------- */

typedef struct {
    const ds_snapshot_meta_t *meta;
    const uint8_t *data;
    size_t len;
} s_snap_ctx_t;

static int s_snapshot_txn(ds_txn_t *txn, void *ctx)
{
    s_snap_ctx_t *s = ctx;
    int rc = ds_snapmeta_save_txn(txn, s->meta);
    if (rc == 0)
        rc = s_put_snapdata(txn, s->data, s->len);
    if (rc == 0)
        rc = ds_raftlog_compact_txn(txn, s->meta->index);
    return rc;
}

static int s_maybe_snapshot(ds_replica_t *self)
{
    if (self->applied - self->snap_index < self->snapshot_entries)
        return 0;
    uint8_t *image = NULL;
    size_t len = 0;
    int rc = ds_state_export(self->store, &image, &len);
    if (rc != 0)
        return s_fail(self, rc, "exporting a snapshot failed: %s", ds_store_errmsg(self->store));
    rc = ds_raft_snapshot_taken(self->raft, self->applied, image, len);
    if (rc == 0) {
        ds_snapshot_meta_t meta;
        ds_raft_snapshot_meta(self->raft, &meta);
        s_snap_ctx_t s = {&meta, image, len};
        rc = ds_store_write(self->store, s_snapshot_txn, &s);
        if (rc == 0)
            self->snap_index = meta.index;
        else
            s_fail(self, rc, "saving snapshot %llu failed: %s", (unsigned long long)meta.index,
                   ds_store_errmsg(self->store));
    } else {
        s_fail(self, rc, "the Raft core refused snapshot %llu: %s",
               (unsigned long long)self->applied, ds_strerror(rc));
    }
    free(image);
    return rc;
}

int ds_replica_process(ds_replica_t *self)
{
    while (ds_raft_has_ready(self->raft)) {
        ds_raft_ready_t rd;
        ds_raft_ready(self->raft, &rd);
        s_send(self, &rd, true);
        int rc = s_write_ready(self, &rd);
        if (rc != 0)
            return rc;
        s_send(self, &rd, false); /* only now: what they promise is durable */
        s_notify(self, &rd);
        ds_raft_advance(self->raft, &rd);
        s_report_outcomes(self);
    }
    return s_maybe_snapshot(self);
}
