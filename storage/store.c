/*  storage/store.c - one LMDB environment, write/read callbacks, map growth. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "storage/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/limits.h"

/* Bounds the retry loop of ds_store_write: doubling from 4 KiB to 2^64
   takes fewer steps than this, so hitting it means a bug, not a full map. */
#define S_MAX_ATTEMPTS 64

static const char *const s_db_names[DS_DB_COUNT] = {
    [DS_DB_RAFT_LOG] = "raft_log",
    [DS_DB_RAFT_META] = "raft_meta",
    [DS_DB_SERVICES] = "services",
    [DS_DB_RELEASES] = "releases",
    [DS_DB_DEPLOYMENTS] = "deployments",
    [DS_DB_WORKERS] = "workers",
    [DS_DB_ASSIGNMENTS] = "assignments",
    [DS_DB_HISTORY] = "history",
    [DS_DB_TOKENS] = "tokens",
    [DS_DB_STATE_META] = "state_meta",
    [DS_DB_WK_META] = "wk_meta",
    [DS_DB_WK_SERVICES] = "wk_services",
    [DS_DB_WK_RELEASES] = "wk_releases",
    [DS_DB_SESSIONS] = "sessions",
    [DS_DB_KV] = "kv",
};
_Static_assert(DS_DB_COUNT <= 16, "raise mdb_env_set_maxdbs");

#define S_PAGES_PER_CHANGE 4u /* leaf, branches, free-list: an upper estimate */

struct ds_store {
    MDB_env *env;
    MDB_dbi dbi[DS_DB_COUNT];
    uint32_t dbs;
    size_t map_size;
    size_t max_map_size;
    bool in_txn;    /* a callback is running: transactions do not nest */
    MDB_txn *batch; /* the open batch transaction (ds_store_batch_write), or NULL */
    size_t batch_writes;
    size_t batch_pages;  /* pages its changes may have dirtied (an upper estimate) */
    size_t batch_budget; /* pages it may dirty before it commits */
    size_t psize;        /* LMDB's page size */
    ds_store_commit_hook_fn before_batch_commit;
    void *before_batch_commit_ctx;
    /* Detached reads (another thread, ds_store_read_detached) hold
       map_lock shared; a map resize takes it exclusively (LMDB allows a
       resize only with no transaction active in the process). env_lock
       orders the owner's mdb_env_set_flags with a detached read's begin
       and end, which read the same flags word. */
    pthread_rwlock_t map_lock;
    pthread_mutex_t env_lock;
    char dir[DS_MAX_PATH + 1];
    char errmsg[DS_STORE_ERRMSG_SIZE];
};

struct ds_txn {
    ds_store_t *store;
    MDB_txn *txn;
    bool rdonly;
    bool failed;   /* a storage error happened: never commit */
    bool map_full; /* MDB_MAP_FULL was seen: grow and retry */
    int err;       /* first storage error */
    char *errbuf;  /* a detached read's own message buffer (else the store's) */
    size_t errlen;
};

struct ds_cursor {
    ds_txn_t *txn;
    MDB_cursor *cur;
    ds_db_t db;
};

static void s_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void s_vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
    if (buf && len)
        vsnprintf(buf, len, fmt, ap);
}

