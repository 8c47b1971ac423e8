/*  tests/unit/test_msg.c - the envelope and the message catalog.

    Every type in the catalog is round-tripped with a body built by a
    generic filler that walks its ds_desc_t, and compared by a generic
    comparer that walks it again; a few types also get hand-built bodies
    with field-by-field checks. Malformed input: every truncation, wrong
    versions and types, oversized frames, bodies of another type, and
    seeded random garbage.

    Run as `test_msg --write-corpus DIR` it writes the fuzz seed corpora
    (DIR/{envelope,peer,worker,admin,spec}/) from the same samples; see
    docs/protocol.md. */
#include "protocol/error.h"
#include "protocol/mp.h"
#include "protocol/msg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#define S_MAX_TYPE 256u

/* ---- generic filler: every field nonzero and within its limit ----- */

typedef struct {
    ds_arena_t *arena;
    uint64_t next;  /* varies values so that swapped fields are noticed */
    bool at_limits; /* strings, bytes and numbers at their maximum */
} s_fill_t;

static void s_fill_struct(s_fill_t *f, const ds_desc_t *d, void *obj);

static void *s_falloc(s_fill_t *f, size_t size)
{
    void *p = ds_arena_alloc(f->arena, size);
    assert_non_null(p);
    return p;
}

static uint64_t s_fill_uint(s_fill_t *f, uint64_t max, uint64_t type_max)
{
    uint64_t limit = max ? max : type_max;
    f->next++;
    return f->at_limits ? limit : 1 + (f->next * 0x9e3779b97f4a7c15ull) % limit;
}

static size_t s_fill_len(s_fill_t *f, uint64_t max, uint64_t small)
{
    return (size_t)(f->at_limits || max < small ? max : small);
}

static char *s_fill_str(s_fill_t *f, uint64_t max)
{
    size_t len = s_fill_len(f, max, 1 + (f->next % 12));
    char *s = s_falloc(f, len + 1);
    for (size_t i = 0; i < len; i++)
        s[i] = (char)('a' + (f->next + i) % 26);
    f->next++;
    return s;
}

static void s_fill_bytes(s_fill_t *f, uint64_t max, ds_bytes_t *b)
{
    b->len = (uint32_t)s_fill_len(f, max, 3);
    b->data = s_falloc(f, b->len);
    for (uint32_t i = 0; i < b->len; i++)
        b->data[i] = (uint8_t)(f->next + i * 131);
    f->next++;
}

static uint32_t s_fill_count(const ds_field_t *fd)
{
    return fd->max < 2 ? (uint32_t)fd->max : 2;
}

static void s_fill_lists(s_fill_t *f, const ds_field_t *fd, void *obj)
{
    void *m = (char *)obj + fd->offset;
    uint32_t *count = (uint32_t *)((char *)obj + fd->count_offset);
    uint32_t n = fd->type == DS_FT_U64_FIXED ? (uint32_t)fd->max : s_fill_count(fd);
    *count = n;
    switch (fd->type) {
    case DS_FT_ARRAY: {
        char *items = s_falloc(f, (size_t)n * fd->sub->size + 1);
        for (uint32_t i = 0; i < n; i++)
            s_fill_struct(f, fd->sub, items + (size_t)i * fd->sub->size);
        *(void **)m = items;
        break;
    }
    case DS_FT_STRS: {
        char **items = s_falloc(f, n * sizeof *items + 1);
        for (uint32_t i = 0; i < n; i++)
            items[i] = s_fill_str(f, f->at_limits ? DS_MAX_TEXT : 20);
        *(char ***)m = items;
        break;
    }
    case DS_FT_KVS: {
        ds_kv_t *kv = s_falloc(f, n * sizeof *kv + 1);
        for (uint32_t i = 0; i < n; i++) {
            kv[i].key = s_fill_str(f, f->at_limits ? DS_MAX_LABEL : 20);
            kv[i].key[0] = (char)('A' + i); /* distinct keys */
            kv[i].value = s_fill_str(f, f->at_limits ? DS_MAX_TEXT : 20);
        }
        *(ds_kv_t **)m = kv;
        break;
    }
    default: /* DS_FT_U64_FIXED */
        for (uint32_t i = 0; i < n; i++)
            ((uint64_t *)m)[i] = s_fill_uint(f, 0, UINT64_MAX);
        break;
    }
}

static void s_fill_field(s_fill_t *f, const ds_field_t *fd, void *obj)
{
    void *m = (char *)obj + fd->offset;
    switch (fd->type) {
    case DS_FT_U8:
        *(uint8_t *)m = (uint8_t)s_fill_uint(f, fd->max, UINT8_MAX);
        break;
    case DS_FT_U16:
        *(uint16_t *)m = (uint16_t)s_fill_uint(f, fd->max, UINT16_MAX);
        break;
    case DS_FT_U32:
        *(uint32_t *)m = (uint32_t)s_fill_uint(f, fd->max, UINT32_MAX);
        break;
    case DS_FT_U64:
        *(uint64_t *)m = s_fill_uint(f, 0, UINT64_MAX);
        break;
    case DS_FT_I64:
        *(int64_t *)m = f->at_limits ? INT64_MIN : -(int64_t)s_fill_uint(f, 1000000, 0);
        break;
    case DS_FT_BOOL:
        *(bool *)m = true;
        break;
    case DS_FT_F64:
        *(double *)m = f->at_limits ? -1.7976931348623157e308 : (double)++f->next + 0.25;
        break;
    case DS_FT_STR:
        *(char **)m = s_fill_str(f, fd->max);
        break;
    case DS_FT_BYTES:
        s_fill_bytes(f, fd->max, m);
        break;
    case DS_FT_STRUCT:
        s_fill_struct(f, fd->sub, m);
        break;
    default:
        s_fill_lists(f, fd, obj);
        break;
    }
}

static void s_fill_struct(s_fill_t *f, const ds_desc_t *d, void *obj)
{
    for (size_t i = 0; i < d->nfields; i++)
        s_fill_field(f, &d->fields[i], obj);
}

/*  Returns a body of `desc` filled from `arena`, which owns it. */
static void *s_filled(const ds_desc_t *desc, ds_arena_t *arena, bool at_limits, uint64_t seed)
{
    s_fill_t f = {arena, seed, at_limits};
    void *body = s_falloc(&f, desc->size);
    s_fill_struct(&f, desc, body);
    return body;
}

/* ---- generic comparer --------------------------------------------- */

typedef struct {
    char path[512];
} s_path_t;

static void s_compare_struct(s_path_t *p, const ds_desc_t *d, const void *a, const void *b);

static const char *s_str(const char *s)
{
    return s ? s : "";
}

static void s_differs(const s_path_t *p)
{
    fail_msg("%s differs after the round trip", p->path);
}

