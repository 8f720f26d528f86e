"""Target stage: something that runs firmware and exposes its UART as a URL."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..platforms import Platform
from .base import Target
from .qemu import QemuTarget


KINDS = {"qemu": QemuTarget}
#: kinds a platform file may name that this version cannot run yet
PLANNED = {"serial-board": "running on a board over a serial port (flash, reset, serial link)"}


def check_target_kind(platform: Platform) -> None:
    """Fail early, before building anything, on a target this hil cannot drive."""
    kind = platform.target_kind
    if kind in PLANNED:
        raise UsageError(f"platform {platform.name} is a {kind}: {PLANNED[kind]} is not supported by this "
                         f"version of hil", hint="its platform file already holds the board's serial, flasher "
                                                 "and power settings; run on an emulated platform meanwhile")
    if kind not in KINDS:
        raise UsageError(f"{platform.path}: target.kind {kind!r} is not known",
                         hint=f"use one of: {', '.join(KINDS)}")


def make_target(platform: Platform, elf: Path, workdir: Path, count: bool = True) -> Target:
    check_target_kind(platform)
    return KINDS[platform.target_kind](platform, elf, workdir, count=count)
