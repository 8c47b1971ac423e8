/*  dsctl/cmd_common.c - what every command shares: argument parsing,
    the request/reply round and the mapping of errors to exit codes. */
#include "dsctl/cmd.h"

#include "protocol/error.h"
#include "protocol/limits.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int ds_cmd_words(const ds_cmd_t *cmd)
{
    return cmd->verb ? 2 : 1;
}

void ds_cmd_name(const ds_cmd_t *cmd, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%s%s", cmd->group, cmd->verb ? " " : "", cmd->verb ? cmd->verb : "");
}

int ds_cmd_usage(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dsctl: ", ctx->err);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    char name[64];
    if (cmd)
        ds_cmd_name(cmd, name, sizeof name);
    if (cmd)
        fprintf(ctx->err, "\nusage: dsctl %s %s (see `dsctl %s --help`)\n", name, cmd->args, name);
    else
        fputs("\n(see `dsctl --help`)\n", ctx->err);
    return DS_EXIT_USAGE;
}

/*  Stores the value of flag `f` (a repeating flag appends). */
static int s_store(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const ds_cmd_flag_t *f,
                   const char *value)
{
    if (!f->count) {
        *f->value = value;
        return 0;
    }
    if (*f->count == f->max)
        return ds_cmd_usage(ctx, cmd, "%s given more than %zu times (the limit)", f->name, f->max);
    f->value[(*f->count)++] = value;
    return 0;
}

/*  Matches argv[*i] against `flags`; takes its value from "--x=v" or the
    next word. `seen` counts each flag's uses. Returns 0, or DS_EXIT_USAGE. */
static int s_flag(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, int argc, char **argv, int *i,
                  const ds_cmd_flag_t *flags, size_t nflags, unsigned *seen)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t f = 0; f < nflags; f++) {
        if (strlen(flags[f].name) != len || strncmp(arg, flags[f].name, len) != 0)
            continue;
        if (seen[f]++ > 0 && !flags[f].count)
            return ds_cmd_usage(ctx, cmd, "%s given twice (give it once)", flags[f].name);
        if (flags[f].given)
            *flags[f].given = true;
        if (!flags[f].takes_value && eq)
            return ds_cmd_usage(ctx, cmd, "%s takes no value", flags[f].name);
        if (!flags[f].takes_value)
            return 0;
        if (!eq && *i + 1 >= argc)
            return ds_cmd_usage(ctx, cmd, "%s needs a value", flags[f].name);
        return s_store(ctx, cmd, &flags[f], eq ? eq + 1 : argv[++*i]);
    }
    return ds_cmd_usage(ctx, cmd, "unknown flag \"%.*s\"", (int)len, arg);
}

/*  "missing SERVICE": names the first missing argument as the command's
    usage line spells it (its upper-case words). */
static int s_missing(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, size_t npos, size_t minpos)
{
    const char *p = cmd->args;
    for (size_t k = 0; *p;) {
        size_t len = strcspn(p, " ");
        if (isupper((unsigned char)p[0]) && k++ == npos)
            return ds_cmd_usage(ctx, cmd, "missing %.*s", (int)len, p);
        p += len;
        p += strspn(p, " ");
    }
    return ds_cmd_usage(ctx, cmd, "missing argument%s", minpos - npos > 1 ? "s" : "");
}

int ds_cmd_parse(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, int argc, char **argv,
                 const ds_cmd_flag_t *flags, size_t nflags, char **pos, size_t minpos,
                 size_t maxpos)
{
    assert(nflags <= DS_CMD_MAX_FLAGS);
    unsigned seen[DS_CMD_MAX_FLAGS] = {0};
    size_t npos = 0;
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!flags_done && strcmp(argv[i], "--") == 0)
            flags_done = true;
        else if (!flags_done && argv[i][0] == '-' && argv[i][1] != '\0')
            rc = s_flag(ctx, cmd, argc, argv, &i, flags, nflags, seen);
        else if (npos == maxpos)
            rc = ds_cmd_usage(ctx, cmd, "unexpected argument \"%s\"", argv[i]);
        else
            pos[npos++] = argv[i];
        if (rc != 0)
            return rc;
    }
    if (npos < minpos)
        return s_missing(ctx, cmd, npos, minpos);
    return 0;
}

int ds_cmd_exit_for(int64_t code)
{
    switch (code) {
    case DS_EINVAL:
    case DS_ETOOBIG:
    case DS_EENCODING:
        return DS_EXIT_USAGE;
    case DS_ENOTLEADER:
    case DS_ENOQUORUM:
    case DS_ETIMEOUT:
        return DS_EXIT_UNAVAILABLE;
    default:
        return DS_EXIT_FAILED;
    }
}

/*  The CURVE client of --key and --cluster-key (docs/security.md), or
    NULL with --insecure. Returns 0, or the exit code with `why` set. */
