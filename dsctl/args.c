/*  dsctl/args.c - durations, endpoint lists, the config file; see args.h. */
#include "dsctl/args.h"

#include "protocol/options.h"

#include "protocol/error.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_DURATION_HINT "use 500ms, 5s, 1m"
#define S_ENDPOINT_HINT "use tcp://HOST:PORT, e.g. tcp://10.0.0.1:7001"
#define S_LINE_MAX      4096

#define s_fail(err, errlen, ...) ds_errf((err), (errlen), DS_EINVAL, __VA_ARGS__)

/* ---- endpoints ---------------------------------------------------- */

static int s_tcp_check(const char *ep, const char *rest, char *err, size_t errlen)
{
    const char *colon = strrchr(rest, ':');
    if (!colon || colon == rest || colon[1] == '\0')
        return s_fail(err, errlen, "\"%s\" needs a host and a port (%s)", ep, S_ENDPOINT_HINT);
    char *end = NULL;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 1 || port > 65535 || !isdigit((unsigned char)colon[1]))
        return s_fail(err, errlen, "\"%s\": port \"%s\" is not a number from 1 to 65535", ep,
                      colon + 1);
    return 0;
}

static int s_endpoint_check(const char *ep, char *err, size_t errlen)
{
    if (!*ep)
        return s_fail(err, errlen, "empty endpoint in the list (%s, separated by commas)",
                      S_ENDPOINT_HINT);
    if (strlen(ep) > DS_MAX_ENDPOINT)
        return s_fail(err, errlen, "endpoint of %zu bytes is longer than %u", strlen(ep),
                      DS_MAX_ENDPOINT);
    const char *sep = strstr(ep, "://");
    if (!sep)
        return s_fail(err, errlen, "\"%s\" has no scheme (use tcp://%s)", ep, ep);
    size_t slen = (size_t)(sep - ep);
    const char *rest = sep + 3;
    if (slen == 3 && strncmp(ep, "tcp", 3) == 0)
        return s_tcp_check(ep, rest, err, errlen);
    bool local =
        (slen == 3 && strncmp(ep, "ipc", 3) == 0) || (slen == 6 && strncmp(ep, "inproc", 6) == 0);
    if (!local)
        return s_fail(err, errlen, "\"%s\": scheme \"%.*s\" is not supported (%s)", ep, (int)slen,
                      ep, S_ENDPOINT_HINT);
    if (!*rest)
        return s_fail(err, errlen, "\"%s\" names no path", ep);
    return 0;
}

static bool s_has(const ds_endpoints_t *eps, const char *ep)
{
    for (size_t i = 0; i < eps->n; i++)
        if (strcmp(eps->list[i], ep) == 0)
            return true;
    return false;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/*  Checks one entry and adds it to `eps` unless already there. */
static int s_endpoint_add(ds_endpoints_t *eps, char *item, char *err, size_t errlen)
{
    char *ep = s_trim(item);
    int rc = s_endpoint_check(ep, err, errlen);
    if (rc != 0 || s_has(eps, ep))
        return rc;
    if (eps->n == DS_DSCTL_MAX_ENDPOINTS)
        return s_fail(err, errlen, "more than %u endpoints; list at most %u coordinators",
                      DS_DSCTL_MAX_ENDPOINTS, DS_DSCTL_MAX_ENDPOINTS);
    snprintf(eps->list[eps->n++], sizeof eps->list[0], "%s", ep);
    return 0;
}

static bool s_blank(const char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    return *s == '\0';
}

int ds_dsctl_endpoints_parse(const char *text, ds_endpoints_t *out, char *err, size_t errlen)
{
    assert(out);
    if (!text || s_blank(text))
        return s_fail(err, errlen, "no endpoint given (%s)", S_ENDPOINT_HINT);
    char *copy = strdup(text);
    if (!copy)
        return s_fail(err, errlen, "out of memory");
    ds_endpoints_t tmp = *out;
    int rc = 0;
    /* Walk the commas by hand (strtok would skip empty items). */
    char *item = copy;
    while (rc == 0 && item) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        rc = s_endpoint_add(&tmp, item, err, errlen);
        item = comma ? comma + 1 : NULL;
    }
    free(copy);
    if (rc == 0)
        *out = tmp;
    return rc;
}

