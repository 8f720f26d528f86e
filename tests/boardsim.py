"""QEMU standing in for a board on a serial port, for tests without hardware.

`QemuBoard` runs QEMU with its UART on a TCP socket and relays that UART,
like a debug probe's USB-serial bridge, to three ports a board target opens
by pyserial URL exactly as it would a USB serial port:

- a pty (`/dev/pts/N`, also linked as `<dir>/ttyBOARD`, like /dev/serial/by-id),
- `socket://127.0.0.1:P` (ser2net's raw mode),
- `rfc2217://127.0.0.1:Q`, served with pyserial's `serial.rfc2217.PortManager`
  (ser2net's telnet mode); its RTS line is wired to the board's reset: asserting
  then releasing RTS reboots the board, as the auto-reset circuits of many
  boards do.

The ports outlive the firmware: "flashing" (restarting QEMU with a new ELF)
or resetting keeps every host connection open, as an ST-LINK's virtual COM
port does. Flash and reset come from a control socket, through this file's
command line, which is what a platform file's `flash_command` runs:

    python tests/boardsim.py flash --control CTRL --probe {probe} {elf}
    python tests/boardsim.py reset --control CTRL

The board has a probe id (`board_id`); flashing through another id fails as
a real flasher does ("no probe with serial number ...").
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    import serial.rfc2217

HERE = Path(__file__).resolve().parent


def _socket(fileobj: object) -> socket.socket:
    """A selector key's file object: everything but the pty is registered as a socket."""
    assert isinstance(fileobj, socket.socket), fileobj
    return fileobj


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listener() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(4)
    s.setblocking(False)
    return s


class _VirtualPort:
    """What pyserial's RFC 2217 PortManager needs of a serial port: line
    settings and modem lines. RTS asserted then released resets the board."""

    def __init__(self, board: "QemuBoard") -> None:
        self.board = board
        self.baudrate, self.bytesize, self.parity, self.stopbits = 115200, 8, "N", 1
        self.xonxoff = self.rtscts = False
        self.break_condition = False
        self.cts = self.dsr = self.cd = True
        self.ri = False
        self.dtr = False
        self._rts = False

    @property
    def rts(self) -> bool:
        return self._rts

    @rts.setter
    def rts(self, value: bool) -> None:
        if self._rts and not value:
            self.board.rts_resets += 1
            self.board._restart()
        self._rts = bool(value)

    def reset_input_buffer(self) -> None:
        pass

    def reset_output_buffer(self) -> None:
        pass


class _Rfc2217Client:
    def __init__(self, sock: socket.socket, board: "QemuBoard") -> None:
        import serial.rfc2217

        self.sock = sock
        # duck-typed: the PortManager only calls what _VirtualPort has of a port, and only write() of its connection
        self.manager = serial.rfc2217.PortManager(cast("serial.rfc2217.Serial", _VirtualPort(board)),
                                                   cast("serial.rfc2217.Serial", self))

    def write(self, data: bytes) -> None:  # the PortManager's connection
        try:
            self.sock.sendall(data)
        except OSError:
            pass


