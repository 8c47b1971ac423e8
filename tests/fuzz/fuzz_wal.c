/*  tests/fuzz/fuzz_wal.c - the WAL's reader, fed a damaged or forged
    segment file (what a disk, a crash or an operator's mistake may
    leave).

    Input: the bytes of segment 1. Whatever they are, ds_wal_open must
    return 0 or DS_ECORRUPT (never crash or read out of bounds); on
    success the log it gives back is contiguous, every entry within the
    size limit, and the WAL takes one more entry and gives everything
    back again after a reopen. */
#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/wal.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_wal: %s: %s\n", what, detail ? detail : "");
    abort();
}

static char s_dirname[64];

/*  Removes the scratch directory (one segment file at most) at exit. */
static void s_cleanup(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/0000000000000001.wal", s_dirname);
    unlink(path);
    rmdir(s_dirname);
}

static const char *s_dir(void)
{
    if (!s_dirname[0]) {
        snprintf(s_dirname, sizeof s_dirname, "/tmp/fuzz-wal-XXXXXX");
        if (!mkdtemp(s_dirname))
            s_die("mkdtemp", NULL);
        atexit(s_cleanup);
    }
    return s_dirname;
}

static void s_write_segment(const char *dir, const uint8_t *data, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/0000000000000001.wal", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
        s_die("writing the segment", path);
    close(fd);
}

static void s_check_log(const ds_wal_replay_t *rp)
{
    for (size_t i = 0; i < rp->n; i++) {
        if (rp->entries[i].index != rp->entries[0].index + i)
            s_die("a log that is not contiguous", NULL);
        if (rp->entries[i].data.len > DS_MAX_ENTRY_SIZE)
            s_die("an entry over the size limit", NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = s_dir();
    s_write_segment(dir, data, size);
    ds_wal_t *w = NULL;
    ds_wal_replay_t rp;
    char err[512];
    int rc = ds_wal_open(&w, dir, &rp, err, sizeof err);
    if (rc != 0) {
        if (rc != DS_ECORRUPT || !err[0])
            s_die("a failure other than a named DS_ECORRUPT", err);
        return 0;
    }
    s_check_log(&rp);
    size_t n = rp.n;
    uint64_t next = ds_wal_last_index(w) + 1;
    ds_wal_release_replay(w);
    ds_raft_entry_t e = {.term = 1, .index = next, .type = 0};
    if (ds_wal_append(w, &e, 1) != 0 || ds_wal_sync(w) != 0)
        s_die("appending after a clean open failed", ds_wal_errmsg(w));
    ds_wal_close(&w);
    if (ds_wal_open(&w, dir, &rp, err, sizeof err) != 0)
        s_die("reopening after an append failed", err);
    s_check_log(&rp);
    if (rp.n == 0 || rp.entries[rp.n - 1].index != next || (n > 0 && rp.n != n + 1))
        s_die("the appended entry did not come back after the old log", NULL);
    ds_wal_close(&w);
    return 0;
}
