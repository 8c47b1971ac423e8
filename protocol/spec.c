/*  protocol/spec.c - defaults and validation of the release spec.

    Defaults live in two places only: ds_spec_init() sets what a zero
    cannot say (the booleans that default to true and the analysis
    thresholds that default to "off"), ds_spec_apply_defaults() fills every
    other field left at 0 / NULL. docs/spec.md lists them all.

    ds_spec_validate() runs one validator per section. Checks are table
    driven (ranges, analysis thresholds, metric needs) and every message
    names the field as the YAML spec spells it ("health.interval_ms",
    "env[2].key"), the offending value and what is allowed.
*/
#include "protocol/spec.h"

#include "protocol/error.h"
#include "protocol/limits.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define S_SEC  1000ull
#define S_MIN  (60ull * S_SEC)
#define S_HOUR (60ull * S_MIN)
#define S_DAY  (24ull * S_HOUR)

/* Defaults (docs/spec.md, "Defaults"). */
#define S_DEF_HEALTH_PATH       "/healthz"
#define S_DEF_HEALTH_INTERVAL   2000u
#define S_DEF_HEALTH_TIMEOUT    1000u
#define S_DEF_HEALTHY_THRESHOLD 2u
#define S_DEF_UNHEALTHY_THRESH  3u
#define S_DEF_START_GRACE       5000u
#define S_DEF_TEST_TIMEOUT      60000u
#define S_DEF_CANARY            1u
#define S_DEF_MAX_PARALLEL      1u
#define S_DEF_BAKE              (30ull * S_SEC)
#define S_DEF_HEALTHY_DEADLINE  (5ull * S_MIN)
#define S_DEF_PROGRESS_DEADLINE (10ull * S_MIN)
#define S_DEF_MIN_SAMPLES       10u
#define S_DEF_METRICS_INTERVAL  5000u
#define S_DEF_STOP_GRACE        10000u

/* Limits that only the spec has. */
#define S_MAX_THRESHOLD   100u
#define S_MAX_MIN_SAMPLES 1000000u
#define S_QUOTE_MAX       40u /* bytes of a value quoted in a message */

#define S_STR(s) ((s) ? (s) : "")

/* ------------------------------------------------------------------ */
/* defaults                                                            */

static void s_def_u32(uint32_t *f, uint32_t d)
{
    if (*f == 0)
        *f = d;
}

static void s_def_u64(uint64_t *f, uint64_t d)
{
    if (*f == 0)
        *f = d;
}

/*  A NULL string becomes a static "": not owned, never to be freed. */
static void s_def_str(char **s)
{
    if (!*s)
        *s = "";
}

static void s_default_kvs(ds_kv_t *kv, uint32_t n)
{
    for (uint32_t i = 0; kv && i < n; i++) {
        s_def_str(&kv[i].key);
        s_def_str(&kv[i].value);
    }
}

static void s_default_top(ds_spec_t *s)
{
    char **strs[] = {&s->artifact, &s->sha256, &s->command, &s->workdir};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        s_def_str(strs[i]);
    for (uint32_t i = 0; s->args && i < s->n_args; i++)
        s_def_str(&s->args[i]);
    s_default_kvs(s->env, s->n_env);
    s_default_kvs(s->selector, s->n_selector);
    s_def_u32(&s->stop_grace_ms, S_DEF_STOP_GRACE);
}

static void s_default_health(ds_health_spec_t *h)
{
    s_def_str(&h->path);
    s_def_str(&h->command);
    if (h->kind == DS_HEALTH_HTTP && h->path[0] == '\0')
        h->path = S_DEF_HEALTH_PATH;
    s_def_u32(&h->interval_ms, S_DEF_HEALTH_INTERVAL);
    s_def_u32(&h->timeout_ms, S_DEF_HEALTH_TIMEOUT);
    s_def_u32(&h->healthy_threshold, S_DEF_HEALTHY_THRESHOLD);
    s_def_u32(&h->unhealthy_threshold, S_DEF_UNHEALTHY_THRESH);
    s_def_u32(&h->start_grace_ms, S_DEF_START_GRACE);
}

