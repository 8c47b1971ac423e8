/*  tests/unit/test_raftlog.c - the Raft log on real LMDB files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/hardstate.h"
#include "storage/raftlog.h"
#include "tests/testutil.h"

typedef ds_test_store_fx_t fx_t;

/* Appends entries lo..hi (inclusive) with term `term`, data "e<index>". */
static int s_append(ds_store_t *s, uint64_t lo, uint64_t hi, uint64_t term)
{
    size_t n = (size_t)(hi - lo + 1);
    ds_raft_entry_t *e = calloc(n, sizeof *e);
    char(*bufs)[24] = calloc(n, sizeof *bufs);
    assert_true(e && bufs);
    for (size_t i = 0; i < n; i++) {
        e[i].index = lo + i;
        e[i].term = term;
        e[i].type = DS_ENTRY_NORMAL;
        int len = snprintf(bufs[i], sizeof bufs[i], "e%llu", (unsigned long long)(lo + i));
        e[i].data.data = (uint8_t *)bufs[i];
        e[i].data.len = (uint32_t)len;
    }
    int rc = ds_raftlog_append(s, e, n);
    free(bufs);
    free(e);
    return rc;
}

static void s_expect_bounds(ds_store_t *s, uint64_t first, uint64_t last)
{
    uint64_t f = 99, l = 99;
    assert_int_equal(ds_raftlog_first_index(s, &f), 0);
    assert_int_equal(ds_raftlog_last_index(s, &l), 0);
    assert_int_equal(f, first);
    assert_int_equal(l, last);
}

static void test_fresh_log_is_empty_with_term_zero_at_zero(void **state)
{
    fx_t *fx = *state;
    s_expect_bounds(fx->s, 1, 0);
    uint64_t t = 9;
    assert_int_equal(ds_raftlog_term(fx->s, 0, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(ds_raftlog_term(fx->s, 1, &t), DS_ENOTFOUND);
}

static void test_append_then_read_range_round_trips(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 5, 1), 0);
    assert_int_equal(s_append(fx->s, 6, 8, 2), 0);
    s_expect_bounds(fx->s, 1, 8);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 2, 8, SIZE_MAX, &es), 0);
    assert_int_equal(es.n, 6);
    for (size_t i = 0; i < es.n; i++) {
        char want[24];
        snprintf(want, sizeof want, "e%zu", i + 2);
        assert_int_equal(es.entries[i].index, i + 2);
        assert_int_equal(es.entries[i].term, i + 2 >= 6 ? 2 : 1);
        assert_int_equal(es.entries[i].data.len, strlen(want));
        assert_memory_equal(es.entries[i].data.data, want, strlen(want));
    }
    ds_raftlog_entries_free(&es);
    assert_null(es.entries);
    ds_raftlog_entries_free(NULL);
    uint64_t t;
    assert_int_equal(ds_raftlog_term(fx->s, 7, &t), 0);
    assert_int_equal(t, 2);
}

static void test_read_range_respects_max_bytes_but_returns_one(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 9, 1), 0); /* "e1".."e9": 2 bytes each */
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 1, 10, 5, &es), 0);
    assert_int_equal(es.n, 2);
    assert_int_equal(es.bytes, 4);
    ds_raftlog_entries_free(&es);
    assert_int_equal(ds_raftlog_entries(fx->s, 3, 10, 0, &es), 0);
    assert_int_equal(es.n, 1);
    assert_int_equal(es.entries[0].index, 3);
    ds_raftlog_entries_free(&es);
    assert_int_equal(ds_raftlog_entries(fx->s, 4, 4, 100, &es), 0);
    assert_int_equal(es.n, 0);
    ds_raftlog_entries_free(&es);
}

