/*  tests/unit/test_coord_config.c - dscoord's flags and member list. */
#include "coordinator/config.h"
#include "protocol/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static int s_parse(ds_coord_config_t *cfg, int argc, char **argv, char *err, size_t errlen)
{
    bool help;
    memset(cfg, 0, sizeof *cfg);
    int rc = ds_options_defaults(ds_coord_options, ds_coord_n_options, cfg, err, errlen);
    if (rc == 0)
        rc = ds_options_parse_argv(ds_coord_options, ds_coord_n_options, cfg, argc, argv, 1, &help,
                                   err, errlen);
    if (rc == 0 && !cfg->keys[0])
        cfg->insecure = true; /* security is tested below, in its own tests */
    return rc == 0 ? ds_coord_config_finish(cfg, err, errlen) : rc;
}

static void test_valid_flags_give_members_and_defaults(void **state)
{
    (void)state;
    ds_coord_config_t cfg;
    char err[256];
    char *argv[] = {"dscoord",
                    "--id",
                    "2",
                    "--data",
                    "/tmp/x",
                    "--rpc",
                    "tcp://127.0.0.1:7411",
                    "--peers",
                    "1=tcp://127.0.0.1:7402,2=tcp://127.0.0.1:7412,3=ipc:///tmp/p3"};
    assert_int_equal(s_parse(&cfg, 9, argv, err, sizeof err), 0);
    assert_int_equal(cfg.n_members, 3);
    assert_string_equal(ds_coord_member_peer(&cfg, 2), "tcp://127.0.0.1:7412");
    assert_null(ds_coord_member_peer(&cfg, 4));
    assert_int_equal(cfg.heartbeat_ms, 50);
    assert_int_equal(cfg.election_ms, 400);
}

static void test_bad_settings_say_what_to_change(void **state)
{
    (void)state;
    static const struct {
        const char *peers, *id, *extra, *expect;
    } cases[] = {
        {"1=tcp://a:1", "2", "--tick-ms=10", "--id 2 is not one of the members"},
        {"1=tcp://a:1,1=tcp://b:2", "1", "--tick-ms=10", "listed twice"},
        {"x=tcp://a:1", "1", "--tick-ms=10", "is not a member id"},
        {"1=http://a:1", "1", "--tick-ms=10", "not a tcp:// or ipc:// endpoint"},
        {"1tcp://a:1", "1", "--tick-ms=10", "is not ID=ENDPOINT"},
        {"1=tcp://a:1", "1", "--election-ms=60", "at least twice --heartbeat-ms"},
        {"1=tcp://a:1", "1", "--tick-ms=100", "must not exceed --heartbeat-ms"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ds_coord_config_t cfg;
        char err[256] = "";
        char *argv[] = {"dscoord",
                        "--id",
                        (char *)cases[i].id,
                        "--data",
                        "/tmp/x",
                        "--rpc",
                        "tcp://127.0.0.1:1",
                        "--peers",
                        (char *)cases[i].peers,
                        (char *)cases[i].extra};
        assert_int_equal(s_parse(&cfg, 10, argv, err, sizeof err), DS_EINVAL);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].expect);
    }
}

static void test_required_flags_are_named(void **state)
{
    (void)state;
    ds_coord_config_t cfg;
    char err[256];
    char *argv[] = {"dscoord", "--id", "1"};
    assert_int_equal(s_parse(&cfg, 3, argv, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "--data is required"));
}

static void test_keys_or_insecure_is_required_and_http_port_binds_localhost(void **state)
{
    (void)state;
    ds_coord_config_t cfg;
    char err[512];
    bool help;
    char *argv[] = {"dscoord",
                    "--id",
                    "1",
                    "--data",
                    "/tmp/x",
                    "--rpc",
                    "tcp://127.0.0.1:7411",
                    "--peers",
                    "1=tcp://127.0.0.1:7402",
                    "--http",
                    "9100"};
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(
        ds_options_defaults(ds_coord_options, ds_coord_n_options, &cfg, err, sizeof err), 0);
    assert_int_equal(ds_options_parse_argv(ds_coord_options, ds_coord_n_options, &cfg, 11, argv, 1,
                                           &help, err, sizeof err),
                     0);
    assert_int_equal(ds_coord_config_finish(&cfg, err, sizeof err), DS_EINVAL);
    assert_non_null(strstr(err, "bootstrap-keys"));
    cfg.insecure = true;
    snprintf(cfg.keys, sizeof cfg.keys, "/etc/keys");
    assert_int_equal(ds_coord_config_finish(&cfg, err, sizeof err), DS_EINVAL);
    cfg.insecure = false;
    assert_int_equal(ds_coord_config_finish(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.http, "127.0.0.1:9100");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_or_insecure_is_required_and_http_port_binds_localhost),
        cmocka_unit_test(test_valid_flags_give_members_and_defaults),
        cmocka_unit_test(test_bad_settings_say_what_to_change),
        cmocka_unit_test(test_required_flags_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
