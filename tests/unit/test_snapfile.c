/*  tests/unit/test_snapfile.c - snapshot images in files of their own
    (storage/snapfile.h): durable write, checked read, pruning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "protocol/error.h"
#include "storage/snapfile.h"
#include "storage/state.h"
#include "storage/state_image.h"
#include "tests/testutil.h"

typedef struct {
    char root[512];
    char dir[600]; /* root/snap: created by the first write */
    uint8_t *image;
    size_t len; /* an image of the state at index 5 */
} fx_t;

static int s_put_service(ds_txn_t *txn, void *ctx)
{
    return ds_state_put(txn, DS_TABLE_SERVICES, ctx, "spec", 4);
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("snapfile", fx->root, sizeof fx->root), 0);
    snprintf(fx->dir, sizeof fx->dir, "%s/snap", fx->root);
    char db[700], err[256];
    snprintf(db, sizeof db, "%s/db", fx->root);
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.nosync = true;
    ds_store_t *s = NULL;
    if (ds_store_open(&s, db, &o, err, sizeof err) != 0)
        fail_msg("open: %s", err);
    for (uint64_t i = 1; i <= 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "svc-%llu", (unsigned long long)i);
        assert_int_equal(ds_state_apply(s, i, 0, s_put_service, name, NULL), 0);
    }
    assert_int_equal(ds_state_export(s, &fx->image, &fx->len), 0);
    ds_store_destroy(&s);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    free(fx->image);
    ds_test_rmrf(fx->root);
    free(fx);
    return 0;
}

static int s_count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void s_touch(const char *dir, const char *name)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("junk", f);
    fclose(f);
}

static void test_written_image_reads_back_whole(void **state)
{
    fx_t *fx = *state;
    char err[1024];
    assert_int_equal(ds_snapfile_write(fx->dir, 5, fx->image, fx->len, err, sizeof err), 0);
    assert_int_equal(s_count_files(fx->dir), 1); /* no temporary file left */
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(ds_snapfile_read(fx->dir, 5, &got, &len, err, sizeof err), 0);
    assert_int_equal(len, fx->len);
    assert_memory_equal(got, fx->image, len);
    free(got);
    struct stat st;
    assert_int_equal(stat(fx->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_missing_image_is_not_found(void **state)
{
    fx_t *fx = *state;
    char err[1024];
    uint8_t *got = (uint8_t *)"x";
    size_t len = 1;
    assert_int_equal(ds_snapfile_read(fx->dir, 5, &got, &len, err, sizeof err), DS_ENOTFOUND);
    assert_null(got);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, "0000000000000005.img"));
}

/*  A file under the right name that is not that image: another index,
    a torn (truncated) copy, a flipped byte. */
static void test_wrong_or_damaged_image_is_corrupt(void **state)
{
    fx_t *fx = *state;
    char err[1024];
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(ds_snapfile_write(fx->dir, 6, fx->image, fx->len, err, sizeof err), 0);
    assert_int_equal(ds_snapfile_read(fx->dir, 6, &got, &len, err, sizeof err), DS_ECORRUPT);
    assert_non_null(strstr(err, "it holds the state at index 5"));
    assert_int_equal(ds_snapfile_write(fx->dir, 5, fx->image, fx->len - 3, err, sizeof err), 0);
    assert_int_equal(ds_snapfile_read(fx->dir, 5, &got, &len, err, sizeof err), DS_ECORRUPT);
    uint8_t *bad = malloc(fx->len);
    assert_non_null(bad);
    memcpy(bad, fx->image, fx->len);
    bad[fx->len / 2] ^= 0x40;
    assert_int_equal(ds_snapfile_write(fx->dir, 5, bad, fx->len, err, sizeof err), 0);
    free(bad);
    assert_int_equal(ds_snapfile_read(fx->dir, 5, &got, &len, err, sizeof err), DS_ECORRUPT);
    assert_null(got);
    assert_non_null(strstr(err, "is not the snapshot image at index 5"));
}

static void test_prune_keeps_only_the_named_image(void **state)
{
    fx_t *fx = *state;
    char err[1024];
    assert_int_equal(ds_snapfile_prune(fx->dir, 5, err, sizeof err), 0); /* no directory yet */
    assert_int_equal(ds_snapfile_write(fx->dir, 5, fx->image, fx->len, err, sizeof err), 0);
    s_touch(fx->dir, "0000000000000009.img");     /* an image whose meta never committed */
    s_touch(fx->dir, "000000000000000a.img.tmp"); /* a crash during a write */
    assert_int_equal(ds_snapfile_prune(fx->dir, 5, err, sizeof err), 0);
    assert_int_equal(s_count_files(fx->dir), 1);
    uint8_t *got = NULL;
    size_t len = 0;
    assert_int_equal(ds_snapfile_read(fx->dir, 5, &got, &len, err, sizeof err), 0);
    free(got);
    assert_int_equal(ds_snapfile_prune(fx->dir, 0, err, sizeof err), 0); /* keeps none */
    assert_int_equal(s_count_files(fx->dir), 0);
}

static void test_write_where_no_directory_can_be_made_fails(void **state)
{
    fx_t *fx = *state;
    char file[700], dir[800], err[1024];
    snprintf(file, sizeof file, "%s/plain", fx->root);
    s_touch(fx->root, "plain");
    snprintf(dir, sizeof dir, "%s/snap", file); /* under a regular file */
    assert_int_equal(ds_snapfile_write(dir, 5, fx->image, fx->len, err, sizeof err), DS_EIO);
    assert_non_null(strstr(err, "cannot create"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_written_image_reads_back_whole, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_image_is_not_found, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_or_damaged_image_is_corrupt, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_only_the_named_image, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_write_where_no_directory_can_be_made_fails, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
