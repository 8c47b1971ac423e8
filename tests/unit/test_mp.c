/*  tests/unit/test_mp.c - the bounded msgpack reader.

    Every msgpack format is read from hand-written bytes (the table below)
    and from bytes packed by msgpack-c, which we trust as the reference
    encoder. Each value is also cut at every byte, read with every reader
    of another type, and lied about (counts larger than the input). */
#include "protocol/error.h"
#include "protocol/mp.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef enum {
    K_UINT,
    K_INT,
    K_DOUBLE,
    K_STR,
    K_BIN,
    K_ARRAY,
    K_MAP,
    K_NIL,
    K_BOOL,
    K_EXT, /* no reader: only ds_mp_skip understands it */
    K_COUNT
} s_kind_t;

/*  One encoded value and what reading it must give: `u`/`i`/`d` for
    numbers and booleans, `n` for a length or count. For a str/bin the
    payload is the last `n` bytes of the value. */
typedef struct {
    const char *name;
    const char *bytes;
    size_t len;
    s_kind_t kind;
    uint64_t u;
    int64_t i;
    double d;
    uint32_t n;
} s_case_t;

#define S_CASE(nm, lit, k, ...)                                                                    \
    {                                                                                              \
        .name = nm, .bytes = lit, .len = sizeof(lit) - 1, .kind = k, __VA_ARGS__                   \
    }

static const s_case_t s_cases[] = {
    S_CASE("positive fixint 0", "\x00", K_UINT, .u = 0),
    S_CASE("positive fixint 127", "\x7f", K_UINT, .u = 127),
    S_CASE("uint8", "\xcc\xff", K_UINT, .u = 255),
    S_CASE("uint16", "\xcd\x01\x00", K_UINT, .u = 256),
    S_CASE("uint32", "\xce\x00\x01\x00\x00", K_UINT, .u = 65536),
    S_CASE("uint64", "\xcf\x00\x00\x00\x01\x00\x00\x00\x00", K_UINT, .u = 1ull << 32),
    S_CASE("uint64 max", "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", K_UINT, .u = UINT64_MAX),
    S_CASE("negative fixint -1", "\xff", K_INT, .i = -1),
    S_CASE("negative fixint -32", "\xe0", K_INT, .i = -32),
    S_CASE("int8", "\xd0\x80", K_INT, .i = -128),
    S_CASE("int16", "\xd1\x80\x00", K_INT, .i = -32768),
    S_CASE("int32", "\xd2\x80\x00\x00\x00", K_INT, .i = INT32_MIN),
    S_CASE("int64", "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", K_INT, .i = INT64_MIN),
    S_CASE("int64 -2", "\xd3\xff\xff\xff\xff\xff\xff\xff\xfe", K_INT, .i = -2),
    S_CASE("float32", "\xca\x3f\xc0\x00\x00", K_DOUBLE, .d = 1.5),
    S_CASE("float64", "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18", K_DOUBLE, .d = 3.141592653589793),
    S_CASE("float64 negative", "\xcb\xc0\x00\x00\x00\x00\x00\x00\x00", K_DOUBLE, .d = -2.0),
    S_CASE("fixstr empty", "\xa0", K_STR, .n = 0),
    S_CASE("fixstr",
           "\xa3"
           "abc",
           K_STR, .n = 3),
    S_CASE("str8",
           "\xd9\x03"
           "abc",
           K_STR, .n = 3),
    S_CASE("str16",
           "\xda\x00\x03"
           "abc",
           K_STR, .n = 3),
    S_CASE("str32",
           "\xdb\x00\x00\x00\x03"
           "abc",
           K_STR, .n = 3),
    S_CASE("bin8 empty", "\xc4\x00", K_BIN, .n = 0),
    S_CASE("bin8", "\xc4\x02\x00\xff", K_BIN, .n = 2),
    S_CASE("bin16", "\xc5\x00\x02\x00\xff", K_BIN, .n = 2),
    S_CASE("bin32", "\xc6\x00\x00\x00\x02\x00\xff", K_BIN, .n = 2),
    S_CASE("fixarray empty", "\x90", K_ARRAY, .n = 0),
    S_CASE("fixarray", "\x92\x01\xa1x", K_ARRAY, .n = 2),
    S_CASE("array16", "\xdc\x00\x02\x01\xcd\x01\x00", K_ARRAY, .n = 2),
    S_CASE("array32", "\xdd\x00\x00\x00\x02\x91\xc0\xc3", K_ARRAY, .n = 2),
    S_CASE("fixmap empty", "\x80", K_MAP, .n = 0),
    S_CASE("fixmap", "\x81\xa1k\x92\x01\x02", K_MAP, .n = 1),
    S_CASE("map16", "\xde\x00\x01\x01\x02", K_MAP, .n = 1),
    S_CASE("map32", "\xdf\x00\x00\x00\x02\x01\x02\x03\xc4\x01z", K_MAP, .n = 2),
    S_CASE("nil", "\xc0", K_NIL),
    S_CASE("false", "\xc2", K_BOOL, .u = 0),
    S_CASE("true", "\xc3", K_BOOL, .u = 1),
    S_CASE("fixext1", "\xd4\x01\xaa", K_EXT),
    S_CASE("fixext2", "\xd5\x01\xaa\xbb", K_EXT),
    S_CASE("fixext4", "\xd6\x01\xaa\xbb\xcc\xdd", K_EXT),
    S_CASE("fixext8", "\xd7\x01\x01\x02\x03\x04\x05\x06\x07\x08", K_EXT),
    S_CASE("fixext16", "\xd8\x01\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10",
           K_EXT),
    S_CASE("ext8", "\xc7\x02\x01\xaa\xbb", K_EXT),
    S_CASE("ext16", "\xc8\x00\x02\x01\xaa\xbb", K_EXT),
    S_CASE("ext32", "\xc9\x00\x00\x00\x02\x01\xaa\xbb", K_EXT),
    S_CASE("ext8 empty", "\xc7\x00\x05", K_EXT),
};
#define S_NCASES (sizeof s_cases / sizeof s_cases[0])

