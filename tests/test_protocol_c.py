"""The device side of the protocol (firmware/protocol/*.c), compiled for the
host with ASan/UBSan and driven by the real host client over pipes.

The engine behind it is a stand-in (firmware/tests/proto_stdio.c echoes
input + 1): these tests are about the protocol, not inference; the real
engine runs in tests/test_engine_host.py and the QEMU tests.
"""

from __future__ import annotations

import fcntl
import os
import random
import select
import struct
import subprocess
import termios
from typing import IO, cast

import pytest

from harness.link.frames import Frame, FrameDecoder
from harness.link.protocol import DeviceClient, DeviceError, ErrorCode, Msg


class PipeStream:
    """pyserial-like stream over a child process's stdin/stdout."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.timeout: float | None = 1.0

    def pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        """The child's stdin and stdout (started with both piped)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        return self.proc.stdin, self.proc.stdout

    @property
    def in_waiting(self) -> int:
        buf = bytearray(4)
        fcntl.ioctl(self.pipes()[1].fileno(), termios.FIONREAD, buf)
        return struct.unpack("i", buf)[0]

    def read(self, size: int = 1) -> bytes:
        stdout = self.pipes()[1]
        ready, _, _ = select.select([stdout], [], [], self.timeout)
        return os.read(stdout.fileno(), size) if ready else b""

    def write(self, data: bytes) -> int:
        stdin = self.pipes()[0]
        stdin.write(data)
        stdin.flush()
        return len(data)


