/*  tests/unit/test_state.c - state tables and the applied index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/limits.h"
#include "storage/state.h"
#include "tests/testutil.h"

typedef ds_test_store_fx_t fx_t;

/* Collects rows as "name|name2|num|val" strings. */
typedef struct {
    int n;
    char rows[16][160];
    int stop_after;
} rows_t;

static int s_collect(void *ctx, const ds_state_row_t *row)
{
    rows_t *r = ctx;
    snprintf(r->rows[r->n], sizeof r->rows[r->n], "%s|%s|%llu|%.*s", row->name,
             row->name2 ? row->name2 : "", (unsigned long long)row->num, (int)row->len,
             (const char *)row->val);
    r->n++;
    if (r->stop_after && r->n >= r->stop_after)
        return 1;
    return 0;
}

static int s_put_service(ds_txn_t *txn, void *ctx)
{
    return ds_state_put(txn, DS_TABLE_SERVICES, ctx, "spec", 4);
}

static void test_apply_records_applied_index_with_changes(void **state)
{
    fx_t *fx = *state;
    uint64_t applied = 9;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 0);
    int result = 1;
    assert_int_equal(ds_state_apply(fx->s, 1, 0, s_put_service, "churn", &result), 0);
    assert_int_equal(result, 0);
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(ds_state_apply(fx->s, 2, 0, NULL, NULL, NULL), 0); /* no-op entry */
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 2);
}

static void test_apply_refuses_duplicate_index(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_state_apply(fx->s, 1, 0, s_put_service, "a", NULL), 0);
    assert_int_equal(ds_state_apply(fx->s, 1, 0, s_put_service, "b", NULL), DS_ESTATE);
    assert_int_equal(
        ds_state_apply(fx->s, 1, DS_STATE_APPLY_AFTER_SNAPSHOT, s_put_service, "b", NULL),
        DS_ESTATE);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "already applied"));
}

static int s_get_service(ds_txn_t *txn, void *ctx)
{
    ds_val_t v;
    return ds_state_get(txn, DS_TABLE_SERVICES, ctx, &v);
}

static void test_apply_refuses_gap_unless_after_snapshot(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_state_apply(fx->s, 3, 0, s_put_service, "a", NULL), DS_ESTATE);
    assert_int_equal(ds_store_read(fx->s, s_get_service, "a"), DS_ENOTFOUND);
    assert_int_equal(
        ds_state_apply(fx->s, 3, DS_STATE_APPLY_AFTER_SNAPSHOT, s_put_service, "a", NULL), 0);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 3);
}

static int s_put_then_reject(ds_txn_t *txn, void *ctx)
{
    int rc = ds_state_put(txn, DS_TABLE_SERVICES, ctx, "x", 1);
    assert_int_equal(rc, 0);
    return DS_ECONFLICT;
}

static int s_put_then_fatal(ds_txn_t *txn, void *ctx)
{
    int rc = ds_state_put(txn, DS_TABLE_SERVICES, ctx, "x", 1);
    assert_int_equal(rc, 0);
    return DS_ENOMEM;
}

static void test_rejected_command_discards_changes_but_advances_index(void **state)
{
    fx_t *fx = *state;
    int result = 0;
    assert_int_equal(ds_state_apply(fx->s, 1, 0, s_put_then_reject, "svc", &result), 0);
    assert_int_equal(result, DS_ECONFLICT);
    assert_int_equal(ds_store_read(fx->s, s_get_service, "svc"), DS_ENOTFOUND);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 1);
}

static void test_fatal_apply_error_changes_nothing(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_state_apply(fx->s, 1, 0, s_put_then_fatal, "svc", NULL), DS_ENOMEM);
    assert_int_equal(ds_store_read(fx->s, s_get_service, "svc"), DS_ENOTFOUND);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 0);
}

/*  In place (no nested transaction): fn's changes and the index are kept
    together; any nonzero result of fn is a failure of the whole apply
    (ds_state_apply's transaction aborts), a refusal code included. */
