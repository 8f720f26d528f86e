"""Boards over serial, with QEMU standing in for the board (tests/boardsim.py):
real firmware built with arm-none-eabi-gcc, real QEMU, and the board
target opening the UART by pyserial URL exactly as it opens a USB serial
port: a pty, socket:// and rfc2217:// (a RFC 2217 server made of pyserial's
PortManager). The "flasher" is the platform file's custom command, which
restarts QEMU with the new ELF; the probe id is the simulated board's.

Failure cases: a device that never answers (no firmware, and firmware that
prints but does not speak the protocol), a device that reboots mid-run
(HIL_REBOOT_ON_INVOKE), boot noise before HELLO (HIL_BOOT_NOISE), a probe
that is not the board's, and one of several boards failing."""

from __future__ import annotations

import json

import pytest

from boardsim import QemuBoard
from console_fw import build_console_elf
from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"


@pytest.fixture
def board(tmp_path):
    with QemuBoard(tmp_path / "board", board_id="HILSIM0001") as b:
        yield b


@pytest.fixture(scope="module")
def firmware(tmp_path_factory):
    """The runner firmware for the simulated board's platform, and variants."""
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    d = tmp_path_factory.mktemp("fw")
    with QemuBoard(d / "b") as b:
        platform = load_platform(str(b.platform_file(d / "qemu-board.toml")))
    built = {name: build_firmware(platform, defines).elf.path for name, defines in
             {"normal": {}, "noise": {"HIL_BOOT_NOISE": "1"}, "reboot": {"HIL_REBOOT_ON_INVOKE": "2"}}.items()}
    built["console"] = build_console_elf(d / "console", "hang", CONSOLE_SCENARIO=2)
    return built


def _run(tmp_path, platform, *args):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--platform", platform, "--vectors", "3", "--seed", "2",
               "--workdir", tmp_path / "run", "--json", out, *args, cwd=tmp_path, timeout=180)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


