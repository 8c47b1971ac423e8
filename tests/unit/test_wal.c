/*  tests/unit/test_wal.c - the write-ahead log (storage/wal.h) on real
    files: round trips through close and reopen, truncation by append,
    resets, what close loses, torn and cut tails, corruption in an older
    segment, segment rolls and compaction, background flushes, and the
    size limit.

    Every test gets a fresh directory under /tmp, removed at the end.
    Entry data is derived from (index, term), so a stale entry left
    behind by a truncation cannot pass for its replacement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/wal.h"
#include "tests/testutil.h"

#define S_BIG       ((uint32_t)1 << 20) /* 1 MiB: 16 of them fill a segment */
#define S_MAX_SEGS  16
#define S_MAX_BIG   120 /* bounds the segment-filling loops */
#define S_REC_HDR   12  /* crc u32, length u32, type u8, 3 zero bytes */
#define S_ENTRY_HDR 17  /* index u64, term u64, entry type u8 */

typedef struct {
    char dir[512];
    ds_wal_t *w;
    ds_wal_replay_t rp;
} fx_t;

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("wal", fx->dir, sizeof fx->dir), 0);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_wal_close(&fx->w);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

/* ---- entries whose bytes say which (index, term) they are ---------------- */

static uint32_t s_len(uint64_t index)
{
    return (uint32_t)((index * 13) % 40); /* 0..39: includes empty data */
}

static uint8_t s_type(uint64_t index)
{
    return (uint8_t)(index % 3); /* NORMAL, NOOP, CONF_CHANGE */
}

static uint8_t s_byte(uint64_t index, uint64_t term, size_t j)
{
    return (uint8_t)(index * 131 + term * 17 + j * 7 + (j >> 8));
}

static uint8_t *s_data(uint64_t index, uint64_t term, uint32_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    assert_non_null(d);
    for (size_t j = 0; j < len; j++)
        d[j] = s_byte(index, term, j);
    return d;
}

/* Size of the record holding an entry with `len` data bytes. */
static uint64_t s_rec_size(uint32_t len)
{
    return ((uint64_t)S_REC_HDR + S_ENTRY_HDR + len + 7) & ~(uint64_t)7;
}

/* Buffers entries lo..hi (one batch), term `term`, data of `len` bytes
   (or s_len(index) when len is UINT32_MAX). Returns ds_wal_append's code. */
static int s_append_len(ds_wal_t *w, uint64_t lo, uint64_t hi, uint64_t term, uint32_t len)
{
    size_t n = (size_t)(hi - lo + 1);
    ds_raft_entry_t *e = calloc(n, sizeof *e);
    assert_non_null(e);
    for (size_t i = 0; i < n; i++) {
        uint64_t index = lo + i;
        uint32_t l = len == UINT32_MAX ? s_len(index) : len;
        e[i] = (ds_raft_entry_t){.index = index, .term = term, .type = s_type(index)};
        e[i].data.data = s_data(index, term, l);
        e[i].data.len = l;
    }
    int rc = ds_wal_append(w, e, n);
    for (size_t i = 0; i < n; i++)
        free(e[i].data.data);
    free(e);
    return rc;
}

static int s_append(ds_wal_t *w, uint64_t lo, uint64_t hi, uint64_t term)
{
    return s_append_len(w, lo, hi, term, UINT32_MAX);
}

static void s_check_entry(const ds_raft_entry_t *e, uint64_t index, uint64_t term, uint32_t len)
{
    if (e->index != index || e->term != term || e->type != s_type(index) || e->data.len != len)
        fail_msg("entry: got index %" PRIu64 " term %" PRIu64 " type %u len %u, "
                 "want index %" PRIu64 " term %" PRIu64 " type %u len %u",
                 e->index, e->term, e->type, e->data.len, index, term, s_type(index), len);
    if (len)
        assert_non_null(e->data.data);
    for (size_t j = 0; j < len; j++)
        if (e->data.data[j] != s_byte(index, term, j))
            fail_msg("entry %" PRIu64 " (term %" PRIu64 "): data byte %zu is 0x%02x, want 0x%02x",
                     index, term, j, e->data.data[j], s_byte(index, term, j));
}

/* Checks that rp->entries[pos...] hold lo..hi with term `term` (data of
   `len` bytes, or s_len(index) when len is UINT32_MAX). */
