/*  tests/unit/test_store.c - ds_store_t: open rules, txn wrapper, map growth. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/store.h"
#include "tests/testutil.h"

typedef struct {
    char dir[512];
    char path[600];
    ds_store_t *s;
} fx_t;

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("store", fx->dir, sizeof fx->dir), 0);
    snprintf(fx->path, sizeof fx->path, "%s/db", fx->dir);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_store_destroy(&fx->s);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void s_open(fx_t *fx, size_t map, size_t max)
{
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true; /* unit tests: durability is tested in integration */
    if (map)
        o.map_size = map;
    if (max)
        o.max_map_size = max;
    char err[256];
    int rc = ds_store_open(&fx->s, fx->path, &o, err, sizeof err);
    if (rc)
        fail_msg("open: %s", err);
}

typedef struct {
    const char *key;
    const void *val;
    size_t len;
    int calls;
} put_t;

static int s_put_fn(ds_txn_t *txn, void *ctx)
{
    put_t *p = ctx;
    p->calls++;
    return ds_txn_put(txn, DS_DB_SERVICES, p->key, strlen(p->key), p->val, p->len, 0);
}

typedef struct {
    const char *key;
    char got[64];
    size_t len;
} get_t;

static int s_get_fn(ds_txn_t *txn, void *ctx)
{
    get_t *g = ctx;
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_SERVICES, g->key, strlen(g->key), &v);
    if (rc)
        return rc;
    g->len = v.len < sizeof g->got ? v.len : sizeof g->got;
    memcpy(g->got, v.data, g->len);
    return 0;
}

static void test_open_creates_dir_0700_and_files_0600(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    char f[700];
    snprintf(f, sizeof f, "%s/data.mdb", fx->path);
    assert_int_equal(stat(f, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(ds_store_map_size(fx->s), DS_STORE_DEFAULT_MAP_SIZE);
    assert_string_equal(ds_store_dir(fx->s), fx->path);
}

static void test_open_refuses_world_writable_dir_with_eperm(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(mkdir(fx->path, 0700), 0);
    assert_int_equal(chmod(fx->path, 0777), 0);
    char err[256] = "";
    ds_store_t *s = NULL;
    assert_int_equal(ds_store_open(&s, fx->path, NULL, err, sizeof err), DS_EPERM);
    assert_null(s);
    assert_non_null(strstr(err, "chmod 700"));
}

static void test_open_refuses_file_as_dir_and_missing_parent(void **state)
{
    fx_t *fx = *state;
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fclose(f);
    ds_store_t *s = NULL;
    char err[256];
    assert_int_equal(ds_store_open(&s, fx->path, NULL, err, sizeof err), DS_EINVAL);
    char deep[700];
    snprintf(deep, sizeof deep, "%s/no/such/dir", fx->dir);
    assert_int_equal(ds_store_open(&s, deep, NULL, err, sizeof err), DS_EIO);
    assert_null(s);
}

static void test_open_rejects_max_below_initial(void **state)
{
    fx_t *fx = *state;
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.map_size = 1 << 20;
    o.max_map_size = 1 << 19;
    ds_store_t *s = NULL;
    assert_int_equal(ds_store_open(&s, fx->path, &o, NULL, 0), DS_EINVAL);
    assert_int_equal(ds_store_open(&s, "", NULL, NULL, 0), DS_EINVAL);
}

static void test_open_garbage_data_file_returns_ecorrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(mkdir(fx->path, 0700), 0);
    char f[700];
    snprintf(f, sizeof f, "%s/data.mdb", fx->path);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    for (int i = 0; i < 8192; i++)
        fputc(0x5a, fp);
    fclose(fp);
    ds_store_t *s = NULL;
    char err[256];
    int rc = ds_store_open(&s, fx->path, NULL, err, sizeof err);
    assert_true(rc == DS_ECORRUPT || rc == DS_EIO);
    assert_null(s);
}

static void test_write_commits_and_read_sees_it_after_reopen(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t p = {"a", "hello", 5, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(p.calls, 1);
    ds_store_destroy(&fx->s);
    assert_null(fx->s);
    ds_store_destroy(&fx->s); /* NULL is fine */
    s_open(fx, 0, 0);
    get_t g = {.key = "a"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), 0);
    assert_int_equal(g.len, 5);
    assert_memory_equal(g.got, "hello", 5);
}

static int s_put_then_fail(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    int rc = ds_txn_put(txn, DS_DB_SERVICES, "x", 1, "1", 1, 0);
    assert_int_equal(rc, 0);
    return DS_ECONFLICT;
}

static void test_write_callback_error_aborts_everything(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_write(fx->s, s_put_then_fail, NULL), DS_ECONFLICT);
    get_t g = {.key = "x"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
}

static int s_errors_fn(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    ds_val_t v;
    assert_int_equal(ds_txn_get(txn, DS_DB_SERVICES, "nope", 4, &v), DS_ENOTFOUND);
    assert_int_equal(ds_txn_del(txn, DS_DB_SERVICES, "nope", 4), DS_ENOTFOUND);
    assert_int_equal(ds_txn_get(txn, DS_DB_SERVICES, "", 0, &v), DS_EINVAL);
    char big[DS_STORE_MAX_KEY + 1];
    memset(big, 'k', sizeof big);
    assert_int_equal(ds_txn_put(txn, DS_DB_SERVICES, big, sizeof big, "v", 1, 0), DS_EINVAL);
    assert_int_equal(ds_txn_put(txn, DS_DB_SERVICES, "k", 1, "v", 1, 0), 0);
    assert_int_equal(ds_txn_put(txn, DS_DB_SERVICES, "k", 1, "w", 1, DS_PUT_NOOVERWRITE),
                     DS_EEXIST);
    assert_int_equal(ds_txn_put(txn, DS_DB_SERVICES, "a", 1, "w", 1, DS_PUT_APPEND), DS_EEXIST);
    assert_false(ds_txn_failed(txn));
    assert_int_equal(ds_txn_del(txn, DS_DB_SERVICES, "k", 1), 0);
    return 0;
}

static void test_txn_maps_lmdb_errors_to_ds_codes(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_write(fx->s, s_errors_fn, NULL), 0);
}

