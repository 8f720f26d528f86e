"""A link that survives noise, and a stalled emulator told from a hung firmware.

Two layers:

- The host client (harness/link/protocol.py) against the real device side
  of the protocol (firmware/protocol/*.c built for the host with ASan/UBSan,
  the stand-in engine of firmware/tests/proto_stdio.c, which counts its
  invokes), through `ScriptedLink`, a test double for the byte stream that
  drops, damages or duplicates exactly the frames a test names: a real UART
  cannot be made to lose one given frame on demand. These pin down the
  exact retry behaviour.
- End to end: real firmware (arm-none-eabi-gcc) in real QEMU, with
  tests/noisy_link.py's proxy flipping bits, dropping and duplicating bytes
  between the runner and QEMU's UART socket (or cutting it), a QEMU stopped
  with SIGSTOP, and a firmware built to hang (HIL_HANG_ON_INVOKE).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import zlib

import pytest
import serial

from harness.link.frames import DELIMITER, FrameDecoder
from harness.link.protocol import (DeviceClient, LinkBroken, LinkTimeout, RetryPolicy, TargetStopped)
from helpers import MODELS, hil, processes_in, requires_qemu
from noisy_link import NoisyProxy, _Damage
from test_protocol_c import PipeStream

DEMO = MODELS / "demo" / "gesture.tflite"
#: Retransmission waits for these tests: long enough that a device process
#: slowed by a loaded 2-core CI machine is not taken for a lost reply (a
#: retransmission the test did not provoke changes its counts), short enough
#: that a provoked loss costs half a second. The noisy-link session, which
#: counts nothing exactly, uses FAST to keep its many losses cheap.
STEADY = RetryPolicy(first_wait=0.5, longest_wait=1.0)
FAST = RetryPolicy(first_wait=0.05, longest_wait=0.2)


class ScriptedLink:
    """A fake byte stream between the real client and the real device: the
    n-th frame the device sends is passed, dropped, damaged or doubled as
    `replies` says, the n-th write of the client as `requests` says
    ("ok", "drop", "flip", "dup"; anything not named passes). With `noise`,
    every byte both ways goes through a seeded _Damage instead."""

    def __init__(self, inner: PipeStream, requests: dict[int, str] | None = None,
                 replies: dict[int, str] | None = None, noise: tuple[_Damage, _Damage] | None = None,
                 deaf: bool = False) -> None:
        self.inner = inner
        self.requests, self.replies = requests or {}, replies or {}
        self.hold: dict[int, float] = {}  # frame n and all after it arrive this many seconds late
        self._held: list[bytes] = []
        self._release_at = 0.0
        self.noise = noise
        self.deaf = deaf  # the device hears nothing: it stays silent
        self.writes: list[bytes] = []
        self.frames_read = 0
        self._partial = bytearray()
        self._ready = bytearray()
        self.timeout: float | None = 1.0

    @staticmethod
    def _act(action: str, data: bytes) -> bytes:
        if action == "drop":
            return b""
        if action == "flip":
            damaged = bytearray(data)
            damaged[len(damaged) // 2] ^= 0x10
            return bytes(damaged)
        if action == "dup":
            return data + data
        return data

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        if self.deaf:
            return len(data)
        out = self.noise[0].apply(data) if self.noise else self._act(self.requests.get(len(self.writes), "ok"), data)
        if out:
            self.inner.write(out)
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self._ready)

    def read(self, size: int = 1) -> bytes:
        if self._held and time.monotonic() >= self._release_at:
            self._ready += b"".join(self._held)
            self._held.clear()
        if not self._ready:
            assert self.timeout is not None  # the client always sets a number of seconds
            self.inner.timeout = min(self.timeout, 0.05) if self._held else self.timeout
            waiting = self.inner.in_waiting
            data = self.inner.read(max(waiting, 1))
            if self.noise:
                self._ready += self.noise[1].apply(data)
            else:
                self._partial += data
                while DELIMITER in self._partial:
                    end = self._partial.index(DELIMITER) + 1
                    frame, self._partial = bytes(self._partial[:end]), self._partial[end:]
                    self.frames_read += 1
                    if self.frames_read in self.hold:
                        self._release_at = time.monotonic() + self.hold[self.frames_read]
                    frame = self._act(self.replies.get(self.frames_read, "ok"), frame)
                    if time.monotonic() < self._release_at:
                        self._held.append(frame)
                    else:
                        self._ready += frame
        out, self._ready = bytes(self._ready[:size]), self._ready[size:]
        return out


@pytest.fixture
def device_proc(device_exe):
    proc = subprocess.Popen([str(device_exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    yield proc
    assert proc.stdin is not None
    try:
        proc.stdin.close()
    except OSError:
        pass
    assert proc.wait(timeout=5) == 0, "the device side crashed or a sanitizer fired"


def _client(proc, retry: RetryPolicy = STEADY, **script) -> tuple[DeviceClient, ScriptedLink]:
    link = ScriptedLink(PipeStream(proc), **script)
    return DeviceClient(link, default_timeout=5, retry=retry), link


def _prepared(client: DeviceClient) -> None:
    """A model for the echo engine and one 4-byte input."""
    client.hello()
    client.load_model(b"ECHO\x03")
    client.set_input(0, b"\x01\x02\x03\x04")


def _invokes_run(client: DeviceClient) -> int:
    return client.get_memory().arena_high_water  # the stand-in engine counts invokes there


def test_sequence_numbers_start_at_random_skip_zero_and_step_per_new_request(device_proc):
    """A fresh client must not reuse the last seq of the one before it
    (the device would take its request for a retransmission), and seq 0
    is the device's for frames that answer no request."""
    firsts = {DeviceClient(PipeStream(device_proc))._seq for _ in range(40)}
    assert len(firsts) > 10 and 0 not in firsts
    client, link = _client(device_proc)
    client._seq = 250
    for _ in range(10):
        client.hello()
    # A retransmission (the device was slow to answer) repeats a frame byte
    # for byte, seq included; only new requests take the next seq.
    new_requests = [w for i, w in enumerate(link.writes) if i == 0 or w != link.writes[i - 1]]
    assert [FrameDecoder().feed(w)[0].seq for w in new_requests] == [251, 252, 253, 254, 255, 1, 2, 3, 4, 5]