static void s_compare_strs(s_path_t *p, char *const *a, char *const *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(s_str(a[i]), s_str(b[i])) != 0)
            s_differs(p);
}

static void s_compare_lists(s_path_t *p, const ds_field_t *fd, const void *a, const void *b)
{
    const void *ma = (const char *)a + fd->offset, *mb = (const char *)b + fd->offset;
    uint32_t n = *(const uint32_t *)((const char *)a + fd->count_offset);
    if (n != *(const uint32_t *)((const char *)b + fd->count_offset))
        s_differs(p);
    size_t len = strlen(p->path);
    switch (fd->type) {
    case DS_FT_ARRAY:
        for (uint32_t i = 0; i < n; i++) {
            snprintf(p->path + len, sizeof p->path - len, "[%u]", i);
            size_t off = (size_t)i * fd->sub->size;
            s_compare_struct(p, fd->sub, *(char *const *)ma + off, *(char *const *)mb + off);
        }
        break;
    case DS_FT_STRS:
        s_compare_strs(p, *(char **const *)ma, *(char **const *)mb, n);
        break;
    case DS_FT_KVS:
        for (uint32_t i = 0; i < n; i++) {
            const ds_kv_t *ka = *(ds_kv_t *const *)ma + i, *kb = *(ds_kv_t *const *)mb + i;
            s_compare_strs(p, &ka->key, &kb->key, 1);
            s_compare_strs(p, &ka->value, &kb->value, 1);
        }
        break;
    default: /* DS_FT_U64_FIXED */
        if (n && memcmp(ma, mb, n * sizeof(uint64_t)) != 0)
            s_differs(p);
        break;
    }
    p->path[len] = '\0';
}

static void s_compare_field(s_path_t *p, const ds_field_t *fd, const void *a, const void *b)
{
    static const size_t width[] = {
        [DS_FT_U8] = 1,  [DS_FT_U16] = 2, [DS_FT_U32] = 4,
        [DS_FT_U64] = 8, [DS_FT_I64] = 8, [DS_FT_BOOL] = sizeof(bool),
        [DS_FT_F64] = 8,
    };
    const void *ma = (const char *)a + fd->offset, *mb = (const char *)b + fd->offset;
    switch (fd->type) {
    case DS_FT_STR:
        s_compare_strs(p, ma, mb, 1);
        break;
    case DS_FT_BYTES: {
        const ds_bytes_t *ba = ma, *bb = mb;
        if (ba->len != bb->len || (ba->len && memcmp(ba->data, bb->data, ba->len) != 0))
            s_differs(p);
        break;
    }
    case DS_FT_STRUCT:
        s_compare_struct(p, fd->sub, ma, mb);
        break;
    case DS_FT_ARRAY:
    case DS_FT_STRS:
    case DS_FT_KVS:
    case DS_FT_U64_FIXED:
        s_compare_lists(p, fd, a, b);
        break;
    default:
        if (memcmp(ma, mb, width[fd->type]) != 0)
            s_differs(p);
        break;
    }
}

static void s_compare_struct(s_path_t *p, const ds_desc_t *d, const void *a, const void *b)
{
    size_t len = strlen(p->path);
    for (size_t i = 0; i < d->nfields; i++) {
        snprintf(p->path + len, sizeof p->path - len, ".%s", d->fields[i].name);
        s_compare_field(p, &d->fields[i], a, b);
    }
    p->path[len] = '\0';
}

static void s_compare(const ds_desc_t *d, const void *a, const void *b)
{
    s_path_t p;
    snprintf(p.path, sizeof p.path, "%s", d->name);
    s_compare_struct(&p, d, a, b);
}

/* ---- helpers ------------------------------------------------------- */

/*  Types in the catalog, in id order. */
static size_t s_catalog_types(uint16_t *types)
{
    size_t n = 0;
    for (unsigned t = 0; t < S_MAX_TYPE; t++)
        if (ds_msg_desc((uint16_t)t))
            types[n++] = (uint16_t)t;
    return n;
}

static bool s_is_raft(uint16_t type)
{
    return ds_msg_family(type) == DS_FAMILY_PEER && type != DS_MSG_PEER_HELLO;
}

typedef struct {
    ds_buf_t env;
    ds_buf_t body;
} s_frames_t;

static void s_encode(uint16_t type, const void *body, s_frames_t *out)
{
    ds_envelope_t env = {DS_PROTOCOL_VERSION, type, 0x0123456789abcdefull, "tester-1"};
    ds_codec_err_t err;
    memset(out, 0, sizeof *out);
    int rc = ds_msg_encode(&env, body, &out->env, &out->body, &err);
    if (rc != 0)
        fail_msg("encode %s: %s", ds_msg_type_name(type), err.text);
}

static void s_frames_free(s_frames_t *f)
{
    ds_buf_free(&f->env);
    ds_buf_free(&f->body);
}

static int s_decode(const s_frames_t *f, ds_msg_t **out, ds_codec_err_t *err)
{
    int rc = ds_msg_decode(f->env.data, f->env.len, f->body.data, f->body.len, out, err);
    if (rc != 0) {
        assert_null(*out);
        assert_int_equal(err->code, rc);
        assert_true(err->text[0] != '\0');
    }
    return rc;
}

/*  Encodes, decodes and compares everything; returns the decoded message
    for further checks (the caller destroys it). */
static ds_msg_t *s_round_trip(uint16_t type, const void *body)
{
    s_frames_t f;
    s_encode(type, body, &f);
    ds_msg_t *msg;
    ds_codec_err_t err;
    if (s_decode(&f, &msg, &err) != 0)
        fail_msg("decode %s: %s", ds_msg_type_name(type), err.text);
    assert_int_equal(msg->env.version, DS_PROTOCOL_VERSION);
    assert_int_equal(msg->env.type, type);
    assert_true(msg->env.corr_id == 0x0123456789abcdefull);
    assert_string_equal(msg->env.sender, "tester-1");
    s_compare(ds_msg_desc(type), body, msg->body);
    if (s_is_raft(type))
        assert_int_equal(((ds_raft_msg_t *)msg->body)->type, type);
    s_frames_free(&f);
    return msg;
}

static void s_round_trip_every_type(bool at_limits, bool zeroed)
{
    uint16_t types[S_MAX_TYPE];
    size_t n = s_catalog_types(types);
    assert_true(n >= 43);
    for (size_t i = 0; i < n; i++) {
        const ds_desc_t *desc = ds_msg_desc(types[i]);
        ds_arena_t *arena = ds_arena_new(256u << 20);
        assert_non_null(arena);
        void *body = zeroed ? ds_arena_alloc(arena, desc->size)
                            : s_filled(desc, arena, at_limits, types[i] * 1000u);
        ds_msg_t *msg = s_round_trip(types[i], body);
        ds_msg_destroy(&msg);
        assert_null(msg);
        ds_arena_destroy(&arena);
    }
}

