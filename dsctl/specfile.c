/*  dsctl/specfile.c - the release spec file (YAML, libfyaml) to ds_spec_t.

    The text is checked (size, UTF-8, no NUL), loaded into a libfyaml
    document with duplicate keys allowed (we report them ourselves, with
    the field's name), then walked against a schema: one table of fields
    per mapping (top level, health, strategy, analysis, metrics, a test).
    A field says its YAML key, its member name as ds_spec_validate()
    spells it, how its text is read and where it goes.

    The walk records where each field was given, by struct path
    ("health.interval_ms") in a table of marks. The table finds a field
    given twice (also under its alias) and gives a validator message the
    line and column of the key that set the field.

    The walk only descends the schema's fixed depth (top, section or list,
    item, field); libfyaml bounds the document's own nesting.
*/
#include "dsctl/specfile.h"

#include "dsctl/args.h"
#include "protocol/options.h"

#include "protocol/error.h"
#include "protocol/limits.h"

#include <libfyaml.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_KEY    DS_MAX_LABEL /* bytes of an env or selector key */
#define S_MAX_SCALAR DS_MAX_TEXT  /* bytes of any string value (the largest any field allows) */
#define S_PATH_MAX   64u /* "analysis.max_error_ratio_vs_baseline", "tests[15].timeout_ms" */
#define S_NUM_MAX    40u /* bytes of a number or duration */
/* Distinct struct paths a spec can set: top-level and section fields,
   then one per list item and per key and value of a map. */
#define S_MAX_MARKS (64u + DS_MAX_ARGS + 2u * DS_MAX_ENV + 2u * DS_MAX_LABELS + 4u * DS_MAX_TESTS)

/* ------------------------------------------------------------------ */
/* context, positions and messages                                     */

typedef struct {
    int line; /* 1-based; 0 = unknown */
    int col;
} s_pos_t;

typedef struct {
    char path[S_PATH_MAX]; /* struct path, as ds_spec_validate() names it */
    char as[S_PATH_MAX];   /* the YAML path that set it */
    s_pos_t pos;
} s_mark_t;

typedef struct {
    const char *name; /* the file, in messages */
    ds_arena_t *arena;
    char *err;
    size_t errlen;
    s_mark_t *marks;
    size_t n_marks;
} s_ctx_t;

static const s_pos_t s_nowhere = {0, 0};

__attribute__((format(printf, 4, 5))) static int s_failc(s_ctx_t *c, int code, s_pos_t pos,
                                                         const char *fmt, ...)
{
    char msg[DS_SPECFILE_ERR_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pos.line > 0)
        return ds_errf(c->err, c->errlen, code, "%s:%d:%d: %s", c->name, pos.line, pos.col, msg);
    return ds_errf(c->err, c->errlen, code, "%s: %s", c->name, msg);
}

#define s_fail(c, pos, ...) s_failc((c), DS_EINVAL, (pos), __VA_ARGS__)

static int s_nomem(s_ctx_t *c, s_pos_t pos, const char *field)
{
    return s_failc(c, DS_ENOMEM, pos,
                   "%s: out of memory (the spec needs more than the arena holds)", field);
}

/*  Where a node starts. Only scalars carry a position in libfyaml's
    node API, so a mapping or list is placed at its first scalar, and
    an empty one at `fallback` (the key that holds it). */
static s_pos_t s_pos(struct fy_node *n, s_pos_t fallback)
{
    for (int step = 0; n && step < 8; step++) {
        void *it = NULL;
        switch (fy_node_get_type(n)) {
        case FYNT_SCALAR: {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *m = t ? fy_token_start_mark(t) : NULL;
            if (!m)
                return fallback;
            return (s_pos_t){m->line + 1, m->column + 1};
        }
        case FYNT_MAPPING: {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
            break;
        }
        default:
            n = fy_node_sequence_iterate(n, &it);
            break;
        }
    }
    return fallback;
}

/*  The same without the quotes, for a map key inside a field's name
    ("env.LOG_LEVEL"). */
static ds_spec_quote_t s_bare(const char *s, size_t len)
{
    ds_spec_quote_t q = ds_spec_quote(s, len);
    size_t n = strlen(q.s);
    memmove(q.s, q.s + 1, n - 2);
    q.s[n - 2] = '\0';
    return q;
}

static bool s_is_text(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_SCALAR && !fy_node_is_alias(n);
}

static const char *s_text(struct fy_node *n, size_t *len)
{
    const char *t = fy_node_get_scalar(n, len);
    if (!t) {
        *len = 0;
        return "";
    }
    return t;
}

