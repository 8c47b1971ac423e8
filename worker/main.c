/*  worker/main.c - dsworker: flags, config file, signals; then the agent. */
#include "protocol/error.h"
#include "protocol/limits.h"
#include "protocol/log.h"
#include "protocol/options.h"
#include "worker/agent.h"
#include "worker/config.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef DS_VERSION
#define DS_VERSION "0.1.0"
#endif
#define S_STR_(x) #x
#define S_STR(x)  S_STR_(x)

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: dsworker --data DIR --join ENDPOINT,... [--name NAME] [--label K=V]... "
                 "[options]\n\n"
                 "Runs the Gossamer agent on this machine: joins the coordinator cluster,\n"
                 "runs the releases assigned to it, health-checks them and reports telemetry.\n"
                 "The data directory keeps the worker's identity and its last assignment: a\n"
                 "restarted worker is the same worker and resumes what it ran, even with every\n"
                 "coordinator down.\n\noptions:\n");
    ds_options_print_help(ds_worker_options, ds_worker_n_options, out);
    fprintf(out, "\nexample:\n"
                 "  dsworker --name w1 --data /var/lib/gossamer/w1 \\\n"
                 "           --join tcp://10.0.0.1:7101,tcp://10.0.0.2:7101 --label zone=a \\\n"
                 "           --cluster-key /etc/gossamer/cluster.pub --token ID.SECRET\n"
                 "(the token, from `dsctl token create`, is needed for the first join only)\n"
                 "\nSIGTERM or SIGINT stops it cleanly (instances keep running unless\n"
                 "--on-exit stop). Exit status: 0 clean stop, 1 failure, 2 bad usage.\n");
}

static int s_load_config(ds_worker_config_t *cfg, int argc, char **argv, bool *help)
{
    char err[512];
    int rc = ds_options_load(ds_worker_options, ds_worker_n_options, cfg, argc, argv, help, err,
                             sizeof err);
    if (rc == 0 && !*help && !cfg->version) {
        char host[256] = "";
        if (gethostname(host, sizeof host - 1) != 0)
            host[0] = '\0';
        rc = ds_worker_config_finish(cfg, host, err, sizeof err);
    }
    if (rc != 0)
        fprintf(stderr, "dsworker: %s\n", err);
    return rc;
}

static void s_signals(void)
{
    zsys_handler_set(NULL); /* our handlers, not czmq's */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal; /* no SA_RESTART: a signal ends the poll */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    static ds_worker_config_t cfg;
    bool help = false;
    if (s_load_config(&cfg, argc, argv, &help) != 0) {
        fprintf(stderr, "run 'dsworker --help' for the flags\n");
        return 2;
    }
    if (help) {
        s_usage(stdout);
        return 0;
    }
    if (cfg.version) {
        printf("dsworker %s (protocol %s)\n", DS_VERSION, S_STR(DS_PROTOCOL_VERSION));
        return 0;
    }
    ds_log_level_t level = DS_LOG_INFO;
    if (ds_log_level_parse(cfg.log_level, &level) != 0)
        return 2; /* ds_worker_config_finish checked it */
    ds_log_init(level, stderr);
    s_signals();

    ds_agent_t *agent = NULL;
    char err[1024];
    int rc = ds_agent_new(&agent, &cfg, DS_VERSION, err, sizeof err);
    if (rc != 0) {
        DS_LOG(DS_LOG_ERROR, "main", "cannot start", "err=%s detail=%s", ds_errname(rc), err);
        zsys_shutdown();
        return 1;
    }
    rc = ds_agent_run(agent, &s_stop);
    ds_agent_destroy(&agent);
    zsys_shutdown();
    return rc == 0 ? 0 : 1;
}
