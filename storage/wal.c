/*  storage/wal.c - the Raft log and hard state in an append-only,
    checksummed write-ahead log (see wal.h for the format and rules). */
#define _GNU_SOURCE
#include "storage/wal.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/crc32.h"
#include "storage/fileio.h"
#include "storage/flusher.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_HEAD        12u /* crc, length, type and padding */
#define S_ENTRY_FIXED 17u /* index, term, entry type */
#define S_HS_SIZE     24u
#define S_RESET_SIZE  16u

enum { S_REC_ENTRY = 1, S_REC_HARDSTATE = 2, S_REC_RESET = 3 };

typedef struct {
    uint64_t seq;
    uint64_t max_index; /* highest entry index in the segment, 0 if none */
} s_seg_t;

struct ds_wal {
    char dir[PATH_MAX];
    int dir_fd;
    int fd;                /* the current (last) segment */
    uint64_t off;          /* where the next record goes in it */
    uint64_t size;         /* its allocated size */
    uint64_t written;      /* bytes written since open, all segments */
    uint64_t synced;       /* of which known durable */
    ds_flusher_t *flusher; /* background flushes; NULL until the first */
    bool failed;           /* a write or flush failed: refuse everything */
    s_seg_t *segs;         /* oldest first; the last one is current */
    size_t n_segs, cap_segs;
    uint8_t *buf; /* records not yet written */
    size_t len, cap;
    uint64_t buf_max; /* highest entry index in buf */
    bool empty;       /* no entry since open or the last reset */
    uint64_t last_index;
    uint64_t floor; /* the last reset's index: entries must come after it */
    bool has_hs;
    uint64_t hs_term, hs_vote, hs_commit;
    uint64_t reset_index, reset_term; /* the last RESET read back */
    /* what ds_wal_open read back, until ds_wal_release_replay */
    ds_raft_entry_t *r_entries;
    size_t r_n, r_cap;
    uint8_t **r_bufs;
    size_t r_nbufs;
    char errmsg[384];
};

__attribute__((format(printf, 3, 4))) static int s_fail(ds_wal_t *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- little-endian fields ------------------------------------------------ */

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t s_padded(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

/* ---- segment files ------------------------------------------------------- */

static void s_seg_path(const ds_wal_t *w, uint64_t seq, char *out, size_t len)
{
    snprintf(out, len, "%s/%016" PRIx64 ".wal", w->dir, seq);
}

static bool s_seg_name(const char *name, uint64_t *seq)
{
    if (strlen(name) != 20 || strcmp(name + 16, ".wal") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        v = v << 4 | (uint64_t)d;
    }
    *seq = v;
    return v > 0;
}

/*  Makes room for one more element in the array *p of *cap elements
    holding n. Returns false when out of memory (*p unchanged). */
static bool s_room_for_one(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t next = *cap ? *cap * 2 : 16;
    void *grown = realloc(*p, next * elem);
    if (!grown)
        return false;
    *p = grown;
    *cap = next;
    return true;
}

static int s_seg_push(ds_wal_t *w, uint64_t seq)
{
    if (!s_room_for_one((void **)&w->segs, &w->cap_segs, w->n_segs, sizeof *w->segs))
        return s_fail(w, DS_ENOMEM, "out of memory listing WAL segments");
    w->segs[w->n_segs++] = (s_seg_t){seq, 0};
    return 0;
}

static int s_seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const s_seg_t *)a)->seq, y = ((const s_seg_t *)b)->seq;
    return x < y ? -1 : x > y;
}

static int s_list_segments(ds_wal_t *w)
{
    DIR *d = opendir(w->dir);
    if (!d)
        return s_fail(w, DS_EIO, "cannot list %s: %s", w->dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        uint64_t seq;
        if (s_seg_name(e->d_name, &seq))
            rc = s_seg_push(w, seq);
    }
    closedir(d);
    if (rc == 0 && w->n_segs)
        qsort(w->segs, w->n_segs, sizeof *w->segs, s_seg_cmp);
    return rc;
}