static int s_security(ds_cmd_ctx_t *ctx, char *why, size_t whylen)
{
    const ds_dsctl_settings_t *st = &ctx->settings;
    if (st->insecure || ctx->sec)
        return 0;
    if (!st->key[0] || !st->cluster_key[0]) {
        snprintf(why, whylen,
                 "no %s: give --key FILE (your admin or viewer key pair) and --cluster-key "
                 "FILE (the cluster's cluster.pub), or set DSCTL_KEY and DSCTL_CLUSTER_KEY, or "
                 "`key = ...` and `cluster-key = ...` in the config file; --insecure only "
                 "talks to a cluster started with --insecure",
                 st->key[0] ? "--cluster-key" : "--key");
        return DS_EXIT_USAGE;
    }
    char err[1024] = "", server[DS_KEY_TEXT_LEN + 1];
    zcert_t *cert = NULL;
    int rc = ds_transport_curve_check(err, sizeof err);
    if (rc == 0)
        rc = ds_keys_load_pair(st->key, &cert, err, sizeof err);
    if (rc == 0)
        rc = ds_keys_load_public(st->cluster_key, server, err, sizeof err);
    if (rc == 0)
        rc = ds_transport_security_new_client(cert, server, &ctx->sec, err, sizeof err);
    zcert_destroy(&cert);
    if (rc == 0)
        return 0;
    snprintf(why, whylen, "%s", err);
    return rc == DS_ENOMEM || rc == DS_EIO ? DS_EXIT_FAILED : DS_EXIT_USAGE;
}

static int s_client(ds_cmd_ctx_t *ctx, char *why, size_t whylen)
{
    if (ctx->client)
        return 0;
    int rc = s_security(ctx, why, whylen);
    if (rc != 0)
        return rc;
    char sender[DS_MAX_NAME + 1];
    ds_client_session_name("dsctl", sender, sizeof sender);
    ds_client_opts_t opts = {.endpoints = ctx->settings.endpoints,
                             .timeout_ms = ctx->settings.timeout_ms,
                             .attempt_ms = 0,
                             .sender = sender,
                             .sec = ctx->sec};
    ctx->client = ds_client_new(&opts);
    if (ctx->client)
        return 0;
    snprintf(why, whylen, "out of memory");
    return DS_EXIT_FAILED;
}

static int s_error_reply(const ds_error_reply_t *e, char *why, size_t whylen)
{
    snprintf(why, whylen, "%s (%s)", e->message[0] ? e->message : ds_strerror((int)e->code),
             ds_errname((int)e->code));
    return ds_cmd_exit_for(e->code);
}

int ds_cmd_request_quiet(ds_cmd_ctx_t *ctx, uint16_t type, const void *body, uint16_t want,
                         ds_msg_t **reply_out, char *why, size_t whylen)
{
    assert(ctx && body && reply_out && why && whylen > 0);
    *reply_out = NULL;
    why[0] = '\0';
    int crc = s_client(ctx, why, whylen);
    if (crc != 0)
        return crc;
    ds_client_err_t err = {0, ""};
    ds_msg_t *reply = NULL;
    int rc = ds_client_call(ctx->client, type, body, &reply, &err);
    if (rc == DS_ENOQUORUM || rc == DS_ETIMEOUT) {
        snprintf(why, whylen, "%s", err.text);
        return DS_EXIT_UNAVAILABLE;
    }
    if (rc != 0) {
        snprintf(why, whylen, "%s", err.text[0] ? err.text : ds_strerror(rc));
        return rc == DS_ENOMEM ? DS_EXIT_FAILED : DS_EXIT_USAGE;
    }
    if (reply->env.type == DS_MSG_ERROR) {
        rc = s_error_reply(reply->body, why, whylen);
    } else if (reply->env.type != want) {
        snprintf(why, whylen,
                 "%s answered %s with %s, expected %s (are dsctl and dscoord the same "
                 "version? this is %s)",
                 ds_client_leader(ctx->client), ds_msg_type_name(type),
                 ds_msg_type_name(reply->env.type), ds_msg_type_name(want), ds_cmd_version());
        rc = DS_EXIT_FAILED;
    }
    if (rc != 0)
        ds_msg_destroy(&reply);
    *reply_out = reply;
    return rc;
}

int ds_cmd_request(ds_cmd_ctx_t *ctx, uint16_t type, const void *body, uint16_t want,
                   ds_msg_t **reply_out)
{
    char why[DS_CMD_WHY_MAX];
    int rc = ds_cmd_request_quiet(ctx, type, body, want, reply_out, why, sizeof why);
    if (rc != 0)
        fprintf(ctx->err, "dsctl: %s\n", why);
    return rc;
}

int ds_cmd_check_service(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const char *service)
{
    size_t n = strlen(service);
    if (n == 0)
        return ds_cmd_usage(ctx, cmd, "SERVICE is empty (use a name such as churn-model)");
    if (n > DS_MAX_NAME)
        return ds_cmd_usage(ctx, cmd, "SERVICE is %zu bytes; the limit is %u", n, DS_MAX_NAME);
    bool ok = isalnum((unsigned char)service[0]);
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)service[i]) || strchr("._-", service[i]);
    if (!ok)
        return ds_cmd_usage(ctx, cmd,
                            "SERVICE %s is not a service name (letters, digits, '.', '_' and '-', "
                            "starting with a letter or digit)",
                            ds_spec_quote(service, n).s);
    return 0;
}

int ds_cmd_parse_count(const char *text, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (!text || !isdigit((unsigned char)text[0]))
        return DS_EINVAL;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || errno || v == 0 || v > max)
        return DS_EINVAL;
    *out = v;
    return 0;
}

const ds_service_status_t *ds_cmd_find_service(const ds_status_reply_t *st, const char *name)
{
    for (uint32_t i = 0; i < st->n_services; i++)
        if (st->services[i].service && strcmp(st->services[i].service, name) == 0)
            return &st->services[i];
    return NULL;
}