static void s_default_tests(ds_test_spec_t *t, uint32_t n)
{
    for (uint32_t i = 0; t && i < n; i++) {
        s_def_str(&t[i].name);
        s_def_str(&t[i].command);
        s_def_u32(&t[i].timeout_ms, S_DEF_TEST_TIMEOUT);
    }
}

/*  The progress deadline defaults to 10 min, or to the healthy deadline
    when that was set longer, so setting only the latter stays valid. */
static void s_default_strategy(ds_strategy_t *st)
{
    s_def_u32(&st->canary, S_DEF_CANARY);
    s_def_u32(&st->max_parallel, S_DEF_MAX_PARALLEL);
    s_def_u64(&st->bake_ms, S_DEF_BAKE);
    s_def_u64(&st->healthy_deadline_ms, S_DEF_HEALTHY_DEADLINE);
    uint64_t progress = S_DEF_PROGRESS_DEADLINE;
    if (st->healthy_deadline_ms > progress)
        progress = st->healthy_deadline_ms;
    s_def_u64(&st->progress_deadline_ms, progress);
}

static void s_default_metrics(ds_metrics_spec_t *m)
{
    char **strs[] = {&m->path, &m->requests_metric, &m->errors_metric, &m->latency_metric};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        s_def_str(strs[i]);
    if (m->path[0] != '\0')
        s_def_u32(&m->interval_ms, S_DEF_METRICS_INTERVAL);
}

void ds_spec_init(ds_spec_t *spec)
{
    assert(spec);
    memset(spec, 0, sizeof(*spec));
    spec->strategy.auto_promote = true;
    spec->strategy.auto_revert = true;
    ds_analysis_t *a = &spec->analysis;
    double *offs[] = {
        &a->max_error_ratio,  &a->max_p99_latency_ms,          &a->max_restarts,
        &a->min_health_ratio, &a->max_error_ratio_vs_baseline, &a->max_latency_vs_baseline};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
        *offs[i] = DS_SPEC_OFF;
    a->on_inconclusive = DS_INCONCLUSIVE_FAIL;
}

void ds_spec_apply_defaults(ds_spec_t *spec)
{
    assert(spec);
    s_default_top(spec);
    s_default_health(&spec->health);
    s_default_tests(spec->tests, spec->n_tests);
    s_default_strategy(&spec->strategy);
    s_def_u32(&spec->analysis.min_samples, S_DEF_MIN_SAMPLES);
    s_default_metrics(&spec->metrics);
}

/* ------------------------------------------------------------------ */
/* messages                                                            */

typedef struct {
    char *err;
    size_t errlen;
} s_val_t;

/*  A field path with an index: "env[2].key". */
typedef struct {
    char s[48];
} s_name_t;

typedef enum { S_COUNT, S_MS, S_PERCENT } s_unit_t;

__attribute__((format(printf, 2, 3))) static int s_fail(s_val_t *v, const char *fmt, ...)
{
    if (v->err && v->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->err, v->errlen, fmt, ap);
        va_end(ap);
    }
    return DS_EINVAL;
}

ds_spec_quote_t ds_spec_quote(const char *s, size_t len)
{
    _Static_assert(sizeof(((ds_spec_quote_t *)0)->s) >= S_QUOTE_MAX + 6, "quote buffer");
    ds_spec_quote_t q;
    size_t cut = len;
    if (len > S_QUOTE_MAX) {
        cut = S_QUOTE_MAX;
        while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
            cut--;
    }
    size_t o = 0;
    q.s[o++] = '"';
    for (size_t i = 0; i < cut; i++) {
        unsigned char c = (unsigned char)s[i];
        q.s[o++] = (c < 0x20 || c == 0x7F || c == '"') ? '?' : (char)c;
    }
    if (cut < len) {
        memcpy(q.s + o, "...", 3);
        o += 3;
    }
    q.s[o++] = '"';
    q.s[o] = '\0';
    return q;
}

static ds_spec_quote_t s_q(const char *s)
{
    return ds_spec_quote(s, strlen(s));
}

static s_name_t s_item(const char *list, uint32_t i, const char *member)
{
    s_name_t n;
    snprintf(n.s, sizeof(n.s), "%s[%u]%s", list, i, member);
    return n;
}

