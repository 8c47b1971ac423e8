/*  worker/config.h - dsworker's settings: flags, config file, checks.

    One table (ds_worker_options) describes every setting; flags and the
    config file (`--config FILE`, keys are the flags' long names) both go
    through it, flags winning. --help is printed from it.
    ds_worker_config_finish() checks the settings together and derives
    the lists (join endpoints, labels), the port range and the exit mode.

    Pure: the caller passes the host name (the default worker name).
*/
#ifndef DS_WORKER_CONFIG_H
#define DS_WORKER_CONFIG_H

#include "protocol/limits.h"
#include "protocol/options.h"
#include "worker/reconcile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_WORKER_MAX_JOIN 16u /* endpoints in --join */

typedef struct {
    char key[DS_MAX_NAME + 1];
    char value[DS_MAX_LABEL + 1];
} ds_worker_label_t;

typedef struct {
    char name[DS_MAX_NAME + 1];
    char data[DS_MAX_PATH + 1];
    char join[(DS_MAX_ENDPOINT + 1) * DS_WORKER_MAX_JOIN];
    char labels[(DS_MAX_NAME + DS_MAX_LABEL + 2) * DS_MAX_LABELS];
    char on_exit[8];
    uint32_t heartbeat_ms;
    char ports[24];
    char log_level[16];
    bool version;
    char cluster_key[DS_MAX_PATH + 1]; /* --cluster-key FILE: the coordinators' public key */
    char token[DS_MAX_LABEL + 1];      /* --token: join token, for the first join only */
    bool insecure;                     /* --insecure: plain ZeroMQ */
    /* derived by ds_worker_config_finish() */
    uint32_t n_join;
    char join_list[DS_WORKER_MAX_JOIN][DS_MAX_ENDPOINT + 1];
    uint32_t n_labels;
    ds_worker_label_t label_list[DS_MAX_LABELS];
    ds_on_exit_t on_exit_mode;
    uint16_t port_min, port_max;
} ds_worker_config_t;

extern const ds_option_t ds_worker_options[];
extern const size_t ds_worker_n_options;

/*  Checks the settings together and derives the lists. An empty --name
    becomes `hostname` (may be NULL or "": then --name is required).
    --data and --join are required, and exactly one of --cluster-key and
    --insecure; names and label keys use letters,
    digits, '.', '_' and '-'. Returns 0 or DS_EINVAL with `err` saying
    what to change. */
int ds_worker_config_finish(ds_worker_config_t *cfg, const char *hostname, char *err,
                            size_t errlen);

/*  Parses "LO-HI" (1..65535, LO <= HI) into *lo and *hi. Returns 0 or
    DS_EINVAL with `err` naming the value. */
int ds_worker_parse_ports(const char *text, uint16_t *lo, uint16_t *hi, char *err, size_t errlen);

#endif
