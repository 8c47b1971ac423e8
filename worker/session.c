/*  worker/session.c - the worker's link to the coordinators; see session.h. */
#include "worker/session.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/log.h"
#include "protocol/transport.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD       "session"
#define S_MAX_DRAIN 64u /* replies read in one step */
#define S_MAX_TOKEN 1024u
#define S_MAX_SWVER 64u
#define S_MIN_HB_MS 10u

typedef enum { S_REQ_NONE = 0, S_REQ_JOIN, S_REQ_HEARTBEAT, S_REQ_FETCH } s_req_t;

typedef char s_endpoint_t[DS_MAX_ENDPOINT + 1];

struct ds_session {
    /* who we are */
    char name[DS_MAX_NAME + 1];
    char worker_id[DS_MAX_NAME + 1];
    char software_version[S_MAX_SWVER + 1];
    char token[S_MAX_TOKEN + 1];
    ds_kv_t *labels;
    uint32_t n_labels;
    ds_resources_t resources;
    ds_session_hooks_t hooks;
    const ds_transport_security_t *sec; /* borrowed; NULL = plain */

    /* settings */
    uint32_t heartbeat_ms;
    uint32_t timeout_opt; /* 0 = derived from the heartbeat */
    uint32_t lost_after;
    uint32_t backoff_min_ms, backoff_max_ms;
    uint64_t rng;
    uint64_t corr;

    /* endpoints: the configured ones first, then learned leaders */
    s_endpoint_t eps[DS_SESSION_MAX_ENDPOINTS];
    size_t n_eps, n_config, learned;
    size_t cursor;       /* next list position to try */
    s_endpoint_t target; /* an endpoint to try before the list ("" = none) */

    /* discovering */
    ds_session_state_t state;
    uint64_t retry_at;
    uint32_t failures; /* failed rounds in a row */
    uint32_t hops;     /* redirects in a row */
    bool round_done;   /* the join in flight completes a round of the list */

    /* joined */
    s_endpoint_t leader;
    uint64_t leader_id; /* last one a heartbeat reply named; 0 = unknown */
    uint64_t next_hb_at;
    uint32_t misses;
    bool fetch_due;
    uint64_t rejected_gen; /* a generation the reconciler refused */

    /* the request in flight */
    s_req_t req;
    uint64_t req_corr;
    uint64_t req_deadline;

    zsock_t *sock;
    s_endpoint_t sock_ep;

    ds_session_stats_t stats;
};

/* ---- pure pieces ---------------------------------------------------- */

/*  splitmix64: small, seedable, good enough for jitter. */
static uint64_t s_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t ds_session_backoff_ms(uint32_t failures, uint32_t min_ms, uint32_t max_ms, uint64_t *rng)
{
    assert(rng && min_ms > 0 && min_ms <= max_ms);
    uint64_t base = min_ms;
    for (uint32_t i = 0; i < failures && base < max_ms; i++)
        base *= 2;
    if (base > max_ms)
        base = max_ms;
    uint64_t half = base / 2;
    return (uint32_t)(half + s_rand(rng) % (base - half + 1));
}

static uint32_t s_timeout(const ds_session_t *self)
{
    if (self->timeout_opt)
        return self->timeout_opt;
    uint32_t t = self->heartbeat_ms;
    if (t < DS_SESSION_TIMEOUT_MIN_MS)
        t = DS_SESSION_TIMEOUT_MIN_MS;
    if (t > DS_SESSION_TIMEOUT_MAX_MS)
        t = DS_SESSION_TIMEOUT_MAX_MS;
    return t;
}

static uint64_t s_generation(const ds_session_t *self)
{
    return self->hooks.generation ? self->hooks.generation(self->hooks.ctx) : 0;
}

static bool s_known(const ds_session_t *self, const char *ep)
{
    for (size_t i = 0; i < self->n_eps; i++)
        if (strcmp(self->eps[i], ep) == 0)
            return true;
    return false;
}

/*  Remembers an endpoint a coordinator named (the leader's, or every
    member's as join and heartbeat replies list them), so the worker can
    find the cluster again through it; the oldest learned one makes room. */
