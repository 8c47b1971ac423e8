/*  storage/raftlog.c - the Raft log in DS_DB_RAFT_LOG. */
#include "storage/raftlog.h"

#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_HDR            9u /* term u64 + type u8 */
#define S_COMPACTED_KEY  "compacted"
#define S_COMPACTED_SIZE 16u

static bool s_type_ok(uint8_t type)
{
    return type == DS_ENTRY_NORMAL || type == DS_ENTRY_NOOP || type == DS_ENTRY_CONF_CHANGE;
}

/* Decodes one stored entry; data points into `v`. */
static int s_decode(ds_txn_t *txn, const ds_val_t *k, const ds_val_t *v, ds_raft_entry_t *e)
{
    if (k->len != 8)
        return ds_txn_fail(txn, DS_ECORRUPT, "raft log: key of %zu bytes (want 8)", k->len);
    e->index = ds_store_get_u64(k->data);
    if (v->len < S_HDR)
        return ds_txn_fail(txn, DS_ECORRUPT,
                           "raft log entry %" PRIu64 ": value of %zu bytes is shorter than its "
                           "%u-byte header",
                           e->index, v->len, S_HDR);
    if (v->len - S_HDR > DS_MAX_ENTRY_SIZE)
        return ds_txn_fail(txn, DS_ECORRUPT,
                           "raft log entry %" PRIu64 ": %zu data bytes exceed DS_MAX_ENTRY_SIZE",
                           e->index, v->len - S_HDR);
    e->term = ds_store_get_u64(v->data);
    e->type = v->data[8];
    if (!s_type_ok(e->type))
        return ds_txn_fail(txn, DS_ECORRUPT, "raft log entry %" PRIu64 ": unknown type %u",
                           e->index, e->type);
    e->data.data = (uint8_t *)(v->data + S_HDR);
    e->data.len = (uint32_t)(v->len - S_HDR);
    return 0;
}

static int s_compacted(ds_txn_t *txn, uint64_t *index, uint64_t *term)
{
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, S_COMPACTED_KEY, strlen(S_COMPACTED_KEY), &v);
    if (rc == DS_ENOTFOUND) {
        *index = 0;
        *term = 0;
        return 0;
    }
    if (rc)
        return rc;
    if (v.len != S_COMPACTED_SIZE)
        return ds_txn_fail(txn, DS_ECORRUPT, "raft log compaction point: %zu bytes (want %u)",
                           v.len, S_COMPACTED_SIZE);
    *index = ds_store_get_u64(v.data);
    *term = ds_store_get_u64(v.data + 8);
    return 0;
}

static int s_set_compacted(ds_txn_t *txn, uint64_t index, uint64_t term)
{
    uint8_t buf[S_COMPACTED_SIZE];
    ds_store_put_u64(buf, index);
    ds_store_put_u64(buf + 8, term);
    return ds_txn_put(txn, DS_DB_RAFT_META, S_COMPACTED_KEY, strlen(S_COMPACTED_KEY), buf,
                      sizeof buf, 0);
}

/* The last stored entry, or ENOTFOUND if the log is empty. */
static int s_last_entry(ds_txn_t *txn, ds_raft_entry_t *e)
{
    ds_cursor_t *c = NULL;
    int rc = ds_cursor_open(txn, DS_DB_RAFT_LOG, &c);
    if (rc)
        return rc;
    ds_val_t k, v;
    rc = ds_cursor_get(c, DS_CURSOR_LAST, NULL, 0, &k, &v);
    if (!rc)
        rc = s_decode(txn, &k, &v, e);
    ds_cursor_destroy(&c);
    return rc;
}

int ds_raftlog_last_index_txn(ds_txn_t *txn, uint64_t *index)
{
    assert(txn && index);
    ds_raft_entry_t e;
    int rc = s_last_entry(txn, &e);
    if (rc == 0) {
        *index = e.index;
        return 0;
    }
    if (rc != DS_ENOTFOUND)
        return rc;
    uint64_t term;
    return s_compacted(txn, index, &term);
}

int ds_raftlog_first_index_txn(ds_txn_t *txn, uint64_t *index)
{
    assert(txn && index);
    uint64_t ci, ct;
    int rc = s_compacted(txn, &ci, &ct);
    if (rc)
        return rc;
    *index = ci + 1;
    return 0;
}