static int s_errbuf(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_errbuf(char *buf, size_t len, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfmt(buf, len, fmt, ap);
    va_end(ap);
    return code;
}

int ds_store_fail(ds_store_t *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfmt(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/*  Where a transaction's failure is described. */
static char *s_txn_errbuf(ds_txn_t *txn, size_t *len)
{
    *len = txn->errbuf ? txn->errlen : sizeof txn->store->errmsg;
    return txn->errbuf ? txn->errbuf : txn->store->errmsg;
}

int ds_txn_fail(ds_txn_t *txn, int code, const char *fmt, ...)
{
    size_t len;
    char *buf = s_txn_errbuf(txn, &len);
    va_list ap;
    va_start(ap, fmt);
    s_vfmt(buf, len, fmt, ap);
    va_end(ap);
    if (code == DS_ECORRUPT && !txn->failed) {
        txn->failed = true;
        txn->err = code;
    }
    return code;
}

/* Maps an LMDB or errno code to a DS_E code. */
static int s_map_rc(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return DS_ENOTFOUND;
    case MDB_KEYEXIST:
        return DS_EEXIST;
    case MDB_MAP_FULL:
        return DS_ESTORE_FULL;
    case MDB_TXN_FULL:
    case MDB_DBS_FULL:
    case MDB_READERS_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return DS_ELIMIT;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return DS_ECORRUPT;
    case MDB_BAD_VALSIZE:
    case EINVAL:
        return DS_EINVAL;
    case MDB_BAD_TXN:
    case MDB_BAD_RSLOT:
        return DS_ESTATE;
    case ENOMEM:
        return DS_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:
        return DS_EPERM;
    default:
        return DS_EIO;
    }
}

/* Records an LMDB failure on a transaction. NOTFOUND and KEYEXIST are
   answers, not failures; everything else poisons the transaction. */
static int s_txn_rc(ds_txn_t *txn, int rc, const char *what, const char *where)
{
    int code = s_map_rc(rc);
    if (code == 0 || code == DS_ENOTFOUND || code == DS_EEXIST)
        return code;
    size_t len;
    char *buf = s_txn_errbuf(txn, &len);
    if (rc == MDB_BAD_VALSIZE)
        return s_errbuf(buf, len, code, "%s in %s: key or value size not allowed", what, where);
    if (rc == MDB_MAP_FULL)
        txn->map_full = true;
    if (!txn->failed) {
        txn->failed = true;
        txn->err = code;
    }
    return s_errbuf(buf, len, code, "%s in %s: %s", what, where, mdb_strerror(rc));
}

void ds_store_opts_default(ds_store_opts_t *opts)
{
    assert(opts);
    memset(opts, 0, sizeof *opts);
    opts->map_size = DS_STORE_DEFAULT_MAP_SIZE;
    opts->max_map_size = DS_STORE_DEFAULT_MAX_MAP_SIZE;
    opts->nosync = false;
    opts->dbs = DS_STORE_DBS_COORDINATOR;
}

static int s_prepare_dir(const char *dir, char *errbuf, size_t errlen)
{
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return s_errbuf(errbuf, errlen, errno == EACCES ? DS_EPERM : DS_EIO,
                        "cannot create data directory %s: %s (its parent must exist and be "
                        "writable)",
                        dir, strerror(errno));
    if (stat(dir, &st) != 0)
        return s_errbuf(errbuf, errlen, DS_EIO, "cannot stat data directory %s: %s", dir,
                        strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return s_errbuf(errbuf, errlen, DS_EINVAL, "data directory %s is not a directory", dir);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return s_errbuf(errbuf, errlen, DS_EPERM,
                        "data directory %s is group- or world-writable (mode %03o): run "
                        "chmod 700 %s",
                        dir, (unsigned)(st.st_mode & 0777), dir);
    return 0;
}

static void s_refresh_map_size(ds_store_t *s)
{
    MDB_envinfo info;
    if (mdb_env_info(s->env, &info) == 0)
        s->map_size = info.me_mapsize;
}

int ds_store_open(ds_store_t **out, const char *dir, const ds_store_opts_t *opts, char *errbuf,
                  size_t errlen)
{
    assert(out);
    assert(dir);
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    if (opts) {
        if (opts->map_size)
            o.map_size = opts->map_size;
        if (opts->max_map_size)
            o.max_map_size = opts->max_map_size;
        o.nosync = opts->nosync;
        if (opts->dbs)
            o.dbs = opts->dbs;
    }
    *out = NULL;
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (o.max_map_size < o.map_size)
        return s_errbuf(errbuf, errlen, DS_EINVAL,
                        "max_map_size %zu is smaller than map_size %zu: raise max_map_size",
                        o.max_map_size, o.map_size);
    if (o.dbs >> DS_DB_COUNT)
        return s_errbuf(errbuf, errlen, DS_EINVAL, "unknown database in mask 0x%x", o.dbs);
    if (strlen(dir) == 0 || strlen(dir) > DS_MAX_PATH)
        return s_errbuf(errbuf, errlen, DS_EINVAL,
                        "data directory path is empty or longer "
                        "than %u bytes",
                        DS_MAX_PATH);

    int rc = s_prepare_dir(dir, errbuf, errlen);
    if (rc)
        return rc;

    ds_store_t *s = calloc(1, sizeof *s);
    if (!s)
        return s_errbuf(errbuf, errlen, DS_ENOMEM, "out of memory opening store %s", dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->dbs = o.dbs;
    s->max_map_size = o.max_map_size;
    pthread_rwlockattr_t attr; /* a waiting resize goes before new readers */
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&s->env_lock, NULL);

    int mrc = mdb_env_create(&s->env);
    if (mrc) {
        rc = s_errbuf(errbuf, errlen, s_map_rc(mrc), "mdb_env_create: %s", mdb_strerror(mrc));
        goto err_free;
    }
    mrc = mdb_env_set_maxdbs(s->env, 16);
    if (!mrc)
        mrc = mdb_env_set_mapsize(s->env, o.map_size);
    if (mrc) {
        rc = s_errbuf(errbuf, errlen, s_map_rc(mrc), "configuring store %s: %s", dir,
                      mdb_strerror(mrc));
        goto err_env;
    }
    unsigned flags = o.nosync ? MDB_NOSYNC : 0;
    mrc = mdb_env_open(s->env, dir, flags, 0600);
    if (mrc) {
        rc = s_map_rc(mrc);
        rc = s_errbuf(errbuf, errlen, rc, "cannot open store in %s: %s%s", dir, mdb_strerror(mrc),
                      rc == DS_ECORRUPT ? " (data.mdb is not a valid store: restore it from a "
                                          "peer or a copy)"
                                        : "");
        goto err_env;
    }
    /* A reader slot of a killed process would pin old pages forever. */
    int dead = 0;
    (void)mdb_reader_check(s->env, &dead);
    s_refresh_map_size(s);
    MDB_stat est;
    s->psize = mdb_env_stat(s->env, &est) == 0 && est.ms_psize ? est.ms_psize : 4096;

    MDB_txn *txn = NULL;
    mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc) {
        rc = s_errbuf(errbuf, errlen, s_map_rc(mrc), "cannot begin transaction in %s: %s", dir,
                      mdb_strerror(mrc));
        goto err_env;
    }
    for (int db = 0; db < DS_DB_COUNT; db++) {
        if (!(s->dbs & DS_STORE_DB_BIT(db)))
            continue;
        mrc = mdb_dbi_open(txn, s_db_names[db], MDB_CREATE, &s->dbi[db]);
        if (mrc) {
            mdb_txn_abort(txn);
            rc = s_errbuf(errbuf, errlen, s_map_rc(mrc), "cannot open database %s in %s: %s",
                          s_db_names[db], dir, mdb_strerror(mrc));
            goto err_env;
        }
    }
    mrc = mdb_txn_commit(txn);
    if (mrc) {
        rc = s_errbuf(errbuf, errlen, s_map_rc(mrc), "cannot create databases in %s: %s", dir,
                      mdb_strerror(mrc));
        goto err_env;
    }
    *out = s;
    return 0;

err_env:
    mdb_env_close(s->env);
err_free:
    pthread_rwlock_destroy(&s->map_lock);
    pthread_mutex_destroy(&s->env_lock);
    free(s);
    return rc;
}

void ds_store_destroy(ds_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ds_store_t *s = *self_p;
    assert(!s->in_txn);
    if (s->batch && ds_store_batch_commit(s) != 0) {
        /* nothing more to do here: what the batch held is redone by its
           owner after a restart (see ds_store_batch_write) */
    }
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->map_lock);
    pthread_mutex_destroy(&s->env_lock);
    free(s);
    *self_p = NULL;
}

/* Resizes the map once no detached read is running (they hold map_lock). */
static int s_set_mapsize(ds_store_t *s, size_t size)
{
    pthread_rwlock_wrlock(&s->map_lock);
    int mrc = mdb_env_set_mapsize(s->env, size);
    pthread_rwlock_unlock(&s->map_lock);
    return mrc;
}

/* Doubles the map, capped at the maximum. Only called between
   transactions (s->in_txn is false), as mdb_env_set_mapsize requires. */
static int s_grow(ds_store_t *s)
{
    assert(!s->in_txn);
    if (s->map_size >= s->max_map_size)
        return ds_store_fail(s, DS_ESTORE_FULL,
                             "store %s is full: map size %zu bytes is at max_map_size %zu; raise "
                             "max_map_size or compact the log",
                             s->dir, s->map_size, s->max_map_size);
    size_t next = s->map_size > s->max_map_size / 2 ? s->max_map_size : s->map_size * 2;
    int mrc = s_set_mapsize(s, next);
    if (mrc)
        return ds_store_fail(s, s_map_rc(mrc), "cannot grow map of %s to %zu bytes: %s", s->dir,
                             next, mdb_strerror(mrc));
    s_refresh_map_size(s);
    return 0;
}

/* Begins a top-level transaction, adopting a map another process grew. */
static int s_begin(ds_store_t *s, unsigned flags, MDB_txn **out)
{
    int mrc = mdb_txn_begin(s->env, NULL, flags, out);
    if (mrc == MDB_MAP_RESIZED) {
        mrc = s_set_mapsize(s, 0);
        if (!mrc) {
            s_refresh_map_size(s);
            mrc = mdb_txn_begin(s->env, NULL, flags, out);
        }
    }
    if (mrc)
        return ds_store_fail(s, s_map_rc(mrc), "cannot begin transaction in %s: %s", s->dir,
                             mdb_strerror(mrc));
    return 0;
}

static void s_set_nometasync(ds_store_t *s, int on)
{
    pthread_mutex_lock(&s->env_lock);
    mdb_env_set_flags(s->env, MDB_NOMETASYNC, on);
    pthread_mutex_unlock(&s->env_lock);
}

/*  Commits with MDB_NOMETASYNC set for this commit only when `lazy`:
    data pages are flushed, the meta page is not, so a system crash may
    undo this transaction but cannot corrupt the store. */
static int s_commit(ds_store_t *s, MDB_txn *mtxn, bool lazy)
{
    if (lazy)
        s_set_nometasync(s, 1);
    int mrc = mdb_txn_commit(mtxn);
    if (lazy)
        s_set_nometasync(s, 0);
    return mrc;
}

static int s_write(ds_store_t *s, ds_store_write_fn fn, void *ctx, bool lazy)
{
    assert(s && fn);
    assert(!s->in_txn && "storage transactions do not nest");
    s->errmsg[0] = '\0';
    int brc = ds_store_batch_commit(s); /* what it applied comes first */
    if (brc)
        return brc;
    for (int attempt = 0; attempt < S_MAX_ATTEMPTS; attempt++) {
        MDB_txn *mtxn = NULL;
        int rc = s_begin(s, 0, &mtxn);
        if (rc)
            return rc;
        ds_txn_t txn = {.store = s, .txn = mtxn};
        s->in_txn = true;
        int frc = fn(&txn, ctx);
        if (txn.map_full) {
            mdb_txn_abort(mtxn);
            s->in_txn = false;
            rc = s_grow(s);
            if (rc)
                return rc;
            continue;
        }
        if (frc || txn.failed) {
            mdb_txn_abort(mtxn);
            s->in_txn = false;
            return frc ? frc : txn.err;
        }
        int mrc = s_commit(s, mtxn, lazy);
        s->in_txn = false;
        if (mrc == MDB_MAP_FULL) {
            rc = s_grow(s);
            if (rc)
                return rc;
            continue;
        }
        if (mrc)
            return ds_store_fail(s, s_map_rc(mrc), "commit in %s failed: %s", s->dir,
                                 mdb_strerror(mrc));
        return 0;
    }
    return ds_store_fail(s, DS_ESTORE_FULL, "store %s: gave up after %d attempts to grow the map",
                         s->dir, S_MAX_ATTEMPTS);
}

int ds_store_write(ds_store_t *s, ds_store_write_fn fn, void *ctx)
{
    return s_write(s, fn, ctx, false);
}

int ds_store_write_lazy(ds_store_t *s, ds_store_write_fn fn, void *ctx)
{
    return s_write(s, fn, ctx, true);
}

/* ---- the batch transaction ------------------------------------------- */

/*  Commits the batch; *full tells that the map had no room for the
    commit itself (the batch is then lost: LMDB discards it). */
static int s_batch_commit(ds_store_t *s, bool *full)
{
    MDB_txn *batch = s->batch;
    s->batch = NULL;
    s->batch_writes = 0;
    *full = false;
    if (s->before_batch_commit) {
        char why[DS_STORE_ERRMSG_SIZE] = "";
        int hrc = s->before_batch_commit(s->before_batch_commit_ctx, why, sizeof why);
        if (hrc) {
            mdb_txn_abort(batch);
            return ds_store_fail(s, hrc, "the batch in %s was not committed: %s", s->dir, why);
        }
    }
    int mrc = s_commit(s, batch, true);
    *full = mrc == MDB_MAP_FULL;
    if (mrc)
        return ds_store_fail(s, s_map_rc(mrc), "commit of the batch in %s failed: %s", s->dir,
                             mdb_strerror(mrc));
    return 0;
}

int ds_store_batch_commit(ds_store_t *s)
{
    assert(!s->in_txn);
    bool full = false;
    return s->batch ? s_batch_commit(s, &full) : 0;
}

void ds_store_set_batch_hook(ds_store_t *s, ds_store_commit_hook_fn fn, void *ctx)
{
    s->before_batch_commit = fn;
    s->before_batch_commit_ctx = ctx;
}

size_t ds_store_batch_writes(const ds_store_t *s)
{
    return s->batch_writes;
}

/*  Opens the batch with room to spare: the map is grown first until at
    most half of it is in use, and the batch may dirty half of what is
    free. A batch that filled the map could not commit (the commit needs
    pages of its own), and LMDB discards a transaction whose commit
    fails. */
static int s_batch_begin(ds_store_t *s)
{
    MDB_envinfo info;
    for (int i = 0; i < S_MAX_ATTEMPTS; i++) {
        if (mdb_env_info(s->env, &info) != 0)
            return ds_store_fail(s, DS_EIO, "cannot read the map size of %s", s->dir);
        size_t used = (info.me_last_pgno + 1) * s->psize;
        if (used <= info.me_mapsize / 2 || s->map_size >= s->max_map_size)
            break;
        int rc = s_grow(s);
        if (rc)
            return rc;
    }
    size_t used_pages = info.me_last_pgno + 1, map_pages = s->map_size / s->psize;
    s->batch_budget = map_pages > used_pages ? (map_pages - used_pages) / 2 : 0;
    s->batch_pages = 0;
    return s_begin(s, 0, &s->batch);
}

typedef enum {
    S_BATCH_DONE,  /* fn's changes are in the batch (or committed with it) */
    S_BATCH_AGAIN, /* fn's changes were dropped to keep the batch small: run it again */
    S_BATCH_GROW,  /* fn found the map full: grow the map, then run it again */
} s_batch_step_t;

/*  fn's changes in the child fit the budget, or fn is alone in the
    batch: keep them. Otherwise drop them and commit what came before,
    so that no batch outgrows the room its commit needs. */
static int s_batch_keep(ds_store_t *s, MDB_txn *child, size_t writes_before, s_batch_step_t *step)
{
    bool full = false;
    if (s->batch_pages > s->batch_budget && writes_before > 0) {
        mdb_txn_abort(child);
        *step = S_BATCH_AGAIN;
        return s_batch_commit(s, &full);
    }
    int mrc = mdb_txn_commit(child);
    if (mrc == MDB_MAP_FULL) { /* as if fn had found the map full */
        *step = S_BATCH_GROW;
        return writes_before > 0 ? s_batch_commit(s, &full) : 0;
    }
    if (mrc)
        return ds_store_fail(s, s_map_rc(mrc), "commit in %s failed: %s", s->dir,
                             mdb_strerror(mrc));
    s->batch_writes++;
    *step = S_BATCH_DONE;
    if (s->batch_pages <= s->batch_budget)
        return 0;
    int rc = s_batch_commit(s, &full); /* fn alone outgrew the budget */
    if (full)
        *step = S_BATCH_GROW; /* the batch held fn alone: nothing else is lost */
    return full ? 0 : rc;
}

/*  Runs fn once in a child of the batch transaction (begun when none is
    open). */
static int s_batch_once(ds_store_t *s, ds_store_write_fn fn, void *ctx, s_batch_step_t *step)
{
    *step = S_BATCH_DONE;
    int rc = s->batch ? 0 : s_batch_begin(s);
    if (rc)
        return rc;
    size_t writes_before = s->batch_writes;
    MDB_txn *child = NULL;
    int mrc = mdb_txn_begin(s->env, s->batch, 0, &child);
    if (mrc)
        return ds_store_fail(s, s_map_rc(mrc), "cannot begin a transaction in %s: %s", s->dir,
                             mdb_strerror(mrc));
    ds_txn_t txn = {.store = s, .txn = child};
    s->in_txn = true;
    int frc = fn(&txn, ctx);
    s->in_txn = false;
    if (txn.map_full) {
        mdb_txn_abort(child); /* the batch keeps what came before */
        *step = S_BATCH_GROW;
        bool full = false;
        return writes_before > 0 ? s_batch_commit(s, &full) : 0;
    }
    if (frc || txn.failed) {
        mdb_txn_abort(child);
        return frc ? frc : txn.err;
    }
    return s_batch_keep(s, child, writes_before, step);
}

int ds_store_batch_write(ds_store_t *s, ds_store_write_fn fn, void *ctx)
{
    assert(s && fn);
    assert(!s->in_txn && "storage transactions do not nest");
    s->errmsg[0] = '\0';
    for (int attempt = 0; attempt < S_MAX_ATTEMPTS; attempt++) {
        s_batch_step_t step;
        int rc = s_batch_once(s, fn, ctx, &step);
        if (rc || step == S_BATCH_DONE)
            return rc;
        if (s->batch) { /* an empty batch that fn alone overfilled */
            mdb_txn_abort(s->batch);
            s->batch = NULL;
            s->batch_writes = 0;
        }
        rc = step == S_BATCH_GROW ? s_grow(s) : 0; /* s_batch_begin makes room too */
        if (rc)
            return rc;
    }
    return ds_store_fail(s, DS_ESTORE_FULL, "store %s: gave up after %d attempts to grow the map",
                         s->dir, S_MAX_ATTEMPTS);
}

int ds_store_read(ds_store_t *s, ds_store_read_fn fn, void *ctx)
{
    assert(s && fn);
    assert(!s->in_txn && "storage transactions do not nest");
    s->errmsg[0] = '\0';
    if (s->batch) { /* this thread's open batch: reads must see it */
        ds_txn_t txn = {.store = s, .txn = s->batch, .rdonly = true};
        s->in_txn = true;
        int rc = fn(&txn, ctx);
        s->in_txn = false;
        return rc;
    }
    MDB_txn *mtxn = NULL;
    int rc = s_begin(s, MDB_RDONLY, &mtxn);
    if (rc)
        return rc;
    ds_txn_t txn = {.store = s, .txn = mtxn, .rdonly = true};
    s->in_txn = true;
    rc = fn(&txn, ctx);
    mdb_txn_abort(mtxn);
    s->in_txn = false;
    return rc;
}

int ds_store_read_detached(ds_store_t *s, ds_store_read_fn fn, void *ctx, char *err, size_t errlen)
{
    assert(s && fn && err && errlen);
    err[0] = '\0';
    pthread_rwlock_rdlock(&s->map_lock);
    MDB_txn *mtxn = NULL;
    pthread_mutex_lock(&s->env_lock);
    int mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &mtxn);
    pthread_mutex_unlock(&s->env_lock);
    int rc;
    if (mrc) {
        rc = s_errbuf(err, errlen, s_map_rc(mrc), "cannot begin a read transaction in %s: %s",
                      s->dir, mdb_strerror(mrc));
    } else {
        ds_txn_t txn = {.store = s, .txn = mtxn, .rdonly = true, .errbuf = err, .errlen = errlen};
        rc = fn(&txn, ctx);
        pthread_mutex_lock(&s->env_lock);
        mdb_txn_abort(mtxn);
        pthread_mutex_unlock(&s->env_lock);
    }
    pthread_rwlock_unlock(&s->map_lock);
    return rc;
}

