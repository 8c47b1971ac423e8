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

#define S_WAIT_HELP                                                                                \
    "  --wait                   follow the deployment until it ends, with a progress\n"            \
    "                           line on stderr; exit 0 when it succeeded, 1 when it\n"             \
    "                           failed, rolled back, was aborted or was replaced\n"                \
    "  --timeout DURATION       with --wait: stop waiting after this long (default\n"              \
    "                           30m; exit 1, the deployment goes on)\n"

static const ds_cmd_t s_cmds[] = {
    {"deploy", NULL, "SERVICE (--spec FILE | --artifact PATH|URL --cmd CMD) [flags] [--wait]",
     "release a new version of SERVICE (canary first)",
     "Writes a new release of SERVICE and starts its deployment: the canary\n"
     "workers first, then waves of --max-parallel workers once the canary has\n"
     "baked and stayed healthy. The spec comes from a YAML file (--spec, see\n"
     "docs/spec.md) or from the flags below; flags given together with --spec\n"
     "override the file's values (--env and --selector per key). The spec is\n"
     "checked here before anything is sent; a bad one exits 2 and names the\n"
     "field (and the file, line and column).\n"
     "\n"
     "flags:\n"
     "  --spec FILE              the release spec (YAML); `-` reads stdin\n"
     "  --artifact PATH|URL      what to run: a directory, a .tar.gz or an http(s)\n"
     "                           URL; a relative path is made absolute (from the\n"
     "                           current directory, or the spec file's directory\n"
     "                           for an artifact given in the file)\n"
     "  --cmd CMD                the command line; ${PORT} is the instance's port\n"
     "  --sha256 HEX             digest of the artifact file (64 hex characters)\n"
     "  --env K=V                environment of the process (repeat for more)\n"
     "  --selector K=V           only workers with this label (repeat: all must match)\n"
     "  --canary N|P%            workers that get the release first (default 1)\n"
     "  --bake DURATION          healthy time of the canary before it passes (30s)\n"
     "  --max-parallel N|P%      workers updated per wave after the canary (default 1)\n"
     "  --health-http PATH       health check: GET PATH on the instance's port, 2xx\n"
     "  --health-tcp             health check: a TCP connect to the instance's port\n"
     "  --health-exec CMD        health check: CMD exits 0\n"
     "  --healthy-deadline DUR   time an instance has to become healthy (5m)\n"
     "  --progress-deadline DUR  the deployment fails after this long without\n"
     "                           progress (10m)\n"
     "  --no-auto-promote        stop after the canary passes; `dsctl promote` goes on\n"
     "  --force                  abort a live deployment of SERVICE first (without it,\n"
     "                           a deploy while one is live is refused: DS_ECONFLICT)\n"
     "  --dry-run                run the release's tests on one worker; deploy nothing\n"
     "                           (exit 0 passed, 1 failed)\n" S_WAIT_HELP,
     ds_cmd_deploy},
    {"rollback", NULL, "SERVICE [--to VERSION] [--reason TEXT] [--wait]",
     "put the release before (or VERSION) back",
     "Deploys an earlier release of SERVICE again: the last good release\n"
     "when SERVICE is not on it (a deployment is live or failed), otherwise\n"
     "the newest older release whose deployment succeeded; or VERSION.\n"
     "A live deployment is aborted first.\n"
     "\n"
     "flags:\n"
     "  --to VERSION             the release to go back to (see `dsctl history`)\n"
     "  --reason TEXT            recorded in the history\n" S_WAIT_HELP,
     ds_cmd_rollback},
    {"promote", NULL, "SERVICE [--reason TEXT]", "promote a baking or passed canary now",
     "Ends the canary's bake now (baking) or starts the waves after a canary\n"
     "that passed without --no-auto-promote's automatic promotion\n"
     "(canary_passed). Anything else is refused (DS_ESTATE, exit 1).\n"
     "\n"
     "flags:\n"
     "  --reason TEXT   recorded in the history\n",
     ds_cmd_promote},
    {"pause", NULL, "SERVICE [--reason TEXT]", "freeze a live deployment",
     "Freezes the live deployment of SERVICE where it is: no new wave, no\n"
     "promotion; instances keep running. `dsctl resume` goes on.\n"
     "\n"
     "flags:\n"
     "  --reason TEXT   recorded in the history\n",
     ds_cmd_pause},
    {"resume", NULL, "SERVICE [--reason TEXT]", "continue a paused deployment",
     "Continues a paused deployment from the state it was paused in.\n"
     "\n"
     "flags:\n"
     "  --reason TEXT   recorded in the history\n",
     ds_cmd_resume},
    {"abort", NULL, "SERVICE [--reason TEXT]", "stop a live deployment where it is",
     "Stops the live deployment of SERVICE: no further worker gets the new\n"
     "version, and workers that have it keep it (use `dsctl rollback` to put\n"
     "the previous release back).\n"
     "\n"
     "flags:\n"
     "  --reason TEXT   recorded in the history\n",
     ds_cmd_abort},
    {"status", NULL, "[SERVICE] [--stale]", "services, their deployments and instances",
     "Without SERVICE: one line per service (versions, its latest deployment\n"
     "and its progress). With SERVICE: its deployment and one line per instance\n"
     "(worker, version, state, health). An unknown SERVICE exits 1.\n"
     "\n"
     "flags:\n"
     "  --stale   let any coordinator answer from its own, possibly older, copy\n",
     ds_cmd_status},
    {"history", NULL, "SERVICE [--limit N] [--stale]",
     "deploys, rollbacks and verdicts, newest first",
     "Lists what happened to SERVICE, newest first: each deploy, promote,\n"
     "pause, resume, abort and rollback, and the controller's verdicts, with\n"
     "the outcome, who did it and why.\n"
     "\n"
     "flags:\n"
     "  --limit N   at most N rows (default: what the cluster sends)\n"
     "  --stale     let any coordinator answer from its own, possibly older, copy\n",
     ds_cmd_history},
    {"workers", NULL, "[--stale]", "the workers: state, labels, last heartbeat",
     "Lists the workers the cluster knows: up or down, their labels, how long\n"
     "ago they were last heard from, and their telemetry.\n"
     "\n"
     "flags:\n"
     "  --stale   let any coordinator answer from its own, possibly older, copy\n",
     ds_cmd_workers},
    {"top", NULL, "[SERVICE] [--once] [--interval DUR]",
     "live view of workers and service versions (like top)",
     "Shows, refreshed every --interval (default 2s) until Ctrl-C, each service\n"
     "version's last minute as the leader measured it (instances, healthy,\n"
     "requests per second, error ratio, p99 latency, CPU, memory) and the\n"
     "workers (state, load, CPU, memory, last heartbeat). --once prints one\n"
     "sample; -o json prints one JSON document {workers, services}.\n"
     "\n"
     "flags:\n"
     "  --once           one sample, then exit\n"
     "  --interval DUR   time between samples (default 2s)\n",
     ds_cmd_top},
    {"events", NULL, "[--follow] [--limit N]", "recent cluster events; --follow streams them",
     "Prints the leader's recent events (deployments, verdicts, workers coming\n"
     "and going), oldest first, and exits. With --follow it then waits for new\n"
     "ones and prints each as it comes until interrupted (Ctrl-C: exit 0);\n"
     "-o json then prints one JSON object per line. Events are kept by each\n"
     "coordinator: after a change of leader the stream goes on from the new\n"
     "leader's events newer than the last one printed.\n"
     "\n"
     "flags:\n"
     "  --follow    keep printing new events\n"
     "  --limit N   print at most the N most recent events first (default 100)\n",
     ds_cmd_events},
    {"workers", "remove", "NAME", "remove a worker and revoke its key",
     "Deletes worker NAME from the cluster with its assignments and revokes\n"
     "its key: every coordinator refuses its connections and messages from\n"
     "the moment the removal applies. To bring the machine back, give it a\n"
     "new key (delete DATA/worker.key*) and a join token.\n",
     ds_cmd_workers_remove},
    {"token", "create", "[--ttl DURATION] [--uses N] [--label K=V]... [--id ID]",
     "make a join token for new workers",
     "Makes a join token and prints it (once: the cluster keeps only a hash of\n"
     "its secret). A new worker joins with `dsworker --token TOKEN`; on a valid\n"
     "join the cluster pins the worker's key, and from then on the key alone\n"
     "is enough. Expired, revoked, used up or wrong tokens are refused.\n"
     "\n"
     "flags:\n"
     "  --ttl DURATION   the token expires after this long (default 24h; 0 never)\n"
     "  --uses N         joins it admits (default 1; 0 unlimited)\n"
     "  --label K=V      a label given to every worker that joins with it (repeat)\n"
     "  --id ID          the token's id (default: random)\n",
     ds_cmd_token_create},
    {"token", "revoke", "ID", "revoke a join token",
     "Revokes the join token ID: joins with it are refused from now on.\n"
     "Workers that already joined with it keep their keys.\n",
     ds_cmd_token_revoke},
    {"token", "list", "[--stale]", "the join tokens: expiry, uses, labels",
     "Lists the join tokens (never their secrets): when each expires, how\n"
     "many joins it admits and has admitted, whether it was revoked.\n"
     "\n"
     "flags:\n"
     "  --stale   let any coordinator answer from its own, possibly older, copy\n",
     ds_cmd_token_list},
    {"keygen", NULL, "NAME [--out DIR]", "write a key pair for dsctl or a new admin",
     "Writes a CURVE key pair: DIR/NAME.key (public, 0644) and\n"
     "DIR/NAME.key_secret (0600), DIR being the current directory unless\n"
     "--out. Needs no cluster. To admit it, copy DIR/NAME.key into the\n"
     "coordinators' keys directory as admins/NAME.pub (or viewers/NAME.pub)\n"
     "and restart them; use it with --key DIR/NAME.key.\n"
     "\n"
     "flags:\n"
     "  --out DIR   where to write (default .)\n",
     ds_cmd_keygen},
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
    /* `group verb` first: `workers remove` is a command of its own next to
       the stand-alone `workers`. */
    for (size_t i = 0; group && verb && i < S_NCMDS; i++)
        if (s_cmds[i].verb && strcmp(s_cmds[i].group, group) == 0 &&
            strcmp(s_cmds[i].verb, verb) == 0)
            return &s_cmds[i];
    for (size_t i = 0; group && i < S_NCMDS; i++)
        if (!s_cmds[i].verb && strcmp(s_cmds[i].group, group) == 0)
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
    char name[64], line[128];
    ds_cmd_name(cmd, name, sizeof name);
    int n = snprintf(line, sizeof line, "%s%s%s", name, cmd->args[0] ? " " : "", cmd->args);
    if (n > 36) /* long arguments: the first one, the rest in the command's help */
        snprintf(line, sizeof line, "%s %.*s ...", name, (int)strcspn(cmd->args, " "), cmd->args);
    fprintf(out, "  %-36s %s\n", line, cmd->summary);
}

