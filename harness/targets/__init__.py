"""Target stage: something that runs firmware and exposes its UART as a URL."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..platforms import Platform
from .base import Target
from .board import BoardTarget
from .qemu import QemuTarget
from .renode import RenodeTarget


KINDS = {"qemu": QemuTarget, "serial-board": BoardTarget, "renode": RenodeTarget}
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


def is_board(platform: Platform) -> bool:
    return platform.target_kind == "serial-board"


def make_target(platform: Platform, elf: Path, workdir: Path, count: bool = True, **board_options) -> Target:
    """`board_options` (board, baud, flasher, console) are for serial boards."""
    check_target_kind(platform)
    if is_board(platform):
        return BoardTarget(platform, elf, workdir, count=count, **board_options)
    return KINDS[platform.target_kind](platform, elf, workdir, count=count)
