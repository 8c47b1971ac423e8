/*  storage/exporter.h - a state image exported on a thread of its own.

    Taking a Raft snapshot exports every state table (storage/state_image.h);
    with a few megabytes of state that takes tens of milliseconds, during
    which a member's loop would answer nothing. An exporter runs the
    export on its own thread, in a read transaction of its own
    (ds_store_read_detached) on the last committed state, and can write
    it durably to a file of its own (storage/snapfile.h), while the
    store's owner goes on applying; the owner looks whether it finished
    (ds_exporter_done, no waiting) and takes the image when it has.

    One owner thread calls everything. The store must outlive the
    exporter (ds_exporter_finish before ds_store_destroy).
*/
#ifndef DS_STORAGE_EXPORTER_H
#define DS_STORAGE_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

typedef struct ds_exporter ds_exporter_t;

/*  Starts exporting the committed state of `s`; with `snap_dir` (may be
    NULL), the thread then also writes the image there durably
    (storage/snapfile.h), as the image at its applied index. Returns 0,
    or DS_ENOMEM/DS_EIO/DS_EINVAL (no thread) with `err` filled. */
int ds_exporter_start(ds_exporter_t **out, ds_store_t *s, const char *snap_dir, char *err,
                      size_t errlen) __attribute__((warn_unused_result));

/*  True once the export has finished (then ds_exporter_finish does not
    wait). */
bool ds_exporter_done(const ds_exporter_t *self);

/*  Waits for the export, frees the exporter (*self_p = NULL) and returns
    the export's result: 0 with *image (malloc'd, the caller frees it),
    *len and *applied (the image's applied index), or a DS_E code with
    `err` filled. */
int ds_exporter_finish(ds_exporter_t **self_p, uint8_t **image, size_t *len, uint64_t *applied,
                       char *err, size_t errlen) __attribute__((warn_unused_result));

/*  ds_exporter_finish, discarding the result. Accepts NULL and *self_p
    NULL. */
void ds_exporter_destroy(ds_exporter_t **self_p);

#endif
