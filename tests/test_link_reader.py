"""The client's direct reads of a link's descriptor (harness/link/receiver.py):
the bytes of a reply however they are split.

The client runs over a real pyserial socket:// port, as against QEMU's UART,
to a real TCP server in a thread that answers each request as a test script
says: its reply split at every byte, two frames in one write, a reply after
a delay. A socket, not QEMU: the splits must be exact and repeatable.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import serial

from harness.link.frames import Frame, FrameDecoder
from harness.link.protocol import REPLY, DeviceClient, LinkBroken, Msg, RetryPolicy
from harness.link.receiver import DescriptorReader, direct_descriptor

Deliver = Callable[[socket.socket, list[bytes]], None]


def _whole(conn: socket.socket, frames: list[bytes]) -> None:
    conn.sendall(b"".join(frames))


def _byte_by_byte(gap: float = 0.0) -> Deliver:
    def deliver(conn: socket.socket, frames: list[bytes]) -> None:
        for byte in b"".join(frames):
            conn.sendall(bytes((byte,)))
            if gap:
                time.sleep(gap)
    return deliver


def _after(delay: float) -> Deliver:
    def deliver(conn: socket.socket, frames: list[bytes]) -> None:
        time.sleep(delay)
        conn.sendall(b"".join(frames))
    return deliver


class FakeDevice:
    """A TCP server that answers each request frame with a reply carrying
    `payload(n)` (n: the request's number), delivered as `deliver(n)` says;
    `extra(n)` frames (a LOG, say) go out in the same write, before it."""

    def __init__(self, payload: Callable[[int], bytes], deliver: Callable[[int], Deliver] = lambda n: _whole,
                 extra: Callable[[int], list[Frame]] = lambda n: []) -> None:
        self.payload, self.deliver, self.extra = payload, deliver, extra
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.close_after: int | None = None  # close the connection instead of answering request n
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as QEMU's nodelay=on: one segment per send
        decoder, n = FrameDecoder(max_encoded=1 << 24), 0
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                for request in decoder.feed(data):
                    if n == self.close_after:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                    frames = [f.encode() for f in self.extra(n)]
                    frames.append(Frame(request.type | REPLY, request.seq, self.payload(n)).encode())
                    self.deliver(n)(conn, frames)
                    n += 1

    def client(self) -> DeviceClient:
        port = serial.serial_for_url(f"socket://127.0.0.1:{self.port}", timeout=0.2)
        return DeviceClient(port, default_timeout=5, retry=RetryPolicy(first_wait=2.0, longest_wait=2.0))

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def device_factory():
    made: list[tuple[FakeDevice, DeviceClient]] = []

    def make(*args, **kwargs) -> tuple[FakeDevice, DeviceClient]:
        device = FakeDevice(*args, **kwargs)
        client = device.client()
        made.append((device, client))
        return device, client
    yield make
    for device, client in made:
        assert isinstance(client.stream, serial.SerialBase)  # the socket:// port FakeDevice.client() opened
        client.stream.close()
        device.close()


def _payload(n: int) -> bytes:
    """A reply of about an INVOKE's size, zeros included (COBS has work to do), different each time."""
    return bytes((n + i) % 7 * 37 % 256 for i in range(140))


def test_the_client_reads_pyserials_socket_port_directly_and_nothing_that_filters_it():
    server = socket.create_server(("127.0.0.1", 0))
    try:
        port = serial.serial_for_url(f"socket://127.0.0.1:{server.getsockname()[1]}", timeout=0.2)
        assert direct_descriptor(port) == port.fileno()
        assert DeviceClient(port).reader is not None
        port.close()

        socket_port: Any = type(port)  # the class serial_for_url chose, known only at run time

        class Logged(socket_port):  # a subclass may filter or log what it reads: read through it
            pass
        assert direct_descriptor(Logged.__new__(Logged)) is None
        assert direct_descriptor(serial.serial_for_url("loop://")) is None
    finally:
        server.close()


def test_a_reply_split_at_every_byte_is_read_whole(device_factory):
    _, client = device_factory(_payload, lambda n: _byte_by_byte(0.0002 if n % 2 else 0.0))
    for n in range(6):
        assert client.request(Msg.INVOKE, b"\x2c") == _payload(n)
    assert client.stats.damaged == 0 and client.stats.retransmissions == 0


def test_two_frames_in_one_read_are_both_taken(device_factory):
    log = Frame(Msg.LOG, 0, b"booted").encode()
    _, client = device_factory(_payload, extra=lambda n: [Frame.decode(log[:-1])] if n == 1 else [])
    assert client.request(Msg.GET_MEMORY) == _payload(0)
    assert client.request(Msg.GET_MEMORY) == _payload(1)
    assert client.logs == ["booted"]
    assert client.stats.frames_received == 3


def test_a_reply_after_a_delay_is_waited_for(device_factory):
    _, client = device_factory(_payload, lambda n: _after(0.3))
    started = time.monotonic()
    assert client.request(Msg.INVOKE, b"\x2c") == _payload(0)
    assert time.monotonic() - started >= 0.3
    assert client.stats.retransmissions == 0


def test_the_stream_ending_is_a_broken_link_not_a_timeout(device_factory):
    device, client = device_factory(_payload)
    device.close_after = 1
    assert client.request(Msg.GET_MEMORY) == _payload(0)
    with pytest.raises(LinkBroken) as broken:
        client.request(Msg.GET_MEMORY)
    assert broken.value.closed


def test_the_reader_returns_nothing_at_its_timeout_and_what_there_is_after():
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        reader = DescriptorReader(left.fileno())
        started = time.monotonic()
        assert reader.read(0.05) == b""
        assert time.monotonic() - started >= 0.045
        right.sendall(b"ab")
        right.sendall(b"cd")
        time.sleep(0.01)
        assert reader.read(1.0) == b"abcd"
        assert reader.wakeups == 1


def test_the_descriptor_takes_what_it_can_and_says_how_much():
    """A full send buffer: the write returns what went (0 when none did), and
    the client sends the rest through the stream, which waits for room."""
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        reader = DescriptorReader(left.fileno())
        assert reader.write(b"abc") == 3
        assert right.recv(16) == b"abc"
        big = b"x" * (1 << 24)
        sent = reader.write(big)
        assert 0 < sent < len(big)
        assert reader.write(big) == 0


def test_a_request_larger_than_the_send_buffer_goes_out_whole(device_factory):
    _, client = device_factory(lambda n: b"ok")
    assert client.request(Msg.LOAD_MODEL, bytes(range(256)) * (1 << 14)) == b"ok"
