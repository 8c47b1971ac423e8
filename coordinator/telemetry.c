/*  coordinator/telemetry.c - the telemetry aggregator (pure; see
    telemetry.h and docs/telemetry.md). */
#include "coordinator/telemetry.h"

#include "protocol/appmetrics.h"
#include "protocol/error.h"
#include "protocol/limits.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_NB = DS_TELEMETRY_HIST_BUCKETS };

/*  One time slot of one window of one series. */
typedef struct {
    uint64_t epoch; /* slot number (now / slot_ms) + 1; 0 = never used */
    uint32_t samples;
    uint32_t health_samples;
    uint32_t health_pass;
    uint32_t probe_samples;
    uint32_t machine_samples;
    uint32_t restarts;
    double cpu_sum;
    double rss_sum;
    double machine_cpu_sum;
    double machine_mem_sum;
    double requests;
    double errors;
    double latency_samples;
} s_slot_t;

typedef struct {
    float b[S_NB];
} s_hist_t;

/*  The last cumulative values of an instance, for deltas. */
typedef struct {
    ds_appmetrics_sample_t app;
} s_last_t;

typedef struct s_series s_series_t;
struct s_series {
    s_series_t *hnext;         /* hash chain */
    s_series_t *lprev, *lnext; /* least recently updated first */
    /* instance: its aggregates and its siblings in their child lists */
    s_series_t *parent[2]; /* [0] worker, [1] service */
    s_series_t *sprev[2], *snext[2];
    s_series_t *children; /* worker ([0] links) or service ([1] links) */
    uint8_t kind;
    uint32_t hash;
    char worker[DS_MAX_NAME + 1];
    char service[DS_MAX_NAME + 1];
    uint64_t version;
    uint64_t first_ms;
    uint64_t last_ms;
    bool has_restarts;
    uint32_t last_restarts;
    s_last_t *last;    /* instance with app metrics, else NULL */
    s_hist_t *probe;   /* n_windows * slots, or NULL */
    s_hist_t *latency; /* n_windows * slots, or NULL */
    s_slot_t slots[];  /* n_windows * slots */
};

struct ds_telemetry {
    ds_telemetry_config_t cfg;
    uint64_t slot_ms[DS_TELEMETRY_MAX_WINDOWS];
    uint64_t longest_ms;
    uint64_t now_ms; /* the latest time seen */
    s_series_t **table;
    uint32_t table_mask;
    s_series_t *lru_head, *lru_tail;
    uint32_t n_series;
    uint64_t evicted;
    uint64_t expired;
    uint64_t bytes;
};

/*  What one status adds to its series. */
typedef struct {
    bool machine;
    double machine_cpu, machine_mem;
    bool status;
    bool health_sample, health_pass;
    uint32_t restarts;
    double cpu, rss;
    bool has_probe;
    uint32_t probe_bucket;
    double requests, errors;
    double latency_samples;
    double latency[S_NB];
} s_sample_t;

/* ---- histogram ------------------------------------------------------ */

uint32_t ds_telemetry_hist_bucket(double us)
{
    if (!(us >= 1.0))
        return 0;
    double i = 1.0 + floor(4.0 * log2(us));
    return i >= S_NB - 1 ? S_NB - 1 : (uint32_t)i;
}

void ds_telemetry_hist_bounds(uint32_t i, double *lo, double *hi)
{
    if (i == 0) {
        *lo = 0;
        *hi = 1;
        return;
    }
    if (i >= S_NB)
        i = S_NB - 1;
    *lo = exp2((double)(i - 1) / 4.0);
    *hi = i == S_NB - 1 ? INFINITY : exp2((double)i / 4.0);
}

/*  The q-quantile of a merged histogram, in microseconds (see the header
    for the error bound). */
