"""Platforms are data: one TOML file per platform in platforms/.

A platform file says how to build firmware for a target (board layer, CPU
flags, memory map, buffer sizes), how to run it (emulator machine and
flags), what its counter measures, and optionally its cycle-estimate
([timing]) and power ([power]) figures. Code reads these fields and never
branches on a platform's name.

Each file is read once into the frozen dataclasses below: every table and
key is declared here, with its unit and range, so a misspelt key, a wrong
type or a value out of range is an error naming the file, the key and the
fix, before anything is built. docs/platforms.md is generated from these
declarations (`python -m harness.platforms`; tests/test_platform_specs.py
checks it is current).
"""

from __future__ import annotations

import logging
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from . import resources
from .errors import UsageError
from .schema import (address32, at_least, describe, entry, fail, multiple_of, not_blank, one_of, parse, positive,
                     power_of_two)

log = logging.getLogger(__name__)

PLATFORMS_DIR = resources.platforms_dir()

#: how a platform runs (harness/targets: one target class per kind)
TARGET_KINDS = ("qemu", "renode", "serial-board")
#: the engine's int8 kernel sets (firmware/engine/engine.cmake)
KERNEL_SETS = ("reference", "dsp", "mve")
#: what the device's counter is read from (harness/checks/counts.py)
COUNTER_SOURCES = ("systick", "minstret", "dwt", "renode-monitor", "none")
#: what one count means
COUNT_KINDS = ("instructions", "cycles", "ticks")
#: how good a power figure is (harness/power/energy.py STATUSES)
POWER_STATUSES = ("verified", "derived", "assumed")
#: the accesses a memory region's wait states apply to (harness/timing/model.py)
ACCESSES = ("fetch", "load")
#: a board's flasher (harness/targets/flash.py) and reset method, serial flow control (harness/targets/board.py)
FLASHERS = ("pyocd", "openocd", "west", "jlink", "command", "none")
RESET_METHODS = ("flasher", "rts", "dtr", "protocol", "command", "power", "none")
FLOW_CONTROL = ("none", "rtscts", "xonxoff", "dsrdtr")
REGIONS = ("code", "ram", "bulk")


@dataclass(frozen=True)
class Region:
    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length


@dataclass(frozen=True)
class TargetSpec:
    """[target]: what runs the firmware."""

    kind: str = entry("how the firmware runs: an emulator or a board over serial", check=one_of(*TARGET_KINDS),
                      example='"qemu"')
    executable: str = entry("the emulator's program (qemu: qemu-system-arm; renode: renode or $RENODE)", "")
    package: str = entry("the Debian package that provides `executable` (named when it is missing)", "")
    machine: str = entry("QEMU's -machine", "")
    extra_args: tuple[str, ...] = entry("more emulator arguments", ())
    icount: str = entry("QEMU's -icount setting; shift=0 makes time count instructions", "",
                        example='"shift=0,align=off,sleep=off"')
    semihosting: bool = entry("the emulator serves semihosting (host files, exit status)", False)
    repl: str = entry("Renode: the platform description (.repl) in Renode's tree", "")
    repl_overrides: str = entry("Renode: .repl text applied over `repl`", "")
    uart: str = entry("Renode: the UART peripheral the firmware talks on", "", example='"sysbus.usart2"')
    cpu: str = entry("QEMU: -cpu; Renode: the CPU peripheral whose instructions are counted", "", example='"sysbus.cpu"')
    setup: tuple[str, ...] = entry("Renode: monitor commands run after the machine is created", ())
    machine_name: str = entry("Renode: the machine's name in the monitor", "hil")
    terminal_name: str = entry("Renode: the UART terminal's name in the monitor", "hil_uart")
    boot_time: str = entry("Renode: virtual seconds the firmware runs before the host connects", "0.01",
                           unit="s")

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if self.kind == "qemu" and not self.machine:
            yield "machine", "is missing (a qemu target needs a machine)", 'add machine = "mps2-an386"'
        if self.kind == "renode" and not (self.repl and self.uart):
            yield ("repl" if not self.repl else "uart"), "is missing (a renode target needs repl and uart)", \
                'add repl = "platforms/cpus/....repl" and uart = "sysbus.uart0"'