static void s_check_range(const ds_wal_replay_t *rp, size_t pos, uint64_t lo, uint64_t hi,
                          uint64_t term, uint32_t len)
{
    assert_true(pos + (size_t)(hi - lo + 1) <= rp->n);
    for (uint64_t i = lo; i <= hi; i++)
        s_check_entry(&rp->entries[pos + (i - lo)], i, term, len == UINT32_MAX ? s_len(i) : len);
}

/* ---- opening and files --------------------------------------------------- */

static void s_open_dir(fx_t *fx, const char *dir)
{
    char err[512] = "";
    memset(&fx->rp, 0xa5, sizeof fx->rp); /* open must fill every field */
    int rc = ds_wal_open(&fx->w, dir, &fx->rp, err, sizeof err);
    if (rc)
        fail_msg("ds_wal_open %s: %s: %s", dir, ds_errname(rc), err);
    assert_non_null(fx->w);
    if (fx->rp.n)
        assert_non_null(fx->rp.entries);
    for (size_t i = 1; i < fx->rp.n; i++) /* contiguous, as promised */
        assert_int_equal(fx->rp.entries[i].index, fx->rp.entries[0].index + i);
}

static void s_open(fx_t *fx)
{
    s_open_dir(fx, fx->dir);
}

static void s_reopen(fx_t *fx)
{
    ds_wal_close(&fx->w);
    assert_null(fx->w);
    s_open(fx);
}

static void s_sync(ds_wal_t *w)
{
    int rc = ds_wal_sync(w);
    if (rc)
        fail_msg("ds_wal_sync: %s: %s", ds_errname(rc), ds_wal_errmsg(w));
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Segment file names in `dir` (*.wal), sorted: the sequence numbers are
   fixed-width hexadecimal, so that is their order. Returns how many. */
static size_t s_list_segments(const char *dir, char names[][64], size_t max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || l >= 64 || strcmp(de->d_name + l - 4, ".wal") != 0)
            continue;
        assert_true(n < max);
        memcpy(names[n++], de->d_name, l + 1);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], s_cmp_names);
    return n;
}

static void s_segment_path(const fx_t *fx, size_t which_from_end, char *out, size_t outlen)
{
    char names[S_MAX_SEGS][64];
    size_t n = s_list_segments(fx->dir, names, S_MAX_SEGS);
    assert_true(n > which_from_end);
    snprintf(out, outlen, "%s/%s", fx->dir, names[n - 1 - which_from_end]);
}

static void s_read_at(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void s_flip_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static uint32_t s_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Checks that a record of one entry with `len` data bytes starts at `off`
   in `path` (its length field), so the offsets the test uses are right. */
static void s_expect_entry_record_at(const char *path, uint64_t off, uint32_t len)
{
    uint8_t hdr[S_REC_HDR];
    s_read_at(path, off, hdr, sizeof hdr);
    uint32_t plen = s_le32(hdr + 4);
    if (plen != S_ENTRY_HDR + len)
        fail_msg("%s@%" PRIu64 ": record payload length %u, want %u (one entry of %u bytes)", path,
                 off, plen, S_ENTRY_HDR + len, len);
}

/*  Appends 1 MiB entries from `*next` with term `term`, one sync each (one
    batch might go into one oversized segment), until `want_segs` segment
    rolls have been seen and the last segment holds `tail` entries.
    seg_of[i] gets the segment (0-based, counted from the first one seen)
    of entry i; seg_end[s] the bytes written to segment s. */
static void s_fill_segments(ds_wal_t *w, uint64_t *next, uint64_t term, size_t want_segs,
                            size_t tail, size_t seg_of[], uint64_t seg_end[])
{
    size_t seg = 0, in_seg = 0;
    for (int it = 0; it < S_MAX_BIG; it++) {
        uint64_t before = ds_wal_offset(w);
        assert_int_equal(s_append_len(w, *next, *next, term, S_BIG), 0);
        s_sync(w);
        uint64_t after = ds_wal_offset(w);
        if (after < before) { /* the entry went to a new segment */
            seg_end[seg] = before;
            seg++;
            in_seg = 0;
            assert_true(seg < S_MAX_SEGS);
        }
        seg_of[*next] = seg;
        seg_end[seg] = after;
        (*next)++;
        in_seg++;
        if (seg + 1 >= want_segs && in_seg >= tail)
            return;
    }
    fail_msg("no %zu segments after %d entries of %u bytes (DS_WAL_SEGMENT_SIZE %zu)", want_segs,
             S_MAX_BIG, S_BIG, DS_WAL_SEGMENT_SIZE);
}

/* ---- tests --------------------------------------------------------------- */

static void test_empty_dir_opens_empty_and_entries_and_hardstate_survive_reopen(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(fx->rp.n, 0);
    assert_false(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.term, 0);
    assert_int_equal(fx->rp.vote, 0);
    assert_int_equal(fx->rp.commit, 0);
    assert_int_equal(fx->rp.reset_index, 0);
    assert_int_equal(fx->rp.reset_term, 0);
    assert_int_equal(ds_wal_last_index(fx->w), 0);
    assert_int_equal(ds_wal_segments(fx->w), 1);
    char names[S_MAX_SEGS][64];
    assert_int_equal(s_list_segments(fx->dir, names, S_MAX_SEGS), 1);

    assert_int_equal(s_append(fx->w, 1, 4, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 1, 2, 0), 0);
    assert_int_equal(s_append(fx->w, 5, 9, 2), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 2, 3, 7), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 9);
    s_sync(fx->w);
    s_reopen(fx);

    assert_int_equal(fx->rp.n, 9);
    s_check_range(&fx->rp, 0, 1, 4, 1, UINT32_MAX);
    s_check_range(&fx->rp, 4, 5, 9, 2, UINT32_MAX);
    assert_true(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.term, 2); /* the last hard state wins */
    assert_int_equal(fx->rp.vote, 3);
    assert_int_equal(fx->rp.commit, 7);
    assert_int_equal(fx->rp.reset_index, 0);
    assert_int_equal(fx->rp.reset_term, 0);
    assert_int_equal(ds_wal_last_index(fx->w), 9);
    ds_wal_release_replay(fx->w);

    /* Appending after a reopen continues the same log. */
    assert_int_equal(s_append(fx->w, 10, 10, 2), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 10);
    s_check_range(&fx->rp, 0, 1, 4, 1, UINT32_MAX);
    s_check_range(&fx->rp, 4, 5, 10, 2, UINT32_MAX);
    assert_int_equal(fx->rp.commit, 7);
}

static void test_open_creates_a_missing_dir(void **state)
{
    fx_t *fx = *state;
    char sub[600];
    snprintf(sub, sizeof sub, "%s/wal", fx->dir);
    s_open_dir(fx, sub);
    assert_int_equal(fx->rp.n, 0);
    assert_false(fx->rp.has_hardstate);
    struct stat st;
    assert_int_equal(stat(sub, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(s_append(fx->w, 1, 2, 1), 0);
    s_sync(fx->w);
    ds_wal_close(&fx->w);
    s_open_dir(fx, sub);
    assert_int_equal(fx->rp.n, 2);
    s_check_range(&fx->rp, 0, 1, 2, 1, UINT32_MAX);
}

static void test_append_at_or_below_last_truncates_the_suffix(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 10, 1), 0);
    s_sync(fx->w);
    assert_int_equal(s_append(fx->w, 6, 8, 2), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 8);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 8);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    s_check_range(&fx->rp, 5, 6, 8, 2, UINT32_MAX);
    assert_int_equal(ds_wal_last_index(fx->w), 8);

    /* Truncation inside one unsynced batch sequence, then after reopen. */
    assert_int_equal(s_append(fx->w, 9, 12, 2), 0);
    assert_int_equal(s_append(fx->w, 3, 4, 3), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 4);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 4);
    s_check_range(&fx->rp, 0, 1, 2, 1, UINT32_MAX);
    s_check_range(&fx->rp, 2, 3, 4, 3, UINT32_MAX);
}

static void test_append_with_a_hole_is_refused_and_changes_nothing(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 3, 1), 0);
    s_sync(fx->w);
    assert_int_equal(s_append(fx->w, 5, 5, 1), DS_EINVAL); /* last + 2 */
    assert_int_equal(ds_wal_last_index(fx->w), 3);
    assert_int_equal(s_append(fx->w, 9, 11, 1), DS_EINVAL);
    assert_int_equal(ds_wal_last_index(fx->w), 3);

    /* Not consecutive inside the batch: refused whole. */
    ds_raft_entry_t e[2] = {{.index = 4, .term = 1}, {.index = 6, .term = 1}};
    assert_int_equal(ds_wal_append(fx->w, e, 2), DS_EINVAL);
    assert_int_equal(ds_wal_last_index(fx->w), 3);

    s_sync(fx->w); /* nothing refused was buffered */
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 3);
    s_check_range(&fx->rp, 0, 1, 3, 1, UINT32_MAX);
    assert_int_equal(s_append(fx->w, 5, 5, 1), DS_EINVAL); /* still a hole after reopen */
    assert_int_equal(s_append(fx->w, 4, 4, 1), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 4);
}

