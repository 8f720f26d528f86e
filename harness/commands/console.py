"""`hil console`: boot (or flash) any firmware and check what it prints.

For firmware that does not speak the hil protocol: an upstream TFLM
example, a Zephyr sample, a ztest binary. Ordered `--expect` patterns must
appear on the console, `--fail` patterns must not, named groups become
metrics, and in an emulator the firmware's semihosting exit status can be
checked (`--expect-exit`). The result is a `hil.console/1` JSON document
next to the console log, with the exit codes of `hil run`.
"""

from __future__ import annotations

import hashlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path

import click
import serial

from ..errors import EXIT_FAILED, EXIT_INFRA, EXIT_OK, HilError, InfraError, UsageError
from ..link.console import (SCHEMA, ConsoleSession, ConsoleSpawn, compile_pattern, console_estimate,
                            cycle_plugin, estimate_lines, file_reader, log_tail, serial_reader)
from ..paths import absolute, click_absolute
from ..platforms import Platform, load_platform
from ..results.console import make_console
from ..results.result import write_json_atomic

log = logging.getLogger(__name__)

EXIT_INTERRUPTED = 130

out = make_console()
err = make_console(stderr=True)


class _Terminated(BaseException):
    pass


def _default_workdir(platform: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(".hil") / "runs" / f"{stamp}-console-{Path(platform).stem}-{time.monotonic_ns() % 100000:05d}"


class ConsoleRun:
    def __init__(self, elf: Path, platform: str, expect: list[str], fail: list[str], timeout: float,
                 console: str = "uart", expect_exit: int | None = None, ports: list[str] | None = None,
                 probes: list[str] | None = None, baud: int | None = None, flasher: str | None = None,
                 json_out: Path | None = None, workdir: Path | None = None, echo=None,
                 marks: list[str] | None = None, cycles: bool = True) -> None:
        self.elf = absolute(elf)  # the emulator runs in the run directory
        self.platform_name = platform
        self.expect, self.fail = list(expect), list(fail)
        self.timeout = timeout
        self.console = console
        self.expect_exit = expect_exit
        self.ports, self.probes = list(ports or []), list(probes or [])
        self.baud, self.flasher = baud, flasher
        self.json_out = absolute(json_out)
        self.workdir = Path(workdir or _default_workdir(platform)).resolve()
        self.result_path = self.workdir / "result.json"
        self.log_path = self.workdir / "console.log"
        self.echo = echo
        self.marks = list(marks or [])   # --mark: symbols between whose hits the cycle estimate is reported
        self.cycles = cycles
        self.plugin = None               # the QEMU cycle plugin (harness/timing), when the platform has [timing]
        self.started = time.time()
        self.doc: dict = {}
        self.target = None

    # -- the document --------------------------------------------------------------

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
        platform = load_platform(self.platform_name)
        from ..targets import check_target_kind, is_board

        check_target_kind(platform)
        if is_board(platform):
            if self.console == "semihosting":
                raise UsageError(f"--console semihosting needs an emulator; {platform.name} is a board",
                                 hint="read the board's UART (--console uart); semihosting on a board needs a "
                                      "debugger session")
            if self.expect_exit is not None:
                raise UsageError(f"--expect-exit needs an emulator: a board's exit status cannot be observed "
                                 f"({platform.name})",
                                 hint="check the line the firmware prints at its end with --expect instead")
        else:
            if self.ports or self.probes or self.baud or self.flasher:
                raise UsageError(f"--port, --probe, --baud and --flasher are for boards; {platform.name} runs in "
                                 f"{platform.target_kind}", hint="drop them, or choose a board platform")
            if self.console == "semihosting" and not platform.target.semihosting:
                raise UsageError(f"{platform.name} does not enable semihosting in its emulator",
                                 hint="set target.semihosting = true in its platform file, or use --console uart")
        self.plugin = cycle_plugin(platform, self.elf, self.workdir, self.marks, self.cycles)
        return platform

    def _firmware(self) -> dict:
        from ..build.artifact import read_elf

        try:
            info = read_elf(self.elf)
        except Exception as exc:
            raise UsageError(f"{self.elf} is not an ELF file hil can read: {exc}",
                             hint="pass the firmware's .elf (not .bin or .hex)") from exc
        doc = {"path": str(self.elf), "sha256": hashlib.sha256(self.elf.read_bytes()).hexdigest()}
        doc.update(info.as_dict())
        return doc

    def _open(self, platform: Platform):
        """Start the target; return a Reader for the chosen console."""
        from ..targets import is_board, make_target
        from ..targets.board import resolve_boards

        if is_board(platform):
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
        if self.plugin is not None:
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

    def _exit_status(self, wait: float) -> int | None:
        proc = getattr(self.target, "process", None)
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
                reader = self._open(platform)
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
            if self.target is not None:
                if self.doc.get("firmware_exit") is None:
                    proc = getattr(self.target, "process", None)
                    if proc is not None and proc.poll() is not None:
                        self.doc["firmware_exit"] = {"code": proc.returncode, "expected": self.expect_exit}
                self.target.stop()
                if hasattr(self, "_uart"):
                    try:
                        self._uart.close()
                    except Exception:
                        pass
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)
            if self.plugin is not None and self.target is not None:
                self.doc["cycles"] = console_estimate(self.plugin, self.marks)
            self.doc["log_tail"] = log_tail(self.log_path)
            self._save()
        return self.doc

    def _progress(self, session: ConsoleSession) -> None:
        self.doc["expect"] = [e.as_dict() for e in session.expectations]
        self.doc["metrics"] = dict(session.metrics)
        self._save()

    def _finish(self, outcome, platform: Platform) -> None:
        from ..targets import is_board

        self.doc["expect"] = [e.as_dict() for e in outcome.expectations]
        self.doc["metrics"] = outcome.metrics
        self.doc["failed_on"] = outcome.failed_on
        self.doc["received_bytes"] = outcome.received_bytes
        self.doc["console_s"] = round(outcome.duration_s, 3)
        message = outcome.message
        status = outcome.status
        code = None
        if not is_board(platform) and status in ("passed", "ended"):
            code = self._exit_status(5.0 if status == "passed" and self.expect_exit is not None else 0.5)
            if code is not None:
                self.doc["firmware_exit"] = {"code": code, "expected": self.expect_exit,
                                             "passed": self.expect_exit is None or code == self.expect_exit}
        wrong_exit = status == "passed" and code is not None and self.expect_exit not in (None, code)
        gone = getattr(self.target, "exit_text", lambda: None)() if status == "ended" or wrong_exit else None
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
        if status == "passed" and not (silent_smoke_test and is_board(platform) and outcome.received_bytes == 0):
            self._end("passed", EXIT_OK, None)
            return
        if is_board(platform) and outcome.received_bytes == 0 and (status == "timeout" or silent_smoke_test):
            port = self.target.port if self.target is not None else "?"
            raise InfraError(f"device not detected on {port}: no console output at all within {self.timeout:g} s",
                             hint=f"check power, cable and port, the baud rate ({getattr(self.target, 'baud', '?')}, "
                                  f"--baud), and that flashing worked (log: {self.workdir / 'board.log'})")
        self._end("failed", EXIT_FAILED, message)


