/*  protocol/promtext.h - a bounded parser of the Prometheus text exposition
    format, version 0.0.4 (pure).

    The worker scrapes an instance's metrics endpoint (spec `metrics.path`)
    and needs a handful of values from it: counters summed over their label
    sets (requests, errors) and one histogram's cumulative buckets summed by
    `le`. This parser reads the whole exposition in one pass, checks every
    line, and extracts exactly those values into fixed-size results owned
    by the caller: it never allocates, and the input, the samples and the
    buckets are bounded by the limits below.

    Accepted (docs/telemetry.md, "Scraping"): lines separated by '\n' (a
    '\r' before it is ignored); blank lines; comments, where `# HELP name
    text` needs a valid metric name and `# TYPE name type` one of counter,
    gauge, histogram, summary, untyped; samples
        name{label="value",...} value [timestamp]
    with optional whitespace around the braces, '=' and ',', a trailing
    comma, `\\`, `\"` and `\n` escapes in label values (any other escaped
    byte stands for itself), values as Go's ParseFloat writes them in
    decimal (`1`, `-2.5e-3`, `NaN`, `+Inf`, `-Inf`, `Inf`, case-insensitive),
    and an optional integer timestamp in milliseconds (ignored). A label
    name may appear once per sample. Anything else fails the whole scrape,
    as it does in Prometheus: a half-read exposition is not a measurement.

    Not accepted: NUL bytes, hexadecimal or underscored numbers, OpenMetrics
    extensions (`# EOF`, exemplars, `_created`).
*/
#ifndef DS_PROTOCOL_PROMTEXT_H
#define DS_PROTOCOL_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_PROMTEXT_MAX_INPUT   (4u * 1024u * 1024u) /* bytes of one exposition */
#define DS_PROMTEXT_MAX_SAMPLES 200000u              /* sample lines in one exposition */
#define DS_PROMTEXT_MAX_LABELS  64u                  /* labels of one sample */
#define DS_PROMTEXT_MAX_BUCKETS 64u                  /* distinct `le` bounds of one histogram */
#define DS_PROMTEXT_MAX_NUMBER  63u                  /* bytes of one value, `le` or timestamp */

/*  A counter (or gauge) to extract: every sample whose name is exactly
    `name`, whatever its labels, is added up. */
typedef struct {
    const char *name; /* in: borrowed */
    uint32_t series;  /* out: samples found (label sets); 0 = absent */
    double value;     /* out: their sum (NaN if one of them is NaN) */
} ds_promtext_counter_t;

/*  One cumulative bucket: observations <= le. */
typedef struct {
    double le; /* upper bound, in the histogram's unit; INFINITY for "+Inf" */
    double count;
} ds_promtext_bucket_t;

/*  A histogram to extract: the samples `<name>_bucket{le=...}`,
    `<name>_sum` and `<name>_count`, summed over the other labels (bucket
    counts are added per `le`). */
typedef struct {
    const char *name; /* in: the base name, borrowed */
    uint32_t series;  /* out: `_bucket` samples found; 0 = absent */
    uint32_t n_buckets;
    ds_promtext_bucket_t buckets[DS_PROMTEXT_MAX_BUCKETS]; /* sorted by le, cumulative */
    bool has_sum;
    bool has_count;
    double sum;
    double count;
} ds_promtext_histogram_t;

/*  Parses `len` bytes of `text` (not NUL-terminated) and fills the
    `n_counters` counters and `n_histograms` histograms the caller named
    (either array may be NULL when its count is 0; a NULL or empty name
    matches nothing). Outputs are reset first.

    Returns 0; DS_ETOOBIG when the input, the samples, the labels of one
    sample or the buckets of a wanted histogram exceed the limits above;
    DS_EINVAL for a malformed line or a wanted histogram whose buckets are
    not cumulative (counts that decrease as `le` grows, or NaN); or
    DS_EENCODING for a NUL byte. On failure `err` (of `errlen` bytes, may
    be NULL) holds one sentence that starts with the line and column,
    e.g. `line 12:18: expected '=' after label name "code"`, and the
    outputs must not be used. */
int ds_promtext_extract(const char *text, size_t len, ds_promtext_counter_t *counters,
                        uint32_t n_counters, ds_promtext_histogram_t *histograms,
                        uint32_t n_histograms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Parses one number as the format writes it (see above) from `len`
    bytes of `s`. Returns 0 with *out set, or DS_EINVAL. */
int ds_promtext_number(const char *s, size_t len, double *out) __attribute__((warn_unused_result));

#endif
