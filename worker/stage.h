/*  worker/stage.h - staging a release's artifact on this machine.

    An artifact is a local directory (copied), a local .tar.gz (or any
    tar libarchive reads), or an http(s) URL of one (downloaded with
    libcurl). When a sha256 is given, the digest of the artifact file is
    checked before anything is unpacked; a directory has no file to
    digest, so a sha256 with a directory is refused. Archive entries with
    an absolute path or a ".." component, and links that point outside
    the release directory, refuse the whole archive.

    Files land in `dest` atomically: they are unpacked into a sibling
    ".stage-NAME-PID" directory, which is renamed to `dest` only when
    everything succeeded; a failure removes it. An existing `dest` counts
    as staged (a rename never leaves half a directory).

    ds_stage_run() does the work in the calling thread; a ds_stage_job_t
    does it in a thread of its own, so the reconciler's loop never waits
    on a download or a large archive.
*/
#ifndef DS_WORKER_STAGE_H
#define DS_WORKER_STAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DS_STAGE_REASON             512u
#define DS_STAGE_DOWNLOAD_TIMEOUT_S 600L /* a whole download */

/*  Stages `artifact` (checked against `sha256` unless NULL or "") into
    the directory `dest`. `cancel` (may be NULL) stops a download when it
    becomes true. Returns 0, or DS_EINVAL (bad artifact, digest mismatch,
    unsafe archive), DS_ENOTFOUND, DS_EIO or DS_ENOMEM with `err` set to a
    sentence for the instance's reason. */
int ds_stage_run(const char *artifact, const char *sha256, const char *dest,
                 const atomic_bool *cancel, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Hex sha256 of a file into hex (65 bytes). Returns 0 or DS_EIO. */
int ds_stage_sha256_file(const char *path, char hex[65]) __attribute__((warn_unused_result));

/*  Removes `path` and everything under it (no symlinks followed).
    Returns 0 or DS_EIO. */
int ds_stage_rmtree(const char *path);

typedef struct ds_stage_job ds_stage_job_t;

/*  Starts staging in a new thread. Returns 0 and sets *out (free with
    ds_stage_job_destroy), or DS_ENOMEM / DS_EIO with `err` set. */
int ds_stage_job_start(const char *artifact, const char *sha256, const char *dest,
                       ds_stage_job_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  A descriptor that becomes readable when the job is done. */
int ds_stage_job_fd(const ds_stage_job_t *job);

/*  True when the job is done; then *rc and `reason` hold its result. */
bool ds_stage_job_done(ds_stage_job_t *job, int *rc, char *reason, size_t len);

/*  Cancels the job if it still runs, waits for its thread, frees it and
    sets *job_p NULL; accepts NULL. */
void ds_stage_job_destroy(ds_stage_job_t **job_p);

#endif