int ds_store_copy_to(ds_store_t *s, const char *path)
{
    assert(s && path);
    assert(!s->in_txn);
    int rc = ds_store_batch_commit(s);
    if (rc)
        return rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return ds_store_fail(s, errno == EEXIST ? DS_EEXIST : DS_EIO,
                             "cannot create snapshot copy %s: %s", path, strerror(errno));
    int mrc = mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT);
    if (mrc) {
        rc = ds_store_fail(s, DS_EIO, "copying store %s to %s failed: %s", s->dir, path,
                           mdb_strerror(mrc));
        goto err_unlink;
    }
    if (fsync(fd) != 0) {
        rc = ds_store_fail(s, DS_EIO, "fsync of %s failed: %s", path, strerror(errno));
        goto err_unlink;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = ds_store_fail(s, DS_EIO, "close of %s failed: %s", path, strerror(errno));
        goto err_unlink;
    }
    return 0;

err_unlink:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return rc;
}

const char *ds_store_errmsg(const ds_store_t *s)
{
    assert(s);
    return s->errmsg;
}

size_t ds_store_map_size(const ds_store_t *s)
{
    assert(s);
    return s->map_size;
}

const char *ds_store_dir(const ds_store_t *s)
{
    assert(s);
    return s->dir;
}

ds_store_t *ds_txn_store(ds_txn_t *txn)
{
    assert(txn);
    return txn->store;
}

