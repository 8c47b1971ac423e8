/*  coordinator/config.c - dscoord's settings table and checks. */
#include "coordinator/config.h"

#include "protocol/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C ds_coord_config_t
const ds_option_t ds_coord_options[] = {
    {"id", DS_OPT_U32, offsetof(C, id), 0, 1, 1000000, NULL, "N",
     "this member's id: one of the ids in --peers"},
    {"data", DS_OPT_STR, offsetof(C, data), sizeof(((C *)0)->data), 0, 0, NULL, "DIR",
     "data directory: wal/ (Raft log), LMDB (state), snap/ (snapshot image); mode 0700"},
    {"peers", DS_OPT_LIST, offsetof(C, peers), sizeof(((C *)0)->peers), 0, 0, NULL,
     "ID=ENDPOINT,...",
     "the initial members and their peer endpoints, e.g. 1=tcp://127.0.0.1:7402,2=..."},
    {"rpc", DS_OPT_STR, offsetof(C, rpc), sizeof(((C *)0)->rpc), 0, 0, NULL, "ENDPOINT",
     "where workers and dsctl reach this member, e.g. tcp://127.0.0.1:7401; advertised to "
     "the other members"},
    {"http", DS_OPT_STR, offsetof(C, http), sizeof(((C *)0)->http), 0, 0, "", "HOST:PORT",
     "read-only HTTP endpoint (health, metrics); a bare PORT or :PORT listens on 127.0.0.1 "
     "only; empty = off"},
    {"keys", DS_OPT_STR, offsetof(C, keys), sizeof(((C *)0)->keys), 0, 0, NULL, "DIR",
     "CURVE keys and allow-lists (made by `dscoord bootstrap-keys DIR`): this member serves "
     "with DIR/private/cluster.key and joins its peers with DIR/private/coord-ID.key; "
     "required unless --insecure"},
    {"insecure", DS_OPT_BOOL, offsetof(C, insecure), 0, 0, 0, NULL, NULL,
     "no CURVE: plain ZeroMQ, no authentication, for a local experiment only"},
    {"heartbeat-ms", DS_OPT_U32, offsetof(C, heartbeat_ms), 0, 5, 60000, "50", "MS",
     "leader heartbeat interval"},
    {"election-ms", DS_OPT_U32, offsetof(C, election_ms), 0, 20, 600000, "400", "MS",
     "election timeout; randomized between 1x and 2x"},
    {"tick-ms", DS_OPT_U32, offsetof(C, tick_ms), 0, 1, 1000, "10", "MS",
     "Raft clock tick; heartbeat and election are rounded to it"},
    {"snapshot-entries", DS_OPT_U32, offsetof(C, snapshot_entries), 0, 16, 100000000, "8192", "N",
     "a snapshot (log compaction) comes at least N applied entries after the last one"},
    {"snapshot-log-percent", DS_OPT_U32, offsetof(C, snapshot_log_percent), 0, 0, 100000, "100",
     "P",
     "and once those entries' data reach P % of the last snapshot image's size (or 64 MiB), so "
     "that a large state is not exported over and over; 0 = by entry count alone"},
    {"worker-heartbeat", DS_OPT_DURATION, offsetof(C, worker_heartbeat_ms), 0, 100, 60000, "1s",
     "DUR", "how often workers send heartbeats (told to each worker when it joins)"},
    {"worker-timeout", DS_OPT_DURATION, offsetof(C, worker_timeout_ms), 0, 500, 3600000, "10s",
     "DUR", "a worker silent this long is marked down; it comes back by heartbeating"},
    {"telemetry-series", DS_OPT_U32, offsetof(C, telemetry_series), 0, 16, 1000000, "10000", "N",
     "telemetry series (per worker, instance and service version) kept at most; the least "
     "recently updated go first (reported in /metrics)"},
    {"log-level", DS_OPT_STR, offsetof(C, log_level), sizeof(((C *)0)->log_level), 0, 0, "info",
     "LEVEL", "debug, info, warn or error"},
};
#undef C
const size_t ds_coord_n_options = sizeof ds_coord_options / sizeof ds_coord_options[0];

#define s_err(err, errlen, ...) ds_errf((err), (errlen), DS_EINVAL, __VA_ARGS__)

