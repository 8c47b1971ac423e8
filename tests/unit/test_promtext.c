/*  tests/unit/test_promtext.c - the Prometheus text parser
    (protocol/promtext.h) and the names a worker forwards app metrics
    under (protocol/appmetrics.h): what is extracted, every kind of
    malformed line refused with its line and column, the limits, and a
    scrape turned into heartbeat metrics and back. */
#include "protocol/appmetrics.h"
#include "protocol/error.h"
#include "protocol/promtext.h"

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
    ds_promtext_counter_t c[2];
    ds_promtext_histogram_t h;
    char err[256];
} fx_t;

/*  Parses `text` for counters "reqs", "errs" and histogram "lat". */
static int s_parse(fx_t *fx, const char *text)
{
    memset(fx, 0, sizeof *fx);
    fx->c[0].name = "reqs";
    fx->c[1].name = "errs";
    fx->h.name = "lat";
    return ds_promtext_extract(text, strlen(text), fx->c, 2, &fx->h, 1, fx->err, sizeof fx->err);
}

/*  Expects `text` refused with `code` and a message containing `want`. */
static void s_refused(const char *text, int code, const char *want)
{
    fx_t fx;
    int rc = s_parse(&fx, text);
    if (rc != code || !strstr(fx.err, want))
        fail_msg("input %s: got %d \"%s\", want %d \"%s\"", text, rc, fx.err, code, want);
}

static void test_counter_summed_over_label_sets(void **state)
{
    (void)state;
    fx_t fx;
    const char *text = "# HELP reqs Requests served.\n"
                       "# TYPE reqs counter\n"
                       "reqs{method=\"GET\",code=\"200\"} 100\n"
                       "reqs{method=\"POST\",code=\"500\"} 20.5 1700000000000\n"
                       "reqs_other 7\n"
                       "errs 3\n";
    assert_int_equal(s_parse(&fx, text), 0);
    assert_int_equal(fx.c[0].series, 2);
    assert_true(fx.c[0].value == 120.5);
    assert_int_equal(fx.c[1].series, 1);
    assert_true(fx.c[1].value == 3);
    assert_int_equal(fx.h.series, 0);
}

static void test_histogram_buckets_summed_by_le_and_sorted(void **state)
{
    (void)state;
    fx_t fx;
    const char *text = "# TYPE lat histogram\n"
                       "lat_bucket{path=\"/a\",le=\"+Inf\"} 10\n"
                       "lat_bucket{path=\"/a\",le=\"0.1\"} 4\n"
                       "lat_bucket{path=\"/a\",le=\"0.5\"} 9\n"
                       "lat_bucket{le=\"0.1\",path=\"/b\"} 1\n"
                       "lat_bucket{le=\"0.5\",path=\"/b\"} 2\n"
                       "lat_bucket{le=\"+Inf\",path=\"/b\"} 2\n"
                       "lat_sum{path=\"/a\"} 2.5\n"
                       "lat_sum{path=\"/b\"} 0.5\n"
                       "lat_count{path=\"/a\"} 10\n"
                       "lat_count{path=\"/b\"} 2\n";
    assert_int_equal(s_parse(&fx, text), 0);
    assert_int_equal(fx.h.series, 6);
    assert_int_equal(fx.h.n_buckets, 3);
    assert_true(fx.h.buckets[0].le == 0.1 && fx.h.buckets[0].count == 5);
    assert_true(fx.h.buckets[1].le == 0.5 && fx.h.buckets[1].count == 11);
    assert_true(isinf(fx.h.buckets[2].le) && fx.h.buckets[2].count == 12);
    assert_true(fx.h.has_sum && fx.h.sum == 3.0);
    assert_true(fx.h.has_count && fx.h.count == 12);
}