@pytest.fixture
def device(device_exe):
    proc = subprocess.Popen([str(device_exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client = DeviceClient(PipeStream(proc), default_timeout=5)
    yield client
    assert proc.stdin is not None
    proc.stdin.close()
    assert proc.wait(timeout=5) == 0, "the device side crashed or a sanitizer fired"


def test_hello_reports_version_sizes_and_identity(device):
    hello = device.hello()
    assert hello.protocol_version == 1
    assert hello.max_payload == 1024
    assert hello.can_read_host_files and hello.has_counter
    assert (hello.build_id, hello.engine, hello.platform) == ("0123abcd", "echo", "host")
    assert hello.model_capacity == 64 * 1024


def test_inline_model_in_many_chunks_and_crc(device):
    import zlib

    device.hello()
    model = b"ECHO\xff" + bytes(random.Random(1).randrange(256) for _ in range(5000))
    loaded = device.load_model(model)
    assert loaded.crc32 == zlib.crc32(model)
    assert (loaded.n_inputs, loaded.n_outputs, loaded.arena_used) == (1, 1, 512)


def test_vector_round_trip_inline_and_from_host_file(device, tmp_path):
    device.hello()
    device.load_model(b"ECHO\x09")
    device.set_input(0, bytes(range(10)))
    result = device.invoke()
    assert result.count == 1000
    assert device.get_output(0) == bytes(range(1, 11))

    batch = tmp_path / "inputs.bin"
    batch.write_bytes(b"x" * 7 + bytes(range(100, 110)))
    device.set_input(0, file=batch, file_offset=7, size=10)
    device.invoke()
    assert device.get_output(0) == bytes(range(101, 111))
    info = device.tensor_info(False, 0)
    assert (info.shape, info.bytes, info.scale, info.zero_point) == ((1, 10), 10, 0.5, -3)


def test_output_larger_than_one_frame_is_reassembled(device):
    device.hello()
    device.max_payload = 64  # force several GET_OUTPUT round trips
    device.load_model(b"ECHO\xff")
    data = bytes(random.Random(2).randrange(256) for _ in range(256))
    device.set_input(0, data)
    device.invoke()
    assert device.get_output(0) == bytes((b + 1) & 0xFF for b in data)


@pytest.mark.parametrize("request_, code", [
    ((Msg.INVOKE, b""), ErrorCode.NO_MODEL),
    ((0x55, b""), ErrorCode.UNKNOWN_TYPE),
    ((Msg.GET_OUTPUT, b"\x00"), ErrorCode.BAD_PAYLOAD),
    ((Msg.LOAD_MODEL, struct.pack("<BII", 0, 10**7, 0) + b"x"), ErrorCode.MODEL_TOO_LARGE),
    ((Msg.LOAD_MODEL, struct.pack("<BII", 0, 5, 0) + b"NOPE!"), ErrorCode.MODEL_INVALID),
    ((Msg.LOAD_MODEL, struct.pack("<BII", 0, 50, 10) + b"late"), ErrorCode.BAD_SEQUENCE),
    ((Msg.LOAD_MODEL, struct.pack("<BII", 1, 5, 0) + b"/nonexistent/model.tflite"), ErrorCode.IO),
])
def test_errors_carry_codes(device, request_, code):
    with pytest.raises(DeviceError) as info:
        device.request(*request_)
    assert info.value.code == code
    assert info.value.message


def test_input_errors(device):
    device.load_model(b"ECHO\x03")
    with pytest.raises(DeviceError) as wrong_size:
        device.set_input(0, b"\x01\x02")
    assert wrong_size.value.code == ErrorCode.BAD_SEQUENCE
    with pytest.raises(DeviceError) as wrong_index:
        device.set_input(3, b"\x01\x02\x03\x04")
    assert wrong_index.value.code == ErrorCode.BAD_INDEX


def test_corrupt_frame_is_answered_with_bad_frame_and_link_recovers(device):
    wire = bytearray(Frame(Msg.HELLO, 5).encode())
    wire[2] ^= 0x01
    device.stream.write(bytes(wire))
    decoder = FrameDecoder()
    frames: list[Frame] = []
    while not frames:
        frames = decoder.feed(device.stream.read(256))
    assert frames[0].type == Msg.ERROR and frames[0].payload[0] == ErrorCode.BAD_FRAME
    assert device.hello().protocol_version == 1


def test_random_bytes_never_crash_the_device(device_exe):
    """Noise on the line (boot garbage, a wrong baud rate): the device must
    survive it under ASan/UBSan and still answer afterwards."""
    rng = random.Random(3)
    noise = bytes(rng.randrange(256) for _ in range(200_000))
    frames = b"".join(Frame(rng.randrange(1, 8), rng.randrange(256),
                            bytes(rng.randrange(256) for _ in range(rng.randrange(0, 1100)))).encode()
                      for _ in range(300))
    proc = subprocess.run([str(device_exe)], input=noise + b"\x00" + frames + Frame(1, 9).encode(),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    replies = FrameDecoder().feed(proc.stdout)
    assert replies[-1].type == Msg.HELLO | 0x80 and replies[-1].seq == 9


# ---- a device that trusts no frame (issue 11) ---------------------------------

def _talk(device_exe, *frames: Frame) -> list[Frame]:
    """Send whole frames to a fresh device process in one go; its replies."""
    proc = subprocess.run([str(device_exe)], input=b"".join(f.encode() for f in frames),
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, "the device side crashed or a sanitizer fired:\n" + proc.stderr.decode()[-3000:]
    return FrameDecoder().feed(proc.stdout)


def _load_chunk(seq: int, total: int, offset: int, data: bytes) -> Frame:
    return Frame(Msg.LOAD_MODEL, seq, struct.pack("<BII", 0, total, offset) + data)


def test_continuation_with_a_smaller_total_is_refused_not_written_past_the_buffer(device_exe):
    """A LOAD_MODEL continuation whose `total` is below what was already
    received made `total - offset` wrap, and memcpy wrote past the 64 KB
    model buffer (ASan). `total` is latched by the first chunk."""
    chunks = [_load_chunk(1 + k, 65536, 1000 * k, b"\x11" * 1000) for k in range(65)]
    shrunk = _load_chunk(66, 100, 65000, b"\x22" * 1000)
    replies = _talk(device_exe, *chunks, shrunk, Frame(Msg.HELLO, 67))
    by_seq = {f.seq: f for f in replies}
    assert by_seq[66].type == Msg.ERROR and by_seq[66].payload[0] == ErrorCode.BAD_SEQUENCE
    assert b"total" in by_seq[66].payload[7:]
    assert by_seq[67].type == Msg.HELLO | 0x80


def test_a_continuation_must_carry_the_first_chunks_total(device_exe):
    """A larger total on a continuation is refused too, and the transfer
    must restart at offset 0."""
    replies = _talk(device_exe, _load_chunk(1, 3000, 0, b"E" * 1000), _load_chunk(2, 4000, 1000, b"x" * 1000),
                    _load_chunk(3, 3000, 1000, b"x" * 1000))
    by_seq = {f.seq: f for f in replies}
    assert by_seq[1].type == Msg.LOAD_MODEL | 0x80
    assert by_seq[2].type == Msg.ERROR and by_seq[2].payload[0] == ErrorCode.BAD_SEQUENCE
    assert by_seq[3].type == Msg.ERROR and by_seq[3].payload[0] == ErrorCode.BAD_SEQUENCE


def _invokes_run(replies: list[Frame], seq: int) -> int:
    """GET_MEMORY's arena high-water: the stand-in engine counts its invokes there."""
    reply = next(f for f in replies if f.seq == seq)
    assert reply.type == Msg.GET_MEMORY | 0x80
    return struct.unpack_from("<I", reply.payload, 8)[0]


def test_a_repeated_invoke_is_answered_from_the_last_reply_not_run_twice(device_exe):
    """Recovery contract: a retransmitted request (same type, seq and CRC)
    gets the reply already sent, byte for byte, and does not run again; a
    new seq runs."""
    invoke = Frame(Msg.INVOKE, 7, b"\x00")
    replies = _talk(device_exe, _load_chunk(1, 5, 0, b"ECHO\x03"),
                    Frame(Msg.SET_INPUT, 2, b"\x00" + struct.pack("<BII", 0, 4, 0) + b"\x01\x02\x03\x04"),
                    invoke, invoke, Frame(Msg.GET_MEMORY, 8),
                    Frame(Msg.INVOKE, 9, b"\x00"), Frame(Msg.GET_MEMORY, 10))
    invoke_replies = [f for f in replies if f.seq == 7]
    assert len(invoke_replies) == 2 and invoke_replies[0] == invoke_replies[1]
    assert invoke_replies[0].type == Msg.INVOKE | 0x80
    assert _invokes_run(replies, 8) == 1
    assert _invokes_run(replies, 10) == 2


def test_a_repeated_input_chunk_is_not_appended_twice(device_exe):
    data = bytes(range(1, 201))
    chunk = lambda seq, offset: Frame(  # noqa: E731
        Msg.SET_INPUT, seq, b"\x00" + struct.pack("<BII", 0, 200, offset) + data[offset:offset + 100])
    replies = _talk(device_exe, _load_chunk(1, 5, 0, b"ECHO\xc7"), chunk(2, 0), chunk(2, 0),
                    chunk(3, 100), chunk(3, 100), Frame(Msg.INVOKE, 4, b"\x00"),
                    Frame(Msg.GET_OUTPUT, 5, struct.pack("<BIH", 0, 0, 512)),
                    chunk(6, 100))  # the same chunk with a new seq runs: out of order now
    by_seq: dict[int, list[Frame]] = {}
    for f in replies:
        by_seq.setdefault(f.seq, []).append(f)
    assert [f.type for f in by_seq[2]] == [Msg.SET_INPUT | 0x80] * 2
    assert [f.type for f in by_seq[3]] == [Msg.SET_INPUT | 0x80] * 2
    assert by_seq[4][0].type == Msg.INVOKE | 0x80
    assert by_seq[5][0].payload[8:] == bytes(b + 1 for b in data)
    assert by_seq[6][0].type == Msg.ERROR and by_seq[6][0].payload[0] == ErrorCode.BAD_SEQUENCE


def test_noise_between_a_request_and_its_retransmission_keeps_the_reply(device_exe):
    """BAD_FRAME answers to noise are built apart from the kept reply, so a
    retransmission after a corrupted frame is still answered from it."""
    invoke = Frame(Msg.INVOKE, 7, b"\x00")
    corrupt = bytearray(Frame(Msg.INVOKE, 8, b"\x00").encode())
    corrupt[3] ^= 0x40
    proc = subprocess.run([str(device_exe)], input=b"".join([
        _load_chunk(1, 5, 0, b"ECHO\x00").encode(), invoke.encode(), bytes(corrupt), b"\x13\x37\x00",
        invoke.encode(), Frame(Msg.GET_MEMORY, 9).encode()]), capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    replies = FrameDecoder().feed(proc.stdout)
    errors = [f for f in replies if f.type == Msg.ERROR]
    assert errors and all(f.seq == 0 and f.payload[0] == ErrorCode.BAD_FRAME for f in errors)
    assert len([f for f in replies if f.seq == 7]) == 2
    assert _invokes_run(replies, 9) == 1


@pytest.mark.parametrize("length", [119, 500, 1017])
def test_a_long_error_message_arrives_whole(device_exe, length):
    """Error text was cut at 119 characters; it now fills what one ERROR
    frame carries (max_payload 1024 less the 7-byte header)."""
    replies = _talk(device_exe, _load_chunk(1, 6, 0, b"LONG" + struct.pack("<H", length)))
    error = replies[0]
    assert error.type == Msg.ERROR and error.payload[0] == ErrorCode.MODEL_INVALID
    text = error.payload[7:].decode()
    assert len(text) == length
    assert text == "".join(chr(ord("a") + i % 26) for i in range(length))


def test_a_message_longer_than_a_frame_is_cut_at_the_frame(device_exe):
    replies = _talk(device_exe, _load_chunk(1, 6, 0, b"LONG" + struct.pack("<H", 5000)))
    assert len(replies[0].payload) == 1024


def test_one_round_trip_per_vector_invoke_reads_inputs_and_replies_with_outputs(device, tmp_path):
    """INVOKE with INPUTS, OUTPUTS and PROFILE (docs/protocol.md): the device
    reads its inputs from the batch file, and the reply carries the count,
    the outputs that fit one frame, and the profile (the echo engine has
    none: 0xFFFF); outputs_of and profile_of fetch what a reply lacks."""
    hello = device.hello()
    assert hello.one_trip_invoke
    device.load_model(b"ECHO\x09")
    batch = tmp_path / "inputs.bin"
    batch.write_bytes(b"x" * 7 + bytes(range(100, 110)) + bytes(range(50, 60)))
    for offset, first in ((7, 101), (17, 51)):
        result = device.invoke(inputs=(batch, [offset]), outputs=True, profile=True)
        assert result.count == 1000 and result.outputs == (bytes(range(first, first + 10)),)
        assert result.profile_total == 0xFFFF and device.profile_of(result) == []
        assert device.outputs_of(result, 1) == [bytes(range(first, first + 10))]
    plain = device.invoke()  # no flags: the count only, as before
    assert plain.outputs is None and plain.profile_total is None
    assert device.outputs_of(plain, 1) == [bytes(range(51, 61))]
    device.load_model(b"ECHO\xff")  # 256 bytes: whole in the reply (the device's frame holds 1024)
    device.set_input(0, bytes(256))
    assert device.invoke(outputs=True).outputs == (bytes([1]) * 256,)
    for bad in (struct.pack("<BBI", 0x10, 1, 0), struct.pack("<BB", 0x10, 5) + b"inputs.bin"):
        with pytest.raises(DeviceError) as refused:
            device.request(Msg.INVOKE, bad)
        assert refused.value.code == ErrorCode.BAD_PAYLOAD
    with pytest.raises(DeviceError) as refused:
        device.request(Msg.INVOKE, struct.pack("<BBI", 0x10, 1, 10**6) + os.fsencode(batch))
    assert refused.value.code == ErrorCode.IO


def test_inputs_in_invoke_only_where_hello_offers_it(device, tmp_path):
    device.hello()
    device.one_trip_invoke = False  # an older firmware: INVOKE would ignore the flag and run stale inputs
    with pytest.raises(ValueError, match="cannot read its inputs"):
        device.invoke(inputs=(tmp_path / "inputs.bin", [0]))


@pytest.mark.parametrize("tail", [
    b"\x01" + struct.pack("<I", 10) + b"abc",            # an output longer than the reply
    b"\x01\x05\x00",                                      # an output's size cut short
    b"\x00" + struct.pack("<HH", 3, 2) + bytes(8),        # two profile entries, one sent
], ids=["output-past-end", "output-size-cut", "profile-past-end"])
def test_an_invoke_reply_that_runs_past_its_end_is_a_device_error_not_short_data(tail, monkeypatch):
    """The host never trusts a reply: outputs or profile entries that run
    past the reply's end are BAD_PAYLOAD, not a short output compared as the
    device's nor a struct.error; nor are more outputs than the model has."""
    # no process behind the stream: the replies come from the stubbed request, so it is never read
    client = DeviceClient(PipeStream(cast(subprocess.Popen, None)), default_timeout=1)
    monkeypatch.setattr(client, "request", lambda *args, **kwargs: struct.pack("<BQ", 1, 7) + tail)
    with pytest.raises(DeviceError) as bad:
        client.invoke(outputs=True, profile=True)
    assert bad.value.code == ErrorCode.BAD_PAYLOAD
    monkeypatch.setattr(client, "request", lambda *args, **kwargs: b"\x01")
    with pytest.raises(DeviceError):
        client.invoke()
    monkeypatch.setattr(client, "request",
                        lambda *args, **kwargs: struct.pack("<BQB", 1, 7, 2) + 2 * (struct.pack("<I", 1) + b"y"))
    with pytest.raises(DeviceError, match="2 outputs for a model with 1"):
        client.outputs_of(client.invoke(outputs=True), 1)


def test_an_invoke_that_reads_an_input_ends_that_inputs_inline_transfer(device, tmp_path):
    """INVOKE INPUTS replaces the input whole, as SET_INPUT's file source
    does: an inline transfer begun before it cannot be continued after it
    (the continuation would patch the file's bytes with the old vector's)."""
    device.hello()
    device.load_model(b"ECHO\x09")
    batch = tmp_path / "inputs.bin"
    batch.write_bytes(bytes(range(10)))
    device.request(Msg.SET_INPUT, bytes([0]) + struct.pack("<BII", 0, 10, 0) + b"\xaa" * 5)
    device.invoke(inputs=(batch, [0]), outputs=True)
    with pytest.raises(DeviceError) as refused:
        device.request(Msg.SET_INPUT, bytes([0]) + struct.pack("<BII", 0, 10, 5) + b"\xbb" * 5)
    assert refused.value.code == ErrorCode.BAD_SEQUENCE


def test_invoke_next_steps_through_the_batch_with_a_one_byte_request(device, tmp_path):
    """The batch cursor (HELLO flag bit 4, docs/protocol.md INVOKE NEXT):
    INPUTS|NEXT names path, offsets and stride once; after it, each vector's
    request is the flags byte alone and the device reads the next vector.
    The client sends NEXT only while the offsets it is asked for are the
    cursor's plus the stride, and names everything again otherwise."""
    hello = device.hello()
    assert hello.batch_cursor
    device.load_model(b"ECHO\x03")
    batch = tmp_path / "inputs.bin"
    batch.write_bytes(bytes(range(3)) + bytes(range(40)))
    sent: list[bytes] = []
    send = device.send_request

    def recording(msg, payload=b"", **kw):
        sent.append(payload)
        return send(msg, payload, **kw)
    device.send_request = recording
    for i in range(5):
        result = device.invoke(inputs=(batch, [3 + 4 * i]), outputs=True, stride=4)
        assert result.outputs == (bytes(range(4 * i + 1, 4 * i + 5)),)
    assert sent[0][0] == 0x34 and struct.unpack_from("<BII", sent[0], 1) == (1, 3, 4)
    assert sent[1:] == [b"\x24"] * 4
    # a vector out of order names everything again (and restarts the cursor there)
    assert device.invoke(inputs=(batch, [3]), outputs=True, stride=4).outputs == (bytes(range(1, 5)),)
    assert sent[-1][0] == 0x34
    # a RESET, a LOAD_MODEL or a failed invoke forgets the cursor on both sides
    device.reset()
    assert device.invoke(inputs=(batch, [7]), outputs=True, stride=4).outputs == (bytes(range(5, 9)),)
    assert sent[-1][0] == 0x34


def test_invoke_next_is_bounds_checked_on_the_device(device, tmp_path):
    """NEXT before any batch, after a RESET or LOAD_MODEL: BAD_SEQUENCE; a
    cursor stepping past 4 GiB: LIMIT (and the cursor is gone); stepping
    past the file's end: IO (the cursor still moves on, so the next NEXT
    names the vector after); a malformed INPUTS|NEXT: BAD_PAYLOAD."""
    device.hello()
    device.load_model(b"ECHO\x03")
    batch = tmp_path / "inputs.bin"
    batch.write_bytes(bytes(range(12)))
    path = os.fsencode(batch)

    def refused(payload: bytes) -> int:
        with pytest.raises(DeviceError) as error:
            device.request(Msg.INVOKE, payload)
        return error.value.code

    assert refused(b"\x24") == ErrorCode.BAD_SEQUENCE
    assert refused(struct.pack("<BBII", 0x34, 1, 0, 4)) == ErrorCode.BAD_PAYLOAD      # no path
    assert refused(struct.pack("<BBII", 0x34, 9, 0, 4) + path) == ErrorCode.BAD_PAYLOAD  # more inputs than the model
    assert refused(b"\x24") == ErrorCode.BAD_SEQUENCE  # a malformed request leaves no cursor
    device.request(Msg.INVOKE, struct.pack("<BBII", 0x34, 1, 4, 4) + path)
    assert device.request(Msg.INVOKE, b"\x24")[:1] == b"\x01"  # offset 8: the file's last vector
    assert refused(b"\x24") == ErrorCode.IO                     # offset 12: past the end
    assert refused(b"\x24") == ErrorCode.IO                     # offset 16: the cursor moved on
    device.request(Msg.INVOKE, struct.pack("<BBII", 0x34, 1, 0, 0xFFFFFFF0) + path)
    assert refused(b"\x24") == ErrorCode.IO     # 0xFFFFFFF0: past the end of the file
    assert refused(b"\x24") == ErrorCode.LIMIT  # would pass 4 GiB
    assert refused(b"\x24") == ErrorCode.BAD_SEQUENCE
    device.request(Msg.INVOKE, struct.pack("<BBII", 0x34, 1, 0, 4) + path)
    device.request(Msg.RESET, b"\x00")
    assert refused(b"\x24") == ErrorCode.BAD_SEQUENCE
    device.request(Msg.INVOKE, struct.pack("<BBII", 0x34, 1, 0, 4) + path)
    device.load_model(b"ECHO\x03")
    assert refused(b"\x24") == ErrorCode.BAD_SEQUENCE


def test_a_firmware_without_the_batch_cursor_gets_the_full_request(device, tmp_path):
    """Negotiated by HELLO: a firmware whose HELLO lacks bit 4 (the one
    before the cursor) is always sent INPUTS with path and offsets, as before."""
    device.hello()
    device.batch_cursor = False
    device.load_model(b"ECHO\x03")
    batch = tmp_path / "inputs.bin"
    batch.write_bytes(bytes(range(12)))
    sent: list[bytes] = []
    send = device.send_request

    def recording(msg, payload=b"", **kw):
        sent.append(payload)
        return send(msg, payload, **kw)
    device.send_request = recording
    for i in range(3):
        assert device.invoke(inputs=(batch, [4 * i]), outputs=True, stride=4).outputs == (bytes(range(4 * i + 1, 4 * i + 5)),)
    assert [p[0] for p in sent] == [0x14] * 3
    assert all(p.endswith(os.fsencode(batch)) for p in sent)