@dataclass(frozen=True)
class FirmwareSpec:
    """[firmware]: how the runner firmware is built."""

    board: str = entry("the board layer, a directory of firmware/boards/", example='"mps2"')
    cpu_flags: tuple[str, ...] = entry("compiler flags for the core", example='["-mcpu=cortex-m4"]')
    uart_base: int = entry("address of the UART the protocol runs on", check=address32(), example="0x40004000")
    clock_hz: int = entry("the core clock the firmware runs at (SysTick's clock)", unit="Hz", check=positive,
                          example="25_000_000")
    arena_bytes: int = entry("tensor arena size", unit="bytes", check=multiple_of(16), example="0x100000")
    model_capacity_bytes: int = entry("model buffer size (a model in RAM)", unit="bytes", check=multiple_of(16),
                                      example="0x200000")
    stack_bytes: int = entry("main stack size (AAPCS: 8-byte aligned)", 0x4000, unit="bytes",
                             check=multiple_of(8))
    toolchain: str = entry("the cross toolchain's prefix", "arm-none-eabi",
                           check=one_of("arm-none-eabi", "riscv64-unknown-elf"))
    kernels: str = entry("the engine's int8 kernel set ($HIL_KERNELS overrides)", "reference",
                         check=one_of(*KERNEL_SETS))
    zephyr_board: str = entry("the Zephyr board for `hil build <zephyr app>` (docs/build.md)", "")
    defines: dict[str, int | str | bool] | None = entry("C preprocessor definitions for the board layer and engine",
                                                 None)

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if not self.cpu_flags:
            yield "cpu_flags", "is empty", 'name the core, e.g. cpu_flags = ["-mcpu=cortex-m4"]'


@dataclass(frozen=True)
class MemorySpec:
    """[memory]: name = [origin, length] of the regions the linker script places."""

    code: tuple[int, int] = entry("code and constants", unit="[address, bytes]", example="[0x0, 0x400000]")
    ram: tuple[int, int] = entry("data, bss and stack", unit="[address, bytes]", example="[0x20000000, 0x400000]")
    bulk: tuple[int, int] = entry("model buffer and arena", unit="[address, bytes]",
                                  example="[0x21000000, 0x1000000]")

    def regions(self) -> dict[str, Region]:
        return {"code": Region(*self.code), "ram": Region(*self.ram), "bulk": Region(*self.bulk)}

    def region(self, name: str) -> Region:
        return self.regions()[name]

    def problems(self) -> Iterator[tuple[str, str, str]]:
        regions = self.regions()
        for name, r in regions.items():
            if r.origin < 0 or r.length <= 0 or r.origin % 4 or r.length % 4 or r.end > 1 << 32:
                yield name, f"[{r.origin:#x}, {r.length:#x}] is not a region", \
                    "origin >= 0 and length > 0, both multiples of 4, ending within the 32-bit address space"
        for i, a in enumerate(REGIONS):  # regions may share one memory (small MCUs), never overlap
            for b in REGIONS[i + 1:]:
                ra, rb = regions[a], regions[b]
                if ra.origin < rb.end and rb.origin < ra.end:
                    yield a, (f"[{ra.origin:#x}, {ra.length:#x}] overlaps memory.{b} [{rb.origin:#x}, "
                              f"{rb.length:#x}]"), "make the regions disjoint"


@dataclass(frozen=True)
class CounterSpec:
    """[counter]: what the per-vector count measures."""

    source: str = entry("where the count comes from", "none", check=one_of(*COUNTER_SOURCES))
    kind: str = entry("what one scaled count is", "ticks", check=one_of(*COUNT_KINDS))
    per_tick: float = entry("counts per raw tick (measured: tests/test_platforms_qemu.py)", 1.0, check=positive)
    cycles_per_instruction: float | None = entry("cycles per instruction, for an energy estimate from "
                                                 "instructions", None, check=positive)
    cpi_source: str = entry("where cycles_per_instruction comes from", "")


@dataclass(frozen=True)
class KnownDefect:
    """[emulator] known_defects[]: something the emulator executes wrongly."""

    version: str = entry("the emulator and its version", check=not_blank, example='"Renode 1.15.3"')
    seen: str = entry("what was seen", check=not_blank)
    instructions: tuple[str, ...] = entry("mnemonics the firmware image must therefore not contain", ())


