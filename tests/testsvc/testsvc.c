/*  tests/testsvc/testsvc.c - a small HTTP service for tests of dsworker.

    Serves on 127.0.0.1 and every address, port $PORT or --port N:
      GET /healthz   200 "ok", or 503 when unhealthy
      GET /metrics   Prometheus text: requests_total, errors_total
      GET /predict   200 {"prediction":0.5}, or 500 at --error-ratio
      GET /files/NAME  the file NAME of --serve-dir (artifact downloads)
    Behaviour flags:
      --unhealthy            /healthz answers 503
      --unhealthy-file F     /healthz answers 503 while F exists
      --slow MS              every answer waits MS milliseconds first
      --crash-after S        exits with status 3 after S seconds
      --error-ratio R        fraction (0..1) of /predict answers that are 500
      --no-listen            never listens (keeps running)
      --ignore-term          ignores SIGTERM (to test SIGKILL after grace)
      --serve-dir DIR        serves DIR under /files/
    Stdlib and POSIX only; one connection at a time.
*/
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct {
    int port;
    int unhealthy;
    const char *unhealthy_file;
    long slow_ms;
    long crash_after_s;
    double error_ratio;
    int no_listen;
    int ignore_term;
    const char *serve_dir;
    uint64_t requests;
    uint64_t errors;
    uint64_t predicts;
} g;

static void s_usage(void)
{
    fprintf(stderr, "usage: testsvc [--port N] [--unhealthy] [--unhealthy-file F] [--slow MS]\n"
                    "               [--crash-after S] [--error-ratio R] [--no-listen]\n"
                    "               [--ignore-term] [--serve-dir DIR]\n");
    exit(2);
}

static uint64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void s_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void s_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void s_reply(int fd, int code, const char *type, const char *body, size_t len)
{
    char head[256];
    const char *text = code == 200   ? "OK"
                       : code == 404 ? "Not Found"
                       : code == 503 ? "Service Unavailable"
                                     : "Internal Server Error";
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, text, type, len);
    s_write_all(fd, head, (size_t)n);
    s_write_all(fd, body, len);
}

static void s_serve_file(int fd, const char *name)
{
    char path[4096];
    if (!g.serve_dir || strstr(name, "..") || strchr(name, '/') ||
        (size_t)snprintf(path, sizeof path, "%s/%s", g.serve_dir, name) >= sizeof path) {
        s_reply(fd, 404, "text/plain", "not found\n", 10);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        s_reply(fd, 404, "text/plain", "not found\n", 10);
        return;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        s_reply(fd, 500, "text/plain", "error\n", 6);
        return;
    }
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %lld\r\nConnection: close\r\n\r\n",
                     (long long)st.st_size);
    s_write_all(fd, head, (size_t)n);
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        s_write_all(fd, buf, r);
    fclose(f);
}

static void s_handle(int fd)
{
    char req[2048];
    size_t len = 0;
    /* Read the request head (bounded). */
    while (len < sizeof req - 1) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 2000) <= 0)
            break;
        ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
            break;
    }
    req[len] = '\0';
    char method[16] = "", path[1024] = "";
    if (sscanf(req, "%15s %1023s", method, path) != 2) {
        s_reply(fd, 400, "text/plain", "bad request\n", 12);
        return;
    }
    g.requests++;
    if (g.slow_ms > 0)
        s_sleep_ms(g.slow_ms);
    if (strcmp(path, "/healthz") == 0) {
        struct stat st;
        int bad = g.unhealthy || (g.unhealthy_file && stat(g.unhealthy_file, &st) == 0);
        if (bad) {
            g.errors++;
            s_reply(fd, 503, "text/plain", "unhealthy\n", 10);
        } else {
            s_reply(fd, 200, "text/plain", "ok\n", 3);
        }
    } else if (strcmp(path, "/metrics") == 0) {
        char body[512];
        int n = snprintf(body, sizeof body,
                         "# HELP requests_total Requests served.\n"
                         "# TYPE requests_total counter\n"
                         "requests_total %llu\n"
                         "# HELP errors_total Requests answered with an error.\n"
                         "# TYPE errors_total counter\n"
                         "errors_total %llu\n",
                         (unsigned long long)g.requests, (unsigned long long)g.errors);
        s_reply(fd, 200, "text/plain; version=0.0.4", body, (size_t)n);
    } else if (strcmp(path, "/predict") == 0) {
        uint64_t k = g.predicts++;
        /* Deterministic: an error whenever the running count of
           expected errors passes a whole number. */
        int err =
            (uint64_t)((double)(k + 1) * g.error_ratio) > (uint64_t)((double)k * g.error_ratio);
        if (err) {
            g.errors++;
            s_reply(fd, 500, "application/json", "{\"error\":\"injected\"}\n", 21);
        } else {
            s_reply(fd, 200, "application/json", "{\"prediction\":0.5}\n", 19);
        }
    } else if (strncmp(path, "/files/", 7) == 0) {
        s_serve_file(fd, path + 7);
    } else {
        s_reply(fd, 404, "text/plain", "not found\n", 10);
    }
}

static void s_on_term(int sig)
{
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *env_port = getenv("PORT");
    g.port = env_port ? atoi(env_port) : 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v) {
            g.port = atoi(v);
            i++;
        } else if (strcmp(a, "--unhealthy") == 0) {
            g.unhealthy = 1;
        } else if (strcmp(a, "--unhealthy-file") == 0 && v) {
            g.unhealthy_file = v;
            i++;
        } else if (strcmp(a, "--slow") == 0 && v) {
            g.slow_ms = atol(v);
            i++;
        } else if (strcmp(a, "--crash-after") == 0 && v) {
            g.crash_after_s = atol(v);
            i++;
        } else if (strcmp(a, "--error-ratio") == 0 && v) {
            g.error_ratio = atof(v);
            i++;
        } else if (strcmp(a, "--no-listen") == 0) {
            g.no_listen = 1;
        } else if (strcmp(a, "--ignore-term") == 0) {
            g.ignore_term = 1;
        } else if (strcmp(a, "--serve-dir") == 0 && v) {
            g.serve_dir = v;
            i++;
        } else {
            s_usage();
        }
    }
    if (g.error_ratio < 0 || g.error_ratio > 1) {
        fprintf(stderr, "testsvc: --error-ratio must be within 0..1\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (g.ignore_term)
        signal(SIGTERM, SIG_IGN);
    else
        signal(SIGTERM, s_on_term);
    uint64_t crash_at = g.crash_after_s > 0 ? s_now_ms() + (uint64_t)g.crash_after_s * 1000u : 0;
    printf("testsvc: pid=%ld port=%d\n", (long)getpid(), g.port);
    fflush(stdout);
    if (g.no_listen) {
        fprintf(stderr, "testsvc: not listening (--no-listen)\n");
        for (;;) {
            s_sleep_ms(100);
            if (crash_at && s_now_ms() >= crash_at)
                return 3;
        }
    }
    if (g.port <= 0 || g.port > 65535) {
        fprintf(stderr, "testsvc: no port (set PORT or --port)\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g.port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 64) != 0) {
        fprintf(stderr, "testsvc: cannot listen on port %d: %s\n", g.port, strerror(errno));
        return 1;
    }
    for (;;) {
        struct pollfd pfd = {.fd = ls, .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (crash_at && s_now_ms() >= crash_at) {
            fprintf(stderr, "testsvc: crashing as asked (--crash-after)\n");
            return 3;
        }
        if (r <= 0)
            continue;
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        s_handle(fd);
        close(fd);
    }
}
