/*  coordinator/worker_state.c - the replicated worker registry: worker
    records and their assignments (docs/release-state.md, "Workers"). */
#include "coordinator/worker_state.h"

#include "coordinator/release_state.h"
#include "coordinator/token_state.h"
#include "protocol/msg.h"
#include "protocol/buf.h"
#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/state.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

static const ds_field_t s_resources_fields[] = {
    DS_F_U32(ds_resources_t, cpus, 0),
    DS_F_U64(ds_resources_t, memory_kb),
    DS_F_U64(ds_resources_t, disk_kb),
};
static const ds_desc_t s_resources_desc = DS_DESC(ds_resources_t, "resources", s_resources_fields);

static const ds_field_t s_worker_fields[] = {
    DS_F_STR(ds_worker_record_t, name, DS_MAX_NAME),
    DS_F_STR(ds_worker_record_t, worker_id, DS_MAX_NAME),
    DS_F_KVS(ds_worker_record_t, labels, n_labels, DS_MAX_LABELS),
    DS_F_STRUCT(ds_worker_record_t, resources, s_resources_desc),
    DS_F_STR(ds_worker_record_t, software_version, DS_MAX_NAME),
    DS_F_U64(ds_worker_record_t, joined_at_ms),
    DS_F_U64(ds_worker_record_t, rejoined_at_ms),
    DS_F_U64(ds_worker_record_t, generation),
    DS_F_STR(ds_worker_record_t, key, DS_MAX_NAME),
};
const ds_desc_t ds_worker_record_desc = DS_DESC(ds_worker_record_t, "worker", s_worker_fields);

static const ds_field_t s_assignment_fields[] = {
    DS_F_STR(ds_assignment_record_t, service, DS_MAX_NAME),
    DS_F_U64(ds_assignment_record_t, version),
    DS_F_U64(ds_assignment_record_t, deployment_id),
    DS_F_U64(ds_assignment_record_t, assigned_at_ms),
};
const ds_desc_t ds_assignment_record_desc =
    DS_DESC(ds_assignment_record_t, "assignment", s_assignment_fields);

static const ds_field_t s_join_cmd_fields[] = {
    DS_F_STRUCT(ds_worker_join_cmd_t, join, ds_join_req_desc),
    DS_F_STR(ds_worker_join_cmd_t, key, DS_MAX_NAME),
    DS_F_STR(ds_worker_join_cmd_t, token_id, DS_MAX_NAME),
    DS_F_STR(ds_worker_join_cmd_t, token_hash, DS_TOKEN_HASH_LEN),
};
const ds_desc_t ds_worker_join_cmd_desc =
    DS_DESC(ds_worker_join_cmd_t, "worker_join", s_join_cmd_fields);

#define S_LABEL_KEY_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-"

/* ---- checks -------------------------------------------------------- */

/*  A worker or service name: 1..DS_MAX_NAME bytes, no space or control
    character (names appear in key=value log lines and in keys). */
