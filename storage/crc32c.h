/*  storage/crc32c.h - CRC-32C (Castagnoli), the checksum of WAL records. */
#ifndef DS_STORAGE_CRC32C_H
#define DS_STORAGE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*  Extends `crc` (0 to start) over len bytes. ds_crc32c(0, "123456789", 9)
    is 0xe3069283. */
uint32_t ds_crc32c(uint32_t crc, const void *data, size_t len);

#endif
