"""What produced a result: reference, toolchain, emulator and engine versions.

A count or a bit-exact verdict means something only together with the
versions that produced it: a new tflite-micro nightly can change what the
reference computes, a new compiler or engine changes the instructions run,
another emulator version may count differently. `hil.result/1` carries them
as `provenance`; `hil compare` refuses to compare the metrics a changed
version affects (harness/results/compare.py).

The host's part (reference package, Python, OS, hil) is read once per
process; the firmware's part comes from the run's own records: the build
record's compiler line (or the ELF's .comment, for firmware hil did not
build), the target's emulator version line, the device's HELLO engine name.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import platform
import re
from importlib import metadata
from pathlib import Path

from . import resources

log = logging.getLogger(__name__)

#: the parts whose change makes counts, sizes or bit-exactness incomparable
FIRMWARE_AFFECTING = ("reference", "toolchain", "emulator", "engine")

FIRMWARE_DIR = resources.firmware_dir()


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def host_provenance() -> dict:
    """The reference interpreter, the host and hil itself (the same for every
    run of this process)."""
    return {
        "reference": {"package": "tflite-micro", "version": _package_version("tflite-micro")},
        "host": {"arch": platform.machine(), "python": platform.python_version(), "os": platform.system()},
        "hil": _package_version("hil"),
    }


def version_number(line: str | None) -> str | None:
    """The version in a tool's `--version` line, without packagers' notes in
    parentheses: 'arm-none-eabi-gcc (15:12.2.rel1-1) 12.2.1 20221205' ->
    '12.2.1'; 'QEMU emulator version 7.2.22 (Debian ...)' -> '7.2.22'."""
    if not line:
        return None
    m = re.search(r"\d+(?:\.\d+)+", re.sub(r"\([^)]*\)", "", line))
    return m.group(0) if m else None


@functools.lru_cache(maxsize=64)
def _elf_compiler(path: str) -> str | None:
    """The compiler named in an ELF's .comment section ('GCC: (...) 12.2.1')."""
    try:
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as fh:
            section = ELFFile(fh).get_section_by_name(".comment")
            data = section.data() if section is not None else b""
    except Exception:  # not an ELF we can read: the version stays unknown
        return None
    names = [s.decode("utf-8", "replace") for s in data.split(b"\0") if s.startswith(b"GCC")]
    return names[0] if names else None


@functools.lru_cache(maxsize=4)
def engine_sources_hash(directory: Path = FIRMWARE_DIR / "engine") -> str | None:
    """A short hash of the built-in engine's sources (it has no version string)."""
    if not directory.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode())
        digest.update(path.read_bytes())
    return "src-" + digest.hexdigest()[:12]


def _toolchain(firmware: dict) -> dict | None:
    line = firmware.get("compiler")
    if not line and firmware.get("path"):
        line = _elf_compiler(str(firmware["path"]))
    if not line:
        return None
    name = "arm-none-eabi-gcc" if "arm-none-eabi" in line or line.startswith("GCC") else line.split()[0]
    return {"name": name, "version": version_number(line), "detail": line}


def _emulator(target: dict) -> dict | None:
    line = target.get("emulator")
    if not line or target.get("kind") not in ("qemu", "renode"):
        return None
    command = target.get("command") or []
    name = Path(command[0]).name if command else ("renode" if target["kind"] == "renode" else "qemu-system-arm")
    return {"name": name, "version": version_number(line), "detail": line}


def _engine(device: dict) -> dict:
    name = device.get("engine") or None
    if name == "builtin":
        return {"name": name, "version": engine_sources_hash(), "detail": "hash of hil's firmware/engine sources"}
    if name and name.startswith("tflm"):  # tflm-reference, tflm-cmsis-nn (hil_tflm.cc); "tflm" before them
        return {"name": name, "version": None, "detail": "TFLM tree supplied by the user: version not recorded"}
    return {"name": name, "version": None, "detail": "the firmware's own engine: version not recorded"}


def run_provenance(firmware: dict, target: dict, device: dict) -> dict:
    """The `provenance` of one run (hil.result/1), from its build record,
    target description and the device's HELLO."""
    return {**host_provenance(), "toolchain": _toolchain(firmware or {}), "emulator": _emulator(target or {}),
            "engine": _engine(device or {})}


def _version(prov: dict | None, key: str) -> str | None:
    part = (prov or {}).get(key)
    return part.get("version") if isinstance(part, dict) else None


def _name(prov: dict | None, key: str) -> str:
    part = (prov or {}).get(key)
    return (part.get("package") or part.get("name") or key) if isinstance(part, dict) else key


def version_changes(base: dict | None, head: dict | None, keys=FIRMWARE_AFFECTING) -> dict[str, str]:
    """The firmware-affecting parts whose version differs between two
    provenances, each as 'reference tflite-micro 0.dev1 -> 0.dev2'. A version
    unknown on either side is not a change (it cannot be told)."""
    changes = {}
    for key in keys:
        before, after = _version(base, key), _version(head, key)
        if before and after and before != after:
            changes[key] = f"{key} {_name(head, key)} {before} -> {after}"
    return changes