static void test_reset_drops_entries_and_the_log_restarts_after_it(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    s_sync(fx->w);
    assert_int_equal(ds_wal_reset(fx->w, 20, 3), 0);
    assert_int_equal(s_append(fx->w, 21, 22, 3), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 22);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.reset_index, 20);
    assert_int_equal(fx->rp.reset_term, 3);
    assert_int_equal(fx->rp.n, 2);
    s_check_range(&fx->rp, 0, 21, 22, 3, UINT32_MAX);
    assert_int_equal(ds_wal_last_index(fx->w), 22);
}

static void test_reset_alone_survives_reopen(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 4, 1, 5), 0);
    assert_int_equal(ds_wal_reset(fx->w, 40, 4), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 0);
    assert_int_equal(fx->rp.reset_index, 40);
    assert_int_equal(fx->rp.reset_term, 4);
    assert_true(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.term, 4);
    assert_int_equal(fx->rp.commit, 5);
    assert_int_equal(s_append(fx->w, 41, 41, 4), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 1);
    s_check_range(&fx->rp, 0, 41, 41, 4, UINT32_MAX);
    assert_int_equal(fx->rp.reset_index, 40);
}

/* wal.h: after a reset "the next append must be index + 1", in the same
   session and after a reopen that finds the reset alone. */
static void test_append_after_reset_must_be_reset_index_plus_one(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    assert_int_equal(ds_wal_reset(fx->w, 20, 3), 0);
    int hole = s_append(fx->w, 22, 22, 3);
    uint64_t last_hole = ds_wal_last_index(fx->w);

    assert_int_equal(ds_wal_reset(fx->w, 40, 4), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 0);
    assert_int_equal(fx->rp.reset_index, 40);
    int below = s_append(fx->w, 6, 6, 4);
    uint64_t last_below = ds_wal_last_index(fx->w);
    if (hole != DS_EINVAL || below != DS_EINVAL)
        fail_msg("after ds_wal_reset(20, 3), append 22 gave %s (last index then %" PRIu64
                 "); reopened after ds_wal_reset(40, 4), append 6 gave %s (last index then "
                 "%" PRIu64 "); want DS_EINVAL for both",
                 ds_errname(hole), last_hole, ds_errname(below), last_below);
    assert_int_equal(s_append(fx->w, 41, 41, 4), 0);
}

static void test_close_loses_buffered_records_but_not_synced_or_flushed_ones(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 3, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 1, 1, 0), 0);
    s_sync(fx->w);
    assert_int_equal(s_append(fx->w, 4, 5, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 2, 2, 3), 0);
    assert_int_equal(ds_wal_last_index(fx->w), 5);
    s_reopen(fx); /* no sync, no flush: as if the process crashed */
    assert_int_equal(fx->rp.n, 3);
    s_check_range(&fx->rp, 0, 1, 3, 1, UINT32_MAX);
    assert_true(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.term, 1);
    assert_int_equal(fx->rp.vote, 1);
    assert_int_equal(fx->rp.commit, 0);
    assert_int_equal(ds_wal_last_index(fx->w), 3);

    /* Flushed (written, not fdatasync'ed) records outlive the process:
       they are in the file, which the same machine reads back. */
    assert_int_equal(s_append(fx->w, 4, 4, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 1, 1, 4), 0);
    int rc = ds_wal_flush(fx->w);
    if (rc)
        fail_msg("ds_wal_flush: %s: %s", ds_errname(rc), ds_wal_errmsg(fx->w));
    assert_int_equal(s_append(fx->w, 5, 6, 1), 0); /* buffered after the flush: lost */
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 4);
    s_check_range(&fx->rp, 0, 1, 4, 1, UINT32_MAX);
    assert_int_equal(fx->rp.commit, 4);
}

