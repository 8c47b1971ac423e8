/*  storage/state.c - state-machine tables and the applied index. */
#include "storage/state.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "protocol/limits.h"

#define S_APPLIED_KEY "applied"
/* Room for the largest key: a token id (DS_MAX_LABEL), name \0 name, or
   name \0 u64. */
#define S_KEY_MAX (DS_MAX_LABEL + 1)
_Static_assert(S_KEY_MAX >= DS_MAX_NAME + 1 + DS_MAX_NAME, "key buffer too small");

static const char *const s_table_names[] = {
    [DS_TABLE_SERVICES] = "services",
    [DS_TABLE_RELEASES] = "releases",
    [DS_TABLE_DEPLOYMENTS] = "deployments",
    [DS_TABLE_WORKERS] = "workers",
    [DS_TABLE_ASSIGNMENTS] = "assignments",
    [DS_TABLE_HISTORY] = "history",
    [DS_TABLE_TOKENS] = "tokens",
    [DS_TABLE_SESSIONS] = "sessions",
    [DS_TABLE_KV] = "kv",
};

ds_db_t ds_state_table_db(ds_state_table_t table)
{
    switch (table) {
    case DS_TABLE_SERVICES:
        return DS_DB_SERVICES;
    case DS_TABLE_RELEASES:
        return DS_DB_RELEASES;
    case DS_TABLE_DEPLOYMENTS:
        return DS_DB_DEPLOYMENTS;
    case DS_TABLE_WORKERS:
        return DS_DB_WORKERS;
    case DS_TABLE_ASSIGNMENTS:
        return DS_DB_ASSIGNMENTS;
    case DS_TABLE_HISTORY:
        return DS_DB_HISTORY;
    case DS_TABLE_TOKENS:
        return DS_DB_TOKENS;
    case DS_TABLE_SESSIONS:
        return DS_DB_SESSIONS;
    case DS_TABLE_KV:
        return DS_DB_KV;
    }
    assert(!"unknown state table");
    return DS_DB_SERVICES;
}

static bool s_name_keyed(ds_state_table_t t)
{
    return t == DS_TABLE_SERVICES || t == DS_TABLE_DEPLOYMENTS || t == DS_TABLE_WORKERS ||
           t == DS_TABLE_TOKENS || t == DS_TABLE_SESSIONS || t == DS_TABLE_KV;
}

static size_t s_max_name(ds_state_table_t t)
{
    return t == DS_TABLE_TOKENS || t == DS_TABLE_SESSIONS || t == DS_TABLE_KV ? DS_MAX_LABEL
                                                                              : DS_MAX_NAME;
}

/* A name part: 1..max bytes, no NUL. */
static bool s_name_bytes_ok(const uint8_t *p, size_t len, size_t max)
{
    return len >= 1 && len <= max && memchr(p, '\0', len) == NULL;
}

bool ds_state_key_valid(ds_state_table_t table, const uint8_t *key, size_t klen)
{
    if (!key)
        return false;
    switch (table) {
    case DS_TABLE_SERVICES:
    case DS_TABLE_DEPLOYMENTS:
    case DS_TABLE_WORKERS:
    case DS_TABLE_TOKENS:
    case DS_TABLE_SESSIONS:
    case DS_TABLE_KV:
        return s_name_bytes_ok(key, klen, s_max_name(table));
    case DS_TABLE_RELEASES:
    case DS_TABLE_HISTORY: {
        if (klen < 10)
            return false;
        size_t nlen = klen - 9;
        return key[nlen] == '\0' && s_name_bytes_ok(key, nlen, DS_MAX_NAME) &&
               ds_store_get_u64(key + nlen + 1) != 0;
    }
    case DS_TABLE_ASSIGNMENTS: {
        const uint8_t *nul = memchr(key, '\0', klen);
        if (!nul)
            return false;
        size_t a = (size_t)(nul - key);
        return s_name_bytes_ok(key, a, DS_MAX_NAME) &&
               s_name_bytes_ok(nul + 1, klen - a - 1, DS_MAX_NAME);
    }
    }
    return false;
}

