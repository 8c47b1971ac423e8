/*  worker/proc.c - spawning, signalling and reaping child processes. */
#include "worker/proc.h"

#include "worker/fsutil.h"

#include "protocol/error.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- environment and substitution --------------------------------- */

static int s_env_push(char **envp, size_t *n, const char *key, const char *value)
{
    size_t len = strlen(key) + strlen(value) + 2;
    char *kv = malloc(len);
    if (!kv)
        return DS_ENOMEM;
    snprintf(kv, len, "%s=%s", key, value);
    envp[(*n)++] = kv;
    return 0;
}

char **ds_proc_env_new(const ds_kv_t *env, uint32_t n_env, uint16_t port, const char *release_dir,
                       uint64_t version)
{
    char **envp = calloc((size_t)n_env + 6u, sizeof *envp);
    if (!envp)
        return NULL;
    size_t n = 0;
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    char num[32];
    if (s_env_push(envp, &n, "PATH", path ? path : "/usr/local/bin:/usr/bin:/bin"))
        goto err;
    if (home && s_env_push(envp, &n, "HOME", home))
        goto err;
    for (uint32_t i = 0; i < n_env; i++)
        if (s_env_push(envp, &n, env[i].key, env[i].value ? env[i].value : ""))
            goto err;
    snprintf(num, sizeof num, "%u", (unsigned)port);
    if (s_env_push(envp, &n, "PORT", num))
        goto err;
    if (s_env_push(envp, &n, "DS_RELEASE_DIR", release_dir))
        goto err;
    snprintf(num, sizeof num, "%" PRIu64, version);
    if (s_env_push(envp, &n, "DS_VERSION", num))
        goto err;
    return envp;
err:
    ds_proc_env_free(envp);
    return NULL;
}

void ds_proc_env_free(char **envp)
{
    if (!envp)
        return;
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
    free(envp);
}

char *ds_proc_subst_port(const char *in, uint16_t port)
{
    static const char key[] = "${PORT}";
    char num[8];
    snprintf(num, sizeof num, "%u", (unsigned)port);
    size_t count = 0;
    for (const char *p = strstr(in, key); p; p = strstr(p + 1, key))
        count++;
    size_t len = strlen(in) + count * strlen(num) + 1;
    char *out = malloc(len);
    if (!out)
        return NULL;
    char *o = out;
    const char *p = in;
    for (const char *hit = strstr(p, key); hit; hit = strstr(p, key)) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, num, strlen(num));
        o += strlen(num);
        p = hit + strlen(key);
    }
    strcpy(o, p);
    return out;
}

/* ---- spawning ------------------------------------------------------ */

/*  Closes every descriptor from 3 up (async-signal-safe). */
static void s_close_from_3(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        close(fd);
}

static void s_child_fail(const char *what)
{
    static const char pre[] = "dsworker: cannot start: ";
    ssize_t r = write(2, pre, sizeof pre - 1);
    r = write(2, what, strlen(what));
    r = write(2, "\n", 1);
    (void)r;
    _exit(127);
}

/*  argv for /bin/sh -c '[exec ]COMMAND "$@"' sh ARGS...; malloc'd. */
static char **s_argv_new(const ds_proc_spec_t *ps, bool allow_exec)
{
    char **argv = calloc((size_t)ps->n_args + 5u, sizeof *argv);
    if (!argv)
        return NULL;
    size_t len = strlen(ps->command) + 16;
    char *script = malloc(len);
    if (!script) {
        free(argv);
        return NULL;
    }
    /* A simple command is exec'd, so the pid is the program's own; a
       compound one (lists, pipes, redirections) runs in the shell. */
    bool simple = allow_exec && strpbrk(ps->command, ";&|<>()`\n") == NULL;
    snprintf(script, len, "%s%s%s", simple ? "exec " : "", ps->command,
             ps->n_args ? " \"$@\"" : "");
    argv[0] = "sh";
    argv[1] = "-c";
    argv[2] = script;
    argv[3] = "sh";
    for (uint32_t i = 0; i < ps->n_args; i++)
        argv[4 + i] = ps->args[i];
    return argv;
}

