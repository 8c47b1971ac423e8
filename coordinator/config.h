/*  coordinator/config.h - dscoord's settings: flags, config file, members.

    One table (ds_coord_options) describes every setting; flags and the
    config file (`--config FILE`, keys are the flags' long names) both go
    through it, flags winning. --help is printed from it.
*/
#ifndef DS_COORDINATOR_CONFIG_H
#define DS_COORDINATOR_CONFIG_H

#include "protocol/limits.h"
#include "protocol/options.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t id;
    char peer[DS_MAX_ENDPOINT + 1];
} ds_member_t;

typedef struct {
    uint32_t id;
    char data[1024];
    char peers[(DS_MAX_ENDPOINT + 24) * DS_MAX_MEMBERS];
    char rpc[DS_MAX_ENDPOINT + 1];
    char http[DS_MAX_ENDPOINT + 1];
    uint32_t heartbeat_ms;
    uint32_t election_ms;
    uint32_t tick_ms;
    uint32_t snapshot_entries;
    uint32_t snapshot_log_percent; /* and log bytes, in % of the last image */
    uint32_t worker_heartbeat_ms;  /* told to workers when they join */
    uint32_t worker_timeout_ms;    /* a worker silent this long is down */
    uint32_t telemetry_series;     /* series the telemetry aggregator keeps at most */
    char log_level[16];
    char keys[DS_MAX_PATH + 1]; /* --keys DIR (docs/security.md); "" with --insecure */
    bool insecure;              /* --insecure: plain ZeroMQ, nobody authenticated */
    /* derived by ds_coord_config_finish() */
    uint32_t n_members;
    ds_member_t members[DS_MAX_MEMBERS];
} ds_coord_config_t;

extern const ds_option_t ds_coord_options[];
extern const size_t ds_coord_n_options;

/*  Parses "1=tcp://127.0.0.1:7402,2=tcp://..." into members. Returns 0 or
    DS_EINVAL with `err` naming the bad item. Pure. */
int ds_coord_parse_peers(const char *text, ds_member_t *out, uint32_t *n, char *err, size_t errlen);

/*  Checks the settings together and derives the member list: --id must be
    one of --peers, timings must fit (heartbeat < election / 2, tick <=
    heartbeat), --data and --rpc must be set, exactly one of --keys and
    --insecure must be given, and an --http of only a port (":9100" or
    "9100") binds 127.0.0.1. Returns 0 or DS_EINVAL with
    `err` saying what to change. */
int ds_coord_config_finish(ds_coord_config_t *cfg, char *err, size_t errlen);

/*  Finds the peer endpoint of member `id`, or NULL. */
const char *ds_coord_member_peer(const ds_coord_config_t *cfg, uint64_t id);

#endif