static int s_check_name(ds_txn_t *txn, const char *what, const char *name, size_t max)
{
    size_t len = name ? strnlen(name, max + 1) : 0;
    if (len == 0 || len > max)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "%s name must be 1..%zu bytes", what,
                             max);
    return 0;
}

static int s_check_val(ds_txn_t *txn, const void *val, size_t len)
{
    if (len > DS_MAX_ENTRY_SIZE)
        return ds_store_fail(ds_txn_store(txn), DS_ETOOBIG,
                             "state value of %zu bytes exceeds DS_MAX_ENTRY_SIZE (%u)", len,
                             DS_MAX_ENTRY_SIZE);
    if (len && !val)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "state value is NULL");
    return 0;
}

/* Builds name \0 u64be into key; returns its length. */
static size_t s_key_num(uint8_t key[S_KEY_MAX], const char *name, uint64_t num)
{
    size_t n = strlen(name);
    memcpy(key, name, n);
    key[n] = '\0';
    ds_store_put_u64(key + n + 1, num);
    return n + 9;
}

/* Builds a \0 b into key; returns its length. */
static size_t s_key_pair(uint8_t key[S_KEY_MAX], const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    memcpy(key, a, na);
    key[na] = '\0';
    memcpy(key + na + 1, b, nb);
    return na + 1 + nb;
}

/* Decodes a stored key into a row's strings; bufs hold the copies. */
static int s_row_from_key(ds_txn_t *txn, ds_state_table_t table, const ds_val_t *k,
                          ds_state_row_t *row, char name[S_KEY_MAX + 1], char name2[S_KEY_MAX + 1])
{
    if (!ds_state_key_valid(table, k->data, k->len))
        return ds_txn_fail(txn, DS_ECORRUPT, "state table %s: malformed key of %zu bytes",
                           s_table_names[table], k->len);
    memset(row, 0, sizeof *row);
    row->table = table;
    row->name = name;
    switch (table) {
    case DS_TABLE_RELEASES:
    case DS_TABLE_HISTORY:
        memcpy(name, k->data, k->len - 9 + 1); /* includes the \0 */
        row->num = ds_store_get_u64(k->data + k->len - 8);
        break;
    case DS_TABLE_ASSIGNMENTS: {
        size_t a = strlen((const char *)k->data); /* valid key: NUL inside */
        memcpy(name, k->data, a + 1);
        memcpy(name2, k->data + a + 1, k->len - a - 1);
        name2[k->len - a - 1] = '\0';
        row->name2 = name2;
        break;
    }
    default:
        memcpy(name, k->data, k->len);
        name[k->len] = '\0';
        break;
    }
    return 0;
}

/* ---- applied index ---- */

int ds_state_applied_txn(ds_txn_t *txn, uint64_t *index)
{
    assert(txn && index);
    ds_val_t v;
    int rc = ds_txn_get(txn, DS_DB_STATE_META, S_APPLIED_KEY, strlen(S_APPLIED_KEY), &v);
    if (rc == DS_ENOTFOUND) {
        *index = 0;
        return 0;
    }
    if (rc)
        return rc;
    if (v.len != 8)
        return ds_txn_fail(txn, DS_ECORRUPT, "applied index: %zu bytes stored (want 8)", v.len);
    *index = ds_store_get_u64(v.data);
    return 0;
}

int ds_state_set_applied_txn(ds_txn_t *txn, uint64_t index)
{
    assert(txn);
    uint8_t buf[8];
    ds_store_put_u64(buf, index);
    return ds_txn_put(txn, DS_DB_STATE_META, S_APPLIED_KEY, strlen(S_APPLIED_KEY), buf, 8, 0);
}

static bool s_fatal(int rc)
{
    return rc == DS_ENOMEM || rc == DS_EIO || rc == DS_ECORRUPT || rc == DS_ESTORE_FULL;
}

