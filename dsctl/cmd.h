/*  dsctl/cmd.h - dsctl's commands: the table main.c dispatches on, the
    context they run in, and the helpers they share.

    A command gets the words after its name (global flags already removed
    by main.c), parses its own flags and arguments, talks to the cluster
    through ds_cmd_request(), prints to ctx->out (results) and ctx->err
    (messages for people), and returns a process exit code (the contract
    in docs/dsctl.md):
        0  success
        1  the operation ran and failed (kv get: not found; an error reply;
           deploy --wait ended failed, rolled_back or aborted)
        2  bad usage or invalid input
        3  cluster unreachable or no leader

    Commands come in groups (`cluster status`, `kv get`) or stand alone
    (`deploy`, `status`): a stand-alone command has verb NULL and takes
    every word after its name.
*/
#ifndef DS_DSCTL_CMD_H
#define DS_DSCTL_CMD_H

#include "dsctl/args.h"
#include "dsctl/client.h"
#include "protocol/msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { DS_EXIT_OK = 0, DS_EXIT_FAILED = 1, DS_EXIT_USAGE = 2, DS_EXIT_UNAVAILABLE = 3 };

typedef struct {
    ds_dsctl_settings_t settings; /* resolved by main.c before the command runs */
    ds_client_t *client;          /* made on the first request; main destroys it */
    ds_transport_security_t *sec; /* CURVE client, made with the client; main destroys it */
    FILE *out;
    FILE *err;
} ds_cmd_ctx_t;

typedef struct ds_cmd ds_cmd_t;
struct ds_cmd {
    const char *group;   /* "cluster", or the name of a stand-alone command ("deploy") */
    const char *verb;    /* "status"; NULL for a stand-alone command */
    const char *args;    /* "KEY VALUE", "[--to ID]" */
    const char *summary; /* one line for `dsctl --help` */
    const char *help;    /* the rest of `dsctl GROUP VERB --help` */
    int (*run)(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
};

/*  A flag a command accepts: "--to" with a value, "--stale" without. A
    flag may be given once, unless it repeats (`count` not NULL): then
    `value` is an array of `max` slots filled in order and *count says how
    many were given. */
typedef struct {
    const char *name;
    bool takes_value;
    const char **value; /* set to the value (takes_value) */
    bool *given;        /* set to true when present (may be NULL) */
    size_t *count;      /* repeating flags: how many values (may be NULL) */
    size_t max;         /* repeating flags: slots in `value` */
} ds_cmd_flag_t;

/*  The most flags one command accepts. */
#define DS_CMD_MAX_FLAGS 32

/*  Finds the command named by the first words of a command line: the
    stand-alone command `group`, else `group verb` (verb may be NULL).
    NULL if there is none. */
const ds_cmd_t *ds_cmd_find(const char *group, const char *verb);

/*  Words the command's name takes on the command line: 1 or 2. */
int ds_cmd_words(const ds_cmd_t *cmd);

/*  Writes the command's name ("cluster status", "deploy") into out. */
void ds_cmd_name(const ds_cmd_t *cmd, char *out, size_t outlen);

/*  True when `group` names a command group. */
bool ds_cmd_group_exists(const char *group);

/*  Writes `dsctl --help` (every command, global flags, exit codes). */
void ds_cmd_print_help(FILE *out);

/*  Writes the commands of one group (`dsctl cluster --help`). */
void ds_cmd_print_group_help(const char *group, FILE *out);

/*  Writes `dsctl GROUP VERB --help`. */
void ds_cmd_print_command_help(const ds_cmd_t *cmd, FILE *out);

/*  "dsctl 0.1.0 (protocol 1)" */
const char *ds_cmd_version(void);

/*  Prints "dsctl: <message>" and a pointer to the command's help to
    ctx->err. Returns DS_EXIT_USAGE. */
int ds_cmd_usage(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Splits argv into `flags` (at most DS_CMD_MAX_FLAGS) and up to `maxpos`
    positional arguments (exactly `minpos`..`maxpos`); "--" ends the flags.
    Returns 0, or DS_EXIT_USAGE after printing what was wrong (an unknown
    flag, a missing value, a flag given twice that does not repeat). */
int ds_cmd_parse(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, int argc, char **argv,
                 const ds_cmd_flag_t *flags, size_t nflags, char **pos, size_t minpos,
                 size_t maxpos);

/*  Sends a request and checks the reply is of type `want`. Returns
    DS_EXIT_OK and sets *reply_out (the caller frees it), or prints why
    not to ctx->err and returns the exit code: 3 cluster unreachable or
    no leader; for an error reply 2 when the cluster found the input
    invalid, 3 for no leader or quorum, else 1; 1 for an unexpected reply. */
int ds_cmd_request(ds_cmd_ctx_t *ctx, uint16_t type, const void *body, uint16_t want,
                   ds_msg_t **reply_out);

#define DS_CMD_WHY_MAX 2400 /* bytes of a `why` buffer that loses nothing */

/*  As ds_cmd_request(), but prints nothing: on failure `why` (whylen
    bytes) holds the message ds_cmd_request() would print, without the
    "dsctl: " prefix. For loops that retry (--wait, events --follow). */
int ds_cmd_request_quiet(ds_cmd_ctx_t *ctx, uint16_t type, const void *body, uint16_t want,
                         ds_msg_t **reply_out, char *why, size_t whylen);

/*  Checks a SERVICE argument: 1 to DS_MAX_NAME bytes of letters, digits,
    '.', '_' and '-', starting with a letter or digit. Returns 0, or
    DS_EXIT_USAGE after printing what was wrong. */
int ds_cmd_check_service(ds_cmd_ctx_t *ctx, const ds_cmd_t *cmd, const char *service);

/*  The service named `name` in a status reply, or NULL. */
const ds_service_status_t *ds_cmd_find_service(const ds_status_reply_t *st, const char *name);

/*  Parses a whole number from 1 to `max` (a version, --limit). Returns 0
    or DS_EINVAL. */
int ds_cmd_parse_count(const char *text, uint64_t max, uint64_t *out);

/*  The exit code for a DS_E code carried in an error reply. */
int ds_cmd_exit_for(int64_t code);

/* The commands (cmd_cluster.c, cmd_kv.c, cmd_release.c, cmd_status.c). */
int ds_cmd_deploy(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_rollback(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_promote(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_pause(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_resume(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_abort(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_status(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_history(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_workers(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_events(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_top(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_cluster_status(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_cluster_transfer(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_kv_put(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_kv_get(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
/* Security (cmd_security.c, docs/security.md). */
int ds_cmd_keygen(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_token_create(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_token_revoke(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_token_list(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_workers_remove(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);

#endif
