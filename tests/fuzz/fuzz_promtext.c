/*  tests/fuzz/fuzz_promtext.c - the Prometheus text parser, fed what an
    instance's metrics endpoint might return.

    Input: the exposition text. Whatever it is, the parser must return 0
    or a DS_E code with a NUL-terminated message that names a line; give
    the same answer twice; and on success return sorted, cumulative
    buckets within the limit, which the worker's forwarding
    (protocol/appmetrics.h) turns into at most DS_MAX_METRICS entries that
    the coordinator reads back sorted. */
#include "protocol/appmetrics.h"
#include "protocol/error.h"
#include "protocol/promtext.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_promtext: %s: %s\n", what, detail ? detail : "");
    abort();
}

typedef struct {
    ds_promtext_counter_t c[3];
    ds_promtext_histogram_t h[2];
    char err[256];
    int rc;
} s_run_t;

static void s_run(const char *text, size_t len, s_run_t *r)
{
    memset(r, 0, sizeof *r);
    memset(r->err, 'x', sizeof r->err);
    r->c[0].name = "http_requests_total";
    r->c[1].name = "http_requests_errors_total";
    r->c[2].name = "a";
    r->h[0].name = "http_request_duration_seconds";
    r->h[1].name = "h";
    r->rc = ds_promtext_extract(text, len, r->c, 3, r->h, 2, r->err, sizeof r->err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static s_run_t first, second;
    const char *text = (const char *)data;
    s_run(text, size, &first);
    s_run(text, size, &second);
    if (first.rc != second.rc)
        s_die("two parses disagree", first.err);
    if (first.rc != 0) {
        if (first.rc > 0 || memchr(first.err, '\0', sizeof first.err) == NULL)
            s_die("a failure broke the error contract", NULL);
        if (strncmp(first.err, "line ", 5) != 0 && strncmp(first.err, "histogram ", 10) != 0 &&
            strncmp(first.err, "the exposition", 14) != 0)
            s_die("an error message names no line", first.err);
        return 0;
    }
    for (int k = 0; k < 2; k++) {
        const ds_promtext_histogram_t *h = &first.h[k];
        if (h->n_buckets > DS_PROMTEXT_MAX_BUCKETS)
            s_die("too many buckets", h->name);
        for (uint32_t i = 0; i < h->n_buckets; i++) {
            if (isnan(h->buckets[i].le) || isnan(h->buckets[i].count))
                s_die("a NaN bucket was accepted", h->name);
            if (i > 0 && (h->buckets[i].le <= h->buckets[i - 1].le ||
                          h->buckets[i].count < h->buckets[i - 1].count))
                s_die("buckets are not sorted and cumulative", h->name);
        }
        if (memcmp(h->buckets, second.h[k].buckets, h->n_buckets * sizeof h->buckets[0]) != 0)
            s_die("two parses found different buckets", h->name);
    }
    static ds_appmetrics_t am;
    ds_appmetrics_build(&am, &first.c[0], &first.c[1], &first.h[0]);
    if (am.n > DS_MAX_METRICS)
        s_die("more metrics than a status holds", NULL);
    ds_appmetrics_sample_t back;
    (void)ds_appmetrics_read(am.metrics, am.n, &back);
    for (uint32_t i = 1; i < back.n_buckets; i++)
        if (back.buckets[i].le_s <= back.buckets[i - 1].le_s ||
            back.buckets[i].count < back.buckets[i - 1].count)
            s_die("forwarded buckets read back unsorted", NULL);
    return 0;
}
