/*  coordinator/node_impl.h - the node's internals, shared by node*.c only. */
#ifndef DS_COORDINATOR_NODE_IMPL_H
#define DS_COORDINATOR_NODE_IMPL_H

#include "coordinator/config.h"
#include "coordinator/httpd.h"
#include "coordinator/node.h"
#include "coordinator/replica.h"
#include "coordinator/rollout.h"
#include "coordinator/telemetry.h"
#include "protocol/clock.h"
#include "protocol/keys.h"
#include "protocol/msg.h"
#include "protocol/transport.h"
#include "protocol/zap.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define DS_NODE_MAX_PENDING    65536u /* writes waiting for commit */
#define DS_NODE_MAX_READS      4096u  /* reads waiting for ReadIndex */
#define DS_NODE_BATCH          512u   /* messages taken per socket per wake-up */
#define DS_NODE_HELLO_MS       1000u  /* how often members advertise their rpc endpoint */
#define DS_NODE_WRITE_TTL_MS   5000u  /* a write not committed by then is answered */
#define DS_NODE_EXPIRE_MS      60000u /* how often the leader expires idle sessions */
#define DS_NODE_APPLY_SYNC_MS  100u   /* how often applied entries are made durable */
#define DS_NODE_FLUSH_GRACE_MS 1u     /* a flush the leader's commit needs waits this first */
#define DS_NODE_CONTROL_MS     100u   /* how often the leader runs the rollout controllers */
#define DS_NODE_EVENTS         1024u  /* events kept for dsctl events */
#define DS_NODE_WAITERS        256u   /* dsctl events --follow requests held at once */

/*  Who asked, so the answer finds them. */
typedef struct {
    zframe_t *rid; /* ROUTER routing id, owned */
    uint64_t corr_id;
    uint16_t type; /* request type */
    uint64_t deadline_ms;
    uint64_t received_ms;          /* monotonic, for the rpc latency metric */
    uint8_t role;                  /* ds_role_t of the sender's key (DS_ROLE_INSECURE: plain) */
    char key[DS_KEY_TEXT_LEN + 1]; /* the sender's public key; "" when plain */
} ds_caller_t;

/*  A worker key pinned through Raft, as this member's registry holds it. */
typedef struct {
    char key[DS_KEY_TEXT_LEN + 1];
    char name[DS_MAX_NAME + 1];
} ds_pinned_key_t;

/*  A write waiting for its entry to apply. `key` names what the reply
    reports: the kv key, the service, or the joining worker. */
typedef struct {
    ds_caller_t caller;
    uint64_t index;
    uint64_t term;
    char key[DS_MAX_KV_KEY + 1];
} ds_pending_write_t;

typedef struct {
    ds_caller_t caller;
    uint64_t id;    /* ReadIndex context */
    uint64_t index; /* confirmed read index, 0 = waiting */
    ds_msg_t *req;  /* the request, owned */
} ds_pending_read_t;

typedef struct {
    uint64_t id;
    char peer[DS_MAX_ENDPOINT + 1];
    char rpc[DS_MAX_ENDPOINT + 1];  /* learned from its hello; "" until then */
    char http[DS_MAX_ENDPOINT + 1]; /* its --http, from its hello; "" when off */
    zsock_t *out;                   /* DEALER to its peer endpoint; NULL for self */
    uint64_t last_heard_ms;
} ds_peer_t;

#define DS_NODE_LATENCY_BUCKETS 10u

/*  Counters of the rpc endpoint, by request type. */
typedef struct {
    uint64_t requests[256];
    uint64_t errors[256];
    uint64_t latency_le[DS_NODE_LATENCY_BUCKETS]; /* cumulative, see node_metrics.c */
    uint64_t latency_count;
    double latency_sum_s;
} ds_node_metrics_t;

/*  One instance as its worker last reported it (soft state, leader only). */
typedef struct {
    char service[DS_MAX_NAME + 1];
    ds_instance_status_t st; /* strings: service -> above, reason -> below, no metrics */
    char reason[256];
    uint64_t healthy_since_ms; /* wall clock; 0 = not passing */
} ds_soft_instance_t;

/*  A worker as the leader sees it from its heartbeats (soft state). */
typedef struct {
    char name[DS_MAX_NAME + 1];
    bool up;
    uint64_t up_since_ms;  /* wall clock */
    uint64_t last_seen_ms; /* monotonic */
    uint64_t generation;   /* the assignment generation it applies */
    ds_worker_telemetry_t telemetry;
    uint32_t n_instances;
    ds_soft_instance_t *instances; /* owned */
} ds_soft_worker_t;

