/*  storage/hardstate.c - Raft hard state in DS_DB_RAFT_META. */
#include "storage/hardstate.h"

#include <assert.h>
#include <string.h>

#define S_KEY  "hardstate"
#define S_SIZE 24u

int ds_hardstate_save_txn(ds_txn_t *txn, const ds_hardstate_t *hs)
{
    assert(txn && hs);
    uint8_t buf[S_SIZE];
    ds_store_put_u64(buf, hs->term);
    ds_store_put_u64(buf + 8, hs->vote);
    ds_store_put_u64(buf + 16, hs->commit);
    return ds_txn_put(txn, DS_DB_RAFT_META, S_KEY, strlen(S_KEY), buf, sizeof buf, 0);
}

int ds_hardstate_load_txn(ds_txn_t *txn, ds_hardstate_t *hs)
{
    assert(txn && hs);
    memset(hs, 0, sizeof *hs);
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, S_KEY, strlen(S_KEY), &v);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.len != S_SIZE)
        return ds_txn_fail(txn, DS_ECORRUPT, "hard state: %zu bytes stored (want %u)", v.len,
                           S_SIZE);
    hs->term = ds_store_get_u64(v.data);
    hs->vote = ds_store_get_u64(v.data + 8);
    hs->commit = ds_store_get_u64(v.data + 16);
    return 0;
}

static int s_save_fn(ds_txn_t *txn, void *ctx)
{
    return ds_hardstate_save_txn(txn, ctx);
}

int ds_hardstate_save(ds_store_t *s, const ds_hardstate_t *hs)
{
    return ds_store_write(s, s_save_fn, (void *)hs);
}

static int s_load_fn(ds_txn_t *txn, void *ctx)
{
    return ds_hardstate_load_txn(txn, ctx);
}

int ds_hardstate_load(ds_store_t *s, ds_hardstate_t *hs)
{
    return ds_store_read(s, s_load_fn, hs);
}
