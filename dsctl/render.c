/*  dsctl/render.c - replies as JSON and as text; see render.h. */
#include "dsctl/render.h"

#include "dsctl/table.h"
#include "protocol/error.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#define S_CELL 96 /* bytes of a formatted table cell */

/* ---- small formatters --------------------------------------------- */

void ds_render_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    if (ms < 1000) {
        snprintf(out, outlen, "%" PRIu64 "ms", ms);
        return;
    }
    /* The two largest units that apply: "2m5s", "1h2m", "3d4h". */
    for (size_t i = 0; i < 4; i++) {
        if (ms < units[i].ms)
            continue;
        uint64_t big = ms / units[i].ms;
        uint64_t small = i + 1 < 4 ? (ms % units[i].ms) / units[i + 1].ms : 0;
        if (small)
            snprintf(out, outlen, "%" PRIu64 "%s%" PRIu64 "%s", big, units[i].unit, small,
                     units[i + 1].unit);
        else
            snprintf(out, outlen, "%" PRIu64 "%s", big, units[i].unit);
        return;
    }
}

void ds_render_clean(const char *s, char *out, size_t outlen)
{
    assert(out && outlen > 0);
    if (!s || !*s)
        s = "-";
    size_t n = strlen(s);
    if (n > outlen - 1) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) /* cut on a character */
            n--;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    out[n] = '\0';
}

static void s_u64(char *buf, size_t len, uint64_t v)
{
    snprintf(buf, len, "%" PRIu64, v);
}

/*  "3", or "-" for 0 (no version). */
static void s_version(char *buf, size_t len, uint64_t v)
{
    if (v)
        s_u64(buf, len, v);
    else
        snprintf(buf, len, "-");
}

/* ---- text ---------------------------------------------------------- */

static int s_print(ds_table_t *t, FILE *out, int rc)
{
    if (rc == 0)
        rc = t ? ds_table_print(t, out) : DS_ENOMEM;
    ds_table_destroy(&t);
    return rc;
}

/*  "canary  wave 1  updated 1/10  healthy 1/10" */
static void s_progress(const ds_deployment_status_t *d, char *out, size_t outlen)
{
    char state[64];
    ds_render_clean(d->state, state, sizeof state);
    snprintf(out, outlen,
             "%s  wave %" PRIu32 "  updated %" PRIu32 "/%" PRIu32 "  healthy %" PRIu32 "/%" PRIu32,
             state, d->wave, d->updated, d->total, d->healthy, d->total);
}

static void s_deployment_text(FILE *out, const ds_service_status_t *s, uint64_t now_ms)
{
    if (!s->has_deployment) {
        fputs("deployment: none\n", out);
        return;
    }
    const ds_deployment_status_t *d = &s->deployment;
    char progress[256], from[24], ago[64] = "", reason[DS_MAX_TEXT + 1];
    s_progress(d, progress, sizeof progress);
    s_version(from, sizeof from, d->from_version);
    if (d->started_at_ms && now_ms >= d->started_at_ms) {
        char dur[24];
        ds_render_duration(now_ms - d->started_at_ms, dur, sizeof dur);
        snprintf(ago, sizeof ago, "  started %s ago", dur);
    }
    fprintf(out, "deployment %" PRIu64 ": %s -> %" PRIu64 "  %s%s\n", d->id, from, d->version,
            progress, ago);
    if (d->reason && d->reason[0]) {
        ds_render_clean(d->reason, reason, sizeof reason);
        fprintf(out, "reason: %s\n", reason);
    }
}

int ds_render_service_text(FILE *out, const ds_service_status_t *s, uint64_t now_ms)
{
    static const char *const headers[] = {"WORKER", "VERSION", "STATE",
                                          "HEALTH", "PORT",    "RESTARTS"};
    char name[DS_MAX_NAME + 1], cur[24], want[24];
    ds_render_clean(s->service, name, sizeof name);
    s_version(cur, sizeof cur, s->current_version);
    s_version(want, sizeof want, s->desired_version);
    fprintf(out, "service: %s  current: %s  desired: %s\n", name, cur, want);
    s_deployment_text(out, s, now_ms);
    fputc('\n', out);
    if (s->n_instances == 0) {
        fputs("no instances\n", out);
        return ferror(out) ? DS_EIO : 0;
    }
    ds_table_t *t = ds_table_new(headers, 6);
    int rc = 0;
    for (uint32_t i = 0; t && rc == 0 && i < s->n_instances; i++) {
        const ds_instance_row_t *in = &s->instances[i];
        char v[24];
        s_version(v, sizeof v, in->version);
        char port[16] = "-", restarts[16];
        if (in->port)
            snprintf(port, sizeof port, "%u", in->port);
        snprintf(restarts, sizeof restarts, "%u", in->restarts);
        const char *cells[] = {in->worker, v, in->state, in->health, port, restarts};
        rc = ds_table_add_row(t, cells);
    }
    if (t)
        ds_table_align_right(t, 1);
    rc = s_print(t, out, rc);
    for (uint32_t i = 0; rc == 0 && i < s->n_instances; i++) {
        const ds_instance_row_t *in = &s->instances[i];
        char worker[DS_MAX_NAME + 1], reason[512];
        if (!in->reason || !in->reason[0])
            continue;
        ds_render_clean(in->worker, worker, sizeof worker);
        ds_render_clean(in->reason, reason, sizeof reason);
        fprintf(out, "%s v%llu: %s\n", worker, (unsigned long long)in->version, reason);
    }
    return rc == 0 && ferror(out) ? DS_EIO : rc;
}