static void test_label_values_with_escapes_and_separators(void **state)
{
    (void)state;
    fx_t fx;
    /* Quotes, backslashes, braces, commas and '=' inside values must not
       end the value; \n decodes; an unknown escape stands for itself. */
    const char *text = "reqs{a=\"x\\\"}, y=1\",b=\"c:\\\\d\\n\",c=\"\\q\",} 1\n"
                       "reqs { d = \"\" } 2\n"
                       "reqs{} 3\n"
                       "lat_bucket{le=\"1e-1\",q=\"}\"} 1\n";
    assert_int_equal(s_parse(&fx, text), 0);
    assert_true(fx.c[0].value == 6);
    assert_int_equal(fx.h.n_buckets, 1);
    assert_true(fx.h.buckets[0].le == 0.1);
}

static void test_special_values_and_timestamps(void **state)
{
    (void)state;
    fx_t fx;
    assert_int_equal(s_parse(&fx, "errs NaN\n"), 0);
    assert_true(isnan(fx.c[1].value));
    assert_int_equal(s_parse(&fx, "errs +Inf\nreqs -Inf -1\n"), 0);
    assert_true(isinf(fx.c[1].value) && fx.c[1].value > 0);
    assert_true(isinf(fx.c[0].value) && fx.c[0].value < 0);
    assert_int_equal(s_parse(&fx, "reqs 1.5e3 123\r\nerrs\t-2.5E-1\t\t\n"), 0);
    assert_true(fx.c[0].value == 1500);
    assert_true(fx.c[1].value == -0.25);
}

static void test_blank_lines_comments_and_no_final_newline(void **state)
{
    (void)state;
    fx_t fx;
    const char *text = "\n   \n# just a comment\n#no space\n  # HELP reqs with \\n escape\n"
                       "# TYPE errs gauge\n# HELP lat\nreqs 4";
    assert_int_equal(s_parse(&fx, text), 0);
    assert_true(fx.c[0].value == 4);
    assert_int_equal(s_parse(&fx, ""), 0);
    assert_int_equal(fx.c[0].series, 0);
}

static void test_malformed_lines_name_line_and_column(void **state)
{
    (void)state;
    s_refused("reqs 1\nreqs{code=\"200\" 1\n", DS_EINVAL,
              "line 2:17: expected ',' or '}' after a label, found '1'");
    s_refused("reqs{code 200} 1\n", DS_EINVAL, "line 1:11: expected '=' after label name \"code\"");
    s_refused("reqs{code=200} 1\n", DS_EINVAL, "line 1:11: expected '\"'");
    s_refused("reqs{code=\"200} 1\n", DS_EINVAL,
              "line 1:11: the label value opened here is not closed");
    s_refused("reqs{code=\"2\\", DS_EINVAL, "lone '\\'");
    s_refused("reqs{1a=\"x\"} 1\n", DS_EINVAL, "line 1:6: expected a label name or '}'");
    s_refused("\n\n9reqs 1\n", DS_EINVAL, "line 3:1: expected a metric name");
    s_refused("reqs\n", DS_EINVAL, "line 1:5: the sample has no value");
    s_refused("reqs 1x\n", DS_EINVAL, "line 1:6: the value is not a number");
    s_refused("reqs 0x10\n", DS_EINVAL, "the value is not a number");
    s_refused("reqs 1 12.5\n", DS_EINVAL, "line 1:8: the timestamp is not a whole number");
    s_refused("reqs 1 12 extra\n", DS_EINVAL, "line 1:11: unexpected 'e' after the timestamp");
    s_refused("reqs-total 1\n", DS_EINVAL, "line 1:5: expected a space before the value");
    s_refused("reqs{a=\"1\",a=\"2\"} 1\n", DS_EINVAL, "label \"a\" appears twice");
    s_refused("# TYPE reqs countr\n", DS_EINVAL, "line 1:13: # TYPE: unknown type");
    s_refused("# TYPE reqs\n", DS_EINVAL, "# TYPE: expected a space and a type");
    s_refused("# TYPE reqs counter x\n", DS_EINVAL, "unexpected 'x' after the type");
    s_refused("# HELP 1x\n", DS_EINVAL, "# HELP needs a metric name");
    s_refused("lat_bucket 1\n", DS_EINVAL, "line 1:1: a histogram bucket needs an le label");
    s_refused("lat_bucket{le=\"fast\"} 1\n", DS_EINVAL, "line 1:15: le: the bucket bound");
    s_refused("lat_bucket{le=\"NaN\"} 1\n", DS_EINVAL, "le: the bucket bound");
}

