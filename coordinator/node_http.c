/*  coordinator/node_http.c - the read-only HTTP endpoint's routes: /
    (the web page), /api/status (its JSON), /healthz and /metrics. The
    connections are coordinator/httpd.c's, served from the node's loop
    without ever blocking it. */
#include "coordinator/node_impl.h"

#include "protocol/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_route(void *ctx, const char *path, ds_httpd_response_t *res);

int ds_node_http_bind(ds_node_t *self, char *err, size_t errlen)
{
    char why[256];
    int rc = ds_httpd_open(&self->http, self->cfg.http, s_route, self, why, sizeof why);
    if (rc != 0)
        return ds_errf(err, errlen, rc, "--http %s: %s: pick a free HOST:PORT", self->cfg.http,
                       why);
    return 0;
}

void ds_node_http_close(ds_node_t *self)
{
    ds_httpd_destroy(&self->http);
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

/*  Renders a response body into memory. */
static void s_serve_with(ds_node_t *self, ds_httpd_response_t *res, const char *type,
                         s_writer_fn fn)
{
    char *body = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&body, &len);
    if (out) {
        fn(self, out);
        if (fclose(out) != 0) {
            free(body);
            body = NULL;
            len = 0;
        }
    }
    *res = (ds_httpd_response_t){body ? 200 : 503, type, body, len};
}

static void s_not_found(ds_node_t *self, FILE *out)
{
    (void)self;
    fputs("try /, /api/status, /healthz or /metrics\n", out);
}

static void s_route(void *ctx, const char *path, ds_httpd_response_t *res)
{
    ds_node_t *self = ctx;
    if (strcmp(path, "/metrics") == 0)
        s_serve_with(self, res, "text/plain; version=0.0.4", ds_node_metrics_write);
    else if (strcmp(path, "/healthz") == 0)
        s_serve_with(self, res, "text/plain", s_healthz);
    else if (strcmp(path, "/api/status") == 0)
        s_serve_with(self, res, "application/json", ds_node_api_status);
    else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)
        s_serve_with(self, res, "text/html; charset=utf-8", s_page);
    else {
        s_serve_with(self, res, "text/plain", s_not_found);
        if (res->status == 200)
            res->status = 404;
    }
}