static void test_every_catalog_type_round_trips_a_filled_body(void **state)
{
    (void)state;
    s_round_trip_every_type(false, false);
}

static void test_every_catalog_type_round_trips_a_body_at_its_limits(void **state)
{
    (void)state;
    s_round_trip_every_type(true, false);
}

static void test_every_catalog_type_round_trips_a_zeroed_body(void **state)
{
    (void)state;
    s_round_trip_every_type(false, true);
}

/* ---- hand-built samples -------------------------------------------- */

static ds_kv_t s_labels[] = {{"zone", "eu-west-1a"}, {"role", "web"}, {"gpu", ""}};

static ds_join_req_t s_join = {
    .name = "worker-7",
    .worker_id = "3f2a9c",
    .n_labels = 3,
    .labels = s_labels,
    .resources = {8, 16u * 1024 * 1024, 500u * 1024 * 1024},
    .software_version = "0.1.0",
    .token = "join-token",
};

static uint8_t s_entry_data[] = {0x92, 0x01, 0xa3, 'p', 'u', 't'};
static ds_raft_entry_t s_entries[] = {
    {.term = 3, .index = 41, .type = DS_ENTRY_NOOP},
    {.term = 3, .index = 42, .type = DS_ENTRY_NORMAL, .data = {s_entry_data, 6}},
    {.term = 4, .index = 43, .type = DS_ENTRY_CONF_CHANGE, .data = {s_entry_data, 1}},
};

static ds_raft_msg_t s_append = {
    .from = 1,
    .to = 2,
    .term = 4,
    .log_term = 3,
    .index = 40,
    .commit = 39,
    .n_entries = 3,
    .entries = s_entries,
};

static uint8_t s_chunk[] = "snapshot bytes\0with a NUL";
static ds_raft_msg_t s_snapshot = {
    .from = 1,
    .to = 3,
    .term = 9,
    .snap = {.index = 1000, .term = 8, .n_voters = 3, .voters = {1, 2, 3}},
    .chunk_offset = 65536,
    .chunk = {s_chunk, sizeof s_chunk},
    .chunk_last = true,
};

static ds_instance_row_t s_rows[] = {
    {"worker-1", 7, "running", "passing", 20001, 0, ""},
    {"worker-2", 6, "stopping", "unknown", 0, 2, "stopped for version 7"},
};
static ds_service_status_t s_services[] = {
    {
        .service = "web",
        .current_version = 6,
        .desired_version = 7,
        .has_deployment = true,
        .deployment = {.id = 12,
                       .version = 7,
                       .from_version = 6,
                       .state = "baking",
                       .reason = "",
                       .wave = 1,
                       .updated = 1,
                       .healthy = 1,
                       .total = 2,
                       .started_at_ms = 1700000000000ull,
                       .updated_at_ms = 1700000060000ull},
        .n_instances = 2,
        .instances = s_rows,
    },
    {.service = "api", .current_version = 3, .desired_version = 3},
};
static ds_status_reply_t s_status_reply = {
    .insecure = true, .n_services = 2, .services = s_services};

static ds_error_reply_t s_error = {DS_ECONFLICT,
                                   "web: deployment 12 is live; abort it first (dsctl abort web)"};

static ds_not_leader_t s_not_leader = {2, "tcp://10.0.0.2:7001", 17};

static char *s_args[] = {"--port", "${PORT}"};
static ds_kv_t s_env[] = {{"LOG_LEVEL", "info"}, {"GOMAXPROCS", "4"}};
static ds_kv_t s_selector[] = {{"role", "web"}};
static ds_test_spec_t s_tests[] = {{"smoke", "./tests/smoke.sh", 30000}};

/*  A spec as an operator would write it (the fuzz seed for specs). */
static ds_spec_t s_spec = {
    .artifact = "https://releases.example.com/web/web-1.4.2.tar.gz",
    .sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    .command = "./bin/web",
    .n_args = 2,
    .args = s_args,
    .n_env = 2,
    .env = s_env,
    .workdir = "",
    .n_selector = 1,
    .selector = s_selector,
    .health = {DS_HEALTH_HTTP, "/healthz", "", 2000, 1000, 2, 3, 5000},
    .n_tests = 1,
    .tests = s_tests,
    .strategy = {1, false, 25, true, 30000, 300000, 600000, true, true},
    .analysis = {0.01, 250.0, 3.0, 0.9, 1.2, 1.2, 10, DS_INCONCLUSIVE_FAIL},
    .metrics = {"/metrics", 5000, "http_requests_total", "http_errors_total",
                "http_request_duration_seconds"},
    .stop_grace_ms = 10000,
};

static ds_deploy_req_t s_deploy = {.service = "web", .force = false, .dry_run = true};

static void test_join_with_labels_round_trips(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_MSG_JOIN, &s_join);
    const ds_join_req_t *j = msg->body;
    assert_string_equal(j->name, "worker-7");
    assert_int_equal(j->n_labels, 3);
    assert_string_equal(j->labels[0].key, "zone");
    assert_string_equal(j->labels[0].value, "eu-west-1a");
    assert_string_equal(j->labels[2].value, "");
    assert_int_equal(j->resources.cpus, 8);
    assert_string_equal(j->token, "join-token");
    ds_msg_destroy(&msg);
}

static void test_append_with_entries_round_trips(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_RAFT_APPEND, &s_append);
    const ds_raft_msg_t *m = msg->body;
    assert_int_equal(m->type, DS_RAFT_APPEND);
    assert_int_equal(m->commit, 39);
    assert_int_equal(m->n_entries, 3);
    assert_int_equal(m->entries[0].type, DS_ENTRY_NOOP);
    assert_int_equal(m->entries[0].data.len, 0);
    assert_int_equal(m->entries[1].index, 42);
    assert_memory_equal(m->entries[1].data.data, s_entry_data, 6);
    assert_int_equal(m->entries[2].type, DS_ENTRY_CONF_CHANGE);
    ds_msg_destroy(&msg);
}

static void test_snapshot_chunk_with_binary_data_round_trips(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_RAFT_SNAPSHOT, &s_snapshot);
    const ds_raft_msg_t *m = msg->body;
    assert_int_equal(m->snap.n_voters, 3);
    assert_int_equal(m->snap.voters[2], 3);
    assert_int_equal(m->chunk_offset, 65536);
    assert_int_equal(m->chunk.len, sizeof s_chunk);
    assert_memory_equal(m->chunk.data, s_chunk, sizeof s_chunk);
    assert_true(m->chunk_last);
    ds_msg_destroy(&msg);
}