/*  The result of reading one value with the reader for `kind`. */
typedef struct {
    uint64_t u;
    int64_t i;
    double d;
    bool b;
    const uint8_t *ptr;
    uint32_t n;
} s_value_t;

/*  Reads one value with the reader for `kind`; for arrays and maps it also
    skips the elements, so that on success the whole value is consumed. */
static int s_read_kind(ds_mp_reader_t *r, s_kind_t kind, uint32_t max, s_value_t *v)
{
    int rc;
    memset(v, 0, sizeof *v);
    switch (kind) {
    case K_UINT:
        return ds_mp_read_uint(r, &v->u);
    case K_INT:
        return ds_mp_read_int(r, &v->i);
    case K_DOUBLE:
        return ds_mp_read_double(r, &v->d);
    case K_STR:
        return ds_mp_read_str(r, (const char **)&v->ptr, &v->n, max);
    case K_BIN:
        return ds_mp_read_bin(r, &v->ptr, &v->n, max);
    case K_ARRAY:
    case K_MAP:
        rc = kind == K_ARRAY ? ds_mp_read_array(r, &v->n, max) : ds_mp_read_map(r, &v->n, max);
        for (uint64_t k = 0; rc == 0 && k < (uint64_t)v->n * (kind == K_MAP ? 2 : 1); k++)
            rc = ds_mp_skip(r);
        return rc;
    case K_NIL:
        return ds_mp_read_nil(r);
    case K_BOOL:
        return ds_mp_read_bool(r, &v->b);
    case K_EXT:
        return ds_mp_skip(r);
    case K_COUNT:
        break;
    }
    fail_msg("no reader for kind %d", (int)kind);
    return DS_EINVAL;
}

