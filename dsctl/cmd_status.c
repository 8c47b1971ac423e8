/*  dsctl/cmd_status.c - the commands that read: status, history, workers,
    events (and events --follow). */
#include "dsctl/cmd.h"

#include "dsctl/follow.h"
#include "dsctl/json.h"
#include "dsctl/render.h"
#include "protocol/clock.h"
#include "protocol/error.h"
#include "protocol/limits.h"

#include <czmq.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_EVENTS_DEFAULT   100u  /* events printed by `events` without --limit */
#define S_EVENTS_MAX_PAGES 64u   /* pages read to find the most recent events */
#define S_FOLLOW_WAIT_MS   5000u /* one long poll of events --follow */
#define S_FOLLOW_SLACK_MS  2000u /* ... and the time its reply may take on top */
#define S_FOLLOW_RETRY_MS  1000  /* pause after a failed poll */

static int s_json_done(ds_json_t *j)
{
    int rc = ds_json_finish(j);
    ds_json_destroy(&j);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

static int s_text_done(int rc)
{
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

static int s_limit(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, const char *text, uint32_t *out)
{
    uint64_t v = 0;
    if (!text)
        return 0;
    if (ds_cmd_parse_count(text, DS_MAX_ROWS, &v) != 0)
        return ds_cmd_usage(ctx, self, "--limit: \"%s\" is not a number from 1 to %u", text,
                            DS_MAX_ROWS);
    *out = (uint32_t)v;
    return 0;
}

/* ---- status -------------------------------------------------------- */

static int s_status_one(ds_cmd_ctx_t *ctx, const ds_status_reply_t *st, const char *service)
{
    const ds_service_status_t *s = ds_cmd_find_service(st, service);
    if (!s) {
        fprintf(ctx->err,
                "dsctl: service \"%s\" not found (`dsctl status` lists the services) "
                "(DS_ENOTFOUND)\n",
                service);
        return DS_EXIT_FAILED;
    }
    if (ctx->settings.output == DS_OUTPUT_TABLE)
        return s_text_done(ds_render_service_text(ctx->out, s, ds_clock_wall_ms()));
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_render_service_json(j, s);
    return s_json_done(j);
}

static int s_status_all(ds_cmd_ctx_t *ctx, const ds_status_reply_t *st)
{
    if (ctx->settings.output == DS_OUTPUT_TABLE) {
        if (st->insecure)
            fputs("dsctl: warning: the cluster runs without CURVE encryption (insecure)\n",
                  ctx->err);
        return s_text_done(ds_render_status_table(ctx->out, st));
    }
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_render_status_json(j, st);
    return s_json_done(j);
}

int ds_cmd_status(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool stale = false;
    ds_cmd_flag_t flags[] = {{"--stale", false, NULL, &stale, NULL, 0}};
    char *pos[1] = {NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, pos, 0, 1);
    if (rc == 0 && pos[0])
        rc = ds_cmd_check_service(ctx, self, pos[0]);
    if (rc != 0)
        return rc;
    ds_query_req_t req = {
        .service = pos[0] ? pos[0] : (char *)(uintptr_t) "", .stale = stale, .limit = 0};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_STATUS, &req, DS_MSG_STATUS_REPLY, &reply);
    if (rc != 0)
        return rc;
    rc = pos[0] ? s_status_one(ctx, reply->body, pos[0]) : s_status_all(ctx, reply->body);
    ds_msg_destroy(&reply);
    return rc;
}

/* ---- history ------------------------------------------------------- */

int ds_cmd_history(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool stale = false;
    const char *limit = NULL;
    ds_cmd_flag_t flags[] = {{"--stale", false, NULL, &stale, NULL, 0},
                             {"--limit", true, &limit, NULL, NULL, 0}};
    char *pos[1] = {NULL};
    ds_query_req_t req = {.service = NULL, .stale = false, .limit = 0};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 2, pos, 1, 1);
    if (rc == 0)
        rc = ds_cmd_check_service(ctx, self, pos[0]);
    if (rc == 0)
        rc = s_limit(ctx, self, limit, &req.limit);
    if (rc != 0)
        return rc;
    req.service = pos[0];
    req.stale = stale;
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_HISTORY, &req, DS_MSG_HISTORY_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_history_reply_t *h = reply->body;
    if (ctx->settings.output == DS_OUTPUT_TABLE) {
        rc = s_text_done(ds_render_history_table(ctx->out, h));
    } else {
        ds_json_t *j = ds_json_new(ctx->out, true);
        rc = DS_EXIT_FAILED;
        if (j) {
            ds_render_history_json(j, h);
            rc = s_json_done(j);
        }
    }
    ds_msg_destroy(&reply);
    return rc;
}

