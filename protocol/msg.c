/*  protocol/msg.c - the envelope and the catalog: one description per
    message type, one encoder and one decoder for all of them. */
#include "protocol/msg.h"

#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/mp.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- envelope ----------------------------------------------------- */

static const ds_field_t s_envelope_fields[] = {
    DS_F_U8(ds_envelope_t, version, 0),
    DS_F_U16(ds_envelope_t, type, 0),
    DS_F_U64(ds_envelope_t, corr_id),
    DS_F_STR(ds_envelope_t, sender, DS_MAX_NAME),
};
static const ds_desc_t s_envelope_desc = DS_DESC(ds_envelope_t, "envelope", s_envelope_fields);

/* ---- raft: one struct, one field list per type -------------------- */

#define R ds_raft_msg_t
static const ds_field_t s_entry_fields[] = {
    DS_F_U64(ds_raft_entry_t, term),
    DS_F_U64(ds_raft_entry_t, index),
    DS_F_U8(ds_raft_entry_t, type, DS_ENTRY_CONF_CHANGE),
    DS_F_BYTES(ds_raft_entry_t, data, DS_MAX_ENTRY_SIZE),
};
static const ds_desc_t s_entry_desc = DS_DESC(ds_raft_entry_t, "entry", s_entry_fields);

static const ds_field_t s_snapmeta_fields[] = {
    DS_F_U64(ds_snapshot_meta_t, index),
    DS_F_U64(ds_snapshot_meta_t, term),
    DS_F_U64_FIXED(ds_snapshot_meta_t, voters, n_voters, DS_MAX_MEMBERS),
};
static const ds_desc_t s_snapmeta_desc = DS_DESC(ds_snapshot_meta_t, "snap", s_snapmeta_fields);

#define S_RAFT_HEAD DS_F_U64(R, from), DS_F_U64(R, to), DS_F_U64(R, term)

static const ds_field_t s_vote_fields[] = {S_RAFT_HEAD, DS_F_U64(R, log_term), DS_F_U64(R, index),
                                           DS_F_BYTES(R, context, DS_MAX_CONTEXT_SIZE)};
static const ds_field_t s_vote_resp_fields[] = {S_RAFT_HEAD, DS_F_BOOL(R, reject)};
static const ds_field_t s_append_fields[] = {
    S_RAFT_HEAD,
    DS_F_U64(R, log_term),
    DS_F_U64(R, index),
    DS_F_U64(R, commit),
    DS_F_ARRAY(R, entries, n_entries, s_entry_desc, DS_MAX_ENTRIES),
};
static const ds_field_t s_append_resp_fields[] = {
    S_RAFT_HEAD,
    DS_F_U64(R, index),
    DS_F_BOOL(R, reject),
    DS_F_U64(R, hint_index),
    DS_F_U64(R, hint_term),
};
static const ds_field_t s_snapshot_fields[] = {
    S_RAFT_HEAD,
    DS_F_STRUCT(R, snap, s_snapmeta_desc),
    DS_F_U64(R, chunk_offset),
    DS_F_BYTES(R, chunk, DS_MAX_CHUNK_SIZE),
    DS_F_BOOL(R, chunk_last),
};
static const ds_field_t s_snapshot_resp_fields[] = {S_RAFT_HEAD, DS_F_U64(R, index),
                                                    DS_F_BOOL(R, reject)};
static const ds_field_t s_timeout_now_fields[] = {S_RAFT_HEAD};
static const ds_field_t s_heartbeat_fields[] = {S_RAFT_HEAD, DS_F_U64(R, commit),
                                                DS_F_BYTES(R, context, DS_MAX_CONTEXT_SIZE)};
static const ds_field_t s_heartbeat_resp_fields[] = {S_RAFT_HEAD,
                                                     DS_F_BYTES(R, context, DS_MAX_CONTEXT_SIZE)};
#undef R

static const ds_desc_t s_prevote_desc = DS_DESC(ds_raft_msg_t, "prevote", s_vote_fields);
static const ds_desc_t s_prevote_resp_desc =
    DS_DESC(ds_raft_msg_t, "prevote_resp", s_vote_resp_fields);
static const ds_desc_t s_vote_desc = DS_DESC(ds_raft_msg_t, "vote", s_vote_fields);
static const ds_desc_t s_vote_resp_desc = DS_DESC(ds_raft_msg_t, "vote_resp", s_vote_resp_fields);
static const ds_desc_t s_append_desc = DS_DESC(ds_raft_msg_t, "append", s_append_fields);
static const ds_desc_t s_append_resp_desc =
    DS_DESC(ds_raft_msg_t, "append_resp", s_append_resp_fields);
static const ds_desc_t s_snapshot_desc = DS_DESC(ds_raft_msg_t, "snapshot", s_snapshot_fields);
static const ds_desc_t s_snapshot_resp_desc =
    DS_DESC(ds_raft_msg_t, "snapshot_resp", s_snapshot_resp_fields);
static const ds_desc_t s_timeout_now_desc =
    DS_DESC(ds_raft_msg_t, "timeout_now", s_timeout_now_fields);
static const ds_desc_t s_heartbeat_desc = DS_DESC(ds_raft_msg_t, "heartbeat", s_heartbeat_fields);
static const ds_desc_t s_heartbeat_resp_desc =
    DS_DESC(ds_raft_msg_t, "heartbeat_resp", s_heartbeat_resp_fields);

/* ---- shared pieces ------------------------------------------------ */

