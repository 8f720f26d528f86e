"""The Renode target without Renode: the monitor client against a local
server that behaves like Renode's monitor, the generated .resc, the board
layers cross-compiled for the Renode platforms, the runner's
instruction-count hook and process clean-up through a fake `renode`
(tests/renode_fake.py, which boots the firmware in QEMU), and the errors
when Renode is missing. tests/test_renode_real.py runs the real thing where
Renode is installed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.build.cmake import build_firmware
from harness.errors import EXIT_INFRA, InfraError, UsageError
from harness.platforms import load_platform, load_platform_file
from harness.targets import KINDS, make_target
from harness.targets.renode import (INSTALL_HINT, TELNET_REPLY, MonitorError, RenodeMonitor, RenodeTarget,
                                    clean, parse_number)

from helpers import MODELS, REPO, hil, processes_in, requires_qemu
from renode_fake import FakeMonitor

RENODE_PLATFORMS = ["renode-stm32f4-discovery", "renode-nrf52840", "renode-stm32f746"]
FAKE = Path(__file__).resolve().parent / "renode_fake.py"


# -- the monitor protocol -------------------------------------------------------------------


def _handler(answers: dict[str, tuple[str, bool]]):
    def handle(monitor: FakeMonitor, line: str):
        if line.startswith("mach create"):
            monitor.prompt = line.split('"')[1]
            return "", False
        if line in answers:
            return answers[line]
        return f"No such command or device: {line.split()[0]}", True
    return handle


@pytest.fixture
def fake_monitor():
    servers = []

    def make(answers=None, **kw):
        server = FakeMonitor(_handler(answers or {}), **kw)
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


def test_clean_strips_telnet_and_terminal_codes_and_finds_red_text():
    raw = (b"\xff\xfd\x00\xff\xfb\x01hello\r\n\x1b[31;1mThere was an error\r\n\x1b[0m"
           b"\x1b[34;1m(monitor) \x1b[0m")
    text, red = clean(raw)
    assert text == "hello\nThere was an error\n(monitor) "
    assert red == "There was an error"


def test_monitor_negotiates_with_exactly_nine_bytes_and_reads_the_prompt(fake_monitor):
    server = fake_monitor({"sysbus.cpu ExecutedInstructions": ("0x2FAF080", False)})
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    try:
        # Renode throws the first 9 bytes away: the client's answer is exactly
        # those 9, so the first command arrives whole
        assert server.received_negotiation == [TELNET_REPLY]
        assert monitor.prompt == "monitor"
        assert "Renode, version" in monitor.banner
        assert parse_number(monitor.execute("sysbus.cpu ExecutedInstructions")) == 50_000_000
        assert server.commands == ["sysbus.cpu ExecutedInstructions"]
    finally:
        monitor.close()


def test_monitor_follows_the_machine_prompt_and_strips_the_echo(fake_monitor):
    server = fake_monitor({"version": ("Renode, version 1.15.3.0\nsecond line (x) inside", False)})
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    try:
        assert monitor.execute('mach create "hil"') == ""
        assert monitor.prompt == "hil"
        # a prompt-like "(x) " inside the output is not the end of the answer
        assert monitor.execute("version") == "Renode, version 1.15.3.0\nsecond line (x) inside"
    finally:
        monitor.close()


def test_monitor_reassembles_answers_that_arrive_in_pieces(fake_monitor):
    server = fake_monitor({"sysbus.cpu ExecutedInstructions": ("0x10 (16)", False)}, chunked=True)
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    try:
        for _ in range(3):
            assert parse_number(monitor.execute("sysbus.cpu ExecutedInstructions")) == 16
    finally:
        monitor.close()


def test_monitor_raises_on_error_output(fake_monitor):
    server = fake_monitor({"machine LoadPlatformDescription @x.repl": ("Error E05: syntax error at 3:1", False)})
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    try:
        with pytest.raises(MonitorError, match="No such command or device: sysbus.usart9"):
            monitor.execute("sysbus.usart9 WriteChar 0x41")
        # the connection stays usable
        assert monitor.execute("sysbus.usart9 WriteChar 0x41", check=False).startswith("No such")
        with pytest.raises(MonitorError, match="E05"):
            monitor.execute("machine LoadPlatformDescription @x.repl")
    finally:
        monitor.close()


def test_monitor_raises_on_red_text_and_on_any_output_of_a_quiet_command(fake_monitor):
    server = fake_monitor({"screenshot x.bmp": ("Bad image format. Supported formats: jpeg, png", True),
                           "sysbus LoadELF @fw.elf": ("segment beyond memory: 0x30000000", False)},
                          colour=True)
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    try:
        # wording the client does not know, but Renode printed it red
        with pytest.raises(MonitorError, match="Bad image format"):
            monitor.execute("screenshot x.bmp")
        assert monitor.execute("sysbus LoadELF @fw.elf") == "segment beyond memory: 0x30000000"
        with pytest.raises(MonitorError, match="segment beyond memory"):
            monitor.execute("sysbus LoadELF @fw.elf", quiet=True)
    finally:
        monitor.close()


def test_monitor_times_out_without_a_prompt():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    conns = []

    def serve():
        conn, _ = server.accept()
        conns.append(conn)
        conn.sendall(bytes(12))  # negotiation, then silence

    import threading

    threading.Thread(target=serve, daemon=True).start()
    t0 = time.monotonic()
    with pytest.raises(MonitorError, match="no monitor prompt"):
        RenodeMonitor.connect(port, timeout=1.0)
    assert time.monotonic() - t0 < 5
    server.close()


def test_monitor_connect_gives_up_when_renode_exits():
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    free = port.getsockname()[1]
    port.close()  # nothing listens there
    with pytest.raises(MonitorError, match="exited"):
        RenodeMonitor.connect(free, timeout=5, alive=lambda: False)


def test_quit_closes_the_connection(fake_monitor):
    server = fake_monitor()
    monitor = RenodeMonitor.connect(server.port, timeout=5)
    monitor.quit(timeout=2)
    assert server.closed.wait(2)
    assert server.commands[-1] == "quit"


def test_parse_number_reads_every_format_the_monitor_prints():
    assert parse_number("0x1F") == 31
    assert parse_number("31") == 31
    assert parse_number("0x1F (31)") == 31
    with pytest.raises(MonitorError):
        parse_number("nothing here")


# -- platforms and the script ----------------------------------------------------------------


def test_renode_kind_is_registered_and_platforms_load():
    assert KINDS["renode"] is RenodeTarget
    for name in RENODE_PLATFORMS:
        p = load_platform(name)
        assert p.target_kind == "renode"
        assert p.target.repl.startswith("platforms/") and p.target.repl.endswith(".repl")
        assert p.target.uart.startswith("sysbus.")
        assert p.counter.source == "renode-monitor" and p.counter.kind == "instructions"
        assert not p.target.semihosting
        assert not p.power, "no power figures without a checked source (docs/power-sources.md)"


def test_resc_sets_everything_up_before_start(tmp_path):
    platform = load_platform("renode-stm32f4-discovery")
    elf = tmp_path / "fw dir" / "firmware.elf"
    elf.parent.mkdir()
    elf.write_bytes(b"\x7fELF")
    target = make_target(platform, elf, tmp_path / "run")
    assert isinstance(target, RenodeTarget) and target.host_files is False
    resc = target.write_script(uart_port=4567)
    lines = [ln for ln in resc.read_text().splitlines() if ln and not ln.startswith(":")]
    repl = (tmp_path / "run" / "platform.repl").resolve()
    assert lines == [
        'mach create "hil"',
        f"machine LoadPlatformDescription @{repl}",
        "sysbus.cpu PerformanceInMips 100",
        "sysbus.nvic Frequency 100000000",
        f'sysbus LoadELF @"{elf.resolve()}"',  # quoted: the path has a space
        'emulation CreateServerSocketTerminal 4567 "hil_uart" false',
        "connector Connect sysbus.usart2 hil_uart",
        'emulation RunFor "0.01"',
        "start",
    ]
    text = repl.read_text()
    assert 'using "platforms/boards/stm32f4_discovery-kit.repl"' in text
    assert "ApplySVD" not in text and 'Tag <0x40021000, 0x40021003> "GPIOE_MODER"' in text


def test_resc_without_overrides_loads_the_shipped_repl(tmp_path):
    src = (REPO / "platforms" / "renode-nrf52840.toml").read_text()
    start = src.index("repl_overrides")
    end = src.index('"""', src.index('"""', start) + 3) + 3
    path = tmp_path / "plain.toml"
    path.write_text(src[:start] + src[end:])
    target = RenodeTarget(load_platform_file(path), tmp_path / "fw.elf", tmp_path / "run")
    lines = target.script_lines(1234)
    assert lines[1] == "machine LoadPlatformDescription @platforms/cpus/nrf52840.repl"
    assert lines[-1] == "connector Connect sysbus.uart0 hil_uart"
    assert target.platform_repl() is None


def test_platform_without_uart_is_a_usage_error(tmp_path):
    src = (REPO / "platforms" / "renode-nrf52840.toml").read_text().replace('uart = "sysbus.uart0"\n', "")
    path = tmp_path / "nouart.toml"
    path.write_text(src)
    with pytest.raises(UsageError, match="target.uart"):
        RenodeTarget(load_platform_file(path), tmp_path / "fw.elf", tmp_path)


# -- the board layers -----------------------------------------------------------------------


def _symbols(elf: Path) -> dict[str, int]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(elf, "rb") as fh:
        table = ELFFile(fh).get_section_by_name(".symtab")
        assert isinstance(table, SymbolTableSection)
        return {s.name: s["st_value"] for s in table.iter_symbols() if s.name}


@pytest.mark.skipif(not __import__("shutil").which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
@pytest.mark.parametrize("name", RENODE_PLATFORMS)
def test_board_layer_cross_compiles_for_the_renode_platform(name):
    platform = load_platform(name)
    record = build_firmware(platform)
    syms = _symbols(record.elf.path)
    code, ram, bulk = (platform.memory.region(r) for r in ("code", "ram", "bulk"))
    assert syms["vector_table"] == code.origin  # the reset vector where the core looks
    for fn in ("board_init", "board_getc", "board_write", "Reset_Handler", "main"):
        assert code.origin <= syms[fn] < code.origin + code.length, fn
    assert ram.origin <= syms["__stack_top__"] <= ram.origin + ram.length
    assert bulk.origin <= syms["model_buffer"] < bulk.origin + bulk.length
    assert record.elf.build_id
    log = (record.build_dir / "build.log").read_text() if (record.build_dir / "build.log").exists() else ""
    defines = json.loads((record.build_dir / "build.json").read_text())["defines"]
    assert defines["HIL_SEMIHOSTING"] == "OFF" and defines["HIL_BOARD"] == platform.firmware.board
    assert "HIL_IDLE_WFE=1" in defines["HIL_EXTRA_DEFINES"]
    layer = f"boards/{platform.firmware.board}/"
    assert not [ln for ln in log.splitlines() if layer in ln and "warning" in ln.lower()], "the board layer warns"


# -- a missing Renode --------------------------------------------------------------------------


def test_missing_renode_is_an_infrastructure_error_naming_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("RENODE", str(tmp_path / "no-such-renode"))
    target = RenodeTarget(load_platform("renode-stm32f4-discovery"), tmp_path / "fw.elf", tmp_path)
    with pytest.raises(InfraError) as info:
        target.start()
    assert info.value.exit_code == EXIT_INFRA
    assert "RENODE" in str(info.value) and "renode-1.15.3.linux-portable.tar.gz" in str(info.value)
    target.stop()  # nothing started: stopping is harmless
    assert INSTALL_HINT in str(info.value)


@pytest.mark.skipif(not __import__("shutil").which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc")
def test_cli_without_renode_exits_3_and_says_how_to_install_it(tmp_path):
    env = {"RENODE": str(tmp_path / "missing" / "renode")}
    out = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--platform", "renode-stm32f4-discovery",
              "--vectors", "2", "--workdir", tmp_path / "run", env=env, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert "Renode" in text and "github.com/renode/renode/releases" in text
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["exit_code"] == 3 and "Renode" in result["error"]["message"]


# -- the target end to end, through a fake renode that boots QEMU -----------------------------


def _fake_renode(tmp_path: Path) -> Path:
    wrapper = tmp_path / "renode"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def _fake_platform(tmp_path: Path) -> Path:
    """A Renode platform whose firmware is the MPS2 one (the fake boots QEMU's
    mps2-an386); counted by `ExecutedInstructions` like the real ones."""
    text = """
