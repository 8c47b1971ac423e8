/*  tests/unit/test_codec.c - the table-driven encoder and decoder.

    A test-local struct `t` has one field of every DS_FT_* type. A strict
    description of it sets small limits; a loose one (same struct, large
    limits) encodes what the strict decoder must refuse, so each limit is
    checked in both directions from one table. */
#include "protocol/codec.h"
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

typedef struct {
    char *name;
    uint64_t weight;
} s_item_t;

typedef struct {
    uint16_t port;
    char *host;
} s_inner_t;

typedef struct {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    bool flag;
    double ratio;
    char *text;
    ds_bytes_t blob;
    s_inner_t inner;
    uint32_t n_items;
    s_item_t *items;
    uint32_t n_strs;
    char **strs;
    uint32_t n_kvs;
    ds_kv_t *kvs;
    uint32_t n_fixed;
    uint64_t fixed[4];
} s_all_t;

#define S_TEXT_MAX 16u
#define S_NAME_MAX 8u
#define S_LOOSE    0xffffffffu

static const ds_field_t s_item_fields[] = {
    DS_F_STR(s_item_t, name, S_NAME_MAX),
    DS_F_U64(s_item_t, weight),
};
static const ds_desc_t s_item_desc = DS_DESC(s_item_t, "item", s_item_fields);
static const ds_field_t s_item_loose_fields[] = {
    DS_F_STR(s_item_t, name, S_LOOSE),
    DS_F_U64(s_item_t, weight),
};
static const ds_desc_t s_item_loose_desc = DS_DESC(s_item_t, "item", s_item_loose_fields);

static const ds_field_t s_inner_fields[] = {
    DS_F_U16(s_inner_t, port, 0),
    DS_F_STR(s_inner_t, host, S_TEXT_MAX),
};
static const ds_desc_t s_inner_desc = DS_DESC(s_inner_t, "inner", s_inner_fields);
static const ds_field_t s_inner_loose_fields[] = {
    DS_F_U16(s_inner_t, port, 0),
    DS_F_STR(s_inner_t, host, S_LOOSE),
};
static const ds_desc_t s_inner_loose_desc = DS_DESC(s_inner_t, "inner", s_inner_loose_fields);

/* Field order is wire order; s_prefix_desc() below cuts this table. */
static const ds_field_t s_fields[] = {
    DS_F_U8(s_all_t, u8, 200),
    DS_F_U16(s_all_t, u16, 0),
    DS_F_U32(s_all_t, u32, 1000000),
    DS_F_U64(s_all_t, u64),
    DS_F_I64(s_all_t, i64),
    DS_F_BOOL(s_all_t, flag),
    DS_F_F64(s_all_t, ratio),
    DS_F_STR(s_all_t, text, S_TEXT_MAX),
    DS_F_BYTES(s_all_t, blob, 8),
    DS_F_STRUCT(s_all_t, inner, s_inner_desc),
    DS_F_ARRAY(s_all_t, items, n_items, s_item_desc, 4),
    DS_F_STRS(s_all_t, strs, n_strs, 3),
    DS_F_KVS(s_all_t, kvs, n_kvs, 3),
    DS_F_U64_FIXED(s_all_t, fixed, n_fixed, 4),
};
static const ds_desc_t s_desc = DS_DESC(s_all_t, "t", s_fields);
#define S_NFIELDS (sizeof s_fields / sizeof s_fields[0])

static const ds_field_t s_loose_fields[] = {
    DS_F_U8(s_all_t, u8, 0),
    DS_F_U16(s_all_t, u16, 0),
    DS_F_U32(s_all_t, u32, 0),
    DS_F_U64(s_all_t, u64),
    DS_F_I64(s_all_t, i64),
    DS_F_BOOL(s_all_t, flag),
    DS_F_F64(s_all_t, ratio),
    DS_F_STR(s_all_t, text, S_LOOSE),
    DS_F_BYTES(s_all_t, blob, S_LOOSE),
    DS_F_STRUCT(s_all_t, inner, s_inner_loose_desc),
    DS_F_ARRAY(s_all_t, items, n_items, s_item_loose_desc, S_LOOSE),
    DS_F_STRS(s_all_t, strs, n_strs, S_LOOSE),
    DS_F_KVS(s_all_t, kvs, n_kvs, S_LOOSE),
    DS_F_U64_FIXED(s_all_t, fixed, n_fixed, 4),
};
static const ds_desc_t s_loose_desc = DS_DESC(s_all_t, "t", s_loose_fields);