@dataclass(frozen=True)
class EmulatorSpec:
    """[emulator]: what the emulator is known to get wrong."""

    known_defects: tuple[KnownDefect, ...] = entry("defects, checked in the built image "
                                                   "(tests/test_emulator_defects.py)", ())


@dataclass(frozen=True)
class PowerFigureSpec:
    """[power.active] / [power.sleep]: one tagged power figure (one value key)."""

    status: str = entry("how good the figure is", check=one_of(*POWER_STATUSES))
    source: str = entry("document, revision and table/page (docs/power-sources.md)", check=not_blank)
    mw: float | None = entry("active power", None, unit="mW", check=positive)
    ma: float | None = entry("active current (x voltage_v)", None, unit="mA", check=positive)
    ua_per_mhz: float | None = entry("active current per MHz (x clock_hz x voltage_v)", None, unit="uA/MHz",
                                     check=positive)
    uw: float | None = entry("sleep power", None, unit="uW", check=positive)
    ua: float | None = entry("sleep current (x voltage_v)", None, unit="uA", check=positive)
    voltage_v: float | None = entry("the voltage this figure was measured at, when not [power] voltage_v", None,
                                    unit="V", check=positive)
    conditions: str = entry("the conditions of the figure", "")
    basis: str = entry("derived: the formula; assumed: why", "")
    band_pct: tuple[float, float] | None = entry("measured or stated spread", None, unit="% [low, high]")
    state: str = entry("sleep: the low-power state", "")

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if self.status in ("derived", "assumed") and not self.basis.strip():
            yield "basis", f"is missing for a {self.status} figure", \
                "derived: give the formula from the published measurement; assumed: say why"
        if self.band_pct is not None and not -100 < self.band_pct[0] <= self.band_pct[1]:
            yield "band_pct", f"is {list(self.band_pct)}", "[low, high] in percent with -100 < low <= high"


@dataclass(frozen=True)
class PowerSpec:
    """[power]: the part's power figures, for an energy estimate (harness/power)."""

    part: str = entry("the part the figures are for", example='"STM32L4R5ZI"')
    voltage_v: float = entry("supply voltage", unit="V", check=positive, example="1.8")
    clock_hz: float = entry("the clock the active figure is for", unit="Hz", check=positive, example="120_000_000")
    active: PowerFigureSpec | None = entry("running inference", None)
    sleep: PowerFigureSpec | None = entry("between inferences", None)
    # an older, untagged form: assumed unless verified = true
    active_ma: float | None = entry("untagged form: active current", None, unit="mA", check=positive)
    active_ua_per_mhz: float | None = entry("untagged form: active current per MHz", None, unit="uA/MHz",
                                            check=positive)
    idle_ua: float | None = entry("untagged form: sleep current", None, unit="uA", check=positive)
    verified: bool = entry("untagged form: the figures were read in the datasheet", False)
    datasheet: str = entry("untagged form: the source", "")
    conditions: str = entry("untagged form: the conditions", "")

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if self.active is not None and (self.active_ma is not None or self.active_ua_per_mhz is not None):
            yield "active_ma", "is given with [power.active]", "give the figure once, in [power.active]"
        if self.active is None and (self.active_ma is not None or self.active_ua_per_mhz is not None) \
                and not self.datasheet:
            yield "datasheet", "is missing for an untagged figure", "name the source, or use a tagged [power.active]"

    @property
    def has_active(self) -> bool:
        return self.active is not None or self.active_ma is not None or self.active_ua_per_mhz is not None


@dataclass(frozen=True)
class CacheSpec:
    """A flash cache the cycle plugin models (lines of line_bytes, `ways`-way associative, LRU)."""

    lines: int = entry("cache lines", check=positive, example="32")
    line_bytes: int = entry("bytes per line", unit="bytes", check=positive, example="32")
    ways: int = entry("associativity (lines = ways: fully associative)", 1, check=positive)

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if self.ways > 64 or self.lines % self.ways:
            yield "ways", f"is {self.ways} for {self.lines} lines", "ways from 1 to 64, dividing lines"


