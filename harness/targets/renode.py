"""Renode (Antmicro's full-system emulator) as a target.

What happens, in order (every command also lands in the run directory's
`hil.resc`, so a run can be replayed by hand: `renode hil.resc`):

1. Renode starts headless with its monitor on a TCP port:
   `renode --disable-xwt --plain --port N`. (Not `--console`: with it, Renode
   1.15 runs the monitor on stdin/stdout and ignores `--port`:
   `CommandLineInterface.PrepareShell` checks `Console` before `Port`.)
   It runs in its own process group, watched by a small reaper process that
   kills the group if the harness dies without stopping it, so no Renode or
   Mono process outlives the run (`kill -9` of the harness included).
2. The monitor client (`RenodeMonitor`) speaks Renode's telnet-ish protocol:
   on connect Renode sends 12 bytes of telnet negotiation and discards the
   first 9 bytes it receives, so the client answers with 9; every command is
   answered by its echo, its output, and the prompt `(monitor) ` or
   `(<machine>) `.
3. The machine: `mach create`, `machine LoadPlatformDescription` of the
   platform file's `.repl` (through a generated `platform.repl` when the
   platform file adds overrides), the platform's setup commands, `sysbus
   LoadELF`, then the UART: `emulation CreateServerSocketTerminal PORT NAME
   false` (a raw socket, no telnet bytes) and `connector Connect
   sysbus.usartN NAME`, all before the emulation starts.
4. `emulation RunFor` a short boot time (the firmware enables its UART; a
   byte sent to a disabled UART is dropped by Renode's models), then
   `start`; the host talks to the firmware through pyserial's
   `socket://127.0.0.1:PORT`.
5. `stop()`: `quit` on the monitor, then SIGTERM and SIGKILL to the process
   group.

Renode's monitor also exposes `sysbus.cpu ExecutedInstructions`;
`instructions()` reads it, and the runner reads it around each INVOKE when
the platform's counter.source is "renode-monitor" (docs/counts.md).

Renode has no Arm semihosting here: bulk data goes inline through the UART
(`host_files = False`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import InfraError, UsageError
from ..platforms import Platform
from ..spawn import popen
from .base import EXITED, RUNNING, STOPPED, UNRESPONSIVE, Capabilities, TargetHealth, process_state

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1

INSTALL_HINT = ("install Renode 1.15.3 and put `renode` on PATH (or set RENODE=/path/to/renode): "
                "wget https://github.com/renode/renode/releases/download/v1.15.3/renode-1.15.3.linux-portable.tar.gz"
                " && tar xf renode-1.15.3.linux-portable.tar.gz && export PATH=$PWD/renode_1.15.3_portable:$PATH "
                "(README, section Renode)")

#: what the client answers to Renode's 12 negotiation bytes: IAC WILL
#: BINARY, IAC DO ECHO, IAC DO SUPPRESS-GO-AHEAD. Renode reads 9 bytes and
#: throws them away; anything sent before them would be lost the same way.
TELNET_REPLY = bytes([255, 251, 0, 255, 253, 1, 255, 253, 3])
NEGOTIATION_BYTES = 12

#: `(monitor) ` or `(<machine name>) ` on a line of its own at the very end
#: of the output (carriage returns removed)
PROMPT = re.compile(r"(?:^|\n)\((?P<name>[^()\r\n]+)\) $")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_IAC = re.compile(rb"\xff[\xfb-\xfe].|\xff[\xf0-\xfa]", re.DOTALL)
#: what Renode's monitor prints when a command fails (Monitor.cs, with
#: `WriteError`, which also colours it red; both are checked)
_ERROR_TEXT = re.compile(
    r"^(There was an error|No such (command|device|variable|file)|Could not|Couldn't|Error|Errors during|"
    r"Failed to|Invalid|Unknown|Machine .* not found|No machine selected|.*Exception\b)", re.MULTILINE)


#: how long the monitor may take to answer before Renode counts as stalled
HEALTH_TIMEOUT = 5.0


def _die_with_parent() -> None:
    """Runs in the child: SIGKILL the launcher if the harness thread dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MonitorError(InfraError):
    """A monitor command failed, or the monitor did not answer."""


