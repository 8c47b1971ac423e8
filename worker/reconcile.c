/*  worker/reconcile.c - the worker's reconciler (see reconcile.h).

    State on disk, all under the data directory:
      desired.mp        the last desired assignment (msgpack, as on the wire),
                        written atomically (temporary file, fsync, rename)
      instances.state   one line per instance process this worker started:
                        "service version pid start_ticks port restarts
                        wall_start_ms phase", rewritten atomically after a
                        change; read back to re-adopt processes
      releases/SERVICE/VERSION/   staged release files
      logs/SERVICE/VERSION/{stdout,stderr}.log   rotated by size
      dryrun/ID/        a dry run's scratch directory: release/ (staged)
                        and logs/; deleted when the dry run ends, and at
                        start (left over from a dsworker that died)
    The worker store (storage/workerstore.h) records each staged release
    with its spec bytes and state, and the current/previous (healthy)
    version of each service: the fallback when a new version fails.
*/
#include "worker/reconcile.h"

#include "protocol/clock.h"
#include "protocol/msg.h"
#include "protocol/arena.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/error.h"
#include "protocol/log.h"
#include "worker/fsutil.h"
#include "worker/health.h"
#include "worker/scrape.h"
#include "worker/proc.h"
#include "worker/stage.h"
#include "worker/sysstat.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define S_MOD              "reconcile"
#define S_PATH             1400u /* data_dir (DS_MAX_PATH) + releases/SERVICE/VERSION/... */
#define S_REASON           1024u
#define S_BACKOFF_MIN_MS   1000u
#define S_BACKOFF_MAX_MS   30000u
#define S_BACKOFF_RESET_MS 60000u /* up this long: the next crash starts at the minimum */
#define S_ALIVE_POLL_MS    200u   /* how often live processes are checked */
#define S_ROTATE_EVERY_MS  1000u
#define S_DEFAULT_PORT_MIN 20000u
#define S_DEFAULT_PORT_MAX 29999u
#define S_DEFAULT_LOG_MAX  (10u * 1024u * 1024u)
#define S_DEFAULT_LOG_KEEP 3u
#define S_PRUNE_BATCH      16u
#define S_DRY_DIR          "dryrun"

/* ---- types ------------------------------------------------------------ */

typedef struct {
    char service[DS_MAX_NAME + 1];
    uint64_t version;
    ds_arena_t *arena; /* owns spec's strings */
    ds_spec_t spec;
    uint8_t state; /* ds_inst_state_t */
    char reason[S_REASON];
    char reldir[S_PATH];
    char workdir[S_PATH + DS_MAX_PATH + 2]; /* reldir + spec workdir */
    char logdir[S_PATH];
    char log_out[S_PATH];
    char log_err[S_PATH];
    char **envp;
    bool dry; /* a dry run's instance: never serves, never recorded */
    uint16_t port;

    pid_t pid; /* 0 = no process */
    uint64_t start_ticks;
    uint64_t started_ms;   /* this process, caller's clock */
    int64_t wall_start_ms; /* this process, CLOCK_REALTIME (persisted) */
    uint64_t created_ms;   /* the instance (healthy deadline counts from here) */
    bool killing;          /* SIGTERM sent */
    uint64_t kill_at_ms;   /* then SIGKILL */
    int last_exit;

    uint32_t restarts;
    uint32_t backoff_ms;
    uint64_t restart_at_ms;

    ds_stage_job_t *job;

    ds_probe_t probe;
    ds_scrape_t scrape; /* application metrics, when the spec names an endpoint */
    uint64_t next_probe_ms;
    ds_health_track_t track;
    uint64_t latency_us;
    char probe_why[256]; /* why the last probe failed, "" if it passed */

    bool tests_done;
    uint32_t test_idx;
    ds_cmd_t test;

    bool healthy_once; /* became RUNNING */
    bool drop;         /* remove the row at the end of the step */

    uint64_t cpu_ticks;
    uint64_t cpu_at_us;
    double cpu_pct;
    uint64_t rss_kb;
} s_inst_t;

/*  A dry run (ds_reconciler_dry_run): its instance lives outside inst[],
    so nothing about services, persistence or status ever sees it. */
typedef struct {
    uint64_t id;
    char service[DS_MAX_NAME + 1];
    char dir[S_PATH]; /* DATA/dryrun/ID */
    s_inst_t *in;     /* NULL once it ended */
    bool testing;     /* health passed: the tests run */
    bool stopping;    /* the result is known: stopping, then cleaning up */
    bool done;        /* stopped and cleaned up: the result is reported */
    bool forgotten;   /* nobody waits for it: drop it once done */
    bool passed;
    char reason[S_REASON];
} s_dry_t;

struct ds_reconciler {
    char data_dir[DS_MAX_PATH + 1];
    ds_workerstore_t *store;
    uint32_t keep;
    uint16_t port_min, port_max, port_next;
    uint64_t log_max;
    uint32_t log_keep;

    ds_arena_t *desired_arena; /* owns desired's strings and arrays */
    ds_assignment_t desired;
    bool have_desired;

    s_inst_t *inst[DS_MAX_INSTANCES];
    size_t n_inst;
    s_dry_t *dry[DS_RECONCILER_MAX_DRY_RUNS];
    size_t n_dry;

    uint64_t now_ms;
    uint64_t next_rotate_ms;
    bool dirty; /* instances.state needs rewriting */

    uint64_t cpu_busy, cpu_total;
    bool curl_init;
};

/*  The desired assignment is stored in its wire form (DS_MSG_ASSIGNMENT). */
static const ds_desc_t *s_assignment_desc(void)
{
    return ds_msg_desc(DS_MSG_ASSIGNMENT);
}

static size_t s_arena_cap(size_t len)
{
    return ds_codec_arena_cap(len, sizeof(ds_spec_t) + sizeof(ds_assigned_release_t)) + 4096u;
}

/* ---- small helpers ----------------------------------------------------- */

static bool s_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*  Writes `len` bytes to path atomically (tmp, fsync, rename). */
static int s_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[S_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return DS_EIO;
    const uint8_t *p = data;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto err;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto err;
    if (close(fd) != 0) {
        unlink(tmp);
        return DS_EIO;
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return DS_EIO;
    }
    return 0;
err:
    close(fd);
    unlink(tmp);
    return DS_EIO;
}

