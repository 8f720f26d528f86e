"""The interface every target offers the runner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

#: TargetHealth states; only "running" lets a silent device count as a firmware hang
RUNNING, PAUSED, STOPPED, EXITED, UNRESPONSIVE = "running", "paused", "stopped", "exited", "unresponsive"


@dataclass(frozen=True)
class TargetHealth:
    """What runs the device, as far as the host can tell: asked when the
    device stays silent, so a stalled emulator or a vanished port is not
    reported as a firmware hang. `detail` says it in words for the message;
    `clock` is the emulator's virtual clock (instructions) when it has one."""

    state: str
    detail: str = ""
    clock: int | None = None

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def as_dict(self) -> dict:
        return {"state": self.state, "detail": self.detail, "clock": self.clock}


def process_state(pid: int) -> str | None:
    """The kernel's one-letter state of a process (R, S, D, T stopped by a
    signal, t traced, Z zombie), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split(" ", 1)[0]  # after "pid (comm) "


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

    def health(self) -> TargetHealth:
        """Whether the emulator runs (or the port is open). Optional: a
        target without it is taken to be running."""
