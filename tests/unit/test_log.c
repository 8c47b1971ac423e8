/*  tests/unit/test_log.c - the structured logger: format, quoting, levels. */
#include "protocol/error.h"
#include "protocol/log.h"

#include <ctype.h>
#include <inttypes.h>
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
    char text[16384];
} s_sink_t;

static int s_setup(void **state)
{
    s_sink_t *sink = calloc(1, sizeof *sink);
    assert_non_null(sink);
    sink->f = tmpfile();
    assert_non_null(sink->f);
    ds_log_init(DS_LOG_DEBUG, sink->f);
    *state = sink;
    return 0;
}

static int s_teardown(void **state)
{
    s_sink_t *sink = *state;
    ds_log_init(DS_LOG_INFO, NULL);
    fclose(sink->f);
    free(sink);
    return 0;
}

/*  Everything written so far. */
static const char *s_read(s_sink_t *sink)
{
    fflush(sink->f);
    rewind(sink->f);
    size_t n = fread(sink->text, 1, sizeof sink->text - 1, sink->f);
    sink->text[n] = '\0';
    return sink->text;
}

/*  The line after "ts=<timestamp> ", checking the timestamp's shape. */
static const char *s_after_ts(s_sink_t *sink)
{
    const char *line = s_read(sink);
    const char *shape = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd')
            assert_true(isdigit((unsigned char)line[i]));
        else
            assert_int_equal(line[i], shape[i]);
    }
    return line + strlen(shape);
}

static void test_line_has_level_module_message_and_pairs(void **state)
{
    uint64_t term = 7;
    DS_LOG(DS_LOG_INFO, "raft", "became leader", "term=%" PRIu64 " id=%d", term, 2);
    assert_string_equal(s_after_ts(*state),
                        "lvl=info mod=raft msg=\"became leader\" term=7 id=2\n");
}

static void test_message_without_pairs(void **state)
{
    DS_LOG_MSG(DS_LOG_WARN, "store", "fsync-slow");
    assert_string_equal(s_after_ts(*state), "lvl=warn mod=store msg=fsync-slow\n");
}

static void test_string_values_are_quoted_and_escaped(void **state)
{
    DS_LOG(DS_LOG_ERROR, "rpc", "bad", "a=%s b=%s c=%s d=%s e=%s f=%s", "plain", "two words",
           "say \"hi\"\\now", "", "k=v", "tab\there\n\x01");
    assert_string_equal(s_after_ts(*state), "lvl=error mod=rpc msg=bad a=plain b=\"two words\" "
                                            "c=\"say \\\"hi\\\"\\\\now\" d=\"\" e=\"k=v\" "
                                            "f=\"tab\\there\\n\\x01\"\n");
}

static void test_null_string_and_utf8_values(void **state)
{
    /* volatile: the optimizer must not see the NULL (it would warn at -O2) */
    const char *volatile missing = NULL;
    DS_LOG(DS_LOG_INFO, "m", "x", "a=%s b=%s", missing, "caf\xc3\xa9");
    assert_string_equal(s_after_ts(*state), "lvl=info mod=m msg=x a=(null) b=caf\xc3\xa9\n");
}

static void test_number_conversions_match_printf(void **state)
{
    size_t sz = 42;
    long long neg = -5;
    unsigned char small = 255;
    DS_LOG(DS_LOG_DEBUG, "m", "n", "a=%zu b=%lld c=%x d=%.2f e=%c f=%hhu g=100%% h=%5d i=%.*f", sz,
           neg, 255u, 3.14159, 'q', small, 7, 2, 1.0);
    assert_string_equal(
        s_after_ts(*state),
        "lvl=debug mod=m msg=n a=42 b=-5 c=ff d=3.14 e=q f=255 g=100% h=7 i=1.00\n");
}

static int s_calls;

static int s_count_call(void)
{
    return ++s_calls;
}

static void test_level_filter_drops_lines_without_formatting(void **state)
{
    s_sink_t *sink = *state;
    ds_log_init(DS_LOG_WARN, sink->f);
    s_calls = 0;
    DS_LOG(DS_LOG_DEBUG, "m", "dropped", "n=%d", s_count_call());
    DS_LOG(DS_LOG_INFO, "m", "dropped", "n=%d", s_count_call());
    assert_int_equal(s_calls, 0);
    assert_false(ds_log_enabled(DS_LOG_INFO));
    assert_true(ds_log_enabled(DS_LOG_WARN));
    assert_string_equal(s_read(sink), "");
    DS_LOG(DS_LOG_ERROR, "m", "kept", "n=%d", s_count_call());
    assert_int_equal(s_calls, 1);
    assert_string_equal(s_after_ts(sink), "lvl=error mod=m msg=kept n=1\n");
}

static void test_level_off_logs_nothing(void **state)
{
    s_sink_t *sink = *state;
    ds_log_init(DS_LOG_OFF, sink->f);
    DS_LOG_MSG(DS_LOG_ERROR, "m", "dropped");
    assert_false(ds_log_enabled(DS_LOG_OFF));
    assert_string_equal(s_read(sink), "");
}

static void test_level_parse_accepts_names_and_refuses_others(void **state)
{
    (void)state;
    ds_log_level_t level = DS_LOG_INFO;
    assert_int_equal(ds_log_level_parse("debug", &level), 0);
    assert_int_equal(level, DS_LOG_DEBUG);
    assert_int_equal(ds_log_level_parse("WARN", &level), 0);
    assert_int_equal(level, DS_LOG_WARN);
    assert_int_equal(ds_log_level_parse("error", &level), 0);
    assert_int_equal(level, DS_LOG_ERROR);
    assert_int_equal(ds_log_level_parse("off", &level), 0);
    assert_int_equal(level, DS_LOG_OFF);
    assert_int_equal(ds_log_level_parse("verbose", &level), DS_EINVAL);
    assert_int_equal(ds_log_level_parse(NULL, &level), DS_EINVAL);
    assert_int_equal(level, DS_LOG_OFF);
    assert_string_equal(ds_log_level_name(DS_LOG_INFO), "info");
}

static void test_long_line_is_cut_and_marked(void **state)
{
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    DS_LOG(DS_LOG_INFO, "m", "big", "v=%s after=%d", big, 1);
    free(big);
    const char *line = s_read(*state);
    size_t n = strlen(line);
    assert_true(n <= DS_LOG_LINE_MAX);
    assert_string_equal(line + n - strlen(" truncated=true\n"), " truncated=true\n");
    assert_ptr_equal(strchr(line, '\n'), line + n - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_has_level_module_message_and_pairs, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_message_without_pairs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_string_values_are_quoted_and_escaped, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_null_string_and_utf8_values, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_number_conversions_match_printf, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_level_filter_drops_lines_without_formatting, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_level_off_logs_nothing, s_setup, s_teardown),
        cmocka_unit_test(test_level_parse_accepts_names_and_refuses_others),
        cmocka_unit_test_setup_teardown(test_long_line_is_cut_and_marked, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