/*  Reads a whole file (at most max bytes) into a malloc'd buffer. */
static int s_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return errno == ENOENT ? DS_ENOTFOUND : DS_EIO;
    uint8_t *buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return DS_ENOMEM;
    }
    size_t n = fread(buf, 1, max + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max) {
        free(buf);
        return bad ? DS_EIO : DS_ETOOBIG;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static const char *s_state_name(uint8_t s)
{
    static const char *names[] = {"pending",  "staging", "starting", "running",
                                  "stopping", "stopped", "crashed",  "failed"};
    return s <= DS_INST_STATE_MAX ? names[s] : "?";
}

/* ---- instances ------------------------------------------------------------ */

static bool s_alive_state(uint8_t s)
{
    return s == DS_INST_STARTING || s == DS_INST_RUNNING || s == DS_INST_CRASHED;
}

static void s_set_state(s_inst_t *in, uint8_t state, const char *reason)
{
    if (in->state != state)
        DS_LOG(DS_LOG_INFO, S_MOD, "instance state",
               "service=%s version=%" PRIu64 " from=%s to=%s reason=%s", in->service, in->version,
               s_state_name(in->state), s_state_name(state), reason ? reason : "");
    in->state = state;
    snprintf(in->reason, sizeof in->reason, "%s", reason ? reason : "");
}

static void s_inst_free(s_inst_t *in)
{
    if (!in)
        return;
    ds_probe_abort(&in->probe);
    ds_scrape_fini(&in->scrape);
    ds_cmd_abort(&in->test);
    ds_stage_job_destroy(&in->job);
    ds_proc_env_free(in->envp);
    ds_arena_destroy(&in->arena);
    free(in);
}

/*  An instance of (service, version) with a deep copy of spec (given as
    its encoded bytes), whose release lives in `reldir` and logs in
    `logdir`; not yet in any table. */
static s_inst_t *s_inst_make(const char *service, uint64_t version, const uint8_t *spec_bytes,
                             size_t spec_len, uint64_t now_ms, const char *reldir,
                             const char *logdir)
{
    s_inst_t *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->arena = ds_arena_new(s_arena_cap(spec_len));
    if (!in->arena)
        goto err;
    ds_codec_err_t cerr;
    if (ds_codec_decode(&ds_spec_desc, spec_bytes, spec_len, &in->spec, in->arena, &cerr) != 0) {
        DS_LOG(DS_LOG_ERROR, S_MOD, "cannot decode a spec", "service=%s error=%s", service,
               cerr.text);
        goto err;
    }
    ds_spec_apply_defaults(&in->spec);
    snprintf(in->service, sizeof in->service, "%s", service);
    in->version = version;
    in->state = DS_INST_PENDING;
    in->created_ms = now_ms;
    in->backoff_ms = S_BACKOFF_MIN_MS;
    in->test.fd = -1;
    ds_probe_init(&in->probe);
    ds_scrape_init(&in->scrape);
    snprintf(in->reldir, sizeof in->reldir, "%s", reldir);
    snprintf(in->workdir, sizeof in->workdir, "%s%s%s", in->reldir,
             in->spec.workdir && in->spec.workdir[0] ? "/" : "",
             in->spec.workdir ? in->spec.workdir : "");
    snprintf(in->logdir, sizeof in->logdir, "%s", logdir);
    snprintf(in->log_out, sizeof in->log_out, "%.1380s/stdout.log", logdir);
    snprintf(in->log_err, sizeof in->log_err, "%.1380s/stderr.log", logdir);
    return in;
err:
    ds_arena_destroy(&in->arena);
    free(in);
    return NULL;
}

/*  A new instance row for (service, version) in DATA/releases/ and
    DATA/logs/. */
static s_inst_t *s_inst_new(ds_reconciler_t *self, const char *service, uint64_t version,
                            const uint8_t *spec_bytes, size_t spec_len, uint64_t now_ms)
{
    if (self->n_inst >= DS_MAX_INSTANCES)
        return NULL;
    char reldir[S_PATH], logdir[S_PATH];
    snprintf(reldir, sizeof reldir, "%s/releases/%s/%" PRIu64, self->data_dir, service, version);
    snprintf(logdir, sizeof logdir, "%s/logs/%s/%" PRIu64, self->data_dir, service, version);
    s_inst_t *in = s_inst_make(service, version, spec_bytes, spec_len, now_ms, reldir, logdir);
    if (in)
        self->inst[self->n_inst++] = in;
    return in;
}

static int s_encode_spec(const ds_spec_t *spec, ds_buf_t *buf)
{
    ds_codec_err_t cerr;
    return ds_codec_encode(&ds_spec_desc, spec, buf, &cerr);
}

static bool s_port_used(const ds_reconciler_t *self, uint16_t port)
{
    for (size_t i = 0; i < self->n_inst; i++)
        if (self->inst[i]->port == port && self->inst[i]->pid > 0)
            return true;
    for (size_t i = 0; i < self->n_dry; i++) {
        const s_inst_t *in = self->dry[i]->in;
        if (in && in->port == port && in->pid > 0)
            return true;
    }
    return false;
}

static bool s_port_free(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/*  The next free port of the range after the last one given, or 0. */
static uint16_t s_port_pick(ds_reconciler_t *self)
{
    uint32_t span = (uint32_t)self->port_max - self->port_min + 1u;
    for (uint32_t i = 0; i < span; i++) {
        uint16_t p = (uint16_t)(self->port_min + (self->port_next - self->port_min + i) % span);
        if (!s_port_used(self, p) && s_port_free(p)) {
            self->port_next = (uint16_t)(p == self->port_max ? self->port_min : p + 1);
            return p;
        }
    }
    return 0;
}

/*  The port an instance starts on: the one it had, so that a restart
    keeps its address, unless another instance or another program holds
    that port now; then the next free one of the range (a port taken
    while the instance was down must not make it crash on every restart).
    0 if the range has none. */
static uint16_t s_port_for(ds_reconciler_t *self, const s_inst_t *in)
{
    if (in->port == 0)
        return s_port_pick(self);
    if (!s_port_used(self, in->port) && s_port_free(in->port))
        return in->port;
    uint16_t port = s_port_pick(self);
    DS_LOG(DS_LOG_WARN, S_MOD, "port taken: moving the instance",
           "service=%s version=%" PRIu64 " port=%u new_port=%u", in->service, in->version,
           (unsigned)in->port, (unsigned)port);
    return port;
}

/*  Signals the instance's process group, but only while its pid is still
    the process we started or adopted (same start time): a pid that was
    reused by something else is never signalled. */
static void s_signal(const s_inst_t *in, int sig)
{
    ds_procstat_t st;
    if (in->pid <= 0 || ds_sysstat_proc(in->pid, &st) != 0)
        return;
    if (in->start_ticks && st.start_ticks != in->start_ticks)
        return;
    (void)ds_proc_signal(in->pid, sig);
}

/*  Reaps or checks the instance's process. Returns true when it is gone
    (then pid is 0 and last_exit holds the status, -1 if unknown). */
static bool s_proc_gone(ds_reconciler_t *self, s_inst_t *in)
{
    if (in->pid <= 0)
        return true;
    int status = 0;
    pid_t r = waitpid(in->pid, &status, WNOHANG);
    bool gone = false;
    if (r == in->pid) {
        in->last_exit = WIFEXITED(status)     ? WEXITSTATUS(status)
                        : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                              : -1;
        gone = true;
    } else if (r < 0 && errno == ECHILD) {
        /* Adopted: not our child. */
        if (!ds_sysstat_proc_alive(in->pid, in->start_ticks)) {
            in->last_exit = -1;
            gone = true;
        }
    }
    if (gone) {
        /* Whatever it started in its group goes with it (the group
           only: the pid itself may already belong to someone else). */
        (void)kill(-in->pid, SIGKILL);
        in->pid = 0;
        in->killing = false;
        in->rss_kb = 0;
        in->cpu_pct = 0;
        self->dirty = true;
    }
    return gone;
}

/*  Starts stopping the process: SIGTERM now, SIGKILL after the grace. */
static void s_kill(s_inst_t *in, uint64_t now_ms)
{
    ds_probe_abort(&in->probe);
    ds_cmd_abort(&in->test);
    if (in->pid <= 0 || in->killing)
        return;
    DS_LOG(DS_LOG_INFO, S_MOD, "stopping instance", "service=%s version=%" PRIu64 " pid=%ld",
           in->service, in->version, (long)in->pid);
    s_signal(in, SIGTERM);
    in->killing = true;
    in->kill_at_ms = now_ms + in->spec.stop_grace_ms;
}

static void s_kill_tick(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms)
{
    if (in->pid <= 0 || s_proc_gone(self, in))
        return;
    if (in->killing && now_ms >= in->kill_at_ms) {
        DS_LOG(DS_LOG_WARN, S_MOD, "stop grace over: SIGKILL",
               "service=%s version=%" PRIu64 " pid=%ld", in->service, in->version, (long)in->pid);
        s_signal(in, SIGKILL);
        in->kill_at_ms = now_ms + 1000u; /* and again, should it survive */
    }
}

static void s_store_state(ds_reconciler_t *self, s_inst_t *in, ds_wrel_state_t st)
{
    if (in->dry)
        return; /* a dry run is no release of the store */
    int rc = ds_workerstore_release_set_state(self->store, in->service, in->version, st);
    if (rc && rc != DS_ENOTFOUND)
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot record the release state",
               "service=%s version=%" PRIu64 " error=%s", in->service, in->version,
               ds_workerstore_errmsg(self->store));
}

/*  Records a staged release in the store and prunes old ones (files
    included), keeping those any instance uses. */
static void s_record_staged(ds_reconciler_t *self, s_inst_t *in)
{
    ds_buf_t buf = {0};
    if (s_encode_spec(&in->spec, &buf) == 0) {
        int rc = ds_workerstore_release_put(self->store, in->service, in->version, DS_WREL_STAGED,
                                            buf.data, buf.len);
        if (rc)
            DS_LOG(DS_LOG_WARN, S_MOD, "cannot record the staged release",
                   "service=%s version=%" PRIu64 " error=%s", in->service, in->version,
                   ds_workerstore_errmsg(self->store));
    }
    ds_buf_free(&buf);
    uint64_t pruned[S_PRUNE_BATCH];
    size_t n = 0;
    for (int round = 0; round < 64; round++) {
        if (ds_workerstore_prune(self->store, in->service, self->keep, pruned, S_PRUNE_BATCH, &n) !=
            0)
            break;
        for (size_t i = 0; i < n; i++) {
            bool used = false;
            for (size_t j = 0; j < self->n_inst; j++)
                used = used || (strcmp(self->inst[j]->service, in->service) == 0 &&
                                self->inst[j]->version == pruned[i]);
            if (used)
                continue;
            char dir[S_PATH];
            snprintf(dir, sizeof dir, "%s/releases/%s/%" PRIu64, self->data_dir, in->service,
                     pruned[i]);
            (void)ds_stage_rmtree(dir);
            snprintf(dir, sizeof dir, "%s/logs/%s/%" PRIu64, self->data_dir, in->service,
                     pruned[i]);
            (void)ds_stage_rmtree(dir);
            DS_LOG(DS_LOG_INFO, S_MOD, "pruned release", "service=%s version=%" PRIu64, in->service,
                   pruned[i]);
        }
        if (n < S_PRUNE_BATCH)
            break;
    }
}

/*  Starts the process of an instance. */
static int s_start(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms)
{
    char err[512];
    char *cmd = NULL;
    char **args = NULL;
    int rc = 0;
    if (!s_is_dir(in->workdir)) {
        snprintf(err, sizeof err, "working directory %.400s does not exist", in->workdir);
        rc = DS_ENOTFOUND;
        goto out;
    }
    in->port = s_port_for(self, in);
    if (in->port == 0) {
        snprintf(err, sizeof err, "no free port in %u-%u", (unsigned)self->port_min,
                 (unsigned)self->port_max);
        rc = DS_ELIMIT;
        goto out;
    }
    if (ds_fs_mkdir_p(in->logdir) != 0) {
        snprintf(err, sizeof err, "cannot create %.300s: %s", in->logdir, strerror(errno));
        rc = DS_EIO;
        goto out;
    }
    ds_proc_env_free(in->envp);
    in->envp = ds_proc_env_new(in->spec.env, in->spec.n_env, in->port, in->reldir, in->version);
    cmd = ds_proc_subst_port(in->spec.command, in->port);
    args = calloc((size_t)in->spec.n_args + 1u, sizeof *args);
    if (!in->envp || !cmd || !args) {
        snprintf(err, sizeof err, "out of memory");
        rc = DS_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < in->spec.n_args; i++)
        if (!(args[i] = ds_proc_subst_port(in->spec.args[i], in->port))) {
            snprintf(err, sizeof err, "out of memory");
            rc = DS_ENOMEM;
            goto out;
        }
    ds_proc_spec_t ps = {.command = cmd,
                         .args = args,
                         .n_args = in->spec.n_args,
                         .envp = in->envp,
                         .workdir = in->workdir,
                         .stdout_path = in->log_out,
                         .stderr_path = in->log_err};
    pid_t pid = 0;
    rc = ds_proc_spawn(&ps, &pid, err, sizeof err);
    if (rc)
        goto out;
    ds_procstat_t st = {0};
    /* A fresh child is always readable; keep 0 if it already vanished. */
    if (ds_sysstat_proc(pid, &st) != 0)
        st.start_ticks = 0;
    in->pid = pid;
    in->start_ticks = st.start_ticks;
    in->started_ms = now_ms;
    in->wall_start_ms = (int64_t)ds_clock_wall_ms();
    in->killing = false;
    in->cpu_ticks = st.cpu_ticks;
    in->cpu_at_us = ds_clock_mono_us();
    memset(&in->track, 0, sizeof in->track);
    in->next_probe_ms = now_ms;
    self->dirty = true;
    s_set_state(in, DS_INST_STARTING, "");
    s_store_state(self, in, DS_WREL_RUNNING);
    DS_LOG(DS_LOG_INFO, S_MOD, "started instance", "service=%s version=%" PRIu64 " pid=%ld port=%u",
           in->service, in->version, (long)pid, (unsigned)in->port);
out:
    if (rc)
        s_set_state(in, DS_INST_CRASHED, err);
    if (args)
        for (uint32_t i = 0; i < in->spec.n_args; i++)
            free(args[i]);
    free(args);
    free(cmd);
    return rc;
}

static void s_crashed(s_inst_t *in, uint64_t now_ms, const char *why)
{
    ds_probe_abort(&in->probe);
    ds_cmd_abort(&in->test);
    if (in->started_ms && now_ms - in->started_ms >= S_BACKOFF_RESET_MS)
        in->backoff_ms = S_BACKOFF_MIN_MS;
    in->restart_at_ms = now_ms + in->backoff_ms;
    in->backoff_ms =
        in->backoff_ms * 2u > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : in->backoff_ms * 2u;
    in->track.health = DS_HEALTH_UNKNOWN;
    s_set_state(in, DS_INST_CRASHED, why);
}

/*  Marks an instance failed (reason given) and stops its process. */
static void s_fail(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms, const char *reason)
{
    s_kill(in, now_ms);
    ds_stage_job_destroy(&in->job);
    s_set_state(in, DS_INST_FAILED, reason);
    s_store_state(self, in, DS_WREL_FAILED);
    DS_LOG(DS_LOG_WARN, S_MOD, "instance failed", "service=%s version=%" PRIu64 " reason=%s",
           in->service, in->version, reason);
}

/*  Stops an instance that is no longer wanted. */
static void s_stop(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms)
{
    ds_stage_job_destroy(&in->job);
    if (in->pid > 0) {
        s_kill(in, now_ms);
        if (in->state != DS_INST_FAILED)
            s_set_state(in, DS_INST_STOPPING, "");
    } else if (in->state != DS_INST_FAILED) {
        s_set_state(in, DS_INST_STOPPED, "");
    }
    if (in->state != DS_INST_FAILED)
        s_store_state(self, in, DS_WREL_STOPPED);
}

/*  Runs the next release test, or finishes a running one. Returns true
    when every test passed. */
static bool s_tests(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms)
{
    while (in->test_idx < in->spec.n_tests) {
        const ds_test_spec_t *t = &in->spec.tests[in->test_idx];
        if (in->test.pid == 0 && !in->test.done) {
            char *cmd = ds_proc_subst_port(t->command, in->port);
            char err[256];
            ds_proc_spec_t ps = {
                .command = cmd ? cmd : t->command, .envp = in->envp, .workdir = in->reldir};
            uint32_t tmo = t->timeout_ms ? t->timeout_ms : 60000u;
            int rc = ds_cmd_start(&in->test, &ps, now_ms + tmo, err, sizeof err);
            free(cmd);
            if (rc) {
                char reason[S_REASON];
                snprintf(reason, sizeof reason, "release test %s could not start: %s", t->name,
                         err);
                s_fail(self, in, now_ms, reason);
                return false;
            }
            DS_LOG(DS_LOG_INFO, S_MOD, "release test started",
                   "service=%s version=%" PRIu64 " test=%s", in->service, in->version, t->name);
        }
        if (!ds_cmd_poll(&in->test, now_ms))
            return false;
        if (in->test.timed_out || in->test.exit_code != 0) {
            char tail[600];
            char reason[S_REASON];
            ds_cmd_tail_line(&in->test, tail, sizeof tail);
            if (in->test.timed_out)
                snprintf(reason, sizeof reason, "release test %s timed out after %u ms: %s",
                         t->name, (unsigned)t->timeout_ms, tail);
            else
                snprintf(reason, sizeof reason, "release test %s failed with exit code %d: %s",
                         t->name, in->test.exit_code, tail);
            memset(&in->test, 0, sizeof in->test);
            in->test.fd = -1;
            s_fail(self, in, now_ms, reason);
            return false;
        }
        DS_LOG(DS_LOG_INFO, S_MOD, "release test passed", "service=%s version=%" PRIu64 " test=%s",
               in->service, in->version, t->name);
        memset(&in->test, 0, sizeof in->test);
        in->test.fd = -1;
        in->test_idx++;
    }
    in->tests_done = true;
    return true;
}

/*  Health probes of a live instance. */
static void s_probe(s_inst_t *in, uint64_t now_ms)
{
    const ds_health_spec_t *h = &in->spec.health;
    if (h->kind == DS_HEALTH_NONE) {
        in->track.health = DS_HEALTH_PASSING;
        return;
    }
    char why[256] = "";
    bool passed = false;
    uint64_t lat = 0;
    if (ds_probe_busy(&in->probe)) {
        if (!ds_probe_poll(&in->probe, now_ms, &passed, &lat, why, sizeof why))
            return;
    } else if (now_ms >= in->next_probe_ms) {
        in->next_probe_ms = now_ms + h->interval_ms;
        if (ds_probe_start(&in->probe, h, in->port, in->envp, in->workdir, now_ms, why,
                           sizeof why) == 0) {
            /* Loopback answers often come at once: look now. */
            if (!ds_probe_poll(&in->probe, now_ms, &passed, &lat, why, sizeof why))
                return;
        } else {
            lat = 0;
        }
    } else {
        return;
    }
    in->latency_us = lat;
    snprintf(in->probe_why, sizeof in->probe_why, "%s", passed ? "" : why);
    uint8_t before = in->track.health;
    ds_health_record(&in->track, h, passed, now_ms, in->started_ms);
    if (before != in->track.health)
        DS_LOG(DS_LOG_INFO, S_MOD, "health changed",
               "service=%s version=%" PRIu64 " health=%s why=%s", in->service, in->version,
               in->track.health == DS_HEALTH_PASSING ? "passing" : "failing", why);
}

static void s_rotate_logs(ds_reconciler_t *self, s_inst_t *in)
{
    if (ds_proc_log_rotate(in->log_out, self->log_max, self->log_keep) != 0 ||
        ds_proc_log_rotate(in->log_err, self->log_max, self->log_keep) != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot rotate logs", "service=%s version=%" PRIu64, in->service,
               in->version);
}

/*  One instance's own lifecycle (no knowledge of the others). */
/*  Staging of an instance in PENDING or STAGING: starts the job, then
    collects it. Returns 1 once the release is staged (ready to start), 0
    while it is not yet, -1 when staging failed (why in err). */
static int s_stage_step(s_inst_t *in, char *err, size_t errlen)
{
    if (in->state == DS_INST_PENDING) {
        if (ds_stage_job_start(in->spec.artifact, in->spec.sha256, in->reldir, &in->job, err,
                               errlen) != 0)
            return -1;
        s_set_state(in, DS_INST_STAGING, "");
        return 0;
    }
    int rc = 0;
    if (!in->job || !ds_stage_job_done(in->job, &rc, err, errlen))
        return 0;
    ds_stage_job_destroy(&in->job);
    return rc ? -1 : 1;
}

static void s_inst_step(ds_reconciler_t *self, s_inst_t *in, uint64_t now_ms, bool rotate)
{
    char err[DS_STAGE_REASON];
    switch (in->state) {
    case DS_INST_PENDING:
    case DS_INST_STAGING: {
        int staged = in->state == DS_INST_PENDING && s_is_dir(in->reldir)
                         ? 1 /* kept from an earlier assignment: no download */
                         : s_stage_step(in, err, sizeof err);
        if (staged < 0) {
            s_fail(self, in, now_ms, err);
        } else if (staged > 0) {
            DS_LOG(DS_LOG_INFO, S_MOD, "staged release", "service=%s version=%" PRIu64 " dir=%s",
                   in->service, in->version, in->reldir);
            s_record_staged(self, in);
            (void)s_start(self, in, now_ms);
        }
        break;
    }
    case DS_INST_STARTING:
    case DS_INST_RUNNING:
        if (s_proc_gone(self, in)) {
            char why[128];
            if (in->last_exit >= 128)
                snprintf(why, sizeof why, "killed by signal %d", in->last_exit - 128);
            else if (in->last_exit >= 0)
                snprintf(why, sizeof why, "exited with status %d", in->last_exit);
            else
                snprintf(why, sizeof why, "process disappeared");
            s_crashed(in, now_ms, why);
            break;
        }
        if (rotate)
            s_rotate_logs(self, in);
        s_probe(in, now_ms);
        ds_scrape_step(&in->scrape, &in->spec.metrics, in->port, now_ms);
        if (in->state == DS_INST_STARTING && in->track.health == DS_HEALTH_PASSING &&
            (in->tests_done || s_tests(self, in, now_ms)) && in->state == DS_INST_STARTING) {
            s_set_state(in, DS_INST_RUNNING, "");
            if (!in->healthy_once) {
                in->healthy_once = true;
                if (ds_workerstore_set_current(self->store, in->service, in->version) != 0)
                    DS_LOG(DS_LOG_WARN, S_MOD, "cannot record the current release",
                           "service=%s version=%" PRIu64 " error=%s", in->service, in->version,
                           ds_workerstore_errmsg(self->store));
            }
            self->dirty = true;
        }
        break;
    case DS_INST_CRASHED:
        if (in->pid > 0 && !s_proc_gone(self, in))
            break;
        if (now_ms >= in->restart_at_ms) {
            in->restarts++;
            DS_LOG(DS_LOG_INFO, S_MOD, "restarting instance",
                   "service=%s version=%" PRIu64 " restarts=%u", in->service, in->version,
                   in->restarts);
            (void)s_start(self, in, now_ms);
            if (in->state == DS_INST_CRASHED) /* could not start: back off again */
                s_crashed(in, now_ms, in->reason);
        }
        break;
    case DS_INST_STOPPING:
        s_kill_tick(self, in, now_ms);
        if (in->pid <= 0)
            s_set_state(in, DS_INST_STOPPED, "");
        break;
    case DS_INST_STOPPED:
    case DS_INST_FAILED:
        s_kill_tick(self, in, now_ms);
        break;
    default:
        break;
    }
}

/* ---- services ---------------------------------------------------------------- */

static const ds_assigned_release_t *s_desired_of(const ds_reconciler_t *self, const char *service)
{
    if (!self->have_desired)
        return NULL;
    for (uint32_t i = 0; i < self->desired.n_releases; i++)
        if (strcmp(self->desired.releases[i].service, service) == 0)
            return &self->desired.releases[i];
    return NULL;
}

/*  Starts the last healthy version other than `failed` when it is staged
    and nothing of the service runs. Returns true if one was started. */
static bool s_fallback(ds_reconciler_t *self, const char *service, uint64_t failed, uint64_t now_ms)
{
    uint64_t cur = 0, prev = 0;
    if (ds_workerstore_current(self->store, service, &cur, &prev) != 0)
        return false;
    uint64_t v = cur != failed ? cur : prev;
    if (v == 0 || v == failed)
        return false;
    ds_worker_release_t rel = {0};
    if (ds_workerstore_release_get(self->store, service, v, &rel) != 0)
        return false;
    s_inst_t *in = s_inst_new(self, service, v, rel.spec, rel.spec_len, now_ms);
    ds_workerstore_release_free(&rel);
    if (!in)
        return false;
    in->tests_done = true; /* it passed them when it first ran */
    DS_LOG(DS_LOG_WARN, S_MOD, "falling back to the last healthy version",
           "service=%s version=%" PRIu64 " failed=%" PRIu64, service, v, failed);
    return true;
}

/*  Makes the instances of one service converge to `want` (NULL or version
    0: run nothing). */
static void s_service_step(ds_reconciler_t *self, const char *service,
                           const ds_assigned_release_t *want, uint64_t now_ms)
{
    uint64_t v = want ? want->version : 0;
    s_inst_t *neu = NULL;
    bool old_alive = false;
    for (size_t i = 0; i < self->n_inst; i++) {
        s_inst_t *in = self->inst[i];
        if (strcmp(in->service, service) != 0 || in->drop)
            continue;
        if (v != 0 && in->version == v) {
            if (!neu || neu->state == DS_INST_FAILED)
                neu = in;
        } else if (s_alive_state(in->state) || in->state == DS_INST_PENDING ||
                   in->state == DS_INST_STAGING) {
            old_alive = true;
        }
    }

    if (v == 0) {
        for (size_t i = 0; i < self->n_inst; i++) {
            s_inst_t *in = self->inst[i];
            if (strcmp(in->service, service) != 0)
                continue;
            if (in->state != DS_INST_STOPPING && in->state != DS_INST_STOPPED)
                s_stop(self, in, now_ms);
            if (in->state == DS_INST_FAILED && in->pid <= 0)
                in->drop = true;
            /* Absent from the assignment: forget it once it stopped; an
               explicit version 0 keeps reporting "stopped". */
            if (!want && in->state == DS_INST_STOPPED)
                in->drop = true;
        }
        return;
    }

    if (!neu) {
        ds_buf_t buf = {0};
        if (s_encode_spec(&want->spec, &buf) == 0)
            neu = s_inst_new(self, service, v, buf.data, buf.len, now_ms);
        ds_buf_free(&buf);
        if (!neu) {
            DS_LOG(DS_LOG_ERROR, S_MOD, "cannot add an instance", "service=%s version=%" PRIu64,
                   service, v);
            return;
        }
    }

    if (neu->state == DS_INST_RUNNING) {
        /* The new version is healthy: the others go. */
        for (size_t i = 0; i < self->n_inst; i++) {
            s_inst_t *in = self->inst[i];
            if (in == neu || strcmp(in->service, service) != 0)
                continue;
            if (in->state == DS_INST_STOPPED || (in->state == DS_INST_FAILED && in->pid <= 0))
                in->drop = true;
            else if (in->state != DS_INST_STOPPING && in->state != DS_INST_FAILED)
                s_stop(self, in, now_ms);
        }
        return;
    }

    if (neu->state == DS_INST_FAILED) {
        if (!old_alive)
            (void)s_fallback(self, service, v, now_ms);
        return;
    }

    /* In progress: a new version that is not healthy by the deadline
       gives way to the old one, if there is one to keep or restart. */
    uint64_t deadline = neu->spec.strategy.healthy_deadline_ms;
    if (!neu->healthy_once && deadline && now_ms >= neu->created_ms + deadline) {
        uint64_t cur = 0, prev = 0;
        if (ds_workerstore_current(self->store, service, &cur, &prev) != 0)
            cur = prev = 0;
        bool can_fall_back = (cur && cur != v) || (prev && prev != v);
        if (old_alive || can_fall_back) {
            char reason[S_REASON];
            snprintf(reason, sizeof reason,
                     "not healthy within healthy_deadline_ms %" PRIu64
                     " (state %s%s%.500s; last health check: %s)",
                     deadline, s_state_name(neu->state), neu->reason[0] ? ": " : "", neu->reason,
                     neu->probe_why[0] ? neu->probe_why : "passed or none yet");
            s_fail(self, neu, now_ms, reason);
            if (!old_alive)
                (void)s_fallback(self, service, v, now_ms);
        }
    }
}

/* ---- persistence of instances --------------------------------------------------- */

static void s_save_instances(ds_reconciler_t *self)
{
    ds_buf_t buf = {0};
    char line[256];
    for (size_t i = 0; i < self->n_inst; i++) {
        const s_inst_t *in = self->inst[i];
        if (in->pid <= 0 || in->state == DS_INST_STOPPING || in->state == DS_INST_FAILED)
            continue;
        int n =
            snprintf(line, sizeof line, "%s %" PRIu64 " %ld %" PRIu64 " %u %u %" PRId64 " %c\n",
                     in->service, in->version, (long)in->pid, in->start_ticks, (unsigned)in->port,
                     in->restarts, in->wall_start_ms, in->state == DS_INST_RUNNING ? 'R' : 'S');
        if (n > 0 && (size_t)n < sizeof line && ds_buf_append(&buf, line, (size_t)n) != 0)
            break;
    }
    char path[S_PATH];
    snprintf(path, sizeof path, "%s/instances.state", self->data_dir);
    if (s_write_atomic(path, buf.data ? (const void *)buf.data : "", buf.len) != 0)
        DS_LOG(DS_LOG_ERROR, S_MOD, "cannot write the instance file", "path=%s error=%s", path,
               strerror(errno));
    else
        self->dirty = false;
    ds_buf_free(&buf);
}

/*  Re-adopts the processes listed in instances.state that still run. */
static void s_adopt(ds_reconciler_t *self, uint64_t now_ms)
{
    char path[S_PATH];
    snprintf(path, sizeof path, "%s/instances.state", self->data_dir);
    uint8_t *data = NULL;
    size_t len = 0;
    if (s_read_all(path, 1u << 20, &data, &len) != 0)
        return;
    char *save = NULL;
    int64_t wall = (int64_t)ds_clock_wall_ms();
    for (char *line = strtok_r((char *)data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char service[DS_MAX_NAME + 1];
        unsigned long long version = 0, ticks = 0;
        long pid = 0;
        unsigned port = 0, restarts = 0;
        long long wall_start = 0;
        char phase = 'S';
        if (sscanf(line, "%63s %llu %ld %llu %u %u %lld %c", service, &version, &pid, &ticks, &port,
                   &restarts, &wall_start, &phase) != 8 ||
            pid <= 0 || port == 0 || port > 65535) {
            DS_LOG(DS_LOG_WARN, S_MOD, "ignoring a bad line of the instance file", "line=%s", line);
            continue;
        }
        if (!ds_sysstat_proc_alive((pid_t)pid, ticks)) {
            DS_LOG(DS_LOG_INFO, S_MOD, "instance gone while dsworker was away",
                   "service=%s version=%llu pid=%ld", service, version, pid);
            continue;
        }
        ds_worker_release_t rel = {0};
        if (ds_workerstore_release_get(self->store, service, version, &rel) != 0) {
            DS_LOG(DS_LOG_WARN, S_MOD, "running instance without a release record: stopping it",
                   "service=%s version=%llu pid=%ld", service, version, pid);
            (void)ds_proc_signal((pid_t)pid, SIGTERM);
            continue;
        }
        s_inst_t *in = s_inst_new(self, service, version, rel.spec, rel.spec_len, now_ms);
        ds_workerstore_release_free(&rel);
        if (!in)
            continue;
        in->pid = (pid_t)pid;
        in->start_ticks = ticks;
        in->port = (uint16_t)port;
        in->restarts = restarts;
        in->wall_start_ms = wall_start;
        uint64_t age = wall > wall_start ? (uint64_t)(wall - wall_start) : 0;
        in->started_ms = now_ms > age ? now_ms - age : 0;
        in->envp = ds_proc_env_new(in->spec.env, in->spec.n_env, in->port, in->reldir, version);
        in->next_probe_ms = now_ms;
        in->cpu_at_us = ds_clock_mono_us();
        if (phase == 'R') {
            in->tests_done = true;
            in->healthy_once = true;
        }
        /* RUNNING keeps reporting running; health is probed afresh. */
        in->state = phase == 'R' ? DS_INST_RUNNING : DS_INST_STARTING;
        DS_LOG(DS_LOG_INFO, S_MOD, "re-adopted instance", "service=%s version=%llu pid=%ld port=%u",
               service, version, pid, port);
    }
    free(data);
    self->dirty = true;
}

/* ---- desired assignment --------------------------------------------------- */

static int s_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DS_MAX_NAME || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '/' || (unsigned char)s[i] < 0x21 || s[i] == 0x7f)
            return 0;
    return 1;
}

