"""A labgrid lab on localhost for tests and benchmarks: a real
`labgrid-coordinator` and a real `labgrid-exporter`, exporting for each
stand-in board (tests/boardsim.py: QEMU behind RFC 2217) a NetworkSerialPort
and a NetworkPowerPort. The power switch is a small HTTP server speaking
labgrid's `simplerest` model (GET /power/<index>/<0|1>, as relay boards
and smart plugs with a REST API do); switching a port off stops the
stand-in's QEMU, switching it on boots its current firmware again.

Places are written to the coordinator's places.yaml before it starts (as
`labgrid-client create/add-match/set-tags` would leave them), one per
board, tagged board=<platform name> and probe=<the board's probe id>.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from boardsim import QemuBoard

BIN = Path(sys.executable).parent


def labgrid_missing() -> str | None:
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return "labgrid is not installed (pip install -e '.[test]')"
    if not (BIN / "labgrid-coordinator").exists():
        return f"labgrid-coordinator is not in {BIN}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PowerSwitch:
    """The HTTP relay board: port i powers boards[i]."""

    def __init__(self, boards: list[QemuBoard]) -> None:
        self.boards = boards
        self.events: list[tuple[int, int]] = []
        self.state = [1] * len(boards)
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = self.path.strip("/").split("/")
                try:
                    index = int(parts[1])
                    if len(parts) > 2 and parts[2] != "":
                        switch.set(index, int(parts[2]))
                    body = str(switch.state[index]).encode()
                    self.send_response(200)
                except (IndexError, ValueError):
                    body = b"bad request"
                    self.send_response(400)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/power/{{index}}/{{value}}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, index: int, value: int) -> None:
        board = self.boards[index]
        self.events.append((index, value))
        self.state[index] = value
        # through the board's control socket: the relay's own thread stops and starts QEMU
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(str(board.control_path))
            cmd = "power_on" if value else "power_off"  # on: the current firmware boots (if any was flashed)
            s.sendall((json.dumps({"cmd": cmd, "probe": board.board_id}) + "\n").encode())
            s.makefile().readline()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Lab:
    """Coordinator + exporter + boards + power switch, in `workdir`."""

    def __init__(self, workdir: Path, boards: int = 3, platform: str = "qemu-board", dead_place: bool = False,
                 prefix: str = "HILLAB", icount: str = "shift=0,align=off,sleep=off") -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []
        self.boards: list[QemuBoard] = []
        self.power: PowerSwitch | None = None
        try:
            self._start(boards, platform, dead_place, prefix, icount)
        except BaseException:  # a lab that fails to start stops what it started (no `with` to do it)
            self.close()
            raise

    def _start(self, boards: int, platform: str, dead_place: bool, prefix: str, icount: str) -> None:
        for i in range(boards):
            self.boards.append(QemuBoard(self.workdir / f"board-{i}", board_id=f"{prefix}{i:04d}",
                                         control_dir=self.workdir / "ctl", icount=icount))
        self.power = PowerSwitch(self.boards)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        groups, places = [], []
        for i, b in enumerate(self.boards):
            groups.append(self._group(f"board-{i}", int(b.rfc2217_url.rsplit(":", 1)[1]), i))
            places.append(self._place(f"board-{i}", platform, b.board_id, power_off_s="0.2"))
        if dead_place:  # a place whose board does not answer: its serial server is not there
            groups.append(self._group("a-dead", free_port(), len(self.boards)))
            places.append(self._place("a-dead", platform, "HILDEAD0000"))
        (self.workdir / "exporter.yaml").write_text("".join(groups))
        (self.workdir / "places.yaml").write_text("".join(places))
        self.start_coordinator()
        self.exporter = self._spawn("exporter", [str(BIN / "labgrid-exporter"), "-c", self.address, "-n", "lab",
                                                 "--hostname", "127.0.0.1", "exporter.yaml"])
        self.wait_for_resources(len(groups) * 2)

    def _group(self, name: str, serial_port: int, index: int) -> str:
        assert self.power is not None  # started before the groups are written
        return (f"{name}:\n  NetworkSerialPort:\n    host: 127.0.0.1\n    port: {serial_port}\n"
                f"    speed: 115200\n    protocol: rfc2217\n"
                f"  NetworkPowerPort:\n    model: simplerest\n    host: '{self.power.url}'\n    index: {index}\n")

    @staticmethod
    def _place(name: str, platform: str, probe: str, **extra: str) -> str:
        tags = {"board": platform, "probe": probe, **extra}
        return (f"{name}:\n  aliases: []\n  comment: ''\n  tags:\n"
                + "".join(f"    {k}: '{v}'\n" for k, v in tags.items())
                + f"  matches:\n  - exporter: lab\n    group: {name}\n    cls: '*'\n    name: null\n    rename: null\n"
                + "  acquired: null\n  acquired_resources: []\n  allowed: []\n"
                + f"  created: {time.time()}\n  changed: {time.time()}\n")

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(proc)
        return proc

    def start_coordinator(self) -> None:
        self.coordinator = self._spawn("coordinator", [str(BIN / "labgrid-coordinator"), "--listen", self.address])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            if self.coordinator.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"labgrid-coordinator did not start: {(self.workdir / 'coordinator.log').read_text()[-800:]}")

    def stop_coordinator(self) -> None:
        self.coordinator.send_signal(signal.SIGKILL)
        self.coordinator.wait(10)

    def session(self):
        from harness.targets.labgrid import connect

        return connect(self.address)

    def wait_for_resources(self, count: int) -> None:
        coordinator = self.session()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                found = sum(len(p.resources) for p in coordinator.places().values())
                if found >= count:
                    return
                time.sleep(0.1)
            raise RuntimeError(f"the exporter published {found} of {count} resources: "
                               f"{(self.workdir / 'exporter.log').read_text()[-800:]}")
        finally:
            coordinator.close()

    def holder(self, place: str) -> str | None:
        coordinator = self.session()
        try:
            return coordinator.places()[place].acquired
        finally:
            coordinator.close()

    def client(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
        """labgrid-client, as another user if `user` (LG_USERNAME)."""
        env = {**os.environ, "LG_COORDINATOR": self.address, **({"LG_USERNAME": user} if user else {})}
        return subprocess.run([str(BIN / "labgrid-client"), *args], capture_output=True, text=True, env=env,
                              timeout=60)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.power is not None:
            self.power.close()
        for b in self.boards:
            b.close()
        shutil.rmtree(self.workdir / "ctl", ignore_errors=True)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
