/*  tests/unit/test_state_image.c - snapshot images: export, parse, import. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32.h"
#include "storage/state_image.h"
#include "tests/testutil.h"

typedef struct {
    char dir[512];
    char d1[600], d2[600];
    ds_store_t *a, *b;
} fx_t;

static ds_store_t *s_open(const char *dir)
{
    ds_store_t *s = ds_test_store_open(dir);
    assert_non_null(s);
    return s;
}

static int s_setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(ds_test_mkdtemp("image", fx->dir, sizeof fx->dir), 0);
    snprintf(fx->d1, sizeof fx->d1, "%s/a", fx->dir);
    snprintf(fx->d2, sizeof fx->d2, "%s/b", fx->dir);
    fx->a = s_open(fx->d1);
    fx->b = s_open(fx->d2);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fx_t *fx = *state;
    ds_store_destroy(&fx->a);
    ds_store_destroy(&fx->b);
    ds_test_rmrf(fx->dir);
    free(fx);
    return 0;
}

static int s_fill(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    int rc = ds_state_put(txn, DS_TABLE_SERVICES, "churn", "svc", 3);
    if (!rc)
        rc = ds_state_release_put(txn, "churn", 1, "r1", 2);
    if (!rc)
        rc = ds_state_release_put(txn, "churn", 2, "", 0);
    if (!rc)
        rc = ds_state_put(txn, DS_TABLE_DEPLOYMENTS, "churn", "dep", 3);
    if (!rc)
        rc = ds_state_put(txn, DS_TABLE_WORKERS, "w1", "worker", 6);
    if (!rc)
        rc = ds_state_assignment_put(txn, "w1", "churn", "asg", 3);
    if (!rc)
        rc = ds_state_history_append(txn, "churn", "deployed", 8, NULL);
    if (!rc)
        rc = ds_state_put(txn, DS_TABLE_TOKENS, "tok", "secret", 6);
    return rc;
}

static void test_export_import_round_trips_every_table(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_state_apply(fx->a, 1, 0, s_fill, NULL, NULL), 0);
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(ds_state_export(fx->a, &img, &len), 0);
    ds_state_image_info_t info;
    assert_int_equal(ds_state_image_parse(img, len, &info, NULL, NULL, NULL, 0), 0);
    assert_int_equal(info.applied, 1);
    assert_int_equal(info.n_records, 8);

    /* b has older, different state that the import must replace. */
    assert_int_equal(ds_state_apply(fx->b, 1, 0, s_fill, NULL, NULL), 0);
    assert_int_equal(ds_state_apply(fx->b, 2, 0, s_fill, NULL, NULL), 0); /* history seq 2 */
    assert_int_equal(ds_state_import(fx->b, img, len), 0);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->b, &applied), 0);
    assert_int_equal(applied, 1);
    uint8_t *img2 = NULL;
    size_t len2 = 0;
    assert_int_equal(ds_state_export(fx->b, &img2, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(img2, img, len);
    free(img);
    free(img2);
}

static void test_empty_state_exports_valid_image(void **state)
{
    fx_t *fx = *state;
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(ds_state_export(fx->a, &img, &len), 0);
    assert_int_equal(len, DS_STATE_IMAGE_HEADER + DS_STATE_IMAGE_TRAILER);
    assert_int_equal(ds_state_import(fx->b, img, len), 0);
    free(img);
}

/* Builds an image by hand, with a correct checksum unless told not to. */
typedef struct {
    uint8_t buf[512];
    size_t len;
    uint64_t n;
} img_t;

static void s_hdr(img_t *m, uint64_t applied)
{
    memcpy(m->buf, "DSSI\1\0\0\0", 8);
    ds_store_put_u64(m->buf + 8, applied);
    m->len = 16;
    m->n = 0;
}

static void s_rec(img_t *m, uint8_t t, const void *k, size_t kl, const void *v, size_t vl)
{
    uint8_t *p = m->buf + m->len;
    p[0] = t;
    p[1] = (uint8_t)(kl >> 8);
    p[2] = (uint8_t)kl;
    p[3] = p[4] = 0;
    p[5] = (uint8_t)(vl >> 8);
    p[6] = (uint8_t)vl;
    memcpy(p + 7, k, kl);
    memcpy(p + 7 + kl, v, vl);
    m->len += 7 + kl + vl;
    m->n++;
}

static void s_end(img_t *m)
{
    m->buf[m->len] = 0;
    ds_store_put_u64(m->buf + m->len + 1, m->n);
    uint32_t c = ds_state_image_crc32(m->buf, m->len + 9);
    m->buf[m->len + 9] = (uint8_t)(c >> 24);
    m->buf[m->len + 10] = (uint8_t)(c >> 16);
    m->buf[m->len + 11] = (uint8_t)(c >> 8);
    m->buf[m->len + 12] = (uint8_t)c;
    m->len += 13;
}

static int s_count(void *ctx, ds_state_table_t t, const uint8_t *k, size_t kl, const uint8_t *v,
                   size_t vl)
{
    (void)t;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    (*(int *)ctx)++;
    return 0;
}

static void test_parse_accepts_hand_built_image(void **state)
{
    (void)state;
    img_t m;
    s_hdr(&m, 42);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_rec(&m, DS_TABLE_SERVICES, "b", 1, "y", 1);
    s_rec(&m, DS_TABLE_WORKERS, "a", 1, "", 0);
    s_end(&m);
    int n = 0;
    ds_state_image_info_t info;
    assert_int_equal(ds_state_image_parse(m.buf, m.len, &info, s_count, &n, NULL, 0), 0);
    assert_int_equal(n, 3);
    assert_int_equal(info.applied, 42);
}

static void test_parse_rejects_every_kind_of_bad_image(void **state)
{
    (void)state;
    char err[256];
    img_t m;
    /* too short */
    assert_int_equal(
        ds_state_image_parse((const uint8_t *)"DSSI", 4, NULL, NULL, NULL, err, sizeof err),
        DS_ETRUNCATED);
    /* bad magic */
    s_hdr(&m, 1);
    s_end(&m);
    m.buf[0] = 'X';
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    /* version */
    s_hdr(&m, 1);
    m.buf[4] = 9;
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_EVERSION);
    /* reserved bytes */
    s_hdr(&m, 1);
    m.buf[6] = 1;
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    /* checksum */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_end(&m);
    m.buf[20] ^= 1;
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    assert_non_null(strstr(err, "checksum"));
    /* unknown table */
    s_hdr(&m, 1);
    s_rec(&m, 42, "a", 1, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_EUNKNOWN);
    /* out of order and duplicate */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "b", 1, "x", 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    /* malformed key for its table */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_RELEASES, "a", 1, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    /* a length that runs past the end */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    m.buf[16 + 6] = 200; /* vlen */
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ETRUNCATED);
    /* a length above its limit */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    m.buf[16 + 3] = 0x7f; /* vlen ~2 GiB */
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ETOOBIG);
    /* zero-length key */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "", 0, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ETOOBIG);
    /* record count disagrees with the trailer */
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    m.n = 5;
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ECORRUPT);
    /* record header cut off before the trailer */
    s_hdr(&m, 1);
    m.buf[m.len++] = DS_TABLE_SERVICES;
    m.buf[m.len++] = 0;
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, NULL, NULL, err, sizeof err),
                     DS_ETRUNCATED);
}