static double s_quantile(const double *h, double total, double q)
{
    if (!(total > 0))
        return 0;
    double rank = q * total, cum = 0;
    uint32_t last = 0;
    for (uint32_t i = 0; i < S_NB; i++) {
        double c = h[i];
        if (!(c > 0))
            continue;
        last = i;
        if (cum + c >= rank) {
            double f = (rank - cum) / c, lo, hi;
            f = f < 0 ? 0 : f > 1 ? 1 : f;
            ds_telemetry_hist_bounds(i, &lo, &hi);
            if (i == 0)
                return f;
            if (isinf(hi))
                return lo;
            return lo * exp2(f / 4.0);
        }
        cum += c;
    }
    double lo, hi;
    ds_telemetry_hist_bounds(last, &lo, &hi);
    return lo;
}

/*  Adds `count` observations spread evenly over (a, b] microseconds. */
static void s_spread(double *h, double a, double b, double count)
{
    if (!(count > 0))
        return;
    if (isinf(b) || !(b > a)) {
        h[ds_telemetry_hist_bucket(isinf(b) ? a : b)] += count;
        return;
    }
    uint32_t from = ds_telemetry_hist_bucket(a), to = ds_telemetry_hist_bucket(b);
    double width = b - a, placed = 0;
    for (uint32_t i = from; i <= to; i++) {
        double lo, hi;
        ds_telemetry_hist_bounds(i, &lo, &hi);
        double ov = (b < hi ? b : hi) - (a > lo ? a : lo);
        if (ov <= 0)
            continue;
        double part = count * (ov / width);
        h[i] += part;
        placed += part;
    }
    /* Rounding leftovers go to the top bucket so the mass is exact. */
    h[to] += count - placed;
}

/* ---- configuration ------------------------------------------------------ */

int ds_telemetry_config_check(ds_telemetry_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->max_series == 0)
        cfg->max_series = DS_TELEMETRY_DEFAULT_SERIES;
    if (cfg->slots == 0)
        cfg->slots = DS_TELEMETRY_DEFAULT_SLOTS;
    if (cfg->n_windows == 0) {
        cfg->n_windows = 2;
        cfg->window_ms[0] = 60000;
        cfg->window_ms[1] = 300000;
    }
    if (cfg->max_series < DS_TELEMETRY_MIN_SERIES || cfg->max_series > DS_TELEMETRY_MAX_SERIES)
        return ds_errf(err, errlen, DS_EINVAL,
                       "telemetry max_series: %u is out of range (%u to %u)", cfg->max_series,
                       DS_TELEMETRY_MIN_SERIES, DS_TELEMETRY_MAX_SERIES);
    if (cfg->slots > DS_TELEMETRY_MAX_SLOTS)
        return ds_errf(err, errlen, DS_EINVAL, "telemetry slots: %u is out of range (1 to %u)",
                       cfg->slots, DS_TELEMETRY_MAX_SLOTS);
    if (cfg->n_windows > DS_TELEMETRY_MAX_WINDOWS)
        return ds_errf(err, errlen, DS_EINVAL, "telemetry windows: %u windows, at most %u",
                       cfg->n_windows, DS_TELEMETRY_MAX_WINDOWS);
    for (uint32_t i = 0; i < cfg->n_windows; i++) {
        uint64_t w = cfg->window_ms[i];
        if (w < cfg->slots || w > DS_MAX_DURATION_MS)
            return ds_errf(err, errlen, DS_EINVAL,
                           "telemetry window %u: %llu ms is out of range (%u ms to 7 d)", i,
                           (unsigned long long)w, cfg->slots);
        if (i > 0 && w <= cfg->window_ms[i - 1])
            return ds_errf(err, errlen, DS_EINVAL,
                           "telemetry window %u: %llu ms is not longer than the one before it "
                           "(list windows shortest first)",
                           i, (unsigned long long)w);
    }
    return 0;
}

static size_t s_nslots(const ds_telemetry_t *self)
{
    return (size_t)self->cfg.n_windows * self->cfg.slots;
}

static size_t s_series_size(const ds_telemetry_t *self)
{
    return sizeof(s_series_t) + s_nslots(self) * sizeof(s_slot_t);
}

