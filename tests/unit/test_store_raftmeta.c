/*  tests/unit/test_store_raftmeta.c - hard state and snapshot metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "storage/hardstate.h"
#include "storage/snapmeta.h"
#include "tests/testutil.h"

typedef ds_test_store_fx_t fx_t;

static void s_open(fx_t *fx)
{
    assert_non_null(fx->s = ds_test_store_open(fx->dir));
}

static void test_hardstate_load_on_fresh_store_gives_zeros(void **state)
{
    fx_t *fx = *state;
    ds_hardstate_t hs = {1, 2, 3};
    assert_int_equal(ds_hardstate_load(fx->s, &hs), 0);
    assert_int_equal(hs.term, 0);
    assert_int_equal(hs.vote, 0);
    assert_int_equal(hs.commit, 0);
}

static void test_hardstate_survives_reopen(void **state)
{
    fx_t *fx = *state;
    ds_hardstate_t hs = {.term = 7, .vote = 2, .commit = UINT64_MAX};
    assert_int_equal(ds_hardstate_save(fx->s, &hs), 0);
    hs.term = 8;
    assert_int_equal(ds_hardstate_save(fx->s, &hs), 0);
    ds_store_destroy(&fx->s);
    s_open(fx);
    ds_hardstate_t got;
    assert_int_equal(ds_hardstate_load(fx->s, &got), 0);
    assert_int_equal(got.term, 8);
    assert_int_equal(got.vote, 2);
    assert_true(got.commit == UINT64_MAX);
}

typedef struct {
    const char *key;
    size_t len;
} raw_t;

static int s_raw(ds_txn_t *txn, void *ctx)
{
    raw_t *r = ctx;
    static const uint8_t junk[64];
    return ds_txn_put(txn, DS_DB_RAFT_META, r->key, strlen(r->key), junk, r->len, 0);
}

static void test_hardstate_wrong_size_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    raw_t r = {"hardstate", 23};
    assert_int_equal(ds_store_write(fx->s, s_raw, &r), 0);
    ds_hardstate_t hs;
    assert_int_equal(ds_hardstate_load(fx->s, &hs), DS_ECORRUPT);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "hard state"));
}

static void test_snapmeta_round_trips_and_fresh_is_zero(void **state)
{
    fx_t *fx = *state;
    ds_snapshot_meta_t m;
    assert_int_equal(ds_snapmeta_load(fx->s, &m), 0);
    assert_int_equal(m.index, 0);
    assert_int_equal(m.n_voters, 0);
    ds_snapshot_meta_t in = {.index = 100, .term = 5, .n_voters = 3, .voters = {1, 2, 3}};
    assert_int_equal(ds_snapmeta_save(fx->s, &in), 0);
    ds_store_destroy(&fx->s);
    s_open(fx);
    assert_int_equal(ds_snapmeta_load(fx->s, &m), 0);
    assert_int_equal(m.index, 100);
    assert_int_equal(m.term, 5);
    assert_int_equal(m.n_voters, 3);
    assert_int_equal(m.voters[2], 3);
}

static void test_snapmeta_rejects_too_many_voters(void **state)
{
    fx_t *fx = *state;
    ds_snapshot_meta_t in = {.index = 1, .n_voters = DS_MAX_MEMBERS + 1};
    assert_int_equal(ds_snapmeta_save(fx->s, &in), DS_EINVAL);
}

static void test_snapmeta_garbled_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    ds_snapshot_meta_t m;
    raw_t shortv = {"snapmeta", 10};
    assert_int_equal(ds_store_write(fx->s, s_raw, &shortv), 0);
    assert_int_equal(ds_snapmeta_load(fx->s, &m), DS_ECORRUPT);
    raw_t count_mismatch = {"snapmeta", 28}; /* n_voters 0 but 8 extra bytes */
    assert_int_equal(ds_store_write(fx->s, s_raw, &count_mismatch), 0);
    assert_int_equal(ds_snapmeta_load(fx->s, &m), DS_ECORRUPT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ds_test_store_setup, ds_test_store_teardown)
    const struct CMUnitTest tests[] = {
        T(test_hardstate_load_on_fresh_store_gives_zeros),
        T(test_hardstate_survives_reopen),
        T(test_hardstate_wrong_size_returns_ecorrupt),
        T(test_snapmeta_round_trips_and_fresh_is_zero),
        T(test_snapmeta_rejects_too_many_voters),
        T(test_snapmeta_garbled_returns_ecorrupt),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