static int s_stop(void *ctx, ds_state_table_t t, const uint8_t *k, size_t kl, const uint8_t *v,
                  size_t vl)
{
    (void)ctx;
    (void)t;
    (void)k;
    (void)kl;
    (void)v;
    (void)vl;
    return DS_ECONFLICT;
}

static void test_parse_returns_callback_error(void **state)
{
    (void)state;
    img_t m;
    s_hdr(&m, 1);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_end(&m);
    assert_int_equal(ds_state_image_parse(m.buf, m.len, NULL, s_stop, NULL, NULL, 0), DS_ECONFLICT);
}

static int s_get_churn(ds_txn_t *txn, void *ctx)
{
    (void)ctx;
    ds_val_t v;
    return ds_state_get(txn, DS_TABLE_SERVICES, "churn", &v);
}

static void test_bad_image_import_changes_nothing(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(ds_state_apply(fx->b, 1, 0, s_fill, NULL, NULL), 0);
    img_t m;
    s_hdr(&m, 50);
    s_rec(&m, DS_TABLE_SERVICES, "a", 1, "x", 1);
    s_end(&m);
    m.buf[m.len - 1] ^= 0xff;
    assert_int_equal(ds_state_import(fx->b, m.buf, m.len), DS_ECORRUPT);
    assert_non_null(strstr(ds_store_errmsg(fx->b), "checksum"));
    assert_int_equal(ds_store_read(fx->b, s_get_churn, NULL), 0);
    uint64_t applied;
    assert_int_equal(ds_state_applied(fx->b, &applied), 0);
    assert_int_equal(applied, 1);
}

