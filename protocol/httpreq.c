/*  protocol/httpreq.c - reads the head of an HTTP/1.x request (pure). */
#include "protocol/httpreq.h"

#include <stdbool.h>
#include <string.h>

/*  Offset just past the empty line that ends the head, or 0. */
static size_t s_head_end(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static size_t s_line_end(const char *data, size_t len)
{
    const char *nl = memchr(data, '\n', len);
    size_t end = nl ? (size_t)(nl - data) : len;
    return end > 0 && data[end - 1] == '\r' ? end - 1 : end;
}

static bool s_method(const char *p, size_t n, ds_httpreq_t *out)
{
    if (n == 0 || n >= sizeof out->method)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 'A' || p[i] > 'Z')
            return false;
    memcpy(out->method, p, n);
    return true;
}

static bool s_target(const char *p, size_t n, ds_httpreq_t *out)
{
    if (n == 0 || p[0] != '/')
        return false;
    const char *q = memchr(p, '?', n);
    size_t path_len = q ? (size_t)(q - p) : n;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] > '~')
            return false;
    if (path_len > DS_HTTPREQ_MAX_PATH)
        return false;
    memcpy(out->path, p, path_len);
    return true;
}

/*  METHOD SP TARGET SP HTTP/1.x */
static bool s_request_line(const char *line, size_t n, ds_httpreq_t *out, const char **why)
{
    const char *sp1 = memchr(line, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp2) {
        *why = "the request line is not METHOD PATH VERSION";
        return false;
    }
    const char *version = sp2 + 1;
    size_t vlen = n - (size_t)(version - line);
    if (!s_method(line, (size_t)(sp1 - line), out)) {
        *why = "the method is not 1 to 15 uppercase letters";
        return false;
    }
    if (!s_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), out)) {
        *why = "the path is not an absolute path of visible characters";
        return false;
    }
    if (vlen != 8 || (memcmp(version, "HTTP/1.1", 8) != 0 && memcmp(version, "HTTP/1.0", 8) != 0)) {
        *why = "the version is not HTTP/1.0 or HTTP/1.1";
        return false;
    }
    return true;
}

static bool s_headers_clean(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0 || (c < ' ' && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
            return false;
    }
    return true;
}

ds_httpreq_status_t ds_httpreq_parse(const char *data, size_t len, ds_httpreq_t *out,
                                     const char **why)
{
    const char *unused;
    if (!why)
        why = &unused;
    memset(out, 0, sizeof *out);
    size_t head = s_head_end(data, len < DS_HTTPREQ_MAX_HEAD ? len : DS_HTTPREQ_MAX_HEAD);
    if (head == 0)
        return len >= DS_HTTPREQ_MAX_HEAD ? DS_HTTPREQ_TOO_LARGE : DS_HTTPREQ_INCOMPLETE;
    size_t line = s_line_end(data, head);
    if (!s_request_line(data, line, out, why)) {
        memset(out, 0, sizeof *out);
        return DS_HTTPREQ_BAD;
    }
    if (!s_headers_clean(data, head)) {
        memset(out, 0, sizeof *out);
        *why = "the head has control characters";
        return DS_HTTPREQ_BAD;
    }
    out->head_len = head;
    return DS_HTTPREQ_OK;
}
