"""Waiting for a link's bytes on its file descriptor, with one poll and one
read per wake-up.

pyserial's read loop takes a select, a recv and two clock reads for every
chunk, and the client asked a select and an ioctl before it to size the read:
on a QEMU UART, whose reply reaches the socket a few bytes at a time, that
host work per vector is what two jobs on two cores contend for (issue 14).
Where a stream's descriptor holds exactly the bytes its read() returns
(pyserial's socket:// port and its POSIX serial port, not wrappers that
filter or log what they read), `DescriptorReader` reads it directly.

Waking less often once a reply has started was tried and dropped. Sleeping
through the rest of a frame for as long as the last one took to stream in
cut the wake-ups per reply from about 20 to 3-5 on a loaded host but not
the CPU (each wake-up here is one poll and one read), and under load its
sleeps overshot: the device waited. SO_RCVLOWAT (wake when the whole reply
is in) is worse on QEMU: its UART writes each byte to the socket on its
own (nodelay=on), and a reply left unread fills the receive buffer's
accounting, closing the window until the kernel's persist timer fires
(tens of milliseconds).
"""

from __future__ import annotations

import os
import select

import serial
from serial.urlhandler import protocol_socket

from .urlhandler import protocol_unix

#: pyserial's own ports (and hil's unix://) whose descriptor is the stream itself (exact types: a subclass
#: may filter what it reads)
_DIRECT = (protocol_socket.Serial, protocol_unix.Serial, serial.Serial)

READ_SIZE = 1 << 16


class LinkEnded(OSError):
    """The descriptor reported the end of the stream (the peer closed it)."""


def direct_descriptor(stream: object) -> int | None:
    """The descriptor of `stream` when it is one of pyserial's ports whose
    descriptor holds exactly what its read() returns; None otherwise."""
    fileno = getattr(stream, "fileno", None)
    if type(stream) not in _DIRECT or fileno is None:
        return None
    try:
        return int(fileno())
    except (OSError, ValueError, TypeError, serial.SerialException):
        return None


class DescriptorReader:
    """Reads (and writes) a non-blocking descriptor: `read(timeout)` returns the bytes
    there are once any arrive, b"" at the timeout; raises LinkEnded at the
    end of the stream, OSError when it fails."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN | select.POLLPRI)
        self.wakeups = 0  # polls that returned, for tests and benchmarks

    def write(self, data: bytes) -> int:
        """Write what the descriptor takes now; the bytes written (the caller
        writes the rest through the stream, which waits for room)."""
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            return 0

    def read(self, timeout: float) -> bytes:
        events = self._poll.poll(max(0, int(timeout * 1000 + 0.999)))  # ms, rounded up: never a busy loop
        if not events:
            return b""
        self.wakeups += 1
        try:
            data = os.read(self.fd, READ_SIZE)
        except BlockingIOError:
            return b""
        if not data:
            raise LinkEnded("the stream ended")
        return data
