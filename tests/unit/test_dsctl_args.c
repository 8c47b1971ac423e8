/*  tests/unit/test_dsctl_args.c - durations, endpoint lists, the config
    file and which source wins. */
#include "dsctl/args.h"
#include "protocol/options.h"
#include "protocol/error.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

static uint64_t s_ms(const char *text)
{
    uint64_t ms = 12345;
    assert_int_equal(ds_parse_duration_ms(text, &ms), 0);
    return ms;
}

static void test_duration_accepts_units_fractions_and_sums(void **state)
{
    (void)state;
    assert_int_equal(s_ms("500ms"), 500);
    assert_int_equal(s_ms("5s"), 5000);
    assert_int_equal(s_ms("1m"), 60000);
    assert_int_equal(s_ms("2h"), 7200000);
    assert_int_equal(s_ms("1.5s"), 1500);
    assert_int_equal(s_ms("0.25m"), 15000);
    assert_int_equal(s_ms("1m30s"), 90000);
    assert_int_equal(s_ms("1h1m1s1ms"), 3661001);
    assert_int_equal(s_ms("0s"), 0);
    assert_int_equal(s_ms("1.0001s"), 1000); /* below a millisecond: dropped */
}

static void test_duration_refuses_what_is_not_one(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "5",
                         "5x",
                         "s",
                         "-1s",
                         " 5s",
                         "5s ",
                         "1.s",
                         "5ms5",
                         "5 s",
                         "5S",
                         "1d",
                         ".s",
                         "+5s",
                         "5ss",
                         "1e3ms",
                         "99999999999999999999h",
                         "5124095576030431h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t ms = 7;
        if (ds_parse_duration_ms(bad[i], &ms) != DS_EINVAL)
            fail_msg("\"%s\" was accepted as %llu ms", bad[i], (unsigned long long)ms);
        assert_int_equal(ms, 7);
    }
    uint64_t ms;
    assert_int_equal(ds_parse_duration_ms(NULL, &ms), DS_EINVAL);
}

static void test_endpoints_are_trimmed_and_deduplicated(void **state)
{
    (void)state;
    ds_endpoints_t eps = {0};
    char err[256];
    assert_int_equal(ds_dsctl_endpoints_parse(" tcp://10.0.0.1:7001 ,tcp://h2:7001,"
                                              "tcp://10.0.0.1:7001, ipc:///tmp/c.sock",
                                              &eps, err, sizeof err),
                     0);
    assert_int_equal(eps.n, 3);
    assert_string_equal(eps.list[0], "tcp://10.0.0.1:7001");
    assert_string_equal(eps.list[1], "tcp://h2:7001");
    assert_string_equal(eps.list[2], "ipc:///tmp/c.sock");
    assert_int_equal(ds_dsctl_endpoints_parse("tcp://[::1]:7001", &eps, err, sizeof err), 0);
    assert_int_equal(eps.n, 4);
}

static void s_refused(const char *text, const char *says)
{
    ds_endpoints_t eps = {0};
    assert_int_equal(ds_dsctl_endpoints_parse("tcp://keep:1", &eps, NULL, 0), 0);
    char err[256] = "";
    assert_int_equal(ds_dsctl_endpoints_parse(text, &eps, err, sizeof err), DS_EINVAL);
    if (!strstr(err, says))
        fail_msg("for \"%s\": \"%s\" does not say \"%s\"", text, err, says);
    assert_int_equal(eps.n, 1); /* nothing appended */
}

static void test_endpoints_refused_with_a_fix(void **state)
{
    (void)state;
    s_refused("", "no endpoint given");
    s_refused("tcp://a:1,,tcp://b:2", "empty endpoint");
    s_refused("tcp://a:1,", "empty endpoint");
    s_refused("10.0.0.1:7001", "use tcp://10.0.0.1:7001");
    s_refused("tcp://host", "needs a host and a port");
    s_refused("tcp://:7001", "needs a host and a port");
    s_refused("tcp://a:0", "from 1 to 65535");
    s_refused("tcp://a:70000", "from 1 to 65535");
    s_refused("tcp://a:7x", "from 1 to 65535");
    s_refused("http://a:80", "not supported");
    s_refused("ipc://", "names no path");
}

