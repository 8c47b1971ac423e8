/*  coordinator/replica.c - the Raft core on the WAL (log, hard state) and
    LMDB (state, snapshot): restore, persist, apply, snapshot. */
#include "coordinator/replica.h"

#include "protocol/clock.h"
#include "protocol/log.h"

#include "storage/exporter.h"
#include "storage/hardstate.h"
#include "storage/raftlog.h"
#include "storage/snapfile.h"
#include "storage/snapmeta.h"
#include "storage/state.h"
#include "storage/state_image.h"
#include "storage/wal.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_SNAPDATA_KEY             "snapdata"
#define S_DEFAULT_SNAPSHOT_ENTRIES 8192u
#define S_DEFAULT_SNAPSHOT_LOG_MAX ((uint64_t)64 << 20)
#define S_BATCH_READIES            256u /* applying readies between batch commits */
#define S_MAX_COMMIT_MSGS          (2 * DS_MAX_MEMBERS)

typedef struct {
    uint64_t index;
    uint64_t term;
    int result;
} s_outcome_t;

/*  A leader's write whose flush runs in the background: durable once the
    WAL's durable position reaches `pos`. */
typedef struct {
    uint64_t pos;
    uint64_t index, term; /* its last entry */
} s_unsynced_t;

struct ds_replica {
    ds_store_t *store; /* state tables, snapshot, applied index */
    ds_wal_t *wal;     /* the Raft log and hard state */
    ds_raft_t *raft;
    ds_replica_hooks_t hooks;
    uint64_t snapshot_entries;
    uint32_t snapshot_log_percent;
    uint64_t snapshot_log_max;
    uint64_t applied;
    uint64_t snap_index;
    uint64_t snap_bytes;     /* the snapshot's image */
    uint64_t log_bytes;      /* entry data applied after the snapshot's index */
    uint64_t export_mark;    /* log_bytes when the running export started */
    ds_exporter_t *exporter; /* a snapshot export running on its thread, or NULL */
    char snap_dir[PATH_MAX]; /* DIR/snap: snapshot images (storage/snapfile.h) */
    bool snap_in_file;       /* the snapshot's image is in snap_dir (else in LMDB) */
    uint64_t export_started_us;
    uint64_t durable_term; /* term and vote as last written durably */
    uint64_t durable_vote;
    s_outcome_t *outcomes; /* results of the last apply transaction */
    size_t n_outcomes;
    size_t cap_outcomes;
    s_unsynced_t *unsynced; /* oldest first */
    size_t n_unsynced, cap_unsynced;
    uint64_t flush_requested;                 /* WAL position a background flush was asked for */
    ds_raft_msg_t commits[S_MAX_COMMIT_MSGS]; /* commit-only appends of a ready (s_defers) */
    size_t n_commits;
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
    bool snap_in_file;           /* no image in LMDB: it is in DIR/snap */
    ds_raftlog_entries_t legacy; /* a log kept in LMDB by an older version */
    ds_hardstate_t legacy_hs;
    const ds_raft_entry_t *entries; /* the WAL's, after the snapshot */
    size_t n_entries;
    uint64_t applied;
} s_restore_t;

/*  The snapshot's image: in LMDB (installed from a leader, or written by
    versions before snapshot files), else in DIR/snap (s_load_snapfile). */
static int s_load_snapdata(ds_txn_t *txn, s_restore_t *st)
{
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, S_SNAPDATA_KEY, strlen(S_SNAPDATA_KEY), &v);
    if (rc == DS_ENOTFOUND) {
        st->snap_in_file = true;
        return 0;
    }
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
    int rc = ds_hardstate_load_txn(txn, &st->legacy_hs);
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
        rc = ds_raftlog_entries_txn(txn, first, last + 1, SIZE_MAX, &st->legacy);
    return rc;
}