int ds_dsctl_output_parse(const char *text, ds_output_t *out)
{
    assert(out);
    if (text && strcmp(text, "json") == 0)
        *out = DS_OUTPUT_JSON;
    else if (text && strcmp(text, "table") == 0)
        *out = DS_OUTPUT_TABLE;
    else
        return DS_EINVAL;
    return 0;
}

/* ---- the config file ---------------------------------------------- */

typedef struct {
    ds_endpoints_t endpoints;
    const char *timeout; /* as written; points into `timeout_buf` */
    char timeout_buf[64];
    const char *output;
    char output_buf[16];
    char key[DS_MAX_PATH + 1];
    char cluster_key[DS_MAX_PATH + 1];
    bool insecure;
} s_config_t;

static void s_keep(char *buf, size_t len, const char **slot, const char *value)
{
    snprintf(buf, len, "%s", value);
    *slot = buf;
}

static int s_config_line(s_config_t *cfg, const char *where, char *line, char *err, size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *text = s_trim(line);
    if (!*text)
        return 0;
    char *eq = strchr(text, '=');
    if (!eq)
        return s_fail(err, errlen, "%s: \"%s\" is not `key = value`", where, text);
    *eq = '\0';
    char *key = s_trim(text), *value = s_trim(eq + 1);
    char sub[512];
    if (strcmp(key, "coordinators") == 0) {
        if (ds_dsctl_endpoints_parse(value, &cfg->endpoints, sub, sizeof sub) != 0)
            return s_fail(err, errlen, "%s: coordinators: %s", where, sub);
    } else if (strcmp(key, "timeout") == 0) {
        s_keep(cfg->timeout_buf, sizeof cfg->timeout_buf, &cfg->timeout, value);
    } else if (strcmp(key, "output") == 0) {
        s_keep(cfg->output_buf, sizeof cfg->output_buf, &cfg->output, value);
    } else if (strcmp(key, "key") == 0 || strcmp(key, "cluster-key") == 0) {
        char *slot = strcmp(key, "key") == 0 ? cfg->key : cfg->cluster_key;
        if (strlen(value) > DS_MAX_PATH)
            return s_fail(err, errlen, "%s: %s: the path is longer than %u bytes", where, key,
                          DS_MAX_PATH);
        snprintf(slot, DS_MAX_PATH + 1, "%s", value);
    } else if (strcmp(key, "insecure") == 0) {
        if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
            return s_fail(err, errlen, "%s: insecure: \"%s\" is not true or false", where, value);
        cfg->insecure = strcmp(value, "true") == 0;
    } else {
        return s_fail(err, errlen,
                      "%s: unknown key \"%s\" (known: coordinators, timeout, output, key, "
                      "cluster-key, insecure)",
                      where, key);
    }
    return 0;
}

