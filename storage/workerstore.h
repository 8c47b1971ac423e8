/*  storage/workerstore.h - the worker's own durable state.

    Each dsworker keeps one LMDB environment in its data directory (same
    ds_store_t rules: 0700 directory, fsync on commit, map growth) with:
      wk_meta      "name", "id", "key_path"         -> strings
      wk_services  service                          -> current u64, previous u64
      wk_releases  service \0 version (u64 be)      -> state u8, spec bytes
    The worker keeps the files of its last few releases per service so a
    rollback is a restart, not a download; ds_workerstore_prune() says
    which releases it may delete.

    Errors: 0 or a negative DS_E* code; the message of the last failure is
    ds_workerstore_errmsg(). Every value read back is validated: bad bytes
    on disk give DS_ECORRUPT.
*/
#ifndef DS_STORAGE_WORKERSTORE_H
#define DS_STORAGE_WORKERSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "protocol/limits.h"
#include "storage/store.h"

#define DS_WORKERSTORE_KEEP   3u  /* releases kept per service by default */
#define DS_WORKERSTORE_ID_LEN 32u /* hex characters of a generated id */

typedef struct ds_workerstore ds_workerstore_t;

typedef struct {
    char name[DS_MAX_NAME + 1];
    char id[DS_WORKERSTORE_ID_LEN + 1]; /* generated once, never changes */
    char key_path[DS_MAX_PATH + 1];     /* "" until set */
} ds_worker_identity_t;

/*  Where a release is on this worker. Stored as one byte. */
typedef enum {
    DS_WREL_STAGED = 0,  /* files present, not started */
    DS_WREL_RUNNING = 1, /* started */
    DS_WREL_STOPPED = 2, /* stopped (replaced or rolled back) */
    DS_WREL_FAILED = 3   /* failed to start or health checks */
} ds_wrel_state_t;

/*  A release as read back. In a list callback spec points into the store
    and lives only during the callback; from ds_workerstore_release_get the
    caller owns spec and frees it with ds_workerstore_release_free(). */
typedef struct {
    uint64_t version;
    ds_wrel_state_t state;
    uint8_t *spec;
    size_t spec_len;
} ds_worker_release_t;

/*  Release list callback: 0 to go on, > 0 to stop, < 0 to fail. */
typedef int (*ds_worker_release_fn)(void *ctx, const ds_worker_release_t *rel);

/*  Opens (creating) the worker store in `dir`; see ds_store_open for dir
    rules, opts (NULL = defaults; opts->dbs is ignored) and errors. On
    success the caller owns *out and closes it with
    ds_workerstore_destroy(). */
int ds_workerstore_open(ds_workerstore_t **out, const char *dir, const ds_store_opts_t *opts,
                        char *errbuf, size_t errlen) __attribute__((warn_unused_result));

/*  Closes the store and sets *self_p to NULL; accepts NULL. */
void ds_workerstore_destroy(ds_workerstore_t **self_p);

/*  The message of the last failure ("" if none); owned by the store. */
const char *ds_workerstore_errmsg(const ds_workerstore_t *ws);

/*  Loads the identity, creating it on first use: a worker without one
    gets `name` and a new random id. If the stored name differs from
    `name` the name is updated and the id kept (a renamed machine is the
    same worker). Returns 0, DS_EINVAL (name not 1..DS_MAX_NAME bytes),
    DS_EIO (no randomness), DS_ECORRUPT or a store error. */
int ds_workerstore_identity(ds_workerstore_t *ws, const char *name, ds_worker_identity_t *out)
    __attribute__((warn_unused_result));

/*  Loads the identity without creating it. Returns 0, DS_ENOTFOUND (none
    yet), DS_ECORRUPT or a store error. */
int ds_workerstore_identity_load(ds_workerstore_t *ws, ds_worker_identity_t *out)
    __attribute__((warn_unused_result));

/*  Records the path of the worker's key file (1..DS_MAX_PATH bytes).
    Returns 0, DS_EINVAL, DS_ENOTFOUND (no identity yet) or a store error. */
int ds_workerstore_set_key_path(ds_workerstore_t *ws, const char *path)
    __attribute__((warn_unused_result));

/*  Records release (service, version >= 1) with its spec bytes and
    state. If it exists with the same spec only the state changes; with a
    different spec it is DS_EEXIST (a version's spec never changes).
    Returns 0, DS_EEXIST, DS_EINVAL, DS_ETOOBIG or a store error. */
int ds_workerstore_release_put(ds_workerstore_t *ws, const char *service, uint64_t version,
                               ds_wrel_state_t state, const void *spec, size_t spec_len)
    __attribute__((warn_unused_result));

/*  Changes the state of an existing release. Returns 0, DS_ENOTFOUND,
    DS_EINVAL, DS_ECORRUPT or a store error. */
int ds_workerstore_release_set_state(ds_workerstore_t *ws, const char *service, uint64_t version,
                                     ds_wrel_state_t state) __attribute__((warn_unused_result));

/*  Copies release (service, version) into *out; the caller frees it with
    ds_workerstore_release_free(). Returns 0, DS_ENOTFOUND, DS_EINVAL,
    DS_ENOMEM, DS_ECORRUPT or a store error. */
int ds_workerstore_release_get(ds_workerstore_t *ws, const char *service, uint64_t version,
                               ds_worker_release_t *out) __attribute__((warn_unused_result));

/*  Frees what ds_workerstore_release_get filled; accepts NULL. */
void ds_workerstore_release_free(ds_worker_release_t *rel);

/*  Calls fn for each release of `service`, newest version first.
    Returns 0, fn's negative code, DS_EINVAL, DS_ECORRUPT or a store
    error. */
int ds_workerstore_releases_list(ds_workerstore_t *ws, const char *service, ds_worker_release_fn fn,
                                 void *ctx) __attribute__((warn_unused_result));

/*  Makes `version` (which must be recorded) the current release of
    `service`; the old current becomes the previous one (unless it is the
    same version). Returns 0, DS_ENOTFOUND, DS_EINVAL or a store error. */
int ds_workerstore_set_current(ds_workerstore_t *ws, const char *service, uint64_t version)
    __attribute__((warn_unused_result));

/*  Reads the current and previous versions of `service` (0 = none).
    Either pointer may be NULL. Returns 0, DS_ENOTFOUND (no current
    release), DS_EINVAL, DS_ECORRUPT or a store error. */
int ds_workerstore_current(ds_workerstore_t *ws, const char *service, uint64_t *current,
                           uint64_t *previous) __attribute__((warn_unused_result));

/*  Deletes the records of old releases of `service`, keeping the `keep`
    newest versions (0 = DS_WORKERSTORE_KEEP) and always the current and
    previous ones. At most `max` are deleted per call (call again while
    *n_pruned == max); their versions are written, oldest first, to
    pruned[0..*n_pruned) so the caller can delete their files. Returns 0,
    DS_EINVAL, DS_ECORRUPT or a store error. */
int ds_workerstore_prune(ds_workerstore_t *ws, const char *service, size_t keep, uint64_t *pruned,
                         size_t max, size_t *n_pruned) __attribute__((warn_unused_result));

#endif
