/*  protocol/mp.c - bounded msgpack reader; writer glue for msgpack-c. */
#include "protocol/mp.h"

#include "protocol/error.h"

#include <assert.h>
#include <string.h>

/* The msgpack format's type bytes (msgpack spec, "Formats"). */
enum {
    S_NIL = 0xc0,
    S_FALSE = 0xc2,
    S_TRUE = 0xc3,
    S_BIN8 = 0xc4,
    S_BIN16 = 0xc5,
    S_BIN32 = 0xc6,
    S_EXT8 = 0xc7,
    S_EXT16 = 0xc8,
    S_EXT32 = 0xc9,
    S_FLOAT32 = 0xca,
    S_FLOAT64 = 0xcb,
    S_UINT8 = 0xcc,
    S_UINT16 = 0xcd,
    S_UINT32 = 0xce,
    S_UINT64 = 0xcf,
    S_INT8 = 0xd0,
    S_INT16 = 0xd1,
    S_INT32 = 0xd2,
    S_INT64 = 0xd3,
    S_FIXEXT1 = 0xd4,
    S_FIXEXT16 = 0xd8,
    S_STR8 = 0xd9,
    S_STR16 = 0xda,
    S_STR32 = 0xdb,
    S_ARRAY16 = 0xdc,
    S_ARRAY32 = 0xdd,
    S_MAP16 = 0xde,
    S_MAP32 = 0xdf
};

void ds_mp_reader_init(ds_mp_reader_t *r, const void *data, size_t len)
{
    assert(r);
    r->data = data;
    r->len = data ? len : 0;
    r->pos = 0;
}

size_t ds_mp_remaining(const ds_mp_reader_t *r)
{
    return r->len - r->pos;
}

static int s_take(ds_mp_reader_t *r, size_t n, const uint8_t **out)
{
    if (n > ds_mp_remaining(r))
        return DS_ETRUNCATED;
    *out = r->data + r->pos;
    r->pos += n;
    return 0;
}

static int s_byte(ds_mp_reader_t *r, uint8_t *out)
{
    const uint8_t *p;
    int rc = s_take(r, 1, &p);
    if (rc == 0)
        *out = *p;
    return rc;
}

/*  Reads a big-endian unsigned integer of `width` bytes (1, 2, 4 or 8). */
static int s_be(ds_mp_reader_t *r, size_t width, uint64_t *out)
{
    const uint8_t *p;
    int rc = s_take(r, width, &p);
    if (rc != 0)
        return rc;
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = (v << 8) | p[i];
    *out = v;
    return 0;
}

static int64_t s_sign_extend(uint64_t v, size_t width)
{
    if (width == 8)
        return (int64_t)v;
    uint64_t sign = 1ull << (width * 8 - 1);
    return (int64_t)((v ^ sign) - sign);
}

/*  Reads any msgpack integer as a signed/unsigned pair: `neg` tells whether
    the value is negative (then `sv` holds it), else `uv` does. */
static int s_read_integer(ds_mp_reader_t *r, bool *neg, uint64_t *uv, int64_t *sv)
{
    uint8_t t;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    uint64_t raw;
    *neg = false;
    if (t <= 0x7f) {
        *uv = t;
        return 0;
    }
    if (t >= 0xe0) {
        *neg = true;
        *sv = (int8_t)t;
        return 0;
    }
    if (t >= S_UINT8 && t <= S_UINT64) {
        return s_be(r, 1u << (t - S_UINT8), uv);
    }
    if (t >= S_INT8 && t <= S_INT64) {
        size_t width = 1u << (t - S_INT8);
        if ((rc = s_be(r, width, &raw)) != 0)
            return rc;
        int64_t v = s_sign_extend(raw, width);
        if (v < 0) {
            *neg = true;
            *sv = v;
        } else {
            *uv = (uint64_t)v;
        }
        return 0;
    }
    return DS_ETYPE;
}

