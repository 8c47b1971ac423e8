/*  coordinator/node_metrics.c - /metrics in the Prometheus text format
    (version 0.0.4): Raft, the rpc endpoint, workers, deployments,
    services per version (from the telemetry windows), telemetry memory
    and the process. Everything but Raft and the process is the leader's
    view; a follower reports what it has applied and no telemetry. */
#include "coordinator/node_impl.h"

#include "coordinator/release_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "storage/state.h"

#include <dirent.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

static const double s_bounds_s[DS_NODE_LATENCY_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,   0.25,  0.5,  1.0,   5.0};

void ds_node_metrics_reply(ds_node_t *self, const ds_caller_t *to, uint16_t reply_type)
{
    ds_node_metrics_t *m = &self->metrics;
    uint8_t type = (uint8_t)to->type;
    m->requests[type]++;
    if (reply_type == DS_MSG_ERROR)
        m->errors[type]++;
    if (!to->received_ms)
        return;
    uint64_t now = ds_clock_mono_ms();
    double s = now > to->received_ms ? (double)(now - to->received_ms) / 1000.0 : 0.0;
    for (uint32_t i = 0; i < DS_NODE_LATENCY_BUCKETS; i++)
        if (s <= s_bounds_s[i])
            m->latency_le[i]++;
    m->latency_count++;
    m->latency_sum_s += s;
}