static void s_learn(ds_session_t *self, const char *ep)
{
    if (!ep || !ep[0] || strlen(ep) > DS_MAX_ENDPOINT || s_known(self, ep))
        return;
    size_t slot = self->n_eps;
    if (slot == DS_SESSION_MAX_ENDPOINTS)
        slot = self->n_config + self->learned % (DS_SESSION_MAX_ENDPOINTS - self->n_config);
    else
        self->n_eps++;
    self->learned++;
    snprintf(self->eps[slot], sizeof self->eps[slot], "%s", ep);
    DS_LOG(DS_LOG_DEBUG, S_MOD, "learned an endpoint", "endpoint=%s", ep);
}

/* ---- construction ----------------------------------------------------- */

static void s_free_labels(ds_session_t *self)
{
    for (uint32_t i = 0; i < self->n_labels; i++) {
        free(self->labels[i].key);
        free(self->labels[i].value);
    }
    free(self->labels);
    self->labels = NULL;
    self->n_labels = 0;
}

static int s_copy_labels(ds_session_t *self, const ds_kv_t *labels, uint32_t n)
{
    if (n == 0)
        return 0;
    self->labels = calloc(n, sizeof *self->labels);
    if (!self->labels)
        return DS_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        self->labels[i].key = strdup(labels[i].key);
        self->labels[i].value = strdup(labels[i].value);
        self->n_labels++;
        if (!self->labels[i].key || !self->labels[i].value)
            return DS_ENOMEM;
    }
    return 0;
}

static int s_check_opts(const ds_session_opts_t *o, char *err, size_t errlen)
{
    if (!o->name || !o->name[0] || strlen(o->name) > DS_MAX_NAME)
        return ds_errf(err, errlen, DS_EINVAL, "session: the worker name must have 1 to %u bytes",
                       DS_MAX_NAME);
    if (!o->worker_id || strlen(o->worker_id) > DS_MAX_NAME)
        return ds_errf(err, errlen, DS_EINVAL, "session: the worker id must have at most %u bytes",
                       DS_MAX_NAME);
    if (o->n_endpoints == 0 || o->n_endpoints > DS_SESSION_MAX_ENDPOINTS / 2)
        return ds_errf(err, errlen, DS_EINVAL, "session: give 1 to %u join endpoints",
                       DS_SESSION_MAX_ENDPOINTS / 2);
    for (size_t i = 0; i < o->n_endpoints; i++)
        if (!o->endpoints[i] || !o->endpoints[i][0] || strlen(o->endpoints[i]) > DS_MAX_ENDPOINT)
            return ds_errf(err, errlen, DS_EINVAL,
                           "session: join endpoint %zu is empty or longer "
                           "than %u bytes",
                           i + 1, DS_MAX_ENDPOINT);
    if (o->heartbeat_ms == 0)
        return ds_errf(err, errlen, DS_EINVAL, "session: the heartbeat interval must be > 0");
    if (o->software_version && strlen(o->software_version) > S_MAX_SWVER)
        return ds_errf(err, errlen, DS_EINVAL, "session: software version too long");
    if (o->token && strlen(o->token) > S_MAX_TOKEN)
        return ds_errf(err, errlen, DS_EINVAL, "session: join token longer than %u bytes",
                       S_MAX_TOKEN);
    uint32_t lo = o->backoff_min_ms ? o->backoff_min_ms : DS_SESSION_BACKOFF_MIN_MS;
    uint32_t hi = o->backoff_max_ms ? o->backoff_max_ms : DS_SESSION_BACKOFF_MAX_MS;
    if (lo > hi)
        return ds_errf(err, errlen, DS_EINVAL, "session: backoff minimum %u ms above maximum %u ms",
                       lo, hi);
    return 0;
}