static void test_read_range_out_of_bounds_is_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 3, 1), 0);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 2, 5, 100, &es), DS_EINVAL);
    assert_int_equal(ds_raftlog_entries(fx->s, 3, 2, 100, &es), DS_EINVAL);
    assert_int_equal(ds_raftlog_entries(fx->s, 0, 2, 100, &es), DS_ENOTFOUND);
    assert_null(es.entries);
}

static void test_append_must_follow_last_index(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 2, 3, 1), DS_ESTATE);
    assert_int_equal(s_append(fx->s, 1, 3, 1), 0);
    assert_int_equal(s_append(fx->s, 3, 4, 1), DS_ESTATE);
    assert_int_equal(s_append(fx->s, 5, 5, 1), DS_ESTATE);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "truncate"));
    s_expect_bounds(fx->s, 1, 3);
}

static void test_append_rejects_bad_entries_and_writes_nothing(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 2, 3), 0);
    ds_raft_entry_t e[2] = {{.index = 3, .term = 3}, {.index = 5, .term = 3}};
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), DS_EINVAL); /* gap */
    e[1].index = 4;
    e[1].term = 2;
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), DS_EINVAL); /* term goes down */
    e[1].term = 3;
    e[1].type = 77;
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), DS_EINVAL); /* unknown type */
    e[1].type = DS_ENTRY_NOOP;
    e[1].data.len = DS_MAX_ENTRY_SIZE + 1;
    e[1].data.data = (uint8_t *)"x";
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), DS_ETOOBIG);
    e[0].term = 2;
    e[1].data.len = 0;
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), DS_EINVAL); /* below last term */
    assert_int_equal(ds_raftlog_append(fx->s, e, 0), DS_EINVAL);
    s_expect_bounds(fx->s, 1, 2);
}

static void test_truncate_suffix_removes_entries_from_index(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 10, 1), 0);
    assert_int_equal(ds_raftlog_truncate(fx->s, 6), 0);
    s_expect_bounds(fx->s, 1, 5);
    uint64_t t;
    assert_int_equal(ds_raftlog_term(fx->s, 6, &t), DS_ENOTFOUND);
    /* A new leader's entries replace the suffix. */
    assert_int_equal(s_append(fx->s, 6, 7, 2), 0);
    assert_int_equal(ds_raftlog_term(fx->s, 6, &t), 0);
    assert_int_equal(t, 2);
    assert_int_equal(ds_raftlog_truncate(fx->s, 100), 0); /* beyond last: no-op */
    s_expect_bounds(fx->s, 1, 7);
}

static void test_compact_prefix_keeps_term_of_compacted_index(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 4, 1), 0);
    assert_int_equal(s_append(fx->s, 5, 8, 3), 0);
    assert_int_equal(ds_raftlog_compact(fx->s, 5), 0);
    s_expect_bounds(fx->s, 6, 8);
    uint64_t t;
    assert_int_equal(ds_raftlog_term(fx->s, 5, &t), 0);
    assert_int_equal(t, 3);
    assert_int_equal(ds_raftlog_term(fx->s, 4, &t), DS_ENOTFOUND);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 5, 7, 100, &es), DS_ENOTFOUND);
    assert_int_equal(ds_raftlog_entries(fx->s, 6, 9, 100, &es), 0);
    assert_int_equal(es.n, 3);
    ds_raftlog_entries_free(&es);
    assert_int_equal(ds_raftlog_compact(fx->s, 3), 0); /* older: no-op */
    assert_int_equal(ds_raftlog_compact(fx->s, 9), DS_EINVAL);
    assert_int_equal(ds_raftlog_truncate(fx->s, 5), DS_ESTATE);
    /* Compact everything: the log is empty but remembers where it was. */
    assert_int_equal(ds_raftlog_compact(fx->s, 8), 0);
    s_expect_bounds(fx->s, 9, 8);
    assert_int_equal(ds_raftlog_term(fx->s, 8, &t), 0);
    assert_int_equal(t, 3);
    assert_int_equal(s_append(fx->s, 9, 9, 4), 0);
    assert_int_equal(s_append(fx->s, 10, 10, 2), DS_EINVAL); /* term below last */
}