/*  Creates segment `seq` with `size` bytes allocated and makes its name
    durable; it becomes the current segment. */
static int s_create_segment(ds_wal_t *w, uint64_t seq, uint64_t size)
{
    char path[PATH_MAX + 32];
    s_seg_path(w, seq, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_fail(w, DS_EIO, "cannot create %s: %s", path, strerror(errno));
    int err = posix_fallocate(fd, 0, (off_t)size);
    if (err == 0 && (fsync(fd) != 0 || fsync(w->dir_fd) != 0))
        err = errno;
    if (err != 0) {
        close(fd);
        unlink(path);
        return s_fail(w, DS_EIO, "cannot allocate %" PRIu64 " bytes for %s: %s", size, path,
                      strerror(err));
    }
    int rc = s_seg_push(w, seq);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = fd;
    w->off = 0;
    w->size = size;
    return 0;
}

/* ---- records ------------------------------------------------------------- */

static int s_reserve(ds_wal_t *w, size_t more)
{
    if (w->len + more <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + more)
        cap *= 2;
    uint8_t *grown = realloc(w->buf, cap);
    if (!grown)
        return s_fail(w, DS_ENOMEM, "out of memory buffering WAL records");
    w->buf = grown;
    w->cap = cap;
    return 0;
}

/*  Appends a record whose payload is `fixed` then `data` to the buffer. */
static int s_record(ds_wal_t *w, uint8_t type, const uint8_t *fixed, size_t fixed_len,
                    const uint8_t *data, size_t data_len)
{
    size_t payload = fixed_len + data_len;
    size_t total = s_padded(S_HEAD + payload);
    int rc = s_reserve(w, total);
    if (rc != 0)
        return rc;
    uint8_t *r = w->buf + w->len;
    memset(r, 0, total);
    s_put32(r + 4, (uint32_t)payload);
    r[8] = type;
    memcpy(r + S_HEAD, fixed, fixed_len);
    if (data_len)
        memcpy(r + S_HEAD + fixed_len, data, data_len);
    s_put32(r, ds_crc32c(0, r + 4, S_HEAD - 4 + payload));
    w->len += total;
    return 0;
}

static int s_hardstate_record(ds_wal_t *w)
{
    uint8_t p[S_HS_SIZE];
    s_put64(p, w->hs_term);
    s_put64(p + 8, w->hs_vote);
    s_put64(p + 16, w->hs_commit);
    return s_record(w, S_REC_HARDSTATE, p, sizeof p, NULL, 0);
}

static int s_check_append(ds_wal_t *w, const ds_raft_entry_t *e, size_t n)
{
    if (n == 0 || e[0].index == 0)
        return s_fail(w, DS_EINVAL, "no entries, or an entry with index 0");
    if (e[0].index <= w->floor)
        return s_fail(w, DS_EINVAL, "entry %" PRIu64 " is at or before the reset at %" PRIu64,
                      e[0].index, w->floor);
    if ((!w->empty || w->floor > 0) && e[0].index > w->last_index + 1)
        return s_fail(w, DS_EINVAL, "entry %" PRIu64 " would leave a hole after %" PRIu64,
                      e[0].index, w->last_index);
    for (size_t i = 0; i < n; i++) {
        if (e[i].index != e[0].index + i)
            return s_fail(w, DS_EINVAL, "entry indexes are not consecutive");
        if (e[i].data.len > DS_MAX_ENTRY_SIZE)
            return s_fail(w, DS_EINVAL, "entry %" PRIu64 " has %" PRIu32 " bytes, over %u",
                          e[i].index, e[i].data.len, DS_MAX_ENTRY_SIZE);
    }
    return 0;
}

int ds_wal_append(ds_wal_t *w, const ds_raft_entry_t *entries, size_t n)
{
    if (w->failed)
        return DS_EIO;
    int rc = s_check_append(w, entries, n);
    size_t mark = w->len;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const ds_raft_entry_t *e = &entries[i];
        uint8_t p[S_ENTRY_FIXED];
        s_put64(p, e->index);
        s_put64(p + 8, e->term);
        p[16] = e->type;
        rc = s_record(w, S_REC_ENTRY, p, sizeof p, e->data.data, e->data.len);
    }
    if (rc != 0) {
        w->len = mark; /* nothing of a refused batch stays buffered */
        return rc;
    }
    w->last_index = entries[n - 1].index;
    w->empty = false;
    if (w->last_index > w->buf_max)
        w->buf_max = w->last_index;
    return 0;
}

