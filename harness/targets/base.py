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
class Capabilities:
    """What a kind of target offers. Each target class declares its own
    (`capabilities`); the runner and the front ends ask for a capability,
    never for the kind of target, so a new kind is a new class and a new
    entry in `targets.KINDS`, not a branch in every caller."""

    #: an image is flashed onto hardware; the board options (port, probe,
    #: baud rate, flasher) apply to it alone
    flash: bool = False
    #: the target opens the device's link itself (`open_link()`); else
    #: `start()` returns a pyserial URL to connect to
    serial_link: bool = False
    #: the target resets the device and waits for its first HELLO itself
    #: (`wait_ready(client, timeout)`); else the first HELLO is enough
    readiness: bool = False
    #: the target can reset the device without restarting it (`reset()`)
    reset: bool = False
    #: the emulator counts executed instructions itself (`instructions()`),
    #: read around each INVOKE instead of the device's counter
    instruction_counter: bool = False
    #: a cycle-weighing TCG plugin can ride along (`plugin_args`, harness/timing)
    cycle_plugin: bool = False
    #: the platform may enable semihosting: host files, a semihosting console
    semihosting: bool = False
    #: the firmware's exit status can be observed (the emulator's `process` exits with it)
    exit_status: bool = False
    #: console mode can read what the firmware prints (`hil console`)
    console: bool = True


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
    """Runs one firmware image. The runner only sees a pyserial URL (or the
    link the target opens, `Capabilities.serial_link`)."""

    #: what this kind of target offers (a class attribute)
    capabilities: Capabilities

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
        """Whether the emulator runs (or the port is open)."""

    def exit_text(self) -> str | None:
        """Why the emulator stopped, in its own words, when it stopped by
        itself with an error of its own; None otherwise (and for boards)."""