@pytest.mark.parametrize("kind", ["pty", "socket", "rfc2217"])
def test_run_on_a_board_over_each_kind_of_port(tmp_path, board, firmware, kind):
    platform = board.platform_file(tmp_path / "qemu-board.toml")
    url = {"pty": str(board.pty_link), "socket": board.socket_url, "rfc2217": board.rfc2217_url}[kind]
    proc, result = _run(tmp_path, platform, "--port", url, "--probe", "HILSIM0001", "--firmware", firmware["normal"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["summary"]["passed"] == 3 and result["status"] == "passed"
    target = result["target"]
    assert target["kind"] == "serial-board" and target["hardware"] is True
    assert target["port"] == url and target["probe_id"] == "HILSIM0001"
    assert target["flasher"] == "command" and target["steps"][0]["step"] == "flash"
    assert board.flashes == [str(firmware["normal"])]
    assert result["device"]["bulk_transfer"] == "inline"  # a board has no host files
    assert result["device"]["build_id"] == result["firmware"]["build_id"]
    # the same checks as in QEMU: bit-exact outputs, counts, memory
    assert all(v["max_abs_diff"] == 0 and v["count"]["kind"] == "instructions" for v in result["vectors"])
    assert result["memory"]["device"]["arena_high_water"] > 0


def test_boot_noise_before_hello_is_drained(tmp_path, board, firmware):
    """The firmware prints a bootloader banner with zero bytes and half a
    frame before serving the protocol; the flash command does not reset, so
    hil resets the board and drains what it prints."""
    platform = board.platform_file(tmp_path / "qemu-board.toml", extra_board="resets_after_flash = false")
    proc, result = _run(tmp_path, platform, "--port", board.socket_url, "--probe", "HILSIM0001",
                        "--firmware", firmware["noise"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["target"]["ready"]["boot_noise_bytes"] > 100
    assert [s["step"] for s in result["target"]["steps"]] == ["flash", "reset"]
    assert board.resets == 1


def test_reset_by_rts_over_rfc2217(tmp_path, board, firmware):
    """reset = "rts": the board already runs the firmware (--flasher none);
    hil pulses RTS, which the RFC 2217 server turns into a board reset."""
    board.flash(firmware["normal"])
    platform = board.platform_file(tmp_path / "qemu-board.toml", reset="rts")
    proc, result = _run(tmp_path, platform, "--port", board.rfc2217_url, "--flasher", "none",
                        "--firmware", firmware["normal"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert board.rts_resets == 1 and len(board.flashes) == 1
    assert result["target"]["steps"][0]["method"] == "rts"


def test_device_with_no_firmware_is_not_detected(tmp_path, board, firmware):
    platform = board.platform_file(tmp_path / "qemu-board.toml", reset="none")
    proc, result = _run(tmp_path, platform, "--port", board.socket_url, "--flasher", "none",
                        "--firmware", firmware["normal"])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = result["error"]["message"]
    assert f"device not detected on {board.socket_url}" in message
    assert "nothing at all was received" in message and "tries" in message
    assert f"device not detected on {board.socket_url}" in proc.stderr


def test_firmware_that_does_not_speak_the_protocol(tmp_path, board, firmware):
    """A board running other firmware: its text is quoted in the error."""
    platform = board.platform_file(tmp_path / "qemu-board.toml")
    proc, result = _run(tmp_path, platform, "--port", str(board.pty_link), "--probe", "HILSIM0001",
                        "--firmware", firmware["console"])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = result["error"]["message"]
    assert "device not detected" in message and "Booting console test firmware" in message
    assert "baud rate" in message and "hil console" in message


def test_device_that_reboots_mid_run(tmp_path, board, firmware):
    platform = board.platform_file(tmp_path / "qemu-board.toml")
    proc, result = _run(tmp_path, platform, "--port", board.socket_url, "--probe", "HILSIM0001",
                        "--firmware", firmware["reboot"], "--invoke-timeout", "2")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [v["status"] for v in result["vectors"]] == ["passed", "error"]
    assert "rebooted" in result["vectors"][1]["error"] and "rebooted" in result["error"]["message"]
    assert result["summary"]["not_run"] == 1


def test_a_probe_that_is_not_the_boards_is_refused(tmp_path, board, firmware):
    """The flash command is asked for probe HILSIM9999, which is not
    attached: the flasher's error is reported and nothing is flashed."""
    platform = board.platform_file(tmp_path / "qemu-board.toml")
    proc, result = _run(tmp_path, platform, "--port", board.socket_url, "--probe", "HILSIM9999",
                        "--firmware", firmware["normal"])
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no probe with serial number HILSIM9999" in result["error"]["message"]
    assert board.flashes == []


def test_several_boards_in_parallel(tmp_path, firmware):
    """Two boards, same firmware, results per board; a third port where no
    board answers fails alone, and the others' results are kept."""
    with QemuBoard(tmp_path / "a", board_id="HILSIM0001", control_dir=tmp_path / "ctl") as a, \
            QemuBoard(tmp_path / "b", board_id="HILSIM0002", control_dir=tmp_path / "ctl") as b, \
            QemuBoard(tmp_path / "c", board_id="HILSIM0003", control_dir=tmp_path / "ctl") as dead:
        platform = a.platform_file(tmp_path / "qemu-board.toml")
        dead.close()  # its control socket and ports are gone: flashing it fails
        proc, doc = _run(tmp_path, platform, "--firmware", firmware["normal"],
                         "--port", str(a.pty_link), "--probe", "HILSIM0001",
                         "--port", b.socket_url, "--probe", "HILSIM0002",
                         "--port", "socket://127.0.0.1:9", "--probe", "HILSIM0003")
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert doc["schema"] == "hil.boards/1" and len(doc["boards"]) == 3
        by_probe = {bd["probe_id"]: bd for bd in doc["boards"]}
        for probe in ("HILSIM0001", "HILSIM0002"):
            r = by_probe[probe]["result"]
            assert r["status"] == "passed" and r["summary"]["passed"] == 3
            assert r["target"]["probe_id"] == probe
        assert by_probe["HILSIM0003"]["exit_code"] == 3
        assert a.flashes == b.flashes == [str(firmware["normal"])]
        # each board's own hil.result/1 is in its own directory
        for bd in doc["boards"]:
            assert json.loads(open(bd["result_path"]).read())["schema"] == "hil.result/1"
        assert "HILSIM0001" in proc.stdout and "HILSIM0002" in proc.stdout
