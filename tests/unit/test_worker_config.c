/*  tests/unit/test_worker_config.c - dsworker's flags, config file and checks. */
#include "protocol/error.h"
#include "worker/config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define S_ARGC(argv) ((int)(sizeof(argv) / sizeof((argv)[0])))

/*  Defaults, then the config text (may be NULL), then the flags, then the
    checks: what dsworker's main does. */
static int s_load(ds_worker_config_t *cfg, const char *file_text, int argc, char **argv,
                  const char *host, char *err, size_t errlen)
{
    bool help = false;
    memset(cfg, 0, sizeof *cfg);
    int rc = ds_options_defaults(ds_worker_options, ds_worker_n_options, cfg, err, errlen);
    if (rc == 0 && file_text)
        rc = ds_options_parse_text(ds_worker_options, ds_worker_n_options, cfg, file_text,
                                   "dsworker.conf", err, errlen);
    if (rc == 0)
        rc = ds_options_parse_argv(ds_worker_options, ds_worker_n_options, cfg, argc, argv, 1,
                                   &help, err, errlen);
    if (rc == 0 && !cfg->cluster_key[0])
        cfg->insecure = true; /* CURVE is tested in test_secure_cluster */
    return rc == 0 ? ds_worker_config_finish(cfg, host, err, errlen) : rc;
}

static void test_defaults_take_the_host_name_and_documented_values(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    char *argv[] = {"dsworker", "--data", "/tmp/w", "--join", "tcp://127.0.0.1:7101"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(argv), argv, "box-1.example", err, sizeof err), 0);
    assert_string_equal(cfg.name, "box-1.example");
    assert_int_equal(cfg.heartbeat_ms, 1000);
    assert_int_equal(cfg.port_min, 20000);
    assert_int_equal(cfg.port_max, 29999);
    assert_int_equal(cfg.on_exit_mode, DS_ON_EXIT_KEEP);
    assert_string_equal(cfg.log_level, "info");
    assert_int_equal(cfg.n_join, 1);
    assert_string_equal(cfg.join_list[0], "tcp://127.0.0.1:7101");
    assert_int_equal(cfg.n_labels, 0);
    assert_false(cfg.version);
}

static void test_every_flag_is_parsed(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    char *argv[] = {"dsworker",
                    "--name",
                    "w7",
                    "--data=/tmp/w7",
                    "--join",
                    "tcp://127.0.0.1:7101,tcp://127.0.0.1:7111",
                    "--join",
                    "ipc:///tmp/c3,tcp://127.0.0.1:7101",
                    "--label",
                    "zone=eu-1",
                    "--label",
                    "gpu=",
                    "--label=tier=a b",
                    "--on-exit",
                    "stop",
                    "--heartbeat",
                    "250ms",
                    "--ports",
                    "31000-31010",
                    "--log-level",
                    "debug"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(argv), argv, "host", err, sizeof err), 0);
    assert_string_equal(cfg.name, "w7");
    assert_string_equal(cfg.data, "/tmp/w7");
    assert_int_equal(cfg.n_join, 3); /* the repeated endpoint counts once */
    assert_string_equal(cfg.join_list[2], "ipc:///tmp/c3");
    assert_int_equal(cfg.n_labels, 3);
    assert_string_equal(cfg.label_list[0].key, "zone");
    assert_string_equal(cfg.label_list[0].value, "eu-1");
    assert_string_equal(cfg.label_list[1].key, "gpu");
    assert_string_equal(cfg.label_list[1].value, "");
    assert_string_equal(cfg.label_list[2].value, "a b");
    assert_int_equal(cfg.on_exit_mode, DS_ON_EXIT_STOP);
    assert_int_equal(cfg.heartbeat_ms, 250);
    assert_int_equal(cfg.port_min, 31000);
    assert_int_equal(cfg.port_max, 31010);
}

static void test_flags_win_over_the_config_file(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    const char *file = "# dsworker settings\n"
                       "name = from-file\n"
                       "data = /var/lib/w\n"
                       "join = tcp://10.0.0.1:7101\n"
                       "label = zone=a\n"
                       "label = rack=r1\n"
                       "heartbeat = 2s\n"
                       "on-exit = stop\n";
    char *argv[] = {"dsworker", "--name", "from-flag", "--label", "zone=b"};
    assert_int_equal(s_load(&cfg, file, S_ARGC(argv), argv, "host", err, sizeof err), 0);
    assert_string_equal(cfg.name, "from-flag");
    assert_string_equal(cfg.data, "/var/lib/w");
    assert_int_equal(cfg.heartbeat_ms, 2000);
    assert_int_equal(cfg.on_exit_mode, DS_ON_EXIT_STOP);
    /* the first --label replaces the file's labels */
    assert_int_equal(cfg.n_labels, 1);
    assert_string_equal(cfg.label_list[0].value, "b");

    /* without label flags the file's labels add up */
    char *argv2[] = {"dsworker"};
    assert_int_equal(s_load(&cfg, file, S_ARGC(argv2), argv2, "host", err, sizeof err), 0);
    assert_int_equal(cfg.n_labels, 2);
    assert_string_equal(cfg.label_list[1].key, "rack");
}

