/*  protocol/buf.c - a growable byte buffer. */
#include "protocol/buf.h"

#include "protocol/error.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int ds_buf_append(ds_buf_t *self, const void *data, size_t len)
{
    assert(self);
    if (len == 0)
        return 0;
    if (len > SIZE_MAX - self->len)
        return DS_ENOMEM;
    size_t need = self->len + len;
    if (need > self->cap) {
        size_t cap = self->cap ? self->cap : 256;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        uint8_t *grown = realloc(self->data, cap);
        if (!grown)
            return DS_ENOMEM;
        self->data = grown;
        self->cap = cap;
    }
    memcpy(self->data + self->len, data, len);
    self->len = need;
    return 0;
}

void ds_buf_reset(ds_buf_t *self)
{
    assert(self);
    self->len = 0;
}

void ds_buf_free(ds_buf_t *self)
{
    assert(self);
    free(self->data);
    self->data = NULL;
    self->len = self->cap = 0;
}
