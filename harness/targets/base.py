"""The interface every target offers the runner."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Target(Protocol):
    """Runs one firmware image. The runner only sees a pyserial URL."""

    #: True when the device can read host files (semihosting), so bulk data
    #: can bypass the UART.
    host_files: bool
    #: where the target's own diagnostics go (emulator stderr, flasher output)
    log_path: Path
    #: the directory relative host-file paths are resolved in (the emulator's
    #: working directory); short relative paths keep requests small
    workdir: Path

    def start(self) -> str:
        """Boot the firmware; return the URL of its protocol UART."""

    def stop(self) -> None:
        """Stop and leave no process behind. Safe to call twice."""

    def describe(self) -> dict:
        """What ran the firmware (emulator version, machine), for the result."""
