/*  dsctl/client.h - the cluster client: one request, answered by the
    leader, found wherever it is.

    A call tries the configured coordinators' rpc endpoints in turn, each
    for at most `attempt_ms`. A DS_MSG_NOT_LEADER reply that names the
    leader's rpc endpoint is followed at once (the leader need not be in
    the list); one that names no leader (an election is running) or a
    timeout moves on to the next endpoint, and after every endpoint has
    failed once the client sleeps (50 ms doubling to 400 ms) and goes round
    again, until the overall deadline `timeout_ms` from the start of the
    call. The leader found is remembered and tried first by the next call.

    Every attempt of one call sends the same envelope (sender and corr_id),
    so a coordinator can recognise a retried write; each attempt uses a
    fresh socket (ds_rpc_call), so a late reply to an earlier attempt is
    never taken for the answer.

    Any reply other than NOT_LEADER ends the call, including DS_MSG_ERROR:
    interpreting it is the caller's job.
*/
#ifndef DS_DSCTL_CLIENT_H
#define DS_DSCTL_CLIENT_H

#include "dsctl/args.h"
#include "protocol/msg.h"
#include "protocol/transport.h"

#include <stdint.h>

#define DS_CLIENT_ATTEMPT_MS 1000 /* default wait for one endpoint */

typedef struct ds_client ds_client_t;

typedef struct {
    ds_endpoints_t endpoints; /* at least one */
    uint64_t timeout_ms;      /* overall deadline of one call, > 0 */
    int attempt_ms; /* one endpoint's wait; 0: timeout_ms / endpoints, 200..DS_CLIENT_ATTEMPT_MS */
    const char *sender;                 /* envelope sender; NULL: "dsctl" */
    const ds_transport_security_t *sec; /* NULL: plain ZeroMQ */
} ds_client_opts_t;

/*  Why a call failed: the code and a paragraph for a person, naming every
    endpoint tried, what each did, and what to do next. */
typedef struct {
    int code;
    char text[2048];
} ds_client_err_t;

/*  Creates a client (copies `opts`, keeps no pointer into it except
    `sec`). Returns NULL when out of memory. */
ds_client_t *ds_client_new(const ds_client_opts_t *opts);

/*  Writes a sender name unique to this process into out (at most
    DS_MAX_NAME + 1 bytes): "dsctl-HOST-PID-RANDOM". The cluster applies a
    write at most once per (sender, request id) and expects request ids to
    grow per sender, so every process needs a name of its own: two
    processes sharing one would see each other's writes as retries. */
void ds_client_session_name(const char *prefix, char *out, size_t outlen);

/*  Frees the client and sets *self_p to NULL. Accepts NULL. */
void ds_client_destroy(ds_client_t **self_p);

/*  Sends a request of `type` with `body` to the leader and waits for its
    reply. Returns 0 and sets *reply_out (the caller frees it with
    ds_msg_destroy; it may be a DS_MSG_ERROR), or fails with *reply_out
    NULL and `err` (may be NULL) filled:
      DS_ENOQUORUM  no coordinator knew a leader before the deadline;
      DS_ETIMEOUT   no coordinator answered at all before the deadline;
      DS_EINVAL / DS_ETOOBIG / DS_EUNKNOWN  the request cannot be encoded
                    (nothing was sent). */
int ds_client_call(ds_client_t *self, uint16_t type, const void *body, ds_msg_t **reply_out,
                   ds_client_err_t *err);

/*  Sets the overall deadline of the calls that follow (> 0), e.g. to the
    time left of a longer wait, and, when attempt_ms > 0, the wait for one
    endpoint (a long poll needs one longer than its hold). */
void ds_client_set_timeout(ds_client_t *self, uint64_t timeout_ms, int attempt_ms);

/*  The rpc endpoint that answered the last successful call, or NULL. */
const char *ds_client_leader(const ds_client_t *self);

#endif