/*  Decodes `bytes` into a fresh arena and installs it as desired. */
static int s_install_desired(ds_reconciler_t *self, const uint8_t *bytes, size_t len, char *err,
                             size_t errlen)
{
    ds_arena_t *arena = ds_arena_new(s_arena_cap(len));
    if (!arena)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    ds_assignment_t a;
    ds_codec_err_t cerr;
    int rc = ds_codec_decode(s_assignment_desc(), bytes, len, &a, arena, &cerr);
    if (rc) {
        ds_arena_destroy(&arena);
        return ds_errf(err, errlen, rc, "assignment: %s", cerr.text);
    }
    ds_arena_destroy(&self->desired_arena);
    self->desired_arena = arena;
    self->desired = a;
    self->have_desired = true;
    return 0;
}

static int s_check_assignment(const ds_assignment_t *a, char *err, size_t errlen)
{
    if (a->n_releases > DS_MAX_SERVICES)
        return ds_errf(err, errlen, DS_EINVAL, "assignment: %u releases (at most %u)",
                       a->n_releases, DS_MAX_SERVICES);
    for (uint32_t i = 0; i < a->n_releases; i++) {
        const ds_assigned_release_t *r = &a->releases[i];
        if (!s_name_ok(r->service))
            return ds_errf(err, errlen, DS_EINVAL,
                           "assignment: releases[%u].service \"%s\" is not a usable name", i,
                           r->service ? r->service : "");
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(a->releases[j].service, r->service) == 0)
                return ds_errf(err, errlen, DS_EINVAL, "assignment: service %s is assigned twice",
                               r->service);
        if (r->version == 0)
            continue;
        char why[256];
        if (ds_spec_validate(&r->spec, why, sizeof why) != 0)
            return ds_errf(err, errlen, DS_EINVAL, "assignment: %s version %" PRIu64 ": %s",
                           r->service, r->version, why);
    }
    return 0;
}

