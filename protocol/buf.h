/*  protocol/buf.h - a growable byte buffer that encoders write into. */
#ifndef DS_PROTOCOL_BUF_H
#define DS_PROTOCOL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data; /* owned; NULL until the first write */
    size_t len;
    size_t cap;
} ds_buf_t;

/*  Appends `len` bytes. Returns 0, or DS_ENOMEM (the buffer is unchanged). */
int ds_buf_append(ds_buf_t *self, const void *data, size_t len);

/*  Empties the buffer but keeps its memory for reuse. */
void ds_buf_reset(ds_buf_t *self);

/*  Frees the buffer's memory; the struct itself belongs to the caller. */
void ds_buf_free(ds_buf_t *self);

#endif
