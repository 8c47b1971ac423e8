/*  bench/zmtp.c - see zmtp.h. */
#include "bench/zmtp.h"

#include "bench/bench.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_GREETING 64
#define S_BUF      65536
#define S_MORE     0x01u
#define S_LONG     0x02u
#define S_COMMAND  0x04u

struct bench_zmtp {
    int fd;
    size_t used, have; /* buf[used, have) is read and not yet taken */
    uint8_t buf[S_BUF];
};

void bench_zmtp_close(bench_zmtp_t **self_p)
{
    bench_zmtp_t *self = *self_p;
    if (!self)
        return;
    if (self->fd >= 0)
        close(self->fd);
    free(self);
    *self_p = NULL;
}

/*  Makes at least `n` unread bytes available at buf + used, reading
    after what is there (never moving it). 0, -1, -2. */
static int s_need(bench_zmtp_t *self, size_t n, uint64_t deadline)
{
    if (n > S_BUF - self->used)
        return -1; /* larger than a benchmark's message can be */
    while (self->have - self->used < n) {
        ssize_t r = bench_recv_some(self->fd, self->buf + self->have, S_BUF - self->have, deadline);
        if (r < 0)
            return (int)r;
        self->have += (size_t)r;
    }
    return 0;
}

/*  Reads one frame's header and body; *flags and the body in *frame.
    0, -1, -2. */
static int s_frame(bench_zmtp_t *self, uint8_t *flags, struct iovec *frame, uint64_t deadline)
{
    int rc = s_need(self, 2, deadline);
    if (rc != 0)
        return rc;
    *flags = self->buf[self->used];
    size_t head = *flags & S_LONG ? 9 : 2;
    if ((rc = s_need(self, head, deadline)) != 0)
        return rc;
    uint64_t size = 0;
    for (size_t i = 1; i < head; i++)
        size = size << 8 | self->buf[self->used + i];
    if (size > S_BUF || (rc = s_need(self, head + (size_t)size, deadline)) != 0)
        return rc ? rc : -1;
    frame->iov_base = self->buf + self->used + head;
    frame->iov_len = (size_t)size;
    self->used += head + (size_t)size;
    return 0;
}

/*  A frame header for `len` bytes with `flags`; its length. */
static size_t s_head(uint8_t *h, uint8_t flags, size_t len)
{
    if (len <= 255) {
        h[0] = flags;
        h[1] = (uint8_t)len;
        return 2;
    }
    h[0] = (uint8_t)(flags | S_LONG);
    for (int i = 0; i < 8; i++)
        h[1 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
    return 9;
}

/*  Drops what was taken, so that a new message starts at buf[0]. */
static void s_compact(bench_zmtp_t *self)
{
    memmove(self->buf, self->buf + self->used, self->have - self->used);
    self->have -= self->used;
    self->used = 0;
}

/*  Greeting: signature, version 3.0, mechanism NULL, as a client. */
static int s_greet(bench_zmtp_t *self, uint64_t deadline)
{
    uint8_t g[S_GREETING] = {0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0, 'N', 'U', 'L', 'L'};
    struct iovec iov = {g, sizeof g};
    int rc = bench_send_all(self->fd, &iov, 1, deadline);
    if (rc == 0)
        rc = s_need(self, S_GREETING, deadline);
    if (rc != 0)
        return rc;
    const uint8_t *p = self->buf + self->used;
    if (p[0] != 0xFF || p[9] != 0x7F || p[10] < 3 || memcmp(p + 12, "NULL", 5) != 0)
        return -1; /* not a ZMTP 3 peer, or not the NULL mechanism (CURVE) */
    self->used += S_GREETING;
    return 0;
}

/*  READY both ways, declaring Socket-Type DEALER. */
static int s_ready(bench_zmtp_t *self, uint64_t deadline)
{
    static const uint8_t cmd[] = {5,   'R', 'E', 'A', 'D', 'Y', 11,  'S', 'o', 'c',
                                  'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0,   0,
                                  0,   6,   'D', 'E', 'A', 'L', 'E', 'R'};
    uint8_t h[9];
    struct iovec iov[2] = {{h, s_head(h, S_COMMAND, sizeof cmd)}, {(void *)cmd, sizeof cmd}};
    int rc = bench_send_all(self->fd, iov, 2, deadline);
    uint8_t flags = 0;
    struct iovec got;
    if (rc == 0)
        rc = s_frame(self, &flags, &got, deadline);
    if (rc != 0)
        return rc;
    const uint8_t *b = got.iov_base;
    if (!(flags & S_COMMAND) || got.iov_len < 6 || memcmp(b, "\x05READY", 6) != 0)
        return -1; /* an ERROR command, or not ZMTP */
    return 0;
}

bench_zmtp_t *bench_zmtp_open(int port, uint64_t deadline)
{
    bench_zmtp_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = bench_tcp_connect(port);
    if (self->fd < 0 || s_greet(self, deadline) != 0 || s_ready(self, deadline) != 0)
        bench_zmtp_close(&self);
    return self;
}

int bench_zmtp_send(bench_zmtp_t *self, const struct iovec *frames, size_t n, uint64_t deadline)
{
    if (n == 0 || n > BENCH_ZMTP_MAX_FRAMES)
        return -1;
    uint8_t heads[BENCH_ZMTP_MAX_FRAMES][9];
    struct iovec iov[2 * BENCH_ZMTP_MAX_FRAMES];
    for (size_t i = 0; i < n; i++) {
        uint8_t flags = i + 1 < n ? S_MORE : 0;
        iov[2 * i] = (struct iovec){heads[i], s_head(heads[i], flags, frames[i].iov_len)};
        iov[2 * i + 1] = frames[i];
    }
    return bench_send_all(self->fd, iov, 2 * n, deadline);
}

int bench_zmtp_recv(bench_zmtp_t *self, struct iovec *frames, size_t max, size_t *n,
                    uint64_t deadline)
{
    s_compact(self);
    *n = 0;
    for (unsigned guard = 0; guard < 1000; guard++) {
        uint8_t flags = 0;
        struct iovec f;
        int rc = s_frame(self, &flags, &f, deadline);
        if (rc != 0)
            return rc;
        if (flags & S_COMMAND)
            continue; /* nothing a request-reply client needs */
        if (*n == max)
            return -1;
        frames[(*n)++] = f;
        if (!(flags & S_MORE))
            return 0;
    }
    return -1;
}
