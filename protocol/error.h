/*  protocol/error.h - the one project-wide error enum.

    Functions that can fail return int: 0 on success, or one of the negative
    DS_E* codes below. The numeric values are stable: they travel on the
    wire in error replies and scripts may depend on them. Add new codes at
    the end of a group; never renumber.
*/
#ifndef DS_PROTOCOL_ERROR_H
#define DS_PROTOCOL_ERROR_H

#include <stddef.h>

typedef enum {
    DS_OK = 0,
    /* generic */
    DS_ENOMEM = -1,    /* allocation failed */
    DS_EINVAL = -2,    /* invalid argument or value */
    DS_EIO = -3,       /* I/O error from the operating system */
    DS_ENOTFOUND = -4, /* the key, service, release... does not exist */
    DS_EEXIST = -5,    /* already exists */
    DS_ELIMIT = -6,    /* a configured or named limit was reached */
    DS_EPERM = -7,     /* permission denied (file mode, role) */
    DS_ESTATE = -8,    /* operation not valid in the current state */
    DS_ETIMEOUT = -9,  /* a deadline passed */
    DS_ECORRUPT = -10, /* stored data failed an integrity check */
    /* decoding untrusted bytes */
    DS_ETRUNCATED = -20, /* input ended before the value did */
    DS_ETYPE = -21,      /* a value had the wrong msgpack type */
    DS_ETOOBIG = -22,    /* a length or count exceeds its limit or the input */
    DS_EVERSION = -23,   /* unsupported protocol version */
    DS_EUNKNOWN = -24,   /* unknown message type or enum value */
    DS_ETRAILING = -25,  /* bytes left over after the value */
    DS_EDEPTH = -26,     /* nesting deeper than DS_MAX_DEPTH */
    DS_EENCODING = -27,  /* a string is not valid text (NUL byte inside) */
    /* cluster */
    DS_ENOTLEADER = -40, /* this member is not the leader */
    DS_ENOQUORUM = -41,  /* no majority reachable: not committed yet (it may still commit) */
    DS_EFORBIDDEN = -42, /* the caller's role may not do this */
    DS_ECONFLICT = -43,  /* a live deployment or other conflict */
    DS_ESTORE_FULL = -44 /* the store reached its configured maximum size */
} ds_err_t;

/*  Returns a static, human-readable description of an error code. Never
    returns NULL; unknown codes give "unknown error". */
const char *ds_strerror(int code);

/*  Returns the stable symbolic name of a code ("DS_ETYPE"), for logs and
    JSON output. Never returns NULL. */
const char *ds_errname(int code);

/*  Writes a message built from fmt into err (errlen bytes; err may be
    NULL or errlen 0) and returns `code`: the one helper behind every
    "fill the caller's error buffer and fail" path. */
int ds_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