static int s_load_snapfile(ds_replica_t *self, s_restore_t *st)
{
    if (!st->snap_in_file)
        return 0;
    char err[PATH_MAX + 256];
    int rc = ds_snapfile_read(self->snap_dir, st->meta.index, &st->snap_data, &st->snap_len, err,
                              sizeof err);
    if (rc == DS_ENOTFOUND || rc == DS_ECORRUPT)
        return s_fail(self, DS_ECORRUPT,
                      "snapshot %" PRIu64 " has no usable image (%s); restore this member from "
                      "a snapshot (remove its data directory and let it rejoin)",
                      st->meta.index, err);
    return rc != 0 ? s_fail(self, rc, "reading snapshot %" PRIu64 ": %s", st->meta.index, err) : 0;
}

static void s_restore_free(s_restore_t *st)
{
    free(st->snap_data);
    ds_raftlog_entries_free(&st->legacy);
}

static int s_drop_legacy_txn(ds_txn_t *txn, void *ctx)
{
    const ds_snapshot_meta_t *meta = ctx;
    return ds_raftlog_reset_txn(txn, meta->index, meta->term);
}

/*  A data directory from before the WAL keeps its log and hard state in
    LMDB: they move to the WAL once (durably), then leave LMDB. */
static int s_migrate_legacy(ds_replica_t *self, s_restore_t *st, ds_wal_replay_t *rp)
{
    bool wal_fresh = !rp->has_hardstate && rp->n == 0 && rp->reset_index == 0;
    if (!wal_fresh || (st->legacy.n == 0 && st->legacy_hs.term == 0))
        return 0;
    int rc = 0;
    if (st->legacy.n)
        rc = ds_wal_append(self->wal, st->legacy.entries, st->legacy.n);
    if (rc == 0)
        rc = ds_wal_hardstate(self->wal, st->legacy_hs.term, st->legacy_hs.vote,
                              st->legacy_hs.commit);
    if (rc == 0)
        rc = ds_wal_sync(self->wal);
    if (rc != 0)
        return s_fail(self, rc, "moving the Raft log into the WAL failed: %s",
                      ds_wal_errmsg(self->wal));
    rc = ds_store_write(self->store, s_drop_legacy_txn, &st->meta);
    if (rc != 0)
        return s_fail(self, rc, "clearing the old Raft log failed: %s",
                      ds_store_errmsg(self->store));
    rp->has_hardstate = true;
    rp->term = st->legacy_hs.term;
    rp->vote = st->legacy_hs.vote;
    rp->commit = st->legacy_hs.commit;
    rp->entries = st->legacy.entries;
    rp->n = st->legacy.n;
    return 0;
}

/*  The log that goes with the snapshot: the WAL's entries after it. A
    snapshot installed just before a crash may not have reached the WAL
    yet (its reset is written after the snapshot is durable): the entries
    after it are kept only if the log holds the snapshot's own entry
    (same index and term), as Raft's InstallSnapshot rule says. A gap
    between the snapshot and the log is corruption. */
static int s_log_after_snapshot(ds_replica_t *self, s_restore_t *st, const ds_wal_replay_t *rp)
{
    const ds_raft_entry_t *e = rp->entries;
    size_t n = rp->n;
    uint64_t s = st->meta.index;
    if (!rp->has_hardstate && (st->applied > 0 || s > 0))
        return s_fail(self, DS_ECORRUPT,
                      "the state has entries applied up to %" PRIu64
                      " but the WAL has no term or vote (was the wal directory removed?); "
                      "restore this member from a snapshot (remove its data directory and let it "
                      "rejoin)",
                      st->applied);
    if (n > 0 && s > 0 && e[0].index <= s) {
        bool matches = e[n - 1].index >= s && e[s - e[0].index].term == st->meta.term;
        size_t skip = matches ? (size_t)(s - e[0].index + 1) : n;
        e += skip;
        n -= skip;
    }
    if (n > 0 && e[0].index != s + 1)
        return s_fail(self, DS_ECORRUPT,
                      "the Raft log starts at entry %" PRIu64 " but the snapshot ends at %" PRIu64
                      ": entries are missing; restore this member from a snapshot (remove its "
                      "data directory and let it rejoin)",
                      e[0].index, s);
    st->entries = e;
    st->n_entries = n;
    st->hs = (ds_hardstate_t){rp->term, rp->vote, rp->commit};
    if (st->hs.commit < st->applied)
        st->hs.commit = st->applied; /* applied entries are committed */
    return 0;
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
        .entries = st->entries,
        .n_entries = st->n_entries,
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
    self->snap_bytes = st->snap_len;
    for (size_t i = 0; i < st->n_entries && st->entries[i].index <= st->applied; i++)
        if (st->entries[i].index > st->meta.index)
            self->log_bytes += st->entries[i].data.len;
    self->durable_term = st->hs.term;
    self->durable_vote = st->hs.vote;
    return 0;
}