/*  YAML's null: an empty plain value, "~" or "null". */
static bool s_is_null(struct fy_node *n)
{
    if (!n)
        return true;
    if (!s_is_text(n) || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    size_t len;
    const char *t = s_text(n, &len);
    return len == 0 || (len == 1 && t[0] == '~') ||
           (len == 4 &&
            (memcmp(t, "null", 4) == 0 || memcmp(t, "Null", 4) == 0 || memcmp(t, "NULL", 4) == 0));
}

/*  What a node is, for "expected X, found Y". */
static ds_spec_quote_t s_found(struct fy_node *n)
{
    ds_spec_quote_t q;
    const char *what = NULL;
    if (s_is_null(n))
        what = "nothing (null)";
    else if (fy_node_get_type(n) == FYNT_MAPPING)
        what = "a mapping";
    else if (fy_node_get_type(n) == FYNT_SEQUENCE)
        what = "a list";
    else if (fy_node_is_alias(n))
        what = "an alias";
    if (what) {
        snprintf(q.s, sizeof q.s, "%s", what);
        return q;
    }
    size_t len;
    const char *t = s_text(n, &len);
    return ds_spec_quote(t, len);
}

/*  "health" + "interval" -> "health.interval"; "" + "command" -> "command".
    Both come from the schema, so the result always fits. */
static void s_join(char *out, const char *prefix, const char *name)
{
    int n = snprintf(out, S_PATH_MAX, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    assert(n > 0 && n < (int)S_PATH_MAX);
    (void)n;
}

static const s_mark_t *s_find_mark(const s_ctx_t *c, const char *path)
{
    for (size_t i = 0; i < c->n_marks; i++)
        if (strcmp(c->marks[i].path, path) == 0)
            return &c->marks[i];
    return NULL;
}

/*  Records that struct path `path` was set by YAML path `as` at `pos`;
    a second time is an error, whichever spelling set it first. */
static int s_mark(s_ctx_t *c, const char *path, const char *as, s_pos_t pos)
{
    const s_mark_t *old = s_find_mark(c, path);
    if (old && strcmp(old->as, as) == 0)
        return s_fail(c, pos, "%s: given twice (first at line %d)", as, old->pos.line);
    if (old)
        return s_fail(c, pos, "%s: already set at line %d by %s (give one of them)", as,
                      old->pos.line, old->as);
    if (c->n_marks == S_MAX_MARKS)
        return s_fail(c, pos, "%s: too many fields in one spec", as);
    s_mark_t *m = &c->marks[c->n_marks++];
    snprintf(m->path, sizeof m->path, "%s", path);
    snprintf(m->as, sizeof m->as, "%s", as);
    m->pos = pos;
    return 0;
}

/*  The position of the field a validator message starts with
    ("health.timeout_ms: ..."), or of its nearest recorded parent
    ("tests[1].name" -> "tests[1]" -> "tests"). */
static s_pos_t s_validator_pos(const s_ctx_t *c, const char *msg)
{
    char path[S_PATH_MAX];
    size_t n = strcspn(msg, ": ");
    if (msg[n] != ':' || n >= sizeof path)
        return s_nowhere;
    memcpy(path, msg, n);
    path[n] = '\0';
    while (path[0]) {
        const s_mark_t *m = s_find_mark(c, path);
        if (m)
            return m->pos;
        char *dot = strrchr(path, '.');
        char *bracket = strrchr(path, '[');
        char *cut = dot;
        if (!cut || (bracket && bracket > cut))
            cut = bracket;
        if (!cut)
            break;
        *cut = '\0';
    }
    return s_nowhere;
}

/* ------------------------------------------------------------------ */
/* the schema                                                          */

typedef enum {
    S_STR,          /* char *; any scalar */
    S_COUNT,        /* uint32_t; a whole number above 0 */
    S_DURATION,     /* uint32_t or uint64_t ms (aux = width); "500ms", "5s", "2m", "1h" */
    S_BOOL,         /* bool; true or false */
    S_THRESHOLD,    /* double; a number, negative or "off" = DS_SPEC_OFF */
    S_SCALE,        /* uint32_t count, or percent "25%" (aux = offset of the percent flag) */
    S_HEALTH_KIND,  /* uint8_t; none, http, tcp, exec */
    S_INCONCLUSIVE, /* uint8_t; fail, promote */
    S_SECTION,      /* a nested mapping (sub) */
    S_ARGS,         /* top level only: args / n_args */
    S_ENV,          /* top level only: env / n_env */
    S_SELECTOR,     /* top level only: selector / n_selector */
    S_TESTS         /* top level only: tests / n_tests */
} s_kind_t;

struct s_section;

typedef struct {
    const char *key;    /* as the YAML file spells it */
    const char *member; /* as ds_spec_validate() spells it */
    s_kind_t kind;
    size_t offset; /* of the member in the section's struct */
    size_t aux;
    const struct s_section *sub;
    bool alias; /* accepted, not listed among the allowed keys */
} s_field_t;

typedef struct s_section {
    const char *what; /* "health check fields", for "expected ..." */
    const s_field_t *fields;
    size_t n_fields;
} s_section_t;

#define S_N(a) (sizeof(a) / sizeof((a)[0]))
#define S_FIELD(key, member, kind, type, aux)                                                      \
    {                                                                                              \
        key, #member, kind, offsetof(type, member), aux, NULL, false                               \
    }
/*  A duration under its short key ("interval") and its struct name
    ("interval_ms"). */
#define S_DUR(key, member, type)                                                                   \
    {key, #member, S_DURATION, offsetof(type, member), sizeof(((type *)0)->member), NULL, false},  \
    {                                                                                              \
#member, #member, S_DURATION, offsetof(type, member), sizeof(((type *)0)->member), NULL,   \
            true                                                                                   \
    }

static const s_field_t s_health_fields[] = {
    S_FIELD("kind", kind, S_HEALTH_KIND, ds_health_spec_t, 0),
    S_FIELD("path", path, S_STR, ds_health_spec_t, 0),
    S_FIELD("command", command, S_STR, ds_health_spec_t, 0),
    S_DUR("interval", interval_ms, ds_health_spec_t),
    S_DUR("timeout", timeout_ms, ds_health_spec_t),
    S_FIELD("healthy_threshold", healthy_threshold, S_COUNT, ds_health_spec_t, 0),
    S_FIELD("unhealthy_threshold", unhealthy_threshold, S_COUNT, ds_health_spec_t, 0),
    S_DUR("start_grace", start_grace_ms, ds_health_spec_t),
};

static const s_field_t s_test_fields[] = {
    S_FIELD("name", name, S_STR, ds_test_spec_t, 0),
    S_FIELD("command", command, S_STR, ds_test_spec_t, 0),
    S_DUR("timeout", timeout_ms, ds_test_spec_t),
};

static const s_field_t s_strategy_fields[] = {
    S_FIELD("canary", canary, S_SCALE, ds_strategy_t, offsetof(ds_strategy_t, canary_percent)),
    S_FIELD("canary_percent", canary_percent, S_BOOL, ds_strategy_t, 0),
    S_FIELD("max_parallel", max_parallel, S_SCALE, ds_strategy_t,
            offsetof(ds_strategy_t, max_parallel_percent)),
    S_FIELD("max_parallel_percent", max_parallel_percent, S_BOOL, ds_strategy_t, 0),
    S_DUR("bake", bake_ms, ds_strategy_t),
    S_DUR("healthy_deadline", healthy_deadline_ms, ds_strategy_t),
    S_DUR("progress_deadline", progress_deadline_ms, ds_strategy_t),
    S_FIELD("auto_promote", auto_promote, S_BOOL, ds_strategy_t, 0),
    S_FIELD("auto_revert", auto_revert, S_BOOL, ds_strategy_t, 0),
};

static const s_field_t s_analysis_fields[] = {
    S_FIELD("max_error_ratio", max_error_ratio, S_THRESHOLD, ds_analysis_t, 0),
    S_FIELD("max_p99_latency_ms", max_p99_latency_ms, S_THRESHOLD, ds_analysis_t, 0),
    S_FIELD("max_restarts", max_restarts, S_THRESHOLD, ds_analysis_t, 0),
    S_FIELD("min_health_ratio", min_health_ratio, S_THRESHOLD, ds_analysis_t, 0),
    S_FIELD("max_error_ratio_vs_baseline", max_error_ratio_vs_baseline, S_THRESHOLD, ds_analysis_t,
            0),
    S_FIELD("max_latency_vs_baseline", max_latency_vs_baseline, S_THRESHOLD, ds_analysis_t, 0),
    S_FIELD("min_samples", min_samples, S_COUNT, ds_analysis_t, 0),
    S_FIELD("on_inconclusive", on_inconclusive, S_INCONCLUSIVE, ds_analysis_t, 0),
};

static const s_field_t s_metrics_fields[] = {
    S_FIELD("path", path, S_STR, ds_metrics_spec_t, 0),
    S_DUR("interval", interval_ms, ds_metrics_spec_t),
    S_FIELD("requests_metric", requests_metric, S_STR, ds_metrics_spec_t, 0),
    S_FIELD("errors_metric", errors_metric, S_STR, ds_metrics_spec_t, 0),
    S_FIELD("latency_metric", latency_metric, S_STR, ds_metrics_spec_t, 0),
};

static const s_section_t s_health = {"a mapping of health check fields", s_health_fields,
                                     S_N(s_health_fields)};
static const s_section_t s_test = {"a mapping with name, command and timeout", s_test_fields,
                                   S_N(s_test_fields)};
static const s_section_t s_strategy = {"a mapping of rollout fields", s_strategy_fields,
                                       S_N(s_strategy_fields)};
static const s_section_t s_analysis = {"a mapping of analysis thresholds", s_analysis_fields,
                                       S_N(s_analysis_fields)};
static const s_section_t s_metrics = {"a mapping of metrics fields", s_metrics_fields,
                                      S_N(s_metrics_fields)};

#define S_SECT(key, member, sub)                                                                   \
    {                                                                                              \
        key, #member, S_SECTION, offsetof(ds_spec_t, member), 0, sub, false                        \
    }

static const s_field_t s_top_fields[] = {
    S_FIELD("artifact", artifact, S_STR, ds_spec_t, 0),
    S_FIELD("sha256", sha256, S_STR, ds_spec_t, 0),
    S_FIELD("command", command, S_STR, ds_spec_t, 0),
    S_FIELD("args", args, S_ARGS, ds_spec_t, 0),
    S_FIELD("env", env, S_ENV, ds_spec_t, 0),
    S_FIELD("workdir", workdir, S_STR, ds_spec_t, 0),
    S_FIELD("selector", selector, S_SELECTOR, ds_spec_t, 0),
    S_SECT("health", health, &s_health),
    S_FIELD("tests", tests, S_TESTS, ds_spec_t, 0),
    S_SECT("strategy", strategy, &s_strategy),
    S_SECT("analysis", analysis, &s_analysis),
    S_SECT("metrics", metrics, &s_metrics),
    S_DUR("stop_grace", stop_grace_ms, ds_spec_t),
};

static const s_section_t s_top = {"a mapping of spec fields (artifact, command, ...)", s_top_fields,
                                  S_N(s_top_fields)};

/* ------------------------------------------------------------------ */
/* unknown keys                                                        */

/*  Levenshtein distance of a[0..alen) and b, both at most S_PATH_MAX
    bytes (longer keys get no suggestion). */
static size_t s_distance(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    size_t prev[S_PATH_MAX + 1], cur[S_PATH_MAX + 1];
    if (alen > S_PATH_MAX || blen > S_PATH_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= blen; j++)
        prev[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1;
            size_t ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (blen + 1) * sizeof prev[0]);
    }
    return prev[blen];
}

static int s_unknown(s_ctx_t *c, const s_section_t *sec, const char *prefix, const char *key,
                     size_t klen, s_pos_t pos)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < sec->n_fields; i++) {
        size_t d = s_distance(key, klen, sec->fields[i].key);
        if (d < best_d) {
            best_d = d;
            best = sec->fields[i].key;
        }
    }
    const char *sep = prefix[0] ? ": " : "";
    if (best && best_d <= 2 && best_d < strlen(best) / 2)
        return s_fail(c, pos, "%s%sunknown field %s (did you mean \"%s\"?)", prefix, sep,
                      ds_spec_quote(key, klen).s, best);
    char allowed[320] = "";
    size_t o = 0;
    for (size_t i = 0; i < sec->n_fields && o < sizeof allowed; i++)
        if (!sec->fields[i].alias)
            o += (size_t)snprintf(allowed + o, sizeof allowed - o, "%s%s", o ? ", " : "",
                                  sec->fields[i].key);
    return s_fail(c, pos, "%s%sunknown field %s (allowed: %s)", prefix, sep,
                  ds_spec_quote(key, klen).s, allowed);
}