#define DS_NODE_CANARY_SAMPLES 150u  /* points of a canary chart: 5 min at one per 2 s */
#define DS_NODE_VERDICT_MAX    1024u /* bytes of a verdict summary */

/*  One point of a canary chart: the new version and the baseline. */
typedef struct {
    uint64_t ts_ms;
    double canary_error_ratio, canary_p99_ms, canary_rate;
    double baseline_error_ratio, baseline_p99_ms, baseline_rate;
    uint8_t verdict; /* ds_rollout_verdict_result_t at that time */
} ds_canary_sample_t;

/*  The leader's record of a service's latest deployment for the web page
    and status: canary vs baseline over time, and the latest verdict. */
typedef struct {
    char service[DS_MAX_NAME + 1];
    uint64_t deployment_id, version, baseline_version;
    uint32_t n, head; /* ring of samples; head = next slot */
    ds_canary_sample_t samples[DS_NODE_CANARY_SAMPLES];
    uint64_t next_sample_ms; /* wall clock */
    uint8_t verdict_result;  /* ds_rollout_verdict_result_t of the latest analysis */
    char verdict[DS_NODE_VERDICT_MAX];
} ds_canary_series_t;

/*  A controller batch proposed and not yet applied. */
typedef struct {
    char service[DS_MAX_NAME + 1];
    uint64_t index;
    uint64_t term;
} ds_inflight_t;

/*  What the leader last reported of a deployment, to emit an event when
    it changes. */
typedef struct {
    char service[DS_MAX_NAME + 1];
    uint64_t id;
    uint8_t state;
    uint32_t wave;
} ds_dep_seen_t;

typedef struct {
    uint64_t seq;
    uint64_t ts_ms;
    char kind[24];
    char service[DS_MAX_NAME + 1];
    char message[DS_ROLLOUT_REASON_MAX + 64];
} ds_node_event_t;

typedef struct {
    ds_caller_t caller;
    uint64_t after_seq;
    uint32_t limit;
} ds_event_waiter_t;

#define DS_NODE_DRY_RUNS     64u    /* dry runs held at once, answered ones included */
#define DS_NODE_DRY_SLACK_MS 10000u /* past healthy_deadline + the test timeouts */
#define DS_NODE_DRY_KEEP_MS  60000u /* an answered dry run is kept for retries */

/*  A dry run (dsctl deploy --dry-run) the leader waits for: soft state,
    never replicated (coordinator/node_dryrun.c). */
typedef struct {
    uint64_t id;
    char service[DS_MAX_NAME + 1];
    char worker[DS_MAX_NAME + 1];
    char client[DS_MAX_NAME + 1]; /* the request's sender and corr_id: a retry finds it */
    uint64_t corr_id;
    ds_arena_t *arena; /* owns spec */
    ds_spec_t spec;    /* validated, defaults applied */
    ds_caller_t caller;
    uint64_t deadline_ms; /* monotonic: answered DS_ETIMEOUT then */
    bool answered;        /* kept until expire_ms to answer a retry */
    int code;             /* answered with: 0 an op_reply, else this error */
    bool passed;
    char message[DS_MAX_TEXT];
    uint64_t expire_ms;
} ds_dry_run_t;

struct ds_node {
    ds_coord_config_t cfg;
    char id_text[24];
    ds_replica_t *replica;
    zsock_t *peer_in;
    zsock_t *rpc;
    ds_httpd_t *http; /* the read-only http endpoint, or NULL */
    ds_peer_t peers[DS_MAX_MEMBERS];
    uint32_t n_peers;

    /* writes waiting for their entry to apply, in index order */
    ds_pending_write_t *writes;
    size_t n_writes, cap_writes;
    ds_pending_read_t *reads;
    size_t n_reads, cap_reads;
    uint64_t next_read_id;
    ds_caller_t transfer; /* a transfer-leader request waiting, rid NULL if none */
    uint64_t transfer_from_term;

    uint64_t now_ms;
    uint64_t started_ms;
    uint64_t next_tick_ms;
    uint64_t next_hello_ms;
    uint64_t next_expire_ms;
    uint64_t next_apply_sync_ms;
    uint64_t flush_deadline_ms; /* the leader's own flush starts then, 0 = none */
    uint8_t role;
    uint64_t lead;
    uint64_t elections;    /* times this member became candidate */
    uint64_t leader_index; /* last index when it became leader: its own entries follow */

    ds_telemetry_t *telemetry; /* what workers report, in rolling windows (leader) */

