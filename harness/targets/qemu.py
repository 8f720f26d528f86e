"""QEMU system emulation as a target.

The firmware's UART is a unix-domain server socket in Linux's abstract
namespace (`server=on,wait=on`): QEMU holds the guest until the host
connects, so no byte is lost, and the host talks to it through a `unix://@name`
pyserial port (harness/link/urlhandler/) as it would to a network serial
port. Not TCP: QEMU writes each UART byte to the socket on its own, and
over loopback TCP that cost 3-4x the CPU per byte; an abstract name leaves
no file behind, whatever ends the run. QEMU's own stdout/stderr go to a log file, never into the protocol.
With `-icount shift=0` virtual time advances one nanosecond per instruction,
which makes the firmware's SysTick counts deterministic instruction counts.

QEMU also serves QMP on a unix socket in the run directory, so `health()`
can tell a stalled or paused emulator from a firmware that hangs.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import shutil
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import InfraError
from ..platforms import Platform
from ..spawn import popen
from .base import EXITED, PAUSED, RUNNING, STOPPED, UNRESPONSIVE, Capabilities, TargetHealth, process_state

logger = logging.getLogger(__name__)  # `log` is the emulator's log file in start()

_PR_SET_PDEATHSIG = 1
#: sun_path of a unix socket holds 108 bytes, the terminating NUL included
_UNIX_PATH_MAX = 107
#: how long QMP may take to answer before the emulator counts as unresponsive
QMP_TIMEOUT = 2.0


def _die_with_parent() -> None:
    """Runs in the child: SIGKILL QEMU if the harness itself is killed."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@functools.lru_cache(maxsize=16)
