/*  dsctl/wait.c - `--wait`: follow a deployment until it ends; see wait.h. */
#include "dsctl/wait.h"

#include "dsctl/render.h"
#include "protocol/error.h"

#include <assert.h>
#include <czmq.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#define S_LINE 512

/* ---- pure ---------------------------------------------------------- */

static bool s_is(const char *state, const char *name)
{
    return state && strcmp(state, name) == 0;
}

ds_wait_verdict_t ds_wait_judge(ds_wait_target_t *target, const ds_service_status_t *svc)
{
    assert(target);
    if (!svc || !svc->has_deployment)
        return DS_WAIT_GOING;
    const ds_deployment_status_t *d = &svc->deployment;
    if (target->deployment_id == 0) {
        if (d->version != target->version)
            return DS_WAIT_GOING;
        target->deployment_id = d->id;
    }
    if (d->id < target->deployment_id)
        return DS_WAIT_GOING;
    if (d->id > target->deployment_id)
        return DS_WAIT_REPLACED;
    if (s_is(d->state, "succeeded"))
        return DS_WAIT_SUCCEEDED;
    if (s_is(d->state, "failed") || s_is(d->state, "rolled_back") || s_is(d->state, "aborted"))
        return DS_WAIT_FAILED;
    return DS_WAIT_GOING;
}

int ds_wait_exit_code(ds_wait_verdict_t v)
{
    assert(v != DS_WAIT_GOING);
    switch (v) {
    case DS_WAIT_SUCCEEDED:
        return DS_EXIT_OK;
    case DS_WAIT_UNREACHABLE:
        return DS_EXIT_UNAVAILABLE;
    default:
        return DS_EXIT_FAILED;
    }
}

const char *ds_wait_result_name(ds_wait_verdict_t v, const ds_service_status_t *svc)
{
    switch (v) {
    case DS_WAIT_GOING:
        return "going";
    case DS_WAIT_SUCCEEDED:
        return "succeeded";
    case DS_WAIT_FAILED:
        return svc && svc->has_deployment && svc->deployment.state ? svc->deployment.state
                                                                   : "failed";
    case DS_WAIT_REPLACED:
        return "replaced";
    case DS_WAIT_TIMEOUT:
        return "timeout";
    case DS_WAIT_UNREACHABLE:
        return "unreachable";
    default:
        return "error";
    }
}

void ds_wait_progress(const ds_wait_target_t *target, const ds_service_status_t *svc, char *out,
                      size_t outlen)
{
    char name[DS_MAX_NAME + 1], state[64];
    ds_render_clean(svc ? svc->service : NULL, name, sizeof name);
    const ds_deployment_status_t *d = svc && svc->has_deployment ? &svc->deployment : NULL;
    bool ours = d && target->deployment_id && d->id == target->deployment_id;
    if (!ours) {
        snprintf(out, outlen, "%s v%" PRIu64 ": waiting for the deployment to show", name,
                 target->version);
        return;
    }
    ds_render_clean(d->state, state, sizeof state);
    snprintf(out, outlen,
             "%s v%" PRIu64 ": %s  wave %" PRIu32 "  updated %" PRIu32 "/%" PRIu32
             "  healthy %" PRIu32 "/%" PRIu32,
             name, d->version, state, d->wave, d->updated, d->total, d->healthy, d->total);
}

/* ---- the loop ------------------------------------------------------ */

typedef struct {
    ds_cmd_ctx_t *ctx;
    bool tty;
    bool line_open;        /* a tty line is on screen without its newline */
    char shown[S_LINE];    /* the last line shown, without the elapsed time */
    bool told_unreachable; /* "still trying" was printed for this outage */
} s_view_t;

static void s_show(s_view_t *v, const char *line, uint64_t elapsed_ms)
{
    char dur[32] = "0s";
    if (elapsed_ms >= 1000) /* whole seconds: the line changes once a second at most */
        ds_render_duration(elapsed_ms - elapsed_ms % 1000, dur, sizeof dur);
    if (v->tty) {
        fprintf(v->ctx->err, "\r%s  elapsed %s\033[K", line, dur);
        v->line_open = true;
    } else if (strcmp(line, v->shown) != 0) {
        fprintf(v->ctx->err, "%s  elapsed %s\n", line, dur);
    }
    snprintf(v->shown, sizeof v->shown, "%s", line);
    fflush(v->ctx->err);
}

/*  Ends a tty line before another message. */
static void s_break(s_view_t *v)
{
    if (v->line_open)
        fputc('\n', v->ctx->err);
    v->line_open = false;
}

/*  The first line of `text` (the client's explanations run on). */
static void s_first_line(const char *text, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.*s", (int)strcspn(text, "\n"), text);
}

