/*  storage/crc32.h - CRC-32 (IEEE), the checksum of state images, and
    CRC-32C (Castagnoli), the checksum of WAL records. */
#ifndef DS_STORAGE_CRC32_H
#define DS_STORAGE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/*  Extends `crc` (0 to start) over len bytes. ds_crc32(0, "123456789", 9)
    is 0xcbf43926. */
uint32_t ds_crc32(uint32_t crc, const void *data, size_t len);

/*  The same for CRC-32C: ds_crc32c(0, "123456789", 9) is 0xe3069283. */
uint32_t ds_crc32c(uint32_t crc, const void *data, size_t len);

#endif