/* ---- workers ------------------------------------------------------- */

int ds_cmd_workers(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool stale = false;
    ds_cmd_flag_t flags[] = {{"--stale", false, NULL, &stale, NULL, 0}};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, NULL, 0, 0);
    if (rc != 0)
        return rc;
    ds_query_req_t req = {.service = (char *)(uintptr_t) "", .stale = stale, .limit = 0};
    ds_msg_t *reply = NULL;
    rc = ds_cmd_request(ctx, DS_MSG_WORKERS, &req, DS_MSG_WORKERS_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_workers_reply_t *w = reply->body;
    if (ctx->settings.output == DS_OUTPUT_TABLE) {
        rc = s_text_done(ds_render_workers_table(ctx->out, w));
    } else {
        ds_json_t *j = ds_json_new(ctx->out, true);
        rc = DS_EXIT_FAILED;
        if (j) {
            ds_render_workers_json(j, w);
            rc = s_json_done(j);
        }
    }
    ds_msg_destroy(&reply);
    return rc;
}

/* ---- events -------------------------------------------------------- */

/*  The most recent events: pages from seq 0 until one comes back empty;
    the last `limit` events are in the last two pages (a page holds up to
    DS_MAX_ROWS >= limit). */
typedef struct {
    ds_msg_t *prev, *cur; /* the last two pages that had events */
    uint64_t after_seq;
    uint64_t last_ts_ms;
} s_recent_t;

static void s_recent_free(s_recent_t *r)
{
    ds_msg_destroy(&r->prev);
    ds_msg_destroy(&r->cur);
}

static int s_recent(ds_cmd_ctx_t *ctx, s_recent_t *r)
{
    memset(r, 0, sizeof *r);
    for (unsigned page = 0; page < S_EVENTS_MAX_PAGES; page++) {
        ds_events_req_t req = {.after_seq = r->after_seq, .limit = DS_MAX_ROWS, .wait_ms = 0};
        ds_msg_t *reply = NULL;
        int rc = ds_cmd_request(ctx, DS_MSG_EVENTS, &req, DS_MSG_EVENTS_REPLY, &reply);
        if (rc != 0)
            return rc;
        const ds_events_reply_t *ev = reply->body;
        bool forward = ev->n_events > 0 && ev->events[0].seq > r->after_seq;
        if (!forward) { /* empty: caught up; backwards: the leader changed, stop here */
            ds_msg_destroy(&reply);
            return 0;
        }
        for (uint32_t i = 0; i < ev->n_events; i++) {
            if (ev->events[i].seq > r->after_seq)
                r->after_seq = ev->events[i].seq;
            if (ev->events[i].ts_ms > r->last_ts_ms)
                r->last_ts_ms = ev->events[i].ts_ms;
        }
        ds_msg_destroy(&r->prev);
        r->prev = r->cur;
        r->cur = reply;
    }
    return 0;
}

/*  Calls fn on the last `limit` events of the two pages, oldest first. */
static void s_recent_each(const s_recent_t *r, uint32_t limit,
                          void (*fn)(ds_cmd_ctx_t *, ds_json_t *, const ds_event_t *),
                          ds_cmd_ctx_t *ctx, ds_json_t *j)
{
    const ds_events_reply_t *p = r->prev ? r->prev->body : NULL;
    const ds_events_reply_t *c = r->cur ? r->cur->body : NULL;
    uint32_t np = p ? p->n_events : 0, nc = c ? c->n_events : 0;
    uint32_t skip = np + nc > limit ? np + nc - limit : 0;
    for (uint32_t i = skip; i < np + nc; i++)
        fn(ctx, j, i < np ? &p->events[i] : &c->events[i - np]);
}

static void s_print_event(ds_cmd_ctx_t *ctx, ds_json_t *j, const ds_event_t *e)
{
    if (j) {
        ds_render_event_json(j, e);
        return;
    }
    if (ctx->settings.output == DS_OUTPUT_TABLE) {
        ds_render_event_line(ctx->out, e);
        return;
    }
    ds_json_t *line = ds_json_new(ctx->out, false); /* --follow -o json: one object a line */
    if (!line)
        return;
    ds_render_event_json(line, e);
    (void)ds_json_finish(line);
    ds_json_destroy(&line);
}

