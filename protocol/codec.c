/*  protocol/codec.c - the table-driven encoder and decoder. */
#include "protocol/codec.h"

#include "protocol/error.h"
#include "protocol/mp.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Limits on the parts of key=value lists. */
#define S_KV_KEY_MAX   DS_MAX_LABEL
#define S_KV_VALUE_MAX DS_MAX_TEXT

/*  State shared by one encode or decode: where we are (for messages),
    the reader or writer, and the arena. */
/*  One step of the path to the value being coded: a field name or an
    array index. Kept as data and formatted only when something fails, so
    the common path costs two stores per field. */
typedef struct {
    const char *name; /* NULL: an array index */
    uint32_t index;
} s_frame_t;

#define S_MAX_FRAMES 48

/*  State shared by one encode or decode: where we are (for messages),
    the reader or writer, and the arena. */
typedef struct {
    s_frame_t path[S_MAX_FRAMES];
    size_t path_len; /* frames in use; may exceed S_MAX_FRAMES (not recorded) */
    ds_codec_err_t *err;
    ds_mp_reader_t r;
    msgpack_packer pk;
    ds_arena_t *arena;
} s_ctx_t;

static void s_path_field(s_ctx_t *c, const char *name)
{
    if (c->path_len < S_MAX_FRAMES)
        c->path[c->path_len] = (s_frame_t){name, 0};
    c->path_len++;
}

static void s_path_index(s_ctx_t *c, uint32_t index)
{
    if (c->path_len < S_MAX_FRAMES)
        c->path[c->path_len] = (s_frame_t){NULL, index};
    c->path_len++;
}

static void s_path_pop(s_ctx_t *c, size_t len)
{
    c->path_len = len;
}

/*  Writes the path ("join.labels[3].key: ") into out; returns its length. */
static size_t s_path_format(const s_ctx_t *c, char *out, size_t cap)
{
    size_t n = 0;
    size_t frames = c->path_len < S_MAX_FRAMES ? c->path_len : S_MAX_FRAMES;
    for (size_t i = 0; i < frames && n < cap; i++) {
        const s_frame_t *f = &c->path[i];
        int w = f->name ? snprintf(out + n, cap - n, "%s%s", i ? "." : "", f->name)
                        : snprintf(out + n, cap - n, "[%u]", f->index);
        if (w < 0)
            break;
        n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
    if (n < cap) {
        int w = snprintf(out + n, cap - n, ": ");
        n += w > 0 && (size_t)w < cap - n ? (size_t)w : 0;
    }
    return n;
}

/*  Records the first failure with the current path and returns its code. */
__attribute__((format(printf, 3, 4))) static int s_fail(s_ctx_t *c, int code, const char *fmt, ...)
{
    if (c->err && c->err->code == 0) {
        c->err->code = code;
        /* The path gets at most 160 bytes, so the message always fits after it. */
        size_t n = s_path_format(c, c->err->text, 160);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err->text + n, sizeof c->err->text - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*  Describes a reader failure in words. */
static int s_read_fail(s_ctx_t *c, int code, const char *what, uint64_t max)
{
    switch (code) {
    case DS_ETRUNCATED:
        return s_fail(c, code, "input ends inside %s", what);
    case DS_ETYPE:
        return s_fail(c, code, "expected %s, found another type", what);
    case DS_ETOOBIG:
        return s_fail(c, code, "%s exceeds the limit of %llu", what, (unsigned long long)max);
    default:
        return s_fail(c, code, "cannot read %s: %s", what, ds_strerror(code));
    }
}

static void *s_member(const void *obj, size_t offset)
{
    return (char *)obj + offset;
}

static uint32_t s_count(const void *obj, const ds_field_t *f)
{
    return *(const uint32_t *)s_member(obj, f->count_offset);
}

/* ------------------------------------------------------------------ */
/* encoding                                                           */

static int s_encode_struct(s_ctx_t *c, const ds_desc_t *d, const void *obj);

static int s_pack_rc(s_ctx_t *c, int rc)
{
    return rc == 0 ? 0 : s_fail(c, DS_ENOMEM, "out of memory while encoding");
}

static int s_encode_str(s_ctx_t *c, const char *s, uint64_t max)
{
    size_t len = s ? strlen(s) : 0;
    if (len > max)
        return s_fail(c, DS_ETOOBIG, "string of %zu bytes exceeds the limit of %llu", len,
                      (unsigned long long)max);
    int rc = msgpack_pack_str(&c->pk, len);
    if (rc == 0 && len)
        rc = msgpack_pack_str_body(&c->pk, s, len);
    return s_pack_rc(c, rc);
}

static int s_encode_uint(s_ctx_t *c, const ds_field_t *f, uint64_t v)
{
    if (f->max && v > f->max)
        return s_fail(c, DS_EINVAL, "value %llu exceeds the maximum %llu", (unsigned long long)v,
                      (unsigned long long)f->max);
    return s_pack_rc(c, msgpack_pack_uint64(&c->pk, v));
}

static int s_encode_count(s_ctx_t *c, const ds_field_t *f, uint32_t n, bool is_map)
{
    if (n > f->max)
        return s_fail(c, DS_ETOOBIG, "%u elements exceed the limit of %llu", n,
                      (unsigned long long)f->max);
    return s_pack_rc(c, is_map ? msgpack_pack_map(&c->pk, n) : msgpack_pack_array(&c->pk, n));
}

static int s_encode_array(s_ctx_t *c, const ds_field_t *f, const void *obj)
{
    uint32_t n = s_count(obj, f);
    const char *items = *(char *const *)s_member(obj, f->offset);
    int rc = s_encode_count(c, f, n, false);
    if (rc == 0 && n && !items)
        rc = s_fail(c, DS_EINVAL, "count is %u but the array is NULL", n);
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_encode_struct(c, f->sub, items + (size_t)i * f->sub->size);
        s_path_pop(c, mark);
    }
    return rc;
}

static int s_encode_strs(s_ctx_t *c, const ds_field_t *f, const void *obj)
{
    uint32_t n = s_count(obj, f);
    char *const *items = *(char *const *const *)s_member(obj, f->offset);
    int rc = s_encode_count(c, f, n, false);
    if (rc == 0 && n && !items)
        rc = s_fail(c, DS_EINVAL, "count is %u but the list is NULL", n);
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_encode_str(c, items[i], DS_MAX_TEXT);
        s_path_pop(c, mark);
    }
    return rc;
}

static const char *s_key_text(const ds_kv_t *kv)
{
    return kv->key ? kv->key : "";
}

/*  The decoder refuses duplicate keys, so the encoder never sends them. */
static int s_check_unique_keys(s_ctx_t *c, const ds_kv_t *kv, uint32_t n)
{
    size_t mark = c->path_len;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(s_key_text(&kv[i]), s_key_text(&kv[j])) == 0) {
                s_path_index(c, i);
                int rc = s_fail(c, DS_EINVAL, "duplicate key \"%s\"", s_key_text(&kv[i]));
                s_path_pop(c, mark);
                return rc;
            }
    return 0;
}