static void test_status_reply_with_nested_instances_round_trips(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_MSG_STATUS_REPLY, &s_status_reply);
    const ds_status_reply_t *r = msg->body;
    assert_true(r->insecure);
    assert_int_equal(r->n_services, 2);
    assert_string_equal(r->services[0].deployment.state, "baking");
    assert_int_equal(r->services[0].n_instances, 2);
    assert_string_equal(r->services[0].instances[1].worker, "worker-2");
    assert_string_equal(r->services[0].instances[1].state, "stopping");
    assert_int_equal(r->services[1].n_instances, 0);
    assert_null(r->services[1].instances);
    assert_string_equal(r->services[1].deployment.state, "");
    ds_msg_destroy(&msg);
}

static void test_error_reply_carries_code_and_message(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_MSG_ERROR, &s_error);
    const ds_error_reply_t *e = msg->body;
    assert_int_equal(e->code, DS_ECONFLICT);
    assert_string_equal(e->message, s_error.message);
    assert_int_equal(ds_msg_family(DS_MSG_ERROR), DS_FAMILY_REPLY);
    ds_msg_destroy(&msg);
}

static void test_not_leader_carries_leader_endpoint(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_MSG_NOT_LEADER, &s_not_leader);
    const ds_not_leader_t *n = msg->body;
    assert_int_equal(n->leader_id, 2);
    assert_string_equal(n->leader_rpc, "tcp://10.0.0.2:7001");
    assert_int_equal(n->term, 17);
    ds_msg_destroy(&msg);
}

static void test_deploy_carries_a_whole_spec(void **state)
{
    (void)state;
    s_deploy.spec = s_spec;
    ds_msg_t *msg = s_round_trip(DS_MSG_DEPLOY, &s_deploy);
    const ds_deploy_req_t *d = msg->body;
    assert_string_equal(d->spec.env[1].key, "GOMAXPROCS");
    assert_string_equal(d->spec.tests[0].command, "./tests/smoke.sh");
    assert_true(d->spec.analysis.max_error_ratio == 0.01);
    assert_true(d->dry_run);
    ds_msg_destroy(&msg);
}

static ds_dry_run_result_t s_dry_results[] = {
    {7001, "web", true, "healthy; 1 tests passed"},
    {7002, "api", false, "release test smoke failed with exit code 3: boom | at line 2"},
};
static ds_heartbeat_t s_heartbeat_dry = {
    .name = "worker-7", .generation = 4, .n_dry_runs = 2, .dry_runs = s_dry_results};

static ds_dry_run_job_t s_dry_jobs[1] = {{.id = 7003, .service = "web", .version = 0}};
static char *s_members[] = {"tcp://10.0.0.1:7001", "tcp://10.0.0.2:7001"};
static ds_heartbeat_reply_t s_heartbeat_reply_dry = {
    .generation = 9,
    .leader_id = 1,
    .leader_rpc = "tcp://10.0.0.1:7001",
    .n_members = 2,
    .members = s_members,
    .n_dry_runs = 1,
    .dry_runs = s_dry_jobs,
};

static void test_heartbeat_carries_dry_run_results(void **state)
{
    (void)state;
    ds_msg_t *msg = s_round_trip(DS_MSG_HEARTBEAT, &s_heartbeat_dry);
    const ds_heartbeat_t *hb = msg->body;
    assert_int_equal(hb->n_instances, 0);
    assert_int_equal(hb->n_dry_runs, 2);
    assert_int_equal(hb->dry_runs[0].id, 7001);
    assert_true(hb->dry_runs[0].passed);
    assert_string_equal(hb->dry_runs[0].reason, "healthy; 1 tests passed");
    assert_string_equal(hb->dry_runs[1].service, "api");
    assert_false(hb->dry_runs[1].passed);
    assert_non_null(strstr(hb->dry_runs[1].reason, "exit code 3"));
    ds_msg_destroy(&msg);
}

static void test_heartbeat_reply_carries_dry_run_jobs_with_their_spec(void **state)
{
    (void)state;
    s_dry_jobs[0].spec = s_spec;
    ds_msg_t *msg = s_round_trip(DS_MSG_HEARTBEAT_REPLY, &s_heartbeat_reply_dry);
    const ds_heartbeat_reply_t *r = msg->body;
    assert_int_equal(r->generation, 9);
    assert_int_equal(r->n_members, 2);
    assert_int_equal(r->n_dry_runs, 1);
    assert_int_equal(r->dry_runs[0].id, 7003);
    assert_string_equal(r->dry_runs[0].service, "web");
    assert_int_equal(r->dry_runs[0].version, 0);
    assert_string_equal(r->dry_runs[0].spec.command, "./bin/web");
    assert_int_equal(r->dry_runs[0].spec.n_tests, 1);
    assert_string_equal(r->dry_runs[0].spec.tests[0].name, "smoke");
    ds_msg_destroy(&msg);
}

/*  A body without the dry-run lists (an older peer's) is short by one
    field: refused as truncated, as the protocol's rule for added fields
    says (docs/protocol.md, "Forward compatibility"). */
static void test_heartbeat_without_dry_run_list_is_truncated(void **state)
{
    (void)state;
    ds_heartbeat_t hb = {.name = "w1", .generation = 3};
    s_frames_t f;
    s_encode(DS_MSG_HEARTBEAT, &hb, &f);
    /* [name, generation, telemetry, instances, dry_runs=[]]: drop the last. */
    assert_int_equal(f.body.data[0], 0x95);
    assert_int_equal(f.body.data[f.body.len - 1], 0x90);
    f.body.data[0] = 0x94;
    f.body.len--;
    ds_msg_t *msg = NULL;
    ds_codec_err_t err;
    assert_int_equal(s_decode(&f, &msg, &err), DS_ETRUNCATED);
    assert_null(msg);
    assert_non_null(strstr(err.text, "expected at least 5"));
    s_frames_free(&f);
}

static void test_raft_body_type_is_set_from_the_envelope(void **state)
{
    (void)state;
    ds_raft_msg_t body = s_append;
    body.type = 0; /* whatever the sender's struct says is not on the wire */
    for (uint16_t t = DS_RAFT_PREVOTE; t <= DS_RAFT_HEARTBEAT_RESP; t++) {
        assert_int_equal(ds_msg_family(t), DS_FAMILY_PEER);
        ds_msg_t *msg = s_round_trip(t, &body);
        assert_int_equal(((ds_raft_msg_t *)msg->body)->type, t);
        ds_msg_destroy(&msg);
    }
}

/* ---- the catalog ---------------------------------------------------- */

