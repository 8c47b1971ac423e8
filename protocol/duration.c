/*  protocol/duration.c - the one duration parser: "500ms", "5s", "1m30s", "1.5h". */
#include "protocol/error.h"
#include "protocol/options.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <string.h>

static const struct {
    const char *name;
    uint64_t ms;
} s_units[] = {{"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}};

static int s_unit(const char *name, size_t len, uint64_t *ms)
{
    for (size_t i = 0; i < sizeof s_units / sizeof s_units[0]; i++) {
        if (strlen(s_units[i].name) == len && strncmp(name, s_units[i].name, len) == 0) {
            *ms = s_units[i].ms;
            return 0;
        }
    }
    return DS_EINVAL;
}

/*  Parses digits at *pp into *v; returns how many there were, or -1 on
    overflow. Digits past `keep` are read but not kept (fractions). */
static int s_digits(const char **pp, uint64_t *v, uint64_t *scale, int keep)
{
    int n = 0;
    for (; isdigit((unsigned char)**pp); (*pp)++, n++) {
        if (n >= keep)
            continue;
        if (*v > (UINT64_MAX - 9) / 10)
            return -1;
        *v = *v * 10 + (uint64_t)(**pp - '0');
        *scale *= 10;
    }
    return n;
}

/*  One <number><unit> group. */
static int s_duration_group(const char **pp, uint64_t *ms)
{
    uint64_t whole = 0, frac = 0, ignored = 1, scale = 1;
    int nw = s_digits(pp, &whole, &ignored, 20), nf = 0;
    if (nw < 0)
        return DS_EINVAL;
    if (**pp == '.') {
        (*pp)++;
        nf = s_digits(pp, &frac, &scale, 9);
        if (nf <= 0)
            return DS_EINVAL;
    }
    if (nw == 0 && nf == 0)
        return DS_EINVAL;
    const char *unit = *pp;
    while (isalpha((unsigned char)**pp))
        (*pp)++;
    uint64_t mult;
    if (s_unit(unit, (size_t)(*pp - unit), &mult) != 0 || whole > UINT64_MAX / mult)
        return DS_EINVAL;
    uint64_t v = whole * mult, extra = frac * mult / scale;
    if (v > UINT64_MAX - extra)
        return DS_EINVAL;
    *ms = v + extra;
    return 0;
}

int ds_parse_duration_ms(const char *text, uint64_t *ms_out)
{
    assert(ms_out);
    if (!text || !*text)
        return DS_EINVAL;
    uint64_t total = 0;
    for (const char *p = text; *p;) {
        uint64_t ms;
        if (s_duration_group(&p, &ms) != 0 || total > UINT64_MAX - ms)
            return DS_EINVAL;
        total += ms;
    }
    *ms_out = total;
    return 0;
}
