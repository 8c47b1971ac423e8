/*  coordinator/node.c - the coordinator's loop: sockets, ticks, replica. */
#include "coordinator/node_impl.h"

#include "coordinator/apply.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "protocol/transport.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "node"

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

/* ---- the key registry's worker keys ------------------------------------------ */

bool ds_node_secure(const ds_node_t *self)
{
    return self->keyring != NULL;
}

static ds_pinned_key_t *s_pinned_find(ds_node_t *self, const char *key)
{
    for (size_t i = 0; i < self->n_pinned; i++)
        if (strcmp(self->pinned[i].key, key) == 0)
            return &self->pinned[i];
    return NULL;
}

/*  Admits worker `name` with `key` (a join applied, or a record read at
    start or after a snapshot install). */
static void s_pin(ds_node_t *self, const char *key, const char *name)
{
    if (!self->keyring || !key[0])
        return;
    char err[256] = "";
    int rc = ds_keyring_add(self->keyring, key, DS_ROLE_WORKER, name, err, sizeof err);
    if (rc != 0) {
        DS_LOG(DS_LOG_ERROR, "auth", "cannot admit a worker key",
               "worker=%s key=%s err=%s detail=%s", name, key, ds_errname(rc), err);
        return;
    }
    ds_pinned_key_t *p = s_pinned_find(self, key);
    if (!p && ds_node_grow((void **)&self->pinned, &self->cap_pinned, self->n_pinned,
                           sizeof *self->pinned, SIZE_MAX) != 0)
        return; /* the key is admitted; only its bookkeeping for a rebuild is lost */
    if (!p)
        p = &self->pinned[self->n_pinned++];
    snprintf(p->key, sizeof p->key, "%s", key);
    snprintf(p->name, sizeof p->name, "%s", name);
}

/*  Revokes a removed worker's key: refused from its very next message. */
static void s_unpin(ds_node_t *self, const char *key, const char *name)
{
    if (!self->keyring || !key[0])
        return;
    (void)ds_keyring_remove(self->keyring, key);
    ds_pinned_key_t *p = s_pinned_find(self, key);
    if (p)
        *p = self->pinned[--self->n_pinned];
    DS_LOG(DS_LOG_INFO, "auth", "worker key revoked", "worker=%s key=%s", name, key);
}

typedef struct {
    ds_node_t *self;
    ds_pinned_key_t *fresh;
    size_t n, cap;
} s_rebuild_t;

static int s_rebuild_row(void *ctx, const ds_worker_record_t *w)
{
    s_rebuild_t *r = ctx;
    if (!w->key || !w->key[0] || r->n == r->cap)
        return 0;
    snprintf(r->fresh[r->n].key, sizeof r->fresh[0].key, "%s", w->key);
    snprintf(r->fresh[r->n].name, sizeof r->fresh[0].name, "%s", w->name);
    r->n++;
    return 0;
}

static int s_rebuild_read(ds_txn_t *txn, void *ctx)
{
    return ds_worker_state_list(txn, s_rebuild_row, ctx);
}

/*  Makes the registry's worker keys those of the replicated state: at
    start, and after a snapshot install replaced the state. */
static int s_keys_rebuild(ds_node_t *self)
{
    if (!self->keyring)
        return 0;
    s_rebuild_t r = {self, calloc(DS_MAX_WORKERS, sizeof(ds_pinned_key_t)), 0, DS_MAX_WORKERS};
    if (!r.fresh)
        return DS_ENOMEM;
    int rc = ds_store_read(ds_replica_store(self->replica), s_rebuild_read, &r);
    if (rc == 0) {
        for (size_t i = 0; i < self->n_pinned;) {
            bool keep = false;
            for (size_t j = 0; j < r.n && !keep; j++)
                keep = strcmp(r.fresh[j].key, self->pinned[i].key) == 0;
            if (keep) {
                i++;
                continue;
            }
            ds_pinned_key_t gone = self->pinned[i];
            s_unpin(self, gone.key, gone.name);
        }
        for (size_t j = 0; j < r.n; j++)
            s_pin(self, r.fresh[j].key, r.fresh[j].name);
        DS_LOG(DS_LOG_INFO, "auth", "worker keys loaded", "workers=%zu keys=%zu", r.n,
               ds_keyring_size(self->keyring));
    }
    free(r.fresh);
    return rc;
}

