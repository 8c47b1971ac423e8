/*  storage/workerstore.c - the worker's identity and local releases. */
#include "storage/workerstore.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define S_KEY_MAX (DS_MAX_NAME + 9)

struct ds_workerstore {
    ds_store_t *store;
};

int ds_workerstore_open(ds_workerstore_t **out, const char *dir, const ds_store_opts_t *opts,
                        char *errbuf, size_t errlen)
{
    assert(out);
    *out = NULL;
    ds_store_opts_t o;
    ds_store_opts_default(&o);
    if (opts)
        o = *opts;
    o.dbs = DS_STORE_DBS_WORKER;
    ds_workerstore_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "out of memory opening the worker store");
        return DS_ENOMEM;
    }
    int rc = ds_store_open(&ws->store, dir, &o, errbuf, errlen);
    if (rc)
        goto err_free;
    *out = ws;
    return 0;

err_free:
    free(ws);
    return rc;
}

void ds_workerstore_destroy(ds_workerstore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ds_store_destroy(&(*self_p)->store);
    free(*self_p);
    *self_p = NULL;
}

const char *ds_workerstore_errmsg(const ds_workerstore_t *ws)
{
    assert(ws);
    return ds_store_errmsg(ws->store);
}

static int s_check_name(ds_txn_t *txn, const char *what, const char *name, size_t max)
{
    size_t len = name ? strnlen(name, max + 1) : 0;
    if (len == 0 || len > max)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "%s must be 1..%zu bytes", what, max);
    return 0;
}

/* ---- identity ---- */

/* Reads a string value of 1..max bytes into out[max + 1]. */
static int s_meta_str(ds_txn_t *txn, const char *key, char *out, size_t max)
{
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_WK_META, key, strlen(key), &v);
    if (rc)
        return rc;
    if (v.len == 0 || v.len > max || memchr(v.data, '\0', v.len))
        return ds_txn_fail(txn, DS_ECORRUPT, "worker store: %s is malformed (%zu bytes)", key,
                           v.len);
    memcpy(out, v.data, v.len);
    out[v.len] = '\0';
    return 0;
}

static int s_meta_put(ds_txn_t *txn, const char *key, const char *val)
{
    return ds_txn_put(txn, DS_DB_WK_META, key, strlen(key), val, strlen(val), 0);
}

static int s_identity_load_txn(ds_txn_t *txn, ds_worker_identity_t *id)
{
    memset(id, 0, sizeof *id);
    int rc = s_meta_str(txn, "id", id->id, DS_WORKERSTORE_ID_LEN);
    if (!rc)
        rc = s_meta_str(txn, "name", id->name, DS_MAX_NAME);
    if (!rc) {
        rc = s_meta_str(txn, "key_path", id->key_path, DS_MAX_PATH);
        if (rc == DS_ENOTFOUND)
            rc = 0;
    }
    if (rc == DS_ENOTFOUND)
        ds_store_fail(ds_txn_store(txn), rc, "worker store has no identity yet");
    return rc;
}

