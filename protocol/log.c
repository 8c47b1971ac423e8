/*  protocol/log.c - structured logging; see log.h for the line format. */
#include "protocol/log.h"

#include "protocol/error.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>

static _Atomic int s_level = DS_LOG_INFO;
static _Atomic(FILE *) s_out = NULL;

static const char *const s_names[] = {"debug", "info", "warn", "error", "off"};

/*  Room kept at the end of every line for the truncation marker. */
static const char s_cut_mark[] = " truncated=true";
#define S_RESERVE (sizeof s_cut_mark + 1)

typedef struct {
    char buf[DS_LOG_LINE_MAX];
    size_t len;
    bool cut;
} s_line_t;

void ds_log_init(ds_log_level_t level, FILE *out)
{
    assert(level >= DS_LOG_DEBUG && level <= DS_LOG_OFF);
    atomic_store(&s_out, out);
    atomic_store(&s_level, (int)level);
}

int ds_log_level_parse(const char *text, ds_log_level_t *out)
{
    assert(out);
    for (int i = DS_LOG_DEBUG; text && i <= DS_LOG_OFF; i++) {
        if (strcasecmp(text, s_names[i]) == 0) {
            *out = (ds_log_level_t)i;
            return 0;
        }
    }
    return DS_EINVAL;
}

const char *ds_log_level_name(ds_log_level_t level)
{
    if (level < DS_LOG_DEBUG || level > DS_LOG_OFF)
        return "?";
    return s_names[level];
}

bool ds_log_enabled(ds_log_level_t level)
{
    return level < DS_LOG_OFF && (int)level >= atomic_load_explicit(&s_level, memory_order_relaxed);
}

/* ---- the line buffer ---------------------------------------------- */

static void s_put(s_line_t *l, const char *data, size_t n)
{
    size_t room = sizeof l->buf - S_RESERVE - l->len;
    if (n > room) {
        n = room;
        l->cut = true;
    }
    memcpy(l->buf + l->len, data, n);
    l->len += n;
}

static void s_putc(s_line_t *l, char c)
{
    s_put(l, &c, 1);
}

static void s_puts(s_line_t *l, const char *s)
{
    s_put(l, s, strlen(s));
}

static bool s_needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '"' || c == '=' || c == '\\')
            return true;
    }
    return false;
}

static void s_put_escaped(s_line_t *l, unsigned char c)
{
    char tmp[8];
    switch (c) {
    case '"':
        s_puts(l, "\\\"");
        break;
    case '\\':
        s_puts(l, "\\\\");
        break;
    case '\n':
        s_puts(l, "\\n");
        break;
    case '\r':
        s_puts(l, "\\r");
        break;
    case '\t':
        s_puts(l, "\\t");
        break;
    default:
        if (c < ' ' || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            s_puts(l, tmp);
        } else {
            s_putc(l, (char)c);
        }
    }
}

/*  Writes a value, quoted and escaped when it has to be. */
static void s_put_value(s_line_t *l, const char *s, size_t n)
{
    if (!s_needs_quotes(s, n)) {
        s_put(l, s, n);
        return;
    }
    s_putc(l, '"');
    for (size_t i = 0; i < n; i++)
        s_put_escaped(l, (unsigned char)s[i]);
    s_putc(l, '"');
}

static void s_put_str(s_line_t *l, const char *s)
{
    if (!s)
        s = "(null)";
    s_put_value(l, s, strlen(s));
}

static void s_put_head(s_line_t *l, ds_log_level_t level, const char *mod, const char *msg)
{
    struct timespec now;
    struct tm tm;
    char ts[64];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000L);
    s_puts(l, "ts=");
    s_puts(l, ts);
    s_puts(l, " lvl=");
    s_puts(l, ds_log_level_name(level));
    s_puts(l, " mod=");
    s_put_str(l, mod);
    s_puts(l, " msg=");
    s_put_str(l, msg);
}

/* ---- the key=value format ----------------------------------------- */

typedef enum {
    S_LEN_NONE,
    S_LEN_HH,
    S_LEN_H,
    S_LEN_L,
    S_LEN_LL,
    S_LEN_Z,
    S_LEN_J,
    S_LEN_T,
    S_LEN_BIG_L
} s_len_t;

typedef struct {
    int prec; /* -1: none */
    s_len_t len;
    char conv;
} s_spec_t;

static const char *s_parse_len(const char *p, s_len_t *len)
{
    static const struct {
        const char *text;
        s_len_t len;
    } mods[] = {{"hh", S_LEN_HH}, {"ll", S_LEN_LL}, {"h", S_LEN_H}, {"l", S_LEN_L},
                {"z", S_LEN_Z},   {"j", S_LEN_J},   {"t", S_LEN_T}, {"L", S_LEN_BIG_L}};
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        size_t n = strlen(mods[i].text);
        if (strncmp(p, mods[i].text, n) == 0) {
            *len = mods[i].len;
            return p + n;
        }
    }
    *len = S_LEN_NONE;
    return p;
}

/*  Parses one conversion after its '%'; consumes '*' arguments. Returns
    the character after it. */
static const char *s_parse_spec(const char *p, s_spec_t *spec, va_list *ap)
{
    while (*p && strchr("-+ #0'", *p))
        p++;
    if (*p == '*') {
        (void)va_arg(*ap, int);
        p++;
    }
    while (isdigit((unsigned char)*p))
        p++;
    spec->prec = -1;
    if (*p == '.') {
        p++;
        spec->prec = 0;
        if (*p == '*') {
            spec->prec = va_arg(*ap, int);
            p++;
        }
        while (isdigit((unsigned char)*p))
            spec->prec = spec->prec * 10 + (*p++ - '0');
    }
    p = s_parse_len(p, &spec->len);
    spec->conv = *p;
    return *p ? p + 1 : p;
}