static int s_hook_apply(void *ctx, ds_txn_t *txn, const ds_raft_entry_t *entry, int *verdict)
{
    ds_node_t *self = ctx;
    ds_apply_effect_t effect;
    int rc = ds_apply_entry_ex(txn, entry, verdict, &effect);
    if (rc == 0 && effect.kind == DS_APPLY_KEY_PIN)
        s_pin(self, effect.key, effect.name);
    else if (rc == 0 && effect.kind == DS_APPLY_KEY_REVOKE)
        s_unpin(self, effect.key, effect.name);
    return rc;
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
    self->leader_since_ms = ds_clock_mono_ms();
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
    int rc = s_keys_rebuild(self);
    if (rc != 0)
        DS_LOG(DS_LOG_ERROR, "auth", "cannot reload worker keys after a snapshot", "err=%s",
               ds_errname(rc));
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
    rcfg.raft.seed = self->cfg.id * 0x9e3779b97f4a7c15ull ^ ds_clock_wall_ms();
    ds_store_opts_default(&rcfg.store);
    rcfg.snapshot_entries = self->cfg.snapshot_entries;
    rcfg.snapshot_log_percent = self->cfg.snapshot_log_percent;
    rcfg.hooks = (ds_replica_hooks_t){s_hook_send, s_hook_apply, s_hook_applied,
                                      s_hook_read, s_hook_event, s_hook_installed,
                                      self};
    return ds_replica_open(&self->replica, self->cfg.data, &rcfg, err, errlen);
}

/*  Loads a key pair from DIR/private/NAME.key. */
static int s_load_pair(const ds_node_t *self, const char *name, zcert_t **out, char *err,
                       size_t errlen)
{
    char path[DS_MAX_PATH + 64];
    snprintf(path, sizeof path, "%s/private/%s.key", self->cfg.keys, name);
    int rc = ds_keys_load_pair(path, out, err, errlen);
    if (rc == DS_ENOTFOUND) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 " (--keys %s: copy DIR/private/%s.key and %s.key_secret from the directory "
                 "`dscoord bootstrap-keys` made)",
                 self->cfg.keys, name, name);
    }
    return rc;
}

/*  CURVE on every socket (docs/security.md, "Start-up order"): the
    registry from --keys DIR and the pinned worker keys, the ZAP handler,
    then the security of each endpoint. Nothing is bound yet. */
static int s_security_open(ds_node_t *self, char *err, size_t errlen)
{
    if (self->cfg.insecure) {
        DS_LOG(DS_LOG_WARN, "auth", "INSECURE: CURVE is off",
               "id=%s detail=\"plain ZeroMQ: anyone who reaches the peer or rpc endpoint is "
               "trusted; for a local experiment only (use --keys DIR)\"",
               self->id_text);
        return 0;
    }
    zcert_t *server = NULL, *own = NULL;
    char cluster[DS_KEY_TEXT_LEN + 1], path[DS_MAX_PATH + 64], coord[32];
    int rc = ds_transport_curve_check(err, errlen);
    if (rc == 0 && !(self->keyring = ds_keyring_new()))
        rc = ds_errf(err, errlen, DS_ENOMEM, "cannot make the key registry");
    if (rc == 0)
        rc = ds_keyring_load_dir(self->keyring, self->cfg.keys, err, errlen);
    if (rc == 0)
        rc = s_keys_rebuild(self);
    if (rc == 0)
        rc = s_load_pair(self, "cluster", &server, err, errlen);
    snprintf(coord, sizeof coord, "coord-%u", self->cfg.id);
    if (rc == 0)
        rc = s_load_pair(self, coord, &own, err, errlen);
    snprintf(path, sizeof path, "%s/cluster.pub", self->cfg.keys);
    if (rc == 0)
        rc = ds_keys_load_public(path, cluster, err, errlen);
    if (rc == 0)
        rc = ds_zap_new(self->keyring, &self->zap, err, errlen);
    if (rc == 0)
        rc = ds_transport_security_new_server(server, self->keyring, DS_DOMAIN_PEER,
                                              &self->sec_peer, err, errlen);
    if (rc == 0)
        rc = ds_transport_security_new_server(server, self->keyring, DS_DOMAIN_RPC, &self->sec_rpc,
                                              err, errlen);
    if (rc == 0)
        rc = ds_transport_security_new_client(own, cluster, &self->sec_out, err, errlen);
    if (rc == 0) {
        ds_keyring_set_joins(self->keyring, true); /* new workers: JOIN with a token only */
        DS_LOG(DS_LOG_INFO, "auth", "CURVE on", "id=%s keys=%s registry=%zu", self->id_text,
               self->cfg.keys, ds_keyring_size(self->keyring));
    }
    zcert_destroy(&server);
    zcert_destroy(&own);
    return rc;
}

