"""A real board on a serial port as a target: choose it, flash it, reset it,
and wait until it answers.

The link is any pyserial URL: a local device (`/dev/ttyACM0`,
`/dev/serial/by-id/usb-STMicroelectronics_STLINK-V3_...`), a network serial
port (`rfc2217://host:4000` for ser2net's RFC 2217 mode,
`socket://host:4001` for its raw mode), or a pty. Baud rate and flow control
come from the platform file's `[board] serial` table unless the command
line overrides them.

A board is identified by its probe's serial number (the "probe id"). On
ST-LINK, J-Link and CMSIS-DAP probes the virtual COM port carries the same
serial number, so a local port names its probe, and a `--probe` that does
not match `--port` is refused before anything is flashed. When no probe id
is known and several probes are attached, flashing is refused too: the
flashing tools would otherwise pick whichever probe they find first.

Sequence (`start`): open the port (first, so the boot output is seen),
flash, reset if the flasher did not, then the runner waits for HELLO
(`wait_ready`): boot noise is drained and HELLO is retried a bounded number
of times; no answer is "device not detected on PORT" (exit 3), with what,
if anything, the port did receive.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import serial

from ..errors import InfraError, UsageError
from ..platforms import Platform
from .base import EXITED, RUNNING, Capabilities, TargetHealth
from .flash import Command, FlashRequest, Flasher, make_flasher, template_fields

log = logging.getLogger(__name__)

#: USB vendor (and product) ids of debug probes whose virtual COM port's
#: serial number is the probe's own serial number
KNOWN_PROBES: list[tuple[int, int | None, str]] = [
    (0x0483, 0x374B, "ST-LINK/V2-1"),
    (0x0483, 0x3752, "ST-LINK/V2-1"),
    (0x0483, 0x374E, "STLINK-V3"),
    (0x0483, 0x374F, "STLINK-V3"),
    (0x0483, 0x3753, "STLINK-V3"),
    (0x0483, 0x3754, "STLINK-V3"),
    (0x0483, 0x3757, "STLINK-V3PWR"),
    (0x1366, None, "SEGGER J-Link"),
    (0x0D28, 0x0204, "CMSIS-DAP (DAPLink)"),
    (0x1FC9, 0x0090, "CMSIS-DAP (LPC-Link2)"),
    (0x1FC9, 0x0143, "CMSIS-DAP (MCU-Link)"),
    (0x2E8A, 0x000C, "CMSIS-DAP (Raspberry Pi Debug Probe)"),
    (0x03EB, 0x2111, "Atmel EDBG"),
    (0x04B4, 0xF155, "Cypress KitProg3"),
]



def probe_kind(vid: int | None, pid: int | None) -> str | None:
    for v, p, name in KNOWN_PROBES:
        if vid == v and (p is None or pid == p):
            return name
    return None


def same_probe(a: str | None, b: str | None) -> bool:
    """Probe ids compare without case and leading zeros (a J-Link's COM port
    says 000683123456, the J-Link tools say 683123456)."""
    if not a or not b:
        return False
    return a.strip().upper().lstrip("0") == b.strip().upper().lstrip("0")


@dataclass(frozen=True)
class PortInfo:
    """A serial port on this machine and the probe behind it, if known."""

    device: str
    serial_number: str | None
    vid: int | None
    pid: int | None
    description: str
    probe: str | None         # the kind of debug probe, e.g. "STLINK-V3"
    by_id: str | None = None  # a stable /dev/serial/by-id/ path

    def as_dict(self) -> dict:
        return {"device": self.device, "serial_number": self.serial_number,
                "usb": f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None else None,
                "description": self.description, "probe": self.probe, "by_id": self.by_id}


def local_ports() -> list[PortInfo]:
    """Serial ports attached to this machine, with their USB identity."""
    from serial.tools import list_ports

    by_id: dict[str, str] = {}
    base = Path("/dev/serial/by-id")
    if base.is_dir():
        for link in base.iterdir():
            by_id[os.path.realpath(link)] = str(link)
    found = []
    for p in list_ports.comports():
        found.append(PortInfo(p.device, p.serial_number, p.vid, p.pid, p.description or "",
                              probe_kind(p.vid, p.pid), by_id.get(os.path.realpath(p.device))))
    return found


def attached_probes() -> list[PortInfo]:
    return [p for p in local_ports() if p.probe and p.serial_number]


def is_local_device(url: str) -> bool:
    return "://" not in url


def find_local_port(url: str, ports: list[PortInfo]) -> PortInfo | None:
    if not is_local_device(url):
        return None
    real = os.path.realpath(url)
    for p in ports:
        if p.device == url or os.path.realpath(p.device) == real:
            return p
    return None


@dataclass(frozen=True)
class BoardSpec:
    """One board of a run: its link and its probe (and how we know it)."""

    port: str
    probe: str | None = None
    probe_source: str | None = None   # "--probe", "port's USB serial number", ...
    usb: dict | None = None
    # a labgrid place (harness/targets/labgrid.py): its power cycle, and what to record of it
    power: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    place: Callable[[], dict] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        if self.probe:
            return self.probe
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.port.split("://")[-1]).strip("_")[-40:] or "board"


def _describe_attached(ports: list[PortInfo]) -> str:
    if not ports:
        return "none"
    return "; ".join(f"{p.device} ({p.probe or p.description}, serial {p.serial_number})" for p in ports)


def resolve_boards(platform: Platform, ports: list[str], probes: list[str],
                   attached: list[PortInfo] | None = None) -> list[BoardSpec]:
    """Pair ports with probes and check every pair, before anything is
    flashed. `attached` is what `local_ports()` reports (a parameter so the
    pairing rules can be tested without USB devices)."""
    ports = [p for p in ports if p]
    probes = [p for p in probes if p]
    board = platform.board
    if not ports and board.port:
        ports = [board.port]
    if len(set(ports)) != len(ports):
        raise UsageError("the same --port is given twice", hint="give each board's port once")
    if len({p.upper().lstrip("0") for p in probes}) != len(probes):
        raise UsageError("the same --probe is given twice", hint="give each board's probe id once")
    if attached is None:
        attached = local_ports()
    probes_here = [p for p in attached if p.probe and p.serial_number]

    if not ports:  # find the board(s) by probe
        if probes:
            specs = []
            for given in probes:
                match = [p for p in probes_here if same_probe(p.serial_number, given)]
                if not match:
                    raise InfraError(f"no serial port of probe {given} is attached",
                                     hint=f"attached probes: {_describe_attached(probes_here)}; connect the board "
                                          f"or pass --port URL with --probe {given}")
                specs.append(BoardSpec(match[0].by_id or match[0].device, given, "--probe",
                                       match[0].as_dict()))
            return specs
        if len(probes_here) == 1:
            p = probes_here[0]
            return [BoardSpec(p.by_id or p.device, p.serial_number, "the only probe attached", p.as_dict())]
        if not probes_here:
            raise InfraError(f"no board found for {platform.name}: no debug probe's serial port is attached "
                             f"(serial ports here: {_describe_attached(attached)})",
                             hint="connect the board, or pass --port URL (a /dev/tty* device, "
                                  "rfc2217://host:port or socket://host:port); `hil boards` lists what is attached")
        raise UsageError(f"{len(probes_here)} boards are attached ({_describe_attached(probes_here)}); "
                         f"hil will not guess which one to use",
                         hint="pass --port (and --probe) for each board to use; --port may be repeated")

    if probes and len(probes) != len(ports):
        raise UsageError(f"{len(ports)} --port but {len(probes)} --probe given",
                         hint="give one --probe per --port, in the same order, or none")
    specs = []
    for i, port in enumerate(ports):
        probe = probes[i] if probes else None
        info = find_local_port(port, attached)
        if info is not None and info.serial_number and info.probe:
            if probe and not same_probe(probe, info.serial_number):
                raise UsageError(f"{port} is the serial port of probe {info.serial_number} ({info.probe}), "
                                 f"not of probe {probe}: refusing to flash one board and test another",
                                 hint="pair each --port with its own board's --probe (`hil boards` shows which "
                                      "port belongs to which probe)")
            specs.append(BoardSpec(port, probe or info.serial_number,
                                   "--probe (matches the port)" if probe else "the port's USB serial number",
                                   info.as_dict()))
        else:
            if is_local_device(port) and not os.path.exists(port):
                raise InfraError(f"serial port {port} does not exist",
                                 hint=f"is the board connected? serial ports here: {_describe_attached(attached)}")
            specs.append(BoardSpec(port, probe, "--probe" if probe else None,
                                   info.as_dict() if info else None))
    return specs


class _RecordingLink:
    """A pyserial port that keeps the first bytes it receives while
    `recording`, so a device that does not answer can be described."""

    LIMIT = 4096

    def __init__(self, port: serial.SerialBase) -> None:
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "recording", False)
        object.__setattr__(self, "received", bytearray())
        object.__setattr__(self, "total", 0)

    def read(self, size: int = 1) -> bytes:
        data = self._port.read(size)
        if self.recording and data:
            object.__setattr__(self, "total", self.total + len(data))
            if len(self.received) < self.LIMIT:
                self.received.extend(data[: self.LIMIT - len(self.received)])
        return data

    def __getattr__(self, name):
        return getattr(self._port, name)

    def __setattr__(self, name, value):
        if name in ("recording", "received", "total"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._port, name, value)


def describe_bytes(data: bytes, limit: int = 80) -> str:
    text = data.decode("latin-1")
    printable = sum(1 for c in text if c.isprintable() or c in "\r\n\t")
    shown = repr(text[:limit])[1:-1]
    if len(text) > limit:
        shown += "..."
    kind = "text" if data and printable / len(data) > 0.8 else "binary data"
    return f"{kind}: '{shown}'"


class BoardTarget:
    """A board on the bench or in a lab, over a serial link."""

    capabilities = Capabilities(flash=True, serial_link=True, readiness=True, reset=True)

    host_files = False  # no semihosting without a debugger: bulk data goes inline

    def __init__(self, platform: Platform, elf: Path | None, workdir: Path, count: bool = True,
                 board: BoardSpec | None = None, baud: int | None = None, flasher: str | None = None,
                 console: bool = False) -> None:
        if board is None:
            raise UsageError(f"platform {platform.name} is a board: say which one",
                             hint="pass --port URL (and --probe ID); `hil boards` lists attached boards")
        self.platform = platform
        self.elf = Path(elf) if elf else None
        self.workdir = Path(workdir)
        self.log_path = self.workdir / "board.log"
        self.spec = board
        self.port = board.port
        self.probe = board.probe
        self.probe_source = board.probe_source
        self.console = console
        cfg = platform.board  # serial, reset and timing values checked when the platform file was read
        self.baud = int(baud or cfg.serial.baud)
        self.flow = cfg.serial.flow_control
        self.reset_method = cfg.reset
        self.reset_pulse = cfg.reset_pulse_s
        self.hello_tries = cfg.hello_retries
        self.quiet_s = cfg.boot_quiet_s
        self.port_wait = cfg.port_wait_s
        self.flasher: Flasher = make_flasher(cfg, platform.name, flasher)
        self.reset_command = cfg.reset_command
        if self.reset_method == "command":
            if not self.reset_command:
                raise UsageError(f"{platform.path}: board.reset = \"command\" needs board.reset_command",
                                 hint='add e.g. reset_command = "my-reset --serial {probe}"')
            template_fields(self.reset_command, platform.name)
        self.link: _RecordingLink | None = None
        self.steps: list[dict] = []
        self.ready: dict = {}

    # -- the link -------------------------------------------------------------------

    def _open(self) -> _RecordingLink:
        deadline = time.monotonic() + self.port_wait
        while True:
            try:
                port = serial.serial_for_url(self.port, do_not_open=True, timeout=0.2)
                if is_local_device(self.port):
                    port.write_timeout = 5  # a stalled USB port must not hang the run (rfc2217:// has none)
                port.baudrate = self.baud
                port.rtscts = self.flow == "rtscts"
                port.xonxoff = self.flow == "xonxoff"
                port.dsrdtr = self.flow == "dsrdtr"
                if self.reset_method in ("rts", "dtr"):
                    # released, or opening the port would hold the board in reset
                    port.rts = False
                    port.dtr = False
                port.open()
                return _RecordingLink(port)
            except (serial.SerialException, OSError, ValueError) as exc:
                gone = isinstance(exc, serial.SerialException) and "No such file" in str(exc)
                if gone and time.monotonic() < deadline:
                    time.sleep(0.1)  # a board with native USB re-enumerates after reset
                    continue
                hint = "check the port (`hil boards` lists local ones)"
                if "Permission denied" in str(exc):
                    hint = "add yourself to the port's group (usually: sudo usermod -aG dialout $USER, then log in again)"
                elif not is_local_device(self.port):
                    hint = "is the serial server (ser2net) running and reachable at that address?"
                raise InfraError(f"cannot open serial port {self.port}: {exc}", hint=hint) from exc

    def open_link(self) -> _RecordingLink:
        if self.link is None:
            self.link = self._open()
        return self.link

    # -- flash and reset --------------------------------------------------------------

    def _request(self) -> FlashRequest:
        return FlashRequest(self.elf, self.probe, self.port, self.workdir, self.log_path)

    def _choose_probe(self) -> None:
        """A flasher that can reach several probes must be told which."""
        if self.probe or not self.flasher.needs_probe:
            return
        here = attached_probes()
        if len(here) == 1:
            self.probe, self.probe_source = here[0].serial_number, "the only probe attached"
            return
        which = (f"{len(here)} probes are attached ({_describe_attached(here)})" if here
                 else "no probe was found among the USB serial ports")
        raise UsageError(f"cannot tell which probe to flash {self.port} through: {which}",
                         hint="pass --probe ID (the probe's serial number; `hil boards` lists them)")

    def _pulse(self, line: str) -> None:
        link = self.open_link()
        setattr(link, line, True)
        time.sleep(self.reset_pulse)
        setattr(link, line, False)

    def reset(self) -> None:
        method = self.reset_method
        started = time.monotonic()
        if method in ("rts", "dtr"):
            try:
                self._pulse(method)
            except (serial.SerialException, OSError) as exc:
                raise InfraError(f"cannot toggle {method.upper()} on {self.port} to reset the board: {exc}",
                                 hint="this link has no modem control lines (a pty or socket:// cannot carry "
                                      "them; rfc2217:// and USB serial ports can): choose another board.reset")
        elif method == "protocol":
            from ..link.frames import Frame
            from ..link.protocol import Msg

            self.open_link().write(b"\x00" + Frame(Msg.RESET, 0xFF, b"\x01").encode())
        elif method == "command":
            # the reset command run as a command flasher's program step, with the flasher's time limit
            settings = replace(self.platform.board, flash_command=self.reset_command, reset_command="",
                               flash_timeout=self.flasher.timeout, flash_args=())
            Command(settings, self.platform.name).flash(self._request())
        elif method == "power":
            if self.spec.power is None:
                raise UsageError(f"platform {self.platform.name}: board.reset = \"power\" needs a board with a power "
                                 f"switch: a labgrid place with a power port (hil run --place)",
                                 hint="run on a place (--place NAME) whose exporter has a power port, or choose "
                                      "another board.reset")
            self.spec.power()
        elif method == "flasher":
            if self.flasher.name == "none":
                return  # nothing can reset it: the board is expected to be running already
            self.flasher.reset(self._request())
        else:
            return
        self.steps.append({"step": "reset", "method": method, "seconds": round(time.monotonic() - started, 3)})

    def start(self) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._choose_probe()
        self.flasher.check_tool()
        link = self.open_link()  # before flashing: the new firmware's first bytes must not be lost
        link.reset_input_buffer()  # what the old firmware said
        flashed = False
        if self.elf is not None and self.flasher.name != "none":
            step = self.flasher.flash(self._request())
            self.steps.append({k: v for k, v in step.items() if k != "command"})
            flashed = True
        needs_reset = not (flashed and self.flasher.resets_after_flash)
        if self.console and flashed and self.reset_method != "none":
            # the new firmware started when the flasher let it go, and its
            # first lines may be cut or mixed with the flasher's: boot it
            # again, cleanly, and read the console from there
            needs_reset = True
        if needs_reset:
            if self.console:
                link.reset_input_buffer()
            self.reset()
        return self.port

    # -- readiness ------------------------------------------------------------------

    def _drain(self, link: _RecordingLink, limit_s: float = 2.0) -> int:
        """Read until the port has been quiet for `quiet_s` (boot banners,
        bootloader output); return the bytes discarded."""
        seen = 0
        deadline = time.monotonic() + limit_s
        quiet_since = time.monotonic()
        link.timeout = 0.05
        while time.monotonic() < deadline:
            data = link.read(4096)
            if data:
                seen += len(data)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= self.quiet_s:
                break
        return seen

    def wait_ready(self, client, timeout: float):
        """HELLO with bounded retries after draining boot noise; returns the
        device's Hello or raises "device not detected on PORT"."""
        from ..link.protocol import DeviceError, LinkBroken, LinkTimeout

        link = self.open_link()
        link.recording = True
        started = time.monotonic()
        noise = self._drain(link)
        per_try = self.platform.board.hello_timeout or max(0.3, timeout / self.hello_tries)
        dropped = 0
        try:
            for attempt in range(1, self.hello_tries + 1):
                client.resync()
                link.write(b"\x00")  # end whatever partial frame the device has buffered
                try:
                    hello = client.hello(timeout=per_try)
                except (LinkTimeout, LinkBroken) as exc:
                    if isinstance(exc, LinkBroken) and exc.closed:
                        raise
                    dropped += client.decoder.error_count  # boot noise, or the wrong baud rate
                    continue
                except DeviceError:
                    continue
                self.ready = {"attempts": attempt, "seconds": round(time.monotonic() - started, 3),
                              "boot_noise_bytes": noise}
                return hello
        finally:
            link.recording = False
        got = link.total
        if got == 0:
            what = "nothing at all was received"
            fix = ("check that the board is powered and connected, that this is its serial port "
                   "(`hil boards`), and that the firmware was flashed" +
                   (f" (flash log: {self.log_path})" if self.log_path.exists() else ""))
        else:
            what = (f"{got} bytes were received but no HELLO reply ({dropped} damaged frames); "
                    f"{describe_bytes(bytes(link.received))}")
            fix = (f"check the baud rate ({self.baud}, --baud) and flow control ({self.flow}), and that the "
                   f"firmware serves the hil protocol (for other firmware use `hil console`)")
        raise InfraError(f"device not detected on {self.port}: no HELLO reply in {self.hello_tries} tries over "
                         f"{time.monotonic() - started:.1f} s; {what}", hint=fix)

    # -- the rest of the Target interface -------------------------------------------------

    def describe(self) -> dict:
        return {"kind": "serial-board", "hardware": True, "board": self.platform.name,
                "port": self.port, "probe_id": self.probe, "probe_source": self.probe_source,
                "usb": self.spec.usb, "baud": self.baud, "flow_control": self.flow,
                "flasher": self.flasher.name, "flash_command": self.flasher.last_command or None,
                "reset": self.reset_method, "steps": self.steps, "ready": self.ready,
                **({"place": self.spec.place()} if self.spec.place else {})}

    def health(self) -> TargetHealth:
        """A board counts as running while its port is open and, for a local
        device, still present (a USB serial port vanishes when unplugged)."""
        if self.link is None or not self.link.is_open:
            return TargetHealth(EXITED, f"the serial port {self.port} is closed")
        if is_local_device(self.port) and not os.path.exists(self.port):
            return TargetHealth(EXITED, f"the serial port {self.port} has gone (unplugged, or the board "
                                        f"re-enumerated)")
        return TargetHealth(RUNNING, f"the serial port {self.port} is open")

    def exit_text(self) -> str | None:
        """A board has no emulator of its own to stop with an error."""
        return None

    def stop(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            try:
                link.close()
            except (serial.SerialException, OSError):
                pass

    def __enter__(self) -> "BoardTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