static void test_nul_byte_refused_with_its_line(void **state)
{
    (void)state;
    fx_t fx;
    memset(&fx, 0, sizeof fx);
    const char text[] = "reqs 1\nreqs{a=\"x\0\"} 1\n";
    int rc = ds_promtext_extract(text, sizeof text - 1, fx.c, 0, NULL, 0, fx.err, sizeof fx.err);
    assert_int_equal(rc, DS_EENCODING);
    assert_non_null(strstr(fx.err, "line 2:10: NUL byte"));
}

static void test_limits_refused(void **state)
{
    (void)state;
    fx_t fx;
    /* Input larger than the cap is refused before it is read. */
    assert_int_equal(
        ds_promtext_extract("", DS_PROMTEXT_MAX_INPUT + 1, NULL, 0, NULL, 0, fx.err, sizeof fx.err),
        DS_ETOOBIG);
    assert_non_null(strstr(fx.err, "more than the limit"));

    /* One more distinct bucket than a histogram may have. */
    size_t cap = 64 * (DS_PROMTEXT_MAX_BUCKETS + 1);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = 0;
    for (uint32_t i = 0; i <= DS_PROMTEXT_MAX_BUCKETS; i++)
        n += (size_t)snprintf(text + n, cap - n, "lat_bucket{le=\"%u\"} %u\n", i, i);
    memset(&fx, 0, sizeof fx);
    fx.h.name = "lat";
    assert_int_equal(ds_promtext_extract(text, n, NULL, 0, &fx.h, 1, fx.err, sizeof fx.err),
                     DS_ETOOBIG);
    assert_non_null(strstr(fx.err, "line 65: histogram \"lat\" has more than 64"));
    /* Buckets of a histogram nobody asked for are not counted. */
    assert_int_equal(ds_promtext_extract(text, n, NULL, 0, NULL, 0, fx.err, sizeof fx.err), 0);
    free(text);

    /* More labels in one sample than allowed. */
    cap = 16 * (DS_PROMTEXT_MAX_LABELS + 2);
    text = malloc(cap);
    assert_non_null(text);
    n = (size_t)snprintf(text, cap, "reqs{");
    for (uint32_t i = 0; i <= DS_PROMTEXT_MAX_LABELS; i++)
        n += (size_t)snprintf(text + n, cap - n, "l%u=\"\",", i);
    n += (size_t)snprintf(text + n, cap - n, "} 1\n");
    assert_int_equal(ds_promtext_extract(text, n, NULL, 0, NULL, 0, fx.err, sizeof fx.err),
                     DS_ETOOBIG);
    assert_non_null(strstr(fx.err, "more than 64 labels"));
    free(text);

    /* More sample lines than allowed ("a 1\n" is 4 bytes). */
    n = 4 * ((size_t)DS_PROMTEXT_MAX_SAMPLES + 1);
    text = malloc(n);
    assert_non_null(text);
    for (size_t i = 0; i < n; i += 4)
        memcpy(text + i, "a 1\n", 4);
    assert_int_equal(ds_promtext_extract(text, n, NULL, 0, NULL, 0, fx.err, sizeof fx.err),
                     DS_ETOOBIG);
    assert_non_null(strstr(fx.err, "line 200001:1: more than 200000 samples"));
    free(text);
}

static void test_non_cumulative_histogram_refused(void **state)
{
    (void)state;
    s_refused("lat_bucket{le=\"0.1\"} 5\nlat_bucket{le=\"0.2\"} 3\n", DS_EINVAL,
              "histogram \"lat\": bucket le=0.2 counts 3, less than le=0.1 (5)");
    s_refused("lat_bucket{le=\"0.1\"} NaN\n", DS_EINVAL, "is not a number");
}

