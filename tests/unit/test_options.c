/*  tests/unit/test_options.c - flags and config files from one table. */
#include "protocol/error.h"
#include "protocol/options.h"
#include "tests/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    char data[64];
    uint32_t port;
    uint32_t tick_ms;
    bool verbose;
    char labels[64];
} s_cfg_t;

static const ds_option_t s_opts[] = {
    {"data", DS_OPT_STR, offsetof(s_cfg_t, data), 64, 0, 0, "/var/lib/x", "DIR", "data dir"},
    {"port", DS_OPT_U32, offsetof(s_cfg_t, port), 0, 1, 65535, "7400", "N", "port"},
    {"tick", DS_OPT_DURATION, offsetof(s_cfg_t, tick_ms), 0, 1, 60000, "100ms", "DUR", "tick"},
    {"verbose", DS_OPT_BOOL, offsetof(s_cfg_t, verbose), 0, 0, 0, NULL, NULL, "chatty"},
    {"label", DS_OPT_LIST, offsetof(s_cfg_t, labels), 64, 0, 0, NULL, "K=V", "labels"},
};
#define S_N (sizeof s_opts / sizeof s_opts[0])

static void s_defaults(s_cfg_t *c)
{
    char err[128];
    memset(c, 0, sizeof *c);
    assert_int_equal(ds_options_defaults(s_opts, S_N, c, err, sizeof err), 0);
}

static void test_defaults_are_applied(void **state)
{
    (void)state;
    s_cfg_t c;
    s_defaults(&c);
    assert_string_equal(c.data, "/var/lib/x");
    assert_int_equal(c.port, 7400);
    assert_int_equal(c.tick_ms, 100);
    assert_false(c.verbose);
}

static void test_flags_override_config_file(void **state)
{
    (void)state;
    s_cfg_t c;
    char err[256];
    bool help;
    s_defaults(&c);
    const char *text = "# comment\nport = 8000\ndata = \"/srv/a\"  # trailing\nlabel = a=1\n";
    assert_int_equal(ds_options_parse_text(s_opts, S_N, &c, text, "x.conf", err, sizeof err), 0);
    assert_int_equal(c.port, 8000);
    char *argv[] = {"prog", "--port", "9000", "--verbose", "--label=b=2", "--label", "c=3"};
    assert_int_equal(ds_options_parse_argv(s_opts, S_N, &c, 7, argv, 1, &help, err, sizeof err), 0);
    assert_int_equal(c.port, 9000);
    assert_true(c.verbose);
    assert_string_equal(c.data, "/srv/a");
    assert_string_equal(c.labels, "b=2,c=3");
    assert_false(help);
}

