/*  bench/etcd.c - three etcd members and a client of etcd's HTTP/JSON
    gateway (POST /v3/kv/put) on plain sockets: one keep-alive HTTP/1.1
    connection per thread. */
#include "bench/bench.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_STATUS_MS 500
#define S_BUF       16384
#define S_REQ       8192

typedef struct {
    char etcd[BENCH_PATH];
    char cluster[1024]; /* --initial-cluster value */
    char peer_url[BENCH_MEMBERS][64];
    char client_url[BENCH_MEMBERS][64];
    char name[BENCH_MEMBERS][8];
    char data[BENCH_MEMBERS][BENCH_PATH];
    int client_port[BENCH_MEMBERS];
    uint64_t member_id[BENCH_MEMBERS]; /* learned from status; 0 unknown */
} s_impl_t;

typedef struct {
    int fd;
    int port;
    size_t have;
    char buf[S_BUF];
} s_http_t;

/* ---- HTTP/1.1 on a plain socket ---------------------------------------------------- */

/*  The first occurrence of needle in [hay, hay + len), or NULL (memmem is
    a GNU extension). */
static char *s_find(char *hay, size_t len, const char *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    return NULL;
}

static void s_http_close(s_http_t **cp)
{
    s_http_t *c = *cp;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    *cp = NULL;
}

static int s_http_open(int port, s_http_t **out)
{
    s_http_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->port = port;
    c->fd = bench_tcp_connect(port);
    if (c->fd < 0) {
        s_http_close(&c);
        return -1;
    }
    *out = c;
    return 0;
}

/*  Finds header `name` (case-insensitive, at a line start) in [h, end). */
static const char *s_header(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = h; p && p + n < end; p = memchr(p, '\n', (size_t)(end - p))) {
        if (*p == '\n')
            p++;
        if (p + n < end && strncasecmp(p, name, n) == 0 && p[n] == ':')
            return p + n + 1;
    }
    return NULL;
}

/*  Decodes a chunked body in place from `b` (length `len`). Returns the
    bytes consumed from b (> 0) with the decoded length in *body_len, 0 if
    more input is needed, -1 if malformed. */
static long s_dechunk(char *b, size_t len, size_t *body_len)
{
    size_t in = 0, outlen = 0;
    for (unsigned guard = 0; guard < 4096; guard++) {
        char *crlf = s_find(b + in, len - in, "\r\n", 2);
        if (!crlf)
            return 0;
        char *endp;
        unsigned long size = strtoul(b + in, &endp, 16);
        if (endp == b + in)
            return -1;
        size_t data = (size_t)(crlf + 2 - b);
        if (size == 0) {
            if (data + 2 > len)
                return 0;
            *body_len = outlen;
            return (long)(data + 2);
        }
        if (data + size + 2 > len)
            return 0;
        memmove(b + outlen, b + data, size);
        outlen += size;
        in = data + size + 2;
    }
    return -1;
}

/*  One POST. Returns 0 with the HTTP status and the body (NUL-terminated,
    truncated to resplen), -1 when the connection failed, -2 on timeout
    (the connection is then unusable: close it). */
