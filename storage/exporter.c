/*  storage/exporter.c - a state image exported on a thread of its own.
    See exporter.h. */
#include "storage/exporter.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/error.h"
#include "storage/snapfile.h"
#include "storage/state_image.h"

struct ds_exporter {
    pthread_t thread;
    ds_store_t *store;
    char snap_dir[PATH_MAX]; /* where the image is written ("": nowhere) */
    atomic_bool done;        /* the thread wrote everything below */
    int rc;
    uint8_t *image;
    size_t len;
    uint64_t applied;
    char err[DS_STORE_ERRMSG_SIZE];
};

static void *s_run(void *arg)
{
    ds_exporter_t *self = arg;
    self->rc = ds_state_export_detached(self->store, &self->image, &self->len, &self->applied,
                                        self->err, sizeof self->err);
    if (self->rc == 0 && self->snap_dir[0])
        self->rc = ds_snapfile_write(self->snap_dir, self->applied, self->image, self->len,
                                     self->err, sizeof self->err);
    atomic_store_explicit(&self->done, true, memory_order_release);
    return NULL;
}

int ds_exporter_start(ds_exporter_t **out, ds_store_t *s, const char *snap_dir, char *err,
                      size_t errlen)
{
    assert(out && s);
    *out = NULL;
    if (snap_dir && strlen(snap_dir) >= PATH_MAX) {
        snprintf(err, errlen, "the snapshot directory path is too long");
        return DS_EINVAL;
    }
    ds_exporter_t *self = calloc(1, sizeof *self);
    if (!self) {
        snprintf(err, errlen, "out of memory starting a snapshot export");
        return DS_ENOMEM;
    }
    self->store = s;
    snprintf(self->snap_dir, sizeof self->snap_dir, "%s", snap_dir ? snap_dir : "");
    atomic_init(&self->done, false);
    int prc = pthread_create(&self->thread, NULL, s_run, self);
    if (prc != 0) {
        snprintf(err, errlen, "cannot start the snapshot export thread: %s", strerror(prc));
        free(self);
        return DS_EIO;
    }
    *out = self;
    return 0;
}

bool ds_exporter_done(const ds_exporter_t *self)
{
    assert(self);
    return atomic_load_explicit(&self->done, memory_order_acquire);
}

int ds_exporter_finish(ds_exporter_t **self_p, uint8_t **image, size_t *len, uint64_t *applied,
                       char *err, size_t errlen)
{
    assert(self_p && *self_p && image && len && applied);
    ds_exporter_t *self = *self_p;
    pthread_join(self->thread, NULL);
    int rc = self->rc;
    *image = rc == 0 ? self->image : NULL;
    *len = rc == 0 ? self->len : 0;
    *applied = rc == 0 ? self->applied : 0;
    if (rc != 0) {
        free(self->image);
        snprintf(err, errlen, "%s", self->err);
    }
    free(self);
    *self_p = NULL;
    return rc;
}

void ds_exporter_destroy(ds_exporter_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    uint8_t *image;
    size_t len;
    uint64_t applied;
    char err[DS_STORE_ERRMSG_SIZE];
    if (ds_exporter_finish(self_p, &image, &len, &applied, err, sizeof err) == 0)
        free(image);
}
