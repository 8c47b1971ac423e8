/*  protocol/replyjson.h - the replies of the cluster as JSON: what
    `dsctl -o json` prints and what the coordinator's /api/status serves.

    No requests, no clock: each function writes what it is given into an
    open JSON document (protocol/json.h).

    The JSON keys are a stable contract (docs/dsctl.md); new keys may be
    added, none renamed or removed:
      service:    service, current_version, desired_version, deployment
                  (an object, or null when there is none), instances
      deployment: id, version, from_version, state, reason, wave,
                  updated, healthy, total, started_at_ms, started_at,
                  updated_at_ms
      instance:   worker, version, state, health, port, restarts, reason
      history row: version, outcome, created_at (RFC 3339, UTC),
                  created_at_ms, by, reason, seq, event
      worker:     name, state, labels (an object), last_seen_ms,
                  generation, software_version, telemetry
      event:      seq, ts_ms, ts (RFC 3339), kind, service, message
      op reply:   service, version, deployment_id, state, message, index

*/
#ifndef DS_PROTOCOL_REPLYJSON_H
#define DS_PROTOCOL_REPLYJSON_H

#include "protocol/json.h"
#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- JSON values (written into an open document) ------------------- */

/*  {service, version, deployment_id, state, message, index}, without the
    closing brace when `open` is true (the caller adds keys and closes). */
void ds_render_op_json(ds_json_t *j, const ds_op_reply_t *op, bool open);

/*  The deployment object, or null when `d` is NULL. */
void ds_render_deployment_json(ds_json_t *j, const ds_deployment_status_t *d);

/*  One instance object. */
void ds_render_instance_json(ds_json_t *j, const ds_instance_row_t *in);

/*  One service object (status SERVICE); the _open variant leaves the
    object open for the caller to add keys and close. */
void ds_render_service_json(ds_json_t *j, const ds_service_status_t *s);
void ds_render_service_json_open(ds_json_t *j, const ds_service_status_t *s);

/*  `status` without SERVICE: {"services": [...], "insecure": bool}. */
void ds_render_status_json(ds_json_t *j, const ds_status_reply_t *st);

/*  `history SERVICE`: a list of rows, as the reply orders them. */
void ds_render_history_json(ds_json_t *j, const ds_history_reply_t *h);

/*  `workers`: a list of worker objects. */
void ds_render_workers_json(ds_json_t *j, const ds_workers_reply_t *w);

/*  One event object. */
void ds_render_event_json(ds_json_t *j, const ds_event_t *e);

/*  "2024-05-01T10:00:00Z" (with ".123" before the Z when `millis`), or
    "-" for 0. Never fails; out needs 32 bytes. */
void ds_render_rfc3339(uint64_t ms, bool millis, char *out, size_t outlen);

#endif