static int s_random_id(char out[DS_WORKERSTORE_ID_LEN + 1])
{
    uint8_t raw[DS_WORKERSTORE_ID_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return DS_EIO;
        got += (size_t)n;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[DS_WORKERSTORE_ID_LEN] = '\0';
    return 0;
}

typedef struct {
    const char *name;
    const char *path;
    ds_worker_identity_t *id;
    char fresh_id[DS_WORKERSTORE_ID_LEN + 1];
} s_ident_t;

static int s_identity_fn(ds_txn_t *txn, void *ctx)
{
    s_ident_t *a = ctx;
    int rc = s_check_name(txn, "worker name", a->name, DS_MAX_NAME);
    if (rc)
        return rc;
    rc = s_identity_load_txn(txn, a->id);
    if (rc == DS_ENOTFOUND) {
        memset(a->id, 0, sizeof *a->id);
        memcpy(a->id->id, a->fresh_id, sizeof a->id->id);
        rc = s_meta_put(txn, "id", a->id->id);
        if (rc)
            return rc;
    } else if (rc) {
        return rc;
    }
    if (strcmp(a->id->name, a->name) != 0) {
        snprintf(a->id->name, sizeof a->id->name, "%s", a->name);
        rc = s_meta_put(txn, "name", a->id->name);
    }
    return rc;
}

int ds_workerstore_identity(ds_workerstore_t *ws, const char *name, ds_worker_identity_t *out)
{
    assert(ws && out);
    s_ident_t a = {.name = name, .id = out};
    /* Drawn outside the callback: the callback may run twice. */
    if (s_random_id(a.fresh_id))
        return ds_store_fail(ws->store, DS_EIO, "cannot get random bytes for a worker id: %s",
                             strerror(errno));
    return ds_store_write(ws->store, s_identity_fn, &a);
}

static int s_identity_load_fn(ds_txn_t *txn, void *ctx)
{
    return s_identity_load_txn(txn, ctx);
}

int ds_workerstore_identity_load(ds_workerstore_t *ws, ds_worker_identity_t *out)
{
    assert(ws && out);
    return ds_store_read(ws->store, s_identity_load_fn, out);
}

static int s_key_path_fn(ds_txn_t *txn, void *ctx)
{
    s_ident_t *a = ctx;
    int rc = s_check_name(txn, "key path", a->path, DS_MAX_PATH);
    if (rc)
        return rc;
    ds_worker_identity_t id;
    rc = s_identity_load_txn(txn, &id);
    if (rc)
        return rc;
    return s_meta_put(txn, "key_path", a->path);
}

int ds_workerstore_set_key_path(ds_workerstore_t *ws, const char *path)
{
    assert(ws);
    s_ident_t a = {.path = path};
    return ds_store_write(ws->store, s_key_path_fn, &a);
}

/* ---- releases ---- */

static size_t s_rel_key(uint8_t key[S_KEY_MAX], const char *service, uint64_t version)
{
    size_t n = strlen(service);
    memcpy(key, service, n);
    key[n] = '\0';
    ds_store_put_u64(key + n + 1, version);
    return n + 9;
}

static bool s_state_ok(unsigned s)
{
    return s <= DS_WREL_FAILED;
}

/* Decodes a stored release; spec points into the map. */
static int s_rel_decode(ds_txn_t *txn, const ds_val_t *k, const ds_val_t *v,
                        ds_worker_release_t *rel)
{
    if (k->len < 10 || k->data[k->len - 9] != '\0' || memchr(k->data, '\0', k->len - 9) ||
        k->len - 9 > DS_MAX_NAME)
        return ds_txn_fail(txn, DS_ECORRUPT, "worker store: malformed release key (%zu bytes)",
                           k->len);
    rel->version = ds_store_get_u64(k->data + k->len - 8);
    if (v->len < 1 || !s_state_ok(v->data[0]))
        return ds_txn_fail(txn, DS_ECORRUPT,
                           "worker store: release version %" PRIu64 " has a malformed value",
                           rel->version);
    rel->state = (ds_wrel_state_t)v->data[0];
    rel->spec = (uint8_t *)(v->data + 1);
    rel->spec_len = v->len - 1;
    return 0;
}

static int s_check_rel(ds_txn_t *txn, const char *service, uint64_t version)
{
    int rc = s_check_name(txn, "service name", service, DS_MAX_NAME);
    if (!rc && version == 0)
        rc = ds_store_fail(ds_txn_store(txn), DS_EINVAL, "release version must be >= 1");
    return rc;
}

typedef struct {
    const char *service;
    uint64_t version;
    ds_wrel_state_t state;
    const void *spec;
    size_t spec_len;
    bool state_only;
    ds_worker_release_t *out;
    ds_worker_release_fn fn;
    void *ctx;
    size_t keep, max;
    uint64_t *pruned;
    size_t *n_pruned;
    uint64_t *current, *previous;
} s_rel_t;

static int s_rel_put_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    int rc = s_check_rel(txn, a->service, a->version);
    if (rc)
        return rc;
    if (!s_state_ok((unsigned)a->state))
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "release state %d is unknown",
                             (int)a->state);
    if (!a->state_only && a->spec_len > DS_MAX_ENTRY_SIZE)
        return ds_store_fail(ds_txn_store(txn), DS_ETOOBIG, "release spec of %zu bytes (max %u)",
                             a->spec_len, DS_MAX_ENTRY_SIZE);
    uint8_t key[S_KEY_MAX];
    size_t klen = s_rel_key(key, a->service, a->version);
    ds_val_t k = {key, klen}, v;
    ds_worker_release_t old;
    rc = ds_txn_get(txn, DS_DB_WK_RELEASES, key, klen, &v);
    if (rc == 0)
        rc = s_rel_decode(txn, &k, &v, &old);
    if (rc == DS_ENOTFOUND && a->state_only)
        return ds_store_fail(ds_txn_store(txn), DS_ENOTFOUND,
                             "release %s version %" PRIu64 " is not recorded on this worker",
                             a->service, a->version);
    if (rc && rc != DS_ENOTFOUND)
        return rc;
    const uint8_t *spec = a->spec;
    size_t spec_len = a->spec_len;
    if (rc == 0) {
        if (!a->state_only && (old.spec_len != a->spec_len ||
                               (a->spec_len && memcmp(old.spec, a->spec, a->spec_len))))
            return ds_store_fail(ds_txn_store(txn), DS_EEXIST,
                                 "release %s version %" PRIu64 " is recorded with a different spec",
                                 a->service, a->version);
        spec = old.spec;
        spec_len = old.spec_len;
    }
    uint8_t *val = malloc(1 + spec_len);
    if (!val)
        return ds_store_fail(ds_txn_store(txn), DS_ENOMEM, "out of memory");
    val[0] = (uint8_t)a->state;
    if (spec_len)
        memcpy(val + 1, spec, spec_len);
    rc = ds_txn_put(txn, DS_DB_WK_RELEASES, key, klen, val, 1 + spec_len, 0);
    free(val);
    return rc;
}

