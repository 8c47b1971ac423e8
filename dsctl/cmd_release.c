/*  dsctl/cmd_release.c - the commands that change what runs: deploy,
    rollback, promote, pause, resume, abort. */
#include "dsctl/cmd.h"

#include "dsctl/deployflags.h"
#include "dsctl/json.h"
#include "dsctl/render.h"
#include "dsctl/specfile.h"
#include "dsctl/wait.h"
#include "protocol/error.h"
#include "protocol/limits.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_PATH (DS_MAX_PATH + 1)

/* ---- output -------------------------------------------------------- */

/*  One line for people about what the cluster recorded. */
static void s_op_text(ds_cmd_ctx_t *ctx, const char *verb, const ds_op_reply_t *op)
{
    char name[DS_MAX_NAME + 1], state[64], msg[DS_MAX_TEXT + 1];
    ds_render_clean(op->service, name, sizeof name);
    ds_render_clean(op->state, state, sizeof state);
    if (strcmp(verb, "deploy") == 0)
        fprintf(ctx->out, "%s v%" PRIu64 ": deployment %" PRIu64 " started, %s", name, op->version,
                op->deployment_id, state);
    else if (strcmp(verb, "rollback") == 0)
        fprintf(ctx->out, "%s: rolling back to v%" PRIu64 ": deployment %" PRIu64 " started, %s",
                name, op->version, op->deployment_id, state);
    else
        fprintf(ctx->out, "%s v%" PRIu64 ": %s: deployment %" PRIu64 " is now %s", name,
                op->version, verb, op->deployment_id, state);
    fprintf(ctx->out, " (committed at index %" PRIu64 ")\n", op->index);
    if (op->message && op->message[0]) {
        ds_render_clean(op->message, msg, sizeof msg);
        fprintf(ctx->out, "%s\n", msg);
    }
    fflush(ctx->out);
}

static int s_finish_json(ds_json_t *j)
{
    int rc = ds_json_finish(j);
    ds_json_destroy(&j);
    return rc == 0 ? DS_EXIT_OK : DS_EXIT_FAILED;
}

static int s_op_json(ds_cmd_ctx_t *ctx, const ds_op_reply_t *op)
{
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_render_op_json(j, op, false);
    return s_finish_json(j);
}

/*  The op reply with what the wait found: "result", "deployment",
    "elapsed_ms". */
static int s_wait_json(ds_cmd_ctx_t *ctx, const ds_op_reply_t *op, const ds_wait_result_t *res)
{
    ds_json_t *j = ds_json_new(ctx->out, true);
    if (!j)
        return DS_EXIT_FAILED;
    ds_render_op_json(j, op, true);
    ds_json_key(j, "result");
    ds_json_str(j, ds_wait_result_name(res->verdict, res->svc));
    ds_json_key(j, "deployment");
    ds_render_deployment_json(j,
                              res->svc && res->svc->has_deployment ? &res->svc->deployment : NULL);
    ds_json_key_u64(j, "elapsed_ms", res->elapsed_ms);
    ds_json_object_end(j);
    return s_finish_json(j);
}

/*  Follows the deployment the reply started (--wait) and prints the end. */
static int s_wait(ds_cmd_ctx_t *ctx, const ds_op_reply_t *op, const char *service)
{
    ds_wait_opts_t o = {
        .service = service,
        .target = {op->deployment_id, op->version},
        .limit_ms = ctx->settings.timeout_flag ? ctx->settings.timeout_ms : DS_WAIT_DEFAULT_MS,
        .call_ms = ctx->settings.timeout_ms,
    };
    ds_wait_result_t res;
    int rc = ds_wait_run(ctx, &o, &res);
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        int jrc = s_wait_json(ctx, op, &res);
        rc = rc == DS_EXIT_OK ? jrc : rc;
    } else if (res.verdict == DS_WAIT_SUCCEEDED) {
        char name[DS_MAX_NAME + 1], dur[32];
        ds_render_clean(service, name, sizeof name);
        ds_render_duration(res.elapsed_ms, dur, sizeof dur);
        fprintf(ctx->out, "%s v%" PRIu64 ": succeeded in %s\n", name, op->version, dur);
    }
    ds_msg_destroy(&res.last);
    return rc;
}