static void s_tell_end(s_view_t *v, const ds_wait_opts_t *o, ds_wait_verdict_t verdict,
                       const ds_wait_target_t *t, const ds_service_status_t *svc)
{
    FILE *err = v->ctx->err;
    char name[DS_MAX_NAME + 1], reason[DS_MAX_TEXT + 1], state[64];
    ds_render_clean(o->service, name, sizeof name);
    const ds_deployment_status_t *d = svc && svc->has_deployment ? &svc->deployment : NULL;
    if (verdict == DS_WAIT_FAILED) {
        ds_render_clean(d->state, state, sizeof state);
        ds_render_clean(d->reason && d->reason[0] ? d->reason : "no reason given", reason,
                        sizeof reason);
        fprintf(err, "dsctl: %s v%" PRIu64 " %s: %s (`dsctl history %s` has the details)\n", name,
                d->version, state, reason, name);
    } else if (verdict == DS_WAIT_REPLACED) {
        ds_render_clean(d->state, state, sizeof state);
        fprintf(err,
                "dsctl: %s: deployment %" PRIu64 " was replaced by deployment %" PRIu64
                " (v%" PRIu64 ", %s); not following that one\n",
                name, t->deployment_id, d->id, d->version, state);
    }
}

static void s_tell_timeout(s_view_t *v, const ds_wait_opts_t *o, ds_wait_verdict_t verdict,
                           const char *why)
{
    char name[DS_MAX_NAME + 1], limit[32], first[512];
    ds_render_clean(o->service, name, sizeof name);
    ds_render_duration(o->limit_ms, limit, sizeof limit);
    if (verdict == DS_WAIT_UNREACHABLE) {
        s_first_line(why, first, sizeof first);
        fprintf(v->ctx->err,
                "dsctl: stopped waiting after %s: the cluster is out of reach (%s); the "
                "deployment goes on where the cluster is (`dsctl status %s` shows it)\n",
                limit, first, name);
        return;
    }
    fprintf(v->ctx->err,
            "dsctl: stopped waiting after %s (--timeout); the deployment goes on "
            "(`dsctl status %s` shows it, `dsctl abort %s` stops it)\n",
            limit, name, name);
}

int ds_wait_run(ds_cmd_ctx_t *ctx, const ds_wait_opts_t *opts, ds_wait_result_t *res)
{
    assert(ctx && opts && opts->service && res && opts->limit_ms > 0 && opts->call_ms > 0);
    memset(res, 0, sizeof *res);
    s_view_t view = {.ctx = ctx, .tty = isatty(fileno(ctx->err)) == 1};
    ds_wait_target_t target = opts->target;
    ds_query_req_t req = {.service = (char *)(uintptr_t)opts->service, .stale = false, .limit = 0};
    char why[DS_CMD_WHY_MAX] = "";
    int64_t start = zclock_mono();
    int64_t deadline = start + (int64_t)opts->limit_ms;
    bool unreachable = false;
    for (;;) {
        int64_t left = deadline - zclock_mono();
        if (left <= 0) {
            res->verdict = unreachable ? DS_WAIT_UNREACHABLE : DS_WAIT_TIMEOUT;
            break;
        }
        if (ctx->client)
            ds_client_set_timeout(
                ctx->client, (uint64_t)left < opts->call_ms ? (uint64_t)left : opts->call_ms, 0);
        ds_msg_t *reply = NULL;
        int rc = ds_cmd_request_quiet(ctx, DS_MSG_STATUS, &req, DS_MSG_STATUS_REPLY, &reply, why,
                                      sizeof why);
        unreachable = rc == DS_EXIT_UNAVAILABLE;
        if (unreachable && !view.told_unreachable) {
            char first[512];
            s_first_line(why, first, sizeof first);
            s_break(&view);
            fprintf(ctx->err, "dsctl: %s; still trying until the wait ends\n", first);
            view.told_unreachable = true;
            view.shown[0] = '\0';
        } else if (rc != 0 && !unreachable) {
            s_break(&view);
            fprintf(ctx->err, "dsctl: %s\n", why);
            res->verdict = DS_WAIT_ERROR;
            res->elapsed_ms = (uint64_t)(zclock_mono() - start);
            return rc;
        }
        if (rc == 0) {
            view.told_unreachable = false;
            ds_msg_destroy(&res->last);
            res->last = reply;
            res->svc = ds_cmd_find_service(reply->body, opts->service);
            res->verdict = ds_wait_judge(&target, res->svc);
            char line[S_LINE];
            ds_wait_progress(&target, res->svc, line, sizeof line);
            s_show(&view, line, (uint64_t)(zclock_mono() - start));
            if (res->verdict != DS_WAIT_GOING)
                break;
        }
        left = deadline - zclock_mono();
        if (left > 0)
            zclock_sleep(left < DS_WAIT_POLL_MS ? (int)left : DS_WAIT_POLL_MS);
    }
    s_break(&view);
    res->elapsed_ms = (uint64_t)(zclock_mono() - start);
    if (res->verdict == DS_WAIT_TIMEOUT || res->verdict == DS_WAIT_UNREACHABLE)
        s_tell_timeout(&view, opts, res->verdict, why);
    else
        s_tell_end(&view, opts, res->verdict, &target, res->svc);
    return ds_wait_exit_code(res->verdict);
}
