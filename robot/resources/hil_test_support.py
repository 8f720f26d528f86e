"""Keywords the suites in robot/ use around the hil library: building the
console-mode test firmware (firmware/tests/console/, the same build as
tests/console_fw.py) and checking that no emulator outlived its test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from robot.libraries.BuiltIn import BuiltIn

REPO = Path(__file__).resolve().parents[2]


def build_console_firmware(name: str, *defines: str) -> str:
    """Builds firmware/tests/console/console_app.c for QEMU's mps2-an386 with
    ``NAME=VALUE`` ``defines`` into ``${OUTPUT DIR}/console-fw/NAME.elf`` and
    returns its path (arm-none-eabi-gcc, a second or so)."""
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from console_fw import build_console_elf
    finally:
        sys.path.remove(str(REPO / "tests"))
    out = Path(BuiltIn().get_variable_value("${OUTPUT DIR}")) / "console-fw"
    values = dict(d.partition("=")[::2] for d in defines)
    return str(build_console_elf(out, name, **{k: v or "1" for k, v in values.items()}))


def _children() -> list[tuple[int, str]]:
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1: stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == me:
            found.append((int(entry.name), name))
    return found


def no_emulator_should_be_running() -> None:
    """Fails if an emulator (QEMU, Renode) started by this Robot process is
    still running."""
    left = [f"{name} (pid {pid})" for pid, name in _children()
            if name.startswith(("qemu", "renode", "mono")) or "renode" in name]
    if left:
        raise AssertionError(f"emulators still running: {', '.join(left)}")
