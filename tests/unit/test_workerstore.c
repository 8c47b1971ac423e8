/*  tests/unit/test_workerstore.c - the worker's identity and releases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/workerstore.h"
#include "tests/testutil.h"

typedef struct {
    char dir[512];
    ds_workerstore_t *ws;
} fx_t;

static void s_open(fx_t *fx)
{
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true;
    char err[256];
    if (ds_workerstore_open(&fx->ws, fx->dir, &o, err, sizeof err))
        fail_msg("open: %s", err);
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("workerstore", fx->dir, sizeof fx->dir), 0);
    s_open(fx);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_workerstore_destroy(&fx->ws);
    ds_workerstore_destroy(&fx->ws);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void test_identity_is_created_once_and_kept_across_rename(void **state)
{
    fx_t *fx = *state;
    ds_worker_identity_t id;
    assert_int_equal(ds_workerstore_identity_load(fx->ws, &id), DS_ENOTFOUND);
    assert_int_equal(ds_workerstore_set_key_path(fx->ws, "/etc/k"), DS_ENOTFOUND);
    assert_int_equal(ds_workerstore_identity(fx->ws, "w1", &id), 0);
    assert_string_equal(id.name, "w1");
    assert_int_equal(strlen(id.id), DS_WORKERSTORE_ID_LEN);
    assert_string_equal(id.key_path, "");
    char first_id[DS_WORKERSTORE_ID_LEN + 1];
    strcpy(first_id, id.id);
    assert_int_equal(ds_workerstore_set_key_path(fx->ws, "/var/lib/ds/worker.key"), 0);
    ds_workerstore_destroy(&fx->ws);
    s_open(fx);
    ds_worker_identity_t again;
    assert_int_equal(ds_workerstore_identity(fx->ws, "w1-renamed", &again), 0);
    assert_string_equal(again.id, first_id);
    assert_string_equal(again.name, "w1-renamed");
    assert_string_equal(again.key_path, "/var/lib/ds/worker.key");
    assert_int_equal(ds_workerstore_identity_load(fx->ws, &again), 0);
    assert_string_equal(again.name, "w1-renamed");
}

static void test_identity_rejects_bad_name(void **state)
{
    fx_t *fx = *state;
    ds_worker_identity_t id;
    assert_int_equal(ds_workerstore_identity(fx->ws, "", &id), DS_EINVAL);
    assert_int_equal(ds_workerstore_identity(fx->ws, NULL, &id), DS_EINVAL);
    assert_true(strlen(ds_workerstore_errmsg(fx->ws)) > 0);
}

typedef struct {
    int n;
    uint64_t versions[16];
    int states[16];
} list_t;

static int s_collect(void *ctx, const ds_worker_release_t *rel)
{
    list_t *l = ctx;
    l->versions[l->n] = rel->version;
    l->states[l->n++] = (int)rel->state;
    return 0;
}

static void test_release_put_get_state_and_immutable_spec(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 1, DS_WREL_STAGED, "spec1", 5), 0);
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 1, DS_WREL_RUNNING, "spec1", 5),
                     0);
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 1, DS_WREL_RUNNING, "other", 5),
                     DS_EEXIST);
    assert_int_equal(ds_workerstore_release_set_state(fx->ws, "churn", 1, DS_WREL_FAILED), 0);
    assert_int_equal(ds_workerstore_release_set_state(fx->ws, "churn", 9, DS_WREL_FAILED),
                     DS_ENOTFOUND);
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 0, DS_WREL_STAGED, "s", 1),
                     DS_EINVAL);
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 2, (ds_wrel_state_t)9, "s", 1),
                     DS_EINVAL);
    ds_worker_release_t rel;
    assert_int_equal(ds_workerstore_release_get(fx->ws, "churn", 1, &rel), 0);
    assert_int_equal(rel.version, 1);
    assert_int_equal(rel.state, DS_WREL_FAILED);
    assert_int_equal(rel.spec_len, 5);
    assert_memory_equal(rel.spec, "spec1", 5);
    ds_workerstore_release_free(&rel);
    ds_workerstore_release_free(NULL);
    assert_int_equal(ds_workerstore_release_get(fx->ws, "churn", 2, &rel), DS_ENOTFOUND);
}

static void test_current_and_previous_follow_deploy_and_rollback(void **state)
{
    fx_t *fx = *state;
    uint64_t cur = 9, prev = 9;
    assert_int_equal(ds_workerstore_current(fx->ws, "churn", &cur, &prev), DS_ENOTFOUND);
    assert_int_equal(cur, 0);
    for (uint64_t v = 1; v <= 3; v++)
        assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", v, DS_WREL_STAGED, "s", 1), 0);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 7), DS_ENOTFOUND);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 1), 0);
    assert_int_equal(ds_workerstore_current(fx->ws, "churn", &cur, &prev), 0);
    assert_int_equal(cur, 1);
    assert_int_equal(prev, 0);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 2), 0);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 2), 0); /* same: no shift */
    assert_int_equal(ds_workerstore_current(fx->ws, "churn", &cur, &prev), 0);
    assert_int_equal(cur, 2);
    assert_int_equal(prev, 1);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 1), 0); /* rollback */
    assert_int_equal(ds_workerstore_current(fx->ws, "churn", &cur, &prev), 0);
    assert_int_equal(cur, 1);
    assert_int_equal(prev, 2);
}