static void s_check_value(const s_case_t *c, const s_value_t *v)
{
    switch (c->kind) {
    case K_UINT:
        assert_true(v->u == c->u);
        break;
    case K_INT:
        assert_true(v->i == c->i);
        break;
    case K_DOUBLE:
        assert_true(v->d == c->d);
        break;
    case K_STR:
    case K_BIN:
        assert_int_equal(v->n, c->n);
        assert_ptr_equal(v->ptr, (const uint8_t *)c->bytes + c->len - c->n);
        break;
    case K_ARRAY:
    case K_MAP:
        assert_int_equal(v->n, c->n);
        break;
    case K_BOOL:
        assert_int_equal(v->b, c->u);
        break;
    default:
        break;
    }
}

static void test_every_format_reads_back_its_value(void **state)
{
    (void)state;
    for (size_t k = 0; k < S_NCASES; k++) {
        const s_case_t *c = &s_cases[k];
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, c->bytes, c->len);
        int rc = s_read_kind(&r, c->kind, UINT32_MAX, &v);
        if (rc != 0)
            fail_msg("%s: %s", c->name, ds_errname(rc));
        s_check_value(c, &v);
        assert_int_equal(ds_mp_remaining(&r), 0);
    }
}

static void test_skip_consumes_exactly_one_value_of_every_format(void **state)
{
    (void)state;
    for (size_t k = 0; k < S_NCASES; k++) {
        const s_case_t *c = &s_cases[k];
        /* Followed by a sentinel that must remain. */
        uint8_t buf[64];
        memcpy(buf, c->bytes, c->len);
        buf[c->len] = 0x7f;
        ds_mp_reader_t r;
        ds_mp_reader_init(&r, buf, c->len + 1);
        assert_int_equal(ds_mp_skip(&r), 0);
        if (ds_mp_remaining(&r) != 1)
            fail_msg("%s: skip left %zu bytes", c->name, ds_mp_remaining(&r));
    }
}

static void test_every_format_cut_at_every_byte_is_truncated(void **state)
{
    (void)state;
    for (size_t k = 0; k < S_NCASES; k++) {
        const s_case_t *c = &s_cases[k];
        for (size_t cut = 0; cut < c->len; cut++) {
            /* An exact-size copy, so a sanitizer sees any read past it. */
            uint8_t *copy = malloc(cut ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, c->bytes, cut);
            ds_mp_reader_t r;
            s_value_t v;
            ds_mp_reader_init(&r, copy, cut);
            int rc = s_read_kind(&r, c->kind, UINT32_MAX, &v);
            if (rc != DS_ETRUNCATED)
                fail_msg("%s cut at %zu: read gave %s", c->name, cut, ds_errname(rc));
            ds_mp_reader_init(&r, copy, cut);
            rc = ds_mp_skip(&r);
            if (rc != DS_ETRUNCATED)
                fail_msg("%s cut at %zu: skip gave %s", c->name, cut, ds_errname(rc));
            free(copy);
        }
    }
}

static bool s_is_integer(s_kind_t k)
{
    return k == K_UINT || k == K_INT;
}

static void test_every_reader_refuses_every_other_type(void **state)
{
    (void)state;
    for (size_t k = 0; k < S_NCASES; k++) {
        const s_case_t *c = &s_cases[k];
        for (s_kind_t reader = K_UINT; reader < K_EXT; reader++) {
            if (reader == c->kind || (s_is_integer(reader) && s_is_integer(c->kind)))
                continue;
            ds_mp_reader_t r;
            s_value_t v;
            ds_mp_reader_init(&r, c->bytes, c->len);
            int rc = s_read_kind(&r, reader, UINT32_MAX, &v);
            if (rc != DS_ETYPE)
                fail_msg("%s read as kind %d gave %s", c->name, (int)reader, ds_errname(rc));
        }
    }
}

/*  Integers cross between the signed and unsigned readers when the value
    fits, and only then. */
