/*  coordinator/raft_log.c - the in-memory Raft log and byte blobs.

    The log holds the entries after the compaction point (off_index) with
    their data in reference-counted blobs, so messages and readies can
    point at entry data without copying it, and a truncation or a
    compaction never frees bytes still referenced by a pending message.
*/
#include <stddef.h>
#include <stdio.h>

#include "coordinator/raft_impl.h"

typedef struct {
    uint64_t refs;
    uint64_t len;
    uint8_t bytes[];
} s_blob_t;

static void s_oom(size_t n)
{
    fprintf(stderr, "ds_raft: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ds_raft_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        s_oom(n);
    return p;
}

void *ds_raft_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_oom(n * size);
    return p;
}

void *ds_raft_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        s_oom(n);
    return q;
}

uint8_t *ds_raft_blob_new(const uint8_t *data, uint64_t len)
{
    if (len == 0)
        return NULL;
    assert(len <= SIZE_MAX - sizeof(s_blob_t));
    s_blob_t *b = ds_raft_xmalloc(sizeof(s_blob_t) + (size_t)len);
    b->refs = 1;
    b->len = len;
    if (data)
        memcpy(b->bytes, data, (size_t)len);
    return b->bytes;
}

static s_blob_t *s_blob_of(uint8_t *bytes)
{
    return (s_blob_t *)(void *)(bytes - offsetof(s_blob_t, bytes));
}

void ds_raft_blob_ref(uint8_t *bytes)
{
    if (bytes)
        s_blob_of(bytes)->refs++;
}

void ds_raft_blob_unref(uint8_t *bytes)
{
    if (!bytes)
        return;
    s_blob_t *b = s_blob_of(bytes);
    assert(b->refs > 0);
    if (--b->refs == 0)
        free(b);
}

uint64_t ds_raft_log_last(const ds_raft_log_t *l)
{
    return l->off_index + l->n;
}

uint64_t ds_raft_log_last_term(const ds_raft_log_t *l)
{
    return l->n ? l->ents[l->n - 1].term : l->off_term;
}

bool ds_raft_log_term(const ds_raft_log_t *l, uint64_t i, uint64_t *term)
{
    if (i == l->off_index) {
        *term = l->off_term;
        return true;
    }
    if (i < l->off_index || i > ds_raft_log_last(l))
        return false;
    *term = l->ents[i - l->off_index - 1].term;
    return true;
}

bool ds_raft_log_matches(const ds_raft_log_t *l, uint64_t i, uint64_t term)
{
    uint64_t t;
    if (i == 0)
        return term == 0;
    return ds_raft_log_term(l, i, &t) && t == term;
}

const ds_raft_entry_t *ds_raft_log_at(const ds_raft_log_t *l, uint64_t i)
{
    assert(i > l->off_index && i <= ds_raft_log_last(l));
    return &l->ents[i - l->off_index - 1];
}

void ds_raft_log_append(ds_raft_log_t *l, uint64_t term, uint8_t type, const uint8_t *data,
                        uint32_t len)
{
    assert(term >= ds_raft_log_last_term(l));
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ents = ds_raft_xrealloc(l->ents, l->cap * sizeof(*l->ents));
    }
    ds_raft_entry_t *e = &l->ents[l->n++];
    e->term = term;
    e->index = ds_raft_log_last(l);
    e->type = type;
    e->data.data = ds_raft_blob_new(data, len);
    e->data.len = len;
}

void ds_raft_log_truncate(ds_raft_log_t *l, uint64_t from)
{
    assert(from > l->committed && from > l->off_index);
    while (ds_raft_log_last(l) >= from) {
        l->n--;
        ds_raft_blob_unref(l->ents[l->n].data.data);
    }
    if (l->stable >= from)
        l->stable = from - 1;
    if (l->synced >= from)
        l->synced = from - 1;
}

void ds_raft_log_compact(ds_raft_log_t *l, uint64_t upto)
{
    if (upto <= l->off_index)
        return;
    assert(upto <= ds_raft_log_last(l));
    size_t drop = (size_t)(upto - l->off_index);
    uint64_t term = l->ents[drop - 1].term;
    for (size_t i = 0; i < drop; i++)
        ds_raft_blob_unref(l->ents[i].data.data);
    memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
    l->n -= drop;
    l->off_index = upto;
    l->off_term = term;
}

void ds_raft_log_reset(ds_raft_log_t *l, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < l->n; i++)
        ds_raft_blob_unref(l->ents[i].data.data);
    l->n = 0;
    l->off_index = index;
    l->off_term = term;
    l->stable = index;
    l->synced = index;
    if (l->committed < index)
        l->committed = index;
}

void ds_raft_log_set_snapshot(ds_raft_log_t *l, const ds_snapshot_meta_t *meta, uint8_t *data,
                              uint64_t len)
{
    ds_raft_blob_unref(l->snap_data);
    l->snap = *meta;
    l->snap_data = data;
    l->snap_len = len;
}

bool ds_raft_log_up_to_date(const ds_raft_log_t *l, uint64_t index, uint64_t term)
{
    uint64_t last_term = ds_raft_log_last_term(l);
    return term > last_term || (term == last_term && index >= ds_raft_log_last(l));
}

uint64_t ds_raft_log_find_conflict_by_term(const ds_raft_log_t *l, uint64_t index, uint64_t term,
                                           uint64_t *term_out)
{
    uint64_t last = ds_raft_log_last(l);
    if (index > last)
        index = last;
    for (;;) {
        uint64_t t;
        if (!ds_raft_log_term(l, index, &t)) {
            *term_out = 0;
            return index;
        }
        if (t <= term || index == l->off_index) {
            *term_out = t;
            return index;
        }
        index--;
    }
}

void ds_raft_log_free(ds_raft_log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        ds_raft_blob_unref(l->ents[i].data.data);
    free(l->ents);
    ds_raft_blob_unref(l->snap_data);
    memset(l, 0, sizeof(*l));
}