int ds_session_new(ds_session_t **out, const ds_session_opts_t *opts, uint64_t now_ms, char *err,
                   size_t errlen)
{
    assert(out && opts);
    *out = NULL;
    int rc = s_check_opts(opts, err, errlen);
    if (rc != 0)
        return rc;
    ds_session_t *self = calloc(1, sizeof *self);
    if (!self)
        return ds_errf(err, errlen, DS_ENOMEM, "session: out of memory");
    snprintf(self->name, sizeof self->name, "%s", opts->name);
    snprintf(self->worker_id, sizeof self->worker_id, "%s", opts->worker_id);
    snprintf(self->software_version, sizeof self->software_version, "%s",
             opts->software_version ? opts->software_version : "");
    snprintf(self->token, sizeof self->token, "%s", opts->token ? opts->token : "");
    self->sec = opts->sec;
    rc = s_copy_labels(self, opts->labels, opts->n_labels);
    if (rc != 0) {
        ds_errf(err, errlen, rc, "session: out of memory");
        goto err_free;
    }
    self->resources = opts->resources;
    self->hooks = opts->hooks;
    self->heartbeat_ms = opts->heartbeat_ms;
    self->timeout_opt = opts->timeout_ms;
    self->lost_after = opts->lost_after ? opts->lost_after : DS_SESSION_LOST_AFTER;
    self->backoff_min_ms = opts->backoff_min_ms ? opts->backoff_min_ms : DS_SESSION_BACKOFF_MIN_MS;
    self->backoff_max_ms = opts->backoff_max_ms ? opts->backoff_max_ms : DS_SESSION_BACKOFF_MAX_MS;
    self->rng = opts->seed;
    self->corr = opts->corr_start;
    for (size_t i = 0; i < opts->n_endpoints; i++)
        if (!s_known(self, opts->endpoints[i]))
            snprintf(self->eps[self->n_eps++], sizeof self->eps[0], "%s", opts->endpoints[i]);
    self->n_config = self->n_eps;
    self->state = DS_SESSION_DISCOVERING;
    self->retry_at = now_ms;
    *out = self;
    return 0;
err_free:
    s_free_labels(self);
    free(self);
    return rc;
}

void ds_session_destroy(ds_session_t **self_p)
{
    assert(self_p);
    ds_session_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy(&self->sock);
    s_free_labels(self);
    free(self);
    *self_p = NULL;
}

/* ---- sockets and requests ---------------------------------------------- */

static void s_drop_socket(ds_session_t *self)
{
    zsock_destroy(&self->sock);
    self->sock_ep[0] = '\0';
}

/*  The DEALER for `ep`: the open one if it is for `ep`, else a new one. */
static int s_socket_for(ds_session_t *self, const char *ep)
{
    if (self->sock && strcmp(self->sock_ep, ep) == 0)
        return 0;
    s_drop_socket(self);
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock) {
        DS_LOG(DS_LOG_ERROR, S_MOD, "cannot create a socket", "err=%s", zmq_strerror(zmq_errno()));
        return DS_EIO;
    }
    ds_transport_setup(sock);
    zsock_set_rcvtimeo(sock, 0); /* receives never block: see ds_session_step */
    char why[256] = "";
    if (ds_transport_secure(sock, self->sec, false, why, sizeof why) != 0) {
        DS_LOG(DS_LOG_ERROR, S_MOD, "cannot set up CURVE", "endpoint=%s detail=%s", ep, why);
        zsock_destroy(&sock);
        return DS_EINVAL;
    }
    if (zsock_connect(sock, "%s", ep) != 0) {
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot connect", "endpoint=%s err=%s", ep,
               zmq_strerror(zmq_errno()));
        zsock_destroy(&sock);
        return DS_EINVAL;
    }
    self->sock = sock;
    snprintf(self->sock_ep, sizeof self->sock_ep, "%s", ep);
    return 0;
}

/*  Sends one request to `ep` and makes it the one in flight. */
static int s_request(ds_session_t *self, s_req_t kind, const char *ep, uint16_t type,
                     const void *body, uint64_t now, uint32_t timeout)
{
    int rc = s_socket_for(self, ep);
    if (rc != 0)
        return rc;
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, ++self->corr, self->name};
    ds_codec_err_t cerr = {0, ""};
    rc = ds_transport_send(self->sock, NULL, &env, body, &cerr);
    if (rc != 0) {
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot send", "type=%s endpoint=%s err=%s detail=%s",
               ds_msg_type_name(type), ep, ds_errname(rc), cerr.text);
        s_drop_socket(self);
        return rc;
    }
    self->req = kind;
    self->req_corr = env.corr_id;
    self->req_deadline = now + timeout;
    return 0;
}

static void s_clear_request(ds_session_t *self)
{
    self->req = S_REQ_NONE;
    self->req_corr = 0;
}