static const ds_field_t s_metric_fields[] = {
    DS_F_STR(ds_metric_t, name, DS_MAX_LABEL),
    DS_F_F64(ds_metric_t, value),
};
static const ds_desc_t s_metric_desc = DS_DESC(ds_metric_t, "metric", s_metric_fields);

static const ds_field_t s_instance_fields[] = {
    DS_F_STR(ds_instance_status_t, service, DS_MAX_NAME),
    DS_F_U64(ds_instance_status_t, version),
    DS_F_U8(ds_instance_status_t, state, DS_INST_STATE_MAX),
    DS_F_U8(ds_instance_status_t, health, DS_HEALTH_STATE_MAX),
    DS_F_U32(ds_instance_status_t, pid, 0),
    DS_F_U64(ds_instance_status_t, uptime_ms),
    DS_F_U32(ds_instance_status_t, restarts, 0),
    DS_F_F64(ds_instance_status_t, cpu_pct),
    DS_F_U64(ds_instance_status_t, rss_kb),
    DS_F_U64(ds_instance_status_t, probe_latency_us),
    DS_F_U32(ds_instance_status_t, consecutive_failures, 0),
    DS_F_STR(ds_instance_status_t, reason, DS_MAX_TEXT),
    DS_F_U32(ds_instance_status_t, port, 65535),
    DS_F_ARRAY(ds_instance_status_t, metrics, n_metrics, s_metric_desc, DS_MAX_METRICS),
};
static const ds_desc_t s_instance_desc =
    DS_DESC(ds_instance_status_t, "instance", s_instance_fields);

static const ds_field_t s_telemetry_fields[] = {
    DS_F_F64(ds_worker_telemetry_t, load1),        DS_F_F64(ds_worker_telemetry_t, cpu_pct),
    DS_F_U64(ds_worker_telemetry_t, mem_used_kb),  DS_F_U64(ds_worker_telemetry_t, mem_total_kb),
    DS_F_U64(ds_worker_telemetry_t, disk_free_kb),
};
static const ds_desc_t s_telemetry_desc =
    DS_DESC(ds_worker_telemetry_t, "telemetry", s_telemetry_fields);

static const ds_field_t s_resources_fields[] = {
    DS_F_U32(ds_resources_t, cpus, 0),
    DS_F_U64(ds_resources_t, memory_kb),
    DS_F_U64(ds_resources_t, disk_kb),
};
static const ds_desc_t s_resources_desc = DS_DESC(ds_resources_t, "resources", s_resources_fields);

static const ds_field_t s_assigned_fields[] = {
    DS_F_STR(ds_assigned_release_t, service, DS_MAX_NAME),
    DS_F_U64(ds_assigned_release_t, version),
    DS_F_STRUCT(ds_assigned_release_t, spec, ds_spec_desc),
};
static const ds_desc_t s_assigned_desc =
    DS_DESC(ds_assigned_release_t, "release", s_assigned_fields);

static const ds_field_t s_dry_run_job_fields[] = {
    DS_F_U64(ds_dry_run_job_t, id),
    DS_F_STR(ds_dry_run_job_t, service, DS_MAX_NAME),
    DS_F_U64(ds_dry_run_job_t, version),
    DS_F_STRUCT(ds_dry_run_job_t, spec, ds_spec_desc),
};
static const ds_desc_t s_dry_run_job_desc =
    DS_DESC(ds_dry_run_job_t, "dry_run", s_dry_run_job_fields);

static const ds_field_t s_dry_run_result_fields[] = {
    DS_F_U64(ds_dry_run_result_t, id),
    DS_F_STR(ds_dry_run_result_t, service, DS_MAX_NAME),
    DS_F_BOOL(ds_dry_run_result_t, passed),
    DS_F_STR(ds_dry_run_result_t, reason, DS_MAX_TEXT),
};
static const ds_desc_t s_dry_run_result_desc =
    DS_DESC(ds_dry_run_result_t, "dry_run_result", s_dry_run_result_fields);

/* ---- worker messages ---------------------------------------------- */

static const ds_field_t s_join_fields[] = {
    DS_F_STR(ds_join_req_t, name, DS_MAX_NAME),
    DS_F_STR(ds_join_req_t, worker_id, DS_MAX_NAME),
    DS_F_KVS(ds_join_req_t, labels, n_labels, DS_MAX_LABELS),
    DS_F_STRUCT(ds_join_req_t, resources, s_resources_desc),
    DS_F_STR(ds_join_req_t, software_version, DS_MAX_NAME),
    DS_F_STR(ds_join_req_t, token, DS_MAX_LABEL),
};
const ds_desc_t ds_join_req_desc = DS_DESC(ds_join_req_t, "join", s_join_fields);

static const ds_field_t s_assignment_fields[] = {
    DS_F_U64(ds_assignment_t, generation),
    DS_F_ARRAY(ds_assignment_t, releases, n_releases, s_assigned_desc, DS_MAX_SERVICES),
};
static const ds_desc_t s_assignment_desc =
    DS_DESC(ds_assignment_t, "assignment", s_assignment_fields);

static const ds_field_t s_join_reply_fields[] = {
    DS_F_STR(ds_join_reply_t, worker_id, DS_MAX_NAME),
    DS_F_U32(ds_join_reply_t, heartbeat_ms, 0),
    DS_F_STRUCT(ds_join_reply_t, assignment, s_assignment_desc),
    DS_F_STRS(ds_join_reply_t, members, n_members, DS_MAX_MEMBERS),
};
static const ds_desc_t s_join_reply_desc =
    DS_DESC(ds_join_reply_t, "join_reply", s_join_reply_fields);