int ds_state_apply_txn(ds_txn_t *txn, uint64_t index, unsigned flags, ds_store_write_fn fn,
                       void *ctx, int *result)
{
    assert(txn);
    if (result)
        *result = 0;
    uint64_t applied;
    int rc = ds_state_applied_txn(txn, &applied);
    if (rc)
        return rc;
    if (index <= applied)
        return ds_store_fail(ds_txn_store(txn), DS_ESTATE,
                             "apply: entry %" PRIu64 " is already applied (applied index %" PRIu64
                             ")",
                             index, applied);
    if (index != applied + 1 && !(flags & DS_STATE_APPLY_AFTER_SNAPSHOT))
        return ds_store_fail(ds_txn_store(txn), DS_ESTATE,
                             "apply: entry %" PRIu64
                             " would skip entries after applied index %" PRIu64,
                             index, applied);
    if (fn && (flags & DS_STATE_APPLY_IN_PLACE)) {
        int frc = fn(txn, ctx);
        if (frc != 0 || ds_txn_failed(txn))
            return frc ? frc : DS_EIO;
    } else if (fn) {
        int frc = ds_txn_nested(txn, fn, ctx);
        if (ds_txn_failed(txn) || s_fatal(frc))
            return frc ? frc : DS_EIO;
        if (result)
            *result = frc;
    }
    return ds_state_set_applied_txn(txn, index);
}

typedef struct {
    uint64_t index;
    unsigned flags;
    ds_store_write_fn fn;
    void *ctx;
    int *result;
    uint64_t *out;
} s_apply_t;

static int s_apply_fn(ds_txn_t *txn, void *ctx)
{
    s_apply_t *a = ctx;
    return ds_state_apply_txn(txn, a->index, a->flags, a->fn, a->ctx, a->result);
}

int ds_state_apply(ds_store_t *s, uint64_t index, unsigned flags, ds_store_write_fn fn, void *ctx,
                   int *result)
{
    s_apply_t a = {.index = index, .flags = flags, .fn = fn, .ctx = ctx, .result = result};
    return ds_store_write(s, s_apply_fn, &a);
}

static int s_applied_fn(ds_txn_t *txn, void *ctx)
{
    s_apply_t *a = ctx;
    return ds_state_applied_txn(txn, a->out);
}

int ds_state_applied(ds_store_t *s, uint64_t *index)
{
    s_apply_t a = {.out = index};
    return ds_store_read(s, s_applied_fn, &a);
}

/* ---- scanning ---- */

/* Calls fn for every row whose key starts with prefix (plen 0 = all),
   ascending or descending, at most limit rows (0 = all). */
static int s_scan(ds_txn_t *txn, ds_state_table_t table, const uint8_t *prefix, size_t plen,
                  bool desc, size_t limit, ds_state_row_fn fn, void *ctx)
{
    ds_db_t db = ds_state_table_db(table);
    ds_cursor_t *c = NULL;
    int rc = ds_cursor_open(txn, db, &c);
    if (rc)
        return rc;
    ds_val_t k, v;
    if (!desc) {
        rc = plen ? ds_cursor_get(c, DS_CURSOR_SEEK, prefix, plen, &k, &v)
                  : ds_cursor_get(c, DS_CURSOR_FIRST, NULL, 0, &k, &v);
    } else if (!plen) {
        rc = ds_cursor_get(c, DS_CURSOR_LAST, NULL, 0, &k, &v);
    } else {
        /* Position on the last key with the prefix: seek just past the
           prefix range (prefix followed by 0xff bytes) and step back. */
        uint8_t past[S_KEY_MAX + 9];
        assert(plen + 9 <= sizeof past);
        memcpy(past, prefix, plen);
        memset(past + plen, 0xff, 9);
        rc = ds_cursor_get(c, DS_CURSOR_SEEK, past, plen + 9, &k, &v);
        if (rc == 0)
            rc = ds_cursor_get(c, DS_CURSOR_PREV, NULL, 0, &k, &v);
        else if (rc == DS_ENOTFOUND)
            rc = ds_cursor_get(c, DS_CURSOR_LAST, NULL, 0, &k, &v);
    }
    size_t count = 0;
    char name[S_KEY_MAX + 1], name2[S_KEY_MAX + 1];
    while (rc == 0) {
        if (plen && (k.len < plen || memcmp(k.data, prefix, plen) != 0))
            break;
        ds_state_row_t row;
        rc = s_row_from_key(txn, table, &k, &row, name, name2);
        if (rc)
            break;
        row.val = v.data;
        row.len = v.len;
        rc = fn(ctx, &row);
        if (rc > 0) {
            rc = 0;
            break;
        }
        if (rc < 0)
            break;
        if (limit && ++count >= limit)
            break;
        rc = ds_cursor_get(c, desc ? DS_CURSOR_PREV : DS_CURSOR_NEXT, NULL, 0, &k, &v);
    }
    ds_cursor_destroy(&c);
    return rc == DS_ENOTFOUND ? 0 : rc;
}