static bool s_name_ok(const char *s)
{
    if (!s)
        return false;
    size_t len = strlen(s);
    if (len == 0 || len > DS_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

/*  Labels as a selector matches them: keys as in a spec's selector
    (letters, digits and . _ / -, at most DS_MAX_NAME bytes), values at
    most DS_MAX_LABEL bytes without control characters, each key once. */
static bool s_labels_ok(const ds_kv_t *labels, uint32_t n)
{
    if (n > DS_MAX_LABELS || (n && !labels))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k = labels[i].key, *v = labels[i].value ? labels[i].value : "";
        if (!k || !k[0] || strlen(k) > DS_MAX_NAME || strspn(k, S_LABEL_KEY_CHARS) != strlen(k))
            return false;
        if (strlen(v) > DS_MAX_LABEL)
            return false;
        for (const char *p = v; *p; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                return false;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(k, labels[j].key) == 0)
                return false;
    }
    return true;
}

/* ---- records ------------------------------------------------------- */

static int s_decode(ds_txn_t *txn, const ds_desc_t *desc, const void *data, size_t len,
                    ds_arena_t *arena, void *obj, const char *name)
{
    int rc = ds_codec_decode(desc, data, len, obj, arena, NULL);
    if (rc == DS_ENOMEM)
        return rc;
    return rc == 0 ? 0 : ds_txn_fail(txn, DS_ECORRUPT, "%s of %s is unreadable", desc->name, name);
}

static int s_worker_load(ds_txn_t *txn, const char *name, ds_arena_t *arena,
                         ds_worker_record_t *out)
{
    ds_val_t v;
    int rc = ds_state_get(txn, DS_TABLE_WORKERS, name, &v);
    return rc != 0 ? rc : s_decode(txn, &ds_worker_record_desc, v.data, v.len, arena, out, name);
}

static int s_worker_store(ds_txn_t *txn, const ds_worker_record_t *w)
{
    ds_buf_t buf = {0};
    int rc = ds_codec_encode(&ds_worker_record_desc, w, &buf, NULL);
    if (rc == 0)
        rc = ds_state_put(txn, DS_TABLE_WORKERS, w->name, buf.data, buf.len);
    ds_buf_free(&buf);
    return rc;
}

/*  An arena for one stored record of `len` bytes. */
static ds_arena_t *s_record_arena(size_t len)
{
    return ds_arena_new(ds_codec_arena_cap(len, sizeof(ds_worker_record_t)));
}

/*  Reads the stored assignment row; *version = 0 when there is none. */
static int s_row_version(ds_txn_t *txn, const char *worker, const char *service, uint64_t *version)
{
    *version = 0;
    ds_val_t v;
    int rc = ds_state_assignment_get(txn, worker, service, &v);
    if (rc == DS_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    ds_arena_t *arena = s_record_arena(v.len);
    if (!arena)
        return DS_ENOMEM;
    ds_assignment_record_t row;
    rc = s_decode(txn, &ds_assignment_record_desc, v.data, v.len, arena, &row, worker);
    if (rc == 0)
        *version = row.version;
    ds_arena_destroy(&arena);
    return rc;
}

/* ---- commands ------------------------------------------------------ */

/*  Creates or updates the record of req->name; `key` NULL keeps the
    stored key, else it is pinned (a different stored key: DS_EEXIST). */
static int s_join(ds_txn_t *txn, const ds_command_t *cmd, const ds_join_req_t *req, const char *key,
                  ds_arena_t *arena)
{
    if (!s_name_ok(req->name) || !s_name_ok(req->worker_id) ||
        !s_labels_ok(req->labels, req->n_labels) ||
        (req->software_version && strlen(req->software_version) > DS_MAX_NAME) ||
        (key && strlen(key) > DS_MAX_NAME))
        return DS_EINVAL;
    ds_worker_record_t old;
    int rc = s_worker_load(txn, req->name, arena, &old);
    bool rejoin = rc == 0;
    if (rc != 0 && rc != DS_ENOTFOUND)
        return rc;
    const char *stored = rejoin && old.key ? old.key : "";
    if (key && key[0] && stored[0] && strcmp(key, stored) != 0)
        return DS_EEXIST;
    ds_worker_record_t w = {
        .name = req->name,
        .worker_id = req->worker_id,
        .n_labels = req->n_labels,
        .labels = req->labels,
        .resources = req->resources,
        .software_version = req->software_version,
        .joined_at_ms = rejoin ? old.joined_at_ms : cmd->ts_ms,
        .rejoined_at_ms = cmd->ts_ms,
        .generation = rejoin ? old.generation : 1,
        .key = (char *)(key && key[0] ? key : stored),
    };
    return s_worker_store(txn, &w);
}

int ds_worker_state_join(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd,
                         const ds_join_req_t *req)
{
    assert(txn && cmd && req);
    (void)index; /* a worker is named by its name, not by the entry */
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(DS_MAX_ENTRY_SIZE, 4096));
    if (!arena)
        return DS_ENOMEM;
    int rc = s_join(txn, cmd, req, NULL, arena);
    ds_arena_destroy(&arena);
    return rc;
}

/*  The worker's labels with the token's added (the token's value wins). */
static int s_merge_labels(ds_join_req_t *req, const ds_token_record_t *t, ds_arena_t *arena)
{
    uint32_t n = req->n_labels;
    ds_kv_t *out = ds_arena_alloc(arena, sizeof *out * (size_t)(n + t->n_labels + 1));
    if (!out)
        return DS_ENOMEM;
    if (n)
        memcpy(out, req->labels, sizeof *out * n);
    for (uint32_t i = 0; i < t->n_labels; i++) {
        uint32_t j = 0;
        while (j < n && strcmp(out[j].key, t->labels[i].key) != 0)
            j++;
        out[j] = t->labels[i];
        if (j == n)
            n++;
    }
    if (n > DS_MAX_LABELS)
        return DS_EINVAL;
    req->labels = out;
    req->n_labels = n;
    return 0;
}

int ds_worker_state_join_keyed(ds_txn_t *txn, uint64_t index, const ds_command_t *cmd,
                               const ds_worker_join_cmd_t *body)
{
    assert(txn && cmd && body);
    (void)index;
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(DS_MAX_ENTRY_SIZE, 4096));
    if (!arena)
        return DS_ENOMEM;
    ds_join_req_t req = body->join;
    int rc = 0;
    if (body->token_id && body->token_id[0]) {
        ds_token_record_t t;
        rc = ds_token_state_consume(txn, body->token_id, body->token_hash, cmd->ts_ms, arena, &t);
        if (rc == 0)
            rc = s_merge_labels(&req, &t, arena);
    }
    if (rc == 0)
        rc = s_join(txn, cmd, &req, body->key ? body->key : "", arena);
    ds_arena_destroy(&arena);
    return rc;
}

