/*  tests/integration/test_wal_crash.c - SIGKILL a WAL writer, check the log.

    A child process opens the write-ahead log (storage/wal.h) in a
    temporary directory, continues from the last index it finds and loops:
    append the next batch of 1-3 entries (term and data derived from the
    index; every 16th entry is big, so segments roll under the knife),
    a hard state whenever the batch holds a multiple of 4, then either
    ds_wal_sync() or (every other batch, as a Raft leader does) the
    background flush of ds_wal_sync_start(), and only once the batch is
    durable (for a background flush: once ds_wal_sync_poll or
    ds_wal_sync_wait says its position is) report the batch's last index
    and hard state's commit to the parent through a pipe. The parent kills it with SIGKILL at a
    random moment, reopens the log and checks that it starts at 1, is
    contiguous, holds every reported index (and everything a previous
    round saw) with the right term, type and data, and that the hard
    state is the last one reported or a newer one. Several rounds on the
    same directory; the seed is printed and can be set with DS_SEED.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol/error.h"
#include "storage/wal.h"
#include "tests/testutil.h"

#define ROUNDS          12
#define CHILD_MAX_ITERS 4000 /* 16-byte reports: keeps the pipe (64 KiB) from filling */
#define CHILD_MAX_SECS  10
#define KILL_MIN_MS     30
#define KILL_MAX_MS     400
#define BIG_LEN         (512u * 1024u)

typedef struct {
    uint64_t index;  /* last index of the synced batch */
    uint64_t commit; /* commit of the last hard state synced, 0 if none yet */
} report_t;

#define MAX_PENDING 64 /* batches whose background flush is not yet confirmed */

typedef struct {
    uint64_t pos; /* WAL position that makes it durable */
    report_t r;
} pending_t;

/*  Reports, in order, every pending batch whose position is durable. */
static void s_report_durable(ds_wal_t *w, int wfd, pending_t *p, size_t *n, bool wait)
{
    uint64_t durable = 0;
    int rc = wait ? ds_wal_sync_wait(w, &durable) : ds_wal_sync_poll(w, &durable);
    if (rc) {
        fprintf(stderr, "child: background flush: %s: %s\n", ds_errname(rc), ds_wal_errmsg(w));
        _exit(8);
    }
    size_t done = 0;
    while (done < *n && p[done].pos <= durable) {
        if (write(wfd, &p[done].r, sizeof p[done].r) != (ssize_t)sizeof p[done].r)
            _exit(7);
        done++;
    }
    memmove(p, p + done, (*n - done) * sizeof *p);
    *n -= done;
}

static uint64_t s_term(uint64_t index)
{
    return 1 + index / 64;
}

static uint32_t s_len(uint64_t index)
{
    return index % 16 == 0 ? BIG_LEN : (uint32_t)(16 + (index * 37) % 500);
}

static uint8_t s_type(uint64_t index)
{
    return (uint8_t)(index % 3);
}

static uint8_t s_byte(uint64_t index, size_t j)
{
    return (uint8_t)(index * 131 + j * 7 + (j >> 8));
}

