/*  protocol/limits.h - every named limit in one place.

    Decoders check every length and count against these before allocating;
    validators check specs against them. Changing a limit changes what the
    cluster accepts on the wire, so raise them only together with a
    protocol version bump when a smaller peer could be hurt.
*/
#ifndef DS_PROTOCOL_LIMITS_H
#define DS_PROTOCOL_LIMITS_H

/* wire */
#define DS_PROTOCOL_VERSION 1
#define DS_MAX_MSG_SIZE     (16u * 1024u * 1024u) /* ZMQ_MAXMSGSIZE on every socket */
#define DS_MAX_DEPTH        16u                   /* msgpack nesting */
#define DS_MAX_FIELDS       64u                   /* fields in one struct on the wire */

/* names and text */
#define DS_MAX_NAME     63u   /* service, worker, label key, member names */
#define DS_MAX_LABEL    255u  /* label values */
#define DS_MAX_ENDPOINT 255u  /* tcp://host:port, ipc://... */
#define DS_MAX_PATH     1024u /* file paths, URLs */
#define DS_MAX_CMD      4096u /* a command line */
#define DS_MAX_TEXT     4096u /* human messages, reasons, env values */
#define DS_MAX_SHA256   64u   /* hex digest */

/* lists */
#define DS_MAX_LABELS    32u
#define DS_MAX_ENV       128u
#define DS_MAX_ARGS      64u
#define DS_MAX_TESTS     16u
#define DS_MAX_MEMBERS   9u
#define DS_MAX_WORKERS   4096u
#define DS_MAX_SERVICES  1024u
#define DS_MAX_INSTANCES 256u  /* instances reported by one worker */
#define DS_MAX_ROWS      4096u /* rows in one status/history/events reply */
#define DS_MAX_METRICS   64u   /* app metric samples in one heartbeat */
#define DS_MAX_CHECKS    16u   /* analysis verdict rows */
#define DS_MAX_KV_KEY    DS_MAX_LABEL
#define DS_MAX_KV_VALUE  (64u * 1024u)

/* raft */
#define DS_MAX_ENTRIES      4096u                /* entries in one append */
#define DS_MAX_ENTRY_SIZE   (4u * 1024u * 1024u) /* one log entry's data */
#define DS_MAX_CHUNK_SIZE   (1u * 1024u * 1024u) /* one snapshot chunk */
#define DS_MAX_CONTEXT_SIZE 64u                  /* ReadIndex context */

/* release spec durations, in milliseconds */
#define DS_MAX_DURATION_MS (7ull * 24 * 3600 * 1000) /* one week */

#endif