int ds_wal_hardstate(ds_wal_t *w, uint64_t term, uint64_t vote, uint64_t commit)
{
    if (w->failed)
        return DS_EIO;
    w->has_hs = true;
    w->hs_term = term;
    w->hs_vote = vote;
    w->hs_commit = commit;
    return s_hardstate_record(w);
}

int ds_wal_reset(ds_wal_t *w, uint64_t index, uint64_t term)
{
    if (w->failed)
        return DS_EIO;
    uint8_t p[S_RESET_SIZE];
    s_put64(p, index);
    s_put64(p + 8, term);
    int rc = s_record(w, S_REC_RESET, p, sizeof p, NULL, 0);
    if (rc == 0) {
        w->empty = true;
        w->last_index = index;
        w->floor = index;
    }
    return rc;
}

/* ---- writing ------------------------------------------------------------- */

static int s_pwrite_all(ds_wal_t *w, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = pwrite(w->fd, p, n, (off_t)w->off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->failed = true;
            return s_fail(w, DS_EIO, "writing segment %016" PRIx64 " failed: %s",
                          w->segs[w->n_segs - 1].seq, k < 0 ? strerror(errno) : "no progress");
        }
        p += k;
        n -= (size_t)k;
        w->off += (uint64_t)k;
        w->written += (uint64_t)k;
    }
    return 0;
}

/*  Takes what the background flusher finished. */
static int s_flusher_result(ds_wal_t *w)
{
    uint64_t durable;
    int err = ds_flusher_done(w->flusher, &durable);
    if (durable > w->synced)
        w->synced = durable;
    if (err == 0)
        return 0;
    w->failed = true;
    return s_fail(w, DS_EIO, "flushing segment %016" PRIx64 " failed: %s",
                  w->segs[w->n_segs - 1].seq, strerror(err));
}

/*  Waits for the background flush, if any: the file is the caller's
    alone afterwards. */
static int s_quiesce(ds_wal_t *w)
{
    if (!w->flusher)
        return 0;
    ds_flusher_wait(w->flusher);
    return s_flusher_result(w);
}

static int s_datasync(ds_wal_t *w)
{
    int rc = s_quiesce(w);
    if (rc != 0 || w->synced == w->written)
        return rc;
    if (fdatasync(w->fd) != 0) {
        w->failed = true;
        return s_fail(w, DS_EIO, "flushing segment %016" PRIx64 " failed: %s",
                      w->segs[w->n_segs - 1].seq, strerror(errno));
    }
    w->synced = w->written;
    return 0;
}

/*  Starts a new segment when the buffer does not fit in the current one.
    The old one is flushed first: nothing after it may be durable while
    something in it is not. The new one opens with the hard state. */
static int s_roll_if_full(ds_wal_t *w)
{
    if (w->off + w->len <= w->size)
        return 0;
    int rc = s_datasync(w);
    if (rc != 0)
        return rc;
    uint64_t need = s_padded(S_HEAD + S_HS_SIZE) + w->len;
    uint64_t size = need > DS_WAL_SEGMENT_SIZE ? need : DS_WAL_SEGMENT_SIZE;
    rc = s_create_segment(w, w->segs[w->n_segs - 1].seq + 1, size);
    if (rc != 0) {
        w->failed = true;
        return rc;
    }
    if (!w->has_hs)
        return 0;
    uint8_t *batch = w->buf;
    size_t batch_len = w->len, batch_cap = w->cap;
    w->buf = NULL;
    w->len = w->cap = 0;
    rc = s_hardstate_record(w); /* the latest: the batch's own come after */
    if (rc == 0)
        rc = s_reserve(w, batch_len);
    if (rc == 0) {
        memcpy(w->buf + w->len, batch, batch_len);
        w->len += batch_len;
        free(batch);
    } else {
        free(w->buf);
        w->buf = batch;
        w->len = batch_len;
        w->cap = batch_cap;
        w->failed = true;
    }
    return rc;
}

