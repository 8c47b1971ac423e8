/*  tests/integration/testpeer.h - test peers that speak the worker
    protocol to a real cluster over real ZeroMQ sockets.

    Each peer joins (following "not leader" like any client), heartbeats
    every DS_TP_BEAT_MS, fetches its assignment when the generation in the
    heartbeat reply is newer, and reports one instance per assigned
    service. What an instance reports is the test's choice: by default it
    runs its assigned version and passes its health check; versions listed
    in `bad` fail their health check. A peer can be silenced (it stops
    heartbeating, as a dead worker would).

    The peers run on one thread started by ds_tp_start and stopped by
    ds_tp_stop (also when the test fails: ds_tp_stop from the teardown). */
#ifndef DS_TESTS_INTEGRATION_TESTPEER_H
#define DS_TESTS_INTEGRATION_TESTPEER_H

#include "tests/integration/cluster.h"

#include "protocol/appmetrics.h"

#include <stdatomic.h>

#define DS_TP_MAX      8
#define DS_TP_SERVICES 4
#define DS_TP_BEAT_MS  100

typedef struct {
    char name[32];
    char zone[16]; /* label zone=... */
    bool joined;
    atomic_bool silent;
    uint64_t generation; /* of the assignment it runs */
    uint32_t n;
    char service[DS_TP_SERVICES][DS_MAX_NAME + 1];
    uint64_t version[DS_TP_SERVICES];
    uint64_t started_ms[DS_TP_SERVICES];
    uint64_t requests[DS_TP_SERVICES], errors[DS_TP_SERVICES]; /* app counters, cumulative */
    unsigned joins, beats, fetches;
} ds_tp_peer_t;

typedef struct {
    ds_cl_t *cl;
    size_t n;
    ds_tp_peer_t p[DS_TP_MAX];
    _Atomic uint64_t bad[8];   /* versions whose health check fails; 0 = none */
    _Atomic uint64_t noisy[8]; /* versions that answer 30% errors, health passing */
    atomic_bool stop;
    bool running;
    pthread_t thread;
    pthread_mutex_t lock;
} ds_tp_t;

DS_CL_FN void s_tp_adopt(ds_tp_peer_t *p, const ds_assignment_t *a)
{
    ds_tp_peer_t old = *p;
    p->n = 0;
    for (uint32_t i = 0; i < a->n_releases && p->n < DS_TP_SERVICES; i++) {
        const ds_assigned_release_t *r = &a->releases[i];
        snprintf(p->service[p->n], sizeof p->service[0], "%s", r->service);
        p->version[p->n] = r->version;
        p->started_ms[p->n] = (uint64_t)ds_cl_now_ms();
        p->requests[p->n] = p->errors[p->n] = 0;
        for (uint32_t j = 0; j < old.n; j++)
            if (strcmp(old.service[j], r->service) == 0 && old.version[j] == r->version) {
                p->started_ms[p->n] = old.started_ms[j];
                p->requests[p->n] = old.requests[j];
                p->errors[p->n] = old.errors[j];
            }
        p->n++;
    }
    p->generation = a->generation;
}

DS_CL_FN int s_tp_call(ds_client_t *cl, uint16_t type, const void *body, uint16_t want,
                       ds_msg_t **reply)
{
    int rc = ds_client_call(cl, type, body, reply, NULL);
    if (rc == 0 && (*reply)->env.type == DS_MSG_ERROR)
        rc = (int)((const ds_error_reply_t *)(*reply)->body)->code;
    else if (rc == 0 && (*reply)->env.type != want)
        rc = DS_EUNKNOWN;
    if (rc != 0)
        ds_msg_destroy(reply);
    return rc;
}

DS_CL_FN void s_tp_join(ds_tp_t *t, ds_tp_peer_t *p, ds_client_t *cl)
{
    ds_kv_t labels[1] = {{"zone", p->zone}};
    ds_join_req_t req = {p->name, p->name, 1, labels, {2, 1024, 1024}, "testpeer", ""};
    ds_msg_t *r = NULL;
    if (s_tp_call(cl, DS_MSG_JOIN, &req, DS_MSG_JOIN_REPLY, &r) != 0)
        return;
    pthread_mutex_lock(&t->lock);
    s_tp_adopt(p, &((const ds_join_reply_t *)r->body)->assignment);
    p->joined = true;
    p->joins++;
    pthread_mutex_unlock(&t->lock);
    ds_msg_destroy(&r);
}

DS_CL_FN bool s_tp_in(const _Atomic uint64_t *set, size_t n, uint64_t version)
{
    for (size_t i = 0; i < n; i++)
        if (version != 0 && atomic_load(&set[i]) == version)
            return true;
    return false;
}

DS_CL_FN bool s_tp_is_bad(const ds_tp_t *t, uint64_t version)
{
    return s_tp_in(t->bad, sizeof t->bad / sizeof t->bad[0], version);
}

/*  Each beat, an instance serves 20 requests (6 failing when its version
    is noisy): the metrics a worker scrapes from the service. */
DS_CL_FN uint32_t s_tp_metrics(ds_tp_t *t, ds_tp_peer_t *p, uint32_t i, ds_metric_t *m)
{
    p->requests[i] += 20;
    p->errors[i] += s_tp_in(t->noisy, sizeof t->noisy / sizeof t->noisy[0], p->version[i]) ? 6 : 0;
    m[0] = (ds_metric_t){DS_APPMETRIC_REQUESTS, (double)p->requests[i]};
    m[1] = (ds_metric_t){DS_APPMETRIC_ERRORS, (double)p->errors[i]};
    return 2;
}

