"""A noisy serial link for tests and benchmarks: a TCP proxy that damages bytes.

`hil` talks to a device through a pyserial `socket://` URL; putting this
proxy between the two (`--port` of a board that QEMU stands in for, see
tests/boardsim.py, or the QEMU target's own UART socket) gives the link the
faults real UARTs and USB CDC links have, reproducibly (seeded):

    proxy = NoisyProxy(("127.0.0.1", port), ber=1e-3, drop=1e-4, dup=1e-4, seed=7)
    url = proxy.start()          # socket://127.0.0.1:PORT, give it to hil
    ...
    proxy.stop(); proxy.stats    # what was done to the bytes, per direction

- `ber`: each bit is flipped with this probability;
- `drop`: each byte is dropped with this probability;
- `dup`: each byte is sent twice with this probability;
- `direction`: "both", "to_device" or "to_host" (which way is damaged);
- `cut_after`: after this many bytes (both ways together) the link is cut:
  every connection is closed and new ones are closed at once, like a cable
  pulled for good. `.cut()` does the same at any time.

Faults are drawn as gaps between events (a geometric distribution), not per
bit, so the proxy keeps up with QEMU's ~300 KB/s UART on one core.
"""

from __future__ import annotations

import math
import random
import selectors
import socket
import threading

DIRECTIONS = ("both", "to_device", "to_host")


class _Gaps:
    """Positions of independent events of probability `p` per trial: how
    many trials pass before the next event, drawn once per event."""

    def __init__(self, p: float, rng: random.Random) -> None:
        self.p, self.rng = p, rng
        self.left = self._draw()

    def _draw(self) -> float:
        if self.p <= 0:
            return math.inf
        if self.p >= 1:
            return 0
        return math.floor(math.log(1.0 - self.rng.random()) / math.log(1.0 - self.p))

    def events(self, trials: int) -> list[int]:
        """Indexes (0..trials-1) where an event happens in the next `trials` trials."""
        hits, at = [], 0
        while self.left < trials - at:
            at += int(self.left)
            hits.append(at)
            at += 1
            self.left = self._draw()
        self.left -= trials - at
        return hits


class _Damage:
    """One direction's faults and counts."""

    def __init__(self, ber: float, drop: float, dup: float, rng: random.Random) -> None:
        self.flips = _Gaps(ber, rng)
        self.drops = _Gaps(drop, rng)
        self.dups = _Gaps(dup, rng)
        self.stats = {"bytes": 0, "bits_flipped": 0, "bytes_dropped": 0, "bytes_duplicated": 0}

    def apply(self, data: bytes) -> bytes:
        self.stats["bytes"] += len(data)
        buf = bytearray(data)
        for bit in self.flips.events(8 * len(buf)):
            buf[bit // 8] ^= 1 << (bit % 8)
            self.stats["bits_flipped"] += 1
        dropped = set(self.drops.events(len(buf)))
        doubled = set(self.dups.events(len(buf)))
        if not dropped and not doubled:
            return bytes(buf)
        out = bytearray()
        for i, byte in enumerate(buf):
            if i in dropped:
                self.stats["bytes_dropped"] += 1
                continue
            out.append(byte)
            if i in doubled:
                out.append(byte)
                self.stats["bytes_duplicated"] += 1
        return bytes(out)


def _connect(upstream: tuple[str, int] | str) -> socket.socket:
    """A (host, port) over TCP, or a unix socket address (QEMU's UART: "\\0name")."""
    if isinstance(upstream, tuple):
        return socket.create_connection(upstream, timeout=5)
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    try:
        sock.connect(upstream)
    except OSError:
        sock.close()
        raise
    return sock


class NoisyProxy:
    def __init__(self, upstream: tuple[str, int] | str, *, ber: float = 0.0, drop: float = 0.0, dup: float = 0.0,
                 seed: int = 0, direction: str = "both", cut_after: int | None = None) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        for name, p in (("ber", ber), ("drop", drop), ("dup", dup)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} is a probability (0..1), not {p}")
        self.upstream = upstream
        self.direction = direction
        self.cut_after = cut_after
        rng = random.Random(seed)
        self._damage = {way: _Damage(ber, drop, dup, rng) if direction in ("both", way) else _Damage(0, 0, 0, rng)
                        for way in ("to_device", "to_host")}
        self.connections = 0
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4)
        self._thread = threading.Thread(target=self._serve, name="noisy-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def stats(self) -> dict:
        """Per direction: bytes seen, bits flipped, bytes dropped and duplicated."""
        return {way: dict(d.stats) for way, d in self._damage.items()}

    def start(self) -> str:
        self._thread.start()
        return self.url

    def cut(self) -> None:
        """Cut the link for good: close every connection, refuse new ones."""
        self._cut.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> "NoisyProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _relayed(self) -> int:
        return sum(d.stats["bytes"] for d in self._damage.values())

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ)
        peers: dict[socket.socket, tuple[socket.socket, str]] = {}

        def close(sock: socket.socket) -> None:
            for s in (sock, peers.get(sock, (None,))[0]):
                if s is not None and s in peers:
                    sel.unregister(s)
                    peers.pop(s)
                    s.close()

        while not self._stop.is_set():
            if self._cut.is_set() or (self.cut_after is not None and self._relayed() >= self.cut_after):
                self._cut.set()
                for s in list(peers):
                    close(s)
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                if sock is self._listener:
                    host_side, _ = self._listener.accept()
                    if self._cut.is_set():
                        host_side.close()
                        continue
                    try:
                        device_side = _connect(self.upstream)
                    except OSError:
                        host_side.close()
                        continue
                    self.connections += 1
                    for s in (host_side, device_side):
                        if s.family != socket.AF_UNIX:
                            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        sel.register(s, selectors.EVENT_READ)
                    peers[host_side] = (device_side, "to_device")
                    peers[device_side] = (host_side, "to_host")
                    continue
                if sock not in peers:
                    continue
                peer, way = peers[sock]
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    close(sock)
                    continue
                if self.cut_after is not None:
                    data = data[:max(0, self.cut_after - self._relayed())]
                try:
                    peer.sendall(self._damage[way].apply(data))
                except OSError:
                    close(sock)
        for s in list(peers):
            close(s)
        sel.close()
