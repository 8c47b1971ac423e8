/*  coordinator/httpd.c - a small, non-blocking HTTP/1.x server run from
    the node's loop (see httpd.h). */
#define _GNU_SOURCE
#include "coordinator/httpd.h"

#include "protocol/error.h"
#include "protocol/httpreq.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef enum {
    S_FREE = 0,
    S_READING,  /* the request head */
    S_WRITING,  /* the response */
    S_DRAINING, /* half-closed: discarding input until the client closes */
} s_phase_t;

typedef struct {
    int fd;
    s_phase_t phase;
    uint64_t since_ms;
    size_t in_len;
    char in[DS_HTTPREQ_MAX_HEAD];
    char *out; /* head and body of the response, owned */
    size_t out_len, out_off;
} s_conn_t;

struct ds_httpd {
    int listen_fd;
    ds_httpd_handler_fn fn;
    void *ctx;
    size_t n_open;
    s_conn_t conns[DS_HTTPD_MAX_CONNS];
};

/* ---- listening -------------------------------------------------------- */

/*  Splits HOST:PORT into host (NULL for every address) and port. */
static int s_split(const char *hostport, char *host, size_t hostlen, const char **port)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || colon[1] == '\0')
        return DS_EINVAL;
    size_t n = (size_t)(colon - hostport);
    const char *h = hostport;
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hostlen)
        return DS_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

static int s_listen_on(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/*  Opens the listening socket into *fd. Returns 0, DS_EINVAL or DS_EIO. */
static int s_listen(const char *hostport, int *fd, char *err, size_t errlen)
{
    char host[256];
    const char *port = NULL;
    if (s_split(hostport, host, sizeof host, &port) != 0)
        return ds_errf(err, errlen, DS_EINVAL, "\"%s\" is not HOST:PORT", hostport);
    bool any = host[0] == '\0' || strcmp(host, "*") == 0;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    int grc = getaddrinfo(any ? NULL : host, port, &hints, &list);
    if (grc != 0)
        return ds_errf(err, errlen, DS_EINVAL, "cannot resolve %s (%s)", hostport,
                       gai_strerror(grc));
    int saved = 0;
    *fd = -1;
    for (const struct addrinfo *ai = list; ai && *fd < 0; ai = ai->ai_next) {
        *fd = s_listen_on(ai);
        saved = errno;
    }
    freeaddrinfo(list);
    if (*fd < 0)
        return ds_errf(err, errlen, DS_EIO, "cannot listen on %s (%s)", hostport, strerror(saved));
    return 0;
}

int ds_httpd_open(ds_httpd_t **out, const char *hostport, ds_httpd_handler_fn fn, void *ctx,
                  char *err, size_t errlen)
{
    *out = NULL;
    ds_httpd_t *self = calloc(1, sizeof *self);
    if (!self)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory for the http server");
    int rc = s_listen(hostport, &self->listen_fd, err, errlen);
    if (rc != 0) {
        free(self);
        return rc;
    }
    for (size_t i = 0; i < DS_HTTPD_MAX_CONNS; i++)
        self->conns[i].fd = -1;
    self->fn = fn;
    self->ctx = ctx;
    *out = self;
    return 0;
}

/* ---- connections ------------------------------------------------------ */

static void s_conn_close(ds_httpd_t *self, s_conn_t *c)
{
    close(c->fd);
    free(c->out);
    c->fd = -1;
    c->phase = S_FREE;
    c->out = NULL;
    c->in_len = c->out_len = c->out_off = 0;
    self->n_open--;
}

void ds_httpd_destroy(ds_httpd_t **p)
{
    if (!p || !*p)
        return;
    ds_httpd_t *self = *p;
    for (size_t i = 0; i < DS_HTTPD_MAX_CONNS; i++)
        if (self->conns[i].fd >= 0)
            s_conn_close(self, &self->conns[i]);
    close(self->listen_fd);
    free(self);
    *p = NULL;
}

static s_conn_t *s_free_slot(ds_httpd_t *self)
{
    for (size_t i = 0; i < DS_HTTPD_MAX_CONNS; i++)
        if (self->conns[i].fd < 0)
            return &self->conns[i];
    return NULL;
}

/*  Accepts while a slot is free; the rest wait in the kernel's backlog
    (the listener is polled again only when a slot is free). */
static void s_accept(ds_httpd_t *self, uint64_t now_ms)
{
    for (s_conn_t *c = s_free_slot(self); c; c = s_free_slot(self)) {
        int fd = accept4(self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection that died in the backlog */
        c->fd = fd;
        c->phase = S_READING;
        c->since_ms = now_ms;
        self->n_open++;
    }
}

/* ---- answering ---------------------------------------------------------- */

static const char *s_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/*  Turns a response into the bytes to send: head and body in one buffer.
    Takes the body over. Returns false when out of memory. */
static bool s_compose(s_conn_t *c, ds_httpd_response_t *res)
{
    char head[320];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     res->status, s_reason(res->status), res->type ? res->type : "text/plain",
                     res->len, res->status == 405 ? "Allow: GET\r\n" : "");
    c->out = n > 0 ? malloc((size_t)n + res->len) : NULL;
    if (c->out) {
        memcpy(c->out, head, (size_t)n);
        if (res->len)
            memcpy(c->out + n, res->body, res->len);
        c->out_len = (size_t)n + res->len;
        c->out_off = 0;
    }
    free(res->body);
    res->body = NULL;
    return c->out != NULL;
}

static void s_text(ds_httpd_response_t *res, int status, const char *text)
{
    res->status = status;
    res->type = "text/plain";
    res->body = strdup(text);
    res->len = res->body ? strlen(text) : 0;
}

typedef enum { S_WAIT_MORE, S_ANSWERED, S_NO_MEMORY } s_answer_t;

/*  Decides the response once the head is complete. */
static s_answer_t s_respond(ds_httpd_t *self, s_conn_t *c)
{
    ds_httpreq_t req;
    const char *why = NULL;
    ds_httpd_response_t res = {0};
    char msg[160];
    switch (ds_httpreq_parse(c->in, c->in_len, &req, &why)) {
    case DS_HTTPREQ_INCOMPLETE:
        return S_WAIT_MORE;
    case DS_HTTPREQ_TOO_LARGE:
        s_text(&res, 431, "the request head is over 8192 bytes\n");
        break;
    case DS_HTTPREQ_BAD:
        snprintf(msg, sizeof msg, "bad request: %s\n", why);
        s_text(&res, 400, msg);
        break;
    case DS_HTTPREQ_OK:
        if (strcmp(req.method, "GET") != 0)
            s_text(&res, 405, "this endpoint is read-only: only GET is served\n");
        else
            self->fn(self->ctx, req.path, &res);
        break;
    }
    return s_compose(c, &res) ? S_ANSWERED : S_NO_MEMORY;
}

/* ---- I/O -------------------------------------------------------------- */

static bool s_would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

/*  Reads what has arrived; returns false when the connection must close. */
static bool s_read(ds_httpd_t *self, s_conn_t *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n == 0)
            return false; /* the client hung up before its answer */
        if (n < 0)
            return s_would_block();
        c->in_len += (size_t)n;
        s_answer_t a = s_respond(self, c);
        if (a == S_NO_MEMORY)
            return false;
        if (a == S_ANSWERED) {
            c->phase = S_WRITING;
            return true;
        }
    }
}