static void test_integer_readers_cross_only_when_the_value_fits(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        s_kind_t reader;
        int rc;
        int64_t value;
    } rows[] = {
        {"\x05", 1, K_INT, 0, 5},
        {"\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9, K_INT, 0, INT64_MAX},
        {"\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 9, K_INT, DS_ETOOBIG, 0},
        {"\xd0\x05", 2, K_UINT, 0, 5},
        {"\xd3\x7f\xff\xff\xff\xff\xff\xff\xff", 9, K_UINT, 0, INT64_MAX},
        {"\xd0\xff", 2, K_UINT, DS_ETYPE, 0},
        {"\xff", 1, K_UINT, DS_ETYPE, 0},
        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9, K_UINT, DS_ETYPE, 0},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, rows[k].bytes, rows[k].len);
        assert_int_equal(s_read_kind(&r, rows[k].reader, 0, &v), rows[k].rc);
        if (rows[k].rc == 0)
            assert_true(rows[k].reader == K_INT ? v.i == rows[k].value
                                                : v.u == (uint64_t)rows[k].value);
    }
}

static void test_never_used_byte_0xc1_is_refused_by_every_reader(void **state)
{
    (void)state;
    for (s_kind_t reader = K_UINT; reader < K_COUNT; reader++) {
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, "\xc1\x00", 2);
        assert_int_equal(s_read_kind(&r, reader, UINT32_MAX, &v), DS_ETYPE);
    }
    /* Also inside a container being skipped. */
    ds_mp_reader_t r;
    ds_mp_reader_init(&r, "\x92\x01\xc1", 3);
    assert_int_equal(ds_mp_skip(&r), DS_ETYPE);
}

static void test_lengths_and_counts_over_max_are_too_big(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        s_kind_t kind;
        uint32_t max;
        int rc;
    } rows[] = {
        {"\xa3"
         "abc",
         4, K_STR, 2, DS_ETOOBIG},
        {"\xa3"
         "abc",
         4, K_STR, 3, 0},
        {"\xa0", 1, K_STR, 0, 0},
        {"\xd9\x01x", 3, K_STR, 0, DS_ETOOBIG},
        {"\xc4\x02\x00\x00", 4, K_BIN, 1, DS_ETOOBIG},
        {"\xc4\x02\x00\x00", 4, K_BIN, 2, 0},
        {"\x93\x01\x02\x03", 4, K_ARRAY, 2, DS_ETOOBIG},
        {"\x93\x01\x02\x03", 4, K_ARRAY, 3, 0},
        {"\xdc\x00\x01\x01", 4, K_ARRAY, 0, DS_ETOOBIG},
        {"\x82\x01\x02\x03\x04", 5, K_MAP, 1, DS_ETOOBIG},
        {"\x82\x01\x02\x03\x04", 5, K_MAP, 2, 0},
        /* The limit is checked before the input length: a lie bigger
           than the limit is "too big", whatever follows. */
        {"\xdd\xff\xff\xff\xff", 5, K_ARRAY, 1000, DS_ETOOBIG},
        {"\xdb\xff\xff\xff\xff", 5, K_STR, 1000, DS_ETOOBIG},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, rows[k].bytes, rows[k].len);
        int rc = s_read_kind(&r, rows[k].kind, rows[k].max, &v);
        if (rc != rows[k].rc)
            fail_msg("row %zu: got %s, want %s", k, ds_errname(rc), ds_errname(rows[k].rc));
    }
}

/*  A 5-byte input that declares four billion elements or bytes is refused
    as truncated by the reader itself, so no caller ever sizes an
    allocation from it. */
static void test_huge_declared_counts_in_tiny_input_are_truncated(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        s_kind_t kind;
    } rows[] = {
        {"\xdd\xff\xff\xff\xff", 5, K_ARRAY},   {"\xdf\xff\xff\xff\xff", 5, K_MAP},
        {"\xdf\x80\x00\x00\x00\xc0", 6, K_MAP}, {"\xdc\xff\xff\xc0", 4, K_ARRAY},
        {"\xdb\xff\xff\xff\xff", 5, K_STR},     {"\xc6\xff\xff\xff\xff", 5, K_BIN},
        {"\xc9\xff\xff\xff\xff\x01", 6, K_EXT},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, rows[k].bytes, rows[k].len);
        assert_int_equal(s_read_kind(&r, rows[k].kind, UINT32_MAX, &v), DS_ETRUNCATED);
        ds_mp_reader_init(&r, rows[k].bytes, rows[k].len);
        assert_int_equal(ds_mp_skip(&r), DS_ETRUNCATED);
    }
}