int ds_wal_flush(ds_wal_t *w)
{
    if (w->failed)
        return DS_EIO; /* the first failure's message stays */
    if (w->len == 0)
        return 0;
    int rc = s_roll_if_full(w);
    if (rc == 0)
        rc = s_pwrite_all(w, w->buf, w->len);
    if (rc != 0)
        return rc;
    s_seg_t *cur = &w->segs[w->n_segs - 1];
    if (w->buf_max > cur->max_index)
        cur->max_index = w->buf_max;
    w->buf_max = 0;
    w->len = 0;
    return 0;
}

int ds_wal_sync(ds_wal_t *w)
{
    int rc = ds_wal_flush(w);
    return rc != 0 ? rc : s_datasync(w);
}

int ds_wal_sync_start(ds_wal_t *w, uint64_t *pos)
{
    *pos = w->written;
    int rc = ds_wal_flush(w);
    if (rc != 0)
        return rc;
    *pos = w->written;
    if (w->synced == w->written)
        return 0;
    if (!w->flusher) {
        char err[256];
        rc = ds_flusher_new(&w->flusher, err, sizeof err);
        if (rc != 0)
            return s_fail(w, rc, "%s", err);
    }
    ds_flusher_request(w->flusher, w->fd, w->written);
    return 0;
}

int ds_wal_sync_poll(ds_wal_t *w, uint64_t *durable)
{
    int rc = w->flusher && !w->failed ? s_flusher_result(w) : 0;
    *durable = w->synced;
    return rc != 0 ? rc : w->failed ? DS_EIO : 0;
}

int ds_wal_sync_wait(ds_wal_t *w, uint64_t *durable)
{
    int rc = w->failed ? DS_EIO : s_quiesce(w);
    *durable = w->synced;
    return rc;
}

uint64_t ds_wal_written(const ds_wal_t *w)
{
    return w->written;
}

uint64_t ds_wal_durable(const ds_wal_t *w)
{
    return w->synced;
}

int ds_wal_sync_fd(const ds_wal_t *w)
{
    return w->flusher ? ds_flusher_fd(w->flusher) : -1;
}

int ds_wal_compact(ds_wal_t *w, uint64_t index)
{
    size_t gone = 0;
    while (gone + 1 < w->n_segs && w->segs[gone].max_index <= index) {
        char path[PATH_MAX + 32];
        s_seg_path(w, w->segs[gone].seq, path, sizeof path);
        if (unlink(path) != 0 && errno != ENOENT)
            return s_fail(w, DS_EIO, "cannot delete %s: %s", path, strerror(errno));
        gone++;
    }
    if (gone == 0)
        return 0;
    memmove(w->segs, w->segs + gone, (w->n_segs - gone) * sizeof *w->segs);
    w->n_segs -= gone;
    if (fsync(w->dir_fd) != 0)
        return s_fail(w, DS_EIO, "cannot sync %s: %s", w->dir, strerror(errno));
    return 0;
}

/* ---- reading back -------------------------------------------------------- */

typedef enum { S_SEG_END, S_SEG_TORN } s_seg_end_t;

