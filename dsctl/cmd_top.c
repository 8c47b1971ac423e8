/*  dsctl/cmd_top.c - `dsctl top`: a live view of the workers and of each
    service version's last minute (instances, health, request rate, error
    ratio, p99, CPU, memory), refreshed until SIGINT or SIGTERM;
    `--once` prints one sample, `-o json` one JSON document. */
#include "dsctl/cmd.h"

#include "dsctl/json.h"
#include "dsctl/render.h"
#include "dsctl/table.h"
#include "protocol/options.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define S_DEFAULT_INTERVAL_MS 2000u

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ---- one sample ------------------------------------------------------------------- */

static void s_json(ds_json_t *j, const ds_top_reply_t *t)
{
    ds_json_object_begin(j);
    ds_json_key(j, "workers");
    ds_render_workers_json(j, &(ds_workers_reply_t){t->n_workers, t->workers});
    ds_json_key(j, "services");
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < t->n_services; i++) {
        const ds_top_service_t *s = &t->services[i];
        ds_json_object_begin(j);
        ds_json_key(j, "service");
        ds_json_str(j, s->service);
        ds_json_key_u64(j, "version", s->version);
        ds_json_key_u64(j, "instances", s->instances);
        ds_json_key_u64(j, "healthy", s->healthy);
        ds_json_key_f64(j, "request_rate", s->request_rate);
        ds_json_key_f64(j, "error_ratio", s->error_ratio);
        ds_json_key_f64(j, "p99_ms", s->p99_ms);
        ds_json_key_f64(j, "cpu_pct", s->cpu_pct);
        ds_json_key_u64(j, "rss_kb", s->rss_kb);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
    ds_json_object_end(j);
}

static int s_services_table(FILE *out, const ds_top_reply_t *t)
{
    static const char *const headers[] = {"SERVICE", "VERSION", "INSTANCES", "HEALTHY", "REQ/S",
                                          "ERRORS",  "P99",     "CPU",       "RSS"};
    if (t->n_services == 0) {
        fputs("no service has reported telemetry in the last minute\n", out);
        return 0;
    }
    ds_table_t *tb = ds_table_new(headers, 9);
    int rc = tb ? 0 : DS_EXIT_FAILED;
    for (uint32_t i = 0; rc == 0 && i < t->n_services; i++) {
        const ds_top_service_t *s = &t->services[i];
        char name[DS_MAX_NAME + 1], v[24], inst[16], ok[16], rate[24], err[24], p99[24], cpu[24],
            rss[24];
        ds_render_clean(s->service, name, sizeof name);
        snprintf(v, sizeof v, "v%llu", (unsigned long long)s->version);
        snprintf(inst, sizeof inst, "%u", s->instances);
        snprintf(ok, sizeof ok, "%u", s->healthy);
        snprintf(rate, sizeof rate, "%.1f", s->request_rate);
        snprintf(err, sizeof err, "%.2f%%", 100.0 * s->error_ratio);
        snprintf(p99, sizeof p99, "%.1f ms", s->p99_ms);
        snprintf(cpu, sizeof cpu, "%.0f%%", s->cpu_pct);
        snprintf(rss, sizeof rss, "%.1f MiB", (double)s->rss_kb / 1024.0);
        const char *cells[] = {name, v, inst, ok, rate, err, p99, cpu, rss};
        rc = ds_table_add_row(tb, cells);
    }
    for (size_t c = 2; tb && c < 9; c++)
        ds_table_align_right(tb, c);
    if (rc == 0)
        rc = ds_table_print(tb, out);
    ds_table_destroy(&tb);
    return rc;
}

static int s_text(FILE *out, const ds_top_reply_t *t, bool clear)
{
    if (clear)
        fputs("\033[H\033[2J", out);
    int rc = s_services_table(out, t);
    fputc('\n', out);
    if (rc == 0)
        rc = ds_render_workers_table(out, &(ds_workers_reply_t){t->n_workers, t->workers});
    fflush(out);
    return rc;
}

/* ---- the command ------------------------------------------------------------------- */

int ds_cmd_top(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool once = false;
    const char *every = NULL;
    ds_cmd_flag_t flags[] = {{"--once", false, NULL, &once, NULL, 0},
                             {"--interval", true, &every, NULL, NULL, 0}};
    char *service = NULL;
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 2, &service, 0, 1);
    if (rc != 0)
        return rc;
    uint64_t interval = S_DEFAULT_INTERVAL_MS;
    if (every && (ds_parse_duration_ms(every, &interval) != 0 || interval < 100))
        return ds_cmd_usage(ctx, self, "--interval: \"%s\" is not a duration of 100ms or more",
                            every);
    if (service && (rc = ds_cmd_check_service(ctx, self, service)) != 0)
        return rc;
    bool json = ctx->settings.output != DS_OUTPUT_TABLE;
    once = once || json;
    bool clear = !once && isatty(fileno(ctx->out));
    if (!once)
        s_catch_signals();
    ds_query_req_t req = {.service = service ? service : (char *)(uintptr_t) "", .stale = false};
    do {
        ds_msg_t *reply = NULL;
        rc = ds_cmd_request(ctx, DS_MSG_TOP, &req, DS_MSG_TOP_REPLY, &reply);
        if (rc != 0)
            return rc;
        if (json) {
            ds_json_t *j = ds_json_new(ctx->out, true);
            rc = j ? 0 : DS_EXIT_FAILED;
            if (j) {
                s_json(j, reply->body);
                rc = ds_json_finish(j) == 0 ? 0 : DS_EXIT_FAILED;
                ds_json_destroy(&j);
            }
        } else {
            rc = s_text(ctx->out, reply->body, clear) == 0 ? 0 : DS_EXIT_FAILED;
            if (!once && !clear)
                fputc('\n', ctx->out);
        }
        ds_msg_destroy(&reply);
        for (uint64_t slept = 0; rc == 0 && !once && !s_stop && slept < interval; slept += 100)
            zclock_sleep(100);
    } while (rc == 0 && !once && !s_stop);
    return rc == 0 ? DS_EXIT_OK : rc;
}
