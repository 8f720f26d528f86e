"""The C API for users' firmware (firmware/api/hil.h), compiled for the host
with ASan/UBSan and driven by the real host client: a user's transport,
board hooks and hand-written engine (hil_simple_ops) over a compiled-in
model (tests/fixtures/capi_host/capi_host.c). The same API runs in QEMU in
tests/test_build_cmake.py."""

from __future__ import annotations

import shutil
import subprocess
import zlib

import pytest

from harness.link.protocol import CounterSource, DeviceClient, DeviceError, ErrorCode

from helpers import FIRMWARE, REPO, compile_host
from test_protocol_c import PipeStream

FIXTURE = REPO / "tests" / "fixtures" / "capi_host"
MODEL = b"HILTEST-MODEL-v1: int8 x -> 2x+1, saturating\x00"  # the C string with its terminator


@pytest.fixture(scope="module")
def capi_exe(tmp_path_factory):
    proto = FIRMWARE / "protocol"
    sources = [FIXTURE / "capi_host.c", FIRMWARE / "api" / "hil_serve.c", proto / "proto.c", proto / "cobs.c",
               proto / "crc32.c"]
    out = tmp_path_factory.mktemp("capi")
    exe = compile_host(out, "capi_host", sources)
    return exe


@pytest.fixture
def device(capi_exe):
    proc = subprocess.Popen([str(capi_exe), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client = DeviceClient(PipeStream(proc), default_timeout=5)
    yield client
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=5) == 0, "the firmware side crashed or a sanitizer fired"


def test_hello_reports_the_configured_identity_and_hooks(device):
    hello = device.hello()
    assert (hello.build_id, hello.engine, hello.platform) == ("c0ffee", "capi-test", "host")
    assert hello.can_read_host_files and hello.has_counter
    assert hello.model_capacity == 256
    assert device.logs == ["capi_host ready"]  # hil_log before serving


def test_vectors_through_a_hand_written_engine(device, tmp_path):
    device.hello()
    loaded = device.load_model(MODEL)
    assert (loaded.n_inputs, loaded.n_outputs, loaded.arena_used) == (2, 2, 77)
    assert loaded.crc32 == zlib.crc32(MODEL)
    a = bytes(range(0, 120, 10))  # 12 int8 values
    device.set_input(0, a)
    device.set_input(1, bytes([1, 2, 3]))
    result = device.invoke()
    assert (result.counter_source, result.count) == (CounterSource.SYSTICK, 250)
    y = [max(-128, min(127, 2 * (v - 256 if v > 127 else v) + 1)) for v in a]
    assert device.get_output(0) == bytes(v & 0xFF for v in y)
    assert int.from_bytes(device.get_output(1), "little", signed=True) == sum(y) + 6
    # the same input from a host file (the board's read_file hook)
    batch = tmp_path / "batch.bin"
    batch.write_bytes(b"\0" * 5 + bytes([7, 8, 9]))
    device.set_input(1, file=batch, file_offset=5, size=3)
    device.invoke()
    assert int.from_bytes(device.get_output(1), "little", signed=True) == sum(y) + 24
    info = device.tensor_info(True, 1)
    assert (info.shape, info.bytes, info.scale, info.zero_point) == ((1, 1), 4, 0.25, -1)
    memory = device.get_memory()
    assert (memory.stack_size, memory.stack_high_water) == (4096, 1234)


def test_compiled_in_model_refuses_another_with_sizes_and_crcs(device):
    device.hello()
    with pytest.raises(DeviceError) as refused:
        device.load_model(b"some other model")
    assert refused.value.code == ErrorCode.MODEL_INVALID
    message = refused.value.message
    assert f"compiled-in model ({len(MODEL)} B, crc {zlib.crc32(MODEL):08x})" in message
    assert f"not the one sent (16 B, crc {zlib.crc32(b'some other model'):08x})" in message


def test_engine_errors_reset_and_missing_profile(device):
    device.hello()
    device.load_model(MODEL)
    device.set_input(0, bytes(12))
    device.set_input(1, bytes([99, 0, 0]))
    with pytest.raises(DeviceError) as failed:
        device.invoke()
    assert (failed.value.code, failed.value.detail, failed.value.op_index) == (ErrorCode.INVOKE_FAILED, 99, 1)
    device.reset()
    assert int.from_bytes(device.get_output(1), "little", signed=True) == -1  # the engine's reset ran
    assert device.get_profile() == []  # hil_simple_ops does not profile: NOT_SUPPORTED reads as no entries


def test_init_refuses_bad_arguments(capi_exe):
    out = subprocess.run([str(capi_exe), "statuses"], capture_output=True, text=True, timeout=10, check=True)
    assert out.stdout.split() == ["0", "-1", "-2", "-3", "-4", "-3", "[]"]


@pytest.mark.skipif(not shutil.which("g++"), reason="needs g++")
def test_headers_compile_as_cplusplus(tmp_path):
    """hil.h and hil_builtin.h from C++ (a TFLM application): extern "C" linkage."""
    src = tmp_path / "use.cc"
    src.write_text('#include "hil.h"\n#include "hil_builtin.h"\n'
                   "int main() { hil_ops ops; hil_simple_engine e = {}; hil_simple_ops(&ops, &e);"
                   " return ops.load == nullptr; }\n")
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                    f"-I{FIRMWARE / 'api'}", str(src)], check=True)


def test_a_retransmitted_request_is_answered_from_the_kept_reply(capi_exe):
    """The C API serves the same server (firmware/protocol/proto.c): a
    repeated final LOAD_MODEL chunk (same seq and CRC) gets the same reply
    again instead of running as a chunk past the end of the transfer."""
    import struct

    from harness.link.frames import Frame, FrameDecoder
    from harness.link.protocol import Msg

    half = len(MODEL) // 2
    first = Frame(Msg.LOAD_MODEL, 1, struct.pack("<BII", 0, len(MODEL), 0) + MODEL[:half])
    last = Frame(Msg.LOAD_MODEL, 2, struct.pack("<BII", 0, len(MODEL), half) + MODEL[half:])
    again = Frame(Msg.LOAD_MODEL, 3, struct.pack("<BII", 0, len(MODEL), half) + MODEL[half:])
    proc = subprocess.run([str(capi_exe), "serve"], input=b"".join(f.encode() for f in (first, last, last, again)),
                          capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    replies = [f for f in FrameDecoder().feed(proc.stdout) if f.type != Msg.LOG]
    assert [f.seq for f in replies] == [1, 2, 2, 3]
    assert replies[1] == replies[2] and replies[1].type == Msg.LOAD_MODEL | 0x80
    assert replies[3].type == Msg.ERROR and replies[3].payload[0] == ErrorCode.BAD_SEQUENCE
