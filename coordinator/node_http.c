/*  coordinator/node_http.c - the read-only HTTP endpoint, served from the
    node's loop through a ZMQ_STREAM socket: / (the web page),
    /api/status (its JSON), /healthz and /metrics. */
#include "coordinator/node_impl.h"

#include "protocol/error.h"
#include "protocol/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "http"

int ds_node_http_bind(ds_node_t *self, char *err, size_t errlen)
{
    char endpoint[DS_MAX_ENDPOINT + 8];
    snprintf(endpoint, sizeof endpoint, "tcp://%s", self->cfg.http);
    self->http = zmq_socket(zsys_init(), ZMQ_STREAM);
    if (!self->http) {
        snprintf(err, errlen, "cannot create the http socket: %s", zmq_strerror(zmq_errno()));
        return DS_EIO;
    }
    int linger = 0;
    zmq_setsockopt(self->http, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->http, endpoint) != 0) {
        snprintf(err, errlen, "--http %s: cannot listen (%s): pick a free HOST:PORT",
                 self->cfg.http, zmq_strerror(zmq_errno()));
        ds_node_http_close(self);
        return DS_EIO;
    }
    return 0;
}

void ds_node_http_close(ds_node_t *self)
{
    if (self->http)
        zmq_close(self->http);
    self->http = NULL;
}

/*  Sends one [id][data] pair without ever blocking. A blocking send on
    a ZMQ_STREAM socket whose client has already hung up waits forever
    (the pipe never becomes writable again), which would stall the whole
    node, Raft included; so a response that cannot go out at once is
    dropped: its client is gone or not reading. An empty data frame
    closes the connection. */
static int s_send(ds_node_t *self, zmq_msg_t *id, const void *data, size_t len)
{
    if (zmq_send(self->http, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    return zmq_send(self->http, data, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

/*  A ZMQ_STREAM socket takes exactly [id][data] per send: the head and
    the body must travel as one data frame, then the connection closes. */
static void s_respond(ds_node_t *self, zmq_msg_t *id, int code, const char *type, const char *body,
                      size_t len)
{
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     code, reason, type, len);
    char *out = n > 0 ? malloc((size_t)n + len) : NULL;
    if (!out)
        return;
    memcpy(out, head, (size_t)n);
    memcpy(out + n, body, len);
    if (s_send(self, id, out, (size_t)n + len) != 0)
        DS_LOG(DS_LOG_DEBUG, S_MOD, "response dropped", "reason=%s", zmq_strerror(zmq_errno()));
    free(out);
    (void)s_send(self, id, "", 0);
}

typedef void (*s_writer_fn)(ds_node_t *self, FILE *out);

static void s_healthz(ds_node_t *self, FILE *out)
{
    fprintf(out, "ok role=%s leader=%" PRIu64 "\n", ds_raft_role_name(self->role), self->lead);
}

static void s_page(ds_node_t *self, FILE *out)
{
    (void)self;
    fputs(ds_node_page_html, out);
}

/*  Renders a response body into memory, then sends it. */
static void s_serve_with(ds_node_t *self, zmq_msg_t *id, const char *type, s_writer_fn fn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&body, &len);
    if (!out)
        return;
    fn(self, out);
    if (fclose(out) == 0)
        s_respond(self, id, 200, type, body, len);
    free(body);
}

static const char s_not_found[] = "try /, /api/status, /healthz or /metrics\n";

static void s_serve(ds_node_t *self, zmq_msg_t *id, const char *req, size_t len)
{
    char path[128] = "";
    if (len < 5 || memcmp(req, "GET ", 4) != 0 || sscanf(req + 4, "%127s", path) != 1) {
        s_respond(self, id, 400, "text/plain", "only GET is served\n", 19);
        return;
    }
    char *query = strchr(path, '?');
    if (query)
        *query = '\0';
    if (strcmp(path, "/metrics") == 0)
        s_serve_with(self, id, "text/plain; version=0.0.4", ds_node_metrics_write);
    else if (strcmp(path, "/healthz") == 0)
        s_serve_with(self, id, "text/plain", s_healthz);
    else if (strcmp(path, "/api/status") == 0)
        s_serve_with(self, id, "application/json", ds_node_api_status);
    else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        s_serve_with(self, id, "text/html; charset=utf-8", s_page);
    else
        s_respond(self, id, 404, "text/plain", s_not_found, sizeof s_not_found - 1);
}

void ds_node_http_handle(ds_node_t *self)
{
    for (unsigned i = 0; i < 64; i++) {
        zmq_msg_t id, data;
        zmq_msg_init(&id);
        zmq_msg_init(&data);
        if (zmq_msg_recv(&id, self->http, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&data);
            return;
        }
        if (zmq_msg_recv(&data, self->http, 0) >= 0 && zmq_msg_size(&data) > 0) {
            char req[1024];
            size_t len =
                zmq_msg_size(&data) < sizeof req - 1 ? zmq_msg_size(&data) : sizeof req - 1;
            memcpy(req, zmq_msg_data(&data), len);
            req[len] = '\0';
            s_serve(self, &id, req, len);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&data);
    }
}
