/*  tests/fuzz/fuzz_peer.c - bodies of the peer link: coordinator to coordinator: the Raft messages
   and peer_hello. Input format and checks: tests/fuzz/fuzz_family.h. */
#include "tests/fuzz/fuzz_family.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const ds_msg_family_t families[] = {DS_FAMILY_PEER};
    s_fuzz_family(data, size, families, sizeof families / sizeof families[0]);
    return 0;
}