@dataclass(frozen=True)
class MemoryTimingSpec:
    """[timing.memory.<region>]: what reading a [memory] region costs beyond the core table."""

    wait_states: int = entry("wait states per read", 0, check=at_least(0))
    line_bytes: int = entry("bytes one read returns", 4, unit="bytes", check=power_of_two)
    prefetch: bool = entry("sequential lines are prefetched", False)
    applies_to: tuple[str, ...] = entry("the accesses the cost applies to", ("fetch",), check=one_of(*ACCESSES))
    cache: CacheSpec | None = entry("instruction cache", None)
    dcache: CacheSpec | None = entry("data cache (constant loads)", None)
    source: str = entry("where the figures come from", "")
    note: str = entry("a remark", "")

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if not self.applies_to:
            yield "applies_to", "is empty", 'e.g. applies_to = ["fetch", "load"]'


@dataclass(frozen=True)
class TimingSpec:
    """[timing]: the cycle estimate's core table and clock (docs/counts.md)."""

    model: str = entry("the core table, timing/<model>.toml", "")
    clock_hz: int | None = entry("the silicon clock the estimate is for", None, unit="Hz", check=positive)
    source: str = entry("where the clock and memory figures come from", "")
    memory: dict[str, MemoryTimingSpec] | None = entry("per-region costs", None)
    emulated_by: str = entry("a board's emulated twin: the platform whose estimate it is compared with", "")
    calibration: str = entry("a calibration file fitted to a board (calibration/README.md)", "")

    @property
    def estimates(self) -> bool:
        """True when the table gives an estimate (not only `emulated_by`)."""
        return bool(self.model or self.clock_hz or self.memory)

    def problems(self) -> Iterator[tuple[str, str, str]]:
        if self.estimates and not self.model:
            yield "model", "is missing", 'name the core table, e.g. model = "cortex-m4"'
        if self.estimates and not self.clock_hz:
            yield "clock_hz", "is missing", "the clock of the silicon being modelled, e.g. clock_hz = 120_000_000"
        for name in self.memory or {}:
            if name not in REGIONS:
                yield "memory", f"{name!r} is not a region of the [memory] table", f"name one of: {', '.join(REGIONS)}"


@dataclass(frozen=True)
class SerialSpec:
    """[board] serial: the board's serial port settings."""

    baud: int = entry("baud rate", 115200, check=positive)
    flow_control: str = entry("flow control", "none", check=one_of(*FLOW_CONTROL))
    uart: str = entry("which UART and pins (for people)", "")


@dataclass(frozen=True)
class BoardSettings:
    """[board]: a real board's probe, flasher and serial defaults."""

    flasher: str = entry("the flashing tool (--flasher overrides)", "", check=one_of(*FLASHERS, ""))
    reset: str = entry("how the board is reset", "flasher", check=one_of(*RESET_METHODS))
    serial: SerialSpec = entry("serial port settings", SerialSpec())
    probe: str = entry("the debug probe (for people)", "")
    port: str = entry("the default serial port (--port overrides)", "")
    zephyr_board: str = entry("the Zephyr board name", "")
    pyocd_target: str = entry("pyocd: --target", "")
    openocd_config: tuple[str, ...] = entry("openocd: -f config files", ())
    jlink_device: str = entry("J-Link: -Device", "")
    jlink_interface: str = entry("J-Link: -If", "SWD")
    jlink_speed: int = entry("J-Link: -Speed", 4000, unit="kHz", check=positive)
    west_runner: str = entry("west: --runner", "")
    west_build_dir: str = entry("west: the build directory", "")
    flash_command: str = entry("command flasher: the program command, with {probe} {hex} {bin} {elf}", "")
    reset_command: str = entry("command flasher: the reset command", "")
    resets_after_flash: bool = entry("command flasher: programming also resets the board", True)
    flash_timeout: float = entry("seconds a flash may take", 180.0, unit="s", check=positive)
    flash_args: tuple[str, ...] = entry("more flasher arguments", ())
    pyocd_executable: str = entry("pyocd's program, when not `pyocd` on PATH", "")
    openocd_executable: str = entry("openocd's program, when not `openocd` on PATH", "")
    west_executable: str = entry("west's program, when not `west` on PATH", "")
    jlink_executable: str = entry("J-Link Commander, when not `JLinkExe` on PATH", "")
    reset_pulse_s: float = entry("reset line pulse", 0.1, unit="s", check=positive)
    hello_retries: int = entry("HELLO attempts after a reset", 5, check=positive)
    hello_timeout: float | None = entry("seconds per HELLO attempt", None, unit="s", check=positive)
    boot_quiet_s: float = entry("quiet time after boot before HELLO", 0.2, unit="s", check=at_least(0))
    port_wait_s: float = entry("seconds to wait for the port to appear", 5.0, unit="s", check=at_least(0))

    def executable(self, flasher: str) -> str:
        """The program named for `flasher` in this table, or ""."""
        return {"pyocd": self.pyocd_executable, "openocd": self.openocd_executable,
                "west": self.west_executable, "jlink": self.jlink_executable}.get(flasher, "")