static void test_each_type_has_its_family_and_unknown_types_have_none(void **state)
{
    (void)state;
    static const struct {
        uint16_t type;
        ds_msg_family_t family;
    } rows[] = {
        {DS_RAFT_PREVOTE, DS_FAMILY_PEER},
        {DS_RAFT_HEARTBEAT_RESP, DS_FAMILY_PEER},
        {DS_MSG_PEER_HELLO, DS_FAMILY_PEER},
        {DS_MSG_JOIN, DS_FAMILY_WORKER},
        {DS_MSG_HEARTBEAT, DS_FAMILY_WORKER},
        {DS_MSG_ASSIGNMENT_REQ, DS_FAMILY_WORKER},
        {DS_MSG_INSTANCE_EVENT, DS_FAMILY_WORKER},
        {DS_MSG_JOIN_REPLY, DS_FAMILY_REPLY},
        {DS_MSG_HEARTBEAT_REPLY, DS_FAMILY_REPLY},
        {DS_MSG_ASSIGNMENT, DS_FAMILY_REPLY},
        {DS_MSG_DEPLOY, DS_FAMILY_ADMIN},
        {DS_MSG_ROLLBACK, DS_FAMILY_ADMIN},
        {DS_MSG_ABORT, DS_FAMILY_ADMIN},
        {DS_MSG_CLUSTER_TRANSFER, DS_FAMILY_ADMIN},
        {DS_MSG_CLUSTER_REMOVE, DS_FAMILY_ADMIN},
        {DS_MSG_STATUS, DS_FAMILY_VIEW},
        {DS_MSG_HISTORY, DS_FAMILY_VIEW},
        {DS_MSG_TOP, DS_FAMILY_VIEW},
        {DS_MSG_EVENTS, DS_FAMILY_VIEW},
        {DS_MSG_CLUSTER_STATUS, DS_FAMILY_VIEW},
        {DS_MSG_OP_REPLY, DS_FAMILY_REPLY},
        {DS_MSG_STATUS_REPLY, DS_FAMILY_REPLY},
        {DS_MSG_CLUSTER_STATUS_REPLY, DS_FAMILY_REPLY},
        {DS_MSG_ERROR, DS_FAMILY_REPLY},
        {DS_MSG_NOT_LEADER, DS_FAMILY_REPLY},
        {0, DS_FAMILY_NONE},
        {12, DS_FAMILY_NONE},
        {15, DS_FAMILY_NONE},
        {17, DS_FAMILY_NONE},
        {31, DS_FAMILY_NONE},
        {63, DS_FAMILY_NONE},
        {95, DS_FAMILY_NONE},
        {98, DS_FAMILY_NONE},
        {200, DS_FAMILY_NONE},
        {UINT16_MAX, DS_FAMILY_NONE},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        if (ds_msg_family(rows[k].type) != rows[k].family)
            fail_msg("type %u: family %d, want %d", rows[k].type, ds_msg_family(rows[k].type),
                     rows[k].family);
        assert_int_equal(ds_msg_desc(rows[k].type) == NULL, rows[k].family == DS_FAMILY_NONE);
    }
    assert_string_equal(ds_msg_type_name(200), "unknown");
    assert_string_equal(ds_msg_type_name(DS_RAFT_VOTE_RESP), "vote_resp");
}

static void test_every_catalog_type_has_a_family_and_a_unique_name(void **state)
{
    (void)state;
    uint16_t types[S_MAX_TYPE];
    size_t n = s_catalog_types(types);
    for (size_t i = 0; i < n; i++) {
        assert_int_not_equal(ds_msg_family(types[i]), DS_FAMILY_NONE);
        assert_string_not_equal(ds_msg_type_name(types[i]), "unknown");
        for (size_t j = 0; j < i; j++)
            if (strcmp(ds_msg_type_name(types[i]), ds_msg_type_name(types[j])) == 0)
                fail_msg("types %u and %u are both named %s", types[i], types[j],
                         ds_msg_type_name(types[i]));
    }
    for (unsigned t = S_MAX_TYPE; t <= UINT16_MAX; t++)
        assert_null(ds_msg_desc((uint16_t)t));
}

/* ---- malformed input ------------------------------------------------ */

/*  Filled encodings of every catalog type, built once. */
typedef struct {
    size_t n;
    uint16_t types[S_MAX_TYPE];
    s_frames_t frames[S_MAX_TYPE];
} s_encoded_t;

static s_encoded_t *s_encode_all(void)
{
    s_encoded_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    e->n = s_catalog_types(e->types);
    ds_arena_t *arena = ds_arena_new(64u << 20);
    assert_non_null(arena);
    for (size_t i = 0; i < e->n; i++)
        s_encode(e->types[i], s_filled(ds_msg_desc(e->types[i]), arena, false, i), &e->frames[i]);
    ds_arena_destroy(&arena);
    return e;
}

static void s_encoded_free(s_encoded_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        s_frames_free(&e->frames[i]);
    free(e);
}

/*  Decodes a copy of `len` bytes of `data` as frame `which` (0 envelope,
    1 body) in place of the valid one; an exact-size heap copy lets a
    sanitizer see any read past the end. */
static int s_decode_replaced(const s_frames_t *valid, int which, const void *data, size_t len,
                             ds_codec_err_t *err)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, data, len);
    s_frames_t f = *valid;
    ds_buf_t *frame = which == 0 ? &f.env : &f.body;
    frame->data = copy;
    frame->len = len;
    ds_msg_t *msg;
    int rc = s_decode(&f, &msg, err);
    ds_msg_destroy(&msg);
    free(copy);
    return rc;
}

static void test_every_truncation_of_envelope_or_body_is_refused(void **state)
{
    (void)state;
    s_encoded_t *e = s_encode_all();
    for (size_t i = 0; i < e->n; i++) {
        for (int which = 0; which < 2; which++) {
            const ds_buf_t *frame = which == 0 ? &e->frames[i].env : &e->frames[i].body;
            for (size_t cut = 0; cut < frame->len; cut++) {
                ds_codec_err_t err;
                int rc = s_decode_replaced(&e->frames[i], which, frame->data, cut, &err);
                if (rc != DS_ETRUNCATED)
                    fail_msg("%s frame %d cut at %zu: %s (%s)", ds_msg_type_name(e->types[i]),
                             which, cut, ds_errname(rc), err.text);
            }
        }
    }
    s_encoded_free(e);
}

static void test_a_byte_after_envelope_or_body_is_trailing(void **state)
{
    (void)state;
    s_encoded_t *e = s_encode_all();
    for (size_t i = 0; i < e->n; i++) {
        for (int which = 0; which < 2; which++) {
            ds_buf_t frame = {0};
            const ds_buf_t *valid = which == 0 ? &e->frames[i].env : &e->frames[i].body;
            assert_int_equal(ds_buf_append(&frame, valid->data, valid->len), 0);
            assert_int_equal(ds_buf_append(&frame, "\xc0", 1), 0);
            ds_codec_err_t err;
            assert_int_equal(s_decode_replaced(&e->frames[i], which, frame.data, frame.len, &err),
                             DS_ETRAILING);
            ds_buf_free(&frame);
        }
    }
    s_encoded_free(e);
}

/*  Hand-written envelopes and what decoding them must give. */
typedef struct {
    const char *bytes;
    size_t len;
    int rc;
} s_env_row_t;