static void test_number_grammar(void **state)
{
    (void)state;
    static const char *const good[] = {"0",   "-0",   "+1",     "1.",       ".5",
                                       "1e3", "1E+3", "2.5e-3", "NaN",      "nan",
                                       "Inf", "+inf", "-Inf",   "infinity", "007"};
    static const char *const bad[] = {"",      "+",    "-",  ".",  "e3",   "1e",   "1e+", "0x1p3",
                                      "1_000", "1..2", " 1", "1 ", "Infx", "nan1", "--1", "1,5"};
    double v;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (ds_promtext_number(good[i], strlen(good[i]), &v) != 0)
            fail_msg("\"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ds_promtext_number(bad[i], strlen(bad[i]), &v) == 0)
            fail_msg("\"%s\" accepted", bad[i]);
    char long_number[80];
    memset(long_number, '1', sizeof long_number);
    assert_int_equal(ds_promtext_number(long_number, sizeof long_number, &v), DS_EINVAL);
}

/* ---- appmetrics ---------------------------------------------------- */

static void test_appmetric_names_classified(void **state)
{
    (void)state;
    double le = -1;
    assert_int_equal(ds_appmetrics_kind("requests", NULL), DS_APPMETRIC_KIND_REQUESTS);
    assert_int_equal(ds_appmetrics_kind("errors", NULL), DS_APPMETRIC_KIND_ERRORS);
    assert_int_equal(ds_appmetrics_kind("latency_count", NULL), DS_APPMETRIC_KIND_LATENCY_COUNT);
    assert_int_equal(ds_appmetrics_kind("latency_sum", NULL), DS_APPMETRIC_KIND_LATENCY_SUM);
    assert_int_equal(ds_appmetrics_kind("latency_le:0.25", &le), DS_APPMETRIC_KIND_LATENCY_LE);
    assert_true(le == 0.25);
    assert_int_equal(ds_appmetrics_kind("latency_le:+Inf", &le), DS_APPMETRIC_KIND_LATENCY_LE);
    assert_true(isinf(le));
    assert_int_equal(ds_appmetrics_kind("latency_le:-1", &le), DS_APPMETRIC_UNKNOWN);
    assert_int_equal(ds_appmetrics_kind("latency_le:NaN", &le), DS_APPMETRIC_UNKNOWN);
    assert_int_equal(ds_appmetrics_kind("latency_le:", &le), DS_APPMETRIC_UNKNOWN);
    assert_int_equal(ds_appmetrics_kind("latency", &le), DS_APPMETRIC_UNKNOWN);
    assert_int_equal(ds_appmetrics_kind(NULL, &le), DS_APPMETRIC_UNKNOWN);
    char name[DS_APPMETRIC_NAME_CAP];
    ds_appmetrics_le_name(0.005, name, sizeof name);
    assert_string_equal(name, "latency_le:0.005");
    ds_appmetrics_le_name(INFINITY, name, sizeof name);
    assert_string_equal(name, "latency_le:+Inf");
}

static void test_scrape_to_heartbeat_and_back(void **state)
{
    (void)state;
    fx_t fx;
    const char *text = "reqs{code=\"200\"} 90\nreqs{code=\"500\"} 10\n"
                       "lat_bucket{le=\"0.05\"} 60\nlat_bucket{le=\"0.25\"} 95\n"
                       "lat_bucket{le=\"+Inf\"} 100\nlat_sum 4.5\nlat_count 100\n";
    assert_int_equal(s_parse(&fx, text), 0);
    /* errs is absent: with requests present it is sent as 0. */
    static ds_appmetrics_t am;
    ds_appmetrics_build(&am, &fx.c[0], &fx.c[1], &fx.h);
    assert_int_equal(am.n, 2 + 2 + 3);
    ds_appmetrics_sample_t got;
    assert_int_equal(ds_appmetrics_read(am.metrics, am.n, &got), 0);
    assert_true(got.has_requests && got.requests == 100);
    assert_true(got.has_errors && got.errors == 0);
    assert_true(got.has_count && got.latency_count == 100);
    assert_true(got.has_sum && got.latency_sum == 4.5);
    assert_int_equal(got.n_buckets, 3);
    assert_true(got.buckets[0].le_s == 0.05 && got.buckets[0].count == 60);
    assert_true(isinf(got.buckets[2].le_s) && got.buckets[2].count == 100);

    /* Not configured, or absent without requests: left out. */
    fx.c[0].series = 0;
    ds_appmetrics_build(&am, &fx.c[0], &fx.c[1], NULL);
    assert_int_equal(am.n, 0);
    ds_appmetrics_build(&am, NULL, NULL, NULL);
    assert_int_equal(am.n, 0);
}

static void test_wide_histogram_thinned_keeping_last_bucket(void **state)
{
    (void)state;
    static ds_promtext_histogram_t h;
    memset(&h, 0, sizeof h);
    h.name = "lat";
    h.series = DS_PROMTEXT_MAX_BUCKETS;
    h.n_buckets = DS_PROMTEXT_MAX_BUCKETS;
    for (uint32_t i = 0; i < h.n_buckets; i++) {
        h.buckets[i].le = i + 1 == h.n_buckets ? INFINITY : 0.001 * (i + 1);
        h.buckets[i].count = i;
    }
    h.has_count = h.has_sum = true;
    h.count = 63;
    ds_promtext_counter_t req = {.name = "r", .series = 1, .value = 5};
    ds_promtext_counter_t errs = {.name = "e", .series = 1, .value = 1};
    static ds_appmetrics_t am;
    ds_appmetrics_build(&am, &req, &errs, &h);
    assert_int_equal(am.n, DS_MAX_METRICS);
    ds_appmetrics_sample_t got;
    assert_int_equal(ds_appmetrics_read(am.metrics, am.n, &got), 0);
    assert_int_equal(got.n_buckets, DS_MAX_METRICS - 4);
    assert_true(isinf(got.buckets[got.n_buckets - 1].le_s));
    for (uint32_t i = 1; i < got.n_buckets; i++)
        assert_true(got.buckets[i].le_s > got.buckets[i - 1].le_s);
}

static void test_untrusted_metrics_read_defensively(void **state)
{
    (void)state;
    ds_metric_t m[] = {
        {"requests", 10},
        {"requests", 99},
        {"errors", -1},
        {"bogus", 1},
        {"latency_le:0.2", 5},
        {"latency_le:0.1", 3},
        {"latency_le:0.1", 4},
        {"latency_sum", NAN},
        {"latency_count", INFINITY},
        {NULL, 1},
        {"errors", 1e17},
    };
    ds_appmetrics_sample_t got;
    uint32_t ignored = ds_appmetrics_read(m, sizeof m / sizeof m[0], &got);
    assert_int_equal(ignored, 8); /* 1e17 is above 2^53 */
    assert_true(got.has_requests && got.requests == 10);
    assert_false(got.has_errors || got.has_sum || got.has_count);
    assert_int_equal(got.n_buckets, 2);
    assert_true(got.buckets[0].le_s == 0.1 && got.buckets[0].count == 3);

    /* Decreasing counts: the histogram is dropped whole. */
    ds_metric_t bad[] = {{"latency_le:0.1", 5}, {"latency_le:0.2", 3}};
    assert_int_equal(ds_appmetrics_read(bad, 2, &got), 2);
    assert_int_equal(got.n_buckets, 0);
    assert_int_equal(ds_appmetrics_read(NULL, 0, &got), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_summed_over_label_sets),
        cmocka_unit_test(test_histogram_buckets_summed_by_le_and_sorted),
        cmocka_unit_test(test_label_values_with_escapes_and_separators),
        cmocka_unit_test(test_special_values_and_timestamps),
        cmocka_unit_test(test_blank_lines_comments_and_no_final_newline),
        cmocka_unit_test(test_malformed_lines_name_line_and_column),
        cmocka_unit_test(test_nul_byte_refused_with_its_line),
        cmocka_unit_test(test_limits_refused),
        cmocka_unit_test(test_non_cumulative_histogram_refused),
        cmocka_unit_test(test_number_grammar),
        cmocka_unit_test(test_appmetric_names_classified),
        cmocka_unit_test(test_scrape_to_heartbeat_and_back),
        cmocka_unit_test(test_wide_histogram_thinned_keeping_last_bucket),
        cmocka_unit_test(test_untrusted_metrics_read_defensively),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
