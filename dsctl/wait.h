/*  dsctl/wait.h - `--wait`: follow a deployment until it ends.

    After a deploy or rollback reply, dsctl polls `status SERVICE` every
    DS_WAIT_POLL_MS and follows the deployment whose id the reply named:
      succeeded                       -> exit 0
      failed, rolled_back, aborted    -> the reason is printed, exit 1
      another deployment took its place (a newer id) -> exit 1
      the limit passed (--timeout, default DS_WAIT_DEFAULT_MS)
                                      -> exit 1; the deployment goes on
    Any other state (pending, canary, baking, canary_passed, promoting,
    rolling_back, paused, or a state this dsctl does not know) goes on.
    An older id, or no deployment at all, means the status read has not
    caught up yet: it goes on too.

    A status request that finds no leader is retried until the limit (a
    leader change must not end the wait); if the cluster is still out of
    reach then, the exit code is 3. An error reply ends the wait with its
    exit code (ds_cmd_exit_for).

    Progress goes to ctx->err: on a terminal the line is rewritten in
    place; otherwise a line is printed only when it changes (the elapsed
    time aside).

    ds_wait_judge(), ds_wait_exit_code() and ds_wait_progress() are pure;
    ds_wait_run() does the requests and the sleeping.
*/
#ifndef DS_DSCTL_WAIT_H
#define DS_DSCTL_WAIT_H

#include "dsctl/cmd.h"
#include "protocol/messages.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_WAIT_POLL_MS    500
#define DS_WAIT_DEFAULT_MS (30ull * 60 * 1000)

typedef enum {
    DS_WAIT_GOING = 0,   /* not over: poll again */
    DS_WAIT_SUCCEEDED,   /* the deployment succeeded */
    DS_WAIT_FAILED,      /* it ended failed, rolled_back or aborted */
    DS_WAIT_REPLACED,    /* a newer deployment took its place */
    DS_WAIT_TIMEOUT,     /* the limit passed first (ds_wait_run only) */
    DS_WAIT_UNREACHABLE, /* ... with the cluster out of reach (ds_wait_run only) */
    DS_WAIT_ERROR        /* an error reply (ds_wait_run only) */
} ds_wait_verdict_t;

/*  What is followed. A deployment_id of 0 (a reply that named none) is
    settled by the first deployment seen of `version`. */
typedef struct {
    uint64_t deployment_id;
    uint64_t version;
} ds_wait_target_t;

/*  Judges one status of the service against the target (which it may
    settle, see above). Pure. */
ds_wait_verdict_t ds_wait_judge(ds_wait_target_t *target, const ds_service_status_t *svc);

/*  The exit code of a verdict: 0 succeeded, 3 unreachable, else 1
    (DS_WAIT_GOING is not an end and asserts). */
int ds_wait_exit_code(ds_wait_verdict_t v);

/*  The word for a verdict in JSON ("result"): "succeeded", the
    deployment's state for DS_WAIT_FAILED, "replaced", "timeout",
    "unreachable", "error". `svc` may be NULL. */
const char *ds_wait_result_name(ds_wait_verdict_t v, const ds_service_status_t *svc);

/*  The progress line without the elapsed time, e.g.
    "churn-model v3: canary  wave 1  updated 1/10  healthy 1/10", or
    "churn-model v3: waiting for the deployment to show" when the status
    does not show it yet. Pure. */
void ds_wait_progress(const ds_wait_target_t *target, const ds_service_status_t *svc, char *out,
                      size_t outlen);

typedef struct {
    const char *service;
    ds_wait_target_t target;
    uint64_t limit_ms; /* the whole wait */
    uint64_t call_ms;  /* one status request at most */
} ds_wait_opts_t;

typedef struct {
    ds_wait_verdict_t verdict;
    uint64_t elapsed_ms;
    ds_msg_t *last;                 /* the last status reply, or NULL; the caller frees it */
    const ds_service_status_t *svc; /* the service in `last`, or NULL */
} ds_wait_result_t;

/*  Polls until the deployment ends or the limit passes, writing progress
    and, when it did not succeed, why to ctx->err. Returns the exit code
    and fills *res (the caller frees res->last with ds_msg_destroy). */
int ds_wait_run(ds_cmd_ctx_t *ctx, const ds_wait_opts_t *opts, ds_wait_result_t *res);

#endif
