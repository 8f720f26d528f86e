"""Which plugin records belong to an invoke and to each of its operators,
checked against the firmware's own count before any estimate is given.

Every count the firmware takes goes through `board_counter`, marker 0, so
one INVOKE request of N operators leaves one of two layouts of
counter-read records:

    built-in engine (firmware/app/builtin_ops.c): N + 3
        start, mark, op 0 end, ..., op N-1 end, end
        each operator's count runs from the previous read to its own, so
        operator i spans records (1+i, 2+i)
    TFLM's runner (firmware/tflm/hil_tflm.cc, its profiler): 2N + 2
        start, (op start, op end) x N, end
        operator i spans records (1+2i, 2+2i)

(`start` and `end` are the protocol's, firmware/protocol/proto.c.) For
N = 1 both layouts are the same. The plugin's instruction delta over the
invoke and over each span must equal the firmware's SysTick count within
one tick (the counter's resolution); when it does not, the records are not
this invoke's (or a read was missed) and there is no estimate, only a note:
a wrong estimate is worse than none.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ..errors import InfraError
from .model import TimingModel
from .plugin import COUNTER_SYMBOL, CyclePlugin, Record

log = logging.getLogger(__name__)


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
    # operator i spans reads 1+i..2+i (one read after each operator: N+3) or 1+2i..2+2i (start and end: 2N+2)
    step = 2 if len(reads) == 2 * n + 2 else 1 if len(reads) == n + 3 else None
    if step is None:
        return Alignment(cycles, delta, note=f"{len(reads)} counter reads for {n} operators (expected {n + 3} "
                                             f"or {2 * n + 2}): no per-operator estimates")
    ops = []
    for i, fw in enumerate(operator_counts):
        a, b = reads[1 + step * i], reads[2 + step * i]
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


class RunCycles:
    """One run's estimates, for the runner: the plugin attached to a QEMU
    target, the `cycles_basis` label, and per-invoke figures checked by
    align_invoke."""

    def __init__(self, model: TimingModel, plugin: CyclePlugin) -> None:
        self.model = model
        self.plugin = plugin
        self.notes: list[str] = []
        self.basis = {"model": model.id, "core": model.core, "timing_source": model.source,
                      "memory_source": model.memory_source, "clock_hz": model.clock_hz, "source": "qemu-plugin",
                      "error_band": error_band_for(model.id), "validation": _validation(model.id),
                      "calibration": None, "unclassified": None}
        if not plugin.has_counter_marker:
            self._note(f"the firmware has no `{COUNTER_SYMBOL}` symbol: whole-run totals only (cycles_basis.run)")

    @classmethod
    def attach(cls, model: TimingModel | None, platform, target, elf: Path, workdir: Path) -> "RunCycles | None":
        """The plugin on a target that can carry it (`Capabilities.cycle_plugin`:
        QEMU) and whose instruction counts are exact (-icount); None elsewhere
        (Renode, boards, QEMU without -icount)."""
        if model is None or not target.capabilities.cycle_plugin or not platform.target.icount:
            return None
        plugin = CyclePlugin(model, workdir, elf)
        target.plugin_args = plugin.qemu_args()
        return cls(model, plugin)

    def _note(self, text: str) -> None:
        if text not in self.notes and len(self.notes) < 5:
            self.notes.append(text)
            self.basis["notes"] = self.notes

    def skip(self, upto: int | None = None) -> None:
        """Drop the records so far (requests that are not an invoke), or up to a `cut`."""
        self.plugin.records(upto)

    def cut(self) -> int:
        """Where the records written so far end: taken when an invoke's reply
        is in, it lets the host send the next request before reading them
        (`invoke(upto=...)`)."""
        return self.plugin.cut()

    def invoke(self, count: int, operators: list[dict] | None, tolerance: float,
               upto: int | None = None) -> dict | None:
        """The estimate of the invoke answered (`VectorResult.cycles`), from
        the records so far or up to the `cut` taken at its reply, and each
        operator dict's `cycles`; None (and a note) when the plugin's records
        do not agree with the firmware's count."""
        if not self.plugin.has_counter_marker:
            return None  # nothing marks the invoke: whole-run totals only (noted at attach)
        op_counts = [o["count"] for o in operators] if operators else None
        found = align_invoke(self.plugin.records(upto), count, op_counts, tolerance)
        if found.note:
            self._note(found.note)
        if found.cycles is None:
            return None
        if found.operators is not None and operators:
            for op, cycles in zip(operators, found.operators):
                op["cycles"] = cycles
        return {"value": found.cycles, "kind": "cycles_estimate", "model": self.model.id, "source": "qemu-plugin",
                "latency_ms": round(self.model.latency_ms(found.cycles), 6), "clock_hz": self.model.clock_hz}

    def finish(self) -> None:
        """After QEMU has exited: the whole run's totals and how many
        instructions no rule classified (charged the table's `default`).
        Never raises: it runs while the run is being cleaned up."""
        try:
            totals = self.plugin.totals()
        except InfraError as exc:  # the plugin refused to load: the run has already failed and says why
            self._note(str(exc).splitlines()[0])
            return
        finally:
            self.plugin.close()
        if totals is None:
            self._note("the cycle plugin wrote no totals (QEMU did not exit cleanly)")
            return
        self.basis["unclassified"] = totals["unclassified"]
        self.basis["run"] = {"instructions": totals["instructions"], "cycles": totals["cycles"],
                             "latency_ms": round(self.model.latency_ms(totals["cycles"]), 6)}


def error_band_for(model_id: str) -> str:
    try:
        from .validation import error_band
    except ImportError:
        return "unknown (not validated)"
    return error_band(model_id)


def _validation(model_id: str) -> str | None:
    """Which validation files compare this model with silicon, or None."""
    try:
        from .validation import comparisons
    except ImportError:
        return None
    files = sorted({c.file for c in comparisons(model_id)})
    return ", ".join(files) or None