static int s_encode_kvs(s_ctx_t *c, const ds_field_t *f, const void *obj)
{
    uint32_t n = s_count(obj, f);
    const ds_kv_t *kv = *(const ds_kv_t *const *)s_member(obj, f->offset);
    int rc = s_encode_count(c, f, n, true);
    if (rc == 0 && n && !kv)
        rc = s_fail(c, DS_EINVAL, "count is %u but the list is NULL", n);
    if (rc == 0 && n)
        rc = s_check_unique_keys(c, kv, n);
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_encode_str(c, kv[i].key, S_KV_KEY_MAX);
        if (rc == 0)
            rc = s_encode_str(c, kv[i].value, S_KV_VALUE_MAX);
        s_path_pop(c, mark);
    }
    return rc;
}

static int s_encode_u64_fixed(s_ctx_t *c, const ds_field_t *f, const void *obj)
{
    uint32_t n = s_count(obj, f);
    const uint64_t *v = s_member(obj, f->offset);
    int rc = s_encode_count(c, f, n, false);
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = s_pack_rc(c, msgpack_pack_uint64(&c->pk, v[i]));
    return rc;
}

static int s_encode_bytes(s_ctx_t *c, const ds_field_t *f, const ds_bytes_t *b)
{
    if (b->len > f->max)
        return s_fail(c, DS_ETOOBIG, "%u bytes exceed the limit of %llu", b->len,
                      (unsigned long long)f->max);
    if (b->len && !b->data)
        return s_fail(c, DS_EINVAL, "length is %u but the data is NULL", b->len);
    int rc = msgpack_pack_bin(&c->pk, b->len);
    if (rc == 0 && b->len)
        rc = msgpack_pack_bin_body(&c->pk, b->data, b->len);
    return s_pack_rc(c, rc);
}

static int s_encode_double(s_ctx_t *c, double v)
{
    if (!isfinite(v))
        return s_fail(c, DS_EINVAL, "not a finite number");
    return s_pack_rc(c, msgpack_pack_double(&c->pk, v));
}