static int s_ro_put(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_true(ds_txn_readonly(txn));
    return ds_txn_put(txn, DS_DB_SERVICES, "k", 1, "v", 1, 0);
}

static void test_put_in_read_txn_returns_einval(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_read(fx->s, s_ro_put, NULL), DS_EINVAL);
    assert_true(strlen(ds_store_errmsg(fx->s)) > 0);
}

typedef struct {
    int n;
    char keys[8][4];
} walk_t;

static int s_fill3(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    const char *k[] = {"b", "a", "c"};
    for (int i = 0; i < 3; i++) {
        int rc = ds_txn_put(txn, DS_DB_SERVICES, k[i], 1, "v", 1, 0);
        if (rc)
            return rc;
    }
    return 0;
}

static int s_walk_fn(ds_txn_t *txn, void *ctx)
{
    walk_t *w = ctx;
    ds_cursor_t *c = NULL;
    int rc = ds_cursor_open(txn, DS_DB_SERVICES, &c);
    if (rc)
        return rc;
    ds_val_t k;
    for (rc = ds_cursor_get(c, DS_CURSOR_LAST, NULL, 0, &k, NULL); rc == 0;
         rc = ds_cursor_get(c, DS_CURSOR_PREV, NULL, 0, &k, NULL)) {
        memcpy(w->keys[w->n], k.data, 1);
        w->keys[w->n++][1] = '\0';
    }
    assert_int_equal(rc, DS_ENOTFOUND);
    assert_int_equal(ds_cursor_get(c, DS_CURSOR_SEEK, "bb", 2, &k, NULL), 0);
    assert_memory_equal(k.data, "c", 1);
    assert_int_equal(ds_cursor_get(c, DS_CURSOR_SEEK, "d", 1, &k, NULL), DS_ENOTFOUND);
    ds_cursor_destroy(&c);
    ds_cursor_destroy(&c);
    return 0;
}

static int s_cursor_del_fn(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    ds_cursor_t *c = NULL;
    int rc = ds_cursor_open(txn, DS_DB_SERVICES, &c);
    assert_int_equal(rc, 0);
    assert_int_equal(ds_cursor_get(c, DS_CURSOR_FIRST, NULL, 0, NULL, NULL), 0);
    assert_int_equal(ds_cursor_del(c), 0);
    ds_cursor_destroy(&c);
    return 0;
}

static void test_cursor_walks_both_ways_seeks_and_deletes(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_write(fx->s, s_fill3, NULL), 0);
    walk_t w = {0};
    assert_int_equal(ds_store_read(fx->s, s_walk_fn, &w), 0);
    assert_int_equal(w.n, 3);
    assert_string_equal(w.keys[0], "c");
    assert_string_equal(w.keys[2], "a");
    assert_int_equal(ds_store_write(fx->s, s_cursor_del_fn, NULL), 0);
    get_t g = {.key = "a"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
}

static int s_clear_fn(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    return ds_txn_clear(txn, DS_DB_SERVICES);
}

static void test_clear_empties_database(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_write(fx->s, s_fill3, NULL), 0);
    assert_int_equal(ds_store_write(fx->s, s_clear_fn, NULL), 0);
    get_t g = {.key = "b"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
}

/* Writes `n` values of `size` bytes under keys k0..k(n-1). */
typedef struct {
    int n;
    size_t size;
    int calls;
} bulk_t;

static int s_bulk_fn(ds_txn_t *txn, void *ctx)
{
    bulk_t *b = ctx;
    b->calls++;
    uint8_t *val = malloc(b->size);
    assert_non_null(val);
    memset(val, 0xab, b->size);
    int rc = 0;
    for (int i = 0; i < b->n && rc == 0; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        rc = ds_txn_put(txn, DS_DB_SERVICES, key, strlen(key), val, b->size, 0);
    }
    free(val);
    return rc;
}

