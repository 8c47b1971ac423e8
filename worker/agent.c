/*  worker/agent.c - dsworker's main loop; see agent.h. */
#include "worker/agent.h"

#include "protocol/clock.h"
#include "protocol/error.h"
#include "protocol/keys.h"
#include "protocol/log.h"
#include "protocol/transport.h"
#include "storage/workerstore.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define S_MOD       "agent"
#define S_MAX_SWVER 64u

struct ds_agent {
    ds_worker_config_t cfg;
    char software_version[S_MAX_SWVER + 1];
    ds_workerstore_t *store;
    ds_worker_identity_t id;
    ds_reconciler_t *rec;
    ds_session_t *session;
    ds_transport_security_t *sec; /* CURVE client; NULL with --insecure */
    ds_kv_t labels[DS_MAX_LABELS];
    ds_instance_status_t status[DS_MAX_INSTANCES];
    ds_dry_run_result_t dry[DS_MAX_DRY_RUNS];
    int fds[DS_AGENT_MAX_FDS];
    zmq_pollitem_t items[DS_AGENT_MAX_FDS + 1];
};

/*  What the machine offers, for the JOIN; a reading that fails is 0. */
static ds_resources_t s_resources(const char *data_dir)
{
    ds_resources_t r = {0, 0, 0};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    struct statvfs vfs;
    if (cpus > 0)
        r.cpus = (uint32_t)cpus;
    if (pages > 0 && page > 0)
        r.memory_kb = (uint64_t)pages * (uint64_t)page / 1024u;
    if (statvfs(data_dir, &vfs) == 0)
        r.disk_kb = (uint64_t)vfs.f_blocks * (uint64_t)vfs.f_frsize / 1024u;
    return r;
}

/* ---- session hooks: the reconciler seen from the session ------------- */

static uint64_t s_hook_generation(void *ctx)
{
    ds_agent_t *self = ctx;
    return ds_reconciler_generation(self->rec);
}

static void s_hook_report(void *ctx, ds_heartbeat_t *hb)
{
    ds_agent_t *self = ctx;
    ds_reconciler_telemetry(self->rec, &hb->telemetry);
    size_t n = ds_reconciler_status(self->rec, self->status, DS_MAX_INSTANCES);
    hb->n_instances = (uint32_t)(n < DS_MAX_INSTANCES ? n : DS_MAX_INSTANCES);
    hb->instances = self->status;
    hb->n_dry_runs = (uint32_t)ds_reconciler_dry_run_results(self->rec, self->dry, DS_MAX_DRY_RUNS);
    hb->dry_runs = self->dry;
}

static void s_hook_dry_runs(void *ctx, const ds_dry_run_job_t *jobs, uint32_t n)
{
    ds_agent_t *self = ctx;
    uint64_t ids[DS_MAX_DRY_RUNS] = {0};
    n = n < DS_MAX_DRY_RUNS ? n : DS_MAX_DRY_RUNS;
    for (uint32_t i = 0; i < n; i++)
        ids[i] = jobs[i].id;
    /* Forget first: a cancelled one frees its slot for a new one. */
    ds_reconciler_dry_run_keep(self->rec, ids, n);
    for (uint32_t i = 0; i < n; i++) {
        char err[512] = "";
        int rc = ds_reconciler_dry_run(self->rec, jobs[i].id, jobs[i].service, &jobs[i].spec, err,
                                       sizeof err);
        if (rc != 0)
            DS_LOG(rc == DS_ELIMIT ? DS_LOG_DEBUG : DS_LOG_WARN, S_MOD, "dry run not started",
                   "id=%" PRIu64 " service=%s error=%s", jobs[i].id, jobs[i].service, err);
    }
}

static int s_hook_apply(void *ctx, const ds_assignment_t *a, char *err, size_t errlen)
{
    ds_agent_t *self = ctx;
    return ds_reconciler_set_desired(self->rec, a, err, errlen);
}

/* ---- construction ------------------------------------------------------ */

static int s_open_store(ds_agent_t *self, char *err, size_t errlen)
{
    char why[512] = "";
    int rc = ds_workerstore_open(&self->store, self->cfg.data, NULL, why, sizeof why);
    if (rc != 0)
        return ds_errf(err, errlen, rc,
                       "cannot open the worker store in %s: %s (check --data: its parent must "
                       "exist and it must not be group- or world-writable)",
                       self->cfg.data, why);
    rc = ds_workerstore_identity(self->store, self->cfg.name, &self->id);
    if (rc != 0)
        return ds_errf(err, errlen, rc, "cannot load the worker identity from %s: %s (%s)",
                       self->cfg.data, ds_workerstore_errmsg(self->store), ds_strerror(rc));
    return 0;
}

