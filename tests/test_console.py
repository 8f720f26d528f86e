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
        "late": build_console_elf(d, "late", CONSOLE_SCENARIO=4),
        "late-semihosting": build_console_elf(d, "late-sh", CONSOLE_SCENARIO=4, CONSOLE_SEMIHOSTING=1),
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
        # so is a smoke test (--fail alone) on a board that printed nothing at all
        proc, doc = _console(tmp_path, "--elf", elves["uart"], "--platform", dead, "--flasher", "none",
                             "--port", board.socket_url, "--fail", "HardFault", "--timeout", "1.5")
        assert proc.returncode == 3 and "device not detected" in doc["error"]["message"], proc.stdout + proc.stderr

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


# -- line-based matching and fail patterns everywhere (issue 11) -----------------------------------


@pytest.mark.parametrize("console", ["uart", "semihosting"])
def test_a_line_matching_expect_and_fail_fails(tmp_path, elves, console):
    elf = elves["late" if console == "uart" else "late-semihosting"]
    proc, doc = _console(tmp_path, "--elf", elf, "--console", console, "--expect", "test_conv: PASS",
                         "--fail", "ASSERT FAILED", "--timeout", "20")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert doc["failed_on"]["text"] == "test_conv: PASS (teardown: ASSERT FAILED: 16 bytes leaked)"
    assert "while waiting for 'test_conv: PASS'" in doc["error"]["message"]


@pytest.mark.parametrize("console", ["uart", "semihosting"])
def test_fail_patterns_are_watched_after_the_last_expect(tmp_path, elves, console):
    elf = elves["late" if console == "uart" else "late-semihosting"]
    proc, doc = _console(tmp_path, "--elf", elf, "--console", console, "--expect", "SUCCESSFUL",
                         "--fail", "stack overflow", "--timeout", "20")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert doc["failed_on"]["text"] == "background task: ASSERT FAILED: stack overflow"
    assert "after the last expected line" in doc["error"]["message"]
    assert [e["status"] for e in doc["expect"]] == ["matched"]
    assert doc["console_s"] < 15, "a fail pattern must not wait for the timeout"


def test_fail_alone_is_a_smoke_test(tmp_path, elves):
    """`--fail` with `--timeout` and nothing else: a firmware that never
    prints the pattern passes at the timeout (it never exits), one that does
    fails at once, and one that exits cleanly passes when it exits."""
    proc, doc = _console(tmp_path, "--elf", elves["hang"], "--fail", "HardFault|UsageFault", "--timeout", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert doc["status"] == "passed" and 2 <= doc["console_s"] < 10

    proc, doc = _console(tmp_path, "--elf", elves["fault"], "--fail", "HardFault|UsageFault", "--timeout", "20")
    assert proc.returncode == 1 and "UsageFault" in doc["failed_on"]["text"], proc.stdout + proc.stderr

    proc, doc = _console(tmp_path, "--elf", elves["uart"], "--fail", "HardFault", "--timeout", "20")
    assert proc.returncode == 0 and doc["console_s"] < 15, proc.stdout + proc.stderr


def test_patterns_match_single_whole_lines(tmp_path, elves):
    """A pattern never spans lines (the stream matched `PASS\\s+inference`
    across "test_add: PASS" and the next line), and a number in a named group
    is the whole number of its line."""
    proc, doc = _console(tmp_path, "--elf", elves["uart"], "--expect", r"PASS\s+inference", "--timeout", "3")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "while waiting for 'PASS\\\\s+inference'" in doc["error"]["message"]

    proc, doc = _console(tmp_path, "--elf", elves["uart"], "--expect", r"took (?P<ticks>\d+) ticks$",
                         "--expect", r"^\d+ tests", "--timeout", "20")
    assert proc.returncode == 1, "the first line ends with the checksum, not 'ticks'"
    proc, doc = _console(tmp_path, "--elf", elves["uart"], "--expect", r"took (?P<ticks>\d+)",
                         "--expect", r"^(?P<tests>\d+) tests", "--timeout", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (tmp_path / "run" / "console.log").read_text()
    assert f"took {doc['metrics']['ticks']} ticks" in log and doc["metrics"]["tests"] == 3


def test_console_device_fails_on_a_line_that_also_matches(tmp_path, elves):
    """The ConsoleDevice of Robot's Wait For Line and pytest's hil_target."""
    from harness.session import CheckFailed, ConsoleDevice

    with ConsoleDevice(elves["late"], workdir=tmp_path / "dev", fail=["ASSERT FAILED"]) as dev:
        with pytest.raises(CheckFailed, match="fail pattern 'ASSERT FAILED' matched 'test_conv: PASS"):
            dev.wait_for_line("test_conv: PASS", timeout=20)
    with ConsoleDevice(elves["uart"], workdir=tmp_path / "dev2") as dev:
        assert dev.wait_for_line(r"took (?P<ticks>\d+) ticks", timeout=20)["ticks"] > 0
        with pytest.raises(CheckFailed, match="the console ended while waiting"):
            dev.wait_for_line(r"PASS\s+accuracy", timeout=10)


def test_emulator_that_cannot_start_is_infrastructure_with_its_words(tmp_path, elves):
    """QEMU with an option it rejects exits after the host connects (with
    wait=on it sets the machine up only then): exit 3 with QEMU's message,
    never "the firmware exited with status 1" (exit 1)."""
    from helpers import REPO

    text = (REPO / "platforms" / "mps2-an386.toml").read_text()
    broken = tmp_path / "broken.toml"
    broken.write_text(text.replace('name = "mps2-an386"', 'name = "broken-qemu"')
                      .replace('package = "qemu-system-arm"',
                               'package = "qemu-system-arm"\nextra_args = ["-device", "no-such-device"]'))
    proc, doc = _console(tmp_path, "--elf", elves["uart"], "--platform", broken, "--expect", "Booting",
                         "--timeout", "10")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "'no-such-device' is not a valid device model name" in doc["error"]["message"]

    from harness.errors import InfraError
    from harness.session import ConsoleDevice

    with ConsoleDevice(elves["uart"], str(broken), workdir=tmp_path / "dev") as dev:
        with pytest.raises(InfraError, match="not a valid device model name"):
            dev.wait_for_line("Booting", timeout=10)


def test_console_device_watches_fail_patterns_after_the_last_wait(tmp_path, elves):
    """Robot's Watch Console and Firmware Should Exit With, pytest's
    hil_target: fail patterns stay watched after the last Wait For Line."""
    from harness.errors import UsageError
    from harness.robot_library import HilLibrary
    from harness.session import CheckFailed, ConsoleDevice

    with ConsoleDevice(elves["late"], workdir=tmp_path / "d1", fail=["stack overflow"]) as dev:
        dev.wait_for_line("SUCCESSFUL", timeout=20)
        with pytest.raises(CheckFailed, match="'background task: ASSERT FAILED: stack overflow' while watching"):
            dev.watch(10)
    with ConsoleDevice(elves["hang"], workdir=tmp_path / "d2", fail=["HardFault"]) as dev:
        assert dev.watch(1.5) is False  # no fail pattern, still running: a passed smoke test
    with ConsoleDevice(elves["semihosting"], console="semihosting", workdir=tmp_path / "d3", fail=["3 tests"]) as dev:
        with pytest.raises(CheckFailed, match="fail pattern '3 tests'"):
            dev.wait_for_exit(20)

    lib = HilLibrary(workdir=str(tmp_path / "robot"))
    try:
        lib.start_target("mps2-an386", firmware=str(elves["fault"]), console="uart", fail="UsageFault")
        with pytest.raises(CheckFailed, match="UsageFault"):
            lib.watch_console("10s")
    finally:
        lib.stop_all_targets()

    not_elf = tmp_path / "app.bin"
    not_elf.write_bytes(b"\x00" * 64)
    with pytest.raises(UsageError, match="not an ELF file"):
        ConsoleDevice(not_elf, workdir=tmp_path / "d4").start()
    assert not (tmp_path / "d4" / "qemu.log").exists()