int ds_reconciler_set_desired(ds_reconciler_t *self, const ds_assignment_t *desired, char *err,
                              size_t errlen)
{
    assert(self && desired);
    int rc = s_check_assignment(desired, err, errlen);
    if (rc)
        return rc;
    ds_buf_t buf = {0};
    ds_codec_err_t cerr;
    rc = ds_codec_encode(s_assignment_desc(), desired, &buf, &cerr);
    if (rc) {
        ds_buf_free(&buf);
        return ds_errf(err, errlen, DS_EINVAL, "assignment: %s", cerr.text);
    }
    char path[S_PATH];
    snprintf(path, sizeof path, "%s/desired.mp", self->data_dir);
    if (s_write_atomic(path, buf.data, buf.len) != 0) {
        rc = ds_errf(err, errlen, DS_EIO, "cannot write %s: %s", path, strerror(errno));
        goto out;
    }
    rc = s_install_desired(self, buf.data, buf.len, err, errlen);
    if (rc == 0)
        DS_LOG(DS_LOG_INFO, S_MOD, "desired assignment", "generation=%" PRIu64 " releases=%u",
               desired->generation, desired->n_releases);
out:
    ds_buf_free(&buf);
    return rc;
}

uint64_t ds_reconciler_generation(const ds_reconciler_t *self)
{
    return self->have_desired ? self->desired.generation : 0;
}

/* ---- dry runs --------------------------------------------------------------- */

static s_dry_t *s_dry_find(const ds_reconciler_t *self, uint64_t id)
{
    for (size_t i = 0; i < self->n_dry; i++)
        if (self->dry[i]->id == id)
            return self->dry[i];
    return NULL;
}

/*  The result is known: record it and start stopping the instance; the
    scratch directory goes once the process is gone. */
static void s_dry_finish(s_dry_t *d, uint64_t now_ms, bool passed, const char *reason)
{
    d->passed = passed;
    snprintf(d->reason, sizeof d->reason, "%s", reason);
    d->stopping = true;
    if (d->in) {
        ds_stage_job_destroy(&d->in->job);
        s_kill(d->in, now_ms);
    }
    DS_LOG(passed ? DS_LOG_INFO : DS_LOG_WARN, S_MOD, "dry run result",
           "id=%" PRIu64 " service=%s passed=%s reason=%s", d->id, d->service,
           passed ? "yes" : "no", d->reason);
}

/*  Stages, starts, waits for health, runs the tests. */
static void s_dry_advance(ds_reconciler_t *self, s_dry_t *d, uint64_t now_ms)
{
    s_inst_t *in = d->in;
    char err[DS_STAGE_REASON], reason[S_REASON];
    switch (in->state) {
    case DS_INST_PENDING:
    case DS_INST_STAGING: {
        if (in->state == DS_INST_PENDING && ds_fs_mkdir_p(d->dir) != 0) {
            snprintf(reason, sizeof reason, "cannot create %.300s: %s", d->dir, strerror(errno));
            s_dry_finish(d, now_ms, false, reason);
            break;
        }
        int staged = s_stage_step(in, err, sizeof err);
        if (staged < 0) {
            s_dry_finish(d, now_ms, false, err);
            break;
        }
        if (staged > 0 && s_start(self, in, now_ms) != 0) {
            snprintf(reason, sizeof reason, "could not start: %.900s", in->reason);
            s_dry_finish(d, now_ms, false, reason);
        }
        break;
    }
    case DS_INST_STARTING:
        if (s_proc_gone(self, in)) {
            if (in->last_exit >= 128)
                snprintf(reason, sizeof reason, "the process was killed by signal %d %s",
                         in->last_exit - 128,
                         d->testing ? "during its tests" : "before it was healthy");
            else
                snprintf(reason, sizeof reason, "the process exited with status %d %s",
                         in->last_exit, d->testing ? "during its tests" : "before it was healthy");
            s_dry_finish(d, now_ms, false, reason);
            break;
        }
        if (!d->testing) {
            s_probe(in, now_ms);
            if (in->track.health == DS_HEALTH_PASSING) {
                d->testing = true;
                in->healthy_once = true; /* the deadline is met */
                DS_LOG(DS_LOG_INFO, S_MOD, "dry run healthy", "id=%" PRIu64 " service=%s tests=%u",
                       d->id, d->service, in->spec.n_tests);
            } else if (now_ms >= in->created_ms + in->spec.strategy.healthy_deadline_ms) {
                snprintf(reason, sizeof reason,
                         "not healthy within healthy_deadline_ms %" PRIu64
                         " (last health check: %.600s)",
                         in->spec.strategy.healthy_deadline_ms,
                         in->probe_why[0] ? in->probe_why : "passed or none yet");
                s_dry_finish(d, now_ms, false, reason);
                break;
            }
        }
        if (!d->testing)
            break;
        if (s_tests(self, in, now_ms)) {
            snprintf(reason, sizeof reason, "healthy; %u test%s passed", in->spec.n_tests,
                     in->spec.n_tests == 1 ? "" : "s");
            s_dry_finish(d, now_ms, true, reason);
        } else if (in->state == DS_INST_FAILED) {
            s_dry_finish(d, now_ms, false, in->reason);
        }
        break;
    default: /* FAILED by a test: s_tests reported it above */
        break;
    }
}

