/*  dsctl/follow.c - the cursor of `events --follow`; see follow.h. */
#include "dsctl/follow.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void ds_follow_init(ds_follow_t *f, uint64_t after_seq, uint64_t last_ts_ms, const char *leader)
{
    assert(f);
    memset(f, 0, sizeof *f);
    f->after_seq = after_seq;
    f->last_ts_ms = last_ts_ms;
    snprintf(f->leader, sizeof f->leader, "%s", leader ? leader : "");
}

/*  From now on: from seq 0, by time. Returns whether to ask again (only
    when the request was not from 0 already). */
static bool s_reset(ds_follow_t *f, uint64_t asked_after)
{
    f->after_seq = 0;
    f->by_time = true;
    return asked_after != 0;
}

ds_follow_step_t ds_follow_take(ds_follow_t *f, const char *leader, uint64_t asked_after,
                                const ds_events_reply_t *r, bool *print)
{
    assert(f && r && (print || r->n_events == 0));
    const char *now = leader ? leader : "";
    bool changed = f->leader[0] && strcmp(now, f->leader) != 0;
    snprintf(f->leader, sizeof f->leader, "%s", now);
    if (changed && s_reset(f, asked_after))
        return DS_FOLLOW_RESTART;
    for (uint32_t i = 0; i < r->n_events; i++)
        if (r->events[i].seq <= asked_after && s_reset(f, asked_after))
            return DS_FOLLOW_RESTART;
    if (r->n_events == 0)
        f->by_time = false; /* caught up */
    uint64_t newest = f->last_ts_ms;
    for (uint32_t i = 0; i < r->n_events; i++) {
        const ds_event_t *e = &r->events[i];
        print[i] = !f->by_time || e->ts_ms > f->last_ts_ms;
        if (print[i] && e->ts_ms > newest)
            newest = e->ts_ms;
        if (e->seq > f->after_seq)
            f->after_seq = e->seq;
    }
    f->last_ts_ms = newest;
    return DS_FOLLOW_PRINT;
}
