/*  bench/gossamer.c - three dscoord members and a benchmark client: one
    DEALER per thread (ZMTP on a plain socket, bench/zmtp.h, or a libzmq
    socket), a stable sender name and increasing corr_ids (the state
    machine deduplicates on (sender, corr_id)). */
#include "bench/bench.h"
#include "bench/zmtp.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/msg.h"
#include "protocol/transport.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_STATUS_MS 300

typedef struct {
    char dscoord[BENCH_PATH];
    char peers[1024]; /* --peers value */
    char rpc[BENCH_MEMBERS][64];
    char data[BENCH_MEMBERS][BENCH_PATH];
    char extra_buf[512]; /* extra dscoord flags, split in place */
    char *extra[16];
    unsigned n_extra;
    int rpc_port[BENCH_MEMBERS];
    bool libzmq; /* clients use libzmq sockets, not bench/zmtp.c */
} s_impl_t;

typedef struct {
    s_impl_t *impl;
    zsock_t *sock;      /* with impl->libzmq */
    bench_zmtp_t *zmtp; /* without; NULL until connected */
    int port;
    char name[DS_MAX_NAME + 1];
    uint64_t corr;
} s_conn_t;

static int s_start(bench_sys_t *s, int m)
{
    s_impl_t *g = s->impl;
    char id[16];
    snprintf(id, sizeof id, "%d", (m + 1) % 100);
    /* Like the etcd cluster it is compared with (plain http), without
       transport encryption. */
    char *argv[] = {g->dscoord, "--id",  id,        "--data",     g->data[m], "--peers",
                    g->peers,   "--rpc", g->rpc[m], "--insecure", NULL};
    return bench_spawn(&s->procs[m], argv);
}

static int s_member_of_rpc(const s_impl_t *g, const char *rpc)
{
    for (int m = 0; rpc && m < BENCH_MEMBERS; m++)
        if (strcmp(g->rpc[m], rpc) == 0)
            return m;
    return -1;
}

/*  CLUSTER_STATUS of one member; 0 and the reply's fields, or -1. */
static int s_status(const s_impl_t *g, int m, uint64_t *leader_id, uint64_t *commit,
                    uint64_t *applied)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_CLUSTER_STATUS, 1, "bench-status"};
    ds_query_req_t body = {"", true, 0}; /* this member's own view */
    ds_msg_t *reply = NULL;
    ds_codec_err_t err;
    if (ds_rpc_call(g->rpc[m], NULL, &env, &body, S_STATUS_MS, &reply, &err) != 0)
        return -1;
    int rc = -1;
    if (reply->env.type == DS_MSG_CLUSTER_STATUS_REPLY) {
        const ds_cluster_status_reply_t *st = reply->body;
        *leader_id = st->leader;
        *commit = st->commit_index;
        *applied = st->applied_index;
        rc = 0;
    }
    ds_msg_destroy(&reply);
    return rc;
}

static int s_leader(bench_sys_t *s, int timeout_ms)
{
    s_impl_t *g = s->impl;
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (bench_now_ns() < deadline) {
        uint64_t agreed = 0;
        bool ok = true;
        for (int m = 0; m < BENCH_MEMBERS && ok; m++) {
            uint64_t lead = 0, commit, applied;
            if (!bench_alive(&s->procs[m]))
                continue;
            ok = s_status(g, m, &lead, &commit, &applied) == 0 && lead != 0 &&
                 (agreed == 0 || lead == agreed);
            agreed = lead;
        }
        if (ok && agreed >= 1 && agreed <= BENCH_MEMBERS && bench_alive(&s->procs[agreed - 1]))
            return (int)agreed - 1;
        bench_sleep_ms(50);
    }
    return -1;
}

static int s_caught_up(bench_sys_t *s, int leader, int member, int timeout_ms)
{
    s_impl_t *g = s->impl;
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    while (bench_now_ns() < deadline) {
        uint64_t lid, lcommit, lapplied, mid, mcommit, mapplied;
        if (s_status(g, leader, &lid, &lcommit, &lapplied) == 0 &&
            s_status(g, member, &mid, &mcommit, &mapplied) == 0 && mapplied >= lcommit)
            return 0;
        bench_sleep_ms(50);
    }
    return -1;
}