static const ds_field_t s_heartbeat_w_fields[] = {
    DS_F_STR(ds_heartbeat_t, name, DS_MAX_NAME),
    DS_F_U64(ds_heartbeat_t, generation),
    DS_F_STRUCT(ds_heartbeat_t, telemetry, s_telemetry_desc),
    DS_F_ARRAY(ds_heartbeat_t, instances, n_instances, s_instance_desc, DS_MAX_INSTANCES),
    DS_F_ARRAY(ds_heartbeat_t, dry_runs, n_dry_runs, s_dry_run_result_desc, DS_MAX_DRY_RUNS),
};
static const ds_desc_t s_heartbeat_w_desc =
    DS_DESC(ds_heartbeat_t, "worker_heartbeat", s_heartbeat_w_fields);

static const ds_field_t s_heartbeat_reply_fields[] = {
    DS_F_U64(ds_heartbeat_reply_t, generation),
    DS_F_U64(ds_heartbeat_reply_t, leader_id),
    DS_F_STR(ds_heartbeat_reply_t, leader_rpc, DS_MAX_ENDPOINT),
    DS_F_STRS(ds_heartbeat_reply_t, members, n_members, DS_MAX_MEMBERS),
    DS_F_ARRAY(ds_heartbeat_reply_t, dry_runs, n_dry_runs, s_dry_run_job_desc, DS_MAX_DRY_RUNS),
};
static const ds_desc_t s_heartbeat_reply_desc =
    DS_DESC(ds_heartbeat_reply_t, "heartbeat_reply", s_heartbeat_reply_fields);

static const ds_field_t s_assignment_req_fields[] = {
    DS_F_STR(ds_assignment_req_t, name, DS_MAX_NAME),
    DS_F_U64(ds_assignment_req_t, have_generation),
};
static const ds_desc_t s_assignment_req_desc =
    DS_DESC(ds_assignment_req_t, "assignment_req", s_assignment_req_fields);

static const ds_field_t s_instance_event_fields[] = {
    DS_F_STR(ds_instance_event_t, name, DS_MAX_NAME),
    DS_F_STRUCT(ds_instance_event_t, instance, s_instance_desc),
};
static const ds_desc_t s_instance_event_desc =
    DS_DESC(ds_instance_event_t, "instance_event", s_instance_event_fields);

/* ---- admin messages ----------------------------------------------- */

static const ds_field_t s_deploy_fields[] = {
    DS_F_STR(ds_deploy_req_t, service, DS_MAX_NAME),
    DS_F_STRUCT(ds_deploy_req_t, spec, ds_spec_desc),
    DS_F_BOOL(ds_deploy_req_t, force),
    DS_F_BOOL(ds_deploy_req_t, dry_run),
};
static const ds_desc_t s_deploy_desc = DS_DESC(ds_deploy_req_t, "deploy", s_deploy_fields);

static const ds_field_t s_service_req_fields[] = {
    DS_F_STR(ds_service_req_t, service, DS_MAX_NAME),
    DS_F_U64(ds_service_req_t, to_version),
    DS_F_STR(ds_service_req_t, reason, DS_MAX_TEXT),
};
static const ds_desc_t s_rollback_desc =
    DS_DESC(ds_service_req_t, "rollback", s_service_req_fields);
static const ds_desc_t s_promote_desc = DS_DESC(ds_service_req_t, "promote", s_service_req_fields);
static const ds_desc_t s_pause_desc = DS_DESC(ds_service_req_t, "pause", s_service_req_fields);
static const ds_desc_t s_resume_desc = DS_DESC(ds_service_req_t, "resume", s_service_req_fields);
static const ds_desc_t s_abort_desc = DS_DESC(ds_service_req_t, "abort", s_service_req_fields);

static const ds_field_t s_op_reply_fields[] = {
    DS_F_STR(ds_op_reply_t, service, DS_MAX_NAME), DS_F_U64(ds_op_reply_t, version),
    DS_F_U64(ds_op_reply_t, deployment_id),        DS_F_STR(ds_op_reply_t, state, DS_MAX_NAME),
    DS_F_STR(ds_op_reply_t, message, DS_MAX_TEXT), DS_F_U64(ds_op_reply_t, index),
};
static const ds_desc_t s_op_reply_desc = DS_DESC(ds_op_reply_t, "op_reply", s_op_reply_fields);

static const ds_field_t s_query_fields[] = {
    DS_F_STR(ds_query_req_t, service, DS_MAX_NAME),
    DS_F_BOOL(ds_query_req_t, stale),
    DS_F_U32(ds_query_req_t, limit, DS_MAX_ROWS),
};
static const ds_desc_t s_status_desc = DS_DESC(ds_query_req_t, "status", s_query_fields);
static const ds_desc_t s_history_desc = DS_DESC(ds_query_req_t, "history", s_query_fields);
static const ds_desc_t s_workers_desc = DS_DESC(ds_query_req_t, "workers", s_query_fields);
static const ds_desc_t s_top_desc = DS_DESC(ds_query_req_t, "top", s_query_fields);
static const ds_desc_t s_cluster_status_desc =
    DS_DESC(ds_query_req_t, "cluster_status", s_query_fields);

