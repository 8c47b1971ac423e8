/*  worker/health.c - non-blocking health probes and thresholds. */
#include "worker/health.h"

#include "protocol/clock.h"
#include "protocol/error.h"
#include "protocol/messages.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void ds_probe_init(ds_probe_t *p)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->cmd.fd = -1;
}

static void s_close(ds_probe_t *p)
{
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

int ds_probe_start(ds_probe_t *p, const ds_health_spec_t *h, uint16_t port, char *const *envp,
                   const char *workdir, uint64_t now_ms, char *why, size_t whylen)
{
    ds_probe_abort(p);
    p->kind = h->kind;
    p->t0_us = ds_clock_mono_us();
    p->deadline_ms = now_ms + (h->timeout_ms ? h->timeout_ms : 1000u);
    p->resp_len = 0;
    if (h->kind == DS_HEALTH_EXEC) {
        ds_proc_spec_t ps = {.command = h->command, .envp = envp, .workdir = workdir};
        int rc = ds_cmd_start(&p->cmd, &ps, p->deadline_ms, why, whylen);
        if (rc)
            return rc;
        p->phase = DS_PROBE_EXEC;
        return 0;
    }
    if (h->kind != DS_HEALTH_HTTP && h->kind != DS_HEALTH_TCP)
        return ds_errf(why, whylen, DS_EINVAL, "health kind %u has no probe", (unsigned)h->kind);
    if (h->kind == DS_HEALTH_HTTP) {
        int n = snprintf(p->req, sizeof p->req,
                         "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%u\r\nUser-Agent: dsworker\r\n"
                         "Connection: close\r\n\r\n",
                         h->path && h->path[0] ? h->path : "/healthz", (unsigned)port);
        if (n < 0 || (size_t)n >= sizeof p->req)
            return ds_errf(why, whylen, DS_EINVAL, "health path too long");
        p->req_len = (size_t)n;
    }
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        return ds_errf(why, whylen, DS_EIO, "socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        int e = errno;
        s_close(p);
        return ds_errf(why, whylen, DS_EIO, "connect to 127.0.0.1:%u: %s", (unsigned)port,
                       strerror(e));
    }
    p->phase = DS_PROBE_CONNECTING;
    return 0;
}

static bool s_finish(ds_probe_t *p, bool ok, bool *passed, uint64_t *latency_us)
{
    s_close(p);
    p->phase = DS_PROBE_IDLE;
    *passed = ok;
    *latency_us = ds_clock_mono_us() - p->t0_us;
    return true;
}

static bool s_fail(ds_probe_t *p, bool *passed, uint64_t *latency_us, char *why, size_t whylen,
                   const char *what, const char *detail)
{
    if (why && whylen)
        snprintf(why, whylen, "%s%s%s", what, detail[0] ? ": " : "", detail);
    return s_finish(p, false, passed, latency_us);
}

bool ds_probe_poll(ds_probe_t *p, uint64_t now_ms, bool *passed, uint64_t *latency_us, char *why,
                   size_t whylen)
{
    if (p->phase == DS_PROBE_IDLE)
        return false;
    if (p->phase == DS_PROBE_EXEC) {
        if (!ds_cmd_poll(&p->cmd, now_ms))
            return false;
        p->phase = DS_PROBE_IDLE;
        *passed = !p->cmd.timed_out && p->cmd.exit_code == 0;
        *latency_us = ds_clock_mono_us() - p->t0_us;
        if (!*passed && why && whylen) {
            if (p->cmd.timed_out)
                snprintf(why, whylen, "health command timed out");
            else
                snprintf(why, whylen, "health command exited with %d", p->cmd.exit_code);
        }
        return true;
    }
    if (p->phase == DS_PROBE_CONNECTING) {
        struct pollfd pfd = {.fd = p->fd, .events = POLLOUT};
        int r = poll(&pfd, 1, 0);
        if (r > 0) {
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
                soerr = errno;
            if (soerr != 0)
                return s_fail(p, passed, latency_us, why, whylen, "connect", strerror(soerr));
            if (p->kind == DS_HEALTH_TCP)
                return s_finish(p, true, passed, latency_us);
            ssize_t w = send(p->fd, p->req, p->req_len, MSG_NOSIGNAL);
            if (w != (ssize_t)p->req_len)
                return s_fail(p, passed, latency_us, why, whylen, "cannot send the request", "");
            p->phase = DS_PROBE_READING;
        }
    }
    if (p->phase == DS_PROBE_READING) {
        for (;;) {
            ssize_t n = recv(p->fd, p->resp + p->resp_len, sizeof p->resp - 1 - p->resp_len, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            if (n < 0)
                return s_fail(p, passed, latency_us, why, whylen, "recv", strerror(errno));
            p->resp_len += (size_t)n;
            p->resp[p->resp_len] = '\0';
            /* "HTTP/1.x NNN" is all we need. */
            if (p->resp_len >= 12 || n == 0) {
                int code = 0;
                if (sscanf(p->resp, "HTTP/%*d.%*d %d", &code) != 1)
                    return s_fail(p, passed, latency_us, why, whylen, "not an HTTP response", "");
                if (code >= 200 && code < 300)
                    return s_finish(p, true, passed, latency_us);
                char num[16];
                snprintf(num, sizeof num, "%d", code);
                return s_fail(p, passed, latency_us, why, whylen, "http status", num);
            }
        }
    }
    if (now_ms >= p->deadline_ms)
        return s_fail(p, passed, latency_us, why, whylen, "timed out", "");
    return false;
}

int ds_probe_fd(const ds_probe_t *p)
{
    if (p->phase == DS_PROBE_EXEC)
        return p->cmd.fd;
    return p->phase == DS_PROBE_IDLE ? -1 : p->fd;
}

bool ds_probe_busy(const ds_probe_t *p)
{
    return p->phase != DS_PROBE_IDLE;
}

void ds_probe_abort(ds_probe_t *p)
{
    if (p->phase == DS_PROBE_EXEC)
        ds_cmd_abort(&p->cmd);
    s_close(p);
    p->phase = DS_PROBE_IDLE;
}

void ds_health_record(ds_health_track_t *t, const ds_health_spec_t *h, bool passed, uint64_t now_ms,
                      uint64_t started_ms)
{
    uint32_t up = h->healthy_threshold ? h->healthy_threshold : 1;
    uint32_t down = h->unhealthy_threshold ? h->unhealthy_threshold : 1;
    t->total++;
    if (passed) {
        t->passed++;
        t->passes++;
        t->fails = 0;
        if (t->passes >= up)
            t->health = DS_HEALTH_PASSING;
        return;
    }
    t->passes = 0;
    if (t->health != DS_HEALTH_PASSING && now_ms < started_ms + h->start_grace_ms)
        return; /* still starting: not counted */
    t->fails++;
    if (t->fails >= down)
        t->health = DS_HEALTH_FAILING;
}