static int s_http_post(s_http_t *c, const char *path, const char *body, size_t blen, int timeout_ms,
                       int *status, char *resp, size_t resplen)
{
    char req[S_REQ];
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     path, c->port, blen);
    if (n < 0 || (size_t)n + blen > sizeof req)
        return -1;
    memcpy(req + n, body, blen);
    struct iovec iov = {req, (size_t)n + blen};
    int sent = bench_send_all(c->fd, &iov, 1, deadline);
    if (sent != 0)
        return sent;
    for (unsigned guard = 0; guard < 100000; guard++) {
        char *hend = s_find(c->buf, c->have, "\r\n\r\n", 4);
        if (hend) {
            const char *end = hend + 2;
            if (c->have < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0)
                return -1;
            *status = atoi(c->buf + 9);
            const char *cl = s_header(c->buf, end, "content-length");
            const char *te = s_header(c->buf, end, "transfer-encoding");
            char *b = hend + 4;
            size_t avail = c->have - (size_t)(b - c->buf), blen_in = 0, consumed = 0;
            if (cl) {
                blen_in = strtoul(cl, NULL, 10);
                if (blen_in > sizeof c->buf - (size_t)(b - c->buf))
                    return -1;
                if (avail >= blen_in)
                    consumed = blen_in;
            } else if (te && strncasecmp(te + strspn(te, " "), "chunked", 7) == 0) {
                long used = s_dechunk(b, avail, &blen_in);
                if (used < 0)
                    return -1;
                consumed = (size_t)used;
            } else {
                return -1; /* the gateway always frames its answers */
            }
            if (consumed) {
                size_t copy = blen_in < resplen - 1 ? blen_in : resplen - 1;
                memcpy(resp, b, copy);
                resp[copy] = '\0';
                size_t used = (size_t)(b - c->buf) + consumed;
                memmove(c->buf, c->buf + used, c->have - used);
                c->have -= used;
                return 0;
            }
        }
        if (c->have == sizeof c->buf)
            return -1;
        ssize_t r = bench_recv_some(c->fd, c->buf + c->have, sizeof c->buf - c->have, deadline);
        if (r < 0)
            return (int)r;
        c->have += (size_t)r;
    }
    return -1;
}

static size_t s_base64(const uint8_t *in, size_t len, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    if ((len + 2) / 3 * 4 + 1 > cap)
        return 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tbl[v & 63] : '=';
    }
    out[o] = '\0';
    return o;
}

