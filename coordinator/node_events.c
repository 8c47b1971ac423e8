/*  coordinator/node_events.c - the events this member has seen (worker
    joins and downs, leadership, deployment transitions), kept in a ring
    of DS_NODE_EVENTS, and the `dsctl events --follow` requests waiting
    for the next one (long poll). Events are soft: each member keeps its
    own, numbered from 1 when it starts. */
#include "coordinator/node_impl.h"

#include "protocol/error.h"
#include "protocol/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_WAIT_MS 30000u

static const ds_node_event_t *s_at(const ds_node_t *self, uint64_t seq)
{
    return &self->events[(seq - 1) % DS_NODE_EVENTS];
}

/*  The oldest sequence number still in the ring (1 if it is empty). */
static uint64_t s_oldest(const ds_node_t *self)
{
    uint64_t last = self->next_event_seq ? self->next_event_seq - 1 : 0;
    return last > DS_NODE_EVENTS ? last - DS_NODE_EVENTS + 1 : 1;
}

static uint64_t s_last(const ds_node_t *self)
{
    return self->next_event_seq ? self->next_event_seq - 1 : 0;
}

/*  Replies with the events after `after` (oldest first), at most `limit`. */
static void s_reply(ds_node_t *self, const ds_caller_t *caller, uint64_t after, uint32_t limit)
{
    uint64_t first = after + 1 > s_oldest(self) ? after + 1 : s_oldest(self);
    uint64_t last = s_last(self);
    if (limit == 0 || limit > DS_NODE_EVENTS)
        limit = DS_NODE_EVENTS;
    if (after > last) /* the client follows another member's numbers */
        first = s_oldest(self);
    ds_event_t rows[DS_NODE_EVENTS];
    uint32_t n = 0;
    for (uint64_t seq = first; seq <= last && n < limit; seq++) {
        const ds_node_event_t *e = s_at(self, seq);
        rows[n++] =
            (ds_event_t){e->seq, e->ts_ms, (char *)e->kind, (char *)e->service, (char *)e->message};
    }
    ds_events_reply_t reply = {n, rows};
    ds_node_reply(self, caller, DS_MSG_EVENTS_REPLY, &reply);
}

static void s_waiter_remove(ds_node_t *self, size_t i)
{
    ds_node_caller_free(&self->waiters[i].caller);
    self->waiters[i] = self->waiters[--self->n_waiters];
}

void ds_node_event(ds_node_t *self, const char *kind, const char *service, const char *fmt, ...)
{
    if (!self->events && !(self->events = calloc(DS_NODE_EVENTS, sizeof *self->events)))
        return; /* events are best effort; the log line below still says it */
    if (!self->next_event_seq)
        self->next_event_seq = 1;
    uint64_t seq = self->next_event_seq++;
    ds_node_event_t *e = &self->events[(seq - 1) % DS_NODE_EVENTS];
    e->seq = seq;
    e->ts_ms = ds_clock_wall_ms();
    snprintf(e->kind, sizeof e->kind, "%s", kind);
    snprintf(e->service, sizeof e->service, "%s", service);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    DS_LOG(DS_LOG_INFO, "events", e->message, "kind=%s service=%s seq=%llu", kind, service,
           (unsigned long long)seq);
    for (size_t i = 0; i < self->n_waiters;) {
        ds_event_waiter_t *w = &self->waiters[i];
        if (w->after_seq < seq) {
            s_reply(self, &w->caller, w->after_seq, w->limit);
            s_waiter_remove(self, i);
        } else {
            i++;
        }
    }
}

void ds_node_on_events(ds_node_t *self, ds_caller_t *caller, const ds_msg_t *msg)
{
    const ds_events_req_t *req = msg->body;
    if (!ds_node_is_leader(self)) {
        ds_node_reply_not_leader(self, caller);
        return;
    }
    /* Anything newer, or numbers from another member: answer at once. */
    if (req->after_seq != s_last(self) || req->wait_ms == 0) {
        s_reply(self, caller, req->after_seq, req->limit);
        return;
    }
    if (self->n_waiters == DS_NODE_WAITERS) {
        ds_node_reply_error(self, caller, DS_ELIMIT,
                            "too many clients follow events (%u): retry later", DS_NODE_WAITERS);
        return;
    }
    uint32_t wait = req->wait_ms < S_MAX_WAIT_MS ? req->wait_ms : S_MAX_WAIT_MS;
    ds_event_waiter_t *w = &self->waiters[self->n_waiters++];
    *w = (ds_event_waiter_t){*caller, req->after_seq, req->limit};
    w->caller.deadline_ms = self->now_ms + wait;
    caller->rid = NULL; /* kept by the waiter */
}

void ds_node_events_check(ds_node_t *self)
{
    for (size_t i = 0; i < self->n_waiters;) {
        ds_event_waiter_t *w = &self->waiters[i];
        if (!ds_node_is_leader(self)) {
            ds_node_reply_not_leader(self, &w->caller);
        } else if (w->caller.deadline_ms <= self->now_ms) {
            s_reply(self, &w->caller, w->after_seq, w->limit); /* none: an empty reply */
        } else {
            i++;
            continue;
        }
        s_waiter_remove(self, i);
    }
}

void ds_node_events_recent(const ds_node_t *self, size_t n,
                           void (*fn)(void *ctx, const ds_node_event_t *e), void *ctx)
{
    uint64_t last = s_last(self), first = s_oldest(self);
    if (!self->events || last == 0)
        return;
    if (last - first + 1 > n)
        first = last - n + 1;
    for (uint64_t seq = first; seq <= last; seq++)
        fn(ctx, s_at(self, seq));
}

void ds_node_events_close(ds_node_t *self)
{
    while (self->n_waiters)
        s_waiter_remove(self, 0);
    free(self->events);
    self->events = NULL;
}
