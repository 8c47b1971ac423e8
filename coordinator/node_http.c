/*  coordinator/node_http.c - the read-only HTTP endpoint: /healthz and
    /metrics, served from the node's loop through a ZMQ_STREAM socket. */
#include "coordinator/node_impl.h"

#include "protocol/error.h"
#include "protocol/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define S_MOD      "http"
#define S_BODY_MAX 8192

int ds_node_http_bind(ds_node_t *self, char *err, size_t errlen)
{
    char endpoint[DS_MAX_ENDPOINT + 8];
    snprintf(endpoint, sizeof endpoint, "tcp://%s", self->cfg.http);
    self->http = zmq_socket(zsys_init(), ZMQ_STREAM);
    if (!self->http) {
        snprintf(err, errlen, "cannot create the http socket: %s", zmq_strerror(zmq_errno()));
        return DS_EIO;
    }
    int linger = 0;
    zmq_setsockopt(self->http, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(self->http, endpoint) != 0) {
        snprintf(err, errlen, "--http %s: cannot listen (%s): pick a free HOST:PORT",
                 self->cfg.http, zmq_strerror(zmq_errno()));
        ds_node_http_close(self);
        return DS_EIO;
    }
    return 0;
}

void ds_node_http_close(ds_node_t *self)
{
    if (self->http)
        zmq_close(self->http);
    self->http = NULL;
}

static int s_metrics(const ds_node_t *self, char *out, size_t cap)
{
    ds_raft_status_t st;
    ds_raft_status(ds_replica_raft(self->replica), &st);
    return snprintf(out, cap,
                    "# HELP gossamer_raft_term Current Raft term.\n"
                    "# TYPE gossamer_raft_term gauge\ngossamer_raft_term %" PRIu64 "\n"
                    "# HELP gossamer_raft_leader Id of the known leader, 0 if none.\n"
                    "# TYPE gossamer_raft_leader gauge\ngossamer_raft_leader %" PRIu64 "\n"
                    "# HELP gossamer_raft_is_leader 1 if this member leads.\n"
                    "# TYPE gossamer_raft_is_leader gauge\ngossamer_raft_is_leader %d\n"
                    "# HELP gossamer_raft_commit_index Highest committed log index.\n"
                    "# TYPE gossamer_raft_commit_index gauge\n"
                    "gossamer_raft_commit_index %" PRIu64 "\n"
                    "# HELP gossamer_raft_applied_index Highest applied log index.\n"
                    "# TYPE gossamer_raft_applied_index gauge\n"
                    "gossamer_raft_applied_index %" PRIu64 "\n"
                    "# HELP gossamer_raft_elections_total Elections this member started.\n"
                    "# TYPE gossamer_raft_elections_total counter\n"
                    "gossamer_raft_elections_total %" PRIu64 "\n",
                    st.term, st.lead, st.role == DS_RAFT_LEADER, st.commit,
                    ds_replica_applied(self->replica), self->elections);
}

/*  A ZMQ_STREAM socket takes exactly [id][data] per send: the head and
    the body must travel as one data frame. */
static void s_respond(ds_node_t *self, zmq_msg_t *id, int code, const char *type, const char *body,
                      size_t len)
{
    char out[256 + S_BODY_MAX];
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : "Bad Request";
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, type, len);
    if (n < 0 || (size_t)n + len > sizeof out)
        return;
    memcpy(out + n, body, len);
    zmq_send(self->http, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE);
    zmq_send(self->http, out, (size_t)n + len, 0);
    /* An empty frame closes the connection. */
    zmq_send(self->http, zmq_msg_data(id), zmq_msg_size(id), ZMQ_SNDMORE);
    zmq_send(self->http, "", 0, 0);
}

static void s_serve(ds_node_t *self, zmq_msg_t *id, const char *req, size_t len)
{
    char body[S_BODY_MAX];
    char path[128] = "";
    if (len < 5 || memcmp(req, "GET ", 4) != 0 || sscanf(req + 4, "%127s", path) != 1) {
        s_respond(self, id, 400, "text/plain", "only GET is served\n", 19);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        int n = s_metrics(self, body, sizeof body);
        s_respond(self, id, 200, "text/plain; version=0.0.4", body,
                  n < (int)sizeof body ? (size_t)n : sizeof body - 1);
    } else if (strcmp(path, "/healthz") == 0) {
        int n = snprintf(body, sizeof body, "ok role=%s leader=%" PRIu64 "\n",
                         ds_raft_role_name(self->role), self->lead);
        s_respond(self, id, 200, "text/plain", body, (size_t)n);
    } else {
        s_respond(self, id, 404, "text/plain", "try /healthz or /metrics\n", 25);
    }
}

void ds_node_http_handle(ds_node_t *self)
{
    for (unsigned i = 0; i < 64; i++) {
        zmq_msg_t id, data;
        zmq_msg_init(&id);
        zmq_msg_init(&data);
        if (zmq_msg_recv(&id, self->http, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&data);
            return;
        }
        if (zmq_msg_recv(&data, self->http, 0) >= 0 && zmq_msg_size(&data) > 0) {
            char req[1024];
            size_t len =
                zmq_msg_size(&data) < sizeof req - 1 ? zmq_msg_size(&data) : sizeof req - 1;
            memcpy(req, zmq_msg_data(&data), len);
            req[len] = '\0';
            s_serve(self, &id, req, len);
        }
        zmq_msg_close(&id);
        zmq_msg_close(&data);
    }
}
