/*  tests/fuzz/fuzz_state_import.c - the snapshot image parser on any bytes.

    ds_state_image_parse is the only code that reads a state image from
    the network, and it is pure, so fuzzing it needs no store. Each input
    is parsed twice: as is, and with its trailer checksum recomputed, so
    the fuzzer reaches the record walker instead of stopping at the
    checksum. The callback touches every byte it is handed so ASan
    catches a record that points outside the buffer.
*/
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/state_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_touch(void *ctx, ds_state_table_t table, const uint8_t *key, size_t klen,
                   const uint8_t *val, size_t vlen)
{
    unsigned *sum = ctx;
    *sum += (unsigned)table;
    for (size_t i = 0; i < klen; i++)
        *sum += key[i];
    for (size_t i = 0; i < vlen; i++)
        *sum += val[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sum = 0;
    char err[256];
    ds_state_image_info_t info;
    int rc = ds_state_image_parse(data, size, &info, s_touch, &sum, err, sizeof err);
    (void)rc;
    if (size < 4 || size > (16u << 20))
        return 0;
    uint8_t *copy = malloc(size);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    uint32_t crc = ds_state_image_crc32(copy, size - 4);
    copy[size - 4] = (uint8_t)(crc >> 24);
    copy[size - 3] = (uint8_t)(crc >> 16);
    copy[size - 2] = (uint8_t)(crc >> 8);
    copy[size - 1] = (uint8_t)crc;
    rc = ds_state_image_parse(copy, size, &info, s_touch, &sum, err, sizeof err);
    (void)rc;
    free(copy);
    return 0;
}
