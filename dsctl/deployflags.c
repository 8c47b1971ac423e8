/*  dsctl/deployflags.c - `dsctl deploy` flags to a release spec; see
    deployflags.h. */
#include "dsctl/deployflags.h"

#include "protocol/error.h"
#include "protocol/options.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define S_DURATION_HINT "use 500ms, 5s, 1m"

#define s_fail(err, errlen, ...) ds_errf((err), (errlen), DS_EINVAL, __VA_ARGS__)

static ds_spec_quote_t s_q(const char *s)
{
    return ds_spec_quote(s, strlen(s));
}

/* ---- values -------------------------------------------------------- */

/*  "3" or "25%" into *n and *percent. */
static int s_scale(const char *flag, const char *text, uint32_t *n, bool *percent, char *err,
                   size_t errlen)
{
    size_t len = strlen(text);
    bool pct = len > 0 && text[len - 1] == '%';
    size_t digits = len - pct;
    bool ok = digits > 0 && strspn(text, "0123456789") == digits;
    uint64_t v = 0;
    for (size_t i = 0; ok && i < digits; i++) {
        v = v * 10 + (uint64_t)(text[i] - '0');
        ok = v <= UINT32_MAX;
    }
    if (!ok && digits > 0 && strspn(text, "0123456789") == digits)
        return s_fail(err, errlen, "%s: %s is too large (at most %u)", flag, s_q(text).s,
                      pct ? 100u : DS_MAX_WORKERS);
    if (!ok)
        return s_fail(err, errlen,
                      "%s: %s is not a count or a percentage (e.g. 3 workers, or 25%% of the "
                      "selected workers)",
                      flag, s_q(text).s);
    if (v == 0)
        return s_fail(err, errlen, "%s: %s is not allowed (at least 1 worker, or 1%%)", flag,
                      s_q(text).s);
    *n = (uint32_t)v;
    *percent = pct;
    return 0;
}

/*  A duration of more than 0 ms (0 would mean "the default"). */
static int s_duration(const char *flag, const char *text, const char *zero_hint, uint64_t *ms,
                      char *err, size_t errlen)
{
    if (ds_parse_duration_ms(text, ms) != 0)
        return s_fail(err, errlen, "%s: %s is not a duration (%s)", flag, s_q(text).s,
                      S_DURATION_HINT);
    if (*ms == 0)
        return s_fail(err, errlen, "%s: %s is not allowed (%s)", flag, s_q(text).s, zero_hint);
    return 0;
}

/*  Splits "K=V": the key is copied into the arena, the value points into
    `text`. */
static int s_pair(const char *flag, const char *text, ds_arena_t *arena, ds_kv_t *out, char *err,
                  size_t errlen)
{
    const char *eq = strchr(text, '=');
    if (!eq)
        return s_fail(err, errlen, "%s: %s is not KEY=VALUE (e.g. %s %s)", flag, s_q(text).s, flag,
                      strcmp(flag, "--env") == 0 ? "LOG_LEVEL=debug" : "zone=eu-west-1a");
    if (eq == text)
        return s_fail(err, errlen, "%s: %s has no KEY before '=' (KEY=VALUE)", flag, s_q(text).s);
    size_t klen = (size_t)(eq - text);
    char *key = ds_arena_alloc(arena, klen + 1);
    if (!key)
        return ds_errf(err, errlen, DS_ENOMEM, "%s: out of memory", flag);
    memcpy(key, text, klen);
    key[klen] = '\0';
    out->key = key;
    out->value = (char *)(uintptr_t)(eq + 1); /* borrowed; the spec is only read */
    return 0;
}

/*  Lays the pairs of a repeating flag over `*list` (n `*count`): a key the
    list has gets the new value, a new key goes at the end. A key given
    twice by the flag is an error. */