/*  A populated value, with edge values where the wire format has edges. */
typedef struct {
    s_all_t t;
    s_item_t items[4];
    char *strs[3];
    ds_kv_t kvs[3];
    uint8_t blob[8];
    char longs[4][5000];
} s_sample_t;

static void s_sample_init(s_sample_t *s)
{
    memset(s, 0, sizeof *s);
    static const uint8_t blob[] = {0x00, 0xff, 0xc1, 0x7f};
    memcpy(s->blob, blob, sizeof blob);
    s->items[0] = (s_item_t){"a", 0};
    s->items[1] = (s_item_t){"", UINT64_MAX};
    s->items[2] = (s_item_t){"12345678", 1};
    s->strs[0] = "x";
    s->strs[1] = "";
    s->kvs[0] = (ds_kv_t){"k1", "v1"};
    s->kvs[1] = (ds_kv_t){"k2", ""};
    s->t = (s_all_t){
        .u8 = 200,
        .u16 = UINT16_MAX,
        .u32 = 1000000,
        .u64 = UINT64_MAX,
        .i64 = INT64_MIN,
        .flag = true,
        .ratio = -1.25e-300,
        .text = "hello, world",
        .blob = {s->blob, sizeof blob},
        .inner = {8080, "localhost"},
        .n_items = 3,
        .items = s->items,
        .n_strs = 2,
        .strs = s->strs,
        .n_kvs = 2,
        .kvs = s->kvs,
        .n_fixed = 4,
        .fixed = {1, 0, UINT64_MAX, 42},
    };
}

/*  A string of `len` copies of 'a' kept in the sample. */
static char *s_long(s_sample_t *s, int slot, size_t len)
{
    assert_true(len < sizeof s->longs[slot]);
    memset(s->longs[slot], 'a', len);
    s->longs[slot][len] = '\0';
    return s->longs[slot];
}

static void s_encode_ok(const ds_desc_t *d, const void *obj, ds_buf_t *out)
{
    ds_codec_err_t err;
    int rc = ds_codec_encode(d, obj, out, &err);
    if (rc != 0)
        fail_msg("encode: %s (%s)", err.text, ds_errname(rc));
}

/*  Decodes `len` bytes with `d` into `obj` in a fresh generous arena,
    which the caller destroys. */
static int s_decode(const ds_desc_t *d, const void *data, size_t len, void *obj, ds_arena_t **arena,
                    ds_codec_err_t *err)
{
    *arena = ds_arena_new(ds_codec_arena_cap(len, d->size));
    assert_non_null(*arena);
    return ds_codec_decode(d, data, len, obj, *arena, err);
}

static void test_every_field_type_round_trips(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    ds_buf_t first = {0}, second = {0};
    s_encode_ok(&s_desc, &s.t, &first);

    s_all_t out;
    ds_arena_t *arena;
    ds_codec_err_t err;
    assert_int_equal(s_decode(&s_desc, first.data, first.len, &out, &arena, &err), 0);
    assert_int_equal(out.u8, 200);
    assert_int_equal(out.u16, UINT16_MAX);
    assert_int_equal(out.u32, 1000000);
    assert_true(out.u64 == UINT64_MAX);
    assert_true(out.i64 == INT64_MIN);
    assert_true(out.flag);
    assert_true(out.ratio == -1.25e-300);
    assert_string_equal(out.text, "hello, world");
    assert_int_equal(out.blob.len, 4);
    assert_memory_equal(out.blob.data, s.blob, 4);
    assert_int_equal(out.inner.port, 8080);
    assert_string_equal(out.inner.host, "localhost");
    assert_int_equal(out.n_items, 3);
    assert_string_equal(out.items[2].name, "12345678");
    assert_true(out.items[1].weight == UINT64_MAX);
    assert_int_equal(out.n_strs, 2);
    assert_string_equal(out.strs[1], "");
    assert_int_equal(out.n_kvs, 2);
    assert_string_equal(out.kvs[1].key, "k2");
    assert_int_equal(out.n_fixed, 4);
    assert_true(out.fixed[2] == UINT64_MAX);

    /* Re-encoding the decoded value gives the same bytes. */
    s_encode_ok(&s_desc, &out, &second);
    assert_int_equal(second.len, first.len);
    assert_memory_equal(second.data, first.data, first.len);
    ds_arena_destroy(&arena);
    ds_buf_free(&first);
    ds_buf_free(&second);
}

