/*  tests/unit/test_dsctl_json.c - the JSON writer: escaping, UTF-8,
    numbers and layout. */
#include "dsctl/json.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    FILE *f;
    char *text;
    size_t len;
    ds_json_t *j;
} s_out_t;

static int s_setup_with(void **state, bool pretty)
{
    s_out_t *o = calloc(1, sizeof *o);
    if (!o)
        return -1;
    o->f = open_memstream(&o->text, &o->len);
    o->j = o->f ? ds_json_new(o->f, pretty) : NULL;
    *state = o;
    return o->j ? 0 : -1;
}

static int s_setup(void **state)
{
    return s_setup_with(state, false);
}

static int s_setup_pretty(void **state)
{
    return s_setup_with(state, true);
}

static int s_teardown(void **state)
{
    s_out_t *o = *state;
    ds_json_destroy(&o->j);
    if (o->f)
        fclose(o->f);
    free(o->text);
    free(o);
    return 0;
}

/*  Finishes the document and returns its text. */
static const char *s_done(s_out_t *o)
{
    assert_int_equal(ds_json_finish(o->j), 0);
    return o->text;
}

static void test_quotes_backslashes_and_controls_are_escaped(void **state)
{
    s_out_t *o = *state;
    ds_json_str(o->j, "a\"b\\c/\n\r\t\b\f\x01\x1f\x7f");
    assert_string_equal(s_done(o), "\"a\\\"b\\\\c/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"\n");
}

static void test_nul_bytes_in_byte_strings_are_escaped(void **state)
{
    s_out_t *o = *state;
    ds_json_strn(o->j, "a\0b", 3);
    assert_string_equal(s_done(o), "\"a\\u0000b\"\n");
}

static void test_utf8_passes_through_unchanged(void **state)
{
    s_out_t *o = *state;
    const char *s = "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \xe4\xb8\xad";
    ds_json_str(o->j, s);
    char want[64];
    snprintf(want, sizeof want, "\"%s\"\n", s);
    assert_string_equal(s_done(o), want);
}

static void test_invalid_utf8_becomes_replacement_character(void **state)
{
    s_out_t *o = *state;
    /* lone byte, overlong '/', surrogate, truncated sequence, > U+10FFFF */
    ds_json_str(o->j, "\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xf4\x90\x80\x80");
    const char *r = "\xef\xbf\xbd";
    char want[128];
    snprintf(want, sizeof want, "\"%s|%s%s|%s%s%s|%s%s|%s%s%s%s\"\n", r, r, r, r, r, r, r, r, r, r,
             r, r);
    assert_string_equal(s_done(o), want);
}

static void test_null_string_is_null(void **state)
{
    s_out_t *o = *state;
    ds_json_array_begin(o->j);
    ds_json_str(o->j, NULL);
    ds_json_str(o->j, "");
    ds_json_array_end(o->j);
    assert_string_equal(s_done(o), "[null,\"\"]\n");
}

static void test_numbers_are_exact_and_non_finite_is_null(void **state)
{
    s_out_t *o = *state;
    ds_json_array_begin(o->j);
    ds_json_u64(o->j, UINT64_MAX);
    ds_json_i64(o->j, INT64_MIN);
    ds_json_f64(o->j, 0.1);
    ds_json_f64(o->j, 1.0 / 3.0);
    ds_json_f64(o->j, 1e300);
    ds_json_f64(o->j, 42.0);
    ds_json_f64(o->j, NAN);
    ds_json_f64(o->j, -INFINITY);
    ds_json_array_end(o->j);
    assert_string_equal(s_done(o), "[18446744073709551615,-9223372036854775808,0.1,"
                                   "0.33333333333333331,1e+300,42,null,null]\n");
}

static void test_objects_and_arrays_compact(void **state)
{
    s_out_t *o = *state;
    ds_json_object_begin(o->j);
    ds_json_key(o->j, "a");
    ds_json_u64(o->j, 1);
    ds_json_key(o->j, "b");
    ds_json_array_begin(o->j);
    ds_json_bool(o->j, true);
    ds_json_bool(o->j, false);
    ds_json_null(o->j);
    ds_json_array_end(o->j);
    ds_json_key(o->j, "c\"");
    ds_json_object_begin(o->j);
    ds_json_object_end(o->j);
    ds_json_object_end(o->j);
    assert_string_equal(s_done(o), "{\"a\":1,\"b\":[true,false,null],\"c\\\"\":{}}\n");
}

static void test_pretty_layout_indents_two_spaces(void **state)
{
    s_out_t *o = *state;
    ds_json_object_begin(o->j);
    ds_json_key(o->j, "members");
    ds_json_array_begin(o->j);
    ds_json_object_begin(o->j);
    ds_json_key(o->j, "id");
    ds_json_u64(o->j, 1);
    ds_json_object_end(o->j);
    ds_json_array_end(o->j);
    ds_json_key(o->j, "none");
    ds_json_array_begin(o->j);
    ds_json_array_end(o->j);
    ds_json_object_end(o->j);
    assert_string_equal(s_done(o), "{\n"
                                   "  \"members\": [\n"
                                   "    {\n"
                                   "      \"id\": 1\n"
                                   "    }\n"
                                   "  ],\n"
                                   "  \"none\": []\n"
                                   "}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_quotes_backslashes_and_controls_are_escaped, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_nul_bytes_in_byte_strings_are_escaped, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_utf8_passes_through_unchanged, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8_becomes_replacement_character, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_null_string_is_null, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_numbers_are_exact_and_non_finite_is_null, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_objects_and_arrays_compact, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_pretty_layout_indents_two_spaces, s_setup_pretty,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