def test_a_lost_reply_is_recovered_by_resending_the_identical_frame_and_runs_once(device_proc):
    client, link = _client(device_proc)
    _prepared(client)
    lost = link.frames_read + 1
    link.replies = {lost: "drop"}
    sends_before = len(link.writes)
    result = client.invoke()
    assert result.count == 1000
    invoke_writes = link.writes[sends_before:]
    assert len(invoke_writes) == 2 and invoke_writes[0] == invoke_writes[1]  # byte for byte
    assert _invokes_run(client) == 1
    assert client.stats.retransmissions == 1 and client.stats.requests_retried == 1
    assert client.get_output(0) == b"\x02\x03\x04\x05"


def test_a_damaged_reply_triggers_an_immediate_retransmission(device_proc):
    """The damaged frame is evidence: no waiting for the retry interval."""
    client, link = _client(device_proc)
    client.retry = RetryPolicy(first_wait=3.0)
    _prepared(client)
    link.replies = {link.frames_read + 1: "flip"}
    started = time.monotonic()
    client.invoke()
    assert time.monotonic() - started < 1.0
    assert client.stats.damaged_frames["crc"] + client.stats.damaged_frames["cobs"] == 1
    assert client.stats.retransmissions == 1 and _invokes_run(client) == 1


def test_a_damaged_request_is_reported_by_the_device_and_resent_at_once(device_proc):
    client, link = _client(device_proc)
    client.retry = RetryPolicy(first_wait=3.0)
    _prepared(client)
    link.requests = {len(link.writes) + 1: "flip"}
    started = time.monotonic()
    client.invoke()
    assert time.monotonic() - started < 1.0
    assert client.stats.device_bad_frames == 1 and client.stats.retransmissions == 1
    assert _invokes_run(client) == 1


def test_duplicated_replies_are_ignored_as_stale(device_proc):
    client, link = _client(device_proc)
    _prepared(client)
    link.replies = {link.frames_read + 1: "dup"}
    client.invoke()
    assert client.get_output(0) == b"\x02\x03\x04\x05"
    assert client.stats.stale_replies == 1 and client.stats.retransmissions == 0


