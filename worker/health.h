/*  worker/health.h - health probes of one instance and the thresholds
    that turn their results into a health state.

    A probe never blocks: http and tcp probes use a non-blocking socket
    to 127.0.0.1:PORT that the main loop polls (ds_probe_fd); an exec
    probe is a child process (worker/proc.h) whose output pipe is polled.
    Each probe ends as passed or failed (with a short reason) by its
    timeout at the latest.
*/
#ifndef DS_WORKER_HEALTH_H
#define DS_WORKER_HEALTH_H

#include "protocol/spec.h"
#include "worker/proc.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    DS_PROBE_IDLE = 0,
    DS_PROBE_CONNECTING = 1,
    DS_PROBE_READING = 2,
    DS_PROBE_EXEC = 3
} ds_probe_phase_t;

typedef struct {
    uint8_t kind;  /* ds_health_kind_t */
    uint8_t phase; /* ds_probe_phase_t */
    int fd;        /* socket; -1 when none */
    uint64_t t0_us;
    uint64_t deadline_ms;
    char req[1200];
    size_t req_len;
    char resp[64];
    size_t resp_len;
    ds_cmd_t cmd;
} ds_probe_t;

/*  A probe that is idle (call before first use). */
void ds_probe_init(ds_probe_t *p);

/*  Starts one probe of kind h->kind against 127.0.0.1:port; exec probes
    run h->command with `envp` in `workdir`. Returns 0, or a DS_E code
    with `why` set when it could not even start (the caller counts that
    as a failed probe). */
int ds_probe_start(ds_probe_t *p, const ds_health_spec_t *h, uint16_t port, char *const *envp,
                   const char *workdir, uint64_t now_ms, char *why, size_t whylen)
    __attribute__((warn_unused_result));

/*  Advances a running probe. Returns true when it finished: *passed,
    *latency_us (start to finish) and `why` (on failure) are set and the
    probe is idle again. */
bool ds_probe_poll(ds_probe_t *p, uint64_t now_ms, bool *passed, uint64_t *latency_us, char *why,
                   size_t whylen);

/*  The descriptor to poll for reading while the probe runs, or -1. */
int ds_probe_fd(const ds_probe_t *p);

/*  True while a probe runs. */
bool ds_probe_busy(const ds_probe_t *p);

/*  Stops a running probe (closes its socket, kills its child). */
void ds_probe_abort(ds_probe_t *p);

/*  Consecutive results against the spec's thresholds. */
typedef struct {
    uint8_t health;  /* ds_health_state_t */
    uint32_t passes; /* consecutive */
    uint32_t fails;  /* consecutive, counted (outside the start grace) */
    uint64_t total;  /* probes */
    uint64_t passed; /* of which passed */
} ds_health_track_t;

/*  Records a result: passes reach healthy_threshold -> passing; failures
    reach unhealthy_threshold -> failing. A failure before
    started_ms + start_grace_ms is not counted while the instance has not
    been healthy yet. */
void ds_health_record(ds_health_track_t *t, const ds_health_spec_t *h, bool passed, uint64_t now_ms,
                      uint64_t started_ms);

#endif
