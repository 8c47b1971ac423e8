/*  tests/unit/test_flusher.c - the background fdatasync thread
    (storage/flusher.h) on a real file: positions reported, the eventfd
    signalled, a failed flush final, and destroy with work pending. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/flusher.h"
#include "tests/testutil.h"

typedef struct {
    char dir[512];
    char path[600];
    int fd;
    ds_flusher_t *f;
} fx_t;

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("flusher", fx->dir, sizeof fx->dir), 0);
    snprintf(fx->path, sizeof fx->path, "%s/file", fx->dir);
    fx->fd = open(fx->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fx->fd >= 0);
    char err[256] = "";
    int rc = ds_flusher_new(&fx->f, err, sizeof err);
    if (rc)
        fail_msg("ds_flusher_new: %s", err);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_flusher_destroy(&fx->f);
    assert_null(fx->f);
    close(fx->fd);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static void s_write(int fd, size_t n)
{
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    assert_true(n <= sizeof buf);
    assert_int_equal(write(fd, buf, n), (ssize_t)n);
}

static void s_await_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10000), 1); /* bounded: a flush takes milliseconds */
}

static bool s_readable_now(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

static void test_flush_reports_the_requested_position_and_signals(void **state)
{
    fx_t *fx = *state;
    uint64_t pos = 99;
    assert_int_equal(ds_flusher_done(fx->f, &pos), 0);
    assert_int_equal(pos, 0);
    assert_false(s_readable_now(ds_flusher_fd(fx->f)));

    s_write(fx->fd, 100);
    ds_flusher_request(fx->f, fx->fd, 100);
    s_await_readable(ds_flusher_fd(fx->f));
    assert_int_equal(ds_flusher_done(fx->f, &pos), 0);
    assert_int_equal(pos, 100);
    assert_false(s_readable_now(ds_flusher_fd(fx->f))); /* done() cleared it */

    /* Many requests while flushes run: the last position wins. */
    for (uint64_t p = 200; p <= 2000; p += 100) {
        s_write(fx->fd, 100);
        ds_flusher_request(fx->f, fx->fd, p);
    }
    ds_flusher_request(fx->f, fx->fd, 150); /* an older position changes nothing */
    ds_flusher_wait(fx->f);
    assert_int_equal(ds_flusher_done(fx->f, &pos), 0);
    assert_int_equal(pos, 2000);
}

static void test_wait_with_nothing_requested_returns(void **state)
{
    fx_t *fx = *state;
    ds_flusher_wait(fx->f);
    uint64_t pos = 1;
    assert_int_equal(ds_flusher_done(fx->f, &pos), 0);
    assert_int_equal(pos, 0);
}

/*  fdatasync on a descriptor that is not open fails (EBADF): the error
    is reported, the position stays, and later requests are refused. */
static void test_a_failed_flush_is_reported_and_final(void **state)
{
    fx_t *fx = *state;
    s_write(fx->fd, 10);
    ds_flusher_request(fx->f, fx->fd, 10);
    ds_flusher_wait(fx->f);
    int bad = open(fx->path, O_RDONLY | O_CLOEXEC);
    assert_true(bad >= 0);
    close(bad); /* a number no file uses now */
    ds_flusher_request(fx->f, bad, 20);
    s_await_readable(ds_flusher_fd(fx->f));
    ds_flusher_wait(fx->f);
    uint64_t pos = 0;
    assert_int_equal(ds_flusher_done(fx->f, &pos), EBADF);
    assert_int_equal(pos, 10);
    ds_flusher_request(fx->f, fx->fd, 30);
    ds_flusher_wait(fx->f);
    assert_int_equal(ds_flusher_done(fx->f, &pos), EBADF);
    assert_int_equal(pos, 10);
}

static void test_destroy_with_requests_pending_and_null(void **state)
{
    fx_t *fx = *state;
    s_write(fx->fd, 100);
    ds_flusher_request(fx->f, fx->fd, 100);
    ds_flusher_destroy(&fx->f); /* waits for a running flush, then stops */
    assert_null(fx->f);
    ds_flusher_destroy(&fx->f);
    ds_flusher_destroy(NULL);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_flush_reports_the_requested_position_and_signals),
        T(test_wait_with_nothing_requested_returns),
        T(test_a_failed_flush_is_reported_and_final),
        T(test_destroy_with_requests_pending_and_null),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
