"""Console mode: test firmware that does not speak the hil protocol by what
it prints (upstream TFLM examples, Zephyr samples, ztest binaries).

The console is a byte stream (a UART through pyserial, or, in an emulator,
the semihosting output that QEMU writes to its own stdout/stderr); it is
wrapped as a pexpect spawn, cut into lines (`ConsoleLines`), and a
`ConsoleSession` expects an ordered list of regular expressions on them:

- a pattern is searched in one complete line at a time (`^` and `$` are
  the line's start and end; nothing matches across lines), and each line
  satisfies at most one expected pattern; a partial line is offered for
  matching once the console has been quiet for a moment, so a prompt
  without a newline still matches;
- named groups (`(?P<ms>\\d+) ms`) become metrics, numbers as numbers;
- a fail pattern (an assert, a fault banner, `FAILED`) fails the session on
  any line, also one that matches an expected pattern, and is watched after
  the last expected line until the firmware ends or the timeout runs out
  (then the session passes): `--fail` alone is a smoke test;
- the timeout is for the whole session and names the pattern that was
  waiting when it ran out;
- everything received is written to the console log as it arrives.

This module knows nothing about targets or flashing: `harness/commands/
console.py` provides the stream and writes the `hil.console/1` result.
"""

from __future__ import annotations

import codecs
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

import pexpect
from pexpect.spawnbase import SpawnBase

from ..errors import InfraError, UsageError

log = logging.getLogger(__name__)

SCHEMA = "hil.console/1"
#: a partial line is matched after the console has been quiet this long
PARTIAL_LINE_AFTER_S = 0.3

# reader(size, timeout) -> bytes (b"" when nothing came within timeout) or None at end of stream
Reader = Callable[[int, float], "bytes | None"]


def compile_pattern(text: str, option: str) -> re.Pattern:
    try:
        return re.compile(text, re.MULTILINE)
    except re.error as exc:
        raise UsageError(f"{option} {text!r} is not a valid regular expression: {exc}",
                         hint="use Python regular expression syntax; quote the pattern for your shell, "
                              "and escape literal ( ) [ ] . * + ? with a backslash") from exc


