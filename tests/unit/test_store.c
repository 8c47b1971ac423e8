/*  tests/unit/test_store.c - ds_store_t: open rules, txn wrapper, map growth,
    the batch transaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* ---- the batch transaction ------------------------------------------- */

/* Returns 0 when `key` holds exactly the string `want`, DS_ENOTFOUND when
   it is missing, or 1 when it holds something else. No cmocka asserts, so
   a forked child can use it too. */
static int s_check_key(ds_store_t *s, const char *key, const char *want)
{
    get_t g = {.key = key};
    int rc = ds_store_read(s, s_get_fn, &g);
    if (rc)
        return rc;
    if (g.len != strlen(want) || memcmp(g.got, want, g.len) != 0)
        return 1;
    return 0;
}

static void test_batch_write_visible_at_once_and_durable_after_commit(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(ds_store_batch_commit(fx->s), 0); /* no batch: nothing to do */

    put_t p1 = {"b1", "one", 3, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p1), 0);
    assert_int_equal(p1.calls, 1);
    assert_int_equal(ds_store_batch_writes(fx->s), 1);
    assert_int_equal(s_check_key(fx->s, "b1", "one"), 0); /* read inside the batch */

    put_t p2 = {"b2", "two", 3, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p2), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 2);
    assert_int_equal(s_check_key(fx->s, "b1", "one"), 0);
    assert_int_equal(s_check_key(fx->s, "b2", "two"), 0);

    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "b1", "one"), 0); /* read outside any batch */
    assert_int_equal(s_check_key(fx->s, "b2", "two"), 0);

    ds_store_destroy(&fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "b1", "one"), 0);
    assert_int_equal(s_check_key(fx->s, "b2", "two"), 0);
}

static int s_batch_put_then_fail(ds_txn_t *txn, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    int rc = ds_txn_put(txn, DS_DB_SERVICES, "bad", 3, "x", 1, 0);
    if (rc)
        return rc;
    /* it overwrites an earlier batch write too: that must come back */
    rc = ds_txn_put(txn, DS_DB_SERVICES, "good1", 5, "clobbered", 9, 0);
    if (rc)
        return rc;
    return DS_ECONFLICT;
}

static void test_batch_failed_fn_discards_only_its_own_changes(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t p1 = {"good1", "g1", 2, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p1), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 1);

    int calls = 0;
    assert_int_equal(ds_store_batch_write(fx->s, s_batch_put_then_fail, &calls), DS_ECONFLICT);
    assert_int_equal(calls, 1);
    assert_int_equal(ds_store_batch_writes(fx->s), 1); /* the failed call does not count */
    assert_int_equal(s_check_key(fx->s, "good1", "g1"), 0);
    assert_int_equal(s_check_key(fx->s, "bad", "x"), DS_ENOTFOUND);

    /* the batch goes on after the failure */
    put_t p2 = {"good2", "g2", 2, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p2), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 2);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);

    ds_store_destroy(&fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "good1", "g1"), 0);
    assert_int_equal(s_check_key(fx->s, "good2", "g2"), 0);
    assert_int_equal(s_check_key(fx->s, "bad", "x"), DS_ENOTFOUND);
}

static void test_batch_failed_first_fn_leaves_nothing(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    int calls = 0;
    assert_int_equal(ds_store_batch_write(fx->s, s_batch_put_then_fail, &calls), DS_ECONFLICT);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "bad", "x"), DS_ENOTFOUND);
    /* an ordinary write after it works and commits */
    put_t p = {"w", "1", 1, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &p), 0);
    ds_store_destroy(&fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "w", "1"), 0);
    assert_int_equal(s_check_key(fx->s, "bad", "x"), DS_ENOTFOUND);
}

static void test_store_write_and_write_lazy_commit_open_batch_first(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t b1 = {"batch1", "b1", 2, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &b1), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 1);
    put_t w1 = {"write1", "w1", 2, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &w1), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "batch1", "b1"), 0);
    assert_int_equal(s_check_key(fx->s, "write1", "w1"), 0);

    put_t b2 = {"batch2", "b2", 2, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &b2), 0);
    put_t b3 = {"batch3", "b3", 2, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &b3), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 2);
    put_t w2 = {"write2", "w2", 2, 0};
    assert_int_equal(ds_store_write_lazy(fx->s, s_put_fn, &w2), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);

    /* a later write overwrites what the batch wrote: order is kept */
    put_t b4 = {"shared", "batch", 5, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &b4), 0);
    put_t w3 = {"shared", "write", 5, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &w3), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);

    ds_store_destroy(&fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "batch1", "b1"), 0);
    assert_int_equal(s_check_key(fx->s, "write1", "w1"), 0);
    assert_int_equal(s_check_key(fx->s, "batch2", "b2"), 0);
    assert_int_equal(s_check_key(fx->s, "batch3", "b3"), 0);
    assert_int_equal(s_check_key(fx->s, "write2", "w2"), 0);
    assert_int_equal(s_check_key(fx->s, "shared", "write"), 0);
}

