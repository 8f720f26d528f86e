"""Console mode, beside the runner: boot (or flash) any firmware and check
what it prints.

For firmware that does not speak the hil protocol: an upstream TFLM
example, a Zephyr sample, a ztest binary. Ordered expected patterns must
appear on the console, fail patterns must not, named groups become
metrics, and on an emulator the firmware's semihosting exit status can be
checked. The result is a `hil.console/1` JSON document next to the console
log, with the exit codes of `hil run`. `hil console` (commands/console.py)
is its command line; `session.ConsoleDevice` drives it one wait at a time
(Robot Framework, pytest).
"""

from __future__ import annotations

import hashlib
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import serial

from .build.artifact import read_elf
from .errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, HilError, InfraError, UsageError
from .link.console import (SCHEMA, ConsoleSession, ConsoleSpawn, Reader, compile_pattern, console_estimate,
                           cycle_plugin, file_reader, log_tail, serial_reader)
from .paths import absolute
from .platforms import Platform, load_platform
from .results.result import write_json_atomic
from .runner import default_workdir
from .targets import capabilities_of, check_board_options, make_target
from .targets.board import resolve_boards

log = logging.getLogger(__name__)


class _Terminated(BaseException):
    """SIGTERM during a console run: stop, keep the document."""


class ConsoleRun:
    """One console-mode run: check the input, boot or flash, read the
    console, judge it, and keep the `hil.console/1` document. `execute`
    does it all (`hil console`); a ConsoleDevice uses the steps
    (`check_firmware`, `check_platform`, `open`, `exit_status`, `close`)."""

    def __init__(self, elf: Path, platform: str, expect: list[str], fail: list[str], timeout: float,
                 console: str = "uart", expect_exit: int | None = None, ports: list[str] | None = None,
                 probes: list[str] | None = None, baud: int | None = None, flasher: str | None = None,
                 json_out: Path | None = None, workdir: Path | None = None, echo: Any = None,
                 marks: list[str] | None = None, cycles: bool = True) -> None:
        self.elf: Path = absolute(elf) or Path(elf)  # the emulator runs in the run directory
        self.platform_name = platform
        self.expect, self.fail = list(expect), list(fail)
        self.timeout = timeout
        self.console = console
        self.expect_exit = expect_exit
        self.ports, self.probes = list(ports or []), list(probes or [])
        self.baud, self.flasher = baud, flasher
        self.json_out = absolute(json_out)
        self.workdir = Path(workdir or default_workdir(platform, "console")).resolve()
        self.result_path = self.workdir / "result.json"
        self.log_path = self.workdir / "console.log"
        self.echo = echo
        self.marks = list(marks or [])   # --mark: symbols between whose hits the cycle estimate is reported
        self.cycles = cycles
        self.plugin = None               # the QEMU cycle plugin (harness/timing), when the platform has [timing]
        self.started = time.time()
        self.doc: dict = {}
        self.target: Any = None          # a Target (targets/base.py) once `open` made it
        self._uart: serial.SerialBase | None = None  # an emulator's UART, connected by `open`

    # -- the document --------------------------------------------------------------

    def save(self) -> None:
        """Write the document now (run directory and --json)."""
        self._save()

    def _save(self) -> None:
        self.doc["duration_s"] = round(time.time() - self.started, 3)
        write_json_atomic(self.result_path, self.doc)
        if self.json_out:
            write_json_atomic(Path(self.json_out), self.doc)

    def _end(self, status: str, code: int, message: str | None) -> None:
        self.doc.update(status=status, exit_code=code)
        if message:
            self.doc["error"] = {"message": message}

    # -- stages -----------------------------------------------------------------------

    def _check(self) -> Platform:
        self.check_patterns()
        platform = self.check_platform(expect_exit=self.expect_exit)
        self.plugin = cycle_plugin(platform, self.elf, self.workdir, self.marks, self.cycles)
        return platform

    def check_patterns(self) -> None:
        """Something to check, every pattern a valid regular expression, a timeout above 0."""
        if not self.expect and self.expect_exit is None and not self.fail:
            raise UsageError("nothing to check: no --expect pattern, no --fail pattern and no --expect-exit",
                             hint="give --expect REGEX (repeatable, in the order the lines appear), --fail REGEX "
                                  "(with --timeout: no such line within that time) and/or --expect-exit N")
        for p in self.expect:
            compile_pattern(p, "--expect")
        for p in self.fail:
            compile_pattern(p, "--fail")
        if self.timeout <= 0:
            raise UsageError(f"--timeout {self.timeout:g} must be more than 0 seconds")

    def check_platform(self, expect_exit: int | None = None) -> Platform:
        """The platform, checked against what console mode is asked to do:
        board options only for boards, semihosting and an exit status only
        where the target offers them. Before anything boots."""
        platform = load_platform(self.platform_name)
        check_board_options(platform, self.ports, self.probes, self.baud, self.flasher)
        caps = capabilities_of(platform)
        if self.console == "semihosting":
            if not caps.semihosting:
                raise UsageError(f"--console semihosting needs an emulator; {platform.name} is a board"
                                 if caps.flash else f"--console semihosting: {platform.name} runs in "
                                                    f"{platform.target_kind}, which has no semihosting",
                                 hint="read the board's UART (--console uart); semihosting on a board needs a "
                                      "debugger session" if caps.flash else "use --console uart")
            if not platform.target.semihosting:
                raise UsageError(f"{platform.name} does not enable semihosting in its emulator",
                                 hint="set target.semihosting = true in its platform file, or use --console uart")
        if expect_exit is not None and not caps.exit_status:
            raise UsageError(f"--expect-exit needs an emulator: a board's exit status cannot be observed "
                             f"({platform.name})" if caps.flash else
                             f"--expect-exit: {platform.name} runs in {platform.target_kind}, whose process does "
                             f"not exit with the firmware's status",
                             hint="check the line the firmware prints at its end with --expect instead")
        return platform

    def check_firmware(self) -> dict:
        """The firmware's record for the document (path, sha256, what hil
        read of the ELF); a file hil cannot read is exit 2 before anything boots."""
        return self._firmware()

    def _firmware(self) -> dict:
        try:
            info = read_elf(self.elf)
        except Exception as exc:
            raise UsageError(f"{self.elf} is not an ELF file hil can read: {exc}",
                             hint="pass the firmware's .elf (not .bin or .hex)") from exc
        doc = {"path": str(self.elf), "sha256": hashlib.sha256(self.elf.read_bytes()).hexdigest()}
        doc.update(info.as_dict())
        return doc

    def open(self, platform: Platform) -> Reader:
        """Start the target; return a Reader for the chosen console."""
        if capabilities_of(platform).flash:
            boards = resolve_boards(platform, self.ports, self.probes)
            if len(boards) > 1:
                raise UsageError("console mode runs one board at a time", hint="give one --port")
            self.target = make_target(platform, self.elf, self.workdir, board=boards[0], baud=self.baud,
                                      flasher=self.flasher, console=True)
            self.doc["target"] = self.target.describe()
            self.target.start()
            self.doc["target"] = self.target.describe()
            return serial_reader(self.target.open_link())
        self.target = make_target(platform, self.elf, self.workdir, count=True)
        if self.plugin is not None and self.target.capabilities.cycle_plugin:
            self.target.plugin_args = self.plugin.qemu_args()
        url = self.target.start()
        self.doc["target"] = self.target.describe()
        # QEMU's own messages before the guest runs are not the firmware's console
        offset = self.target.log_path.stat().st_size if self.target.log_path.exists() else 0
        uart = serial.serial_for_url(url, timeout=0.1)  # connecting lets the guest run
        self._uart = uart
        if self.console == "uart":
            return serial_reader(uart)
        # semihosting output is QEMU's own stdout/stderr (its log); keep the
        # UART drained into a file meanwhile, so a chatty guest never stalls
        threading.Thread(target=self._drain_uart, args=(uart,), daemon=True).start()
        proc = self.target.process
        return file_reader(self.target.log_path, alive=lambda: proc.poll() is None, start=offset)

    def _drain_uart(self, uart) -> None:
        with open(self.workdir / "uart.log", "wb") as fh:
            while True:
                try:
                    data = uart.read(4096)
                except (serial.SerialException, OSError, TypeError, AttributeError):
                    return
                if data:
                    fh.write(data)
                    fh.flush()

    def exit_status(self, wait: float) -> int | None:
        """The firmware's exit status, waiting up to `wait` seconds for the
        emulator to exit with it; None when it did not, or cannot (boards)."""
        if self.target is None or not self.target.capabilities.exit_status:
            return None
        proc = self.target.process
        if proc is None:
            return None
        try:
            return proc.wait(timeout=wait)
        except Exception:
            return None

    # -- the run --------------------------------------------------------------------------

    def execute(self) -> dict:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.doc = {"schema": SCHEMA, "status": "running", "exit_code": None,
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
                    "platform": {"name": self.platform_name}, "firmware": {"path": str(self.elf)},
                    "console": self.console, "timeout_s": self.timeout,
                    "expect": [{"pattern": p, "status": "not_reached"} for p in self.expect],
                    "fail_patterns": self.fail, "expect_exit": self.expect_exit,
                    "failed_on": None, "metrics": {}, "firmware_exit": None, "target": {},
                    "log": str(self.log_path), "error": None}
        old_term = None

        def on_term(signum, frame):
            raise _Terminated()

        try:
            old_term = signal.signal(signal.SIGTERM, on_term)
        except ValueError:
            pass
        spawn = None
        try:
            try:
                platform = self._check()
                self.doc["platform"] = {"name": platform.name, "core": platform.core,
                                        "description": platform.description}
                self.doc["firmware"] = self._firmware()
                self._save()
                reader = self.open(platform)
                spawn = ConsoleSpawn(reader, self.log_path, echo=self.echo)
                session = ConsoleSession(spawn, self.expect, self.fail, self.timeout,
                                         wait_for_end=self.expect_exit is not None,
                                         on_progress=lambda: self._progress(session))
                outcome = session.run()
                self._finish(outcome, platform)
            except HilError as exc:
                self._end("error", exc.exit_code, str(exc))
            except (KeyboardInterrupt, _Terminated):
                self._end("interrupted", EXIT_INTERRUPTED, "interrupted (Ctrl-C or SIGTERM)")
            except (serial.SerialException, OSError) as exc:
                self._end("error", EXIT_INFRA, f"console link failure: {exc}")
        finally:
            if spawn is not None:
                spawn.close()
            booted = self.target is not None  # close() below forgets the target; the estimate needs to know
            if self.target is not None:
                if self.doc.get("firmware_exit") is None:
                    code = self.exit_status(0)
                    if code is not None:
                        self.doc["firmware_exit"] = {"code": code, "expected": self.expect_exit}
                self.close()
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            if self.plugin is not None and booted:
                self.doc["cycles"] = console_estimate(self.plugin, self.marks)
            self.doc["log_tail"] = log_tail(self.log_path)
            self._save()
        return self.doc

    def close(self) -> None:
        """Stop the target and close the emulator's UART. Safe to call twice."""
        target, self.target = self.target, None
        uart, self._uart = self._uart, None
        try:
            if target is not None:
                target.stop()
        finally:
            if uart is not None:
                try:
                    uart.close()
                except Exception:
                    pass

    def _progress(self, session: ConsoleSession) -> None:
        self.doc["expect"] = [e.as_dict() for e in session.expectations]
        self.doc["metrics"] = dict(session.metrics)
        self._save()

    def _finish(self, outcome, platform: Platform) -> None:
        caps = capabilities_of(platform)
        self.doc["expect"] = [e.as_dict() for e in outcome.expectations]
        self.doc["metrics"] = outcome.metrics
        self.doc["failed_on"] = outcome.failed_on
        self.doc["received_bytes"] = outcome.received_bytes
        self.doc["console_s"] = round(outcome.duration_s, 3)
        message = outcome.message
        status = outcome.status
        code = None
        if caps.exit_status and status in ("passed", "ended"):
            code = self.exit_status(5.0 if status == "passed" and self.expect_exit is not None else 0.5)
            if code is not None:
                self.doc["firmware_exit"] = {"code": code, "expected": self.expect_exit,
                                             "passed": self.expect_exit is None or code == self.expect_exit}
        wrong_exit = status == "passed" and code is not None and self.expect_exit not in (None, code)
        gone = self.target.exit_text() if self.target is not None and (status == "ended" or wrong_exit) else None
        if gone:  # the emulator itself failed (it could not load the image or the cycle plugin, ...): not the firmware's doing
            raise InfraError(f"{message + ': ' if message else ''}the emulator stopped: {gone}",
                             hint="check the --elf file and the platform's emulator options"
                                  + (" (the cycle plugin: --no-cycles runs without it)" if self.plugin else ""))
        if status == "ended" and code is not None:
            message += f" (the firmware exited with status {code})"
        if status == "passed" and self.expect_exit is not None:
            if code is None:
                status, message = "failed", "the firmware's exit status could not be read"
            elif code != self.expect_exit:
                status = "failed"
                message = f"the firmware exited with status {code}, expected {self.expect_exit}"
        silent_smoke_test = status == "passed" and not self.expect  # --fail alone, decided by the timeout
        if status == "passed" and not (silent_smoke_test and caps.flash and outcome.received_bytes == 0):
            self._end("passed", EXIT_OK, None)
            return
        if caps.flash and outcome.received_bytes == 0 and (status == "timeout" or silent_smoke_test):
            port = self.target.port if self.target is not None else "?"
            raise InfraError(f"device not detected on {port}: no console output at all within {self.timeout:g} s",
                             hint=f"check power, cable and port, the baud rate ({getattr(self.target, 'baud', '?')}, "
                                  f"--baud), and that flashing worked (log: {self.workdir / 'board.log'})")
        self._end("failed", EXIT_FAILED, message)