static int s_open_wal(ds_replica_t *self, const char *dir, ds_wal_replay_t *rp)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/wal", dir) >= sizeof path)
        return s_fail(self, DS_EINVAL, "the data directory path is too long");
    return ds_wal_open(&self->wal, path, rp, self->errmsg, sizeof self->errmsg);
}

static int s_restore(ds_replica_t *self, const char *dir, const ds_replica_config_t *cfg,
                     s_restore_t *st)
{
    int rc = ds_store_read(self->store, s_load, st);
    if (rc != 0)
        return s_fail(self, rc, "cannot read the Raft state in %s: %s", dir,
                      ds_store_errmsg(self->store));
    if ((rc = s_load_snapfile(self, st)) != 0)
        return rc;
    self->snap_in_file = st->snap_in_file;
    ds_wal_replay_t rp;
    rc = s_open_wal(self, dir, &rp);
    if (rc == 0)
        rc = s_migrate_legacy(self, st, &rp);
    if (rc == 0)
        rc = s_log_after_snapshot(self, st, &rp);
    if (rc == 0)
        rc = s_start_core(self, cfg, st);
    if (self->wal)
        ds_wal_release_replay(self->wal); /* the core copied what it keeps */
    return rc;
}

/*  The store's batch hook: a leader applies committed entries that its
    own background flush may not have reached yet (a majority holds them
    durably), so before applied state becomes durable in LMDB the WAL is
    flushed: the state tables never get ahead of the local log. */
static int s_before_state_commit(void *ctx, char *why, size_t whylen)
{
    ds_replica_t *self = ctx;
    if (self->n_unsynced == 0)
        return 0; /* every entry written is durable */
    int rc = ds_wal_sync(self->wal);
    if (rc != 0)
        snprintf(why, whylen, "flushing the Raft log first failed: %s", ds_wal_errmsg(self->wal));
    return rc;
}

/*  Removes every image file but the snapshot's own. A file left over
    costs only disk space, so a failure is logged and not fatal. */