/* ------------------------------------------------------------------ */
/* scalar values                                                       */

/*  The text of a value that must be a scalar. */
static int s_scalar(s_ctx_t *c, struct fy_node *v, const char *yp, s_pos_t pos,
                    const char *expected, const char **text, size_t *len)
{
    if (s_is_text(v)) {
        *text = s_text(v, len);
        return 0;
    }
    if (v && fy_node_is_alias(v))
        return s_fail(c, pos, "%s: aliases (*name) are not supported; write the value out", yp);
    return s_fail(c, pos, "%s: expected %s, found %s", yp, expected, s_found(v).s);
}

/*  A copy of a string value in the arena; NUL bytes (from "\0" escapes)
    and values longer than any field allows are refused first. */
static int s_dup(s_ctx_t *c, const char *text, size_t len, size_t max, const char *yp, s_pos_t pos,
                 char **out)
{
    if (len > max)
        return s_fail(c, pos, "%s: %s is %zu bytes long (at most %zu)", yp,
                      ds_spec_quote(text, len).s, len, max);
    if (memchr(text, '\0', len))
        return s_fail(c, pos, "%s: %s contains a NUL character, which no field allows", yp,
                      ds_spec_quote(text, len).s);
    char *s = ds_arena_alloc(c->arena, len + 1);
    if (!s)
        return s_nomem(c, pos, yp);
    memcpy(s, text, len);
    s[len] = '\0';
    *out = s;
    return 0;
}