def test_silence_ends_at_the_deadline_as_a_timeout_after_bounded_retransmissions(device_proc):
    client, link = _client(device_proc)
    _prepared(client)
    link.deaf = True
    client.retry = RetryPolicy(first_wait=0.05, longest_wait=0.1, retransmissions=5)
    started = time.monotonic()
    with pytest.raises(LinkTimeout) as info:
        client.invoke(timeout=1.5)
    spent = time.monotonic() - started
    assert 1.5 <= spent < 2.0  # the invoke timeout is the deadline, whatever the retries
    assert info.value.transmissions == 6 and "sent 6 times" in str(info.value)
    assert info.value.exit_code == 1


def test_damage_then_silence_is_a_hang_not_a_broken_link(device_proc):
    """The INVOKE is damaged once (the device answers BAD_FRAME), the
    retransmission arrives and the firmware hangs (stood in for by dropping
    everything the device sends from then on): the damage is old news, the
    silence after it is what counts."""
    client, link = _client(device_proc)
    _prepared(client)
    link.requests = {len(link.writes) + 1: "flip"}
    link.replies = {n: "drop" for n in range(link.frames_read + 2, link.frames_read + 100)}
    with pytest.raises(LinkTimeout):
        client.invoke(timeout=1.5)
    assert client.stats.device_bad_frames == 1 and client.stats.retransmissions >= 2


def test_silence_is_the_targets_to_explain_before_it_counts_as_a_hang(device_proc):
    client, link = _client(device_proc)
    _prepared(client)
    link.deaf = True
    asked = []

    def explain() -> str:
        asked.append(1)
        return "the emulator stopped (process 1 is stopped by a signal)"
    client.explain_silence = explain
    with pytest.raises(TargetStopped, match="the emulator stopped"):
        client.invoke(timeout=0.5)
    assert asked and TargetStopped("x").exit_code == 3


def test_a_link_that_delivers_only_damage_is_broken_before_the_deadline(device_proc):
    client, link = _client(device_proc)
    _prepared(client)
    link.replies = {n: "flip" for n in range(link.frames_read + 1, link.frames_read + 100)}
    client.retry = RetryPolicy(first_wait=0.05, retransmissions=6)
    started = time.monotonic()
    with pytest.raises(LinkBroken) as info:
        client.invoke(timeout=30)
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert message.startswith("link broken: no valid reply to INVOKE after 7 transmissions")
    assert "(6 retransmissions)" in message and info.value.exit_code == 3 and not info.value.closed
    assert _invokes_run_after(device_proc) == 1  # the retransmissions were answered from the kept reply


def _invokes_run_after(proc) -> int:
    fresh = DeviceClient(PipeStream(proc), default_timeout=5)
    return fresh.get_memory().arena_high_water


class _ClosedStream:
    timeout: float | None = 1.0
    in_waiting = 0

    def read(self, size: int = 1) -> bytes:
        raise serial.SerialException("socket disconnected")

    def write(self, data: bytes) -> int:
        return len(data)


def test_a_closed_stream_is_a_broken_link_unless_the_target_explains_it():
    client = DeviceClient(_ClosedStream(), default_timeout=2)
    with pytest.raises(LinkBroken, match="link broken: the link closed or failed: socket disconnected") as info:
        client.hello()
    assert info.value.closed
    client.explain_silence = lambda: "the emulator exited (QEMU, process 7, exit status 1)"
    with pytest.raises(TargetStopped, match="the emulator exited"):
        client.hello()


def test_a_long_invoke_is_not_taken_for_a_lost_one(device_proc):
    """The INVOKE reply comes 1.2 s late (a long invoke, stood in for by
    holding the device's frames back). The first time, the host re-sends
    while it runs: harmless, the device answers from its kept reply and runs
    it once. The invoke then sets how long the next one is waited for: no
    re-sending during the second long invoke."""
    client, link = _client(device_proc)
    _prepared(client)
    link.hold = {link.frames_read + 1: 1.2}
    started = time.monotonic()
    assert client.invoke(timeout=3).count == 1000
    assert 1.2 <= time.monotonic() - started < 2.0
    first = client.stats.retransmissions
    assert first > 0
    link.hold = {link.frames_read + 1: 1.2}
    started = time.monotonic()
    client.invoke(timeout=5)
    assert time.monotonic() - started >= 1.2
    assert client.stats.retransmissions == first
    assert _invokes_run(client) == 2
    assert client.stats.stale_replies >= first  # the replays, ignored