static int s_replay_push(ds_wal_t *w, const ds_raft_entry_t *e, const char *seg, uint64_t at)
{
    if (e->index <= w->floor || (w->r_n == 0 && w->floor > 0 && e->index != w->floor + 1))
        return s_fail(w, DS_ECORRUPT,
                      "%s at byte %" PRIu64 ": entry %" PRIu64
                      " does not follow the reset at %" PRIu64,
                      seg, at, e->index, w->floor);
    if (w->r_n > 0) {
        uint64_t first = w->r_entries[0].index, last = w->r_entries[w->r_n - 1].index;
        if (e->index > last + 1)
            return s_fail(w, DS_ECORRUPT,
                          "%s at byte %" PRIu64 ": entry %" PRIu64 " leaves a hole after %" PRIu64,
                          seg, at, e->index, last);
        w->r_n = e->index < first ? 0 : (size_t)(e->index - first);
    }
    if (!s_room_for_one((void **)&w->r_entries, &w->r_cap, w->r_n, sizeof *w->r_entries))
        return s_fail(w, DS_ENOMEM, "out of memory reading the WAL");
    w->r_entries[w->r_n++] = *e;
    return 0;
}

/*  Applies one well-formed record to the replay. */
static int s_replay_record(ds_wal_t *w, s_seg_t *seg, uint8_t type, uint8_t *p, uint32_t len,
                           const char *name, uint64_t at)
{
    switch (type) {
    case S_REC_ENTRY: {
        ds_raft_entry_t e = {
            .index = s_get64(p),
            .term = s_get64(p + 8),
            .type = p[16],
            .data = {len > S_ENTRY_FIXED ? p + S_ENTRY_FIXED : NULL, len - S_ENTRY_FIXED}};
        if (e.index > seg->max_index)
            seg->max_index = e.index;
        return s_replay_push(w, &e, name, at);
    }
    case S_REC_HARDSTATE:
        w->has_hs = true;
        w->hs_term = s_get64(p);
        w->hs_vote = s_get64(p + 8);
        w->hs_commit = s_get64(p + 16);
        return 0;
    default: /* S_REC_RESET */
        w->r_n = 0;
        w->reset_index = s_get64(p);
        w->reset_term = s_get64(p + 8);
        w->empty = true;
        w->last_index = w->reset_index;
        w->floor = w->reset_index;
        return 0;
    }
}

/*  Checks the record at `at`: 1 = well formed (*rec_len set), 0 = the
    zeros after the last record, -1 = torn or damaged. */
static int s_check_record(const uint8_t *data, uint64_t size, uint64_t at, uint32_t *rec_len)
{
    if (size - at < S_HEAD) {
        for (uint64_t i = at; i < size; i++)
            if (data[i])
                return -1;
        return 0;
    }
    const uint8_t *r = data + at;
    uint32_t len = s_get32(r + 4);
    if (s_get32(r) == 0 && len == 0 && r[8] == 0)
        return 0;
    uint8_t type = r[8];
    uint32_t want = type == S_REC_ENTRY       ? S_ENTRY_FIXED
                    : type == S_REC_HARDSTATE ? S_HS_SIZE
                    : type == S_REC_RESET     ? S_RESET_SIZE
                                              : UINT32_MAX;
    bool shaped = want != UINT32_MAX && len >= want && (type == S_REC_ENTRY || len == want) &&
                  len - want <= DS_MAX_ENTRY_SIZE && r[9] == 0 && r[10] == 0 && r[11] == 0 &&
                  s_padded(S_HEAD + (uint64_t)len) <= size - at;
    if (!shaped || ds_crc32c(0, r + 4, S_HEAD - 4 + (size_t)len) != s_get32(r))
        return -1;
    for (size_t i = S_HEAD + len; i < s_padded(S_HEAD + (size_t)len); i++)
        if (r[i] != 0)
            return -1; /* padding is zeros: anything else is damage */
    *rec_len = len;
    return 1;
}

/*  Reads one segment's records into the replay; *end gets the offset
    after the last good record. */
static int s_replay_segment(ds_wal_t *w, s_seg_t *seg, uint8_t *data, uint64_t size,
                            const char *name, uint64_t *end, s_seg_end_t *how)
{
    uint64_t at = 0;
    for (;;) {
        uint32_t len = 0;
        int ok = s_check_record(data, size, at, &len);
        if (ok <= 0) {
            *end = at;
            *how = ok == 0 ? S_SEG_END : S_SEG_TORN;
            return 0;
        }
        int rc = s_replay_record(w, seg, data[at + 8], data + at + S_HEAD, len, name, at);
        if (rc != 0)
            return rc;
        at += s_padded(S_HEAD + (uint64_t)len);
    }
}

