/*  storage/snapmeta.c - snapshot metadata in DS_DB_RAFT_META. */
#include "storage/snapmeta.h"

#include <assert.h>
#include <string.h>

#define S_KEY  "snapmeta"
#define S_HEAD 20u /* index, term, n_voters */

int ds_snapmeta_save_txn(ds_txn_t *txn, const ds_snapshot_meta_t *meta)
{
    assert(txn && meta);
    if (meta->n_voters > DS_MAX_MEMBERS)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "snapshot meta: %u voters (max %u)",
                             meta->n_voters, DS_MAX_MEMBERS);
    uint8_t buf[S_HEAD + 8 * DS_MAX_MEMBERS];
    ds_store_put_u64(buf, meta->index);
    ds_store_put_u64(buf + 8, meta->term);
    buf[16] = (uint8_t)(meta->n_voters >> 24);
    buf[17] = (uint8_t)(meta->n_voters >> 16);
    buf[18] = (uint8_t)(meta->n_voters >> 8);
    buf[19] = (uint8_t)meta->n_voters;
    for (uint32_t i = 0; i < meta->n_voters; i++)
        ds_store_put_u64(buf + S_HEAD + 8 * i, meta->voters[i]);
    return ds_txn_put(txn, DS_DB_RAFT_META, S_KEY, strlen(S_KEY), buf,
                      S_HEAD + 8 * (size_t)meta->n_voters, 0);
}

int ds_snapmeta_load_txn(ds_txn_t *txn, ds_snapshot_meta_t *meta)
{
    assert(txn && meta);
    memset(meta, 0, sizeof *meta);
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, S_KEY, strlen(S_KEY), &v);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.len < S_HEAD)
        return ds_txn_fail(txn, DS_ECORRUPT, "snapshot meta: %zu bytes stored (at least %u)", v.len,
                           S_HEAD);
    uint32_t n = (uint32_t)v.data[16] << 24 | (uint32_t)v.data[17] << 16 |
                 (uint32_t)v.data[18] << 8 | v.data[19];
    if (n > DS_MAX_MEMBERS || v.len != S_HEAD + 8 * (size_t)n)
        return ds_txn_fail(txn, DS_ECORRUPT,
                           "snapshot meta: %u voters in %zu bytes (max %u voters)", n, v.len,
                           DS_MAX_MEMBERS);
    meta->index = ds_store_get_u64(v.data);
    meta->term = ds_store_get_u64(v.data + 8);
    meta->n_voters = n;
    for (uint32_t i = 0; i < n; i++)
        meta->voters[i] = ds_store_get_u64(v.data + S_HEAD + 8 * i);
    return 0;
}

static int s_save_fn(ds_txn_t *txn, void *ctx)
{
    return ds_snapmeta_save_txn(txn, ctx);
}

int ds_snapmeta_save(ds_store_t *s, const ds_snapshot_meta_t *meta)
{
    return ds_store_write(s, s_save_fn, (void *)meta);
}

static int s_load_fn(ds_txn_t *txn, void *ctx)
{
    return ds_snapmeta_load_txn(txn, ctx);
}

int ds_snapmeta_load(ds_store_t *s, ds_snapshot_meta_t *meta)
{
    return ds_store_read(s, s_load_fn, meta);
}