static void test_apply_in_place_keeps_changes_and_fails_on_any_error(void **state)
{
    fx_t *fx = *state;
    int result = 1;
    assert_int_equal(
        ds_state_apply(fx->s, 1, DS_STATE_APPLY_IN_PLACE, s_put_service, "kept", &result), 0);
    assert_int_equal(result, 0);
    assert_int_equal(ds_store_read(fx->s, s_get_service, "kept"), 0);
    assert_int_equal(
        ds_state_apply(fx->s, 2, DS_STATE_APPLY_IN_PLACE, s_put_then_reject, "svc", &result),
        DS_ECONFLICT);
    assert_int_equal(ds_store_read(fx->s, s_get_service, "svc"), DS_ENOTFOUND);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(ds_state_apply(fx->s, 2, DS_STATE_APPLY_IN_PLACE, NULL, NULL, NULL), 0);
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 2);
}

typedef struct {
    int i;
} batch_t;

static int s_batch(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    for (uint64_t i = 1; i <= 3; i++) {
        int rc = ds_state_apply_txn(txn, i, 0, NULL, NULL, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

static void test_apply_txn_batches_several_entries_in_one_commit(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_batch, NULL), 0);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), 0);
    assert_int_equal(applied, 3);
}

static int s_name_tables(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    const ds_state_table_t t[] = {DS_TABLE_SERVICES, DS_TABLE_DEPLOYMENTS, DS_TABLE_WORKERS,
                                  DS_TABLE_TOKENS};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(ds_state_put(txn, t[i], "b", "2", 1), 0);
        assert_int_equal(ds_state_put(txn, t[i], "a", "1", 1), 0);
        assert_int_equal(ds_state_put(txn, t[i], "a", "11", 2), 0); /* replaces */
        ds_val_t v;
        assert_int_equal(ds_state_get(txn, t[i], "a", &v), 0);
        assert_int_equal(v.len, 2);
        assert_int_equal(ds_state_get(txn, t[i], "zz", &v), DS_ENOTFOUND);
        rows_t r = {0};
        assert_int_equal(ds_state_list(txn, t[i], s_collect, &r), 0);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.rows[0], "a||0|11");
        assert_string_equal(r.rows[1], "b||0|2");
        assert_int_equal(ds_state_del(txn, t[i], "a"), 0);
        assert_int_equal(ds_state_del(txn, t[i], "a"), DS_ENOTFOUND);
    }
    return 0;
}

static void test_name_keyed_tables_put_get_list_del(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_name_tables, NULL), 0);
}

static int s_bad_names(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    char longname[DS_MAX_NAME + 2];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ds_val_t v;
    assert_int_equal(ds_state_put(txn, DS_TABLE_SERVICES, "", "x", 1), DS_EINVAL);
    assert_int_equal(ds_state_put(txn, DS_TABLE_SERVICES, NULL, "x", 1), DS_EINVAL);
    assert_int_equal(ds_state_put(txn, DS_TABLE_WORKERS, longname, "x", 1), DS_EINVAL);
    assert_int_equal(ds_state_put(txn, DS_TABLE_TOKENS, longname, "x", 1), 0); /* 255 allowed */
    assert_int_equal(ds_state_get(txn, DS_TABLE_SERVICES, "", &v), DS_EINVAL);
    assert_int_equal(ds_state_put(txn, DS_TABLE_SERVICES, "s", NULL, DS_MAX_ENTRY_SIZE + 1),
                     DS_ETOOBIG);
    assert_int_equal(ds_state_release_put(txn, "s", 0, "x", 1), DS_EINVAL);
    assert_int_equal(ds_state_release_get(txn, "s", 0, &v), DS_EINVAL);
    assert_int_equal(ds_state_assignment_put(txn, "w", "", "x", 1), DS_EINVAL);
    assert_int_equal(ds_state_history_append(txn, longname, "x", 1, NULL), DS_EINVAL);
    return 0;
}

static void test_bad_names_and_values_are_einval(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_bad_names, NULL), 0);
}