static int s_string(s_ctx_t *c, struct fy_node *v, size_t max, const char *yp, s_pos_t pos,
                    char **out)
{
    const char *t;
    size_t n;
    int rc = s_scalar(c, v, yp, pos, "a string", &t, &n);
    return rc ? rc : s_dup(c, t, n, max, yp, pos, out);
}

/*  A whole number written with digits only. */
static bool s_digits(const char *t, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false;
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static int s_zero(s_ctx_t *c, const char *yp, s_pos_t pos, const char *hint)
{
    return s_fail(c, pos,
                  "%s: 0 is not allowed (0 means unset; leave the field out for the "
                  "default%s)",
                  yp, hint);
}

static int s_count(s_ctx_t *c, struct fy_node *v, const char *yp, s_pos_t pos, uint32_t *out)
{
    const char *t;
    size_t n;
    uint64_t x;
    int rc = s_scalar(c, v, yp, pos, "a whole number", &t, &n);
    if (rc != 0)
        return rc;
    if (!s_digits(t, n, &x))
        return s_fail(c, pos, "%s: %s is not a whole number", yp, ds_spec_quote(t, n).s);
    if (x == 0)
        return s_zero(c, yp, pos, "");
    if (x > UINT32_MAX)
        return s_fail(c, pos, "%s: %s is too large (at most %u)", yp, ds_spec_quote(t, n).s,
                      UINT32_MAX);
    *out = (uint32_t)x;
    return 0;
}

/*  A duration as dsctl's flags take it ("500ms", "5s", "1.5s", "1m30s").
    A bare number is milliseconds only under a key that says so
    ("interval_ms"): `bake: 30` is refused rather than read as 30 ms. */
static int s_duration(s_ctx_t *c, const s_field_t *f, struct fy_node *v, const char *yp,
                      s_pos_t pos, void *out)
{
    const char *t;
    size_t n;
    char buf[S_NUM_MAX];
    uint64_t ms;
    size_t klen = strlen(f->key);
    bool ms_key = klen > 3 && strcmp(f->key + klen - 3, "_ms") == 0;
    int rc = s_scalar(c, v, yp, pos, "a duration like 500ms, 5s or 2m", &t, &n);
    if (rc != 0)
        return rc;
    bool digits = s_digits(t, n, &ms);
    if (digits && !ms_key)
        return s_fail(c, pos, "%s: %s has no unit (write %.*sms or %.*ss)", yp,
                      ds_spec_quote(t, n).s, (int)n, t, (int)n, t);
    if (!digits) {
        if (n >= sizeof buf)
            return s_fail(c, pos, "%s: %s is not a duration (use 500ms, 5s, 1m)", yp,
                          ds_spec_quote(t, n).s);
        memcpy(buf, t, n);
        buf[n] = '\0';
        if (strlen(buf) != n || ds_parse_duration_ms(buf, &ms) != 0)
            return s_fail(c, pos, "%s: %s is not a duration (use 500ms, 5s, 1m)", yp,
                          ds_spec_quote(t, n).s);
    }
    if (ms == 0)
        return s_zero(c, yp, pos, ", or 1ms for practically none");
    if (ms > DS_MAX_DURATION_MS)
        return s_fail(c, pos, "%s: %s is longer than any duration may be (7 days)", yp,
                      ds_spec_quote(t, n).s);
    if (f->aux == sizeof(uint32_t))
        *(uint32_t *)out = (uint32_t)ms;
    else
        *(uint64_t *)out = ms;
    return 0;
}

static int s_bool(s_ctx_t *c, struct fy_node *v, const char *yp, s_pos_t pos, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE"};
    static const char *const no[] = {"false", "False", "FALSE"};
    const char *t;
    size_t n;
    int rc = s_scalar(c, v, yp, pos, "true or false", &t, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < S_N(yes); i++) {
        if (n == strlen(yes[i]) && memcmp(t, yes[i], n) == 0) {
            *out = true;
            return 0;
        }
        if (n == strlen(no[i]) && memcmp(t, no[i], n) == 0) {
            *out = false;
            return 0;
        }
    }
    return s_fail(c, pos, "%s: %s is not true or false", yp, ds_spec_quote(t, n).s);
}

/*  A decimal number ("0.05", "1.2", "-1", "1e3"), or "off" = DS_SPEC_OFF. */
static int s_threshold(s_ctx_t *c, struct fy_node *v, const char *yp, s_pos_t pos, double *out)
{
    const char *t;
    size_t n;
    char buf[S_NUM_MAX];
    int rc = s_scalar(c, v, yp, pos, "a number", &t, &n);
    if (rc != 0)
        return rc;
    if (n == 3 && memcmp(t, "off", 3) == 0) {
        *out = DS_SPEC_OFF;
        return 0;
    }
    bool ok = n > 0 && n < sizeof buf;
    if (ok) {
        /* The scalar is not NUL-terminated: check and convert a copy. */
        memcpy(buf, t, n);
        buf[n] = '\0';
        ok = strspn(buf, "0123456789+-.eE") == n;
    }
    if (ok) {
        char *end;
        errno = 0;
        *out = strtod(buf, &end);
        ok = end == buf + n && errno == 0 && isfinite(*out);
    }
    if (!ok)
        return s_fail(c, pos,
                      "%s: %s is not a number (e.g. 0.05; off or a negative number "
                      "turns the check off)",
                      yp, ds_spec_quote(t, n).s);
    return 0;
}

/*  A count ("3") or a percentage ("25%") with its flag. The flag's path is
    marked too, so `canary: 25%` with `canary_percent:` is refused. */
static int s_scale(s_ctx_t *c, const s_field_t *f, struct fy_node *v, void *base,
                   const char *prefix, const char *yp, s_pos_t pos)
{
    const char *t;
    size_t n;
    uint64_t x;
    int rc = s_scalar(c, v, yp, pos, "a number or a percentage like 25%", &t, &n);
    if (rc != 0)
        return rc;
    bool percent = n > 0 && t[n - 1] == '%';
    if (!s_digits(t, n - percent, &x))
        return s_fail(c, pos, "%s: expected a number or a percentage like 25%%, found %s", yp,
                      ds_spec_quote(t, n).s);
    if (x == 0)
        return s_zero(c, yp, pos, "");
    if (x > UINT32_MAX)
        return s_fail(c, pos, "%s: %s is too large (at most %u)", yp, ds_spec_quote(t, n).s,
                      UINT32_MAX);
    *(uint32_t *)((char *)base + f->offset) = (uint32_t)x;
    if (!percent)
        return 0;
    char flag[S_PATH_MAX], member[S_PATH_MAX];
    snprintf(member, sizeof member, "%s_percent", f->member);
    s_join(flag, prefix, member);
    const s_mark_t *old = s_find_mark(c, flag);
    if (old)
        return s_fail(c, pos, "%s: a percentage conflicts with %s at line %d (give one of them)",
                      yp, old->as, old->pos.line);
    *(bool *)((char *)base + f->aux) = true;
    return s_mark(c, flag, yp, pos);
}

/*  One of `names`; its index goes to *out. */
static int s_word(s_ctx_t *c, struct fy_node *v, const char *const *names, size_t count,
                  const char *what, const char *yp, s_pos_t pos, uint8_t *out)
{
    const char *t;
    size_t n;
    char allowed[96] = "";
    size_t o = 0;
    for (size_t i = 0; i < count && o < sizeof allowed; i++)
        o += (size_t)snprintf(allowed + o, sizeof allowed - o, "%s%s", i ? ", " : "", names[i]);
    int rc = s_scalar(c, v, yp, pos, what, &t, &n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < count; i++) {
        if (n == strlen(names[i]) && memcmp(t, names[i], n) == 0) {
            *out = (uint8_t)i;
            return 0;
        }
    }
    return s_fail(c, pos, "%s: %s is not %s (%s)", yp, ds_spec_quote(t, n).s, what, allowed);
}

/* ------------------------------------------------------------------ */
/* lists and maps                                                      */

/*  The item count of a list or map, refused above `max` before anything
    is allocated. */
static int s_items(s_ctx_t *c, struct fy_node *v, bool map, uint32_t max, const char *expected,
                   const char *yp, s_pos_t pos, uint32_t *count)
{
    enum fy_node_type want = map ? FYNT_MAPPING : FYNT_SEQUENCE;
    if (v && fy_node_is_alias(v))
        return s_fail(c, pos, "%s: aliases (*name) are not supported; write the value out", yp);
    if (!v || fy_node_get_type(v) != want)
        return s_fail(c, pos, "%s: expected %s, found %s", yp, expected, s_found(v).s);
    int n = map ? fy_node_mapping_item_count(v) : fy_node_sequence_item_count(v);
    if (n < 0)
        return s_fail(c, pos, "%s: cannot count the items", yp);
    if ((uint32_t)n > max)
        return s_fail(c, pos, "%s: %d %s exceed the limit of %u", yp, n, map ? "entries" : "items",
                      max);
    *count = (uint32_t)n;
    return 0;
}

static void *s_array(s_ctx_t *c, uint32_t n, size_t size)
{
    return n ? ds_arena_alloc(c->arena, (size_t)n * size) : NULL;
}

static int s_args(s_ctx_t *c, struct fy_node *v, ds_spec_t *spec, s_pos_t pos)
{
    uint32_t n;
    int rc = s_items(c, v, false, DS_MAX_ARGS, "a list of strings", "args", pos, &n);
    if (rc != 0 || n == 0)
        return rc;
    char **args = s_array(c, n, sizeof *args);
    if (!args)
        return s_nomem(c, pos, "args");
    void *it = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct fy_node *item = fy_node_sequence_iterate(v, &it);
        s_pos_t ipos = s_pos(item, pos);
        char name[S_PATH_MAX];
        snprintf(name, sizeof name, "args[%u]", i);
        if (s_is_null(item))
            return s_fail(c, ipos,
                          "%s: expected a string, found nothing (write \"\" for an "
                          "empty argument)",
                          name);
        rc = s_mark(c, name, name, ipos);
        if (rc == 0)
            rc = s_string(c, item, S_MAX_SCALAR, name, ipos, &args[i]);
        if (rc != 0)
            return rc;
    }
    spec->args = args;
    spec->n_args = n;
    return 0;
}