static int s_start_reconciler(ds_agent_t *self, char *err, size_t errlen)
{
    ds_reconciler_opts_t ro = {
        .data_dir = self->cfg.data,
        .store = self->store,
        .keep_releases = 0,
        .port_min = self->cfg.port_min,
        .port_max = self->cfg.port_max,
        .log_max_bytes = 0,
        .log_keep = 0,
    };
    char why[512] = "";
    int rc = ds_reconciler_new(&ro, ds_clock_mono_ms(), &self->rec, why, sizeof why);
    if (rc != 0)
        return ds_errf(err, errlen, rc, "cannot start the reconciler: %s", why);
    return 0;
}

/*  CURVE (docs/security.md): this worker's key pair, DATA/worker.key and
    DATA/worker.key_secret (0600), made on first boot and reused, and the
    coordinators' public key from --cluster-key. */
static int s_open_security(ds_agent_t *self, char *err, size_t errlen)
{
    if (self->cfg.insecure) {
        DS_LOG(DS_LOG_WARN, "auth", "INSECURE: CURVE is off",
               "detail=\"plain ZeroMQ to the coordinators; for a local experiment only (use "
               "--cluster-key FILE)\"");
        return 0;
    }
    char path[DS_MAX_PATH + 32], server[DS_KEY_TEXT_LEN + 1], secret[DS_MAX_PATH + 40];
    snprintf(path, sizeof path, "%s/worker.key", self->cfg.data);
    snprintf(secret, sizeof secret, "%s_secret", path);
    int rc = ds_transport_curve_check(err, errlen);
    if (rc == 0 && access(secret, F_OK) != 0) {
        rc = ds_keys_generate(path, self->id.name, err, errlen);
        if (rc == 0)
            DS_LOG(DS_LOG_INFO, "auth", "generated this worker's key pair", "path=%s", path);
    }
    zcert_t *cert = NULL;
    if (rc == 0)
        rc = ds_keys_load_pair(path, &cert, err, errlen);
    if (rc == 0)
        rc = ds_keys_load_public(self->cfg.cluster_key, server, err, errlen);
    if (rc == 0)
        rc = ds_transport_security_new_client(cert, server, &self->sec, err, errlen);
    if (rc == 0) {
        char key[DS_KEY_TEXT_LEN + 1];
        ds_transport_security_key(self->sec, key);
        DS_LOG(DS_LOG_INFO, "auth", "CURVE on", "key=%s cluster_key=%s token=%s", key,
               self->cfg.cluster_key, self->cfg.token[0] ? "given" : "none");
    }
    zcert_destroy(&cert);
    return rc;
}

static int s_start_session(ds_agent_t *self, char *err, size_t errlen)
{
    const char *eps[DS_WORKER_MAX_JOIN];
    for (uint32_t i = 0; i < self->cfg.n_join; i++)
        eps[i] = self->cfg.join_list[i];
    for (uint32_t i = 0; i < self->cfg.n_labels; i++)
        self->labels[i] = (ds_kv_t){self->cfg.label_list[i].key, self->cfg.label_list[i].value};
    uint64_t wall = ds_clock_wall_us();
    ds_session_opts_t so = {
        .name = self->id.name,
        .worker_id = self->id.id,
        .endpoints = eps,
        .n_endpoints = self->cfg.n_join,
        .labels = self->labels,
        .n_labels = self->cfg.n_labels,
        .resources = s_resources(self->cfg.data),
        .software_version = self->software_version,
        .token = self->cfg.token,
        .sec = self->sec,
        .heartbeat_ms = self->cfg.heartbeat_ms,
        .seed = wall ^ ((uint64_t)getpid() << 40) ^ (uint64_t)zclock_mono(),
        .corr_start = wall,
        .hooks = {self, s_hook_generation, s_hook_report, s_hook_apply, s_hook_dry_runs},
    };
    return ds_session_new(&self->session, &so, ds_clock_mono_ms(), err, errlen);
}

