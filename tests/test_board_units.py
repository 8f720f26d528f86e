"""Flashers and board selection without hardware.

No debug probe or USB serial port can be reached here, so two things are
stood in for, and only these: the flashing tools (pyocd, openocd, west,
JLinkExe) are small scripts put first on PATH that record their command
line and succeed or fail like the real tool, and the list of attached USB
serial ports (`local_ports`) is given as data. Everything else is real:
the command lines hil builds, probe/port pairing and refusal, objcopy
making .hex/.bin from a real ELF, and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from console_fw import build_console_elf
from helpers import hil, requires_qemu
from harness.errors import InfraError, UsageError
from harness.platforms import board_settings, load_platform
from harness.targets.board import BoardSpec, BoardTarget, PortInfo, resolve_boards, same_probe
from harness.targets.flash import FlashRequest, make_flasher

STLINK_A = PortInfo("/dev/ttyACM0", "0671FF504955857567182533", 0x0483, 0x374B, "STM32 STLink", "ST-LINK/V2-1")
STLINK_B = PortInfo("/dev/ttyACM1", "066BFF555052836687035019", 0x0483, 0x374B, "STM32 STLink", "ST-LINK/V2-1")
JLINK = PortInfo("/dev/ttyACM2", "000683123456", 0x1366, 0x1015, "J-Link - CDC", "SEGGER J-Link")
FTDI = PortInfo("/dev/ttyUSB0", "A50285BI", 0x0403, 0x6001, "FT232R", None)


@pytest.fixture
def tools(tmp_path, monkeypatch):
    """Stand-ins for the flashing tools: each records its argv in calls.jsonl
    and exits with $FAKE_TOOL_EXIT (default 0), printing an error then."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls.jsonl"
    for name in ("pyocd", "openocd", "west", "JLinkExe"):
        script = bindir / name
        script.write_text(f"""#!/usr/bin/env python3
import json, os, sys
open({str(calls)!r}, "a").write(json.dumps(sys.argv) + "\\n")
code = int(os.environ.get("FAKE_TOOL_EXIT", "0"))
if code:
    print("Error: No connected debug probe matches the unique ID", file=sys.stderr)
sys.exit(code)
""")
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return calls


def _calls(calls: Path) -> list[list[str]]:
    return [json.loads(ln) for ln in calls.read_text().splitlines()] if calls.exists() else []


def _request(tmp_path, elf=None, probe="0671FF504955857567182533"):
    return FlashRequest(elf or tmp_path / "fw.elf", probe, "/dev/ttyACM0", tmp_path, tmp_path / "flash.log")


def test_pyocd_and_openocd_commands_select_the_probe(tmp_path, tools):
    board = load_platform("nucleo-l4r5zi").board
    py = make_flasher(board, "nucleo-l4r5zi", "pyocd")
    cmd = py.flash_command(_request(tmp_path))
    py_reset = py.reset_command(_request(tmp_path))
    assert py_reset is not None
    assert cmd[1:] == ["load", "--target", "stm32l4r5zitx", "--uid", "0671FF504955857567182533",
                       "--format", "elf", str(tmp_path / "fw.elf")]
    assert py_reset[1:6] == ["reset", "--target", "stm32l4r5zitx", "--uid",
                                                           "0671FF504955857567182533"]
    oc = make_flasher(board, "nucleo-l4r5zi")
    cmd = oc.flash_command(_request(tmp_path))
    assert cmd[1:3] == ["-f", "board/st_nucleo_l4.cfg"]
    assert "adapter serial 0671FF504955857567182533" in cmd
    # no fixed server ports: boards flash in parallel
    assert {"gdb_port disabled", "tcl_port disabled", "telnet_port disabled"} <= set(cmd)
    assert cmd[-1] == f"program {{{tmp_path / 'fw.elf'}}} verify reset exit"
    oc_reset = oc.reset_command(_request(tmp_path))
    assert oc_reset is not None
    assert oc_reset[-4:] == ["init", "-c", "reset run", "-c", "shutdown"][-4:]
    # and it really runs the tool, logging its output
    info = oc.flash(_request(tmp_path))
    assert info["flasher"] == "openocd" and _calls(tools)[-1][1:] == cmd[1:]