ds_telemetry_t *ds_telemetry_new(const ds_telemetry_config_t *cfg)
{
    ds_telemetry_config_t c = {0};
    if (cfg)
        c = *cfg;
    if (ds_telemetry_config_check(&c, NULL, 0) != 0)
        return NULL;
    ds_telemetry_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = c;
    for (uint32_t i = 0; i < c.n_windows; i++)
        self->slot_ms[i] = c.window_ms[i] / c.slots;
    self->longest_ms = c.window_ms[c.n_windows - 1];
    uint32_t size = 16;
    while (size < c.max_series)
        size <<= 1;
    self->table = calloc(size, sizeof *self->table);
    if (!self->table) {
        free(self);
        return NULL;
    }
    self->table_mask = size - 1;
    self->bytes = sizeof *self + (uint64_t)size * sizeof *self->table;
    return self;
}

static void s_drop(ds_telemetry_t *self, s_series_t *s);

void ds_telemetry_destroy(ds_telemetry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ds_telemetry_t *self = *self_p;
    while (self->lru_head)
        s_drop(self, self->lru_head);
    free(self->table);
    free(self);
    *self_p = NULL;
}

const ds_telemetry_config_t *ds_telemetry_config(const ds_telemetry_t *self)
{
    return &self->cfg;
}

/* ---- series table ---------------------------------------------------------- */

static uint32_t s_hash_bytes(uint32_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 16777619u;
    }
    return h;
}

static const char *s_str(const char *s)
{
    return s ? s : "";
}

static uint32_t s_hash(const ds_telemetry_key_t *k)
{
    uint32_t h = 2166136261u;
    h = s_hash_bytes(h, &k->kind, 1);
    if (k->kind != DS_TELEMETRY_SERVICE)
        h = s_hash_bytes(h, s_str(k->worker), strlen(s_str(k->worker)) + 1);
    if (k->kind != DS_TELEMETRY_WORKER) {
        h = s_hash_bytes(h, s_str(k->service), strlen(s_str(k->service)) + 1);
        h = s_hash_bytes(h, &k->version, sizeof k->version);
    }
    return h;
}

static bool s_matches(const s_series_t *s, const ds_telemetry_key_t *k, uint32_t hash)
{
    if (s->hash != hash || s->kind != k->kind)
        return false;
    if (k->kind != DS_TELEMETRY_SERVICE && strcmp(s->worker, s_str(k->worker)) != 0)
        return false;
    if (k->kind != DS_TELEMETRY_WORKER &&
        (s->version != k->version || strcmp(s->service, s_str(k->service)) != 0))
        return false;
    return true;
}

static s_series_t *s_find(const ds_telemetry_t *self, const ds_telemetry_key_t *k, uint32_t hash)
{
    for (s_series_t *s = self->table[hash & self->table_mask]; s; s = s->hnext)
        if (s_matches(s, k, hash))
            return s;
    return NULL;
}

static void s_lru_unlink(ds_telemetry_t *self, s_series_t *s)
{
    if (s->lprev)
        s->lprev->lnext = s->lnext;
    else
        self->lru_head = s->lnext;
    if (s->lnext)
        s->lnext->lprev = s->lprev;
    else
        self->lru_tail = s->lprev;
    s->lprev = s->lnext = NULL;
}

static void s_lru_append(ds_telemetry_t *self, s_series_t *s)
{
    s->lprev = self->lru_tail;
    s->lnext = NULL;
    if (self->lru_tail)
        self->lru_tail->lnext = s;
    else
        self->lru_head = s;
    self->lru_tail = s;
}

static void s_child_link(s_series_t *parent, s_series_t *child, int side)
{
    child->parent[side] = parent;
    child->sprev[side] = NULL;
    child->snext[side] = parent->children;
    if (parent->children)
        parent->children->sprev[side] = child;
    parent->children = child;
}

static void s_child_unlink(s_series_t *child, int side)
{
    s_series_t *parent = child->parent[side];
    if (!parent)
        return;
    if (child->sprev[side])
        child->sprev[side]->snext[side] = child->snext[side];
    else
        parent->children = child->snext[side];
    if (child->snext[side])
        child->snext[side]->sprev[side] = child->sprev[side];
    child->parent[side] = child->sprev[side] = child->snext[side] = NULL;
}