int ds_raftlog_term_txn(ds_txn_t *txn, uint64_t index, uint64_t *term)
{
    assert(txn && term);
    uint64_t ci, ct;
    int rc = s_compacted(txn, &ci, &ct);
    if (rc)
        return rc;
    if (index == ci) {
        *term = ct;
        return 0;
    }
    if (index < ci)
        return ds_store_fail(
            ds_txn_store(txn), DS_ENOTFOUND,
            "raft log: index %" PRIu64 " is compacted (compacted up to %" PRIu64 ")", index, ci);
    uint8_t key[8];
    ds_store_put_u64(key, index);
    ds_val_t v;
    rc = ds_txn_get(txn, DS_DB_RAFT_LOG, key, sizeof key, &v);
    if (rc == DS_ENOTFOUND)
        return ds_store_fail(ds_txn_store(txn), DS_ENOTFOUND,
                             "raft log: no entry at index %" PRIu64, index);
    if (rc)
        return rc;
    ds_raft_entry_t e;
    ds_val_t k = {key, sizeof key};
    rc = s_decode(txn, &k, &v, &e);
    if (rc)
        return rc;
    *term = e.term;
    return 0;
}

int ds_raftlog_append_txn(ds_txn_t *txn, const ds_raft_entry_t *entries, size_t n)
{
    assert(txn);
    ds_store_t *s = ds_txn_store(txn);
    if (n == 0 || !entries)
        return ds_store_fail(s, DS_EINVAL, "raft log append: no entries");
    uint64_t last, last_term;
    int rc = ds_raftlog_last_index_txn(txn, &last);
    if (!rc)
        rc = ds_raftlog_term_txn(txn, last, &last_term);
    if (rc)
        return rc;
    if (entries[0].index != last + 1)
        return ds_store_fail(s, DS_ESTATE,
                             "raft log append: first index %" PRIu64
                             " does not follow last index %" PRIu64 " (truncate first)",
                             entries[0].index, last);
    /* Validate everything before writing anything. */
    uint64_t prev_term = last_term;
    for (size_t i = 0; i < n; i++) {
        const ds_raft_entry_t *e = &entries[i];
        if (e->index != entries[0].index + i)
            return ds_store_fail(s, DS_EINVAL,
                                 "raft log append: entry %zu has index %" PRIu64 ", want %" PRIu64,
                                 i, e->index, entries[0].index + i);
        if (e->term < prev_term)
            return ds_store_fail(s, DS_EINVAL,
                                 "raft log append: entry %" PRIu64 " has term %" PRIu64
                                 " below the previous term %" PRIu64,
                                 e->index, e->term, prev_term);
        if (!s_type_ok(e->type))
            return ds_store_fail(s, DS_EINVAL, "raft log append: entry %" PRIu64 " type %u",
                                 e->index, e->type);
        if (e->data.len > DS_MAX_ENTRY_SIZE)
            return ds_store_fail(s, DS_ETOOBIG,
                                 "raft log append: entry %" PRIu64 " has %u data bytes (max %u)",
                                 e->index, e->data.len, DS_MAX_ENTRY_SIZE);
        if (e->data.len && !e->data.data)
            return ds_store_fail(s, DS_EINVAL, "raft log append: entry %" PRIu64 " data is NULL",
                                 e->index);
        prev_term = e->term;
    }
    uint8_t *val = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        const ds_raft_entry_t *e = &entries[i];
        size_t need = S_HDR + e->data.len;
        if (need > cap) {
            uint8_t *nv = realloc(val, need);
            if (!nv) {
                rc = ds_store_fail(s, DS_ENOMEM, "raft log append: out of memory");
                goto exit;
            }
            val = nv;
            cap = need;
        }
        ds_store_put_u64(val, e->term);
        val[8] = e->type;
        if (e->data.len)
            memcpy(val + S_HDR, e->data.data, e->data.len);
        uint8_t key[8];
        ds_store_put_u64(key, e->index);
        rc = ds_txn_put(txn, DS_DB_RAFT_LOG, key, sizeof key, val, need, DS_PUT_APPEND);
        if (rc)
            goto exit;
    }
exit:
    free(val);
    return rc;
}