/* ---- discovering --------------------------------------------------------- */

static void s_discover(ds_session_t *self, uint64_t at, const char *target)
{
    self->state = DS_SESSION_DISCOVERING;
    self->leader[0] = '\0';
    self->retry_at = at;
    snprintf(self->target, sizeof self->target, "%s", target ? target : "");
    s_clear_request(self);
}

/*  A join attempt failed: the next endpoint now, or after a backoff once
    a whole round failed (or coordinators keep redirecting). */
static void s_join_failed(ds_session_t *self, uint64_t now, const char *endpoint, const char *why)
{
    s_endpoint_t ep; /* `endpoint` may be sock_ep, which is about to go */
    snprintf(ep, sizeof ep, "%s", endpoint);
    DS_LOG(DS_LOG_DEBUG, S_MOD, "join attempt failed", "endpoint=%s why=%s", ep, why);
    s_drop_socket(self);
    bool backoff = self->round_done || self->hops > DS_SESSION_MAX_HOPS;
    s_discover(self, now, NULL);
    if (!backoff)
        return;
    uint32_t delay = ds_session_backoff_ms(self->failures, self->backoff_min_ms,
                                           self->backoff_max_ms, &self->rng);
    if (self->failures < 32)
        self->failures++;
    self->hops = 0;
    self->retry_at = now + delay;
    DS_LOG(self->failures == 1 ? DS_LOG_WARN : DS_LOG_INFO, S_MOD,
           "no coordinator accepted the join; retrying",
           "endpoints=%zu last=%s why=%s "
           "retry_ms=%" PRIu32 " rounds=%" PRIu32,
           self->n_eps, ep, why, delay, self->failures);
}

/*  The endpoint to try next: a named leader first, else the list in turn. */
static const char *s_pick(ds_session_t *self, s_endpoint_t buf)
{
    if (self->target[0]) {
        snprintf(buf, sizeof(s_endpoint_t), "%s", self->target);
        self->target[0] = '\0';
        self->round_done = false;
        return buf;
    }
    snprintf(buf, sizeof(s_endpoint_t), "%s", self->eps[self->cursor % self->n_eps]);
    self->cursor = (self->cursor + 1) % self->n_eps;
    self->round_done = self->cursor == 0;
    return buf;
}

static void s_send_join(ds_session_t *self, uint64_t now)
{
    s_endpoint_t ep;
    s_pick(self, ep);
    ds_join_req_t req = {
        .name = self->name,
        .worker_id = self->worker_id,
        .n_labels = self->n_labels,
        .labels = self->labels,
        .resources = self->resources,
        .software_version = self->software_version,
        .token = self->token,
    };
    self->stats.join_attempts++;
    int rc = s_request(self, S_REQ_JOIN, ep, DS_MSG_JOIN, &req, now, 2 * s_timeout(self));
    if (rc != 0) {
        s_join_failed(self, now, ep, ds_errname(rc));
        return;
    }
    self->state = DS_SESSION_JOINING;
    DS_LOG(DS_LOG_DEBUG, S_MOD, "joining", "endpoint=%s corr=%" PRIu64, ep, self->req_corr);
}

/* ---- joined --------------------------------------------------------------- */

static void s_apply(ds_session_t *self, const ds_assignment_t *a)
{
    char err[512] = "";
    int rc = self->hooks.apply ? self->hooks.apply(self->hooks.ctx, a, err, sizeof err) : 0;
    if (rc != 0) {
        self->rejected_gen = a->generation;
        DS_LOG(DS_LOG_ERROR, S_MOD, "assignment refused", "generation=%" PRIu64 " err=%s detail=%s",
               a->generation, ds_errname(rc), err);
        return;
    }
    self->stats.applied++;
    DS_LOG(DS_LOG_INFO, S_MOD, "assignment applied", "generation=%" PRIu64 " releases=%" PRIu32,
           a->generation, a->n_releases);
}

/*  Leaves JOINED: the next join starts at the top of the list. */
static void s_lost(ds_session_t *self, uint64_t now, const char *why)
{
    DS_LOG(DS_LOG_WARN, S_MOD, "lost the leader", "leader=%s why=%s misses=%" PRIu32, self->leader,
           why, self->misses);
    self->stats.lost++;
    s_drop_socket(self);
    self->cursor = 0;
    self->failures = 0;
    self->hops = 0;
    self->misses = 0;
    self->fetch_due = false;
    s_discover(self, now, NULL);
}

