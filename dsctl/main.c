/*  dsctl/main.c - the dsctl executable: global flags, then dispatch to
    the command (dsctl/cmd_*.c). No logic lives here. */
#include "dsctl/cmd.h"

#include <czmq.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    ds_dsctl_sources_t src;
    bool help;
    bool version;
    int nwords;
    char **words; /* everything that is not a global flag, in order */
} s_opts_t;

static int s_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int s_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dsctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(see `dsctl --help`)\n", stderr);
    return DS_EXIT_USAGE;
}

/*  If argv[*i] is the flag `name` ("--timeout 5s", "--timeout=5s", and for
    one-letter flags "-o json", "-ojson"), stores its value and returns 1;
    returns 0 when it is another word, or -1 when the value is missing. */
static int s_valued(int argc, char **argv, int *i, const char *name, const char **out)
{
    size_t n = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=' || (n == 2 && arg[n] != '\0')) {
        *out = arg + n + (arg[n] == '=');
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[++*i];
    return 1;
}

/*  Recognises one global flag at argv[*i]: 1 taken, 0 not global, -1 no value. */
static int s_global(int argc, char **argv, int *i, s_opts_t *o)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        o->help = true;
        return 1;
    }
    if (strcmp(arg, "--version") == 0) {
        o->version = true;
        return 1;
    }
    int rc = s_valued(argc, argv, i, "--coordinators", &o->src.coordinators);
    if (rc == 0)
        rc = s_valued(argc, argv, i, "--timeout", &o->src.timeout);
    if (rc == 0)
        rc = s_valued(argc, argv, i, "--output", &o->src.output);
    if (strcmp(arg, "--insecure") == 0) {
        o->src.insecure = true;
        return 1;
    }
    if (rc == 0)
        rc = s_valued(argc, argv, i, "-o", &o->src.output);
    if (rc == 0)
        rc = s_valued(argc, argv, i, "--key", &o->src.key);
    if (rc == 0)
        rc = s_valued(argc, argv, i, "--cluster-key", &o->src.cluster_key);
    return rc;
}

static int s_parse_globals(int argc, char **argv, s_opts_t *o)
{
    o->words = calloc((size_t)argc + 1, sizeof *o->words);
    if (!o->words)
        return DS_EXIT_FAILED;
    bool rest = false;
    for (int i = 1; i < argc; i++) {
        int rc = rest ? 0 : s_global(argc, argv, &i, o);
        if (rc < 0)
            return s_usage("%s needs a value%s", argv[i],
                           strcmp(argv[i], "--timeout") == 0 ? " (use 500ms, 5s, 1m)" : "");
        if (rc == 0)
            o->words[o->nwords++] = argv[i];
        if (strcmp(argv[i], "--") == 0)
            rest = true;
    }
    return 0;
}

/*  Finds the command the words name, or handles help and usage errors:
    returns 0 with *cmd set, or the exit code to leave with. */
static int s_find(const s_opts_t *o, const ds_cmd_t **cmd)
{
    const char *group = o->nwords > 0 ? o->words[0] : NULL;
    const char *verb = o->nwords > 1 && o->words[1][0] != '-' ? o->words[1] : NULL;
    if (!group) {
        ds_cmd_print_help(o->help ? stdout : stderr);
        return o->help ? DS_EXIT_OK : s_usage("no command given");
    }
    if (group[0] == '-')
        return s_usage("unknown flag \"%s\"", group);
    if (!ds_cmd_group_exists(group))
        return s_usage("unknown command \"%s\"", group);
    *cmd = ds_cmd_find(group, verb);
    if (*cmd)
        return 0;
    /* From here on `group` is a group of commands (a stand-alone command
       is always found). */
    ds_cmd_print_group_help(group, o->help && !verb ? stdout : stderr);
    if (o->help && !verb)
        return DS_EXIT_OK;
    if (!verb)
        return s_usage("%s: missing command", group);
    return s_usage("%s: unknown command \"%s\"", group, verb);
}

static int s_run(const s_opts_t *o, const ds_cmd_t *cmd)
{
    ds_cmd_ctx_t ctx = {.client = NULL, .out = stdout, .err = stderr};
    char err[1024];
    if (cmd->run == ds_cmd_keygen) /* local: needs no cluster */
        return cmd->run(&ctx, cmd, o->nwords - ds_cmd_words(cmd), o->words + ds_cmd_words(cmd));
    if (ds_dsctl_settings_resolve(&o->src, &ctx.settings, err, sizeof err) != 0) {
        fprintf(stderr, "dsctl: %s\n", err);
        return DS_EXIT_USAGE;
    }
    /* Ctrl-C should end dsctl at once, not set czmq's interrupted flag. */
    zsys_handler_set(NULL);
    int skip = ds_cmd_words(cmd);
    int rc = cmd->run(&ctx, cmd, o->nwords - skip, o->words + skip);
    ds_client_destroy(&ctx.client);
    ds_transport_security_destroy(&ctx.sec);
    if (fflush(stdout) != 0 && rc == DS_EXIT_OK)
        rc = DS_EXIT_FAILED;
    return rc;
}

int main(int argc, char **argv)
{
    s_opts_t o;
    memset(&o, 0, sizeof o);
    o.src.env_coordinators = getenv("DSCTL_COORDINATORS");
    o.src.config_path = getenv("DSCTL_CONFIG");
    o.src.home = getenv("HOME");
    o.src.env_key = getenv("DSCTL_KEY");
    o.src.env_cluster_key = getenv("DSCTL_CLUSTER_KEY");
    const ds_cmd_t *cmd = NULL;
    int rc = s_parse_globals(argc, argv, &o);
    if (rc == 0 && o.version)
        puts(ds_cmd_version());
    else if (rc == 0)
        rc = s_find(&o, &cmd);
    if (rc == 0 && cmd && o.help)
        ds_cmd_print_command_help(cmd, stdout);
    else if (rc == 0 && cmd)
        rc = s_run(&o, cmd);
    free(o.words);
    return rc;
}
