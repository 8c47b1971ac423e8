/*  protocol/options.c - flags and config files from one table. */
#include "protocol/options.h"

#include "protocol/error.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define S_LINE_MAX 4096

#define s_err(err, errlen, ...) ds_errf((err), (errlen), DS_EINVAL, __VA_ARGS__)

static const ds_option_t *s_find(const ds_option_t *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static int s_set_number(const ds_option_t *o, void *m, const char *value, char *err, size_t errlen)
{
    uint64_t v;
    int rc;
    if (o->kind == DS_OPT_DURATION) {
        rc = ds_parse_duration_ms(value, &v);
        if (rc != 0)
            return s_err(err, errlen, "%s: \"%s\" is not a duration (use 250ms, 5s, 1m30s)",
                         o->name, value);
    } else {
        char *end;
        errno = 0;
        v = strtoull(value, &end, 10);
        if (!isdigit((unsigned char)*value) || *end || errno)
            return s_err(err, errlen, "%s: \"%s\" is not a whole number", o->name, value);
    }
    if (v < o->min || v > o->max)
        return s_err(err, errlen, "%s: %" PRIu64 " is out of range (%" PRIu32 " to %" PRIu32 ")",
                     o->name, v, o->min, o->max);
    *(uint32_t *)m = (uint32_t)v;
    return 0;
}

static int s_set_bool(const ds_option_t *o, void *m, const char *value, char *err, size_t errlen)
{
    if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 || strcmp(value, "1") == 0)
        *(bool *)m = true;
    else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 || strcmp(value, "0") == 0)
        *(bool *)m = false;
    else
        return s_err(err, errlen, "%s: \"%s\" is not true or false", o->name, value);
    return 0;
}

static int s_set_text(const ds_option_t *o, char *m, const char *value, bool append, char *err,
                      size_t errlen)
{
    size_t have = append ? strlen(m) : 0;
    size_t need = have + (have ? 1 : 0) + strlen(value);
    if (need >= o->size)
        return s_err(err, errlen, "%s: value is too long (at most %zu characters)", o->name,
                     o->size - 1);
    if (have)
        m[have++] = ',';
    memcpy(m + have, value, strlen(value) + 1);
    return 0;
}

/*  Sets one option from its text. `append` lets repeated LIST flags add. */
static int s_set(const ds_option_t *o, void *cfg, const char *value, bool append, char *err,
                 size_t errlen)
{
    void *m = (char *)cfg + o->offset;
    switch (o->kind) {
    case DS_OPT_STR:
        return s_set_text(o, m, value, false, err, errlen);
    case DS_OPT_LIST:
        return s_set_text(o, m, value, append, err, errlen);
    case DS_OPT_U32:
    case DS_OPT_DURATION:
        return s_set_number(o, m, value, err, errlen);
    case DS_OPT_BOOL:
        return s_set_bool(o, m, value, err, errlen);
    }
    assert(!"unknown option kind");
    return DS_EINVAL;
}

int ds_options_defaults(const ds_option_t *opts, size_t n, void *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const ds_option_t *o = &opts[i];
        void *m = (char *)cfg + o->offset;
        if (o->kind == DS_OPT_STR || o->kind == DS_OPT_LIST)
            *(char *)m = '\0';
        int rc = o->defval ? s_set(o, cfg, o->defval, false, err, errlen) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = '\0';
    return s;
}

/*  Parses one "key = value" line (comments and blank lines pass). */
static int s_parse_line(const ds_option_t *opts, size_t n, void *cfg, char *line, char *err,
                        size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *text = s_trim(line);
    if (!*text)
        return 0;
    char *eq = strchr(text, '=');
    if (!eq)
        return s_err(err, errlen, "expected \"key = value\", found \"%.40s\"", text);
    *eq = '\0';
    char *key = s_trim(text), *value = s_trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    }
    const ds_option_t *o = s_find(opts, n, key, strlen(key));
    if (!o)
        return s_err(err, errlen, "unknown key \"%.40s\" (keys are the flags' long names)", key);
    return s_set(o, cfg, value, true, err, errlen);
}

int ds_options_parse_text(const ds_option_t *opts, size_t n, void *cfg, const char *text,
                          const char *source, char *err, size_t errlen)
{
    char line[S_LINE_MAX];
    char sub[256];
    unsigned lineno = 0;
    while (*text) {
        const char *nl = strchr(text, '\n');
        size_t len = nl ? (size_t)(nl - text) : strlen(text);
        lineno++;
        if (len >= sizeof line)
            return s_err(err, errlen, "%s:%u: line longer than %zu characters", source, lineno,
                         sizeof line - 1);
        memcpy(line, text, len);
        line[len] = '\0';
        text += len + (nl ? 1 : 0);
        if (s_parse_line(opts, n, cfg, line, sub, sizeof sub) != 0)
            return s_err(err, errlen, "%s:%u: %s", source, lineno, sub);
    }
    return 0;
}

const char *ds_options_find_config(int argc, char **argv, int first)
{
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

/*  Splits "--name=value" or "--name value" and applies it; *i advances
    past a consumed value. */
static int s_parse_flag(const ds_option_t *opts, size_t n, void *cfg, int argc, char **argv, int *i,
                        uint64_t *seen, char *err, size_t errlen)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const ds_option_t *o = s_find(opts, n, arg, len);
    if (!o)
        return s_err(err, errlen, "unknown flag --%.*s (see --help)", (int)len, arg);
    const char *value = eq ? eq + 1 : NULL;
    if (!value && o->kind == DS_OPT_BOOL)
        value = "true";
    if (!value) {
        if (*i + 1 >= argc)
            return s_err(err, errlen, "--%s needs a value (%s)", o->name,
                         o->metavar ? o->metavar : "VALUE");
        value = argv[++*i];
    }
    /* The first flag for a list replaces what the config file said. */
    uint64_t bit = 1ull << ((size_t)(o - opts) % 64);
    bool append = (*seen & bit) != 0;
    *seen |= bit;
    return s_set(o, cfg, value, append, err, errlen);
}

int ds_options_parse_argv(const ds_option_t *opts, size_t n, void *cfg, int argc, char **argv,
                          int first, bool *help, char *err, size_t errlen)
{
    *help = false;
    uint64_t seen = 0;
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = true;
            continue;
        }
        if (strcmp(arg, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(arg, "--config=", 9) == 0)
            continue;
        if (strncmp(arg, "--", 2) != 0 || !arg[2])
            return s_err(err, errlen, "unexpected argument \"%.40s\" (flags start with --)", arg);
        int rc = s_parse_flag(opts, n, cfg, argc, argv, &i, &seen, err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void ds_options_print_help(const ds_option_t *opts, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const ds_option_t *o = &opts[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s %s", o->name,
                 o->kind == DS_OPT_BOOL ? "" : (o->metavar ? o->metavar : "VALUE"));
        fprintf(out, "  %-28s %s", flag, o->help);
        if (o->defval && *o->defval)
            fprintf(out, " (default: %s)", o->defval);
        fputc('\n', out);
    }
    fprintf(out, "  %-28s %s\n", "--config FILE",
            "read settings from FILE: one \"flag-name = value\" per line; flags win");
}
