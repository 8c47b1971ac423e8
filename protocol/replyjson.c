/*  protocol/replyjson.c - replies as JSON; see replyjson.h. */
#include "protocol/replyjson.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

void ds_render_rfc3339(uint64_t ms, bool millis, char *out, size_t outlen)
{
    assert(out && outlen > 0);
    if (ms == 0) {
        snprintf(out, outlen, "-");
        return;
    }
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, outlen, "-");
        return;
    }
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    if (millis)
        snprintf(out, outlen, "%s.%03uZ", date, (unsigned)(ms % 1000));
    else
        snprintf(out, outlen, "%sZ", date);
}

/* ---- JSON ---------------------------------------------------------- */

static void s_key_time(ds_json_t *j, const char *key, uint64_t ms, bool millis)
{
    char ts[32];
    ds_json_key(j, key);
    if (!ms) {
        ds_json_null(j);
        return;
    }
    ds_render_rfc3339(ms, millis, ts, sizeof ts);
    ds_json_str(j, ts);
}

void ds_render_op_json(ds_json_t *j, const ds_op_reply_t *op, bool open)
{
    ds_json_object_begin(j);
    ds_json_key_str(j, "service", op->service);
    ds_json_key_u64(j, "version", op->version);
    ds_json_key_u64(j, "deployment_id", op->deployment_id);
    ds_json_key_str(j, "state", op->state);
    ds_json_key_str(j, "message", op->message);
    ds_json_key_u64(j, "index", op->index);
    if (!open)
        ds_json_object_end(j);
}

void ds_render_deployment_json(ds_json_t *j, const ds_deployment_status_t *d)
{
    if (!d) {
        ds_json_null(j);
        return;
    }
    ds_json_object_begin(j);
    ds_json_key_u64(j, "id", d->id);
    ds_json_key_u64(j, "version", d->version);
    ds_json_key_u64(j, "from_version", d->from_version);
    ds_json_key_str(j, "state", d->state);
    ds_json_key_str(j, "reason", d->reason);
    ds_json_key_u64(j, "wave", d->wave);
    ds_json_key_u64(j, "updated", d->updated);
    ds_json_key_u64(j, "healthy", d->healthy);
    ds_json_key_u64(j, "total", d->total);
    ds_json_key_u64(j, "started_at_ms", d->started_at_ms);
    s_key_time(j, "started_at", d->started_at_ms, false);
    ds_json_key_u64(j, "updated_at_ms", d->updated_at_ms);
    ds_json_object_end(j);
}

void ds_render_instance_json(ds_json_t *j, const ds_instance_row_t *in)
{
    ds_json_object_begin(j);
    ds_json_key_str(j, "worker", in->worker);
    ds_json_key_u64(j, "version", in->version);
    ds_json_key_str(j, "state", in->state);
    ds_json_key_str(j, "health", in->health);
    ds_json_key_u64(j, "port", in->port);
    ds_json_key_u64(j, "restarts", in->restarts);
    ds_json_key_str(j, "reason", in->reason ? in->reason : "");
    ds_json_object_end(j);
}

void ds_render_service_json(ds_json_t *j, const ds_service_status_t *s)
{
    ds_render_service_json_open(j, s);
    ds_json_object_end(j);
}

void ds_render_service_json_open(ds_json_t *j, const ds_service_status_t *s)
{
    ds_json_object_begin(j);
    ds_json_key_str(j, "service", s->service);
    ds_json_key_u64(j, "current_version", s->current_version);
    ds_json_key_u64(j, "desired_version", s->desired_version);
    ds_json_key(j, "deployment");
    ds_render_deployment_json(j, s->has_deployment ? &s->deployment : NULL);
    ds_json_key(j, "instances");
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < s->n_instances; i++)
        ds_render_instance_json(j, &s->instances[i]);
    ds_json_array_end(j);
}

void ds_render_status_json(ds_json_t *j, const ds_status_reply_t *st)
{
    ds_json_object_begin(j);
    ds_json_key(j, "services");
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < st->n_services; i++)
        ds_render_service_json(j, &st->services[i]);
    ds_json_array_end(j);
    ds_json_key(j, "insecure");
    ds_json_bool(j, st->insecure);
    ds_json_object_end(j);
}

void ds_render_history_json(ds_json_t *j, const ds_history_reply_t *h)
{
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < h->n_rows; i++) {
        const ds_history_row_t *r = &h->rows[i];
        ds_json_object_begin(j);
        ds_json_key_u64(j, "version", r->version);
        ds_json_key_str(j, "outcome", r->outcome);
        s_key_time(j, "created_at", r->created_at_ms, false);
        ds_json_key_u64(j, "created_at_ms", r->created_at_ms);
        ds_json_key_str(j, "by", r->by);
        ds_json_key_str(j, "reason", r->reason);
        ds_json_key_u64(j, "seq", r->seq);
        ds_json_key_str(j, "event", r->event);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
}

void ds_render_workers_json(ds_json_t *j, const ds_workers_reply_t *w)
{
    ds_json_array_begin(j);
    for (uint32_t i = 0; i < w->n_workers; i++) {
        const ds_worker_row_t *r = &w->workers[i];
        ds_json_object_begin(j);
        ds_json_key_str(j, "name", r->name);
        ds_json_key_str(j, "state", r->state);
        ds_json_key(j, "labels");
        ds_json_object_begin(j);
        for (uint32_t k = 0; k < r->n_labels; k++) {
            ds_json_key(j, r->labels[k].key ? r->labels[k].key : "");
            ds_json_str(j, r->labels[k].value ? r->labels[k].value : "");
        }
        ds_json_object_end(j);
        ds_json_key_u64(j, "last_seen_ms", r->last_seen_ms);
        ds_json_key_u64(j, "generation", r->generation);
        ds_json_key_str(j, "software_version", r->software_version);
        ds_json_key(j, "telemetry");
        ds_json_object_begin(j);
        ds_json_key_f64(j, "load1", r->telemetry.load1);
        ds_json_key_f64(j, "cpu_pct", r->telemetry.cpu_pct);
        ds_json_key_u64(j, "mem_used_kb", r->telemetry.mem_used_kb);
        ds_json_key_u64(j, "mem_total_kb", r->telemetry.mem_total_kb);
        ds_json_key_u64(j, "disk_free_kb", r->telemetry.disk_free_kb);
        ds_json_object_end(j);
        ds_json_object_end(j);
    }
    ds_json_array_end(j);
}

void ds_render_event_json(ds_json_t *j, const ds_event_t *e)
{
    ds_json_object_begin(j);
    ds_json_key_u64(j, "seq", e->seq);
    ds_json_key_u64(j, "ts_ms", e->ts_ms);
    s_key_time(j, "ts", e->ts_ms, true);
    ds_json_key_str(j, "kind", e->kind);
    ds_json_key_str(j, "service", e->service);
    ds_json_key_str(j, "message", e->message);
    ds_json_object_end(j);
}