/*  Builds `depth` copies of `unit` followed by `tail` in a new buffer. */
static uint8_t *s_nest(const char *unit, size_t unit_len, size_t depth, const char *tail,
                       size_t tail_len, size_t *len)
{
    *len = unit_len * depth + tail_len;
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    for (size_t i = 0; i < depth; i++)
        memcpy(buf + i * unit_len, unit, unit_len);
    memcpy(buf + unit_len * depth, tail, tail_len);
    return buf;
}

static void test_skip_of_deep_nesting_needs_no_recursion(void **state)
{
    (void)state;
    static const struct {
        const char *unit;
        size_t unit_len;
        const char *tail;
        size_t tail_len;
        int rc;
    } rows[] = {
        {"\x91", 1, "\xc0", 1, 0},     {"\x91", 1, "", 0, DS_ETRUNCATED},
        {"\x81\xc0", 2, "\xc0", 1, 0}, {"\xdd\x00\x00\x00\x01", 5, "\x2a", 1, 0},
        {"\x92\xc3", 2, "\x90", 1, 0}, {"\x92\xc3", 2, "\xc1", 1, DS_ETYPE},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        size_t len;
        uint8_t *buf =
            s_nest(rows[k].unit, rows[k].unit_len, 100000, rows[k].tail, rows[k].tail_len, &len);
        ds_mp_reader_t r;
        ds_mp_reader_init(&r, buf, len);
        assert_int_equal(ds_mp_skip(&r), rows[k].rc);
        if (rows[k].rc == 0)
            assert_int_equal(ds_mp_remaining(&r), 0);
        free(buf);
    }
}

static void test_empty_and_null_input_is_truncated(void **state)
{
    (void)state;
    for (s_kind_t reader = K_UINT; reader < K_COUNT; reader++) {
        ds_mp_reader_t r;
        s_value_t v;
        ds_mp_reader_init(&r, NULL, 100);
        assert_int_equal(ds_mp_remaining(&r), 0);
        assert_int_equal(s_read_kind(&r, reader, UINT32_MAX, &v), DS_ETRUNCATED);
    }
}

/* ---- cross-check against msgpack-c's packer ------------------------ */

typedef enum {
    P_FIX_U8,
    P_FIX_U16,
    P_FIX_U32,
    P_FIX_U64,
    P_FIX_I8,
    P_FIX_I16,
    P_FIX_I32,
    P_FIX_I64,
    P_U64,
    P_I64,
    P_FLOAT,
    P_DOUBLE,
    P_STR,
    P_BIN,
    P_ARRAY,
    P_MAP,
    P_NIL,
    P_TRUE,
    P_FALSE,
    P_EXT
} s_pack_op_t;

/*  A value msgpack-c packs, the type byte it must choose, and how we read
    it back. `n` is a str/bin length or a container count. */
typedef struct {
    s_pack_op_t op;
    uint64_t u;
    int64_t i;
    double d;
    uint32_t n;
    uint8_t type_byte;
} s_pack_case_t;