int ds_agent_new(ds_agent_t **out, const ds_worker_config_t *cfg, const char *software_version,
                 char *err, size_t errlen)
{
    assert(out && cfg);
    *out = NULL;
    ds_agent_t *self = calloc(1, sizeof *self);
    if (!self)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    self->cfg = *cfg;
    snprintf(self->software_version, sizeof self->software_version, "%s",
             software_version ? software_version : "");
    int rc = s_open_store(self, err, errlen);
    if (rc != 0)
        goto err_store;
    /* The reconciler first: it resumes the last assignment before any
       coordinator answers (static stability). */
    rc = s_start_reconciler(self, err, errlen);
    if (rc != 0)
        goto err_store;
    rc = s_open_security(self, err, errlen);
    if (rc == 0)
        rc = s_start_session(self, err, errlen);
    if (rc != 0)
        goto err_rec;
    DS_LOG(DS_LOG_INFO, S_MOD, "started",
           "name=%s worker_id=%s data=%s generation=%" PRIu64 " join=%s heartbeat_ms=%" PRIu32
           " on_exit=%s",
           self->id.name, self->id.id, self->cfg.data, ds_reconciler_generation(self->rec),
           self->cfg.join, self->cfg.heartbeat_ms, self->cfg.on_exit);
    *out = self;
    return 0;
err_rec:
    /* Keep what runs: a failed start must not stop instances. */
    ds_reconciler_destroy(&self->rec, DS_ON_EXIT_KEEP);
    ds_transport_security_destroy(&self->sec);
err_store:
    ds_workerstore_destroy(&self->store);
    free(self);
    return rc;
}

void ds_agent_destroy(ds_agent_t **self_p)
{
    assert(self_p);
    ds_agent_t *self = *self_p;
    if (!self)
        return;
    ds_session_destroy(&self->session);
    ds_transport_security_destroy(&self->sec);
    ds_reconciler_destroy(&self->rec, self->cfg.on_exit_mode);
    ds_workerstore_destroy(&self->store);
    free(self);
    *self_p = NULL;
}

/* ---- the loop ------------------------------------------------------------ */

static uint32_t s_wait_ms(const ds_agent_t *self, uint64_t now, uint32_t max_wait_ms)
{
    uint64_t wake = ds_reconciler_next_wake(self->rec);
    uint64_t swake = ds_session_next_wake(self->session);
    if (swake < wake)
        wake = swake;
    if (wake <= now)
        return 0;
    return wake - now < max_wait_ms ? (uint32_t)(wake - now) : max_wait_ms;
}

int ds_agent_once(ds_agent_t *self, uint32_t max_wait_ms)
{
    assert(self);
    uint64_t now = ds_clock_mono_ms();
    size_t n = 0;
    void *sock = ds_session_socket(self->session);
    if (sock)
        self->items[n++] = (zmq_pollitem_t){.socket = sock, .events = ZMQ_POLLIN};
    size_t first_fd = n;
    size_t nfds = ds_reconciler_fds(self->rec, self->fds, DS_AGENT_MAX_FDS);
    if (nfds > DS_AGENT_MAX_FDS)
        nfds = DS_AGENT_MAX_FDS;
    for (size_t i = 0; i < nfds; i++)
        self->items[n++] = (zmq_pollitem_t){.fd = self->fds[i], .events = ZMQ_POLLIN};
    int rc = zmq_poll(self->items, (int)n, (long)s_wait_ms(self, now, max_wait_ms));
    if (rc < 0 && zmq_errno() != EINTR) {
        DS_LOG(DS_LOG_ERROR, S_MOD, "poll failed", "err=%s", zmq_strerror(zmq_errno()));
        return DS_EIO;
    }
    if (rc < 0)
        return 0; /* a signal: let the caller look at its stop flag */
    now = ds_clock_mono_ms();
    bool fd_ready = false;
    for (size_t i = first_fd; i < n && !fd_ready; i++)
        fd_ready = (self->items[i].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) != 0;
    if (fd_ready || now >= ds_reconciler_next_wake(self->rec))
        ds_reconciler_step(self->rec, now);
    ds_session_step(self->session, now);
    return 0;
}

int ds_agent_run(ds_agent_t *self, volatile sig_atomic_t *stop)
{
    assert(self && stop);
    while (!*stop) {
        int rc = ds_agent_once(self, DS_AGENT_MAX_WAIT_MS);
        if (rc != 0)
            return rc;
    }
    DS_LOG(DS_LOG_INFO, S_MOD, "stopping", "on_exit=%s generation=%" PRIu64, self->cfg.on_exit,
           ds_reconciler_generation(self->rec));
    return 0;
}

ds_session_t *ds_agent_session(ds_agent_t *self)
{
    return self->session;
}

ds_reconciler_t *ds_agent_reconciler(ds_agent_t *self)
{
    return self->rec;
}

const ds_worker_identity_t *ds_agent_identity(const ds_agent_t *self)
{
    return &self->id;
}
