/*  protocol/arena.c - a bounded bump allocator over a list of blocks. */
#include "protocol/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define S_BLOCK_MIN 4096u
#define S_ALIGN     alignof(max_align_t)

typedef struct s_block {
    struct s_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
} s_block_t;

struct ds_arena {
    s_block_t *head;
    size_t cap;
    size_t used;
};

ds_arena_t *ds_arena_new(size_t cap)
{
    ds_arena_t *self = calloc(1, sizeof *self);
    if (self)
        self->cap = cap;
    return self;
}

void ds_arena_destroy(ds_arena_t **self_p)
{
    assert(self_p);
    ds_arena_t *self = *self_p;
    if (!self)
        return;
    s_block_t *b = self->head;
    while (b) {
        s_block_t *next = b->next;
        free(b);
        b = next;
    }
    free(self);
    *self_p = NULL;
}

static s_block_t *s_block_new(size_t min_size)
{
    if (min_size > SIZE_MAX - sizeof(s_block_t))
        return NULL;
    size_t size = min_size > S_BLOCK_MIN ? min_size : S_BLOCK_MIN;
    s_block_t *b = malloc(sizeof *b + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

void *ds_arena_alloc(ds_arena_t *self, size_t size)
{
    assert(self);
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - S_ALIGN)
        return NULL;
    size_t rounded = (size + S_ALIGN - 1) & ~(S_ALIGN - 1);
    if (rounded > self->cap - self->used)
        return NULL;
    s_block_t *b = self->head;
    if (!b || b->size - b->used < rounded) {
        b = s_block_new(rounded);
        if (!b)
            return NULL;
        b->next = self->head;
        self->head = b;
    }
    void *p = b->data + b->used;
    b->used += rounded;
    self->used += rounded;
    memset(p, 0, size);
    return p;
}

size_t ds_arena_used(const ds_arena_t *self)
{
    assert(self);
    return self->used;
}