def clean(raw: bytes) -> tuple[str, str]:
    """Monitor bytes -> (text, the part of it printed in red).

    Drops telnet commands, terminal control sequences and carriage returns;
    Renode prints errors in red (`WriteError`), so red text is returned
    separately, which finds errors whatever their wording."""
    data = _IAC.sub(b"", raw).decode("utf-8", errors="replace")
    text, red = [], []
    in_red = False
    pos = 0
    for m in _ANSI.finditer(data):
        chunk = data[pos:m.start()]
        text.append(chunk)
        if in_red:
            red.append(chunk)
        sgr = _SGR.fullmatch(m.group(0))
        if sgr is not None:
            codes = [c for c in sgr.group(1).split(";") if c] or ["0"]
            for code in codes:
                if code in ("31", "91"):
                    in_red = True
                elif code == "0" or code == "39" or (code.isdigit() and 30 <= int(code) <= 37) \
                        or (code.isdigit() and 90 <= int(code) <= 97):
                    in_red = False
        pos = m.end()
    text.append(data[pos:])
    if in_red:
        red.append(data[pos:])
    return "".join(text).replace("\r", ""), "".join(red).replace("\r", "").strip()


class RenodeMonitor:
    """A client for Renode's monitor on a TCP port."""

    def __init__(self, sock: socket.socket, log=None) -> None:
        self.sock = sock
        self.prompt = "monitor"
        self.banner = ""
        self.last_red = ""  # what the last answer printed in red (errors)
        self._pending = b""
        self._log = log  # callable(str): a transcript for the run directory

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 60.0,
                alive=lambda: True, log=None) -> "RenodeMonitor":
        """Connect (retrying while Renode starts), negotiate, wait for the
        first prompt. `alive()` False aborts the wait (Renode exited)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not alive():
                raise MonitorError("Renode exited before its monitor accepted a connection")
            try:
                sock = socket.create_connection((host, port), timeout=1.0)
                break
            except OSError as exc:
                last = exc
                time.sleep(0.1)
        else:
            raise MonitorError(f"Renode's monitor did not accept a connection on port {port} within "
                               f"{timeout:.0f} s ({last})")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        monitor = cls(sock, log=log)
        try:
            monitor._negotiate(deadline)
            monitor.banner = monitor._read_until_prompt(deadline, alive)
        except BaseException:
            sock.close()
            raise
        return monitor

    def _negotiate(self, deadline: float) -> None:
        got = b""
        while len(got) < NEGOTIATION_BYTES:
            chunk = self._recv(deadline)
            if not chunk:
                raise MonitorError("Renode's monitor closed the connection during telnet negotiation")
            got += chunk
        self._pending = got[NEGOTIATION_BYTES:]  # anything after the 12 bytes is output
        self.sock.sendall(TELNET_REPLY)

    def _recv(self, deadline: float) -> bytes:
        """The next bytes, b"" when the connection closed; socket.timeout
        at the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            self.sock.settimeout(min(remaining, 0.5))
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                continue

    def _read_until_prompt(self, deadline: float, alive=lambda: True) -> str:
        raw, self._pending = self._pending, b""
        while True:
            text, red = clean(raw)
            m = PROMPT.search(text)
            if m and m.end() == len(text):
                self.prompt = m.group("name")
                self.last_red = red
                return text[:m.start("name") - 1]
            try:
                chunk = self._recv(deadline)
            except socket.timeout:
                raise MonitorError(f"no monitor prompt within the time allowed; last output: "
                                   f"{text[-300:]!r}") from None
            if not chunk:
                raise MonitorError(f"Renode's monitor closed the connection; last output: {text[-300:]!r}")
            if not alive():
                raise MonitorError("Renode exited while a monitor command ran")
            raw += chunk

    def execute(self, command: str, timeout: float = 30.0, check: bool = True, quiet: bool = False) -> str:
        """Run one monitor command; return its output (without echo and
        prompt). With `check`, output that reads as an error (or is red)
        raises; with `quiet`, any output at all does: the set-up commands
        print nothing when they work, and Renode's error texts include
        arbitrary exception messages."""
        if "\n" in command or "\r" in command:
            raise ValueError("one monitor command per call")
        prompt = self.prompt
        self.sock.sendall(command.encode() + b"\n")
        out = self._read_until_prompt(time.monotonic() + timeout)
        red = self.last_red
        lines = out.split("\n")
        # the echo of what was typed (Renode echoes the characters back)
        while lines and not lines[0].strip():
            lines.pop(0)
        if lines and lines[0].strip().endswith(command.strip()):
            lines.pop(0)
        result = "\n".join(lines).strip("\n")
        if self._log:
            self._log(f"({prompt}) {command}\n{result}\n" if result else f"({prompt}) {command}\n")
        if check:
            error = red or (m.group(0) if (m := _ERROR_TEXT.search(result)) else "") or (result if quiet else "")
            if error:
                raise MonitorError(f"Renode monitor command `{command}` failed: {result or red}")
        return result

    def quit(self, timeout: float = 5.0) -> None:
        """`quit`: Renode exits, the connection closes (no prompt comes)."""
        try:
            self.sock.sendall(b"quit\n")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not self._recv(deadline):
                    break
        except OSError:
            pass
        finally:
            self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def parse_number(text: str) -> int:
    """A number as the monitor prints it: 0x1F, 31 or `0x1F (31)`."""
    m = re.search(r"\b(0x[0-9A-Fa-f]+|\d+)\b", text)
    if not m:
        raise MonitorError(f"expected a number from Renode's monitor, got {text!r}")
    return int(m.group(1), 0)


