/*  storage/state_image.c - state tables to and from snapshot images. */
#include "storage/state_image.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/limits.h"
#include "storage/crc32.h"

#define S_MAGIC   "DSSI"
#define S_REC_HDR 7u /* table u8, klen u16, vlen u32 */

uint32_t ds_state_image_crc32(const uint8_t *p, size_t n)
{
    return ds_crc32(0, p, n);
}

static uint32_t s_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#define s_err ds_errf

/* Orders (table, key) like LMDB: memcmp, then shorter first. */
static int s_cmp(uint8_t ta, const uint8_t *ka, size_t la, uint8_t tb, const uint8_t *kb, size_t lb)
{
    if (ta != tb)
        return ta < tb ? -1 : 1;
    size_t n = la < lb ? la : lb;
    int c = memcmp(ka, kb, n);
    if (c)
        return c;
    return la < lb ? -1 : la > lb ? 1 : 0;
}

/* One pass over the records; fn NULL = validate only. */
static int s_walk(const uint8_t *buf, size_t end, uint64_t *count, ds_state_image_fn fn, void *ctx,
                  char *errbuf, size_t errlen)
{
    size_t off = DS_STATE_IMAGE_HEADER;
    uint64_t n = 0;
    uint8_t prev_t = 0;
    const uint8_t *prev_k = NULL;
    size_t prev_l = 0;
    while (off < end) {
        uint8_t t = buf[off];
        if (t == 0)
            break; /* trailer */
        if (end - off < S_REC_HDR)
            return s_err(errbuf, errlen, DS_ETRUNCATED,
                         "state image: record header at offset %zu is cut off", off);
        if (t < DS_STATE_TABLE_MIN || t > DS_STATE_TABLE_MAX)
            return s_err(errbuf, errlen, DS_EUNKNOWN, "state image: unknown table %u at offset %zu",
                         t, off);
        size_t klen = (size_t)buf[off + 1] << 8 | buf[off + 2];
        size_t vlen = s_get_u32(buf + off + 3);
        off += S_REC_HDR;
        if (klen == 0 || klen > DS_STORE_MAX_KEY || vlen > DS_MAX_ENTRY_SIZE)
            return s_err(errbuf, errlen, DS_ETOOBIG,
                         "state image: record %" PRIu64 " has key %zu / value %zu bytes "
                         "(limits 1..%u / %u)",
                         n, klen, vlen, DS_STORE_MAX_KEY, DS_MAX_ENTRY_SIZE);
        if (klen > end - off || vlen > end - off - klen)
            return s_err(errbuf, errlen, DS_ETRUNCATED,
                         "state image: record %" PRIu64 " runs past the end of the image", n);
        const uint8_t *key = buf + off;
        const uint8_t *val = buf + off + klen;
        if (!ds_state_key_valid((ds_state_table_t)t, key, klen))
            return s_err(errbuf, errlen, DS_ECORRUPT,
                         "state image: record %" PRIu64 " has a malformed key for table %u", n, t);
        if (prev_k && s_cmp(prev_t, prev_k, prev_l, t, key, klen) >= 0)
            return s_err(errbuf, errlen, DS_ECORRUPT,
                         "state image: record %" PRIu64 " is out of order or duplicated", n);
        if (fn) {
            int rc = fn(ctx, (ds_state_table_t)t, key, klen, val, vlen);
            if (rc)
                return rc;
        }
        prev_t = t;
        prev_k = key;
        prev_l = klen;
        off += klen + vlen;
        n++;
    }
    if (off != end)
        return s_err(errbuf, errlen, DS_ECORRUPT,
                     "state image: trailer not where the checksum says (offset %zu)", off);
    *count = n;
    return 0;
}

