/*  worker/scrape.h - scrapes an instance's Prometheus metrics.

    When a release's spec names a metrics endpoint, the worker GETs
    http://127.0.0.1:PORT<path> every metrics.interval, without blocking
    (a non-blocking socket the main loop polls), parses the exposition
    (protocol/promtext.h) for the counters and histogram the spec names,
    and keeps the result in the form heartbeats carry it
    (protocol/appmetrics.h). A failed scrape (refused, timed out, too big,
    malformed) keeps nothing: the next heartbeat sends no metrics rather
    than stale ones, and the reason is kept for the log.
*/
#ifndef DS_WORKER_SCRAPE_H
#define DS_WORKER_SCRAPE_H

#include "protocol/appmetrics.h"
#include "protocol/spec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_SCRAPE_TIMEOUT_MS 2000u /* at most; less when the interval is shorter */

typedef struct {
    int fd; /* -1 when idle */
    uint64_t deadline_ms;
    uint64_t next_ms; /* when the next scrape starts */
    uint64_t poke_ms; /* while the request is not sent yet: look again then */
    char req[DS_MAX_PATH + 128];
    size_t req_len, req_sent;
    char *resp; /* owned, grows to DS_PROMTEXT_MAX_INPUT plus a head */
    size_t resp_len, resp_cap;
    bool have;               /* metrics holds the last good scrape */
    ds_appmetrics_t metrics; /* build in place: names point into it */
    char why[256];           /* why the last scrape failed, "" if it did not */
} ds_scrape_t;

/*  An idle scraper (call before first use). */
void ds_scrape_init(ds_scrape_t *s);

/*  Frees what the scraper holds and makes it idle. */
void ds_scrape_fini(ds_scrape_t *s);

/*  Starts a scrape when one is due and the spec names a metrics path;
    advances a running one (reads what arrived, finishes it at the end of
    the response or its deadline). Call on every loop step. */
void ds_scrape_step(ds_scrape_t *s, const ds_metrics_spec_t *m, uint16_t port, uint64_t now_ms);

/*  The socket to poll for reading while a scrape runs, or -1. */
int ds_scrape_fd(const ds_scrape_t *s);

/*  When the scraper wants its next step (absolute ms), or UINT64_MAX. */
uint64_t ds_scrape_next_wake(const ds_scrape_t *s);

/*  Parses one response (head and body) into `out` for the spec's names.
    Returns 0, or a DS_E code with `why` set. Pure: for tests. */
int ds_scrape_parse(const char *resp, size_t len, const ds_metrics_spec_t *m, ds_appmetrics_t *out,
                    char *why, size_t whylen) __attribute__((warn_unused_result));

#endif