static void s_dry_step(ds_reconciler_t *self, s_dry_t *d, uint64_t now_ms)
{
    if (d->done)
        return;
    if (!d->stopping)
        s_dry_advance(self, d, now_ms);
    if (!d->stopping)
        return;
    s_inst_t *in = d->in;
    if (in && in->pid > 0) {
        s_kill_tick(self, in, now_ms);
        if (in->pid > 0)
            return;
    }
    s_inst_free(in);
    d->in = NULL;
    if (ds_stage_rmtree(d->dir) != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot remove a dry run's directory", "id=%" PRIu64 " dir=%s",
               d->id, d->dir);
    d->done = true;
    DS_LOG(DS_LOG_INFO, S_MOD, "dry run done", "id=%" PRIu64 " service=%s passed=%s", d->id,
           d->service, d->passed ? "yes" : "no");
}

/*  Ends a dry run at once: SIGKILL, reap, delete its directory. */
static void s_dry_free(ds_reconciler_t *self, s_dry_t *d)
{
    s_inst_t *in = d->in;
    if (in) {
        ds_stage_job_destroy(&in->job);
        ds_cmd_abort(&in->test);
        if (in->pid > 0) {
            s_signal(in, SIGKILL);
            for (int i = 0; i < 500 && !s_proc_gone(self, in); i++) {
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
            }
        }
        s_inst_free(in);
        (void)ds_stage_rmtree(d->dir);
    }
    free(d);
}

int ds_reconciler_dry_run(ds_reconciler_t *self, uint64_t id, const char *service,
                          const ds_spec_t *spec, char *err, size_t errlen)
{
    assert(self && service && spec);
    if (s_dry_find(self, id))
        return 0;
    if (self->n_dry >= DS_RECONCILER_MAX_DRY_RUNS)
        return ds_errf(err, errlen, DS_ELIMIT,
                       "dry run %" PRIu64 " of %s: %u dry runs are under way already", id, service,
                       DS_RECONCILER_MAX_DRY_RUNS);
    s_dry_t *d = calloc(1, sizeof *d);
    if (!d)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    d->id = id;
    snprintf(d->service, sizeof d->service, "%s", service);
    snprintf(d->dir, sizeof d->dir, "%s/%s/%" PRIu64, self->data_dir, S_DRY_DIR, id);
    self->dry[self->n_dry++] = d;

    /* A refused one is reported like any failure, so the leader hears. */
    int rc = 0;
    char why[512] = "";
    ds_spec_t checked = *spec;
    ds_spec_apply_defaults(&checked);
    if (!s_name_ok(service)) {
        rc =
            ds_errf(why, sizeof why, DS_EINVAL, "\"%.100s\" is not a usable service name", service);
    } else if (ds_spec_validate(&checked, why, sizeof why) != 0) {
        rc = DS_EINVAL;
    } else {
        ds_buf_t buf = {0};
        char reldir[S_PATH], logdir[S_PATH];
        snprintf(reldir, sizeof reldir, "%.1380s/release", d->dir);
        snprintf(logdir, sizeof logdir, "%.1380s/logs", d->dir);
        if (s_encode_spec(&checked, &buf) == 0)
            d->in = s_inst_make(service, 0, buf.data, buf.len, self->now_ms, reldir, logdir);
        ds_buf_free(&buf);
        if (!d->in)
            rc = ds_errf(why, sizeof why, DS_ENOMEM, "out of memory");
        else
            d->in->dry = true;
    }
    if (rc != 0) {
        char reason[S_REASON];
        snprintf(reason, sizeof reason, "refused by the worker: %s", why);
        s_dry_finish(d, self->now_ms, false, reason);
        d->done = true;
        return ds_errf(err, errlen, rc, "dry run %" PRIu64 " of %s: %s", id, service, why);
    }
    DS_LOG(DS_LOG_INFO, S_MOD, "dry run", "id=%" PRIu64 " service=%s dir=%s", id, service, d->dir);
    return 0;
}