/*  env or selector: a mapping of names to strings, kept in file order. */
static int s_kvs(s_ctx_t *c, struct fy_node *v, const char *list, uint32_t max, ds_kv_t **out,
                 uint32_t *out_n, s_pos_t pos)
{
    uint32_t n;
    char expected[64];
    snprintf(expected, sizeof expected, "a mapping of %s",
             strcmp(list, "env") == 0 ? "NAME: value" : "label: value");
    int rc = s_items(c, v, true, max, expected, list, pos, &n);
    if (rc != 0 || n == 0)
        return rc;
    ds_kv_t *kv = s_array(c, n, sizeof *kv);
    if (!kv)
        return s_nomem(c, pos, list);
    void *it = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct fy_node_pair *p = fy_node_mapping_iterate(v, &it);
        struct fy_node *k = p ? fy_node_pair_key(p) : NULL;
        struct fy_node *val = p ? fy_node_pair_value(p) : NULL;
        s_pos_t kpos = s_pos(k, pos);
        char kname[S_PATH_MAX], vname[S_PATH_MAX], yp[S_PATH_MAX];
        snprintf(kname, sizeof kname, "%s[%u].key", list, i);
        snprintf(vname, sizeof vname, "%s[%u].value", list, i);
        if (!s_is_text(k))
            return s_fail(c, kpos, "%s: keys must be text, found %s", list, s_found(k).s);
        size_t klen;
        const char *key = s_text(k, &klen);
        rc = s_dup(c, key, klen, S_MAX_KEY, kname, kpos, &kv[i].key);
        if (rc != 0)
            return rc;
        snprintf(yp, sizeof yp, "%s.%s", list, s_bare(key, klen).s);
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(kv[j].key, kv[i].key) != 0)
                continue;
            char first[S_PATH_MAX];
            snprintf(first, sizeof first, "%s[%u].key", list, j);
            const s_mark_t *m = s_find_mark(c, first);
            return s_fail(c, kpos, "%s: %s is given twice (first at line %d)", list,
                          ds_spec_quote(key, klen).s, m ? m->pos.line : 0);
        }
        if (s_is_null(val))
            return s_fail(c, kpos,
                          "%s: expected a string, found nothing (write \"\" for an "
                          "empty value)",
                          yp);
        rc = s_mark(c, kname, kname, kpos);
        if (rc == 0)
            rc = s_mark(c, vname, vname, kpos);
        if (rc == 0)
            rc = s_string(c, val, S_MAX_SCALAR, yp, kpos, &kv[i].value);
        if (rc != 0)
            return rc;
    }
    *out = kv;
    *out_n = n;
    return 0;
}

