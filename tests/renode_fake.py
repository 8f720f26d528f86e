"""A stand-in for Renode, for tests on machines without it.

`FakeMonitor` is a TCP server that behaves like Renode 1.15's monitor socket
(`SocketServerProvider` with telnet negotiation + AntShell), byte for byte
as a Renode 1.15.3 built here answered with `--plain`: on connect it sends
12 bytes of telnet negotiation (IAC DO BINARY, IAC WILL ECHO, IAC WILL SGA,
IAC WONT LINEMODE) and reads and throws away the first 9 bytes it
receives; then the banner and `(monitor) `. It echoes what is typed,
followed by "\n\r", prints each output line ending "\r\n", and ends every
answer with the prompt `(monitor) ` or `(<machine>) `; `quit` answers
"Renode is quitting" and closes. Errors are plain text in `--plain` mode;
`colour=True` prints them red as Renode does without `--plain`. Commands
are handled by a callable.

Run as a program, this file is a fake `renode` executable for
`RenodeTarget`: `renode_fake.py --disable-xwt --plain --port N` serves the
monitor on N and understands the commands RenodeTarget sends. On `start` it
boots the loaded ELF in QEMU (an MPS2 machine, FAKE_RENODE_MACHINE, default
mps2-an386) and relays the UART to the socket terminal the script created
(raw TCP, like `CreateServerSocketTerminal ... false`). Its
`ExecutedInstructions` is a made-up but deterministic counter: 1000 per byte
into the device, 10 per byte out of it. QEMU runs in the fake's process
group, as Mono runs in Renode's.

FAKE_RENODE_FAIL=<command word> makes that command fail (red error text).
FAKE_RENODE_HANG_ON_INVOKE=N makes the device go silent from the N-th
INVOKE request on (counting the runner's empty one): a hang, seen from the
host, without building hanging firmware.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

NEGOTIATION = bytes([255, 253, 0, 255, 251, 1, 255, 251, 3, 255, 252, 34])
RED, RESET = "\x1b[31;1m", "\x1b[0m"
PROMPT_COLOUR = "\x1b[34;1m"


class FakeMonitor:
    """Renode's monitor protocol on a TCP port; `handler(line) -> (output,
    error)` answers commands (error True prints it red)."""

    def __init__(self, handler, port: int = 0, banner: str = "Renode, version 1.15.3.0 (fake)",
                 chunked: bool = False, colour: bool = False) -> None:
        self.colour = colour
        self.handler = handler
        self.banner = banner
        self.prompt = "monitor"
        self.chunked = chunked          # send answers a few bytes at a time
        self.received_negotiation: list[bytes] = []
        self.commands: list[str] = []
        self.closed = threading.Event()
        self.quit = threading.Event()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _send(self, conn: socket.socket, text: str) -> None:
        data = text.encode()
        if not self.chunked:
            conn.sendall(data)
            return
        for i in range(0, len(data), 3):
            conn.sendall(data[i:i + 3])
            time.sleep(0.001)

    def _prompt(self) -> str:
        return f"{PROMPT_COLOUR}({self.prompt}) {RESET}" if self.colour else f"({self.prompt}) "

    def _serve(self) -> None:
        while not self.quit.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(NEGOTIATION)
                got = b""
                while len(got) < 9:  # discarded, as Renode does
                    chunk = conn.recv(9 - len(got))
                    if not chunk:
                        break
                    got += chunk
                self.received_negotiation.append(got)
                self._send(conn, f"{self.banner}\n\r\n\r{self._prompt()}")
                line = b""
                while True:
                    try:
                        data = conn.recv(4096)
                    except OSError:
                        break
                    if not data:
                        break
                    for byte in data:
                        ch = bytes([byte])
                        if ch in (b"\r", b"\n"):
                            text = line.decode(errors="replace")
                            line = b""
                            self._send(conn, "\n\r")
                            if not text.strip():
                                self._send(conn, self._prompt())
                                continue
                            self.commands.append(text)
                            if text.strip() == "quit":
                                self._send(conn, "Renode is quitting\r\n\r")
                                self.quit.set()
                                conn.close()
                                self.closed.set()
                                return
                            output, error = self.handler(self, text.strip())
                            if output:
                                body = output.replace("\n", "\r\n") + "\r\n"
                                self._send(conn, f"{RED}{body}{RESET}" if error and self.colour else body)
                            self._send(conn, self._prompt())
                        else:
                            line += ch
                            self._send(conn, ch.decode(errors="replace"))  # echo
            self.closed.set()

    def close(self) -> None:
        self.quit.set()
        try:
            self.server.close()
        except OSError:
            pass


# -- the fake renode program ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeRenode:
    def __init__(self) -> None:
        self.elf: str | None = None
        self.terminals: dict[str, socket.socket] = {}
        self.connected: dict[str, str] = {}
        self.counter = 0
        self.lock = threading.Lock()
        self.client: socket.socket | None = None
        self.qemu: subprocess.Popen | None = None
        self.device: socket.socket | None = None
        self.pending_out = b""
        self.fail = os.environ.get("FAKE_RENODE_FAIL", "")
        self.hang_on = int(os.environ.get("FAKE_RENODE_HANG_ON_INVOKE", "0"))
        self.invokes = 0
        self.frame = b""
        self.hung = False

    def handle(self, monitor: FakeMonitor, line: str) -> tuple[str, bool]:
        words = line.split()
        if self.fail and self.fail in words[:2]:
            return f"There was an error executing command '{line}'", True
        if m := re.fullmatch(r'mach create "([^"]+)"', line):
            monitor.prompt = m.group(1)
            return "", False
        if m := re.fullmatch(r"machine LoadPlatformDescription @(.+)", line):
            path = m.group(1).strip('"')
            if not path.startswith("platforms/") and not Path(path).is_file():
                return f"Could not find file '{path}'", True
            return "", False
        if re.fullmatch(r"sysbus\.\w+ (PerformanceInMips|Frequency) \d+", line):
            return "", False
        if m := re.fullmatch(r"sysbus LoadELF @(.+)", line):
            path = m.group(1).strip('"')
            if not Path(path).is_file():
                return f"Could not find file '{path}'", True
            self.elf = path
            return "", False
        if m := re.fullmatch(r'emulation CreateServerSocketTerminal (\d+) "([^"]+)" false', line):
            server = socket.socket()
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", int(m.group(1))))
            server.listen(1)
            self.terminals[m.group(2)] = server
            threading.Thread(target=self._accept, args=(server,), daemon=True).start()
            return "", False
        if m := re.fullmatch(r"connector Connect (\S+) (\S+)", line):
            if m.group(2) not in self.terminals:
                return f"No such command or device: {m.group(2)}", True
            self.connected[m.group(2)] = m.group(1)
            return "", False
        if re.fullmatch(r'emulation RunFor "[0-9.]+"', line):
            return "", False
        if line == "start":
            self._boot()
            return "Starting emulation...", False
        if m := re.fullmatch(r"(\S+) ExecutedInstructions", line):
            with self.lock:
                return f"0x{self.counter:X}", False
        if line == "version":
            return "Renode, version 1.15.3.0 (fake for hil's tests)", False
        return f"No such command or device: {words[0]}", True

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.client = conn
                if self.pending_out:  # queued output, as Renode keeps it for the first client
                    conn.sendall(self.pending_out)
                    self.pending_out = b""
            threading.Thread(target=self._host_to_device, args=(conn,), daemon=True).start()

    def _boot(self) -> None:
        assert self.elf is not None, "start before sysbus LoadELF"
        machine = os.environ.get("FAKE_RENODE_MACHINE", "mps2-an386")
        port = _free_port()
        self.qemu = subprocess.Popen(
            ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none",
             "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-kernel", self.elf,
             "-icount", "shift=0,align=off,sleep=off"], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.device = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        self.device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._device_to_host, daemon=True).start()

    def _host_to_device(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.counter += 1000 * len(data)
            if self.hang_on:
                data = self._watch_invokes(data)
            if self.device is not None and data:
                self.device.sendall(data)

    def _watch_invokes(self, data: bytes) -> bytes:
        """Pass bytes until the N-th INVOKE frame (type 0x04) ends; drop
        everything from that frame on."""
        if self.hung:
            return b""
        passed = b""
        for i, byte in enumerate(data):
            if byte != 0:
                self.frame += bytes([byte])
                continue
            frame, self.frame = self.frame, b""
            # COBS: the first byte is a code, the second the frame type
            if len(frame) > 1 and frame[1] == 0x04:
                self.invokes += 1
                if self.invokes == self.hang_on:
                    self.hung = True
                    return passed
            passed += frame + b"\0"
        return passed

    def _device_to_host(self) -> None:
        device = self.device
        assert device is not None  # started once _boot() has connected it
        while True:
            try:
                data = device.recv(4096)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.counter += 10 * len(data)
                if self.client is None:
                    self.pending_out += data
                    continue
                client = self.client
            try:
                client.sendall(data)
            except OSError:
                pass

    def shutdown(self) -> None:
        if self.qemu is not None and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()


def main(argv: list[str]) -> int:
    port = int(argv[argv.index("--port") + 1])
    print("fake renode:", " ".join(argv), flush=True)
    fake = FakeRenode()
    monitor = FakeMonitor(fake.handle, port=port)
    try:
        while not monitor.quit.wait(0.1):
            pass
    finally:
        fake.shutdown()
        monitor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