def test_a_whole_session_over_a_noisy_link_gives_the_clean_results(device_proc):
    """1e-3 bit errors, byte drops and duplicates both ways: the model
    arrives intact (CRC), every invoke runs exactly once, outputs match."""
    rng = random.Random(5)
    noise = (_Damage(1e-3, 1e-3, 1e-3, rng), _Damage(1e-3, 1e-3, 1e-3, rng))
    client, link = _client(device_proc, retry=FAST, noise=noise)
    client.hello()
    model = b"ECHO\xc7" + bytes(random.Random(1).randrange(256) for _ in range(6000))
    assert client.load_model(model).crc32 == zlib.crc32(model)
    for n in range(20):
        data = bytes((n + k) % 250 for k in range(200))
        client.set_input(0, data)
        client.invoke()
        assert client.get_output(0) == bytes(b + 1 for b in data)
    assert _invokes_run(client) == 20
    stats = client.stats
    assert stats.retransmissions > 0 and stats.damaged > 0
    assert stats.chunk_bytes and stats.chunk_bytes < 1024  # bulk chunks were made smaller
    assert noise[0].stats["bits_flipped"] > 0 and noise[1].stats["bytes_dropped"] > 0


# -- end to end: real firmware in real QEMU ------------------------------------------------

from harness.runner import Run, RunConfig, SilentReporter  # noqa: E402
from harness.link.urlhandler.protocol_unix import socket_address  # noqa: E402
from harness.targets.qemu import QemuTarget  # noqa: E402

VERDICT = ("index", "status", "max_abs_diff", "mismatches", "top1")


@pytest.fixture(scope="module")
def an386_firmware():
    """The runner firmware for mps2-an386, and one that hangs in its 2nd invoke."""
    if (missing := __import__("helpers").have_emulator_toolchain()) is not None:
        pytest.skip(f"needs {missing}")
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    platform = load_platform("mps2-an386")
    return {name: build_firmware(platform, defines).elf.path
            for name, defines in {"normal": {}, "hang": {"HIL_HANG_ON_INVOKE": "2"}}.items()}


class _Proxied:
    """Puts a NoisyProxy between the runner and QEMU's UART socket (the QEMU
    target's start() is wrapped; QEMU itself runs unchanged)."""

    def __init__(self, monkeypatch, **noise) -> None:
        self.proxy: NoisyProxy | None = None
        original = QemuTarget.start

        def start(target):
            url = original(target)  # unix://@name: QEMU's UART socket (harness/targets/qemu.py)
            self.proxy = NoisyProxy(socket_address(url), **noise)
            return self.proxy.start()

        monkeypatch.setattr(QemuTarget, "start", start)

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.stop()


class _OnVector(SilentReporter):
    def __init__(self, index: int, action) -> None:
        self.index, self.action = index, action
        self.stages: list[str] = []

    def stage(self, text: str) -> None:
        self.stages.append(text)

    def vector_done(self, result) -> None:
        if result.index == self.index:
            self.action()


def _run(tmp_path, elf, name, reporter=None, **options) -> tuple[dict, Run]:
    config = RunConfig(model=DEMO, platform="mps2-an386", vectors=options.pop("vectors", 4), seed=3, firmware=elf,
                       workdir=tmp_path / name, **options)
    run = Run(config, reporter)
    run.execute()
    document = json.loads((tmp_path / name / "result.json").read_text())
    assert not processes_in(tmp_path / name), "QEMU was left running"
    return document, run


def _verdicts(document: dict) -> list[tuple]:
    return [tuple(v.get(k) for k in VERDICT) + (v["count"]["value"],) for v in document["vectors"]]


@pytest.fixture(scope="module")
def clean_inline(an386_firmware, tmp_path_factory):
    document, _ = _run(tmp_path_factory.mktemp("clean"), an386_firmware["normal"], "run", force_inline=True)
    assert document["exit_code"] == 0 and document["summary"]["passed"] == 4
    assert document["link"]["retransmissions"] == 0 and document["link"]["damaged_total"] == 0
    return document