#: The reaper: holds a pipe from the harness; when it closes (the harness
#: exited, even by SIGKILL), it kills Renode's process group.
_REAPER = r"""
import os, signal, sys, time
pgid = int(sys.argv[1])
sys.stdin.buffer.read()
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        break
    for _ in range(40):
        time.sleep(0.05)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            sys.exit(0)
"""


def _resc_path(path: Path) -> str:
    """A path as a Renode script argument: @/abs/path (quoted if needed)."""
    text = str(path)
    return f'@"{text}"' if re.search(r"\s", text) else f"@{text}"


class RenodeTarget:
    """The Target protocol (targets/base.py) on Renode."""

    # no exit_status: Renode's process exits with Renode's own status (0 after `quit`, a signal's when
    # stopped), never the firmware's; there is no semihosting SYS_EXIT to pass one on
    capabilities = Capabilities(instruction_counter=True)

    def __init__(self, platform: Platform, elf: Path, workdir: Path,
                 start_timeout: float = 60.0, count: bool = True) -> None:
        self.platform = platform
        self.elf = Path(elf)
        self.workdir = Path(workdir)
        self.count = count
        self.start_timeout = start_timeout
        self.host_files = False  # no semihosting on Renode: inline transfers
        self.log_path = self.workdir / "renode.log"
        self.resc_path = self.workdir / "hil.resc"
        self.transcript_path = self.workdir / "renode-monitor.log"
        t = platform.target
        for key in ("repl", "uart"):
            if not getattr(t, key):
                raise UsageError(f"{platform.path}: `target.{key}` is missing or not a string",
                                 hint="a Renode platform names its .repl (target.repl) and its UART "
                                      '(target.uart = "sysbus.usart2"); see platforms/renode-stm32f4-discovery.toml')
        self.machine = t.machine_name
        self.cpu = t.cpu or "sysbus.cpu"
        self.terminal = t.terminal_name
        self.executable = os.environ.get("RENODE") or t.executable or "renode"
        self.process: subprocess.Popen | None = None
        self.reaper: subprocess.Popen | None = None
        self.monitor: RenodeMonitor | None = None
        self.command: list[str] = []
        self.uart_port: int | None = None
        self.monitor_port: int | None = None
        self._version: str | None = None

    # -- the script ---------------------------------------------------------------

    def platform_repl(self) -> str | None:
        """A .repl that uses the platform's and applies its overrides, or
        None when the platform file has no overrides."""
        overrides = self.platform.target.repl_overrides
        if not overrides:
            return None
        repl = self.platform.target.repl
        return (f"// generated by hil for {self.platform.name} from {self.platform.path.name}\n"
                f'using "{repl}"\n\n{overrides.strip()}\n')

    def script_lines(self, uart_port: int, platform_repl: Path | None = None) -> list[str]:
        """The monitor commands that set the machine up, in order (not `start`)."""
        t = self.platform.target
        repl = _resc_path(platform_repl) if platform_repl else f"@{t.repl}"
        lines = [f'mach create "{self.machine}"',
                 f"machine LoadPlatformDescription {repl}"]
        lines += list(t.setup)
        lines += [f"sysbus LoadELF {_resc_path(self.elf.resolve())}",
                  f'emulation CreateServerSocketTerminal {uart_port} "{self.terminal}" false',
                  f"connector Connect {t.uart} {self.terminal}"]
        return lines

    def write_script(self, uart_port: int) -> Path:
        """Write platform.repl (if needed) and hil.resc into the run directory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        repl_text = self.platform_repl()
        repl_path = None
        if repl_text is not None:
            repl_path = (self.workdir / "platform.repl").resolve()
            repl_path.write_text(repl_text)
        boot = self.platform.target.boot_time
        body = "\n".join(self.script_lines(uart_port, repl_path))
        self.resc_path.write_text(
            f":name: hil {self.platform.name}\n"
            f":description: written by hil for one run; `renode {self.resc_path.name}` replays it "
            f"(connect to the UART on port {uart_port} with a raw TCP client)\n\n"
            f"{body}\n"
            f'emulation RunFor "{boot}"\n'
            f"start\n")
        return self.resc_path

    # -- process --------------------------------------------------------------------

    def _find_executable(self) -> str:
        found = shutil.which(self.executable)
        if not found:
            raise InfraError(f"Renode (`{self.executable}`) was not found on PATH"
                             + (" (from the RENODE environment variable)" if os.environ.get("RENODE") else ""),
                             hint=INSTALL_HINT)
        return found

    def version(self) -> str:
        """Renode's version line (from the monitor's `version`, else its banner)."""
        if self._version is None and self.monitor is not None:
            texts = []
            try:
                texts.append(self.monitor.execute("version", check=False))
            except (MonitorError, OSError):
                pass
            texts.append(self.monitor.banner)
            for text in texts:
                m = re.search(r"Renode[^\n]*", text)
                if m:
                    self._version = m.group(0).strip()
                    break
        return self._version or "unknown"

    def describe(self) -> dict:
        return {"kind": "renode", "machine": self.platform.target.repl, "uart": self.platform.target.uart,
                "emulator": self._version or "unknown", "command": self.command,
                "script": str(self.resc_path), "monitor_port": self.monitor_port, "uart_port": self.uart_port}

    def _alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def health(self) -> TargetHealth:
        """Exited, stopped by a signal, its monitor not answering, or running."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            code = None if proc is None else proc.returncode
            return TargetHealth(EXITED, f"the emulator exited (Renode, exit status {code}; its log: {self.log_path})")
        if process_state(proc.pid) in ("T", "t"):
            return TargetHealth(STOPPED, f"the emulator stopped (process {proc.pid} is stopped by a signal)")
        try:
            if self.monitor is None:
                raise MonitorError("Renode's monitor is not connected")
            self.monitor.execute("version", timeout=HEALTH_TIMEOUT, check=False)
        except (MonitorError, OSError):
            return TargetHealth(UNRESPONSIVE, f"the emulator stalled (Renode, process {proc.pid}: its monitor "
                                              f"did not answer within {HEALTH_TIMEOUT:g} s)")
        return TargetHealth(RUNNING, f"Renode is running (process {proc.pid})")

    def _log_transcript(self, text: str) -> None:
        with open(self.transcript_path, "a") as fh:
            fh.write(text)

    def _private_tmp_env(self) -> dict[str, str]:
        """Renode's environment with a temporary directory of its own in the
        run directory: at start-up Renode deletes every `renode-*` directory
        in its temporary directory whose suffix is not a live PID, which
        could be someone's run directory (or another Renode's files)."""
        tmp = (self.workdir / "renode-tmp").resolve()
        tmp.mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(tmp), "TEMP": str(tmp), "TMP": str(tmp)}

    def start(self) -> str:
        exe = self._find_executable()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.monitor_port, self.uart_port = free_port(), free_port()
        while self.uart_port == self.monitor_port:
            self.uart_port = free_port()
        self.write_script(self.uart_port)
        self.command = [exe, "--disable-xwt", "--plain", "--port", str(self.monitor_port),
                        *self.platform.target.extra_args]
        log = open(self.log_path, "ab")
        try:
            self.process = popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir,
                env=self._private_tmp_env(), start_new_session=True, preexec_fn=_die_with_parent)
        except OSError as exc:
            raise InfraError(f"Renode could not be started: {exc}", hint=INSTALL_HINT) from exc
        finally:
            log.close()
        self.reaper = subprocess.Popen([sys.executable, "-c", _REAPER, str(self.process.pid)],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.monitor = RenodeMonitor.connect(self.monitor_port, timeout=self.start_timeout,
                                                 alive=self._alive, log=self._log_transcript)
            self.version()
            repl = self.workdir / "platform.repl" if self.platform_repl() is not None else None
            for line in self.script_lines(self.uart_port, repl.resolve() if repl else None):
                self.monitor.execute(line, timeout=self.start_timeout, quiet=True)
            boot = self.platform.target.boot_time
            self.monitor.execute(f'emulation RunFor "{boot}"', timeout=self.start_timeout)
            self.monitor.execute("start", timeout=self.start_timeout)
        except (MonitorError, OSError) as exc:
            tail = self._log_tail()
            self.stop()
            raise InfraError(f"Renode did not start {self.platform.name}: {exc}"
                             + (f"\n  Renode's log ends: {tail}" if tail else ""),
                             hint=f"replay it by hand: cd {self.workdir} && {shlex.join(self.command[:1])} "
                                  f"--disable-xwt {self.resc_path.name} (full log: {self.log_path})") from exc
        return f"socket://127.0.0.1:{self.uart_port}"

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return " / ".join(ln.strip() for ln in text.splitlines()[-lines:] if ln.strip())

    # -- counts ---------------------------------------------------------------------

    def exit_text(self) -> str | None:
        """Renode's own words are in its log (`health` names it); none are picked out."""
        return None

    def instructions(self) -> int:
        """`<cpu> ExecutedInstructions`, read through the monitor."""
        if self.monitor is None:
            raise MonitorError("Renode is not running")
        return parse_number(self.monitor.execute(f"{self.cpu} ExecutedInstructions"))

    # -- stop -----------------------------------------------------------------------

    def stop(self) -> None:
        """`quit` on the monitor, then SIGTERM, then SIGKILL to the whole
        process group (the launcher script and Mono). Safe to call twice."""
        monitor, self.monitor = self.monitor, None
        proc, self.process = self.process, None
        reaper, self.reaper = self.reaper, None
        if monitor is not None:
            if proc is not None and proc.poll() is None:
                monitor.quit(timeout=3.0)
            else:
                monitor.close()
        if proc is not None:
            try:
                proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                pass
            _kill_group(proc)
        if reaper is not None:
            try:
                if reaper.stdin is not None:
                    reaper.stdin.close()  # the reaper kills what is left of the group and exits
            except OSError:
                pass
            try:
                reaper.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                reaper.kill()

    def __enter__(self) -> "RenodeTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_group(proc: subprocess.Popen, grace: float = 2.0) -> None:
    """SIGTERM the process group `proc` leads, then SIGKILL what is left
    after `grace` seconds. Reaps `proc` meanwhile (a zombie leader would
    keep the group alive to killpg)."""
    pgid = proc.pid
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        else:
            continue
        break
    proc.poll()