static int s_encode_field(s_ctx_t *c, const ds_field_t *f, const void *obj)
{
    const void *m = s_member(obj, f->offset);
    switch (f->type) {
    case DS_FT_U8:
        return s_encode_uint(c, f, *(const uint8_t *)m);
    case DS_FT_U16:
        return s_encode_uint(c, f, *(const uint16_t *)m);
    case DS_FT_U32:
        return s_encode_uint(c, f, *(const uint32_t *)m);
    case DS_FT_U64:
        return s_encode_uint(c, f, *(const uint64_t *)m);
    case DS_FT_I64:
        return s_pack_rc(c, msgpack_pack_int64(&c->pk, *(const int64_t *)m));
    case DS_FT_BOOL:
        return s_pack_rc(c,
                         *(const bool *)m ? msgpack_pack_true(&c->pk) : msgpack_pack_false(&c->pk));
    case DS_FT_F64:
        return s_encode_double(c, *(const double *)m);
    case DS_FT_STR:
        return s_encode_str(c, *(char *const *)m, f->max);
    case DS_FT_BYTES:
        return s_encode_bytes(c, f, m);
    case DS_FT_STRUCT:
        return s_encode_struct(c, f->sub, m);
    case DS_FT_ARRAY:
        return s_encode_array(c, f, obj);
    case DS_FT_STRS:
        return s_encode_strs(c, f, obj);
    case DS_FT_KVS:
        return s_encode_kvs(c, f, obj);
    case DS_FT_U64_FIXED:
        return s_encode_u64_fixed(c, f, obj);
    }
    assert(!"unknown field type in a descriptor");
    return DS_EINVAL;
}

static int s_encode_struct(s_ctx_t *c, const ds_desc_t *d, const void *obj)
{
    int rc = s_pack_rc(c, msgpack_pack_array(&c->pk, d->nfields));
    size_t mark = c->path_len;
    for (size_t i = 0; rc == 0 && i < d->nfields; i++) {
        s_path_field(c, d->fields[i].name);
        rc = s_encode_field(c, &d->fields[i], obj);
        s_path_pop(c, mark);
    }
    return rc;
}

int ds_codec_encode(const ds_desc_t *desc, const void *obj, ds_buf_t *out, ds_codec_err_t *err)
{
    assert(desc && obj && out);
    s_ctx_t c = {.err = err};
    if (err)
        err->code = 0, err->text[0] = '\0';
    s_path_field(&c, desc->name);
    ds_mp_writer_init(&c.pk, out);
    return s_encode_struct(&c, desc, obj);
}

/* ------------------------------------------------------------------ */
/* decoding                                                           */

static int s_decode_struct(s_ctx_t *c, const ds_desc_t *d, void *obj);

static void *s_alloc(s_ctx_t *c, size_t size)
{
    void *p = ds_arena_alloc(c->arena, size);
    if (!p)
        s_fail(c, DS_ENOMEM, "decoder memory limit reached");
    return p;
}

static int s_decode_uint(s_ctx_t *c, const ds_field_t *f, uint64_t type_max, uint64_t *out)
{
    int rc = ds_mp_read_uint(&c->r, out);
    if (rc != 0)
        return s_read_fail(c, rc, "an unsigned integer", 0);
    uint64_t max = f->max ? f->max : type_max;
    if (*out > max)
        return s_fail(c, DS_EINVAL, "value %llu exceeds the maximum %llu", (unsigned long long)*out,
                      (unsigned long long)max);
    return 0;
}

/*  Reads a string of at most `max` bytes into a NUL-terminated arena copy. */
static int s_decode_str(s_ctx_t *c, uint64_t max, char **out)
{
    const char *p;
    uint32_t len;
    int rc = ds_mp_read_str(&c->r, &p, &len, max > UINT32_MAX ? UINT32_MAX : (uint32_t)max);
    if (rc != 0)
        return s_read_fail(c, rc, "a string", max);
    if (memchr(p, '\0', len))
        return s_fail(c, DS_EENCODING, "string contains a NUL byte");
    char *s = s_alloc(c, (size_t)len + 1);
    if (!s)
        return DS_ENOMEM;
    memcpy(s, p, len);
    *out = s;
    return 0;
}

static int s_decode_bytes(s_ctx_t *c, const ds_field_t *f, ds_bytes_t *out)
{
    const uint8_t *p;
    uint32_t len;
    uint64_t max = f->max > UINT32_MAX ? UINT32_MAX : f->max;
    int rc = ds_mp_read_bin(&c->r, &p, &len, (uint32_t)max);
    if (rc != 0)
        return s_read_fail(c, rc, "a byte string", max);
    out->len = len;
    if (len == 0)
        return 0;
    if (!(out->data = s_alloc(c, len)))
        return DS_ENOMEM;
    memcpy(out->data, p, len);
    return 0;
}