/*  A request to the leader got no (usable) reply. */
static void s_miss(ds_session_t *self, uint64_t now, const char *why)
{
    s_clear_request(self);
    s_drop_socket(self);
    self->misses++;
    DS_LOG(DS_LOG_DEBUG, S_MOD, "no reply from the leader", "leader=%s why=%s misses=%" PRIu32,
           self->leader, why, self->misses);
    if (self->misses >= self->lost_after)
        s_lost(self, now, why);
}

static void s_note_leader_id(ds_session_t *self, uint64_t id, const char *rpc)
{
    if (id && self->leader_id && id != self->leader_id)
        DS_LOG(DS_LOG_INFO, S_MOD, "leader changed",
               "from_id=%" PRIu64 " to_id=%" PRIu64 " leader=%s", self->leader_id, id,
               rpc && rpc[0] ? rpc : self->leader);
    if (id)
        self->leader_id = id;
}

static void s_send_heartbeat(ds_session_t *self, uint64_t now)
{
    /* The generation first: the report's strings last only until the
       reconciler's next call. */
    uint64_t generation = s_generation(self);
    ds_heartbeat_t hb;
    memset(&hb, 0, sizeof hb);
    if (self->hooks.report)
        self->hooks.report(self->hooks.ctx, &hb);
    hb.name = self->name;
    hb.generation = generation;
    self->next_hb_at = now + self->heartbeat_ms;
    self->stats.heartbeats++;
    int rc =
        s_request(self, S_REQ_HEARTBEAT, self->leader, DS_MSG_HEARTBEAT, &hb, now, s_timeout(self));
    if (rc != 0)
        s_miss(self, now, ds_errname(rc));
}

static void s_send_fetch(ds_session_t *self, uint64_t now)
{
    ds_assignment_req_t req = {.name = self->name, .have_generation = s_generation(self)};
    self->fetch_due = false;
    self->stats.fetches++;
    int rc = s_request(self, S_REQ_FETCH, self->leader, DS_MSG_ASSIGNMENT_REQ, &req, now,
                       s_timeout(self));
    if (rc != 0)
        s_miss(self, now, ds_errname(rc));
}

/* ---- replies ---------------------------------------------------------------- */

static void s_on_join_reply(ds_session_t *self, const ds_join_reply_t *r, uint64_t now)
{
    s_clear_request(self);
    snprintf(self->leader, sizeof self->leader, "%s", self->sock_ep);
    self->state = DS_SESSION_JOINED;
    self->failures = 0;
    self->hops = 0;
    self->misses = 0;
    self->fetch_due = false;
    self->next_hb_at = now; /* report status at once */
    self->stats.joins++;
    for (uint32_t i = 0; i < r->n_members; i++)
        s_learn(self, r->members[i]);
    if (r->heartbeat_ms) {
        uint32_t hb = r->heartbeat_ms;
        hb = hb < S_MIN_HB_MS ? S_MIN_HB_MS : hb;
        self->heartbeat_ms = hb > DS_SESSION_MAX_HEARTBEAT_MS ? DS_SESSION_MAX_HEARTBEAT_MS : hb;
    }
    uint64_t have = s_generation(self);
    DS_LOG(DS_LOG_INFO, S_MOD, "joined",
           "leader=%s worker_id=%s generation=%" PRIu64 " have_generation=%" PRIu64
           " heartbeat_ms=%" PRIu32,
           self->leader, r->worker_id, r->assignment.generation, have, self->heartbeat_ms);
    if (r->worker_id[0] && strcmp(r->worker_id, self->worker_id) != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "the cluster knows this worker by another id",
               "ours=%s theirs=%s", self->worker_id, r->worker_id);
    /* The join reply is the cluster's whole view: apply it when it
       differs. Generation 0 means "no assignment recorded", and then the
       worker keeps what it runs (static stability). */
    const ds_assignment_t *a = &r->assignment;
    if (a->generation != 0 && a->generation != have && a->generation != self->rejected_gen)
        s_apply(self, a);
}

