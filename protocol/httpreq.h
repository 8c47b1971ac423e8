/*  protocol/httpreq.h - reads the head of an HTTP/1.x request (pure).

    The coordinators' read-only http endpoint (coordinator/httpd.c) serves
    GET requests to a handful of paths; this is the part that decides
    what a client asked for. It looks at the bytes received so far and
    says whether the head is complete (ends with an empty line), and if
    so, its method and path. Header lines are checked for shape (no NUL,
    no bare control bytes) but otherwise ignored: the server answers with
    `Connection: close` and needs none of them.

    Accepted request line: METHOD SP TARGET SP HTTP/1.0|HTTP/1.1, where
    METHOD is 1..15 uppercase letters and TARGET starts with '/' and is at
    most DS_HTTPREQ_MAX_PATH bytes of visible ASCII. A query string ('?'
    and what follows) is cut off the path. Lines end with CRLF or LF.
*/
#ifndef DS_PROTOCOL_HTTPREQ_H
#define DS_PROTOCOL_HTTPREQ_H

#include <stddef.h>

#define DS_HTTPREQ_MAX_HEAD 8192u /* bytes of a request head, request line included */
#define DS_HTTPREQ_MAX_PATH 255u  /* bytes of a path, query excluded */

typedef enum {
    DS_HTTPREQ_INCOMPLETE = 0, /* no empty line yet: read more */
    DS_HTTPREQ_OK = 1,         /* method and path filled */
    DS_HTTPREQ_BAD = 2,        /* not an HTTP/1.x request head: answer 400 */
    DS_HTTPREQ_TOO_LARGE = 3,  /* no end of head within DS_HTTPREQ_MAX_HEAD: answer 431 */
} ds_httpreq_status_t;

typedef struct {
    char method[16];
    char path[DS_HTTPREQ_MAX_PATH + 1];
    size_t head_len; /* bytes of the head, the empty line included */
} ds_httpreq_t;

/*  Parses the first `len` bytes received on a connection into *out
    (zeroed first). Never reads past `len`; `data` need not be
    NUL-terminated. On DS_HTTPREQ_BAD, `why` (when not NULL) gets a short
    reason for the 400 body. */
ds_httpreq_status_t ds_httpreq_parse(const char *data, size_t len, ds_httpreq_t *out,
                                     const char **why);

#endif