typedef struct {
    char (*services)[DS_MAX_NAME + 1];
    size_t n, cap;
} s_services_t;

static int s_collect_service(void *ctx, const ds_state_row_t *row)
{
    s_services_t *s = ctx;
    if (s->n == s->cap || !row->name2 || strlen(row->name2) > DS_MAX_NAME)
        return DS_ECORRUPT;
    snprintf(s->services[s->n++], DS_MAX_NAME + 1, "%s", row->name2);
    return 0;
}

int ds_worker_state_remove(ds_txn_t *txn, const char *name, char key[DS_MAX_NAME + 1])
{
    assert(txn && key);
    key[0] = '\0';
    if (!s_name_ok(name))
        return DS_EINVAL;
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(DS_MAX_ENTRY_SIZE, 4096));
    if (!arena)
        return DS_ENOMEM;
    s_services_t s = {NULL, 0, DS_MAX_SERVICES};
    ds_worker_record_t w;
    int rc = s_worker_load(txn, name, arena, &w);
    if (rc == 0 && !(s.services = ds_arena_alloc(arena, sizeof *s.services * s.cap)))
        rc = DS_ENOMEM;
    if (rc == 0)
        rc = ds_state_assignments_list(txn, name, s_collect_service, &s);
    if (rc == DS_ECORRUPT && !ds_txn_failed(txn))
        rc = ds_txn_fail(txn, DS_ECORRUPT, "assignments of %s are malformed", name);
    for (size_t i = 0; rc == 0 && i < s.n; i++)
        rc = ds_state_assignment_del(txn, name, s.services[i]);
    if (rc == 0)
        rc = ds_state_del(txn, DS_TABLE_WORKERS, name);
    if (rc == 0)
        snprintf(key, DS_MAX_NAME + 1, "%s", w.key ? w.key : "");
    ds_arena_destroy(&arena);
    return rc;
}

int ds_worker_state_assign(ds_txn_t *txn, const char *worker, const char *service, uint64_t version,
                           uint64_t deployment_id, uint64_t ts_ms)
{
    assert(txn);
    if (!s_name_ok(worker) || !s_name_ok(service))
        return DS_EINVAL;
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(DS_MAX_ENTRY_SIZE, 4096));
    if (!arena)
        return DS_ENOMEM;
    ds_worker_record_t w;
    uint64_t have = 0;
    int rc = s_worker_load(txn, worker, arena, &w);
    if (rc == 0)
        rc = s_row_version(txn, worker, service, &have);
    if (rc != 0 || have == version)
        goto out;
    if (version == 0) {
        rc = ds_state_assignment_del(txn, worker, service);
    } else {
        ds_assignment_record_t row = {(char *)service, version, deployment_id, ts_ms};
        ds_buf_t buf = {0};
        rc = ds_codec_encode(&ds_assignment_record_desc, &row, &buf, NULL);
        if (rc == 0)
            rc = ds_state_assignment_put(txn, worker, service, buf.data, buf.len);
        ds_buf_free(&buf);
    }
    if (rc == 0) {
        w.generation++;
        rc = s_worker_store(txn, &w);
    }
out:
    ds_arena_destroy(&arena);
    return rc;
}

/* ---- reads --------------------------------------------------------- */

int ds_worker_state_get(ds_txn_t *txn, const char *name, ds_arena_t *arena, ds_worker_record_t *out)
{
    assert(txn && arena && out);
    if (!s_name_ok(name))
        return DS_EINVAL;
    return s_worker_load(txn, name, arena, out);
}

typedef struct {
    ds_txn_t *txn;
    ds_worker_state_fn fn;
    void *ctx;
} s_list_ctx_t;