static void s_on_not_leader(ds_session_t *self, const ds_not_leader_t *nl, uint64_t now)
{
    const char *named = nl->leader_rpc;
    bool elsewhere = named[0] && strcmp(named, self->sock_ep) != 0;
    if (elsewhere)
        s_learn(self, named);
    if (self->state == DS_SESSION_JOINING) {
        if (!elsewhere) {
            s_join_failed(self, now, self->sock_ep, "not the leader, and no leader known");
            return;
        }
        self->stats.redirects++;
        self->hops++;
        DS_LOG(DS_LOG_DEBUG, S_MOD, "redirected", "from=%s to=%s leader_id=%" PRIu64, self->sock_ep,
               named, nl->leader_id);
        if (self->hops > DS_SESSION_MAX_HOPS) {
            s_join_failed(self, now, self->sock_ep, "redirected too many times");
            return;
        }
        s_discover(self, now, named);
        return;
    }
    /* JOINED: the leader moved. */
    if (!elsewhere) {
        s_lost(self, now, "not the leader any more, and no leader known");
        return;
    }
    DS_LOG(DS_LOG_INFO, S_MOD, "leader changed", "from=%s to=%s to_id=%" PRIu64, self->leader,
           named, nl->leader_id);
    self->stats.redirects++;
    s_clear_request(self);
    s_drop_socket(self);
    snprintf(self->leader, sizeof self->leader, "%s", named);
    if (nl->leader_id)
        self->leader_id = nl->leader_id;
    self->misses = 0;
    self->next_hb_at = now;
}

static void s_on_error(ds_session_t *self, const ds_error_reply_t *e, uint64_t now)
{
    if (self->state == DS_SESSION_JOINING) {
        DS_LOG(DS_LOG_WARN, S_MOD, "join refused", "endpoint=%s code=%s message=%s", self->sock_ep,
               ds_errname((int)e->code), e->message);
        s_join_failed(self, now, self->sock_ep, ds_errname((int)e->code));
        return;
    }
    if (e->code == DS_ENOTFOUND) {
        /* "unknown worker, join first": join again, here first. */
        DS_LOG(DS_LOG_INFO, S_MOD, "the leader does not know this worker; joining again",
               "leader=%s message=%s", self->leader, e->message);
        s_endpoint_t here;
        snprintf(here, sizeof here, "%s", self->leader);
        self->cursor = 0;
        self->hops = 0;
        s_discover(self, now, here);
        return;
    }
    DS_LOG(DS_LOG_WARN, S_MOD, "request refused", "leader=%s code=%s message=%s", self->leader,
           ds_errname((int)e->code), e->message);
    s_miss(self, now, ds_errname((int)e->code));
}

static void s_on_heartbeat_reply(ds_session_t *self, const ds_heartbeat_reply_t *r)
{
    s_clear_request(self);
    self->misses = 0;
    self->stats.heartbeat_replies++;
    s_learn(self, r->leader_rpc);
    for (uint32_t i = 0; i < r->n_members; i++)
        s_learn(self, r->members[i]);
    s_note_leader_id(self, r->leader_id, r->leader_rpc);
    /* Every reply lists all the dry runs the leader waits for (none from
       a leader that waits for none): level-triggered like generations. */
    if (self->hooks.dry_runs)
        self->hooks.dry_runs(self->hooks.ctx, r->dry_runs, r->n_dry_runs);
    if (r->generation > s_generation(self) && r->generation != self->rejected_gen) {
        DS_LOG(DS_LOG_DEBUG, S_MOD, "newer assignment", "generation=%" PRIu64, r->generation);
        self->fetch_due = true;
    }
}

static void s_on_assignment(ds_session_t *self, const ds_assignment_t *a)
{
    s_clear_request(self);
    self->misses = 0;
    if (a->generation > s_generation(self) && a->generation != self->rejected_gen)
        s_apply(self, a);
}

