/*  storage/flusher.h - one background thread that flushes a file to the
    device (fdatasync) while its owner goes on working.

    The write-ahead log (storage/wal.c) writes records with pwrite on the
    caller's thread, which costs microseconds, and hands the flush, which
    costs a fraction of a millisecond to milliseconds, to a flusher: a
    Raft leader's loop keeps receiving acknowledgements and proposals
    while its own log reaches the disk (docs/coordinator.md, "The
    replica"). Requests name a position, any number that grows with what
    was written (the WAL uses the bytes written since open); a flush that
    starts after position P was requested covers everything up to P, and
    requests that arrive while a flush runs are covered together by the
    next one (group commit).

    Completion is reported through an eventfd that the owner polls
    (ds_flusher_fd) and reads with ds_flusher_done. A failed fdatasync is
    final: the flusher refuses every later request, since what reached
    the disk is unknown.

    One owner thread calls everything; the flusher's own thread touches
    only the file descriptor it was given and its state under a mutex.
    The owner must not close or replace the file while a flush may run:
    ds_flusher_wait() first.
*/
#ifndef DS_STORAGE_FLUSHER_H
#define DS_STORAGE_FLUSHER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ds_flusher ds_flusher_t;

/*  Starts the thread. Returns 0, or DS_EIO/DS_ENOMEM with `err` filled. */
int ds_flusher_new(ds_flusher_t **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*  Waits for a running flush, stops the thread and frees everything.
    Requests not yet started are dropped (as in a crash). Accepts NULL
    and *self_p NULL; sets *self_p to NULL. */
void ds_flusher_destroy(ds_flusher_t **self_p);

/*  Asks for fdatasync(fd) to cover everything written up to `pos`.
    Returns at once. While a request is pending or running, `fd` must
    stay the same file (ds_flusher_wait before switching). */
void ds_flusher_request(ds_flusher_t *self, int fd, uint64_t pos);

/*  Waits until every request so far has been flushed or has failed. */
void ds_flusher_wait(ds_flusher_t *self);

/*  The highest position known durable in *pos; clears the eventfd.
    Returns 0, or the errno of a failed fdatasync (then *pos stays at
    what was durable before it). */
int ds_flusher_done(ds_flusher_t *self, uint64_t *pos);

/*  An eventfd that is readable once a flush completed (or failed) since
    the last ds_flusher_done. Owned by the flusher. */
int ds_flusher_fd(const ds_flusher_t *self);

#endif