@dataclass(frozen=True)
class Platform:
    """One platform file, checked."""

    name: str = entry("the platform's name: the file's name without .toml", example='"mps2-an386"')
    description: str = entry("one line for `hil platforms`", example='"Cortex-M4F (Arm MPS2 AN386) in QEMU"')
    target: TargetSpec = entry("[target] table")
    firmware: FirmwareSpec = entry("[firmware] table")
    memory: MemorySpec = entry("[memory] table")
    core: str = entry("the core, for people and reports", "", example='"cortex-m4f"')
    counter: CounterSpec = entry("[counter] table", CounterSpec())
    emulator: EmulatorSpec = entry("[emulator] table", EmulatorSpec())
    power: PowerSpec | None = entry("[power] table", None)
    timing: TimingSpec | None = entry("[timing] table", None)
    board: BoardSettings = entry("[board] table", BoardSettings())
    path: Path = Path()  # the file it was read from (not a key)

    @property
    def target_kind(self) -> str:
        return self.target.kind

    @property
    def counter_kind(self) -> str:
        return self.counter.kind

    @property
    def counter_per_tick(self) -> float:
        return self.counter.per_tick

    @property
    def known_defects(self) -> tuple[KnownDefect, ...]:
        return self.emulator.known_defects

    @property
    def avoided_instructions(self) -> frozenset[str]:
        """Mnemonics (upper case) the firmware image must not contain."""
        return frozenset(i.upper() for d in self.known_defects for i in d.instructions)

    def problems(self) -> Iterator[tuple[str, str, str]]:
        fw, bulk = self.firmware, self.memory.region("bulk")
        need = fw.arena_bytes + fw.model_capacity_bytes
        if need > bulk.length:
            yield ("firmware.arena_bytes + model_capacity_bytes",
                   f"need {need} bytes but memory.bulk holds {bulk.length}",
                   "shrink the arena or the model buffer, or enlarge the bulk region")


def load_platform_file(path: Path) -> Platform:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read ({exc})", hint="give a readable platform file") from exc
    return replace(parse(Platform, data, path), path=path)


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
        raise fail(path, "name", f"is {platform.name!r} but the file is named {path.name}",
                   "make the name match the file name")
    return platform


def board_settings(table: dict, where: Path | str = "[board]") -> BoardSettings:
    """A [board] table given as a dict (a test's, or a tool's own) as a BoardSettings."""
    return parse(BoardSettings, table, where, "board")


def power_spec(table: dict, where: Path | str = "[power]") -> PowerSpec:
    """A [power] table given as a dict as a PowerSpec."""
    return parse(PowerSpec, table, where, "power")


def timing_spec(table: dict, where: Path | str = "[timing]") -> TimingSpec:
    """A [timing] table given as a dict as a TimingSpec."""
    return parse(TimingSpec, table, where, "timing")


def reference_markdown() -> str:
    """The key reference of docs/platforms.md, from the declarations above."""
    lines = ["| table | key | type | default | unit | allowed | meaning |", "|---|---|---|---|---|---|---|"]
    for k in describe(Platform):
        lines.append(f"| {k.table} | `{k.key}` | {k.type} | {k.default} | {k.unit} | {k.range} | "
                     f"{k.doc.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
