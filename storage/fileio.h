/*  storage/fileio.h - small file-system steps that durable storage
    repeats: writing a whole buffer, making a directory, and flushing a
    directory so that the names in it survive a crash.

    Each returns -1 with errno set on failure, so that callers word
    their own messages. */
#ifndef DS_STORAGE_FILEIO_H
#define DS_STORAGE_FILEIO_H

#include <stddef.h>

/*  Writes all n bytes of p at the file offset, retrying after signals
    and short writes. 0, or -1 (errno; EIO for a write that made no
    progress). */
int ds_fileio_write_all(int fd, const void *p, size_t n);

/*  Creates directory `dir` with mode 0700: 1 if it made it, 0 if it was
    there, -1 on failure. A new directory's name is durable only once its
    parent is flushed (ds_fileio_sync_parent). */
int ds_fileio_mkdir(const char *dir);

/*  Flushes directory `dir` (the names in it). 0 or -1. */
int ds_fileio_sync_dir(const char *dir);

/*  Flushes the directory that holds `path` ("." for a bare name, "/" at
    the root). 0 or -1. */
int ds_fileio_sync_parent(const char *path);

#endif