int ds_render_status_table(FILE *out, const ds_status_reply_t *st)
{
    static const char *const headers[] = {"SERVICE", "CURRENT", "DESIRED", "DEPLOYMENT",
                                          "STATE",   "WAVE",    "UPDATED", "HEALTHY"};
    if (st->n_services == 0) {
        fputs("no services yet (`dsctl deploy SERVICE ...` makes one)\n", out);
        return ferror(out) ? DS_EIO : 0;
    }
    ds_table_t *t = ds_table_new(headers, 8);
    int rc = 0;
    for (size_t c = 1; t && c <= 7; c++)
        if (c != 4)
            ds_table_align_right(t, c);
    for (uint32_t i = 0; t && rc == 0 && i < st->n_services; i++) {
        const ds_service_status_t *s = &st->services[i];
        const ds_deployment_status_t *d = s->has_deployment ? &s->deployment : NULL;
        char cur[24], want[24], id[24] = "-", wave[24] = "-", upd[48] = "-", ok[48] = "-";
        s_version(cur, sizeof cur, s->current_version);
        s_version(want, sizeof want, s->desired_version);
        if (d) {
            s_u64(id, sizeof id, d->id);
            s_u64(wave, sizeof wave, d->wave);
            snprintf(upd, sizeof upd, "%" PRIu32 "/%" PRIu32, d->updated, d->total);
            snprintf(ok, sizeof ok, "%" PRIu32 "/%" PRIu32, d->healthy, d->total);
        }
        const char *cells[] = {s->service, cur, want, id, d ? d->state : "-", wave, upd, ok};
        rc = ds_table_add_row(t, cells);
    }
    return s_print(t, out, rc);
}

int ds_render_history_table(FILE *out, const ds_history_reply_t *h)
{
    static const char *const headers[] = {"SEQ",  "VERSION", "EVENT", "OUTCOME",
                                          "WHEN", "BY",      "REASON"};
    if (h->n_rows == 0) {
        fputs("no history\n", out);
        return ferror(out) ? DS_EIO : 0;
    }
    ds_table_t *t = ds_table_new(headers, 7);
    int rc = 0;
    if (t) {
        ds_table_align_right(t, 0);
        ds_table_align_right(t, 1);
    }
    for (uint32_t i = 0; t && rc == 0 && i < h->n_rows; i++) {
        const ds_history_row_t *r = &h->rows[i];
        char seq[24], v[24], when[32];
        s_u64(seq, sizeof seq, r->seq);
        s_version(v, sizeof v, r->version);
        ds_render_rfc3339(r->created_at_ms, false, when, sizeof when);
        const char *by = r->by && r->by[0] ? r->by : "controller";
        const char *cells[] = {seq, v, r->event, r->outcome, when, by, r->reason};
        rc = ds_table_add_row(t, cells);
    }
    return s_print(t, out, rc);
}

static void s_labels(const ds_worker_row_t *r, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t k = 0; k < r->n_labels && n < outlen; k++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s=%s", k ? "," : "",
                              r->labels[k].key ? r->labels[k].key : "",
                              r->labels[k].value ? r->labels[k].value : "");
    if (!out[0])
        snprintf(out, outlen, "-");
}

int ds_render_workers_table(FILE *out, const ds_workers_reply_t *w)
{
    static const char *const headers[] = {"NAME", "STATE", "LAST SEEN", "GENERATION",
                                          "LOAD", "CPU%",  "MEM",       "LABELS"};
    if (w->n_workers == 0) {
        fputs("no workers have joined\n", out);
        return ferror(out) ? DS_EIO : 0;
    }
    ds_table_t *t = ds_table_new(headers, 8);
    int rc = 0;
    for (size_t c = 2; t && c <= 6; c++)
        ds_table_align_right(t, c);
    for (uint32_t i = 0; t && rc == 0 && i < w->n_workers; i++) {
        const ds_worker_row_t *r = &w->workers[i];
        char seen[48], ago[32], gen[24], load[S_CELL], cpu[S_CELL], mem[S_CELL], labels[1024];
        ds_render_duration(r->last_seen_ms, ago, sizeof ago);
        snprintf(seen, sizeof seen, "%s ago", ago);
        s_u64(gen, sizeof gen, r->generation);
        snprintf(load, sizeof load, "%.2f", r->telemetry.load1);
        snprintf(cpu, sizeof cpu, "%.1f", r->telemetry.cpu_pct);
        if (r->telemetry.mem_total_kb)
            snprintf(mem, sizeof mem, "%" PRIu64 "/%" PRIu64 "M", r->telemetry.mem_used_kb / 1024,
                     r->telemetry.mem_total_kb / 1024);
        else
            snprintf(mem, sizeof mem, "-");
        s_labels(r, labels, sizeof labels);
        const char *cells[] = {r->name, r->state, seen, gen, load, cpu, mem, labels};
        rc = ds_table_add_row(t, cells);
    }
    return s_print(t, out, rc);
}

void ds_render_event_line(FILE *out, const ds_event_t *e)
{
    char ts[32], kind[DS_MAX_NAME + 1], svc[DS_MAX_NAME + 1], msg[DS_MAX_TEXT + 1];
    ds_render_rfc3339(e->ts_ms, true, ts, sizeof ts);
    ds_render_clean(e->kind, kind, sizeof kind);
    ds_render_clean(e->service, svc, sizeof svc);
    ds_render_clean(e->message, msg, sizeof msg);
    fprintf(out, "%s  %-10s  %-16s  %s\n", ts, kind, svc, msg);
}
