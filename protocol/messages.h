/*  protocol/messages.h - the bodies of worker, admin and reply messages.

    Raft peer bodies are ds_raft_msg_t (protocol/raft_msg.h). Every body
    here has one wire description in the catalog (protocol/msg.c); see
    protocol/msg.h for the envelope and the type ids.

    Strings are NUL-terminated; counts precede the arrays they count.
*/
#ifndef DS_PROTOCOL_MESSAGES_H
#define DS_PROTOCOL_MESSAGES_H

#include "protocol/spec.h"
#include "protocol/types.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- shared pieces ------------------------------------------------ */

typedef enum {
    DS_INST_PENDING = 0,  /* assigned, not yet staged */
    DS_INST_STAGING = 1,  /* fetching / unpacking the artifact */
    DS_INST_STARTING = 2, /* process started, in start grace or tests */
    DS_INST_RUNNING = 3,  /* running; see health */
    DS_INST_STOPPING = 4,
    DS_INST_STOPPED = 5,
    DS_INST_CRASHED = 6, /* exited; will restart with backoff */
    DS_INST_FAILED = 7   /* gave up: staging failed, tests failed, deadline */
} ds_inst_state_t;
#define DS_INST_STATE_MAX DS_INST_FAILED

typedef enum {
    DS_HEALTH_UNKNOWN = 0,
    DS_HEALTH_PASSING = 1,
    DS_HEALTH_FAILING = 2
} ds_health_state_t;
#define DS_HEALTH_STATE_MAX DS_HEALTH_FAILING

typedef struct {
    char *name;
    double value;
} ds_metric_t;

typedef struct {
    char *service;
    uint64_t version;
    uint8_t state;  /* ds_inst_state_t */
    uint8_t health; /* ds_health_state_t */
    uint32_t pid;
    uint64_t uptime_ms;
    uint32_t restarts;
    double cpu_pct;
    uint64_t rss_kb;
    uint64_t probe_latency_us; /* last health probe */
    uint32_t consecutive_failures;
    char *reason;  /* why it is failed/crashed, "" otherwise */
    uint32_t port; /* where it serves on the worker's host, 0 = none */
    uint32_t n_metrics;
    ds_metric_t *metrics; /* application metrics scraped from the instance */
} ds_instance_status_t;

typedef struct {
    double load1;
    double cpu_pct;
    uint64_t mem_used_kb;
    uint64_t mem_total_kb;
    uint64_t disk_free_kb; /* of the data directory */
} ds_worker_telemetry_t;

typedef struct {
    uint32_t cpus;
    uint64_t memory_kb;
    uint64_t disk_kb;
} ds_resources_t;

/*  One service a worker should run: the version and its full spec. */
typedef struct {
    char *service;
    uint64_t version;
    ds_spec_t spec;
} ds_assigned_release_t;

/*  A dry run the leader asks one worker for (`dsctl deploy --dry-run`):
    start the release as a scratch instance that never serves, run its
    tests, stop it. Soft state: it is listed in every heartbeat reply to
    the worker until the leader has the result. */
#define DS_MAX_DRY_RUNS 8u /* dry-run jobs or results in one heartbeat (reply) */

typedef struct {
    uint64_t id; /* the leader's, unique per leader */
    char *service;
    uint64_t version; /* 0: a dry run is no release */
    ds_spec_t spec;
} ds_dry_run_job_t;

typedef struct {
    uint64_t id;
    char *service;
    bool passed;
    char *reason; /* "healthy; 2 tests passed", or what failed with its output */
} ds_dry_run_result_t;

/* ---- worker messages ---------------------------------------------- */

typedef struct {
    char *name;
    char *worker_id; /* stable id kept in the worker's data dir */
    uint32_t n_labels;
    ds_kv_t *labels;
    ds_resources_t resources;
    char *software_version;
    char *token; /* join token for a worker the cluster does not know yet */
} ds_join_req_t;

typedef struct {
    uint64_t generation;
    uint32_t n_releases;
    ds_assigned_release_t *releases;
} ds_assignment_t;

