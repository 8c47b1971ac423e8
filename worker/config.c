/*  worker/config.c - dsworker's settings table and checks. */
#include "worker/config.h"

#include "protocol/error.h"
#include "protocol/log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define C ds_worker_config_t
const ds_option_t ds_worker_options[] = {
    {"name", DS_OPT_STR, offsetof(C, name), sizeof(((C *)0)->name), 0, 0, NULL, "NAME",
     "this worker's name in the cluster (letters, digits, . _ -); default: the host name"},
    {"data", DS_OPT_STR, offsetof(C, data), sizeof(((C *)0)->data), 0, 0, NULL, "DIR",
     "data directory (identity, assignment, release files); created with mode 0700. The "
     "identity kept here makes a restarted worker the same worker"},
    {"join", DS_OPT_LIST, offsetof(C, join), sizeof(((C *)0)->join), 0, 0, NULL, "ENDPOINT,...",
     "coordinator rpc endpoints to join through, e.g. tcp://127.0.0.1:7101,tcp://...; any one "
     "reachable member is enough"},
    {"label", DS_OPT_LIST, offsetof(C, labels), sizeof(((C *)0)->labels), 0, 0, NULL, "KEY=VALUE",
     "a label for release selectors (repeat the flag for more)"},
    {"on-exit", DS_OPT_STR, offsetof(C, on_exit), sizeof(((C *)0)->on_exit), 0, 0, "keep",
     "keep|stop", "what happens to running instances when dsworker stops"},
    {"heartbeat", DS_OPT_DURATION, offsetof(C, heartbeat_ms), 0, 10, 600000, "1s", "DUR",
     "heartbeat interval until the cluster says otherwise (the join reply wins)"},
    {"ports", DS_OPT_STR, offsetof(C, ports), sizeof(((C *)0)->ports), 0, 0, "20000-29999", "LO-HI",
     "the port range handed to instances"},
    {"log-level", DS_OPT_STR, offsetof(C, log_level), sizeof(((C *)0)->log_level), 0, 0, "info",
     "LEVEL", "debug, info, warn or error"},
    {"cluster-key", DS_OPT_STR, offsetof(C, cluster_key), sizeof(((C *)0)->cluster_key), 0, 0, NULL,
     "FILE",
     "the coordinators' public key (cluster.pub from `dscoord bootstrap-keys`): connections "
     "use CURVE with this worker's key pair, DATA/worker.key (made on first boot); required "
     "unless --insecure"},
    {"token", DS_OPT_STR, offsetof(C, token), sizeof(((C *)0)->token), 0, 0, NULL, "TOKEN",
     "join token (dsctl token create) for the first join of this worker's key; once joined "
     "the key alone is enough"},
    {"insecure", DS_OPT_BOOL, offsetof(C, insecure), 0, 0, 0, NULL, NULL,
     "no CURVE: plain ZeroMQ to coordinators started with --insecure (local experiments)"},
    {"version", DS_OPT_BOOL, offsetof(C, version), 0, 0, 0, NULL, NULL,
     "print the version and exit"},
};
#undef C
const size_t ds_worker_n_options = sizeof ds_worker_options / sizeof ds_worker_options[0];

#define s_err(err, errlen, ...) ds_errf((err), (errlen), DS_EINVAL, __VA_ARGS__)

static bool s_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/*  Checks a name or label key of `len` bytes; returns the first bad
    character's index, or -1 if it is fine. */
static long s_bad_name_char(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!s_name_char(s[i]))
            return (long)i;
    return -1;
}

static int s_finish_name(ds_worker_config_t *cfg, const char *hostname, char *err, size_t errlen)
{
    if (!cfg->name[0]) {
        if (!hostname || !hostname[0])
            return s_err(err, errlen, "--name is required (the host name is unknown)");
        if (strlen(hostname) > DS_MAX_NAME)
            return s_err(err, errlen,
                         "the host name \"%.40s...\" is longer than %u characters: give --name",
                         hostname, DS_MAX_NAME);
        snprintf(cfg->name, sizeof cfg->name, "%s", hostname);
    }
    long bad = s_bad_name_char(cfg->name, strlen(cfg->name));
    if (bad >= 0)
        return s_err(err, errlen,
                     "--name \"%s\": character %ld is not allowed (use letters, digits, . _ -)",
                     cfg->name, bad + 1);
    return 0;
}

static int s_finish_join(ds_worker_config_t *cfg, char *err, size_t errlen)
{
    cfg->n_join = 0;
    const char *text = cfg->join;
    if (!*text)
        return s_err(err, errlen,
                     "--join is required (coordinator rpc endpoints, e.g. tcp://127.0.0.1:7101)");
    while (*text) {
        const char *comma = strchr(text, ',');
        size_t len = comma ? (size_t)(comma - text) : strlen(text);
        if (len == 0)
            return s_err(err, errlen, "--join: empty endpoint in \"%s\"", cfg->join);
        if (cfg->n_join == DS_WORKER_MAX_JOIN)
            return s_err(err, errlen, "--join: more than %u endpoints", DS_WORKER_MAX_JOIN);
        if (len > DS_MAX_ENDPOINT)
            return s_err(err, errlen, "--join: an endpoint is longer than %u characters",
                         DS_MAX_ENDPOINT);
        char *ep = cfg->join_list[cfg->n_join];
        memcpy(ep, text, len);
        ep[len] = '\0';
        if ((strncmp(ep, "tcp://", 6) != 0 && strncmp(ep, "ipc://", 6) != 0) || !ep[6])
            return s_err(err, errlen,
                         "--join: \"%s\" is not a tcp:// or ipc:// endpoint (e.g. "
                         "tcp://127.0.0.1:7101)",
                         ep);
        bool dup = false;
        for (uint32_t i = 0; i < cfg->n_join && !dup; i++)
            dup = strcmp(cfg->join_list[i], ep) == 0;
        if (!dup)
            cfg->n_join++;
        text += len + (comma ? 1 : 0);
    }
    return 0;
}

