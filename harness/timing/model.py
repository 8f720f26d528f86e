"""A platform's timing model: its core's cycle table (timing/<model>.toml)
and its memory model (the platform file's [timing] table).

Both are data written by people from manuals; this module only reads and
checks them, so a typo is a UsageError naming the file, the key and the fix
before anything boots, never a silently wrong estimate.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from collections.abc import Iterator
from pathlib import Path

from .. import resources
from ..errors import UsageError
from ..platforms import CacheSpec, MemoryTimingSpec, Platform, Region, TimingSpec
from ..schema import Check, at_least, entry, not_blank, one_of, parse

log = logging.getLogger(__name__)

TIMING_DIR = resources.timing_dir()

#: instruction classes the plugin decodes every instruction into (firmware/qemu-plugin/hil_cycles.c)
THUMB_CLASSES = (
    "default", "alu", "branch", "load", "store", "load_pipelined", "store_pipelined", "load_pair", "store_pair",
    "ldm", "ldm_per_reg", "stm", "stm_per_reg", "mul", "mla", "mul_long", "mla_long", "dsp_mul", "dsp_mac",
    "dsp_mac_long", "simd", "sat", "div", "it", "fp_alu", "fp_mul", "fp_mac", "fp_div", "fp_sqrt", "fp_load",
    "fp_store", "fp_ldm", "fp_ldm_per_reg", "fp_stm", "fp_stm_per_reg", "fp_move", "fp64_alu", "fp64_mul",
    "fp64_mac", "fp64_div", "mve_alu", "mve_mul", "mve_mac", "mve_load", "mve_store", "mve_other", "lob",
    "system", "barrier")
RV32_CLASSES = ("default", "alu", "load", "store", "branch", "jump", "mul", "mulh", "div", "csr", "atomic", "system")
CLASSES = {"thumb": THUMB_CLASSES, "rv32": RV32_CLASSES}


@dataclass(frozen=True)
class Cache:
    lines: int
    ways: int
    line_bytes: int


@dataclass(frozen=True)
class MemoryCost:
    """What reading one [memory] region costs beyond the core table."""
    region: str
    origin: int
    length: int
    wait_states: int
    line_bytes: int
    prefetch: bool
    applies_to: tuple[str, ...]
    cache: Cache | None = None        # instruction fetches
    dcache: Cache | None = None       # data loads (without one, only the last line read is kept)

    def as_dict(self) -> dict:
        d = {"region": self.region, "wait_states": self.wait_states, "line_bytes": self.line_bytes,
             "prefetch": self.prefetch, "applies_to": list(self.applies_to)}
        if self.cache:
            d["cache"] = vars(self.cache)
        if self.dcache:
            d["dcache"] = vars(self.dcache)
        return d


@dataclass(frozen=True)
class TimingModel:
    id: str
    core: str
    isa: str
    revision: str
    source: str                       # the core table's citation
    cycles: dict[str, float]          # class -> cycles, zero-wait memory
    taken_branch: float
    clock_hz: int                     # the silicon clock the latency is for
    memory_source: str                # the platform [timing] table's citation
    memory: tuple[MemoryCost, ...] = ()
    dual_classes: tuple[str, ...] = ()
    dual_second: float = 0.0
    notes: dict = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def for_platform(cls, platform: Platform) -> "TimingModel | None":
        """The platform's model, or None when its file has no [timing] table."""
        if platform.timing is None or not platform.timing.estimates:
            return None  # no table, or one that only points elsewhere (a board's `emulated_by`)
        return cls.from_tables(platform.timing, platform.memory.regions(), platform.path)

    @classmethod
    def from_tables(cls, timing: TimingSpec, memory: dict[str, Region], platform_path: Path,
                    timing_dir: Path = TIMING_DIR) -> "TimingModel":
        where = f"{platform_path} [timing]"
        model_id = timing.model
        if not model_id:
            raise UsageError(f"{where}: `model` is missing", hint='name the core table: model = "cortex-m4" '
                                                                 f"(one of: {', '.join(available(timing_dir))})")
        table_path = timing_dir / f"{model_id}.toml"
        if not table_path.is_file():
            raise UsageError(f"{where}: model {model_id!r} has no table {table_path}",
                             hint=f"use one of: {', '.join(available(timing_dir))}, or write {table_path}")
        clock = timing.clock_hz
        if not clock:
            raise UsageError(f"{where}: `clock_hz` must be a positive integer (Hz), not {clock!r}",
                             hint="the clock of the silicon being modelled, e.g. clock_hz = 120_000_000")
        core = read_core_table(table_path)
        regions = _memory(timing.memory or {}, memory, where)
        return cls(id=core.id, core=core.core, isa=core.isa, revision=core.revision, source=core.source,
                   cycles=core.cycles, taken_branch=core.penalty.taken_branch, clock_hz=clock,
                   memory_source=timing.source, memory=regions, dual_classes=core.dual_issue.classes,
                   dual_second=core.dual_issue.second, notes=dict(core.notes or {}), path=table_path)

    def latency_ms(self, cycles: int | float) -> float:
        return cycles / self.clock_hz * 1e3

    def as_dict(self) -> dict:
        return {"id": self.id, "core": self.core, "isa": self.isa, "revision": self.revision,
                "source": self.source, "clock_hz": self.clock_hz, "memory_source": self.memory_source,
                "memory": [m.as_dict() for m in self.memory], "taken_branch": self.taken_branch,
                "table": str(self.path) if self.path else None}