static const ds_field_t s_deployment_fields[] = {
    DS_F_U64(ds_deployment_status_t, id),
    DS_F_U64(ds_deployment_status_t, version),
    DS_F_U64(ds_deployment_status_t, from_version),
    DS_F_STR(ds_deployment_status_t, state, DS_MAX_NAME),
    DS_F_STR(ds_deployment_status_t, reason, DS_MAX_TEXT),
    DS_F_U32(ds_deployment_status_t, wave, 0),
    DS_F_U32(ds_deployment_status_t, updated, 0),
    DS_F_U32(ds_deployment_status_t, healthy, 0),
    DS_F_U32(ds_deployment_status_t, total, 0),
    DS_F_U64(ds_deployment_status_t, started_at_ms),
    DS_F_U64(ds_deployment_status_t, updated_at_ms),
};
static const ds_desc_t s_deployment_desc =
    DS_DESC(ds_deployment_status_t, "deployment", s_deployment_fields);

static const ds_field_t s_instance_row_fields[] = {
    DS_F_STR(ds_instance_row_t, worker, DS_MAX_NAME),
    DS_F_U64(ds_instance_row_t, version),
    DS_F_STR(ds_instance_row_t, state, DS_MAX_NAME),
    DS_F_STR(ds_instance_row_t, health, DS_MAX_NAME),
    DS_F_U32(ds_instance_row_t, port, 65535),
    DS_F_U32(ds_instance_row_t, restarts, 0),
    DS_F_STR(ds_instance_row_t, reason, DS_MAX_TEXT),
};
static const ds_desc_t s_instance_row_desc =
    DS_DESC(ds_instance_row_t, "instance", s_instance_row_fields);

static const ds_field_t s_service_status_fields[] = {
    DS_F_STR(ds_service_status_t, service, DS_MAX_NAME),
    DS_F_U64(ds_service_status_t, current_version),
    DS_F_U64(ds_service_status_t, desired_version),
    DS_F_BOOL(ds_service_status_t, has_deployment),
    DS_F_STRUCT(ds_service_status_t, deployment, s_deployment_desc),
    DS_F_ARRAY(ds_service_status_t, instances, n_instances, s_instance_row_desc, DS_MAX_WORKERS),
};
static const ds_desc_t s_service_status_desc =
    DS_DESC(ds_service_status_t, "service", s_service_status_fields);

static const ds_field_t s_status_reply_fields[] = {
    DS_F_BOOL(ds_status_reply_t, insecure),
    DS_F_ARRAY(ds_status_reply_t, services, n_services, s_service_status_desc, DS_MAX_SERVICES),
};
static const ds_desc_t s_status_reply_desc =
    DS_DESC(ds_status_reply_t, "status_reply", s_status_reply_fields);

static const ds_field_t s_history_row_fields[] = {
    DS_F_U64(ds_history_row_t, seq),
    DS_F_U64(ds_history_row_t, version),
    DS_F_STR(ds_history_row_t, event, DS_MAX_NAME),
    DS_F_STR(ds_history_row_t, outcome, DS_MAX_NAME),
    DS_F_U64(ds_history_row_t, created_at_ms),
    DS_F_STR(ds_history_row_t, by, DS_MAX_LABEL),
    DS_F_STR(ds_history_row_t, reason, DS_MAX_TEXT),
};
static const ds_desc_t s_history_row_desc = DS_DESC(ds_history_row_t, "row", s_history_row_fields);

static const ds_field_t s_history_reply_fields[] = {
    DS_F_STR(ds_history_reply_t, service, DS_MAX_NAME),
    DS_F_ARRAY(ds_history_reply_t, rows, n_rows, s_history_row_desc, DS_MAX_ROWS),
};
static const ds_desc_t s_history_reply_desc =
    DS_DESC(ds_history_reply_t, "history_reply", s_history_reply_fields);

static const ds_field_t s_worker_row_fields[] = {
    DS_F_STR(ds_worker_row_t, name, DS_MAX_NAME),
    DS_F_STR(ds_worker_row_t, state, DS_MAX_NAME),
    DS_F_KVS(ds_worker_row_t, labels, n_labels, DS_MAX_LABELS),
    DS_F_U64(ds_worker_row_t, last_seen_ms),
    DS_F_U64(ds_worker_row_t, generation),
    DS_F_STR(ds_worker_row_t, software_version, DS_MAX_NAME),
    DS_F_STRUCT(ds_worker_row_t, telemetry, s_telemetry_desc),
};
static const ds_desc_t s_worker_row_desc = DS_DESC(ds_worker_row_t, "worker", s_worker_row_fields);

static const ds_field_t s_workers_reply_fields[] = {
    DS_F_ARRAY(ds_workers_reply_t, workers, n_workers, s_worker_row_desc, DS_MAX_WORKERS),
};
static const ds_desc_t s_workers_reply_desc =
    DS_DESC(ds_workers_reply_t, "workers_reply", s_workers_reply_fields);

static const ds_field_t s_top_service_fields[] = {
    DS_F_STR(ds_top_service_t, service, DS_MAX_NAME),
    DS_F_U64(ds_top_service_t, version),
    DS_F_U32(ds_top_service_t, instances, 0),
    DS_F_U32(ds_top_service_t, healthy, 0),
    DS_F_F64(ds_top_service_t, request_rate),
    DS_F_F64(ds_top_service_t, error_ratio),
    DS_F_F64(ds_top_service_t, p99_ms),
    DS_F_F64(ds_top_service_t, cpu_pct),
    DS_F_U64(ds_top_service_t, rss_kb),
};
static const ds_desc_t s_top_service_desc =
    DS_DESC(ds_top_service_t, "service", s_top_service_fields);