static void test_map_grows_when_full(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 256 * 1024, 16 << 20);
    assert_int_equal(ds_store_map_size(fx->s), 256 * 1024);
    bulk_t b = {.n = 64, .size = 16 * 1024};
    assert_int_equal(ds_store_write(fx->s, s_bulk_fn, &b), 0);
    assert_true(b.calls > 1);
    assert_true(ds_store_map_size(fx->s) > 256 * 1024);
    assert_true(ds_store_map_size(fx->s) <= 16 << 20);
    /* The grown map is adopted on reopen and the data is all there. */
    ds_store_destroy(&fx->s);
    s_open(fx, 256 * 1024, 16 << 20);
    get_t g = {.key = "k63"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), 0);
    assert_int_equal((uint8_t)g.got[0], 0xab);
}

static void test_store_full_at_max_bound_returns_estore_full(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 128 * 1024, 512 * 1024);
    bulk_t b = {.n = 64, .size = 16 * 1024};
    assert_int_equal(ds_store_write(fx->s, s_bulk_fn, &b), DS_ESTORE_FULL);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "max_map_size"));
    assert_int_equal(ds_store_map_size(fx->s), 512 * 1024);
    /* Nothing of the failed transaction is visible; small writes still work. */
    get_t g = {.key = "k0"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
    put_t p = {"small", "x", 1, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &p), 0);
}

static int s_swallow_full(ds_txn_t *txn, void *ctx)
{
    bulk_t *b = ctx;
    (void)s_bulk_fn(txn, b); /* ignores the error on purpose */
    return 0;
}

static void test_ignored_storage_error_is_not_committed(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 128 * 1024, 256 * 1024);
    bulk_t b = {.n = 64, .size = 16 * 1024};
    assert_int_equal(ds_store_write(fx->s, s_swallow_full, &b), DS_ESTORE_FULL);
    get_t g = {.key = "k0"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
}

static int s_nested_keep(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    return ds_txn_put(txn, DS_DB_SERVICES, "kept", 4, "1", 1, 0);
}

static int s_nested_drop(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    int rc = ds_txn_put(txn, DS_DB_SERVICES, "dropped", 7, "1", 1, 0);
    assert_int_equal(rc, 0);
    return DS_EINVAL;
}

static int s_nested_outer(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    assert_int_equal(ds_txn_nested(txn, s_nested_keep, NULL), 0);
    assert_int_equal(ds_txn_nested(txn, s_nested_drop, NULL), DS_EINVAL);
    assert_false(ds_txn_failed(txn));
    return 0;
}

static void test_nested_txn_discards_only_failed_child(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_write(fx->s, s_nested_outer, NULL), 0);
    get_t g = {.key = "kept"};
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), 0);
    g.key = "dropped";
    assert_int_equal(ds_store_read(fx->s, s_get_fn, &g), DS_ENOTFOUND);
}

static void test_copy_to_makes_openable_compact_copy(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t p = {"svc", "spec", 4, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &p), 0);
    char copy[700], dir2[700], moved[800];
    snprintf(copy, sizeof copy, "%s/copy.mdb", fx->dir);
    assert_int_equal(ds_store_copy_to(fx->s, copy), 0);
    assert_int_equal(ds_store_copy_to(fx->s, copy), DS_EEXIST);
    struct stat st;
    assert_int_equal(stat(copy, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(dir2, sizeof dir2, "%s/restored", fx->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    snprintf(moved, sizeof moved, "%s/data.mdb", dir2);
    assert_int_equal(rename(copy, moved), 0);
    ds_store_t *s2 = NULL;
    char err[256];
    assert_int_equal(ds_store_open(&s2, dir2, NULL, err, sizeof err), 0);
    get_t g = {.key = "svc"};
    assert_int_equal(ds_store_read(s2, s_get_fn, &g), 0);
    assert_memory_equal(g.got, "spec", 4);
    ds_store_destroy(&s2);
}

static void test_u64_helpers_are_big_endian(void **state)
{
    (void)state;
    uint8_t b[8];
    ds_store_put_u64(b, 0x0102030405060708ull);
    assert_int_equal(b[0], 1);
    assert_int_equal(b[7], 8);
    assert_true(ds_store_get_u64(b) == 0x0102030405060708ull);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_dir_0700_and_files_0600, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_world_writable_dir_with_eperm, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_file_as_dir_and_missing_parent, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_open_rejects_max_below_initial, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_open_garbage_data_file_returns_ecorrupt, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_write_commits_and_read_sees_it_after_reopen, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_write_callback_error_aborts_everything, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_txn_maps_lmdb_errors_to_ds_codes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_put_in_read_txn_returns_einval, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_cursor_walks_both_ways_seeks_and_deletes, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_clear_empties_database, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_map_grows_when_full, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_store_full_at_max_bound_returns_estore_full, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_ignored_storage_error_is_not_committed, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_nested_txn_discards_only_failed_child, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_to_makes_openable_compact_copy, s_setup,
                                        s_teardown),
        cmocka_unit_test(test_u64_helpers_are_big_endian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
