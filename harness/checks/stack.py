"""The device's painted stack: a stack used to its bottom word overflowed
(or may have), and what lies below it (.bss) may be corrupted, so the run's
outputs and counts cannot be trusted: a firmware failure, never a pass."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def stack_overflow(device: dict | None) -> str | None:
    """The failure message when GET_MEMORY's stack high-water mark reached
    the stack's size, else None (a firmware that does not measure its stack
    reports size 0)."""
    size = (device or {}).get("stack_size") or 0
    used = (device or {}).get("stack_high_water") or 0
    if size <= 0 or used < size:
        return None
    return (f"the device's stack overflowed: its high-water mark is {used:,} of {size:,} B (every word used), so "
            "memory below the stack may be corrupted and no output or count of this run can be trusted; fix: "
            "give the firmware a larger stack (the platform file's firmware.stack_bytes)")