class QemuBoard:
    def __init__(self, workdir: Path, machine: str = "mps2-an386", board_id: str = "HILSIM0001",
                 icount: str | None = "shift=0,align=off,sleep=off", control_dir: Path | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.machine = machine
        self.board_id = board_id
        self.icount = icount
        self.elf: Path | None = None
        self.flashes: list[str] = []
        self.resets = 0
        self.rts_resets = 0
        self.qemu: subprocess.Popen | None = None
        self.qemu_sock: socket.socket | None = None
        self.log_path = self.workdir / "boardsim-qemu.log"
        self._lock = threading.RLock()
        self._stop = threading.Event()

        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: a serial line
        os.set_blocking(self.master, False)
        self.pty_path = os.ttyname(self._slave)
        self.pty_link = self.workdir / "ttyBOARD"
        if self.pty_link.is_symlink():
            self.pty_link.unlink()
        self.pty_link.symlink_to(self.pty_path)

        self._tcp = _listener()
        self._rfc = _listener()
        self.socket_url = f"socket://127.0.0.1:{self._tcp.getsockname()[1]}"
        self.rfc2217_url = f"rfc2217://127.0.0.1:{self._rfc.getsockname()[1]}"
        self.control_dir = Path(control_dir or self.workdir)
        self.control_dir.mkdir(parents=True, exist_ok=True)
        self.control_path = self.control_dir / f"{board_id}.ctl"
        if self.control_path.exists():
            self.control_path.unlink()
        self._ctl = socket.socket(socket.AF_UNIX)
        self._ctl.bind(str(self.control_path))
        self._ctl.listen(4)
        self._ctl.setblocking(False)
        self._tcp_clients: list[socket.socket] = []
        self._rfc_clients: dict[socket.socket, _Rfc2217Client] = {}
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.master, selectors.EVENT_READ, "pty")
        self._sel.register(self._tcp, selectors.EVENT_READ, "tcp-listen")
        self._sel.register(self._rfc, selectors.EVENT_READ, "rfc-listen")
        self._sel.register(self._ctl, selectors.EVENT_READ, "ctl-listen")
        self._thread = threading.Thread(target=self._loop, name="boardsim", daemon=True)
        self._thread.start()

    # -- the firmware -------------------------------------------------------------

    def flash(self, elf: str | Path) -> None:
        with self._lock:
            self.elf = Path(elf)
            self.flashes.append(str(elf))
            self._restart()

    def reset(self) -> None:
        with self._lock:
            self.resets += 1
            self._restart()

    def power_off(self) -> None:
        with self._lock:
            self._stop_qemu()

    def _stop_qemu(self) -> None:
        sock, self.qemu_sock = self.qemu_sock, None
        if sock is not None:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError):
                pass
            sock.close()
        proc, self.qemu = self.qemu, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _restart(self) -> None:
        with self._lock:
            self._stop_qemu()
            if self.elf is None:
                return
            port = _free_port()
            cmd = ["qemu-system-arm", "-M", self.machine, "-display", "none", "-monitor", "none",
                   "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-kernel", str(self.elf),
                   "-semihosting-config", "enable=on,target=native"]
            if self.icount:
                cmd += ["-icount", self.icount]
            log = open(self.log_path, "ab")
            from harness.targets.qemu import _die_with_parent  # no QEMU outlives a killed test run

            self.qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=self.workdir, preexec_fn=_die_with_parent)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                    break
                except OSError:
                    if self.qemu.poll() is not None:
                        raise RuntimeError(f"QEMU exited: {self.log_path.read_text()[-500:]}")
                    time.sleep(0.01)
            else:
                raise RuntimeError("QEMU did not listen")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            self.qemu_sock = sock
            self._sel.register(sock, selectors.EVENT_READ, "qemu")

    # -- relaying ---------------------------------------------------------------------

    def _to_device(self, data: bytes) -> None:
        sock = self.qemu_sock
        if sock is None or not data:
            return  # no firmware running: the bytes are lost, as on a dead board
        sock.setblocking(True)
        try:
            sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.setblocking(False)

    def _to_hosts(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except (BlockingIOError, OSError):
            pass  # nobody reading the pty: a UART with no listener loses bytes
        for c in list(self._tcp_clients):
            try:
                c.setblocking(True)
                c.sendall(data)
                c.setblocking(False)
            except OSError:
                self._drop(c)
        for c, client in list(self._rfc_clients.items()):
            try:
                c.setblocking(True)
                c.sendall(b"".join(client.manager.escape(data)))
                c.setblocking(False)
            except OSError:
                self._drop(c)

    def _drop(self, c: socket.socket) -> None:
        try:
            self._sel.unregister(c)
        except (KeyError, ValueError):
            pass
        if c in self._tcp_clients:
            self._tcp_clients.remove(c)
        self._rfc_clients.pop(c, None)
        c.close()

    def _control(self, conn: socket.socket) -> None:
        conn.setblocking(True)
        conn.settimeout(30)
        try:
            request = json.loads(conn.makefile().readline())
            cmd = request.get("cmd")
            probe = request.get("probe")
            if probe and probe.upper().lstrip("0") != self.board_id.upper().lstrip("0"):
                reply = {"ok": False, "message": f"no probe with serial number {probe} is connected "
                                                 f"(connected: {self.board_id})"}
            elif cmd == "flash":
                self.flash(request["elf"])
                reply = {"ok": True, "message": f"flashed {request['elf']} to {self.board_id}"}
            elif cmd == "reset":
                self.reset()
                reply = {"ok": True, "message": f"reset {self.board_id}"}
            elif cmd in ("power_off", "power_on"):  # a power switch (tests/labfarm.py), in the relay's thread
                self.power_off() if cmd == "power_off" else self._restart()
                reply = {"ok": True, "message": f"{cmd} {self.board_id}"}
            else:
                reply = {"ok": False, "message": f"unknown command {cmd!r}"}
        except Exception as exc:  # report, keep serving
            reply = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
        try:
            conn.sendall((json.dumps(reply) + "\n").encode())
        except OSError:
            pass
        conn.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.1):
                what = key.data
                try:
                    if what == "pty":
                        try:
                            self._to_device(os.read(self.master, 4096))
                        except (BlockingIOError, OSError):
                            pass
                    elif what == "qemu":
                        obj = _socket(key.fileobj)
                        try:
                            data = obj.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if data:
                            self._to_hosts(data)
                        else:  # QEMU went away (the firmware exited, or it was stopped)
                            with self._lock:
                                if self.qemu_sock is obj:
                                    self._sel.unregister(obj)
                                    obj.close()
                                    self.qemu_sock = None
                    elif what in ("tcp-listen", "rfc-listen"):
                        conn, _ = _socket(key.fileobj).accept()
                        conn.setblocking(False)
                        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        if what == "tcp-listen":
                            self._tcp_clients.append(conn)
                            self._sel.register(conn, selectors.EVENT_READ, "tcp")
                        else:
                            self._rfc_clients[conn] = _Rfc2217Client(conn, self)
                            self._sel.register(conn, selectors.EVENT_READ, "rfc")
                    elif what in ("tcp", "rfc"):
                        obj = _socket(key.fileobj)
                        try:
                            data = obj.recv(65536)
                        except BlockingIOError:
                            continue
                        except OSError:
                            data = b""
                        if not data:
                            self._drop(obj)
                        elif what == "tcp":
                            self._to_device(data)
                        else:
                            client = self._rfc_clients[obj]
                            self._to_device(b"".join(client.manager.filter(data)))
                    elif what == "ctl-listen":
                        conn, _ = _socket(key.fileobj).accept()
                        self._control(conn)
                except Exception:  # never let the relay die mid-test
                    import traceback

                    (self.workdir / "boardsim-error.log").open("a").write(traceback.format_exc())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            self._stop_qemu()
        for c in list(self._tcp_clients) + list(self._rfc_clients):
            c.close()
        for s in (self._tcp, self._rfc, self._ctl):
            s.close()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        for p in (self.control_path, self.pty_link):
            try:
                p.unlink()
            except OSError:
                pass

    def __enter__(self) -> "QemuBoard":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- a platform file for it -----------------------------------------------------------

    def platform_file(self, path: Path, reset: str = "command", flasher: str | None = None,
                      extra_board: str = "") -> Path:
        """A serial-board platform file for this board: mps2-an386's firmware
        settings (without semihosting), this file as flasher and reset."""
        me = Path(__file__).resolve()
        flash = flasher or (f"{{python}} {me} flash --control {self.control_dir} --probe {{probe}} {{elf}}")
        text = f'''name = "qemu-board"
description = "QEMU mps2-an386 standing in for a board on a serial port (tests)"
core = "cortex-m4f"

[target]
kind = "serial-board"

[firmware]
board = "mps2"
toolchain = "arm-none-eabi"
cpu_flags = ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
kernels = "dsp"
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
source = "systick"
kind = "instructions"
per_tick = 40

[board]
probe = "simulated (tests/boardsim.py)"
flasher = "command"
flash_command = "{flash}"
reset = "{reset}"
reset_command = "{{python}} {me} reset --control {self.control_dir} --probe {{probe}}"
hello_retries = 4
hello_timeout = 0.5
serial = {{ baud = 115200, flow_control = "none" }}
{extra_board}
'''
        path.write_text(text)
        return path