static const s_pack_case_t s_pack_cases[] = {
    {.op = P_FIX_U8, .u = 200, .type_byte = 0xcc},
    {.op = P_FIX_U16, .u = 65535, .type_byte = 0xcd},
    {.op = P_FIX_U32, .u = 4000000000u, .type_byte = 0xce},
    {.op = P_FIX_U64, .u = UINT64_MAX - 1, .type_byte = 0xcf},
    {.op = P_FIX_I8, .i = -100, .type_byte = 0xd0},
    {.op = P_FIX_I16, .i = -30000, .type_byte = 0xd1},
    {.op = P_FIX_I32, .i = -2000000000, .type_byte = 0xd2},
    {.op = P_FIX_I64, .i = INT64_MIN + 1, .type_byte = 0xd3},
    {.op = P_FIX_I8, .i = 100, .type_byte = 0xd0},
    {.op = P_U64, .u = 0, .type_byte = 0x00},
    {.op = P_U64, .u = 127, .type_byte = 0x7f},
    {.op = P_U64, .u = 128, .type_byte = 0xcc},
    {.op = P_U64, .u = 256, .type_byte = 0xcd},
    {.op = P_U64, .u = 65536, .type_byte = 0xce},
    {.op = P_U64, .u = 1ull << 32, .type_byte = 0xcf},
    {.op = P_U64, .u = UINT64_MAX, .type_byte = 0xcf},
    {.op = P_I64, .i = -1, .type_byte = 0xff},
    {.op = P_I64, .i = -32, .type_byte = 0xe0},
    {.op = P_I64, .i = -33, .type_byte = 0xd0},
    {.op = P_I64, .i = -129, .type_byte = 0xd1},
    {.op = P_I64, .i = -32769, .type_byte = 0xd2},
    {.op = P_I64, .i = INT64_MIN, .type_byte = 0xd3},
    {.op = P_I64, .i = 5, .type_byte = 0x05},
    {.op = P_FLOAT, .d = -0.25, .type_byte = 0xca},
    {.op = P_DOUBLE, .d = 1e300, .type_byte = 0xcb},
    {.op = P_DOUBLE, .d = -0.0, .type_byte = 0xcb},
    {.op = P_STR, .n = 0, .type_byte = 0xa0},
    {.op = P_STR, .n = 31, .type_byte = 0xbf},
    {.op = P_STR, .n = 32, .type_byte = 0xd9},
    {.op = P_STR, .n = 255, .type_byte = 0xd9},
    {.op = P_STR, .n = 256, .type_byte = 0xda},
    {.op = P_STR, .n = 65535, .type_byte = 0xda},
    {.op = P_STR, .n = 65536, .type_byte = 0xdb},
    {.op = P_BIN, .n = 0, .type_byte = 0xc4},
    {.op = P_BIN, .n = 255, .type_byte = 0xc4},
    {.op = P_BIN, .n = 256, .type_byte = 0xc5},
    {.op = P_BIN, .n = 65536, .type_byte = 0xc6},
    {.op = P_ARRAY, .n = 0, .type_byte = 0x90},
    {.op = P_ARRAY, .n = 15, .type_byte = 0x9f},
    {.op = P_ARRAY, .n = 16, .type_byte = 0xdc},
    {.op = P_ARRAY, .n = 65536, .type_byte = 0xdd},
    {.op = P_MAP, .n = 0, .type_byte = 0x80},
    {.op = P_MAP, .n = 15, .type_byte = 0x8f},
    {.op = P_MAP, .n = 16, .type_byte = 0xde},
    {.op = P_MAP, .n = 65536, .type_byte = 0xdf},
    {.op = P_NIL, .type_byte = 0xc0},
    {.op = P_TRUE, .type_byte = 0xc3},
    {.op = P_FALSE, .type_byte = 0xc2},
    {.op = P_EXT, .n = 1, .type_byte = 0xd4},
    {.op = P_EXT, .n = 16, .type_byte = 0xd8},
    {.op = P_EXT, .n = 3, .type_byte = 0xc7},
    {.op = P_EXT, .n = 300, .type_byte = 0xc8},
    {.op = P_EXT, .n = 70000, .type_byte = 0xc9},
};
#define S_NPACK (sizeof s_pack_cases / sizeof s_pack_cases[0])

