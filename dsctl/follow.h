/*  dsctl/follow.h - the cursor of `dsctl events --follow`. Pure.

    Each coordinator numbers its own events (seq 1, 2, 3...), so a cursor
    of seq only holds while the same coordinator answers. The cursor
    remembers which leader answered and the time of the last event
    printed:
      - the same leader, seq going up: print every event, move on;
      - another leader answered, or the seq went backwards (the
        coordinator restarted): ask again from seq 0 and print only
        events newer (ts_ms) than the last one printed, until a reply
        comes back empty (caught up); then go on by seq again.
*/
#ifndef DS_DSCTL_FOLLOW_H
#define DS_DSCTL_FOLLOW_H

#include "protocol/limits.h"
#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t after_seq;  /* the next request asks for events after this */
    uint64_t last_ts_ms; /* the newest event printed */
    bool by_time;        /* print only events newer than last_ts_ms */
    char leader[DS_MAX_ENDPOINT + 1];
} ds_follow_t;

typedef enum {
    DS_FOLLOW_PRINT = 0, /* print the events marked in `print` */
    DS_FOLLOW_RESTART    /* drop the reply and ask again (from seq 0) */
} ds_follow_step_t;

/*  Starts a cursor after `after_seq` (0: from the start), having printed
    up to `last_ts_ms`, with `leader` answering (NULL: not known yet). */
void ds_follow_init(ds_follow_t *f, uint64_t after_seq, uint64_t last_ts_ms, const char *leader);

/*  Takes the reply `r` that `leader` gave to a request for events after
    `asked_after` (the cursor's after_seq when it was sent). Marks in
    print[0..r->n_events) the events to print and moves the cursor on,
    or returns DS_FOLLOW_RESTART with the cursor set to ask again. */
ds_follow_step_t ds_follow_take(ds_follow_t *f, const char *leader, uint64_t asked_after,
                                const ds_events_reply_t *r, bool *print);

#endif