DS_CL_FN void s_tp_fetch(ds_tp_t *t, ds_tp_peer_t *p, ds_client_t *cl)
{
    ds_assignment_req_t req = {p->name, p->generation};
    ds_msg_t *r = NULL;
    if (s_tp_call(cl, DS_MSG_ASSIGNMENT_REQ, &req, DS_MSG_ASSIGNMENT, &r) != 0)
        return;
    pthread_mutex_lock(&t->lock);
    s_tp_adopt(p, r->body);
    p->fetches++;
    pthread_mutex_unlock(&t->lock);
    ds_msg_destroy(&r);
}

DS_CL_FN void s_tp_beat(ds_tp_t *t, ds_tp_peer_t *p, ds_client_t *cl)
{
    ds_instance_status_t inst[DS_TP_SERVICES];
    ds_metric_t metrics[DS_TP_SERVICES][2];
    ds_heartbeat_t hb = {.name = p->name,
                         .generation = p->generation,
                         .telemetry = {0.1, 5.0, 100, 1000, 5000},
                         .instances = inst};
    pthread_mutex_lock(&t->lock);
    for (uint32_t i = 0; i < p->n; i++) {
        bool bad = s_tp_is_bad(t, p->version[i]);
        inst[hb.n_instances++] = (ds_instance_status_t){
            .service = p->service[i],
            .version = p->version[i],
            .state = DS_INST_RUNNING,
            .health = bad ? DS_HEALTH_FAILING : DS_HEALTH_PASSING,
            .pid = 4242,
            .uptime_ms = (uint64_t)ds_cl_now_ms() - p->started_ms[i],
            .reason = bad ? "health check failed: GET /healthz answered 503" : "",
        };
        ds_instance_status_t *st = &inst[hb.n_instances - 1];
        st->n_metrics = s_tp_metrics(t, p, i, metrics[i]);
        st->metrics = metrics[i];
    }
    pthread_mutex_unlock(&t->lock);
    ds_msg_t *r = NULL;
    int rc = s_tp_call(cl, DS_MSG_HEARTBEAT, &hb, DS_MSG_HEARTBEAT_REPLY, &r);
    if (rc == DS_ENOTFOUND)
        p->joined = false; /* the cluster does not know it: join again */
    if (rc != 0)
        return;
    uint64_t want = ((const ds_heartbeat_reply_t *)r->body)->generation;
    ds_msg_destroy(&r);
    p->beats++;
    if (want > p->generation)
        s_tp_fetch(t, p, cl);
}

DS_CL_FN void *s_tp_main(void *arg)
{
    ds_tp_t *t = arg;
    ds_client_t *cl[DS_TP_MAX];
    for (size_t i = 0; i < t->n; i++) {
        ds_client_opts_t o;
        memset(&o, 0, sizeof o);
        if (ds_dsctl_endpoints_parse(t->cl->rpcs, &o.endpoints, NULL, 0) != 0)
            return NULL;
        o.timeout_ms = 1000;
        o.attempt_ms = 300;
        o.sender = t->p[i].name;
        cl[i] = ds_client_new(&o);
    }
    while (!t->stop) {
        for (size_t i = 0; i < t->n && !t->stop; i++) {
            ds_tp_peer_t *p = &t->p[i];
            if (!cl[i] || p->silent)
                continue;
            if (!p->joined)
                s_tp_join(t, p, cl[i]);
            else
                s_tp_beat(t, p, cl[i]);
        }
        ds_cl_sleep_ms(DS_TP_BEAT_MS);
    }
    for (size_t i = 0; i < t->n; i++)
        ds_client_destroy(&cl[i]);
    return NULL;
}

/*  Starts n peers w1..wn (zone a for odd, b for even numbers). */
DS_CL_FN void ds_tp_start(ds_tp_t *t, ds_cl_t *cl, size_t n)
{
    memset(t, 0, sizeof *t);
    assert_true(n <= DS_TP_MAX);
    t->cl = cl;
    t->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(t->p[i].name, sizeof t->p[i].name, "w%zu", i + 1);
        snprintf(t->p[i].zone, sizeof t->p[i].zone, "%s", i % 2 ? "b" : "a");
    }
    pthread_mutex_init(&t->lock, NULL);
    assert_int_equal(pthread_create(&t->thread, NULL, s_tp_main, t), 0);
    t->running = true;
}

DS_CL_FN void ds_tp_stop(ds_tp_t *t)
{
    if (!t->running)
        return;
    t->stop = true;
    pthread_join(t->thread, NULL);
    pthread_mutex_destroy(&t->lock);
    t->running = false;
}

/*  The version peer i runs of `service`, 0 if none. */
DS_CL_FN uint64_t ds_tp_version(ds_tp_t *t, size_t i, const char *service)
{
    uint64_t v = 0;
    pthread_mutex_lock(&t->lock);
    for (uint32_t k = 0; k < t->p[i].n; k++)
        if (strcmp(t->p[i].service[k], service) == 0)
            v = t->p[i].version[k];
    pthread_mutex_unlock(&t->lock);
    return v;
}

#endif