/*  An amount for people: "100 ms", "1 h", "25%", "4096". */
static const char *s_amount(char *buf, size_t len, uint64_t x, s_unit_t unit)
{
    static const struct {
        uint64_t ms;
        const char *name;
    } units[] = {{S_DAY, "d"}, {S_HOUR, "h"}, {S_MIN, "min"}, {S_SEC, "s"}, {1, "ms"}};
    if (unit != S_MS) {
        snprintf(buf, len, unit == S_PERCENT ? "%llu%%" : "%llu", (unsigned long long)x);
        return buf;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (x % units[i].ms == 0 && (x >= units[i].ms || units[i].ms == 1)) {
            snprintf(buf, len, "%llu %s", (unsigned long long)(x / units[i].ms), units[i].name);
            break;
        }
    }
    return buf;
}

/* ------------------------------------------------------------------ */
/* check helpers                                                       */

typedef struct {
    const char *field;
    uint64_t value;
    uint64_t lo;
    uint64_t hi;
    s_unit_t unit;
} s_range_t;

static int s_check_ranges(s_val_t *v, const s_range_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (r[i].value >= r[i].lo && r[i].value <= r[i].hi)
            continue;
        char lo[32], hi[32];
        return s_fail(v, "%s: %llu is out of range (%s to %s)", r[i].field,
                      (unsigned long long)r[i].value, s_amount(lo, sizeof(lo), r[i].lo, r[i].unit),
                      s_amount(hi, sizeof(hi), r[i].hi, r[i].unit));
    }
    return 0;
}

/*  A relation between two fields that failed: "a: 3000 must be at most
    b (2000)". `ok` is the relation's truth. */
static int s_check_relation(s_val_t *v, bool ok, const char *a, uint64_t av, const char *rel,
                            const char *b, uint64_t bv)
{
    if (ok)
        return 0;
    return s_fail(v, "%s: %llu must be %s %s (%llu)", a, (unsigned long long)av, rel, b,
                  (unsigned long long)bv);
}

static int s_check_enum(s_val_t *v, const char *field, unsigned value, const char *const *names,
                        size_t n)
{
    if (value < n)
        return 0;
    char allowed[96] = "";
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof(allowed); i++)
        o += (size_t)snprintf(allowed + o, sizeof(allowed) - o, "%s%zu %s", i ? ", " : "", i,
                              names[i]);
    return s_fail(v, "%s: %u is not one of the allowed values (%s)", field, value, allowed);
}

/*  A count and its array: at most `max`, and an array behind a non-zero
    count (a NULL one is an error, never a crash). */
static int s_check_list(s_val_t *v, const char *field, uint32_t n, const void *items, uint32_t max)
{
    if (n > max)
        return s_fail(v, "%s: %u entries exceed the limit of %u", field, n, max);
    if (n && !items)
        return s_fail(v, "%s: the count is %u but the list is missing", field, n);
    return 0;
}

enum {
    S_REQUIRED = 1, /* not empty or blank */
    S_NO_CTRL = 2,  /* no control characters */
    S_NO_SPACE = 4  /* no control characters and no spaces (paths in URLs, names) */
};

static bool s_blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

static int s_check_str(s_val_t *v, const char *field, const char *s, size_t max, unsigned flags)
{
    size_t len = strlen(s);
    if ((flags & S_REQUIRED) && s_blank(s))
        return s_fail(v, "%s: %s is %s (a value of 1 to %zu bytes is required)", field, s_q(s).s,
                      s[0] ? "blank" : "empty", max);
    if (len > max)
        return s_fail(v, "%s: %s is %zu bytes long (at most %zu)", field, s_q(s).s, len, max);
    for (size_t i = 0; (flags & (S_NO_CTRL | S_NO_SPACE)) && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F || (c == ' ' && (flags & S_NO_SPACE)))
            return s_fail(v, "%s: %s contains %s at byte %zu (not allowed here)", field, s_q(s).s,
                          c == ' ' ? "a space" : "a control character", i);
    }
    return 0;
}

/*  A kind of name: allowed first and following characters, and how
    to say so in a message. */
typedef struct {
    const char *what;
    const char *pattern;
    const char *first;
    const char *rest;
} s_charset_t;

#define S_UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define S_LOWER "abcdefghijklmnopqrstuvwxyz"
#define S_DIGIT "0123456789"