static void s_argv_free(char **argv)
{
    if (argv) {
        free(argv[2]);
        free(argv);
    }
}

/*  Forks and execs. out_fd >= 0: stdout and stderr of the child; else
    the files of ps (or /dev/null). */
static int s_spawn(const ds_proc_spec_t *ps, int out_fd, pid_t *pid, char *err, size_t errlen)
{
    int rc = 0;
    int fd_out = -1, fd_err = -1, fd_null = -1;
    char **argv = s_argv_new(ps, out_fd < 0);
    if (!argv)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory building the command line");
    fd_null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd_null < 0) {
        rc = ds_errf(err, errlen, DS_EIO, "cannot open /dev/null: %s", strerror(errno));
        goto out;
    }
    if (out_fd >= 0) {
        fd_out = out_fd;
        fd_err = out_fd;
    } else {
        const char *po = ps->stdout_path ? ps->stdout_path : "/dev/null";
        const char *pe = ps->stderr_path ? ps->stderr_path : "/dev/null";
        fd_out = open(po, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd_out < 0) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot open log %s: %s", po, strerror(errno));
            goto out;
        }
        fd_err = open(pe, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd_err < 0) {
            rc = ds_errf(err, errlen, DS_EIO, "cannot open log %s: %s", pe, strerror(errno));
            goto out;
        }
    }
    pid_t child = fork();
    if (child < 0) {
        rc = ds_errf(err, errlen, DS_EIO, "fork: %s", strerror(errno));
        goto out;
    }
    if (child == 0) {
        /* Only async-signal-safe calls from here to execve. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        if (dup2(fd_null, 0) < 0 || dup2(fd_out, 1) < 0 || dup2(fd_err, 2) < 0)
            _exit(127);
        s_close_from_3();
        if (ps->workdir && chdir(ps->workdir) != 0)
            s_child_fail("cannot enter the working directory");
        execve("/bin/sh", argv, ps->envp);
        s_child_fail("cannot execute /bin/sh");
    }
    *pid = child;
out:
    if (fd_null >= 0)
        close(fd_null);
    if (out_fd < 0) {
        if (fd_out >= 0)
            close(fd_out);
        if (fd_err >= 0)
            close(fd_err);
    }
    s_argv_free(argv);
    return rc;
}

int ds_proc_spawn(const ds_proc_spec_t *ps, pid_t *pid, char *err, size_t errlen)
{
    return s_spawn(ps, -1, pid, err, errlen);
}

int ds_proc_signal(pid_t pid, int sig)
{
    if (pid <= 0)
        return DS_ENOTFOUND;
    if (kill(-pid, sig) == 0)
        return 0;
    if (kill(pid, sig) == 0)
        return 0;
    return DS_ENOTFOUND;
}

/* ---- logs ------------------------------------------------------------ */

int ds_proc_log_rotate(const char *path, uint64_t max_bytes, uint32_t keep)
{
    struct stat st;
    if (stat(path, &st) != 0 || (uint64_t)st.st_size <= max_bytes)
        return 0;
    size_t len = strlen(path) + 16;
    char *a = malloc(len), *b = malloc(len);
    int rc = DS_EIO;
    if (!a || !b)
        goto out;
    if (keep == 0)
        keep = 1;
    for (uint32_t i = keep; i > 1; i--) {
        snprintf(a, len, "%s.%u", path, i - 1);
        snprintf(b, len, "%s.%u", path, i);
        if (rename(a, b) != 0 && errno != ENOENT)
            goto out;
    }
    snprintf(a, len, "%s.1", path);
    if (ds_fs_copy_file(path, a, 0640, false) != 0)
        goto out;
    /* The writer appends (O_APPEND), so it continues at the new end. */
    if (truncate(path, 0) != 0)
        goto out;
    rc = 0;
out:
    free(a);
    free(b);
    return rc;
}

/* ---- short-lived commands ------------------------------------------- */

int ds_cmd_start(ds_cmd_t *c, const ds_proc_spec_t *ps, uint64_t deadline_ms, char *err,
                 size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    int p[2];
    if (ds_fs_pipe(p) != 0)
        return ds_errf(err, errlen, DS_EIO, "pipe: %s", strerror(errno));
    int rc = s_spawn(ps, p[1], &c->pid, err, errlen);
    close(p[1]);
    if (rc) {
        close(p[0]);
        c->pid = 0;
        return rc;
    }
    c->fd = p[0];
    c->deadline_ms = deadline_ms;
    return 0;
}

static void s_cmd_read(ds_cmd_t *c)
{
    char buf[4096];
    while (c->fd >= 0) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        size_t add = (size_t)n;
        if (add >= DS_CMD_TAIL) {
            memcpy(c->tail, buf + add - DS_CMD_TAIL, DS_CMD_TAIL);
            c->tail_len = DS_CMD_TAIL;
        } else {
            if (c->tail_len + add > DS_CMD_TAIL) {
                size_t drop = c->tail_len + add - DS_CMD_TAIL;
                memmove(c->tail, c->tail + drop, c->tail_len - drop);
                c->tail_len -= drop;
            }
            memcpy(c->tail + c->tail_len, buf, add);
            c->tail_len += add;
        }
        c->tail[c->tail_len] = '\0';
    }
}