int ds_state_image_parse(const uint8_t *buf, size_t len, ds_state_image_info_t *info,
                         ds_state_image_fn fn, void *ctx, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (!buf || len < DS_STATE_IMAGE_HEADER + DS_STATE_IMAGE_TRAILER)
        return s_err(errbuf, errlen, DS_ETRUNCATED,
                     "state image: %zu bytes is shorter than header and trailer", len);
    if (memcmp(buf, S_MAGIC, 4) != 0)
        return s_err(errbuf, errlen, DS_ECORRUPT, "state image: bad magic (not a state image)");
    if (buf[4] != DS_STATE_IMAGE_VERSION)
        return s_err(errbuf, errlen, DS_EVERSION,
                     "state image: version %u (this build reads version %u)", buf[4],
                     DS_STATE_IMAGE_VERSION);
    if (buf[5] || buf[6] || buf[7])
        return s_err(errbuf, errlen, DS_ECORRUPT, "state image: reserved header bytes not zero");
    const uint8_t *tr = buf + len - DS_STATE_IMAGE_TRAILER;
    uint32_t want = s_get_u32(tr + 9);
    uint32_t got = ds_state_image_crc32(buf, len - 4);
    if (tr[0] != 0 || want != got)
        return s_err(errbuf, errlen, DS_ECORRUPT,
                     "state image: checksum mismatch (stored %08x, computed %08x) or missing "
                     "trailer",
                     want, got);
    uint64_t declared = ds_store_get_u64(tr + 1);
    size_t end = len - DS_STATE_IMAGE_TRAILER;
    uint64_t count = 0;
    int rc = s_walk(buf, end, &count, NULL, NULL, errbuf, errlen);
    if (rc)
        return rc;
    if (count != declared)
        return s_err(errbuf, errlen, DS_ECORRUPT,
                     "state image: %" PRIu64 " records, trailer says %" PRIu64, count, declared);
    if (fn) {
        rc = s_walk(buf, end, &count, fn, ctx, errbuf, errlen);
        if (rc)
            return rc;
    }
    if (info) {
        info->applied = ds_store_get_u64(buf + 8);
        info->n_records = count;
    }
    return 0;
}