def _client(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="flash or reset a QemuBoard (tests/boardsim.py)")
    parser.add_argument("cmd", choices=["flash", "reset"])
    parser.add_argument("--control", required=True, help="the directory of the boards' control sockets")
    parser.add_argument("--probe", required=True, help="the board's probe id")
    parser.add_argument("elf", nargs="?")
    args = parser.parse_intermixed_args(argv)
    if args.cmd == "flash" and not args.elf:
        parser.error("flash needs an ELF")
    request = {"cmd": args.cmd, "probe": args.probe, "elf": str(Path(args.elf).resolve()) if args.elf else None}
    control = Path(args.control) / f"{args.probe}.ctl"
    if not control.exists():
        here = sorted(p.stem for p in Path(args.control).glob("*.ctl"))
        print(f"error: no probe with serial number {args.probe} is connected (connected: {', '.join(here) or 'none'})",
              file=sys.stderr)
        return 1
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(60)
            s.connect(str(control))
            s.sendall((json.dumps(request) + "\n").encode())
            reply = json.loads(s.makefile().readline())
    except OSError as exc:
        print(f"error: no board at {args.control}: {exc}", file=sys.stderr)
        return 1
    print(("" if reply["ok"] else "error: ") + reply["message"], file=sys.stdout if reply["ok"] else sys.stderr)
    return 0 if reply["ok"] else 1


if __name__ == "__main__":
    sys.exit(_client(sys.argv[1:]))