static const s_charset_t s_env_name = {"an environment variable name", "[A-Za-z_][A-Za-z0-9_]*",
                                       S_UPPER S_LOWER "_", S_UPPER S_LOWER S_DIGIT "_"};
static const s_charset_t s_label_key = {"a label key", "letters, digits and . _ / -",
                                        S_UPPER S_LOWER S_DIGIT "._/-",
                                        S_UPPER S_LOWER S_DIGIT "._/-"};
static const s_charset_t s_test_name = {"a test name", "lowercase letters, digits, _ and -",
                                        S_LOWER S_DIGIT "_-", S_LOWER S_DIGIT "_-"};
static const s_charset_t s_metric_name = {"a Prometheus metric name", "[a-zA-Z_:][a-zA-Z0-9_:]*",
                                          S_UPPER S_LOWER "_:", S_UPPER S_LOWER S_DIGIT "_:"};

static int s_check_name(s_val_t *v, const char *field, const char *s, size_t max,
                        const s_charset_t *cs)
{
    int rc = s_check_str(v, field, s, max, S_REQUIRED);
    for (size_t i = 0; rc == 0 && s[i]; i++)
        if (!strchr(i ? cs->rest : cs->first, s[i]))
            rc = s_fail(v, "%s: %s is not %s (%s)", field, s_q(s).s, cs->what, cs->pattern);
    return rc;
}

static bool s_has_dotdot(const char *path)
{
    for (const char *p = path; *p;) {
        size_t seg = strcspn(p, "/");
        if (seg == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += seg;
        p += strspn(p, "/");
    }
    return false;
}

/*  Length of the URL scheme before "://" ("https" is 5), or 0 if `s` does
    not start like a URL. */
static size_t s_url_scheme(const char *s)
{
    if (s[0] == '\0' || !strchr(S_UPPER S_LOWER, s[0]))
        return 0;
    size_t n = strspn(s, S_UPPER S_LOWER S_DIGIT "+.-");
    return strncmp(s + n, "://", 3) == 0 ? n : 0;
}

static bool s_scheme_is(const char *s, size_t n, const char *scheme)
{
    if (n != strlen(scheme))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((s[i] | 0x20) != scheme[i])
            return false;
    return true;
}

static int s_check_url(s_val_t *v, const char *field, const char *s, size_t scheme)
{
    if (!s_scheme_is(s, scheme, "http") && !s_scheme_is(s, scheme, "https"))
        return s_fail(v, "%s: %s uses an unsupported scheme (http:// or https:// only)", field,
                      s_q(s).s);
    const char *host = s + scheme + 3;
    if (strcspn(host, "/?#") == 0)
        return s_fail(v, "%s: %s has no host (use http(s)://host/path)", field, s_q(s).s);
    return s_check_str(v, field, s, DS_MAX_PATH, S_NO_SPACE);
}

/* ------------------------------------------------------------------ */
/* section validators                                                  */

static int s_validate_artifact(s_val_t *v, const ds_spec_t *sp)
{
    const char *a = S_STR(sp->artifact);
    int rc = s_check_str(v, "artifact", a, DS_MAX_PATH, S_REQUIRED | S_NO_CTRL);
    if (rc != 0)
        return rc;
    size_t scheme = s_url_scheme(a);
    if (scheme)
        return s_check_url(v, "artifact", a, scheme);
    if (a[0] != '/' && s_has_dotdot(a))
        return s_fail(v,
                      "artifact: %s is a relative path with a \"..\" component (use an "
                      "absolute path, a path below the current directory or an http(s) URL)",
                      s_q(a).s);
    return 0;
}

static int s_validate_sha256(s_val_t *v, const ds_spec_t *sp)
{
    const char *h = S_STR(sp->sha256);
    size_t len = strlen(h);
    if (len == 0)
        return 0;
    if (len != DS_MAX_SHA256 || strspn(h, S_DIGIT "abcdefABCDEF") != len)
        return s_fail(v, "sha256: %s is not a sha256 digest (64 hex characters, or empty)",
                      s_q(h).s);
    return 0;
}

static int s_validate_command(s_val_t *v, const ds_spec_t *sp)
{
    int rc = s_check_str(v, "command", S_STR(sp->command), DS_MAX_CMD, S_REQUIRED);
    if (rc == 0)
        rc = s_check_list(v, "args", sp->n_args, sp->args, DS_MAX_ARGS);
    for (uint32_t i = 0; rc == 0 && i < sp->n_args; i++)
        rc = s_check_str(v, s_item("args", i, "").s, S_STR(sp->args[i]), DS_MAX_TEXT, 0);
    return rc;
}

/*  How a key=value list is checked: env and selector differ only in
    these. */
typedef struct {
    const char *list;
    uint32_t max_count;
    const s_charset_t *key_set;
    size_t key_max;
    size_t value_max;
    unsigned value_flags;
    const char *const *reserved; /* NULL-terminated, may be NULL */
} s_kv_rules_t;

static const char *const s_reserved_env[] = {"PORT", "DS_RELEASE_DIR", "DS_VERSION", NULL};

static const s_kv_rules_t s_env_rules = {"env",       DS_MAX_ENV, &s_env_name,   DS_MAX_LABEL,
                                         DS_MAX_TEXT, 0,          s_reserved_env};
static const s_kv_rules_t s_selector_rules = {
    "selector", DS_MAX_LABELS, &s_label_key, DS_MAX_NAME, DS_MAX_LABEL, S_NO_CTRL, NULL};

static int s_check_key(s_val_t *v, const s_kv_rules_t *r, const ds_kv_t *kv, uint32_t i)
{
    const char *key = S_STR(kv[i].key);
    s_name_t f = s_item(r->list, i, ".key");
    int rc = s_check_name(v, f.s, key, r->key_max, r->key_set);
    for (size_t k = 0; rc == 0 && r->reserved && r->reserved[k]; k++)
        if (strcmp(key, r->reserved[k]) == 0)
            rc = s_fail(v,
                        "%s: %s is reserved (the worker sets PORT, DS_RELEASE_DIR and "
                        "DS_VERSION itself)",
                        f.s, s_q(key).s);
    for (uint32_t j = 0; rc == 0 && j < i; j++)
        if (strcmp(key, S_STR(kv[j].key)) == 0)
            rc = s_fail(v, "%s: %s is a duplicate of %s[%u].key (each key may appear once)", f.s,
                        s_q(key).s, r->list, j);
    return rc;
}

static int s_check_kvs(s_val_t *v, const s_kv_rules_t *r, const ds_kv_t *kv, uint32_t n)
{
    int rc = s_check_list(v, r->list, n, kv, r->max_count);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        rc = s_check_key(v, r, kv, i);
        if (rc == 0)
            rc = s_check_str(v, s_item(r->list, i, ".value").s, S_STR(kv[i].value), r->value_max,
                             r->value_flags);
    }
    return rc;
}

