/*  coordinator/httpd.h - a small, non-blocking HTTP/1.x server for the
    coordinator's read-only endpoint, run from the node's own loop.

    It owns a listening TCP socket and up to DS_HTTPD_MAX_CONNS client
    connections, all non-blocking: the loop polls the descriptors that
    ds_httpd_pollitems() fills and then calls ds_httpd_process(), which
    accepts, reads, answers and writes as far as each socket allows and
    never waits. So a slow, silent or vanished client can never stall the
    node (and its Raft traffic) that serves it.

    One request per connection: the head is read (protocol/httpreq.h),
    the handler fills a response, the response is written, then the
    server half-closes and drops the connection (`Connection: close`).
    GET is served; another method gets 405, a malformed head 400, a head
    over DS_HTTPREQ_MAX_HEAD 431. A connection that has not finished in
    DS_HTTPD_IDLE_MS is closed. When every slot is taken, new clients wait
    in the kernel's backlog until one is free.
*/
#ifndef DS_COORDINATOR_HTTPD_H
#define DS_COORDINATOR_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define DS_HTTPD_MAX_CONNS 64u
#define DS_HTTPD_IDLE_MS   10000u

typedef struct ds_httpd ds_httpd_t;

/*  What a handler answers: a status, a content type (a string literal)
    and a body in malloc'd memory, which the server takes over (NULL with
    len 0 for an empty body). */
typedef struct {
    int status;
    const char *type;
    char *body;
    size_t len;
} ds_httpd_response_t;

/*  Fills *res for a GET of `path` (query cut off). */
typedef void (*ds_httpd_handler_fn)(void *ctx, const char *path, ds_httpd_response_t *res);

/*  Listens on HOST:PORT (`*` or an empty host: every address; `[::1]`
    style brackets for IPv6). Returns 0, or DS_EINVAL / DS_EIO with a
    sentence in err. */
int ds_httpd_open(ds_httpd_t **out, const char *hostport, ds_httpd_handler_fn fn, void *ctx,
                  char *err, size_t errlen);

/*  Closes every connection and the listener. Accepts NULL and *p NULL. */
void ds_httpd_destroy(ds_httpd_t **p);

/*  Fills up to `max` poll items (the listener first, then each open
    connection with what it waits for) and returns how many. */
size_t ds_httpd_pollitems(const ds_httpd_t *self, zmq_pollitem_t *items, size_t max);

/*  Does all the work that can be done without blocking: accepts, reads,
    answers, writes, and closes connections that are done or idle since
    before now_ms - DS_HTTPD_IDLE_MS (now_ms: a monotonic clock). */
void ds_httpd_process(ds_httpd_t *self, uint64_t now_ms);

/*  Open client connections (for /metrics and tests). */
size_t ds_httpd_connections(const ds_httpd_t *self);

#endif
