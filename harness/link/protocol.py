"""Host side of the hil wire protocol v1 (docs/protocol.md).

`DeviceClient` speaks to any byte stream with pyserial's interface (a QEMU
UART on `socket://`, a pty, a USB CDC port): one request in flight, each
answered by a reply with the same sequence number, an error frame, or an
unprompted FAULT frame that ends the session.
"""

from __future__ import annotations

import enum
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .frames import Frame, FrameDecoder

PROTOCOL_VERSION = 1


class Msg(enum.IntEnum):
    HELLO = 0x01
    LOAD_MODEL = 0x02
    SET_INPUT = 0x03
    INVOKE = 0x04
    GET_OUTPUT = 0x05
    RESET = 0x06
    TENSOR_INFO = 0x07
    GET_PROFILE = 0x08
    GET_MEMORY = 0x09
    GET_TENSOR = 0x0A
    LOG = 0xFD
    FAULT = 0xFE
    ERROR = 0xFF


REPLY = 0x80


class ErrorCode(enum.IntEnum):
    BAD_FRAME = 1
    UNKNOWN_TYPE = 2
    BAD_PAYLOAD = 3
    NO_MODEL = 4
    MODEL_INVALID = 5
    UNSUPPORTED_OP = 6
    UNSUPPORTED = 7
    ARENA_TOO_SMALL = 8
    MODEL_TOO_LARGE = 9
    BAD_INDEX = 10
    BAD_SEQUENCE = 11
    IO = 12
    INVOKE_FAILED = 13
    LIMIT = 14
    NOT_SUPPORTED = 15


class CounterSource(enum.IntEnum):
    NONE = 0
    SYSTICK = 1
    DWT = 2
    MINSTRET = 3