/* ---- name-keyed tables ---- */

int ds_state_put(ds_txn_t *txn, ds_state_table_t table, const char *name, const void *val,
                 size_t len)
{
    assert(txn && s_name_keyed(table));
    int rc = s_check_name(txn, s_table_names[table], name, s_max_name(table));
    if (!rc)
        rc = s_check_val(txn, val, len);
    if (rc)
        return rc;
    return ds_txn_put(txn, ds_state_table_db(table), name, strlen(name), val, len, 0);
}

int ds_state_get(ds_txn_t *txn, ds_state_table_t table, const char *name, ds_val_t *out)
{
    assert(txn && out && s_name_keyed(table));
    int rc = s_check_name(txn, s_table_names[table], name, s_max_name(table));
    if (rc)
        return rc;
    return ds_txn_get(txn, ds_state_table_db(table), name, strlen(name), out);
}

int ds_state_del(ds_txn_t *txn, ds_state_table_t table, const char *name)
{
    assert(txn && s_name_keyed(table));
    int rc = s_check_name(txn, s_table_names[table], name, s_max_name(table));
    if (rc)
        return rc;
    return ds_txn_del(txn, ds_state_table_db(table), name, strlen(name));
}

int ds_state_list(ds_txn_t *txn, ds_state_table_t table, ds_state_row_fn fn, void *ctx)
{
    assert(txn && fn && s_name_keyed(table));
    return s_scan(txn, table, NULL, 0, false, 0, fn, ctx);
}

/* ---- releases ---- */

int ds_state_release_put(ds_txn_t *txn, const char *service, uint64_t version, const void *val,
                         size_t len)
{
    assert(txn);
    int rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    if (!rc)
        rc = s_check_val(txn, val, len);
    if (rc)
        return rc;
    if (version == 0)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "release version must be >= 1");
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_num(key, service, version);
    ds_val_t old;
    rc = ds_txn_get(txn, DS_DB_RELEASES, key, klen, &old);
    if (rc == 0) {
        if (old.len == len && (len == 0 || memcmp(old.data, val, len) == 0))
            return 0;
        return ds_store_fail(ds_txn_store(txn), DS_EEXIST,
                             "release %s version %" PRIu64
                             " already exists with different contents (releases are immutable: "
                             "use a new version)",
                             service, version);
    }
    if (rc != DS_ENOTFOUND)
        return rc;
    return ds_txn_put(txn, DS_DB_RELEASES, key, klen, val, len, DS_PUT_NOOVERWRITE);
}

int ds_state_release_get(ds_txn_t *txn, const char *service, uint64_t version, ds_val_t *out)
{
    assert(txn && out);
    int rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    if (rc)
        return rc;
    if (version == 0)
        return ds_store_fail(ds_txn_store(txn), DS_EINVAL, "release version must be >= 1");
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_num(key, service, version);
    return ds_txn_get(txn, DS_DB_RELEASES, key, klen, out);
}

static int s_first_num(void *ctx, const ds_state_row_t *row)
{
    *(uint64_t *)ctx = row->num;
    return 1;
}

/* Highest number under service \0 in a (name, u64) table, 0 if none. */
static int s_latest_num(ds_txn_t *txn, ds_state_table_t table, const char *service, uint64_t *num)
{
    uint8_t prefix[S_KEY_MAX];
    size_t n = strlen(service);
    memcpy(prefix, service, n);
    prefix[n] = '\0';
    *num = 0;
    return s_scan(txn, table, prefix, n + 1, true, 1, s_first_num, num);
}

int ds_state_release_latest(ds_txn_t *txn, const char *service, uint64_t *version)
{
    assert(txn && version);
    int rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    if (!rc)
        rc = s_latest_num(txn, DS_TABLE_RELEASES, service, version);
    if (!rc && *version == 0)
        rc = ds_store_fail(ds_txn_store(txn), DS_ENOTFOUND, "service %s has no release", service);
    return rc;
}