def test_jlink_commander_loads_a_hex_made_from_the_elf(tmp_path, tools):
    elf = build_console_elf(tmp_path / "fw", "app")
    jl = make_flasher(load_platform("nrf52840dk").board, "nrf52840dk")
    req = _request(tmp_path, elf, probe="683123456")
    cmd = jl.flash_command(req)
    assert cmd[cmd.index("-Device") + 1] == "NRF52840_XXAA" and cmd[cmd.index("-USB") + 1] == "683123456"
    script = Path(cmd[cmd.index("-CommandFile") + 1]).read_text()
    hexfile = tmp_path / "app.hex"
    assert f'loadfile "{hexfile}"' in script and script.rstrip().endswith("qc")
    assert hexfile.read_text().startswith(":")  # Intel hex, made by arm-none-eabi-objcopy


def test_west_flash_needs_a_zephyr_build_directory(tmp_path, tools):
    west = make_flasher(board_settings({"flasher": "west", "west_runner": "openocd"}), "p")
    build = tmp_path / "build"
    (build / "zephyr").mkdir(parents=True)
    (build / "zephyr" / "runners.yaml").write_text("runners: [openocd]\n")
    elf = build / "zephyr" / "zephyr.elf"
    elf.write_bytes(b"\x7fELF")
    cmd = west.flash_command(_request(tmp_path, elf, probe="ABC"))
    assert cmd[1:] == ["flash", "--skip-rebuild", "-d", str(build), "--runner", "openocd", "--elf-file", str(elf),
                       "--dev-id", "ABC"]
    with pytest.raises(UsageError, match="not inside a Zephyr build directory"):
        west.flash_command(_request(tmp_path, tmp_path / "fw.elf"))


def test_command_template_placeholders(tmp_path):
    elf = build_console_elf(tmp_path / "fw", "app")
    fl = make_flasher(board_settings({"flasher": "command", "flash_command": "flash-it --sn {probe} '{bin}' {hex} {elf}"}),
                      "p")
    cmd = fl.flash_command(_request(tmp_path, elf, probe="SN1"))
    assert cmd[:3] == ["flash-it", "--sn", "SN1"] and cmd[3].endswith("app.bin") and cmd[5] == str(elf)
    assert Path(cmd[3]).stat().st_size > 0 and fl.needs_probe
    with pytest.raises(UsageError, match=r"\{serial\}.*not a placeholder"):
        make_flasher(board_settings({"flasher": "command", "flash_command": "x {serial}"}), "p")
    with pytest.raises(UsageError, match="uses {probe} but no probe id"):
        fl.flash_command(_request(tmp_path, elf, probe=None))
    with pytest.raises(UsageError, match="needs board.flash_command"):
        make_flasher(board_settings({"flasher": "command"}), "p")
    with pytest.raises(UsageError, match="flasher` 'stlink' is not one of"):
        make_flasher(board_settings({"flasher": "stlink"}), "p")
    with pytest.raises(UsageError, match="flasher 'stlink' is not known"):
        make_flasher(board_settings({}), "p", "stlink")  # --flasher stlink


def test_missing_tool_names_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InfraError, match="apt-get install -y openocd"):
        make_flasher(load_platform("nucleo-h743zi").board, "nucleo-h743zi").flash(_request(tmp_path))
    with pytest.raises(InfraError, match="J-Link Software"):
        make_flasher(load_platform("nrf52840dk").board, "nrf52840dk").check_tool()


def test_flasher_failure_is_reported_with_its_output(tmp_path, tools, monkeypatch):
    monkeypatch.setenv("FAKE_TOOL_EXIT", "1")
    with pytest.raises(InfraError, match=r"flash with pyocd failed \(exit 1\): Error: No connected debug probe"):
        make_flasher(load_platform("nucleo-l4r5zi").board, "p", "pyocd").flash(_request(tmp_path))