static void s_security_close(ds_node_t *self)
{
    ds_zap_destroy(&self->zap);
    ds_transport_security_destroy(&self->sec_peer);
    ds_transport_security_destroy(&self->sec_rpc);
    ds_transport_security_destroy(&self->sec_out);
    ds_keyring_destroy(&self->keyring);
    free(self->pinned);
    self->pinned = NULL;
    self->n_pinned = self->cap_pinned = 0;
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
        int rc =
            ds_transport_peer_connect(p->peer, self->id_text, self->sec_out, &p->out, err, errlen);
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
        rc = s_security_open(self, err, errlen);
    if (rc == 0)
        rc = ds_transport_router_bind(ds_coord_member_peer(cfg, cfg->id), self->sec_peer,
                                      &self->peer_in, err, errlen);
    if (rc == 0)
        rc = ds_transport_router_bind(cfg->rpc, self->sec_rpc, &self->rpc, err, errlen);
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
    s_security_close(self); /* after the sockets that rely on it */
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
    snprintf(p->http, sizeof p->http, "%s", h->http_endpoint);
    p->last_heard_ms = self->now_ms;
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

/*  With CURVE, a coordinator's key (peers/coord-N.pub) speaks for member
    N only. */
static bool s_key_matches(const ds_node_t *self, const ds_transport_sender_t *from, uint64_t id)
{
    if (!ds_node_secure(self))
        return true;
    char want[32];
    snprintf(want, sizeof want, "coord-%" PRIu64, id);
    return strcmp(from->name, want) == 0;
}

static void s_on_peer_msg(ds_node_t *self, zframe_t *rid, ds_msg_t *msg,
                          const ds_transport_sender_t *from)
{
    ds_peer_t *p;
    uint64_t claimed = msg->env.type == DS_MSG_PEER_HELLO ? ((ds_peer_hello_t *)msg->body)->id
                                                          : ((ds_raft_msg_t *)msg->body)->from;
    if (!s_key_matches(self, from, claimed)) {
        DS_LOG(DS_LOG_WARN, "auth", "peer message refused: key speaks for another member",
               "key=%s name=%s claimed=%" PRIu64 " type=%s", from->key, from->name, claimed,
               ds_msg_type_name(msg->env.type));
        return;
    }
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
    for (unsigned i = 0; i < DS_NODE_BATCH; i++) {
        zframe_t *rid = NULL;
        ds_msg_t *msg = NULL;
        ds_codec_err_t err;
        ds_transport_sender_t from;
        int rc =
            ds_transport_try_recv_as(self->peer_in, self->sec_peer, true, &rid, &msg, &from, &err);
        if (rc == DS_ETIMEOUT && !rid)
            break; /* drained */
        if (rc == 0 && ds_msg_family(msg->env.type) == DS_FAMILY_PEER)
            s_on_peer_msg(self, rid, msg, &from);
        else if (rc != 0 && rc != DS_ETIMEOUT)
            DS_LOG(DS_LOG_WARN, "peer", "refused message", "err=%s detail=%s", ds_errname(rc),
                   err.text);
        ds_msg_destroy(&msg);
        zframe_destroy(&rid);
    }
}

/*  Who the envelope says sent a request, checked against the key that
    signed it: a worker key speaks as its own worker name only; an admin
    or viewer request is recorded as "KEYNAME/SENDER" (the client of its
    session, and the `by` of history rows: docs/security.md, "Audit").
    Returns 0, or DS_EFORBIDDEN (answered and logged here). */
static int s_authorize(ds_node_t *self, ds_caller_t *caller, ds_msg_t *msg,
                       const ds_transport_sender_t *from)
{
    caller->role = (uint8_t)from->role;
    snprintf(caller->key, sizeof caller->key, "%s", from->key);
    if (from->role == DS_ROLE_WORKER && strcmp(msg->env.sender, from->name) != 0) {
        DS_LOG(DS_LOG_WARN, "auth", "forbidden message refused",
               "key=%s role=worker name=%s type=%s sender=%s why=\"a worker key speaks for its "
               "own worker only\"",
               from->key, from->name, ds_msg_type_name(msg->env.type), msg->env.sender);
        ds_node_reply_error(self, caller, DS_EFORBIDDEN,
                            "forbidden: the key of worker %s may not send as \"%s\"", from->name,
                            msg->env.sender);
        return DS_EFORBIDDEN;
    }
    if (from->role != DS_ROLE_ADMIN && from->role != DS_ROLE_VIEWER)
        return 0;
    char client[DS_MAX_NAME + 1];
    int n = snprintf(client, sizeof client, "%s/%s", from->name, msg->env.sender);
    if (n < 0 || (size_t)n >= sizeof client) {
        /* A long sender: keep it distinct with a hash (FNV-1a). */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = msg->env.sender; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        snprintf(client, sizeof client, "%.*s/%016" PRIx64, (int)(DS_MAX_NAME - 17), from->name, h);
    }
    char *kept = ds_arena_alloc(msg->arena, strlen(client) + 1);
    if (kept) {
        strcpy(kept, client);
        msg->env.sender = kept;
    }
    return 0;
}

static void s_drain_rpc(ds_node_t *self)
{
    for (unsigned i = 0; i < DS_NODE_BATCH; i++) {
        ds_caller_t caller = {0};
        ds_msg_t *msg = NULL;
        ds_codec_err_t err = {0, ""};
        ds_transport_sender_t from;
        int rc = ds_transport_try_recv_as(self->rpc, self->sec_rpc, true, &caller.rid, &msg, &from,
                                          &err);
        if (rc == DS_ETIMEOUT && !caller.rid)
            break;                               /* drained */
        caller.received_ms = ds_clock_mono_ms(); /* the rpc latency metric */
        if (rc == 0) {
            caller.corr_id = msg->env.corr_id;
            caller.type = msg->env.type;
            caller.deadline_ms = self->now_ms + DS_NODE_WRITE_TTL_MS;
            if (s_authorize(self, &caller, msg, &from) == 0)
                ds_node_rpc_dispatch(self, &caller, &msg);
        } else if (rc == DS_EFORBIDDEN) {
            /* Logged by ds_transport_recv_as (mod=auth); answered with the
               request's corr_id so the client gets the reason at once. */
            if (caller.rid && from.have_env) {
                caller.corr_id = from.corr_id;
                caller.type = from.type;
                ds_node_reply_error(self, &caller, DS_EFORBIDDEN, "%s", err.text);
            }
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

/*  Applied entries become durable every DS_NODE_APPLY_SYNC_MS (the WAL
    holds them meanwhile: docs/coordinator.md, "The replica"). */
static int s_commit_applied(ds_node_t *self)
{
    if (self->now_ms < self->next_apply_sync_ms)
        return 0;
    self->next_apply_sync_ms = self->now_ms + DS_NODE_APPLY_SYNC_MS;
    return ds_replica_commit_applied(self->replica);
}

/*  The leader's own flush, when a commit needs it but the followers may
    complete the quorum first, waits DS_NODE_FLUSH_GRACE_MS (replica.h). */
static int s_leader_flush(ds_node_t *self)
{
    if (!ds_replica_flush_waiting(self->replica)) {
        self->flush_deadline_ms = 0;
        return 0;
    }
    if (!self->flush_deadline_ms)
        self->flush_deadline_ms = self->now_ms + DS_NODE_FLUSH_GRACE_MS;
    if (self->now_ms < self->flush_deadline_ms)
        return 0;
    self->flush_deadline_ms = 0;
    return ds_replica_flush_now(self->replica);
}

static int s_process(ds_node_t *self)
{
    int rc = s_commit_applied(self); /* first: it may complete the leader's flush */
    if (rc == 0)
        rc = ds_replica_process(self->replica);
    if (rc == 0)
        rc = s_leader_flush(self);
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
    uint64_t now = ds_clock_mono_ms();
    uint64_t wake = self->next_tick_ms;
    if (self->flush_deadline_ms && self->flush_deadline_ms < wake)
        wake = self->flush_deadline_ms;
    return wake > now ? (int)(wake - now) : 0;
}

int ds_node_run(ds_node_t *self, volatile sig_atomic_t *stop)
{
    self->now_ms = ds_clock_mono_ms();
    self->started_ms = self->now_ms;
    self->next_tick_ms = self->now_ms + self->cfg.tick_ms;
    self->next_expire_ms = self->now_ms + DS_NODE_EXPIRE_MS;
    zmq_pollitem_t items[3 + 1 + DS_HTTPD_MAX_CONNS] = {
        {zsock_resolve(self->peer_in), 0, ZMQ_POLLIN, 0},
        {zsock_resolve(self->rpc), 0, ZMQ_POLLIN, 0},
    };
    DS_LOG(DS_LOG_INFO, S_MOD, "started", "id=%s rpc=%s members=%u", self->id_text, self->cfg.rpc,
           self->cfg.n_members);
    int rc = s_process(self);
    while (rc == 0 && !*stop) {
        size_t n_items = 2;
        int flushed = ds_replica_wakeup_fd(self->replica); /* the leader's own log flush */
        if (flushed >= 0)
            items[n_items++] = (zmq_pollitem_t){NULL, flushed, ZMQ_POLLIN, 0};
        if (self->http)
            n_items += ds_httpd_pollitems(self->http, items + n_items,
                                          sizeof items / sizeof items[0] - n_items);
        if (zmq_poll(items, (int)n_items, s_poll_timeout(self)) < 0 && zmq_errno() != EINTR)
            break;
        self->now_ms = ds_clock_mono_ms();
        s_drain_peers(self);
        s_drain_rpc(self);
        if (self->http)
            ds_httpd_process(self->http, self->now_ms);
        s_on_time(self);
        rc = s_process(self);
    }
    DS_LOG(DS_LOG_INFO, S_MOD, "stopped", "id=%s", self->id_text);
    return rc;
}