int ds_workerstore_release_put(ds_workerstore_t *ws, const char *service, uint64_t version,
                               ds_wrel_state_t state, const void *spec, size_t spec_len)
{
    assert(ws);
    assert(spec || spec_len == 0);
    s_rel_t a = {
        .service = service, .version = version, .state = state, .spec = spec, .spec_len = spec_len};
    return ds_store_write(ws->store, s_rel_put_fn, &a);
}

int ds_workerstore_release_set_state(ds_workerstore_t *ws, const char *service, uint64_t version,
                                     ds_wrel_state_t state)
{
    assert(ws);
    s_rel_t a = {.service = service, .version = version, .state = state, .state_only = true};
    return ds_store_write(ws->store, s_rel_put_fn, &a);
}

static int s_rel_get_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    int rc = s_check_rel(txn, a->service, a->version);
    if (rc)
        return rc;
    uint8_t key[S_KEY_MAX];
    size_t klen = s_rel_key(key, a->service, a->version);
    ds_val_t k = {key, klen}, v;
    ds_worker_release_t rel;
    rc = ds_txn_get(txn, DS_DB_WK_RELEASES, key, klen, &v);
    if (!rc)
        rc = s_rel_decode(txn, &k, &v, &rel);
    if (rc)
        return rc;
    uint8_t *copy = malloc(rel.spec_len ? rel.spec_len : 1);
    if (!copy)
        return ds_store_fail(ds_txn_store(txn), DS_ENOMEM, "out of memory");
    if (rel.spec_len)
        memcpy(copy, rel.spec, rel.spec_len);
    rel.spec = copy;
    *a->out = rel;
    return 0;
}

int ds_workerstore_release_get(ds_workerstore_t *ws, const char *service, uint64_t version,
                               ds_worker_release_t *out)
{
    assert(ws && out);
    memset(out, 0, sizeof *out);
    s_rel_t a = {.service = service, .version = version, .out = out};
    return ds_store_read(ws->store, s_rel_get_fn, &a);
}

void ds_workerstore_release_free(ds_worker_release_t *rel)
{
    if (!rel)
        return;
    free(rel->spec);
    memset(rel, 0, sizeof *rel);
}

/* Calls fn for each release of service, newest first. */
static int s_each_desc(ds_txn_t *txn, const char *service, ds_worker_release_fn fn, void *ctx)
{
    int rc = s_check_name(txn, "service name", service, DS_MAX_NAME);
    if (rc)
        return rc;
    uint8_t past[S_KEY_MAX + 1];
    size_t n = strlen(service);
    memcpy(past, service, n);
    past[n] = '\0';
    memset(past + n + 1, 0xff, 9);
    ds_cursor_t *c = NULL;
    rc = ds_cursor_open(txn, DS_DB_WK_RELEASES, &c);
    if (rc)
        return rc;
    ds_val_t k, v;
    rc = ds_cursor_get(c, DS_CURSOR_SEEK, past, n + 10, &k, &v);
    if (rc == 0)
        rc = ds_cursor_get(c, DS_CURSOR_PREV, NULL, 0, &k, &v);
    else if (rc == DS_ENOTFOUND)
        rc = ds_cursor_get(c, DS_CURSOR_LAST, NULL, 0, &k, &v);
    while (rc == 0) {
        if (k.len < n + 1 || memcmp(k.data, past, n + 1) != 0)
            break;
        ds_worker_release_t rel;
        rc = s_rel_decode(txn, &k, &v, &rel);
        if (rc)
            break;
        rc = fn(ctx, &rel);
        if (rc > 0) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        rc = ds_cursor_get(c, DS_CURSOR_PREV, NULL, 0, &k, &v);
    }
    ds_cursor_destroy(&c);
    return rc == DS_ENOTFOUND ? 0 : rc;
}

static int s_list_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    return s_each_desc(txn, a->service, a->fn, a->ctx);
}

int ds_workerstore_releases_list(ds_workerstore_t *ws, const char *service, ds_worker_release_fn fn,
                                 void *ctx)
{
    assert(ws && fn);
    s_rel_t a = {.service = service, .fn = fn, .ctx = ctx};
    return ds_store_read(ws->store, s_list_fn, &a);
}

/* ---- current / previous ---- */