int ds_mp_read_uint(ds_mp_reader_t *r, uint64_t *out)
{
    bool neg;
    int64_t sv;
    int rc = s_read_integer(r, &neg, out, &sv);
    if (rc == 0 && neg)
        return DS_ETYPE;
    return rc;
}

int ds_mp_read_int(ds_mp_reader_t *r, int64_t *out)
{
    bool neg;
    uint64_t uv;
    int rc = s_read_integer(r, &neg, &uv, out);
    if (rc != 0 || neg)
        return rc;
    if (uv > INT64_MAX)
        return DS_ETOOBIG;
    *out = (int64_t)uv;
    return 0;
}

int ds_mp_read_bool(ds_mp_reader_t *r, bool *out)
{
    uint8_t t;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    if (t != S_TRUE && t != S_FALSE)
        return DS_ETYPE;
    *out = t == S_TRUE;
    return 0;
}

int ds_mp_read_double(ds_mp_reader_t *r, double *out)
{
    uint8_t t;
    uint64_t raw;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    if (t == S_FLOAT64) {
        if ((rc = s_be(r, 8, &raw)) != 0)
            return rc;
        memcpy(out, &raw, sizeof *out);
        return 0;
    }
    if (t == S_FLOAT32) {
        if ((rc = s_be(r, 4, &raw)) != 0)
            return rc;
        uint32_t bits = (uint32_t)raw;
        float f;
        memcpy(&f, &bits, sizeof f);
        *out = f;
        return 0;
    }
    return DS_ETYPE;
}

int ds_mp_read_nil(ds_mp_reader_t *r)
{
    uint8_t t;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    return t == S_NIL ? 0 : DS_ETYPE;
}

/*  Reads the length of a str (is_str) or bin header. */
static int s_read_len(ds_mp_reader_t *r, bool is_str, uint64_t *len)
{
    uint8_t t;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    if (is_str && t >= 0xa0 && t <= 0xbf) {
        *len = t & 0x1f;
        return 0;
    }
    uint8_t base = is_str ? S_STR8 : S_BIN8;
    if (t < base || t > base + 2)
        return DS_ETYPE;
    return s_be(r, 1u << (t - base), len);
}

static int s_read_blob(ds_mp_reader_t *r, bool is_str, const uint8_t **ptr, uint32_t *len,
                       uint32_t max)
{
    uint64_t n;
    int rc = s_read_len(r, is_str, &n);
    if (rc != 0)
        return rc;
    if (n > max)
        return DS_ETOOBIG;
    if (n > ds_mp_remaining(r))
        return DS_ETRUNCATED;
    *len = (uint32_t)n;
    return s_take(r, n, ptr);
}

int ds_mp_read_str(ds_mp_reader_t *r, const char **ptr, uint32_t *len, uint32_t max)
{
    return s_read_blob(r, true, (const uint8_t **)ptr, len, max);
}

int ds_mp_read_bin(ds_mp_reader_t *r, const uint8_t **ptr, uint32_t *len, uint32_t max)
{
    return s_read_blob(r, false, ptr, len, max);
}

/*  Reads an array (is_map false) or map header. Each element needs at least
    one byte, so a count larger than what remains is a lie, refused before
    any caller allocates from it. */
static int s_read_container(ds_mp_reader_t *r, bool is_map, uint32_t *count, uint32_t max)
{
    uint8_t t;
    int rc = s_byte(r, &t);
    if (rc != 0)
        return rc;
    uint64_t n;
    uint8_t fix = is_map ? 0x80 : 0x90;
    uint8_t wide = is_map ? S_MAP16 : S_ARRAY16;
    if ((t & 0xf0) == fix) {
        n = t & 0x0f;
    } else if (t == wide || t == wide + 1) {
        if ((rc = s_be(r, t == wide ? 2 : 4, &n)) != 0)
            return rc;
    } else {
        return DS_ETYPE;
    }
    if (n > max)
        return DS_ETOOBIG;
    uint64_t min_bytes = is_map ? n * 2 : n;
    if (min_bytes > ds_mp_remaining(r))
        return DS_ETRUNCATED;
    *count = (uint32_t)n;
    return 0;
}