static void s_prune_images(ds_replica_t *self)
{
    char err[PATH_MAX + 256];
    uint64_t keep = self->snap_in_file ? self->snap_index : 0;
    if (ds_snapfile_prune(self->snap_dir, keep, err, sizeof err) != 0)
        DS_LOG(DS_LOG_WARN, "raft", "cannot remove old snapshot images", "detail=%s", err);
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
    self->snapshot_log_percent = cfg->snapshot_log_percent;
    self->snapshot_log_max =
        cfg->snapshot_log_max ? cfg->snapshot_log_max : S_DEFAULT_SNAPSHOT_LOG_MAX;
    s_restore_t st = {0};
    int rc = (size_t)snprintf(self->snap_dir, sizeof self->snap_dir, "%s/snap", dir) <
                     sizeof self->snap_dir
                 ? 0
                 : s_fail(self, DS_EINVAL, "the data directory path is too long");
    if (rc == 0)
        rc = ds_store_open(&self->store, dir, &cfg->store, self->errmsg, sizeof self->errmsg);
    if (rc == 0)
        rc = s_restore(self, dir, cfg, &st);
    if (rc != 0)
        goto err_free;
    s_prune_images(self); /* what a crash left: an image never committed, a temporary file */
    ds_store_set_batch_hook(self->store, s_before_state_commit, self);
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
    ds_exporter_destroy(&self->exporter); /* before the store it reads */
    ds_raft_destroy(&self->raft);
    ds_store_destroy(&self->store); /* its last commit flushes the WAL first */
    ds_wal_close(&self->wal);
    free(self->outcomes);
    free(self->unsynced);
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

/*  A snapshot from the leader replaces the state tables and the stored
    snapshot (the log is the WAL's, reset after this commits). */
static int s_install_txn(ds_txn_t *txn, void *ctx)
{
    const ds_raft_ready_t *rd = ctx;
    int rc = ds_state_import_txn(txn, rd->snap_data, rd->snap_len);
    if (rc == 0)
        rc = ds_snapmeta_save_txn(txn, rd->snap_meta);
    if (rc == 0)
        rc = s_put_snapdata(txn, rd->snap_data, rd->snap_len);
    return rc;
}

/*  The snapshot is now the one at `index`, its image `image_bytes`
    long, with `log_bytes` of entry data applied after it. */
static void s_snapshot_now_at(ds_replica_t *self, uint64_t index, uint64_t image_bytes,
                              uint64_t log_bytes)
{
    self->snap_index = index;
    self->snap_bytes = image_bytes;
    self->log_bytes = log_bytes;
    self->export_mark = 0;
}

/*  The snapshot goes to LMDB durably before the WAL forgets the log it
    replaces: a crash in between restarts from the snapshot and the old
    log (s_log_after_snapshot decides what of it still fits). */
static int s_install_snapshot(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    /* An export of our own still running is superseded: wait for its
       thread (it may be writing a file the prune below removes), drop
       what it made. */
    ds_exporter_destroy(&self->exporter);
    int rc = ds_store_write(self->store, s_install_txn, (void *)rd);
    if (rc != 0)
        return s_fail(self, rc, "installing snapshot %" PRIu64 " failed: %s", rd->snap_meta->index,
                      ds_store_errmsg(self->store));
    s_snapshot_now_at(self, rd->snap_meta->index, rd->snap_len, 0);
    self->snap_in_file = false;
    s_prune_images(self);
    self->applied = rd->snap_meta->index;
    if (self->hooks.installed)
        self->hooks.installed(self->hooks.ctx, rd->snap_meta->index);
    rc = ds_wal_reset(self->wal, rd->snap_meta->index, rd->snap_meta->term);
    return rc != 0 ? s_fail(self, rc, "%s", ds_wal_errmsg(self->wal)) : 0;
}

/*  Raft needs the log, the snapshot, the term and the vote durable before
    the messages go out: one WAL write and one fdatasync. A ready that
    only moves the commit index needs no such promise (after a crash the
    commit index is learned again, and it is at least the applied index):
    its hard state waits in the WAL's buffer for the next write. */
static bool s_needs_sync(const ds_replica_t *self, const ds_raft_ready_t *rd)
{
    return rd->snap_meta || rd->n_entries ||
           (rd->hs_changed &&
            (rd->hs.term != self->durable_term || rd->hs.vote != self->durable_vote));
}

static int s_persist(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    int rc = rd->snap_meta ? s_install_snapshot(self, rd) : 0;
    if (rc == 0 && rd->n_entries)
        rc = ds_wal_append(self->wal, rd->entries, rd->n_entries);
    if (rc == 0 && rd->hs_changed)
        rc = ds_wal_hardstate(self->wal, rd->hs.term, rd->hs.vote, rd->hs.commit);
    if (rc == 0 && s_needs_sync(self, rd))
        rc = ds_wal_sync(self->wal);
    if (rc != 0)
        return s_fail(self, rc, "persisting the Raft log failed: %s", ds_wal_errmsg(self->wal));
    if (rd->hs_changed) {
        self->durable_term = rd->hs.term;
        self->durable_vote = rd->hs.vote;
    }
    return 0;
}

/* ---- background flushes (a leader's own log) ----------------------------- */

/*  A leader's ready may leave its flush to the WAL's background thread
    (ds_raft_advance_unsynced): its messages promise nothing about its
    own disk, and the core counts its own copy towards a quorum only once
    ds_raft_synced() reports it durable. A ready that installs a
    snapshot or changes the term or vote takes the synchronous path. */
static bool s_may_flush_later(const ds_replica_t *self, const ds_raft_ready_t *rd)
{
    return rd->role == DS_RAFT_LEADER && !rd->snap_meta &&
           (!rd->hs_changed ||
            (rd->hs.term == self->durable_term && rd->hs.vote == self->durable_vote));
}

static int s_unsynced_push(ds_replica_t *self, uint64_t pos, const ds_raft_entry_t *last)
{
    if (self->n_unsynced == self->cap_unsynced) {
        size_t cap = self->cap_unsynced ? self->cap_unsynced * 2 : 16;
        s_unsynced_t *grown = realloc(self->unsynced, cap * sizeof *grown);
        if (!grown)
            return s_fail(self, DS_ENOMEM, "out of memory tracking WAL flushes");
        self->unsynced = grown;
        self->cap_unsynced = cap;
    }
    self->unsynced[self->n_unsynced++] = (s_unsynced_t){pos, last->index, last->term};
    return 0;
}

/*  Writes the ready's entries (no flush yet: see s_flush_when_needed); a
    commit-only hard state rides along (Raft never needs the commit index
    durable). */
static int s_persist_later(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    int rc = 0;
    if (rd->n_entries)
        rc = ds_wal_append(self->wal, rd->entries, rd->n_entries);
    if (rc == 0 && rd->hs_changed)
        rc = ds_wal_hardstate(self->wal, rd->hs.term, rd->hs.vote, rd->hs.commit);
    if (rc == 0 && rd->n_entries)
        rc = ds_wal_flush(self->wal);
    if (rc != 0)
        return s_fail(self, rc, "persisting the Raft log failed: %s", ds_wal_errmsg(self->wal));
    return rd->n_entries
               ? s_unsynced_push(self, ds_wal_written(self->wal), &rd->entries[rd->n_entries - 1])
               : 0;
}

/*  Something written since the last flush request. */
static bool s_unrequested(const ds_replica_t *self)
{
    return self->n_unsynced > 0 && self->unsynced[self->n_unsynced - 1].pos > self->flush_requested;
}

/*  Starts the background flush of everything written. */
static int s_flush_written(ds_replica_t *self)
{
    if (!s_unrequested(self))
        return 0;
    uint64_t pos;
    int rc = ds_wal_sync_start(self->wal, &pos);
    if (rc != 0)
        return s_fail(self, rc, "flushing the Raft log failed: %s", ds_wal_errmsg(self->wal));
    self->flush_requested = pos;
    return 0;
}

/*  A commit needs the leader's own copy of entries not yet asked to be
    flushed. */
static bool s_commit_needs_flush(const ds_replica_t *self)
{
    return s_unrequested(self) && ds_raft_own_flush_needed(self->raft);
}

/*  The leader's flush waits until a commit needs it. With both followers
    up, a commit needs only their flushes, and three processes flushing
    one device at once make every flush slower (bench/README.md). Once
    the leader's own copy would complete a quorum, its flush starts at
    once if no follower can (one is down or lagging), or else after the
    caller's short grace (ds_replica_flush_waiting, ds_replica_flush_now)
    unless the followers complete the quorum first. A single-member
    cluster flushes at once. What no commit needed is flushed within
    100 ms (ds_replica_commit_applied) and before every LMDB commit. */
static int s_flush_when_needed(ds_replica_t *self)
{
    if (!s_commit_needs_flush(self) || ds_raft_own_flush_may_wait(self->raft))
        return 0;
    return s_flush_written(self);
}

bool ds_replica_flush_waiting(const ds_replica_t *self)
{
    return s_commit_needs_flush(self) && ds_raft_own_flush_may_wait(self->raft);
}

int ds_replica_flush_now(ds_replica_t *self)
{
    return s_flush_written(self);
}

/*  Tells the core which writes became durable: through the background
    flusher (asked only while a request is outstanding: it costs a
    syscall, and this runs for every ready) or a synchronous flush (the
    LMDB commit hook). Outside a ready. */
static int s_take_synced(ds_replica_t *self)
{
    if (self->n_unsynced == 0)
        return 0;
    uint64_t durable = ds_wal_durable(self->wal);
    if (self->flush_requested > durable) {
        int rc = ds_wal_sync_poll(self->wal, &durable);
        if (rc != 0)
            return s_fail(self, rc, "flushing the Raft log failed: %s", ds_wal_errmsg(self->wal));
    }
    size_t done = 0;
    while (done < self->n_unsynced && self->unsynced[done].pos <= durable)
        done++;
    if (done == 0)
        return 0;
    const s_unsynced_t *last = &self->unsynced[done - 1];
    ds_raft_synced(self->raft, last->index, last->term);
    memmove(self->unsynced, self->unsynced + done, (self->n_unsynced - done) * sizeof *last);
    self->n_unsynced -= done;
    return 0;
}

/*  Before a synchronous ready: its ds_raft_advance() declares everything
    written so far durable, so it must be (a running background flush is
    waited for, then the rest is flushed here). */
static int s_wait_flushes(ds_replica_t *self)
{
    if (self->n_unsynced == 0)
        return 0;
    int rc = ds_wal_sync(self->wal);
    if (rc != 0)
        return s_fail(self, rc, "flushing the Raft log failed: %s", ds_wal_errmsg(self->wal));
    self->n_unsynced = 0;
    return 0;
}

int ds_replica_wakeup_fd(const ds_replica_t *self)
{
    return ds_wal_sync_fd(self->wal);
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
    uint64_t bytes; /* entry data applied */
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
        int rc = ds_state_apply_txn(txn, e->index, DS_STATE_APPLY_IN_PLACE,
                                    normal ? s_apply_entry : NULL, &one, &result);
        if (rc == 0 && result == 0)
            result = one.verdict;
        if (rc == 0)
            rc = s_outcome_push(self, e, result);
        if (rc != 0)
            return rc;
        a->applied = e->index;
        a->bytes += e->data.len;
    }
    return 0;
}