static void test_torn_last_record_ends_the_log_and_its_tail_is_cleared(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 1, 1, 2), 0);
    s_sync(fx->w);
    uint64_t a = ds_wal_offset(fx->w);
    assert_int_equal(s_append(fx->w, 6, 6, 1), 0);
    s_sync(fx->w);
    uint64_t b = ds_wal_offset(fx->w);
    assert_int_equal(b - a, s_rec_size(s_len(6)));
    /* A valid record after the torn one: it must not come back either. */
    assert_int_equal(s_append(fx->w, 7, 7, 1), 0);
    s_sync(fx->w);
    ds_wal_close(&fx->w);

    char path[1024];
    s_segment_path(fx, 0, path, sizeof path);
    s_expect_entry_record_at(path, a, s_len(6));
    s_expect_entry_record_at(path, b, s_len(7));
    assert_true(s_len(6) >= 2);
    s_flip_byte(path, a + S_REC_HDR + S_ENTRY_HDR + 1); /* entry 6's second data byte */

    s_open(fx);
    assert_int_equal(fx->rp.n, 5);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    assert_true(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.commit, 2);
    assert_int_equal(ds_wal_last_index(fx->w), 5);

    /* A new 6, the same size as the torn one: it ends exactly where the
       old 7 began, so 7 would come back if the tail were not cleared. */
    assert_int_equal(s_append(fx->w, 6, 6, 2), 0);
    s_sync(fx->w);
    assert_int_equal(ds_wal_offset(fx->w), b);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 6);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    s_check_range(&fx->rp, 5, 6, 6, 2, UINT32_MAX);
    assert_int_equal(ds_wal_last_index(fx->w), 6);

    /* And the log goes on from there. */
    assert_int_equal(s_append(fx->w, 7, 8, 2), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 8);
    s_check_range(&fx->rp, 5, 6, 8, 2, UINT32_MAX);
}

static void test_file_cut_inside_the_last_record_ends_the_log_before_it(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    s_sync(fx->w);
    uint64_t a = ds_wal_offset(fx->w);
    assert_int_equal(s_append_len(fx->w, 6, 6, 1, 100), 0);
    s_sync(fx->w);
    assert_int_equal(ds_wal_offset(fx->w), a + s_rec_size(100));
    ds_wal_close(&fx->w);

    char path[1024];
    s_segment_path(fx, 0, path, sizeof path);
    s_expect_entry_record_at(path, a, 100);
    uint64_t cut = a + S_REC_HDR + 37; /* inside entry 6's data, not 8-aligned */
    assert_true(cut % 8 != 0);
    assert_int_equal(truncate(path, (off_t)cut), 0);

    s_open(fx);
    assert_int_equal(fx->rp.n, 5);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    assert_int_equal(ds_wal_last_index(fx->w), 5);
    assert_int_equal(s_append_len(fx->w, 6, 7, 2, 100), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 7);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    s_check_range(&fx->rp, 5, 6, 7, 2, 100);

    /* Cut inside a record's header this time. */
    ds_wal_release_replay(fx->w);
    uint64_t c = ds_wal_offset(fx->w);
    assert_int_equal(s_append(fx->w, 8, 8, 2), 0);
    s_sync(fx->w);
    ds_wal_close(&fx->w);
    assert_int_equal(truncate(path, (off_t)(c + 5)), 0);
    s_open(fx);
    assert_int_equal(fx->rp.n, 7);
    assert_int_equal(ds_wal_last_index(fx->w), 7);
}

static void test_corrupt_older_segment_is_ecorrupt_naming_the_file(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    static size_t seg_of[S_MAX_BIG + 2];
    uint64_t seg_end[S_MAX_SEGS] = {0};
    uint64_t next = 1;
    s_fill_segments(fx->w, &next, 1, 2, 1, seg_of, seg_end);
    while (next <= 40) { /* at least 40 MiB, as in a long-running node */
        assert_int_equal(s_append_len(fx->w, next, next, 1, S_BIG), 0);
        s_sync(fx->w);
        next++;
    }
    size_t segs = ds_wal_segments(fx->w);
    assert_true(segs >= 2);
    ds_wal_close(&fx->w);

    char names[S_MAX_SEGS][64], first[1024];
    assert_int_equal(s_list_segments(fx->dir, names, S_MAX_SEGS), segs);
    snprintf(first, sizeof first, "%s/%s", fx->dir, names[0]);
    assert_true(seg_end[0] > S_BIG);
    s_flip_byte(first, seg_end[0] / 2);

    char err[512] = "";
    ds_wal_replay_t rp;
    ds_wal_t *w = NULL;
    int rc = ds_wal_open(&w, fx->dir, &rp, err, sizeof err);
    ds_wal_close(&w);
    if (rc != DS_ECORRUPT)
        fail_msg("open with a corrupt first segment: got %s, want DS_ECORRUPT (err \"%s\")",
                 ds_errname(rc), err);
    assert_true(strlen(err) > 0);
    if (!strstr(err, names[0]))
        fail_msg("the error does not name the corrupt file %s: \"%s\"", names[0], err);
    printf("corrupt segment: %s\n", err);
}

