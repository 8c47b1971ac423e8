/*  bench/zmtp.h - a ZeroMQ DEALER on a plain socket: ZMTP 3.0 (RFC 23)
    with the NULL mechanism, as `dscoord --insecure` serves it.

    The benchmark's Gossamer client speaks this by default, so that both
    systems are driven the same way: one blocking connection per client
    thread and nothing else, as the etcd client speaks plain HTTP/1.1 on
    a socket. A libzmq DEALER instead hands every message to a shared
    I/O thread and back, which on this 2-core machine costs the client
    a CPU thread of its own and two thread wakeups per request
    (bench/README.md has the figures of both clients).

    Enough of ZMTP for a request-reply client: the greeting, the READY
    command both ways, and multipart messages of short and long frames.
    Commands received after the handshake are skipped.
*/
#ifndef DS_BENCH_ZMTP_H
#define DS_BENCH_ZMTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define BENCH_ZMTP_MAX_FRAMES 4

typedef struct bench_zmtp bench_zmtp_t;

/*  Connects to 127.0.0.1:port and completes the handshake as a DEALER
    before `deadline` (bench_now_ns). NULL on failure. */
bench_zmtp_t *bench_zmtp_open(int port, uint64_t deadline);

/*  Closes the connection and sets *self_p to NULL. Accepts NULL. */
void bench_zmtp_close(bench_zmtp_t **self_p);

/*  Sends one message of n frames (n <= BENCH_ZMTP_MAX_FRAMES). 0, -1
    when the connection failed, -2 at the deadline (the connection is
    then unusable: close it). */
int bench_zmtp_send(bench_zmtp_t *self, const struct iovec *frames, size_t n, uint64_t deadline);

/*  Receives one message: its frames in frames[0..*n), pointing into the
    connection's buffer until the next call. 0, -1 (failed, or more than
    `max` frames), -2 at the deadline. */
int bench_zmtp_recv(bench_zmtp_t *self, struct iovec *frames, size_t max, size_t *n,
                    uint64_t deadline);

#endif
