/*  protocol/arena.h - a bounded bump allocator.

    A decoded message owns one arena: every string, byte string and array of
    the message lives in it, and one ds_arena_destroy() frees them all. The
    arena refuses to grow past the cap given at creation, so a hostile input
    cannot make a decoder allocate without bound.
*/
#ifndef DS_PROTOCOL_ARENA_H
#define DS_PROTOCOL_ARENA_H

#include <stddef.h>

typedef struct ds_arena ds_arena_t;

/*  Creates an empty arena that will hand out at most `cap` bytes in total.
    Returns NULL when out of memory. The caller destroys it. */
ds_arena_t *ds_arena_new(size_t cap);

/*  Frees every block of the arena and sets *self_p to NULL. Accepts NULL. */
void ds_arena_destroy(ds_arena_t **self_p);

/*  Returns `size` zeroed bytes aligned for any type, owned by the arena, or
    NULL when the cap would be exceeded or memory is exhausted. */
void *ds_arena_alloc(ds_arena_t *self, size_t size);

/*  Returns how many bytes the arena has handed out. */
size_t ds_arena_used(const ds_arena_t *self);

#endif