static void test_segments_roll_and_compaction_deletes_only_whole_older_ones(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(ds_wal_hardstate(fx->w, 7, 3, 2), 0); /* never set again */
    static size_t seg_of[S_MAX_BIG + 2];
    uint64_t seg_end[S_MAX_SEGS] = {0};
    uint64_t next = 1;
    s_fill_segments(fx->w, &next, 7, 4, 2, seg_of, seg_end);
    uint64_t last = next - 1;
    assert_int_equal(ds_wal_last_index(fx->w), last);
    size_t segs = ds_wal_segments(fx->w);
    char names[S_MAX_SEGS][64];
    assert_int_equal(s_list_segments(fx->dir, names, S_MAX_SEGS), segs);
    assert_true(segs >= 4);
    for (uint64_t i = 2; i <= last; i++) /* an entry never spans segments backwards */
        assert_true(seg_of[i] >= seg_of[i - 1]);

    /* The last entry of the second segment. */
    uint64_t end2 = 0;
    for (uint64_t i = 1; i <= last; i++)
        if (seg_of[i] == 1)
            end2 = i;
    assert_true(end2 > 0);
    int rc = ds_wal_compact(fx->w, end2 - 1); /* segment 2 not all covered: only 1 goes */
    if (rc)
        fail_msg("ds_wal_compact: %s: %s", ds_errname(rc), ds_wal_errmsg(fx->w));
    assert_int_equal(ds_wal_segments(fx->w), segs - 1);
    assert_int_equal(ds_wal_compact(fx->w, end2), 0);
    assert_int_equal(ds_wal_segments(fx->w), segs - 2);
    char after[S_MAX_SEGS][64];
    assert_int_equal(s_list_segments(fx->dir, after, S_MAX_SEGS), segs - 2);
    assert_string_equal(after[0], names[2]);              /* the oldest two went, in order */
    assert_int_equal(ds_wal_compact(fx->w, end2 + 1), 0); /* segment 3 still needed */
    assert_int_equal(ds_wal_segments(fx->w), segs - 2);

    s_reopen(fx);
    assert_true(fx->rp.has_hardstate); /* re-written at the start of each segment */
    assert_int_equal(fx->rp.term, 7);
    assert_int_equal(fx->rp.vote, 3);
    assert_int_equal(fx->rp.commit, 2);
    assert_int_equal(fx->rp.n, last - end2);
    s_check_range(&fx->rp, 0, end2 + 1, last, 7, S_BIG);
    assert_int_equal(ds_wal_last_index(fx->w), last);
    ds_wal_release_replay(fx->w);

    /* Compacting past everything keeps the current segment. */
    assert_int_equal(ds_wal_compact(fx->w, last + 100), 0);
    assert_int_equal(ds_wal_segments(fx->w), 1);
    assert_int_equal(s_list_segments(fx->dir, after, S_MAX_SEGS), 1);
    assert_string_equal(after[0], names[segs - 1]);
    assert_int_equal(s_append(fx->w, last + 1, last + 1, 8), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_true(fx->rp.has_hardstate);
    assert_int_equal(fx->rp.term, 7);
    assert_int_equal(fx->rp.commit, 2);
    uint64_t first_cur = last + 1;
    for (uint64_t i = last; i >= 1 && seg_of[i] == seg_of[last]; i--)
        first_cur = i;
    assert_int_equal(fx->rp.n, last + 2 - first_cur);
    s_check_range(&fx->rp, 0, first_cur, last, 7, S_BIG);
    s_check_range(&fx->rp, fx->rp.n - 1, last + 1, last + 1, 8, UINT32_MAX);
}

/* ---- background flushes -------------------------------------------------- */

static void s_await_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, 10000); /* bounded: a flush takes milliseconds */
    assert_int_equal(n, 1);
}