/* events --follow ends on SIGINT or SIGTERM with exit 0. Output is
   flushed before each long poll, so a signal during one can end the
   process at once; otherwise the loop sees the flag. */
static volatile sig_atomic_t s_stop;
static volatile sig_atomic_t s_in_call;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
    if (s_in_call)
        _exit(DS_EXIT_OK);
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

static int s_follow(ds_cmd_ctx_t *ctx, const s_recent_t *recent)
{
    ds_follow_t cur;
    ds_follow_init(&cur, recent->after_seq, recent->last_ts_ms, ds_client_leader(ctx->client));
    bool *print = calloc(DS_MAX_ROWS, sizeof *print);
    if (!print)
        return DS_EXIT_FAILED;
    bool told = false;
    char why[DS_CMD_WHY_MAX];
    /* A long poll must fit in one attempt and in the call's deadline. */
    ds_client_set_timeout(ctx->client,
                          ctx->settings.timeout_ms + S_FOLLOW_WAIT_MS + S_FOLLOW_SLACK_MS,
                          (int)(S_FOLLOW_WAIT_MS + S_FOLLOW_SLACK_MS));
    while (!s_stop) {
        ds_events_req_t req = {.after_seq = cur.after_seq,
                               .limit = DS_MAX_ROWS,
                               .wait_ms = cur.by_time ? 0 : S_FOLLOW_WAIT_MS};
        ds_msg_t *reply = NULL;
        fflush(ctx->out);
        s_in_call = 1;
        int rc = ds_cmd_request_quiet(ctx, DS_MSG_EVENTS, &req, DS_MSG_EVENTS_REPLY, &reply, why,
                                      sizeof why);
        s_in_call = 0;
        if (rc == DS_EXIT_UNAVAILABLE) {
            if (!told)
                fprintf(ctx->err, "dsctl: %.*s; still trying\n", (int)strcspn(why, "\n"), why);
            told = true;
            s_in_call = 1;
            if (!s_stop)
                zclock_sleep(S_FOLLOW_RETRY_MS);
            s_in_call = 0;
            continue;
        }
        if (rc != 0) {
            fprintf(ctx->err, "dsctl: %s\n", why);
            free(print);
            return rc;
        }
        if (told)
            fputs("dsctl: the cluster answers again\n", ctx->err);
        told = false;
        const ds_events_reply_t *ev = reply->body;
        if (ds_follow_take(&cur, ds_client_leader(ctx->client), req.after_seq, ev, print) ==
            DS_FOLLOW_PRINT)
            for (uint32_t i = 0; i < ev->n_events; i++)
                if (print[i])
                    s_print_event(ctx, NULL, &ev->events[i]);
        ds_msg_destroy(&reply);
    }
    free(print);
    return DS_EXIT_OK;
}

int ds_cmd_events(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    bool follow = false;
    const char *limit_text = NULL;
    uint32_t limit = S_EVENTS_DEFAULT;
    ds_cmd_flag_t flags[] = {{"--follow", false, NULL, &follow, NULL, 0},
                             {"--limit", true, &limit_text, NULL, NULL, 0}};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 2, NULL, 0, 0);
    if (rc == 0)
        rc = s_limit(ctx, self, limit_text, &limit);
    if (rc != 0)
        return rc;
    if (follow)
        s_catch_signals();
    s_recent_t recent;
    rc = s_recent(ctx, &recent);
    if (rc != 0) {
        s_recent_free(&recent);
        return rc;
    }
    ds_json_t *j = NULL;
    if (!follow && ctx->settings.output == DS_OUTPUT_JSON) {
        j = ds_json_new(ctx->out, true);
        if (!j) {
            s_recent_free(&recent);
            return DS_EXIT_FAILED;
        }
        ds_json_array_begin(j);
    }
    s_recent_each(&recent, limit, s_print_event, ctx, j);
    if (j) {
        ds_json_array_end(j);
        rc = s_json_done(j);
    } else if (!follow && ctx->settings.output == DS_OUTPUT_TABLE && !recent.cur) {
        fputs("no events\n", ctx->out);
    }
    if (rc == 0 && follow)
        rc = s_follow(ctx, &recent);
    s_recent_free(&recent);
    return rc;
}
