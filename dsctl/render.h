/*  dsctl/render.h - the replies of the release commands as JSON (-o json)
    and as text for people (tables, one line per event).

    No requests, no clock: each function writes what it is given to a
    JSON writer or a stream, so tests feed it a reply and read the text.
    Times are shown relative to `now_ms` (wall clock, ms since the epoch)
    where a function takes it.

    The JSON half (every reply as JSON, RFC 3339 times) is
    protocol/replyjson.h, shared with the coordinator's /api/status.

    Text from the network is shown with control characters as '?', so it
    cannot move the cursor or clear the terminal.
*/
#ifndef DS_DSCTL_RENDER_H
#define DS_DSCTL_RENDER_H

#include "dsctl/json.h"
#include "protocol/replyjson.h"
#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/*  A duration for people: "850ms", "12s", "2m5s", "1h2m", "3d4h". */
void ds_render_duration(uint64_t ms, char *out, size_t outlen);

/*  A copy of `s` (at most outlen - 1 bytes) with control characters
    shown as '?'; NULL or "" becomes "-". */
void ds_render_clean(const char *s, char *out, size_t outlen);

#endif