static int s_apply_txn(ds_txn_t *txn, void *ctx)
{
    s_apply_ctx_t *a = ctx;
    a->applied = a->self->applied; /* the callback may run again after map growth */
    a->bytes = 0;
    return s_apply_entries_txn(txn, a);
}

/*  The committed entries of a ready, applied in LMDB's batch
    transaction (ds_store_batch_write), each with its applied index: no
    flush on the way to the client's answer. The answer is safe to send
    at once: the entries are durable in the WAL of a majority, so a crash
    that loses the batch (or an operating-system crash that undoes its
    lazy commit) loses nothing acknowledged: at restart the entries after
    the durable applied index are applied again, with the same results
    (the state machine is deterministic and deduplicates by session). The
    batch commits every S_BATCH_READIES readies, when the node calls
    ds_replica_commit_applied() (every 100 ms), before any other write
    (snapshots), and at close. */
static int s_apply(ds_replica_t *self, const ds_raft_ready_t *rd)
{
    if (!rd->n_committed)
        return 0;
    s_apply_ctx_t a = {self, rd, self->applied, 0};
    int rc = ds_store_batch_write(self->store, s_apply_txn, &a);
    if (rc == 0 && ds_store_batch_writes(self->store) >= S_BATCH_READIES)
        rc = ds_store_batch_commit(self->store);
    if (rc != 0)
        return s_fail(self, rc, "applying committed entries failed: %s",
                      ds_store_errmsg(self->store));
    self->applied = a.applied;
    self->log_bytes += a.bytes;
    return 0;
}

