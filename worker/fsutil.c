/*  worker/fsutil.c - see fsutil.h. */
#include "worker/fsutil.h"

#include "protocol/error.h"
#include "storage/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int ds_fs_mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return DS_EINVAL;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return DS_EIO;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return DS_EIO;
    return 0;
}

static int s_copy_fd(int in, int out)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n == 0 ? 0 : DS_EIO;
        if (ds_fileio_write_all(out, buf, (size_t)n) != 0)
            return DS_EIO;
    }
}

int ds_fs_copy_file(const char *from, const char *to, mode_t mode, bool exclusive)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return DS_EIO;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
    int out = open(to, flags, mode & 07777);
    int rc = out < 0 ? DS_EIO : s_copy_fd(in, out);
    if (rc == 0 && fchmod(out, mode & 07777) != 0)
        rc = DS_EIO;
    if (out >= 0 && close(out) != 0)
        rc = DS_EIO;
    close(in);
    return rc;
}

int ds_fs_pipe(int fds[2])
{
    if (pipe(fds) != 0)
        return -1;
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0 ||
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK) != 0) {
            close(fds[0]);
            close(fds[1]);
            return -1;
        }
    return 0;
}