typedef struct {
    ds_db_t db;
    const char *k;
    size_t kl;
} raw_t;

static int s_raw(ds_txn_t *txn, void *ctx)
{
    raw_t *r = ctx;
    return ds_txn_put(txn, r->db, r->k, r->kl, "v", 1, 0);
}

static void test_export_refuses_corrupt_keys(void **state)
{
    fx_t *fx = *state;
    raw_t r = {DS_DB_RELEASES, "bad", 3};
    assert_int_equal(ds_store_write(fx->a, s_raw, &r), 0);
    uint8_t *img = (uint8_t *)"sentinel";
    size_t len = 7;
    assert_int_equal(ds_state_export(fx->a, &img, &len), DS_ECORRUPT);
    assert_null(img);
    assert_int_equal(len, 0);
}

/* ---- the image checksum ------------------------------------------------- */

/*  A reflected CRC bit by bit, by its definition: CRC-32 (the image
    format's) with 0xedb88320, CRC-32C (the WAL's) with 0x82f63b78. */
static uint32_t s_crc_bitwise(uint32_t poly, const uint8_t *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (poly & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t s_crc32_bitwise(const uint8_t *p, size_t n)
{
    return s_crc_bitwise(0xedb88320u, p, n);
}

static void test_crcs_match_their_definitions(void **state)
{
    (void)state;
    assert_int_equal(ds_crc32(0, "123456789", 9), 0xcbf43926u); /* the standard check */
    assert_int_equal(ds_crc32(0, "", 0), 0);
    static uint8_t buf[4099];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < sizeof buf; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (size_t n = 0; n <= sizeof buf; n += n < 64 ? 1 : 509) {
        assert_int_equal(ds_state_image_crc32(buf, n), s_crc32_bitwise(buf, n));
        size_t half = n / 3; /* extending in pieces gives the same */
        assert_int_equal(ds_crc32(ds_crc32(0, buf, half), buf + half, n - half),
                         s_crc32_bitwise(buf, n));
        assert_int_equal(ds_crc32c(ds_crc32c(0, buf, half), buf + half, n - half),
                         s_crc_bitwise(0x82f63b78u, buf, n));
    }
    assert_int_equal(ds_crc32c(0, "123456789", 9), 0xe3069283u);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_export_import_round_trips_every_table),
        T(test_empty_state_exports_valid_image),
        cmocka_unit_test(test_crcs_match_their_definitions),
        cmocka_unit_test(test_parse_accepts_hand_built_image),
        cmocka_unit_test(test_parse_rejects_every_kind_of_bad_image),
        cmocka_unit_test(test_parse_returns_callback_error),
        T(test_bad_image_import_changes_nothing),
        T(test_export_refuses_corrupt_keys),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