static size_t s_hists_size(const ds_telemetry_t *self)
{
    return s_nslots(self) * sizeof(s_hist_t);
}

static void s_drop(ds_telemetry_t *self, s_series_t *s)
{
    s_series_t **pp = &self->table[s->hash & self->table_mask];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    s_lru_unlink(self, s);
    if (s->kind == DS_TELEMETRY_INSTANCE) {
        s_child_unlink(s, 0);
        s_child_unlink(s, 1);
    } else {
        int side = s->kind == DS_TELEMETRY_WORKER ? 0 : 1;
        while (s->children)
            s_child_unlink(s->children, side);
    }
    self->bytes -= s_series_size(self);
    if (s->last)
        self->bytes -= sizeof *s->last;
    if (s->probe)
        self->bytes -= s_hists_size(self);
    if (s->latency)
        self->bytes -= s_hists_size(self);
    free(s->last);
    free(s->probe);
    free(s->latency);
    free(s);
    self->n_series--;
}

/*  Links a new aggregate to the instance series that already exist. */
static void s_adopt(ds_telemetry_t *self, s_series_t *agg)
{
    int side = agg->kind == DS_TELEMETRY_WORKER ? 0 : 1;
    for (s_series_t *s = self->lru_head; s; s = s->lnext) {
        if (s->kind != DS_TELEMETRY_INSTANCE || s->parent[side])
            continue;
        bool mine = side == 0 ? strcmp(s->worker, agg->worker) == 0
                              : s->version == agg->version && strcmp(s->service, agg->service) == 0;
        if (mine)
            s_child_link(agg, s, side);
    }
}

/*  Finds or creates the series of `k` and makes it the most recently
    updated. Returns NULL when out of memory. */
static s_series_t *s_get(ds_telemetry_t *self, const ds_telemetry_key_t *k, uint64_t now_ms)
{
    uint32_t hash = s_hash(k);
    s_series_t *s = s_find(self, k, hash);
    if (s) {
        s_lru_unlink(self, s);
        s_lru_append(self, s);
        return s;
    }
    s = calloc(1, s_series_size(self));
    if (!s)
        return NULL;
    if (self->n_series >= self->cfg.max_series) {
        s_drop(self, self->lru_head);
        self->evicted++;
    }
    s->kind = k->kind;
    s->hash = hash;
    if (k->kind != DS_TELEMETRY_SERVICE)
        snprintf(s->worker, sizeof s->worker, "%s", s_str(k->worker));
    if (k->kind != DS_TELEMETRY_WORKER) {
        snprintf(s->service, sizeof s->service, "%s", s_str(k->service));
        s->version = k->version;
    }
    s->first_ms = s->last_ms = now_ms;
    s_series_t **head = &self->table[hash & self->table_mask];
    s->hnext = *head;
    *head = s;
    s_lru_append(self, s);
    self->n_series++;
    self->bytes += s_series_size(self);
    if (k->kind != DS_TELEMETRY_INSTANCE)
        s_adopt(self, s);
    return s;
}

static bool s_name_ok(const char *s)
{
    return s && s[0] && strlen(s) <= DS_MAX_NAME;
}

void ds_telemetry_expire(ds_telemetry_t *self, uint64_t now_ms)
{
    if (now_ms > self->now_ms)
        self->now_ms = now_ms;
    while (self->lru_head && self->lru_head->last_ms + self->longest_ms < self->now_ms) {
        s_drop(self, self->lru_head);
        self->expired++;
    }
}

void ds_telemetry_forget_worker(ds_telemetry_t *self, const char *worker)
{
    s_series_t *s = self->lru_head;
    while (s) {
        s_series_t *next = s->lnext;
        /* s_drop frees s only, so `next` stays valid. */
        if (s->kind != DS_TELEMETRY_SERVICE && strcmp(s->worker, s_str(worker)) == 0)
            s_drop(self, s);
        s = next;
    }
}

/* ---- recording ---------------------------------------------------------------- */

