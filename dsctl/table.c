/*  dsctl/table.c - aligned plain-text tables; see table.h. */
#include "dsctl/table.h"

#include "protocol/error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct ds_table {
    size_t ncols;
    bool right[DS_TABLE_MAX_COLS];
    char **cells; /* rows * ncols, row 0 is the header */
    size_t rows;
    size_t cap; /* rows allocated */
};

/*  A copy of `s` with control characters replaced by '?'. */
static char *s_clean_copy(const char *s)
{
    if (!s)
        s = "-";
    char *copy = strdup(s);
    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return copy;
}

/*  Width on screen: UTF-8 characters, not bytes. */
static size_t s_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            n++;
    return n;
}

ds_table_t *ds_table_new(const char *const *headers, size_t ncols)
{
    assert(headers && ncols > 0 && ncols <= DS_TABLE_MAX_COLS);
    ds_table_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->ncols = ncols;
    if (ds_table_add_row(self, headers) != 0)
        ds_table_destroy(&self);
    return self;
}

void ds_table_destroy(ds_table_t **self_p)
{
    assert(self_p);
    ds_table_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->rows * self->ncols; i++)
        free(self->cells[i]);
    free(self->cells);
    free(self);
    *self_p = NULL;
}

void ds_table_align_right(ds_table_t *self, size_t col)
{
    assert(col < self->ncols);
    self->right[col] = true;
}

static int s_grow(ds_table_t *self)
{
    if (self->rows < self->cap)
        return 0;
    size_t cap = self->cap ? self->cap * 2 : 8;
    char **cells = realloc(self->cells, cap * self->ncols * sizeof *cells);
    if (!cells)
        return DS_ENOMEM;
    self->cells = cells;
    self->cap = cap;
    return 0;
}

int ds_table_add_row(ds_table_t *self, const char *const *cells)
{
    assert(self && cells);
    if (s_grow(self) != 0)
        return DS_ENOMEM;
    char **row = self->cells + self->rows * self->ncols;
    for (size_t c = 0; c < self->ncols; c++) {
        row[c] = s_clean_copy(cells[c]);
        if (!row[c]) {
            while (c-- > 0)
                free(row[c]);
            return DS_ENOMEM;
        }
    }
    self->rows++;
    return 0;
}

static void s_pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

static void s_print_row(const ds_table_t *self, char *const *row, const size_t *widths, FILE *out)
{
    for (size_t c = 0; c < self->ncols; c++) {
        size_t pad = widths[c] - s_width(row[c]);
        bool last = c + 1 == self->ncols;
        if (self->right[c])
            s_pad(out, pad);
        fputs(row[c], out);
        if (!self->right[c] && !last)
            s_pad(out, pad);
        if (!last)
            fputs("  ", out);
    }
    fputc('\n', out);
}

int ds_table_print(const ds_table_t *self, FILE *out)
{
    assert(self && out);
    size_t widths[DS_TABLE_MAX_COLS] = {0};
    for (size_t r = 0; r < self->rows; r++) {
        for (size_t c = 0; c < self->ncols; c++) {
            size_t w = s_width(self->cells[r * self->ncols + c]);
            if (w > widths[c])
                widths[c] = w;
        }
    }
    for (size_t r = 0; r < self->rows; r++)
        s_print_row(self, self->cells + r * self->ncols, widths, out);
    return ferror(out) ? DS_EIO : 0;
}