void ds_reconciler_dry_run_keep(ds_reconciler_t *self, const uint64_t *ids, size_t n)
{
    assert(self && (ids || n == 0));
    for (size_t i = 0; i < self->n_dry; i++) {
        s_dry_t *d = self->dry[i];
        bool kept = false;
        for (size_t k = 0; k < n && !kept; k++)
            kept = ids[k] == d->id;
        if (kept || d->forgotten)
            continue;
        d->forgotten = true;
        if (!d->stopping)
            s_dry_finish(d, self->now_ms, false, "cancelled: the leader no longer waits for it");
    }
}

size_t ds_reconciler_dry_run_results(const ds_reconciler_t *self, ds_dry_run_result_t *out,
                                     size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_dry && n < cap; i++) {
        s_dry_t *d = self->dry[i];
        if (!d->done || d->forgotten)
            continue;
        out[n++] = (ds_dry_run_result_t){d->id, d->service, d->passed, d->reason};
    }
    return n;
}

/*  Steps every dry run and drops those done and forgotten. */
static void s_dry_runs_step(ds_reconciler_t *self, uint64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < self->n_dry; i++) {
        s_dry_t *d = self->dry[i];
        s_dry_step(self, d, now_ms);
        if (d->done && d->forgotten)
            s_dry_free(self, d);
        else
            self->dry[w++] = d;
    }
    self->n_dry = w;
}

/* ---- lifecycle ------------------------------------------------------------- */

int ds_reconciler_new(const ds_reconciler_opts_t *opts, uint64_t now_ms, ds_reconciler_t **out,
                      char *err, size_t errlen)
{
    assert(opts && out);
    if (!opts->data_dir || !opts->data_dir[0] || strlen(opts->data_dir) > DS_MAX_PATH)
        return ds_errf(err, errlen, DS_EINVAL, "reconciler: data_dir must be 1..%u bytes",
                       DS_MAX_PATH);
    if (!opts->store)
        return ds_errf(err, errlen, DS_EINVAL, "reconciler: no worker store");
    uint16_t pmin = opts->port_min, pmax = opts->port_max;
    if (pmin == 0 && pmax == 0) {
        pmin = S_DEFAULT_PORT_MIN;
        pmax = S_DEFAULT_PORT_MAX;
    }
    if (pmin == 0 || pmax < pmin)
        return ds_errf(err, errlen, DS_EINVAL, "reconciler: port range %u-%u is empty",
                       (unsigned)pmin, (unsigned)pmax);
    ds_reconciler_t *self = calloc(1, sizeof *self);
    if (!self)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory");
    snprintf(self->data_dir, sizeof self->data_dir, "%s", opts->data_dir);
    self->store = opts->store;
    self->keep = opts->keep_releases ? opts->keep_releases : DS_WORKERSTORE_KEEP;
    self->port_min = pmin;
    self->port_max = pmax;
    self->port_next = pmin;
    self->log_max = opts->log_max_bytes ? opts->log_max_bytes : S_DEFAULT_LOG_MAX;
    self->log_keep = opts->log_keep ? opts->log_keep : S_DEFAULT_LOG_KEEP;
    self->now_ms = now_ms;
    int rc = 0;
    char path[S_PATH];
    snprintf(path, sizeof path, "%s/releases", self->data_dir);
    if (ds_fs_mkdir_p(path) != 0) {
        rc = ds_errf(err, errlen, DS_EIO, "cannot create %s: %s", path, strerror(errno));
        goto err;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = ds_errf(err, errlen, DS_EIO, "cannot initialise libcurl");
        goto err;
    }
    self->curl_init = true;
    /* Dry runs of a dsworker that died: their results went nowhere. */
    snprintf(path, sizeof path, "%s/%s", self->data_dir, S_DRY_DIR);
    if (ds_stage_rmtree(path) != 0)
        DS_LOG(DS_LOG_WARN, S_MOD, "cannot remove old dry runs", "dir=%s", path);
    snprintf(path, sizeof path, "%s/desired.mp", self->data_dir);
    uint8_t *bytes = NULL;
    size_t len = 0;
    rc = s_read_all(path, DS_MAX_MSG_SIZE, &bytes, &len);
    if (rc == 0) {
        rc = s_install_desired(self, bytes, len, err, errlen);
        free(bytes);
        if (rc) {
            rc = ds_errf(err, errlen, DS_ECORRUPT,
                         "%s is damaged (%s): remove it to start "
                         "without an assignment",
                         path, ds_strerror(rc));
            goto err;
        }
        DS_LOG(DS_LOG_INFO, S_MOD, "loaded the last desired assignment",
               "generation=%" PRIu64 " releases=%u", self->desired.generation,
               self->desired.n_releases);
    } else if (rc != DS_ENOTFOUND) {
        rc = ds_errf(err, errlen, rc, "cannot read %s: %s", path, ds_strerror(rc));
        goto err;
    }
    rc = 0;
    if (ds_sysstat_cpu(&self->cpu_busy, &self->cpu_total) != 0)
        self->cpu_busy = self->cpu_total = 0;
    s_adopt(self, now_ms);
    /* Restart what should run before any coordinator is reached. */
    ds_reconciler_step(self, now_ms);
    *out = self;
    return 0;
err:
    ds_reconciler_destroy(&self, DS_ON_EXIT_KEEP);
    return rc;
}

void ds_reconciler_destroy(ds_reconciler_t **self_p, ds_on_exit_t on_exit)
{
    if (!self_p || !*self_p)
        return;
    ds_reconciler_t *self = *self_p;
    if (on_exit == DS_ON_EXIT_STOP) {
        uint64_t grace = 0;
        for (size_t i = 0; i < self->n_inst; i++) {
            s_inst_t *in = self->inst[i];
            if (in->pid > 0) {
                s_kill(in, 0);
                in->kill_at_ms = in->spec.stop_grace_ms;
                if (in->spec.stop_grace_ms > grace)
                    grace = in->spec.stop_grace_ms;
            }
        }
        /* Bounded by the longest grace, then SIGKILL. */
        for (uint64_t t = 0;; t += 10) {
            bool any = false;
            for (size_t i = 0; i < self->n_inst; i++) {
                s_inst_t *in = self->inst[i];
                if (in->pid > 0 && !s_proc_gone(self, in)) {
                    any = true;
                    if (t >= in->kill_at_ms)
                        s_signal(in, SIGKILL);
                }
            }
            if (!any || t > grace + 5000u)
                break;
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < self->n_inst; i++)
            if (self->inst[i]->state != DS_INST_FAILED)
                s_store_state(self, self->inst[i], DS_WREL_STOPPED);
    } else {
        /* Leave every process a restarted dsworker can adopt; finish
           stops that were under way. */
        for (size_t i = 0; i < self->n_inst; i++) {
            s_inst_t *in = self->inst[i];
            if (in->pid > 0 && (in->state == DS_INST_STOPPING || in->state == DS_INST_FAILED))
                s_signal(in, SIGKILL);
        }
    }
    /* A dry run never outlives dsworker: nothing could adopt it. */
    for (size_t i = 0; i < self->n_dry; i++)
        s_dry_free(self, self->dry[i]);
    self->n_dry = 0;
    s_save_instances(self);
    for (size_t i = 0; i < self->n_inst; i++)
        s_inst_free(self->inst[i]);
    ds_arena_destroy(&self->desired_arena);
    if (self->curl_init)
        curl_global_cleanup();
    free(self);
    *self_p = NULL;
}

