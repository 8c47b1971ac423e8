/*  protocol/arena.c - a bounded bump allocator over a list of blocks. */
#include "protocol/arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*  The first block is small enough for the C library's per-thread cache
    (a decoded request needs a few hundred bytes; glibc serves blocks of
    up to about 1 KiB without consolidating its free lists, which a 4 KiB
    block per message made it do); each next block doubles, up to
    S_BLOCK_MAX, so that a large message still takes few blocks. */
#define S_BLOCK_FIRST 960u
#define S_BLOCK_MAX   (64u * 1024u)
#define S_ALIGN       alignof(max_align_t)

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

/*  A block for at least `min_size` bytes, after `prev` (NULL: the first). */
static s_block_t *s_block_new(size_t min_size, const s_block_t *prev)
{
    if (min_size > SIZE_MAX - sizeof(s_block_t))
        return NULL;
    size_t size = !prev                          ? S_BLOCK_FIRST
                  : prev->size < S_BLOCK_MAX / 2 ? 2 * prev->size
                                                 : S_BLOCK_MAX;
    if (size < min_size)
        size = min_size;
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
        b = s_block_new(rounded, self->head);
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