static int s_current_txn(ds_txn_t *txn, const char *service, uint64_t *cur, uint64_t *prev)
{
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_WK_SERVICES, service, strlen(service), &v);
    if (rc == DS_ENOTFOUND)
        return ds_store_fail(ds_txn_store(txn), rc, "service %s has no current release here",
                             service);
    if (rc)
        return rc;
    if (v.len != 16)
        return ds_txn_fail(txn, DS_ECORRUPT, "worker store: service %s record is %zu bytes",
                           service, v.len);
    *cur = ds_store_get_u64(v.data);
    *prev = ds_store_get_u64(v.data + 8);
    return 0;
}

static int s_set_current_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    int rc = s_check_rel(txn, a->service, a->version);
    if (rc)
        return rc;
    uint8_t key[S_KEY_MAX];
    size_t klen = s_rel_key(key, a->service, a->version);
    ds_val_t v;
    rc = ds_txn_get(txn, DS_DB_WK_RELEASES, key, klen, &v);
    if (rc == DS_ENOTFOUND)
        return ds_store_fail(ds_txn_store(txn), rc,
                             "release %s version %" PRIu64 " is not recorded on this worker",
                             a->service, a->version);
    if (rc)
        return rc;
    uint64_t cur = 0, prev = 0;
    rc = s_current_txn(txn, a->service, &cur, &prev);
    if (rc && rc != DS_ENOTFOUND)
        return rc;
    if (cur != a->version) {
        prev = cur;
        cur = a->version;
    }
    uint8_t val[16];
    ds_store_put_u64(val, cur);
    ds_store_put_u64(val + 8, prev);
    return ds_txn_put(txn, DS_DB_WK_SERVICES, a->service, strlen(a->service), val, sizeof val, 0);
}

int ds_workerstore_set_current(ds_workerstore_t *ws, const char *service, uint64_t version)
{
    assert(ws);
    s_rel_t a = {.service = service, .version = version};
    return ds_store_write(ws->store, s_set_current_fn, &a);
}

static int s_current_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    int rc = s_check_name(txn, "service name", a->service, DS_MAX_NAME);
    if (rc)
        return rc;
    return s_current_txn(txn, a->service, a->current, a->previous);
}

int ds_workerstore_current(ds_workerstore_t *ws, const char *service, uint64_t *current,
                           uint64_t *previous)
{
    assert(ws);
    uint64_t c = 0, p = 0;
    s_rel_t a = {.service = service, .current = &c, .previous = &p};
    int rc = ds_store_read(ws->store, s_current_fn, &a);
    if (current)
        *current = rc ? 0 : c;
    if (previous)
        *previous = rc ? 0 : p;
    return rc;
}

/* ---- prune ---- */

typedef struct {
    size_t seen;
    size_t keep;
    uint64_t cur, prev;
    uint64_t *victims;
    size_t n, max;
} s_prune_t;

static int s_prune_collect(void *ctx, const ds_worker_release_t *rel)
{
    s_prune_t *p = ctx;
    p->seen++;
    if (p->seen <= p->keep || rel->version == p->cur || rel->version == p->prev)
        return 0;
    if (p->n == p->max)
        return 1;
    p->victims[p->n++] = rel->version;
    return 0;
}

static int s_prune_fn(ds_txn_t *txn, void *ctx)
{
    s_rel_t *a = ctx;
    *a->n_pruned = 0;
    int rc = s_check_name(txn, "service name", a->service, DS_MAX_NAME);
    if (rc)
        return rc;
    s_prune_t p = {.keep = a->keep, .victims = a->pruned, .max = a->max};
    rc = s_current_txn(txn, a->service, &p.cur, &p.prev);
    if (rc && rc != DS_ENOTFOUND)
        return rc;
    rc = s_each_desc(txn, a->service, s_prune_collect, &p);
    if (rc)
        return rc;
    /* Collected newest first; report oldest first. */
    for (size_t i = 0; i < p.n / 2; i++) {
        uint64_t t = p.victims[i];
        p.victims[i] = p.victims[p.n - 1 - i];
        p.victims[p.n - 1 - i] = t;
    }
    for (size_t i = 0; i < p.n; i++) {
        uint8_t key[S_KEY_MAX];
        size_t klen = s_rel_key(key, a->service, p.victims[i]);
        rc = ds_txn_del(txn, DS_DB_WK_RELEASES, key, klen);
        if (rc)
            return rc;
    }
    *a->n_pruned = p.n;
    return 0;
}

int ds_workerstore_prune(ds_workerstore_t *ws, const char *service, size_t keep, uint64_t *pruned,
                         size_t max, size_t *n_pruned)
{
    assert(ws && n_pruned);
    assert(pruned || max == 0);
    s_rel_t a = {.service = service,
                 .keep = keep ? keep : DS_WORKERSTORE_KEEP,
                 .pruned = pruned,
                 .max = max,
                 .n_pruned = n_pruned};
    return ds_store_write(ws->store, s_prune_fn, &a);
}
