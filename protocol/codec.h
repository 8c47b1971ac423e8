/*  protocol/codec.h - one table-driven encoder and decoder for every struct
    that crosses the wire or goes to disk.

    Each message body, and each struct nested in one, is described once by a
    ds_desc_t: its fields in wire order, their types and limits. The single
    encoder and the single decoder below walk that description, so every
    type gets the same bounds checks and no type repeats codec boilerplate.

    Wire form: a struct is a msgpack array of its fields in table order.
    A decoder accepts arrays with more elements than it knows (added by a
    newer peer; the extras are skipped) but not fewer.

    Decoded strings are NUL-terminated, never NULL, contain no NUL byte, and
    live in the arena given to the decoder, as do byte strings and arrays.
*/
#ifndef DS_PROTOCOL_CODEC_H
#define DS_PROTOCOL_CODEC_H

#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/limits.h"
#include "protocol/types.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    DS_FT_U8,       /* uint8_t; max = largest allowed value (0: any) */
    DS_FT_U16,      /* uint16_t; max as above */
    DS_FT_U32,      /* uint32_t; max as above */
    DS_FT_U64,      /* uint64_t; max as above */
    DS_FT_I64,      /* int64_t */
    DS_FT_BOOL,     /* bool */
    DS_FT_F64,      /* double, finite only */
    DS_FT_STR,      /* char *, at most max bytes */
    DS_FT_BYTES,    /* ds_bytes_t, at most max bytes */
    DS_FT_STRUCT,   /* a nested struct stored inline, described by sub */
    DS_FT_ARRAY,    /* pointer to count elements of sub; count at count_offset */
    DS_FT_STRS,     /* char ** with count at count_offset; each at most DS_MAX_TEXT */
    DS_FT_KVS,      /* ds_kv_t * with count at count_offset, as a msgpack map */
    DS_FT_U64_FIXED /* uint64_t[max] inline, count at count_offset */
} ds_ftype_t;

typedef struct ds_desc ds_desc_t;

typedef struct {
    const char *name; /* for error messages: "labels", "health.interval_ms" */
    ds_ftype_t type;
    size_t offset;        /* offsetof the member */
    size_t count_offset;  /* offsetof the uint32_t count (array types) */
    uint64_t max;         /* limit: bytes, elements, or largest value */
    const ds_desc_t *sub; /* element or nested struct description */
} ds_field_t;

struct ds_desc {
    const char *name; /* "join_req" */
    size_t size;      /* sizeof the struct */
    size_t nfields;
    const ds_field_t *fields;
};

/* Field declaration helpers for descriptor tables. */
#define DS_F_UINT(T, m, ft, mx)                                                                    \
    {                                                                                              \
#m, ft, offsetof(T, m), 0, mx, NULL                                                        \
    }
#define DS_F_U8(T, m, mx)  DS_F_UINT(T, m, DS_FT_U8, mx)
#define DS_F_U16(T, m, mx) DS_F_UINT(T, m, DS_FT_U16, mx)
#define DS_F_U32(T, m, mx) DS_F_UINT(T, m, DS_FT_U32, mx)
#define DS_F_U64(T, m)     DS_F_UINT(T, m, DS_FT_U64, 0)
#define DS_F_I64(T, m)                                                                             \
    {                                                                                              \
#m, DS_FT_I64, offsetof(T, m), 0, 0, NULL                                                  \
    }
#define DS_F_BOOL(T, m)                                                                            \
    {                                                                                              \
#m, DS_FT_BOOL, offsetof(T, m), 0, 0, NULL                                                 \
    }
#define DS_F_F64(T, m)                                                                             \
    {                                                                                              \
#m, DS_FT_F64, offsetof(T, m), 0, 0, NULL                                                  \
    }
#define DS_F_STR(T, m, mx)                                                                         \
    {                                                                                              \
#m, DS_FT_STR, offsetof(T, m), 0, mx, NULL                                                 \
    }
#define DS_F_BYTES(T, m, mx)                                                                       \
    {                                                                                              \
#m, DS_FT_BYTES, offsetof(T, m), 0, mx, NULL                                               \
    }
#define DS_F_STRUCT(T, m, d)                                                                       \
    {                                                                                              \
#m, DS_FT_STRUCT, offsetof(T, m), 0, 0, &(d)                                               \
    }
#define DS_F_ARRAY(T, m, n, d, mx)                                                                 \
    {                                                                                              \
#m, DS_FT_ARRAY, offsetof(T, m), offsetof(T, n), mx, &(d)                                  \
    }
#define DS_F_STRS(T, m, n, mx)                                                                     \
    {                                                                                              \
#m, DS_FT_STRS, offsetof(T, m), offsetof(T, n), mx, NULL                                   \
    }
#define DS_F_KVS(T, m, n, mx)                                                                      \
    {                                                                                              \
#m, DS_FT_KVS, offsetof(T, m), offsetof(T, n), mx, NULL                                    \
    }
#define DS_F_U64_FIXED(T, m, n, mx)                                                                \
    {                                                                                              \
#m, DS_FT_U64_FIXED, offsetof(T, m), offsetof(T, n), mx, NULL                              \
    }
#define DS_DESC(T, label, table)                                                                   \
    {                                                                                              \
        label, sizeof(T), sizeof(table) / sizeof((table)[0]), table                                \
    }

/*  What went wrong in an encode or decode: the code and a sentence naming
    the field path and the problem, e.g.
    "join_req.labels[3].key: 300 bytes exceeds the limit of 63". */
typedef struct {
    int code;
    char text[256];
} ds_codec_err_t;

/*  Encodes the struct at `obj` as described by `desc`, appending to `out`.
    Checks every limit first, so nothing a peer would refuse is sent.
    Returns 0, or DS_ETOOBIG / DS_EINVAL / DS_ENOMEM with `err` filled (err
    may be NULL). On failure `out` may hold a partial encoding. */
int ds_codec_encode(const ds_desc_t *desc, const void *obj, ds_buf_t *out, ds_codec_err_t *err);

/*  Decodes exactly one struct from `len` bytes into `obj` (desc->size
    bytes, zeroed first). Everything the struct points to is allocated from
    `arena`. Bytes left after the value are an error (DS_ETRAILING).
    Returns 0 or a negative DS_E code with `err` filled (err may be NULL);
    on failure `obj` must not be used, and the arena keeps what was already
    allocated until it is destroyed. */
int ds_codec_decode(const ds_desc_t *desc, const void *data, size_t len, void *obj,
                    ds_arena_t *arena, ds_codec_err_t *err);

/*  Arena cap that suffices to decode any valid input of `len` bytes for
    descriptions whose largest struct is at most `max_struct` bytes. */
size_t ds_codec_arena_cap(size_t len, size_t max_struct);

#endif