static void s_check_envelopes(const s_env_row_t *rows, size_t n)
{
    s_encoded_t *e = s_encode_all();
    size_t wrong = 0;
    for (size_t k = 0; k < n; k++) {
        ds_codec_err_t err;
        int rc = s_decode_replaced(&e->frames[0], 0, rows[k].bytes, rows[k].len, &err);
        if (rc != rows[k].rc) {
            print_error("row %zu: %s (%s), want %s\n", k, ds_errname(rc), err.text,
                        ds_errname(rows[k].rc));
            wrong++;
        }
    }
    s_encoded_free(e);
    assert_int_equal(wrong, 0);
}

static void test_wrong_version_is_eversion_and_unknown_type_is_eunknown(void **state)
{
    (void)state;
    static const s_env_row_t rows[] = {
        {"\x94\x00\x01\x07\xa1x", 6, DS_EVERSION},
        {"\x94\x02\x01\x07\xa1x", 6, DS_EVERSION},
        {"\x94\xcc\xff\x01\x07\xa1x", 7, DS_EVERSION},
        {"\x95\x02\x01\x07\xa1x\xc0", 7, DS_EVERSION}, /* a newer envelope, one more field */
        {"\x94\x01\x00\x07\xa1x", 6, DS_EUNKNOWN},
        {"\x94\x01\x0c\x07\xa1x", 6, DS_EUNKNOWN},
        {"\x94\x01\xcc\xc8\x07\xa1x", 7, DS_EUNKNOWN},
        {"\x94\x01\xcd\xff\xff\x07\xa1x", 8, DS_EUNKNOWN},
        {"\x94\x01\x01\x07\xa0", 5, 0}, /* an empty sender is allowed */
    };
    s_check_envelopes(rows, sizeof rows / sizeof rows[0]);
}

/*  A version or type id the envelope's C fields cannot hold is still a
    wrong version or an unknown type, and a future envelope that changes
    shape after its version must be refused for its version. */
static void test_version_and_type_beyond_their_width_are_eversion_and_eunknown(void **state)
{
    (void)state;
    static const s_env_row_t rows[] = {
        {"\x94\xcd\x01\x00\x01\x07\xa1x", 8, DS_EVERSION},
        {"\x92\x02\xa1x", 4, DS_EVERSION},
        {"\x91\x02", 2, DS_EVERSION},
        {"\x94\x01\xce\x00\x01\x00\x00\x07\xa1x", 10, DS_EUNKNOWN},
    };
    s_check_envelopes(rows, sizeof rows / sizeof rows[0]);
}

static void test_encoder_refuses_unknown_type_and_long_sender(void **state)
{
    (void)state;
    static const struct {
        uint16_t type;
        size_t sender_len;
        int rc;
    } rows[] = {
        {0, 1, DS_EUNKNOWN},
        {200, 1, DS_EUNKNOWN},
        {DS_MSG_ERROR, DS_MAX_NAME, 0},
        {DS_MSG_ERROR, DS_MAX_NAME + 1, DS_ETOOBIG},
    };
    char sender[DS_MAX_NAME + 2];
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        memset(sender, 's', rows[k].sender_len);
        sender[rows[k].sender_len] = '\0';
        ds_envelope_t env = {DS_PROTOCOL_VERSION, rows[k].type, 1, sender};
        s_frames_t f = {{0}, {0}};
        ds_codec_err_t err;
        assert_int_equal(ds_msg_encode(&env, &s_error, &f.env, &f.body, &err), rows[k].rc);
        if (rows[k].rc != 0)
            assert_int_equal(err.code, rows[k].rc);
        s_frames_free(&f);
    }
}

static void test_oversized_frames_are_refused_before_reading(void **state)
{
    (void)state;
    s_encoded_t *e = s_encode_all();
    size_t big = DS_MAX_MSG_SIZE + 1u;
    uint8_t *junk = calloc(1, big);
    assert_non_null(junk);
    for (int which = 0; which < 2; which++) {
        ds_codec_err_t err;
        assert_int_equal(s_decode_replaced(&e->frames[0], which, junk, big, &err), DS_ETOOBIG);
        assert_non_null(strstr(err.text, "exceeds"));
    }
    free(junk);
    s_encoded_free(e);
}

static void test_body_of_another_type_is_refused(void **state)
{
    (void)state;
    static const struct {
        uint16_t encoded_as, decoded_as;
    } pairs[] = {
        {DS_MSG_JOIN, DS_RAFT_APPEND},
        {DS_RAFT_VOTE, DS_RAFT_VOTE_RESP},
        {DS_RAFT_APPEND, DS_RAFT_HEARTBEAT},
        {DS_MSG_ERROR, DS_MSG_NOT_LEADER},
        {DS_MSG_STATUS_REPLY, DS_MSG_HISTORY_REPLY},
        {DS_MSG_DEPLOY, DS_MSG_ROLLBACK},
        {DS_MSG_HEARTBEAT, DS_MSG_JOIN},
        {DS_MSG_JOIN_REPLY, DS_MSG_ASSIGNMENT},
        {DS_MSG_CLUSTER_ADD, DS_MSG_PEER_HELLO}, /* the reverse decodes: extras are skipped */
    };
    ds_arena_t *arena = ds_arena_new(16u << 20);
    assert_non_null(arena);
    for (size_t k = 0; k < sizeof pairs / sizeof pairs[0]; k++) {
        s_frames_t body, env;
        s_encode(pairs[k].encoded_as, s_filled(ds_msg_desc(pairs[k].encoded_as), arena, false, k),
                 &body);
        s_encode(pairs[k].decoded_as, ds_arena_alloc(arena, ds_msg_desc(pairs[k].decoded_as)->size),
                 &env);
        ds_codec_err_t err;
        int rc = s_decode_replaced(&env, 1, body.body.data, body.body.len, &err);
        if (rc != DS_ETYPE && rc != DS_ETRUNCATED)
            fail_msg("%s body as %s: %s", ds_msg_type_name(pairs[k].encoded_as),
                     ds_msg_type_name(pairs[k].decoded_as), ds_errname(rc));
        s_frames_free(&body);
        s_frames_free(&env);
    }
    ds_arena_destroy(&arena);
}

static uint64_t s_xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*  Random input of three kinds: random envelope and body; a valid
    envelope with a random body; a valid message with a few bytes changed.
    Nothing may crash, leak or break the error contract. */