static int s_walk(s_ctx_t *c, struct fy_node *map, const s_section_t *sec, void *base,
                  const char *prefix, s_pos_t where);

static int s_tests(s_ctx_t *c, struct fy_node *v, ds_spec_t *spec, s_pos_t pos)
{
    uint32_t n;
    int rc = s_items(c, v, false, DS_MAX_TESTS, "a list of tests ({name, command, timeout})",
                     "tests", pos, &n);
    if (rc != 0 || n == 0)
        return rc;
    ds_test_spec_t *tests = s_array(c, n, sizeof *tests);
    if (!tests)
        return s_nomem(c, pos, "tests");
    void *it = NULL;
    for (uint32_t i = 0; i < n; i++) {
        struct fy_node *item = fy_node_sequence_iterate(v, &it);
        s_pos_t ipos = s_pos(item, pos);
        char name[S_PATH_MAX];
        snprintf(name, sizeof name, "tests[%u]", i);
        if (!item || fy_node_get_type(item) != FYNT_MAPPING)
            return s_fail(c, ipos, "%s: expected %s, found %s", name, s_test.what, s_found(item).s);
        rc = s_mark(c, name, name, ipos);
        if (rc == 0)
            rc = s_walk(c, item, &s_test, &tests[i], name, ipos);
        if (rc != 0)
            return rc;
    }
    spec->tests = tests;
    spec->n_tests = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* mappings                                                            */

static const char *const s_health_kinds[] = {"none", "http", "tcp", "exec"};
static const char *const s_inconclusive[] = {"fail", "promote"};

/*  Sets one field from its value. An empty value (null) leaves the field
    unset, as if it were left out. */
static int s_field(s_ctx_t *c, const s_field_t *f, struct fy_node *v, void *base,
                   const char *prefix, const char *yp, s_pos_t pos)
{
    void *m = (char *)base + f->offset;
    if (s_is_null(v))
        return 0;
    switch (f->kind) {
    case S_STR:
        return s_string(c, v, S_MAX_SCALAR, yp, pos, m);
    case S_COUNT:
        return s_count(c, v, yp, pos, m);
    case S_DURATION:
        return s_duration(c, f, v, yp, pos, m);
    case S_BOOL:
        return s_bool(c, v, yp, pos, m);
    case S_THRESHOLD:
        return s_threshold(c, v, yp, pos, m);
    case S_SCALE:
        return s_scale(c, f, v, base, prefix, yp, pos);
    case S_HEALTH_KIND:
        return s_word(c, v, s_health_kinds, S_N(s_health_kinds), "a kind of health check", yp, pos,
                      m);
    case S_INCONCLUSIVE:
        return s_word(c, v, s_inconclusive, S_N(s_inconclusive), "an outcome", yp, pos, m);
    case S_SECTION:
        if (!v || fy_node_get_type(v) != FYNT_MAPPING)
            return s_fail(c, pos, "%s: expected %s, found %s", yp, f->sub->what, s_found(v).s);
        return s_walk(c, v, f->sub, m, f->member, pos);
    case S_ARGS:
        return s_args(c, v, base, pos);
    case S_ENV:
        return s_kvs(c, v, "env", DS_MAX_ENV, &((ds_spec_t *)base)->env,
                     &((ds_spec_t *)base)->n_env, pos);
    case S_SELECTOR:
        return s_kvs(c, v, "selector", DS_MAX_LABELS, &((ds_spec_t *)base)->selector,
                     &((ds_spec_t *)base)->n_selector, pos);
    case S_TESTS:
        return s_tests(c, v, base, pos);
    }
    assert(!"unknown field kind");
    return DS_EINVAL;
}

/*  Walks one mapping against its section's fields. `prefix` is the
    section's path ("" at the top, "health", "tests[1]"). */
static int s_walk(s_ctx_t *c, struct fy_node *map, const s_section_t *sec, void *base,
                  const char *prefix, s_pos_t where)
{
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &it)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        s_pos_t kpos = s_pos(k, where);
        if (!s_is_text(k))
            return s_fail(c, kpos, "%s%skeys must be text, found %s", prefix, prefix[0] ? ": " : "",
                          s_found(k).s);
        size_t klen;
        const char *key = s_text(k, &klen);
        const s_field_t *f = NULL;
        for (size_t i = 0; !f && i < sec->n_fields; i++)
            if (klen == strlen(sec->fields[i].key) && memcmp(key, sec->fields[i].key, klen) == 0)
                f = &sec->fields[i];
        if (!f)
            return s_unknown(c, sec, prefix, key, klen, kpos);
        char yp[S_PATH_MAX], sp[S_PATH_MAX];
        s_join(yp, prefix, f->key);
        s_join(sp, prefix, f->member);
        int rc = s_mark(c, sp, yp, kpos);
        if (rc == 0)
            rc = s_field(c, f, fy_node_pair_value(p), base, prefix, yp, kpos);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the text and the YAML document                                      */

/*  Length of the UTF-8 sequence at s[0..left), or 0 if it is not valid
    (overlong, surrogate, above U+10FFFF, truncated). */
static size_t s_utf8_len(const unsigned char *s, size_t left)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t cp;
    if (b < 0x80)
        return 1;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        cp = b & 0x07u;
    } else {
        return 0;
    }
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/*  The text must be UTF-8 without NUL bytes: libfyaml would otherwise
    read past a NUL or drop bad bytes without a word. */