    /* security (docs/security.md); all NULL with --insecure */
    ds_keyring_t *keyring;             /* keys from --keys DIR and pinned worker keys */
    ds_zap_t *zap;                     /* the ZAP handler answering from keyring */
    ds_transport_security_t *sec_peer; /* server: the peer endpoint */
    ds_transport_security_t *sec_rpc;  /* server: the rpc endpoint */
    ds_transport_security_t *sec_out;  /* client: this member's key, to its peers */
    ds_pinned_key_t *pinned;           /* worker keys pinned from the replicated state */
    size_t n_pinned, cap_pinned;
    ds_node_metrics_t metrics; /* rpc counters for /metrics */

    /* leader only: workers' heartbeats, controller bookkeeping */
    ds_soft_worker_t *soft;
    size_t n_soft, cap_soft;
    uint64_t leader_since_ms; /* monotonic */
    uint64_t next_control_ms;
    ds_inflight_t *inflight;
    size_t n_inflight, cap_inflight;
    ds_dep_seen_t *seen;
    size_t n_seen, cap_seen;
    ds_canary_series_t **canaries; /* one per service that had a live deployment */
    size_t n_canaries, cap_canaries;

    /* events (ring) and the dsctl events --follow requests waiting */
    ds_node_event_t *events; /* DS_NODE_EVENTS */
    uint64_t next_event_seq;
    ds_event_waiter_t waiters[DS_NODE_WAITERS];
    size_t n_waiters;

    /* leader only: dry runs waiting for their worker, or answered */
    ds_dry_run_t *dry;
    size_t n_dry, cap_dry;
    uint64_t next_dry_id;
    int fatal; /* a storage failure: stop */
};