static int s_releases(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_int_equal(ds_state_release_put(txn, "churn", 1, "v1", 2), 0);
    assert_int_equal(ds_state_release_put(txn, "churn", 2, "v2", 2), 0);
    assert_int_equal(ds_state_release_put(txn, "churn", 300, "v300", 4), 0);
    assert_int_equal(ds_state_release_put(txn, "churn2", 7, "other", 5), 0);
    assert_int_equal(ds_state_release_put(txn, "chur", 9, "prefix", 6), 0);
    assert_int_equal(ds_state_release_put(txn, "churn", 2, "v2", 2), 0); /* same bytes: ok */
    assert_int_equal(ds_state_release_put(txn, "churn", 2, "XX", 2), DS_EEXIST);
    ds_val_t v;
    assert_int_equal(ds_state_release_get(txn, "churn", 2, &v), 0);
    assert_memory_equal(v.data, "v2", 2);
    assert_int_equal(ds_state_release_get(txn, "churn", 3, &v), DS_ENOTFOUND);
    uint64_t latest;
    assert_int_equal(ds_state_release_latest(txn, "churn", &latest), 0);
    assert_int_equal(latest, 300);
    assert_int_equal(ds_state_release_latest(txn, "nosuch", &latest), DS_ENOTFOUND);
    rows_t r = {0};
    assert_int_equal(ds_state_releases_list(txn, "churn", 0, s_collect, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.rows[0], "churn||300|v300");
    assert_string_equal(r.rows[2], "churn||1|v1");
    rows_t r2 = {0};
    assert_int_equal(ds_state_releases_list(txn, "churn", 2, s_collect, &r2), 0);
    assert_int_equal(r2.n, 2);
    return 0;
}

static void test_releases_are_immutable_and_listed_newest_first(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_releases, NULL), 0);
}

static int s_release_max_version(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_int_equal(ds_state_release_put(txn, "s", UINT64_MAX, "max", 3), 0);
    assert_int_equal(ds_state_release_put(txn, "s", 5, "five", 4), 0);
    assert_int_equal(ds_state_release_put(txn, "t", 1, "t1", 2), 0);
    rows_t r = {0};
    assert_int_equal(ds_state_releases_list(txn, "s", 0, s_collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0], "s||18446744073709551615|max");
    return 0;
}

static void test_release_list_handles_max_version(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_release_max_version, NULL), 0);
}

static int s_assignments(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_int_equal(ds_state_assignment_put(txn, "w1", "svcB", "b", 1), 0);
    assert_int_equal(ds_state_assignment_put(txn, "w1", "svcA", "a", 1), 0);
    assert_int_equal(ds_state_assignment_put(txn, "w2", "svcA", "c", 1), 0);
    assert_int_equal(ds_state_assignment_put(txn, "w10", "svcA", "d", 1), 0);
    ds_val_t v;
    assert_int_equal(ds_state_assignment_get(txn, "w2", "svcA", &v), 0);
    assert_memory_equal(v.data, "c", 1);
    rows_t r = {0};
    assert_int_equal(ds_state_assignments_list(txn, "w1", s_collect, &r), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.rows[0], "w1|svcA|0|a");
    assert_string_equal(r.rows[1], "w1|svcB|0|b");
    rows_t all = {0};
    assert_int_equal(ds_state_assignments_list(txn, NULL, s_collect, &all), 0);
    assert_int_equal(all.n, 4);
    assert_int_equal(ds_state_assignment_del(txn, "w1", "svcA"), 0);
    assert_int_equal(ds_state_assignment_get(txn, "w1", "svcA", &v), DS_ENOTFOUND);
    rows_t stop = {.stop_after = 1};
    assert_int_equal(ds_state_assignments_list(txn, NULL, s_collect, &stop), 0);
    assert_int_equal(stop.n, 1);
    return 0;
}

static void test_assignments_list_by_worker(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_assignments, NULL), 0);
}

static int s_history(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    uint64_t seq = 0;
    for (int i = 1; i <= 5; i++) {
        char ev[8];
        snprintf(ev, sizeof ev, "ev%d", i);
        assert_int_equal(ds_state_history_append(txn, "svc", ev, strlen(ev), &seq), 0);
        assert_int_equal(seq, i);
    }
    assert_int_equal(ds_state_history_append(txn, "svc2", "x", 1, &seq), 0);
    assert_int_equal(seq, 1);
    rows_t r = {0};
    assert_int_equal(ds_state_history_list(txn, "svc", 3, s_collect, &r), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.rows[0], "svc||5|ev5");
    assert_string_equal(r.rows[2], "svc||3|ev3");
    rows_t none = {0};
    assert_int_equal(ds_state_history_list(txn, "nosuch", 0, s_collect, &none), 0);
    assert_int_equal(none.n, 0);
    return 0;
}

static void test_history_appends_in_order_and_lists_newest_first(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_history, NULL), 0);
}

static int s_fail_list(void *ctx, const ds_state_row_t *row)
{
    (void)ctx;
    (void)row;
    return DS_ECONFLICT;
}

