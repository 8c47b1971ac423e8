/*  dsctl/render.h - the replies of the release commands as JSON (-o json)
    and as text for people (tables, one line per event).

    No requests, no clock: each function writes what it is given to a
    JSON writer or a stream, so tests feed it a reply and read the text.
    Times are shown relative to `now_ms` (wall clock, ms since the epoch)
    where a function takes it.

    The JSON keys are a stable contract (docs/dsctl.md); new keys may be
    added, none renamed or removed:
      service:    service, current_version, desired_version, deployment
                  (an object, or null when there is none), instances
      deployment: id, version, from_version, state, reason, wave,
                  updated, healthy, total, started_at_ms, started_at,
                  updated_at_ms
      instance:   worker, version, state, health
      history row: version, outcome, created_at (RFC 3339, UTC),
                  created_at_ms, by, reason, seq, event
      worker:     name, state, labels (an object), last_seen_ms,
                  generation, software_version, telemetry
      event:      seq, ts_ms, ts (RFC 3339), kind, service, message
      op reply:   service, version, deployment_id, state, message, index

    Text from the network is shown with control characters as '?', so it
    cannot move the cursor or clear the terminal.
*/
#ifndef DS_DSCTL_RENDER_H
#define DS_DSCTL_RENDER_H

#include "dsctl/json.h"
#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- JSON values (written into an open document) ------------------- */

/*  {service, version, deployment_id, state, message, index}, without the
    closing brace when `open` is true (the caller adds keys and closes). */
void ds_render_op_json(ds_json_t *j, const ds_op_reply_t *op, bool open);

/*  The deployment object, or null when `d` is NULL. */
void ds_render_deployment_json(ds_json_t *j, const ds_deployment_status_t *d);

/*  One service object (status SERVICE). */
void ds_render_service_json(ds_json_t *j, const ds_service_status_t *s);

/*  `status` without SERVICE: {"services": [...], "insecure": bool}. */
void ds_render_status_json(ds_json_t *j, const ds_status_reply_t *st);

/*  `history SERVICE`: a list of rows, as the reply orders them. */
void ds_render_history_json(ds_json_t *j, const ds_history_reply_t *h);

/*  `workers`: a list of worker objects. */
void ds_render_workers_json(ds_json_t *j, const ds_workers_reply_t *w);

/*  One event object. */
void ds_render_event_json(ds_json_t *j, const ds_event_t *e);

/* ---- text --------------------------------------------------------- */

/*  `status SERVICE`: a summary of the service and its deployment, then a
    table of its instances. Returns 0, or DS_ENOMEM / DS_EIO. */
int ds_render_service_text(FILE *out, const ds_service_status_t *s, uint64_t now_ms);

/*  `status`: one row per service. Returns 0, or DS_ENOMEM / DS_EIO. */
int ds_render_status_table(FILE *out, const ds_status_reply_t *st);

/*  `history SERVICE`: one row per history row. Returns 0 or an error. */
int ds_render_history_table(FILE *out, const ds_history_reply_t *h);

/*  `workers`: one row per worker. Returns 0 or an error. */
int ds_render_workers_table(FILE *out, const ds_workers_reply_t *w);

/*  One line for an event: "TS  KIND  SERVICE  MESSAGE". */
void ds_render_event_line(FILE *out, const ds_event_t *e);

/*  "2024-05-01T10:00:00Z" (with ".123" before the Z when `millis`), or
    "-" for 0. Never fails; out needs 32 bytes. */
void ds_render_rfc3339(uint64_t ms, bool millis, char *out, size_t outlen);

/*  A duration for people: "850ms", "12s", "2m5s", "1h2m", "3d4h". */
void ds_render_duration(uint64_t ms, char *out, size_t outlen);

/*  A copy of `s` (at most outlen - 1 bytes) with control characters
    shown as '?'; NULL or "" becomes "-". */
void ds_render_clean(const char *s, char *out, size_t outlen);

#endif