def emulator_version(executable: str) -> str:
    """`qemu-system-* --version`'s first line, asked once per executable in
    a process (a run describes its target more than once, a suite has many
    runs; each ask starts QEMU: 20-100 ms)."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else "unknown"


class QemuTarget:
    capabilities = Capabilities(cycle_plugin=True, semihosting=True, exit_status=True)

    def __init__(self, platform: Platform, elf: Path, workdir: Path,
                 start_timeout: float = 10.0, count: bool = True) -> None:
        self.count = count  # without counting, QEMU runs without -icount (faster)
        self.platform = platform
        self.elf = Path(elf).absolute()  # QEMU runs in the run directory
        self.workdir = Path(workdir)
        self.log_path = self.workdir / "qemu.log"
        self.start_timeout = start_timeout
        self.host_files = platform.target.semihosting
        self.process: subprocess.Popen | None = None
        self.executable = platform.target.executable or "qemu-system-arm"
        self.command: list[str] = []
        self.qmp_path: Path | None = None
        self._qmp_dir: str | None = None  # a short directory in /tmp when the run directory's path is too long
        self.plugin_args: list[str] = []  # `-plugin ...` of the cycle plugin (harness/timing/plugin.py), set by the runner

    def _command(self, uart: str) -> list[str]:
        t = self.platform.target
        cmd = [self.executable, "-M", t.machine, "-display", "none", "-monitor", "none",
               "-serial", f"unix:{uart},abstract=on,server=on,wait=on", "-kernel", str(self.elf)]
        if self.qmp_path is not None:
            cmd += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if t.cpu:
            cmd += ["-cpu", t.cpu]
        if t.icount and self.count:
            cmd += ["-icount", t.icount]
        if self.host_files:
            cmd += ["-semihosting-config", "enable=on,target=native"]
        return cmd + self.plugin_args + list(t.extra_args)

    def version(self) -> str:
        return emulator_version(shutil.which(self.executable) or self.executable)

    def describe(self) -> dict:
        return {"kind": "qemu", "machine": self.platform.target.machine,
                "emulator": self.version(), "command": self.command}

    def start(self) -> str:
        if not shutil.which(self.executable):
            package = self.platform.target.package or self.executable
            raise InfraError(f"`{self.executable}` was not found on PATH",
                             hint=f"install it: apt-get install -y {package}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.qmp_path = self._choose_qmp_path()
        uart = f"hil-uart-{os.getpid()}-{secrets.token_hex(6)}"  # an abstract name: no file, no port to race for
        self.command = self._command(uart)
        logger.info("starting the emulator in %s: %s", self.workdir, " ".join(self.command))
        log = open(self.log_path, "ab")
        self.process = popen(
            self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            preexec_fn=_die_with_parent, cwd=self.workdir)
        log.close()
        if self._wait_listening(uart):
            return f"unix://@{uart}"
        self.stop()
        raise InfraError(f"QEMU did not start for {self.platform.name}: {self._own_words() or 'no output'}",
                         hint=f"run it by hand to see why: {' '.join(self.command)}")

    def _own_words(self, lines: int = 5) -> str:
        """QEMU's last lines in its log, without its own "waiting for
        connection" notice (not an error)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [t for t in text.splitlines() if t.strip() and "QEMU waiting for connection" not in t]
        return " | ".join(kept[-lines:])

    def exit_text(self, wait: float = 0.5) -> str | None:
        """Why the emulator is gone, in its own words, when it exited by itself
        with an error of its own (e.g. "Could not load kernel ..." after the
        host connected: with wait=on that is when QEMU loads the image).
        None while it runs (after `wait` seconds: the link closes just before
        the process ends), or when it ended without complaint (a firmware's
        semihosting exit, whose status is the firmware's)."""
        proc = self.process
        if proc is None:
            return None
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        prefix = f"{Path(self.executable).name}:"
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        own = [t for t in lines if t.startswith((prefix, "hil_cycles:")) and "QEMU waiting for connection" not in t
               and ": warning:" not in t and ": info:" not in t]
        if not own:
            return None
        return f"QEMU exited with status {proc.returncode}: {' | '.join(own[-3:])} (log: {self.log_path})"

    def _wait_listening(self, uart: str) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            # QEMU prints nothing when it listens; look for the socket without
            # connecting (connecting would start the guest before we're ready)
            if _unix_is_listening(uart):
                return True
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        proc, self.process = self.process, None
        if self._qmp_dir is not None:
            shutil.rmtree(self._qmp_dir, ignore_errors=True)
            self._qmp_dir = None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.send_signal(signal.SIGCONT)  # a stopped QEMU acts on SIGTERM only once continued
        except OSError:
            pass
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    # -- health: is the emulator running? --------------------------------------------

    def _choose_qmp_path(self) -> Path:
        """qmp.sock in the run directory, or in a fresh directory under /tmp
        when that path is too long for a unix socket."""
        path = (self.workdir / "qmp.sock").resolve()
        if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
            return path
        self._qmp_dir = tempfile.mkdtemp(prefix="hil-qmp-", dir="/tmp")
        return Path(self._qmp_dir) / "qmp.sock"

    def qmp(self, *commands: str, timeout: float = QMP_TIMEOUT) -> list[dict] | None:
        """Run QMP commands; their `return` values, or None when QEMU does
        not answer within `timeout` (a stopped process accepts the
        connection but never greets)."""
        if self.qmp_path is None:
            return None
        deadline = time.monotonic() + timeout
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.qmp_path))
                reader = sock.makefile("rb")

                def answer() -> dict:
                    while True:
                        sock.settimeout(max(0.01, deadline - time.monotonic()))
                        line = reader.readline()
                        if not line:
                            raise OSError("QMP closed the connection")
                        message = json.loads(line)
                        if "return" in message or "error" in message or "QMP" in message:
                            return message

                answer()  # the greeting
                results: list = []
                for command in ("qmp_capabilities", *commands):
                    sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
                    results.append(answer().get("return"))
                return results[1:]
        except (OSError, ValueError):
            return None

    def health(self) -> TargetHealth:
        """Exited, stopped by a signal (SIGSTOP: state T), paused, not
        answering QMP, or running; with QEMU's instruction count (QMP
        `query-replay` reports it under -icount)."""
        proc = self.process
        if proc is None:
            return TargetHealth(EXITED, "the emulator was stopped by hil")
        code = proc.poll()
        if code is not None:
            return TargetHealth(EXITED, f"the emulator exited (QEMU, process {proc.pid}, exit status {code}; "
                                        f"its log: {self.log_path})")
        answers = self.qmp("query-status", "query-replay")
        code = proc.poll() if answers is None else None  # QMP went away because QEMU was exiting
        if code is not None:
            return TargetHealth(EXITED, self.exit_text(wait=0) or f"the emulator exited (QEMU, process {proc.pid}, "
                                                                 f"exit status {code}; its log: {self.log_path})")
        state = process_state(proc.pid)  # after QMP: a signal just sent has taken effect by now
        if state in ("T", "t"):
            how = "is stopped by a signal" if state == "T" else "is stopped by a debugger"
            quiet = "" if answers is None else " (QMP still answered)"
            return TargetHealth(STOPPED, f"the emulator stopped (process {proc.pid} {how}){quiet}")
        if answers is None:
            return TargetHealth(UNRESPONSIVE, f"the emulator stalled (process {proc.pid} did not answer QMP "
                                              f"within {QMP_TIMEOUT:g} s)")
        status, replay = answers
        clock = (replay or {}).get("icount")
        if not (status or {}).get("running", False):
            return TargetHealth(PAUSED, f"the emulator is not running the guest (process {proc.pid}, QMP status "
                                        f"{(status or {}).get('status', 'unknown')!r})", clock)
        return TargetHealth(RUNNING, f"QEMU is running the guest (process {proc.pid})", clock)

    def __enter__(self) -> "QemuTarget":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _unix_is_listening(name: str) -> bool:
    """True when something listens on the abstract unix socket `name`
    (reads /proc/net/unix: flag __SO_ACCEPTCON, path "@name")."""
    want = "@" + name
    try:
        with open("/proc/net/unix") as fh:
            next(fh)
            for line in fh:
                fields = line.split()
                if len(fields) >= 8 and fields[7] == want and int(fields[3], 16) & 0x10000:
                    return True
    except OSError:
        return True  # cannot tell: let the connect retry loop decide
    return False