static bool s_write(s_conn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
            return s_would_block();
        c->out_off += (size_t)n;
    }
    (void)shutdown(c->fd, SHUT_WR);
    c->phase = S_DRAINING;
    return true;
}

static bool s_drain(s_conn_t *c)
{
    char sink[512];
    for (;;) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0)
            return false;
        if (n < 0)
            return s_would_block();
    }
}

static bool s_step(ds_httpd_t *self, s_conn_t *c)
{
    if (c->phase == S_READING && !s_read(self, c))
        return false;
    if (c->phase == S_WRITING && !s_write(c))
        return false;
    if (c->phase == S_DRAINING)
        return s_drain(c);
    return true;
}

static void s_step_all(ds_httpd_t *self, uint64_t now_ms)
{
    for (size_t i = 0; i < DS_HTTPD_MAX_CONNS; i++) {
        s_conn_t *c = &self->conns[i];
        if (c->fd < 0)
            continue;
        if (!s_step(self, c) || now_ms - c->since_ms > DS_HTTPD_IDLE_MS)
            s_conn_close(self, c);
    }
}

void ds_httpd_process(ds_httpd_t *self, uint64_t now_ms)
{
    s_step_all(self, now_ms); /* frees the slots of finished connections */
    s_accept(self, now_ms);
    s_step_all(self, now_ms); /* the new ones: their request may be there */
}

size_t ds_httpd_pollitems(const ds_httpd_t *self, zmq_pollitem_t *items, size_t max)
{
    size_t n = 0;
    if (max == 0)
        return 0;
    if (self->n_open < DS_HTTPD_MAX_CONNS)
        items[n++] = (zmq_pollitem_t){NULL, self->listen_fd, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < DS_HTTPD_MAX_CONNS && n < max; i++) {
        const s_conn_t *c = &self->conns[i];
        if (c->fd >= 0)
            items[n++] =
                (zmq_pollitem_t){NULL, c->fd, c->phase == S_WRITING ? ZMQ_POLLOUT : ZMQ_POLLIN, 0};
    }
    return n;
}

size_t ds_httpd_connections(const ds_httpd_t *self)
{
    return self->n_open;
}