static int s_pack_blob(msgpack_packer *pk, const s_pack_case_t *c)
{
    static uint8_t pattern[70000];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 7 + 1);
    switch (c->op) {
    case P_STR:
        return msgpack_pack_str(pk, c->n) || msgpack_pack_str_body(pk, pattern, c->n);
    case P_BIN:
        return msgpack_pack_bin(pk, c->n) || msgpack_pack_bin_body(pk, pattern, c->n);
    default:
        return msgpack_pack_ext(pk, c->n, 42) || msgpack_pack_ext_body(pk, pattern, c->n);
    }
}

static int s_pack_container(msgpack_packer *pk, const s_pack_case_t *c)
{
    bool map = c->op == P_MAP;
    int rc = map ? msgpack_pack_map(pk, c->n) : msgpack_pack_array(pk, c->n);
    for (uint64_t k = 0; rc == 0 && k < (uint64_t)c->n * (map ? 2 : 1); k++)
        rc = msgpack_pack_uint64(pk, k);
    return rc;
}

static int s_pack(msgpack_packer *pk, const s_pack_case_t *c)
{
    switch (c->op) {
    case P_FIX_U8:
        return msgpack_pack_fix_uint8(pk, (uint8_t)c->u);
    case P_FIX_U16:
        return msgpack_pack_fix_uint16(pk, (uint16_t)c->u);
    case P_FIX_U32:
        return msgpack_pack_fix_uint32(pk, (uint32_t)c->u);
    case P_FIX_U64:
        return msgpack_pack_fix_uint64(pk, c->u);
    case P_FIX_I8:
        return msgpack_pack_fix_int8(pk, (int8_t)c->i);
    case P_FIX_I16:
        return msgpack_pack_fix_int16(pk, (int16_t)c->i);
    case P_FIX_I32:
        return msgpack_pack_fix_int32(pk, (int32_t)c->i);
    case P_FIX_I64:
        return msgpack_pack_fix_int64(pk, c->i);
    case P_U64:
        return msgpack_pack_uint64(pk, c->u);
    case P_I64:
        return msgpack_pack_int64(pk, c->i);
    case P_FLOAT:
        return msgpack_pack_float(pk, (float)c->d);
    case P_DOUBLE:
        return msgpack_pack_double(pk, c->d);
    case P_ARRAY:
    case P_MAP:
        return s_pack_container(pk, c);
    case P_NIL:
        return msgpack_pack_nil(pk);
    case P_TRUE:
        return msgpack_pack_true(pk);
    case P_FALSE:
        return msgpack_pack_false(pk);
    default:
        return s_pack_blob(pk, c);
    }
}

/*  Reads back what s_pack wrote and checks it equals the case. */
static void s_read_packed(ds_mp_reader_t *r, const s_pack_case_t *c)
{
    static const s_kind_t kind_of[] = {
        [P_FIX_U8] = K_UINT, [P_FIX_U16] = K_UINT, [P_FIX_U32] = K_UINT, [P_FIX_U64] = K_UINT,
        [P_FIX_I8] = K_INT,  [P_FIX_I16] = K_INT,  [P_FIX_I32] = K_INT,  [P_FIX_I64] = K_INT,
        [P_U64] = K_UINT,    [P_I64] = K_INT,      [P_FLOAT] = K_DOUBLE, [P_DOUBLE] = K_DOUBLE,
        [P_STR] = K_STR,     [P_BIN] = K_BIN,      [P_ARRAY] = K_ARRAY,  [P_MAP] = K_MAP,
        [P_NIL] = K_NIL,     [P_TRUE] = K_BOOL,    [P_FALSE] = K_BOOL,   [P_EXT] = K_EXT,
    };
    s_value_t v;
    assert_int_equal(s_read_kind(r, kind_of[c->op], UINT32_MAX, &v), 0);
    switch (kind_of[c->op]) {
    case K_UINT:
        assert_true(v.u == c->u);
        break;
    case K_INT:
        assert_true(v.i == c->i);
        break;
    case K_DOUBLE:
        assert_true(v.d == c->d && signbit(v.d) == signbit(c->d));
        break;
    case K_STR:
    case K_BIN:
        assert_int_equal(v.n, c->n);
        for (uint32_t k = 0; k < v.n; k++)
            assert_int_equal(v.ptr[k], (uint8_t)(k * 7 + 1));
        break;
    case K_ARRAY:
    case K_MAP:
        assert_int_equal(v.n, c->n);
        break;
    case K_BOOL:
        assert_int_equal(v.b, c->op == P_TRUE);
        break;
    default:
        break;
    }
}

