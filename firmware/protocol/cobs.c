#include "cobs.h"

size_t cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t code_at = 0; /* where the current block's length byte goes */
    size_t o = 1;
    uint8_t code = 1;   /* length of the current block + 1 */

    if (cap < 1)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] != 0) {
            if (o >= cap)
                return 0;
            out[o++] = in[i];
            code++;
        }
        if (in[i] == 0 || code == 0xFF) {
            /* close the block; a full block (0xFF) does not stand for a zero */
            out[code_at] = code;
            code = 1;
            code_at = o;
            if (o >= cap)
                return 0;
            o++;
        }
    }
    out[code_at] = code;
    return o;
}

long cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    size_t i = 0, o = 0;

    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0)
            return -1;
        for (uint8_t k = 1; k < code; k++) {
            if (i >= len || in[i] == 0 || o >= cap)
                return -1;
            out[o++] = in[i++];
        }
        /* a block shorter than 254 data bytes stands for a zero, except at the end */
        if (code != 0xFF && i < len) {
            if (o >= cap)
                return -1;
            out[o++] = 0;
        }
    }
    return (long)o;
}
