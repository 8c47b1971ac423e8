/*  dsctl/args.h - parsing what a user types or configures: durations,
    endpoint lists, output formats, the config file, and which source wins.

    Pure functions except ds_dsctl_settings_resolve(), which reads the
    config file. Error texts say what was wrong, with the value, and how
    to fix it; they carry no "dsctl: " prefix (the caller adds it):
        --timeout: "5x" is not a duration (use 500ms, 5s, 1m)

    Precedence, highest first:
        coordinators: --coordinators, $DSCTL_COORDINATORS, config file
        key, cluster-key: --key / --cluster-key, $DSCTL_KEY /
                      $DSCTL_CLUSTER_KEY, config file (docs/security.md)
        insecure: --insecure, config file
        timeout, output: the flag, the config file, the default
    The config file is $DSCTL_CONFIG (which must exist) or else
    ~/.config/gossamer/dsctl.conf (skipped when absent). Its lines are
    `key = value`; '#' starts a comment; keys: coordinators (may repeat;
    the lists add up), timeout, output, key, cluster-key, insecure
    (true/false).
*/
#ifndef DS_DSCTL_ARGS_H
#define DS_DSCTL_ARGS_H

#include "protocol/limits.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_DSCTL_MAX_ENDPOINTS      DS_MAX_MEMBERS
#define DS_DSCTL_DEFAULT_TIMEOUT_MS 5000u
#define DS_DSCTL_CONFIG_DEFAULT     ".config/gossamer/dsctl.conf" /* under $HOME */

typedef struct {
    size_t n;
    char list[DS_DSCTL_MAX_ENDPOINTS][DS_MAX_ENDPOINT + 1];
} ds_endpoints_t;

typedef enum { DS_OUTPUT_TABLE = 0, DS_OUTPUT_JSON = 1 } ds_output_t;

/*  Where settings come from; any field may be NULL (not given). */
typedef struct {
    const char *coordinators;     /* --coordinators */
    const char *timeout;          /* --timeout */
    const char *output;           /* -o / --output */
    const char *env_coordinators; /* $DSCTL_COORDINATORS */
    const char *config_path;      /* $DSCTL_CONFIG */
    const char *home;             /* $HOME, for the default config path */
    const char *key;              /* --key: this user's key pair (admin or viewer) */
    const char *cluster_key;      /* --cluster-key: the coordinators' public key */
    bool insecure;                /* --insecure */
    const char *env_key;          /* $DSCTL_KEY */
    const char *env_cluster_key;  /* $DSCTL_CLUSTER_KEY */
} ds_dsctl_sources_t;

typedef struct {
    ds_endpoints_t endpoints; /* at least one */
    uint64_t timeout_ms;      /* overall deadline of one command, > 0 */
    bool timeout_flag;        /* timeout_ms came from --timeout (it then bounds --wait too) */
    ds_output_t output;
    char endpoints_from[DS_MAX_PATH + 32]; /* "--coordinators", a file path... */
    char key[DS_MAX_PATH + 1];             /* key pair file; "" = none given */
    char cluster_key[DS_MAX_PATH + 1];     /* cluster.pub; "" = none given */
    bool insecure;                         /* plain ZeroMQ */
} ds_dsctl_settings_t;

/*  Durations: ds_parse_duration_ms() in protocol/options.h. */

/*  Parses a comma-separated list of ZeroMQ endpoints (tcp://HOST:PORT,
    ipc://PATH, inproc://NAME), trimming spaces and dropping duplicates,
    and appends them to `out`. Returns 0, or DS_EINVAL with `err` saying
    which entry is wrong and how to write it (nothing appended). */
int ds_dsctl_endpoints_parse(const char *text, ds_endpoints_t *out, char *err, size_t errlen);

/*  Parses "json" or "table". Returns 0 or DS_EINVAL. */
int ds_dsctl_output_parse(const char *text, ds_output_t *out);

/*  Works out the settings from `src` in the precedence above. Returns 0,
    or DS_EINVAL (a bad value, a bad config line, no coordinators given)
    / DS_EIO (the config file cannot be read) with `err` saying what to
    do. */
int ds_dsctl_settings_resolve(const ds_dsctl_sources_t *src, ds_dsctl_settings_t *out, char *err,
                              size_t errlen);

#endif