/* ---- the step ------------------------------------------------------------- */

void ds_reconciler_step(ds_reconciler_t *self, uint64_t now_ms)
{
    assert(self);
    self->now_ms = now_ms;
    bool rotate = now_ms >= self->next_rotate_ms;
    if (rotate)
        self->next_rotate_ms = now_ms + S_ROTATE_EVERY_MS;

    /* Each instance's own lifecycle first (reap, probe, stage, restart). */
    size_t n = self->n_inst;
    for (size_t i = 0; i < n; i++)
        s_inst_step(self, self->inst[i], now_ms, rotate);

    /* Then every service towards what is desired. */
    if (self->have_desired)
        for (uint32_t i = 0; i < self->desired.n_releases; i++) {
            const ds_assigned_release_t *r = &self->desired.releases[i];
            s_service_step(self, r->service, r, now_ms);
        }
    for (size_t i = 0; i < self->n_inst; i++) {
        const char *svc = self->inst[i]->service;
        if (s_desired_of(self, svc))
            continue;
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen = seen || strcmp(self->inst[j]->service, svc) == 0;
        if (!seen)
            s_service_step(self, svc, NULL, now_ms);
    }

    /* New rows start at once (stage or spawn in this step). */
    for (size_t i = n; i < self->n_inst; i++)
        s_inst_step(self, self->inst[i], now_ms, false);

    /* Forget rows that are done. */
    size_t w = 0;
    for (size_t i = 0; i < self->n_inst; i++) {
        s_inst_t *in = self->inst[i];
        if (in->drop && in->pid <= 0) {
            s_inst_free(in);
            self->dirty = true;
        } else {
            self->inst[w++] = in;
        }
    }
    self->n_inst = w;
    if (self->dirty)
        s_save_instances(self);
    s_dry_runs_step(self, now_ms);
}

/*  Lowers *wake to the next time `in` needs a step (never before now). */
static void s_inst_wake(const s_inst_t *in, uint64_t now, uint64_t *wake)
{
#define S_AT(t)                                                                                    \
    do {                                                                                           \
        uint64_t t_ = (t);                                                                         \
        if (t_ < *wake)                                                                            \
            *wake = t_ < now ? now : t_;                                                           \
    } while (0)
    if (in->state == DS_INST_PENDING)
        S_AT(now);
    if (in->job)
        S_AT(now + 100u);
    if (in->pid > 0)
        S_AT(now + S_ALIVE_POLL_MS);
    if (in->killing)
        S_AT(in->kill_at_ms);
    if (in->state == DS_INST_CRASHED)
        S_AT(in->restart_at_ms);
    if ((in->state == DS_INST_STARTING || in->state == DS_INST_RUNNING) && in->pid > 0) {
        if (ds_probe_busy(&in->probe))
            S_AT(in->probe.phase == DS_PROBE_CONNECTING ? now + 10u : in->probe.deadline_ms);
        else if (in->spec.health.kind != DS_HEALTH_NONE)
            S_AT(in->next_probe_ms);
        if (in->test.pid > 0)
            S_AT(in->test.deadline_ms);
        if (in->spec.metrics.path[0] && !in->dry)
            S_AT(ds_scrape_next_wake(&in->scrape));
        if (in->state == DS_INST_STARTING && in->track.health == DS_HEALTH_PASSING)
            S_AT(now + 50u);
    }
    /* The healthy deadline, until it passed (then it has been acted on;
       waking for it again would spin) or the instance was once healthy. */
    uint64_t deadline = in->created_ms + in->spec.strategy.healthy_deadline_ms;
    if ((in->state == DS_INST_STARTING || in->state == DS_INST_PENDING ||
         in->state == DS_INST_STAGING) &&
        !in->healthy_once && deadline > now)
        S_AT(deadline);
#undef S_AT
}

uint64_t ds_reconciler_next_wake(const ds_reconciler_t *self)
{
    uint64_t now = self->now_ms;
    uint64_t wake = now + 1000u;
    for (size_t i = 0; i < self->n_inst; i++)
        s_inst_wake(self->inst[i], now, &wake);
    for (size_t i = 0; i < self->n_dry; i++)
        if (self->dry[i]->in)
            s_inst_wake(self->dry[i]->in, now, &wake);
    return wake;
}

/*  Adds the fds of `in` to fds[] (up to cap); returns the new count. */
static size_t s_inst_fds(const s_inst_t *in, int *fds, size_t cap, size_t n)
{
    int f[4] = {in->job ? ds_stage_job_fd(in->job) : -1, ds_probe_fd(&in->probe),
                in->test.pid > 0 ? in->test.fd : -1, ds_scrape_fd(&in->scrape)};
    for (int k = 0; k < 4; k++) {
        if (f[k] < 0)
            continue;
        if (n < cap)
            fds[n] = f[k];
        n++;
    }
    return n;
}

size_t ds_reconciler_fds(const ds_reconciler_t *self, int *fds, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n_inst; i++)
        n = s_inst_fds(self->inst[i], fds, cap, n);
    for (size_t i = 0; i < self->n_dry; i++)
        if (self->dry[i]->in)
            n = s_inst_fds(self->dry[i]->in, fds, cap, n);
    return n;
}

size_t ds_reconciler_status(ds_reconciler_t *self, ds_instance_status_t *out, size_t cap)
{
    uint64_t now_us = ds_clock_mono_us();
    uint64_t hz = ds_sysstat_ticks_per_sec();
    size_t n = 0;
    for (size_t i = 0; i < self->n_inst && n < cap; i++) {
        s_inst_t *in = self->inst[i];
        if (in->pid > 0) {
            ds_procstat_t st;
            if (ds_sysstat_proc(in->pid, &st) == 0 && st.start_ticks == in->start_ticks) {
                uint64_t dt_us = now_us - in->cpu_at_us;
                if (dt_us > 0 && st.cpu_ticks >= in->cpu_ticks && in->cpu_at_us)
                    in->cpu_pct = (double)(st.cpu_ticks - in->cpu_ticks) * 1e6 / (double)hz /
                                  (double)dt_us * 100.0;
                in->cpu_ticks = st.cpu_ticks;
                in->cpu_at_us = now_us;
                in->rss_kb = st.rss_kb;
            }
        }
        ds_instance_status_t *s = &out[n++];
        memset(s, 0, sizeof *s);
        s->service = in->service;
        s->version = in->version;
        s->state = in->state;
        s->health = in->track.health;
        if (in->state != DS_INST_STARTING && in->state != DS_INST_RUNNING)
            s->health = in->state == DS_INST_FAILED && in->track.health == DS_HEALTH_FAILING
                            ? DS_HEALTH_FAILING
                            : DS_HEALTH_UNKNOWN;
        s->pid = in->pid > 0 ? (uint32_t)in->pid : 0;
        s->uptime_ms =
            in->pid > 0 && self->now_ms > in->started_ms ? self->now_ms - in->started_ms : 0;
        s->restarts = in->restarts;
        s->cpu_pct = in->cpu_pct;
        s->rss_kb = in->rss_kb;
        s->probe_latency_us = in->latency_us;
        s->consecutive_failures = in->track.fails;
        s->reason = in->reason;
        s->port = in->pid > 0 ? in->port : 0;
        s->n_metrics = in->scrape.have ? in->scrape.metrics.n : 0;
        s->metrics = in->scrape.have ? in->scrape.metrics.metrics : NULL;
    }
    return n;
}

void ds_reconciler_telemetry(ds_reconciler_t *self, ds_worker_telemetry_t *out)
{
    memset(out, 0, sizeof *out);
    if (ds_sysstat_load(&out->load1) != 0)
        out->load1 = 0;
    uint64_t busy = 0, total = 0;
    if (ds_sysstat_cpu(&busy, &total) == 0) {
        if (total > self->cpu_total && busy >= self->cpu_busy)
            out->cpu_pct =
                (double)(busy - self->cpu_busy) * 100.0 / (double)(total - self->cpu_total);
        self->cpu_busy = busy;
        self->cpu_total = total;
    }
    if (ds_sysstat_mem(&out->mem_used_kb, &out->mem_total_kb) != 0)
        out->mem_used_kb = out->mem_total_kb = 0;
    if (ds_sysstat_disk_free(self->data_dir, &out->disk_free_kb) != 0)
        out->disk_free_kb = 0;
}
