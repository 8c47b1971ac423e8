/*  protocol/promtext.c - the Prometheus text exposition parser (pure; see
    promtext.h). One pass, line by line, no allocation. */
#include "protocol/promtext.h"

#include "protocol/error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  The state of one parse. */
typedef struct {
    const char *text;
    size_t len;
    size_t pos;      /* offset of the current byte */
    size_t line_at;  /* offset where the current line starts */
    size_t line_end; /* offset of the current line's end ('\n', '\r' or len) */
    uint32_t line;   /* 1-based */
    uint32_t samples;
    ds_promtext_counter_t *counters;
    uint32_t n_counters;
    ds_promtext_histogram_t *hists;
    uint32_t n_hists;
    char *err;
    size_t errlen;
} s_parser_t;

/*  What a sample is to the caller. */
typedef enum { S_NONE, S_COUNTER, S_BUCKET, S_SUM, S_COUNT } s_role_t;

typedef struct {
    const char *p;
    size_t n;
} s_span_t;

static int s_fail(s_parser_t *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Fails with "line L:C: <message>", C the column of ps->pos. */
static int s_fail(s_parser_t *ps, int code, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ds_errf(ps->err, ps->errlen, code, "line %u:%u: %s", (unsigned)ps->line,
                   (unsigned)(ps->pos - ps->line_at + 1), msg);
}

/*  A byte of input, quoted for a message ("'x'", "end of line"). */
static const char *s_what(const s_parser_t *ps, char *buf, size_t len)
{
    if (ps->pos >= ps->line_end)
        return "the end of the line";
    unsigned char c = (unsigned char)ps->text[ps->pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, len, "'%c'", c);
    else
        snprintf(buf, len, "byte 0x%02x", c);
    return buf;
}

static bool s_at_end(const s_parser_t *ps)
{
    return ps->pos >= ps->line_end;
}

static char s_peek(const s_parser_t *ps)
{
    return s_at_end(ps) ? '\0' : ps->text[ps->pos];
}

static bool s_is_space(char c)
{
    return c == ' ' || c == '\t';
}

static size_t s_skip_space(s_parser_t *ps)
{
    size_t from = ps->pos;
    while (!s_at_end(ps) && s_is_space(ps->text[ps->pos]))
        ps->pos++;
    return ps->pos - from;
}

static bool s_is_name_start(char c, bool metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':');
}

static bool s_is_name_char(char c, bool metric)
{
    return s_is_name_start(c, metric) || (c >= '0' && c <= '9');
}

/*  Reads a metric name (metric) or a label name into `out`; 0 or -1. */
static int s_name(s_parser_t *ps, bool metric, s_span_t *out)
{
    if (s_at_end(ps) || !s_is_name_start(ps->text[ps->pos], metric))
        return -1;
    out->p = ps->text + ps->pos;
    while (!s_at_end(ps) && s_is_name_char(ps->text[ps->pos], metric))
        ps->pos++;
    out->n = (size_t)(ps->text + ps->pos - out->p);
    return 0;
}

/*  Reads a token up to whitespace or the end of the line. */
static s_span_t s_token(s_parser_t *ps)
{
    s_span_t t = {ps->text + ps->pos, 0};
    while (!s_at_end(ps) && !s_is_space(ps->text[ps->pos]))
        ps->pos++;
    t.n = (size_t)(ps->text + ps->pos - t.p);
    return t;
}

static bool s_span_is(s_span_t s, const char *word)
{
    size_t n = strlen(word);
    return s.n == n && memcmp(s.p, word, n) == 0;
}

static bool s_span_is_nocase(s_span_t s, const char *word)
{
    size_t n = strlen(word);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return false;
    }
    return true;
}

/* ---- numbers ------------------------------------------------------ */

static size_t s_digits(const char *s, size_t len, size_t i)
{
    size_t from = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i - from;
}