static void test_destroy_commits_open_batch(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t p = {"only", "in-batch", 8, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 1);
    ds_store_destroy(&fx->s);
    assert_null(fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "only", "in-batch"), 0);
}

/* ---- the batch hook ------------------------------------------------------ */

typedef struct {
    int calls;
    int fail; /* return this (0: succeed) */
} hook_t;

static int s_hook(void *ctx, char *why, size_t whylen)
{
    hook_t *h = ctx;
    h->calls++;
    if (h->fail)
        snprintf(why, whylen, "the log could not be flushed");
    return h->fail;
}

/*  The hook runs before every commit of the batch, wherever it comes
    from, and never when there is no batch. */
static void test_batch_hook_runs_before_every_batch_commit(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    hook_t h = {0};
    ds_store_set_batch_hook(fx->s, s_hook, &h);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    put_t plain = {"w", "plain", 5, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &plain), 0);
    assert_int_equal(h.calls, 0); /* no batch open: nothing to flush for */

    put_t p1 = {"h1", "one", 3, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p1), 0);
    assert_int_equal(h.calls, 0);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    assert_int_equal(h.calls, 1);

    put_t p2 = {"h2", "two", 3, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p2), 0);
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &plain), 0); /* commits the batch first */
    assert_int_equal(h.calls, 2);

    put_t p3 = {"h3", "three", 5, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p3), 0);
    ds_store_destroy(&fx->s); /* commits the batch: the hook runs */
    assert_int_equal(h.calls, 3);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "h3", "three"), 0);
}

/*  A failing hook discards the batch: the commit fails with its code and
    reason, and nothing the batch held reaches the file. */
static void test_batch_hook_failure_discards_the_batch(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    hook_t h = {.fail = DS_EIO};
    ds_store_set_batch_hook(fx->s, s_hook, &h);
    put_t p = {"lost", "never", 5, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(ds_store_batch_commit(fx->s), DS_EIO);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "the log could not be flushed"));
    assert_int_equal(ds_store_batch_writes(fx->s), 0);
    assert_int_equal(s_check_key(fx->s, "lost", "never"), DS_ENOTFOUND);

    /* Cleared, the store commits again. */
    ds_store_set_batch_hook(fx->s, NULL, NULL);
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    ds_store_destroy(&fx->s);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "lost", "never"), 0);
}

/*  Runs `body` in a forked child on the store at `path` (opened there
    with real fsync). The child never calls cmocka: `body` returns 0 to
    have the child kill itself with SIGKILL, without ds_store_destroy, as a
    crash would; any other value becomes the child's exit code. Waits at
    most 10 s and fails the test unless the child died of SIGKILL. */
typedef int (*s_child_fn)(ds_store_t *s);

static void s_crash_child(const char *path, s_child_fn body)
{
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ds_store_opts_t o;
        ds_store_opts_default(&o);
        ds_store_t *s = NULL;
        if (ds_store_open(&s, path, &o, NULL, 0) != 0)
            _exit(100);
        int code = body(s);
        if (code)
            _exit(code);
        kill(getpid(), SIGKILL);
        _exit(101); /* not reached */
    }
    int st = 0;
    pid_t got = 0;
    uint64_t deadline = ds_test_now_ms() + 10000;
    while ((got = waitpid(pid, &st, WNOHANG)) == 0 && ds_test_now_ms() < deadline)
        ds_test_sleep_ms(5);
    if (got == 0) {
        kill(pid, SIGKILL);
        (void)waitpid(pid, &st, 0);
        fail_msg("child %d did not finish within 10 s", (int)pid);
    }
    assert_int_equal(got, pid);
    if (WIFEXITED(st))
        fail_msg("child failed before the crash: exit code %d", WEXITSTATUS(st));
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
}

static int s_child_write_then_batch(ds_store_t *s)
{
    put_t w = {"committed", "c", 1, 0};
    if (ds_store_write(s, s_put_fn, &w) != 0)
        return 1;
    put_t b = {"batched", "b", 1, 0};
    if (ds_store_batch_write(s, s_put_fn, &b) != 0)
        return 2;
    if (ds_store_batch_writes(s) != 1)
        return 3;
    if (s_check_key(s, "batched", "b") != 0)
        return 4;
    return 0;
}