static int s_read_file(ds_wal_t *w, const char *path, uint8_t **out, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return s_fail(w, DS_EIO, "cannot read %s: %s", path, strerror(e));
    }
    uint8_t *data = malloc(st.st_size > 0 ? (size_t)st.st_size : 1);
    size_t got = 0;
    while (data && got < (size_t)st.st_size) {
        ssize_t k = pread(fd, data + got, (size_t)st.st_size - got, (off_t)got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    int e = errno;
    close(fd);
    if (!data || got != (size_t)st.st_size) {
        free(data);
        return s_fail(w, data ? DS_EIO : DS_ENOMEM, "cannot read %s: %s", path,
                      data ? strerror(e) : "out of memory");
    }
    *out = data;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int s_keep_buf(ds_wal_t *w, uint8_t *data)
{
    uint8_t **grown = realloc(w->r_bufs, (w->r_nbufs + 1) * sizeof *grown);
    if (!grown) {
        free(data);
        return s_fail(w, DS_ENOMEM, "out of memory reading the WAL");
    }
    w->r_bufs = grown;
    w->r_bufs[w->r_nbufs++] = data;
    return 0;
}

/*  Clears a torn tail of the current segment and keeps its size. */
static int s_clear_tail(ds_wal_t *w, const char *path)
{
    if (ftruncate(w->fd, (off_t)w->off) != 0 ||
        posix_fallocate(w->fd, 0, (off_t)(w->size > w->off ? w->size : w->off)) != 0 ||
        fdatasync(w->fd) != 0)
        return s_fail(w, DS_EIO, "cannot clear the torn tail of %s: %s", path, strerror(errno));
    return 0;
}

/*  Reads segment i; the last one becomes the current segment. */
static int s_replay_one(ds_wal_t *w, size_t i)
{
    char path[PATH_MAX + 32];
    s_seg_path(w, w->segs[i].seq, path, sizeof path);
    uint8_t *data = NULL;
    uint64_t size = 0, end = 0;
    s_seg_end_t how = S_SEG_END;
    int rc = s_read_file(w, path, &data, &size);
    if (rc == 0)
        rc = s_keep_buf(w, data);
    if (rc == 0)
        rc = s_replay_segment(w, &w->segs[i], data, size, path, &end, &how);
    if (rc != 0)
        return rc;
    bool last = i + 1 == w->n_segs;
    if (how == S_SEG_TORN && !last)
        return s_fail(w, DS_ECORRUPT,
                      "%s: a damaged record at byte %" PRIu64
                      " with newer segments after it; the log cannot be trusted: restore this "
                      "member from a snapshot (remove its data directory and let it rejoin)",
                      path, end);
    if (!last)
        return 0;
    if (w->fd >= 0)
        close(w->fd);
    w->fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->fd < 0)
        return s_fail(w, DS_EIO, "cannot open %s: %s", path, strerror(errno));
    w->off = end;
    w->size = size > DS_WAL_SEGMENT_SIZE ? size : DS_WAL_SEGMENT_SIZE;
    return how == S_SEG_TORN || size < w->size ? s_clear_tail(w, path) : 0;
}

/*  What was read back, as the caller sees it (entries still the WAL's). */
static ds_wal_replay_t s_replay_view(const ds_wal_t *w)
{
    return (ds_wal_replay_t){.term = w->hs_term,
                             .vote = w->hs_vote,
                             .commit = w->hs_commit,
                             .has_hardstate = w->has_hs,
                             .reset_index = w->reset_index,
                             .reset_term = w->reset_term,
                             .entries = w->r_entries,
                             .n = w->r_n};
}

static int s_replay(ds_wal_t *w, ds_wal_replay_t *out)
{
    w->empty = true;
    for (size_t i = 0; i < w->n_segs; i++) {
        int rc = s_replay_one(w, i);
        if (rc != 0)
            return rc;
    }
    if (w->r_n > 0) {
        w->empty = false;
        w->last_index = w->r_entries[w->r_n - 1].index;
    }
    *out = s_replay_view(w);
    return 0;
}

int ds_wal_decode(const uint8_t *data, size_t size, ds_wal_decoded_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    ds_wal_t *w = calloc(1, sizeof *w);
    if (!w)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory decoding a WAL segment");
    w->fd = w->dir_fd = -1;
    w->empty = true;
    s_seg_t seg = {1, 0};
    s_seg_end_t how = S_SEG_END;
    /* entries point into data, which is only read */
    int rc = s_replay_segment(w, &seg, (uint8_t *)data, size, "segment", &out->end, &how);
    if (rc == 0) {
        out->torn = how == S_SEG_TORN;
        out->replay = s_replay_view(w);
        w->r_entries = NULL; /* now out's */
    } else {
        ds_errf(err, errlen, rc, "%s", w->errmsg);
        memset(out, 0, sizeof *out);
    }
    ds_wal_close(&w);
    return rc;
}

void ds_wal_decoded_free(ds_wal_decoded_t *d)
{
    free((void *)d->replay.entries);
    memset(d, 0, sizeof *d);
}

/* ---- open and close ------------------------------------------------------ */

static int s_open_dir(ds_wal_t *w, const char *dir)
{
    if (strlen(dir) >= sizeof w->dir - 32)
        return s_fail(w, DS_EINVAL, "the WAL directory path is too long");
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    int made = ds_fileio_mkdir(dir);
    if (made < 0)
        return s_fail(w, DS_EIO, "cannot create %s: %s", dir, strerror(errno));
    if (made)
        (void)ds_fileio_sync_parent(dir); /* the new directory's name */
    w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0)
        return s_fail(w, DS_EIO, "cannot open %s: %s", dir, strerror(errno));
    return 0;
}