/*  The slot of window w for now_ms, reset if it held an older period. */
static s_slot_t *s_slot(ds_telemetry_t *self, s_series_t *s, uint32_t w, uint64_t now_ms,
                        size_t *index)
{
    uint64_t epoch = now_ms / self->slot_ms[w] + 1;
    size_t i = (size_t)w * self->cfg.slots + (size_t)(epoch % self->cfg.slots);
    s_slot_t *slot = &s->slots[i];
    if (slot->epoch != epoch) {
        memset(slot, 0, sizeof *slot);
        slot->epoch = epoch;
        if (s->probe)
            memset(&s->probe[i], 0, sizeof s->probe[i]);
        if (s->latency)
            memset(&s->latency[i], 0, sizeof s->latency[i]);
    }
    *index = i;
    return slot;
}

/*  Allocates the histograms a sample needs; 0 or DS_ENOMEM. */
static int s_need_hists(ds_telemetry_t *self, s_series_t *s, const s_sample_t *x)
{
    if (x->has_probe && !s->probe) {
        s->probe = calloc(s_nslots(self), sizeof *s->probe);
        if (!s->probe)
            return DS_ENOMEM;
        self->bytes += s_hists_size(self);
    }
    if (x->latency_samples > 0 && !s->latency) {
        s->latency = calloc(s_nslots(self), sizeof *s->latency);
        if (!s->latency)
            return DS_ENOMEM;
        self->bytes += s_hists_size(self);
    }
    return 0;
}

static void s_apply(ds_telemetry_t *self, s_series_t *s, const s_sample_t *x, uint64_t now_ms)
{
    s->last_ms = now_ms;
    for (uint32_t w = 0; w < self->cfg.n_windows; w++) {
        size_t i;
        s_slot_t *slot = s_slot(self, s, w, now_ms, &i);
        if (x->machine) {
            slot->machine_samples++;
            slot->machine_cpu_sum += x->machine_cpu;
            slot->machine_mem_sum += x->machine_mem;
        }
        if (!x->status)
            continue;
        slot->samples++;
        slot->health_samples += x->health_sample;
        slot->health_pass += x->health_sample && x->health_pass;
        slot->restarts += x->restarts;
        slot->cpu_sum += x->cpu;
        slot->rss_sum += x->rss;
        slot->requests += x->requests;
        slot->errors += x->errors;
        if (x->has_probe) {
            slot->probe_samples++;
            s->probe[i].b[x->probe_bucket] += 1.0f;
        }
        if (x->latency_samples > 0) {
            slot->latency_samples += x->latency_samples;
            for (uint32_t b = 0; b < S_NB; b++)
                s->latency[i].b[b] += (float)x->latency[b];
        }
    }
}

static double s_counter_delta(bool had, double last, bool has, double now)
{
    if (!had || !has)
        return 0;
    return now >= last ? now - last : now; /* lower: the process restarted */
}

static bool s_same_layout(const ds_appmetrics_sample_t *a, const ds_appmetrics_sample_t *b)
{
    if (a->n_buckets != b->n_buckets)
        return false;
    for (uint32_t i = 0; i < a->n_buckets; i++)
        if (a->buckets[i].le_s != b->buckets[i].le_s)
            return false;
    return true;
}

/*  The latency observations between two cumulative histograms, spread
    into x->latency. */
static void s_latency_delta(const ds_appmetrics_sample_t *last, const ds_appmetrics_sample_t *cur,
                            s_sample_t *x)
{
    if (cur->n_buckets == 0 || last->n_buckets == 0 || !s_same_layout(last, cur))
        return;
    bool reset = cur->has_count && last->has_count && cur->latency_count < last->latency_count;
    for (uint32_t i = 0; i < cur->n_buckets; i++)
        reset = reset || cur->buckets[i].count < last->buckets[i].count;
    double prev_cum = 0, a = 0;
    for (uint32_t i = 0; i < cur->n_buckets; i++) {
        double cum = cur->buckets[i].count - (reset ? 0 : last->buckets[i].count);
        double n = cum - prev_cum;
        prev_cum = cum > prev_cum ? cum : prev_cum;
        double b = cur->buckets[i].le_s * 1e6;
        if (n > 0) {
            s_spread(x->latency, a, b, n);
            x->latency_samples += n;
        }
        a = b;
    }
    /* Observations above the largest finite bound, when no +Inf bucket. */
    if (cur->has_count && last->has_count && !isinf(cur->buckets[cur->n_buckets - 1].le_s)) {
        double count = cur->latency_count - (reset ? 0 : last->latency_count);
        if (count > prev_cum) {
            x->latency[ds_telemetry_hist_bucket(a)] += count - prev_cum;
            x->latency_samples += count - prev_cum;
        }
    }
}