static void test_crash_loses_batch_but_not_committed_write(void **state)
{
    fx_t *fx = *state;
    s_crash_child(fx->path, s_child_write_then_batch);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "committed", "c"), 0);
    assert_int_equal(s_check_key(fx->s, "batched", "b"), DS_ENOTFOUND);
    /* the dead child held LMDB's write lock: writing works again */
    put_t p = {"after", "a", 1, 0};
    assert_int_equal(ds_store_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p), 0);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
}

static int s_child_batch_commit_then_batch(ds_store_t *s)
{
    put_t b1 = {"kept", "k", 1, 0};
    if (ds_store_batch_write(s, s_put_fn, &b1) != 0)
        return 1;
    if (ds_store_batch_commit(s) != 0)
        return 2;
    put_t b2 = {"lost", "l", 1, 0};
    if (ds_store_batch_write(s, s_put_fn, &b2) != 0)
        return 3;
    return 0;
}

static void test_crash_keeps_what_batch_commit_committed(void **state)
{
    fx_t *fx = *state;
    s_crash_child(fx->path, s_child_batch_commit_then_batch);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "kept", "k"), 0);
    assert_int_equal(s_check_key(fx->s, "lost", "l"), DS_ENOTFOUND);
}

static int s_child_batch_then_write(ds_store_t *s)
{
    put_t b = {"batched", "b", 1, 0};
    if (ds_store_batch_write(s, s_put_fn, &b) != 0)
        return 1;
    put_t w = {"written", "w", 1, 0};
    if (ds_store_write_lazy(s, s_put_fn, &w) != 0)
        return 2;
    if (ds_store_batch_writes(s) != 0)
        return 3;
    return 0;
}

static void test_crash_after_store_write_keeps_batch_it_committed(void **state)
{
    fx_t *fx = *state;
    s_crash_child(fx->path, s_child_batch_then_write);
    s_open(fx, 0, 0);
    assert_int_equal(s_check_key(fx->s, "batched", "b"), 0);
    assert_int_equal(s_check_key(fx->s, "written", "w"), 0);
}

/* Writes value number `i` (`size` bytes of the byte i) under key "big<i>". */
typedef struct {
    int i;
    size_t size;
    uint8_t *buf;
} big_t;

static int s_big_put(ds_txn_t *txn, void *ctx)
{
    big_t *b = ctx;
    char key[16];
    snprintf(key, sizeof key, "big%d", b->i);
    memset(b->buf, (uint8_t)b->i, b->size);
    return ds_txn_put(txn, DS_DB_SERVICES, key, strlen(key), b->buf, b->size, 0);
}

/* Checks values 0..n-1 written by s_big_put; returns 0 or the first bad index + 1. */
typedef struct {
    int n;
    size_t size;
} bigcheck_t;

static int s_big_check(ds_txn_t *txn, void *ctx)
{
    bigcheck_t *c = ctx;
    for (int i = 0; i < c->n; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        ds_val_t v;
        if (ds_txn_get(txn, DS_DB_SERVICES, key, strlen(key), &v) != 0 || v.len != c->size)
            return i + 1;
        for (size_t j = 0; j < v.len; j++)
            if (v.data[j] != (uint8_t)i)
                return i + 1;
    }
    return 0;
}

static void test_batch_grows_map_and_keeps_every_write(void **state)
{
    fx_t *fx = *state;
    const size_t map = 1 << 20, max = 64 << 20, size = 64 * 1024;
    const int n = 100;
    s_open(fx, map, max);
    assert_int_equal(ds_store_map_size(fx->s), map);
    big_t b = {.size = size, .buf = malloc(size)};
    assert_non_null(b.buf);
    for (b.i = 0; b.i < n; b.i++) {
        int rc = ds_store_batch_write(fx->s, s_big_put, &b);
        if (rc)
            fail_msg("batch write %d of %d: %s (%s)", b.i, n, ds_strerror(rc),
                     ds_store_errmsg(fx->s));
    }
    free(b.buf);
    assert_true(ds_store_map_size(fx->s) > map);
    assert_true(ds_store_map_size(fx->s) <= max);
    assert_true(ds_store_batch_writes(fx->s) > 0); /* a batch is still open */
    bigcheck_t c = {.n = n, .size = size};
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0); /* inside the batch */
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
    ds_store_destroy(&fx->s);
    s_open(fx, map, max);
    assert_true(ds_store_map_size(fx->s) > map); /* the grown map is adopted */
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
}

