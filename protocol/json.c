/*  dsctl/json.c - a small streaming JSON writer; see json.h. */
#include "protocol/json.h"

#include "protocol/error.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char kind; /* '{' or '[' */
    size_t count;
    bool key_pending; /* objects: a key was written, its value is due */
} s_level_t;

struct ds_json {
    FILE *out;
    bool pretty;
    bool failed;
    bool done; /* a complete top-level value was written */
    size_t depth;
    s_level_t stack[DS_JSON_MAX_DEPTH];
};

ds_json_t *ds_json_new(FILE *out, bool pretty)
{
    assert(out);
    ds_json_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->out = out;
    self->pretty = pretty;
    return self;
}

void ds_json_destroy(ds_json_t **self_p)
{
    assert(self_p);
    free(*self_p);
    *self_p = NULL;
}

static void s_write(ds_json_t *self, const void *data, size_t len)
{
    if (len && fwrite(data, 1, len, self->out) != len)
        self->failed = true;
}

static void s_puts(ds_json_t *self, const char *s)
{
    s_write(self, s, strlen(s));
}

static void s_newline(ds_json_t *self)
{
    if (!self->pretty)
        return;
    s_write(self, "\n", 1);
    for (size_t i = 0; i < self->depth; i++)
        s_write(self, "  ", 2);
}

/*  Puts the separator a new element needs: a comma after the first. */
static void s_element(ds_json_t *self)
{
    s_level_t *top = &self->stack[self->depth - 1];
    if (top->count++ > 0)
        s_write(self, ",", 1);
    s_newline(self);
}

static void s_before_value(ds_json_t *self)
{
    if (self->depth == 0) {
        assert(!self->done && "one top-level value per document");
        return;
    }
    s_level_t *top = &self->stack[self->depth - 1];
    if (top->kind == '{') {
        assert(top->key_pending && "object value without a key");
        top->key_pending = false;
    } else {
        s_element(self);
    }
}

static void s_after_value(ds_json_t *self)
{
    if (self->depth == 0)
        self->done = true;
}

static void s_open(ds_json_t *self, char kind)
{
    s_before_value(self);
    assert(self->depth < DS_JSON_MAX_DEPTH && "JSON nesting too deep");
    s_write(self, &kind, 1);
    self->stack[self->depth++] = (s_level_t){kind, 0, false};
}

static void s_close(ds_json_t *self, char kind)
{
    assert(self->depth > 0 && self->stack[self->depth - 1].kind == kind);
    assert(!self->stack[self->depth - 1].key_pending && "key without a value");
    size_t count = self->stack[self->depth - 1].count;
    self->depth--;
    if (count > 0)
        s_newline(self);
    s_write(self, kind == '{' ? "}" : "]", 1);
    s_after_value(self);
}

void ds_json_object_begin(ds_json_t *self)
{
    s_open(self, '{');
}

void ds_json_object_end(ds_json_t *self)
{
    s_close(self, '{');
}

void ds_json_array_begin(ds_json_t *self)
{
    s_open(self, '[');
}

void ds_json_array_end(ds_json_t *self)
{
    s_close(self, '[');
}

/* ---- strings ------------------------------------------------------ */

/*  Lead bytes of multi-byte UTF-8: mask, value, length, payload bits,
    smallest code point (anything smaller is an overlong encoding). */
static const struct {
    uint8_t mask, value;
    uint8_t len;
    uint8_t bits;
    uint32_t min;
} s_leads[] = {
    {0xe0, 0xc0, 2, 0x1f, 0x80}, {0xf0, 0xe0, 3, 0x0f, 0x800}, {0xf8, 0xf0, 4, 0x07, 0x10000}};

/*  Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t s_utf8_len(const uint8_t *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    for (size_t k = 0; k < sizeof s_leads / sizeof s_leads[0]; k++) {
        if ((p[0] & s_leads[k].mask) != s_leads[k].value)
            continue;
        size_t len = s_leads[k].len;
        uint32_t cp = p[0] & s_leads[k].bits;
        if (len > n)
            return 0;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        bool ok = cp >= s_leads[k].min && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
        return ok ? len : 0;
    }
    return 0;
}

/*  The escape for byte c, or NULL when it is written as is. */
static const char *s_escape(uint8_t c, char tmp[8])
{
    switch (c) {
    case '"':
        return "\\\"";
    case '\\':
        return "\\\\";
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        if (c >= 0x20)
            return NULL;
        snprintf(tmp, 8, "\\u%04x", c);
        return tmp;
    }
}

static void s_string(ds_json_t *self, const uint8_t *p, size_t n)
{
    char tmp[8];
    s_write(self, "\"", 1);
    size_t run = 0; /* start of bytes not yet written */
    for (size_t i = 0; i < n;) {
        const char *esc = p[i] < 0x80 ? s_escape(p[i], tmp) : NULL;
        size_t len = esc ? 1 : s_utf8_len(p + i, n - i);
        if (esc || len == 0) {
            s_write(self, p + run, i - run);
            s_puts(self, esc ? esc : "\xef\xbf\xbd"); /* U+FFFD */
            i++;
            run = i;
        } else {
            i += len;
        }
    }
    s_write(self, p + run, n - run);
    s_write(self, "\"", 1);
}

void ds_json_key(ds_json_t *self, const char *key)
{
    assert(key && self->depth > 0);
    s_level_t *top = &self->stack[self->depth - 1];
    assert(top->kind == '{' && !top->key_pending && "key where a value is due");
    s_element(self);
    s_string(self, (const uint8_t *)key, strlen(key));
    s_puts(self, self->pretty ? ": " : ":");
    top->key_pending = true;
}

void ds_json_strn(ds_json_t *self, const void *data, size_t len)
{
    assert(data || len == 0);
    s_before_value(self);
    s_string(self, data ? data : "", len);
    s_after_value(self);
}

void ds_json_str(ds_json_t *self, const char *s)
{
    if (!s)
        ds_json_null(self);
    else
        ds_json_strn(self, s, strlen(s));
}

/* ---- scalars ------------------------------------------------------ */

static void s_scalar(ds_json_t *self, const char *text)
{
    s_before_value(self);
    s_puts(self, text);
    s_after_value(self);
}

void ds_json_u64(ds_json_t *self, uint64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    s_scalar(self, tmp);
}

void ds_json_i64(ds_json_t *self, int64_t v)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%" PRId64, v);
    s_scalar(self, tmp);
}

void ds_json_f64(ds_json_t *self, double v)
{
    char tmp[40];
    if (!isfinite(v)) {
        s_scalar(self, "null");
        return;
    }
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof tmp, "%.17g", v);
    s_scalar(self, tmp);
}

void ds_json_bool(ds_json_t *self, bool v)
{
    s_scalar(self, v ? "true" : "false");
}

void ds_json_null(ds_json_t *self)
{
    s_scalar(self, "null");
}

int ds_json_finish(ds_json_t *self)
{
    assert(self->depth == 0 && "unclosed JSON container");
    s_write(self, "\n", 1);
    if (fflush(self->out) != 0)
        self->failed = true;
    return self->failed ? DS_EIO : 0;
}

void ds_json_key_u64(ds_json_t *self, const char *key, uint64_t v)
{
    ds_json_key(self, key);
    ds_json_u64(self, v);
}

void ds_json_key_str(ds_json_t *self, const char *key, const char *v)
{
    ds_json_key(self, key);
    ds_json_str(self, v ? v : "");
}

void ds_json_key_f64(ds_json_t *self, const char *key, double v)
{
    ds_json_key(self, key);
    ds_json_f64(self, v);
}
