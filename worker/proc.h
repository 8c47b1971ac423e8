/*  worker/proc.h - child processes: services, health commands and
    release tests.

    A child runs in its own session (setsid), so its pid is also its
    process group and a stop reaches everything it started. Every
    descriptor of dsworker but stdin/stdout/stderr is closed in the child,
    so a service never holds the worker's sockets or store. Between fork
    and exec the child calls only async-signal-safe functions (dsworker
    has other threads: ZeroMQ's, the staging thread).

    A service's stdout and stderr are files opened for appending; the
    worker rotates them by size (ds_proc_log_rotate: copy, then truncate),
    which works for instances a restarted dsworker adopted, because the
    child keeps writing to the same open file.

    A command (ds_cmd_t) is a short-lived child whose output goes to a
    pipe; the worker keeps its tail, polls the pipe, and kills the child
    when its deadline passes. Nothing here blocks, except
    ds_cmd_abort(), which waits for a SIGKILLed child.
*/
#ifndef DS_WORKER_PROC_H
#define DS_WORKER_PROC_H

#include "protocol/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DS_CMD_TAIL 2048u /* bytes of a command's output kept */

/*  What to run: `/bin/sh -c 'COMMAND "$@"' sh ARGS...`, so the command
    line is the shell's and the args are passed verbatim ("$@" only when
    there are args). A service's simple command (no ; & | < > ( ) ` or
    newline) is prefixed with `exec`, so its pid is the program's own;
    a ds_cmd_t never is (`exit 3` must stay a shell builtin). */
typedef struct {
    const char *command;
    char *const *args;
    uint32_t n_args;
    char *const *envp;       /* the complete environment, NULL-terminated */
    const char *workdir;     /* NULL = inherit */
    const char *stdout_path; /* appended to; NULL = /dev/null */
    const char *stderr_path; /* appended to; NULL = /dev/null */
} ds_proc_spec_t;

/*  Builds the environment of a release's processes: PATH and HOME of
    dsworker, then the spec's env, then PORT, DS_RELEASE_DIR and
    DS_VERSION. Returns a NULL-terminated array the caller frees with
    ds_proc_env_free(), or NULL when out of memory. */
char **ds_proc_env_new(const ds_kv_t *env, uint32_t n_env, uint16_t port, const char *release_dir,
                       uint64_t version);

/*  Frees what ds_proc_env_new() returned; accepts NULL. */
void ds_proc_env_free(char **envp);

/*  Replaces every "${PORT}" in `in` with the port. Returns a string the
    caller frees, or NULL when out of memory. */
char *ds_proc_subst_port(const char *in, uint16_t port);

/*  Starts a service. Sets *pid. Returns 0, or DS_EIO with `err` set
    (fork failed, a log file cannot be opened). A command that cannot be
    executed starts, then exits with status 127. */
int ds_proc_spawn(const ds_proc_spec_t *ps, pid_t *pid, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Sends `sig` to the process group `pid` (and to pid itself if the
    group is gone). Returns 0, or DS_ENOTFOUND when nothing received it. */
int ds_proc_signal(pid_t pid, int sig);

/*  If `path` is larger than max_bytes: path.(keep-1) -> path.keep, ...,
    path -> path.1 (copied), then path is truncated to 0. Returns 0 or
    DS_EIO. */
int ds_proc_log_rotate(const char *path, uint64_t max_bytes, uint32_t keep);

/*  A short-lived child with captured output. */
typedef struct {
    pid_t pid; /* 0 = none */
    int fd;    /* read end of its stdout+stderr; -1 once at EOF */
    uint64_t deadline_ms;
    bool done;
    bool timed_out;
    int exit_code; /* exit status, or 128 + signal */
    char tail[DS_CMD_TAIL + 1];
    size_t tail_len;
} ds_cmd_t;

/*  Starts ps (stdout/stderr paths ignored: both go to the pipe), to be
    killed at deadline_ms. Returns 0 or DS_EIO with `err` set. */
int ds_cmd_start(ds_cmd_t *c, const ds_proc_spec_t *ps, uint64_t deadline_ms, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

/*  Reads available output, reaps the child, kills it at its deadline.
    Returns true once the command is done (c->done; then c->exit_code,
    c->timed_out and c->tail are final). */
bool ds_cmd_poll(ds_cmd_t *c, uint64_t now_ms);

/*  Kills a running command (SIGKILL to its group), reaps it and closes
    its pipe. Safe on a finished or zeroed ds_cmd_t with pid 0. */
void ds_cmd_abort(ds_cmd_t *c);

/*  The tail of the output as one line (newlines shown as " | "),
    written into buf. */
void ds_cmd_tail_line(const ds_cmd_t *c, char *buf, size_t len);

#endif