static long long s_arg_signed(s_len_t len, va_list *ap)
{
    switch (len) {
    case S_LEN_HH:
        return (signed char)va_arg(*ap, int);
    case S_LEN_H:
        return (short)va_arg(*ap, int);
    case S_LEN_L:
        return va_arg(*ap, long);
    case S_LEN_LL:
        return va_arg(*ap, long long);
    case S_LEN_Z:
        return va_arg(*ap, ssize_t);
    case S_LEN_J:
        return va_arg(*ap, intmax_t);
    case S_LEN_T:
        return va_arg(*ap, ptrdiff_t);
    default:
        return va_arg(*ap, int);
    }
}

static unsigned long long s_arg_unsigned(s_len_t len, va_list *ap)
{
    switch (len) {
    case S_LEN_HH:
        return (unsigned char)va_arg(*ap, unsigned);
    case S_LEN_H:
        return (unsigned short)va_arg(*ap, unsigned);
    case S_LEN_L:
        return va_arg(*ap, unsigned long);
    case S_LEN_LL:
        return va_arg(*ap, unsigned long long);
    case S_LEN_Z:
        return va_arg(*ap, size_t);
    case S_LEN_J:
        return va_arg(*ap, uintmax_t);
    case S_LEN_T:
        return (unsigned long long)va_arg(*ap, ptrdiff_t);
    default:
        return va_arg(*ap, unsigned);
    }
}

static void s_put_double(s_line_t *l, const s_spec_t *spec, va_list *ap)
{
    char tmp[512];
    double v = spec->len == S_LEN_BIG_L ? (double)va_arg(*ap, long double) : va_arg(*ap, double);
    int prec = spec->prec < 0 ? 6 : spec->prec > 60 ? 60 : spec->prec;
    switch (spec->conv) {
    case 'e':
    case 'E':
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        break;
    case 'g':
    case 'G':
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        break;
    default:
        snprintf(tmp, sizeof tmp, "%.*f", prec, v);
    }
    s_puts(l, tmp);
}

/*  Formats one conversion. Returns false for one it does not know, after
    which the remaining arguments cannot be located. */
static bool s_put_conv(s_line_t *l, const s_spec_t *spec, va_list *ap)
{
    char tmp[64];
    switch (spec->conv) {
    case 'd':
    case 'i':
        snprintf(tmp, sizeof tmp, "%lld", s_arg_signed(spec->len, ap));
        break;
    case 'u':
        snprintf(tmp, sizeof tmp, "%llu", s_arg_unsigned(spec->len, ap));
        break;
    case 'x':
        snprintf(tmp, sizeof tmp, "%llx", s_arg_unsigned(spec->len, ap));
        break;
    case 'X':
        snprintf(tmp, sizeof tmp, "%llX", s_arg_unsigned(spec->len, ap));
        break;
    case 'p':
        snprintf(tmp, sizeof tmp, "%p", va_arg(*ap, void *));
        break;
    case 'c':
        tmp[0] = (char)va_arg(*ap, int);
        s_put_value(l, tmp, 1);
        return true;
    case 's':
        s_put_str(l, va_arg(*ap, const char *));
        return true;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
        s_put_double(l, spec, ap);
        return true;
    default:
        return false;
    }
    s_puts(l, tmp);
    return true;
}

static void s_put_kvs(s_line_t *l, const char *fmt, va_list *ap)
{
    const char *p = fmt;
    while (*p) {
        if (*p != '%') {
            s_putc(l, *p++);
            continue;
        }
        if (p[1] == '%') {
            s_putc(l, '%');
            p += 2;
            continue;
        }
        s_spec_t spec;
        p = s_parse_spec(p + 1, &spec, ap);
        if (!s_put_conv(l, &spec, ap)) {
            s_puts(l, "?");
            return;
        }
    }
}

static void s_emit(s_line_t *l)
{
    /* s_put stops S_RESERVE bytes short of the end: the marker and the
       newline always fit. */
    if (l->cut) {
        memcpy(l->buf + l->len, s_cut_mark, sizeof s_cut_mark - 1);
        l->len += sizeof s_cut_mark - 1;
    }
    l->buf[l->len++] = '\n';
    FILE *out = atomic_load(&s_out);
    if (!out)
        out = stderr;
    /* One fwrite per line: stdio locks the stream, so lines never mix. */
    (void)!fwrite(l->buf, 1, l->len, out);
    fflush(out);
}

void ds_log_write(ds_log_level_t level, const char *mod, const char *msg, const char *kvs, ...)
{
    assert(mod && msg && kvs);
    s_line_t line = {.len = 0};
    s_put_head(&line, level, mod, msg);
    if (*kvs) {
        s_putc(&line, ' ');
        va_list ap;
        va_start(ap, kvs);
        s_put_kvs(&line, kvs, &ap);
        va_end(ap);
    }
    s_emit(&line);
}

void ds_log_write_msg(ds_log_level_t level, const char *mod, const char *msg)
{
    assert(mod && msg);
    s_line_t line = {.len = 0};
    s_put_head(&line, level, mod, msg);
    s_emit(&line);
}
