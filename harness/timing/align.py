"""Which plugin records belong to an invoke and to each of its operators,
checked against the firmware's own count before any estimate is given.

Every count the firmware takes goes through `board_counter`, marker 0, so
one INVOKE request leaves these counter-read records, in order:

    start, [engine mark], (op start, op end) x N, end

The built-in engine reads once more before its first operator (its
`mark`), TFLM's profiler does not: 2N+3 or 2N+2 records. Operator i spans
records (1+2i, 2+2i) in both layouts. The plugin's instruction delta over
each span must equal the firmware's SysTick count within one tick (the
counter's resolution); when it does not, the records are not this invoke's
(or a read was missed) and there is no estimate, only a note: a wrong
estimate is worse than none.
"""

from __future__ import annotations

from dataclasses import dataclass

from .plugin import Record


@dataclass(frozen=True)
class Alignment:
    cycles: int | None                  # the invoke's estimate, None when it could not be aligned
    instructions: int | None            # the plugin's exact instruction delta over the same span
    operators: list[int] | None = None  # per-operator estimates, in the firmware's operator order
    note: str | None = None             # why there is no estimate (or no per-operator one)


def counter_reads(records: list[Record]) -> list[Record]:
    return [r for r in records if r.marker == 0]


def align_invoke(records: list[Record], count: int, operator_counts: list[int] | None,
                 tolerance: float) -> Alignment:
    """`count` and `operator_counts` are the firmware's (instructions, scaled
    from SysTick ticks); `tolerance` the counter's resolution in instructions."""
    reads = counter_reads(records)
    if len(reads) < 2:
        return Alignment(None, None, note=f"the cycle plugin saw {len(reads)} counter read(s) for this invoke, "
                                          "not the 2 or more around it: no estimate")
    first, last = reads[0], reads[-1]
    delta = last.instructions - first.instructions
    if abs(delta - count) > tolerance:
        return Alignment(None, delta, note=f"the plugin counted {delta} instructions where the firmware counted "
                                           f"{count} (more than the counter's {tolerance:g} apart): no estimate")
    cycles = last.cycles - first.cycles
    if not operator_counts:
        return Alignment(cycles, delta)
    n = len(operator_counts)
    if len(reads) not in (2 * n + 2, 2 * n + 3):
        return Alignment(cycles, delta, note=f"{len(reads)} counter reads for {n} operators (expected {2 * n + 2} "
                                             f"or {2 * n + 3}): no per-operator estimates")
    ops = []
    for i, fw in enumerate(operator_counts):
        a, b = reads[1 + 2 * i], reads[2 + 2 * i]
        if abs((b.instructions - a.instructions) - fw) > tolerance:
            return Alignment(cycles, delta, note=f"operator {i}: the plugin counted {b.instructions - a.instructions} "
                                                 f"instructions where the firmware counted {fw}: no per-operator "
                                                 "estimates")
        ops.append(b.cycles - a.cycles)
    return Alignment(cycles, delta, ops)


def between_marks(records: list[Record]) -> list[dict]:
    """Console mode: the estimate between consecutive user-marker hits (markers 1..)."""
    hits = [r for r in records if r.marker != 0]
    return [{"from": a.marker, "to": b.marker, "instructions": b.instructions - a.instructions,
             "cycles": b.cycles - a.cycles, "at_instructions": b.instructions}
            for a, b in zip(hits, hits[1:])]