static void test_endpoints_limited_in_number(void **state)
{
    (void)state;
    char list[512] = "";
    for (unsigned i = 1; i <= DS_DSCTL_MAX_ENDPOINTS + 1; i++) {
        char one[32];
        snprintf(one, sizeof one, "%stcp://h%u:1", i > 1 ? "," : "", i);
        strcat(list, one);
    }
    ds_endpoints_t eps = {0};
    char err[256];
    assert_int_equal(ds_dsctl_endpoints_parse(list, &eps, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "more than"));
    assert_int_equal(eps.n, 0);
}

/* ---- config and precedence ---------------------------------------- */

typedef struct {
    char dir[512];
    char path[600];
} s_tmp_t;

static int s_setup(void **state)
{
    s_tmp_t *t = calloc(1, sizeof *t);
    if (!t || ds_test_mkdtemp("dsctl_args", t->dir, sizeof t->dir) != 0) {
        free(t);
        return -1;
    }
    snprintf(t->path, sizeof t->path, "%s/dsctl.conf", t->dir);
    *state = t;
    return 0;
}

static int s_teardown(void **state)
{
    s_tmp_t *t = *state;
    ds_test_rmrf(t->dir);
    free(t);
    return 0;
}

static void s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static const char s_conf[] = "# cluster A\n"
                             "coordinators = tcp://cfg1:7001, tcp://cfg2:7001\n"
                             "  coordinators=tcp://cfg3:7001   # the third\n"
                             "\n"
                             "timeout = 10s\n"
                             "output = json\n";

static void test_config_file_used_when_nothing_else_given(void **state)
{
    s_tmp_t *t = *state;
    s_write(t->path, s_conf);
    ds_dsctl_sources_t src = {.config_path = t->path};
    ds_dsctl_settings_t s;
    char err[512];
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), 0);
    assert_int_equal(s.endpoints.n, 3);
    assert_string_equal(s.endpoints.list[2], "tcp://cfg3:7001");
    assert_int_equal(s.timeout_ms, 10000);
    assert_int_equal(s.output, DS_OUTPUT_JSON);
    assert_string_equal(s.endpoints_from, t->path);
}

static void test_env_beats_config_and_flags_beat_both(void **state)
{
    s_tmp_t *t = *state;
    s_write(t->path, s_conf);
    ds_dsctl_sources_t src = {.config_path = t->path, .env_coordinators = "tcp://env:7001"};
    ds_dsctl_settings_t s;
    char err[512];
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), 0);
    assert_int_equal(s.endpoints.n, 1);
    assert_string_equal(s.endpoints.list[0], "tcp://env:7001");
    assert_int_equal(s.timeout_ms, 10000); /* still from the file */

    src.coordinators = "tcp://flag:7001";
    src.timeout = "750ms";
    src.output = "table";
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), 0);
    assert_string_equal(s.endpoints.list[0], "tcp://flag:7001");
    assert_string_equal(s.endpoints_from, "--coordinators");
    assert_int_equal(s.timeout_ms, 750);
    assert_int_equal(s.output, DS_OUTPUT_TABLE);
}

static void test_defaults_and_the_home_config_path(void **state)
{
    s_tmp_t *t = *state;
    ds_dsctl_sources_t src = {.home = t->dir, .coordinators = "tcp://a:1"};
    ds_dsctl_settings_t s;
    char err[512] = "";
    /* No file under $HOME: defaults. */
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), 0);
    assert_int_equal(s.timeout_ms, DS_DSCTL_DEFAULT_TIMEOUT_MS);
    assert_int_equal(s.output, DS_OUTPUT_TABLE);

    char dir[700], path[760];
    snprintf(dir, sizeof dir, "%s/.config", t->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/.config/gossamer", t->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/dsctl.conf", dir);
    s_write(path, "coordinators = tcp://home:7001\n");
    src.coordinators = NULL;
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), 0);
    assert_string_equal(s.endpoints.list[0], "tcp://home:7001");
}

