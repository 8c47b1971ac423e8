/*  tests/fuzz/fuzz_specfile.c - the YAML spec file parser on any bytes.

    Input: the text of a spec file. Whatever it is, ds_specfile_parse()
    returns 0 with a spec that ds_spec_validate() accepts, or DS_EINVAL
    with one non-empty, NUL-terminated line that starts with the file's
    name. It never runs out of its DS_SPECFILE_ARENA_CAP arena, and a
    failure leaves the spec as ds_spec_init() made it. */
#include "dsctl/specfile.h"
#include "protocol/error.h"
#include "protocol/spec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_specfile: %s: %s\n", what, err ? err : "");
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > DS_SPECFILE_MAX_SIZE)
        return 0;
    ds_arena_t *arena = ds_arena_new(DS_SPECFILE_ARENA_CAP);
    if (!arena)
        return 0;
    ds_spec_t spec, zero;
    char err[DS_SPECFILE_ERR_SIZE];
    memset(err, 'x', sizeof err);
    int rc = ds_specfile_parse((const char *)data, size, "f.yaml", &spec, arena, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        s_die("the message is not terminated", NULL);
    if (rc == 0) {
        char why[256];
        if (err[0] != '\0')
            s_die("success left a message", err);
        if (ds_spec_validate(&spec, why, sizeof why) != 0)
            s_die("an accepted spec does not validate", why);
    } else {
        if (rc != DS_EINVAL)
            s_die("a failure other than DS_EINVAL", err);
        if (strncmp(err, "f.yaml", 6) != 0 || (err[6] != ':') || err[7] == '\0')
            s_die("the message does not name the file", err);
        if (strchr(err, '\n'))
            s_die("the message is more than one line", err);
        ds_spec_init(&zero);
        if (memcmp(&spec, &zero, sizeof spec) != 0)
            s_die("a failure did not reset the spec", err);
    }
    ds_arena_destroy(&arena);
    return 0;
}