/*  A CPU percentage from a worker (untrusted): 0 to 100 per core of the
    largest machines, anything else 0. */
static double s_percent(double v)
{
    return isfinite(v) && v > 0 && v <= 1e6 ? v : 0;
}

/*  Turns a status into what it adds, updating the instance's last values. */
static void s_sample_status(s_series_t *inst, const ds_instance_status_t *st, s_sample_t *x,
                            const ds_appmetrics_sample_t *app)
{
    x->status = true;
    x->health_sample = st->health == DS_HEALTH_PASSING || st->health == DS_HEALTH_FAILING;
    x->health_pass = st->health == DS_HEALTH_PASSING;
    x->cpu = s_percent(st->cpu_pct);
    x->rss = (double)st->rss_kb;
    if (st->probe_latency_us > 0) {
        x->has_probe = true;
        x->probe_bucket = ds_telemetry_hist_bucket((double)st->probe_latency_us);
    }
    if (inst->has_restarts)
        x->restarts =
            st->restarts >= inst->last_restarts ? st->restarts - inst->last_restarts : st->restarts;
    inst->has_restarts = true;
    inst->last_restarts = st->restarts;
    if (!inst->last)
        return;
    ds_appmetrics_sample_t *last = &inst->last->app;
    x->requests =
        s_counter_delta(last->has_requests, last->requests, app->has_requests, app->requests);
    x->errors = s_counter_delta(last->has_errors, last->errors, app->has_errors, app->errors);
    s_latency_delta(last, app, x);
    /* Keep what this status had; what it lacked keeps its older value. */
    if (app->has_requests)
        last->has_requests = true, last->requests = app->requests;
    if (app->has_errors)
        last->has_errors = true, last->errors = app->errors;
    if (app->n_buckets) {
        last->n_buckets = app->n_buckets;
        memcpy(last->buckets, app->buckets, app->n_buckets * sizeof app->buckets[0]);
        last->has_count = app->has_count;
        last->latency_count = app->latency_count;
    }
}

static int s_observe(ds_telemetry_t *self, const char *worker, const ds_instance_status_t *st,
                     const ds_worker_telemetry_t *machine, uint64_t now_ms)
{
    if (!s_name_ok(worker) || (st && !s_name_ok(st->service)))
        return DS_EINVAL;
    ds_telemetry_expire(self, now_ms);
    now_ms = self->now_ms;
    ds_telemetry_key_t kw = {.kind = DS_TELEMETRY_WORKER, .worker = worker};
    s_series_t *w = s_get(self, &kw, now_ms);
    if (!w)
        return DS_ENOMEM;
    s_sample_t x = {0};
    if (machine) {
        x.machine = true;
        x.machine_cpu = s_percent(machine->cpu_pct);
        x.machine_mem = (double)machine->mem_used_kb;
        s_apply(self, w, &x, now_ms);
        return 0;
    }
    ds_telemetry_key_t ki = {
        .kind = DS_TELEMETRY_INSTANCE,
        .worker = worker,
        .service = st->service,
        .version = st->version,
    };
    ds_telemetry_key_t ks = {
        .kind = DS_TELEMETRY_SERVICE, .service = st->service, .version = st->version};
    s_series_t *in = s_get(self, &ki, now_ms);
    s_series_t *sv = in ? s_get(self, &ks, now_ms) : NULL;
    if (!in || !sv)
        return DS_ENOMEM;
    /* Creating those could not evict w: it is more recent than the head
       (max_series is at least DS_TELEMETRY_MIN_SERIES). */
    assert(s_find(self, &kw, s_hash(&kw)) == w);
    if (!in->parent[0])
        s_child_link(w, in, 0);
    if (!in->parent[1])
        s_child_link(sv, in, 1);
    ds_appmetrics_sample_t app;
    ds_appmetrics_read(st->metrics, st->n_metrics, &app);
    if (!in->last && st->n_metrics > 0) {
        in->last = calloc(1, sizeof *in->last);
        if (!in->last)
            return DS_ENOMEM;
        self->bytes += sizeof *in->last;
        in->last->app = app; /* the first values only set the baseline */
    }
    s_sample_status(in, st, &x, &app);
    int rc = s_need_hists(self, w, &x);
    if (rc == 0)
        rc = s_need_hists(self, in, &x);
    if (rc == 0)
        rc = s_need_hists(self, sv, &x);
    if (rc != 0)
        return rc;
    s_apply(self, w, &x, now_ms);
    s_apply(self, in, &x, now_ms);
    s_apply(self, sv, &x, now_ms);
    return 0;
}