def _print(doc: dict, result_path: Path) -> None:
    status = doc.get("status")
    expects = doc.get("expect", [])
    matched = sum(1 for e in expects if e.get("status") == "matched")
    verdict = {"passed": "[bold green]PASSED[/]", "failed": "[bold red]FAILED[/]"}.get(
        status, f"[bold red]{str(status).upper()}[/]")
    where = doc.get("target", {}).get("port") or doc.get("platform", {}).get("name")
    if status in ("passed", "failed"):
        line = f"{verdict}  {matched}/{len(expects)} patterns matched on {where} ({doc.get('console')} console)"
        fx = doc.get("firmware_exit")
        if fx:
            line += f"; firmware exit status {fx['code']}"
            if fx.get("expected") is not None:
                line += f" (expected {fx['expected']})"
        out.print(line, highlight=False)
        for e in expects:
            mark = {"matched": "[green]ok[/]", "waiting": "[red]waiting[/]"}.get(e["status"], "[dim]not reached[/]")
            detail = f"  [dim]{e.get('text')}[/]" if e.get("text") else ""
            out.print(f"  {mark:>20}  {e['pattern']}{detail}", highlight=False, soft_wrap=True)
        if doc.get("metrics"):
            out.print("  metrics: " + ", ".join(f"{k}={v}" for k, v in doc["metrics"].items()), highlight=False)
        for line in estimate_lines(doc.get("cycles")):
            out.print(line, highlight=False, soft_wrap=True)
    error = doc.get("error")
    if error:
        err.print(f"[bold red]error:[/] {error['message']}", soft_wrap=True, highlight=False)
        tail = doc.get("log_tail") or []
        if tail and status == "failed":
            err.print("  last console lines:", highlight=False)
            for t in tail[-8:]:
                err.print(f"    | {t}", highlight=False, soft_wrap=True)
    out.print(f"  console log: {doc.get('log')}\n  result: {result_path}", highlight=False)


