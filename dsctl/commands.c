/*  dsctl/commands.c - the command table and the help texts. */
#include "dsctl/cmd.h"

#include "protocol/limits.h"

#include <string.h>

#ifndef DS_VERSION
#define DS_VERSION "dev"
#endif
#define S_STR2(x) #x
#define S_STR(x)  S_STR2(x)

/* The kv help states the limits in words; keep them in step. */
_Static_assert(DS_MAX_KV_KEY == 255 && DS_MAX_KV_VALUE == 65536, "update the kv put help");

static const ds_cmd_t s_cmds[] = {
    {"cluster", "status", "", "show members, the leader, term, commit and applied index, lag",
     "Asks the leader for the state of every coordinator: its role, the log index\n"
     "it has replicated (MATCH) and how far it trails the leader (LAG).\n",
     ds_cmd_cluster_status},
    {"cluster", "transfer-leader", "[--to ID]", "hand leadership to another member",
     "Asks the leader to step down in favour of member ID, or of the most\n"
     "caught-up follower when --to is not given.\n"
     "\n"
     "flags:\n"
     "  --to ID   the member to become leader (a member id, e.g. 2)\n",
     ds_cmd_cluster_transfer},
    {"kv", "put", "KEY VALUE", "write a cluster setting; prints its commit index",
     "Writes VALUE under KEY in the cluster's replicated key-value table. It\n"
     "returns once the write is committed on a majority and fsynced.\n"
     "KEY: 1 to 255 bytes; VALUE: at most 65536 bytes (64 KiB).\n"
     "Put `--` before a VALUE that starts with '-'.\n",
     ds_cmd_kv_put},
    {"kv", "get", "KEY [--stale]", "read a cluster setting (exit 1 if not found)",
     "Prints the value stored under KEY. By default the read is linearizable\n"
     "(the leader confirms it still leads); --stale lets any member answer from\n"
     "its own, possibly older, copy.\n"
     "\n"
     "flags:\n"
     "  --stale   accept a possibly stale value from any member\n",
     ds_cmd_kv_get},
};

#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])

const ds_cmd_t *ds_cmd_find(const char *group, const char *verb)
{
    for (size_t i = 0; group && verb && i < S_NCMDS; i++)
        if (strcmp(s_cmds[i].group, group) == 0 && strcmp(s_cmds[i].verb, verb) == 0)
            return &s_cmds[i];
    return NULL;
}

bool ds_cmd_group_exists(const char *group)
{
    for (size_t i = 0; group && i < S_NCMDS; i++)
        if (strcmp(s_cmds[i].group, group) == 0)
            return true;
    return false;
}

const char *ds_cmd_version(void)
{
    return "dsctl " DS_VERSION " (protocol " S_STR(DS_PROTOCOL_VERSION) ")";
}

static void s_print_line(const ds_cmd_t *cmd, FILE *out)
{
    char name[96];
    snprintf(name, sizeof name, "%s %s %s", cmd->group, cmd->verb, cmd->args);
    fprintf(out, "  %-36s %s\n", name, cmd->summary);
}

static const char s_globals[] =
    "global flags (anywhere on the line):\n"
    "  --coordinators LIST   rpc endpoints, comma-separated: tcp://HOST:PORT,...\n"
    "                        (else $DSCTL_COORDINATORS, else the config file)\n"
    "  -o, --output FORMAT   table (default) or json\n"
    "  --timeout DURATION    give up after this long: 500ms, 5s, 1m (default 5s)\n"
    "  -h, --help            show help; `dsctl COMMAND --help` for one command\n"
    "  --version             print the version\n";

static const char s_exit_codes[] = "exit codes:\n"
                                   "  0  success\n"
                                   "  1  the operation ran and failed (e.g. kv get: not found)\n"
                                   "  2  bad usage or invalid input\n"
                                   "  3  cluster unreachable or no leader\n";

void ds_cmd_print_help(FILE *out)
{
    fputs("dsctl - control a Gossamer cluster\n\n"
          "usage: dsctl [global flags] COMMAND [arguments] [flags]\n\n"
          "commands:\n",
          out);
    for (size_t i = 0; i < S_NCMDS; i++)
        s_print_line(&s_cmds[i], out);
    fprintf(out, "\n%s\n", s_globals);
    fputs("config file: $DSCTL_CONFIG, else ~/" DS_DSCTL_CONFIG_DEFAULT ", with lines\n"
          "  coordinators = tcp://10.0.0.1:7001, tcp://10.0.0.2:7001\n"
          "  timeout = 5s\n"
          "  output = table\n\n",
          out);
    fputs(s_exit_codes, out);
}

void ds_cmd_print_group_help(const char *group, FILE *out)
{
    fprintf(out, "usage: dsctl %s COMMAND [arguments] [flags]\n\ncommands:\n", group);
    for (size_t i = 0; i < S_NCMDS; i++)
        if (strcmp(s_cmds[i].group, group) == 0)
            s_print_line(&s_cmds[i], out);
    fputs("\nrun `dsctl --help` for global flags and exit codes\n", out);
}

void ds_cmd_print_command_help(const ds_cmd_t *cmd, FILE *out)
{
    fprintf(out, "usage: dsctl %s %s %s\n\n%s.\n\n%s\n%s\n%s", cmd->group, cmd->verb, cmd->args,
            cmd->summary, cmd->help, s_globals, s_exit_codes);
}