/* node.c */
void ds_node_reply(ds_node_t *self, const ds_caller_t *to, uint16_t type, const void *body);
void ds_node_reply_error(ds_node_t *self, const ds_caller_t *to, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ds_node_reply_not_leader(ds_node_t *self, const ds_caller_t *to);
const ds_peer_t *ds_node_peer(const ds_node_t *self, uint64_t id);
void ds_node_caller_free(ds_caller_t *c);

/* node_rpc.c */
/*  Handles one request. A handler that must answer later keeps the
    caller's routing frame (caller->rid becomes NULL) and may keep the
    message (*msg becomes NULL). */
void ds_node_rpc_dispatch(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg);
void ds_node_writes_applied(ds_node_t *self, uint64_t index, uint64_t term, int result);
void ds_node_writes_fail_all(ds_node_t *self);
void ds_node_writes_expire(ds_node_t *self);
void ds_node_read_confirmed(ds_node_t *self, const ds_raft_read_state_t *rs);
void ds_node_reads_serve(ds_node_t *self);
void ds_node_reads_fail_all(ds_node_t *self);
void ds_node_transfer_check(ds_node_t *self);
void ds_node_propose_expiry(ds_node_t *self);

/* node_workers.c: the worker protocol and the soft worker table */
void ds_node_on_join(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_on_heartbeat(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_on_assignment_req(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_join_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index);
void ds_node_workers_check(ds_node_t *self);
void ds_node_workers_reset(ds_node_t *self);
const ds_soft_worker_t *ds_node_soft_worker(const ds_node_t *self, const char *name);
/*  Whether a registered worker counts as up: by its heartbeats, or, before
    its first heartbeat to this leader, for --worker-timeout after the
    leader took over. */
bool ds_node_worker_up(const ds_node_t *self, const char *name);
/*  The instance of `service` a worker reports that matters for a version
    assigned: that version's instance, else its newest. NULL if none. */
const ds_soft_instance_t *ds_node_soft_instance(const ds_soft_worker_t *w, const char *service,
                                                uint64_t assigned);

/* node_control.c: the rollout controllers (leader) */
typedef struct {
    ds_deployment_t dep;
    ds_spec_t spec; /* of the deployment's release */
    ds_rollout_worker_t *workers;
    uint32_t n_workers;
    ds_rollout_input_t in;
} ds_node_rollout_t;
/*  Builds the controller's input for `service` in `txn`; everything lives
    in `arena`. Returns 0, DS_ENOTFOUND (no service or deployment) or a
    storage error. */
int ds_node_rollout_load(ds_node_t *self, ds_txn_t *txn, const char *service, ds_arena_t *arena,
                         ds_node_rollout_t *out);
void ds_node_control(ds_node_t *self);
void ds_node_control_applied(ds_node_t *self, uint64_t index);
void ds_node_control_reset(ds_node_t *self);
/*  The canary record of `service`, NULL if this leader has none. */
const ds_canary_series_t *ds_node_canary(const ds_node_t *self, const char *service);

/* node_admin.c: deploy, rollback, promote, pause, resume, abort */
void ds_node_on_admin(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_admin_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index);
/* node_rpc.c */
void ds_node_propose(ds_node_t *self, ds_caller_t *caller, const char *client, uint64_t request_id,
                     uint16_t cmd, const void *body, const char *key);
void ds_node_reply_propose_error(ds_node_t *self, ds_caller_t *caller, int rc);
bool ds_node_is_leader(const ds_node_t *self);
/*  Makes room for element n of the array *arr (capacity *cap, elements
    of `elem` bytes), doubling from 16. Returns 0, DS_ELIMIT when n
    reached `max`, or DS_ENOMEM (the array is unchanged). */
int ds_node_grow(void **arr, size_t *cap, size_t n, size_t elem, size_t max);
/*  A member as cluster status shows it: role, match index, lag, reachable. */
void ds_node_member_row(const ds_node_t *self, const ds_peer_t *p, const ds_raft_status_t *st,
                        ds_member_row_t *row);
/*  Queues a read served once a ReadIndex round confirms this member
    still leads (keeps *msg). */
void ds_node_read_linearizable(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg);

/* node_dryrun.c: dsctl deploy --dry-run (leader, soft state) */
/*  Runs the release tests of `spec` (validated, defaults applied) on one
    selected worker that is up, preferring one that does not run the
    service; the caller is answered when the worker reports the result
    (op_reply, state dry_run_passed or dry_run_failed), or DS_ETIMEOUT.
    A retry (same sender and corr_id) joins the dry run under way, or
    gets the answer again. */
void ds_node_dry_run_start(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg,
                           const ds_spec_t *spec);
/*  The dry runs waiting for `worker`, for its heartbeat reply: fills up
    to `cap` jobs that point into the table (valid until the next call
    that changes it); returns how many. */
uint32_t ds_node_dry_run_jobs(const ds_node_t *self, const char *worker, ds_dry_run_job_t *out,
                              uint32_t cap);
/*  Takes the results a heartbeat of `worker` carries: each answers its
    dry run. */
void ds_node_dry_run_results(ds_node_t *self, const char *worker, const ds_heartbeat_t *hb);
/*  Answers dry runs past their deadline or whose worker is down, and
    forgets answered ones after DS_NODE_DRY_KEEP_MS. */
void ds_node_dry_run_check(ds_node_t *self);
/*  Leadership ended (or the node stops): answers every waiting dry run
    DS_ENOTLEADER and empties the table. */
void ds_node_dry_run_reset(ds_node_t *self);

/* node_tokens.c: join tokens and worker removal (admin), token list (view) */
void ds_node_on_tokens(ds_node_t *self, ds_caller_t *caller, ds_msg_t **msg);
void ds_node_serve_tokens(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_tokens_done(ds_node_t *self, ds_pending_write_t *w, uint64_t index);
/*  Whether this member runs with CURVE (not --insecure). */
bool ds_node_secure(const ds_node_t *self);

/* node_query.c: status, history, workers */
/*  Builds the rows of a status (ds_service_status_t), history
    (ds_history_row_t) or workers (ds_worker_row_t) reply in `arena`.
    Returns 0, DS_ENOTFOUND (unknown service) or a storage error. */
int ds_node_query_build(ds_node_t *self, uint16_t type, const ds_query_req_t *req,
                        ds_arena_t *arena, uint32_t *n, void **rows);
void ds_node_serve_query(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
/*  `dsctl top`: workers and, per service version, the last minute of
    telemetry. Served by the leader (it alone has the telemetry). */
void ds_node_on_top(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);

/* node_events.c */
void ds_node_event(ds_node_t *self, const char *kind, const char *service, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ds_node_on_events(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg);
void ds_node_events_check(ds_node_t *self);
void ds_node_events_close(ds_node_t *self);
/*  Calls fn for the last `n` events, oldest first. */
void ds_node_events_recent(const ds_node_t *self, size_t n,
                           void (*fn)(void *ctx, const ds_node_event_t *e), void *ctx);

/* node_metrics.c: /metrics and the counters behind it */
void ds_node_metrics_reply(ds_node_t *self, const ds_caller_t *to, uint16_t reply_type);
void ds_node_metrics_write(ds_node_t *self, FILE *out);

/* node_api.c: /api/status, the JSON the web page reads */
void ds_node_api_status(ds_node_t *self, FILE *out);

/* node_page.c: the web page */
extern const char ds_node_page_html[];

/* node_http.c */
int ds_node_http_bind(ds_node_t *self, char *err, size_t errlen);
void ds_node_http_close(ds_node_t *self);

#endif