/*  Reads `path` into `cfg`. An absent file is fine unless `must_exist`. */
static int s_config_load(const char *path, bool must_exist, s_config_t *cfg, char *err,
                         size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f && errno == ENOENT && !must_exist)
        return 0;
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s (%s)", path, strerror(errno),
                 must_exist ? "fix or unset DSCTL_CONFIG" : "fix its permissions or remove it");
        return DS_EIO;
    }
    char *line = malloc(S_LINE_MAX);
    int rc = line ? 0 : s_fail(err, errlen, "out of memory");
    for (unsigned no = 1; rc == 0 && fgets(line, S_LINE_MAX, f); no++) {
        char where[DS_MAX_PATH + 32];
        snprintf(where, sizeof where, "%s:%u", path, no);
        if (!strchr(line, '\n') && !feof(f))
            rc = s_fail(err, errlen, "%s: line longer than %d bytes", where, S_LINE_MAX - 2);
        else
            rc = s_config_line(cfg, where, line, err, errlen);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        rc = DS_EIO;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- precedence --------------------------------------------------- */

static int s_pick_endpoints(const ds_dsctl_sources_t *src, const s_config_t *cfg, const char *path,
                            ds_dsctl_settings_t *out, char *err, size_t errlen)
{
    char sub[512];
    const char *label = "--coordinators", *text = src->coordinators;
    if (!text && src->env_coordinators && *src->env_coordinators) {
        label = "DSCTL_COORDINATORS";
        text = src->env_coordinators;
    }
    if (text) {
        snprintf(out->endpoints_from, sizeof out->endpoints_from, "%s", label);
        if (ds_dsctl_endpoints_parse(text, &out->endpoints, sub, sizeof sub) != 0)
            return s_fail(err, errlen, "%s: %s", label, sub);
        return 0;
    }
    if (cfg->endpoints.n > 0) {
        out->endpoints = cfg->endpoints;
        snprintf(out->endpoints_from, sizeof out->endpoints_from, "%s", path);
        return 0;
    }
    return s_fail(err, errlen,
                  "no coordinators given (use --coordinators tcp://HOST:PORT[,...], set "
                  "DSCTL_COORDINATORS, or add \"coordinators = tcp://HOST:PORT\" to %s)",
                  *path ? path : "~/" DS_DSCTL_CONFIG_DEFAULT);
}

static int s_pick_timeout(const char *label, const char *text, uint64_t *ms, char *err,
                          size_t errlen)
{
    if (ds_parse_duration_ms(text, ms) != 0)
        return s_fail(err, errlen, "%s: \"%s\" is not a duration (%s)", label, text,
                      S_DURATION_HINT);
    if (*ms == 0)
        return s_fail(err, errlen, "%s: must be more than 0 (%s)", label, S_DURATION_HINT);
    if (*ms > DS_MAX_DURATION_MS)
        return s_fail(err, errlen, "%s: \"%s\" is longer than the limit of 7 days", label, text);
    return 0;
}

static int s_pick_output(const char *label, const char *text, ds_output_t *out, char *err,
                         size_t errlen)
{
    if (ds_dsctl_output_parse(text, out) != 0)
        return s_fail(err, errlen, "%s: \"%s\" is not an output format (use json or table)", label,
                      text);
    return 0;
}

int ds_dsctl_settings_resolve(const ds_dsctl_sources_t *src, ds_dsctl_settings_t *out, char *err,
                              size_t errlen)
{
    assert(src && out);
    memset(out, 0, sizeof *out);
    out->timeout_ms = DS_DSCTL_DEFAULT_TIMEOUT_MS;
    out->output = DS_OUTPUT_TABLE;
    char path[DS_MAX_PATH + 1] = "";
    bool explicit = src->config_path && *src->config_path;
    if (explicit)
        snprintf(path, sizeof path, "%s", src->config_path);
    else if (src->home && *src->home)
        snprintf(path, sizeof path, "%s/%s", src->home, DS_DSCTL_CONFIG_DEFAULT);
    s_config_t *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return s_fail(err, errlen, "out of memory");
    char where[DS_MAX_PATH + 32];
    int rc = *path ? s_config_load(path, explicit, cfg, err, errlen) : 0;
    snprintf(where, sizeof where, "%s: output", path);
    if (rc == 0 && (src->output || cfg->output))
        rc = s_pick_output(src->output ? "-o" : where, src->output ? src->output : cfg->output,
                           &out->output, err, errlen);
    snprintf(where, sizeof where, "%s: timeout", path);
    if (rc == 0 && (src->timeout || cfg->timeout))
        rc = s_pick_timeout(src->timeout ? "--timeout" : where,
                            src->timeout ? src->timeout : cfg->timeout, &out->timeout_ms, err,
                            errlen);
    out->timeout_flag = src->timeout != NULL;
    if (rc == 0)
        rc = s_pick_endpoints(src, cfg, path, out, err, errlen);
    if (rc == 0) {
        const char *key = src->key                        ? src->key
                          : src->env_key && *src->env_key ? src->env_key
                                                          : cfg->key;
        const char *ck = src->cluster_key                                ? src->cluster_key
                         : src->env_cluster_key && *src->env_cluster_key ? src->env_cluster_key
                                                                         : cfg->cluster_key;
        if (strlen(key) > DS_MAX_PATH || strlen(ck) > DS_MAX_PATH)
            rc = s_fail(err, errlen, "--key/--cluster-key: a path is longer than %u bytes",
                        DS_MAX_PATH);
        snprintf(out->key, sizeof out->key, "%s", key);
        snprintf(out->cluster_key, sizeof out->cluster_key, "%s", ck);
        out->insecure = src->insecure || cfg->insecure;
    }
    free(cfg);
    return rc;
}