static int s_pairs(const char *flag, const char *const *texts, size_t n, uint32_t max,
                   ds_kv_t **list, uint32_t *count, ds_arena_t *arena, char *err, size_t errlen)
{
    if (n == 0)
        return 0;
    ds_kv_t *out = ds_arena_alloc(arena, (*count + n) * sizeof *out);
    if (!out)
        return ds_errf(err, errlen, DS_ENOMEM, "%s: out of memory", flag);
    if (*count > 0)
        memcpy(out, *list, *count * sizeof *out);
    uint32_t have = *count, first_new = *count;
    for (size_t i = 0; i < n; i++) {
        ds_kv_t kv;
        int rc = s_pair(flag, texts[i], arena, &kv, err, errlen);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strncmp(texts[j], kv.key, strlen(kv.key)) == 0 && texts[j][strlen(kv.key)] == '=')
                return s_fail(err, errlen, "%s: %s is given twice (give each KEY once)", flag,
                              s_q(kv.key).s);
        uint32_t at = have;
        for (uint32_t k = 0; k < first_new && at == have; k++)
            if (strcmp(out[k].key, kv.key) == 0)
                at = k;
        out[at] = kv;
        if (at == have)
            have++;
    }
    if (have > max)
        return s_fail(err, errlen, "%s: %u entries with the spec's, more than the limit of %u",
                      flag, have, max);
    *list = out;
    *count = have;
    return 0;
}

/* ---- flags to spec ------------------------------------------------- */

static int s_check_conflicts(const ds_deployflags_t *f, const char *origin, char *err,
                             size_t errlen)
{
    const char *health[3] = {NULL, NULL, NULL};
    size_t nh = 0;
    if (f->health_http)
        health[nh++] = "--health-http";
    if (f->health_tcp)
        health[nh++] = "--health-tcp";
    if (f->health_exec)
        health[nh++] = "--health-exec";
    if (nh > 1)
        return s_fail(err, errlen, "%s and %s conflict (give one health check)", health[0],
                      health[1]);
    if (origin)
        return 0;
    if (!f->artifact && !f->cmd)
        return s_fail(err, errlen,
                      "no spec given: use --spec FILE, or --artifact PATH|URL and --cmd CMD");
    if (!f->artifact)
        return s_fail(err, errlen,
                      "--cmd needs --artifact PATH|URL (what to run; or give --spec FILE)");
    if (!f->cmd)
        return s_fail(err, errlen,
                      "--artifact needs --cmd CMD (the command line to run, e.g. --cmd "
                      "'bin/serve --port ${PORT}'; or give --spec FILE)");
    return 0;
}

static void s_health(const ds_deployflags_t *f, ds_health_spec_t *h)
{
    if (f->health_http) {
        h->kind = DS_HEALTH_HTTP;
        h->path = (char *)(uintptr_t)f->health_http;
        h->command = NULL;
    } else if (f->health_tcp) {
        h->kind = DS_HEALTH_TCP;
        h->path = NULL;
        h->command = NULL;
    } else if (f->health_exec) {
        h->kind = DS_HEALTH_EXEC;
        h->path = NULL;
        h->command = (char *)(uintptr_t)f->health_exec;
    }
}

static int s_strategy(const ds_deployflags_t *f, ds_strategy_t *st, char *err, size_t errlen)
{
    int rc = 0;
    if (f->canary)
        rc = s_scale("--canary", f->canary, &st->canary, &st->canary_percent, err, errlen);
    if (rc == 0 && f->max_parallel)
        rc = s_scale("--max-parallel", f->max_parallel, &st->max_parallel,
                     &st->max_parallel_percent, err, errlen);
    if (rc == 0 && f->bake)
        rc = s_duration("--bake", f->bake, "write 1ms for practically no bake", &st->bake_ms, err,
                        errlen);
    if (rc == 0 && f->progress_deadline)
        rc = s_duration("--progress-deadline", f->progress_deadline, "at least 1s",
                        &st->progress_deadline_ms, err, errlen);
    if (rc == 0 && f->healthy_deadline)
        rc = s_duration("--healthy-deadline", f->healthy_deadline, "at least 1s",
                        &st->healthy_deadline_ms, err, errlen);
    if (rc == 0 && f->healthy_deadline && !f->progress_deadline &&
        st->progress_deadline_ms < st->healthy_deadline_ms)
        st->progress_deadline_ms = st->healthy_deadline_ms;
    if (f->no_auto_promote)
        st->auto_promote = false;
    return rc;
}

/*  The flag that set the field a validator message starts with, if it
    was given. */