static const ds_field_t s_top_reply_fields[] = {
    DS_F_ARRAY(ds_top_reply_t, workers, n_workers, s_worker_row_desc, DS_MAX_WORKERS),
    DS_F_ARRAY(ds_top_reply_t, services, n_services, s_top_service_desc, DS_MAX_ROWS),
};
static const ds_desc_t s_top_reply_desc = DS_DESC(ds_top_reply_t, "top_reply", s_top_reply_fields);

static const ds_field_t s_events_fields[] = {
    DS_F_U64(ds_events_req_t, after_seq),
    DS_F_U32(ds_events_req_t, limit, DS_MAX_ROWS),
    DS_F_U32(ds_events_req_t, wait_ms, 60000),
};
static const ds_desc_t s_events_desc = DS_DESC(ds_events_req_t, "events", s_events_fields);

static const ds_field_t s_event_fields[] = {
    DS_F_U64(ds_event_t, seq),
    DS_F_U64(ds_event_t, ts_ms),
    DS_F_STR(ds_event_t, kind, DS_MAX_NAME),
    DS_F_STR(ds_event_t, service, DS_MAX_NAME),
    DS_F_STR(ds_event_t, message, DS_MAX_TEXT),
};
static const ds_desc_t s_event_desc = DS_DESC(ds_event_t, "event", s_event_fields);

static const ds_field_t s_events_reply_fields[] = {
    DS_F_ARRAY(ds_events_reply_t, events, n_events, s_event_desc, DS_MAX_ROWS),
};
static const ds_desc_t s_events_reply_desc =
    DS_DESC(ds_events_reply_t, "events_reply", s_events_reply_fields);

static const ds_field_t s_member_row_fields[] = {
    DS_F_U64(ds_member_row_t, id),
    DS_F_STR(ds_member_row_t, peer_endpoint, DS_MAX_ENDPOINT),
    DS_F_STR(ds_member_row_t, rpc_endpoint, DS_MAX_ENDPOINT),
    DS_F_STR(ds_member_row_t, role, DS_MAX_NAME),
    DS_F_U64(ds_member_row_t, match_index),
    DS_F_U64(ds_member_row_t, lag),
    DS_F_BOOL(ds_member_row_t, reachable),
};
static const ds_desc_t s_member_row_desc = DS_DESC(ds_member_row_t, "member", s_member_row_fields);

static const ds_field_t s_cluster_status_reply_fields[] = {
    DS_F_U64(ds_cluster_status_reply_t, leader),
    DS_F_U64(ds_cluster_status_reply_t, term),
    DS_F_U64(ds_cluster_status_reply_t, commit_index),
    DS_F_U64(ds_cluster_status_reply_t, applied_index),
    DS_F_ARRAY(ds_cluster_status_reply_t, members, n_members, s_member_row_desc, DS_MAX_MEMBERS),
};
static const ds_desc_t s_cluster_status_reply_desc =
    DS_DESC(ds_cluster_status_reply_t, "cluster_status_reply", s_cluster_status_reply_fields);

static const ds_field_t s_transfer_fields[] = {DS_F_U64(ds_transfer_req_t, target)};
static const ds_desc_t s_transfer_desc =
    DS_DESC(ds_transfer_req_t, "cluster_transfer", s_transfer_fields);

static const ds_field_t s_member_req_fields[] = {
    DS_F_U64(ds_member_req_t, id),
    DS_F_STR(ds_member_req_t, peer_endpoint, DS_MAX_ENDPOINT),
    DS_F_STR(ds_member_req_t, rpc_endpoint, DS_MAX_ENDPOINT),
};
static const ds_desc_t s_cluster_add_desc =
    DS_DESC(ds_member_req_t, "cluster_add", s_member_req_fields);
static const ds_desc_t s_cluster_remove_desc =
    DS_DESC(ds_member_req_t, "cluster_remove", s_member_req_fields);

static const ds_field_t s_kv_put_fields[] = {
    DS_F_STR(ds_kv_put_t, key, DS_MAX_KV_KEY),
    DS_F_BYTES(ds_kv_put_t, value, DS_MAX_KV_VALUE),
};
static const ds_desc_t s_kv_put_desc = DS_DESC(ds_kv_put_t, "kv_put", s_kv_put_fields);

static const ds_field_t s_kv_get_fields[] = {
    DS_F_STR(ds_kv_get_t, key, DS_MAX_KV_KEY),
    DS_F_BOOL(ds_kv_get_t, stale),
};
static const ds_desc_t s_kv_get_desc = DS_DESC(ds_kv_get_t, "kv_get", s_kv_get_fields);

static const ds_field_t s_kv_reply_fields[] = {
    DS_F_STR(ds_kv_reply_t, key, DS_MAX_KV_KEY),
    DS_F_BOOL(ds_kv_reply_t, found),
    DS_F_BYTES(ds_kv_reply_t, value, DS_MAX_KV_VALUE),
    DS_F_U64(ds_kv_reply_t, index),
    DS_F_U64(ds_kv_reply_t, version),
    DS_F_U64(ds_kv_reply_t, mod_index),
};
static const ds_desc_t s_kv_reply_desc = DS_DESC(ds_kv_reply_t, "kv_reply", s_kv_reply_fields);

static const ds_field_t s_token_create_fields[] = {
    DS_F_STR(ds_token_create_t, id, DS_MAX_NAME),
    DS_F_STR(ds_token_create_t, secret, DS_MAX_NAME),
    DS_F_U64(ds_token_create_t, ttl_ms),
    DS_F_U32(ds_token_create_t, uses, 0),
    DS_F_KVS(ds_token_create_t, labels, n_labels, DS_MAX_LABELS),
};
static const ds_desc_t s_token_create_desc =
    DS_DESC(ds_token_create_t, "token_create", s_token_create_fields);

