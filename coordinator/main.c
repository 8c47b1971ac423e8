/*  coordinator/main.c - dscoord: flags, config file, signals; then the node. */
#include "coordinator/config.h"
#include "coordinator/node.h"
#include "protocol/error.h"
#include "protocol/keys.h"
#include "protocol/log.h"
#include "protocol/options.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: dscoord --id N --data DIR --peers ID=ENDPOINT,... --rpc ENDPOINT "
                 "(--keys DIR | --insecure) [options]\n"
                 "       dscoord bootstrap-keys DIR --coordinators N --admin NAME\n"
                 "       dscoord keygen PATH [--name NAME]\n\n"
                 "Runs one member of the Gossamer coordinator cluster (3 or 5 members). The\n"
                 "members elect a leader with Raft and keep the desired release state in LMDB.\n"
                 "On first boot the members in --peers form the cluster; on restart the member\n"
                 "recovers its term, vote, log and snapshot from --data.\n\noptions:\n");
    ds_options_print_help(ds_coord_options, ds_coord_n_options, out);
    fprintf(out, "\nkeys (docs/security.md):\n"
                 "  bootstrap-keys DIR --coordinators N --admin NAME\n"
                 "      writes the first keys of a cluster into DIR: cluster.pub (give it to\n"
                 "      every worker and dsctl user), peers/coord-I.pub, admins/NAME.pub,\n"
                 "      viewers/, workers/, and private/ (key pairs, mode 0700). Copy DIR\n"
                 "      without private/ to every member, plus private/cluster.key* and that\n"
                 "      member's private/coord-I.key*; give private/NAME.key* to the admin.\n"
                 "  keygen PATH [--name NAME]\n"
                 "      writes a key pair: PATH (public, 0644) and PATH_secret (0600).\n"
                 "      Put a copy of PATH in DIR/admins/ or DIR/viewers/ to admit it.\n"
                 "\nexample (3 members on one machine):\n"
                 "  dscoord bootstrap-keys /etc/gossamer/keys --coordinators 3 --admin alice\n"
                 "  dscoord --id 1 --data /var/lib/gossamer/c1 --rpc tcp://127.0.0.1:7401 \\\n"
                 "          --keys /etc/gossamer/keys \\\n"
                 "          --peers 1=tcp://127.0.0.1:7402,2=tcp://127.0.0.1:7412,"
                 "3=tcp://127.0.0.1:7422\n"
                 "\nSIGTERM or SIGINT stops it cleanly. Exit status: 0 clean stop, 1 failure,\n"
                 "2 bad usage.\n");
}

static int s_load_config(ds_coord_config_t *cfg, int argc, char **argv, bool *help)
{
    char err[512];
    int rc = ds_options_load(ds_coord_options, ds_coord_n_options, cfg, argc, argv, help, err,
                             sizeof err);
    if (rc == 0 && !*help)
        rc = ds_coord_config_finish(cfg, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "dscoord: %s\n", err);
    return rc;
}

/*  dscoord bootstrap-keys DIR --coordinators N --admin NAME */
static int s_bootstrap_keys(int argc, char **argv)
{
    const char *dir = NULL, *admin = NULL;
    long n = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--coordinators") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc)
            admin = argv[++i];
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "dscoord bootstrap-keys: unexpected \"%s\"\n", argv[i]);
            dir = NULL;
            break;
        }
    }
    if (!dir || !admin || n < 1 || n > (long)DS_KEYS_MAX_COORD) {
        fprintf(stderr, "usage: dscoord bootstrap-keys DIR --coordinators N (1..%u) --admin NAME\n",
                DS_KEYS_MAX_COORD);
        return 2;
    }
    char err[1024];
    int rc = ds_keys_bootstrap(dir, (unsigned)n, admin, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "dscoord bootstrap-keys: %s\n", err);
        return rc == DS_EINVAL ? 2 : 1;
    }
    printf("wrote the keys of a %ld-member cluster to %s:\n"
           "  every coordinator: --keys DIR with %s/private/cluster.key* and its own "
           "private/coord-I.key*\n"
           "  workers and dsctl: %s/cluster.pub\n"
           "  admin %s: %s/private/%s.key and %s.key_secret (dsctl --key)\n",
           n, dir, dir, dir, admin, dir, admin, admin);
    return 0;
}

/*  dscoord keygen PATH [--name NAME] */
static int s_keygen(int argc, char **argv)
{
    const char *path = NULL, *name = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            path = NULL;
            break;
        }
    }
    if (!path) {
        fprintf(stderr, "usage: dscoord keygen PATH [--name NAME]\n");
        return 2;
    }
    if (!name) {
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
    }
    char err[1024];
    int rc = ds_keys_generate(path, name, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "dscoord keygen: %s\n", err);
        return rc == DS_EINVAL ? 2 : 1;
    }
    printf("wrote %s (public) and %s_secret (secret, mode 0600)\n", path, path);
    return 0;
}

int main(int argc, char **argv)
{
    static ds_coord_config_t cfg;
    if (argc > 1 && strcmp(argv[1], "bootstrap-keys") == 0)
        return s_bootstrap_keys(argc, argv);
    if (argc > 1 && strcmp(argv[1], "keygen") == 0)
        return s_keygen(argc, argv);
    bool help = false;
    if (s_load_config(&cfg, argc, argv, &help) != 0) {
        fprintf(stderr, "run 'dscoord --help' for the flags\n");
        return 2;
    }
    if (help) {
        s_usage(stdout);
        return 0;
    }
    ds_log_level_t level;
    if (ds_log_level_parse(cfg.log_level, &level) != 0) {
        fprintf(stderr, "dscoord: --log-level: \"%s\" is not debug, info, warn or error\n",
                cfg.log_level);
        return 2;
    }
    ds_log_init(level, stderr);
    zsys_handler_set(NULL); /* our handlers, not czmq's */
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    signal(SIGPIPE, SIG_IGN);

    ds_node_t *node = NULL;
    char err[512];
    int rc = ds_node_new(&node, &cfg, err, sizeof err);
    if (rc != 0) {
        DS_LOG(DS_LOG_ERROR, "main", "cannot start", "err=%s detail=%s", ds_errname(rc), err);
        return 1;
    }
    rc = ds_node_run(node, &s_stop);
    ds_node_destroy(&node);
    zsys_shutdown();
    return rc == 0 ? 0 : 1;
}