/*  Lists the rows of a per-service table (releases, history) newest first. */
static int s_list_service(ds_txn_t *txn, ds_state_table_t table, const char *service, size_t limit,
                          ds_state_row_fn fn, void *ctx)
{
    assert(txn && fn);
    int rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    if (rc)
        return rc;
    uint8_t prefix[S_KEY_MAX];
    size_t n = strlen(service);
    memcpy(prefix, service, n);
    prefix[n] = '\0';
    return s_scan(txn, table, prefix, n + 1, true, limit, fn, ctx);
}

int ds_state_releases_list(ds_txn_t *txn, const char *service, size_t limit, ds_state_row_fn fn,
                           void *ctx)
{
    return s_list_service(txn, DS_TABLE_RELEASES, service, limit, fn, ctx);
}

/* ---- assignments ---- */

static int s_check_pair(ds_txn_t *txn, const char *worker, const char *service)
{
    int rc = s_check_name(txn, "worker", worker, DS_MAX_NAME);
    if (!rc)
        rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    return rc;
}

int ds_state_assignment_put(ds_txn_t *txn, const char *worker, const char *service, const void *val,
                            size_t len)
{
    assert(txn);
    int rc = s_check_pair(txn, worker, service);
    if (!rc)
        rc = s_check_val(txn, val, len);
    if (rc)
        return rc;
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_pair(key, worker, service);
    return ds_txn_put(txn, DS_DB_ASSIGNMENTS, key, klen, val, len, 0);
}

int ds_state_assignment_get(ds_txn_t *txn, const char *worker, const char *service, ds_val_t *out)
{
    assert(txn && out);
    int rc = s_check_pair(txn, worker, service);
    if (rc)
        return rc;
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_pair(key, worker, service);
    return ds_txn_get(txn, DS_DB_ASSIGNMENTS, key, klen, out);
}

int ds_state_assignment_del(ds_txn_t *txn, const char *worker, const char *service)
{
    assert(txn);
    int rc = s_check_pair(txn, worker, service);
    if (rc)
        return rc;
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_pair(key, worker, service);
    return ds_txn_del(txn, DS_DB_ASSIGNMENTS, key, klen);
}

int ds_state_assignments_list(ds_txn_t *txn, const char *worker, ds_state_row_fn fn, void *ctx)
{
    assert(txn && fn);
    if (!worker)
        return s_scan(txn, DS_TABLE_ASSIGNMENTS, NULL, 0, false, 0, fn, ctx);
    int rc = s_check_name(txn, "worker", worker, DS_MAX_NAME);
    if (rc)
        return rc;
    uint8_t prefix[S_KEY_MAX];
    size_t n = strlen(worker);
    memcpy(prefix, worker, n);
    prefix[n] = '\0';
    return s_scan(txn, DS_TABLE_ASSIGNMENTS, prefix, n + 1, false, 0, fn, ctx);
}

/* ---- history ---- */

int ds_state_history_append(ds_txn_t *txn, const char *service, const void *val, size_t len,
                            uint64_t *seq)
{
    assert(txn);
    int rc = s_check_name(txn, "service", service, DS_MAX_NAME);
    if (!rc)
        rc = s_check_val(txn, val, len);
    uint64_t last = 0;
    if (!rc)
        rc = s_latest_num(txn, DS_TABLE_HISTORY, service, &last);
    if (rc)
        return rc;
    if (last == UINT64_MAX)
        return ds_txn_fail(txn, DS_ECORRUPT, "history of %s: sequence number at its maximum",
                           service);
    uint8_t key[S_KEY_MAX];
    size_t klen = s_key_num(key, service, last + 1);
    rc = ds_txn_put(txn, DS_DB_HISTORY, key, klen, val, len, DS_PUT_NOOVERWRITE);
    if (!rc && seq)
        *seq = last + 1;
    return rc;
}

int ds_state_history_list(ds_txn_t *txn, const char *service, size_t limit, ds_state_row_fn fn,
                          void *ctx)
{
    return s_list_service(txn, DS_TABLE_HISTORY, service, limit, fn, ctx);
}