static int s_list_error(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_int_equal(ds_state_put(txn, DS_TABLE_WORKERS, "w", "x", 1), 0);
    return ds_state_list(txn, DS_TABLE_WORKERS, s_fail_list, NULL);
}

static void test_list_callback_error_is_returned(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_store_write(fx->s, s_list_error, NULL), DS_ECONFLICT);
}

typedef struct {
    ds_db_t db;
    const char *key;
    size_t klen;
    const char *val;
    size_t vlen;
} raw_t;

static int s_raw(ds_txn_t *txn, void *ctx)
{
    raw_t *r = ctx;
    return ds_txn_put(txn, r->db, r->key, r->klen, r->val, r->vlen, 0);
}

static int s_list_workers(ds_txn_t *txn, void *ctx)
{
    rows_t *r = ctx;
    return ds_state_list(txn, DS_TABLE_WORKERS, s_collect, r);
}

static int s_list_history(ds_txn_t *txn, void *ctx)
{
    rows_t *r = ctx;
    return ds_state_history_list(txn, "s", 0, s_collect, r);
}

static void test_malformed_stored_keys_and_applied_return_ecorrupt(void **state)
{
    fx_t *fx = *state;
    raw_t r = {DS_DB_WORKERS, "w\0x", 3, "v", 1};
    assert_int_equal(ds_store_write(fx->s, s_raw, &r), 0);
    rows_t rows = {0};
    assert_int_equal(ds_store_read(fx->s, s_list_workers, &rows), DS_ECORRUPT);
    raw_t h = {DS_DB_HISTORY, "s\0abc", 5, "v", 1}; /* seq part too short */
    assert_int_equal(ds_store_write(fx->s, s_raw, &h), 0);
    assert_int_equal(ds_store_read(fx->s, s_list_history, &rows), DS_ECORRUPT);
    raw_t a = {DS_DB_STATE_META, "applied", 7, "123", 3};
    assert_int_equal(ds_store_write(fx->s, s_raw, &a), 0);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->s, &applied), DS_ECORRUPT);
    assert_int_equal(ds_state_apply(fx->s, 1, 0, NULL, NULL, NULL), DS_ECORRUPT);
}

static void test_key_validation_is_strict(void **state)
{
    (void)state;
    assert_true(ds_state_key_valid(DS_TABLE_SERVICES, (const uint8_t *)"a", 1));
    assert_false(ds_state_key_valid(DS_TABLE_SERVICES, (const uint8_t *)"", 0));
    assert_false(ds_state_key_valid(DS_TABLE_SERVICES, NULL, 1));
    uint8_t rel[10] = {'s', 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_true(ds_state_key_valid(DS_TABLE_RELEASES, rel, 10));
    rel[9] = 0; /* version 0 */
    assert_false(ds_state_key_valid(DS_TABLE_RELEASES, rel, 10));
    assert_false(ds_state_key_valid(DS_TABLE_ASSIGNMENTS, (const uint8_t *)"w", 1));
    assert_false(ds_state_key_valid(DS_TABLE_ASSIGNMENTS, (const uint8_t *)"w\0", 2));
    assert_true(ds_state_key_valid(DS_TABLE_ASSIGNMENTS, (const uint8_t *)"w\0s", 3));
    assert_false(ds_state_key_valid((ds_state_table_t)42, (const uint8_t *)"a", 1));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, ds_test_store_setup, ds_test_store_teardown)
    const struct CMUnitTest tests[] = {
        T(test_apply_records_applied_index_with_changes),
        T(test_apply_refuses_duplicate_index),
        T(test_apply_refuses_gap_unless_after_snapshot),
        T(test_rejected_command_discards_changes_but_advances_index),
        T(test_fatal_apply_error_changes_nothing),
        T(test_apply_in_place_keeps_changes_and_fails_on_any_error),
        T(test_apply_txn_batches_several_entries_in_one_commit),
        T(test_name_keyed_tables_put_get_list_del),
        T(test_bad_names_and_values_are_einval),
        T(test_releases_are_immutable_and_listed_newest_first),
        T(test_release_list_handles_max_version),
        T(test_assignments_list_by_worker),
        T(test_history_appends_in_order_and_lists_newest_first),
        T(test_list_callback_error_is_returned),
        T(test_malformed_stored_keys_and_applied_return_ecorrupt),
        cmocka_unit_test(test_key_validation_is_strict),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