static int s_validate_env(s_val_t *v, const ds_spec_t *sp)
{
    return s_check_kvs(v, &s_env_rules, sp->env, sp->n_env);
}

static int s_validate_selector(s_val_t *v, const ds_spec_t *sp)
{
    return s_check_kvs(v, &s_selector_rules, sp->selector, sp->n_selector);
}

static int s_validate_workdir(s_val_t *v, const ds_spec_t *sp)
{
    const char *w = S_STR(sp->workdir);
    int rc = s_check_str(v, "workdir", w, DS_MAX_PATH, S_NO_CTRL);
    if (rc == 0 && (w[0] == '/' || s_has_dotdot(w)))
        rc = s_fail(v,
                    "workdir: %s must be relative to the release directory (no leading \"/\", "
                    "no \"..\"; empty means its root)",
                    s_q(w).s);
    return rc;
}

static const char *const s_health_kinds[] = {"none", "http", "tcp", "exec"};

/*  A string used only by one kind of check must be empty for the others,
    so a forgotten health.kind is not silently "none". */
static int s_check_kind_str(s_val_t *v, const ds_health_spec_t *h, const char *field, const char *s,
                            uint8_t kind, size_t max, unsigned flags)
{
    if (h->kind == kind)
        return s_check_str(v, field, s, max, flags | S_REQUIRED);
    if (s[0] != '\0')
        return s_fail(v, "%s: %s is only used by %s checks (health.kind is %s)", field, s_q(s).s,
                      s_health_kinds[kind], s_health_kinds[h->kind]);
    return 0;
}

