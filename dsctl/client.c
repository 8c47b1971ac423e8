/*  dsctl/client.c - the cluster client; see client.h. */
#include "dsctl/client.h"

#include "protocol/error.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_TRIED      (DS_DSCTL_MAX_ENDPOINTS + 8)
#define S_BACKOFF_MS     50
#define S_BACKOFF_MAX_MS 400
#define S_ATTEMPT_MIN_MS 200
#define S_MAX_HOPS       3 /* redirects in a row before backing off */

struct ds_client {
    ds_client_opts_t opts;
    char sender[DS_MAX_NAME + 1];
    uint64_t next_corr;
    char leader[DS_MAX_ENDPOINT + 1]; /* "" until a call succeeds */
};

typedef struct {
    char endpoint[DS_MAX_ENDPOINT + 1];
    char outcome[320];
    unsigned attempts;
} s_tried_t;

/*  State of one call across its attempts. */
typedef struct {
    ds_envelope_t env;
    const void *body;
    int64_t deadline;
    size_t ntried;
    s_tried_t tried[S_MAX_TRIED];
    bool no_leader;                   /* some member said: no leader known */
    char target[DS_MAX_ENDPOINT + 1]; /* a leader to try next, "" if none */
} s_call_t;

typedef enum { S_DONE, S_REDIRECT, S_NEXT } s_step_t;

ds_client_t *ds_client_new(const ds_client_opts_t *opts)
{
    assert(opts && opts->endpoints.n > 0 && opts->timeout_ms > 0);
    ds_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->opts = *opts;
    if (self->opts.attempt_ms <= 0) {
        /* Leave time to try every endpoint at least once. */
        uint64_t share = opts->timeout_ms / opts->endpoints.n;
        share = share < S_ATTEMPT_MIN_MS ? S_ATTEMPT_MIN_MS : share;
        self->opts.attempt_ms = share < DS_CLIENT_ATTEMPT_MS ? (int)share : DS_CLIENT_ATTEMPT_MS;
    }
    snprintf(self->sender, sizeof self->sender, "%s", opts->sender ? opts->sender : "dsctl");
    self->opts.sender = NULL;
    self->next_corr = ((uint64_t)getpid() << 32) ^ (uint64_t)zclock_usecs();
    return self;
}

void ds_client_destroy(ds_client_t **self_p)
{
    assert(self_p);
    free(*self_p);
    *self_p = NULL;
}

void ds_client_set_timeout(ds_client_t *self, uint64_t timeout_ms, int attempt_ms)
{
    assert(self && timeout_ms > 0 && attempt_ms >= 0);
    self->opts.timeout_ms = timeout_ms;
    if (attempt_ms > 0)
        self->opts.attempt_ms = attempt_ms;
}

const char *ds_client_leader(const ds_client_t *self)
{
    return self->leader[0] ? self->leader : NULL;
}

/*  Notes what `endpoint` did; the latest outcome per endpoint is kept. */
static void s_record(s_call_t *call, const char *endpoint, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_record(s_call_t *call, const char *endpoint, const char *fmt, ...)
{
    s_tried_t *t = NULL;
    for (size_t i = 0; i < call->ntried && !t; i++)
        if (strcmp(call->tried[i].endpoint, endpoint) == 0)
            t = &call->tried[i];
    if (!t && call->ntried < S_MAX_TRIED) {
        t = &call->tried[call->ntried++];
        snprintf(t->endpoint, sizeof t->endpoint, "%s", endpoint);
    }
    if (!t)
        return;
    t->attempts++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->outcome, sizeof t->outcome, fmt, ap);
    va_end(ap);
}

static s_step_t s_not_leader(s_call_t *call, const char *endpoint, const ds_not_leader_t *nl)
{
    if (nl->leader_rpc[0] && strcmp(nl->leader_rpc, endpoint) != 0) {
        s_record(call, endpoint,
                 "not the leader; it named member %" PRIu64 " at %s (term %" PRIu64 ")",
                 nl->leader_id, nl->leader_rpc, nl->term);
        snprintf(call->target, sizeof call->target, "%s", nl->leader_rpc);
        return S_REDIRECT;
    }
    call->no_leader = true;
    s_record(call, endpoint,
             "answered, but knows no leader (term %" PRIu64 "; an election may be running)",
             nl->term);
    return S_NEXT;
}

/*  One request to one endpoint. */
static s_step_t s_attempt(ds_client_t *self, s_call_t *call, const char *endpoint, int wait_ms,
                          ds_msg_t **reply_out)
{
    ds_codec_err_t cerr = {0, ""};
    ds_msg_t *reply = NULL;
    int rc = ds_rpc_call(endpoint, self->opts.sec, &call->env, call->body, wait_ms, &reply, &cerr);
    if (rc == DS_ETIMEOUT) {
        s_record(call, endpoint, "no reply");
        return S_NEXT;
    }
    if (rc != 0) {
        s_record(call, endpoint, "%s (%s)", cerr.text, ds_errname(rc));
        return S_NEXT;
    }
    if (reply->env.type != DS_MSG_NOT_LEADER) {
        *reply_out = reply;
        return S_DONE;
    }
    s_step_t step = s_not_leader(call, endpoint, reply->body);
    ds_msg_destroy(&reply);
    return step;
}

static void s_fmt_ms(char *buf, size_t len, uint64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, len, "%" PRIu64 "ms", ms);
}

