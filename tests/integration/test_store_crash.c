/*  tests/integration/test_store_crash.c - SIGKILL a writer, check the store.

    A child process opens a store with fsync on and loops: append the next
    Raft entry (one transaction), then apply it - state changes plus the
    applied index - (a second transaction), and only then reports the
    index to the parent through a pipe. The parent kills it with SIGKILL
    at a random moment, reopens the environment and checks that every
    reported index is present and intact in both the log and the state,
    and that the state is exactly that of the applied index: its own
    changes are there, the next entry's are not. Five rounds on the same
    store; the seed is printed and can be set with DS_SEED.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "storage/raftlog.h"
#include "storage/state.h"
#include "tests/testutil.h"

#define ROUNDS          5
#define CHILD_MAX_ITERS 4000 /* keeps the pipe (64 KiB) from filling */
#define CHILD_MAX_SECS  10

static void s_fmt(char *buf, size_t len, const char *what, uint64_t i)
{
    snprintf(buf, len, "%s-%" PRIu64, what, i);
}

static int s_apply_fn(ds_txn_t *txn, void *ctx)
{
    uint64_t i = *(uint64_t *)ctx;
    char key[32], val[32];
    s_fmt(key, sizeof key, "k", i);
    s_fmt(val, sizeof val, "v", i);
    int rc = ds_state_put(txn, DS_TABLE_KV, key, val, strlen(val));
    if (!rc) {
        uint8_t last[8];
        ds_store_put_u64(last, i);
        rc = ds_state_put(txn, DS_TABLE_KV, "last", last, sizeof last);
    }
    return rc;
}

/* The child: never returns. */
static void s_child(const char *dir, int wfd)
{
    ds_store_t *s = NULL;
    char err[256];
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    o.map_size = 1 << 20; /* small, so growth happens under the knife too */
    if (ds_store_open(&s, dir, &o, err, sizeof err)) {
        fprintf(stderr, "child: open: %s\n", err);
        _exit(2);
    }
    time_t start = time(NULL);
    for (int it = 0; it < CHILD_MAX_ITERS && time(NULL) - start < CHILD_MAX_SECS; it++) {
        uint64_t applied, last;
        if (ds_state_applied(s, &applied) || ds_raftlog_last_index(s, &last)) {
            fprintf(stderr, "child: read: %s\n", ds_store_errmsg(s));
            _exit(3);
        }
        uint64_t next = applied + 1;
        if (last < next) {
            char data[600];
            s_fmt(data, sizeof data, "entry", next);
            size_t len = strlen(data);
            memset(data + len, 'x', 512); /* some bulk, to grow the map */
            ds_raft_entry_t e = {
                .index = next, .term = 1, .data = {(uint8_t *)data, (uint32_t)(len + 512)}};
            if (ds_raftlog_append(s, &e, 1)) {
                fprintf(stderr, "child: append %" PRIu64 ": %s\n", next, ds_store_errmsg(s));
                _exit(4);
            }
        }
        if (ds_state_apply(s, next, 0, s_apply_fn, &next, NULL)) {
            fprintf(stderr, "child: apply %" PRIu64 ": %s\n", next, ds_store_errmsg(s));
            _exit(5);
        }
        if (write(wfd, &next, sizeof next) != (ssize_t)sizeof next)
            _exit(6);
    }
    /* Bounded: wait to be killed. */
    for (;;)
        pause();
}

typedef struct {
    uint64_t applied;
    uint64_t max_reported;
    const uint64_t *reported;
    size_t n;
    int bad;
    char why[256];
} check_t;