static int s_validate_health(s_val_t *v, const ds_spec_t *sp)
{
    const ds_health_spec_t *h = &sp->health;
    const char *path = S_STR(h->path);
    int rc = s_check_enum(v, "health.kind", h->kind, s_health_kinds, 4);
    if (rc == 0)
        rc = s_check_kind_str(v, h, "health.path", path, DS_HEALTH_HTTP, DS_MAX_PATH, S_NO_SPACE);
    if (rc == 0 && h->kind == DS_HEALTH_HTTP && path[0] != '/')
        rc = s_fail(v, "health.path: %s must start with \"/\" (e.g. \"/healthz\")", s_q(path).s);
    if (rc == 0)
        rc = s_check_kind_str(v, h, "health.command", S_STR(h->command), DS_HEALTH_EXEC, DS_MAX_CMD,
                              0);
    if (rc != 0)
        return rc;
    const s_range_t r[] = {
        {"health.interval_ms", h->interval_ms, 100, S_HOUR, S_MS},
        {"health.timeout_ms", h->timeout_ms, 10, S_HOUR, S_MS},
        {"health.healthy_threshold", h->healthy_threshold, 1, S_MAX_THRESHOLD, S_COUNT},
        {"health.unhealthy_threshold", h->unhealthy_threshold, 1, S_MAX_THRESHOLD, S_COUNT},
        {"health.start_grace_ms", h->start_grace_ms, 0, S_HOUR, S_MS},
    };
    rc = s_check_ranges(v, r, sizeof(r) / sizeof(r[0]));
    if (rc == 0)
        rc = s_check_relation(v, h->timeout_ms <= h->interval_ms, "health.timeout_ms",
                              h->timeout_ms, "at most", "health.interval_ms", h->interval_ms);
    return rc;
}

static int s_check_test(s_val_t *v, const ds_test_spec_t *t, uint32_t i)
{
    s_name_t name = s_item("tests", i, ".name");
    s_name_t cmd = s_item("tests", i, ".command");
    s_name_t timeout = s_item("tests", i, ".timeout_ms");
    const char *n = S_STR(t[i].name);
    int rc = s_check_name(v, name.s, n, DS_MAX_NAME, &s_test_name);
    for (uint32_t j = 0; rc == 0 && j < i; j++)
        if (strcmp(n, S_STR(t[j].name)) == 0)
            rc = s_fail(v, "%s: %s is a duplicate of tests[%u].name (names must be unique)", name.s,
                        s_q(n).s, j);
    if (rc == 0)
        rc = s_check_str(v, cmd.s, S_STR(t[i].command), DS_MAX_CMD, S_REQUIRED);
    const s_range_t r = {timeout.s, t[i].timeout_ms, S_SEC, S_HOUR, S_MS};
    return rc ? rc : s_check_ranges(v, &r, 1);
}

static int s_validate_tests(s_val_t *v, const ds_spec_t *sp)
{
    int rc = s_check_list(v, "tests", sp->n_tests, sp->tests, DS_MAX_TESTS);
    for (uint32_t i = 0; rc == 0 && i < sp->n_tests; i++)
        rc = s_check_test(v, sp->tests, i);
    return rc;
}

/*  The healthy deadline must leave room for the health check: it must
    outlast the start grace (failures are ignored until then) and the
    fastest possible way to healthy (threshold x interval). */
static int s_check_deadlines(s_val_t *v, const ds_spec_t *sp)
{
    const ds_strategy_t *st = &sp->strategy;
    const ds_health_spec_t *h = &sp->health;
    uint64_t fastest = (uint64_t)h->healthy_threshold * h->interval_ms;
    int rc = s_check_relation(v, st->healthy_deadline_ms <= st->progress_deadline_ms,
                              "strategy.healthy_deadline_ms", st->healthy_deadline_ms, "at most",
                              "strategy.progress_deadline_ms", st->progress_deadline_ms);
    if (rc != 0 || h->kind == DS_HEALTH_NONE)
        return rc;
    rc = s_check_relation(v, st->healthy_deadline_ms > h->start_grace_ms,
                          "strategy.healthy_deadline_ms", st->healthy_deadline_ms, "more than",
                          "health.start_grace_ms", h->start_grace_ms);
    if (rc == 0)
        rc = s_check_relation(v, st->healthy_deadline_ms >= fastest, "strategy.healthy_deadline_ms",
                              st->healthy_deadline_ms, "at least",
                              "health.healthy_threshold x health.interval_ms", fastest);
    return rc;
}