static int s_check_text(s_ctx_t *c, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    s_pos_t pos = {1, 1};
    for (size_t i = 0; i < len;) {
        if (s[i] == '\0')
            return s_fail(c, pos, "the file contains a NUL byte (a spec file is YAML text)");
        size_t n = s_utf8_len(s + i, len - i);
        if (n == 0)
            return s_fail(c, pos, "the file is not UTF-8 text (byte 0x%02x)", s[i]);
        if (s[i] == '\n') {
            pos.line++;
            pos.col = 1;
        } else {
            pos.col++;
        }
        i += n;
    }
    return 0;
}

/*  The first error libfyaml collected, as "file:line:col: YAML syntax
    error: ...". Returns 0 when there is none. */
static int s_yaml_error(s_ctx_t *c, struct fy_diag *diag)
{
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(diag, &it)) != NULL) {
        if (e->type < FYET_ERROR)
            continue;
        s_pos_t pos = {e->line > 0 ? e->line : 0, e->column > 0 ? e->column : 1};
        return s_fail(c, pos, "YAML syntax error: %s", e->msg ? e->msg : "(no detail)");
    }
    return 0;
}

/*  The validator's verdict, placed at the key that set the field. */
static int s_validate(s_ctx_t *c, ds_spec_t *spec)
{
    char msg[DS_SPECFILE_ERR_SIZE];
    ds_spec_apply_defaults(spec);
    if (ds_spec_validate(spec, msg, sizeof msg) == 0)
        return 0;
    return s_fail(c, s_validator_pos(c, msg), "%s", msg);
}

