/*  tests/unit/test_worker_state.c - the replicated worker registry: joins
    through ds_apply_entry, assignments and reads on a real LMDB store. */
#define DS_FSM_TAG "worker_state"
#include "tests/unit/fsm_fix.h"

#include "coordinator/apply.h"
#include "coordinator/fsm.h"
#include "coordinator/release_state.h"
#include "coordinator/worker_state.h"
#include "protocol/error.h"
#include "protocol/messages.h"
#include "storage/state.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int s_join(fx_t *fx, const char *name, const char *id, uint64_t ts, const char *zone)
{
    ds_kv_t labels[] = {{"zone", (char *)zone}, {"disk", "ssd"}};
    ds_join_req_t req = {.name = (char *)name,
                         .worker_id = (char *)id,
                         .n_labels = 2,
                         .labels = labels,
                         .resources = {.cpus = 4, .memory_kb = 1024, .disk_kb = 2048},
                         .software_version = "1.2.3",
                         .token = ""};
    return s_apply(fx, DS_CMD_WORKER_JOIN, "", 0, ts, &req);
}

static void s_spec(ds_spec_t *spec, const char *artifact)
{
    ds_spec_init(spec);
    spec->artifact = (char *)artifact;
    spec->command = "bin/serve --port ${PORT}";
    ds_spec_apply_defaults(spec);
}

static int s_deploy(fx_t *fx, const char *service, const char *artifact, uint64_t ts)
{
    ds_deploy_req_t req = {.service = (char *)service, .force = true};
    s_spec(&req.spec, artifact);
    return s_apply(fx, DS_CMD_DEPLOY, "alice", 0, ts, &req);
}

/*  Runs a direct call in the next entry's write transaction. */
typedef struct {
    const char *worker;
    const char *service;
    uint64_t version;
    uint64_t dep_id;
    uint64_t ts;
    const ds_join_req_t *join;
    int rc;
} call_t;

static int s_assign_fn(ds_txn_t *txn, void *ctx)
{
    call_t *c = ctx;
    c->rc = ds_worker_state_assign(txn, c->worker, c->service, c->version, c->dep_id, c->ts);
    return c->rc;
}

static int s_assign(fx_t *fx, const char *worker, const char *service, uint64_t version,
                    uint64_t dep_id, uint64_t ts)
{
    call_t c = {worker, service, version, dep_id, ts, NULL, 0};
    int result = 1;
    int rc = ds_state_apply(fx->s, fx->index + 1, 0, s_assign_fn, &c, &result);
    if (rc != 0)
        return rc; /* a storage failure: the index did not advance */
    fx->index++;
    assert_int_equal(result, c.rc);
    return c.rc;
}

static int s_join_fn(ds_txn_t *txn, void *ctx)
{
    call_t *c = ctx;
    ds_command_t cmd = {.type = DS_CMD_WORKER_JOIN, .client = "", .ts_ms = c->ts};
    c->rc = ds_worker_state_join(txn, 0, &cmd, c->join);
    return c->rc;
}

/*  Calls ds_worker_state_join directly, for requests the encoder would
    refuse to send. */
static int s_join_direct(fx_t *fx, const ds_join_req_t *req)
{
    call_t c = {.join = req, .ts = 5};
    int result = 1;
    int rc = ds_state_apply(fx->s, fx->index + 1, 0, s_join_fn, &c, &result);
    if (rc != 0)
        return rc;
    fx->index++;
    assert_int_equal(result, c.rc);
    return c.rc;
}

/* ---- reading state ---- */

typedef struct {
    const char *worker;
    const char *service;
    int rc;
    ds_arena_t *arena;
    ds_worker_record_t w;
    ds_assignment_t a;
    uint64_t version;
} read_t;

static int s_read_worker_fn(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->rc = ds_worker_state_get(txn, r->worker, r->arena, &r->w);
    return 0;
}

static int s_read_assignment_fn(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->rc = ds_worker_state_assignment(txn, r->worker, r->arena, &r->a);
    return 0;
}

static int s_read_assigned_fn(ds_txn_t *txn, void *ctx)
{
    read_t *r = ctx;
    r->version = 99;
    r->rc = ds_worker_state_assigned(txn, r->worker, r->service, &r->version);
    return 0;
}

static read_t *s_read(fx_t *fx, ds_store_read_fn fn, const char *worker, const char *service)
{
    read_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->arena = ds_arena_new(1u << 20);
    assert_non_null(r->arena);
    r->worker = worker;
    r->service = service;
    assert_int_equal(ds_store_read(fx->s, fn, r), 0);
    return r;
}

static void s_read_free(read_t *r)
{
    ds_arena_destroy(&r->arena);
    free(r);
}

static uint64_t s_generation(fx_t *fx, const char *worker)
{
    read_t *r = s_read(fx, s_read_worker_fn, worker, NULL);
    assert_int_equal(r->rc, 0);
    uint64_t g = r->w.generation;
    s_read_free(r);
    return g;
}

static uint64_t s_assigned(fx_t *fx, const char *worker, const char *service)
{
    read_t *r = s_read(fx, s_read_assigned_fn, worker, service);
    assert_int_equal(r->rc, 0);
    uint64_t v = r->version;
    s_read_free(r);
    return v;
}

/*  The raw assignment row, to see that an unchanged assign rewrote nothing. */
typedef struct {
    const char *worker, *service;
    int rc;
    uint64_t deployment_id, assigned_at;
} row_t;

static int s_row_fn(ds_txn_t *txn, void *ctx)
{
    row_t *r = ctx;
    ds_val_t v;
    r->rc = ds_state_assignment_get(txn, r->worker, r->service, &v);
    if (r->rc != 0)
        return 0;
    ds_arena_t *arena = ds_arena_new(1u << 16);
    assert_non_null(arena);
    ds_assignment_record_t rec;
    r->rc = ds_codec_decode(&ds_assignment_record_desc, v.data, v.len, &rec, arena, NULL);
    r->deployment_id = rec.deployment_id;
    r->assigned_at = rec.assigned_at_ms;
    ds_arena_destroy(&arena);
    return 0;
}

static row_t s_row(fx_t *fx, const char *worker, const char *service)
{
    row_t r = {worker, service, 0, 0, 0};
    assert_int_equal(ds_store_read(fx->s, s_row_fn, &r), 0);
    return r;
}

/*  Counts rows of the workers and assignments tables. */
static int s_count_row(void *ctx, const ds_state_row_t *row)
{
    (void)row;
    (*(size_t *)ctx)++;
    return 0;
}

static int s_count_fn(ds_txn_t *txn, void *ctx)
{
    size_t *n = ctx;
    int rc = ds_state_list(txn, DS_TABLE_WORKERS, s_count_row, &n[0]);
    return rc ? rc : ds_state_assignments_list(txn, NULL, s_count_row, &n[1]);
}

static void s_counts(fx_t *fx, size_t *workers, size_t *assignments)
{
    size_t n[2] = {0, 0};
    assert_int_equal(ds_store_read(fx->s, s_count_fn, n), 0);
    *workers = n[0];
    *assignments = n[1];
}

/* ---- join ---- */

static void test_join_new_worker_creates_record_at_generation_1(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    read_t *r = s_read(fx, s_read_worker_fn, "w1", NULL);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->w.name, "w1");
    assert_string_equal(r->w.worker_id, "id-1");
    assert_int_equal(r->w.n_labels, 2);
    assert_string_equal(r->w.labels[0].key, "zone");
    assert_string_equal(r->w.labels[0].value, "a");
    assert_int_equal(r->w.resources.cpus, 4);
    assert_int_equal(r->w.resources.memory_kb, 1024);
    assert_int_equal(r->w.resources.disk_kb, 2048);
    assert_string_equal(r->w.software_version, "1.2.3");
    assert_int_equal(r->w.joined_at_ms, 1000);
    assert_int_equal(r->w.rejoined_at_ms, 1000);
    assert_int_equal(r->w.generation, 1);
    s_read_free(r);
}

static void test_rejoin_keeps_generation_and_assignments(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "web", "web1.tar.gz", 500), 0);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_assign(fx, "w1", "web", 1, 1, 1500), 0);
    assert_int_equal(s_generation(fx, "w1"), 2);

    /* The same name from a re-imaged machine: a new id, new labels. */
    assert_int_equal(s_join(fx, "w1", "id-2", 2000, "b"), 0);
    read_t *r = s_read(fx, s_read_worker_fn, "w1", NULL);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->w.worker_id, "id-2");
    assert_string_equal(r->w.labels[0].value, "b");
    assert_int_equal(r->w.joined_at_ms, 1000);
    assert_int_equal(r->w.rejoined_at_ms, 2000);
    assert_int_equal(r->w.generation, 2);
    s_read_free(r);
    assert_int_equal(s_assigned(fx, "w1", "web"), 1);
}

