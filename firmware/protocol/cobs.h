/* Consistent Overhead Byte Stuffing: frames without zero bytes, so 0x00
 * marks a frame's end and a receiver resynchronises at the next one. */
#ifndef HIL_COBS_H
#define HIL_COBS_H
#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encode `len` bytes into `out` (capacity `cap`). Returns the encoded
 * length, or 0 when `cap` is too small. No delimiter is written. */
size_t cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

/* Decode `len` encoded bytes (no delimiter) into `out` (capacity `cap`);
 * `out` may equal `in`. Returns the decoded length, or -1 on a malformed
 * block (a zero byte, a block running past the end) or a full `out`. */
long cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap);

#endif
