"""Target stage: something that runs firmware and exposes its UART as a URL."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..platforms import Platform
from .base import Target
from .qemu import QemuTarget


def make_target(platform: Platform, elf: Path, workdir: Path, count: bool = True) -> Target:
    kinds = {"qemu": QemuTarget}
    try:
        cls = kinds[platform.target_kind]
    except KeyError:
        raise UsageError(f"{platform.path}: target.kind {platform.target_kind!r} is not known",
                         hint=f"use one of: {', '.join(kinds)}") from None
    return cls(platform, elf, workdir, count=count)
