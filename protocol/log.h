/*  protocol/log.h - structured logging: one line per event, key=value.

    A line looks like
      ts=2026-11-24T20:01:02.123Z lvl=info mod=raft msg="became leader" term=7 id=2
    Timestamps are UTC with milliseconds. A value is written bare when it
    is made only of printable, non-space characters other than '"', '='
    and '\'; otherwise it is quoted, with '"' and '\' escaped as \" and \\,
    newline, tab and carriage return as \n \t \r and other control bytes
    as \xHH. Bytes >= 0x80 (UTF-8) pass through unchanged.

    DS_LOG checks the level before it evaluates or formats anything, so a
    disabled debug line costs one load and one compare. Each line is
    formatted into one buffer and written with a single fwrite(), so lines
    from different threads never interleave. Lines longer than
    DS_LOG_LINE_MAX are cut and end with `truncated=true`.

    Logging is part of the I/O layer (library ds_io): pure modules report
    events as data and their callers log them (STYLE.md, "Logging").
*/
#ifndef DS_PROTOCOL_LOG_H
#define DS_PROTOCOL_LOG_H

#include <stdbool.h>
#include <stdio.h>

#define DS_LOG_LINE_MAX 4096

typedef enum {
    DS_LOG_DEBUG = 0,
    DS_LOG_INFO = 1,
    DS_LOG_WARN = 2,
    DS_LOG_ERROR = 3,
    DS_LOG_OFF = 4 /* as a threshold: log nothing */
} ds_log_level_t;

/*  Sets the threshold (lines below it are dropped) and the stream lines go
    to; `out` NULL means stderr. The stream stays the caller's: the logger
    never closes it. Call it before starting threads; until it is called
    the threshold is DS_LOG_INFO and lines go to stderr. */
void ds_log_init(ds_log_level_t level, FILE *out);

/*  Parses "debug", "info", "warn", "error" or "off" (case-insensitive) into
 *out. Returns 0, or DS_EINVAL for anything else (*out unchanged). */
int ds_log_level_parse(const char *text, ds_log_level_t *out);

/*  Returns the level's name as written in lines ("info"), or "?". */
const char *ds_log_level_name(ds_log_level_t level);

/*  Returns true when a line at `level` would be written. */
bool ds_log_enabled(ds_log_level_t level);

/*  Writes one line. `mod` names the module ("raft"), `msg` says what
    happened; both must not be NULL. `kvs` is a printf-style format of
    space-separated key=value pairs ("term=%" PRIu64 " peer=%s"), checked
    by the compiler; each %s value is quoted and escaped as needed (NULL
    prints as (null)), other conversions are written as printf would.
    Supported conversions: d i u x X c s f e g p %, with length modifiers
    hh h l ll z j t and a precision; widths and flags are ignored. Use
    DS_LOG rather than calling this directly. */
void ds_log_write(ds_log_level_t level, const char *mod, const char *msg, const char *kvs, ...)
    __attribute__((format(printf, 4, 5)));

/*  Writes one line with no key=value pairs. Use DS_LOG_MSG. */
void ds_log_write_msg(ds_log_level_t level, const char *mod, const char *msg);

/*  Logs an event with key=value pairs, formatting only when enabled:
        DS_LOG(DS_LOG_INFO, "raft", "became leader", "term=%" PRIu64 " id=%u", term, id);
    For an event with no pairs use DS_LOG_MSG. */
#define DS_LOG(level, mod, msg, ...)                                                               \
    do {                                                                                           \
        if (ds_log_enabled(level))                                                                 \
            ds_log_write((level), (mod), (msg), __VA_ARGS__);                                      \
    } while (0)

/*  Logs an event with no key=value pairs. */
#define DS_LOG_MSG(level, mod, msg)                                                                \
    do {                                                                                           \
        if (ds_log_enabled(level))                                                                 \
            ds_log_write_msg((level), (mod), (msg));                                               \
    } while (0)

#endif