static int s_check_fn(ds_txn_t *txn, void *ctx)
{
    check_t *c = ctx;
    int rc = ds_state_applied_txn(txn, &c->applied);
    if (rc)
        return rc;
    uint64_t first, last;
    rc = ds_raftlog_first_index_txn(txn, &first);
    if (!rc)
        rc = ds_raftlog_last_index_txn(txn, &last);
    if (rc)
        return rc;
    if (c->applied < c->max_reported || last < c->applied || last > c->applied + 1 || first != 1) {
        snprintf(c->why, sizeof c->why,
                 "applied %" PRIu64 " reported %" PRIu64 " log [%" PRIu64 ", %" PRIu64 "]",
                 c->applied, c->max_reported, first, last);
        c->bad = 1;
        return 0;
    }
    /* Every applied entry: its log entry and its state change, intact. */
    ds_raftlog_entries_t es;
    rc = ds_raftlog_entries_txn(txn, 1, last + 1, SIZE_MAX, &es);
    if (rc)
        return rc;
    for (size_t i = 0; i < es.n && !c->bad; i++) {
        char want[32];
        s_fmt(want, sizeof want, "entry", i + 1);
        if (es.entries[i].index != i + 1 || es.entries[i].term != 1 ||
            es.entries[i].data.len != strlen(want) + 512 ||
            memcmp(es.entries[i].data.data, want, strlen(want)) != 0) {
            snprintf(c->why, sizeof c->why, "log entry %zu is wrong", i + 1);
            c->bad = 1;
        }
    }
    ds_raftlog_entries_free(&es);
    for (uint64_t i = 1; i <= c->applied + 1 && !c->bad; i++) {
        char key[32], want[32];
        s_fmt(key, sizeof key, "k", i);
        s_fmt(want, sizeof want, "v", i);
        ds_val_t v;
        rc = ds_state_get(txn, DS_TABLE_KV, key, &v);
        if (i <= c->applied && (rc || v.len != strlen(want) || memcmp(v.data, want, v.len))) {
            snprintf(c->why, sizeof c->why, "state of entry %" PRIu64 " missing or wrong (%d)", i,
                     rc);
            c->bad = 1;
        }
        if (i == c->applied + 1 && rc != DS_ENOTFOUND) {
            snprintf(c->why, sizeof c->why, "entry %" PRIu64 " half-applied", i);
            c->bad = 1;
        }
    }
    ds_val_t v;
    rc = ds_state_get(txn, DS_TABLE_KV, "last", &v);
    uint64_t last_applied = (rc == 0 && v.len == 8) ? ds_store_get_u64(v.data) : 0;
    if (!c->bad && c->applied && last_applied != c->applied) {
        snprintf(c->why, sizeof c->why, "state says last %" PRIu64 ", applied %" PRIu64,
                 last_applied, c->applied);
        c->bad = 1;
    }
    return 0;
}

static void test_killed_writer_loses_no_acknowledged_commit(void **state)
{
    (void)state;
    char dir[512], store_dir[600];
    assert_int_equal(ds_test_mkdtemp("crash", dir, sizeof dir), 0);
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("DS_SEED"))
        seed = (unsigned)strtoul(getenv("DS_SEED"), NULL, 10);
    printf("test_store_crash: seed %u (rerun with DS_SEED=%u)\n", seed, seed);
    srand(seed);

    uint64_t total_max = 0;
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            s_child(store_dir, fds[1]);
        }
        close(fds[1]);
        int ms = 20 + rand() % 181;
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("round %d: child did not die by SIGKILL (status 0x%x): see its stderr", round,
                     status);

        static uint64_t reported[CHILD_MAX_ITERS];
        size_t n = 0;
        ssize_t r;
        uint8_t *p = (uint8_t *)reported;
        size_t got = 0;
        while ((r = read(fds[0], p + got, sizeof reported - got)) > 0)
            got += (size_t)r;
        close(fds[0]);
        n = got / sizeof(uint64_t);
        uint64_t max = total_max;
        for (size_t i = 0; i < n; i++)
            if (reported[i] > max)
                max = reported[i];

        ds_store_t *s = NULL;
        char err[256];
        assert_int_equal(ds_store_open(&s, store_dir, NULL, err, sizeof err), 0);
        check_t c = {.max_reported = max, .reported = reported, .n = n};
        int rc = ds_store_read(s, s_check_fn, &c);
        if (rc)
            fail_msg("round %d: reading the store failed: %s", round, ds_store_errmsg(s));
        ds_store_destroy(&s);
        if (c.bad)
            fail_msg("round %d (seed %u): %s", round, seed, c.why);
        printf("round %d: killed after %d ms, %zu commits reported, applied %" PRIu64 "\n", round,
               ms, n, c.applied);
        total_max = c.applied;
    }
    ds_test_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_writer_loses_no_acknowledged_commit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
