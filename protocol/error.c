/*  protocol/error.c - names and descriptions of the DS_E* codes. */
#include "protocol/error.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    int code;
    const char *name;
    const char *text;
} s_error_t;

static const s_error_t s_errors[] = {
    {DS_OK, "DS_OK", "success"},
    {DS_ENOMEM, "DS_ENOMEM", "out of memory"},
    {DS_EINVAL, "DS_EINVAL", "invalid argument"},
    {DS_EIO, "DS_EIO", "input/output error"},
    {DS_ENOTFOUND, "DS_ENOTFOUND", "not found"},
    {DS_EEXIST, "DS_EEXIST", "already exists"},
    {DS_ELIMIT, "DS_ELIMIT", "limit reached"},
    {DS_EPERM, "DS_EPERM", "permission denied"},
    {DS_ESTATE, "DS_ESTATE", "not allowed in the current state"},
    {DS_ETIMEOUT, "DS_ETIMEOUT", "timed out"},
    {DS_ECORRUPT, "DS_ECORRUPT", "stored data is corrupt"},
    {DS_ETRUNCATED, "DS_ETRUNCATED", "message truncated"},
    {DS_ETYPE, "DS_ETYPE", "value has the wrong type"},
    {DS_ETOOBIG, "DS_ETOOBIG", "length or count exceeds its limit"},
    {DS_EVERSION, "DS_EVERSION", "unsupported protocol version"},
    {DS_EUNKNOWN, "DS_EUNKNOWN", "unknown message type or value"},
    {DS_ETRAILING, "DS_ETRAILING", "unexpected bytes after the message"},
    {DS_EDEPTH, "DS_EDEPTH", "nesting too deep"},
    {DS_EENCODING, "DS_EENCODING", "string is not valid text"},
    {DS_ENOTLEADER, "DS_ENOTLEADER", "this coordinator is not the leader"},
    {DS_ENOQUORUM, "DS_ENOQUORUM", "no quorum: a majority of coordinators is unreachable"},
    {DS_EFORBIDDEN, "DS_EFORBIDDEN", "forbidden for this role"},
    {DS_ECONFLICT, "DS_ECONFLICT", "conflicts with the current state"},
    {DS_ESTORE_FULL, "DS_ESTORE_FULL", "store reached its maximum size"},
};

static const s_error_t *s_find(int code)
{
    for (size_t i = 0; i < sizeof s_errors / sizeof s_errors[0]; i++)
        if (s_errors[i].code == code)
            return &s_errors[i];
    return NULL;
}

const char *ds_strerror(int code)
{
    const s_error_t *e = s_find(code);
    return e ? e->text : "unknown error";
}

const char *ds_errname(int code)
{
    const s_error_t *e = s_find(code);
    return e ? e->name : "DS_EUNKNOWN_CODE";
}

int ds_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