typedef struct {
    char *worker_id;
    uint32_t heartbeat_ms;
    ds_assignment_t assignment;
    uint32_t n_members;
    char **members; /* rpc endpoints of the coordinators, to find a new leader */
} ds_join_reply_t;

typedef struct {
    char *name;
    uint64_t generation; /* of the assignment the worker applies */
    ds_worker_telemetry_t telemetry;
    uint32_t n_instances;
    ds_instance_status_t *instances;
    uint32_t n_dry_runs;
    ds_dry_run_result_t *dry_runs; /* finished, sent until the leader stops listing the job */
} ds_heartbeat_t;

typedef struct {
    uint64_t generation; /* desired; newer than the worker's means fetch */
    uint64_t leader_id;
    char *leader_rpc;
    uint32_t n_members;
    char **members; /* rpc endpoints of the coordinators, to find a new leader */
    uint32_t n_dry_runs;
    ds_dry_run_job_t *dry_runs; /* the dry runs this leader waits for from the worker */
} ds_heartbeat_reply_t;

typedef struct {
    char *name;
    uint64_t have_generation;
} ds_assignment_req_t;

typedef struct {
    char *name;
    ds_instance_status_t instance;
} ds_instance_event_t;

/* ---- admin requests ----------------------------------------------- */

typedef struct {
    char *service;
    ds_spec_t spec;
    bool force;   /* abort a live deployment first */
    bool dry_run; /* run the release tests on one worker only */
} ds_deploy_req_t;

/*  rollback, promote, pause, resume, abort. */
typedef struct {
    char *service;
    uint64_t to_version; /* rollback only; 0 = the last good release */
    char *reason;
} ds_service_req_t;

/*  Reply to a write: what the cluster now records. */
typedef struct {
    char *service;
    uint64_t version;
    uint64_t deployment_id;
    char *state;
    char *message;
    uint64_t index; /* Raft index at which it committed */
} ds_op_reply_t;

typedef struct {
    char *service; /* "" = every service */
    bool stale;    /* serve this member's view without a ReadIndex round */
    uint32_t limit;
} ds_query_req_t;

typedef struct {
    uint64_t id;
    uint64_t version;
    uint64_t from_version;
    char *state; /* pending, canary, baking, promoting, paused, succeeded, ... */
    char *reason;
    uint32_t wave;
    uint32_t updated;
    uint32_t healthy;
    uint32_t total;
    uint64_t started_at_ms;
    uint64_t updated_at_ms;
} ds_deployment_status_t;

typedef struct {
    char *worker;
    uint64_t version;
    char *state;
    char *health;
    uint32_t port; /* 0 = unknown */
    uint32_t restarts;
    char *reason; /* why it failed or fails, "" otherwise */
} ds_instance_row_t;

typedef struct {
    char *service;
    uint64_t current_version;
    uint64_t desired_version;
    bool has_deployment;
    ds_deployment_status_t deployment;
    uint32_t n_instances;
    ds_instance_row_t *instances;
} ds_service_status_t;

typedef struct {
    bool insecure; /* the cluster runs without CURVE */
    uint32_t n_services;
    ds_service_status_t *services;
} ds_status_reply_t;

typedef struct {
    uint64_t seq;
    uint64_t version;
    char *event;   /* deploy, promote, pause, verdict, rollback, ... */
    char *outcome; /* succeeded, failed, rolled_back, live, ... */
    uint64_t created_at_ms;
    char *by; /* client identity or "controller" */
    char *reason;
} ds_history_row_t;

typedef struct {
    char *service;
    uint32_t n_rows;
    ds_history_row_t *rows;
} ds_history_reply_t;

typedef struct {
    char *name;
    char *state; /* up, down */
    uint32_t n_labels;
    ds_kv_t *labels;
    uint64_t last_seen_ms; /* ago */
    uint64_t generation;
    char *software_version;
    ds_worker_telemetry_t telemetry;
} ds_worker_row_t;

typedef struct {
    uint32_t n_workers;
    ds_worker_row_t *workers;
} ds_workers_reply_t;

typedef struct {
    char *service;
    uint64_t version;
    uint32_t instances;
    uint32_t healthy;
    double request_rate;
    double error_ratio;
    double p99_ms;
    double cpu_pct;
    uint64_t rss_kb;
} ds_top_service_t;