@requires_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("ber,drop,dup,seed", [(1e-4, 1e-4, 1e-4, 1), (1e-3, 1e-3, 1e-3, 2)])
def test_a_noisy_link_gives_the_verdicts_of_a_clean_one(tmp_path, monkeypatch, an386_firmware, clean_inline,
                                                       ber, drop, dup, seed):
    """Model and inputs inline through the UART (the board path), both
    directions damaged: the run completes with the clean run's per-vector
    outputs, statuses and counts, and the result says what recovery took."""
    proxied = _Proxied(monkeypatch, ber=ber, drop=drop, dup=dup, seed=seed)
    reporter = _OnVector(-1, None)
    try:
        document, _ = _run(tmp_path, an386_firmware["normal"], "noisy", reporter, force_inline=True)
    finally:
        proxied.stop()
    assert document["exit_code"] == 0, document["error"]
    assert _verdicts(document) == _verdicts(clean_inline)
    link = document["link"]
    assert proxied.proxy is not None
    assert sum(proxied.proxy.stats[way]["bits_flipped"] for way in ("to_device", "to_host")) > 0
    assert link["retransmissions"] > 0 and link["requests_retried"] > 0
    assert link["damaged_total"] + link["device_bad_frames"] > 0
    assert any(s.startswith("link: ") and "retransmissions" in s for s in reporter.stages)  # the console line


@requires_qemu
@pytest.mark.qemu
def test_a_link_cut_mid_run_is_link_broken_exit_3(tmp_path, monkeypatch, an386_firmware):
    proxied = _Proxied(monkeypatch, cut_after=700)  # HELLO, the model from a host file, a vector or two
    try:
        document, _ = _run(tmp_path, an386_firmware["normal"], "cut", vectors=10)
    finally:
        proxied.stop()
    assert document["exit_code"] == 3 and document["status"] == "error"
    message = document["error"]["message"]
    assert message.startswith("link broken: the link closed or failed"), message
    assert "internal error" not in message and "requests retried" in message
    assert all(v["status"] == "passed" for v in document["vectors"]) and document["summary"]["not_run"] > 0
    assert document["link"]["requests"] > 0


@requires_qemu
@pytest.mark.qemu
def test_a_link_that_only_delivers_garbage_is_link_broken_exit_3(tmp_path, monkeypatch, an386_firmware):
    proxied = _Proxied(monkeypatch, ber=0.05, seed=3)
    try:
        document, _ = _run(tmp_path, an386_firmware["normal"], "garbage", boot_timeout=20)
    finally:
        proxied.stop()
    assert document["exit_code"] == 3
    message = document["error"]["message"]
    assert message.startswith("link broken: no valid reply to HELLO after 25 transmissions"), message
    assert "only damaged frames" in message and document["link"]["damaged_total"] > 0


@requires_qemu
@pytest.mark.qemu
def test_a_stopped_emulator_is_infrastructure_not_a_firmware_hang(tmp_path, an386_firmware):
    """SIGSTOP on QEMU after vector 1: the next request gets no reply, QEMU
    is in state T and does not answer QMP: exit 3 naming the emulator."""
    holder: dict = {}

    def stop_qemu() -> None:
        holder["pid"] = holder["run"]._target.process.pid
        os.kill(holder["pid"], signal.SIGSTOP)

    reporter = _OnVector(1, stop_qemu)
    config = RunConfig(model=DEMO, platform="mps2-an386", vectors=4, seed=3, firmware=an386_firmware["normal"],
                       workdir=tmp_path / "stopped", invoke_timeout=3)
    holder["run"] = run = Run(config, reporter)
    result = run.execute()
    assert result.exit_code == 3, result.error
    assert result.error is not None
    message = result.error["message"]
    assert f"the emulator stopped (process {holder['pid']} is stopped by a signal)" in message
    assert [v.status for v in result.vectors] == ["passed", "passed"]  # no vector blamed on the firmware
    assert not processes_in(tmp_path / "stopped")