static void test_zeroed_struct_round_trips_with_empty_strings(void **state)
{
    (void)state;
    s_all_t zero = {0}, out;
    ds_buf_t buf = {0};
    s_encode_ok(&s_desc, &zero, &buf);
    ds_arena_t *arena;
    assert_int_equal(s_decode(&s_desc, buf.data, buf.len, &out, &arena, NULL), 0);
    /* Decoded strings are never NULL. */
    assert_string_equal(out.text, "");
    assert_string_equal(out.inner.host, "");
    assert_null(out.items);
    assert_null(out.blob.data);
    assert_int_equal(out.n_fixed, 0);
    ds_arena_destroy(&arena);
    ds_buf_free(&buf);
}

/* ---- limits, in both directions ----------------------------------- */

typedef void (*s_mutate_fn)(s_sample_t *s);

static void s_text_too_long(s_sample_t *s)
{
    s->t.text = s_long(s, 0, S_TEXT_MAX + 1);
}
static void s_blob_too_long(s_sample_t *s)
{
    s->t.blob = (ds_bytes_t){(uint8_t *)s_long(s, 0, 9), 9};
}
static void s_u8_too_large(s_sample_t *s)
{
    s->t.u8 = 201;
}
static void s_u32_too_large(s_sample_t *s)
{
    s->t.u32 = 1000001;
}
static void s_host_too_long(s_sample_t *s)
{
    s->t.inner.host = s_long(s, 0, S_TEXT_MAX + 1);
}
static void s_too_many_items(s_sample_t *s)
{
    s->items[3] = (s_item_t){"x", 1};
    s->t.n_items = 5;
    s->t.items = calloc(5, sizeof(s_item_t)); /* freed by the runner */
    memcpy(s->t.items, s->items, sizeof s->items);
}
static void s_item_name_too_long(s_sample_t *s)
{
    s->items[2].name = s_long(s, 0, S_NAME_MAX + 1);
}
static void s_too_many_strs(s_sample_t *s)
{
    static char *four[] = {"a", "b", "c", "d"};
    s->t.strs = four;
    s->t.n_strs = 4;
}
static void s_str_element_too_long(s_sample_t *s)
{
    s->strs[1] = s_long(s, 0, DS_MAX_TEXT + 1);
}
static void s_too_many_kvs(s_sample_t *s)
{
    static ds_kv_t four[] = {{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}};
    s->t.kvs = four;
    s->t.n_kvs = 4;
}
static void s_kv_key_too_long(s_sample_t *s)
{
    s->kvs[1].key = s_long(s, 0, DS_MAX_LABEL + 1);
}
static void s_kv_value_too_long(s_sample_t *s)
{
    s->kvs[0].value = s_long(s, 0, DS_MAX_TEXT + 1);
}
static void s_too_many_fixed(s_sample_t *s)
{
    s->t.n_fixed = 5;
}
static void s_ratio_nan(s_sample_t *s)
{
    s->t.ratio = NAN;
}
static void s_ratio_infinite(s_sample_t *s)
{
    s->t.ratio = -INFINITY;
}
static void s_items_null(s_sample_t *s)
{
    s->t.items = NULL;
}
static void s_strs_null(s_sample_t *s)
{
    s->t.strs = NULL;
}
static void s_blob_null(s_sample_t *s)
{
    s->t.blob.data = NULL;
}

/*  One invalid value: the strict encoder's verdict and text, and whether
    the loose encoder can write it so the strict decoder sees it (then the
    decoder's verdict). */
typedef struct {
    s_mutate_fn mutate;
    int encode_rc;
    const char *encode_text;
    int decode_rc; /* 0: the loose encoder cannot express it either */
    const char *decode_text;
} s_limit_case_t;

