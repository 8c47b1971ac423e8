/*  tests/testutil.h - helpers shared by the tests: temporary directories,
    a test store, the clock and processes. */
#ifndef DS_TESTS_TESTUTIL_H
#define DS_TESTS_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*  Creates a fresh directory under $TMPDIR (or /tmp) named after `tag` and
    writes its path into `out`. Returns 0, or -1 if it cannot. */
int ds_test_mkdtemp(const char *tag, char *out, size_t outlen);

/*  Opens a store in `dir` with default options but fsync off (unit tests
    check logic; durability is tested with real fsync in integration/).
    Returns the store (the caller destroys it), or NULL after printing why. */
struct ds_store;
struct ds_store *ds_test_store_open(const char *dir);

/*  The storage tests' cmocka fixture: a test store (ds_test_store_open)
    in a fresh directory. ds_test_store_setup makes *state a
    ds_test_store_fx_t (non-zero if it cannot); ds_test_store_teardown
    closes the store and removes the directory. */
typedef struct {
    char dir[512];
    struct ds_store *s;
} ds_test_store_fx_t;
int ds_test_store_setup(void **state);
int ds_test_store_teardown(void **state);

/*  Removes `path` and everything below it. Returns 0, or -1 on error. */
int ds_test_rmrf(const char *path);

/*  Milliseconds of the monotonic clock. */
uint64_t ds_test_now_ms(void);

/*  Sleeps `ms` milliseconds. */
void ds_test_sleep_ms(unsigned ms);

/*  Reserves a TCP port on 127.0.0.1 where every connection is refused:
    a socket bound to it that never listens. While it is open, no other
    socket can bind the port and the kernel never picks it as a source
    port, so nothing can answer there. Writes the port into *port and
    returns the socket (the caller closes it), or -1 after printing why. */
int ds_test_refusing_port(uint16_t *port);

/*  The first of `n` consecutive TCP ports on 127.0.0.1 that are all free
    now, for servers the test starts next (dscoord members, a worker's
    instance range, the test service). The ports lie below the kernel's
    ephemeral range, so no outgoing connection takes one as its source
    port; the search starts at a place that depends on the pid and the
    clock, so tests running in parallel rarely meet; and one process
    never gets the same port twice (until the range wraps). Returns 0
    after printing why if no such block exists. */
uint16_t ds_test_port_block(unsigned n);

/*  One port of ds_test_port_block. */
uint16_t ds_test_free_port(void);

/*  Writes "tcp://127.0.0.1:PORT" with a port of ds_test_free_port into
    `out`, for a ZeroMQ socket the test binds next. Unlike ZeroMQ's
    "tcp://127.0.0.1:*" (czmq scans up from 49152, so the next test takes
    the port the last one just closed, while a peer of the old socket may
    still reconnect to it), a process never gets the same port twice.
    Returns 0, or -1 after printing why. */
int ds_test_tcp_endpoint(char *out, size_t outlen);

/*  True while process `pid` exists and is neither a zombie nor dead
    (a zombie child of the test is reaped first). */
bool ds_test_pid_alive(pid_t pid);

#endif