/*  The paragraph a person reads when the call fails. */
static void s_explain(const ds_client_t *self, const s_call_t *call, ds_client_err_t *err)
{
    char limit[32];
    s_fmt_ms(limit, sizeof limit, self->opts.timeout_ms);
    size_t n =
        (size_t)snprintf(err->text, sizeof err->text, "%s within %s; tried:\n",
                         call->no_leader ? "no leader found" : "no coordinator answered", limit);
    for (size_t i = 0; i < call->ntried && n < sizeof err->text; i++)
        n += (size_t)snprintf(err->text + n, sizeof err->text - n, "  %s: %s (%u attempt%s)\n",
                              call->tried[i].endpoint, call->tried[i].outcome,
                              call->tried[i].attempts, call->tried[i].attempts == 1 ? "" : "s");
    if (n < sizeof err->text)
        snprintf(err->text + n, sizeof err->text - n, "%s",
                 call->no_leader
                     ? "a majority of coordinators must be up and connected to elect a leader: "
                       "check that enough dscoord members run and reach each other (their logs "
                       "say why), then retry or raise --timeout"
                 : self->opts.sec
                     ? "check that dscoord runs at these endpoints and that they are the rpc "
                       "endpoints (--coordinators, DSCTL_COORDINATORS or the config file), and "
                       "that --cluster-key is the cluster's public key (a wrong one is never "
                       "answered), then retry or raise --timeout"
                     : "check that dscoord runs at these endpoints and that they are the rpc "
                       "endpoints (--coordinators, DSCTL_COORDINATORS or the config file); a "
                       "cluster that uses keys does not answer --insecure: give --key and "
                       "--cluster-key; then retry or raise --timeout");
}

/*  Checks that the request encodes, so a failure later is the network's. */
static int s_check_request(const s_call_t *call, ds_client_err_t *err)
{
    ds_buf_t eb = {0}, bb = {0};
    ds_codec_err_t cerr = {0, ""};
    int rc = ds_msg_encode(&call->env, call->body, &eb, &bb, &cerr);
    ds_buf_free(&eb);
    ds_buf_free(&bb);
    if (rc != 0 && err) {
        err->code = rc;
        snprintf(err->text, sizeof err->text, "invalid request: %s", cerr.text);
    }
    return rc;
}

/*  Picks the endpoint to try next: a named leader, else the list in turn.
    Returns true when the pick completes a round of the list. */
static bool s_pick(const ds_client_t *self, s_call_t *call, size_t *next, char *ep, size_t len)
{
    if (call->target[0]) {
        snprintf(ep, len, "%s", call->target);
        call->target[0] = '\0';
        return false;
    }
    const ds_endpoints_t *eps = &self->opts.endpoints;
    snprintf(ep, len, "%s", eps->list[*next % eps->n]);
    return ++*next % eps->n == 0;
}

static void s_backoff(const s_call_t *call, int *backoff)
{
    int64_t left = call->deadline - zclock_mono();
    if (left > 0)
        zclock_sleep(left < *backoff ? (int)left : *backoff);
    *backoff = *backoff * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : *backoff * 2;
}

static int s_run(ds_client_t *self, s_call_t *call, ds_msg_t **reply_out)
{
    size_t next = 0;
    int backoff = S_BACKOFF_MS, hops = 0;
    char ep[DS_MAX_ENDPOINT + 1];
    for (int64_t left; (left = call->deadline - zclock_mono()) > 0;) {
        bool round_done = s_pick(self, call, &next, ep, sizeof ep);
        int wait = left < self->opts.attempt_ms ? (int)left : self->opts.attempt_ms;
        s_step_t step = s_attempt(self, call, ep, wait, reply_out);
        if (step == S_DONE) {
            snprintf(self->leader, sizeof self->leader, "%s", ep);
            return 0;
        }
        /* Sleep after a failed round, and when members keep pointing at
           each other (a leader change in progress). */
        hops = step == S_REDIRECT ? hops + 1 : 0;
        if ((step == S_NEXT && round_done) || hops > S_MAX_HOPS) {
            s_backoff(call, &backoff);
            hops = 0;
        }
    }
    return call->no_leader ? DS_ENOQUORUM : DS_ETIMEOUT;
}

int ds_client_call(ds_client_t *self, uint16_t type, const void *body, ds_msg_t **reply_out,
                   ds_client_err_t *err)
{
    assert(self && body && reply_out);
    *reply_out = NULL;
    s_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return DS_ENOMEM;
    call->env = (ds_envelope_t){DS_PROTOCOL_VERSION, type, ++self->next_corr, self->sender};
    call->body = body;
    call->deadline = zclock_mono() + (int64_t)self->opts.timeout_ms;
    if (self->leader[0]) /* start with the last leader */
        snprintf(call->target, sizeof call->target, "%s", self->leader);
    int rc = s_check_request(call, err);
    if (rc == 0)
        rc = s_run(self, call, reply_out);
    if (err && (rc == DS_ENOQUORUM || rc == DS_ETIMEOUT)) {
        err->code = rc;
        s_explain(self, call, err);
    }
    free(call);
    return rc;
}

void ds_client_session_name(const char *prefix, char *out, size_t outlen)
{
    char host[64] = "";
    uint32_t nonce = 0;
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[24] = '\0'; /* keep the whole name within DS_MAX_NAME */
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(&nonce, sizeof nonce, 1, f) != 1)
        nonce = (uint32_t)zclock_usecs();
    if (f)
        fclose(f);
    snprintf(out, outlen, "%.16s-%s-%d-%08x", prefix, host, (int)getpid(), nonce);
}
