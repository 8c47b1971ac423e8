/*  tests/unit/test_httpreq.c - the HTTP request head reader: complete and
    incomplete heads, both line endings, query strings, and every kind of
    bad head it must refuse with a reason. */
#include "protocol/httpreq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static ds_httpreq_status_t s_parse(const char *text, ds_httpreq_t *req, const char **why)
{
    return ds_httpreq_parse(text, strlen(text), req, why);
}

static void test_a_complete_get_gives_method_path_and_head_length(void **state)
{
    (void)state;
    ds_httpreq_t req;
    const char *text = "GET /api/status?x=1&y=2 HTTP/1.1\r\nHost: a\r\n\r\nrest";
    assert_int_equal(s_parse(text, &req, NULL), DS_HTTPREQ_OK);
    assert_string_equal(req.method, "GET");
    assert_string_equal(req.path, "/api/status");
    assert_int_equal(req.head_len, strlen(text) - 4);
    assert_int_equal(s_parse("POST / HTTP/1.0\n\n", &req, NULL), DS_HTTPREQ_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/");
}

static void test_a_head_without_its_empty_line_is_incomplete(void **state)
{
    (void)state;
    ds_httpreq_t req;
    const char *parts[] = {"",
                           "G",
                           "GET / HTTP/1.1",
                           "GET / HTTP/1.1\r\n",
                           "GET / HTTP/1.1\r\nHost: a\r\n",
                           "GET / HTTP/1.1\r\n\r"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        assert_int_equal(s_parse(parts[i], &req, NULL), DS_HTTPREQ_INCOMPLETE);
}

static void test_bad_heads_are_refused_with_a_reason(void **state)
{
    (void)state;
    const char *bad[] = {"\r\n\r\n",
                         "GET\r\n\r\n",
                         "GET /\r\n\r\n",
                         "get / HTTP/1.1\r\n\r\n",
                         "GETTINGVERYLONGMETHOD / HTTP/1.1\r\n\r\n",
                         "GET metrics HTTP/1.1\r\n\r\n",
                         "GET /a b HTTP/1.1\r\n\r\n",
                         "GET / HTTP/2.0\r\n\r\n",
                         "GET / HTTP/1.1 \r\n\r\n",
                         "GET /\x7f HTTP/1.1\r\n\r\n",
                         "GET / HTTP/1.1\r\nX: \x01\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ds_httpreq_t req;
        const char *why = NULL;
        if (s_parse(bad[i], &req, &why) != DS_HTTPREQ_BAD)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(why);
        assert_string_equal(req.method, "");
    }
    char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
    ds_httpreq_t req;
    assert_int_equal(ds_httpreq_parse(nul, sizeof nul - 1, &req, NULL), DS_HTTPREQ_BAD);
}

static void test_a_path_over_the_limit_is_bad_and_a_head_over_the_limit_too_large(void **state)
{
    (void)state;
    static char text[DS_HTTPREQ_MAX_HEAD + 64];
    ds_httpreq_t req;
    int n = snprintf(text, sizeof text, "GET /%0*d HTTP/1.1\r\n\r\n", (int)DS_HTTPREQ_MAX_PATH, 0);
    assert_int_equal(ds_httpreq_parse(text, (size_t)n, &req, NULL), DS_HTTPREQ_BAD);
    n = snprintf(text, sizeof text, "GET /%0*d HTTP/1.1\r\n\r\n", (int)DS_HTTPREQ_MAX_PATH - 1, 0);
    assert_int_equal(ds_httpreq_parse(text, (size_t)n, &req, NULL), DS_HTTPREQ_OK);
    assert_int_equal(strlen(req.path), DS_HTTPREQ_MAX_PATH);
    memset(text, 'a', sizeof text);
    memcpy(text, "GET / HTTP/1.1\r\nX: ", 19);
    assert_int_equal(ds_httpreq_parse(text, DS_HTTPREQ_MAX_HEAD - 1, &req, NULL),
                     DS_HTTPREQ_INCOMPLETE);
    assert_int_equal(ds_httpreq_parse(text, sizeof text, &req, NULL), DS_HTTPREQ_TOO_LARGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_complete_get_gives_method_path_and_head_length),
        cmocka_unit_test(test_a_head_without_its_empty_line_is_incomplete),
        cmocka_unit_test(test_bad_heads_are_refused_with_a_reason),
        cmocka_unit_test(test_a_path_over_the_limit_is_bad_and_a_head_over_the_limit_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