static int s_conn_open(bench_sys_t *s, int member, unsigned client, void **out)
{
    s_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->impl = s->impl;
    snprintf(c->name, sizeof c->name, "bench-%d-%u", (int)getpid(), client);
    c->port = c->impl->rpc_port[member];
    if (!c->impl->libzmq) {
        /* a member that is down: a connection attempt per put follows */
        c->zmtp = bench_zmtp_open(c->port, bench_now_ns() + 1000000000u);
        *out = c;
        return 0;
    }
    c->sock = zsock_new(ZMQ_DEALER);
    if (!c->sock) {
        free(c);
        return -1;
    }
    ds_transport_setup(c->sock);
    if (zsock_connect(c->sock, "%s", c->impl->rpc[member]) != 0) {
        zsock_destroy(&c->sock);
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

static void s_conn_close(void **conn)
{
    s_conn_t *c = *conn;
    if (!c)
        return;
    zsock_destroy(&c->sock);
    bench_zmtp_close(&c->zmtp);
    free(c);
    *conn = NULL;
}

/*  What the answer to request `corr` says; the message is freed. */
static bench_put_t s_judge(s_conn_t *c, ds_msg_t **msg, int *hint)
{
    bench_put_t r = BENCH_PUT_RETRY;
    if ((*msg)->env.type == DS_MSG_KV_REPLY) {
        r = BENCH_PUT_OK;
    } else if ((*msg)->env.type == DS_MSG_NOT_LEADER) {
        const ds_not_leader_t *nl = (*msg)->body;
        *hint = nl->leader_id ? s_member_of_rpc(c->impl, nl->leader_rpc) : -1;
        r = *hint >= 0 ? BENCH_PUT_REDIRECT : BENCH_PUT_RETRY;
    }
    ds_msg_destroy(msg);
    return r;
}

/*  Sends the request on a libzmq socket; its answer in *msg. */
static bench_put_t s_call_libzmq(s_conn_t *c, const ds_envelope_t *env, const ds_kv_put_t *body,
                                 uint64_t deadline, ds_msg_t **msg)
{
    ds_codec_err_t err;
    if (ds_transport_send(c->sock, NULL, env, body, &err) != 0)
        return BENCH_PUT_FAIL;
    for (unsigned guard = 0; guard < 100000; guard++) {
        uint64_t now = bench_now_ns();
        if (now >= deadline)
            return BENCH_PUT_TIMEOUT;
        zsock_set_rcvtimeo(c->sock, (int)((deadline - now + 999999u) / 1000000u));
        int rc = ds_transport_recv(c->sock, false, NULL, msg, &err);
        if (rc != 0)
            return rc == DS_ETIMEOUT ? BENCH_PUT_TIMEOUT : BENCH_PUT_FAIL;
        if ((*msg)->env.corr_id == env->corr_id)
            return BENCH_PUT_OK;
        ds_msg_destroy(msg); /* a late answer to an earlier try */
    }
    return BENCH_PUT_TIMEOUT;
}

/*  Receives on a ZMTP connection until the answer to `corr`. */
static bench_put_t s_recv_zmtp(s_conn_t *c, uint64_t corr, uint64_t deadline, ds_msg_t **msg)
{
    for (unsigned guard = 0; guard < 100000; guard++) {
        struct iovec f[BENCH_ZMTP_MAX_FRAMES];
        size_t n = 0;
        int rc = bench_zmtp_recv(c->zmtp, f, BENCH_ZMTP_MAX_FRAMES, &n, deadline);
        if (rc != 0)
            return rc == -2 ? BENCH_PUT_TIMEOUT : BENCH_PUT_FAIL;
        if (n != 2 ||
            ds_msg_decode(f[0].iov_base, f[0].iov_len, f[1].iov_base, f[1].iov_len, msg, NULL))
            return BENCH_PUT_FAIL;
        if ((*msg)->env.corr_id == corr)
            return BENCH_PUT_OK;
        ds_msg_destroy(msg);
    }
    return BENCH_PUT_TIMEOUT;
}

/*  Sends the request on the ZMTP connection (made first if there is
    none); its answer in *msg. A connection that failed or timed out is
    closed: the next put makes a new one. */
static bench_put_t s_call_zmtp(s_conn_t *c, const ds_envelope_t *env, const ds_kv_put_t *body,
                               uint64_t deadline, ds_msg_t **msg)
{
    ds_buf_t eb = {0}, bb = {0};
    if (!c->zmtp && !(c->zmtp = bench_zmtp_open(c->port, deadline)))
        return BENCH_PUT_FAIL;
    bench_put_t r = BENCH_PUT_FAIL;
    if (ds_msg_encode(env, body, &eb, &bb, NULL) == 0) {
        struct iovec f[2] = {{eb.data, eb.len}, {bb.data, bb.len}};
        int rc = bench_zmtp_send(c->zmtp, f, 2, deadline);
        r = rc == 0    ? s_recv_zmtp(c, env->corr_id, deadline, msg)
            : rc == -2 ? BENCH_PUT_TIMEOUT
                       : BENCH_PUT_FAIL;
    }
    ds_buf_free(&eb);
    ds_buf_free(&bb);
    if (r != BENCH_PUT_OK)
        bench_zmtp_close(&c->zmtp);
    return r;
}

static bench_put_t s_put(void *conn, const char *key, const void *val, size_t len, int timeout_ms,
                         int *hint)
{
    s_conn_t *c = conn;
    ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_KV_PUT, ++c->corr, c->name};
    ds_kv_put_t body = {(char *)key, {(uint8_t *)val, (uint32_t)len}};
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    ds_msg_t *msg = NULL;
    *hint = -1;
    bench_put_t r = c->sock ? s_call_libzmq(c, &env, &body, deadline, &msg)
                            : s_call_zmtp(c, &env, &body, deadline, &msg);
    return r == BENCH_PUT_OK ? s_judge(c, &msg, hint) : r;
}

int bench_gossamer_init(bench_sys_t *s, const char *dscoord, const char *extra, const char *root,
                        bool libzmq)
{
    memset(s, 0, sizeof *s);
    s_impl_t *g = calloc(1, sizeof *g);
    int ports[2 * BENCH_MEMBERS];
    if (!g || bench_free_ports(2 * BENCH_MEMBERS, ports) != 0) {
        free(g);
        return -1;
    }
    zsys_init();
    zsys_set_linger(0);
    zsys_handler_set(NULL); /* our own signal handlers stay in charge */
    g->libzmq = libzmq;
    snprintf(g->dscoord, sizeof g->dscoord, "%s", dscoord);
    snprintf(g->extra_buf, sizeof g->extra_buf, "%s", extra ? extra : "");
    char *save = NULL;
    for (char *t = strtok_r(g->extra_buf, " ", &save); t && g->n_extra < 16;
         t = strtok_r(NULL, " ", &save))
        g->extra[g->n_extra++] = t;
    snprintf(s->dir, sizeof s->dir, "%.400s/gossamer", root);
    if (mkdir(s->dir, 0700) != 0) {
        free(g);
        return -1;
    }
    size_t off = 0;
    for (int m = 0; m < BENCH_MEMBERS; m++) {
        g->rpc_port[m] = ports[2 * m];
        snprintf(g->rpc[m], sizeof g->rpc[m], "tcp://127.0.0.1:%d", ports[2 * m]);
        snprintf(g->data[m], sizeof g->data[m], "%.400s/c%d", s->dir, m + 1);
        snprintf(s->procs[m].log, sizeof s->procs[m].log, "%.400s/c%d.log", s->dir, m + 1);
        off += (size_t)snprintf(g->peers + off, sizeof g->peers - off, "%s%d=tcp://127.0.0.1:%d",
                                m ? "," : "", m + 1, ports[2 * m + 1]);
    }
    s->name = "gossamer";
    s->impl = g;
    s->start = s_start;
    s->leader = s_leader;
    s->caught_up = s_caught_up;
    s->conn_open = s_conn_open;
    s->put = s_put;
    s->conn_close = s_conn_close;
    return 0;
}
