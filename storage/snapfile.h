/*  storage/snapfile.h - the latest snapshot image in a file of its own.

    A member's snapshot image (storage/state_image.h) is written, on the
    thread that exported it (storage/exporter.h), to DIR/snap/<index>.img,
    where <index> is the image's applied index in 16 hexadecimal digits:
    written to a temporary name, flushed, renamed, and the directory
    flushed, so that a name that exists is a whole, durable image. The
    snapshot's meta in LMDB then names the index, and only then does the
    owner compact the log up to it. The loop thus never stalls for the
    megabytes of a durable image write.

    The files hold what LMDB's snapshot meta points at; every other file
    in DIR/snap (an image whose meta never committed, a temporary file of
    a crash) is removed by ds_snapfile_prune.
*/
#ifndef DS_STORAGE_SNAPFILE_H
#define DS_STORAGE_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

/*  Writes image/len durably as the image at `index` in directory `dir`
    (created 0700 if missing). Returns 0, or DS_EIO/DS_EINVAL with `err`
    filled (nothing then goes by the final name). Thread-safe. */
int ds_snapfile_write(const char *dir, uint64_t index, const uint8_t *image, size_t len, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/*  Reads the image at `index` from `dir` and checks it whole (checksum,
    records, and that its applied index is `index`). On 0, *image is
    malloc'd (the caller frees it). Returns DS_ENOTFOUND (no such file),
    DS_ECORRUPT (the file is not that image), DS_EIO or DS_ENOMEM, with
    `err` filled. */
int ds_snapfile_read(const char *dir, uint64_t index, uint8_t **image, size_t *len, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

/*  Removes every file in `dir` but the image at `keep` (0: keeps none).
    A missing directory is fine. Returns 0 or DS_EIO with `err` filled. */
int ds_snapfile_prune(const char *dir, uint64_t keep, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif
