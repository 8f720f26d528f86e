"""The QEMU cycle plugin from the host's side: build it, configure it, read
what it wrote.

The plugin (firmware/qemu-plugin/hil_cycles.c) is compiled once per source
version with the system C compiler into the cache, atomically, so parallel
runs share it. The host writes a flat config (core table, memory model,
marker addresses, output path) and reads back text records: `M marker
instructions cycles` each time the guest reaches a marker, `X`/`H`/`U` at
exit (the file's format is in the C file's header).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

from .. import resources
from ..errors import InfraError, UsageError
from .model import TimingModel

log = logging.getLogger(__name__)

SOURCE = resources.qemu_plugin_source()
CONFIG_VERSION = 1
COUNTER_SYMBOL = "board_counter"  # every count the firmware takes goes through it: marker 0
MAX_MARKERS = 64  # the addresses the plugin watches (MAX_MARKERS in hil_cycles.c)


@dataclass(frozen=True)
class Record:
    marker: int
    instructions: int
    cycles: int


def cache_dir() -> Path:
    """$HIL_CACHE_DIR (the build cache), else $XDG_CACHE_HOME/hil, else ~/.cache/hil; absolute, as QEMU
    runs in the run directory and must find the plugin from there."""
    configured = os.environ.get("HIL_CACHE_DIR")
    if configured:
        return Path(configured).absolute()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hil"


def build_plugin(source: Path = SOURCE) -> Path:
    """The plugin's shared object, compiled on first use for this source."""
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:16]
    out_dir = cache_dir() / "qemu-plugin" / digest
    so = out_dir / "hil_cycles.so"
    if so.is_file():
        return so
    compiler = os.environ.get("CC") or "cc"
    words = shlex.split(compiler) or ["cc"]  # CC may carry a wrapper or flags: "ccache gcc", "gcc -m32"
    if not shutil.which(words[0]):
        raise InfraError(f"no C compiler (`{compiler}`) to build the QEMU cycle plugin",
                         hint="install one: apt-get install -y gcc (or run with --no-cycles)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".hil_cycles.", suffix=".so", dir=out_dir)
        os.close(fd)
    except OSError as exc:
        raise InfraError(f"cannot write the cycle plugin to {out_dir}: {exc.strerror or exc}",
                         hint="set HIL_CACHE_DIR to a writable directory") from exc
    cmd = [*words, "-shared", "-fPIC", "-O2", "-std=gnu99", "-fvisibility=hidden", "-o", tmp, str(source)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except BaseException as exc:  # Ctrl-C, or a compiler that cannot be run: leave no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InfraError(f"cannot run the C compiler `{compiler}`: {exc}",
                             hint="install one: apt-get install -y gcc (or run with --no-cycles)") from exc
        raise
    if proc.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        raise InfraError(f"the cycle plugin did not compile: {proc.stderr.strip()[-800:]}",
                         hint=f"compile it by hand to see why: {' '.join(cmd)}")
    os.replace(tmp, so)  # atomic: a parallel run sees the old state or the whole file
    return so


def elf_symbols(elf: Path, names: list[str]) -> dict[str, int]:
    """Addresses (Thumb bit cleared) of the named function/object symbols present in the ELF."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    found: dict[str, int] = {}
    try:
        with open(elf, "rb") as fh:
            for sec in ELFFile(fh).iter_sections():
                if isinstance(sec, SymbolTableSection):
                    for name in names:
                        for sym in sec.get_symbol_by_name(name) or ():
                            if sym["st_shndx"] != "SHN_UNDEF":
                                found[name] = sym["st_value"] & ~1
    except Exception as exc:  # pyelftools raises its own ELFError
        raise UsageError(f"{elf}: not a readable ELF file ({exc})", hint="pass the firmware's .elf") from exc
    return found


class CyclePlugin:
    """One run's plugin: its config file, QEMU arguments and records.

    Marker 0 is the firmware's counter read (`board_counter`) when the ELF
    has it (`has_counter_marker`); `marks` are further symbols, numbered
    from 1 in the order given (console mode's --mark)."""

    def __init__(self, model: TimingModel, workdir: Path, elf: Path, marks: list[str] | tuple[str, ...] = ()) -> None:
        self.model = model
        self.workdir = Path(workdir)
        self.elf = Path(elf)
        self.marks = list(marks)
        self.config_path = self.workdir / "cycles.cfg"
        self.output_path = self.workdir / "cycles.out"
        self._offset = 0
        self._pending = ""
        self._fd: int | None = None  # the output file, kept open (`_descriptor`)
        self._closes: weakref.finalize | None = None  # closes it, at close() or when the plugin is collected
        self._exit: dict | None = None
        self._queue: list[Record] = []
        self._refused: str | None = None
        symbols = elf_symbols(self.elf, [COUNTER_SYMBOL, *self.marks])
        missing = [m for m in self.marks if m not in symbols]
        if missing:
            raise UsageError(f"--mark: {', '.join(missing)} not in the firmware's symbols ({self.elf})",
                             hint="name functions the ELF defines (arm-none-eabi-nm -C the .elf), "
                                  "and keep them from being inlined (__attribute__((noinline)))")
        self.markers: dict[int, int] = {}  # marker id -> address
        if COUNTER_SYMBOL in symbols:
            self.markers[0] = symbols[COUNTER_SYMBOL]
        if len(self.markers) + len(self.marks) > MAX_MARKERS:
            raise UsageError(f"--mark: {len(self.marks)} marks, the cycle plugin watches at most "
                             f"{MAX_MARKERS - len(self.markers)} in this firmware",
                             hint="mark fewer functions (a span is between two consecutive marks)")
        for i, name in enumerate(self.marks, start=1):
            self.markers[i] = symbols[name]
        same = sorted({m for m in self.marks if [symbols[n] for n in self.marks].count(symbols[m]) > 1})
        if same:  # every hit would be two marks at once: spans of 0 cycles between them
            raise UsageError(f"--mark: {', '.join(same)} given more than once (or at the same address)",
                             hint="mark each function once; one mark alone gives the spans between its hits")

    @property
    def has_counter_marker(self) -> bool:
        return 0 in self.markers

    def config_text(self) -> str:
        m = self.model
        lines = [f"version {CONFIG_VERSION}", f"output {self.output_path}", f"isa {m.isa}"]
        lines += [f"cost {name} {round(value * 1000)}" for name, value in sorted(m.cycles.items())]
        lines.append(f"penalty {round(m.taken_branch * 1000)}")
        if m.dual_classes:
            lines += [f"dual {c}" for c in m.dual_classes]
            lines.append(f"dual_second {round(m.dual_second * 1000)}")
        for r in m.memory:
            caches = " ".join(f"{c.lines} {c.ways} {c.line_bytes}" if c else "0 0 0" for c in (r.cache, r.dcache))
            lines.append(f"region {r.region} {r.origin:#x} {r.length:#x} {r.wait_states} {r.line_bytes} "
                         f"{int(r.prefetch)} {int('fetch' in r.applies_to)} {int('load' in r.applies_to)} {caches}")
        lines += [f"marker {i} {addr:#x}" for i, addr in sorted(self.markers.items())]
        return "\n".join(lines) + "\n"

    def qemu_args(self) -> list[str]:
        """`-plugin` and its argument; builds the plugin and writes the config."""
        so = build_plugin()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text())
        self.close()
        self.output_path.write_text("")
        self._offset, self._pending, self._exit, self._queue = 0, "", None, []
        esc = lambda p: str(p).replace(",", ",,")  # noqa: E731  QEMU's option syntax doubles commas
        return ["-plugin", f"{esc(so)},config={esc(self.config_path)}"]

    def _descriptor(self) -> int:
        """The output file, opened once and kept open: the plugin appends to
        it (O_APPEND on the same file), so each read is one pread of the new
        bytes, not an open, seek, read and close per vector."""
        if self._fd is None:
            self._fd = os.open(self.output_path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._closes = weakref.finalize(self, os.close, self._fd)
        return self._fd

    def close(self) -> None:
        """Close the output file (it is opened again if read after)."""
        if self._closes is not None:
            self._closes()
        self._fd, self._closes = None, None

    def cut(self) -> int:
        """Where the records written so far end (the output file's size, one
        fstat): `records(upto=cut)` reads no further, so what a request sent
        after the cut leaves stays for a later call."""
        try:
            return max(self._offset, os.fstat(self._descriptor()).st_size)
        except OSError:
            return self._offset

    def _read(self, upto: int | None = None) -> list[str]:
        try:
            fd = self._descriptor()
            end = os.fstat(fd).st_size if upto is None else upto
            data = os.pread(fd, max(0, end - self._offset), self._offset) if end > self._offset else b""
        except OSError:
            return []
        self._offset += len(data)
        text = self._pending + data.decode(errors="replace")
        lines = text.split("\n")
        self._pending = lines.pop()  # an unfinished line waits for the next read
        return lines

    def records(self, upto: int | None = None) -> list[Record]:
        """Marker records written since the last call (up to the file offset
        `upto`, a `cut`, when given)."""
        self._parse(upto)
        out, self._queue = self._queue, []
        return out

    def _parse(self, upto: int | None = None) -> None:
        out = self._queue
        lines = self._read(upto)
        refused = self._refused or next((t[2:] for t in lines if t.startswith("E ")), None)
        if refused:
            self._refused = refused  # every later call says so too
            raise InfraError(f"the cycle plugin refused its configuration: {refused}",
                             hint=f"see {self.config_path}; or run with --no-cycles")
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "M" and len(parts) == 4:
                out.append(Record(int(parts[1]), int(parts[2]), int(parts[3])))
            elif parts[0] == "X" and len(parts) == 3:
                self._exit = {"instructions": int(parts[1]), "cycles": int(parts[2]), "histogram": {},
                              "unclassified": 0}
            elif parts[0] == "H" and len(parts) == 3 and self._exit is not None:
                self._exit["histogram"][parts[1]] = int(parts[2])
            elif parts[0] == "U" and len(parts) == 2 and self._exit is not None:
                self._exit["unclassified"] = int(parts[1])

    def totals(self) -> dict | None:
        """The whole run (`instructions`, `cycles`, `histogram`, `unclassified`),
        once QEMU has exited; None before."""
        self._parse()
        return self._exit

    def error(self) -> str | None:
        """The plugin's own complaint, if it refused to load (read from its output file)."""
        try:
            for line in self.output_path.read_text(errors="replace").splitlines():
                if line.startswith("E "):
                    return line[2:]
        except OSError:
            pass
        return None