static const s_limit_case_t s_limit_cases[] = {
    {s_text_too_long, DS_ETOOBIG, "t.text: string of 17 bytes exceeds the limit of 16", DS_ETOOBIG,
     "t.text: a string exceeds the limit of 16"},
    {s_blob_too_long, DS_ETOOBIG, "t.blob: 9 bytes exceed the limit of 8", DS_ETOOBIG,
     "t.blob: a byte string exceeds the limit of 8"},
    {s_u8_too_large, DS_EINVAL, "t.u8: value 201 exceeds the maximum 200", DS_EINVAL,
     "t.u8: value 201 exceeds the maximum 200"},
    {s_u32_too_large, DS_EINVAL, "t.u32: value 1000001 exceeds the maximum 1000000", DS_EINVAL,
     "t.u32: value 1000001"},
    {s_host_too_long, DS_ETOOBIG, "t.inner.host: string of 17 bytes", DS_ETOOBIG,
     "t.inner.host: a string exceeds the limit of 16"},
    {s_too_many_items, DS_ETOOBIG, "t.items: 5 elements exceed the limit of 4", DS_ETOOBIG,
     "t.items: an array exceeds the limit of 4"},
    {s_item_name_too_long, DS_ETOOBIG, "t.items[2].name: string of 9 bytes", DS_ETOOBIG,
     "t.items[2].name: a string exceeds the limit of 8"},
    {s_too_many_strs, DS_ETOOBIG, "t.strs: 4 elements exceed the limit of 3", DS_ETOOBIG,
     "t.strs: an array exceeds"},
    {s_str_element_too_long, DS_ETOOBIG, "t.strs[1]: string of 4097 bytes", 0, NULL},
    {s_too_many_kvs, DS_ETOOBIG, "t.kvs: 4 elements exceed the limit of 3", DS_ETOOBIG,
     "t.kvs: a map exceeds the limit of 3"},
    {s_kv_key_too_long, DS_ETOOBIG, "t.kvs[1]: string of 256 bytes", 0, NULL},
    {s_kv_value_too_long, DS_ETOOBIG, "t.kvs[0]: string of 4097 bytes", 0, NULL},
    {s_too_many_fixed, DS_ETOOBIG, "t.fixed: 5 elements exceed the limit of 4", 0, NULL},
    {s_ratio_nan, DS_EINVAL, "t.ratio: not a finite number", 0, NULL},
    {s_ratio_infinite, DS_EINVAL, "t.ratio: not a finite number", 0, NULL},
    {s_items_null, DS_EINVAL, "t.items: count is 3 but the array is NULL", 0, NULL},
    {s_strs_null, DS_EINVAL, "t.strs: count is 2 but the list is NULL", 0, NULL},
    {s_blob_null, DS_EINVAL, "t.blob: length is 4 but the data is NULL", 0, NULL},
};

static void s_assert_text_starts(const ds_codec_err_t *err, const char *want, size_t row)
{
    if (strncmp(err->text, want, strlen(want)) != 0)
        fail_msg("row %zu: error text \"%s\" does not start with \"%s\"", row, err->text, want);
}

static void test_encoder_refuses_each_limit_naming_the_field_path(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_limit_cases / sizeof s_limit_cases[0]; k++) {
        const s_limit_case_t *c = &s_limit_cases[k];
        s_sample_t *s = malloc(sizeof *s);
        assert_non_null(s);
        s_sample_init(s);
        s_item_t *items = s->t.items;
        c->mutate(s);
        ds_buf_t buf = {0};
        ds_codec_err_t err;
        int rc = ds_codec_encode(&s_desc, &s->t, &buf, &err);
        if (rc != c->encode_rc)
            fail_msg("row %zu: encode gave %s", k, ds_errname(rc));
        assert_int_equal(err.code, rc);
        s_assert_text_starts(&err, c->encode_text, k);
        /* Without an error record the verdict is the same. */
        ds_buf_reset(&buf);
        assert_int_equal(ds_codec_encode(&s_desc, &s->t, &buf, NULL), c->encode_rc);
        ds_buf_free(&buf);
        if (s->t.items != items && s->t.items != NULL)
            free(s->t.items);
        free(s);
    }
}

static void test_decoder_refuses_each_limit_naming_the_field_path(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_limit_cases / sizeof s_limit_cases[0]; k++) {
        const s_limit_case_t *c = &s_limit_cases[k];
        if (c->decode_rc == 0)
            continue;
        s_sample_t *s = malloc(sizeof *s);
        assert_non_null(s);
        s_sample_init(s);
        s_item_t *items = s->t.items;
        c->mutate(s);
        ds_buf_t buf = {0};
        s_encode_ok(&s_loose_desc, &s->t, &buf);
        s_all_t out;
        ds_arena_t *arena;
        ds_codec_err_t err;
        int rc = s_decode(&s_desc, buf.data, buf.len, &out, &arena, &err);
        if (rc != c->decode_rc)
            fail_msg("row %zu: decode gave %s (%s)", k, ds_errname(rc), err.text);
        assert_int_equal(err.code, rc);
        s_assert_text_starts(&err, c->decode_text, k);
        ds_arena_destroy(&arena);
        ds_buf_free(&buf);
        if (s->t.items != items)
            free(s->t.items);
        free(s);
    }
}