static void test_join_with_bad_name_or_labels_refused(void **state)
{
    fx_t *fx = *state;
    /* Through the command: the encoder sends these, the state refuses. */
    assert_int_equal(s_join(fx, "", "id-1", 1000, "a"), DS_EINVAL);
    assert_int_equal(s_join(fx, "has space", "id-1", 1000, "a"), DS_EINVAL);
    assert_int_equal(s_join(fx, "w1", "", 1000, "a"), DS_EINVAL);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a\tb"), DS_EINVAL);

    char long_name[DS_MAX_NAME + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ds_kv_t bad_key[] = {{"zone!", "a"}};
    ds_kv_t empty_key[] = {{"", "a"}};
    ds_kv_t dup[] = {{"zone", "a"}, {"zone", "b"}};
    ds_kv_t long_key[] = {{long_name, "a"}};
    char long_value[DS_MAX_LABEL + 2];
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    ds_kv_t long_val[] = {{"zone", long_value}};
    ds_kv_t many[DS_MAX_LABELS + 1];
    char keys[DS_MAX_LABELS + 1][8];
    for (uint32_t i = 0; i <= DS_MAX_LABELS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%u", i);
        many[i] = (ds_kv_t){keys[i], "v"};
    }
    struct {
        const char *name;
        ds_kv_t *labels;
        uint32_t n;
        const char *software;
    } cases[] = {
        {long_name, NULL, 0, "1"}, {NULL, NULL, 0, "1"},
        {"w1", bad_key, 1, "1"},   {"w1", empty_key, 1, "1"},
        {"w1", dup, 2, "1"},       {"w1", long_key, 1, "1"},
        {"w1", long_val, 1, "1"},  {"w1", many, DS_MAX_LABELS + 1, "1"},
        {"w1", NULL, 1, "1"},      {"w1", NULL, 0, long_value},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_join_req_t req = {.name = (char *)cases[i].name,
                             .worker_id = "id-1",
                             .n_labels = cases[i].n,
                             .labels = cases[i].labels,
                             .software_version = (char *)cases[i].software};
        assert_int_equal(s_join_direct(fx, &req), DS_EINVAL);
    }
    size_t workers, assignments;
    s_counts(fx, &workers, &assignments);
    assert_int_equal(workers, 0);

    /* The limits themselves are accepted. */
    ds_kv_t ok[] = {{"topology.kubernetes.io/zone-1_a", ""}};
    ds_join_req_t req = {.name = "w1", .worker_id = "id-1", .n_labels = 1, .labels = ok};
    assert_int_equal(s_join_direct(fx, &req), 0);
    req.labels = many;
    req.n_labels = DS_MAX_LABELS;
    assert_int_equal(s_join_direct(fx, &req), 0);
    s_counts(fx, &workers, &assignments);
    assert_int_equal(workers, 1);
}

/* ---- assign ---- */

static void test_assign_bumps_generation_only_on_change(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_assigned(fx, "w1", "web"), 0);

    assert_int_equal(s_assign(fx, "w1", "web", 1, 11, 2000), 0);
    assert_int_equal(s_generation(fx, "w1"), 2);
    assert_int_equal(s_assigned(fx, "w1", "web"), 1);
    row_t row = s_row(fx, "w1", "web");
    assert_int_equal(row.rc, 0);
    assert_int_equal(row.deployment_id, 11);
    assert_int_equal(row.assigned_at, 2000);

    /* The same version again, from another deployment: nothing changes. */
    assert_int_equal(s_assign(fx, "w1", "web", 1, 12, 3000), 0);
    assert_int_equal(s_generation(fx, "w1"), 2);
    row = s_row(fx, "w1", "web");
    assert_int_equal(row.deployment_id, 11);
    assert_int_equal(row.assigned_at, 2000);

    assert_int_equal(s_assign(fx, "w1", "web", 2, 12, 4000), 0);
    assert_int_equal(s_generation(fx, "w1"), 3);
    assert_int_equal(s_assigned(fx, "w1", "web"), 2);

    /* Another service is another row, and another change. */
    assert_int_equal(s_assign(fx, "w1", "db", 5, 13, 5000), 0);
    assert_int_equal(s_generation(fx, "w1"), 4);
    assert_int_equal(s_assigned(fx, "w1", "web"), 2);
    assert_int_equal(s_assigned(fx, "w1", "db"), 5);
}

