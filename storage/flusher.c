/*  storage/flusher.c - a background fdatasync thread (see flusher.h). */
#define _GNU_SOURCE
#include "storage/flusher.h"

#include "protocol/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct ds_flusher {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* a request arrived, or stop */
    pthread_cond_t idle; /* a flush completed */
    int efd;
    /* under mu */
    int fd;
    uint64_t requested; /* highest position asked for */
    uint64_t durable;   /* highest position flushed */
    bool running;       /* a flush is in progress */
    bool stop;
    int error; /* errno of a failed flush; 0 if none */
};

static void s_signal_owner(ds_flusher_t *f)
{
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(f->efd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the counter is already non-zero, the owner will wake. */
}

static bool s_has_work(const ds_flusher_t *f)
{
    return f->requested > f->durable && f->error == 0;
}

/*  One flush: takes the latest request, flushes without the lock, and
    publishes the result. Called with mu held; returns with it held. */
static void s_flush_one(ds_flusher_t *f)
{
    uint64_t target = f->requested;
    int fd = f->fd;
    f->running = true;
    pthread_mutex_unlock(&f->mu);
    int rc;
    do
        rc = fdatasync(fd);
    while (rc != 0 && errno == EINTR);
    int err = rc != 0 ? errno : 0;
    pthread_mutex_lock(&f->mu);
    f->running = false;
    if (err != 0)
        f->error = err;
    else if (target > f->durable)
        f->durable = target;
    pthread_cond_broadcast(&f->idle);
    s_signal_owner(f);
}

static void *s_main(void *arg)
{
    ds_flusher_t *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        if (s_has_work(f))
            s_flush_one(f);
        else
            pthread_cond_wait(&f->wake, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int ds_flusher_new(ds_flusher_t **out, char *err, size_t errlen)
{
    *out = NULL;
    ds_flusher_t *f = calloc(1, sizeof *f);
    if (!f)
        return ds_errf(err, errlen, DS_ENOMEM, "out of memory starting the WAL flusher");
    f->fd = -1;
    f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->efd < 0) {
        int e = errno;
        free(f);
        return ds_errf(err, errlen, DS_EIO, "cannot create the WAL flusher's eventfd: %s",
                       strerror(e));
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->wake, NULL);
    pthread_cond_init(&f->idle, NULL);
    int rc = pthread_create(&f->thread, NULL, s_main, f);
    if (rc != 0) {
        pthread_cond_destroy(&f->idle);
        pthread_cond_destroy(&f->wake);
        pthread_mutex_destroy(&f->mu);
        close(f->efd);
        free(f);
        return ds_errf(err, errlen, DS_EIO, "cannot start the WAL flusher thread: %s",
                       strerror(rc));
    }
    *out = f;
    return 0;
}

void ds_flusher_destroy(ds_flusher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ds_flusher_t *f = *self_p;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    pthread_cond_destroy(&f->idle);
    pthread_cond_destroy(&f->wake);
    pthread_mutex_destroy(&f->mu);
    close(f->efd);
    free(f);
    *self_p = NULL;
}

void ds_flusher_request(ds_flusher_t *self, int fd, uint64_t pos)
{
    pthread_mutex_lock(&self->mu);
    if (pos > self->requested) {
        self->fd = fd;
        self->requested = pos;
        pthread_cond_signal(&self->wake);
    }
    pthread_mutex_unlock(&self->mu);
}

void ds_flusher_wait(ds_flusher_t *self)
{
    pthread_mutex_lock(&self->mu);
    while (self->running || s_has_work(self))
        pthread_cond_wait(&self->idle, &self->mu);
    pthread_mutex_unlock(&self->mu);
}

int ds_flusher_done(ds_flusher_t *self, uint64_t *pos)
{
    uint64_t count;
    while (read(self->efd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&self->mu);
    *pos = self->durable;
    int err = self->error;
    pthread_mutex_unlock(&self->mu);
    return err;
}

int ds_flusher_fd(const ds_flusher_t *self)
{
    return self->efd;
}
