/*  tests/integration/release_fix.h - a fixture for tests of releases on a
    real three-member cluster with test peers as workers: setup and
    teardown, and the admin requests through the C client (deploy,
    actions, status, history) with waits bounded by DS_RF_WAIT_MS. */
#ifndef DS_TESTS_INTEGRATION_RELEASE_FIX_H
#define DS_TESTS_INTEGRATION_RELEASE_FIX_H

#include "tests/integration/testpeer.h"

#define S_WAIT_MS 40000

/*  The spec's canary analysis, applied by s_spec when set. */
static const ds_analysis_t *s_analysis;

typedef struct {
    ds_cl_t *c;
    ds_tp_t tp;
    ds_client_t *cl;
} s_fix_t;

DS_CL_FN int s_setup(void **state)
{
    s_fix_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ds_cl_opts_t o = {.worker_heartbeat = "200ms", .worker_timeout = "1500ms"};
    f->c = ds_cl_new(DS_RF_NAME, 3, &o);
    ds_cl_start_all(f->c);
    ds_cl_wait_leader(f->c, 0, 10000, NULL);
    f->cl = ds_cl_client(f->c, "it-admin", 8000);
    *state = f;
    return 0;
}

DS_CL_FN int s_teardown(void **state)
{
    s_fix_t *f = *state;
    ds_tp_stop(&f->tp);
    ds_client_destroy(&f->cl);
    ds_cl_destroy(&f->c);
    free(f);
    *state = NULL;
    return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

DS_CL_FN int s_call(s_fix_t *f, uint16_t type, const void *body, uint16_t want, ds_msg_t **r,
                    char *msg, size_t msglen)
{
    ds_client_err_t err;
    int rc = ds_client_call(f->cl, type, body, r, &err);
    if (rc != 0) {
        snprintf(msg, msglen, "%s", err.text);
        return rc;
    }
    if ((*r)->env.type == DS_MSG_ERROR) {
        const ds_error_reply_t *e = (*r)->body;
        snprintf(msg, msglen, "%s", e->message);
        rc = (int)e->code;
    } else if ((*r)->env.type != want) {
        snprintf(msg, msglen, "unexpected reply %s", ds_msg_type_name((*r)->env.type));
        rc = DS_EUNKNOWN;
    }
    if (rc != 0)
        ds_msg_destroy(r);
    return rc;
}

DS_CL_FN void s_spec(ds_spec_t *spec, uint64_t bake_ms)
{
    ds_spec_init(spec);
    spec->artifact = "/srv/models/churn";
    spec->command = "python3 serve.py --port ${PORT}";
    spec->strategy.canary = 1;
    spec->strategy.max_parallel = 1;
    spec->strategy.bake_ms = bake_ms;
    spec->strategy.healthy_deadline_ms = 5000;
    spec->strategy.progress_deadline_ms = 20000;
    if (s_analysis) {
        spec->analysis = *s_analysis;
        spec->metrics.path = "/metrics";
        spec->metrics.requests_metric = "http_requests_total";
        spec->metrics.errors_metric = "http_errors_total";
    }
    ds_spec_apply_defaults(spec);
    char err[256];
    if (ds_spec_validate(spec, err, sizeof err) != 0)
        fail_msg("test spec invalid: %s", err);
}

/*  Deploys; returns the OP_REPLY's code and fills *op (version, id). */
DS_CL_FN int s_deploy(s_fix_t *f, const char *service, uint64_t bake_ms, bool force,
                      ds_op_reply_t *op, char *msg, size_t msglen)
{
    ds_deploy_req_t req = {(char *)service, {0}, force, false};
    s_spec(&req.spec, bake_ms);
    ds_msg_t *r = NULL;
    int rc = s_call(f, DS_MSG_DEPLOY, &req, DS_MSG_OP_REPLY, &r, msg, msglen);
    if (rc == 0 && op) {
        const ds_op_reply_t *o = r->body;
        *op = (ds_op_reply_t){NULL, o->version, o->deployment_id, NULL, NULL, o->index};
    }
    ds_msg_destroy(&r);
    return rc;
}

DS_CL_FN int s_action(s_fix_t *f, uint16_t type, const char *service, uint64_t to, char *msg,
                      size_t msglen, ds_op_reply_t *op)
{
    ds_service_req_t req = {(char *)service, to, "integration test"};
    ds_msg_t *r = NULL;
    int rc = s_call(f, type, &req, DS_MSG_OP_REPLY, &r, msg, msglen);
    if (rc == 0 && op) {
        const ds_op_reply_t *o = r->body;
        *op = (ds_op_reply_t){NULL, o->version, o->deployment_id, NULL, NULL, o->index};
    }
    ds_msg_destroy(&r);
    return rc;
}

typedef struct {
    uint64_t current, desired, id, version;
    char state[32];
    char reason[256];
    uint32_t n_instances, on_version, healthy;
} s_status_t;

DS_CL_FN int s_status(s_fix_t *f, const char *service, uint64_t version, s_status_t *st, char *msg,
                      size_t msglen)
{
    ds_query_req_t q = {(char *)service, false, 0};
    ds_msg_t *r = NULL;
    int rc = s_call(f, DS_MSG_STATUS, &q, DS_MSG_STATUS_REPLY, &r, msg, msglen);
    if (rc != 0)
        return rc;
    const ds_status_reply_t *s = r->body;
    assert_int_equal(s->n_services, 1);
    const ds_service_status_t *svc = &s->services[0];
    memset(st, 0, sizeof *st);
    st->current = svc->current_version;
    st->desired = svc->desired_version;
    if (svc->has_deployment) {
        st->id = svc->deployment.id;
        st->version = svc->deployment.version;
        snprintf(st->state, sizeof st->state, "%s", svc->deployment.state);
        snprintf(st->reason, sizeof st->reason, "%s", svc->deployment.reason);
    }
    st->n_instances = svc->n_instances;
    for (uint32_t i = 0; i < svc->n_instances; i++) {
        st->on_version += svc->instances[i].version == version;
        st->healthy += svc->instances[i].version == version &&
                       strcmp(svc->instances[i].health, "passing") == 0;
    }
    ds_msg_destroy(&r);
    return 0;
}

/*  Waits until deployment `id` of service reaches `state`. */
DS_CL_FN s_status_t s_wait_state(s_fix_t *f, const char *service, uint64_t id, const char *state,
                                 uint64_t version)
{
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    s_status_t st = {0};
    char msg[2048] = "";
    while (ds_cl_now_ms() < deadline) {
        ds_cl_check_alive(f->c);
        if (s_status(f, service, version, &st, msg, sizeof msg) == 0 && st.id == id &&
            strcmp(st.state, state) == 0)
            return st;
        ds_cl_sleep_ms(100);
    }
    fail_msg("deployment %" PRIu64 " of %s did not reach %s within %d ms: it is %s (%s) %s", id,
             service, state, S_WAIT_MS, st.state, st.reason, msg);
    return st;
}

DS_CL_FN void s_wait_workers_up(s_fix_t *f, size_t n)
{
    int64_t deadline = ds_cl_now_ms() + S_WAIT_MS;
    char msg[2048] = "";
    size_t up = 0;
    while (ds_cl_now_ms() < deadline) {
        ds_query_req_t q = {"", false, 0};
        ds_msg_t *r = NULL;
        if (s_call(f, DS_MSG_WORKERS, &q, DS_MSG_WORKERS_REPLY, &r, msg, sizeof msg) == 0) {
            const ds_workers_reply_t *w = r->body;
            up = 0;
            for (uint32_t i = 0; i < w->n_workers; i++)
                up += strcmp(w->workers[i].state, "up") == 0;
            ds_msg_destroy(&r);
            if (up == n)
                return;
        }
        ds_cl_sleep_ms(100);
    }
    fail_msg("%zu of %zu workers up after %d ms %s", up, n, S_WAIT_MS, msg);
}

DS_CL_FN void s_assert_peers_on(s_fix_t *f, const char *service, uint64_t version)
{
    int64_t deadline = ds_cl_now_ms() + 5000;
    size_t i = 0;
    while (ds_cl_now_ms() < deadline) {
        for (i = 0; i < f->tp.n; i++)
            if (ds_tp_version(&f->tp, i, service) != version)
                break;
        if (i == f->tp.n)
            return;
        ds_cl_sleep_ms(50);
    }
    fail_msg("worker %s runs %s v%" PRIu64 ", not v%" PRIu64, f->tp.p[i].name, service,
             ds_tp_version(&f->tp, i, service), version);
}

DS_CL_FN size_t s_history_len(s_fix_t *f, const char *service, char *events, size_t len)
{
    ds_query_req_t q = {(char *)service, false, 0};
    ds_msg_t *r = NULL;
    char msg[1024];
    assert_int_equal(s_call(f, DS_MSG_HISTORY, &q, DS_MSG_HISTORY_REPLY, &r, msg, sizeof msg), 0);
    const ds_history_reply_t *h = r->body;
    size_t n = h->n_rows, at = 0;
    if (events)
        events[0] = '\0';
    for (uint32_t i = 0; events && i < h->n_rows && at < len; i++)
        at += (size_t)snprintf(events + at, len - at, "%s:%s:v%" PRIu64 " ", h->rows[i].event,
                               h->rows[i].outcome, h->rows[i].version);
    ds_msg_destroy(&r);
    return n;
}

#endif