static void test_assign_zero_deletes_row(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_assign(fx, "w1", "web", 3, 1, 2000), 0);
    assert_int_equal(s_assign(fx, "w1", "web", 0, 2, 3000), 0);
    assert_int_equal(s_generation(fx, "w1"), 3);
    assert_int_equal(s_row(fx, "w1", "web").rc, DS_ENOTFOUND);
    assert_int_equal(s_assigned(fx, "w1", "web"), 0);

    /* Nothing to delete: no change. */
    assert_int_equal(s_assign(fx, "w1", "web", 0, 3, 4000), 0);
    assert_int_equal(s_generation(fx, "w1"), 3);
    size_t workers, assignments;
    s_counts(fx, &workers, &assignments);
    assert_int_equal(assignments, 0);
}

static void test_assign_unknown_worker_or_bad_names_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_assign(fx, "ghost", "web", 1, 1, 1000), DS_ENOTFOUND);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_assign(fx, "w1", "", 1, 1, 1000), DS_EINVAL);
    assert_int_equal(s_assign(fx, "w1", NULL, 1, 1, 1000), DS_EINVAL);
    assert_int_equal(s_assign(fx, "", "web", 1, 1, 1000), DS_EINVAL);
    assert_int_equal(s_generation(fx, "w1"), 1);
    size_t workers, assignments;
    s_counts(fx, &workers, &assignments);
    assert_int_equal(workers, 1);
    assert_int_equal(assignments, 0);
}

/* ---- reads ---- */

static void test_get_and_assigned_refuse_bad_names(void **state)
{
    fx_t *fx = *state;
    read_t *r = s_read(fx, s_read_worker_fn, "ghost", NULL);
    assert_int_equal(r->rc, DS_ENOTFOUND);
    s_read_free(r);
    r = s_read(fx, s_read_worker_fn, "", NULL);
    assert_int_equal(r->rc, DS_EINVAL);
    s_read_free(r);
    r = s_read(fx, s_read_assigned_fn, "ghost", "web");
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->version, 0);
    s_read_free(r);
    r = s_read(fx, s_read_assigned_fn, "w1", "bad name");
    assert_int_equal(r->rc, DS_EINVAL);
    assert_int_equal(r->version, 0);
    s_read_free(r);
}

static void test_assignment_returns_specs_from_releases(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "web", "web1.tar.gz", 100), 0);
    assert_int_equal(s_deploy(fx, "web", "web2.tar.gz", 200), 0);
    assert_int_equal(s_deploy(fx, "db", "db1.tar.gz", 300), 0);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_join(fx, "w2", "id-2", 1000, "a"), 0);

    read_t *r = s_read(fx, s_read_assignment_fn, "w1", NULL);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->a.generation, 1);
    assert_int_equal(r->a.n_releases, 0);
    s_read_free(r);

    assert_int_equal(s_assign(fx, "w1", "web", 2, 2, 2000), 0);
    assert_int_equal(s_assign(fx, "w1", "db", 1, 3, 2000), 0);
    assert_int_equal(s_assign(fx, "w2", "web", 1, 2, 2000), 0);

    r = s_read(fx, s_read_assignment_fn, "w1", NULL);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->a.generation, 3);
    assert_int_equal(r->a.n_releases, 2);
    assert_string_equal(r->a.releases[0].service, "db"); /* service name order */
    assert_int_equal(r->a.releases[0].version, 1);
    assert_string_equal(r->a.releases[0].spec.artifact, "db1.tar.gz");
    assert_string_equal(r->a.releases[1].service, "web");
    assert_int_equal(r->a.releases[1].version, 2);
    assert_string_equal(r->a.releases[1].spec.artifact, "web2.tar.gz");
    assert_string_equal(r->a.releases[1].spec.command, "bin/serve --port ${PORT}");
    s_read_free(r);

    r = s_read(fx, s_read_assignment_fn, "w2", NULL);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->a.n_releases, 1);
    assert_string_equal(r->a.releases[0].spec.artifact, "web1.tar.gz");
    s_read_free(r);

    r = s_read(fx, s_read_assignment_fn, "ghost", NULL);
    assert_int_equal(r->rc, DS_ENOTFOUND);
    s_read_free(r);
    r = s_read(fx, s_read_assignment_fn, "", NULL);
    assert_int_equal(r->rc, DS_EINVAL);
    s_read_free(r);
}

static void test_assignment_of_missing_release_is_corrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_assign(fx, "w1", "web", 9, 1, 2000), 0); /* no such release */
    read_t *r = s_read(fx, s_read_assignment_fn, "w1", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    assert_int_equal(r->a.n_releases, 0);
    s_read_free(r);
}

