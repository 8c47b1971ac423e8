/*  coordinator/token_state.c - join tokens: records, the SHA-256 of their
    secrets, and the checks a join goes through. */
#include "coordinator/token_state.h"

#include "protocol/buf.h"
#include "protocol/error.h"
#include "protocol/limits.h"
#include "storage/state.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const ds_field_t s_record_fields[] = {
    DS_F_STR(ds_token_record_t, id, DS_MAX_NAME),
    DS_F_STR(ds_token_record_t, hash, DS_TOKEN_HASH_LEN),
    DS_F_U64(ds_token_record_t, created_at_ms),
    DS_F_U64(ds_token_record_t, expires_at_ms),
    DS_F_U32(ds_token_record_t, uses, 0),
    DS_F_U32(ds_token_record_t, used, 0),
    DS_F_BOOL(ds_token_record_t, revoked),
    DS_F_STR(ds_token_record_t, created_by, DS_MAX_NAME),
    DS_F_KVS(ds_token_record_t, labels, n_labels, DS_MAX_LABELS),
};
const ds_desc_t ds_token_record_desc = DS_DESC(ds_token_record_t, "token", s_record_fields);

static const ds_field_t s_cmd_fields[] = {
    DS_F_STR(ds_token_cmd_t, id, DS_MAX_NAME),
    DS_F_STR(ds_token_cmd_t, hash, DS_TOKEN_HASH_LEN),
    DS_F_U64(ds_token_cmd_t, ttl_ms),
    DS_F_U32(ds_token_cmd_t, uses, 0),
    DS_F_KVS(ds_token_cmd_t, labels, n_labels, DS_MAX_LABELS),
};
const ds_desc_t ds_token_cmd_desc = DS_DESC(ds_token_cmd_t, "token_cmd", s_cmd_fields);

/* ---- SHA-256 (FIPS 180-4) ------------------------------------------- */