static void test_bad_settings_say_what_to_change(void **state)
{
    (void)state;
    static const struct {
        const char *flag, *value, *expect;
    } cases[] = {
        {"--ports", "30000-20000", "put the lower port first"},
        {"--ports", "0-10", "is not LO-HI"},
        {"--ports", "10-70000", "is not LO-HI"},
        {"--ports", "2000", "is not LO-HI"},
        {"--on-exit", "pause", "is not keep or stop"},
        {"--heartbeat", "5", "is not a duration"},
        {"--heartbeat", "1ms", "out of range"},
        {"--join", "http://a:1", "not a tcp:// or ipc:// endpoint"},
        {"--join", "tcp://a:1,,tcp://b:2", "empty endpoint"},
        {"--label", "novalue", "is not KEY=VALUE"},
        {"--label", "=v", "is not KEY=VALUE"},
        {"--label", "bad key=v", "is not allowed"},
        {"--name", "has space", "is not allowed"},
        {"--name", "a234567890123456789012345678901234567890123456789012345678901234", "too long"},
        {"--log-level", "loud", "is not debug, info, warn or error"},
        {"--bogus", "1", "unknown flag --bogus"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_worker_config_t cfg;
        char err[256] = "";
        char *argv[] = {"dsworker",
                        "--data",
                        "/tmp/w",
                        "--join",
                        "tcp://127.0.0.1:7101",
                        (char *)cases[i].flag,
                        (char *)cases[i].value};
        assert_int_equal(s_load(&cfg, NULL, S_ARGC(argv), argv, "host", err, sizeof err),
                         DS_EINVAL);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu (%s %s): \"%s\" does not say \"%s\"", i, cases[i].flag,
                     cases[i].value, err, cases[i].expect);
    }
}

static void test_duplicate_label_keys_are_refused(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    char *argv[] = {"dsworker", "--data", "/d",      "--join", "tcp://a:1",
                    "--label",  "zone=a", "--label", "zone=b"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(argv), argv, "host", err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "\"zone\" is given twice"));
}

static void test_required_settings_are_named(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    char *no_data[] = {"dsworker", "--join", "tcp://a:1"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(no_data), no_data, "host", err, sizeof err),
                     DS_EINVAL);
    assert_non_null(strstr(err, "--data is required"));
    char *no_join[] = {"dsworker", "--data", "/d"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(no_join), no_join, "host", err, sizeof err),
                     DS_EINVAL);
    assert_non_null(strstr(err, "--join is required"));
    char *ok[] = {"dsworker", "--data", "/d", "--join", "tcp://a:1"};
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(ok), ok, "", err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "--name is required"));
    char longhost[100];
    memset(longhost, 'h', sizeof longhost - 1);
    longhost[sizeof longhost - 1] = '\0';
    assert_int_equal(s_load(&cfg, NULL, S_ARGC(ok), ok, longhost, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "give --name"));
}

static void test_help_and_version_are_flags(void **state)
{
    (void)state;
    ds_worker_config_t cfg;
    char err[256] = "";
    bool help = false;
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(
        ds_options_defaults(ds_worker_options, ds_worker_n_options, &cfg, err, sizeof err), 0);
    char *argv[] = {"dsworker", "--help", "--version"};
    assert_int_equal(ds_options_parse_argv(ds_worker_options, ds_worker_n_options, &cfg, 3, argv, 1,
                                           &help, err, sizeof err),
                     0);
    assert_true(help);
    assert_true(cfg.version);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    ds_options_print_help(ds_worker_options, ds_worker_n_options, out);
    fclose(out);
    static const char *const flags[] = {"--name",    "--data",      "--join",  "--label",
                                        "--on-exit", "--heartbeat", "--ports", "--log-level",
                                        "--version", "--config"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(text, flags[i]))
            fail_msg("--help does not mention %s", flags[i]);
    assert_non_null(strstr(text, "(default: 20000-29999)"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_take_the_host_name_and_documented_values),
        cmocka_unit_test(test_every_flag_is_parsed),
        cmocka_unit_test(test_flags_win_over_the_config_file),
        cmocka_unit_test(test_bad_settings_say_what_to_change),
        cmocka_unit_test(test_duplicate_label_keys_are_refused),
        cmocka_unit_test(test_required_settings_are_named),
        cmocka_unit_test(test_help_and_version_are_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
