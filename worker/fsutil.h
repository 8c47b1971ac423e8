/*  worker/fsutil.h - the worker's small file-system helpers. */
#ifndef DS_WORKER_FSUTIL_H
#define DS_WORKER_FSUTIL_H

#include <stdbool.h>
#include <sys/types.h>

/*  Creates `path` and its missing parents (mode 0755). Returns 0,
    DS_EINVAL (empty or longer than PATH_MAX) or DS_EIO. */
int ds_fs_mkdir_p(const char *path) __attribute__((warn_unused_result));

/*  Copies the file `from` to `to` with permission bits `mode`. With
    `exclusive`, `to` must not exist; otherwise it is replaced. Returns 0
    or DS_EIO. */
int ds_fs_copy_file(const char *from, const char *to, mode_t mode, bool exclusive)
    __attribute__((warn_unused_result));

/*  pipe2(O_CLOEXEC | O_NONBLOCK) without _GNU_SOURCE: both ends close on
    exec and never block. Returns 0, or -1 with errno set. */
int ds_fs_pipe(int fds[2]) __attribute__((warn_unused_result));

#endif
