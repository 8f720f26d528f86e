"""Console mode: test firmware that does not speak the hil protocol by what
it prints (upstream TFLM examples, Zephyr samples, ztest binaries).

The console is a byte stream (a UART through pyserial, or, in an emulator,
the semihosting output that QEMU writes to its own stdout/stderr); it is
wrapped as a pexpect spawn, and a `ConsoleSession` expects an ordered list
of regular expressions on it:

- patterns match whole lines (`^` and `$` are line anchors); a partial
  line is offered for matching once the console has been quiet for a
  moment, so a prompt without a newline still matches;
- named groups (`(?P<ms>\\d+) ms`) become metrics, numbers as numbers;
- a fail pattern (an assert, a fault banner, `FAILED`) ends the session at
  once, whichever expected pattern was being waited for;
- the timeout is for the whole session and names the pattern that was
  waiting when it ran out;
- everything received is written to the console log as it arrives.

This module knows nothing about targets or flashing: `harness/commands/
console.py` provides the stream and writes the `hil.console/1` result.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pexpect
from pexpect.spawnbase import SpawnBase

from ..errors import UsageError

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
    state = {"fh": None}

    def read(size: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if state["fh"] is None and path.exists():
                state["fh"] = open(path, "rb")
                state["fh"].seek(start)
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
                self._held += self._decoder.decode(b"", final=True)
                continue
            if data:
                self.received_bytes += len(data)
                text = self._held + self._decoder.decode(data, final=False).replace("\r", "")
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
        d = {"pattern": self.pattern, "status": self.status}
        if self.status == "matched":
            d.update(text=self.text, at_s=round(self.at_s, 3), groups=self.groups)
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


def _line_of(buffer: str, start: int, end: int) -> str:
    left = buffer.rfind("\n", 0, start) + 1
    right = buffer.find("\n", end)
    return buffer[left: right if right >= 0 else len(buffer)].strip()


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
    """Expect `expect` in order on `spawn`, failing at once on any of `fail`."""

    def __init__(self, spawn: ConsoleSpawn, expect: list[str], fail: list[str], timeout: float,
                 wait_for_end: bool = False, on_progress: Callable[[], None] | None = None) -> None:
        self.spawn = spawn
        self.expectations = [Expectation(p, compile_pattern(p, "--expect")) for p in expect]
        self.fail = [(p, compile_pattern(p, "--fail")) for p in fail]
        self.timeout = timeout
        self.wait_for_end = wait_for_end
        self.on_progress = on_progress or (lambda: None)
        self.metrics: dict = {}

    def _failed(self, index: int, started: float) -> dict:
        pattern, _ = self.fail[index]
        m = self.spawn.match
        line = _line_of(m.string, m.start(), m.end())
        return {"pattern": pattern, "text": line, "at_s": round(time.monotonic() - started, 3)}

    def run(self) -> ConsoleOutcome:
        sp = self.spawn
        started = sp.started
        deadline = started + self.timeout
        fail_regexes = [r for _, r in self.fail]
        for exp in self.expectations:
            exp.status = "waiting"
            self.on_progress()
            idx = sp.expect([exp.regex, *fail_regexes, pexpect.EOF, pexpect.TIMEOUT],
                            timeout=max(0.0, deadline - time.monotonic()))
            if idx == 0:
                m = sp.match
                exp.status = "matched"
                exp.text = _line_of(m.string, m.start(), m.end())
                exp.at_s = time.monotonic() - started
                exp.groups = {k: _number(v) for k, v in m.groupdict().items()}
                self.metrics.update({k: v for k, v in exp.groups.items() if v is not None})
                self.on_progress()
                continue
            if 1 <= idx <= len(fail_regexes):
                failed_on = self._failed(idx - 1, started)
                return self._outcome("failed", f"fail pattern {failed_on['pattern']!r} matched "
                                               f"{failed_on['text']!r} while waiting for {exp.pattern!r}", failed_on)
            if idx == len(fail_regexes) + 1:
                return self._outcome("ended", f"the console ended while waiting for {exp.pattern!r}")
            return self._outcome("timeout", f"timed out after {self.timeout:g} s waiting for {exp.pattern!r} "
                                            f"(expected pattern {self.expectations.index(exp) + 1} of "
                                            f"{len(self.expectations)})")
        if self.wait_for_end:
            idx = sp.expect([*fail_regexes, pexpect.EOF, pexpect.TIMEOUT],
                            timeout=max(0.0, deadline - time.monotonic()))
            if idx < len(fail_regexes):
                failed_on = self._failed(idx, started)
                return self._outcome("failed", f"fail pattern {failed_on['pattern']!r} matched "
                                               f"{failed_on['text']!r} while waiting for the firmware to exit",
                                     failed_on)
            if idx == len(fail_regexes) + 1:
                return self._outcome("timeout", f"timed out after {self.timeout:g} s waiting for the firmware "
                                                f"to exit")
        return self._outcome("passed", "every expected pattern matched" if self.expectations else "")

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