static void s_head(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*  A label value: backslash, double quote and newline escaped. */
static void s_label(FILE *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', out);
        if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

/* ---- Raft -------------------------------------------------------------------- */

static void s_raft(ds_node_t *self, FILE *out)
{
    ds_raft_t *raft = ds_replica_raft(self->replica);
    ds_raft_status_t st;
    ds_raft_status(raft, &st);
    s_head(out, "gossamer_raft_term", "gauge", "Current Raft term.");
    fprintf(out, "gossamer_raft_term %" PRIu64 "\n", st.term);
    s_head(out, "gossamer_raft_leader", "gauge", "Id of the known leader, 0 if none.");
    fprintf(out, "gossamer_raft_leader %" PRIu64 "\n", st.lead);
    s_head(out, "gossamer_raft_is_leader", "gauge", "1 if this member leads.");
    fprintf(out, "gossamer_raft_is_leader %d\n", st.role == DS_RAFT_LEADER);
    s_head(out, "gossamer_raft_commit_index", "gauge", "Highest committed log index.");
    fprintf(out, "gossamer_raft_commit_index %" PRIu64 "\n", st.commit);
    s_head(out, "gossamer_raft_applied_index", "gauge", "Highest applied log index.");
    fprintf(out, "gossamer_raft_applied_index %" PRIu64 "\n", ds_replica_applied(self->replica));
    s_head(out, "gossamer_raft_elections_total", "counter", "Elections this member started.");
    fprintf(out, "gossamer_raft_elections_total %" PRIu64 "\n", self->elections);
    if (st.role != DS_RAFT_LEADER)
        return;
    s_head(out, "gossamer_raft_follower_lag", "gauge",
           "Entries a follower is behind the leader's last index (leader only).");
    for (uint32_t i = 0; i < self->n_peers; i++) {
        ds_raft_peer_status_t ps;
        uint64_t id = self->peers[i].id;
        if (id == self->cfg.id || ds_raft_peer_status(raft, id, &ps) != 0)
            continue;
        fprintf(out, "gossamer_raft_follower_lag{member=\"%" PRIu64 "\"} %" PRIu64 "\n", id,
                ps.match < st.last_index ? st.last_index - ps.match : 0);
    }
}

/* ---- rpc ----------------------------------------------------------------------- */

static void s_rpc(const ds_node_t *self, FILE *out)
{
    const ds_node_metrics_t *m = &self->metrics;
    s_head(out, "gossamer_rpc_requests_total", "counter", "Requests answered, by type.");
    for (unsigned t = 0; t < 256; t++)
        if (m->requests[t])
            fprintf(out, "gossamer_rpc_requests_total{type=\"%s\"} %" PRIu64 "\n",
                    ds_msg_type_name((uint16_t)t), m->requests[t]);
    s_head(out, "gossamer_rpc_errors_total", "counter", "Requests answered with an error.");
    for (unsigned t = 0; t < 256; t++)
        if (m->errors[t])
            fprintf(out, "gossamer_rpc_errors_total{type=\"%s\"} %" PRIu64 "\n",
                    ds_msg_type_name((uint16_t)t), m->errors[t]);
    s_head(out, "gossamer_rpc_latency_seconds", "histogram",
           "Time from a request's arrival to its answer.");
    for (uint32_t i = 0; i < DS_NODE_LATENCY_BUCKETS; i++)
        fprintf(out, "gossamer_rpc_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", s_bounds_s[i],
                m->latency_le[i]);
    fprintf(out, "gossamer_rpc_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
            m->latency_count);
    fprintf(out, "gossamer_rpc_latency_seconds_sum %.6f\n", m->latency_sum_s);
    fprintf(out, "gossamer_rpc_latency_seconds_count %" PRIu64 "\n", m->latency_count);
}

/* ---- workers and deployments (applied state + soft state) ----------------------- */

typedef struct {
    ds_node_t *self;
    uint64_t up, down, unknown;
    uint64_t by_state[DS_ROLLOUT_STATE_MAX + 1];
    ds_arena_t *arena;
} s_count_t;

static int s_count_worker(void *ctx, const ds_worker_record_t *w)
{
    s_count_t *c = ctx;
    const ds_soft_worker_t *soft = ds_node_soft_worker(c->self, w->name);
    if (!soft)
        c->unknown++;
    else if (soft->up)
        c->up++;
    else
        c->down++;
    return 0;
}

static int s_count_deployment(void *ctx, const ds_state_row_t *row)
{
    s_count_t *c = ctx;
    ds_deployment_t dep;
    if (ds_codec_decode(&ds_deployment_desc, row->val, row->len, &dep, c->arena, NULL) != 0)
        return 0;
    if (dep.state <= DS_ROLLOUT_STATE_MAX)
        c->by_state[dep.state]++;
    return 0;
}

static int s_count(ds_txn_t *txn, void *ctx)
{
    int rc = ds_worker_state_list(txn, s_count_worker, ctx);
    return rc ? rc : ds_state_list(txn, DS_TABLE_DEPLOYMENTS, s_count_deployment, ctx);
}

static void s_state(ds_node_t *self, FILE *out)
{
    s_count_t c = {.self = self, .arena = ds_arena_new(64u * 1024 * 1024)};
    if (!c.arena || ds_store_read(ds_replica_store(self->replica), s_count, &c) != 0) {
        ds_arena_destroy(&c.arena);
        return;
    }
    ds_arena_destroy(&c.arena);
    s_head(out, "gossamer_workers", "gauge",
           "Registered workers by state (leader: up or down; unknown before their first "
           "heartbeat to this member).");
    fprintf(out, "gossamer_workers{state=\"up\"} %" PRIu64 "\n", c.up);
    fprintf(out, "gossamer_workers{state=\"down\"} %" PRIu64 "\n", c.down);
    fprintf(out, "gossamer_workers{state=\"unknown\"} %" PRIu64 "\n", c.unknown);
    s_head(out, "gossamer_deployments", "gauge", "Latest deployment of each service, by state.");
    for (int s = 0; s <= DS_ROLLOUT_STATE_MAX; s++)
        fprintf(out, "gossamer_deployments{state=\"%s\"} %" PRIu64 "\n", ds_rollout_state_name(s),
                c.by_state[s]);
}

/* ---- services per version (telemetry) ---------------------------------------------- */

typedef struct {
    FILE *out;
    int field;
} s_series_t;

static const struct {
    const char *name, *help;
} s_service_metrics[] = {
    {"gossamer_service_instances", "Instances reporting the version in the last minute."},
    {"gossamer_service_health_ratio", "Health checks passing / checked, last minute."},
    {"gossamer_service_request_rate", "Requests per second, last minute."},
    {"gossamer_service_error_ratio", "Failed requests / requests, last minute."},
    {"gossamer_service_latency_p99_seconds", "Request latency p99, last minute."},
};

static double s_service_value(const ds_telemetry_stats_t *s, int field)
{
    switch (field) {
    case 0:
        return s->instances;
    case 1:
        return s->health_ratio;
    case 2:
        return s->request_rate;
    case 3:
        return s->error_ratio;
    default:
        return s->latency_p99_ms / 1000.0;
    }
}

static int s_service_row(void *ctx, const ds_telemetry_key_t *key, const ds_telemetry_stats_t *s)
{
    s_series_t *x = ctx;
    fprintf(x->out, "%s{service=\"", s_service_metrics[x->field].name);
    s_label(x->out, key->service);
    fprintf(x->out, "\",version=\"%" PRIu64 "\"} %g\n", key->version, s_service_value(s, x->field));
    return 0;
}

static void s_services(ds_node_t *self, FILE *out)
{
    uint64_t now = ds_clock_wall_ms();
    for (int f = 0; f < (int)(sizeof s_service_metrics / sizeof s_service_metrics[0]); f++) {
        s_head(out, s_service_metrics[f].name, "gauge", s_service_metrics[f].help);
        s_series_t x = {out, f};
        (void)ds_telemetry_each(self->telemetry, DS_TELEMETRY_SERVICE, 0, now, s_service_row, &x);
    }
    ds_telemetry_usage_t u;
    ds_telemetry_usage(self->telemetry, &u);
    s_head(out, "gossamer_telemetry_series", "gauge", "Telemetry series kept.");
    fprintf(out, "gossamer_telemetry_series %" PRIu32 "\n", u.series);
    s_head(out, "gossamer_telemetry_max_series", "gauge", "Limit of series (--telemetry-series).");
    fprintf(out, "gossamer_telemetry_max_series %" PRIu32 "\n", u.max_series);
    s_head(out, "gossamer_telemetry_evicted_total", "counter", "Series dropped at the limit.");
    fprintf(out, "gossamer_telemetry_evicted_total %" PRIu64 "\n", u.evicted);
    s_head(out, "gossamer_telemetry_bytes", "gauge", "Memory the aggregator holds.");
    fprintf(out, "gossamer_telemetry_bytes %" PRIu64 "\n", u.bytes);
}

/* ---- the process ----------------------------------------------------------------- */

static void s_process(FILE *out)
{
    unsigned long utime = 0, stime = 0;
    long rss_pages = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (f) {
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
        if (p && sscanf(p + 2,
                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d "
                        "%*d %*d %*d %*u %*u %ld",
                        &utime, &stime, &rss_pages) != 3)
            utime = stime = 0, rss_pages = 0;
        fclose(f);
    }
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned fds = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        fds += e->d_name[0] != '.';
    if (d)
        closedir(d);
    s_head(out, "gossamer_process_cpu_seconds_total", "counter", "User and system CPU time.");
    fprintf(out, "gossamer_process_cpu_seconds_total %.2f\n",
            tck > 0 ? (double)(utime + stime) / (double)tck : 0.0);
    s_head(out, "gossamer_process_resident_memory_bytes", "gauge", "Resident memory.");
    fprintf(out, "gossamer_process_resident_memory_bytes %ld\n", rss_pages * (page > 0 ? page : 0));
    s_head(out, "gossamer_process_open_fds", "gauge", "Open file descriptors.");
    fprintf(out, "gossamer_process_open_fds %u\n", fds > 0 ? fds - 1 : 0); /* less the listing's */
}

void ds_node_metrics_write(ds_node_t *self, FILE *out)
{
    s_raft(self, out);
    s_rpc(self, out);
    s_state(self, out);
    s_services(self, out);
    s_process(out);
    if (self->http) {
        s_head(out, "gossamer_http_connections", "gauge",
               "Open connections to this http endpoint (the one being answered included).");
        fprintf(out, "gossamer_http_connections %zu\n", ds_httpd_connections(self->http));
    }
}
