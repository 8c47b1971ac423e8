/*  worker/reconcile.h - the worker's reconciler: makes what runs on this
    machine match the desired assignment, and keeps it so.

    Level-triggered: ds_reconciler_step() compares, for each service, the
    desired release (service -> version + spec) with what runs, and takes
    the next action (stage the artifact, start an instance, probe its
    health, restart a crashed one with capped backoff, replace the old
    version once the new one is healthy, stop what is no longer desired).
    It converges from any state, including a restart of the worker
    itself: ds_reconciler_new() reads the worker store and re-adopts
    instances that still run (same pid and start time) or restarts the
    last assigned version, before any coordinator is reached.

    Static stability: the desired assignment stays as it was last set
    (and persisted) while no coordinator can be reached; instances keep
    running, being health-checked and restarted.

    Single-threaded: every call comes from the worker's main loop. The
    reconciler owns its child processes, their sockets and files; nothing
    here blocks for longer than a few milliseconds (health probes and
    downloads run asynchronously or in child processes).
*/
#ifndef DS_WORKER_RECONCILE_H
#define DS_WORKER_RECONCILE_H

#include "protocol/messages.h"
#include "storage/workerstore.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ds_reconciler ds_reconciler_t;

typedef enum {
    DS_ON_EXIT_KEEP = 0, /* instances keep running when dsworker exits */
    DS_ON_EXIT_STOP = 1  /* instances are stopped (SIGTERM, then SIGKILL) */
} ds_on_exit_t;

typedef struct {
    const char *data_dir;    /* releases under DATA/releases/SERVICE/VERSION/ */
    ds_workerstore_t *store; /* borrowed; outlives the reconciler */
    uint32_t keep_releases;  /* per service; 0 = DS_WORKERSTORE_KEEP */
    uint16_t port_min;       /* ports assigned to instances: [port_min, port_max] */
    uint16_t port_max;
    uint64_t log_max_bytes; /* per log file before rotation; 0 = 10 MiB */
    uint32_t log_keep;      /* rotated files kept; 0 = 3 */
} ds_reconciler_opts_t;

/*  Creates a reconciler, loads the last desired assignment from the
    store and re-adopts or restarts its instances. Returns 0 and sets
    *out (the caller destroys it), or a DS_E code with `err` set. */
int ds_reconciler_new(const ds_reconciler_opts_t *opts, uint64_t now_ms, ds_reconciler_t **out,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/*  Stops the reconciler. With DS_ON_EXIT_STOP every instance is stopped
    first (bounded by each spec's stop grace); with KEEP they keep
    running and a restarted dsworker re-adopts them. Sets *self_p NULL;
    accepts NULL. */
void ds_reconciler_destroy(ds_reconciler_t **self_p, ds_on_exit_t on_exit);

/*  Sets the desired assignment (copied; persisted in the store before it
    returns). Its generation is remembered and reported. Returns 0, or
    DS_EINVAL for an assignment that cannot be applied (with `err`). */
int ds_reconciler_set_desired(ds_reconciler_t *self, const ds_assignment_t *desired, char *err,
                              size_t errlen) __attribute__((warn_unused_result));

/*  The generation of the desired assignment (0 = none yet). */
uint64_t ds_reconciler_generation(const ds_reconciler_t *self);

/*  Does the work that is due at now_ms: reaps children, probes health,
    advances staging, starts, stops and restarts instances. Never
    blocks for long. */
void ds_reconciler_step(ds_reconciler_t *self, uint64_t now_ms);

/*  When the next step is due (absolute ms, same clock as now_ms). */
uint64_t ds_reconciler_next_wake(const ds_reconciler_t *self);

/*  File descriptors the main loop should poll for reading (health
    probes, download progress, child output); a step is due when any is
    readable. Writes up to `cap` fds, returns how many there are. */
size_t ds_reconciler_fds(const ds_reconciler_t *self, int *fds, size_t cap);

/*  The status of every instance for a heartbeat: fills `out` with up to
    `cap` rows whose strings live in the reconciler until its next call;
    returns the number of rows. */
size_t ds_reconciler_status(ds_reconciler_t *self, ds_instance_status_t *out, size_t cap);

/*  Machine telemetry: load, CPU, memory, disk free of the data dir. */
void ds_reconciler_telemetry(ds_reconciler_t *self, ds_worker_telemetry_t *out);

/* ---- dry runs (dsctl deploy --dry-run) -------------------------------

    A dry run stages a release into DATA/dryrun/ID/, starts it on a free
    port of the range (PORT, DS_RELEASE_DIR and DS_VERSION=0 in its
    environment), waits until it is healthy (its health spec, within
    strategy.healthy_deadline_ms), runs every release test, then stops it
    (SIGTERM, SIGKILL after stop_grace_ms) and deletes the directory. It
    is an instance apart: it never serves, never replaces or stops
    anything, and is neither recorded in the store nor reported by
    ds_reconciler_status(). Its result stays until it is forgotten. */

#define DS_RECONCILER_MAX_DRY_RUNS DS_MAX_DRY_RUNS /* at once, results included */

/*  Starts dry run `id` of `service` with `spec` (copied). Returns 0, also
    when dry run `id` exists already (nothing changes); DS_ELIMIT when
    DS_RECONCILER_MAX_DRY_RUNS are held (nothing is recorded: ask again
    later); or DS_EINVAL / DS_ENOMEM with `err` set, after recording a
    failed result saying why, so the one who asked hears of it. */
int ds_reconciler_dry_run(ds_reconciler_t *self, uint64_t id, const char *service,
                          const ds_spec_t *spec, char *err, size_t errlen);

/*  Forgets every dry run whose id is not among `ids`: one under way is
    cancelled (stopped, its directory deleted), a result is dropped. The
    session calls it with the jobs each heartbeat reply lists, so a
    result is sent until the leader stops listing its job. */
void ds_reconciler_dry_run_keep(ds_reconciler_t *self, const uint64_t *ids, size_t n);

/*  The results of the dry runs that ended (their process stopped and
    their directory deleted): fills up to `cap` rows whose strings live
    in the reconciler until its next step or dry-run call; returns the
    number of rows. */
size_t ds_reconciler_dry_run_results(const ds_reconciler_t *self, ds_dry_run_result_t *out,
                                     size_t cap);

#endif
