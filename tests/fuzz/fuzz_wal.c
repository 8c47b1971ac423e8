/*  tests/fuzz/fuzz_wal.c - the WAL's reader, fed a damaged or forged
    segment (what a disk, a crash or an operator's mistake may leave).

    Input: the bytes of a segment, decoded as ds_wal_open decodes each
    segment (ds_wal_decode: the same code, without files). Whatever they
    are, it must return 0, DS_ECORRUPT with a message, or DS_ENOMEM
    (never crash or read out of bounds); give the same answer twice; on
    success stop at an 8-byte aligned offset within the input, say
    "torn" only if it stopped before the end, and give back a contiguous
    log of entries within the size limit that lie inside the input.
    (Opening, clearing a torn tail and appending after it are tested on
    real files by tests/unit/test_wal.c and test_wal_crash.c.) */
#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/wal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_wal: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void s_check(const ds_wal_decoded_t *d, const uint8_t *data, size_t size)
{
    if (d->end > size || d->end % 8 != 0)
        s_die("an end outside the input or not aligned", NULL);
    if (d->torn && d->end >= size)
        s_die("torn at the very end", NULL);
    const ds_wal_replay_t *rp = &d->replay;
    for (size_t i = 0; i < rp->n; i++) {
        const ds_raft_entry_t *e = &rp->entries[i];
        if (e->index != rp->entries[0].index + i)
            s_die("a log that is not contiguous", NULL);
        if (e->data.len > DS_MAX_ENTRY_SIZE)
            s_die("an entry over the size limit", NULL);
        if (e->data.len && (e->data.data < data || e->data.data + e->data.len > data + d->end))
            s_die("entry data outside the records read", NULL);
        if (rp->reset_index && e->index <= rp->reset_index)
            s_die("an entry at or before the reset", NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ds_wal_decoded_t a, b;
    char err[512], err2[512];
    int rc = ds_wal_decode(data, size, &a, err, sizeof err);
    int rc2 = ds_wal_decode(data, size, &b, err2, sizeof err2);
    if (rc != rc2)
        s_die("two decodes disagree", err);
    if (rc != 0) {
        if ((rc != DS_ECORRUPT && rc != DS_ENOMEM) || !err[0] || strcmp(err, err2) != 0)
            s_die("a failure other than a named DS_ECORRUPT", err);
        return 0;
    }
    s_check(&a, data, size);
    if (a.end != b.end || a.torn != b.torn || a.replay.n != b.replay.n ||
        (a.replay.n > 0 &&
         memcmp(a.replay.entries, b.replay.entries, a.replay.n * sizeof a.replay.entries[0]) != 0))
        s_die("two decodes disagree on the log", NULL);
    ds_wal_decoded_free(&a);
    ds_wal_decoded_free(&b);
    return 0;
}
