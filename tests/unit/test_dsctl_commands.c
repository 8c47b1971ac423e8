/*  tests/unit/test_dsctl_commands.c - the release commands end to end
    against a fake coordinator (a ROUTER socket served by a thread that
    answers from a script): what is sent, what is printed, exit codes, and
    --wait's end states. */
#include "dsctl/cmd.h"
#include "protocol/error.h"
#include "protocol/transport.h"
#include "tests/testutil.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define S_MAX_STATES 4

typedef struct {
    zsock_t *router;
    char ep[256];
    pthread_t thread;
    bool started;
    atomic_bool stop;
    /* the script, set before the thread starts */
    int64_t error;                    /* answer writes and reads with this error code */
    uint64_t status_id;               /* deployment id the status shows */
    const char *states[S_MAX_STATES]; /* one per poll; the last one stays */
    size_t nstates;
    /* what it saw */
    atomic_int polls;
    atomic_int event_reqs;
    atomic_int writes;
    uint16_t last_type;
    char artifact[1100];
    uint32_t canary;
    bool force;
    char reason[64];
} s_fake_t;

typedef struct {
    s_fake_t fake;
    ds_cmd_ctx_t ctx;
    FILE *out, *err;
    char *out_text, *err_text;
    size_t out_len, err_len;
} s_fix_t;

static void s_reply(s_fake_t *f, zframe_t *from, const ds_msg_t *req, uint16_t type,
                    const void *body)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, req->env.corr_id, "fake"};
    (void)ds_transport_send(f->router, from, &env, body, NULL);
}

static void s_status(s_fake_t *f, zframe_t *from, const ds_msg_t *req)
{
    int n = atomic_fetch_add(&f->polls, 1);
    size_t k = (size_t)n < f->nstates ? (size_t)n : f->nstates - 1;
    ds_instance_row_t in = {"w1", 3, "running", "passing", 20001, 0, ""};
    ds_service_status_t svc = {.service = "churn-model",
                               .current_version = 3,
                               .desired_version = 3,
                               .has_deployment = true,
                               .deployment = {.id = f->status_id,
                                              .version = 3,
                                              .from_version = 2,
                                              .state = (char *)(uintptr_t)f->states[k],
                                              .reason = "canary failed its health checks",
                                              .wave = 1,
                                              .updated = 1,
                                              .healthy = 1,
                                              .total = 2},
                               .n_instances = 1,
                               .instances = &in};
    ds_status_reply_t st = {.insecure = true, .n_services = 1, .services = &svc};
    s_reply(f, from, req, DS_MSG_STATUS_REPLY, &st);
}

/*  Three events; a page holds at most two, to make dsctl read pages. */
static void s_events(s_fake_t *f, zframe_t *from, const ds_msg_t *req)
{
    static ds_event_t all[] = {{1, 1714557600000ull, "deploy", "churn-model", "v3 started"},
                               {2, 1714557601000ull, "worker", "", "w1 joined"},
                               {3, 1714557602000ull, "verdict", "churn-model", "canary passed"}};
    const ds_events_req_t *q = req->body;
    atomic_fetch_add(&f->event_reqs, 1);
    uint32_t first = q->after_seq < 3 ? (uint32_t)q->after_seq : 3;
    uint32_t n = 3 - first > 2 ? 2 : 3 - first;
    ds_events_reply_t r = {n, all + first};
    s_reply(f, from, req, DS_MSG_EVENTS_REPLY, &r);
}

static void s_answer(s_fake_t *f, zframe_t *from, const ds_msg_t *req)
{
    uint16_t type = req->env.type;
    f->last_type = type;
    if (f->error) {
        ds_error_reply_t er = {f->error, "refused by the fake"};
        s_reply(f, from, req, DS_MSG_ERROR, &er);
        return;
    }
    if (type == DS_MSG_STATUS) {
        s_status(f, from, req);
        return;
    }
    if (type == DS_MSG_EVENTS) {
        s_events(f, from, req);
        return;
    }
    atomic_fetch_add(&f->writes, 1);
    if (type == DS_MSG_DEPLOY) {
        const ds_deploy_req_t *d = req->body;
        snprintf(f->artifact, sizeof f->artifact, "%s", d->spec.artifact);
        f->canary = d->spec.strategy.canary;
        f->force = d->force;
    } else {
        const ds_service_req_t *s = req->body;
        snprintf(f->reason, sizeof f->reason, "%s", s->reason);
    }
    ds_op_reply_t op = {"churn-model", 3, 57, "pending", "", 123};
    s_reply(f, from, req, DS_MSG_OP_REPLY, &op);
}