static int s_parse_label(const char *item, size_t len, ds_worker_label_t *l, char *err,
                         size_t errlen)
{
    const char *eq = memchr(item, '=', len);
    if (!eq || eq == item)
        return s_err(err, errlen, "--label: \"%.*s\" is not KEY=VALUE", (int)len, item);
    size_t klen = (size_t)(eq - item), vlen = len - klen - 1;
    if (klen > DS_MAX_NAME)
        return s_err(err, errlen, "--label: key \"%.*s...\" is longer than %u characters", 20, item,
                     DS_MAX_NAME);
    long bad = s_bad_name_char(item, klen);
    if (bad >= 0)
        return s_err(err, errlen,
                     "--label: key \"%.*s\": character %ld is not allowed (use letters, "
                     "digits, . _ -)",
                     (int)klen, item, bad + 1);
    if (vlen > DS_MAX_LABEL)
        return s_err(err, errlen, "--label %.*s: the value is longer than %u characters", (int)klen,
                     item, DS_MAX_LABEL);
    for (size_t i = 0; i < vlen; i++)
        if (!isprint((unsigned char)eq[1 + i]))
            return s_err(err, errlen,
                         "--label %.*s: the value has a control character (use printable text)",
                         (int)klen, item);
    memcpy(l->key, item, klen);
    l->key[klen] = '\0';
    memcpy(l->value, eq + 1, vlen);
    l->value[vlen] = '\0';
    return 0;
}

static int s_finish_labels(ds_worker_config_t *cfg, char *err, size_t errlen)
{
    cfg->n_labels = 0;
    const char *text = cfg->labels;
    while (*text) {
        const char *comma = strchr(text, ',');
        size_t len = comma ? (size_t)(comma - text) : strlen(text);
        if (cfg->n_labels == DS_MAX_LABELS)
            return s_err(err, errlen, "--label: more than %u labels", DS_MAX_LABELS);
        ds_worker_label_t *l = &cfg->label_list[cfg->n_labels];
        int rc = s_parse_label(text, len, l, err, errlen);
        if (rc != 0)
            return rc;
        for (uint32_t i = 0; i < cfg->n_labels; i++)
            if (strcmp(cfg->label_list[i].key, l->key) == 0)
                return s_err(err, errlen, "--label: key \"%s\" is given twice", l->key);
        cfg->n_labels++;
        text += len + (comma ? 1 : 0);
    }
    return 0;
}

static int s_port(const char *text, size_t len, uint16_t *out)
{
    if (len == 0 || len > 5)
        return DS_EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            return DS_EINVAL;
        v = v * 10 + (unsigned)(text[i] - '0');
    }
    if (v == 0 || v > 65535)
        return DS_EINVAL;
    *out = (uint16_t)v;
    return 0;
}

int ds_worker_parse_ports(const char *text, uint16_t *lo, uint16_t *hi, char *err, size_t errlen)
{
    const char *dash = strchr(text, '-');
    if (!dash || s_port(text, (size_t)(dash - text), lo) != 0 ||
        s_port(dash + 1, strlen(dash + 1), hi) != 0)
        return s_err(err, errlen,
                     "--ports: \"%s\" is not LO-HI with ports 1 to 65535 (e.g. "
                     "20000-29999)",
                     text);
    if (*lo > *hi)
        return s_err(err, errlen, "--ports: %u-%u is empty (put the lower port first)", *lo, *hi);
    return 0;
}

int ds_worker_config_finish(ds_worker_config_t *cfg, const char *hostname, char *err, size_t errlen)
{
    int rc = s_finish_name(cfg, hostname, err, errlen);
    if (rc != 0)
        return rc;
    if (!cfg->data[0])
        return s_err(err, errlen,
                     "--data is required (a directory for the worker's identity and releases)");
    rc = s_finish_join(cfg, err, errlen);
    if (rc == 0)
        rc = s_finish_labels(cfg, err, errlen);
    if (rc == 0)
        rc = ds_worker_parse_ports(cfg->ports, &cfg->port_min, &cfg->port_max, err, errlen);
    if (rc != 0)
        return rc;
    if (strcmp(cfg->on_exit, "keep") == 0)
        cfg->on_exit_mode = DS_ON_EXIT_KEEP;
    else if (strcmp(cfg->on_exit, "stop") == 0)
        cfg->on_exit_mode = DS_ON_EXIT_STOP;
    else
        return s_err(err, errlen, "--on-exit: \"%s\" is not keep or stop", cfg->on_exit);
    ds_log_level_t level;
    if (ds_log_level_parse(cfg->log_level, &level) != 0)
        return s_err(err, errlen, "--log-level: \"%s\" is not debug, info, warn or error",
                     cfg->log_level);
    if (cfg->cluster_key[0] && cfg->insecure)
        return s_err(err, errlen, "--cluster-key and --insecure exclude each other: give one");
    if (!cfg->cluster_key[0] && !cfg->insecure)
        return s_err(err, errlen,
                     "no --cluster-key: give the coordinators' public key (cluster.pub from "
                     "`dscoord bootstrap-keys`) and, for the first join, --token (from `dsctl "
                     "token create`); or --insecure for coordinators started with --insecure");
    return 0;
}