static int s_parse_doc(s_ctx_t *c, struct fy_parser *fyp, struct fy_diag *diag, ds_spec_t *spec)
{
    struct fy_document *doc = fy_parse_load_document(fyp);
    struct fy_document *next = NULL;
    int rc = s_yaml_error(c, diag);
    if (rc == 0 && !doc)
        rc = s_fail(c, s_nowhere, "the file is empty (a spec needs at least artifact and command)");
    if (rc == 0) {
        next = fy_parse_load_document(fyp);
        rc = s_yaml_error(c, diag);
    }
    if (rc == 0 && next)
        rc = s_fail(c, s_pos(fy_document_root(next), s_nowhere),
                    "a second YAML document (a spec file holds one; remove the \"---\")");
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    if (rc == 0 && (!root || fy_node_get_type(root) != FYNT_MAPPING))
        rc = s_fail(c, s_pos(root, (s_pos_t){1, 1}), "expected %s at the top, found %s", s_top.what,
                    s_found(root).s);
    if (rc == 0)
        rc = s_walk(c, root, &s_top, spec, "", (s_pos_t){1, 1});
    if (rc == 0)
        rc = s_validate(c, spec);
    if (next)
        fy_parse_document_destroy(fyp, next);
    if (doc)
        fy_parse_document_destroy(fyp, doc);
    return rc;
}

int ds_specfile_parse(const char *text, size_t len, const char *name, ds_spec_t *spec,
                      ds_arena_t *arena, char *err, size_t errlen)
{
    assert(spec && arena && (text || len == 0));
    s_ctx_t c = {name ? name : "spec", arena, err, errlen, NULL, 0};
    struct fy_diag *diag = NULL;
    struct fy_parser *fyp = NULL;
    int rc;
    ds_spec_init(spec);
    if (err && errlen)
        err[0] = '\0';
    if (len > DS_SPECFILE_MAX_SIZE) {
        rc = s_failc(&c, DS_ETOOBIG, s_nowhere,
                     "the file is %zu bytes, more than a spec file may have (%u)", len,
                     DS_SPECFILE_MAX_SIZE);
        goto out;
    }
    rc = s_check_text(&c, text ? text : "", len);
    if (rc != 0)
        goto out;
    c.marks = calloc(S_MAX_MARKS, sizeof *c.marks);
    if (!c.marks) {
        rc = s_nomem(&c, s_nowhere, "spec");
        goto out;
    }
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    diag = fy_diag_create(&dcfg);
    if (!diag) {
        rc = s_nomem(&c, s_nowhere, "spec");
        goto out_marks;
    }
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg cfg = {0};
    cfg.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS;
    cfg.diag = diag;
    fyp = fy_parser_create(&cfg);
    if (!fyp) {
        rc = s_nomem(&c, s_nowhere, "spec");
        goto out_diag;
    }
    if (fy_parser_set_string(fyp, len ? text : "", len) != 0) {
        rc = s_fail(&c, s_nowhere, "the YAML parser refused the text");
        goto out_parser;
    }
    rc = s_parse_doc(&c, fyp, diag, spec);
out_parser:
    fy_parser_destroy(fyp);
out_diag:
    fy_diag_destroy(diag);
out_marks:
    free(c.marks);
out:
    if (rc != 0)
        ds_spec_init(spec);
    return rc;
}

/* ------------------------------------------------------------------ */
/* files                                                               */

static int s_errno_code(int e)
{
    if (e == ENOENT || e == ENOTDIR)
        return DS_ENOTFOUND;
    if (e == EACCES || e == EPERM)
        return DS_EPERM;
    return DS_EIO;
}

/*  Reads at most DS_SPECFILE_MAX_SIZE + 1 bytes of fd into buf. */
static int s_read_all(int fd, char *buf, size_t cap, size_t *len)
{
    size_t have = 0;
    while (have < cap) {
        ssize_t n = read(fd, buf + have, cap - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        have += (size_t)n;
    }
    *len = have;
    return 0;
}

int ds_specfile_load(const char *path, ds_spec_t *spec, ds_arena_t *arena, char *err, size_t errlen)
{
    assert(path && spec && arena);
    s_ctx_t c = {path, arena, err, errlen, NULL, 0};
    struct stat st;
    size_t len = 0;
    int rc;
    ds_spec_init(spec);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return s_failc(&c, s_errno_code(e), s_nowhere, "cannot open the spec file: %s",
                       strerror(e));
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > DS_SPECFILE_MAX_SIZE) {
        rc = s_failc(&c, DS_ETOOBIG, s_nowhere,
                     "the file is %lld bytes, more than a spec file may have (%u)",
                     (long long)st.st_size, DS_SPECFILE_MAX_SIZE);
        goto out_fd;
    }
    char *buf = malloc(DS_SPECFILE_MAX_SIZE + 1u);
    if (!buf) {
        rc = s_nomem(&c, s_nowhere, "spec");
        goto out_fd;
    }
    if (s_read_all(fd, buf, DS_SPECFILE_MAX_SIZE + 1u, &len) != 0) {
        int e = errno;
        rc = s_failc(&c, s_errno_code(e), s_nowhere, "cannot read the spec file: %s", strerror(e));
        goto out_buf;
    }
    if (len > DS_SPECFILE_MAX_SIZE) {
        rc = s_failc(&c, DS_ETOOBIG, s_nowhere,
                     "the file is more than a spec file may have (%u bytes)", DS_SPECFILE_MAX_SIZE);
        goto out_buf;
    }
    rc = ds_specfile_parse(buf, len, path, spec, arena, err, errlen);
out_buf:
    free(buf);
out_fd:
    close(fd);
    return rc;
}