static int s_validate_strategy(s_val_t *v, const ds_spec_t *sp)
{
    const ds_strategy_t *st = &sp->strategy;
    const s_range_t r[] = {
        {"strategy.canary", st->canary, 1, st->canary_percent ? 100 : DS_MAX_WORKERS,
         st->canary_percent ? S_PERCENT : S_COUNT},
        {"strategy.max_parallel", st->max_parallel, 1,
         st->max_parallel_percent ? 100 : DS_MAX_WORKERS,
         st->max_parallel_percent ? S_PERCENT : S_COUNT},
        {"strategy.bake_ms", st->bake_ms, 0, DS_MAX_DURATION_MS, S_MS},
        {"strategy.healthy_deadline_ms", st->healthy_deadline_ms, S_SEC, DS_MAX_DURATION_MS, S_MS},
        {"strategy.progress_deadline_ms", st->progress_deadline_ms, S_SEC, DS_MAX_DURATION_MS,
         S_MS},
    };
    int rc = s_check_ranges(v, r, sizeof(r) / sizeof(r[0]));
    return rc ? rc : s_check_deadlines(v, sp);
}

/*  An analysis threshold: negative turns the check off; otherwise it
    must lie in [lo, hi] (or (lo, hi] when lo_open). */
typedef struct {
    const char *field;
    double value;
    double lo;
    double hi;
    bool lo_open;
    const char *allowed;
} s_threshold_t;

static int s_check_thresholds(s_val_t *v, const s_threshold_t *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double x = t[i].value;
        if (!isfinite(x))
            return s_fail(v, "%s: %g is not a finite number (%s, or negative to turn it off)",
                          t[i].field, x, t[i].allowed);
        if (x < 0)
            continue;
        if (x < t[i].lo || (t[i].lo_open && x <= t[i].lo) || x > t[i].hi)
            return s_fail(v, "%s: %g is out of range (%s, or negative to turn the check off)",
                          t[i].field, x, t[i].allowed);
    }
    return 0;
}

static const char *const s_inconclusive[] = {"fail", "promote"};

static int s_validate_analysis(s_val_t *v, const ds_spec_t *sp)
{
    const ds_analysis_t *a = &sp->analysis;
    const s_threshold_t t[] = {
        {"analysis.max_error_ratio", a->max_error_ratio, 0, 1, false, "0 to 1"},
        {"analysis.max_p99_latency_ms", a->max_p99_latency_ms, 0, (double)S_HOUR, true,
         "more than 0 ms, at most 1 h"},
        {"analysis.max_restarts", a->max_restarts, 0, 1e6, false, "0 to 1000000"},
        {"analysis.min_health_ratio", a->min_health_ratio, 0, 1, false, "0 to 1"},
        {"analysis.max_error_ratio_vs_baseline", a->max_error_ratio_vs_baseline, 1, 1000, false,
         "a ratio from 1.0 to 1000"},
        {"analysis.max_latency_vs_baseline", a->max_latency_vs_baseline, 1, 1000, false,
         "a ratio from 1.0 to 1000"},
    };
    int rc = s_check_thresholds(v, t, sizeof(t) / sizeof(t[0]));
    const s_range_t r = {"analysis.min_samples", a->min_samples, 1, S_MAX_MIN_SAMPLES, S_COUNT};
    if (rc == 0)
        rc = s_check_ranges(v, &r, 1);
    if (rc == 0)
        rc = s_check_enum(v, "analysis.on_inconclusive", a->on_inconclusive, s_inconclusive, 2);
    return rc;
}