int ds_wal_open(ds_wal_t **out, const char *dir, ds_wal_replay_t *replay, char *err, size_t errlen)
{
    *out = NULL;
    memset(replay, 0, sizeof *replay);
    ds_wal_t *w = calloc(1, sizeof *w);
    if (!w)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory opening the WAL");
    w->fd = w->dir_fd = -1;
    int rc = s_open_dir(w, dir);
    if (rc == 0)
        rc = s_list_segments(w);
    if (rc == 0 && w->n_segs == 0)
        rc = s_create_segment(w, 1, DS_WAL_SEGMENT_SIZE);
    if (rc == 0)
        rc = s_replay(w, replay);
    if (rc != 0) {
        ds_errf(err, errlen, rc, "%s", w->errmsg);
        ds_wal_close(&w);
        memset(replay, 0, sizeof *replay);
        return rc;
    }
    *out = w;
    return 0;
}

void ds_wal_release_replay(ds_wal_t *w)
{
    for (size_t i = 0; i < w->r_nbufs; i++)
        free(w->r_bufs[i]);
    free(w->r_bufs);
    free(w->r_entries);
    w->r_bufs = NULL;
    w->r_entries = NULL;
    w->r_nbufs = w->r_n = w->r_cap = 0;
}

void ds_wal_close(ds_wal_t **wp)
{
    if (!wp || !*wp)
        return;
    ds_wal_t *w = *wp;
    ds_flusher_destroy(&w->flusher); /* waits for a running flush */
    ds_wal_release_replay(w);
    if (w->fd >= 0)
        close(w->fd);
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    free(w->segs);
    free(w->buf);
    free(w);
    *wp = NULL;
}

uint64_t ds_wal_last_index(const ds_wal_t *w)
{
    return w->last_index;
}

size_t ds_wal_segments(const ds_wal_t *w)
{
    return w->n_segs;
}

uint64_t ds_wal_offset(const ds_wal_t *w)
{
    return w->off;
}

const char *ds_wal_errmsg(const ds_wal_t *w)
{
    return w->errmsg;
}