/*  Sends a write, prints the reply, and with `wait` follows it. */
static int s_write(ds_cmd_ctx_t *ctx, const char *verb, uint16_t type, const void *body,
                   const char *service, bool wait)
{
    ds_msg_t *reply = NULL;
    int rc = ds_cmd_request(ctx, type, body, DS_MSG_OP_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_op_reply_t *op = reply->body;
    if (ctx->settings.output == DS_OUTPUT_TABLE)
        s_op_text(ctx, verb, op);
    if (wait)
        rc = s_wait(ctx, op, service);
    else if (ctx->settings.output == DS_OUTPUT_JSON)
        rc = s_op_json(ctx, op);
    ds_msg_destroy(&reply);
    return rc;
}

static int s_check_reason(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, const char *reason)
{
    size_t n = reason ? strlen(reason) : 0;
    if (n > DS_MAX_TEXT)
        return ds_cmd_usage(ctx, self, "--reason is %zu bytes; the limit is %u", n, DS_MAX_TEXT);
    return 0;
}

/* ---- deploy --dry-run ---------------------------------------------- */

#define S_DRY_SLACK_MS 20000u /* past the leader's own deadline for the dry run */

/*  How long the leader may take to answer a dry run: it gives up after
    healthy_deadline + every test's timeout + 10 s (docs/coordinator.md). */
static uint64_t s_dry_run_ms(const ds_spec_t *spec)
{
    ds_spec_t s = *spec;
    ds_spec_apply_defaults(&s);
    uint64_t ms = s.strategy.healthy_deadline_ms + S_DRY_SLACK_MS;
    for (uint32_t i = 0; i < s.n_tests; i++)
        ms += s.tests[i].timeout_ms;
    return ms;
}

/*  The worker named by a dry run's message, "worker W: REASON". */
static void s_dry_worker(const char *message, char *out, size_t len)
{
    out[0] = '\0';
    const char *end = message ? strstr(message, ": ") : NULL;
    if (message && strncmp(message, "worker ", 7) == 0 && end && (size_t)(end - message - 7) < len)
        snprintf(out, len, "%.*s", (int)(end - message - 7), message + 7);
}

/*  Runs the release's tests on one worker; nothing changes in what
    serves. Exit 0 when they passed, 1 when they failed. */
static int s_dry_run(ds_cmd_ctx_t *ctx, const ds_deploy_req_t *req)
{
    uint64_t need = s_dry_run_ms(&req->spec);
    if (ctx->settings.timeout_ms < need)
        ctx->settings.timeout_ms = need; /* the client is made with it */
    if (ctx->client)
        ds_client_set_timeout(ctx->client, ctx->settings.timeout_ms, 0);
    ds_msg_t *reply = NULL;
    int rc = ds_cmd_request(ctx, DS_MSG_DEPLOY, req, DS_MSG_OP_REPLY, &reply);
    if (rc != 0)
        return rc;
    const ds_op_reply_t *op = reply->body;
    bool passed = op->state && strcmp(op->state, "dry_run_passed") == 0;
    char worker[DS_MAX_NAME + 1];
    s_dry_worker(op->message, worker, sizeof worker);
    if (ctx->settings.output == DS_OUTPUT_JSON) {
        ds_json_t *j = ds_json_new(ctx->out, true);
        if (!j) {
            ds_msg_destroy(&reply);
            return DS_EXIT_FAILED;
        }
        ds_render_op_json(j, op, true);
        ds_json_key(j, "worker");
        ds_json_str(j, worker);
        ds_json_object_end(j);
        rc = s_finish_json(j);
    } else {
        char name[DS_MAX_NAME + 1], msg[DS_MAX_TEXT + 1];
        ds_render_clean(op->service, name, sizeof name);
        ds_render_clean(op->message, msg, sizeof msg);
        fprintf(ctx->out, "%s: dry run %s (nothing was deployed)\n%s\n", name,
                passed ? "passed" : "FAILED", msg);
        fflush(ctx->out);
    }
    ds_msg_destroy(&reply);
    return rc != DS_EXIT_OK ? rc : passed ? DS_EXIT_OK : DS_EXIT_FAILED;
}

/* ---- deploy -------------------------------------------------------- */

typedef struct {
    ds_deployflags_t f;
    const char *spec_path;
    bool wait, force, dry_run;
    char artifact[S_PATH];      /* --artifact made absolute */
    char file_artifact[S_PATH]; /* the file's artifact made absolute */
} s_deploy_t;

static int s_cwd(char *out, size_t outlen)
{
    if (getcwd(out, outlen))
        return 0;
    return DS_EIO;
}

/*  Makes a relative artifact absolute: the flag's from the current
    directory, the file's from the file's directory. */
static int s_absolute(ds_cmd_ctx_t *ctx, s_deploy_t *d, ds_spec_t *spec)
{
    char base[PATH_MAX];
    const char *which = "--artifact";
    int rc = 0;
    if (d->f.artifact) {
        rc = s_cwd(base, sizeof base);
        if (rc == 0)
            rc = ds_deployflags_absolute(d->f.artifact, base, d->artifact, sizeof d->artifact);
        if (rc == 0)
            d->f.artifact = d->artifact;
    } else if (d->spec_path && spec->artifact && spec->artifact[0]) {
        which = d->spec_path;
        char resolved[PATH_MAX];
        bool stdin_file = strcmp(d->spec_path, "-") == 0;
        if (!stdin_file && realpath(d->spec_path, resolved))
            snprintf(base, sizeof base, "%s", dirname(resolved));
        else
            rc = s_cwd(base, sizeof base);
        if (rc == 0)
            rc = ds_deployflags_absolute(spec->artifact, base, d->file_artifact,
                                         sizeof d->file_artifact);
        if (rc == 0)
            spec->artifact = d->file_artifact;
    }
    if (rc == DS_EIO)
        fprintf(ctx->err, "dsctl: cannot read the current directory: %s\n", strerror(errno));
    else if (rc != 0)
        fprintf(ctx->err, "dsctl: %s: the artifact's absolute path is longer than %u bytes\n",
                which, DS_MAX_PATH);
    return rc == 0 ? 0 : DS_EXIT_USAGE;
}

/*  The spec: the file (if any), the flags over it, checked. */
static int s_build_spec(ds_cmd_ctx_t *ctx, s_deploy_t *d, ds_spec_t *spec, ds_arena_t *arena)
{
    char err[DS_SPECFILE_ERR_SIZE > DS_DEPLOYFLAGS_ERR_SIZE ? DS_SPECFILE_ERR_SIZE
                                                            : DS_DEPLOYFLAGS_ERR_SIZE];
    int rc = 0;
    ds_spec_init(spec);
    if (d->spec_path) {
        const char *path = strcmp(d->spec_path, "-") == 0 ? "/dev/stdin" : d->spec_path;
        rc = ds_specfile_load(path, spec, arena, err, sizeof err);
    }
    if (rc == 0) {
        int arc = s_absolute(ctx, d, spec);
        if (arc != 0)
            return arc;
        rc = ds_deployflags_apply(&d->f, d->spec_path, spec, arena, err, sizeof err);
    }
    if (rc == 0)
        return 0;
    fprintf(ctx->err, "dsctl: %s\n", err);
    return rc == DS_ENOMEM ? DS_EXIT_FAILED : DS_EXIT_USAGE;
}

int ds_cmd_deploy(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    s_deploy_t *d = calloc(1, sizeof *d);
    if (!d)
        return DS_EXIT_FAILED;
    ds_deployflags_t *f = &d->f;
    ds_cmd_flag_t flags[] = {
        {"--spec", true, &d->spec_path, NULL, NULL, 0},
        {"--artifact", true, &f->artifact, NULL, NULL, 0},
        {"--cmd", true, &f->cmd, NULL, NULL, 0},
        {"--sha256", true, &f->sha256, NULL, NULL, 0},
        {"--canary", true, &f->canary, NULL, NULL, 0},
        {"--bake", true, &f->bake, NULL, NULL, 0},
        {"--max-parallel", true, &f->max_parallel, NULL, NULL, 0},
        {"--health-http", true, &f->health_http, NULL, NULL, 0},
        {"--health-tcp", false, NULL, &f->health_tcp, NULL, 0},
        {"--health-exec", true, &f->health_exec, NULL, NULL, 0},
        {"--healthy-deadline", true, &f->healthy_deadline, NULL, NULL, 0},
        {"--progress-deadline", true, &f->progress_deadline, NULL, NULL, 0},
        {"--no-auto-promote", false, NULL, &f->no_auto_promote, NULL, 0},
        {"--selector", true, f->selector, NULL, &f->n_selector, DS_MAX_LABELS},
        {"--env", true, f->env, NULL, &f->n_env, DS_MAX_ENV},
        {"--force", false, NULL, &d->force, NULL, 0},
        {"--dry-run", false, NULL, &d->dry_run, NULL, 0},
        {"--wait", false, NULL, &d->wait, NULL, 0},
    };
    char *pos[1] = {NULL};
    ds_arena_t *arena = NULL;
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, sizeof flags / sizeof flags[0], pos, 1, 1);
    if (rc == 0)
        rc = ds_cmd_check_service(ctx, self, pos[0]);
    if (rc != 0)
        goto out;
    arena = ds_arena_new(DS_SPECFILE_ARENA_CAP);
    if (!arena) {
        fputs("dsctl: out of memory\n", ctx->err);
        rc = DS_EXIT_FAILED;
        goto out;
    }
    if (d->dry_run && d->wait) {
        rc = ds_cmd_usage(ctx, self,
                          "--wait follows a deployment, and --dry-run makes none: drop --wait "
                          "(a dry run waits for its result)");
        goto out;
    }
    ds_deploy_req_t req = {.service = pos[0], .force = d->force, .dry_run = d->dry_run};
    rc = s_build_spec(ctx, d, &req.spec, arena);
    if (rc == 0 && d->dry_run)
        rc = s_dry_run(ctx, &req);
    else if (rc == 0)
        rc = s_write(ctx, "deploy", DS_MSG_DEPLOY, &req, pos[0], d->wait);
out:
    ds_arena_destroy(&arena);
    free(d);
    return rc;
}