static int s_decode_count(s_ctx_t *c, const ds_field_t *f, bool is_map, uint32_t *n)
{
    uint32_t max = f->max > UINT32_MAX ? UINT32_MAX : (uint32_t)f->max;
    int rc = is_map ? ds_mp_read_map(&c->r, n, max) : ds_mp_read_array(&c->r, n, max);
    if (rc != 0)
        return s_read_fail(c, rc, is_map ? "a map" : "an array", max);
    return 0;
}

/*  Allocates n elements of `size` bytes; n was already checked against the
    remaining input, so this is bounded by the input's length. */
static void *s_alloc_array(s_ctx_t *c, uint32_t n, size_t size)
{
    if (n == 0)
        return NULL;
    if (size && n > SIZE_MAX / size) {
        s_fail(c, DS_ETOOBIG, "array too large");
        return NULL;
    }
    return s_alloc(c, (size_t)n * size);
}

static int s_decode_array(s_ctx_t *c, const ds_field_t *f, void *obj)
{
    uint32_t n;
    int rc = s_decode_count(c, f, false, &n);
    if (rc != 0)
        return rc;
    char *items = s_alloc_array(c, n, f->sub->size);
    if (n && !items)
        return c->err ? c->err->code : DS_ENOMEM;
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_decode_struct(c, f->sub, items + (size_t)i * f->sub->size);
        s_path_pop(c, mark);
    }
    *(void **)s_member(obj, f->offset) = items;
    *(uint32_t *)s_member(obj, f->count_offset) = n;
    return rc;
}

static int s_decode_strs(s_ctx_t *c, const ds_field_t *f, void *obj)
{
    uint32_t n;
    int rc = s_decode_count(c, f, false, &n);
    if (rc != 0)
        return rc;
    char **items = s_alloc_array(c, n, sizeof *items);
    if (n && !items)
        return c->err ? c->err->code : DS_ENOMEM;
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_decode_str(c, DS_MAX_TEXT, &items[i]);
        s_path_pop(c, mark);
    }
    *(char ***)s_member(obj, f->offset) = items;
    *(uint32_t *)s_member(obj, f->count_offset) = n;
    return rc;
}

static bool s_key_seen(const ds_kv_t *kv, uint32_t n, const char *key)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(kv[i].key, key) == 0)
            return true;
    return false;
}

static int s_decode_kvs(s_ctx_t *c, const ds_field_t *f, void *obj)
{
    uint32_t n;
    int rc = s_decode_count(c, f, true, &n);
    if (rc != 0)
        return rc;
    ds_kv_t *kv = s_alloc_array(c, n, sizeof *kv);
    if (n && !kv)
        return c->err ? c->err->code : DS_ENOMEM;
    size_t mark = c->path_len;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        s_path_index(c, i);
        rc = s_decode_str(c, S_KV_KEY_MAX, &kv[i].key);
        if (rc == 0 && s_key_seen(kv, i, kv[i].key))
            rc = s_fail(c, DS_EINVAL, "duplicate key \"%s\"", kv[i].key);
        if (rc == 0)
            rc = s_decode_str(c, S_KV_VALUE_MAX, &kv[i].value);
        s_path_pop(c, mark);
    }
    *(ds_kv_t **)s_member(obj, f->offset) = kv;
    *(uint32_t *)s_member(obj, f->count_offset) = n;
    return rc;
}

static int s_decode_u64_fixed(s_ctx_t *c, const ds_field_t *f, void *obj)
{
    uint32_t n;
    int rc = s_decode_count(c, f, false, &n);
    uint64_t *v = s_member(obj, f->offset);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = ds_mp_read_uint(&c->r, &v[i]);
        if (rc != 0)
            rc = s_read_fail(c, rc, "an unsigned integer", 0);
    }
    if (rc == 0)
        *(uint32_t *)s_member(obj, f->count_offset) = n;
    return rc;
}