bool ds_txn_readonly(const ds_txn_t *txn)
{
    assert(txn);
    return txn->rdonly;
}

bool ds_txn_failed(const ds_txn_t *txn)
{
    assert(txn);
    return txn->failed;
}

static MDB_dbi s_dbi(const ds_txn_t *txn, ds_db_t db)
{
    assert((unsigned)db < DS_DB_COUNT);
    assert((txn->store->dbs & DS_STORE_DB_BIT(db)) && "database not opened by this store");
    return txn->store->dbi[db];
}

static int s_check_key(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen)
{
    assert(key || klen == 0);
    if (klen == 0 || klen > DS_STORE_MAX_KEY)
        return ds_store_fail(txn->store, DS_EINVAL, "key of %zu bytes for %s (allowed: 1..%u)",
                             klen, s_db_names[db], DS_STORE_MAX_KEY);
    return 0;
}

static int s_check_write(ds_txn_t *txn, ds_db_t db)
{
    if (txn->rdonly)
        return ds_store_fail(txn->store, DS_EINVAL, "write to %s in a read-only transaction",
                             s_db_names[db]);
    if (txn->failed)
        return txn->err;
    return 0;
}

int ds_txn_get(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen, ds_val_t *out)
{
    assert(txn && out);
    MDB_dbi dbi = s_dbi(txn, db);
    int rc = s_check_key(txn, db, key, klen);
    if (rc)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v;
    rc = s_txn_rc(txn, mdb_get(txn->txn, dbi, &k, &v), "get", s_db_names[db]);
    if (rc)
        return rc;
    out->data = v.mv_data;
    out->len = v.mv_size;
    return 0;
}

