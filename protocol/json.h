/*  protocol/json.h - a small streaming JSON writer (dsctl -o json, the
    coordinator's /api/status).

    Values are written as they are given; the writer inserts commas, colons
    and (when `pretty`) newlines and two-space indentation. Strings are
    escaped per RFC 8259: '"' and '\' with a backslash, \b \f \n \r \t,
    other bytes below 0x20 as \u00XX; UTF-8 passes through unchanged, and
    bytes that are not valid UTF-8 become U+FFFD, so the output is always
    valid JSON text. Doubles are written in the shortest form that reads
    back exactly; NaN and infinities become null.

    Misuse (a value where a key is due, closing what was not opened,
    nesting deeper than DS_JSON_MAX_DEPTH) is a programming error and
    asserts. Write errors of the stream are remembered and reported by
    ds_json_finish().
*/
#ifndef DS_PROTOCOL_JSON_H
#define DS_PROTOCOL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DS_JSON_MAX_DEPTH 32

typedef struct ds_json ds_json_t;

/*  Creates a writer to `out` (borrowed, not closed). Returns NULL when out
    of memory. */
ds_json_t *ds_json_new(FILE *out, bool pretty);

/*  Frees the writer and sets *self_p to NULL. Accepts NULL. */
void ds_json_destroy(ds_json_t **self_p);

void ds_json_object_begin(ds_json_t *self);
void ds_json_object_end(ds_json_t *self);
void ds_json_array_begin(ds_json_t *self);
void ds_json_array_end(ds_json_t *self);

/*  Writes an object key; the next call writes its value. */
void ds_json_key(ds_json_t *self, const char *key);

/*  Writes a NUL-terminated string; NULL writes null. */
void ds_json_str(ds_json_t *self, const char *s);

/*  Writes `len` bytes as a string (may hold NUL bytes: \u0000). */
void ds_json_strn(ds_json_t *self, const void *data, size_t len);

void ds_json_u64(ds_json_t *self, uint64_t v);
void ds_json_i64(ds_json_t *self, int64_t v);
void ds_json_f64(ds_json_t *self, double v);
void ds_json_bool(ds_json_t *self, bool v);
void ds_json_null(ds_json_t *self);

/*  A key and its value in one call; ds_json_key_str writes "" for NULL. */
void ds_json_key_u64(ds_json_t *self, const char *key, uint64_t v);
void ds_json_key_str(ds_json_t *self, const char *key, const char *v);
void ds_json_key_f64(ds_json_t *self, const char *key, double v);

/*  Ends the document (every container must be closed) with a newline and
    flushes. Returns 0, or DS_EIO when any write failed. */
int ds_json_finish(ds_json_t *self);

#endif