static void test_background_flush_reports_its_position_and_survives_reopen(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(ds_wal_sync_fd(fx->w), -1); /* no thread until the first one */
    assert_int_equal(s_append(fx->w, 1, 5, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 1, 1, 3), 0);
    uint64_t pos = 0, durable = 0;
    assert_int_equal(ds_wal_sync_start(fx->w, &pos), 0);
    assert_int_equal(pos, ds_wal_offset(fx->w)); /* first segment: bytes written */
    int fd = ds_wal_sync_fd(fx->w);
    assert_true(fd >= 0);
    s_await_readable(fd);
    assert_int_equal(ds_wal_sync_poll(fx->w, &durable), 0);
    assert_int_equal(durable, pos);

    /* Nothing new written: no new flush, the same position. */
    uint64_t again = 0;
    assert_int_equal(ds_wal_sync_start(fx->w, &again), 0);
    assert_int_equal(again, pos);

    assert_int_equal(s_append(fx->w, 6, 9, 2), 0);
    assert_int_equal(ds_wal_sync_start(fx->w, &again), 0);
    assert_true(again > pos);
    assert_int_equal(ds_wal_sync_wait(fx->w, &durable), 0);
    assert_int_equal(durable, again);

    s_reopen(fx);
    assert_int_equal(fx->rp.n, 9);
    s_check_range(&fx->rp, 0, 1, 5, 1, UINT32_MAX);
    s_check_range(&fx->rp, 5, 6, 9, 2, UINT32_MAX);
    assert_int_equal(fx->rp.commit, 3);
}

/*  Background flushes interleaved with synchronous ones and with segment
    rolls (each of which waits for the running flush): every entry comes
    back in order, and the durable position ends at everything written. */
static void test_background_flushes_keep_order_across_syncs_and_rolls(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(ds_wal_hardstate(fx->w, 3, 1, 0), 0);
    uint64_t next = 1, pos = 0, prev = 0, durable = 0;
    size_t segs = ds_wal_segments(fx->w);
    for (int it = 0; it < S_MAX_BIG && ds_wal_segments(fx->w) < segs + 2; it++) {
        assert_int_equal(s_append_len(fx->w, next, next, 3, S_BIG), 0);
        next++;
        if (it % 5 == 4) {
            s_sync(fx->w);
            continue;
        }
        int rc = ds_wal_sync_start(fx->w, &pos);
        if (rc)
            fail_msg("ds_wal_sync_start: %s: %s", ds_errname(rc), ds_wal_errmsg(fx->w));
        assert_true(pos > prev); /* positions grow across segments */
        prev = pos;
        assert_int_equal(ds_wal_sync_poll(fx->w, &durable), 0);
        assert_true(durable <= pos);
    }
    assert_true(ds_wal_segments(fx->w) >= segs + 2);
    assert_int_equal(ds_wal_sync_wait(fx->w, &durable), 0);
    assert_int_equal(durable, pos);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, next - 1);
    s_check_range(&fx->rp, 0, 1, next - 1, 3, S_BIG);
    assert_int_equal(fx->rp.term, 3);
}

/*  Close while a background flush may still run: it waits for it, and
    what was written is read back. */
static void test_close_waits_for_a_running_background_flush(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    uint64_t pos;
    for (uint64_t i = 1; i <= 50; i++) {
        assert_int_equal(s_append(fx->w, i, i, 1), 0);
        assert_int_equal(ds_wal_sync_start(fx->w, &pos), 0);
    }
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 50);
    s_check_range(&fx->rp, 0, 1, 50, 1, UINT32_MAX);
}