static const char *s_flag_of(const ds_deployflags_t *f, const char *msg)
{
    static const struct {
        const char *field;
        size_t offset; /* of the flag's member in ds_deployflags_t */
        const char *flag;
    } map[] = {
        {"artifact", offsetof(ds_deployflags_t, artifact), "--artifact"},
        {"command", offsetof(ds_deployflags_t, cmd), "--cmd"},
        {"sha256", offsetof(ds_deployflags_t, sha256), "--sha256"},
        {"health.path", offsetof(ds_deployflags_t, health_http), "--health-http"},
        {"health.command", offsetof(ds_deployflags_t, health_exec), "--health-exec"},
        {"strategy.canary", offsetof(ds_deployflags_t, canary), "--canary"},
        {"strategy.max_parallel", offsetof(ds_deployflags_t, max_parallel), "--max-parallel"},
        {"strategy.bake_ms", offsetof(ds_deployflags_t, bake), "--bake"},
        {"strategy.healthy_deadline_ms", offsetof(ds_deployflags_t, healthy_deadline),
         "--healthy-deadline"},
        {"strategy.progress_deadline_ms", offsetof(ds_deployflags_t, progress_deadline),
         "--progress-deadline"},
    };
    size_t n = strcspn(msg, ":");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *given = *(const char *const *)(const void *)((const char *)f + map[i].offset);
        if (given && strlen(map[i].field) == n && strncmp(msg, map[i].field, n) == 0)
            return map[i].flag;
    }
    if (f->n_env > 0 && strncmp(msg, "env", 3) == 0 && (msg[3] == '[' || msg[3] == ':'))
        return "--env";
    if (f->n_selector > 0 && strncmp(msg, "selector", 8) == 0 && (msg[8] == '[' || msg[8] == ':'))
        return "--selector";
    return NULL;
}

static int s_finish(const ds_deployflags_t *f, const char *origin, ds_spec_t *spec, char *err,
                    size_t errlen)
{
    char msg[DS_DEPLOYFLAGS_ERR_SIZE];
    ds_spec_apply_defaults(spec);
    if (ds_spec_validate(spec, msg, sizeof msg) == 0)
        return 0;
    const char *flag = s_flag_of(f, msg);
    if (flag)
        return s_fail(err, errlen, "%s: %s", flag, msg);
    if (origin)
        return s_fail(err, errlen, "%s with the flags given: %s", origin, msg);
    return s_fail(err, errlen, "%s", msg);
}

int ds_deployflags_apply(const ds_deployflags_t *f, const char *origin, ds_spec_t *spec,
                         ds_arena_t *arena, char *err, size_t errlen)
{
    assert(f && spec && arena);
    assert(f->n_env <= DS_MAX_ENV && f->n_selector <= DS_MAX_LABELS);
    if (err && errlen)
        err[0] = '\0';
    int rc = s_check_conflicts(f, origin, err, errlen);
    if (rc != 0)
        return rc;
    if (f->artifact)
        spec->artifact = (char *)(uintptr_t)f->artifact;
    if (f->cmd)
        spec->command = (char *)(uintptr_t)f->cmd;
    if (f->sha256)
        spec->sha256 = (char *)(uintptr_t)f->sha256;
    s_health(f, &spec->health);
    rc = s_strategy(f, &spec->strategy, err, errlen);
    if (rc == 0)
        rc = s_pairs("--env", f->env, f->n_env, DS_MAX_ENV, &spec->env, &spec->n_env, arena, err,
                     errlen);
    if (rc == 0)
        rc = s_pairs("--selector", f->selector, f->n_selector, DS_MAX_LABELS, &spec->selector,
                     &spec->n_selector, arena, err, errlen);
    if (rc == 0)
        rc = s_finish(f, origin, spec, err, errlen);
    return rc;
}

/* ---- artifact paths ------------------------------------------------ */

int ds_deployflags_absolute(const char *artifact, const char *base, char *out, size_t outlen)
{
    assert(artifact && base && out && outlen > 0);
    const char *p = artifact;
    int n;
    if (strstr(artifact, "://") || artifact[0] == '/' || artifact[0] == '\0') {
        n = snprintf(out, outlen, "%s", artifact);
    } else {
        while (p[0] == '.' && p[1] == '/') {
            p += 2;
            while (*p == '/')
                p++;
        }
        size_t blen = strlen(base);
        while (blen > 1 && base[blen - 1] == '/')
            blen--;
        if (strcmp(p, ".") == 0 || *p == '\0')
            n = snprintf(out, outlen, "%.*s", (int)blen, base);
        else
            n = snprintf(out, outlen, "%.*s%s%s", (int)blen, base, blen == 1 ? "" : "/", p);
    }
    if (n < 0 || (size_t)n >= outlen) {
        out[0] = '\0';
        return DS_ETOOBIG;
    }
    return 0;
}
