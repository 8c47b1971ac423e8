/*  dsctl/cmd_common.c - what every command shares: argument parsing,
    the request/reply round and the mapping of errors to exit codes. */
#include "dsctl/cmd.h"

#include "protocol/error.h"

#include <assert.h>
#include <stdarg.h>
#include <string.h>

int ds_cmd_usage(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dsctl: ", ctx->err);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(ctx->err, "\nusage: dsctl %s %s %s (see `dsctl %s %s --help`)\n", cmd->group,
                cmd->verb, cmd->args, cmd->group, cmd->verb);
    else
        fputs("\n(see `dsctl --help`)\n", ctx->err);
    return DS_EXIT_USAGE;
}

/*  Matches argv[*i] against `flags`; takes its value from "--x=v" or the
    next word. Returns 0, or DS_EXIT_USAGE. */
static int s_flag(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, int argc, char **argv, int *i,
                  const ds_cmd_flag_t *flags, size_t nflags)
{
    const char *arg = argv[*i];
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    for (size_t f = 0; f < nflags; f++) {
        if (strlen(flags[f].name) != len || strncmp(arg, flags[f].name, len) != 0)
            continue;
        if (flags[f].given)
            *flags[f].given = true;
        if (!flags[f].takes_value && eq)
            return ds_cmd_usage(ctx, cmd, "%s takes no value", flags[f].name);
        if (!flags[f].takes_value)
            return 0;
        if (!eq && *i + 1 >= argc)
            return ds_cmd_usage(ctx, cmd, "%s needs a value", flags[f].name);
        *flags[f].value = eq ? eq + 1 : argv[++*i];
        return 0;
    }
    return ds_cmd_usage(ctx, cmd, "unknown flag \"%.*s\"", (int)len, arg);
}

int ds_cmd_parse(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, int argc, char **argv,
                 const ds_cmd_flag_t *flags, size_t nflags, char **pos, size_t minpos,
                 size_t maxpos)
{
    size_t npos = 0;
    bool flags_done = false;
    for (int i = 0; i < argc; i++) {
        int rc = 0;
        if (!flags_done && strcmp(argv[i], "--") == 0)
            flags_done = true;
        else if (!flags_done && argv[i][0] == '-' && argv[i][1] != '\0')
            rc = s_flag(ctx, cmd, argc, argv, &i, flags, nflags);
        else if (npos == maxpos)
            rc = ds_cmd_usage(ctx, cmd, "unexpected argument \"%s\"", argv[i]);
        else
            pos[npos++] = argv[i];
        if (rc != 0)
            return rc;
    }
    if (npos < minpos)
        return ds_cmd_usage(ctx, cmd, "missing argument%s", minpos - npos > 1 ? "s" : "");
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

static int s_client(ds_cmd_ctx_t *ctx)
{
    if (ctx->client)
        return 0;
    char sender[DS_MAX_NAME + 1];
    ds_client_session_name("dsctl", sender, sizeof sender);
    ds_client_opts_t opts = {.endpoints = ctx->settings.endpoints,
                             .timeout_ms = ctx->settings.timeout_ms,
                             .attempt_ms = 0,
                             .sender = sender,
                             .sec = NULL};
    ctx->client = ds_client_new(&opts);
    if (ctx->client)
        return 0;
    fputs("dsctl: out of memory\n", ctx->err);
    return DS_EXIT_FAILED;
}

static int s_error_reply(ds_cmd_ctx_t *ctx, const ds_error_reply_t *e)
{
    fprintf(ctx->err, "dsctl: %s (%s)\n", e->message[0] ? e->message : ds_strerror((int)e->code),
            ds_errname((int)e->code));
    return ds_cmd_exit_for(e->code);
}

int ds_cmd_request(ds_cmd_ctx_t *ctx, uint16_t type, const void *body, uint16_t want,
                   ds_msg_t **reply_out)
{
    assert(ctx && body && reply_out);
    *reply_out = NULL;
    int rc = s_client(ctx);
    if (rc != 0)
        return rc;
    ds_client_err_t err = {0, ""};
    ds_msg_t *reply = NULL;
    rc = ds_client_call(ctx->client, type, body, &reply, &err);
    if (rc == DS_ENOQUORUM || rc == DS_ETIMEOUT) {
        fprintf(ctx->err, "dsctl: %s\n", err.text);
        return DS_EXIT_UNAVAILABLE;
    }
    if (rc != 0) {
        fprintf(ctx->err, "dsctl: %s\n", err.text[0] ? err.text : ds_strerror(rc));
        return rc == DS_ENOMEM ? DS_EXIT_FAILED : DS_EXIT_USAGE;
    }
    if (reply->env.type == DS_MSG_ERROR) {
        rc = s_error_reply(ctx, reply->body);
    } else if (reply->env.type != want) {
        fprintf(ctx->err,
                "dsctl: %s answered %s with %s, expected %s (are dsctl and dscoord the same "
                "version? this is %s)\n",
                ds_client_leader(ctx->client), ds_msg_type_name(type),
                ds_msg_type_name(reply->env.type), ds_msg_type_name(want), ds_cmd_version());
        rc = DS_EXIT_FAILED;
    }
    if (rc != 0)
        ds_msg_destroy(&reply);
    *reply_out = reply;
    return rc;
}