static void test_values_packed_by_msgpack_c_read_back_equal(void **state)
{
    (void)state;
    for (size_t k = 0; k < S_NPACK; k++) {
        ds_buf_t buf = {0};
        msgpack_packer pk;
        ds_mp_writer_init(&pk, &buf);
        assert_int_equal(s_pack(&pk, &s_pack_cases[k]), 0);
        if (buf.data[0] != s_pack_cases[k].type_byte)
            fail_msg("case %zu: msgpack-c chose 0x%02x, the test expects 0x%02x", k, buf.data[0],
                     s_pack_cases[k].type_byte);
        ds_mp_reader_t r;
        ds_mp_reader_init(&r, buf.data, buf.len);
        s_read_packed(&r, &s_pack_cases[k]);
        assert_int_equal(ds_mp_remaining(&r), 0);
        ds_mp_reader_init(&r, buf.data, buf.len);
        assert_int_equal(ds_mp_skip(&r), 0);
        assert_int_equal(ds_mp_remaining(&r), 0);
        ds_buf_free(&buf);
    }
}

/*  Every small packed value in one array, cut at every byte: skipping the
    array must always report truncation, never read past the cut. */
static void test_packed_sample_cut_at_every_byte_is_truncated(void **state)
{
    (void)state;
    ds_buf_t buf = {0};
    msgpack_packer pk;
    ds_mp_writer_init(&pk, &buf);
    uint32_t n = 0;
    for (size_t k = 0; k < S_NPACK; k++)
        n += s_pack_cases[k].n <= 300;
    assert_int_equal(msgpack_pack_array(&pk, n), 0);
    for (size_t k = 0; k < S_NPACK; k++)
        if (s_pack_cases[k].n <= 300)
            assert_int_equal(s_pack(&pk, &s_pack_cases[k]), 0);
    for (size_t cut = 0; cut <= buf.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, buf.data, cut);
        ds_mp_reader_t r;
        ds_mp_reader_init(&r, copy, cut);
        assert_int_equal(ds_mp_skip(&r), cut == buf.len ? 0 : DS_ETRUNCATED);
        free(copy);
    }
    /* And the whole sample reads back value by value. */
    ds_mp_reader_t r;
    uint32_t count;
    ds_mp_reader_init(&r, buf.data, buf.len);
    assert_int_equal(ds_mp_read_array(&r, &count, UINT32_MAX), 0);
    assert_int_equal(count, n);
    for (size_t k = 0; k < S_NPACK; k++)
        if (s_pack_cases[k].n <= 300)
            s_read_packed(&r, &s_pack_cases[k]);
    assert_int_equal(ds_mp_remaining(&r), 0);
    ds_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format_reads_back_its_value),
        cmocka_unit_test(test_skip_consumes_exactly_one_value_of_every_format),
        cmocka_unit_test(test_every_format_cut_at_every_byte_is_truncated),
        cmocka_unit_test(test_every_reader_refuses_every_other_type),
        cmocka_unit_test(test_integer_readers_cross_only_when_the_value_fits),
        cmocka_unit_test(test_never_used_byte_0xc1_is_refused_by_every_reader),
        cmocka_unit_test(test_lengths_and_counts_over_max_are_too_big),
        cmocka_unit_test(test_huge_declared_counts_in_tiny_input_are_truncated),
        cmocka_unit_test(test_skip_of_deep_nesting_needs_no_recursion),
        cmocka_unit_test(test_empty_and_null_input_is_truncated),
        cmocka_unit_test(test_values_packed_by_msgpack_c_read_back_equal),
        cmocka_unit_test(test_packed_sample_cut_at_every_byte_is_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