static void test_random_garbage_never_crashes(void **state)
{
    (void)state;
    s_encoded_t *e = s_encode_all();
    uint64_t seed = 0x5eed5eed5eed5eedull;
    uint8_t buf[2][4096];
    size_t decoded = 0;
    for (int iter = 0; iter < 10000; iter++) {
        const s_frames_t *valid = &e->frames[s_xorshift(&seed) % e->n];
        size_t len[2] = {valid->env.len, valid->body.len};
        memcpy(buf[0], valid->env.data, len[0]);
        assert_true(valid->body.len <= sizeof buf[1]);
        memcpy(buf[1], valid->body.data, len[1]);
        int kind = iter % 3;
        for (int which = (kind == 1); which < 2; which++) {
            if (kind == 2) {
                for (uint64_t flips = 1 + s_xorshift(&seed) % 4; flips > 0; flips--)
                    buf[which][s_xorshift(&seed) % len[which]] = (uint8_t)s_xorshift(&seed);
                continue;
            }
            len[which] = s_xorshift(&seed) % (which == 0 ? 24 : 96);
            for (size_t i = 0; i < len[which]; i++)
                buf[which][i] = (uint8_t)s_xorshift(&seed);
        }
        /* Exact-size copies, so a sanitizer sees any read past the end. */
        uint8_t *copy[2];
        for (int which = 0; which < 2; which++) {
            copy[which] = malloc(len[which] ? len[which] : 1);
            assert_non_null(copy[which]);
            memcpy(copy[which], buf[which], len[which]);
        }
        s_frames_t f = {{copy[0], len[0], len[0]}, {copy[1], len[1], len[1]}};
        ds_msg_t *msg;
        ds_codec_err_t err;
        if (s_decode(&f, &msg, &err) == 0) {
            decoded++;
            ds_msg_destroy(&msg);
        }
        free(copy[0]);
        free(copy[1]);
    }
    /* Some byte changes leave a valid message (a changed number). */
    assert_true(decoded > 0);
    s_encoded_free(e);
}

/* ---- seed corpora for the fuzz targets ------------------------------ */

/*  The type lists of the fuzz targets (tests/fuzz/fuzz_family.h): the
    first byte of an input picks types[byte % n], ids in increasing order
    among the families listed. */
static uint8_t s_type_selector(const ds_msg_family_t *families, size_t nfam, uint16_t type)
{
    uint8_t index = 0;
    for (unsigned t = 0; t < type; t++)
        for (size_t i = 0; i < nfam; i++)
            index += ds_msg_family((uint16_t)t) == families[i];
    return index;
}

static void s_write_file(const char *dir, const char *name, uint8_t lead, bool has_lead,
                         const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (has_lead && fwrite(&lead, 1, 1, f) != 1) ||
        (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
    printf("%s: %zu bytes\n", path, len + has_lead);
}

/*  One seed: a body of `type` (hand-built, or filled when NULL), written
    to the target directory `dir` whose families are `fam`; `cut` > 0
    drops that many bytes from the end, `patch` overwrites one byte. */
typedef struct {
    const char *name;
    uint16_t type;
    const void *body;
    size_t cut;
    int patch_at;
    uint8_t patch;
} s_seed_t;

typedef struct {
    const char *dir;
    ds_msg_family_t fam[3];
    size_t nfam;
    const s_seed_t *seeds;
    size_t nseeds;
} s_target_t;

static void s_write_seeds(const char *root, const s_target_t *t, ds_arena_t *arena)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", root, t->dir);
    mkdir(dir, 0755);
    for (size_t i = 0; i < t->nseeds; i++) {
        const s_seed_t *s = &t->seeds[i];
        const ds_desc_t *desc = ds_msg_desc(s->type);
        const void *body = s->body ? s->body : s_filled(desc, arena, false, i + 1);
        s_frames_t f;
        s_encode(s->type, body, &f);
        if (s->patch_at >= 0)
            f.body.data[s->patch_at] = s->patch;
        s_write_file(dir, s->name, s_type_selector(t->fam, t->nfam, s->type), true, f.body.data,
                     f.body.len - s->cut);
        s_frames_free(&f);
    }
}

static void s_write_spec_seeds(const char *root, ds_arena_t *arena)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/spec", root);
    mkdir(dir, 0755);
    ds_spec_t zero = {0}, dup = s_spec;
    /* The encoder refuses duplicate keys: write "B" and patch it to "A". */
    static ds_kv_t dup_env[] = {{"A", "1"}, {"B", "2"}};
    dup.env = dup_env;
    const struct {
        const char *name;
        const ds_spec_t *spec;
        size_t cut;
    } seeds[] = {
        {"valid-operator-spec", &s_spec, 0},
        {"valid-filled", s_filled(&ds_spec_desc, arena, false, 7), 0},
        {"valid-zero", &zero, 0},
        {"bad-truncated", &s_spec, 9},
        {"bad-duplicate-env-key", &dup, 0},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        ds_buf_t buf = {0};
        ds_codec_err_t err;
        if (ds_codec_encode(&ds_spec_desc, seeds[i].spec, &buf, &err) != 0)
            fail_msg("spec seed %s: %s", seeds[i].name, err.text);
        if (seeds[i].spec == &dup) {
            static const uint8_t key_b[] = {0xa1, 'B', 0xa1, '2'};
            for (size_t k = 0; k + sizeof key_b <= buf.len; k++)
                if (memcmp(buf.data + k, key_b, sizeof key_b) == 0)
                    buf.data[k + 1] = 'A';
        }
        s_write_file(dir, seeds[i].name, 0, false, buf.data, buf.len - seeds[i].cut);
        ds_buf_free(&buf);
    }
}

static void s_write_envelope_seeds(const char *root, ds_arena_t *arena)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/envelope", root);
    mkdir(dir, 0755);
    static const uint16_t types[] = {DS_RAFT_VOTE, DS_MSG_JOIN, DS_MSG_DEPLOY, DS_MSG_ERROR,
                                     DS_MSG_STATUS};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        s_frames_t f;
        s_encode(types[i], ds_arena_alloc(arena, ds_msg_desc(types[i])->size), &f);
        char name[64];
        snprintf(name, sizeof name, "valid-%s", ds_msg_type_name(types[i]));
        s_write_file(dir, name, 0, false, f.env.data, f.env.len);
        s_frames_free(&f);
    }
    static const s_env_row_t bad[] = {
        {"\x95\x01\x03\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa1x\x81\xa1k\x90", 18, 0},
        {"\x94\x02\x03\x07\xa1x", 6, 0},
        {"\x94\x01\xcc\xc8\x07\xa1x", 7, 0},
        {"\x94\x01\x03\x07\xa2x\x00", 7, 0},
        {"\x94\x01\x03\x07\xdb\xff\xff\xff\xff", 9, 0},
    };
    static const char *const names[] = {"valid-extra-field", "bad-version-2", "bad-type-200",
                                        "bad-sender-nul", "bad-sender-lies"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        s_write_file(dir, names[i], 0, false, bad[i].bytes, bad[i].len);
}