int ds_raftlog_entries_txn(ds_txn_t *txn, uint64_t lo, uint64_t hi, size_t max_bytes,
                           ds_raftlog_entries_t *out)
{
    assert(txn && out);
    memset(out, 0, sizeof *out);
    ds_store_t *s = ds_txn_store(txn);
    uint64_t ci, ct, last;
    int rc = s_compacted(txn, &ci, &ct);
    if (!rc)
        rc = ds_raftlog_last_index_txn(txn, &last);
    if (rc)
        return rc;
    if (lo > hi || hi > last + 1)
        return ds_store_fail(s, DS_EINVAL,
                             "raft log: range [%" PRIu64 ", %" PRIu64
                             ") is invalid (last index %" PRIu64 ")",
                             lo, hi, last);
    if (lo <= ci)
        return ds_store_fail(
            s, DS_ENOTFOUND,
            "raft log: index %" PRIu64 " is compacted (compacted up to %" PRIu64 ")", lo, ci);
    if (lo == hi)
        return 0;

    ds_cursor_t *c = NULL;
    uint8_t *block = NULL;
    rc = ds_cursor_open(txn, DS_DB_RAFT_LOG, &c);
    if (rc)
        return rc;
    /* Pass 1: validate and size; pass 2: copy into one block. */
    size_t n = 0, bytes = 0;
    uint8_t key[8];
    ds_store_put_u64(key, lo);
    ds_val_t k, v;
    ds_raft_entry_t e;
    for (uint64_t i = lo; i < hi; i++) {
        rc = ds_cursor_get(c, i == lo ? DS_CURSOR_SEEK : DS_CURSOR_NEXT, key, sizeof key, &k, &v);
        if (rc == DS_ENOTFOUND)
            rc = ds_txn_fail(txn, DS_ECORRUPT,
                             "raft log: entry %" PRIu64 " is missing below last index %" PRIu64, i,
                             last);
        if (!rc)
            rc = s_decode(txn, &k, &v, &e);
        if (!rc && e.index != i)
            rc = ds_txn_fail(txn, DS_ECORRUPT,
                             "raft log: found index %" PRIu64 " where %" PRIu64 " belongs", e.index,
                             i);
        if (rc)
            goto exit;
        if (n > 0 && bytes + e.data.len > max_bytes)
            break;
        bytes += e.data.len;
        n++;
    }
    size_t head = n * sizeof(ds_raft_entry_t);
    block = malloc(head + bytes ? head + bytes : 1);
    if (!block) {
        rc = ds_store_fail(s, DS_ENOMEM, "raft log: out of memory reading %zu entries", n);
        goto exit;
    }
    ds_raft_entry_t *arr = (ds_raft_entry_t *)block;
    uint8_t *data = block + head;
    for (size_t i = 0; i < n; i++) {
        rc = ds_cursor_get(c, i == 0 ? DS_CURSOR_SEEK : DS_CURSOR_NEXT, key, sizeof key, &k, &v);
        if (!rc)
            rc = s_decode(txn, &k, &v, &arr[i]);
        if (rc)
            goto exit;
        if (arr[i].data.len)
            memcpy(data, arr[i].data.data, arr[i].data.len);
        arr[i].data.data = arr[i].data.len ? data : NULL;
        data += arr[i].data.len;
    }
    out->entries = arr;
    out->n = n;
    out->bytes = bytes;
    block = NULL;
exit:
    free(block);
    ds_cursor_destroy(&c);
    return rc;
}

void ds_raftlog_entries_free(ds_raftlog_entries_t *e)
{
    if (!e)
        return;
    free(e->entries);
    memset(e, 0, sizeof *e);
}

/* Deletes every entry with start <= index <= end_incl. */
static int s_delete_from(ds_txn_t *txn, uint64_t start, uint64_t end_incl)
{
    ds_cursor_t *c = NULL;
    int rc = ds_cursor_open(txn, DS_DB_RAFT_LOG, &c);
    if (rc)
        return rc;
    uint8_t key[8];
    ds_store_put_u64(key, start);
    ds_val_t k;
    rc = ds_cursor_get(c, DS_CURSOR_SEEK, key, sizeof key, &k, NULL);
    while (rc == 0) {
        if (k.len != 8) {
            rc = ds_txn_fail(txn, DS_ECORRUPT, "raft log: key of %zu bytes (want 8)", k.len);
            break;
        }
        if (ds_store_get_u64(k.data) > end_incl)
            break;
        rc = ds_cursor_del(c);
        if (rc)
            break;
        rc = ds_cursor_get(c, DS_CURSOR_NEXT, NULL, 0, &k, NULL);
    }
    ds_cursor_destroy(&c);
    return rc == DS_ENOTFOUND ? 0 : rc;
}