int ds_telemetry_observe(ds_telemetry_t *self, const char *worker, const ds_instance_status_t *st,
                         uint64_t now_ms)
{
    assert(st);
    return s_observe(self, worker, st, NULL, now_ms);
}

int ds_telemetry_heartbeat(ds_telemetry_t *self, const ds_heartbeat_t *hb, uint64_t now_ms)
{
    int rc = s_observe(self, hb->name, NULL, &hb->telemetry, now_ms);
    for (uint32_t i = 0; rc == 0 && hb->instances && i < hb->n_instances; i++)
        rc = s_observe(self, hb->name, &hb->instances[i], NULL, now_ms);
    return rc;
}

/* ---- queries -------------------------------------------------------------------- */

uint32_t ds_telemetry_window_for(const ds_telemetry_t *self, uint64_t span_ms)
{
    for (uint32_t i = 0; i < self->cfg.n_windows; i++)
        if (self->cfg.window_ms[i] >= span_ms)
            return i;
    return self->cfg.n_windows - 1;
}

static uint32_t s_instances(const s_series_t *s, uint64_t from_ms)
{
    if (s->kind == DS_TELEMETRY_INSTANCE)
        return s->last_ms >= from_ms;
    int side = s->kind == DS_TELEMETRY_WORKER ? 0 : 1;
    uint32_t n = 0;
    for (const s_series_t *c = s->children; c; c = c->snext[side])
        n += c->last_ms >= from_ms;
    return n;
}

