/*  protocol/mp.h - msgpack primitives: a bounded reader and a writer.

    The reader walks the input itself instead of using msgpack-c's generic
    unpacker, which reserves memory from the counts the input declares (a
    5-byte message can ask for gigabytes). Every length and count here is
    checked against the bytes that remain and against a caller's limit
    before anyone allocates. Strings and byte strings are returned as
    pointers into the input: the reader never allocates.

    The writer wraps msgpack-c's packer over a ds_buf_t.
*/
#ifndef DS_PROTOCOL_MP_H
#define DS_PROTOCOL_MP_H

#include "protocol/buf.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const uint8_t *data;
    size_t len;
    size_t pos;
} ds_mp_reader_t;

/*  Starts a reader over `len` bytes that the caller keeps alive. */
void ds_mp_reader_init(ds_mp_reader_t *r, const void *data, size_t len);

/*  Bytes not yet consumed. */
size_t ds_mp_remaining(const ds_mp_reader_t *r);

/*  Each read consumes one value and returns 0, or a negative DS_E code and
    leaves the position unspecified (a failed decode is abandoned whole):
    DS_ETRUNCATED if the input ends inside the value, DS_ETYPE if the value
    has another type, DS_ETOOBIG if a length or count exceeds `max` or what
    could possibly fit in the remaining input. */
int ds_mp_read_uint(ds_mp_reader_t *r, uint64_t *out);
int ds_mp_read_int(ds_mp_reader_t *r, int64_t *out);
int ds_mp_read_bool(ds_mp_reader_t *r, bool *out);
int ds_mp_read_double(ds_mp_reader_t *r, double *out);
int ds_mp_read_nil(ds_mp_reader_t *r);
int ds_mp_read_str(ds_mp_reader_t *r, const char **ptr, uint32_t *len, uint32_t max);
int ds_mp_read_bin(ds_mp_reader_t *r, const uint8_t **ptr, uint32_t *len, uint32_t max);
int ds_mp_read_array(ds_mp_reader_t *r, uint32_t *count, uint32_t max);
int ds_mp_read_map(ds_mp_reader_t *r, uint32_t *count, uint32_t max);

/*  Skips one complete value of any type, however nested, without
    recursion. Returns 0 or a negative DS_E code. */
int ds_mp_skip(ds_mp_reader_t *r);

/*  Starts a msgpack-c packer that appends to `out`. */
void ds_mp_writer_init(msgpack_packer *pk, ds_buf_t *out);

#endif
