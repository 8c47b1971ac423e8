/*  worker/agent.h - dsworker's main loop: the store, the reconciler and
    the coordinator session, wired together.

    ds_agent_new() opens the worker store in the data directory, loads
    (or creates) the worker's identity and starts the reconciler, which
    resumes the last assignment from the store before any coordinator is
    reached (static stability). ds_agent_run() then loops:
        zmq_poll(session socket + reconciler fds, until the nearest wake)
        ds_reconciler_step() when due or when one of its fds is readable
        ds_session_step()    (join, heartbeat, assignment fetch)
    The loop keeps stepping the reconciler whatever the session's state,
    so instances keep running and being checked with every coordinator
    down.

    I/O module; single-threaded.
*/
#ifndef DS_WORKER_AGENT_H
#define DS_WORKER_AGENT_H

#include "worker/config.h"
#include "worker/reconcile.h"
#include "worker/session.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define DS_AGENT_MAX_FDS     256u  /* reconciler fds polled at once */
#define DS_AGENT_MAX_WAIT_MS 1000u /* longest poll: how often *stop is checked */

typedef struct ds_agent ds_agent_t;

/*  Makes the agent from finished settings (ds_worker_config_finish),
    which it copies. `software_version` is sent in the JOIN. Returns 0
    and sets *out (the caller destroys it), or a DS_E code with `err`
    saying what failed and what to do (data directory unusable, store
    corrupt, reconciler refused to start). */
int ds_agent_new(ds_agent_t **out, const ds_worker_config_t *cfg, const char *software_version,
                 char *err, size_t errlen) __attribute__((warn_unused_result));

/*  Runs the loop until *stop becomes nonzero (set it from a signal
    handler). Returns 0 on a clean stop, or DS_EIO when polling fails
    (logged). */
int ds_agent_run(ds_agent_t *self, volatile sig_atomic_t *stop);

/*  Stops heartbeating (the session is closed first), stops or keeps the
    instances as configured (--on-exit), closes the store. Sets *self_p
    NULL; accepts NULL. */
void ds_agent_destroy(ds_agent_t **self_p);

/*  The session and reconciler, for tests; owned by the agent. */
ds_session_t *ds_agent_session(ds_agent_t *self);
ds_reconciler_t *ds_agent_reconciler(ds_agent_t *self);

/*  The worker's identity as loaded from the store. */
const ds_worker_identity_t *ds_agent_identity(const ds_agent_t *self);

/*  One pass of the loop at most `max_wait_ms` long: poll, then step
    what is due. ds_agent_run() is this in a loop; tests call it
    directly. Returns 0 or DS_EIO. */
int ds_agent_once(ds_agent_t *self, uint32_t max_wait_ms);

#endif