static int s_validate_metrics(s_val_t *v, const ds_spec_t *sp)
{
    const ds_metrics_spec_t *m = &sp->metrics;
    const char *path = S_STR(m->path);
    int rc = s_check_str(v, "metrics.path", path, DS_MAX_PATH, S_NO_SPACE);
    if (rc == 0 && path[0] != '\0' && path[0] != '/')
        rc = s_fail(v, "metrics.path: %s must start with \"/\" (e.g. \"/metrics\")", s_q(path).s);
    const s_range_t r = {"metrics.interval_ms", m->interval_ms, S_SEC, S_HOUR, S_MS};
    if (rc == 0 && path[0] != '\0')
        rc = s_check_ranges(v, &r, 1);
    if (rc == 0 && path[0] == '\0' && m->interval_ms != 0)
        rc = s_fail(v,
                    "metrics.interval_ms: %u has no effect without metrics.path (set "
                    "metrics.path, or leave the interval unset)",
                    m->interval_ms);
    const struct {
        const char *field;
        const char *name;
    } names[] = {{"metrics.requests_metric", S_STR(m->requests_metric)},
                 {"metrics.errors_metric", S_STR(m->errors_metric)},
                 {"metrics.latency_metric", S_STR(m->latency_metric)}};
    for (size_t i = 0; rc == 0 && i < sizeof(names) / sizeof(names[0]); i++)
        if (names[i].name[0] != '\0')
            rc = s_check_name(v, names[i].field, names[i].name, DS_MAX_LABEL, &s_metric_name);
    return rc;
}

/*  Checks on app metrics need the endpoint and the metrics they read:
    each check lists its needs as a mask over the rows of `needs`. */
static int s_validate_metric_needs(s_val_t *v, const ds_spec_t *sp)
{
    enum { PATH = 1, REQUESTS = 2, ERRORS = 4, LATENCY = 8 };
    const ds_analysis_t *a = &sp->analysis;
    const ds_metrics_spec_t *m = &sp->metrics;
    const struct {
        const char *field;
        const char *value;
        const char *what;
    } needs[] = {
        {"metrics.path", m->path, "the instance's Prometheus endpoint, e.g. \"/metrics\""},
        {"metrics.requests_metric", m->requests_metric, "the counter of requests"},
        {"metrics.errors_metric", m->errors_metric, "the counter of failed requests"},
        {"metrics.latency_metric", m->latency_metric, "the latency histogram, in seconds"},
    };
    const struct {
        const char *field;
        double value;
        unsigned needs;
    } checks[] = {
        {"analysis.max_error_ratio", a->max_error_ratio, PATH | REQUESTS | ERRORS},
        {"analysis.max_error_ratio_vs_baseline", a->max_error_ratio_vs_baseline,
         PATH | REQUESTS | ERRORS},
        {"analysis.max_p99_latency_ms", a->max_p99_latency_ms, PATH | LATENCY},
        {"analysis.max_latency_vs_baseline", a->max_latency_vs_baseline, PATH | LATENCY},
    };
    for (size_t c = 0; c < sizeof(checks) / sizeof(checks[0]); c++) {
        for (size_t n = 0; checks[c].value >= 0 && n < sizeof(needs) / sizeof(needs[0]); n++) {
            if (!(checks[c].needs & (1u << n)) || S_STR(needs[n].value)[0] != '\0')
                continue;
            return s_fail(v,
                          "%s: %g needs %s (%s), which is empty (set it, or make %s negative to "
                          "turn the check off)",
                          checks[c].field, checks[c].value, needs[n].field, needs[n].what,
                          checks[c].field);
        }
    }
    return 0;
}

static int s_validate_stop(s_val_t *v, const ds_spec_t *sp)
{
    const s_range_t r = {"stop_grace_ms", sp->stop_grace_ms, 0, 10 * S_MIN, S_MS};
    return s_check_ranges(v, &r, 1);
}

int ds_spec_validate(const ds_spec_t *spec, char *err, size_t errlen)
{
    static int (*const sections[])(s_val_t *, const ds_spec_t *) = {
        s_validate_artifact, s_validate_sha256,   s_validate_command, s_validate_env,
        s_validate_workdir,  s_validate_selector, s_validate_health,  s_validate_tests,
        s_validate_strategy, s_validate_analysis, s_validate_metrics, s_validate_metric_needs,
        s_validate_stop,
    };
    s_val_t v = {err, errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!spec)
        return s_fail(&v, "spec: missing (NULL)");
    for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
        int rc = sections[i](&v, spec);
        if (rc != 0)
            return rc;
    }
    return 0;
}