@requires_qemu
@pytest.mark.qemu
def test_a_firmware_that_hangs_is_still_a_firmware_timeout_on_a_noisy_link(tmp_path, monkeypatch, an386_firmware):
    """HIL_HANG_ON_INVOKE=2 behind a 1e-4 link: QEMU runs and answers QMP,
    the link recovers from its noise, the device is silent: exit 1."""
    proxied = _Proxied(monkeypatch, ber=1e-4, drop=1e-4, dup=1e-4, seed=4)
    try:
        document, _ = _run(tmp_path, an386_firmware["hang"], "hang", invoke_timeout=2)
    finally:
        proxied.stop()
    assert document["exit_code"] == 1
    assert [v["status"] for v in document["vectors"]] == ["passed", "timeout"]
    assert "invoke hung" in document["vectors"][1]["error"]


def test_qemu_health_from_process_state_and_qmp(tmp_path, an386_firmware):
    """The QEMU target's health(): running (with its instruction count),
    stopped by a signal, exited; the QMP socket falls back to /tmp when
    the run directory's path is too long for a unix socket."""
    from harness.platforms import load_platform

    deep = tmp_path / ("d" * 60) / ("e" * 60)
    target = QemuTarget(load_platform("mps2-an386"), an386_firmware["normal"], deep)
    url = target.start()
    assert target.process is not None and target.qmp_path is not None  # start() set both
    try:
        with serial.serial_for_url(url, timeout=0.2) as port:  # connecting starts the guest
            assert str(target.qmp_path).startswith("/tmp/hil-qmp-")
            first = target.health()
            assert first.running and first.clock is not None
            port.write(b"\x00\x00")  # idle, the guest sleeps and its clock stands still: bytes wake it
            time.sleep(0.2)
            later = target.health().clock
            assert later is not None and later > first.clock  # the virtual clock advances
            os.kill(target.process.pid, signal.SIGSTOP)
            stopped = target.health()
            assert stopped.state == "stopped" and "is stopped by a signal" in stopped.detail
            os.kill(target.process.pid, signal.SIGCONT)
            assert target.health().running
            target.process.kill()
            target.process.wait()
            assert target.health().state == "exited"
    finally:
        qmp_dir = target.qmp_path.parent
        target.stop()
    assert not qmp_dir.exists()


@requires_qemu
@pytest.mark.qemu
def test_a_board_behind_a_noisy_serial_port_gives_the_clean_verdicts(tmp_path):
    """The issue's set-up: `hil run --port socket://...` to a board (QEMU
    standing in, tests/boardsim.py) through a proxy with 1e-3 bit errors,
    byte drops and duplicates; model and inputs go inline, as on any board."""
    from boardsim import QemuBoard

    def run(name: str, url: str):
        out = tmp_path / f"{name}.json"
        proc = hil("run", "--model", DEMO, "--platform", platform, "--vectors", "3", "--seed", "2",
                   "--port", url, "--probe", "HILSIM0001", "--workdir", tmp_path / name, "--json", out,
                   cwd=tmp_path, timeout=300)
        return proc, json.loads(out.read_text())

    with QemuBoard(tmp_path / "board", board_id="HILSIM0001") as board:
        platform = board.platform_file(tmp_path / "qemu-board.toml")
        clean_proc, clean = run("clean", board.socket_url)
        host, port = board.socket_url[len("socket://"):].rsplit(":", 1)
        with NoisyProxy((host, int(port)), ber=1e-3, drop=1e-3, dup=1e-3, seed=5) as proxy:
            noisy_proc, noisy = run("noisy", proxy.url)
    assert clean_proc.returncode == 0, clean_proc.stdout + clean_proc.stderr
    assert noisy_proc.returncode == 0, noisy_proc.stdout + noisy_proc.stderr
    assert _verdicts(noisy) == _verdicts(clean)
    assert noisy["link"]["retransmissions"] > 0 and clean["link"]["retransmissions"] == 0
    assert "link: " in noisy_proc.stderr and "requests retried" in noisy_proc.stderr  # the console line