static void test_prune_keeps_last_n_and_current_previous(void **state)
{
    fx_t *fx = *state;
    for (uint64_t v = 1; v <= 8; v++)
        assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", v, DS_WREL_STOPPED, "s", 1),
                         0);
    assert_int_equal(ds_workerstore_release_put(fx->ws, "other", 1, DS_WREL_RUNNING, "o", 1), 0);
    /* Rolled back to 2 from 8: 2 is current, 8 previous. */
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 8), 0);
    assert_int_equal(ds_workerstore_set_current(fx->ws, "churn", 2), 0);
    uint64_t pruned[16];
    size_t n = 99;
    assert_int_equal(ds_workerstore_prune(fx->ws, "churn", 0, pruned, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ds_workerstore_prune(fx->ws, "churn", 0, pruned + 2, 16, &n), 0);
    assert_int_equal(n, 2);
    /* Kept: 8, 7, 6 (newest three) and 2 (current); pruned 5, 4, 3, 1. */
    list_t l = {0};
    assert_int_equal(ds_workerstore_releases_list(fx->ws, "churn", s_collect, &l), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.versions[0], 8);
    assert_int_equal(l.versions[1], 7);
    assert_int_equal(l.versions[2], 6);
    assert_int_equal(l.versions[3], 2);
    uint64_t all[4] = {pruned[0], pruned[1], pruned[2], pruned[3]};
    uint64_t sum = all[0] + all[1] + all[2] + all[3];
    assert_int_equal(sum, 5 + 4 + 3 + 1);
    assert_true(pruned[2] < pruned[3]); /* oldest first within a call */
    assert_int_equal(ds_workerstore_prune(fx->ws, "churn", 0, pruned, 16, &n), 0);
    assert_int_equal(n, 0);
    l.n = 0;
    assert_int_equal(ds_workerstore_releases_list(fx->ws, "other", s_collect, &l), 0);
    assert_int_equal(l.n, 1);
}

typedef struct {
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
    ds_db_t db;
} raw_t;

static int s_raw_put(ds_txn_t *txn, void *ctx)
{
    raw_t *r = ctx;
    return ds_txn_put(txn, r->db, r->key, r->klen, r->val, r->vlen, 0);
}

static void test_garbled_release_value_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_workerstore_release_put(fx->ws, "churn", 1, DS_WREL_STAGED, "s", 1), 0);
    /* Rewrite it with an unknown state byte through a second handle on the env. */
    ds_workerstore_destroy(&fx->ws);
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true;
    o.dbs = DS_STORE_DBS_WORKER;
    ds_store_t *s = NULL;
    assert_int_equal(ds_store_open(&s, fx->dir, &o, NULL, 0), 0);
    raw_t r = {"churn\0\0\0\0\0\0\0\0\1", 14, "\x09spec", 5, DS_DB_WK_RELEASES};
    assert_int_equal(ds_store_write(s, s_raw_put, &r), 0);
    raw_t svc = {"churn", 5, "short", 5, DS_DB_WK_SERVICES};
    assert_int_equal(ds_store_write(s, s_raw_put, &svc), 0);
    ds_store_destroy(&s);
    s_open(fx);
    ds_worker_release_t rel;
    assert_int_equal(ds_workerstore_release_get(fx->ws, "churn", 1, &rel), DS_ECORRUPT);
    list_t l = {0};
    assert_int_equal(ds_workerstore_releases_list(fx->ws, "churn", s_collect, &l), DS_ECORRUPT);
    uint64_t cur;
    assert_int_equal(ds_workerstore_current(fx->ws, "churn", &cur, NULL), DS_ECORRUPT);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_identity_is_created_once_and_kept_across_rename),
        T(test_identity_rejects_bad_name),
        T(test_release_put_get_state_and_immutable_spec),
        T(test_current_and_previous_follow_deploy_and_rollback),
        T(test_prune_keeps_last_n_and_current_previous),
        T(test_garbled_release_value_returns_ecorrupt),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