static void s_cmd_status(ds_cmd_t *c, int status)
{
    if (WIFEXITED(status))
        c->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        c->exit_code = 128 + WTERMSIG(status);
    else
        c->exit_code = 255;
}

bool ds_cmd_poll(ds_cmd_t *c, uint64_t now_ms)
{
    if (c->done || c->pid <= 0)
        return true;
    s_cmd_read(c);
    int status = 0;
    pid_t r = waitpid(c->pid, &status, WNOHANG);
    if (r == c->pid) {
        s_cmd_status(c, status);
        /* Whatever it wrote before exiting; a grandchild holding the
           pipe open must not keep us waiting. */
        s_cmd_read(c);
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        (void)kill(-c->pid, SIGKILL); /* its group; the pid may be reused */
        c->pid = 0;
        c->done = true;
        return true;
    }
    if (r < 0 && errno == ECHILD) {
        c->exit_code = 255;
        c->pid = 0;
        c->done = true;
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
        return true;
    }
    if (now_ms >= c->deadline_ms) {
        c->timed_out = true;
        ds_cmd_abort(c);
        c->exit_code = 128 + SIGKILL;
        c->done = true;
        return true;
    }
    return false;
}

void ds_cmd_abort(ds_cmd_t *c)
{
    if (c->pid > 0) {
        (void)ds_proc_signal(c->pid, SIGKILL);
        int status;
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
        }
        c->pid = 0;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

void ds_cmd_tail_line(const ds_cmd_t *c, char *buf, size_t len)
{
    if (len == 0)
        return;
    size_t o = 0;
    /* Skip trailing newlines, then keep what fits from the end. */
    size_t n = c->tail_len;
    while (n > 0 && (c->tail[n - 1] == '\n' || c->tail[n - 1] == '\r'))
        n--;
    size_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += c->tail[i] == '\n' ? 3 : 1;
    size_t start = 0;
    while (need + 1 > len && start < n)
        need -= c->tail[start++] == '\n' ? 3 : 1;
    for (size_t i = start; i < n; i++) {
        unsigned char ch = (unsigned char)c->tail[i];
        if (ch == '\n') {
            if (o + 3 >= len)
                break;
            memcpy(buf + o, " | ", 3);
            o += 3;
        } else {
            if (o + 1 >= len)
                break;
            buf[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        }
    }
    buf[o] = '\0';
}