/* ---- export ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap;
    uint64_t n;
} s_out_t;

static int s_reserve(s_out_t *o, size_t more)
{
    if (o->cap - o->len >= more)
        return 0;
    size_t cap = o->cap ? o->cap : 4096;
    while (cap - o->len < more) {
        if (cap > SIZE_MAX / 2)
            return DS_ENOMEM;
        cap *= 2;
    }
    uint8_t *nb = realloc(o->buf, cap);
    if (!nb)
        return DS_ENOMEM;
    o->buf = nb;
    o->cap = cap;
    return 0;
}

int ds_state_export_txn(ds_txn_t *txn, uint8_t **out, size_t *out_len)
{
    assert(txn && out && out_len);
    *out = NULL;
    *out_len = 0;
    s_out_t o = {0};
    ds_cursor_t *c = NULL;
    uint64_t applied;
    int rc = ds_state_applied_txn(txn, &applied);
    if (rc)
        return rc;
    if (s_reserve(&o, DS_STATE_IMAGE_HEADER)) {
        rc = ds_txn_fail(txn, DS_ENOMEM, "state export: out of memory");
        goto exit;
    }
    memcpy(o.buf, S_MAGIC, 4);
    o.buf[4] = DS_STATE_IMAGE_VERSION;
    o.buf[5] = o.buf[6] = o.buf[7] = 0;
    ds_store_put_u64(o.buf + 8, applied);
    o.len = DS_STATE_IMAGE_HEADER;
    for (int t = DS_STATE_TABLE_MIN; t <= DS_STATE_TABLE_MAX; t++) {
        rc = ds_cursor_open(txn, ds_state_table_db((ds_state_table_t)t), &c);
        if (rc)
            goto exit;
        ds_val_t k, v;
        rc = ds_cursor_get(c, DS_CURSOR_FIRST, NULL, 0, &k, &v);
        while (rc == 0) {
            if (!ds_state_key_valid((ds_state_table_t)t, k.data, k.len) ||
                v.len > DS_MAX_ENTRY_SIZE) {
                rc =
                    ds_txn_fail(txn, DS_ECORRUPT,
                                "state export: table %d has a malformed key or oversized value", t);
                goto exit;
            }
            if (s_reserve(&o, S_REC_HDR + k.len + v.len)) {
                rc = ds_txn_fail(txn, DS_ENOMEM, "state export: out of memory");
                goto exit;
            }
            uint8_t *p = o.buf + o.len;
            p[0] = (uint8_t)t;
            p[1] = (uint8_t)(k.len >> 8);
            p[2] = (uint8_t)k.len;
            s_put_u32(p + 3, (uint32_t)v.len);
            memcpy(p + S_REC_HDR, k.data, k.len);
            if (v.len)
                memcpy(p + S_REC_HDR + k.len, v.data, v.len);
            o.len += S_REC_HDR + k.len + v.len;
            o.n++;
            rc = ds_cursor_get(c, DS_CURSOR_NEXT, NULL, 0, &k, &v);
        }
        if (rc != DS_ENOTFOUND)
            goto exit;
        rc = 0;
        ds_cursor_destroy(&c);
    }
    if (s_reserve(&o, DS_STATE_IMAGE_TRAILER)) {
        rc = ds_txn_fail(txn, DS_ENOMEM, "state export: out of memory");
        goto exit;
    }
    o.buf[o.len] = 0;
    ds_store_put_u64(o.buf + o.len + 1, o.n);
    s_put_u32(o.buf + o.len + 9, ds_state_image_crc32(o.buf, o.len + 9));
    o.len += DS_STATE_IMAGE_TRAILER;
    *out = o.buf;
    *out_len = o.len;
    o.buf = NULL;
exit:
    ds_cursor_destroy(&c);
    free(o.buf);
    return rc;
}

typedef struct {
    const uint8_t *buf;
    size_t len;
    uint8_t **out;
    size_t *out_len;
} s_io_t;

static int s_export_fn(ds_txn_t *txn, void *ctx)
{
    s_io_t *io = ctx;
    return ds_state_export_txn(txn, io->out, io->out_len);
}

int ds_state_export(ds_store_t *s, uint8_t **out, size_t *out_len)
{
    s_io_t io = {.out = out, .out_len = out_len};
    return ds_store_read(s, s_export_fn, &io);
}

int ds_state_export_detached(ds_store_t *s, uint8_t **out, size_t *out_len, uint64_t *applied,
                             char *err, size_t errlen)
{
    s_io_t io = {.out = out, .out_len = out_len};
    int rc = ds_store_read_detached(s, s_export_fn, &io, err, errlen);
    *applied = rc == 0 ? ds_store_get_u64(*out + 8) : 0; /* the header's applied index */
    return rc;
}

/* ---- import ---- */

static int s_import_row(void *ctx, ds_state_table_t table, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen)
{
    return ds_txn_put(ctx, ds_state_table_db(table), key, klen, val, vlen, DS_PUT_APPEND);
}

int ds_state_import_txn(ds_txn_t *txn, const uint8_t *buf, size_t len)
{
    assert(txn);
    ds_store_t *s = ds_txn_store(txn);
    char msg[DS_STORE_ERRMSG_SIZE];
    ds_state_image_info_t info;
    int rc = ds_state_image_parse(buf, len, &info, NULL, NULL, msg, sizeof msg);
    if (rc)
        return ds_store_fail(s, rc, "%s", msg);
    for (int t = DS_STATE_TABLE_MIN; t <= DS_STATE_TABLE_MAX; t++) {
        rc = ds_txn_clear(txn, ds_state_table_db((ds_state_table_t)t));
        if (rc)
            return rc;
    }
    rc = ds_state_image_parse(buf, len, &info, s_import_row, txn, msg, sizeof msg);
    if (rc)
        return rc;
    return ds_state_set_applied_txn(txn, info.applied);
}

static int s_import_fn(ds_txn_t *txn, void *ctx)
{
    s_io_t *io = ctx;
    return ds_state_import_txn(txn, io->buf, io->len);
}

int ds_state_import(ds_store_t *s, const uint8_t *buf, size_t len)
{
    s_io_t io = {.buf = buf, .len = len};
    return ds_store_write(s, s_import_fn, &io);
}