/* Counts how many of values 0..n-1 written by s_big_put are readable. */
static int s_big_count(ds_txn_t *txn, void *ctx)
{
    int *n = ctx;
    int found = 0;
    for (int i = 0; i < *n; i++) {
        char key[16];
        snprintf(key, sizeof key, "big%d", i);
        ds_val_t v;
        if (ds_txn_get(txn, DS_DB_SERVICES, key, strlen(key), &v) == 0)
            found++;
    }
    *n = found;
    return 0;
}

/*  Small values fill the map one page at a time, so the put that finds
    the map full leaves no page free for the batch's own commit (which
    writes the free list): growth must still work, and must not lose what
    the batch held. */
static void test_batch_grows_map_with_small_values(void **state)
{
    fx_t *fx = *state;
    const size_t map = 1 << 20, max = 64 << 20, size = 4000;
    const int n = 400;
    s_open(fx, map, max);
    big_t b = {.size = size, .buf = malloc(size)};
    assert_non_null(b.buf);
    for (b.i = 0; b.i < n; b.i++) {
        int rc = ds_store_batch_write(fx->s, s_big_put, &b);
        if (rc) {
            char msg[DS_STORE_ERRMSG_SIZE];
            snprintf(msg, sizeof msg, "%s", ds_store_errmsg(fx->s));
            int still = b.i;
            assert_int_equal(ds_store_read(fx->s, s_big_count, &still), 0);
            free(b.buf);
            fail_msg("batch write %d of %d: %s (%s); map %zu of max %zu; %d of the %d earlier "
                     "writes still readable",
                     b.i, n, ds_strerror(rc), msg, ds_store_map_size(fx->s), max, still, b.i);
        }
    }
    free(b.buf);
    assert_true(ds_store_map_size(fx->s) > map);
    bigcheck_t c = {.n = n, .size = size};
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    ds_store_destroy(&fx->s);
    s_open(fx, map, max);
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
}

/*  At max_map_size the batch stops with DS_ESTORE_FULL, and every write
    it accepted before is still there, committed. */
static void test_batch_at_max_map_size_fails_cleanly_and_keeps_accepted_writes(void **state)
{
    fx_t *fx = *state;
    const size_t map = 1 << 20, max = 2 << 20, size = 4000;
    s_open(fx, map, max);
    big_t b = {.size = size, .buf = malloc(size)};
    assert_non_null(b.buf);
    int rc = 0;
    for (b.i = 0; b.i < 2000 && rc == 0; b.i++)
        rc = ds_store_batch_write(fx->s, s_big_put, &b);
    free(b.buf);
    assert_int_equal(rc, DS_ESTORE_FULL);
    assert_non_null(strstr(ds_store_errmsg(fx->s), "max_map_size"));
    int accepted = b.i - 1;
    assert_true(accepted > 100);
    bigcheck_t c = {.n = accepted, .size = size};
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
    ds_store_destroy(&fx->s);
    s_open(fx, map, max);
    assert_int_equal(ds_store_read(fx->s, s_big_check, &c), 0);
}

/* ---- detached reads (another thread) ---------------------------------- */

#define S_ROWS_PER_WRITE 8
#define S_ROW_SIZE       (16 * 1024)

/*  The owner's write: S_ROWS_PER_WRITE more rows and, in the same
    transaction, the count of rows ("n" in RAFT_META). */
static int s_rows_and_count(ds_txn_t *txn, void *ctx)
{
    uint64_t *n = ctx;
    uint8_t *val = malloc(S_ROW_SIZE);
    assert_non_null(val);
    memset(val, 0x5a, S_ROW_SIZE);
    int rc = 0;
    for (int i = 0; i < S_ROWS_PER_WRITE && rc == 0; i++) {
        char key[24];
        snprintf(key, sizeof key, "r%06llu", (unsigned long long)(*n + (uint64_t)i));
        rc = ds_txn_put(txn, DS_DB_SERVICES, key, strlen(key), val, S_ROW_SIZE, 0);
    }
    free(val);
    uint8_t count[8];
    ds_store_put_u64(count, *n + S_ROWS_PER_WRITE);
    return rc ? rc : ds_txn_put(txn, DS_DB_RAFT_META, "n", 1, count, 8, 0);
}

typedef struct {
    ds_store_t *s;
    atomic_bool stop;
    int reads, mismatches, errors;
    char err[DS_STORE_ERRMSG_SIZE];
} reader_t;