int ds_mp_read_array(ds_mp_reader_t *r, uint32_t *count, uint32_t max)
{
    return s_read_container(r, false, count, max);
}

int ds_mp_read_map(ds_mp_reader_t *r, uint32_t *count, uint32_t max)
{
    return s_read_container(r, true, count, max);
}

/*  Returns how many payload bytes follow the header of type byte `t`, and
    how many nested values (`children`) the value contains. */
static int s_skip_header(ds_mp_reader_t *r, uint8_t t, uint64_t *payload, uint64_t *children)
{
    static const uint8_t fixed_width[] = {[S_FLOAT32 - S_FLOAT32] = 4, [S_FLOAT64 - S_FLOAT32] = 8,
                                          [S_UINT8 - S_FLOAT32] = 1,   [S_UINT16 - S_FLOAT32] = 2,
                                          [S_UINT32 - S_FLOAT32] = 4,  [S_UINT64 - S_FLOAT32] = 8,
                                          [S_INT8 - S_FLOAT32] = 1,    [S_INT16 - S_FLOAT32] = 2,
                                          [S_INT32 - S_FLOAT32] = 4,   [S_INT64 - S_FLOAT32] = 8};
    *payload = 0;
    *children = 0;
    if (t <= 0x7f || t >= 0xe0 || t == S_NIL || t == S_FALSE || t == S_TRUE)
        return 0;
    if ((t & 0xf0) == 0x80) {
        *children = 2u * (t & 0x0f);
        return 0;
    }
    if ((t & 0xf0) == 0x90) {
        *children = t & 0x0f;
        return 0;
    }
    if ((t & 0xe0) == 0xa0) {
        *payload = t & 0x1f;
        return 0;
    }
    if (t >= S_FLOAT32 && t <= S_INT64) {
        *payload = fixed_width[t - S_FLOAT32];
        return 0;
    }
    if (t >= S_FIXEXT1 && t <= S_FIXEXT16) {
        *payload = 1 + (1u << (t - S_FIXEXT1));
        return 0;
    }
    uint64_t n = 0;
    int rc;
    if (t >= S_BIN8 && t <= S_BIN32) {
        rc = s_be(r, 1u << (t - S_BIN8), payload);
    } else if (t >= S_STR8 && t <= S_STR32) {
        rc = s_be(r, 1u << (t - S_STR8), payload);
    } else if (t >= S_EXT8 && t <= S_EXT32) {
        rc = s_be(r, 1u << (t - S_EXT8), &n);
        *payload = n + 1;
    } else if (t == S_ARRAY16 || t == S_ARRAY32) {
        rc = s_be(r, t == S_ARRAY16 ? 2 : 4, children);
    } else if (t == S_MAP16 || t == S_MAP32) {
        rc = s_be(r, t == S_MAP16 ? 2 : 4, &n);
        *children = 2 * n;
    } else {
        return DS_ETYPE; /* 0xc1 is never used */
    }
    return rc;
}

int ds_mp_skip(ds_mp_reader_t *r)
{
    uint64_t pending = 1;
    while (pending > 0) {
        uint8_t t;
        uint64_t payload, children;
        int rc = s_byte(r, &t);
        if (rc == 0)
            rc = s_skip_header(r, t, &payload, &children);
        if (rc != 0)
            return rc;
        const uint8_t *unused;
        if ((rc = s_take(r, payload, &unused)) != 0)
            return rc;
        /* Every child needs a byte: a count beyond the input is a lie. */
        if (children > ds_mp_remaining(r))
            return DS_ETRUNCATED;
        pending = pending - 1 + children;
    }
    return 0;
}

static int s_write_to_buf(void *data, const char *buf, size_t len)
{
    return ds_buf_append(data, buf, len) == 0 ? 0 : -1;
}

void ds_mp_writer_init(msgpack_packer *pk, ds_buf_t *out)
{
    msgpack_packer_init(pk, out, s_write_to_buf);
}
