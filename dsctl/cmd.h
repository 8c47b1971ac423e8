/*  dsctl/cmd.h - dsctl's commands: the table main.c dispatches on, the
    context they run in, and the helpers they share.

    A command gets the words after its name (global flags already removed
    by main.c), parses its own flags and arguments, talks to the cluster
    through ds_cmd_request(), prints to ctx->out (results) and ctx->err
    (messages for people), and returns a process exit code (the contract
    in docs/dsctl.md):
        0  success
        1  the operation ran and failed (kv get: not found; an error reply)
        2  bad usage or invalid input
        3  cluster unreachable or no leader
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
    FILE *out;
    FILE *err;
} ds_cmd_ctx_t;

typedef struct ds_cmd ds_cmd_t;
struct ds_cmd {
    const char *group;   /* "cluster" */
    const char *verb;    /* "status" */
    const char *args;    /* "KEY VALUE", "[--to ID]" */
    const char *summary; /* one line for `dsctl --help` */
    const char *help;    /* the rest of `dsctl GROUP VERB --help` */
    int (*run)(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
};

/*  A flag a command accepts: "--to" with a value, "--stale" without. */
typedef struct {
    const char *name;
    bool takes_value;
    const char **value; /* set to the value (takes_value) */
    bool *given;        /* set to true when present (may be NULL) */
} ds_cmd_flag_t;

/*  Finds the command `group verb`; NULL if there is none. */
const ds_cmd_t *ds_cmd_find(const char *group, const char *verb);

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

/*  Splits argv into `flags` and up to `maxpos` positional arguments
    (exactly `minpos`..`maxpos`); "--" ends the flags. Returns 0, or
    DS_EXIT_USAGE after printing what was wrong. */
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

/*  The exit code for a DS_E code carried in an error reply. */
int ds_cmd_exit_for(int64_t code);

/* The commands (cmd_cluster.c, cmd_kv.c). */
int ds_cmd_cluster_status(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_cluster_transfer(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_kv_put(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);
int ds_cmd_kv_get(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv);

#endif
