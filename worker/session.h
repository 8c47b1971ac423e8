/*  worker/session.h - the worker's link to the coordinator cluster.

    A small non-blocking state machine driven by the worker's main loop:
      DISCOVERING  try the join endpoints (and every leader endpoint
                   learned since) in turn; a NOT_LEADER reply naming a
                   leader is followed at once; after a round with no
                   success wait (exponential backoff with jitter,
                   backoff_min_ms doubling to backoff_max_ms) and go again.
      JOINING      a JOIN is in flight to one endpoint.
      JOINED       JOIN_REPLY received: heartbeat the leader every
                   heartbeat interval (the join reply's heartbeat_ms wins)
                   and fetch the assignment when a heartbeat reply names a
                   newer generation than the worker applies.
    From JOINED the session goes back to DISCOVERING when `lost_after`
    requests in a row get no reply (lost the leader), or when the leader
    answers "unknown worker" (DS_MSG_ERROR DS_ENOTFOUND: join again, at the
    same member first). A NOT_LEADER reply to a heartbeat switches to the
    leader it names, or, when it names none, back to DISCOVERING.

    One request is in flight at a time; it has a deadline, and its reply
    is recognised by its correlation id (other replies are dropped). The
    session keeps one DEALER socket per endpoint it talks to, and
    replaces it after a timeout, so a late reply or a request queued for
    a dead peer never reaches a later exchange.

    Time and randomness are inputs: every call takes now_ms (a monotonic
    clock in ms; the caller's choice) and the jitter comes from a seeded
    generator, so a test drives timeouts and backoff without waiting.
    The session talks to the reconciler through the hooks only.

    Logs (mod=session): joined, leader changed, lost the leader,
    assignment applied, and the failures that cause a retry.
*/
#ifndef DS_WORKER_SESSION_H
#define DS_WORKER_SESSION_H

#include "protocol/messages.h"
#include "protocol/transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_SESSION_MAX_ENDPOINTS    32u   /* join endpoints + learned leaders */
#define DS_SESSION_BACKOFF_MIN_MS   100u  /* first delay after a failed round */
#define DS_SESSION_BACKOFF_MAX_MS   5000u /* the delay's cap */
#define DS_SESSION_LOST_AFTER       3u    /* unanswered requests before the leader is lost */
#define DS_SESSION_TIMEOUT_MIN_MS   250u  /* a request's default timeout: the heartbeat */
#define DS_SESSION_TIMEOUT_MAX_MS   5000u /*   interval, within these bounds */
#define DS_SESSION_MAX_HOPS         4u    /* redirects in a row before backing off */
#define DS_SESSION_MAX_HEARTBEAT_MS 600000u

typedef struct ds_session ds_session_t;

typedef enum {
    DS_SESSION_DISCOVERING = 0, /* waiting to try the next endpoint */
    DS_SESSION_JOINING = 1,     /* a JOIN is in flight */
    DS_SESSION_JOINED = 2       /* heartbeating the leader */
} ds_session_state_t;

/*  How the session reaches the reconciler. All are called from
    ds_session_step() only. */
typedef struct {
    void *ctx;
    /*  The generation of the assignment the worker applies (0 = none). */
    uint64_t (*generation)(void *ctx);
    /*  Fills hb->telemetry, hb->n_instances and hb->instances, and
        hb->n_dry_runs and hb->dry_runs (the results of dry runs that
        ended), which stay the hook's, valid until the session's step
        returns. */
    void (*report)(void *ctx, ds_heartbeat_t *hb);
    /*  Applies a new desired assignment (borrowed). Returns 0, or a DS_E
        code with `err` set; the session then does not fetch that
        generation again. */
    int (*apply)(void *ctx, const ds_assignment_t *assignment, char *err, size_t errlen);
    /*  The dry runs the leader waits for from this worker, as each
        heartbeat reply lists them (borrowed, valid during the call):
        start those not known yet, forget the others. The results go out
        through `report` (hb->dry_runs). May be NULL. */
    void (*dry_runs)(void *ctx, const ds_dry_run_job_t *jobs, uint32_t n);
} ds_session_hooks_t;

