/*  storage/snapfile.c - the latest snapshot image in a file of its own.
    See snapfile.h. */
#include "storage/snapfile.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/error.h"
#include "storage/fileio.h"
#include "storage/state_image.h"

#define S_SUFFIX     ".img"
#define S_TMP_SUFFIX ".img.tmp"

__attribute__((format(printf, 4, 5))) static int s_err(char *err, size_t errlen, int code,
                                                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

static int s_path(char *out, size_t size, const char *dir, uint64_t index, const char *suffix)
{
    int n = snprintf(out, size, "%s/%016" PRIx64 "%s", dir, index, suffix);
    return n > 0 && (size_t)n < size ? 0 : DS_EINVAL;
}

int ds_snapfile_write(const char *dir, uint64_t index, const uint8_t *image, size_t len, char *err,
                      size_t errlen)
{
    assert(dir && image);
    char tmp[PATH_MAX], final[PATH_MAX];
    if (s_path(tmp, sizeof tmp, dir, index, S_TMP_SUFFIX) ||
        s_path(final, sizeof final, dir, index, S_SUFFIX))
        return s_err(err, errlen, DS_EINVAL, "the snapshot directory path %s is too long", dir);
    /* a new directory's name is flushed in its parent, or a crash could
       lose the directory with the image in it */
    int made = ds_fileio_mkdir(dir);
    if (made < 0 || (made && ds_fileio_sync_parent(dir) != 0))
        return s_err(err, errlen, DS_EIO, "cannot create %s: %s", dir, strerror(errno));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_err(err, errlen, DS_EIO, "cannot create %s: %s", tmp, strerror(errno));
    int rc = ds_fileio_write_all(fd, image, len) == 0 && fdatasync(fd) == 0 ? 0 : DS_EIO;
    if (rc != 0)
        s_err(err, errlen, rc, "writing %s failed: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == 0)
        rc = s_err(err, errlen, DS_EIO, "closing %s failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, final) != 0)
        rc = s_err(err, errlen, DS_EIO, "renaming %s failed: %s", tmp, strerror(errno));
    if (rc == 0 && ds_fileio_sync_dir(dir) != 0)
        rc = s_err(err, errlen, DS_EIO, "flushing directory %s failed: %s", dir, strerror(errno));
    if (rc != 0)
        unlink(tmp);
    return rc;
}

static int s_read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_err(err, errlen, errno == ENOENT ? DS_ENOTFOUND : DS_EIO, "cannot open %s: %s",
                     path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : DS_EIO;
    uint8_t *buf = rc == 0 ? malloc(st.st_size > 0 ? (size_t)st.st_size : 1) : NULL;
    if (rc == 0 && !buf)
        rc = DS_ENOMEM;
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            rc = DS_EIO;
        else
            got += (size_t)k;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return s_err(err, errlen, rc, "cannot read %s: %s", path,
                     rc == DS_ENOMEM ? "out of memory" : strerror(errno));
    }
    *out = buf;
    *len = got;
    return 0;
}

int ds_snapfile_read(const char *dir, uint64_t index, uint8_t **image, size_t *len, char *err,
                     size_t errlen)
{
    assert(dir && image && len);
    *image = NULL;
    *len = 0;
    char path[PATH_MAX];
    if (s_path(path, sizeof path, dir, index, S_SUFFIX))
        return s_err(err, errlen, DS_EINVAL, "the snapshot directory path %s is too long", dir);
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = s_read_file(path, &buf, &n, err, errlen);
    if (rc != 0)
        return rc;
    ds_state_image_info_t info;
    char why[256];
    rc = ds_state_image_parse(buf, n, &info, NULL, NULL, why, sizeof why);
    if (rc == 0 && info.applied != index)
        snprintf(why, sizeof why, "it holds the state at index %" PRIu64, info.applied);
    if (rc != 0 || info.applied != index) {
        free(buf);
        return s_err(err, errlen, DS_ECORRUPT,
                     "%s is not the snapshot image at index %" PRIu64 ": %s", path, index, why);
    }
    *image = buf;
    *len = n;
    return 0;
}

int ds_snapfile_prune(const char *dir, uint64_t keep, char *err, size_t errlen)
{
    assert(dir);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT
                   ? 0
                   : s_err(err, errlen, DS_EIO, "cannot read %s: %s", dir, strerror(errno));
    char kept[32];
    snprintf(kept, sizeof kept, "%016" PRIx64 S_SUFFIX, keep);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || (keep && strcmp(e->d_name, kept) == 0))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) != 0 && errno != ENOENT && rc == 0)
            rc = s_err(err, errlen, DS_EIO, "cannot remove %s/%s: %s", dir, e->d_name,
                       strerror(errno));
    }
    closedir(d);
    return rc;
}
