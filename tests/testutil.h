/*  tests/testutil.h - helpers shared by the tests: temporary directories. */
#ifndef DS_TESTS_TESTUTIL_H
#define DS_TESTS_TESTUTIL_H

#include <stddef.h>

/*  Creates a fresh directory under $TMPDIR (or /tmp) named after `tag` and
    writes its path into `out`. Returns 0, or -1 if it cannot. */
int ds_test_mkdtemp(const char *tag, char *out, size_t outlen);

/*  Removes `path` and everything below it. Returns 0, or -1 on error. */
int ds_test_rmrf(const char *path);

#endif