class ByteStream(Protocol):
    """What the client needs of a pyserial port."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes) -> int | None: ...
    @property
    def in_waiting(self) -> int: ...


class DeviceError(Exception):
    """The device answered a request with an error frame."""

    def __init__(self, code: int, detail: int, op_index: int, message: str) -> None:
        self.code = code
        self.detail = detail
        self.op_index = op_index
        self.message = message
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"error {code}"
        self.name = name
        super().__init__(f"device error {name}: {message} (detail {detail})")


_FAULT_KINDS = {1: "HardFault", 2: "MemManage", 3: "BusFault", 4: "UsageFault"}
_CFSR_BITS = {
    0: "IACCVIOL", 1: "DACCVIOL", 3: "MUNSTKERR", 4: "MSTKERR", 5: "MLSPERR", 7: "MMARVALID",
    8: "IBUSERR", 9: "PRECISERR", 10: "IMPRECISERR", 11: "UNSTKERR", 12: "STKERR",
    13: "LSPERR", 15: "BFARVALID", 16: "UNDEFINSTR", 17: "INVSTATE", 18: "INVPC",
    19: "NOCP", 20: "STKOF", 24: "UNALIGNED", 25: "DIVBYZERO",
}


class DeviceFault(Exception):
    """The firmware took a fault exception and reported it before halting."""

    def __init__(self, payload: bytes) -> None:
        kind, pc, lr, cfsr, hfsr, mmfar, bfar, sp = struct.unpack_from("<B7I", payload)
        self.kind = _FAULT_KINDS.get(kind, f"fault {kind}")
        self.pc, self.lr, self.cfsr, self.hfsr = pc, lr, cfsr, hfsr
        self.mmfar, self.bfar, self.sp = mmfar, bfar, sp
        self.symbol: str | None = None  # filled in by whoever has the ELF
        super().__init__(self.describe())

    @property
    def cfsr_flags(self) -> list[str]:
        return [name for bit, name in _CFSR_BITS.items() if self.cfsr & (1 << bit)]

    def describe(self) -> str:
        where = f" in {self.symbol}" if self.symbol else ""
        flags = ", ".join(self.cfsr_flags) or "none"
        return (f"{self.kind} at PC {self.pc:#010x}{where}, LR {self.lr:#010x}, "
                f"CFSR {self.cfsr:#010x} ({flags})")

    def as_dict(self) -> dict:
        return {"kind": self.kind, "pc": self.pc, "lr": self.lr, "cfsr": self.cfsr,
                "cfsr_flags": self.cfsr_flags, "hfsr": self.hfsr, "sp": self.sp,
                "symbol": self.symbol}


class LinkTimeout(Exception):
    """No reply within the deadline: the firmware hung or the link broke."""

    def __init__(self, stage: str, seconds: float) -> None:
        self.stage = stage
        self.seconds = seconds
        super().__init__(f"no reply to {stage} within {seconds:g} s")


class LinkClosed(Exception):
    """The byte stream ended (emulator exited, cable pulled)."""


@dataclass(frozen=True)
class Hello:
    protocol_version: int
    can_read_host_files: bool
    has_counter: bool
    has_baked_model: bool
    max_payload: int
    arena_size: int
    model_capacity: int
    clock_hz: int
    build_id: str
    engine: str
    platform: str

    @classmethod
    def parse(cls, p: bytes) -> "Hello":
        version, flags, max_payload, arena, capacity, clock = struct.unpack_from("<BBHIII", p)
        strings, at = [], 16
        for _ in range(3):
            n = p[at]
            strings.append(p[at + 1 : at + 1 + n].decode("utf-8", "replace"))
            at += 1 + n
        return cls(version, bool(flags & 1), bool(flags & 2), bool(flags & 4), max_payload, arena, capacity,
                   clock, *strings)


@dataclass(frozen=True)
class LoadedModel:
    n_inputs: int
    n_outputs: int
    arena_used: int
    crc32: int


@dataclass(frozen=True)
class InvokeResult:
    counter_source: CounterSource
    count: int


@dataclass(frozen=True)
class OpCount:
    op_index: int
    builtin: int
    count: int  # raw counter delta


@dataclass(frozen=True)
class DeviceMemory:
    arena_size: int
    arena_planned: int
    arena_high_water: int
    stack_size: int
    stack_high_water: int
    model_capacity: int
    model_bytes: int


@dataclass(frozen=True)
class TensorInfo:
    dtype: int
    shape: tuple[int, ...]
    bytes: int
    scale: float
    zero_point: int


@dataclass
class LinkStats:
    """Bytes and time on the link, for the throughput benchmark."""

    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0
    wait_s: float = 0.0
    by_stage: dict = field(default_factory=dict)


class DeviceClient:
    def __init__(self, stream: ByteStream, default_timeout: float = 10.0) -> None:
        self.stream = stream
        self.default_timeout = default_timeout
        self.decoder = FrameDecoder()
        self.stats = LinkStats()
        self._seq = 0
        self._pending: list[Frame] = []
        self.max_payload = 256  # until HELLO says otherwise
        self.logs: list[str] = []

    # -- transport -----------------------------------------------------------

    def _next_frame(self, deadline: float, stage: str, timeout: float) -> Frame:
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(stage, timeout)
            self.stream.timeout = min(left, 0.2)
            waiting = self.stream.in_waiting
            data = self.stream.read(waiting if waiting else 1)
            if data:
                self.stats.bytes_in += len(data)
                self._pending.extend(self.decoder.feed(data))
        return self._pending.pop(0)

    def request(self, msg: Msg, payload: bytes = b"", *, stage: str | None = None,
                timeout: float | None = None) -> bytes:
        """Send one request and return its reply payload."""
        name = msg.name if isinstance(msg, Msg) else f"request {msg:#04x}"
        stage = stage or name
        timeout = self.default_timeout if timeout is None else timeout
        self._seq = (self._seq + 1) & 0xFF
        seq = self._seq
        wire = Frame(msg, seq, payload).encode()
        started = time.monotonic()
        self.stream.write(wire)
        self.stats.bytes_out += len(wire)
        self.stats.requests += 1
        deadline = started + timeout
        try:
            while True:
                frame = self._next_frame(deadline, stage, timeout)
                if frame.type == Msg.FAULT:
                    raise DeviceFault(frame.payload)
                if frame.type == Msg.LOG:
                    self.logs.append(frame.payload.decode("utf-8", "replace"))
                    continue
                if frame.seq != seq:
                    continue  # a late reply to a request we gave up on
                if frame.type == Msg.ERROR:
                    code, detail, op = struct.unpack_from("<BIh", frame.payload)
                    raise DeviceError(code, detail, op,
                                      frame.payload[7:].decode("utf-8", "replace"))
                if frame.type != (msg | REPLY):
                    raise DeviceError(ErrorCode.BAD_FRAME, frame.type, -1,
                                      f"reply type {frame.type:#04x} does not answer {name}")
                return frame.payload
        finally:
            spent = time.monotonic() - started
            self.stats.wait_s += spent
            self.stats.by_stage[name] = self.stats.by_stage.get(name, 0.0) + spent

    # -- messages --------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> Hello:
        hello = Hello.parse(self.request(Msg.HELLO, timeout=timeout))
        self.max_payload = hello.max_payload
        return hello

    def _transfer(self, msg: Msg, prefix: bytes, data: bytes | None, file: Path | None,
                  file_offset: int, total: int, timeout: float | None) -> bytes:
        if file is not None:
            path = os.fsencode(file)  # as given: relative paths are the device host's business
            head = prefix + struct.pack("<BII", 1, total, file_offset)
            return self.request(msg, head + path, timeout=timeout)
        assert data is not None
        chunk = self.max_payload - len(prefix) - 9
        reply = b""
        for offset in range(0, max(len(data), 1), chunk):
            head = prefix + struct.pack("<BII", 0, len(data), offset)
            reply = self.request(msg, head + data[offset : offset + chunk], timeout=timeout)
        return reply

    def load_model(self, data: bytes | None = None, *, file: Path | None = None,
                   size: int | None = None, timeout: float | None = None, baked: bool = False) -> LoadedModel:
        """Load a model inline (chunks through the link), from a host file, or
        the one baked into the firmware image."""
        if baked:
            reply = self.request(Msg.LOAD_MODEL, struct.pack("<BII", 2, 0, 0), timeout=timeout)
            return LoadedModel(*struct.unpack_from("<BBII", reply))
        total = len(data) if data is not None else int(size if size is not None else Path(file).stat().st_size)
        reply = self._transfer(Msg.LOAD_MODEL, b"", data, file, 0, total, timeout)
        return LoadedModel(*struct.unpack_from("<BBII", reply))

    def set_input(self, index: int, data: bytes | None = None, *, file: Path | None = None,
                  file_offset: int = 0, size: int | None = None) -> None:
        total = len(data) if data is not None else int(size or 0)
        self._transfer(Msg.SET_INPUT, bytes((index,)), data, file, file_offset, total, None)

    def invoke(self, timeout: float | None = None, *, empty: bool = False,
               until: int | None = None) -> InvokeResult:
        """Run the model; `empty` measures an invoke that runs nothing (the
        counting overhead); `until` runs operators 0..until only."""
        if until is not None:
            payload = struct.pack("<BH", 2, until)
        else:
            payload = bytes((1 if empty else 0,))
        reply = self.request(Msg.INVOKE, payload, timeout=timeout)
        source, count = struct.unpack_from("<BQ", reply)
        return InvokeResult(CounterSource(source), count)

    def get_profile(self) -> list[OpCount]:
        """Per-operator counts of the last invoke, in execution order; empty
        when the firmware's engine does not profile (profiling is optional in
        hil_ops: it answers NOT_SUPPORTED)."""
        entries: list[OpCount] = []
        while True:
            try:
                reply = self.request(Msg.GET_PROFILE, struct.pack("<H", len(entries)))
            except DeviceError as exc:
                if exc.code == ErrorCode.NOT_SUPPORTED and not entries:
                    return []
                raise
            total, first = struct.unpack_from("<HH", reply)
            got = [OpCount(*struct.unpack_from("<HHI", reply, at)) for at in range(4, len(reply), 8)]
            if first != len(entries) or (not got and len(entries) < total):
                raise DeviceError(ErrorCode.BAD_SEQUENCE, first, -1, "GET_PROFILE answered the wrong range")
            entries += got
            if len(entries) >= total:
                return entries

    def get_memory(self) -> DeviceMemory:
        return DeviceMemory(*struct.unpack_from("<7I", self.request(Msg.GET_MEMORY)))

    def get_output(self, index: int) -> bytes:
        return self._read_chunked(Msg.GET_OUTPUT, "<BIH", index)

    def get_tensor(self, index: int) -> bytes:
        """Any tensor of the main graph as it is now (after INVOKE UNTIL)."""
        return self._read_chunked(Msg.GET_TENSOR, "<HIH", index)

    def _read_chunked(self, msg: Msg, layout: str, index: int) -> bytes:
        out = bytearray()
        total = None
        while total is None or len(out) < total:
            want = min(0xFFFF, self.max_payload - 8)
            reply = self.request(msg, struct.pack(layout, index, len(out), want))
            total, offset = struct.unpack_from("<II", reply)
            if offset != len(out):
                raise DeviceError(ErrorCode.BAD_SEQUENCE, offset, -1, f"{msg.name} answered the wrong offset")
            chunk = reply[8:]
            if not chunk and len(out) < total:
                raise DeviceError(ErrorCode.BAD_PAYLOAD, total, -1, f"{msg.name} returned no data")
            out += chunk
        return bytes(out)

    def reset(self, reboot: bool = False) -> None:
        self.request(Msg.RESET, bytes((1 if reboot else 0,)))

    def tensor_info(self, is_output: bool, index: int) -> TensorInfo:
        p = self.request(Msg.TENSOR_INFO, bytes((1 if is_output else 0, index)))
        dtype, ndims = p[0], p[1]
        dims = struct.unpack_from(f"<{ndims}i", p, 2)
        nbytes, scale, zero_point = struct.unpack_from("<Ifi", p, 2 + 4 * ndims)
        return TensorInfo(dtype, tuple(dims), nbytes, scale, zero_point)