int ds_raftlog_truncate_txn(ds_txn_t *txn, uint64_t index)
{
    assert(txn);
    uint64_t ci, ct;
    int rc = s_compacted(txn, &ci, &ct);
    if (rc)
        return rc;
    if (index <= ci)
        return ds_store_fail(ds_txn_store(txn), DS_ESTATE,
                             "raft log: cannot truncate from %" PRIu64 ": entries up to %" PRIu64
                             " are compacted (committed)",
                             index, ci);
    return s_delete_from(txn, index, UINT64_MAX);
}

int ds_raftlog_compact_txn(ds_txn_t *txn, uint64_t index)
{
    assert(txn);
    uint64_t ci, ct, last, term;
    int rc = s_compacted(txn, &ci, &ct);
    if (!rc)
        rc = ds_raftlog_last_index_txn(txn, &last);
    if (rc)
        return rc;
    if (index <= ci)
        return 0;
    if (index > last)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL,
                             "raft log: cannot compact to %" PRIu64 " beyond last index %" PRIu64,
                             index, last);
    rc = ds_raftlog_term_txn(txn, index, &term);
    if (!rc)
        rc = s_delete_from(txn, ci + 1, index);
    if (!rc)
        rc = s_set_compacted(txn, index, term);
    return rc;
}

int ds_raftlog_reset_txn(ds_txn_t *txn, uint64_t index, uint64_t term)
{
    assert(txn);
    int rc = ds_txn_clear(txn, DS_DB_RAFT_LOG);
    if (!rc)
        rc = s_set_compacted(txn, index, term);
    return rc;
}

/* ---- one-transaction wrappers ---- */

typedef struct {
    const ds_raft_entry_t *entries;
    size_t n;
    uint64_t a, b;
    size_t max_bytes;
    uint64_t *u64_out;
    ds_raftlog_entries_t *out;
} s_args_t;

static int s_append_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_append_txn(txn, a->entries, a->n);
}

int ds_raftlog_append(ds_store_t *s, const ds_raft_entry_t *entries, size_t n)
{
    s_args_t a = {.entries = entries, .n = n};
    return ds_store_write(s, s_append_fn, &a);
}

static int s_entries_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_entries_txn(txn, a->a, a->b, a->max_bytes, a->out);
}

int ds_raftlog_entries(ds_store_t *s, uint64_t lo, uint64_t hi, size_t max_bytes,
                       ds_raftlog_entries_t *out)
{
    s_args_t a = {.a = lo, .b = hi, .max_bytes = max_bytes, .out = out};
    return ds_store_read(s, s_entries_fn, &a);
}

static int s_term_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_term_txn(txn, a->a, a->u64_out);
}

int ds_raftlog_term(ds_store_t *s, uint64_t index, uint64_t *term)
{
    s_args_t a = {.a = index, .u64_out = term};
    return ds_store_read(s, s_term_fn, &a);
}

static int s_first_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_first_index_txn(txn, a->u64_out);
}

int ds_raftlog_first_index(ds_store_t *s, uint64_t *index)
{
    s_args_t a = {.u64_out = index};
    return ds_store_read(s, s_first_fn, &a);
}

static int s_last_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_last_index_txn(txn, a->u64_out);
}

int ds_raftlog_last_index(ds_store_t *s, uint64_t *index)
{
    s_args_t a = {.u64_out = index};
    return ds_store_read(s, s_last_fn, &a);
}

static int s_truncate_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_truncate_txn(txn, a->a);
}

int ds_raftlog_truncate(ds_store_t *s, uint64_t index)
{
    s_args_t a = {.a = index};
    return ds_store_write(s, s_truncate_fn, &a);
}

static int s_compact_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_compact_txn(txn, a->a);
}

int ds_raftlog_compact(ds_store_t *s, uint64_t index)
{
    s_args_t a = {.a = index};
    return ds_store_write(s, s_compact_fn, &a);
}

static int s_reset_fn(ds_txn_t *txn, void *ctx)
{
    s_args_t *a = ctx;
    return ds_raftlog_reset_txn(txn, a->a, a->b);
}

int ds_raftlog_reset(ds_store_t *s, uint64_t index, uint64_t term)
{
    s_args_t a = {.a = index, .b = term};
    return ds_store_write(s, s_reset_fn, &a);
}
