"""Platforms are data: one TOML file per platform in platforms/.

A platform file says how to build firmware for a target (board layer, CPU
flags, memory map, buffer sizes), how to run it (emulator machine and
flags), and what its counter measures. Code reads these fields and never
branches on a platform's name.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import resources
from .errors import UsageError

log = logging.getLogger(__name__)

PLATFORMS_DIR = resources.platforms_dir()


@dataclass(frozen=True)
class Region:
    origin: int
    length: int


@dataclass(frozen=True)
class Platform:
    name: str
    description: str
    core: str
    path: Path
    target: dict
    firmware: dict
    memory: dict[str, Region]
    counter: dict
    power: dict = field(default_factory=dict)  # energy model, with its datasheet
    board: dict = field(default_factory=dict)  # probe, flasher, serial defaults (real boards)
    # [emulator] known_defects: what the emulator executes wrongly (version,
    # what was seen) and the instructions the firmware must therefore avoid
    known_defects: tuple[dict, ...] = ()

    @property
    def target_kind(self) -> str:
        return self.target["kind"]

    @property
    def counter_kind(self) -> str:
        return self.counter.get("kind", "none")

    @property
    def counter_per_tick(self) -> float:
        return float(self.counter.get("per_tick", 1))

    @property
    def avoided_instructions(self) -> frozenset[str]:
        """Mnemonics (upper case) the firmware image must not contain."""
        return frozenset(i.upper() for d in self.known_defects for i in d.get("instructions", ()))


_REQUIRED = {
    "target": {"kind": str},
    "firmware": {"board": str, "cpu_flags": list, "uart_base": int, "clock_hz": int,
                 "arena_bytes": int, "model_capacity_bytes": int},
}
_REGIONS = ("code", "ram", "bulk")


def _fail(path: Path, key: str, problem: str, fix: str) -> UsageError:
    return UsageError(f"{path}: `{key}` {problem}", hint=fix)


def load_platform_file(path: Path) -> Platform:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    for key in ("name", "description"):
        if not isinstance(data.get(key), str):
            raise _fail(path, key, "is missing or not a string", f'add {key} = "..."')
    for table, fields in _REQUIRED.items():
        section = data.get(table)
        if not isinstance(section, dict):
            raise _fail(path, f"[{table}]", "table is missing", f"add a [{table}] table")
        for key, kind in fields.items():
            if not isinstance(section.get(key), kind):
                raise _fail(path, f"{table}.{key}", f"is missing or not a {kind.__name__}",
                            f"set {table}.{key} (see platforms/mps2-an386.toml)")
    memory = {}
    for region in _REGIONS:
        value = data.get("memory", {}).get(region)
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
            raise _fail(path, f"memory.{region}", "must be [origin, length] integers",
                        f"set memory.{region} = [0x..., 0x...]")
        memory[region] = Region(*value)
    fw = data["firmware"]
    if not isinstance(fw.get("defines", {}), dict):
        raise _fail(path, "firmware.defines", "must be a table", "write defines = { NAME = value, ... }")
    need = fw["arena_bytes"] + fw["model_capacity_bytes"]
    if need > memory["bulk"].length:
        raise _fail(path, "firmware.arena_bytes + model_capacity_bytes",
                    f"need {need} bytes but memory.bulk holds {memory['bulk'].length}",
                    "shrink the arena or the model buffer, or enlarge the bulk region")
    for i, a in enumerate(_REGIONS):  # regions may share one memory (small MCUs), never overlap
        for b in _REGIONS[i + 1:]:
            ra, rb = memory[a], memory[b]
            if ra.origin < rb.origin + rb.length and rb.origin < ra.origin + ra.length:
                raise _fail(path, f"memory.{a}", f"[{ra.origin:#x}, {ra.length:#x}] overlaps memory.{b} "
                            f"[{rb.origin:#x}, {rb.length:#x}]", "make the regions disjoint")
    return Platform(
        name=data["name"], description=data["description"], core=data.get("core", ""),
        path=path, target=data["target"], firmware=fw, memory=memory,
        counter=data.get("counter", {}), power=data.get("power", {}), board=data.get("board", {}),
        known_defects=_known_defects(path, data.get("emulator", {})),
    )


def _known_defects(path: Path, emulator) -> tuple[dict, ...]:
    """[emulator] known_defects = [{version, seen, instructions}, ...]."""
    example = 'known_defects = [{ version = "Renode 1.15.3", seen = "...", instructions = ["VRINTA"] }]'
    if not isinstance(emulator, dict):
        raise _fail(path, "[emulator]", "must be a table", f"write [emulator] then {example}")
    defects = emulator.get("known_defects", [])
    if not isinstance(defects, list):
        raise _fail(path, "emulator.known_defects", "must be a list of tables", f"write {example}")
    for i, defect in enumerate(defects):
        key = f"emulator.known_defects[{i}]"
        if not isinstance(defect, dict):
            raise _fail(path, key, "must be a table", f"write {example}")
        for name in ("version", "seen"):
            if not isinstance(defect.get(name), str) or not defect[name].strip():
                raise _fail(path, f"{key}.{name}", "is missing or not a string",
                            f"say which emulator version and what was seen: {example}")
        instructions = defect.get("instructions", [])
        if not (isinstance(instructions, list) and all(isinstance(x, str) and x for x in instructions)):
            raise _fail(path, f"{key}.instructions", "must be a list of mnemonics",
                        'write instructions = ["VRINTA", ...]')
    return tuple(defects)


def available() -> list[str]:
    return sorted(p.stem for p in PLATFORMS_DIR.glob("*.toml"))


def load_platform(name_or_path: str) -> Platform:
    """A platform by name (platforms/NAME.toml) or by path to a TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.exists():
        return load_platform_file(candidate)
    path = PLATFORMS_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise UsageError(f"unknown platform {name_or_path!r}",
                         hint=f"choose one of: {', '.join(available())} (`hil platforms` lists them)")
    platform = load_platform_file(path)
    if platform.name != name_or_path:
        raise _fail(path, "name", f"is {platform.name!r} but the file is named {path.name}",
                    "make the name match the file name")
    return platform