/* ---- hand-written malformed input, one field at a time ------------ */

/*  Decodes `bytes` with a description holding only the field named
    `field` of the strict (or loose) table. */
static int s_decode_one_field(const char *field, bool loose, const char *bytes, size_t len,
                              ds_codec_err_t *err, size_t *arena_used)
{
    const ds_field_t *table = loose ? s_loose_fields : s_fields;
    const ds_field_t *f = NULL;
    for (size_t i = 0; i < S_NFIELDS; i++)
        if (strcmp(table[i].name, field) == 0)
            f = &table[i];
    assert_non_null(f);
    ds_desc_t one = {"t", sizeof(s_all_t), 1, f};
    s_all_t out;
    ds_arena_t *arena;
    int rc = s_decode(&one, bytes, len, &out, &arena, err);
    *arena_used = ds_arena_used(arena);
    ds_arena_destroy(&arena);
    return rc;
}

static const struct {
    const char *field;
    bool loose;
    const char *bytes;
    size_t len;
    int rc;
    const char *text;
} s_bad_rows[] = {
    /* wrong msgpack types */
    {"u8", false, "\x91\xa1x", 3, DS_ETYPE, "t.u8: expected an unsigned integer"},
    {"u8", false, "\x91\xff", 2, DS_ETYPE, "t.u8: expected an unsigned integer"},
    {"u8", false, "\x91\xc0", 2, DS_ETYPE, "t.u8"},
    {"u64", false, "\x91\xd0\xfe", 3, DS_ETYPE, "t.u64"},
    {"u64", false, "\x91\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 10, DS_ETYPE, "t.u64"},
    {"i64", false, "\x91\xa0", 2, DS_ETYPE, "t.i64: expected a signed integer"},
    {"flag", false, "\x91\x01", 2, DS_ETYPE, "t.flag: expected a boolean"},
    {"ratio", false, "\x91\x01", 2, DS_ETYPE, "t.ratio: expected a float"},
    {"text", false, "\x91\xc4\x01x", 4, DS_ETYPE, "t.text: expected a string"},
    {"blob", false, "\x91\xa1x", 3, DS_ETYPE, "t.blob: expected a byte string"},
    {"inner", false, "\x91\xc0", 2, DS_ETYPE, "t.inner: expected a struct"},
    {"items", false, "\x91\x80", 2, DS_ETYPE, "t.items: expected an array"},
    {"items", false, "\x91\x91\x92\x01\x02", 5, DS_ETYPE, "t.items[0].name: expected a string"},
    {"strs", false, "\x91\x92\xa0\x01", 4, DS_ETYPE, "t.strs[1]: expected a string"},
    {"kvs", false, "\x91\x90", 2, DS_ETYPE, "t.kvs: expected a map"},
    {"kvs", false, "\x91\x81\x01\xa1v", 5, DS_ETYPE, "t.kvs[0]: expected a string"},
    {"fixed", false, "\x91\x91\xff", 3, DS_ETYPE, "t.fixed: expected an unsigned integer"},
    /* values out of range */
    {"u8", false, "\x91\xcd\x01\x00", 4, DS_EINVAL, "t.u8: value 256 exceeds the maximum 200"},
    {"u16", false, "\x91\xce\x00\x01\x00\x00", 6, DS_EINVAL, "t.u16: value 65536 exceeds"},
    {"u8", true, "\x91\xcd\x01\x00", 4, DS_EINVAL, "t.u8: value 256 exceeds the maximum 255"},
    {"u32", true, "\x91\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 10, DS_EINVAL, "t.u32: value"},
    {"i64", false, "\x91\xcf\x80\x00\x00\x00\x00\x00\x00\x00", 10, DS_ETOOBIG, "t.i64"},
    {"fixed", false, "\x91\x95\x01\x02\x03\x04\x05", 7, DS_ETOOBIG, "t.fixed: an array exceeds"},
    /* non-finite doubles, as float64 and float32 */
    {"ratio", false, "\x91\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", 10, DS_EINVAL,
     "t.ratio: not a finite number"},
    {"ratio", false, "\x91\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00", 10, DS_EINVAL, "t.ratio"},
    {"ratio", false, "\x91\xca\xff\x80\x00\x00", 6, DS_EINVAL, "t.ratio"},
    {"ratio", false, "\x91\xca\x7f\xc0\x00\x00", 6, DS_EINVAL, "t.ratio"},
    /* NUL bytes inside strings, wherever strings are */
    {"text", false, "\x91\xa3x\x00y", 5, DS_EENCODING, "t.text: string contains a NUL byte"},
    {"text", false, "\x91\xa1\x00", 3, DS_EENCODING, "t.text"},
    {"inner", false, "\x91\x92\x01\xa2h\x00", 6, DS_EENCODING, "t.inner.host"},
    {"strs", false, "\x91\x92\xa0\xa2x\x00", 6, DS_EENCODING, "t.strs[1]"},
    {"kvs", false, "\x91\x81\xa2k\x00\xa0", 6, DS_EENCODING, "t.kvs[0]"},
    {"kvs", false, "\x91\x81\xa1k\xa2v\x00", 7, DS_EENCODING, "t.kvs[0]"},
    {"items", false, "\x91\x91\x92\xa1\x00\x01", 6, DS_EENCODING, "t.items[0].name"},
    /* duplicate map keys */
    {"kvs", false, "\x91\x82\xa1k\xa1v\xa1k\xa1w", 10, DS_EINVAL, "t.kvs[1]: duplicate key \"k\""},
    {"kvs", false,
     "\x91\x83\xa1"
     "a\xa0\xa1"
     "b\xa0\xa1"
     "a\xa0",
     11, DS_EINVAL, "t.kvs[2]: duplicate key \"a\""},
    /* fewer fields than described, in the top struct and a nested one */
    {"u8", false, "\x90", 1, DS_ETRUNCATED, "t: has 0 fields, expected at least 1"},
    {"inner", false, "\x91\x91\x01", 3, DS_ETRUNCATED, "t.inner: has 1 fields"},
    {"items", false, "\x91\x91\x91\xa0", 4, DS_ETRUNCATED, "t.items[0]: has 1 fields"},
    /* a struct that is not an array, or has too many fields */
    {"u8", false, "\x81\x01\x01", 3, DS_ETYPE, "t: expected a struct"},
    {"u8", false, "\xdc\x00\x41", 3, DS_ETOOBIG, "t: a struct (array of fields) exceeds"},
    /* bytes after the value */
    {"u8", false, "\x91\x01\xc0", 3, DS_ETRAILING, "t: 1 bytes left after the value"},
    {"u8", false, "\x91\x01\x91\x01", 4, DS_ETRAILING, "t: 2 bytes left"},
    /* lies about counts are caught before the arena is touched */
    {"items", true, "\x91\xdd\xff\xff\xff\xff", 6, DS_ETRUNCATED, "t.items: input ends"},
    {"strs", true, "\x91\xdd\xff\xff\xff\xff\xa0", 7, DS_ETRUNCATED, "t.strs"},
    {"kvs", true, "\x91\xdf\x7f\xff\xff\xff\xa0\xa0", 8, DS_ETRUNCATED, "t.kvs"},
    {"blob", true, "\x91\xc6\x00\x01\x00\x00", 6, DS_ETRUNCATED, "t.blob: input ends"},
    {"text", true, "\x91\xdb\x00\x00\xff\xff", 6, DS_ETRUNCATED, "t.text: input ends"},
    /* extension values are never a field type */
    {"u64", false, "\x91\xd4\x01\x01", 4, DS_ETYPE, "t.u64"},
};

static void test_malformed_fields_are_refused_with_code_and_path(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof s_bad_rows / sizeof s_bad_rows[0]; k++) {
        ds_codec_err_t err;
        size_t used;
        int rc = s_decode_one_field(s_bad_rows[k].field, s_bad_rows[k].loose, s_bad_rows[k].bytes,
                                    s_bad_rows[k].len, &err, &used);
        if (rc != s_bad_rows[k].rc)
            fail_msg("row %zu (%s): got %s \"%s\", want %s", k, s_bad_rows[k].field, ds_errname(rc),
                     err.text, ds_errname(s_bad_rows[k].rc));
        assert_int_equal(err.code, rc);
        s_assert_text_starts(&err, s_bad_rows[k].text, k);
        if (rc == DS_ETRUNCATED && s_bad_rows[k].loose)
            assert_int_equal(used, 0);
    }
}

static void test_float32_and_small_ints_are_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        const char *bytes;
        size_t len;
    } rows[] = {
        {"ratio", "\x91\xca\x3f\xc0\x00\x00", 6},
        {"u64", "\x91\xd0\x05", 3}, /* a signed format holding a positive value */
        {"i64", "\x91\xcc\xff", 3},
        {"text", "\x91\xdb\x00\x00\x00\x01x", 7}, /* str32 for a short string */
        {"fixed", "\x91\x90", 2},
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        ds_codec_err_t err;
        size_t used;
        int rc = s_decode_one_field(rows[k].field, false, rows[k].bytes, rows[k].len, &err, &used);
        if (rc != 0)
            fail_msg("row %zu: %s", k, err.text);
    }
}

