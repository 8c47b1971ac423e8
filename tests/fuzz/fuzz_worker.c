/*  tests/fuzz/fuzz_worker.c - bodies of the worker link: worker to coordinator requests, and the
   replies a worker decodes. Input format and checks: tests/fuzz/fuzz_family.h. */
#include "tests/fuzz/fuzz_family.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ds_msg_family_t families[] = {DS_FAMILY_WORKER, DS_FAMILY_REPLY};
    s_fuzz_family(data, size, families, sizeof families / sizeof families[0]);
    return 0;
}