static void *s_serve(void *arg)
{
    s_fake_t *f = arg;
    zmq_pollitem_t item = {.socket = zsock_resolve(f->router), .events = ZMQ_POLLIN};
    while (!atomic_load(&f->stop)) {
        if (zmq_poll(&item, 1, 20) <= 0)
            continue;
        zframe_t *from = NULL;
        ds_msg_t *req = NULL;
        if (ds_transport_recv(f->router, true, &from, &req, NULL) == 0)
            s_answer(f, from, req);
        ds_msg_destroy(&req);
        zframe_destroy(&from);
    }
    return NULL;
}

static int s_teardown(void **state)
{
    s_fix_t *fx = *state;
    atomic_store(&fx->fake.stop, true);
    if (fx->fake.started)
        pthread_join(fx->fake.thread, NULL);
    zsock_destroy(&fx->fake.router);
    ds_client_destroy(&fx->ctx.client);
    if (fx->out)
        fclose(fx->out);
    if (fx->err)
        fclose(fx->err);
    free(fx->out_text);
    free(fx->err_text);
    free(fx);
    return 0;
}

static int s_setup(void **state)
{
    s_fix_t *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    *state = fx;
    char err[256];
    if (ds_test_tcp_endpoint(fx->fake.ep, sizeof fx->fake.ep) != 0 ||
        ds_transport_router_bind(fx->fake.ep, NULL, &fx->fake.router, err, sizeof err) != 0) {
        s_teardown(state);
        return -1;
    }
    fx->fake.status_id = 57;
    fx->fake.states[0] = "canary";
    fx->fake.nstates = 1;
    fx->out = open_memstream(&fx->out_text, &fx->out_len);
    fx->err = open_memstream(&fx->err_text, &fx->err_len);
    ds_dsctl_settings_t *st = &fx->ctx.settings;
    snprintf(st->endpoints.list[0], sizeof st->endpoints.list[0], "%s", fx->fake.ep);
    st->endpoints.n = 1;
    st->timeout_ms = 2000;
    st->output = DS_OUTPUT_TABLE;
    st->insecure = true; /* the fake coordinator is a plain ROUTER */
    fx->ctx.out = fx->out;
    fx->ctx.err = fx->err;
    return fx->out && fx->err ? 0 : -1;
}

static void s_start(s_fix_t *fx)
{
    assert_int_equal(pthread_create(&fx->fake.thread, NULL, s_serve, &fx->fake), 0);
    fx->fake.started = true;
}

/*  Runs `dsctl WORDS...` (after the global flags) and returns its exit code. */
static int s_run(s_fix_t *fx, const char *const *words)
{
    size_t n = 0;
    while (words[n])
        n++;
    const ds_cmd_t *cmd = ds_cmd_find(words[0], n > 1 ? words[1] : NULL);
    assert_non_null(cmd);
    int skip = ds_cmd_words(cmd);
    int rc = cmd->run(&fx->ctx, cmd, (int)n - skip, (char **)(uintptr_t)(words + skip));
    fflush(fx->out);
    fflush(fx->err);
    return rc;
}

#define s_dsctl(fx, ...) s_run((fx), (const char *const[]){__VA_ARGS__, NULL})

static void s_has(const char *text, const char *needle)
{
    if (!text || !strstr(text, needle))
        fail_msg("expected \"%s\" in:\n%s", needle, text ? text : "(nothing)");
}

static void test_deploy_sends_an_absolute_artifact_and_prints_the_deployment(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "deploy", "churn-model", "--artifact", "./model", "--cmd", "run",
                             "--canary", "2", "--force"),
                     0);
    char cwd[1024], want[1100];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(want, sizeof want, "%s/model", strcmp(cwd, "/") == 0 ? "" : cwd);
    assert_string_equal(fx->fake.artifact, want);
    assert_int_equal(fx->fake.canary, 2);
    assert_true(fx->fake.force);
    s_has(fx->out_text, "churn-model v3: deployment 57 started, pending (committed at index 123)");
    assert_int_equal(atomic_load(&fx->fake.polls), 0);
}