static void test_no_coordinators_anywhere_says_how_to_give_them(void **state)
{
    s_tmp_t *t = *state;
    ds_dsctl_sources_t src = {.home = t->dir, .env_coordinators = ""};
    ds_dsctl_settings_t s;
    char err[512] = "";
    assert_int_equal(ds_dsctl_settings_resolve(&src, &s, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "no coordinators given"));
    assert_non_null(strstr(err, "--coordinators"));
    assert_non_null(strstr(err, "DSCTL_COORDINATORS"));
}

static void s_resolve_fails(const ds_dsctl_sources_t *src, int code, const char *says)
{
    ds_dsctl_settings_t s;
    char err[512] = "";
    assert_int_equal(ds_dsctl_settings_resolve(src, &s, err, sizeof err), code);
    if (!strstr(err, says))
        fail_msg("\"%s\" does not say \"%s\"", err, says);
}

static void test_bad_values_and_lines_are_named(void **state)
{
    s_tmp_t *t = *state;
    ds_dsctl_sources_t src = {.coordinators = "tcp://a:1", .timeout = "5x"};
    s_resolve_fails(&src, DS_EINVAL, "--timeout: \"5x\" is not a duration (use 500ms, 5s, 1m)");
    src.timeout = "0s";
    s_resolve_fails(&src, DS_EINVAL, "must be more than 0");
    src.timeout = NULL;
    src.output = "yaml";
    s_resolve_fails(&src, DS_EINVAL, "-o: \"yaml\" is not an output format (use json or table)");
    src.output = NULL;
    src.coordinators = "a:1";
    s_resolve_fails(&src, DS_EINVAL, "--coordinators: \"a:1\" has no scheme");

    src.coordinators = NULL;
    src.config_path = t->path;
    s_write(t->path, "# ok\ncoordinators tcp://x:1\n");
    s_resolve_fails(&src, DS_EINVAL, "dsctl.conf:2: \"coordinators tcp://x:1\" is not");
    s_write(t->path, "colour = red\n");
    s_resolve_fails(&src, DS_EINVAL, "dsctl.conf:1: unknown key \"colour\"");
    s_write(t->path, "coordinators = tcp://x\n");
    s_resolve_fails(&src, DS_EINVAL, "dsctl.conf:1: coordinators:");
    s_write(t->path, "coordinators = tcp://x:1\ntimeout = soon\n");
    s_resolve_fails(&src, DS_EINVAL, "dsctl.conf: timeout: \"soon\" is not a duration");
}

static void test_explicit_config_path_must_exist(void **state)
{
    s_tmp_t *t = *state;
    char missing[700];
    snprintf(missing, sizeof missing, "%s/nope.conf", t->dir);
    ds_dsctl_sources_t src = {.coordinators = "tcp://a:1", .config_path = missing};
    s_resolve_fails(&src, DS_EIO, "DSCTL_CONFIG");
}

#define S_TMP(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_accepts_units_fractions_and_sums),
        cmocka_unit_test(test_duration_refuses_what_is_not_one),
        cmocka_unit_test(test_endpoints_are_trimmed_and_deduplicated),
        cmocka_unit_test(test_endpoints_refused_with_a_fix),
        cmocka_unit_test(test_endpoints_limited_in_number),
        S_TMP(test_config_file_used_when_nothing_else_given),
        S_TMP(test_env_beats_config_and_flags_beat_both),
        S_TMP(test_defaults_and_the_home_config_path),
        S_TMP(test_no_coordinators_anywhere_says_how_to_give_them),
        S_TMP(test_bad_values_and_lines_are_named),
        S_TMP(test_explicit_config_path_must_exist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