def test_renode_health_from_process_state_and_its_monitor(tmp_path, monkeypatch):
    """Renode is not installed here: its process is a stand-in (`sleep`)
    and its monitor tests/renode_fake.py's FakeMonitor, so this checks the
    classification, not Renode."""
    from harness.platforms import load_platform
    from harness.targets import renode
    from renode_fake import FakeMonitor

    stall, released = threading.Event(), threading.Event()

    def handle(monitor, line):
        if stall.is_set():
            released.wait(10)
        return "Renode, version 1.15.3.0 (fake)", False

    server = FakeMonitor(handle)
    monkeypatch.setattr(renode, "HEALTH_TIMEOUT", 0.5)
    target = renode.RenodeTarget(load_platform("renode-stm32f4-discovery"), tmp_path / "fw.elf", tmp_path)
    target.process = subprocess.Popen(["sleep", "60"])
    target.monitor = renode.RenodeMonitor.connect(server.port, timeout=5)
    try:
        assert target.health().running
        os.kill(target.process.pid, signal.SIGSTOP)
        time.sleep(0.1)
        assert "is stopped by a signal" in target.health().detail
        os.kill(target.process.pid, signal.SIGCONT)
        stall.set()
        stalled = target.health()
        assert stalled.state == "unresponsive" and "monitor did not answer within 0.5 s" in stalled.detail
        target.process.kill()
        target.process.wait()
        assert target.health().state == "exited"
    finally:
        target.process.kill()
        released.set()
        time.sleep(0.2)  # the stalled answer goes out before the connection closes
        target.monitor.close()
        server.close()


def test_board_health_is_its_port_open_and_present(tmp_path):
    """A pty stands in for a USB serial port; removing its link stands in
    for unplugging (there is no USB here)."""
    import pty

    from harness.platforms import load_platform
    from harness.targets.board import BoardSpec, BoardTarget

    controller, device = pty.openpty()
    by_id = tmp_path / "ttyBOARD"  # like /dev/serial/by-id/...
    by_id.symlink_to(os.ttyname(device))
    target = BoardTarget(load_platform("nrf52840dk"), None, tmp_path, board=BoardSpec(str(by_id)))
    try:
        assert target.health().state == "exited"  # not opened yet
        target.open_link()
        assert target.health().running
        by_id.unlink()
        gone = target.health()
        assert gone.state == "exited" and "has gone" in gone.detail
        target.stop()
        assert "is closed" in target.health().detail
    finally:
        target.stop()
        os.close(controller)
        os.close(device)


@requires_qemu
@pytest.mark.qemu
def test_a_port_that_cannot_be_connected_is_link_broken(tmp_path, monkeypatch, an386_firmware):
    """QEMU runs, but the URL the runner is given refuses connections (a
    closed port stands in for a serial server that went away)."""
    original = QemuTarget.start

    def start(target):
        original(target)
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"socket://127.0.0.1:{s.getsockname()[1]}"

    monkeypatch.setattr(QemuTarget, "start", start)
    document, _ = _run(tmp_path, an386_firmware["normal"], "refused")
    assert document["exit_code"] == 3
    assert document["error"]["message"].startswith("link broken: cannot connect to socket://127.0.0.1:")


@requires_qemu
@pytest.mark.qemu
def test_a_link_failure_sending_the_next_vector_ahead_ends_the_run_after_this_one_is_recorded(
        tmp_path, monkeypatch, an386_firmware):
    """Pipelined streaming sends vector i+1's INVOKE before vector i is
    checked. If that send fails, vector i's result is still recorded (it
    was read whole), the failure is vector i+1's: not run, exit 3, the
    link's message. The failing write is injected (a real socket cannot be
    made to fail on one given write); QEMU, the firmware and the run are
    real."""
    original = Run._send_invoke

    def send_invoke(run, i, *args, **kwargs):
        if i == 2 and kwargs.get("ahead"):
            assert run.client is not None
            raise LinkBroken("cannot write to the device: [Errno 32] Broken pipe", run.client.stats, closed=True)
        return original(run, i, *args, **kwargs)

    monkeypatch.setattr(Run, "_send_invoke", send_invoke)
    document, _ = _run(tmp_path, an386_firmware["normal"], "ahead-broken")
    assert document["exit_code"] == 3 and document["status"] == "error"
    assert document["error"]["message"].startswith("link broken: cannot write to the device"), document["error"]
    assert [(v["index"], v["status"]) for v in document["vectors"]] == [(0, "passed"), (1, "passed")]
    assert document["summary"]["not_run"] == 2