static void s_stats(const ds_telemetry_t *self, const s_series_t *s, uint32_t w, uint64_t since_ms,
                    uint64_t now_ms, ds_telemetry_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (now_ms < self->now_ms)
        now_ms = self->now_ms;
    uint64_t slot_ms = self->slot_ms[w], k = self->cfg.slots;
    uint64_t cur = now_ms / slot_ms + 1; /* epoch of the current slot */
    s_slot_t sum = {0};
    double probe[S_NB] = {0}, lat[S_NB] = {0};
    for (uint64_t j = 0; j < k; j++) {
        size_t i = (size_t)w * k + (size_t)j;
        const s_slot_t *slot = &s->slots[i];
        if (slot->epoch == 0 || slot->epoch > cur || slot->epoch + k <= cur ||
            slot->epoch * slot_ms <= since_ms)
            continue;
        sum.samples += slot->samples;
        sum.health_samples += slot->health_samples;
        sum.health_pass += slot->health_pass;
        sum.probe_samples += slot->probe_samples;
        sum.machine_samples += slot->machine_samples;
        sum.restarts += slot->restarts;
        sum.cpu_sum += slot->cpu_sum;
        sum.rss_sum += slot->rss_sum;
        sum.machine_cpu_sum += slot->machine_cpu_sum;
        sum.machine_mem_sum += slot->machine_mem_sum;
        sum.requests += slot->requests;
        sum.errors += slot->errors;
        sum.latency_samples += slot->latency_samples;
        for (uint32_t b = 0; s->probe && b < S_NB; b++)
            probe[b] += s->probe[i].b[b];
        for (uint32_t b = 0; s->latency && b < S_NB; b++)
            lat[b] += s->latency[i].b[b];
    }
    uint64_t from = cur > k ? (cur - k) * slot_ms : 0;
    if (since_ms > from)
        from = since_ms;
    if (s->first_ms > from)
        from = s->first_ms;
    out->window_ms = self->cfg.window_ms[w];
    out->span_ms = now_ms > from ? now_ms - from : 0;
    out->instances = s_instances(s, from);
    out->samples = sum.samples;
    out->health_samples = sum.health_samples;
    out->health_ratio = sum.health_samples ? (double)sum.health_pass / sum.health_samples : 0;
    out->probe_samples = sum.probe_samples;
    if (sum.probe_samples) {
        double total = 0;
        for (uint32_t b = 0; b < S_NB; b++)
            total += probe[b];
        out->probe_p50_ms = s_quantile(probe, total, 0.50) / 1000.0;
        out->probe_p90_ms = s_quantile(probe, total, 0.90) / 1000.0;
        out->probe_p99_ms = s_quantile(probe, total, 0.99) / 1000.0;
    }
    out->restarts = sum.restarts;
    if (s->kind == DS_TELEMETRY_WORKER) {
        if (sum.machine_samples) {
            out->cpu_pct = sum.machine_cpu_sum / sum.machine_samples;
            out->rss_kb = sum.machine_mem_sum / sum.machine_samples;
        }
    } else if (sum.samples) {
        out->cpu_pct = sum.cpu_sum / sum.samples;
        out->rss_kb = sum.rss_sum / sum.samples;
    }
    out->requests = sum.requests;
    out->errors = sum.errors;
    out->request_rate = out->span_ms ? sum.requests * 1000.0 / (double)out->span_ms : 0;
    out->error_ratio = sum.requests > 0 ? sum.errors / sum.requests : 0;
    if (out->error_ratio > 1)
        out->error_ratio = 1;
    out->latency_samples = sum.latency_samples;
    if (sum.latency_samples > 0) {
        double total = 0;
        for (uint32_t b = 0; b < S_NB; b++)
            total += lat[b];
        out->latency_p50_ms = s_quantile(lat, total, 0.50) / 1000.0;
        out->latency_p90_ms = s_quantile(lat, total, 0.90) / 1000.0;
        out->latency_p99_ms = s_quantile(lat, total, 0.99) / 1000.0;
    }
}

int ds_telemetry_query(const ds_telemetry_t *self, const ds_telemetry_key_t *key, uint32_t window,
                       uint64_t since_ms, uint64_t now_ms, ds_telemetry_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (window >= self->cfg.n_windows || !key || key->kind < DS_TELEMETRY_WORKER ||
        key->kind > DS_TELEMETRY_SERVICE)
        return DS_EINVAL;
    const s_series_t *s = s_find(self, key, s_hash(key));
    if (!s)
        return DS_ENOTFOUND;
    s_stats(self, s, window, since_ms, now_ms, out);
    return 0;
}

int ds_telemetry_each(const ds_telemetry_t *self, int kind, uint32_t window, uint64_t now_ms,
                      ds_telemetry_visit_fn fn, void *ctx)
{
    if (window >= self->cfg.n_windows)
        return DS_EINVAL;
    for (const s_series_t *s = self->lru_head; s; s = s->lnext) {
        if (kind != 0 && s->kind != kind)
            continue;
        ds_telemetry_key_t key = {
            .kind = s->kind,
            .worker = s->kind != DS_TELEMETRY_SERVICE ? s->worker : NULL,
            .service = s->kind != DS_TELEMETRY_WORKER ? s->service : NULL,
            .version = s->version,
        };
        ds_telemetry_stats_t stats;
        s_stats(self, s, window, 0, now_ms, &stats);
        int rc = fn(ctx, &key, &stats);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void ds_telemetry_usage(const ds_telemetry_t *self, ds_telemetry_usage_t *out)
{
    out->series = self->n_series;
    out->max_series = self->cfg.max_series;
    out->evicted = self->evicted;
    out->expired = self->expired;
    out->bytes = self->bytes;
}
