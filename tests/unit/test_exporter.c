/*  tests/unit/test_exporter.c - a state image exported on a thread of its
    own (storage/exporter.h), on a real LMDB store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol/error.h"
#include "storage/exporter.h"
#include "storage/snapfile.h"
#include "storage/state.h"
#include "storage/state_image.h"
#include "tests/testutil.h"

typedef ds_test_store_fx_t fx_t;

static int s_put_service(ds_txn_t *txn, void *ctx)
{
    return ds_state_put(txn, DS_TABLE_SERVICES, ctx, "spec", 4);
}

/*  Applies entries from..to, each putting service "svc-<index>", each
    in its own committed transaction. */
static void s_apply_services(fx_t *fx, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i <= to; i++) {
        char name[32];
        snprintf(name, sizeof name, "svc-%llu", (unsigned long long)i);
        assert_int_equal(ds_state_apply(fx->s, i, 0, s_put_service, name, NULL), 0);
    }
}

typedef struct {
    uint64_t index;
    char name[32];
} batched_t;

static int s_apply_in_batch(ds_txn_t *txn, void *ctx)
{
    batched_t *b = ctx;
    return ds_state_apply_txn(txn, b->index, 0, s_put_service, b->name, NULL);
}

static bool s_wait_done(const ds_exporter_t *ex)
{
    for (int i = 0; i < 5000 && !ds_exporter_done(ex); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    return ds_exporter_done(ex);
}

typedef struct {
    uint64_t rows;
} count_t;

static int s_count(void *ctx, ds_state_table_t table, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
    (void)table, (void)key, (void)klen, (void)val, (void)vlen;
    ((count_t *)ctx)->rows++;
    return 0;
}

/*  One export's outcome. */
typedef struct {
    int rc;
    uint8_t *image; /* the caller frees it */
    size_t len;
    uint64_t applied;
    char err[DS_STORE_ERRMSG_SIZE];
} export_t;

/*  Runs an export (writing the image to `dir` if not NULL) and checks
    that it reports done without being waited for; then takes its
    result. On failure nothing is handed out. */
static export_t s_export(fx_t *fx, const char *dir)
{
    export_t x = {0};
    ds_exporter_t *ex = NULL;
    if (ds_exporter_start(&ex, fx->s, dir, x.err, sizeof x.err) != 0)
        fail_msg("start: %s", x.err);
    if (!s_wait_done(ex))
        fail_msg("the export did not finish within 5 s");
    x.image = (uint8_t *)"untouched";
    x.len = x.applied = 1;
    x.rc = ds_exporter_finish(&ex, &x.image, &x.len, &x.applied, x.err, sizeof x.err);
    assert_null(ex);
    if (x.rc != 0) {
        assert_null(x.image);
        assert_int_equal(x.len, 0);
    }
    return x;
}

/*  The image holds the committed state and its applied index, and it
    parses (checksum, order, keys) as a follower would parse it. */
static void test_export_holds_the_committed_state_and_its_index(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 300);
    export_t x = s_export(fx, NULL);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.applied, 300);
    ds_state_image_info_t info;
    count_t c = {0};
    assert_int_equal(ds_state_image_parse(x.image, x.len, &info, s_count, &c, x.err, sizeof x.err),
                     0);
    assert_int_equal(info.applied, 300);
    assert_int_equal(c.rows, 300);
    free(x.image);
}

/*  With a snapshot directory, the thread also writes the image there,
    under its index, before it reports done. */
static void test_export_writes_the_image_file_when_asked(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 40);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/snap", fx->dir);
    export_t x = s_export(fx, dir);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.applied, 40);
    uint8_t *file = NULL;
    size_t flen = 0;
    assert_int_equal(ds_snapfile_read(dir, 40, &file, &flen, x.err, sizeof x.err), 0);
    assert_int_equal(flen, x.len);
    assert_memory_equal(file, x.image, x.len);
    free(file);
    free(x.image);
}

/*  When the image cannot be written, the export fails with the reason
    and hands out no image. */
static void test_export_whose_file_cannot_be_written_fails(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 3);
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data.mdb/snap", fx->dir); /* under a regular file */
    export_t x = s_export(fx, dir);
    assert_int_equal(x.rc, DS_EIO);
    assert_non_null(strstr(x.err, "cannot create"));
}

/*  Entries applied in the owner's open batch are not in the image (its
    index says so); once the batch commits, the next export has them. */
static void test_export_leaves_out_the_open_batch(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 10);
    batched_t b = {11, "svc-11"};
    assert_int_equal(ds_store_batch_write(fx->s, s_apply_in_batch, &b), 0);
    export_t x = s_export(fx, NULL);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.applied, 10);
    free(x.image);
    assert_int_equal(ds_store_batch_commit(fx->s), 0);
    x = s_export(fx, NULL);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.applied, 11);
    free(x.image);
}

static int s_put_malformed(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    return ds_txn_put(txn, ds_state_table_db(DS_TABLE_SERVICES), "a\0b", 3, "v", 1, 0);
}

/*  A stored key the image format refuses: the export fails with
    DS_ECORRUPT and says why, in the caller's buffer. */
static void test_export_of_a_malformed_row_fails_with_its_reason(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 3);
    assert_int_equal(ds_store_write(fx->s, s_put_malformed, NULL), 0);
    export_t x = s_export(fx, NULL);
    assert_int_equal(x.rc, DS_ECORRUPT);
    assert_non_null(strstr(x.err, "malformed key"));
}

/*  Destroying an exporter whose thread still runs waits for it and frees
    the image (the sanitizers' leak check sees it). */
static void test_destroy_waits_for_a_running_export(void **state)
{
    fx_t *fx = *state;
    s_apply_services(fx, 1, 200);
    ds_exporter_t *ex = NULL;
    char err[DS_STORE_ERRMSG_SIZE];
    assert_int_equal(ds_exporter_start(&ex, fx->s, NULL, err, sizeof err), 0);
    ds_exporter_destroy(&ex);
    assert_null(ex);
    ds_exporter_destroy(&ex); /* NULL is accepted */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_export_holds_the_committed_state_and_its_index,
                                        ds_test_store_setup, ds_test_store_teardown),
        cmocka_unit_test_setup_teardown(test_export_writes_the_image_file_when_asked,
                                        ds_test_store_setup, ds_test_store_teardown),
        cmocka_unit_test_setup_teardown(test_export_whose_file_cannot_be_written_fails,
                                        ds_test_store_setup, ds_test_store_teardown),
        cmocka_unit_test_setup_teardown(test_export_leaves_out_the_open_batch, ds_test_store_setup,
                                        ds_test_store_teardown),
        cmocka_unit_test_setup_teardown(test_export_of_a_malformed_row_fails_with_its_reason,
                                        ds_test_store_setup, ds_test_store_teardown),
        cmocka_unit_test_setup_teardown(test_destroy_waits_for_a_running_export,
                                        ds_test_store_setup, ds_test_store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