typedef struct {
    const char *name;             /* the worker's name: JOIN name and envelope sender */
    const char *worker_id;        /* stable id from the worker store */
    const char *const *endpoints; /* join endpoints (copied), at least one */
    size_t n_endpoints;
    const ds_kv_t *labels; /* copied into the JOIN at each join */
    uint32_t n_labels;
    ds_resources_t resources;
    const char *software_version;       /* NULL = "" */
    const char *token;                  /* join token; NULL = "" */
    const ds_transport_security_t *sec; /* CURVE client (borrowed, outlives the session);
                                           NULL = plain ZeroMQ (--insecure) */
    uint32_t heartbeat_ms;              /* until a join reply says otherwise; > 0 */
    uint32_t timeout_ms;                /* reply wait; 0 = the heartbeat, within the TIMEOUT bounds
                                           above (a JOIN gets twice this) */
    uint32_t lost_after;                /* 0 = DS_SESSION_LOST_AFTER */
    uint32_t backoff_min_ms;            /* 0 = DS_SESSION_BACKOFF_MIN_MS */
    uint32_t backoff_max_ms;            /* 0 = DS_SESSION_BACKOFF_MAX_MS */
    uint64_t seed;                      /* of the jitter */
    uint64_t corr_start;                /* first correlation id - 1. Pass the wall clock in
                                           microseconds: the cluster applies a write once per
                                           (sender, corr_id), so ids must keep growing across
                                           restarts of the same worker */
    ds_session_hooks_t hooks;
} ds_session_opts_t;

/*  Counters, for tests and logs. */
typedef struct {
    uint64_t join_attempts;
    uint64_t joins; /* JOIN_REPLY received */
    uint64_t redirects;
    uint64_t heartbeats; /* sent */
    uint64_t heartbeat_replies;
    uint64_t fetches; /* ASSIGNMENT_REQ sent */
    uint64_t applied; /* assignments applied */
    uint64_t timeouts;
    uint64_t lost; /* times the leader was lost */
} ds_session_stats_t;

/*  Makes a session in DISCOVERING that tries its first endpoint at the
    first step. Nothing is sent yet. Returns 0 and sets *out (the caller
    destroys it), or DS_EINVAL (bad options: empty name, no endpoints, an
    endpoint too long) with `err` set. */
int ds_session_new(ds_session_t **out, const ds_session_opts_t *opts, uint64_t now_ms, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/*  Closes the socket (a request in flight is abandoned) and frees the
    session. Sets *self_p NULL; accepts NULL. */
void ds_session_destroy(ds_session_t **self_p);

/*  Does what is due at now_ms: reads every reply waiting on the socket
    (never blocks), handles timeouts, and sends the next request (join,
    heartbeat or assignment fetch). */
void ds_session_step(ds_session_t *self, uint64_t now_ms);

/*  The ZeroMQ socket to poll for ZMQ_POLLIN (a void * for zmq_poll), or
    NULL when none is open. It may change at every step. */
void *ds_session_socket(const ds_session_t *self);

/*  When the next step is due (absolute ms) if nothing arrives. */
uint64_t ds_session_next_wake(const ds_session_t *self);

ds_session_state_t ds_session_state(const ds_session_t *self);

/*  The state's name: "discovering", "joining", "joined". */
const char *ds_session_state_name(ds_session_state_t state);

/*  The endpoint of the leader when JOINED, or NULL. */
const char *ds_session_leader(const ds_session_t *self);

/*  The heartbeat interval in use (ms). */
uint32_t ds_session_heartbeat_ms(const ds_session_t *self);

void ds_session_stats(const ds_session_t *self, ds_session_stats_t *out);

/*  How many endpoints the session knows (join endpoints + learned), and
    the i-th one (NULL past the end). */
size_t ds_session_n_endpoints(const ds_session_t *self);
const char *ds_session_endpoint(const ds_session_t *self, size_t i);

/*  The delay before the next try after `failures` failed rounds in a row
    (0 = the first failure): min_ms doubled `failures` times, capped at
    max_ms, then jittered to a value drawn uniformly in [base/2, base].
    Advances *rng (any seed). Pure. */
uint32_t ds_session_backoff_ms(uint32_t failures, uint32_t min_ms, uint32_t max_ms, uint64_t *rng);

#endif
