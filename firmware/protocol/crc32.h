/* IEEE 802.3 CRC-32 (reflected, poly 0xEDB88320), same as zlib.crc32. */
#ifndef HIL_CRC32_H
#define HIL_CRC32_H
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0, feed chunks, the result is final. */
uint32_t hil_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif
