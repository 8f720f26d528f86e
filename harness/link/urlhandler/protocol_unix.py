"""`unix:///path/to/socket` and `unix://@name` (Linux's abstract namespace:
no file to clean up) as pyserial ports.

QEMU's UART model writes every byte to its chardev on its own. Over TCP
loopback each of those writes runs the TCP stack on both ends: 7.9 us of
the sender's CPU per byte on an idle machine here, against 2.1 us over a
unix-domain socket (benchmarks/uart_socket_cost.py, medians of 5), at
~120 bytes a reply. The port is pyserial's socket:// one with another
address family, so everything that reads a socket:// port (the client's
descriptor reader included) reads it the same way.
"""

from __future__ import annotations

import socket

from serial.serialutil import SerialException
from serial.urlhandler import protocol_socket

CONNECT_TIMEOUT_S = 5.0


class Serial(protocol_socket.Serial):
    """A pyserial port on a unix-domain stream socket."""

    def open(self) -> None:
        self.logger = None  # socket://'s methods log through it when its URL asks (unix:// never does)
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        address = socket_address(str(self.portstr))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise SerialException(f"Could not open port {self.portstr}: {exc}") from exc
        sock.setblocking(False)  # read and write wait with select, as socket:// does
        self._socket = sock
        self.is_open = True
        self.reset_input_buffer()

    def from_url(self, url: str) -> str:  # type: ignore[override]  # an address, not (host, port)
        return socket_address(url)


def socket_address(url: str) -> str:
    """The socket address of a `unix://` URL: a path, or NUL + name for `@name`."""
    if not url.lower().startswith("unix://") or len(url) <= len("unix://"):
        raise SerialException(f"expected unix:///path or unix://@name, not {url!r}")
    where = url[len("unix://"):]
    return "\0" + where[1:] if where.startswith("@") else where
