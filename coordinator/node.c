/*  coordinator/node.c - the coordinator's loop: sockets, ticks, replica. */
#include "coordinator/node_impl.h"

#include "coordinator/apply.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "protocol/transport.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_MOD "node"

uint64_t ds_node_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t ds_node_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const ds_peer_t *ds_node_peer(const ds_node_t *self, uint64_t id)
{
    for (uint32_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].id == id)
            return &self->peers[i];
    return NULL;
}

void ds_node_caller_free(ds_caller_t *c)
{
    zframe_destroy(&c->rid);
}

/* ---- replies ----------------------------------------------------------- */

void ds_node_reply(ds_node_t *self, const ds_caller_t *to, uint16_t type, const void *body)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, to->corr_id, self->id_text};
    ds_codec_err_t err;
    ds_node_metrics_reply(self, to, type);
    int rc = ds_transport_send(self->rpc, to->rid, &env, body, &err);
    if (rc != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "reply not sent", "type=%s err=%s detail=%s",
               ds_msg_type_name(type), ds_errname(rc), err.text);
}

void ds_node_reply_error(ds_node_t *self, const ds_caller_t *to, int code, const char *fmt, ...)
{
    char text[DS_MAX_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ds_error_reply_t body = {code, text};
    ds_node_reply(self, to, DS_MSG_ERROR, &body);
}

void ds_node_reply_not_leader(ds_node_t *self, const ds_caller_t *to)
{
    const ds_peer_t *p = self->lead ? ds_node_peer(self, self->lead) : NULL;
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    ds_not_leader_t body = {p && p->rpc[0] ? self->lead : 0, p ? (char *)p->rpc : "", st.term};
    ds_node_reply(self, to, DS_MSG_NOT_LEADER, &body);
}

/* ---- replica hooks ------------------------------------------------------- */

static void s_hook_send(void *ctx, const ds_raft_msg_t *msg)
{
    ds_node_t *self = ctx;
    ds_peer_t *p = (ds_peer_t *)ds_node_peer(self, msg->to);
    if (!p || !p->out)
        return; /* not a member we know: Raft retries when it learns more */
    ds_envelope_t env = {DS_PROTOCOL_VERSION, msg->type, 0, self->id_text};
    ds_codec_err_t err;
    int rc = ds_transport_send(p->out, NULL, &env, msg, &err);
    if (rc != 0 && rc != DS_ELIMIT)
        DS_LOG(DS_LOG_WARN, "peer", "send failed", "to=%" PRIu64 " type=%s err=%s detail=%s",
               msg->to, ds_raft_msg_name(msg->type), ds_errname(rc), err.text);
}

static int s_hook_apply(void *ctx, ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict)
{
    (void)ctx;
    return ds_apply_entry(txn, entry, verdict);
}

static void s_hook_applied(void *ctx, uint64_t index, uint64_t term, int result)
{
    ds_node_writes_applied(ctx, index, term, result);
    ds_node_control_applied(ctx, index);
}

static void s_hook_read(void *ctx, const ds_raft_read_state_t *rs)
{
    ds_node_read_confirmed(ctx, rs);
}

/*  The leader's soft state (worker heartbeats, controller bookkeeping)
    starts afresh with each leadership. */
static void s_role_changed(ds_node_t *self, const ds_raft_event_t *ev)
{
    if (ev->type == DS_RAFT_EV_BECAME_CANDIDATE)
        self->elections++;
    ds_node_workers_reset(self);
    ds_node_control_reset(self);
    if (ev->type != DS_RAFT_EV_BECAME_LEADER) {
        ds_node_writes_fail_all(self);
        ds_node_reads_fail_all(self);
        return;
    }
    self->leader_since_ms = ds_node_clock_ms();
    self->next_control_ms = self->leader_since_ms;
    self->leader_index = UINT64_MAX; /* set once the ready batch that made it leader is out */
    ds_node_event(self, "leader", "", "member %s became the leader (term %" PRIu64 ")",
                  self->id_text, ev->term);
}

static void s_hook_event(void *ctx, const ds_raft_event_t *ev)
{
    ds_node_t *self = ctx;
    ds_log_level_t lvl = ev->type == DS_RAFT_EV_MSG_IGNORED ? DS_LOG_DEBUG : DS_LOG_INFO;
    if (ev->type == DS_RAFT_EV_QUORUM_LOST)
        lvl = DS_LOG_WARN;
    DS_LOG(lvl, "raft", ds_raft_event_name(ev->type),
           "id=%s term=%" PRIu64 " peer=%" PRIu64 " index=%" PRIu64, self->id_text, ev->term,
           ev->peer, ev->index);
    if (ev->type <= DS_RAFT_EV_BECAME_LEADER)
        s_role_changed(self, ev);
}

static void s_hook_installed(void *ctx, uint64_t index)
{
    ds_node_t *self = ctx;
    DS_LOG(DS_LOG_INFO, "raft", "installed snapshot", "id=%s index=%" PRIu64, self->id_text, index);
}

/* ---- setup ---------------------------------------------------------------- */

static int s_open_replica(ds_node_t *self, char *err, size_t errlen)
{
    ds_replica_config_t rcfg = {0};
    ds_raft_config_defaults(&rcfg.raft, self->cfg.id);
    rcfg.raft.heartbeat_ticks = self->cfg.heartbeat_ms / self->cfg.tick_ms;
    rcfg.raft.election_ticks = self->cfg.election_ms / self->cfg.tick_ms;
    if (rcfg.raft.heartbeat_ticks == 0)
        rcfg.raft.heartbeat_ticks = 1;
    rcfg.raft.n_voters = self->cfg.n_members;
    for (uint32_t i = 0; i < self->cfg.n_members; i++)
        rcfg.raft.voters[i] = self->cfg.members[i].id;
    rcfg.raft.seed = self->cfg.id * 0x9e3779b97f4a7c15ull ^ ds_node_wall_ms();
    ds_store_opts_default(&rcfg.store);
    rcfg.snapshot_entries = self->cfg.snapshot_entries;
    rcfg.hooks = (ds_replica_hooks_t){s_hook_send, s_hook_apply, s_hook_applied,
                                      s_hook_read, s_hook_event, s_hook_installed,
                                      self};
    return ds_replica_open(&self->replica, self->cfg.data, &rcfg, err, errlen);
}

static int s_connect_peers(ds_node_t *self, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < self->cfg.n_members; i++) {
        ds_peer_t *p = &self->peers[self->n_peers++];
        p->id = self->cfg.members[i].id;
        _Static_assert(sizeof p->peer == sizeof self->cfg.members[i].peer, "endpoint sizes");
        _Static_assert(sizeof p->rpc == sizeof self->cfg.rpc, "endpoint sizes");
        memcpy(p->peer, self->cfg.members[i].peer, sizeof p->peer);
        if (p->id == self->cfg.id) {
            memcpy(p->rpc, self->cfg.rpc, sizeof p->rpc);
            continue;
        }
        int rc = ds_transport_peer_connect(p->peer, self->id_text, NULL, &p->out, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ds_node_new(ds_node_t **out, const ds_coord_config_t *cfg, char *err, size_t errlen)
{
    *out = NULL;
    ds_node_t *self = calloc(1, sizeof *self);
    if (!self)
        return DS_ENOMEM;
    self->cfg = *cfg;
    snprintf(self->id_text, sizeof self->id_text, "%u", cfg->id);
    ds_telemetry_config_t tcfg = {.max_series = cfg->telemetry_series};
    self->telemetry = ds_telemetry_new(&tcfg);
    if (!self->telemetry) {
        free(self);
        return ds_errf(err, errlen, DS_ENOMEM, "cannot make the telemetry aggregator");
    }
    int rc = s_open_replica(self, err, errlen);
    if (rc == 0)
        rc = ds_transport_router_bind(ds_coord_member_peer(cfg, cfg->id), NULL, &self->peer_in, err,
                                      errlen);
    if (rc == 0)
        rc = ds_transport_router_bind(cfg->rpc, NULL, &self->rpc, err, errlen);
    if (rc == 0)
        rc = s_connect_peers(self, err, errlen);
    if (rc == 0 && cfg->http[0])
        rc = ds_node_http_bind(self, err, errlen);
    if (rc != 0) {
        ds_node_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void ds_node_destroy(ds_node_t **self_p)
{
    assert(self_p);
    ds_node_t *self = *self_p;
    if (!self)
        return;
    ds_node_writes_fail_all(self);
    ds_node_reads_fail_all(self);
    ds_node_caller_free(&self->transfer);
    ds_node_events_close(self);
    ds_node_workers_reset(self);
    ds_node_control_reset(self);
    free(self->writes);
    free(self->reads);
    for (uint32_t i = 0; i < self->n_peers; i++)
        zsock_destroy(&self->peers[i].out);
    zsock_destroy(&self->peer_in);
    zsock_destroy(&self->rpc);
    ds_node_http_close(self);
    ds_replica_destroy(&self->replica);
    ds_telemetry_destroy(&self->telemetry);
    free(self);
    *self_p = NULL;
}

/* ---- inputs ----------------------------------------------------------------- */

static void s_on_hello(ds_node_t *self, const ds_msg_t *msg)
{
    const ds_peer_hello_t *h = msg->body;
    ds_peer_t *p = (ds_peer_t *)ds_node_peer(self, h->id);
    if (!p || p->id == self->cfg.id)
        return;
    if (strcmp(p->rpc, h->rpc_endpoint) != 0)
        DS_LOG(DS_LOG_INFO, "peer", "learned rpc endpoint", "peer=%" PRIu64 " rpc=%s", h->id,
               h->rpc_endpoint);
    snprintf(p->rpc, sizeof p->rpc, "%s", h->rpc_endpoint);
}

/*  A peer message is accepted only from the member its routing id names. */
static bool s_sender_matches(zframe_t *rid, const ds_msg_t *msg, uint64_t claimed)
{
    char text[24];
    size_t len = rid ? zframe_size(rid) : 0;
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, zframe_data(rid), len);
    text[len] = '\0';
    return strtoull(text, NULL, 10) == claimed && strcmp(msg->env.sender, text) == 0;
}

static void s_on_peer_msg(ds_node_t *self, zframe_t *rid, ds_msg_t *msg)
{
    ds_peer_t *p;
    if (msg->env.type == DS_MSG_PEER_HELLO) {
        if (s_sender_matches(rid, msg, ((ds_peer_hello_t *)msg->body)->id))
            s_on_hello(self, msg);
        return;
    }
    const ds_raft_msg_t *m = msg->body;
    if (!s_sender_matches(rid, msg, m->from)) {
        DS_LOG(DS_LOG_WARN, "peer", "refused message with a forged sender", "from=%" PRIu64,
               m->from);
        return;
    }
    if ((p = (ds_peer_t *)ds_node_peer(self, m->from)))
        p->last_heard_ms = self->now_ms;
    ds_raft_step(ds_replica_raft(self->replica), m);
}

static void s_drain_peers(ds_node_t *self)
{
    for (unsigned i = 0; i < DS_NODE_BATCH && (zsock_events(self->peer_in) & ZMQ_POLLIN); i++) {
        zframe_t *rid = NULL;
        ds_msg_t *msg = NULL;
        ds_codec_err_t err;
        int rc = ds_transport_recv(self->peer_in, true, &rid, &msg, &err);
        if (rc == 0 && ds_msg_family(msg->env.type) == DS_FAMILY_PEER)
            s_on_peer_msg(self, rid, msg);
        else if (rc != 0 && rc != DS_ETIMEOUT)
            DS_LOG(DS_LOG_WARN, "peer", "refused message", "err=%s detail=%s", ds_errname(rc),
                   err.text);
        ds_msg_destroy(&msg);
        zframe_destroy(&rid);
    }
}

static void s_drain_rpc(ds_node_t *self)
{
    for (unsigned i = 0; i < DS_NODE_BATCH && (zsock_events(self->rpc) & ZMQ_POLLIN); i++) {
        ds_caller_t caller = {0};
        ds_msg_t *msg = NULL;
        ds_codec_err_t err;
        int rc = ds_transport_recv(self->rpc, true, &caller.rid, &msg, &err);
        if (rc == 0) {
            caller.corr_id = msg->env.corr_id;
            caller.type = msg->env.type;
            caller.deadline_ms = self->now_ms + DS_NODE_WRITE_TTL_MS;
            caller.received_ms = self->now_ms;
            ds_node_rpc_dispatch(self, &caller, &msg);
        } else if (caller.rid && rc != DS_ETIMEOUT) {
            DS_LOG(DS_LOG_WARN, "rpc", "refused request", "err=%s detail=%s", ds_errname(rc),
                   err.text);
            ds_node_reply_error(self, &caller, rc, "malformed request: %s", err.text);
        }
        ds_msg_destroy(&msg);
        ds_node_caller_free(&caller);
    }
}

/* ---- time ---------------------------------------------------------------------- */

static void s_send_hellos(ds_node_t *self)
{
    ds_peer_hello_t hello = {self->cfg.id, self->cfg.rpc, self->cfg.http, "gossamer-0.1"};
    ds_envelope_t env = {DS_PROTOCOL_VERSION, DS_MSG_PEER_HELLO, 0, self->id_text};
    for (uint32_t i = 0; i < self->n_peers; i++)
        if (self->peers[i].out)
            (void)ds_transport_send(self->peers[i].out, NULL, &env, &hello, NULL);
}

/*  Hellos go out often while this member still misses a peer's rpc
    endpoint (the first ones are dropped until connections are up), and in
    the first seconds after a start, so that a follower can name the leader
    soon; then once a second. */
static uint64_t s_hello_interval(const ds_node_t *self)
{
    for (uint32_t i = 0; i < self->n_peers; i++)
        if (!self->peers[i].rpc[0])
            return DS_NODE_HELLO_MS / 10;
    return self->now_ms < self->started_ms + 3000 ? DS_NODE_HELLO_MS / 10 : DS_NODE_HELLO_MS;
}

static void s_on_time(ds_node_t *self)
{
    ds_raft_t *raft = ds_replica_raft(self->replica);
    /* Catch up at most a second of ticks after a stall (e.g. SIGSTOP). */
    unsigned n = 0;
    while (self->now_ms >= self->next_tick_ms && n++ < 1000u / self->cfg.tick_ms + 1) {
        ds_raft_tick(raft);
        self->next_tick_ms += self->cfg.tick_ms;
    }
    if (self->now_ms >= self->next_tick_ms)
        self->next_tick_ms = self->now_ms + self->cfg.tick_ms;
    if (self->now_ms >= self->next_hello_ms) {
        s_send_hellos(self);
        self->next_hello_ms = self->now_ms + s_hello_interval(self);
    }
    if (self->now_ms >= self->next_expire_ms) {
        ds_node_propose_expiry(self);
        self->next_expire_ms = self->now_ms + DS_NODE_EXPIRE_MS;
    }
    ds_node_writes_expire(self);
    if (ds_node_is_leader(self))
        ds_node_workers_check(self);
    ds_node_events_check(self);
}

static void s_track_role(ds_node_t *self)
{
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    self->role = st.role;
    self->lead = st.lead;
    if (st.role == DS_RAFT_LEADER && self->leader_index == UINT64_MAX)
        self->leader_index = st.last_index; /* its first entry of the term is in the log */
}

static int s_process(ds_node_t *self)
{
    int rc = ds_replica_process(self->replica);
    if (rc != 0) {
        DS_LOG(DS_LOG_ERROR, S_MOD, "storage failure: stopping", "err=%s detail=%s", ds_errname(rc),
               ds_replica_errmsg(self->replica));
        return rc;
    }
    s_track_role(self);
    ds_node_reads_serve(self);
    ds_node_transfer_check(self);
    ds_node_control(self);
    return 0;
}

static int s_poll_timeout(const ds_node_t *self)
{
    uint64_t now = ds_node_clock_ms();
    return self->next_tick_ms > now ? (int)(self->next_tick_ms - now) : 0;
}

int ds_node_run(ds_node_t *self, volatile sig_atomic_t *stop)
{
    self->now_ms = ds_node_clock_ms();
    self->started_ms = self->now_ms;
    self->next_tick_ms = self->now_ms + self->cfg.tick_ms;
    self->next_expire_ms = self->now_ms + DS_NODE_EXPIRE_MS;
    zmq_pollitem_t items[3] = {
        {zsock_resolve(self->peer_in), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->rpc), 0, ZMQ_POLLIN, 0},
        {self->http, 0, ZMQ_POLLIN, 0},
    };
    int n_items = self->http ? 3 : 2;
    DS_LOG(DS_LOG_INFO, S_MOD, "started", "id=%s rpc=%s members=%u", self->id_text, self->cfg.rpc,
           self->cfg.n_members);
    int rc = s_process(self);
    while (rc == 0 && !*stop) {
        if (zmq_poll(items, n_items, s_poll_timeout(self)) < 0 && zmq_errno() != EINTR)
            break;
        self->now_ms = ds_node_clock_ms();
        s_drain_peers(self);
        s_drain_rpc(self);
        if (self->http)
            ds_node_http_handle(self);
        s_on_time(self);
        rc = s_process(self);
    }
    DS_LOG(DS_LOG_INFO, S_MOD, "stopped", "id=%s", self->id_text);
    return rc;
}