static void test_reset_for_snapshot_install_empties_log(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 5, 1), 0);
    assert_int_equal(ds_raftlog_reset(fx->s, 100, 7), 0);
    s_expect_bounds(fx->s, 101, 100);
    uint64_t t;
    assert_int_equal(ds_raftlog_term(fx->s, 100, &t), 0);
    assert_int_equal(t, 7);
    assert_int_equal(s_append(fx->s, 101, 102, 7), 0);
    s_expect_bounds(fx->s, 101, 102);
}

/* The coordinator's persist step: entries and hard state, one commit. */
typedef struct {
    ds_raft_entry_t e;
    ds_hardstate_t hs;
    bool fail_after;
} persist_t;

static int s_persist(ds_txn_t *txn, void *ctx)
{
    persist_t *p = ctx;
    int rc = ds_raftlog_append_txn(txn, &p->e, 1);
    if (!rc)
        rc = ds_hardstate_save_txn(txn, &p->hs);
    if (!rc && p->fail_after)
        rc = DS_EIO;
    return rc;
}

static void test_append_and_hardstate_commit_together_or_not_at_all(void **state)
{
    fx_t *fx = *state;
    persist_t p = {.e = {.index = 1, .term = 2, .type = DS_ENTRY_NOOP},
                   .hs = {.term = 2, .vote = 3, .commit = 0}};
    p.fail_after = true;
    assert_int_equal(ds_store_write(fx->s, s_persist, &p), DS_EIO);
    ds_hardstate_t hs;
    assert_int_equal(ds_hardstate_load(fx->s, &hs), 0);
    assert_int_equal(hs.term, 0);
    s_expect_bounds(fx->s, 1, 0);
    p.fail_after = false;
    assert_int_equal(ds_store_write(fx->s, s_persist, &p), 0);
    assert_int_equal(ds_hardstate_load(fx->s, &hs), 0);
    assert_int_equal(hs.term, 2);
    assert_int_equal(hs.vote, 3);
    s_expect_bounds(fx->s, 1, 1);
}

typedef struct {
    uint64_t index;
    const void *val;
    size_t len;
    const void *key;
    size_t klen;
} raw_t;

static int s_raw_put(ds_txn_t *txn, void *ctx)
{
    raw_t *r = ctx;
    uint8_t key[8];
    ds_store_put_u64(key, r->index);
    return ds_txn_put(txn, DS_DB_RAFT_LOG, r->key ? r->key : key, r->key ? r->klen : 8, r->val,
                      r->len, 0);
}

static void test_corrupt_entry_value_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 3, 1), 0);
    raw_t r = {.index = 2, .val = "\0\0\0", .len = 3}; /* shorter than the header */
    assert_int_equal(ds_store_write(fx->s, s_raw_put, &r), 0);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 1, 4, SIZE_MAX, &es), DS_ECORRUPT);
    assert_null(es.entries);
    uint64_t t;
    assert_int_equal(ds_raftlog_term(fx->s, 2, &t), DS_ECORRUPT);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "entry 2"));
    /* Unknown entry type. */
    uint8_t bad[9] = {0, 0, 0, 0, 0, 0, 0, 1, 42};
    r.val = bad;
    r.len = sizeof bad;
    assert_int_equal(ds_store_write(fx->s, s_raw_put, &r), 0);
    assert_int_equal(ds_raftlog_term(fx->s, 2, &t), DS_ECORRUPT);
}

static void test_corrupt_last_entry_blocks_append(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 3, 1), 0);
    raw_t r = {.index = 3, .val = "x", .len = 1};
    assert_int_equal(ds_store_write(fx->s, s_raw_put, &r), 0);
    assert_int_equal(s_append(fx->s, 4, 4, 1), DS_ECORRUPT);
    uint64_t last;
    assert_int_equal(ds_raftlog_last_index(fx->s, &last), DS_ECORRUPT);
}