static const ds_field_t s_token_revoke_fields[] = {DS_F_STR(ds_token_revoke_t, id, DS_MAX_NAME)};
static const ds_desc_t s_token_revoke_desc =
    DS_DESC(ds_token_revoke_t, "token_revoke", s_token_revoke_fields);

static const ds_desc_t s_token_list_desc = DS_DESC(ds_query_req_t, "token_list", s_query_fields);

static const ds_field_t s_token_row_fields[] = {
    DS_F_STR(ds_token_row_t, id, DS_MAX_NAME),
    DS_F_U64(ds_token_row_t, created_at_ms),
    DS_F_U64(ds_token_row_t, expires_at_ms),
    DS_F_U32(ds_token_row_t, uses, 0),
    DS_F_U32(ds_token_row_t, used, 0),
    DS_F_BOOL(ds_token_row_t, revoked),
    DS_F_STR(ds_token_row_t, created_by, DS_MAX_NAME),
    DS_F_KVS(ds_token_row_t, labels, n_labels, DS_MAX_LABELS),
};
static const ds_desc_t s_token_row_desc = DS_DESC(ds_token_row_t, "token", s_token_row_fields);

static const ds_field_t s_token_list_reply_fields[] = {
    DS_F_ARRAY(ds_token_list_reply_t, tokens, n_tokens, s_token_row_desc, DS_MAX_ROWS),
};
static const ds_desc_t s_token_list_reply_desc =
    DS_DESC(ds_token_list_reply_t, "token_list_reply", s_token_list_reply_fields);

static const ds_field_t s_worker_remove_fields[] = {
    DS_F_STR(ds_worker_remove_t, name, DS_MAX_NAME)};
static const ds_desc_t s_worker_remove_desc =
    DS_DESC(ds_worker_remove_t, "worker_remove", s_worker_remove_fields);

static const ds_field_t s_peer_hello_fields[] = {
    DS_F_U64(ds_peer_hello_t, id),
    DS_F_STR(ds_peer_hello_t, rpc_endpoint, DS_MAX_ENDPOINT),
    DS_F_STR(ds_peer_hello_t, http_endpoint, DS_MAX_ENDPOINT),
    DS_F_STR(ds_peer_hello_t, software_version, DS_MAX_NAME),
};
static const ds_desc_t s_peer_hello_desc =
    DS_DESC(ds_peer_hello_t, "peer_hello", s_peer_hello_fields);

static const ds_field_t s_error_fields[] = {
    DS_F_I64(ds_error_reply_t, code),
    DS_F_STR(ds_error_reply_t, message, DS_MAX_TEXT),
};
static const ds_desc_t s_error_desc = DS_DESC(ds_error_reply_t, "error", s_error_fields);

static const ds_field_t s_not_leader_fields[] = {
    DS_F_U64(ds_not_leader_t, leader_id),
    DS_F_STR(ds_not_leader_t, leader_rpc, DS_MAX_ENDPOINT),
    DS_F_U64(ds_not_leader_t, term),
};
static const ds_desc_t s_not_leader_desc =
    DS_DESC(ds_not_leader_t, "not_leader", s_not_leader_fields);

/* ---- the catalog --------------------------------------------------- */

typedef struct {
    uint16_t type;
    ds_msg_family_t family;
    const ds_desc_t *desc;
} s_entry_t;