/*  In one read transaction: the rows counted must equal "n". */
static int s_count_rows(ds_txn_t *txn, void *ctx)
{
    reader_t *r = ctx;
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_RAFT_META, "n", 1, &v);
    uint64_t want = rc == 0 && v.len == 8 ? ds_store_get_u64(v.data) : 0;
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    ds_cursor_t *c = NULL;
    if ((rc = ds_cursor_open(txn, DS_DB_SERVICES, &c)) != 0)
        return rc;
    uint64_t got = 0;
    ds_val_t k;
    for (rc = ds_cursor_get(c, DS_CURSOR_FIRST, NULL, 0, &k, &v); rc == 0;
         rc = ds_cursor_get(c, DS_CURSOR_NEXT, NULL, 0, &k, &v))
        got += v.len == S_ROW_SIZE && v.data[S_ROW_SIZE - 1] == 0x5a;
    ds_cursor_destroy(&c);
    r->mismatches += got != want;
    return rc == DS_ENOTFOUND ? 0 : rc;
}

static void *s_reader(void *arg)
{
    reader_t *r = arg;
    for (int i = 0; i < 100000 && !atomic_load(&r->stop); i++) {
        if (ds_store_read_detached(r->s, s_count_rows, r, r->err, sizeof r->err) != 0)
            r->errors++;
        r->reads++;
    }
    return NULL;
}

/*  A thread reads the committed state over and over while the owner
    writes 5 MB through a map that starts at 256 KiB: each read sees a
    whole transaction, and the owner's map growth (which LMDB allows only
    with no transaction active) waits for the reads instead of pulling
    the map from under them. */
static void test_detached_reads_run_beside_writes_and_map_growth(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 256 * 1024, 64 << 20);
    reader_t r = {.s = fx->s};
    atomic_init(&r.stop, false);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, s_reader, &r), 0);
    uint64_t n = 0;
    for (int w = 0; w < 40; w++, n += S_ROWS_PER_WRITE)
        assert_int_equal(ds_store_write(fx->s, s_rows_and_count, &n), 0);
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    assert_true(ds_store_map_size(fx->s) >= 4 << 20);
    assert_true(r.reads > 0);
    if (r.errors || r.mismatches)
        fail_msg("%d of %d detached reads failed (%s), %d saw a partial write", r.errors, r.reads,
                 r.err, r.mismatches);
    /* and one more after the writes sees them all */
    r.mismatches = 0;
    assert_int_equal(ds_store_read_detached(fx->s, s_count_rows, &r, r.err, sizeof r.err), 0);
    assert_int_equal(r.mismatches, 0);
}

static int s_fail_fn(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    return ds_txn_fail(txn, DS_ECORRUPT, "detached read found %s", "rot");
}

/*  A detached read does not see the owner's open batch, and its failure
    is described in the caller's buffer, not in the store's message
    (which belongs to the owner's thread). */
static void test_detached_read_sees_committed_state_and_keeps_its_own_error(void **state)
{
    fx_t *fx = *state;
    s_open(fx, 0, 0);
    put_t p = {"batched", "v", 1, 0};
    assert_int_equal(ds_store_batch_write(fx->s, s_put_fn, &p), 0);
    get_t g = {.key = "batched"};
    char err[DS_STORE_ERRMSG_SIZE];
    assert_int_equal(ds_store_read_detached(fx->s, s_get_fn, &g, err, sizeof err), DS_ENOTFOUND);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    assert_int_equal(ds_store_read_detached(fx->s, s_get_fn, &g, err, sizeof err), 0);
    assert_int_equal(g.got[0], 'v');

    assert_int_equal(ds_store_read_detached(fx->s, s_fail_fn, NULL, err, sizeof err), DS_ECORRUPT);
    assert_string_equal(err, "detached read found rot");
    assert_null(strstr(ds_store_errmsg(fx->s), "rot"));
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
        cmocka_unit_test_setup_teardown(test_batch_write_visible_at_once_and_durable_after_commit,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_failed_fn_discards_only_its_own_changes, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_failed_first_fn_leaves_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_store_write_and_write_lazy_commit_open_batch_first,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_commits_open_batch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_hook_runs_before_every_batch_commit, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_hook_failure_discards_the_batch, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_loses_batch_but_not_committed_write, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_keeps_what_batch_commit_committed, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_store_write_keeps_batch_it_committed,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_grows_map_and_keeps_every_write, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_batch_at_max_map_size_fails_cleanly_and_keeps_accepted_writes, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_batch_grows_map_with_small_values, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_detached_reads_run_beside_writes_and_map_growth,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_detached_read_sees_committed_state_and_keeps_its_own_error, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