/*  Defaults, then the --config file, then the flags: with real files. */
static void test_load_reads_the_config_file_and_flags_win(void **state)
{
    (void)state;
    char dir[256], path[300], err[256];
    assert_int_equal(ds_test_mkdtemp("options", dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/x.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("port = 8000\ndata = /srv/a\n", f);
    assert_int_equal(fclose(f), 0);
    s_cfg_t c;
    bool help = false;
    char *argv[] = {"prog", "--config", path, "--port", "9000"};
    assert_int_equal(ds_options_load(s_opts, S_N, &c, 5, argv, &help, err, sizeof err), 0);
    assert_int_equal(c.port, 9000);        /* the flag */
    assert_string_equal(c.data, "/srv/a"); /* the file */
    assert_int_equal(c.tick_ms, 100);      /* the default */
    char *missing[] = {"prog", "--config", "/nonexistent/x.conf"};
    assert_int_equal(ds_options_load(s_opts, S_N, &c, 3, missing, &help, err, sizeof err),
                     DS_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/x.conf: cannot read the file"));
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("nosuch = 1\n", f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(ds_options_load(s_opts, S_N, &c, 3, argv, &help, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "nosuch"));
    assert_int_equal(ds_test_rmrf(dir), 0);
}

static void test_bad_values_name_the_flag(void **state)
{
    (void)state;
    static const struct {
        const char *arg;
        const char *expect;
    } cases[] = {
        {"--port=0", "port: 0 is out of range"},  {"--port=70000", "out of range"},
        {"--port=12x", "not a whole number"},     {"--tick=5x", "not a duration"},
        {"--verbose=maybe", "not true or false"}, {"--nope", "unknown flag --nope"},
        {"stray", "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_cfg_t c;
        char err[256] = "";
        bool help;
        s_defaults(&c);
        char *argv[] = {"prog", (char *)cases[i].arg};
        assert_int_equal(ds_options_parse_argv(s_opts, S_N, &c, 2, argv, 1, &help, err, sizeof err),
                         DS_EINVAL);
        assert_non_null(strstr(err, cases[i].expect));
    }
}

static void test_config_errors_name_file_and_line(void **state)
{
    (void)state;
    s_cfg_t c;
    char err[256];
    s_defaults(&c);
    assert_int_equal(
        ds_options_parse_text(s_opts, S_N, &c, "port = 1\nbogus = 2\n", "a.conf", err, sizeof err),
        DS_EINVAL);
    assert_non_null(strstr(err, "a.conf:2: unknown key \"bogus\""));
    assert_int_equal(
        ds_options_parse_text(s_opts, S_N, &c, "\n\njust words\n", "a.conf", err, sizeof err),
        DS_EINVAL);
    assert_non_null(strstr(err, "a.conf:3:"));
}

static void test_flag_missing_value_refused(void **state)
{
    (void)state;
    s_cfg_t c;
    char err[256];
    bool help;
    s_defaults(&c);
    char *argv[] = {"prog", "--data"};
    assert_int_equal(ds_options_parse_argv(s_opts, S_N, &c, 2, argv, 1, &help, err, sizeof err),
                     DS_EINVAL);
    assert_non_null(strstr(err, "--data needs a value"));
}

static void test_string_too_long_refused(void **state)
{
    (void)state;
    s_cfg_t c;
    char err[256], big[200];
    bool help;
    s_defaults(&c);
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *argv[] = {"prog", "--data", big};
    assert_int_equal(ds_options_parse_argv(s_opts, S_N, &c, 3, argv, 1, &help, err, sizeof err),
                     DS_EINVAL);
    assert_non_null(strstr(err, "too long"));
}

static void test_duration_units(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(ds_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(ds_parse_duration_ms("5s", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(ds_parse_duration_ms("2m", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(ds_parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(ds_parse_duration_ms("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(ds_parse_duration_ms("42", &ms), DS_EINVAL); /* no unit */
    assert_int_equal(ds_parse_duration_ms("", &ms), DS_EINVAL);
    assert_int_equal(ds_parse_duration_ms("-1s", &ms), DS_EINVAL);
    assert_int_equal(ds_parse_duration_ms("5 s", &ms), DS_EINVAL);
    assert_int_equal(ds_parse_duration_ms("99999999999999999999h", &ms), DS_EINVAL);
}

static void test_find_config_and_help_flag(void **state)
{
    (void)state;
    char *argv[] = {"prog", "--port", "1", "--config", "/etc/x.conf", "--help"};
    assert_string_equal(ds_options_find_config(6, argv, 1), "/etc/x.conf");
    s_cfg_t c;
    char err[256];
    bool help;
    s_defaults(&c);
    assert_int_equal(ds_options_parse_argv(s_opts, S_N, &c, 6, argv, 1, &help, err, sizeof err), 0);
    assert_true(help);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_applied),
        cmocka_unit_test(test_flags_override_config_file),
        cmocka_unit_test(test_load_reads_the_config_file_and_flags_win),
        cmocka_unit_test(test_bad_values_name_the_flag),
        cmocka_unit_test(test_config_errors_name_file_and_line),
        cmocka_unit_test(test_flag_missing_value_refused),
        cmocka_unit_test(test_string_too_long_refused),
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_find_config_and_help_flag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