static int s_decode_scalar(s_ctx_t *c, const ds_field_t *f, void *m)
{
    uint64_t u = 0;
    int rc;
    switch (f->type) {
    case DS_FT_U8:
        if ((rc = s_decode_uint(c, f, UINT8_MAX, &u)) == 0)
            *(uint8_t *)m = (uint8_t)u;
        return rc;
    case DS_FT_U16:
        if ((rc = s_decode_uint(c, f, UINT16_MAX, &u)) == 0)
            *(uint16_t *)m = (uint16_t)u;
        return rc;
    case DS_FT_U32:
        if ((rc = s_decode_uint(c, f, UINT32_MAX, &u)) == 0)
            *(uint32_t *)m = (uint32_t)u;
        return rc;
    case DS_FT_U64:
        return s_decode_uint(c, f, UINT64_MAX, m);
    case DS_FT_I64:
        rc = ds_mp_read_int(&c->r, m);
        return rc == 0 ? 0 : s_read_fail(c, rc, "a signed integer", INT64_MAX);
    case DS_FT_BOOL:
        rc = ds_mp_read_bool(&c->r, m);
        return rc == 0 ? 0 : s_read_fail(c, rc, "a boolean", 0);
    case DS_FT_F64:
        rc = ds_mp_read_double(&c->r, m);
        if (rc != 0)
            return s_read_fail(c, rc, "a float", 0);
        return isfinite(*(double *)m) ? 0 : s_fail(c, DS_EINVAL, "not a finite number");
    default:
        assert(!"not a scalar field type");
        return DS_EINVAL;
    }
}

static int s_decode_field(s_ctx_t *c, const ds_field_t *f, void *obj)
{
    void *m = s_member(obj, f->offset);
    switch (f->type) {
    case DS_FT_STR:
        return s_decode_str(c, f->max, (char **)m);
    case DS_FT_BYTES:
        return s_decode_bytes(c, f, m);
    case DS_FT_STRUCT:
        return s_decode_struct(c, f->sub, m);
    case DS_FT_ARRAY:
        return s_decode_array(c, f, obj);
    case DS_FT_STRS:
        return s_decode_strs(c, f, obj);
    case DS_FT_KVS:
        return s_decode_kvs(c, f, obj);
    case DS_FT_U64_FIXED:
        return s_decode_u64_fixed(c, f, obj);
    default:
        return s_decode_scalar(c, f, m);
    }
}

/*  Strings are never NULL in a decoded struct; an absent one is "". */
static void s_default_strings(const ds_desc_t *d, void *obj)
{
    for (size_t i = 0; i < d->nfields; i++)
        if (d->fields[i].type == DS_FT_STR)
            *(const char **)s_member(obj, d->fields[i].offset) = "";
}

static int s_decode_struct(s_ctx_t *c, const ds_desc_t *d, void *obj)
{
    uint32_t n;
    int rc = ds_mp_read_array(&c->r, &n, DS_MAX_FIELDS);
    if (rc != 0)
        return s_read_fail(c, rc, "a struct (array of fields)", DS_MAX_FIELDS);
    if (n < d->nfields)
        return s_fail(c, DS_ETRUNCATED, "has %u fields, expected at least %zu", n, d->nfields);
    s_default_strings(d, obj);
    size_t mark = c->path_len;
    for (size_t i = 0; rc == 0 && i < d->nfields; i++) {
        s_path_field(c, d->fields[i].name);
        rc = s_decode_field(c, &d->fields[i], obj);
        s_path_pop(c, mark);
    }
    /* Fields a newer peer added: skip them, bounded by the input. */
    for (size_t i = d->nfields; rc == 0 && i < n; i++) {
        rc = ds_mp_skip(&c->r);
        if (rc != 0)
            rc = s_read_fail(c, rc, "an extra field", 0);
    }
    return rc;
}

int ds_codec_decode(const ds_desc_t *desc, const void *data, size_t len, void *obj,
                    ds_arena_t *arena, ds_codec_err_t *err)
{
    assert(desc && obj && arena);
    s_ctx_t c = {.err = err, .arena = arena};
    if (err)
        err->code = 0, err->text[0] = '\0';
    s_path_field(&c, desc->name);
    memset(obj, 0, desc->size);
    ds_mp_reader_init(&c.r, data, len);
    int rc = s_decode_struct(&c, desc, obj);
    if (rc == 0 && ds_mp_remaining(&c.r) != 0)
        rc = s_fail(&c, DS_ETRAILING, "%zu bytes left after the value", ds_mp_remaining(&c.r));
    return rc;
}

size_t ds_codec_arena_cap(size_t len, size_t max_struct)
{
    /* Every allocation is paid for by at least one input byte: an element
       costs at most max_struct (rounded up), a string its length plus one. */
    size_t per_byte = max_struct + 32;
    if (len > (SIZE_MAX - 4096) / per_byte - 1)
        return SIZE_MAX;
    return (len + 1) * per_byte + 4096;
}
