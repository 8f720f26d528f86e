"""What a built ELF contains: sizes (the Berkeley `size` split), the GNU
build id the firmware reports in HELLO, and symbols for naming fault PCs."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, SymbolTableSection

from ..errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ElfInfo:
    path: Path
    build_id: str
    text: int
    data: int
    bss: int
    sections: dict[str, int] = field(default_factory=dict)
    #: allocated sections: name -> (address, size, occupies file bytes)
    layout: dict[str, tuple[int, int, bool]] = field(default_factory=dict)
    functions: tuple[tuple[int, int, str], ...] = ()  # (start, size, name), sorted

    def symbol_at(self, address: int) -> str | None:
        address &= ~1  # Thumb bit
        for start, size, name in self.functions:
            if start <= address < start + max(size, 1):
                return f"{name}+{address - start:#x}"
        return None

    def as_dict(self) -> dict:
        return {"path": str(self.path), "build_id": self.build_id, "text": self.text,
                "data": self.data, "bss": self.bss, "sections": self.sections}

    def region_usage(self, regions: dict) -> dict[str, dict]:
        """Bytes each memory region holds: {region: {used, size, sections}}.
        Initialised data counts in the region it runs from *and* (as its
        load image) in the code region, as it does in a real flash image."""
        usage = {name: {"used": 0, "size": r.length, "sections": {}} for name, r in regions.items()}

        def add(region: str, section: str, size: int) -> None:
            usage[region]["used"] += size
            usage[region]["sections"][section] = size

        for name, (addr, size, has_bits) in self.layout.items():
            for region, r in regions.items():
                if r.origin <= addr < r.origin + r.length:
                    add(region, name, size)
                    if has_bits and region != "code" and "code" in usage:
                        add("code", f"{name} (load image)", size)
                    break
        return usage


def read_elf(path: Path) -> ElfInfo:
    """The ELF's sizes, sections, build id and functions. Parsed once per
    file version in a process (pyelftools takes 50-600 ms on the runner's
    ELF): every job of a suite reads the same cached firmware."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return _parse_elf(path)  # says what is wrong with it
    return _read_elf_version(path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _read_elf_version(path: Path, dev: int, inode: int, size: int, mtime_ns: int) -> ElfInfo:
    return _parse_elf(path)


def _parse_elf(path: Path) -> ElfInfo:
    try:
        with open(path, "rb") as fh:
            elf = ELFFile(fh)
            text = data = bss = 0
            sections: dict[str, int] = {}
            layout: dict[str, tuple[int, int, bool]] = {}
            build_id = ""
            functions = []
            for sec in elf.iter_sections():
                flags, size = sec["sh_flags"], sec["sh_size"]
                if isinstance(sec, NoteSection):
                    for note in sec.iter_notes():
                        if note["n_type"] == "NT_GNU_BUILD_ID":
                            build_id = note["n_desc"]
                if isinstance(sec, SymbolTableSection):
                    for sym in sec.iter_symbols():
                        if sym["st_info"]["type"] == "STT_FUNC" and sym.name:
                            functions.append((sym["st_value"] & ~1, sym["st_size"], sym.name))
                if not flags & SH_FLAGS.SHF_ALLOC or size == 0:
                    continue
                sections[sec.name] = size
                layout[sec.name] = (sec["sh_addr"], size, sec["sh_type"] != "SHT_NOBITS")
                if sec["sh_type"] == "SHT_NOBITS":
                    bss += size
                elif flags & SH_FLAGS.SHF_WRITE:
                    data += size
                else:
                    text += size
    except (OSError, Exception) as exc:  # pyelftools raises its own ELFError
        raise UsageError(f"{path}: not a readable ELF file ({exc})",
                         hint="pass the firmware's .elf (not .bin/.hex)") from exc
    return ElfInfo(path, build_id, text, data, bss, sections=sections,
                   functions=tuple(sorted(functions)), layout=layout)