static const uint32_t s_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t s_ror(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static void s_block(uint32_t h[8], const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = s_ror(w[i - 15], 7) ^ s_ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = s_ror(w[i - 2], 17) ^ s_ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 =
            k + (s_ror(e, 6) ^ s_ror(e, 11) ^ s_ror(e, 25)) + ((e & f) ^ (~e & g)) + s_k[i] + w[i];
        uint32_t t2 = (s_ror(a, 2) ^ s_ror(a, 13) ^ s_ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void ds_token_sha256_hex(const void *data, size_t len, char hex[DS_TOKEN_HASH_LEN + 1])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const uint8_t *p = data;
    size_t left = len;
    for (; left >= 64; left -= 64, p += 64)
        s_block(h, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t n = left < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    s_block(h, tail);
    if (n == 128)
        s_block(h, tail + 64);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

/* ---- checks ------------------------------------------------------------ */

bool ds_token_id_ok(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > DS_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)id[i]) && id[i] != '_' && id[i] != '-')
            return false;
    return true;
}

static bool s_hash_ok(const char *hash)
{
    if (!hash || strlen(hash) != DS_TOKEN_HASH_LEN)
        return false;
    for (const char *p = hash; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

static bool s_labels_ok(const ds_kv_t *labels, uint32_t n)
{
    static const char keychars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "0123456789._/-";
    if (n > DS_MAX_LABELS || (n && !labels))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k = labels[i].key ? labels[i].key : "";
        const char *v = labels[i].value ? labels[i].value : "";
        if (!k[0] || strlen(k) > DS_MAX_NAME || strspn(k, keychars) != strlen(k) ||
            strlen(v) > DS_MAX_LABEL)
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(k, labels[j].key) == 0)
                return false;
    }
    return true;
}

int ds_token_parse(const char *token, char *id, size_t idlen, char hash[DS_TOKEN_HASH_LEN + 1])
{
    const char *dot = token ? strchr(token, '.') : NULL;
    if (!dot)
        return DS_EINVAL;
    size_t ilen = (size_t)(dot - token), slen = strlen(dot + 1);
    if (ilen == 0 || ilen > DS_MAX_NAME || ilen >= idlen || slen < DS_TOKEN_SECRET_MIN ||
        slen > DS_MAX_NAME)
        return DS_EINVAL;
    memcpy(id, token, ilen);
    id[ilen] = '\0';
    if (!ds_token_id_ok(id))
        return DS_EINVAL;
    ds_token_sha256_hex(dot + 1, slen, hash);
    return 0;
}

/* ---- records ----------------------------------------------------------- */

static int s_load(ds_txn_t *txn, const char *id, ds_arena_t *arena, ds_token_record_t *out)
{
    ds_val_t v;
    int rc = ds_state_get(txn, DS_TABLE_TOKENS, id, &v);
    if (rc != 0)
        return rc;
    rc = ds_codec_decode(&ds_token_record_desc, v.data, v.len, out, arena, NULL);
    if (rc == DS_ENOMEM)
        return rc;
    return rc == 0 ? 0 : ds_txn_fail(txn, DS_ECORRUPT, "token %s is unreadable", id);
}

static int s_store(ds_txn_t *txn, const ds_token_record_t *t)
{
    ds_buf_t buf = {0};
    int rc = ds_codec_encode(&ds_token_record_desc, t, &buf, NULL);
    if (rc == 0)
        rc = ds_state_put(txn, DS_TABLE_TOKENS, t->id, buf.data, buf.len);
    ds_buf_free(&buf);
    return rc;
}

static ds_arena_t *s_arena(void)
{
    return ds_arena_new(ds_codec_arena_cap(64u * 1024, sizeof(ds_token_record_t)));
}

int ds_token_state_create(ds_txn_t *txn, const ds_command_t *cmd, const ds_token_cmd_t *body)
{
    assert(txn && cmd && body);
    if (!ds_token_id_ok(body->id) || !s_hash_ok(body->hash) ||
        !s_labels_ok(body->labels, body->n_labels) || body->ttl_ms > DS_MAX_DURATION_MS * 52)
        return DS_EINVAL;
    ds_val_t v;
    int rc = ds_state_get(txn, DS_TABLE_TOKENS, body->id, &v);
    if (rc == 0)
        return DS_EEXIST;
    if (rc != DS_ENOTFOUND)
        return rc;
    ds_token_record_t t = {
        .id = body->id,
        .hash = body->hash,
        .created_at_ms = cmd->ts_ms,
        .expires_at_ms = body->ttl_ms ? cmd->ts_ms + body->ttl_ms : 0,
        .uses = body->uses,
        .used = 0,
        .revoked = false,
        .created_by = cmd->client ? cmd->client : "",
        .n_labels = body->n_labels,
        .labels = body->labels,
    };
    return s_store(txn, &t);
}

int ds_token_state_get(ds_txn_t *txn, const char *id, ds_arena_t *arena, ds_token_record_t *out)
{
    assert(txn && arena && out);
    if (!ds_token_id_ok(id))
        return DS_EINVAL;
    return s_load(txn, id, arena, out);
}

int ds_token_state_revoke(ds_txn_t *txn, const char *id)
{
    assert(txn);
    if (!ds_token_id_ok(id))
        return DS_EINVAL;
    ds_arena_t *arena = s_arena();
    if (!arena)
        return DS_ENOMEM;
    ds_token_record_t t;
    int rc = s_load(txn, id, arena, &t);
    if (rc == 0 && !t.revoked) {
        t.revoked = true;
        rc = s_store(txn, &t);
    }
    ds_arena_destroy(&arena);
    return rc;
}

int ds_token_state_usable(const ds_token_record_t *t, const char *hash, uint64_t now_ms, char *why,
                          size_t whylen)
{
    const char *reason = NULL;
    if (!hash || strcmp(t->hash, hash) != 0)
        reason = "wrong secret";
    else if (t->revoked)
        reason = "revoked";
    else if (t->expires_at_ms && now_ms >= t->expires_at_ms)
        reason = "expired";
    else if (t->uses && t->used >= t->uses)
        reason = "used up";
    if (reason && why)
        snprintf(why, whylen, "%s", reason);
    return reason ? DS_EFORBIDDEN : 0;
}

int ds_token_state_consume(ds_txn_t *txn, const char *id, const char *hash, uint64_t now_ms,
                           ds_arena_t *arena, ds_token_record_t *out)
{
    assert(txn && arena);
    if (!ds_token_id_ok(id))
        return DS_EFORBIDDEN;
    ds_token_record_t t;
    int rc = s_load(txn, id, arena, &t);
    if (rc == DS_ENOTFOUND)
        return DS_EFORBIDDEN;
    if (rc == 0)
        rc = ds_token_state_usable(&t, hash, now_ms, NULL, 0);
    if (rc != 0)
        return rc;
    if (out)
        *out = t;
    t.used++;
    return s_store(txn, &t);
}

typedef struct {
    ds_txn_t *txn;
    ds_token_state_fn fn;
    void *ctx;
} s_list_t;

static int s_list_row(void *ctx, const ds_state_row_t *row)
{
    s_list_t *l = ctx;
    ds_arena_t *arena = ds_arena_new(ds_codec_arena_cap(row->len, sizeof(ds_token_record_t)));
    if (!arena)
        return DS_ENOMEM;
    ds_token_record_t t;
    int rc = ds_codec_decode(&ds_token_record_desc, row->val, row->len, &t, arena, NULL);
    if (rc != 0 && rc != DS_ENOMEM)
        rc = ds_txn_fail(l->txn, DS_ECORRUPT, "token %s is unreadable", row->name);
    if (rc == 0)
        rc = l->fn(l->ctx, &t);
    ds_arena_destroy(&arena);
    return rc;
}

int ds_token_state_list(ds_txn_t *txn, ds_token_state_fn fn, void *ctx)
{
    assert(txn && fn);
    s_list_t l = {txn, fn, ctx};
    return ds_state_list(txn, DS_TABLE_TOKENS, s_list_row, &l);
}