def test_port_and_probe_pairing():
    p = load_platform("nucleo-l4r5zi")
    attached = [STLINK_A, STLINK_B, JLINK, FTDI]
    assert STLINK_A.serial_number is not None and STLINK_B.serial_number is not None
    # the port names its probe
    [spec] = resolve_boards(p, ["/dev/ttyACM1"], [], attached)
    assert spec.probe == STLINK_B.serial_number and spec.probe_source == "the port's USB serial number"
    # a probe that is not the port's: refused before anything is flashed
    with pytest.raises(UsageError, match="refusing to flash one board and test another"):
        resolve_boards(p, ["/dev/ttyACM0"], [STLINK_B.serial_number], attached)
    # J-Link serial numbers compare without leading zeros
    [spec] = resolve_boards(p, ["/dev/ttyACM2"], ["683123456"], attached)
    assert spec.probe == "683123456" and same_probe("000683123456", "683123456")
    # by probe alone: its port is found
    [spec] = resolve_boards(p, [], [STLINK_A.serial_number], attached)
    assert spec.port == "/dev/ttyACM0"
    with pytest.raises(InfraError, match="no serial port of probe NOPE"):
        resolve_boards(p, [], ["NOPE"], attached)
    # several boards and no choice: hil does not guess
    with pytest.raises(UsageError, match="3 boards are attached"):
        resolve_boards(p, [], [], attached)
    [spec] = resolve_boards(p, [], [], [STLINK_A, FTDI])
    assert spec.port == "/dev/ttyACM0" and spec.probe_source == "the only probe attached"
    with pytest.raises(InfraError, match="no board found"):
        resolve_boards(p, [], [], [FTDI])
    with pytest.raises(UsageError, match="2 --port but 1 --probe"):
        resolve_boards(p, ["/dev/ttyACM0", "/dev/ttyACM1"], ["X"], attached)
    with pytest.raises(UsageError, match="same --port"):
        resolve_boards(p, ["rfc2217://lab:4000", "rfc2217://lab:4000"], [], attached)
    # network ports cannot be checked locally: the given probe is used as is
    specs = resolve_boards(p, ["rfc2217://lab:4000", "socket://lab:4001"], ["A1", "B2"], attached)
    assert [(s.port, s.probe) for s in specs] == [("rfc2217://lab:4000", "A1"), ("socket://lab:4001", "B2")]
    with pytest.raises(InfraError, match="serial port /dev/ttyNOPE does not exist"):
        resolve_boards(p, ["/dev/ttyNOPE"], [], attached)


def test_no_probe_id_and_several_probes_is_refused_before_flashing(tmp_path, tools, monkeypatch):
    """A network port says nothing about its probe; with two probes attached
    the flasher would pick one: hil refuses and runs nothing."""
    import harness.targets.board as board_mod

    monkeypatch.setattr(board_mod, "local_ports", lambda: [STLINK_A, STLINK_B])
    p = load_platform("nucleo-l4r5zi")
    target = BoardTarget(p, tmp_path / "fw.elf", tmp_path, board=BoardSpec("socket://lab:4001"))
    with pytest.raises(UsageError, match="cannot tell which probe to flash"):
        target.start()
    assert _calls(tools) == []


def test_serial_settings_come_from_the_platform_or_the_command_line(tmp_path):
    p = load_platform("nrf52840dk")
    t = BoardTarget(p, None, tmp_path, board=BoardSpec("socket://x:1"))
    assert (t.baud, t.flow, t.reset_method) == (115200, "rtscts", "flasher")
    assert BoardTarget(p, None, tmp_path, board=BoardSpec("socket://x:1"), baud=921600).baud == 921600


@requires_qemu
def test_cli_board_errors(tmp_path):
    out = tmp_path / "r.json"
    model = Path(__file__).resolve().parent.parent / "models" / "demo" / "gesture.tflite"
    proc = hil("run", "--model", model, "--platform", "mps2-an386", "--port", "/dev/ttyACM0", "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 2 and "are for boards" in proc.stderr
    proc = hil("run", "--model", model, "--platform", "nucleo-l4r5zi", "--port", "/dev/ttyNOPE", "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 3 and "serial port /dev/ttyNOPE does not exist" in proc.stderr
    pty_master, pty_slave = os.openpty()
    try:
        proc = hil("run", "--model", model, "--platform", "nucleo-l4r5zi", "--port", os.ttyname(pty_slave),
                   "--probe", "X", "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    finally:
        os.close(pty_master)
        os.close(pty_slave)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "board layer 'stm32l4'" in proc.stderr and "--firmware" in proc.stderr
    assert json.loads(out.read_text())["exit_code"] == 2