/* ---- forward compatibility ---------------------------------------- */

/*  The description of a peer that knows only the first `n` fields. */
static ds_desc_t s_prefix_desc(size_t n)
{
    return (ds_desc_t){"t", sizeof(s_all_t), n, s_fields};
}

static void test_extra_trailing_fields_from_a_newer_peer_are_skipped(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    ds_buf_t full = {0};
    s_encode_ok(&s_desc, &s.t, &full);
    for (size_t n = 1; n < S_NFIELDS; n++) {
        ds_desc_t old = s_prefix_desc(n);
        s_all_t out;
        ds_arena_t *arena;
        ds_codec_err_t err;
        int rc = s_decode(&old, full.data, full.len, &out, &arena, &err);
        if (rc != 0)
            fail_msg("peer knowing %zu fields: %s", n, err.text);
        assert_int_equal(out.u8, 200);
        if (n > 7)
            assert_string_equal(out.text, "hello, world");
        ds_arena_destroy(&arena);
    }
    ds_buf_free(&full);
}

static void test_extra_fields_in_nested_array_elements_are_skipped(void **state)
{
    (void)state;
    /* The newer peer's item has a third field, a nested map. */
    const char bytes[] = "\x91\x92"
                         "\x93\xa1"
                         "a\x01\x81\xa1k\x92\xc3\xc0"
                         "\x94\xa1"
                         "b\x02\xc4\x01\x00\xd4\x01\x01";
    ds_codec_err_t err;
    size_t used;
    int rc = s_decode_one_field("items", false, bytes, sizeof bytes - 1, &err, &used);
    if (rc != 0)
        fail_msg("%s", err.text);
}