static int s_parse_member(const char *item, size_t len, ds_member_t *m, char *err, size_t errlen)
{
    const char *eq = memchr(item, '=', len);
    if (!eq || eq == item || (size_t)(eq - item) > 7)
        return s_err(err, errlen, "--peers: \"%.*s\" is not ID=ENDPOINT", (int)len, item);
    char idtext[8] = {0};
    memcpy(idtext, item, (size_t)(eq - item));
    char *end;
    errno = 0;
    unsigned long id = strtoul(idtext, &end, 10);
    if (*end || errno || id == 0 || !isdigit((unsigned char)idtext[0]))
        return s_err(err, errlen, "--peers: \"%s\" is not a member id (a number from 1)", idtext);
    size_t elen = len - (size_t)(eq + 1 - item);
    if (elen == 0 || elen > DS_MAX_ENDPOINT)
        return s_err(err, errlen, "--peers: member %lu has no valid endpoint", id);
    m->id = id;
    memcpy(m->peer, eq + 1, elen);
    m->peer[elen] = '\0';
    if (strncmp(m->peer, "tcp://", 6) != 0 && strncmp(m->peer, "ipc://", 6) != 0)
        return s_err(err, errlen, "--peers: \"%s\" is not a tcp:// or ipc:// endpoint", m->peer);
    return 0;
}

int ds_coord_parse_peers(const char *text, ds_member_t *out, uint32_t *n, char *err, size_t errlen)
{
    *n = 0;
    while (*text) {
        const char *comma = strchr(text, ',');
        size_t len = comma ? (size_t)(comma - text) : strlen(text);
        if (*n == DS_MAX_MEMBERS)
            return s_err(err, errlen, "--peers: more than %u members", DS_MAX_MEMBERS);
        ds_member_t m = {0};
        int rc = s_parse_member(text, len, &m, err, errlen);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < *n; i++)
            if (out[i].id == m.id)
                return s_err(err, errlen, "--peers: member %llu is listed twice",
                             (unsigned long long)m.id);
        out[(*n)++] = m;
        text += len + (comma ? 1 : 0);
    }
    return *n ? 0 : s_err(err, errlen, "--peers is required (ID=ENDPOINT,...)");
}

const char *ds_coord_member_peer(const ds_coord_config_t *cfg, uint64_t id)
{
    for (uint32_t i = 0; i < cfg->n_members; i++)
        if (cfg->members[i].id == id)
            return cfg->members[i].peer;
    return NULL;
}

int ds_coord_config_finish(ds_coord_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->id)
        return s_err(err, errlen, "--id is required (this member's id in --peers)");
    if (!cfg->data[0])
        return s_err(err, errlen, "--data is required (a directory for the Raft log and state)");
    if (!cfg->rpc[0])
        return s_err(err, errlen, "--rpc is required (e.g. tcp://127.0.0.1:7401)");
    if (cfg->keys[0] && cfg->insecure)
        return s_err(err, errlen, "--keys and --insecure exclude each other: give one");
    if (!cfg->keys[0] && !cfg->insecure)
        return s_err(err, errlen,
                     "no keys: give --keys DIR (create it once with `dscoord bootstrap-keys "
                     "DIR --coordinators N --admin NAME` and copy it to every member), or "
                     "--insecure for a local experiment without encryption");
    if (cfg->http[0] && (cfg->http[0] == ':' || !strchr(cfg->http, ':'))) {
        char port[sizeof cfg->http];
        snprintf(port, sizeof port, "%s", cfg->http + (cfg->http[0] == ':'));
        snprintf(cfg->http, sizeof cfg->http, "127.0.0.1:%.*s", (int)(sizeof cfg->http - 11), port);
    }
    int rc = ds_coord_parse_peers(cfg->peers, cfg->members, &cfg->n_members, err, errlen);
    if (rc != 0)
        return rc;
    if (!ds_coord_member_peer(cfg, cfg->id))
        return s_err(err, errlen, "--id %u is not one of the members in --peers", cfg->id);
    if (cfg->tick_ms > cfg->heartbeat_ms)
        return s_err(err, errlen, "--tick-ms %u must not exceed --heartbeat-ms %u", cfg->tick_ms,
                     cfg->heartbeat_ms);
    if (cfg->heartbeat_ms * 2 > cfg->election_ms)
        return s_err(err, errlen,
                     "--election-ms %u must be at least twice --heartbeat-ms %u (use 5-10x)",
                     cfg->election_ms, cfg->heartbeat_ms);
    if (cfg->worker_timeout_ms < 2 * cfg->worker_heartbeat_ms)
        return s_err(err, errlen,
                     "--worker-timeout %u ms must be at least twice --worker-heartbeat %u ms",
                     cfg->worker_timeout_ms, cfg->worker_heartbeat_ms);
    return 0;
}