/*  A change in the batch may dirty a leaf and its branch pages, and the
    pages of a big value: counted generously, so the batch commits while
    the map still has room for the commit's own pages. */
static void s_batch_count(ds_txn_t *txn, size_t bytes)
{
    ds_store_t *s = txn->store;
    if (s->batch)
        s->batch_pages += S_PAGES_PER_CHANGE + bytes / s->psize;
}

int ds_txn_put(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen, const void *val,
               size_t vlen, unsigned flags)
{
    assert(txn);
    assert(val || vlen == 0);
    MDB_dbi dbi = s_dbi(txn, db);
    int rc = s_check_write(txn, db);
    if (!rc)
        rc = s_check_key(txn, db, key, klen);
    if (rc)
        return rc;
    unsigned mflags = 0;
    if (flags & DS_PUT_NOOVERWRITE)
        mflags |= MDB_NOOVERWRITE;
    if (flags & DS_PUT_APPEND)
        mflags |= MDB_APPEND;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    MDB_val v = {.mv_size = vlen, .mv_data = (void *)val};
    s_batch_count(txn, klen + vlen);
    return s_txn_rc(txn, mdb_put(txn->txn, dbi, &k, &v, mflags), "put", s_db_names[db]);
}

int ds_txn_del(ds_txn_t *txn, ds_db_t db, const void *key, size_t klen)
{
    assert(txn);
    MDB_dbi dbi = s_dbi(txn, db);
    int rc = s_check_write(txn, db);
    if (!rc)
        rc = s_check_key(txn, db, key, klen);
    if (rc)
        return rc;
    MDB_val k = {.mv_size = klen, .mv_data = (void *)key};
    s_batch_count(txn, 0);
    return s_txn_rc(txn, mdb_del(txn->txn, dbi, &k, NULL), "delete", s_db_names[db]);
}