static void test_entry_over_max_size_is_refused(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 2, 1), 0);
    uint8_t *big = s_data(3, 1, DS_MAX_ENTRY_SIZE + 1);
    ds_raft_entry_t e[2] = {
        {.index = 3, .term = 1, .type = s_type(3), .data = {big, DS_MAX_ENTRY_SIZE + 1}},
        {.index = 4, .term = 1, .type = s_type(4), .data = {big, 1}},
    };
    assert_int_equal(ds_wal_append(fx->w, e, 1), DS_EINVAL);
    assert_int_equal(ds_wal_last_index(fx->w), 2);
    e[0].data.len = 10;
    e[1].data.len = DS_MAX_ENTRY_SIZE + 1; /* the second one: the batch is refused whole */
    assert_int_equal(ds_wal_append(fx->w, e, 2), DS_EINVAL);
    assert_int_equal(ds_wal_last_index(fx->w), 2);
    free(big);

    /* Exactly the limit is fine and round-trips. */
    assert_int_equal(s_append_len(fx->w, 3, 3, 1, DS_MAX_ENTRY_SIZE), 0);
    s_sync(fx->w);
    s_reopen(fx);
    assert_int_equal(fx->rp.n, 3);
    s_check_range(&fx->rp, 0, 1, 2, 1, UINT32_MAX);
    s_check_range(&fx->rp, 2, 3, 3, 1, DS_MAX_ENTRY_SIZE);
}

static void test_close_accepts_null(void **state)
{
    (void)state;
    ds_wal_close(NULL);
    ds_wal_t *w = NULL;
    ds_wal_close(&w);
    assert_null(w);
}

/*  ds_wal_decode (the fuzz target's entry point) reads a segment's bytes
    exactly as opening the directory does. */
static void test_decode_of_a_segment_matches_what_open_reads(void **state)
{
    fx_t *fx = *state;
    s_open(fx);
    assert_int_equal(s_append(fx->w, 1, 12, 1), 0);
    assert_int_equal(ds_wal_hardstate(fx->w, 2, 1, 9), 0);
    assert_int_equal(s_append(fx->w, 10, 14, 2), 0);
    s_sync(fx->w);
    uint64_t end = ds_wal_offset(fx->w);
    char path[600];
    snprintf(path, sizeof path, "%s/0000000000000001.wal", fx->dir);
    FILE *in = fopen(path, "rb");
    assert_non_null(in);
    static uint8_t bytes[1 << 16];
    size_t n = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    assert_true(n >= end);
    ds_wal_decoded_t d;
    char err[256];
    assert_int_equal(ds_wal_decode(bytes, n, &d, err, sizeof err), 0);
    assert_int_equal(d.end, end);
    assert_false(d.torn);
    assert_int_equal(d.replay.n, 14);
    s_check_range(&d.replay, 0, 1, 9, 1, UINT32_MAX);
    s_check_range(&d.replay, 9, 10, 14, 2, UINT32_MAX);
    assert_true(d.replay.has_hardstate && d.replay.term == 2 && d.replay.commit == 9);
    ds_wal_decoded_free(&d);
    size_t last = 0; /* where the last record starts: walk the length fields */
    for (size_t at = 0; at < end;) {
        uint32_t len = (uint32_t)bytes[at + 4] | (uint32_t)bytes[at + 5] << 8 |
                       (uint32_t)bytes[at + 6] << 16 | (uint32_t)bytes[at + 7] << 24;
        last = at;
        at += (12 + len + 7) & ~(size_t)7;
    }
    bytes[last + 12] ^= 0x40; /* damage the last record's payload */
    assert_int_equal(ds_wal_decode(bytes, n, &d, err, sizeof err), 0);
    assert_true(d.torn && d.end < end && d.replay.n == 13);
    ds_wal_decoded_free(&d);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_of_a_segment_matches_what_open_reads, s_setup,
                                        s_teardown),
        T(test_empty_dir_opens_empty_and_entries_and_hardstate_survive_reopen),
        T(test_open_creates_a_missing_dir),
        T(test_append_at_or_below_last_truncates_the_suffix),
        T(test_append_with_a_hole_is_refused_and_changes_nothing),
        T(test_reset_drops_entries_and_the_log_restarts_after_it),
        T(test_reset_alone_survives_reopen),
        T(test_append_after_reset_must_be_reset_index_plus_one),
        T(test_close_loses_buffered_records_but_not_synced_or_flushed_ones),
        T(test_torn_last_record_ends_the_log_and_its_tail_is_cleared),
        T(test_file_cut_inside_the_last_record_ends_the_log_before_it),
        T(test_corrupt_older_segment_is_ecorrupt_naming_the_file),
        T(test_segments_roll_and_compaction_deletes_only_whole_older_ones),
        T(test_background_flush_reports_its_position_and_survives_reopen),
        T(test_background_flushes_keep_order_across_syncs_and_rolls),
        T(test_close_waits_for_a_running_background_flush),
        T(test_entry_over_max_size_is_refused),
        T(test_close_accepts_null),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