int ds_promtext_number(const char *s, size_t len, double *out)
{
    if (!s || len == 0 || len > DS_PROMTEXT_MAX_NUMBER)
        return DS_EINVAL;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    s_span_t rest = {s + i, len - i};
    if (s_span_is_nocase(rest, "inf") || s_span_is_nocase(rest, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (s_span_is_nocase(rest, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t whole = s_digits(s, len, i);
    i += whole;
    size_t frac = 0;
    if (i < len && s[i] == '.') {
        i++;
        frac = s_digits(s, len, i);
        i += frac;
    }
    if (whole + frac == 0)
        return DS_EINVAL;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t exp = s_digits(s, len, i);
        if (exp == 0)
            return DS_EINVAL;
        i += exp;
    }
    if (i != len)
        return DS_EINVAL;
    /* The grammar above is a subset of strtod's in the C locale, which
       the daemons never change. */
    char copy[DS_PROMTEXT_MAX_NUMBER + 1];
    memcpy(copy, s, len);
    copy[len] = '\0';
    *out = strtod(copy, NULL);
    return 0;
}

/* ---- matching ----------------------------------------------------- */

static bool s_name_eq(s_span_t name, const char *want, const char *suffix)
{
    if (!want || !want[0])
        return false;
    size_t w = strlen(want), x = strlen(suffix);
    return name.n == w + x && memcmp(name.p, want, w) == 0 && memcmp(name.p + w, suffix, x) == 0;
}

/*  Finds what the caller wants of a sample named `name`: its counters
    (any number of them may share a name) are handled by the caller; this
    returns the histogram role, if any. */
static s_role_t s_hist_role(const s_parser_t *ps, s_span_t name, uint32_t *which)
{
    for (uint32_t i = 0; i < ps->n_hists; i++) {
        const char *base = ps->hists[i].name;
        s_role_t role = s_name_eq(name, base, "_bucket")  ? S_BUCKET
                        : s_name_eq(name, base, "_sum")   ? S_SUM
                        : s_name_eq(name, base, "_count") ? S_COUNT
                                                          : S_NONE;
        if (role != S_NONE) {
            *which = i;
            return role;
        }
    }
    return S_NONE;
}

static int s_add_bucket(s_parser_t *ps, ds_promtext_histogram_t *h, double le, double v)
{
    h->series++;
    for (uint32_t i = 0; i < h->n_buckets; i++) {
        if (h->buckets[i].le == le) {
            h->buckets[i].count += v;
            return 0;
        }
    }
    if (h->n_buckets == DS_PROMTEXT_MAX_BUCKETS)
        return ds_errf(ps->err, ps->errlen, DS_ETOOBIG,
                       "line %u: histogram \"%.64s\" has more than %u distinct buckets (le)",
                       (unsigned)ps->line, h->name, DS_PROMTEXT_MAX_BUCKETS);
    h->buckets[h->n_buckets].le = le;
    h->buckets[h->n_buckets].count = v;
    h->n_buckets++;
    return 0;
}

/* ---- lines -------------------------------------------------------- */

static int s_comment(s_parser_t *ps)
{
    ps->pos++; /* '#' */
    if (s_skip_space(ps) == 0)
        return 0; /* "#foo": a plain comment */
    s_span_t word = s_token(ps);
    bool help = s_span_is(word, "HELP"), type = s_span_is(word, "TYPE");
    if (!help && !type)
        return 0;
    s_skip_space(ps);
    s_span_t name;
    char what[16];
    if (s_name(ps, true, &name) != 0)
        return s_fail(ps, DS_EINVAL, "# %s needs a metric name, found %s", help ? "HELP" : "TYPE",
                      s_what(ps, what, sizeof what));
    if (help) {
        if (!s_at_end(ps) && !s_is_space(s_peek(ps)))
            return s_fail(ps, DS_EINVAL, "# HELP: %s in the metric name",
                          s_what(ps, what, sizeof what));
        return 0; /* the docstring is free text */
    }
    if (s_skip_space(ps) == 0)
        return s_fail(ps, DS_EINVAL, "# TYPE: expected a space and a type after the name, found %s",
                      s_what(ps, what, sizeof what));
    s_span_t t = s_token(ps);
    if (!s_span_is(t, "counter") && !s_span_is(t, "gauge") && !s_span_is(t, "histogram") &&
        !s_span_is(t, "summary") && !s_span_is(t, "untyped")) {
        ps->pos -= t.n;
        return s_fail(ps, DS_EINVAL,
                      "# TYPE: unknown type (use counter, gauge, histogram, summary or untyped)");
    }
    s_skip_space(ps);
    if (!s_at_end(ps))
        return s_fail(ps, DS_EINVAL, "# TYPE: unexpected %s after the type",
                      s_what(ps, what, sizeof what));
    return 0;
}

/*  Reads a quoted label value, decoding it into `out` (of `cap` bytes;
 *n_out set, or SIZE_MAX when it did not fit) when `out` is not NULL. */
static int s_label_value(s_parser_t *ps, char *out, size_t cap, size_t *n_out)
{
    char what[16];
    if (s_peek(ps) != '"')
        return s_fail(ps, DS_EINVAL, "expected '\"' to open the label value, found %s",
                      s_what(ps, what, sizeof what));
    size_t open = ps->pos++;
    size_t n = 0;
    for (;;) {
        if (s_at_end(ps)) {
            ps->pos = open;
            return s_fail(ps, DS_EINVAL, "the label value opened here is not closed with '\"'");
        }
        char c = ps->text[ps->pos++];
        if (c == '"')
            break;
        if (c == '\\') {
            if (s_at_end(ps))
                return s_fail(ps, DS_EINVAL, "the label value ends in a lone '\\'");
            c = ps->text[ps->pos++];
            if (c == 'n')
                c = '\n';
        }
        if (out && n < cap)
            out[n] = c;
        n++;
    }
    if (n_out)
        *n_out = n <= cap ? n : SIZE_MAX;
    return 0;
}

/*  Reads `{...}` (ps->pos at '{'). Fills `le` when asked for and found. */
static int s_labels(s_parser_t *ps, bool want_le, bool *has_le, double *le)
{
    s_span_t seen[DS_PROMTEXT_MAX_LABELS];
    uint32_t n_seen = 0;
    char what[16];
    ps->pos++; /* '{' */
    for (;;) {
        s_skip_space(ps);
        if (s_peek(ps) == '}') {
            ps->pos++;
            return 0;
        }
        s_span_t name;
        if (s_name(ps, false, &name) != 0)
            return s_fail(ps, DS_EINVAL, "expected a label name or '}', found %s",
                          s_what(ps, what, sizeof what));
        char quoted[80];
        snprintf(quoted, sizeof quoted, "%.*s", name.n > 64 ? 64 : (int)name.n, name.p);
        for (uint32_t i = 0; i < n_seen; i++)
            if (seen[i].n == name.n && memcmp(seen[i].p, name.p, name.n) == 0)
                return s_fail(ps, DS_EINVAL, "label \"%s\" appears twice", quoted);
        if (n_seen == DS_PROMTEXT_MAX_LABELS)
            return s_fail(ps, DS_ETOOBIG, "more than %u labels in one sample",
                          DS_PROMTEXT_MAX_LABELS);
        seen[n_seen++] = name;
        s_skip_space(ps);
        if (s_peek(ps) != '=')
            return s_fail(ps, DS_EINVAL, "expected '=' after label name \"%s\", found %s", quoted,
                          s_what(ps, what, sizeof what));
        ps->pos++;
        s_skip_space(ps);
        bool is_le = want_le && s_span_is(name, "le");
        char buf[DS_PROMTEXT_MAX_NUMBER + 1];
        size_t n = 0;
        size_t at = ps->pos;
        int rc = s_label_value(ps, is_le ? buf : NULL, DS_PROMTEXT_MAX_NUMBER, &n);
        if (rc != 0)
            return rc;
        if (is_le) {
            double v = 0;
            if (n == SIZE_MAX || ds_promtext_number(buf, n, &v) != 0 || isnan(v)) {
                ps->pos = at;
                return s_fail(ps, DS_EINVAL, "le: the bucket bound is not a number");
            }
            *has_le = true;
            *le = v;
        }
        s_skip_space(ps);
        if (s_peek(ps) == ',') {
            ps->pos++;
            continue;
        }
        if (s_peek(ps) != '}')
            return s_fail(ps, DS_EINVAL, "expected ',' or '}' after a label, found %s",
                          s_what(ps, what, sizeof what));
    }
}

static int s_sample(s_parser_t *ps)
{
    char what[16];
    s_span_t name;
    if (++ps->samples > DS_PROMTEXT_MAX_SAMPLES)
        return s_fail(ps, DS_ETOOBIG, "more than %u samples", DS_PROMTEXT_MAX_SAMPLES);
    if (s_name(ps, true, &name) != 0)
        return s_fail(ps, DS_EINVAL, "expected a metric name, found %s",
                      s_what(ps, what, sizeof what));
    uint32_t which = 0;
    s_role_t role = s_hist_role(ps, name, &which);
    bool has_le = false;
    double le = 0;
    size_t gap = s_skip_space(ps);
    if (s_peek(ps) == '{') {
        int rc = s_labels(ps, role == S_BUCKET, &has_le, &le);
        if (rc != 0)
            return rc;
        gap = s_skip_space(ps);
    }
    if (gap == 0 && !s_at_end(ps))
        return s_fail(ps, DS_EINVAL, "expected a space before the value, found %s",
                      s_what(ps, what, sizeof what));
    if (s_at_end(ps))
        return s_fail(ps, DS_EINVAL, "the sample has no value");
    size_t at = ps->pos;
    s_span_t tok = s_token(ps);
    double v = 0;
    if (ds_promtext_number(tok.p, tok.n, &v) != 0) {
        ps->pos = at;
        return s_fail(ps, DS_EINVAL, "the value is not a number (use 1.5, 2e3, NaN, +Inf, -Inf)");
    }
    s_skip_space(ps);
    if (!s_at_end(ps)) {
        at = ps->pos;
        s_span_t ts = s_token(ps);
        size_t neg = ts.p[0] == '-' ? 1 : 0;
        if (ts.n <= neg || ts.n - neg > 19 || s_digits(ts.p, ts.n, neg) != ts.n - neg) {
            ps->pos = at;
            return s_fail(ps, DS_EINVAL, "the timestamp is not a whole number of milliseconds");
        }
        s_skip_space(ps);
        if (!s_at_end(ps))
            return s_fail(ps, DS_EINVAL, "unexpected %s after the timestamp",
                          s_what(ps, what, sizeof what));
    }
    for (uint32_t i = 0; i < ps->n_counters; i++) {
        if (s_name_eq(name, ps->counters[i].name, "")) {
            ps->counters[i].series++;
            ps->counters[i].value += v;
        }
    }
    ds_promtext_histogram_t *h = role != S_NONE ? &ps->hists[which] : NULL;
    switch (role) {
    case S_BUCKET:
        if (!has_le) {
            ps->pos = ps->line_at;
            return s_fail(ps, DS_EINVAL, "a histogram bucket needs an le label");
        }
        return s_add_bucket(ps, h, le, v);
    case S_SUM:
        h->has_sum = true;
        h->sum += v;
        return 0;
    case S_COUNT:
        h->has_count = true;
        h->count += v;
        return 0;
    default:
        return 0;
    }
}

static int s_line(s_parser_t *ps)
{
    s_skip_space(ps);
    if (s_at_end(ps))
        return 0;
    if (s_peek(ps) == '#')
        return s_comment(ps);
    return s_sample(ps);
}

/*  Sorts the buckets by le and checks they are cumulative. */
static int s_finish_hist(s_parser_t *ps, ds_promtext_histogram_t *h)
{
    for (uint32_t i = 1; i < h->n_buckets; i++) {
        ds_promtext_bucket_t b = h->buckets[i];
        uint32_t j = i;
        for (; j > 0 && h->buckets[j - 1].le > b.le; j--)
            h->buckets[j] = h->buckets[j - 1];
        h->buckets[j] = b;
    }
    for (uint32_t i = 0; i < h->n_buckets; i++) {
        const ds_promtext_bucket_t *b = &h->buckets[i];
        if (isnan(b->count))
            return ds_errf(ps->err, ps->errlen, DS_EINVAL,
                           "histogram \"%.64s\": the count of bucket le=%g is not a number",
                           h->name, b->le);
        if (i > 0 && b->count < h->buckets[i - 1].count)
            return ds_errf(ps->err, ps->errlen, DS_EINVAL,
                           "histogram \"%.64s\": bucket le=%g counts %g, less than le=%g (%g): "
                           "buckets must be cumulative",
                           h->name, b->le, b->count, h->buckets[i - 1].le, h->buckets[i - 1].count);
    }
    return 0;
}

int ds_promtext_extract(const char *text, size_t len, ds_promtext_counter_t *counters,
                        uint32_t n_counters, ds_promtext_histogram_t *histograms,
                        uint32_t n_histograms, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n_counters; i++) {
        counters[i].series = 0;
        counters[i].value = 0;
    }
    for (uint32_t i = 0; i < n_histograms; i++) {
        const char *name = histograms[i].name;
        memset(&histograms[i], 0, sizeof histograms[i]);
        histograms[i].name = name;
    }
    if (len > DS_PROMTEXT_MAX_INPUT)
        return ds_errf(err, errlen, DS_ETOOBIG,
                       "the exposition has %zu bytes, more than the limit of %u", len,
                       DS_PROMTEXT_MAX_INPUT);
    if (len && !text)
        return ds_errf(err, errlen, DS_EINVAL, "no text");
    s_parser_t ps = {
        .text = text,
        .len = len,
        .line = 1,
        .counters = counters,
        .n_counters = n_counters,
        .hists = histograms,
        .n_hists = n_histograms,
        .err = err,
        .errlen = errlen,
    };
    const char *nul = len ? memchr(text, '\0', len) : NULL;
    while (ps.line_at < len) {
        const char *nl = memchr(text + ps.line_at, '\n', len - ps.line_at);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (nul && (size_t)(nul - text) < end) {
            ps.pos = (size_t)(nul - text);
            ps.line_end = end;
            return s_fail(&ps, DS_EENCODING, "NUL byte in the text");
        }
        ps.line_end = end > ps.line_at && text[end - 1] == '\r' ? end - 1 : end;
        ps.pos = ps.line_at;
        int rc = s_line(&ps);
        if (rc != 0)
            return rc;
        ps.line_at = end + 1;
        ps.line++;
    }
    for (uint32_t i = 0; i < n_histograms; i++) {
        int rc = s_finish_hist(&ps, &histograms[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}