static void test_fewer_fields_from_an_older_peer_are_refused(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    for (size_t n = 0; n < S_NFIELDS; n++) {
        ds_desc_t old = s_prefix_desc(n);
        ds_buf_t buf = {0};
        s_encode_ok(&old, &s.t, &buf);
        s_all_t out;
        ds_arena_t *arena;
        ds_codec_err_t err;
        assert_int_equal(s_decode(&s_desc, buf.data, buf.len, &out, &arena, &err), DS_ETRUNCATED);
        assert_non_null(strstr(err.text, "expected at least 14"));
        ds_arena_destroy(&arena);
        ds_buf_free(&buf);
    }
}

/* ---- truncation, memory cap, odd inputs --------------------------- */

static void test_valid_encoding_cut_at_every_byte_is_truncated(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    ds_buf_t buf = {0};
    s_encode_ok(&s_desc, &s.t, &buf);
    for (size_t cut = 0; cut < buf.len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        assert_non_null(copy);
        memcpy(copy, buf.data, cut);
        s_all_t out;
        ds_arena_t *arena;
        ds_codec_err_t err;
        int rc = s_decode(&s_desc, copy, cut, &out, &arena, &err);
        if (rc != DS_ETRUNCATED)
            fail_msg("cut at %zu: %s (%s)", cut, ds_errname(rc), err.text);
        ds_arena_destroy(&arena);
        free(copy);
    }
    ds_buf_free(&buf);
}

static void test_arena_cap_exceeded_is_enomem_not_a_crash(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    ds_buf_t buf = {0};
    s_encode_ok(&s_desc, &s.t, &buf);
    size_t cap = 0;
    for (;; cap += 8) {
        ds_arena_t *arena = ds_arena_new(cap);
        assert_non_null(arena);
        s_all_t out;
        ds_codec_err_t err;
        int rc = ds_codec_decode(&s_desc, buf.data, buf.len, &out, arena, &err);
        assert_true(ds_arena_used(arena) <= cap);
        ds_arena_destroy(&arena);
        if (rc == 0)
            break;
        assert_int_equal(rc, DS_ENOMEM);
        assert_non_null(strstr(err.text, "decoder memory limit reached"));
        assert_true(strncmp(err.text, "t", 1) == 0);
    }
    /* The cap the codec recommends is enough. */
    assert_true(ds_codec_arena_cap(buf.len, sizeof(s_all_t)) >= cap);
    ds_buf_free(&buf);
}