int ds_replica_commit_applied(ds_replica_t *self)
{
    /* What no commit needed is not left unflushed for long: the batch's
       commit flushes it first (s_before_state_commit); with no batch, in
       the background. */
    if (ds_store_batch_writes(self->store) == 0)
        return s_flush_written(self);
    int rc = ds_store_batch_commit(self->store);
    return rc != 0 ? s_fail(self, rc, "committing applied entries failed: %s",
                            ds_store_errmsg(self->store))
                   : 0;
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

/*  The snapshot's meta; its image is in DIR/snap already (written and
    flushed by the export thread), so an image kept in LMDB goes. */
static int s_snapshot_txn(ds_txn_t *txn, void *ctx)
{
    int rc = ds_snapmeta_save_txn(txn, ctx);
    if (rc == 0)
        rc = ds_txn_del(txn, DS_DB_RAFT_META, S_SNAPDATA_KEY, strlen(S_SNAPDATA_KEY));
    return rc == DS_ENOTFOUND ? 0 : rc;
}

/*  Hands the image exported at `index` (already durable in its file) to
    the core, commits its meta, and only then compacts the WAL up to it. */
static int s_keep_snapshot(ds_replica_t *self, uint64_t index, const uint8_t *image, size_t len,
                           ds_snapshot_meta_t *meta)
{
    int rc = ds_raft_snapshot_taken(self->raft, index, image, len);
    if (rc != 0)
        return s_fail(self, rc, "the Raft core refused snapshot %llu: %s",
                      (unsigned long long)index, ds_strerror(rc));
    ds_raft_snapshot_meta(self->raft, meta);
    rc = ds_store_write(self->store, s_snapshot_txn, meta);
    if (rc != 0)
        return s_fail(self, rc, "saving snapshot %llu failed: %s", (unsigned long long)meta->index,
                      ds_store_errmsg(self->store));
    s_snapshot_now_at(self, meta->index, len, self->log_bytes - self->export_mark);
    self->snap_in_file = true;
    s_prune_images(self);
    rc = ds_wal_compact(self->wal, meta->index);
    if (rc != 0)
        return s_fail(self, rc, "compacting the WAL failed: %s", ds_wal_errmsg(self->wal));
    return 0;
}

int ds_replica_finish_snapshot(ds_replica_t *self)
{
    if (!self->exporter)
        return 0;
    uint8_t *image = NULL;
    size_t len = 0;
    uint64_t index = 0;
    char err[DS_STORE_ERRMSG_SIZE];
    int rc = ds_exporter_finish(&self->exporter, &image, &len, &index, err, sizeof err);
    if (rc != 0)
        return s_fail(self, rc, "exporting a snapshot failed: %s", err);
    uint64_t exported = ds_clock_mono_us();
    ds_snapshot_meta_t meta; /* index > snap_index: an install drops a running export */
    if ((rc = s_keep_snapshot(self, index, image, len, &meta)) == 0)
        DS_LOG(DS_LOG_INFO, "raft", "snapshot taken",
               "index=%" PRIu64 " bytes=%zu export_ms=%.1f save_ms=%.1f", meta.index, len,
               (double)(exported - self->export_started_us) / 1e3,
               (double)(ds_clock_mono_us() - exported) / 1e3);
    free(image);
    return rc;
}

/*  A snapshot is due once `snapshot_entries` entries were applied since
    the last one and, with a log percent P, once their data is at least
    P % of the last image's size: the export's cost, which grows with the
    state, stays in proportion to the log it lets the member delete. The
    log never outgrows `snapshot_log_max`, which bounds the memory the
    core holds it in and what a restart replays. */
static bool s_snapshot_due(const ds_replica_t *self)
{
    if (self->applied - self->snap_index < self->snapshot_entries)
        return false;
    return self->log_bytes >= self->snapshot_log_max ||
           self->log_bytes * 100 >= self->snap_bytes * self->snapshot_log_percent;
}

/*  Once a snapshot is due, the state tables are exported on a thread
    (storage/exporter.h) from the last committed state, and the image is
    written durably to DIR/snap, while the loop goes on; once that is
    done, the loop hands the image to the core, commits the snapshot's
    meta and compacts the log (the only part that stalls it). The log
    line says how long each part took. */
static int s_maybe_snapshot(ds_replica_t *self)
{
    if (self->exporter)
        return ds_exporter_done(self->exporter) ? ds_replica_finish_snapshot(self) : 0;
    if (!s_snapshot_due(self))
        return 0;
    int rc = ds_replica_commit_applied(self); /* the export reads what is committed */
    if (rc != 0)
        return rc;
    char err[DS_STORE_ERRMSG_SIZE];
    rc = ds_exporter_start(&self->exporter, self->store, self->snap_dir, err, sizeof err);
    if (rc != 0)
        return s_fail(self, rc, "starting a snapshot export failed: %s", err);
    self->export_started_us = ds_clock_mono_us();
    self->export_mark = self->log_bytes;
    return 0;
}

/*  One ready, synchronously: the log durable before the messages that
    depend on it leave. */
static int s_process_now(ds_replica_t *self, ds_raft_ready_t *rd)
{
    int rc = s_wait_flushes(self);
    if (rc != 0)
        return rc;
    s_send(self, rd, true);
    if ((rc = s_persist(self, rd)) != 0) /* snapshot (LMDB), then log and hard state (WAL) */
        return rc;
    s_send(self, rd, false);           /* only now: what they promise is durable */
    if ((rc = s_apply(self, rd)) != 0) /* the acknowledgements do not wait for it */
        return rc;
    s_notify(self, rd);
    ds_raft_advance(self->raft, rd);
    return 0;
}

/*  A leader's append without entries only tells a follower the new
    commit index; nothing waits for it but the follower's apply. It
    leaves after the clients' answers (ds_replica_process), so that two
    followers waking to apply do not compete for the CPUs with the
    leader's apply and answers. It carries no pointers: a copy keeps. */
static bool s_defers(const ds_replica_t *self, const ds_raft_msg_t *m)
{
    return m->type == DS_RAFT_APPEND && m->n_entries == 0 && self->n_commits < S_MAX_COMMIT_MSGS;
}

static void s_send_commits(ds_replica_t *self)
{
    for (size_t i = 0; i < self->n_commits; i++)
        self->hooks.send(self->hooks.ctx, &self->commits[i]);
    self->n_commits = 0;
}

/*  One leader's ready with its flush in the background. */
static int s_process_later(ds_replica_t *self, ds_raft_ready_t *rd)
{
    for (size_t i = 0; i < rd->n_msgs; i++) {
        if (s_defers(self, &rd->msgs[i]))
            self->commits[self->n_commits++] = rd->msgs[i];
        else
            self->hooks.send(self->hooks.ctx, &rd->msgs[i]);
    }
    int rc = s_persist_later(self, rd);
    if (rc == 0)
        rc = s_apply(self, rd);
    if (rc != 0)
        return rc;
    s_notify(self, rd);
    ds_raft_advance_unsynced(self->raft, rd);
    return 0;
}

int ds_replica_process(ds_replica_t *self)
{
    int rc;
    while ((rc = s_take_synced(self)) == 0 && ds_raft_has_ready(self->raft)) {
        ds_raft_ready_t rd;
        ds_raft_ready(self->raft, &rd);
        rc = s_may_flush_later(self, &rd) ? s_process_later(self, &rd) : s_process_now(self, &rd);
        if (rc != 0)
            return rc;
        s_report_outcomes(self);
        s_send_commits(self);
    }
    if (rc == 0)
        rc = s_flush_when_needed(self);
    return rc != 0 ? rc : s_maybe_snapshot(self);
}