int ds_txn_clear(ds_txn_t *txn, ds_db_t db)
{
    assert(txn);
    MDB_dbi dbi = s_dbi(txn, db);
    int rc = s_check_write(txn, db);
    if (rc)
        return rc;
    return s_txn_rc(txn, mdb_drop(txn->txn, dbi, 0), "clear", s_db_names[db]);
}

int ds_cursor_open(ds_txn_t *txn, ds_db_t db, ds_cursor_t **out)
{
    assert(txn && out);
    *out = NULL;
    MDB_dbi dbi = s_dbi(txn, db);
    ds_cursor_t *c = calloc(1, sizeof *c);
    if (!c)
        return ds_store_fail(txn->store, DS_ENOMEM, "out of memory opening a cursor on %s",
                             s_db_names[db]);
    int rc = s_txn_rc(txn, mdb_cursor_open(txn->txn, dbi, &c->cur), "cursor open", s_db_names[db]);
    if (rc) {
        free(c);
        return rc;
    }
    c->txn = txn;
    c->db = db;
    *out = c;
    return 0;
}

void ds_cursor_destroy(ds_cursor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mdb_cursor_close((*self_p)->cur);
    free(*self_p);
    *self_p = NULL;
}

int ds_cursor_get(ds_cursor_t *c, ds_cursor_op_t op, const void *key, size_t klen, ds_val_t *k,
                  ds_val_t *v)
{
    assert(c);
    MDB_val mk = {0, NULL}, mv = {0, NULL};
    MDB_cursor_op mop;
    switch (op) {
    case DS_CURSOR_FIRST:
        mop = MDB_FIRST;
        break;
    case DS_CURSOR_LAST:
        mop = MDB_LAST;
        break;
    case DS_CURSOR_NEXT:
        mop = MDB_NEXT;
        break;
    case DS_CURSOR_PREV:
        mop = MDB_PREV;
        break;
    case DS_CURSOR_SEEK: {
        int rc = s_check_key(c->txn, c->db, key, klen);
        if (rc)
            return rc;
        mop = MDB_SET_RANGE;
        mk.mv_size = klen;
        mk.mv_data = (void *)key;
        break;
    }
    default:
        assert(!"bad cursor op");
        return DS_EINVAL;
    }
    int rc =
        s_txn_rc(c->txn, mdb_cursor_get(c->cur, &mk, &mv, mop), "cursor get", s_db_names[c->db]);
    if (rc)
        return rc;
    if (k) {
        k->data = mk.mv_data;
        k->len = mk.mv_size;
    }
    if (v) {
        v->data = mv.mv_data;
        v->len = mv.mv_size;
    }
    return 0;
}

