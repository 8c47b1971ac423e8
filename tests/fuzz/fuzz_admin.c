/*  tests/fuzz/fuzz_admin.c - bodies of the admin link: admin writes and reads, and the replies
   dsctl decodes. Input format and checks: tests/fuzz/fuzz_family.h. */
#include "tests/fuzz/fuzz_family.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ds_msg_family_t families[] = {DS_FAMILY_ADMIN, DS_FAMILY_VIEW, DS_FAMILY_REPLY};
    s_fuzz_family(data, size, families, sizeof families / sizeof families[0]);
    return 0;
}
