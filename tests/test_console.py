"""`hil console` on firmware that only prints (firmware/tests/console/,
built with arm-none-eabi-gcc, run in real QEMU): ordered patterns, metrics
from named groups, fail patterns, a timeout naming the pattern, the UART
and the semihosting console, the firmware's SYS_EXIT status, the same on
QEMU standing in for a board over a pty, and bad input."""

from __future__ import annotations

import json

import pytest

from boardsim import QemuBoard
from console_fw import build_console_elf
from helpers import hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]


@pytest.fixture(scope="module")
def elves(tmp_path_factory):
    d = tmp_path_factory.mktemp("console-fw")
    return {
        "uart": build_console_elf(d, "uart"),
        "semihosting": build_console_elf(d, "semihosting", CONSOLE_SEMIHOSTING=1, CONSOLE_EXIT=3),
        "plain-exit": build_console_elf(d, "plain", CONSOLE_SEMIHOSTING=1, CONSOLE_PLAIN_EXIT=1),
        "assert": build_console_elf(d, "assert", CONSOLE_SCENARIO=1),
        "hang": build_console_elf(d, "hang", CONSOLE_SCENARIO=2),
        "fault": build_console_elf(d, "fault", CONSOLE_SCENARIO=3),
    }


def _console(tmp_path, *args):
    out = tmp_path / "c.json"
    proc = hil("console", "--workdir", tmp_path / "run", "--json", out, *args, cwd=tmp_path, timeout=120)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def test_uart_console_patterns_metrics_and_exit_status(tmp_path, elves):
    proc, doc = _console(tmp_path, "--elf", elves["uart"],
                         "--expect", r"Booting console test firmware",
                         "--expect", r"inference took (?P<ticks>\d+) ticks, checksum (?P<checksum>0x[0-9a-f]+)",
                         "--expect", r"^accuracy: (?P<accuracy>[0-9.]+) on (?P<samples>\d+) samples$",
                         "--expect", "PROJECT EXECUTION SUCCESSFUL",
                         "--fail", "ASSERT|HardFault|UsageFault", "--expect-exit", "0")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["schema"] == "hil.console/1" and doc["status"] == "passed" and doc["exit_code"] == 0
    assert [e["status"] for e in doc["expect"]] == ["matched"] * 4
    m = doc["metrics"]
    assert m["accuracy"] == 0.9375 and m["samples"] == 16 and m["ticks"] > 0 and isinstance(m["checksum"], int)
    assert doc["firmware_exit"] == {"code": 0, "expected": 0, "passed": True}
    assert doc["firmware"]["build_id"] and doc["target"]["kind"] == "qemu"
    log = (tmp_path / "run" / "console.log").read_text()
    assert "PROJECT EXECUTION SUCCESSFUL" in log and doc["log"].endswith("console.log")


def test_semihosting_console_and_exit_status(tmp_path, elves):
    """SYS_WRITE0 output (QEMU's own stderr) is the console; SYS_EXIT_EXTENDED's
    status 3 is reported, and checked."""
    proc, doc = _console(tmp_path, "--elf", elves["semihosting"], "--console", "semihosting",
                         "--expect", "Booting", "--expect", "3 tests, 0 failures", "--expect-exit", "0")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [e["status"] for e in doc["expect"]] == ["matched", "matched"]
    assert doc["firmware_exit"]["code"] == 3
    assert "exited with status 3, expected 0" in doc["error"]["message"]
    assert "QEMU waiting for connection" not in (tmp_path / "run" / "console.log").read_text()

    proc, doc = _console(tmp_path, "--elf", elves["plain-exit"], "--console", "semihosting",
                         "--expect-exit", "0")  # SYS_EXIT with ADP_Stopped_ApplicationExit
    assert proc.returncode == 0 and doc["firmware_exit"]["code"] == 0, proc.stdout + proc.stderr


def test_fail_pattern_fails_at_once(tmp_path, elves):
    proc, doc = _console(tmp_path, "--elf", elves["assert"], "--expect", "Booting", "--expect", "SUCCESSFUL",
                         "--fail", r"ASSERT FAILED", "--timeout", "30")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert doc["failed_on"]["pattern"] == "ASSERT FAILED"
    assert doc["failed_on"]["text"].startswith("test_conv: ASSERT FAILED: out[3] == 12")
    assert [e["status"] for e in doc["expect"]] == ["matched", "waiting"]
    assert doc["console_s"] < 10, "a fail pattern must not wait for the timeout"
    assert "ASSERT FAILED" in proc.stderr


def test_fault_banner_as_fail_pattern(tmp_path, elves):
    proc, doc = _console(tmp_path, "--elf", elves["fault"], "--expect", "SUCCESSFUL",
                         "--fail", r"\*\*\* (HardFault|UsageFault)")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "UsageFault" in doc["failed_on"]["text"]


def test_timeout_names_the_pattern_waited_for(tmp_path, elves):
    proc, doc = _console(tmp_path, "--elf", elves["hang"], "--expect", "Booting",
                         "--expect", "PROJECT EXECUTION SUCCESSFUL", "--timeout", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    message = doc["error"]["message"]
    assert "timed out after 2 s waiting for 'PROJECT EXECUTION SUCCESSFUL'" in message
    assert "pattern 2 of 2" in message
    assert "waiting for an interrupt" in "\n".join(doc["log_tail"])


def test_console_on_a_board_over_a_pty(tmp_path, elves):
    """QEMU as a board: flashed by the platform's command, reset once more so
    the console is read from the first line, then the same checks."""
    with QemuBoard(tmp_path / "board") as board:
        platform = board.platform_file(tmp_path / "qemu-board.toml")
        proc, doc = _console(tmp_path, "--elf", elves["uart"], "--platform", platform,
                             "--port", str(board.pty_link), "--probe", "HILSIM0001",
                             "--expect", r"^\*\*\* Booting", "--expect", "SUCCESSFUL")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert doc["target"]["kind"] == "serial-board" and doc["target"]["probe_id"] == "HILSIM0001"
        assert board.flashes == [str(elves["uart"])] and board.resets == 1
        assert (tmp_path / "run" / "console.log").read_text().startswith("*** Booting")

        # a board that prints nothing at all is "not detected" (exit 3), not a firmware failure
        board.power_off()
        dead = board.platform_file(tmp_path / "dead-board.toml", reset="none")
        proc, doc = _console(tmp_path, "--elf", elves["uart"], "--platform", dead, "--flasher", "none",
                             "--port", board.socket_url, "--expect", "Booting", "--timeout", "1.5")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert f"device not detected on {board.socket_url}" in doc["error"]["message"]

        proc, _ = _console(tmp_path, "--elf", elves["uart"], "--platform", platform, "--port", board.socket_url,
                           "--expect-exit", "0")
        assert proc.returncode == 2 and "needs an emulator" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--expect", "SUCC(ESS"], "not a valid regular expression"),
    ([], "nothing to check"),
    (["--expect", "x", "--console", "semihosting", "--port", "/dev/ttyACM0"], "for boards"),
], ids=["bad-regex", "nothing-to-check", "port-on-qemu"])
def test_bad_usage_is_exit_2_before_anything_boots(tmp_path, elves, args, message):
    proc, doc = _console(tmp_path, "--elf", elves["uart"], *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and doc["status"] == "error" and doc["exit_code"] == 2
    assert not (tmp_path / "run" / "qemu.log").exists()
