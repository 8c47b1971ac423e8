/*  tests/unit/test_fileio.c - storage/fileio.h: whole writes, directory
    creation and directory flushes, on real files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/fileio.h"
#include "tests/testutil.h"

static int s_setup(void **state)
{
    char *root = calloc(1, 512);
    assert_non_null(root);
    assert_int_equal(ds_test_mkdtemp("fileio", root, 512), 0);
    *state = root;
    return 0;
}

static int s_teardown(void **state)
{
    ds_test_rmrf(*state);
    free(*state);
    return 0;
}

static void test_write_all_writes_every_byte(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/f", (char *)*state);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    static uint8_t buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7);
    assert_int_equal(ds_fileio_write_all(fd, buf, sizeof buf), 0);
    close(fd);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, sizeof buf);
}

static void test_write_all_to_a_read_only_descriptor_fails(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/f", (char *)*state);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    errno = 0;
    assert_int_equal(ds_fileio_write_all(fd, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    close(fd);
}

static void test_mkdir_says_whether_it_made_the_directory(void **state)
{
    char dir[600], below[700];
    snprintf(dir, sizeof dir, "%s/d", (char *)*state);
    assert_int_equal(ds_fileio_mkdir(dir), 1);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(ds_fileio_mkdir(dir), 0);
    snprintf(below, sizeof below, "%s/missing/d", (char *)*state);
    assert_int_equal(ds_fileio_mkdir(below), -1);
    assert_int_equal(errno, ENOENT);
}

static void test_sync_dir_and_parent(void **state)
{
    char path[600];
    snprintf(path, sizeof path, "%s/f", (char *)*state);
    assert_int_equal(ds_fileio_sync_dir(*state), 0);
    assert_int_equal(ds_fileio_sync_parent(path), 0);    /* flushes the temp dir */
    assert_int_equal(ds_fileio_sync_parent("f"), 0);     /* "." */
    assert_int_equal(ds_fileio_sync_parent("/snap"), 0); /* "/" */
    assert_int_equal(ds_fileio_sync_dir(path), -1);      /* no such directory */
    assert_int_equal(errno, ENOENT);
    char *longer = malloc(8192);
    assert_non_null(longer);
    memset(longer, 'a', 8191);
    longer[8191] = '\0';
    assert_int_equal(ds_fileio_sync_parent(longer), -1);
    assert_int_equal(errno, ENAMETOOLONG);
    free(longer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_all_writes_every_byte, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_write_all_to_a_read_only_descriptor_fails, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_says_whether_it_made_the_directory, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_sync_dir_and_parent, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