/* ---- rollback ------------------------------------------------------ */

int ds_cmd_rollback(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    const char *to = NULL, *reason = NULL;
    bool wait = false;
    ds_cmd_flag_t flags[] = {
        {"--to", true, &to, NULL, NULL, 0},
        {"--reason", true, &reason, NULL, NULL, 0},
        {"--wait", false, NULL, &wait, NULL, 0},
    };
    char *pos[1] = {NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 3, pos, 1, 1);
    if (rc == 0)
        rc = ds_cmd_check_service(ctx, self, pos[0]);
    if (rc == 0)
        rc = s_check_reason(ctx, self, reason);
    if (rc != 0)
        return rc;
    ds_service_req_t req = {.service = pos[0], .to_version = 0, .reason = (char *)(uintptr_t) ""};
    if (to && ds_cmd_parse_count(to, UINT64_MAX, &req.to_version) != 0)
        return ds_cmd_usage(ctx, self,
                            "--to: \"%s\" is not a version (a number from 1, e.g. --to 3; "
                            "`dsctl history %s` lists them)",
                            to, pos[0]);
    if (reason)
        req.reason = (char *)(uintptr_t)reason;
    return s_write(ctx, "rollback", DS_MSG_ROLLBACK, &req, pos[0], wait);
}

/* ---- promote, pause, resume, abort -------------------------------- */