static int s_write_corpus(const char *root)
{
    ds_arena_t *arena = ds_arena_new(64u << 20);
    assert_non_null(arena);
    s_deploy.spec = s_spec;
    s_dry_jobs[0].spec = s_spec;
    /* The encoder refuses duplicate keys: write "zonf" and patch it. */
    static ds_kv_t dup_labels[] = {{"zone", "a"}, {"zonf", "b"}};
    static ds_join_req_t dup_join;
    dup_join = s_join;
    dup_join.labels = dup_labels;
    dup_join.n_labels = 2;
    static const s_seed_t peer[] = {
        {"valid-prevote", DS_RAFT_PREVOTE, NULL, 0, -1, 0},
        {"valid-vote-resp", DS_RAFT_VOTE_RESP, NULL, 0, -1, 0},
        {"valid-append-entries", DS_RAFT_APPEND, &s_append, 0, -1, 0},
        {"valid-append-resp", DS_RAFT_APPEND_RESP, NULL, 0, -1, 0},
        {"valid-snapshot-chunk", DS_RAFT_SNAPSHOT, &s_snapshot, 0, -1, 0},
        {"valid-heartbeat", DS_RAFT_HEARTBEAT, NULL, 0, -1, 0},
        {"valid-timeout-now", DS_RAFT_TIMEOUT_NOW, NULL, 0, -1, 0},
        {"valid-peer-hello", DS_MSG_PEER_HELLO, NULL, 0, -1, 0},
        {"bad-append-truncated", DS_RAFT_APPEND, &s_append, 5, -1, 0},
        {"bad-append-entry-type", DS_RAFT_APPEND, &s_append, 0, 11, 0x07},
    };
    static const s_seed_t worker[] = {
        {"valid-join-labels", DS_MSG_JOIN, &s_join, 0, -1, 0},
        {"valid-heartbeat", DS_MSG_HEARTBEAT, NULL, 0, -1, 0},
        {"valid-assignment-req", DS_MSG_ASSIGNMENT_REQ, NULL, 0, -1, 0},
        {"valid-instance-event", DS_MSG_INSTANCE_EVENT, NULL, 0, -1, 0},
        {"valid-join-reply", DS_MSG_JOIN_REPLY, NULL, 0, -1, 0},
        {"valid-heartbeat-reply", DS_MSG_HEARTBEAT_REPLY, NULL, 0, -1, 0},
        {"valid-error", DS_MSG_ERROR, &s_error, 0, -1, 0},
        {"valid-not-leader", DS_MSG_NOT_LEADER, &s_not_leader, 0, -1, 0},
        {"bad-join-duplicate-label", DS_MSG_JOIN, &dup_join, 0, 29, 'e'},
        {"bad-join-truncated", DS_MSG_JOIN, &s_join, 3, -1, 0},
        {"valid-heartbeat-dry-run-results", DS_MSG_HEARTBEAT, &s_heartbeat_dry, 0, -1, 0},
        {"valid-heartbeat-reply-dry-run-job", DS_MSG_HEARTBEAT_REPLY, &s_heartbeat_reply_dry, 0, -1,
         0},
        {"bad-heartbeat-reply-dry-run-truncated", DS_MSG_HEARTBEAT_REPLY, &s_heartbeat_reply_dry,
         30, -1, 0},
    };
    static const s_seed_t admin[] = {
        {"valid-deploy", DS_MSG_DEPLOY, &s_deploy, 0, -1, 0},
        {"valid-rollback", DS_MSG_ROLLBACK, NULL, 0, -1, 0},
        {"valid-status", DS_MSG_STATUS, NULL, 0, -1, 0},
        {"valid-status-reply", DS_MSG_STATUS_REPLY, &s_status_reply, 0, -1, 0},
        {"valid-events", DS_MSG_EVENTS, NULL, 0, -1, 0},
        {"valid-cluster-add", DS_MSG_CLUSTER_ADD, NULL, 0, -1, 0},
        {"valid-top-reply", DS_MSG_TOP_REPLY, NULL, 0, -1, 0},
        {"valid-op-reply", DS_MSG_OP_REPLY, NULL, 0, -1, 0},
        {"bad-deploy-truncated", DS_MSG_DEPLOY, &s_deploy, 40, -1, 0},
        {"bad-status-reply-nul", DS_MSG_STATUS_REPLY, &s_status_reply, 0, 5, 0x00},
    };
    const s_target_t targets[] = {
        {"peer", {DS_FAMILY_PEER}, 1, peer, sizeof peer / sizeof peer[0]},
        {"worker",
         {DS_FAMILY_WORKER, DS_FAMILY_REPLY},
         2,
         worker,
         sizeof worker / sizeof worker[0]},
        {"admin",
         {DS_FAMILY_ADMIN, DS_FAMILY_VIEW, DS_FAMILY_REPLY},
         3,
         admin,
         sizeof admin / sizeof admin[0]},
    };
    mkdir(root, 0755);
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++)
        s_write_seeds(root, &targets[i], arena);
    s_write_spec_seeds(root, arena);
    s_write_envelope_seeds(root, arena);
    ds_arena_destroy(&arena);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
        return s_write_corpus(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_catalog_type_round_trips_a_filled_body),
        cmocka_unit_test(test_every_catalog_type_round_trips_a_body_at_its_limits),
        cmocka_unit_test(test_every_catalog_type_round_trips_a_zeroed_body),
        cmocka_unit_test(test_join_with_labels_round_trips),
        cmocka_unit_test(test_append_with_entries_round_trips),
        cmocka_unit_test(test_snapshot_chunk_with_binary_data_round_trips),
        cmocka_unit_test(test_status_reply_with_nested_instances_round_trips),
        cmocka_unit_test(test_error_reply_carries_code_and_message),
        cmocka_unit_test(test_not_leader_carries_leader_endpoint),
        cmocka_unit_test(test_deploy_carries_a_whole_spec),
        cmocka_unit_test(test_heartbeat_carries_dry_run_results),
        cmocka_unit_test(test_heartbeat_reply_carries_dry_run_jobs_with_their_spec),
        cmocka_unit_test(test_heartbeat_without_dry_run_list_is_truncated),
        cmocka_unit_test(test_raft_body_type_is_set_from_the_envelope),
        cmocka_unit_test(test_each_type_has_its_family_and_unknown_types_have_none),
        cmocka_unit_test(test_every_catalog_type_has_a_family_and_a_unique_name),
        cmocka_unit_test(test_every_truncation_of_envelope_or_body_is_refused),
        cmocka_unit_test(test_a_byte_after_envelope_or_body_is_trailing),
        cmocka_unit_test(test_wrong_version_is_eversion_and_unknown_type_is_eunknown),
        cmocka_unit_test(test_version_and_type_beyond_their_width_are_eversion_and_eunknown),
        cmocka_unit_test(test_encoder_refuses_unknown_type_and_long_sender),
        cmocka_unit_test(test_oversized_frames_are_refused_before_reading),
        cmocka_unit_test(test_body_of_another_type_is_refused),
        cmocka_unit_test(test_random_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
