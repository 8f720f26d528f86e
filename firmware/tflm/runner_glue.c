/*
 * What hil's bare-metal runner needs to link TFLM (HIL_ENGINE=tflm only;
 * not part of the adapter an application links).
 *
 * The runner has no heap: its linker script defines no `end` for newlib's
 * sbrk. TFLM itself never allocates, but C library paths it can reach
 * (printf in DebugLog) may; with this sbrk they fail cleanly instead of the
 * image not linking.
 */
#include <errno.h>
#include <stddef.h>

void *_sbrk(ptrdiff_t increment)
{
    (void)increment;
    errno = ENOMEM;
    return (void *)-1;
}