/* The child: never returns. */
static void s_child(const char *dir, int wfd, unsigned seed)
{
    ds_wal_t *w = NULL;
    ds_wal_replay_t rp;
    char err[512];
    int rc = ds_wal_open(&w, dir, &rp, err, sizeof err);
    if (rc) {
        fprintf(stderr, "child: open %s: %s: %s\n", dir, ds_errname(rc), err);
        _exit(2);
    }
    uint64_t next = ds_wal_last_index(w) + 1;
    uint64_t commit = rp.has_hardstate ? rp.commit : 0;
    ds_wal_release_replay(w);
    uint8_t *buf[3];
    for (int k = 0; k < 3; k++)
        if (!(buf[k] = malloc(BIG_LEN)))
            _exit(3);
    static pending_t pend[MAX_PENDING];
    size_t n_pend = 0;
    time_t start = time(NULL);
    for (int it = 0; it < CHILD_MAX_ITERS && time(NULL) - start < CHILD_MAX_SECS; it++) {
        size_t n = 1 + (size_t)(rand_r(&seed) % 3);
        ds_raft_entry_t e[3];
        uint64_t hs = 0;
        for (size_t k = 0; k < n; k++) {
            uint64_t i = next + k;
            uint32_t len = s_len(i);
            for (size_t j = 0; j < len; j++)
                buf[k][j] = s_byte(i, j);
            e[k] = (ds_raft_entry_t){
                .index = i, .term = s_term(i), .type = s_type(i), .data = {buf[k], len}};
            if (i % 4 == 0)
                hs = i;
        }
        if ((rc = ds_wal_append(w, e, n)) != 0) {
            fprintf(stderr, "child: append %" PRIu64 "+%zu: %s\n", next, n, ds_errname(rc));
            _exit(4);
        }
        if (hs && (rc = ds_wal_hardstate(w, s_term(hs), 1, hs)) != 0) {
            fprintf(stderr, "child: hardstate %" PRIu64 ": %s\n", hs, ds_errname(rc));
            _exit(5);
        }
        if (hs)
            commit = hs;
        next += n;
        report_t r = {next - 1, commit};
        if (rand_r(&seed) % 2) {
            uint64_t pos = 0;
            if ((rc = ds_wal_sync_start(w, &pos)) != 0) {
                fprintf(stderr, "child: sync_start %" PRIu64 ": %s: %s\n", r.index, ds_errname(rc),
                        ds_wal_errmsg(w));
                _exit(6);
            }
            if (n_pend == MAX_PENDING)
                s_report_durable(w, wfd, pend, &n_pend, true);
            pend[n_pend++] = (pending_t){pos, r};
            s_report_durable(w, wfd, pend, &n_pend, false);
            continue;
        }
        if ((rc = ds_wal_sync(w)) != 0) { /* waits for the background flush first */
            fprintf(stderr, "child: sync %" PRIu64 ": %s: %s\n", r.index, ds_errname(rc),
                    ds_wal_errmsg(w));
            _exit(6);
        }
        s_report_durable(w, wfd, pend, &n_pend, false); /* all of them, in order */
        if (write(wfd, &r, sizeof r) != (ssize_t)sizeof r)
            _exit(7);
    }
    /* Bounded: wait to be killed. */
    for (;;)
        pause();
}

typedef struct {
    uint64_t last;   /* last index in the log */
    uint64_t commit; /* the hard state's commit, 0 if none */
    char why[512];   /* what is wrong, "" if nothing */
} check_t;

/* Checks the replayed log against what was reported. */
static void s_check(const ds_wal_replay_t *rp, uint64_t min_last, uint64_t min_commit, check_t *c)
{
    c->why[0] = '\0';
    c->last = rp->n ? rp->entries[rp->n - 1].index : 0;
    c->commit = rp->has_hardstate ? rp->commit : 0;
    if (rp->reset_index || rp->reset_term) {
        snprintf(c->why, sizeof c->why, "a reset (%" PRIu64 ", %" PRIu64 ") nobody wrote",
                 rp->reset_index, rp->reset_term);
        return;
    }
    if (rp->n && rp->entries[0].index != 1) {
        snprintf(c->why, sizeof c->why, "the log starts at %" PRIu64 ", not 1",
                 rp->entries[0].index);
        return;
    }
    if (c->last < min_last) {
        snprintf(c->why, sizeof c->why,
                 "the log ends at %" PRIu64 " but %" PRIu64 " was synced (reported or seen)",
                 c->last, min_last);
        return;
    }
    for (size_t k = 0; k < rp->n; k++) {
        const ds_raft_entry_t *e = &rp->entries[k];
        uint64_t i = k + 1;
        if (e->index != i || e->term != s_term(i) || e->type != s_type(i) ||
            e->data.len != s_len(i)) {
            snprintf(c->why, sizeof c->why,
                     "entry at position %zu: index %" PRIu64 " term %" PRIu64
                     " type %u len %u, want index %" PRIu64 " term %" PRIu64 " type %u len %u",
                     k, e->index, e->term, e->type, e->data.len, i, s_term(i), s_type(i), s_len(i));
            return;
        }
        for (size_t j = 0; j < e->data.len; j++)
            if (e->data.data[j] != s_byte(i, j)) {
                snprintf(c->why, sizeof c->why, "entry %" PRIu64 ": data byte %zu is wrong", i, j);
                return;
            }
    }
    if (min_commit && !rp->has_hardstate) {
        snprintf(c->why, sizeof c->why, "no hard state, but commit %" PRIu64 " was synced",
                 min_commit);
        return;
    }
    if (rp->has_hardstate &&
        (rp->commit < min_commit || rp->commit % 4 != 0 || rp->commit > c->last ||
         rp->term != s_term(rp->commit) || rp->vote != 1)) {
        snprintf(c->why, sizeof c->why,
                 "hard state term %" PRIu64 " vote %" PRIu64 " commit %" PRIu64
                 ": want commit >= %" PRIu64 ", a multiple of 4 <= the last index %" PRIu64
                 ", term %" PRIu64 ", vote 1",
                 rp->term, rp->vote, rp->commit, min_commit, c->last, s_term(rp->commit));
        return;
    }
}

static void test_killed_writer_loses_no_synced_entry_or_hardstate(void **state)
{
    (void)state;
    char dir[512], wal_dir[600];
    assert_int_equal(ds_test_mkdtemp("walcrash", dir, sizeof dir), 0);
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", dir);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("DS_SEED"))
        seed = (unsigned)strtoul(getenv("DS_SEED"), NULL, 10);
    printf("test_wal_crash: seed %u (rerun with DS_SEED=%u), log in %s (kept on failure)\n", seed,
           seed, wal_dir);
    fflush(stdout);
    unsigned rng = seed;

    uint64_t seen_last = 0, seen_commit = 0; /* what earlier rounds found */
    uint64_t t0 = ds_test_now_ms();
    for (int round = 0; round < ROUNDS; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        unsigned child_seed = rand_r(&rng);
        int ms = KILL_MIN_MS + rand_r(&rng) % (KILL_MAX_MS - KILL_MIN_MS + 1);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            s_child(wal_dir, fds[1], child_seed);
        }
        close(fds[1]);
        if (pid < 0) {
            close(fds[0]);
            fail_msg("round %d: fork: %s", round, strerror(errno));
        }
        /* Kill and reap before any check can fail. */
        ds_test_sleep_ms((unsigned)ms);
        kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;

        static report_t reported[CHILD_MAX_ITERS];
        uint8_t *p = (uint8_t *)reported;
        size_t got = 0;
        ssize_t r;
        while (got < sizeof reported && (r = read(fds[0], p + got, sizeof reported - got)) > 0)
            got += (size_t)r;
        close(fds[0]);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("round %d: the child did not die by SIGKILL (status 0x%x; exit code %d): "
                     "see its stderr above",
                     round, status, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        size_t n = got / sizeof(report_t);
        uint64_t min_last = seen_last, min_commit = seen_commit;
        for (size_t i = 0; i < n; i++) {
            if (reported[i].index > min_last)
                min_last = reported[i].index;
            if (reported[i].commit > min_commit)
                min_commit = reported[i].commit;
        }

        ds_wal_t *w = NULL;
        ds_wal_replay_t rp;
        char err[512] = "";
        int rc = ds_wal_open(&w, wal_dir, &rp, err, sizeof err);
        if (rc)
            fail_msg("round %d (seed %u): reopening the log: %s: %s", round, seed, ds_errname(rc),
                     err);
        check_t c;
        s_check(&rp, min_last, min_commit, &c);
        uint64_t last_index = ds_wal_last_index(w);
        size_t segs = ds_wal_segments(w);
        ds_wal_close(&w);
        if (c.why[0])
            fail_msg("round %d (seed %u): %s", round, seed, c.why);
        if (last_index != c.last)
            fail_msg("round %d (seed %u): ds_wal_last_index %" PRIu64
                     ", the replay ends at %" PRIu64,
                     round, seed, last_index, c.last);
        printf("round %d: killed after %d ms, %zu syncs reported (last %" PRIu64 ", commit %" PRIu64
               "), log 1..%" PRIu64 ", commit %" PRIu64 ", %zu segments\n",
               round, ms, n, n ? reported[n - 1].index : 0, min_commit, c.last, c.commit, segs);
        fflush(stdout);
        seen_last = c.last;
        seen_commit = c.commit;
    }
    printf("test_wal_crash: %d rounds in %" PRIu64 " ms\n", ROUNDS, ds_test_now_ms() - t0);
    ds_test_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_writer_loses_no_synced_entry_or_hardstate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