/*  The number in `"field":"123"` of a gateway JSON answer, or 0. */
static uint64_t s_json_u64(const char *json, const char *field)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", field);
    const char *p = strstr(json, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* ---- the system -------------------------------------------------------------------- */

static int s_start(bench_sys_t *s, int m)
{
    s_impl_t *e = s->impl;
    char *argv[] = {e->etcd,
                    "--name",
                    e->name[m],
                    "--data-dir",
                    e->data[m],
                    "--listen-peer-urls",
                    e->peer_url[m],
                    "--initial-advertise-peer-urls",
                    e->peer_url[m],
                    "--listen-client-urls",
                    e->client_url[m],
                    "--advertise-client-urls",
                    e->client_url[m],
                    "--initial-cluster",
                    e->cluster,
                    "--initial-cluster-state",
                    "new",
                    NULL};
    return bench_spawn(&s->procs[m], argv);
}

typedef struct {
    uint64_t member_id, leader, raft_index, applied_index;
} s_status_t;

static int s_status(s_impl_t *e, int m, s_status_t *st)
{
    s_http_t *c = NULL;
    char resp[2048];
    int code = 0;
    if (s_http_open(e->client_port[m], &c) != 0)
        return -1;
    int rc =
        s_http_post(c, "/v3/maintenance/status", "{}", 2, S_STATUS_MS, &code, resp, sizeof resp);
    s_http_close(&c);
    if (rc != 0 || code != 200)
        return -1;
    st->member_id = s_json_u64(resp, "member_id");
    st->leader = s_json_u64(resp, "leader");
    st->raft_index = s_json_u64(resp, "raftIndex");
    st->applied_index = s_json_u64(resp, "raftAppliedIndex");
    if (st->member_id)
        e->member_id[m] = st->member_id;
    return st->member_id ? 0 : -1;
}

static int s_leader(bench_sys_t *s, int timeout_ms)
{
    s_impl_t *e = s->impl;
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (bench_now_ns() < deadline) {
        uint64_t agreed = 0;
        bool ok = true;
        for (int m = 0; m < BENCH_MEMBERS && ok; m++) {
            s_status_t st;
            if (!bench_alive(&s->procs[m]))
                continue;
            ok = s_status(e, m, &st) == 0 && st.leader != 0 && (agreed == 0 || st.leader == agreed);
            agreed = st.leader;
        }
        for (int m = 0; ok && agreed && m < BENCH_MEMBERS; m++)
            if (e->member_id[m] == agreed && bench_alive(&s->procs[m]))
                return m;
        bench_sleep_ms(50);
    }
    return -1;
}

static int s_caught_up(bench_sys_t *s, int leader, int member, int timeout_ms)
{
    s_impl_t *e = s->impl;
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (bench_now_ns() < deadline) {
        s_status_t l, m;
        if (s_status(e, leader, &l) == 0 && s_status(e, member, &m) == 0 &&
            m.applied_index >= l.raft_index)
            return 0;
        bench_sleep_ms(50);
    }
    return -1;
}

static int s_conn_open(bench_sys_t *s, int member, unsigned client, void **out)
{
    (void)client;
    s_impl_t *e = s->impl;
    s_http_t *c = NULL;
    if (s_http_open(e->client_port[member], &c) != 0) {
        /* a member that is down: a connection attempt per put will follow */
        c = calloc(1, sizeof *c);
        if (!c)
            return -1;
        c->fd = -1;
        c->port = e->client_port[member];
    }
    *out = c;
    return 0;
}

static void s_conn_close(void **conn)
{
    s_http_t *c = *conn;
    s_http_close(&c);
    *conn = NULL;
}

static bench_put_t s_put(void *conn, const char *key, const void *val, size_t len, int timeout_ms,
                         int *hint)
{
    s_http_t *c = conn;
    char k64[256], v64[4096], body[S_REQ / 2], resp[1024];
    *hint = -1;
    if (c->fd < 0) {
        s_http_t *fresh = NULL;
        if (s_http_open(c->port, &fresh) != 0)
            return BENCH_PUT_FAIL;
        c->fd = fresh->fd;
        fresh->fd = -1;
        s_http_close(&fresh);
    }
    if (!s_base64((const uint8_t *)key, strlen(key), k64, sizeof k64) ||
        !s_base64(val, len, v64, sizeof v64))
        return BENCH_PUT_FAIL;
    int n = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
    if (n < 0 || (size_t)n >= sizeof body)
        return BENCH_PUT_FAIL;
    int code = 0;
    int rc = s_http_post(c, "/v3/kv/put", body, (size_t)n, timeout_ms, &code, resp, sizeof resp);
    if (rc == -2)
        return BENCH_PUT_TIMEOUT;
    if (rc != 0)
        return BENCH_PUT_FAIL;
    return code == 200 ? BENCH_PUT_OK : BENCH_PUT_RETRY;
}

int bench_etcd_init(bench_sys_t *s, const char *etcd, const char *root)
{
    memset(s, 0, sizeof *s);
    s_impl_t *e = calloc(1, sizeof *e);
    int ports[2 * BENCH_MEMBERS];
    if (!e || bench_free_ports(2 * BENCH_MEMBERS, ports) != 0) {
        free(e);
        return -1;
    }
    snprintf(e->etcd, sizeof e->etcd, "%s", etcd);
    snprintf(s->dir, sizeof s->dir, "%.400s/etcd", root);
    if (mkdir(s->dir, 0700) != 0) {
        free(e);
        return -1;
    }
    size_t off = 0;
    for (int m = 0; m < BENCH_MEMBERS; m++) {
        e->client_port[m] = ports[2 * m];
        snprintf(e->name[m], sizeof e->name[m], "e%d", m + 1);
        snprintf(e->client_url[m], sizeof e->client_url[m], "http://127.0.0.1:%d", ports[2 * m]);
        snprintf(e->peer_url[m], sizeof e->peer_url[m], "http://127.0.0.1:%d", ports[2 * m + 1]);
        snprintf(e->data[m], sizeof e->data[m], "%.400s/e%d.etcd", s->dir, m + 1);
        snprintf(s->procs[m].log, sizeof s->procs[m].log, "%.400s/e%d.log", s->dir, m + 1);
        off += (size_t)snprintf(e->cluster + off, sizeof e->cluster - off, "%s%s=%s", m ? "," : "",
                                e->name[m], e->peer_url[m]);
    }
    s->name = "etcd";
    s->impl = e;
    s->start = s_start;
    s->leader = s_leader;
    s->caught_up = s_caught_up;
    s->conn_open = s_conn_open;
    s->put = s_put;
    s->conn_close = s_conn_close;
    return 0;
}
