"""Target stage: something that runs firmware and exposes its UART as a URL.

Callers outside this package ask what a target can do (`capabilities_of`,
`Target.capabilities`, base.Capabilities), never which kind it is.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..platforms import Platform
from .base import Capabilities, Target
from .board import BoardTarget
from .qemu import QemuTarget
from .renode import RenodeTarget


KINDS: dict[str, type[QemuTarget] | type[BoardTarget] | type[RenodeTarget]] = {
    "qemu": QemuTarget, "serial-board": BoardTarget, "renode": RenodeTarget}
#: kinds a platform file may name that this version cannot run yet
PLANNED: dict[str, str] = {}


def check_target_kind(platform: Platform) -> None:
    """Fail early, before building anything, on a target this hil cannot drive."""
    kind = platform.target_kind
    if kind in PLANNED:
        raise UsageError(f"platform {platform.name} is a {kind}: {PLANNED[kind]} is not supported by this "
                         f"version of hil", hint="run on an emulated platform meanwhile")
    if kind not in KINDS:
        raise UsageError(f"{platform.path}: target.kind {kind!r} is not known",
                         hint=f"use one of: {', '.join(KINDS)}")


def capabilities_of(platform: Platform) -> Capabilities:
    """What the platform's kind of target offers, before one is made."""
    check_target_kind(platform)
    return KINDS[platform.target_kind].capabilities


def is_board(platform: Platform) -> bool:
    """For this package and its tests; callers outside ask `capabilities_of`."""
    return capabilities_of(platform).flash


def check_board_options(platform: Platform, ports=(), probes=(), baud: int | None = None,
                        flasher: str | None = None) -> bool:
    """The one check of the board-only options (port, probe, baud rate,
    flasher) for every front end: refused, before anything is built or
    booted, on a target that is not flashed. Returns whether the platform's
    target is flashed (a board)."""
    if capabilities_of(platform).flash:
        return True
    given = [name for name, value in (("--port", [p for p in ports if p]), ("--probe", [p for p in probes if p]),
                                      ("--baud", baud), ("--flasher", flasher)) if value]
    if given:
        raise UsageError(f"--port, --probe, --baud and --flasher are for boards; {' and '.join(given)} was given, but "
                         f"platform {platform.name} runs in {platform.target_kind}",
                         hint="drop them, or choose a board platform (`hil platforms` lists them, target serial-board)")
    return False


def make_target(platform: Platform, elf: Path, workdir: Path, count: bool = True, **board_options) -> Target:
    """`board_options` (board, baud, flasher, console) are for serial boards."""
    if capabilities_of(platform).flash:
        return BoardTarget(platform, elf, workdir, count=count, **board_options)
    return KINDS[platform.target_kind](platform, elf, workdir, count=count)