int ds_cursor_del(ds_cursor_t *c)
{
    assert(c);
    int rc = s_check_write(c->txn, c->db);
    if (rc)
        return rc;
    s_batch_count(c->txn, 0);
    return s_txn_rc(c->txn, mdb_cursor_del(c->cur, 0), "cursor delete", s_db_names[c->db]);
}

int ds_txn_nested(ds_txn_t *txn, ds_store_write_fn fn, void *ctx)
{
    assert(txn && fn);
    assert(!txn->rdonly && "nested transactions need a write transaction");
    if (txn->failed)
        return txn->err;
    MDB_txn *child = NULL;
    int mrc = mdb_txn_begin(txn->store->env, txn->txn, 0, &child);
    if (mrc)
        return s_txn_rc(txn, mrc, "nested begin", "a nested transaction");
    ds_txn_t sub = {.store = txn->store, .txn = child};
    int frc = fn(&sub, ctx);
    if (sub.failed) {
        /* A storage failure inside is a failure of the parent too. */
        mdb_txn_abort(child);
        txn->failed = true;
        txn->map_full = txn->map_full || sub.map_full;
        txn->err = sub.err;
        return sub.err;
    }
    if (frc) {
        mdb_txn_abort(child);
        return frc;
    }
    mrc = mdb_txn_commit(child);
    if (mrc)
        return s_txn_rc(txn, mrc, "nested commit", "a nested transaction");
    return 0;
}

void ds_store_put_u64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t ds_store_get_u64(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}
