/*  protocol/types.h - small value types shared by messages and stores. */
#ifndef DS_PROTOCOL_TYPES_H
#define DS_PROTOCOL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  A byte string. In a decoded message the bytes live in the message's
    arena; in a message being encoded they belong to the caller. */
typedef struct {
    uint8_t *data;
    uint32_t len;
} ds_bytes_t;

/*  One key=value pair (labels, environment). Strings are NUL-terminated. */
typedef struct {
    char *key;
    char *value;
} ds_kv_t;

#endif