/*  Writes raw bytes over a row, standing in for a damaged record. */
typedef struct {
    ds_state_table_t table;
    const char *name, *name2;
    const char *bytes;
} poke_t;

static int s_poke_fn(ds_txn_t *txn, void *ctx)
{
    poke_t *p = ctx;
    size_t len = strlen(p->bytes);
    if (p->table == DS_TABLE_ASSIGNMENTS)
        return ds_state_assignment_put(txn, p->name, p->name2, p->bytes, len);
    return ds_state_put(txn, p->table, p->name, p->bytes, len);
}

static void s_poke(fx_t *fx, ds_state_table_t table, const char *name, const char *name2)
{
    poke_t p = {table, name, name2, "\xc1 not msgpack"};
    int result = 1;
    fx->index++;
    assert_int_equal(ds_state_apply(fx->s, fx->index, 0, s_poke_fn, &p, &result), 0);
    assert_int_equal(result, 0);
}

static int s_list_noop(void *ctx, const ds_worker_record_t *w)
{
    (void)ctx;
    (void)w;
    return 0;
}

static int s_list_corrupt_fn(ds_txn_t *txn, void *ctx)
{
    *(int *)ctx = ds_worker_state_list(txn, s_list_noop, NULL);
    return 0;
}

static void test_unreadable_records_are_corrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_join(fx, "w2", "id-2", 1000, "a"), 0);
    s_poke(fx, DS_TABLE_ASSIGNMENTS, "w2", "web");
    read_t *r = s_read(fx, s_read_assigned_fn, "w2", "web");
    assert_int_equal(r->rc, DS_ECORRUPT);
    s_read_free(r);
    r = s_read(fx, s_read_assignment_fn, "w2", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    s_read_free(r);
    assert_int_equal(s_assign(fx, "w2", "web", 1, 1, 2000), DS_ECORRUPT);

    s_poke(fx, DS_TABLE_WORKERS, "w1", NULL);
    r = s_read(fx, s_read_worker_fn, "w1", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    s_read_free(r);
    assert_int_equal(s_assign(fx, "w1", "web", 1, 1, 2000), DS_ECORRUPT);
    int rc = 0;
    assert_int_equal(ds_store_read(fx->s, s_list_corrupt_fn, &rc), 0);
    assert_int_equal(rc, DS_ECORRUPT);
    /* A rejoin fails too: the member stops rather than guess. */
    assert_int_equal(s_join(fx, "w1", "id-1", 3000, "a"), DS_ECORRUPT);
}

typedef struct {
    char names[8][16];
    int n;
    int stop_after;
    int fail_with;
} list_t;

static int s_list_fn(void *ctx, const ds_worker_record_t *w)
{
    list_t *l = ctx;
    snprintf(l->names[l->n], sizeof l->names[0], "%s", w->name);
    l->n++;
    if (l->fail_with && l->n == 1)
        return l->fail_with;
    return l->stop_after && l->n == l->stop_after ? 1 : 0;
}

typedef struct {
    list_t *l;
    int rc;
} list_call_t;

static int s_list_call_fn(ds_txn_t *txn, void *ctx)
{
    list_call_t *c = ctx;
    c->rc = ds_worker_state_list(txn, s_list_fn, c->l);
    return 0;
}

static void test_list_in_name_order_and_stops(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w3", "id-3", 1000, "a"), 0);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_join(fx, "w2", "id-2", 1000, "a"), 0);

    list_t l = {0};
    list_call_t c = {&l, 1};
    assert_int_equal(ds_store_read(fx->s, s_list_call_fn, &c), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.names[0], "w1");
    assert_string_equal(l.names[1], "w2");
    assert_string_equal(l.names[2], "w3");

    l = (list_t){.stop_after = 2};
    assert_int_equal(ds_store_read(fx->s, s_list_call_fn, &c), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(l.n, 2);

    l = (list_t){.fail_with = DS_ELIMIT};
    assert_int_equal(ds_store_read(fx->s, s_list_call_fn, &c), 0);
    assert_int_equal(c.rc, DS_ELIMIT);
    assert_int_equal(l.n, 1);
}

/*  Puts assignment rows straight into the table, bypassing assign(). */
typedef struct {
    const char *worker;
    const char *service; /* the row's key */
    ds_assignment_record_t rec;
    uint32_t count; /* > 0: services s0000.. with rec */
} put_t;

static int s_put_fn(ds_txn_t *txn, void *ctx)
{
    put_t *p = ctx;
    uint32_t n = p->count ? p->count : 1;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%04u", i);
        const char *key = p->count ? name : p->service;
        ds_assignment_record_t rec = p->rec;
        if (p->count)
            rec.service = (char *)key;
        ds_buf_t buf = {0};
        rc = ds_codec_encode(&ds_assignment_record_desc, &rec, &buf, NULL);
        if (rc == 0)
            rc = ds_state_assignment_put(txn, p->worker, key, buf.data, buf.len);
        ds_buf_free(&buf);
    }
    return rc;
}

static void s_put(fx_t *fx, put_t *p)
{
    int result = 1;
    fx->index++;
    assert_int_equal(ds_state_apply(fx->s, fx->index, 0, s_put_fn, p, &result), 0);
    assert_int_equal(result, 0);
}

static void test_assignment_of_malformed_rows_is_corrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_deploy(fx, "web", "web1.tar.gz", 100), 0);
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    assert_int_equal(s_join(fx, "w2", "id-2", 1000, "a"), 0);
    /* A row with version 0 (assign deletes those) and a row whose
       service is not its key. */
    put_t zero = {"w1", "web", {"web", 0, 1, 1}, 0};
    s_put(fx, &zero);
    put_t other = {"w2", "web", {"db", 1, 1, 1}, 0};
    s_put(fx, &other);
    read_t *r = s_read(fx, s_read_assignment_fn, "w1", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    s_read_free(r);
    r = s_read(fx, s_read_assignment_fn, "w2", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    s_read_free(r);
}

static void test_assignment_of_too_many_services_is_corrupt(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(s_join(fx, "w1", "id-1", 1000, "a"), 0);
    put_t many = {"w1", NULL, {NULL, 1, 1, 1}, DS_MAX_SERVICES + 1};
    s_put(fx, &many);
    read_t *r = s_read(fx, s_read_assignment_fn, "w1", NULL);
    assert_int_equal(r->rc, DS_ECORRUPT);
    assert_int_equal(r->a.n_releases, 0);
    s_read_free(r);
}

/* ---- selection ---- */

static void test_selected_matches_every_selector_pair(void **state)
{
    (void)state;
    ds_kv_t labels[] = {{"zone", "a"}, {"disk", "ssd"}, {"empty", ""}};
    ds_worker_record_t w = {.name = "w1", .n_labels = 3, .labels = labels};
    ds_kv_t zone_a[] = {{"zone", "a"}};
    ds_kv_t zone_b[] = {{"zone", "b"}};
    ds_kv_t both[] = {{"disk", "ssd"}, {"zone", "a"}};
    ds_kv_t one_wrong[] = {{"disk", "ssd"}, {"zone", "b"}};
    ds_kv_t missing[] = {{"gpu", "yes"}};
    ds_kv_t empty[] = {{"empty", ""}};
    ds_kv_t prefix[] = {{"zon", "a"}};

    assert_true(ds_worker_state_selected(&w, NULL, 0));
    assert_true(ds_worker_state_selected(&w, zone_a, 1));
    assert_false(ds_worker_state_selected(&w, zone_b, 1));
    assert_true(ds_worker_state_selected(&w, both, 2));
    assert_false(ds_worker_state_selected(&w, one_wrong, 2));
    assert_false(ds_worker_state_selected(&w, missing, 1));
    assert_true(ds_worker_state_selected(&w, empty, 1));
    assert_false(ds_worker_state_selected(&w, prefix, 1));

    ds_worker_record_t bare = {.name = "w2"};
    assert_true(ds_worker_state_selected(&bare, NULL, 0));
    assert_false(ds_worker_state_selected(&bare, zone_a, 1));
}

#define T(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_join_new_worker_creates_record_at_generation_1),
        T(test_rejoin_keeps_generation_and_assignments),
        T(test_join_with_bad_name_or_labels_refused),
        T(test_assign_bumps_generation_only_on_change),
        T(test_assign_zero_deletes_row),
        T(test_assign_unknown_worker_or_bad_names_refused),
        T(test_get_and_assigned_refuse_bad_names),
        T(test_assignment_returns_specs_from_releases),
        T(test_assignment_of_missing_release_is_corrupt),
        T(test_assignment_of_malformed_rows_is_corrupt),
        T(test_assignment_of_too_many_services_is_corrupt),
        T(test_unreadable_records_are_corrupt),
        T(test_list_in_name_order_and_stops),
        cmocka_unit_test(test_selected_matches_every_selector_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