static void s_on_reply(ds_session_t *self, const ds_msg_t *msg, uint64_t now)
{
    uint16_t type = msg->env.type;
    s_req_t req = self->req;
    if (type == DS_MSG_NOT_LEADER)
        s_on_not_leader(self, msg->body, now);
    else if (type == DS_MSG_ERROR)
        s_on_error(self, msg->body, now);
    else if (req == S_REQ_JOIN && type == DS_MSG_JOIN_REPLY)
        s_on_join_reply(self, msg->body, now);
    else if (req == S_REQ_HEARTBEAT && type == DS_MSG_HEARTBEAT_REPLY)
        s_on_heartbeat_reply(self, msg->body);
    else if (req == S_REQ_FETCH && type == DS_MSG_ASSIGNMENT)
        s_on_assignment(self, msg->body);
    else if (req == S_REQ_JOIN)
        s_join_failed(self, now, self->sock_ep, ds_msg_type_name(type));
    else
        s_miss(self, now, ds_msg_type_name(type));
}

/* ---- the step ----------------------------------------------------------------- */

static void s_drain(ds_session_t *self, uint64_t now)
{
    for (unsigned i = 0; i < S_MAX_DRAIN && self->sock; i++) {
        ds_msg_t *msg = NULL;
        ds_codec_err_t cerr = {0, ""};
        int rc = ds_transport_recv(self->sock, false, NULL, &msg, &cerr);
        if (rc == DS_ETIMEOUT)
            return;
        if (rc != 0) {
            DS_LOG(DS_LOG_WARN, S_MOD, "bad reply dropped", "endpoint=%s err=%s detail=%s",
                   self->sock_ep, ds_errname(rc), cerr.text);
            if (rc == DS_EIO)
                s_drop_socket(self);
            continue;
        }
        if (self->req == S_REQ_NONE || msg->env.corr_id != self->req_corr)
            DS_LOG(DS_LOG_DEBUG, S_MOD, "late reply dropped", "type=%s corr=%" PRIu64,
                   ds_msg_type_name(msg->env.type), msg->env.corr_id);
        else
            s_on_reply(self, msg, now);
        ds_msg_destroy(&msg);
    }
}

static void s_timers(ds_session_t *self, uint64_t now)
{
    if (self->req != S_REQ_NONE && now >= self->req_deadline) {
        self->stats.timeouts++;
        if (self->state == DS_SESSION_JOINING)
            s_join_failed(self, now, self->sock_ep, "no reply");
        else
            s_miss(self, now, "no reply");
    }
    if (self->req != S_REQ_NONE)
        return;
    if (self->state == DS_SESSION_DISCOVERING && now >= self->retry_at)
        s_send_join(self, now);
    else if (self->state == DS_SESSION_JOINED && self->fetch_due)
        s_send_fetch(self, now);
    else if (self->state == DS_SESSION_JOINED && now >= self->next_hb_at)
        s_send_heartbeat(self, now);
}

void ds_session_step(ds_session_t *self, uint64_t now_ms)
{
    assert(self);
    s_drain(self, now_ms);
    s_timers(self, now_ms);
}

/* ---- queries --------------------------------------------------------------------- */

void *ds_session_socket(const ds_session_t *self)
{
    return self->sock ? zsock_resolve(self->sock) : NULL;
}

uint64_t ds_session_next_wake(const ds_session_t *self)
{
    if (self->req != S_REQ_NONE)
        return self->req_deadline;
    if (self->state == DS_SESSION_DISCOVERING)
        return self->retry_at;
    return self->fetch_due ? 0 : self->next_hb_at;
}

ds_session_state_t ds_session_state(const ds_session_t *self)
{
    return self->state;
}

const char *ds_session_state_name(ds_session_state_t state)
{
    switch (state) {
    case DS_SESSION_DISCOVERING:
        return "discovering";
    case DS_SESSION_JOINING:
        return "joining";
    case DS_SESSION_JOINED:
        return "joined";
    }
    return "?";
}

const char *ds_session_leader(const ds_session_t *self)
{
    return self->state == DS_SESSION_JOINED ? self->leader : NULL;
}

uint32_t ds_session_heartbeat_ms(const ds_session_t *self)
{
    return self->heartbeat_ms;
}

void ds_session_stats(const ds_session_t *self, ds_session_stats_t *out)
{
    *out = self->stats;
}

size_t ds_session_n_endpoints(const ds_session_t *self)
{
    return self->n_eps;
}

const char *ds_session_endpoint(const ds_session_t *self, size_t i)
{
    return i < self->n_eps ? self->eps[i] : NULL;
}