static void test_deploy_wait_follows_the_deployment_to_success(void **state)
{
    s_fix_t *fx = *state;
    fx->fake.states[0] = "pending";
    fx->fake.states[1] = "canary";
    fx->fake.states[2] = "canary"; /* unchanged: no new line on a non-terminal */
    fx->fake.states[3] = "succeeded";
    fx->fake.nstates = 4;
    s_start(fx);
    assert_int_equal(
        s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run", "--wait"), 0);
    assert_int_equal(atomic_load(&fx->fake.polls), 4);
    s_has(fx->err_text, "churn-model v3: pending  wave 1  updated 1/2  healthy 1/2  elapsed ");
    s_has(fx->err_text, "churn-model v3: canary  wave 1");
    s_has(fx->err_text, "churn-model v3: succeeded  wave 1");
    const char *first = strstr(fx->err_text, ": canary ");
    assert_null(strstr(first + 1, ": canary "));
    s_has(fx->out_text, "churn-model v3: succeeded in ");
}

static void test_deploy_wait_exits_1_with_the_reason_when_rolled_back(void **state)
{
    s_fix_t *fx = *state;
    fx->fake.states[0] = "rolling_back";
    fx->fake.states[1] = "rolled_back";
    fx->fake.nstates = 2;
    s_start(fx);
    assert_int_equal(
        s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run", "--wait"), 1);
    s_has(fx->err_text, "dsctl: churn-model v3 rolled_back: canary failed its health checks");
}

static void test_deploy_wait_exits_1_when_another_deployment_replaced_it(void **state)
{
    s_fix_t *fx = *state;
    fx->fake.status_id = 63;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "rollback", "churn-model", "--wait", "--reason", "bad model"), 1);
    assert_string_equal(fx->fake.reason, "bad model");
    s_has(fx->err_text, "deployment 57 was replaced by deployment 63");
}

static void test_deploy_wait_stops_at_the_timeout_and_says_the_deployment_goes_on(void **state)
{
    s_fix_t *fx = *state;
    fx->ctx.settings.timeout_ms = 1200; /* --timeout 1200ms */
    fx->ctx.settings.timeout_flag = true;
    s_start(fx);
    assert_int_equal(
        s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run", "--wait"), 1);
    s_has(fx->err_text, "dsctl: stopped waiting after 1s (--timeout); the deployment goes on");
    assert_true(atomic_load(&fx->fake.polls) >= 2);
}

static void test_deploy_wait_json_is_one_document_with_the_result(void **state)
{
    s_fix_t *fx = *state;
    fx->ctx.settings.output = DS_OUTPUT_JSON;
    fx->fake.states[0] = "aborted";
    s_start(fx);
    assert_int_equal(
        s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run", "--wait"), 1);
    assert_int_equal(fx->out_text[0], '{');
    s_has(fx->out_text, "\"deployment_id\": 57");
    s_has(fx->out_text, "\"result\": \"aborted\"");
    s_has(fx->out_text, "\"deployment\": {");
    s_has(fx->out_text, "\"state\": \"aborted\"");
    s_has(fx->out_text, "\"elapsed_ms\": ");
    assert_null(strstr(fx->out_text, "}\n{")); /* one document */
}

static void test_error_replies_give_the_documented_exit_codes(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    fx->fake.error = DS_ESTATE;
    assert_int_equal(s_dsctl(fx, "promote", "churn-model", "--reason", "looks good"), 1);
    s_has(fx->err_text, "dsctl: refused by the fake (DS_ESTATE)");
    fx->fake.error = DS_ECONFLICT;
    assert_int_equal(s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run"), 1);
    fx->fake.error = DS_ENOTFOUND;
    assert_int_equal(s_dsctl(fx, "status", "nosuch"), 1);
    assert_int_equal(s_dsctl(fx, "history", "nosuch"), 1);
    fx->fake.error = DS_EINVAL;
    assert_int_equal(
        s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "run", "--dry-run"), 2);
    fx->fake.error = DS_ENOQUORUM;
    assert_int_equal(s_dsctl(fx, "abort", "churn-model"), 3);
    assert_int_equal(fx->fake.last_type, DS_MSG_ABORT);
}

static void test_pause_resume_abort_send_their_type(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "pause", "churn-model"), 0);
    assert_int_equal(fx->fake.last_type, DS_MSG_PAUSE);
    s_has(fx->out_text, "churn-model v3: pause: deployment 57 is now pending");
    assert_int_equal(s_dsctl(fx, "resume", "churn-model"), 0);
    assert_int_equal(fx->fake.last_type, DS_MSG_RESUME);
    assert_int_equal(s_dsctl(fx, "abort", "churn-model", "--reason", "stop"), 0);
    assert_int_equal(fx->fake.last_type, DS_MSG_ABORT);
    assert_string_equal(fx->fake.reason, "stop");
    assert_int_equal(atomic_load(&fx->fake.writes), 3);
}