static void test_hole_in_log_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_append(fx->s, 1, 3, 1), 0);
    /* Entry 5 appears without 4: a hole below the last index. */
    uint8_t v[9] = {0, 0, 0, 0, 0, 0, 0, 1, 0};
    raw_t r = {.index = 5, .val = v, .len = sizeof v};
    assert_int_equal(ds_store_write(fx->s, s_raw_put, &r), 0);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 1, 6, SIZE_MAX, &es), DS_ECORRUPT);
    /* A key of the wrong size. */
    raw_t r2 = {.key = "abc", .klen = 3, .val = v, .len = sizeof v};
    assert_int_equal(ds_store_write(fx->s, s_raw_put, &r2), 0);
    uint64_t last;
    assert_int_equal(ds_raftlog_last_index(fx->s, &last), DS_ECORRUPT); /* "abc" sorts last */
}

static int s_raw_meta(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    return ds_txn_put(txn, DS_DB_RAFT_META, "compacted", 9, "short", 5, 0);
}

static void test_corrupt_compaction_point_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_raw_meta, NULL), 0);
    uint64_t i;
    assert_int_equal(ds_raftlog_first_index(fx->s, &i), DS_ECORRUPT);
    assert_int_equal(s_append(fx->s, 1, 1, 1), DS_ECORRUPT);
    assert_int_equal(ds_raftlog_truncate(fx->s, 1), DS_ECORRUPT);
    assert_int_equal(ds_raftlog_compact(fx->s, 1), DS_ECORRUPT);
}

static void test_large_entries_survive_map_growth(void **state)
{
    fx_t *fx = *state;
    ds_store_destroy(&fx->s);
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true;
    o.map_size = 256 * 1024;
    o.max_map_size = 64 << 20;
    assert_int_equal(ds_store_open(&fx->s, fx->dir, &o, NULL, 0), 0);
    uint8_t *big = malloc(DS_MAX_ENTRY_SIZE);
    assert_non_null(big);
    for (size_t i = 0; i < DS_MAX_ENTRY_SIZE; i++)
        big[i] = (uint8_t)(i * 31);
    ds_raft_entry_t e[2] = {
        {.index = 1, .term = 1, .data = {big, DS_MAX_ENTRY_SIZE}},
        {.index = 2, .term = 1, .data = {big, 1000}},
    };
    assert_int_equal(ds_raftlog_append(fx->s, e, 2), 0);
    ds_raftlog_entries_t es;
    assert_int_equal(ds_raftlog_entries(fx->s, 1, 3, SIZE_MAX, &es), 0);
    assert_int_equal(es.n, 2);
    assert_memory_equal(es.entries[0].data.data, big, DS_MAX_ENTRY_SIZE);
    assert_memory_equal(es.entries[1].data.data, big, 1000);
    ds_raftlog_entries_free(&es);
    free(big);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ds_test_store_setup, ds_test_store_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fresh_log_is_empty_with_term_zero_at_zero),
        T(test_append_then_read_range_round_trips),
        T(test_read_range_respects_max_bytes_but_returns_one),
        T(test_read_range_out_of_bounds_is_refused),
        T(test_append_must_follow_last_index),
        T(test_append_rejects_bad_entries_and_writes_nothing),
        T(test_truncate_suffix_removes_entries_from_index),
        T(test_compact_prefix_keeps_term_of_compacted_index),
        T(test_reset_for_snapshot_install_empties_log),
        T(test_append_and_hardstate_commit_together_or_not_at_all),
        T(test_corrupt_entry_value_returns_ecorrupt),
        T(test_corrupt_last_entry_blocks_append),
        T(test_hole_in_log_returns_ecorrupt),
        T(test_corrupt_compaction_point_returns_ecorrupt),
        T(test_large_entries_survive_map_growth),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