static int s_list_row(void *ctx, const ds_state_row_t *row)
{
    s_list_ctx_t *l = ctx;
    ds_arena_t *arena = s_record_arena(row->len);
    if (!arena)
        return DS_ENOMEM;
    ds_worker_record_t w;
    int rc = s_decode(l->txn, &ds_worker_record_desc, row->val, row->len, arena, &w, row->name);
    if (rc == 0)
        rc = l->fn(l->ctx, &w);
    ds_arena_destroy(&arena);
    return rc;
}

int ds_worker_state_list(ds_txn_t *txn, ds_worker_state_fn fn, void *ctx)
{
    assert(txn && fn);
    s_list_ctx_t l = {txn, fn, ctx};
    return ds_state_list(txn, DS_TABLE_WORKERS, s_list_row, &l);
}

int ds_worker_state_assigned(ds_txn_t *txn, const char *worker, const char *service,
                             uint64_t *version)
{
    assert(txn && version);
    *version = 0;
    if (!s_name_ok(worker) || !s_name_ok(service))
        return DS_EINVAL;
    return s_row_version(txn, worker, service, version);
}

typedef struct {
    ds_txn_t *txn;
    ds_arena_t *arena;
    ds_assignment_t *out;
    uint32_t cap; /* 0 while counting */
} s_assignment_ctx_t;

static int s_assignment_row(void *ctx, const ds_state_row_t *row)
{
    s_assignment_ctx_t *a = ctx;
    if (a->cap == 0) {
        if (a->out->n_releases == DS_MAX_SERVICES)
            return ds_txn_fail(a->txn, DS_ECORRUPT, "worker %s has more than %u assignments",
                               row->name, DS_MAX_SERVICES);
        a->out->n_releases++;
        return 0;
    }
    assert(a->out->n_releases < a->cap); /* one transaction: the rows cannot change */
    ds_assignment_record_t rec;
    int rc =
        s_decode(a->txn, &ds_assignment_record_desc, row->val, row->len, a->arena, &rec, row->name);
    if (rc != 0)
        return rc;
    if (rec.version == 0 || strcmp(rec.service, row->name2) != 0)
        return ds_txn_fail(a->txn, DS_ECORRUPT, "assignment (%s, %s) is malformed", row->name,
                           row->name2);
    ds_release_t rel;
    rc = ds_release_state_release(a->txn, rec.service, rec.version, a->arena, &rel);
    if (rc == DS_ENOTFOUND)
        return ds_txn_fail(a->txn, DS_ECORRUPT,
                           "worker %s is assigned %s version %llu, which "
                           "is not a release",
                           row->name, rec.service, (unsigned long long)rec.version);
    if (rc != 0)
        return rc;
    a->out->releases[a->out->n_releases++] =
        (ds_assigned_release_t){rec.service, rec.version, rel.spec};
    return 0;
}

int ds_worker_state_assignment(ds_txn_t *txn, const char *worker, ds_arena_t *arena,
                               ds_assignment_t *out)
{
    assert(txn && arena && out);
    *out = (ds_assignment_t){0};
    if (!s_name_ok(worker))
        return DS_EINVAL;
    ds_worker_record_t w;
    int rc = s_worker_load(txn, worker, arena, &w);
    if (rc != 0)
        return rc;
    s_assignment_ctx_t a = {txn, arena, out, 0};
    rc = ds_state_assignments_list(txn, worker, s_assignment_row, &a);
    if (rc != 0 || out->n_releases == 0)
        goto done;
    a.cap = out->n_releases;
    out->releases = ds_arena_alloc(arena, (size_t)a.cap * sizeof out->releases[0]);
    if (!out->releases) {
        rc = DS_ENOMEM;
        goto done;
    }
    out->n_releases = 0;
    rc = ds_state_assignments_list(txn, worker, s_assignment_row, &a);
done:
    if (rc == 0)
        out->generation = w.generation;
    else
        *out = (ds_assignment_t){0};
    return rc;
}

bool ds_worker_state_selected(const ds_worker_record_t *w, const ds_kv_t *selector,
                              uint32_t n_selector)
{
    assert(w);
    for (uint32_t i = 0; i < n_selector; i++) {
        const char *key = selector[i].key ? selector[i].key : "";
        const char *value = selector[i].value ? selector[i].value : "";
        bool match = false;
        for (uint32_t j = 0; j < w->n_labels && !match; j++)
            match = strcmp(w->labels[j].key, key) == 0 &&
                    strcmp(w->labels[j].value ? w->labels[j].value : "", value) == 0;
        if (!match)
            return false;
    }
    return true;
}