typedef struct {
    uint32_t n_workers;
    ds_worker_row_t *workers;
    uint32_t n_services;
    ds_top_service_t *services;
} ds_top_reply_t;

typedef struct {
    uint64_t after_seq; /* events newer than this */
    uint32_t limit;
    uint32_t wait_ms; /* long poll: wait up to this long for one */
} ds_events_req_t;

typedef struct {
    uint64_t seq;
    uint64_t ts_ms;
    char *kind;
    char *service;
    char *message;
} ds_event_t;

typedef struct {
    uint32_t n_events;
    ds_event_t *events;
} ds_events_reply_t;

typedef struct {
    uint64_t id;
    char *peer_endpoint;
    char *rpc_endpoint;
    char *role; /* leader, follower, candidate, unreachable */
    uint64_t match_index;
    uint64_t lag;
    bool reachable;
} ds_member_row_t;

typedef struct {
    uint64_t leader;
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint32_t n_members;
    ds_member_row_t *members;
} ds_cluster_status_reply_t;

typedef struct {
    uint64_t target; /* 0: the most caught-up follower */
} ds_transfer_req_t;

typedef struct {
    uint64_t id;
    char *peer_endpoint;
    char *rpc_endpoint;
} ds_member_req_t;

/*  The cluster's replicated key-value table: settings, and the writes
    that tests and benchmarks use to exercise consensus end to end. */
typedef struct {
    char *key;
    ds_bytes_t value; /* at most DS_MAX_KV_VALUE bytes */
} ds_kv_put_t;

typedef struct {
    char *key;
    bool stale; /* serve this member's view without a ReadIndex round */
} ds_kv_get_t;

typedef struct {
    char *key;
    bool found;
    ds_bytes_t value;
    uint64_t index;     /* Raft index of the write, or the read's index */
    uint64_t version;   /* how many writes the key has had (1 after the first) */
    uint64_t mod_index; /* Raft index of the key's last write */
} ds_kv_reply_t;

/* ---- join tokens and worker removal (docs/security.md) ------------ */

/*  dsctl token create: dsctl makes the token ("ID.SECRET") itself, so a
    retried request carries the same one; the leader stores the id and a
    hash of the secret, never the secret. */
typedef struct {
    char *id;        /* 1..DS_MAX_NAME of [A-Za-z0-9_-] */
    char *secret;    /* 32..DS_MAX_NAME characters */
    uint64_t ttl_ms; /* 0: never expires */
    uint32_t uses;   /* joins it admits; 0: unlimited */
    uint32_t n_labels;
    ds_kv_t *labels; /* given to every worker that joins with it */
} ds_token_create_t;

/*  dsctl token revoke ID. */
typedef struct {
    char *id;
} ds_token_revoke_t;

/*  One token as dsctl token list shows it (never its secret). */
typedef struct {
    char *id;
    uint64_t created_at_ms;
    uint64_t expires_at_ms; /* 0: never */
    uint32_t uses;          /* 0: unlimited */
    uint32_t used;
    bool revoked;
    char *created_by;
    uint32_t n_labels;
    ds_kv_t *labels;
} ds_token_row_t;

typedef struct {
    uint32_t n_tokens;
    ds_token_row_t *tokens;
} ds_token_list_reply_t;

/*  dsctl workers remove NAME: deletes the worker and revokes its key. */
typedef struct {
    char *name;
} ds_worker_remove_t;

/*  Advertised by each coordinator to its peers. */
typedef struct {
    uint64_t id;
    char *rpc_endpoint;
    char *http_endpoint;
    char *software_version;
} ds_peer_hello_t;

/* ---- replies every request may get -------------------------------- */

typedef struct {
    int64_t code;  /* a DS_E* code, stable */
    char *message; /* what happened and what to do */
} ds_error_reply_t;

typedef struct {
    uint64_t leader_id; /* 0 when no leader is known */
    char *leader_rpc;   /* "" when no leader is known */
    uint64_t term;
} ds_not_leader_t;

/*  A body with no fields (status of the whole cluster, top). */
typedef struct {
    uint8_t unused;
} ds_empty_t;

#endif