def serial_reader(port) -> Reader:
    """A reader over a pyserial port (any URL)."""
    import serial

    def read(size: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            port.timeout = max(0.0, min(0.1, deadline - time.monotonic()))
            try:
                waiting = port.in_waiting
                data = port.read(min(size, waiting) if waiting else 1)
            except (serial.SerialException, OSError):
                return None  # the port went away (the emulator exited, the cable was pulled)
            if data:
                return data
            if time.monotonic() >= deadline:
                return b""

    return read


def file_reader(path: Path, alive: Callable[[], bool], start: int = 0) -> Reader:
    """A reader that follows a growing file (an emulator's output log) from
    offset `start` until the process writing it has exited and everything
    has been read."""
    state: dict[str, IO[bytes] | None] = {"fh": None}

    def read(size: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if state["fh"] is None and path.exists():
                opened = open(path, "rb")
                opened.seek(start)
                state["fh"] = opened
            fh = state["fh"]
            running = alive()  # asked before reading: output written before exit is never missed
            data = fh.read(size) if fh else b""
            if data:
                return data
            if not running:
                return None
            if time.monotonic() >= deadline:
                return b""
            time.sleep(0.01)

    return read


class ConsoleSpawn(SpawnBase):
    """pexpect over a Reader: text, lines without carriage returns, and a
    partial line held back until it ends or the console goes quiet."""

    def __init__(self, reader: Reader, log_path: Path, echo=None) -> None:
        super().__init__(timeout=30, maxread=4096, encoding="utf-8", codec_errors="replace")
        self._reader = reader
        self._held = ""
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character split across reads
        self._held_since = 0.0
        self._eof = False
        self._log_fh = open(log_path, "w", encoding="utf-8", errors="replace")
        self._echo = echo
        self.delayafterread = None
        self.received_bytes = 0
        self.started = time.monotonic()

    def _emit(self, text: str) -> str:
        if text:
            self._log_fh.write(text)
            self._log_fh.flush()
            if self._echo is not None:
                self._echo(text)
        return text

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> str:
        if timeout == -1:
            timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._eof:
                if self._held:
                    text, self._held = self._held, ""
                    return self._emit(text)
                self.flag_eof = True
                raise pexpect.EOF("the console ended")
            wait = PARTIAL_LINE_AFTER_S if self._held else 0.5
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            data = self._reader(size, wait)
            if data is None:
                self._eof = True
                self._held += self._utf8.decode(b"", final=True)
                continue
            if data:
                self.received_bytes += len(data)
                text = self._held + self._utf8.decode(data, final=False).replace("\r", "")
                cut = text.rfind("\n") + 1
                self._held = text[cut:]
                if self._held and not cut:
                    self._held_since = self._held_since or time.monotonic()
                else:
                    self._held_since = time.monotonic() if self._held else 0.0
                if cut:
                    return self._emit(text[:cut])
            elif self._held and time.monotonic() - self._held_since >= PARTIAL_LINE_AFTER_S:
                text, self._held = self._held, ""
                self._held_since = 0.0
                return self._emit(text)
            if deadline is not None and time.monotonic() >= deadline:
                raise pexpect.TIMEOUT("no console output within the timeout")

    def close(self) -> None:
        if self._held:
            self._emit(self._held)
            self._held = ""
        self._log_fh.close()

    def isalive(self) -> bool:
        return not self._eof


@dataclass
class Expectation:
    pattern: str
    regex: re.Pattern
    status: str = "not_reached"     # not_reached | waiting | matched
    text: str | None = None          # the line that matched
    at_s: float | None = None
    groups: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d: dict[str, Any] = {"pattern": self.pattern, "status": self.status}
        if self.status == "matched":
            d.update(text=self.text, at_s=round(self.at_s, 3) if self.at_s is not None else None, groups=self.groups)
        return d


def _number(value: str | None):
    if value is None:
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", value):
        return int(value, 16)
    return value


#: a named group's text as a number where it reads as one (session.ConsoleDevice's groups, as here)
number = _number


@dataclass
class ConsoleLine:
    """One line of console output, without its newline. `complete` is False
    for a partial line offered because the console went quiet (a prompt);
    `continued` is True when an earlier part of the same line was offered."""

    text: str
    complete: bool = True
    continued: bool = False


class ConsoleLines:
    """The console as a sequence of lines: what patterns are matched against."""

    def __init__(self, spawn: ConsoleSpawn) -> None:
        self.spawn = spawn
        self._queue: list[ConsoleLine] = []
        self._open = ""  # a partial line already offered, which later text continues
        self._ended = False

    def next(self, timeout: float) -> ConsoleLine | None:
        """The next line; None when `timeout` seconds pass without one.
        Raises pexpect.EOF once the console has ended and every line was read."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._queue:
            if self._ended:
                raise pexpect.EOF("the console ended")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                chunk = self.spawn.read_nonblocking(4096, timeout=remaining)
            except pexpect.TIMEOUT:
                return None
            except pexpect.EOF:
                self._ended = True
                continue
            self._feed(chunk)
        return self._queue.pop(0)

    def _feed(self, chunk: str) -> None:
        continued = bool(self._open)
        *complete, rest = (self._open + chunk).split("\n")
        for text in complete:
            self._queue.append(ConsoleLine(text, True, continued))
            continued = False
        self._open = rest
        if rest:  # the spawn hands over a partial line only when the console went quiet or ended
            self._queue.append(ConsoleLine(rest, False, continued))


@dataclass
class ConsoleOutcome:
    status: str                      # passed | failed | timeout | ended
    message: str
    expectations: list[Expectation]
    failed_on: dict | None = None
    metrics: dict = field(default_factory=dict)
    received_bytes: int = 0
    duration_s: float = 0.0


class ConsoleSession:
    """Expect `expect` in order, one line each, on `spawn`; a line that
    matches any of `fail` fails the session, whether or not it also matches
    an expected pattern, and fail patterns are watched after the last
    expected line too, until the firmware ends or the timeout (which is then
    a pass). With only fail patterns that makes a smoke test: "no HardFault
    within 10 s"."""

    def __init__(self, spawn: ConsoleSpawn, expect: list[str], fail: list[str], timeout: float,
                 wait_for_end: bool = False, on_progress: Callable[[], None] | None = None) -> None:
        self.spawn = spawn
        self.lines = ConsoleLines(spawn)
        self.expectations = [Expectation(p, compile_pattern(p, "--expect")) for p in expect]
        self.fail = [(p, compile_pattern(p, "--fail")) for p in fail]
        self.timeout = timeout
        self.wait_for_end = wait_for_end
        self.on_progress = on_progress or (lambda: None)
        self.metrics: dict = {}

    def run(self) -> ConsoleOutcome:
        started = self.spawn.started
        deadline = started + self.timeout
        pending = list(self.expectations)
        matched_open_line = False  # the partial line being continued already satisfied an expectation
        if pending:
            pending[0].status = "waiting"
            self.on_progress()
        while pending or self.fail or self.wait_for_end:
            waiting = pending[0] if pending else None
            try:
                line = self.lines.next(deadline - time.monotonic())
            except pexpect.EOF:
                if waiting is None:
                    return self._outcome("passed", self._passed_message())
                return self._outcome("ended", f"the console ended while waiting for {waiting.pattern!r}")
            if line is None:
                if waiting is not None:
                    n = self.expectations.index(waiting) + 1
                    return self._outcome("timeout", f"timed out after {self.timeout:g} s waiting for "
                                                    f"{waiting.pattern!r} (expected pattern {n} of "
                                                    f"{len(self.expectations)})")
                if self.wait_for_end:
                    return self._outcome("timeout", f"timed out after {self.timeout:g} s waiting for the firmware "
                                                    f"to exit")
                return self._outcome("passed", self._passed_message(watched_until_timeout=True))
            for pattern, regex in self.fail:
                if regex.search(line.text):
                    failed_on = {"pattern": pattern, "text": line.text.strip(),
                                 "at_s": round(time.monotonic() - started, 3)}
                    during = f"while waiting for {waiting.pattern!r}" if waiting is not None else \
                        "after the last expected line" if self.expectations else "while watching the console"
                    return self._outcome("failed", f"fail pattern {pattern!r} matched {failed_on['text']!r} "
                                                   f"{during}", failed_on)
            if line.continued and matched_open_line:
                matched_open_line = not line.complete
                continue
            m = waiting.regex.search(line.text) if waiting is not None else None
            matched_open_line = m is not None and not line.complete
            if m is not None and waiting is not None:
                waiting.status, waiting.text = "matched", line.text.strip()
                waiting.at_s = time.monotonic() - started
                waiting.groups = {k: _number(v) for k, v in m.groupdict().items()}
                self.metrics.update({k: v for k, v in waiting.groups.items() if v is not None})
                pending.pop(0)
                if pending:
                    pending[0].status = "waiting"
                self.on_progress()
        return self._outcome("passed", self._passed_message())

    def _passed_message(self, watched_until_timeout: bool = False) -> str:
        parts = ["every expected pattern matched"] if self.expectations else []
        if self.fail:
            parts.append(f"no fail pattern within {self.timeout:g} s" if watched_until_timeout
                         else "no fail pattern before the console ended")
        return "; ".join(parts)

    def _outcome(self, status: str, message: str, failed_on: dict | None = None) -> ConsoleOutcome:
        return ConsoleOutcome(status, message, self.expectations, failed_on, self.metrics,
                              self.spawn.received_bytes, time.monotonic() - self.spawn.started)


def log_tail(path: Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 8192))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


# -- cycle estimates in console mode (QEMU cycle plugin, harness/timing) ------------------------------------------


def cycle_plugin(platform, elf: Path, workdir: Path, marks: list[str], enabled: bool = True):
    """The cycle plugin for a console run, or None where there is no estimate
    (a board, Renode, QEMU without -icount, a platform without [timing], or
    --no-cycles). --mark where no estimate can be made is a usage error,
    before anything boots, as is a mark the ELF does not define."""
    from ..timing import CyclePlugin, TimingModel

    model = TimingModel.for_platform(platform) if enabled else None
    usable = model is not None and platform.target_kind == "qemu" and bool(platform.target.icount)
    if not usable or model is None:
        if marks:
            why = "--no-cycles was given" if not enabled else (
                f"{platform.name} has no cycle estimate (a QEMU platform with -icount and a [timing] table)")
            raise UsageError(f"--mark needs the cycle estimate, and {why}",
                             hint="drop --mark, or run on a QEMU platform with a [timing] table (`hil platforms`)")
        return None
    return CyclePlugin(model, workdir, elf, marks)


def console_estimate(plugin, marks: list[str]) -> dict:
    """The `cycles` part of a hil.console/1 document: the whole run (the
    plugin's exit totals) and the estimate between consecutive mark hits."""
    from ..timing import between_marks
    from ..timing.align import error_band_for

    model = plugin.model
    doc = {"kind": "cycles_estimate", "model": model.id, "core": model.core, "clock_hz": model.clock_hz,
           "source": "qemu-plugin", "error_band": error_band_for(model.id), "timing_source": model.source,
           "memory_source": model.memory_source, "run": None, "marks": [], "unclassified": None}
    try:  # in the run's clean-up: the run has already failed and said why when the plugin refused to load
        records = plugin.records()
        totals = plugin.totals()
    except InfraError as exc:
        doc["note"] = str(exc).splitlines()[0]
        return doc
    finally:
        plugin.close()  # QEMU has exited: nothing more to read
    if totals is not None:
        doc["run"] = {"instructions": totals["instructions"], "cycles": totals["cycles"],
                      "latency_ms": round(model.latency_ms(totals["cycles"]), 6)}
        doc["unclassified"] = totals["unclassified"]
    else:
        doc["note"] = "the emulator did not exit cleanly: no whole-run totals"
    names = {i: name for i, name in enumerate(marks, start=1)}
    for span in between_marks(records):
        doc["marks"].append({"from": names[span["from"]], "to": names[span["to"]],
                             "instructions": span["instructions"], "cycles": span["cycles"],
                             "latency_ms": round(model.latency_ms(span["cycles"]), 6)})
    return doc


def estimate_lines(doc: dict | None, limit: int = 20) -> list[str]:
    """The console printout of `console_estimate`'s document."""
    if not doc:
        return []
    label = f"estimate, {doc['model']} at {doc['clock_hz'] / 1e6:g} MHz, error band {doc['error_band']}"
    lines = []
    run = doc.get("run")
    if run:
        lines.append(f"  cycles (whole run): {run['cycles']:,} = {run['latency_ms']:.4g} ms ({label}); "
                     f"{run['instructions']:,} instructions")
    for span in doc.get("marks", [])[:limit]:
        lines.append(f"    {span['from']} -> {span['to']}: {span['cycles']:,} cycles = {span['latency_ms']:.4g} ms, "
                     f"{span['instructions']:,} instructions")
    if len(doc.get("marks", [])) > limit:
        lines.append(f"    ... {len(doc['marks']) - limit} more spans in the JSON (cycles.marks)")
    return lines
