"""What a device count means. The device says which counter it read; the
platform file says what that counter measures there. Kinds are never mixed:
an instruction count is not a cycle count, and a report says which it is."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..platforms import Platform

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CountUnit:
    kind: str       # "instructions" | "cycles" | "ticks"
    per_tick: float  # units per raw counter step
    source: str     # how it was obtained

    def scale(self, raw: int) -> int:
        return int(round(raw * self.per_tick))


def unit_for(source: str, platform: Platform, emulated_time_is_instructions: bool) -> CountUnit | None:
    """`source` is the counter the device names in its INVOKE reply, by name
    (the protocol's CounterSource: "DWT", "SYSTICK", "MINSTRET" or "NONE")."""
    if source == "DWT":
        return CountUnit("cycles", 1.0, "DWT CYCCNT")
    if source == "MINSTRET":
        if platform.target_kind == "qemu" and not emulated_time_is_instructions:
            return None  # QEMU without -icount derives minstret from host time
        return CountUnit("instructions", 1.0, "minstret")
    if source == "SYSTICK":
        if platform.counter.kind == "instructions" and not emulated_time_is_instructions:
            return None  # without -icount SysTick follows wall time: not a measurement
        kind = platform.counter.kind
        how = "SysTick under QEMU -icount shift=0 (1 instruction = 1 ns)" if kind == "instructions" else "SysTick"
        return CountUnit(kind, platform.counter_per_tick, how)
    return None