static const s_entry_t s_catalog[] = {
    {DS_RAFT_PREVOTE, DS_FAMILY_PEER, &s_prevote_desc},
    {DS_RAFT_PREVOTE_RESP, DS_FAMILY_PEER, &s_prevote_resp_desc},
    {DS_RAFT_VOTE, DS_FAMILY_PEER, &s_vote_desc},
    {DS_RAFT_VOTE_RESP, DS_FAMILY_PEER, &s_vote_resp_desc},
    {DS_RAFT_APPEND, DS_FAMILY_PEER, &s_append_desc},
    {DS_RAFT_APPEND_RESP, DS_FAMILY_PEER, &s_append_resp_desc},
    {DS_RAFT_SNAPSHOT, DS_FAMILY_PEER, &s_snapshot_desc},
    {DS_RAFT_SNAPSHOT_RESP, DS_FAMILY_PEER, &s_snapshot_resp_desc},
    {DS_RAFT_TIMEOUT_NOW, DS_FAMILY_PEER, &s_timeout_now_desc},
    {DS_RAFT_HEARTBEAT, DS_FAMILY_PEER, &s_heartbeat_desc},
    {DS_RAFT_HEARTBEAT_RESP, DS_FAMILY_PEER, &s_heartbeat_resp_desc},
    {DS_MSG_PEER_HELLO, DS_FAMILY_PEER, &s_peer_hello_desc},
    {DS_MSG_JOIN, DS_FAMILY_WORKER, &ds_join_req_desc},
    {DS_MSG_JOIN_REPLY, DS_FAMILY_REPLY, &s_join_reply_desc},
    {DS_MSG_HEARTBEAT, DS_FAMILY_WORKER, &s_heartbeat_w_desc},
    {DS_MSG_HEARTBEAT_REPLY, DS_FAMILY_REPLY, &s_heartbeat_reply_desc},
    {DS_MSG_ASSIGNMENT_REQ, DS_FAMILY_WORKER, &s_assignment_req_desc},
    {DS_MSG_ASSIGNMENT, DS_FAMILY_REPLY, &s_assignment_desc},
    {DS_MSG_INSTANCE_EVENT, DS_FAMILY_WORKER, &s_instance_event_desc},
    {DS_MSG_DEPLOY, DS_FAMILY_ADMIN, &s_deploy_desc},
    {DS_MSG_ROLLBACK, DS_FAMILY_ADMIN, &s_rollback_desc},
    {DS_MSG_PROMOTE, DS_FAMILY_ADMIN, &s_promote_desc},
    {DS_MSG_PAUSE, DS_FAMILY_ADMIN, &s_pause_desc},
    {DS_MSG_RESUME, DS_FAMILY_ADMIN, &s_resume_desc},
    {DS_MSG_ABORT, DS_FAMILY_ADMIN, &s_abort_desc},
    {DS_MSG_OP_REPLY, DS_FAMILY_REPLY, &s_op_reply_desc},
    {DS_MSG_STATUS, DS_FAMILY_VIEW, &s_status_desc},
    {DS_MSG_STATUS_REPLY, DS_FAMILY_REPLY, &s_status_reply_desc},
    {DS_MSG_HISTORY, DS_FAMILY_VIEW, &s_history_desc},
    {DS_MSG_HISTORY_REPLY, DS_FAMILY_REPLY, &s_history_reply_desc},
    {DS_MSG_WORKERS, DS_FAMILY_VIEW, &s_workers_desc},
    {DS_MSG_WORKERS_REPLY, DS_FAMILY_REPLY, &s_workers_reply_desc},
    {DS_MSG_TOP, DS_FAMILY_VIEW, &s_top_desc},
    {DS_MSG_TOP_REPLY, DS_FAMILY_REPLY, &s_top_reply_desc},
    {DS_MSG_EVENTS, DS_FAMILY_VIEW, &s_events_desc},
    {DS_MSG_EVENTS_REPLY, DS_FAMILY_REPLY, &s_events_reply_desc},
    {DS_MSG_CLUSTER_STATUS, DS_FAMILY_VIEW, &s_cluster_status_desc},
    {DS_MSG_CLUSTER_STATUS_REPLY, DS_FAMILY_REPLY, &s_cluster_status_reply_desc},
    {DS_MSG_CLUSTER_TRANSFER, DS_FAMILY_ADMIN, &s_transfer_desc},
    {DS_MSG_CLUSTER_ADD, DS_FAMILY_ADMIN, &s_cluster_add_desc},
    {DS_MSG_CLUSTER_REMOVE, DS_FAMILY_ADMIN, &s_cluster_remove_desc},
    {DS_MSG_KV_PUT, DS_FAMILY_ADMIN, &s_kv_put_desc},
    {DS_MSG_KV_GET, DS_FAMILY_VIEW, &s_kv_get_desc},
    {DS_MSG_KV_REPLY, DS_FAMILY_REPLY, &s_kv_reply_desc},
    {DS_MSG_TOKEN_CREATE, DS_FAMILY_ADMIN, &s_token_create_desc},
    {DS_MSG_TOKEN_REVOKE, DS_FAMILY_ADMIN, &s_token_revoke_desc},
    {DS_MSG_TOKEN_LIST, DS_FAMILY_VIEW, &s_token_list_desc},
    {DS_MSG_TOKEN_LIST_REPLY, DS_FAMILY_REPLY, &s_token_list_reply_desc},
    {DS_MSG_WORKER_REMOVE, DS_FAMILY_ADMIN, &s_worker_remove_desc},
    {DS_MSG_ERROR, DS_FAMILY_REPLY, &s_error_desc},
    {DS_MSG_NOT_LEADER, DS_FAMILY_REPLY, &s_not_leader_desc},
};

static const s_entry_t *s_lookup(uint16_t type)
{
    for (size_t i = 0; i < sizeof s_catalog / sizeof s_catalog[0]; i++)
        if (s_catalog[i].type == type)
            return &s_catalog[i];
    return NULL;
}

const ds_desc_t *ds_msg_desc(uint16_t type)
{
    const s_entry_t *e = s_lookup(type);
    return e ? e->desc : NULL;
}

ds_msg_family_t ds_msg_family(uint16_t type)
{
    const s_entry_t *e = s_lookup(type);
    return e ? e->family : DS_FAMILY_NONE;
}

const char *ds_msg_type_name(uint16_t type)
{
    const s_entry_t *e = s_lookup(type);
    return e ? e->desc->name : "unknown";
}

/*  Raft bodies are one struct for many types; their `type` member is not
    on the wire (the envelope carries it), so fill it in after decoding. */
static void s_set_raft_type(uint16_t type, void *body)
{
    if (ds_msg_family(type) == DS_FAMILY_PEER && type != DS_MSG_PEER_HELLO)
        ((ds_raft_msg_t *)body)->type = type;
}

int ds_msg_encode(const ds_envelope_t *env, const void *body, ds_buf_t *env_out, ds_buf_t *body_out,
                  ds_codec_err_t *err)
{
    assert(env && body && env_out && body_out);
    const ds_desc_t *desc = ds_msg_desc(env->type);
    if (!desc) {
        if (err) {
            err->code = DS_EUNKNOWN;
            snprintf(err->text, sizeof err->text, "envelope.type: %u is not a message type",
                     env->type);
        }
        return DS_EUNKNOWN;
    }
    int rc = ds_codec_encode(&s_envelope_desc, env, env_out, err);
    if (rc == 0)
        rc = ds_codec_encode(desc, body, body_out, err);
    return rc;
}

static int s_envelope_check(const ds_envelope_t *env, ds_codec_err_t *err)
{
    int code = 0;
    if (env->version != DS_PROTOCOL_VERSION)
        code = DS_EVERSION;
    else if (!ds_msg_desc(env->type))
        code = DS_EUNKNOWN;
    if (code && err) {
        err->code = code;
        if (code == DS_EVERSION)
            snprintf(err->text, sizeof err->text,
                     "envelope.version: protocol %u is not supported (this build speaks %u)",
                     env->version, DS_PROTOCOL_VERSION);
        else
            snprintf(err->text, sizeof err->text, "envelope.type: %u is not a message type",
                     env->type);
    }
    return code;
}

/*  Reads the version and type before the rest, so that an envelope of
    another protocol version is refused as such whatever its layout. */
static int s_envelope_peek(const void *data, size_t len, ds_envelope_t *env, ds_codec_err_t *err)
{
    ds_mp_reader_t r;
    uint32_t n;
    uint64_t version, type;
    ds_mp_reader_init(&r, data, len);
    if (ds_mp_read_array(&r, &n, DS_MAX_FIELDS) != 0 || n < 1 || ds_mp_read_uint(&r, &version) != 0)
        return 0; /* malformed: the full decode says how */
    env->version = version > UINT8_MAX ? UINT8_MAX : (uint8_t)version;
    env->type = 0;
    if (version != DS_PROTOCOL_VERSION)
        return s_envelope_check(env, err);
    if (n >= 2 && ds_mp_read_uint(&r, &type) == 0 && type > UINT16_MAX) {
        if (err) {
            err->code = DS_EUNKNOWN;
            snprintf(err->text, sizeof err->text, "envelope.type: %llu is not a message type",
                     (unsigned long long)type);
        }
        return DS_EUNKNOWN;
    }
    return 0;
}

int ds_envelope_decode(const void *data, size_t len, ds_envelope_t *env, ds_arena_t *arena,
                       ds_codec_err_t *err)
{
    assert(env && arena);
    int rc = s_envelope_peek(data, len, env, err);
    if (rc != 0)
        return rc;
    rc = ds_codec_decode(&s_envelope_desc, data, len, env, arena, err);
    return rc != 0 ? rc : s_envelope_check(env, err);
}

/*  The largest body struct, which bounds the memory one input byte can
    make the decoder use (see ds_codec_arena_cap). */
static size_t s_max_struct_size(void)
{
    size_t m = sizeof(ds_spec_t) + sizeof(ds_raft_msg_t);
    for (size_t i = 0; i < sizeof s_catalog / sizeof s_catalog[0]; i++)
        if (s_catalog[i].desc->size > m)
            m = s_catalog[i].desc->size;
    return m; /* computed each time: cheap, and no shared state between threads */
}

int ds_msg_decode(const void *env_data, size_t env_len, const void *body_data, size_t body_len,
                  ds_msg_t **out, ds_codec_err_t *err)
{
    assert(out);
    *out = NULL;
    if (env_len > DS_MAX_MSG_SIZE || body_len > DS_MAX_MSG_SIZE) {
        if (err) {
            err->code = DS_ETOOBIG;
            snprintf(err->text, sizeof err->text, "message of %zu bytes exceeds %u",
                     env_len > body_len ? env_len : body_len, DS_MAX_MSG_SIZE);
        }
        return DS_ETOOBIG;
    }
    ds_msg_t *msg = calloc(1, sizeof *msg);
    if (!msg)
        return DS_ENOMEM;
    int rc = DS_ENOMEM;
    msg->arena = ds_arena_new(ds_codec_arena_cap(env_len + body_len, s_max_struct_size()));
    if (!msg->arena)
        goto err_free;
    rc = ds_envelope_decode(env_data, env_len, &msg->env, msg->arena, err);
    if (rc != 0)
        goto err_free;
    const ds_desc_t *desc = ds_msg_desc(msg->env.type);
    rc = DS_ENOMEM;
    if (!(msg->body = ds_arena_alloc(msg->arena, desc->size)))
        goto err_free;
    rc = ds_codec_decode(desc, body_data, body_len, msg->body, msg->arena, err);
    if (rc != 0)
        goto err_free;
    s_set_raft_type(msg->env.type, msg->body);
    *out = msg;
    return 0;
err_free:
    ds_msg_destroy(&msg);
    return rc;
}

void ds_msg_destroy(ds_msg_t **self_p)
{
    assert(self_p);
    ds_msg_t *self = *self_p;
    if (!self)
        return;
    ds_arena_destroy(&self->arena);
    free(self);
    *self_p = NULL;
}

static const char *const s_inst_names[] = {
    [DS_INST_PENDING] = "pending", [DS_INST_STAGING] = "staging",   [DS_INST_STARTING] = "starting",
    [DS_INST_RUNNING] = "running", [DS_INST_STOPPING] = "stopping", [DS_INST_STOPPED] = "stopped",
    [DS_INST_CRASHED] = "crashed", [DS_INST_FAILED] = "failed",
};

static const char *const s_health_names[] = {
    [DS_HEALTH_UNKNOWN] = "unknown",
    [DS_HEALTH_PASSING] = "passing",
    [DS_HEALTH_FAILING] = "failing",
};

const char *ds_inst_state_name(int state)
{
    return state >= 0 && state <= DS_INST_STATE_MAX ? s_inst_names[state] : "unknown";
}

const char *ds_health_state_name(int health)
{
    return health >= 0 && health <= DS_HEALTH_STATE_MAX ? s_health_names[health] : "unknown";
}