static void test_decode_accepts_null_err_and_null_data(void **state)
{
    (void)state;
    s_all_t out;
    ds_arena_t *arena = ds_arena_new(4096);
    assert_non_null(arena);
    assert_int_equal(ds_codec_decode(&s_desc, NULL, 0, &out, arena, NULL), DS_ETRUNCATED);
    assert_int_equal(ds_codec_decode(&s_desc, "\x91\x01", 2, &out, arena, NULL), DS_ETRUNCATED);
    ds_arena_destroy(&arena);
}

static void test_long_names_truncate_the_path_not_the_stack(void **state)
{
    (void)state;
    static char name[400];
    memset(name, 'n', sizeof name - 1);
    ds_field_t field = DS_F_U8(s_all_t, u8, 1);
    field.name = name;
    ds_desc_t desc = {name, sizeof(s_all_t), 1, &field};
    ds_codec_err_t err;
    s_all_t out;
    ds_arena_t *arena;
    assert_int_equal(s_decode(&desc, "\x91\x02", 2, &out, &arena, &err), DS_EINVAL);
    assert_true(strlen(err.text) < sizeof err.text);
    assert_non_null(strstr(err.text, "exceeds the maximum 1"));
    ds_arena_destroy(&arena);
    ds_buf_t buf = {0};
    s_all_t big = {.u8 = 2};
    assert_int_equal(ds_codec_encode(&desc, &big, &buf, &err), DS_EINVAL);
    assert_true(strlen(err.text) < sizeof err.text);
    ds_buf_free(&buf);
}

/*  The encoder promises that nothing a peer would refuse is sent; a peer
    refuses duplicate keys, so the encoder must too. */
static void test_encoder_refuses_duplicate_keys_the_decoder_would_refuse(void **state)
{
    (void)state;
    s_sample_t s;
    s_sample_init(&s);
    s.kvs[1].key = "k1";
    ds_buf_t buf = {0};
    ds_codec_err_t err;
    int rc = ds_codec_encode(&s_desc, &s.t, &buf, &err);
    ds_buf_free(&buf);
    assert_int_equal(rc, DS_EINVAL);
    s_assert_text_starts(&err, "t.kvs[1]: duplicate key \"k1\"", 0);
}

static void test_arena_cap_grows_with_input_and_saturates(void **state)
{
    (void)state;
    assert_true(ds_codec_arena_cap(0, 100) > 100);
    assert_true(ds_codec_arena_cap(1000, 100) > ds_codec_arena_cap(999, 100));
    assert_true(ds_codec_arena_cap(SIZE_MAX, 100) == SIZE_MAX);
    assert_true(ds_codec_arena_cap(SIZE_MAX / 64, 1000) == SIZE_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_type_round_trips),
        cmocka_unit_test(test_zeroed_struct_round_trips_with_empty_strings),
        cmocka_unit_test(test_encoder_refuses_each_limit_naming_the_field_path),
        cmocka_unit_test(test_decoder_refuses_each_limit_naming_the_field_path),
        cmocka_unit_test(test_malformed_fields_are_refused_with_code_and_path),
        cmocka_unit_test(test_float32_and_small_ints_are_accepted),
        cmocka_unit_test(test_extra_trailing_fields_from_a_newer_peer_are_skipped),
        cmocka_unit_test(test_extra_fields_in_nested_array_elements_are_skipped),
        cmocka_unit_test(test_fewer_fields_from_an_older_peer_are_refused),
        cmocka_unit_test(test_valid_encoding_cut_at_every_byte_is_truncated),
        cmocka_unit_test(test_arena_cap_exceeded_is_enomem_not_a_crash),
        cmocka_unit_test(test_decode_accepts_null_err_and_null_data),
        cmocka_unit_test(test_long_names_truncate_the_path_not_the_stack),
        cmocka_unit_test(test_encoder_refuses_duplicate_keys_the_decoder_would_refuse),
        cmocka_unit_test(test_arena_cap_grows_with_input_and_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