static int s_action(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv, uint16_t type)
{
    const char *reason = NULL;
    ds_cmd_flag_t flags[] = {{"--reason", true, &reason, NULL, NULL, 0}};
    char *pos[1] = {NULL};
    int rc = ds_cmd_parse(ctx, self, argc, argv, flags, 1, pos, 1, 1);
    if (rc == 0)
        rc = ds_cmd_check_service(ctx, self, pos[0]);
    if (rc == 0)
        rc = s_check_reason(ctx, self, reason);
    if (rc != 0)
        return rc;
    ds_service_req_t req = {
        .service = pos[0], .to_version = 0, .reason = (char *)(uintptr_t)(reason ? reason : "")};
    return s_write(ctx, self->group, type, &req, pos[0], false);
}

int ds_cmd_promote(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_action(ctx, self, argc, argv, DS_MSG_PROMOTE);
}

int ds_cmd_pause(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_action(ctx, self, argc, argv, DS_MSG_PAUSE);
}

int ds_cmd_resume(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_action(ctx, self, argc, argv, DS_MSG_RESUME);
}

int ds_cmd_abort(ds_cmd_ctx_t *ctx, const ds_cmd_t *self, int argc, char **argv)
{
    return s_action(ctx, self, argc, argv, DS_MSG_ABORT);
}