def available(timing_dir: Path = TIMING_DIR) -> list[str]:
    """Core table ids (timing/*.toml, not the validation files)."""
    return sorted(p.stem for p in timing_dir.glob("*.toml") if not p.stem.startswith("validation"))


def _cycle_figures(table: dict[str, float]) -> str | None:
    bad = next((k for k, v in table.items() if v < 0), None)
    return None if bad is None else f"has {bad} = {table[bad]!r}: a number of cycles must be >= 0"


@dataclass(frozen=True)
class PenaltySpec:
    """[penalty] of a core table."""

    taken_branch: float = entry("cycles a taken branch adds (refilling the pipeline)", 0.0, unit="cycles",
                                check=at_least(0))


@dataclass(frozen=True)
class DualIssueSpec:
    """[dual_issue] of a core table: pairs a dual-issue core can retire together."""

    classes: tuple[str, ...] = entry("classes that may issue second in a pair", ())
    second: float = entry("cycles the second instruction of a pair costs", 0.0, unit="cycles", check=at_least(0))


@dataclass(frozen=True)
class CoreTable:
    """One timing/<id>.toml: a core's cycles per instruction class, from its manual."""

    id: str = entry("the table's id, its file name", check=not_blank, example='"cortex-m4"')
    core: str = entry("the core's name", check=not_blank, example='"Cortex-M4"')
    isa: str = entry("the instruction set the plugin decodes", check=one_of(*CLASSES), example='"thumb"')
    source: str = entry("the manual, its revision and the tables the figures come from", check=not_blank)
    cycles: dict[str, float] = entry("cycles per instruction class at zero-wait memory (needs `default`)",
                                     unit="cycles", check=Check(_cycle_figures, ">= 0"))
    revision: str = entry("the core revision the manual describes", "")
    penalty: PenaltySpec = entry("[penalty] table", PenaltySpec())
    dual_issue: DualIssueSpec = entry("[dual_issue] table", DualIssueSpec())
    notes: dict[str, str] | None = entry("per class: how a figure was chosen", None)

    def problems(self) -> Iterator[tuple[str, str, str]]:
        names = CLASSES[self.isa]
        if "default" not in self.cycles:
            yield "cycles", "needs at least `default`", "add [cycles] with default = 1 and one line per instruction class"
        unknown = sorted(set(self.cycles) - set(names))
        if unknown:
            yield "cycles", f"has unknown instruction class(es) {', '.join(unknown)} for isa {self.isa}", \
                f"use the classes the plugin decodes: {', '.join(names)}"
        bad = sorted(set(self.dual_issue.classes) - set(names))
        if bad:
            yield "dual_issue.classes", f"has unknown class(es) {', '.join(bad)}", f"list classes from: {', '.join(names)}"


def read_core_table(path: Path) -> CoreTable:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    table = parse(CoreTable, data, path)
    if table.id != path.stem:
        raise UsageError(f"{path}: id {table.id!r} differs from the file name",
                         hint=f'write id = "{path.stem}" (results cite the id; the file is found by it)')
    return table


def _memory(table: dict[str, MemoryTimingSpec], memory: dict[str, Region], where: str) -> tuple[MemoryCost, ...]:
    """The [timing.memory.<region>] tables (checked when the platform file was read) as costs."""
    regions = []
    for name, spec in table.items():
        if name not in memory:
            raise UsageError(f"{where}.memory.{name}: {name!r} is not a region of the platform's [memory] table",
                             hint=f"name one of: {', '.join(memory)}")
        r = memory[name]
        regions.append(MemoryCost(name, r.origin, r.length, spec.wait_states, spec.line_bytes, spec.prefetch,
                                  spec.applies_to, _cache(spec.cache), _cache(spec.dcache)))
    return tuple(regions)


def _cache(spec: CacheSpec | None) -> Cache | None:
    return Cache(spec.lines, spec.ways, spec.line_bytes) if spec is not None else None