static void test_status_prints_one_service_or_all(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "status", "churn-model"), 0);
    s_has(fx->out_text, "service: churn-model  current: 3  desired: 3\n");
    s_has(fx->out_text, "w1            3  running  passing  20001  0\n");
    assert_int_equal(s_dsctl(fx, "status"), 0);
    s_has(fx->out_text, "churn-model        3        3          57  canary");
    s_has(fx->err_text, "warning: the cluster runs without CURVE encryption");
    fx->ctx.settings.output = DS_OUTPUT_JSON;
    fflush(fx->out);
    size_t before = fx->out_len;
    assert_int_equal(s_dsctl(fx, "status"), 0);
    s_has(fx->out_text + before, "{\n  \"services\": [\n    {\n      \"service\": \"churn-model\"");
    s_has(fx->out_text + before, "\"insecure\": true\n}\n");
}

static void test_usage_errors_exit_2_before_any_request(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "deploy", "churn-model"), 2);
    assert_int_equal(s_dsctl(fx, "deploy", "churn model", "--artifact", "/m", "--cmd", "x"), 2);
    assert_int_equal(s_dsctl(fx, "deploy", "churn-model", "--artifact", "/m", "--cmd", "x", "--env",
                             "A=1", "--env", "A=2"),
                     2);
    assert_int_equal(s_dsctl(fx, "deploy", "churn-model", "--spec", "/nonexistent.yaml"), 2);
    s_has(fx->err_text, "/nonexistent.yaml: cannot open the spec file");
    assert_int_equal(s_dsctl(fx, "rollback", "churn-model", "--to", "0"), 2);
    assert_int_equal(s_dsctl(fx, "promote"), 2);
    s_has(fx->err_text, "dsctl: missing SERVICE");
    assert_int_equal(s_dsctl(fx, "history", "churn-model", "--limit", "x"), 2);
    assert_int_equal(s_dsctl(fx, "workers", "extra"), 2);
    assert_int_equal(s_dsctl(fx, "events", "--follow", "--follow"), 2);
    assert_int_equal(atomic_load(&fx->fake.writes) + atomic_load(&fx->fake.polls), 0);
}

static void test_events_prints_the_most_recent_oldest_first(void **state)
{
    s_fix_t *fx = *state;
    s_start(fx);
    assert_int_equal(s_dsctl(fx, "events"), 0);
    assert_int_equal(atomic_load(&fx->fake.event_reqs), 3); /* 2 + 1 + the empty page */
    s_has(fx->out_text, "2024-05-01T10:00:00.000Z  deploy      churn-model       v3 started\n"
                        "2024-05-01T10:00:01.000Z  worker      -                 w1 joined\n"
                        "2024-05-01T10:00:02.000Z  verdict     churn-model       canary passed\n");
    fx->ctx.settings.output = DS_OUTPUT_JSON;
    fflush(fx->out);
    size_t before = fx->out_len;
    assert_int_equal(s_dsctl(fx, "events", "--limit", "2"), 0);
    const char *t = fx->out_text + before;
    assert_int_equal(t[0], '[');
    assert_null(strstr(t, "\"seq\": 1,"));
    s_has(t, "\"seq\": 2,");
    s_has(t, "\"seq\": 3,");
    s_has(t, "\"ts\": \"2024-05-01T10:00:02.000Z\"");
    assert_true(strstr(t, "\"seq\": 2,") < strstr(t, "\"seq\": 3,"));
}

#define S_T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        S_T(test_deploy_sends_an_absolute_artifact_and_prints_the_deployment),
        S_T(test_deploy_wait_follows_the_deployment_to_success),
        S_T(test_deploy_wait_exits_1_with_the_reason_when_rolled_back),
        S_T(test_deploy_wait_exits_1_when_another_deployment_replaced_it),
        S_T(test_deploy_wait_stops_at_the_timeout_and_says_the_deployment_goes_on),
        S_T(test_deploy_wait_json_is_one_document_with_the_result),
        S_T(test_error_replies_give_the_documented_exit_codes),
        S_T(test_pause_resume_abort_send_their_type),
        S_T(test_status_prints_one_service_or_all),
        S_T(test_usage_errors_exit_2_before_any_request),
        S_T(test_events_prints_the_most_recent_oldest_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