static const char s_globals[] =
    "global flags (anywhere on the line):\n"
    "  --coordinators LIST   rpc endpoints, comma-separated: tcp://HOST:PORT,...\n"
    "                        (else $DSCTL_COORDINATORS, else the config file)\n"
    "  -o, --output FORMAT   table (default) or json\n"
    "  --timeout DURATION    give up after this long: 500ms, 5s, 1m (default 5s;\n"
    "                        with --wait, the limit of the wait: default 30m)\n"
    "  --key FILE            your key pair (admin or viewer; else $DSCTL_KEY)\n"
    "  --cluster-key FILE    the cluster's public key, cluster.pub (else\n"
    "                        $DSCTL_CLUSTER_KEY)\n"
    "  --insecure            no CURVE, for a cluster started with --insecure\n"
    "  -h, --help            show help; `dsctl COMMAND --help` for one command\n"
    "  --version             print the version\n";

static const char s_exit_codes[] = "exit codes:\n"
                                   "  0  success\n"
                                   "  1  the operation ran and failed (an error reply such as\n"
                                   "     DS_ENOTFOUND, DS_ECONFLICT or DS_EFORBIDDEN: this key\n"
                                   "     may not do that; deploy --wait ended\n"
                                   "     failed, rolled_back or aborted; kv get: not found)\n"
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
          "  output = table\n"
          "  key = /home/alice/.config/gossamer/alice.key\n"
          "  cluster-key = /etc/gossamer/cluster.pub\n\n",
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
    char name[64];
    ds_cmd_name(cmd, name, sizeof name);
    fprintf(out, "usage: dsctl %s %s\n\n%s.\n\n%s\n%s\n%s", name, cmd->args, cmd->summary,
            cmd->help, s_globals, s_exit_codes);
}
