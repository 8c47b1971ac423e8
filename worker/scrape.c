/*  worker/scrape.c - non-blocking scrapes of an instance's /metrics; see
    scrape.h. */
#include "worker/scrape.h"

#include "protocol/error.h"
#include "protocol/promtext.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_HEAD_MAX 8192u /* bytes of the response head we accept */
#define S_RESP_MAX (DS_PROMTEXT_MAX_INPUT + S_HEAD_MAX)

void ds_scrape_init(ds_scrape_t *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

static void s_close(ds_scrape_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->resp_len = 0;
}

void ds_scrape_fini(ds_scrape_t *s)
{
    s_close(s);
    free(s->resp);
    ds_scrape_init(s);
}

int ds_scrape_fd(const ds_scrape_t *s)
{
    return s->fd;
}

uint64_t ds_scrape_next_wake(const ds_scrape_t *s)
{
    if (s->fd >= 0)
        return s->req_sent < s->req_len && s->poke_ms < s->deadline_ms ? s->poke_ms
                                                                       : s->deadline_ms;
    return s->next_ms ? s->next_ms : UINT64_MAX;
}

/* ---- parsing ---------------------------------------------------------------------- */

/*  Finds the body after "HTTP/1.x 200 ...\r\n...\r\n\r\n". */
static int s_body(const char *resp, size_t len, const char **body, size_t *blen, char *why,
                  size_t whylen)
{
    if (len < 12 || memcmp(resp, "HTTP/1.", 7) != 0)
        return ds_errf(why, whylen, DS_EINVAL, "not an HTTP response");
    int code = atoi(resp + 9);
    if (code < 200 || code > 299)
        return ds_errf(why, whylen, DS_EINVAL, "http status %d", code);
    for (size_t i = 0; i + 3 < len && i < S_HEAD_MAX; i++) {
        if (memcmp(resp + i, "\r\n\r\n", 4) == 0) {
            *body = resp + i + 4;
            *blen = len - i - 4;
            return 0;
        }
    }
    return ds_errf(why, whylen, DS_EINVAL, "no end of the response head");
}

int ds_scrape_parse(const char *resp, size_t len, const ds_metrics_spec_t *m, ds_appmetrics_t *out,
                    char *why, size_t whylen)
{
    const char *body = NULL;
    size_t blen = 0;
    int rc = s_body(resp, len, &body, &blen, why, whylen);
    if (rc != 0)
        return rc;
    ds_promtext_counter_t c[2] = {{m->requests_metric, 0, 0}, {m->errors_metric, 0, 0}};
    ds_promtext_histogram_t *h = calloc(1, sizeof *h);
    if (!h)
        return ds_errf(why, whylen, DS_ENOMEM, "out of memory");
    h->name = m->latency_metric;
    rc = ds_promtext_extract(body, blen, c, 2, h, 1, why, whylen);
    if (rc == 0)
        ds_appmetrics_build(out, m->requests_metric && m->requests_metric[0] ? &c[0] : NULL,
                            m->errors_metric && m->errors_metric[0] ? &c[1] : NULL,
                            m->latency_metric && m->latency_metric[0] ? h : NULL);
    free(h);
    return rc;
}

/* ---- the exchange ------------------------------------------------------------------- */

static void s_finish(ds_scrape_t *s, const ds_metrics_spec_t *m, const char *fail)
{
    if (fail) {
        snprintf(s->why, sizeof s->why, "%s", fail);
        s->have = false;
    } else if (ds_scrape_parse(s->resp, s->resp_len, m, &s->metrics, s->why, sizeof s->why) == 0) {
        s->why[0] = '\0';
        s->have = true;
    } else {
        s->have = false;
    }
    s_close(s);
}

static int s_connect(ds_scrape_t *s, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    return 0;
}

static void s_start(ds_scrape_t *s, const ds_metrics_spec_t *m, uint16_t port, uint64_t now)
{
    uint64_t every = m->interval_ms ? m->interval_ms : 5000;
    s->next_ms = now + every;
    s->deadline_ms = now + (every < DS_SCRAPE_TIMEOUT_MS ? every : DS_SCRAPE_TIMEOUT_MS);
    int n = snprintf(s->req, sizeof s->req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\nUser-Agent: dsworker\r\n"
                     "Accept: text/plain;version=0.0.4\r\n\r\n",
                     m->path, port);
    s->req_len = n > 0 && (size_t)n < sizeof s->req ? (size_t)n : 0;
    s->req_sent = 0;
    s->resp_len = 0;
    if (!s->req_len || s_connect(s, port) != 0)
        s_finish(s, m, "cannot connect");
}

/*  Sends what is left of the request; false when the connection failed. */
static bool s_send(ds_scrape_t *s)
{
    while (s->req_sent < s->req_len) {
        ssize_t k = send(s->fd, s->req + s->req_sent, s->req_len - s->req_sent, MSG_NOSIGNAL);
        if (k < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINPROGRESS ||
                   errno == ENOTCONN;
        s->req_sent += (size_t)k;
    }
    return true;
}

/*  Reads what arrived. Returns 1 at the end of the response, 0 to wait,
    -1 on failure with `fail` set. */
static int s_recv(ds_scrape_t *s, const char **fail)
{
    for (;;) {
        if (s->resp_len == s->resp_cap) {
            if (s->resp_cap >= S_RESP_MAX) {
                *fail = "the exposition is larger than 4 MiB";
                return -1;
            }
            size_t cap = s->resp_cap ? s->resp_cap * 2 : 16384;
            char *grown = realloc(s->resp, cap < S_RESP_MAX ? cap : S_RESP_MAX);
            if (!grown) {
                *fail = "out of memory";
                return -1;
            }
            s->resp = grown;
            s->resp_cap = cap < S_RESP_MAX ? cap : S_RESP_MAX;
        }
        ssize_t k = recv(s->fd, s->resp + s->resp_len, s->resp_cap - s->resp_len, 0);
        if (k == 0)
            return 1;
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN)
                return 0;
            *fail = errno == ECONNREFUSED ? "connection refused" : "connection failed";
            return -1;
        }
        s->resp_len += (size_t)k;
    }
}

void ds_scrape_step(ds_scrape_t *s, const ds_metrics_spec_t *m, uint16_t port, uint64_t now_ms)
{
    if (!m->path || !m->path[0] || !port) {
        if (s->fd >= 0)
            s_close(s);
        s->have = false;
        return;
    }
    if (s->fd < 0) {
        if (now_ms < s->next_ms)
            return;
        s_start(s, m, port, now_ms);
        if (s->fd < 0)
            return;
    }
    s->poke_ms = now_ms + 20; /* a connect in progress shows no POLLIN: look again soon */
    const char *fail = NULL;
    int r = s_send(s) ? s_recv(s, &fail) : (fail = "connection failed", -1);
    if (r > 0)
        s_finish(s, m, NULL);
    else if (r < 0)
        s_finish(s, m, fail);
    else if (now_ms >= s->deadline_ms)
        s_finish(s, m, "timed out");
}