name = "fake-renode-an386"
description = "Renode target plumbing, with QEMU behind a fake renode"
core = "cortex-m4f"

[target]
kind = "renode"
repl = "platforms/boards/stm32f4_discovery-kit.repl"
repl_overrides = '''
sysbus:
    init:
        Tag <0x40021000, 0x40021003> "GPIOE_MODER" 0xFFFFFFFF
'''
uart = "sysbus.usart2"
setup = ["sysbus.cpu PerformanceInMips 100"]

[firmware]
board = "mps2"
toolchain = "arm-none-eabi"
cpu_flags = ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
uart_base = 0x40004000
clock_hz = 25_000_000
stack_bytes = 0x4000
arena_bytes = 0x100000
model_capacity_bytes = 0x200000

[memory]
code = [0x00000000, 0x00400000]
ram = [0x20000000, 0x00400000]
bulk = [0x21000000, 0x01000000]

[counter]
source = "renode-monitor"
kind = "instructions"
per_tick = 40
"""
    path = tmp_path / "fake-renode-an386.toml"
    path.write_text(text)
    return path


def _wait_gone(directory: Path, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = processes_in(directory)
        if not left:
            return []
        time.sleep(0.1)
    return processes_in(directory)


@requires_qemu
def test_run_through_the_renode_target_counts_with_the_monitor_and_cleans_up(tmp_path):
    env = {"RENODE": str(_fake_renode(tmp_path))}
    run = tmp_path / "run"
    out = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--platform", _fake_platform(tmp_path),
              "--vectors", "3", "--workdir", run, env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads((run / "result.json").read_text())
    assert result["target"]["kind"] == "renode"
    assert "fake" in result["target"]["emulator"]
    assert result["device"]["bulk_transfer"] == "inline"  # no semihosting on Renode
    counts = [v["count"] for v in result["vectors"]]
    assert all(c["kind"] == "instructions" and "ExecutedInstructions" in c["source"] for c in counts)
    # the fake counts 1000 per byte in, 10 per byte out: an INVOKE is one
    # request and one reply of fixed sizes, so every vector counts the same
    assert len({c["value"] for c in counts}) == 1 and counts[0]["value"] > 0
    assert result["count_overhead"]["kind"] == "instructions"
    assert result["count_overhead"]["value"] == counts[0]["value"]  # the fake counts bytes only
    assert all(v["operators"] for v in result["vectors"])  # per operator: the device's SysTick
    commands = (run / "renode-monitor.log").read_text()
    for line in (run / "hil.resc").read_text().splitlines():
        if line and not line.startswith(":"):
            assert f") {line}\n" in commands  # the script is what ran, in order
    assert commands.index("connector Connect") < commands.index(") start\n")
    assert _wait_gone(run) == [], "Renode (or its emulator) outlived the run"


@requires_qemu
def test_a_failing_monitor_command_is_an_infrastructure_error(tmp_path):
    env = {"RENODE": str(_fake_renode(tmp_path)), "FAKE_RENODE_FAIL": "LoadELF"}
    run = tmp_path / "run"
    out = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--platform", _fake_platform(tmp_path),
              "--vectors", "1", "--workdir", run, env=env, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    message = json.loads((run / "result.json").read_text())["error"]["message"]
    assert "sysbus LoadELF" in message and "There was an error" in message
    assert "hil.resc" in out.stdout + out.stderr  # how to replay it by hand
    assert _wait_gone(run) == []


@requires_qemu
def test_a_hang_times_out_on_host_time_and_leaves_nothing_behind(tmp_path):
    # the device goes silent at the third INVOKE: the empty one, vector 0, vector 1
    env = {"RENODE": str(_fake_renode(tmp_path)), "FAKE_RENODE_HANG_ON_INVOKE": "3"}
    run = tmp_path / "run"
    out = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--platform", _fake_platform(tmp_path),
              "--vectors", "3", "--invoke-timeout", "2", "--workdir", run, env=env, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    statuses = [v["status"] for v in json.loads((run / "result.json").read_text())["vectors"]]
    assert statuses[:2] == ["passed", "timeout"]
    assert _wait_gone(run) == []


@requires_qemu
def test_killing_the_harness_leaves_no_renode_behind(tmp_path):
    """SIGKILL of hil: no `finally` runs; the reaper takes Renode's group down."""
    env = {**os.environ, "RENODE": str(_fake_renode(tmp_path))}
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--model", str(MODELS / "demo" / "gesture.tflite"),
                             "--platform", str(_fake_platform(tmp_path)), "--vectors", "500",
                             "--workdir", str(run)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        log = run / "renode-monitor.log"
        while time.monotonic() < deadline:
            if log.exists() and ") start\n" in log.read_text():
                break
            time.sleep(0.1)
        else:
            pytest.fail("the fake Renode never started")
        assert processes_in(run), "expected Renode and QEMU to be running"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert _wait_gone(run) == [], "Renode (or its emulator) outlived a killed harness"
    finally:
        if proc.poll() is None:
            proc.kill()