@click.command("console")
@click.option("--elf", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              callback=click_absolute,
              help="The firmware to boot or flash (any firmware: it need not speak the hil protocol).")
@click.option("--platform", "-p", default="mps2-an386", show_default=True,
              help="Platform name (`hil platforms`) or path to a platform .toml: an emulator or a board.")
@click.option("--expect", "expect", multiple=True, metavar="REGEX",
              help="A line that must appear, in order (repeatable). Named groups, e.g. "
                   "'took (?P<ms>\\d+) ms', are recorded as metrics.")
@click.option("--fail", "fail", multiple=True, metavar="REGEX",
              help="A line that fails the run at once (repeatable), e.g. 'ASSERT|FAILED|HardFault'; watched "
                   "on every line until the firmware exits or the timeout, also after the last --expect. "
                   "--fail alone is a smoke test: it passes when no such line came within --timeout.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds for the whole session; on timeout the pattern being waited for is named.")
@click.option("--console", "console", type=click.Choice(["uart", "semihosting"]), default="uart",
              show_default=True, help="Where the firmware prints: its UART, or (emulators) semihosting "
                                      "SYS_WRITE0/SYS_WRITEC.")
@click.option("--expect-exit", type=int, metavar="N",
              help="Emulators: wait for the firmware to exit (semihosting SYS_EXIT / SYS_EXIT_EXTENDED) and "
                   "require exit status N.")
@click.option("--port", "ports", multiple=True, metavar="URL",
              help="Boards: the serial port (pyserial URL) [default: the only debug probe attached].")
@click.option("--probe", "probes", multiple=True, metavar="ID", help="Boards: the probe's serial number.")
@click.option("--baud", type=click.IntRange(min=1), help="Boards: baud rate [default: the platform file's].")
@click.option("--flasher", type=click.Choice(["pyocd", "openocd", "west", "jlink", "command", "none"]),
              help="Boards: override board.flasher.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Also write the hil.console/1 JSON here (always written to the run directory).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              help="Run directory for the result and the console log [default: .hil/runs/<id>].")
@click.option("--echo", is_flag=True, help="Show the console on stderr as it arrives.")
@click.option("--mark", "marks", multiple=True, metavar="SYMBOL",
              help="QEMU: a function of the firmware; the cycles estimate between consecutive hits of the "
                   "marks is reported (repeatable; keep the function from being inlined).")
@click.option("--cycles/--no-cycles", "cycles", default=True,
              help="QEMU: the whole run's cycles estimate from the cycle plugin and the platform's [timing] "
                   "model [default: on where the platform has one].")
def command(elf, platform, expect, fail, timeout, console, expect_exit, ports, probes, baud, flasher,
            json_out, workdir, echo, marks, cycles) -> None:
    """Boot or flash any firmware and check its console output.

    \b
    Examples:
      hil console --elf test.elf --console semihosting --expect 'PASS' --fail 'FAIL' --expect-exit 0
      hil console --elf zephyr.elf -p nucleo-l4r5zi --port /dev/ttyACM0 \\
          --expect 'Booting Zephyr' --expect 'inference took (?P<ms>\\d+) ms' --fail 'ASSERTION FAIL'

    Exit status: 0 every pattern matched (and the exit status, if asked),
    1 a fail pattern, a timeout or a wrong exit status, 2 bad usage,
    3 infrastructure (emulator missing, device not detected), 130 interrupted.
    """
    echo_fn = (lambda text: (sys.stderr.write(text), sys.stderr.flush())) if echo else None
    run = ConsoleRun(elf, platform, list(expect), list(fail), timeout, console, expect_exit, list(ports),
                     list(probes), baud, flasher, json_out, workdir, echo_fn, list(marks), cycles)
    doc = run.execute()
    _print(doc, Path(json_out) if json_out else run.result_path)
    sys.exit(doc.get("exit_code") if doc.get("exit_code") is not None else EXIT_INFRA)
