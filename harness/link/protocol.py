"""Host side of the hil wire protocol v1 (docs/protocol.md).

`DeviceClient` speaks to any byte stream with pyserial's interface (a QEMU
UART on `socket://`, a pty, a USB CDC port): one request in flight, each
answered by a reply with the same sequence number, an error frame, or an
unprompted FAULT frame that ends the session.
"""

from __future__ import annotations

import enum
import logging
import fcntl
import os
import random
import struct
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import serial

from ..errors import EXIT_FAILED, HilError, InfraError
from .frames import DELIMITER, Frame, FrameDecoder
from .receiver import DescriptorReader, direct_descriptor

log = logging.getLogger(__name__)

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


class LinkTimeout(HilError):
    """No reply within the deadline while the link stayed quiet and the
    target (when it can tell) kept running: the firmware hung. A firmware
    failure (exit 1) wherever it is not caught and recorded per vector."""

    exit_code = EXIT_FAILED

    def __init__(self, stage: str, seconds: float, transmissions: int = 1) -> None:
        self.stage = stage
        self.seconds = seconds
        self.transmissions = transmissions
        sent = f" (sent {transmissions} times)" if transmissions > 1 else ""
        super().__init__(f"no reply to {stage} within {seconds:g} s{sent}")


class LinkClosed(Exception):
    """The byte stream ended (emulator exited, cable pulled)."""


class LinkBroken(InfraError):
    """The link stayed unusable: a request's retransmissions ran out while
    only damaged frames came back, or the stream closed or failed. It is
    the link's fault, never the firmware's (exit 3); the message carries the
    link statistics."""

    def __init__(self, reason: str, stats: "LinkStats", *, closed: bool = False) -> None:
        self.reason = reason
        self.stats = stats
        self.closed = closed  # the stream itself failed, rather than the frames on it
        super().__init__(f"link broken: {reason}; link: {stats.summary()}",
                         hint="check the cable or port, the baud rate and flow control, or the serial server "
                              "(ser2net); the result's `link` section has the statistics")


class TargetStopped(InfraError):
    """The device cannot answer because what runs it stopped (a stalled or
    exited emulator, a closed port): infrastructure (exit 3), not a hang of
    the firmware."""


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
    one_trip_invoke: bool = False  # INVOKE takes OUTPUTS, PROFILE and INPUTS (flag bit 3)
    batch_cursor: bool = False     # INVOKE takes NEXT: the next vector of the batch file (flag bit 4)

    @classmethod
    def parse(cls, p: bytes) -> "Hello":
        version, flags, max_payload, arena, capacity, clock = struct.unpack_from("<BBHIII", p)
        strings: list[str] = []
        at = 16
        for _ in range(3):
            n = p[at]
            strings.append(p[at + 1 : at + 1 + n].decode("utf-8", "replace"))
            at += 1 + n
        build_id, engine, platform = strings
        return cls(version, bool(flags & 1), bool(flags & 2), bool(flags & 4), max_payload, arena, capacity,
                   clock, build_id, engine, platform, bool(flags & 8), bool(flags & 16))


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
    # INVOKE with OUTPUTS / PROFILE (docs/protocol.md): what the reply carried; None when it carried nothing
    # (a firmware older than those flags): ask GET_OUTPUT / GET_PROFILE as before
    outputs: tuple[bytes, ...] | None = None     # the first len(outputs) outputs, whole
    profile: tuple["OpCount", ...] | None = None  # operators 0..len-1
    profile_total: int | None = None              # operators in all; 0xFFFF: the engine does not profile


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
    """What crossed the link and what recovering from its faults took: the
    throughput benchmark's figures and the result's `link` section."""

    bytes_out: int = 0
    bytes_in: int = 0
    requests: int = 0             # distinct requests (each with its own seq)
    frames_sent: int = 0          # requests plus retransmissions
    frames_received: int = 0      # frames with a good CRC
    retransmissions: int = 0
    requests_retried: int = 0     # requests that needed at least one retransmission
    most_retransmissions: int = 0  # of any one request
    damaged_frames: dict = field(default_factory=lambda: dict.fromkeys(("cobs", "crc", "overlong", "short"), 0))
    device_bad_frames: int = 0    # BAD_FRAME errors: the device dropped a damaged frame of ours
    stale_replies: int = 0        # replies to an earlier request (duplicates, late ones), ignored
    chunk_bytes: int = 0          # the smallest bulk chunk the link was stepped down to (0: never)
    wait_s: float = 0.0
    by_stage: dict = field(default_factory=dict)

    @property
    def damaged(self) -> int:
        return sum(self.damaged_frames.values())

    @property
    def troubled(self) -> bool:
        """True when the link needed any recovery."""
        return bool(self.retransmissions or self.damaged or self.device_bad_frames or self.stale_replies)

    def summary(self) -> str:
        """One line for the console and messages."""
        return (f"{self.requests_retried} of {self.requests} requests retried ({self.retransmissions} "
                f"retransmissions), {self.damaged} damaged frames dropped, {self.device_bad_frames} reported "
                f"by the device, {self.stale_replies} stale replies ignored")

    def as_dict(self) -> dict:
        return {"bytes_out": self.bytes_out, "bytes_in": self.bytes_in, "requests": self.requests,
                "frames_sent": self.frames_sent, "frames_received": self.frames_received,
                "retransmissions": self.retransmissions, "requests_retried": self.requests_retried,
                "most_retransmissions": self.most_retransmissions,
                "damaged_frames": dict(sorted(self.damaged_frames.items())), "damaged_total": self.damaged,
                "device_bad_frames": self.device_bad_frames, "stale_replies": self.stale_replies,
                "smallest_chunk_bytes": self.chunk_bytes or None}


@dataclass
class PendingRequest:
    """A request on the wire whose reply has not been read yet
    (`DeviceClient.send_request`, `await_reply`): what re-sending it and
    judging its silence need."""

    msg: int
    name: str
    stage: str
    seq: int
    wire: bytes
    timeout: float
    started: float
    wait: float                       # the next retransmission's wait
    sent_at: list[float]
    resend_at: float


@dataclass
class PendingInvoke:
    """An INVOKE sent (`DeviceClient.start_invoke`) whose reply
    `finish_invoke` reads: the host can check the previous vector while the
    device runs this one."""

    request: PendingRequest
    empty: bool
    until: int | None
    outputs: bool
    profile: bool


@dataclass(frozen=True)
class RetryPolicy:
    """When a request that got no good reply is sent again (docs/protocol.md,
    Recovery). The device answers a repeated (type, seq, CRC) from the reply
    it kept, so re-sending never runs a request twice.

    Without news from the device, the first retransmission waits `first_wait`
    plus the time the request and a full reply take at `byte_time` seconds
    per byte, and at least twice the slowest reply this kind of request has
    had without damage on the way (a long INVOKE is not taken for a lost
    one); each later wait is `backoff` times longer, up to `longest_wait`
    (or twice that slowest reply).
    A damaged frame from the device, or its BAD_FRAME error, says a frame
    was lost: the request is re-sent at once. At most `retransmissions` per
    request; the request's timeout stays its deadline whatever happens.
    """

    first_wait: float = 0.25
    backoff: float = 1.5
    longest_wait: float = 2.0
    retransmissions: int = 24
    byte_time: float = 1e-4  # 10 KB/s: QEMU's UART into the guest, 115200 baud


#: Bulk data (inline LOAD_MODEL/SET_INPUT chunks, GET_OUTPUT/GET_TENSOR
#: replies) starts in chunks of FIRST_CHUNK bytes, doubles after CLEAN_STREAK
#: bulk requests in a row needed no retransmission, up to what max_payload
#: allows, and halves (down to SMALLEST_CHUNK) after one that did. A request
#: is re-sent byte for byte, so its size cannot shrink once sent: a frame of
#: 1 KB almost never crosses a link with 1e-3 bit errors, one of 64 bytes
#: does about every other time.
FIRST_CHUNK = 64
SMALLEST_CHUNK = 32
CLEAN_STREAK = 4


def _descriptor(stream: ByteStream) -> int | None:
    """The stream's file descriptor, when it has one that answers FIONREAD."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = int(fileno())
        fcntl.ioctl(fd, termios.FIONREAD, bytearray(4))
    except (OSError, ValueError, TypeError, AttributeError, serial.SerialException):
        return None
    return fd


class DeviceClient:
    def __init__(self, stream: ByteStream, default_timeout: float = 10.0, *,
                 retry: RetryPolicy | None = None,
                 explain_silence: Callable[[], str | None] | None = None) -> None:
        """`explain_silence`, when given, is asked when the device stays
        silent or the stream fails: it returns why what runs the device cannot
        answer (e.g. "the emulator stopped (process 1234 is stopped by a
        signal)") or None when it can; a reason ends the request with
        TargetStopped (exit 3) instead of a firmware hang."""
        self.stream = stream
        self.default_timeout = default_timeout
        self.retry = retry or RetryPolicy()
        self.explain_silence = explain_silence
        self.decoder = FrameDecoder()
        self.stats = LinkStats()
        self._seq = random.SystemRandom().randrange(1, 256)  # a fresh client never matches the device's kept reply
        self._pending: list[Frame] = []
        self.max_payload = 256  # until HELLO says otherwise
        self.one_trip_invoke = False  # HELLO says whether INVOKE takes INPUTS (and OUTPUTS, PROFILE)
        self.batch_cursor = False  # HELLO says whether INVOKE takes NEXT
        # what the device's batch cursor holds, as far as this client sent it: path, offsets, stride
        # (None: unknown or none, so the next batch request names everything again)
        self._cursor: tuple[bytes, tuple[int, ...], int] | None = None
        self.chunk_limit = FIRST_CHUNK  # bulk bytes per frame, stepped with the link's noise
        self._clean_streak = 0
        self._slowest: dict[int, float] = {}  # per request type, replies that met no damage on the way
        self._damage_seen = 0  # damaged frames from the device plus its BAD_FRAME errors, ever
        self._damage_at = float("-inf")  # when the last of them arrived (time.monotonic)
        self._junk_at = float("-inf")  # when bytes last came that made no good frame (yet)
        self.logs: list[str] = []
        self._fd = _descriptor(stream)  # where FIONREAD can count the bytes waiting (`_available`)
        direct = direct_descriptor(stream)
        self.reader = DescriptorReader(direct) if direct is not None else None  # else: through stream.read

    # -- transport -----------------------------------------------------------

    def resync(self) -> None:
        """Forget every byte and frame received so far (a fresh decoder, no
        pending frames): before a HELLO to a device that was just reset, so
        boot noise or a reply from before the reset is never taken for one."""
        self.decoder = FrameDecoder()
        self._pending.clear()

    def _next_seq(self) -> int:
        """1..255: seq 0 is what the device uses for frames that answer no
        request (BAD_FRAME, FAULT, LOG), so no reply can be mistaken for one."""
        self._seq = self._seq % 255 + 1
        return self._seq

    def _stopped(self, exc: BaseException | None = None) -> None:
        """Raise TargetStopped when what runs the device says why it cannot answer."""
        reason = self.explain_silence() if self.explain_silence else None
        if reason:
            raise TargetStopped(reason) from exc

    def _send(self, wire: bytes) -> None:
        try:
            if self.reader is not None:  # the descriptor is the stream: one write, not pyserial's select and send
                sent = self.reader.write(wire)
                if sent < len(wire):
                    self.stream.write(wire[sent:])
            else:
                self.stream.write(wire)
        except (serial.SerialException, OSError) as exc:
            self._stopped(exc)
            raise LinkBroken(f"cannot write to the device: {exc}", self.stats, closed=True) from exc
        self.stats.bytes_out += len(wire)
        self.stats.frames_sent += 1

    def _read_frame(self, until: float) -> Frame | None:
        """The next good frame; None at `until`, or as soon as a damaged frame
        arrives (the caller decides whether to re-send)."""
        while not self._pending:
            left = until - time.monotonic()
            if left <= 0:
                return None
            try:
                data = self._receive(min(left, 0.2))
            except (serial.SerialException, OSError) as exc:
                self._stopped(exc)
                raise LinkBroken(f"the link closed or failed: {exc}", self.stats, closed=True) from exc
            if not data:
                continue
            self.stats.bytes_in += len(data)
            if DELIMITER not in data:  # a piece of a frame (QEMU's UART sends a reply in many): nothing ends here
                self.decoder.feed(data)
                self._junk_at = time.monotonic()  # a frame still on its way
                continue
            before = dict(self.decoder.errors)
            frames = self.decoder.feed(data)
            self.stats.frames_received += len(frames)
            self._pending.extend(frames)
            damaged = 0
            for kind, n in self.decoder.errors.items():
                damaged += n - before.get(kind, 0)
                self.stats.damaged_frames[kind] = self.stats.damaged_frames.get(kind, 0) + n - before.get(kind, 0)
            if damaged or not frames or self.decoder.buffered:
                self._junk_at = time.monotonic()  # noise, or a frame still on its way
            if damaged:
                self._damage_seen += damaged
                self._damage_at = time.monotonic()
                if not self._pending:
                    return None
        return self._pending.pop(0)

    def _receive(self, timeout: float) -> bytes:
        """What arrives within `timeout` seconds (b"" when nothing did): from
        the descriptor where it holds the stream itself, else by stream.read."""
        if self.reader is not None:
            return self.reader.read(timeout)
        if self.stream.timeout != timeout:  # a serial port reconfigures itself on every change
            self.stream.timeout = timeout
        waiting = self._available()
        return self.stream.read(waiting if waiting else 1)

    def _available(self) -> int:
        """Bytes the stream holds now. pyserial's socket:// port (QEMU's UART)
        says only whether it is readable (0 or 1): read one byte at a time, a
        140-byte reply took 140 wake-ups and fell behind the emulator. Its
        descriptor's FIONREAD says how many, so one read takes all there is."""
        waiting = self.stream.in_waiting
        if waiting != 1 or self._fd is None:
            return waiting
        try:
            count = bytearray(4)
            fcntl.ioctl(self._fd, termios.FIONREAD, count)
        except OSError:
            self._fd = None
            return waiting
        return max(1, int.from_bytes(count, "little"))

    def _first_wait(self, msg: int, wire: bytes) -> float:
        policy = self.retry
        transfer = policy.byte_time * (len(wire) + self.max_payload + 16)
        return max(policy.first_wait + transfer, 2 * self._slowest.get(msg, 0.0))

    def request(self, msg: Msg, payload: bytes = b"", *, stage: str | None = None,
                timeout: float | None = None) -> bytes:
        """Send one request and return its reply payload, re-sending the
        identical frame while no good reply comes (RetryPolicy). Raises
        DeviceError (the device's error reply), DeviceFault, LinkBroken (the
        link stayed unusable), TargetStopped (the emulator or port went away)
        or LinkTimeout (silence: the firmware hung)."""
        return self.await_reply(self.send_request(msg, payload, stage=stage, timeout=timeout))

    def send_request(self, msg: Msg, payload: bytes = b"", *, stage: str | None = None,
                     timeout: float | None = None) -> PendingRequest:
        """The first half of `request`: put the request on the wire and
        return at once; `await_reply` reads its reply (and re-sends it while
        none comes). One request in flight: await it before sending another."""
        name = msg.name if isinstance(msg, Msg) else f"request {msg:#04x}"
        timeout = self.default_timeout if timeout is None else timeout
        seq = self._next_seq()
        # a leading delimiter ends whatever damaged partial frame the device holds, a second
        # trailing one ends this frame even when noise hits its own
        wire = DELIMITER + Frame(msg, seq, payload).encode() + DELIMITER
        started = time.monotonic()
        wait = self._first_wait(msg, wire)
        self._send(wire)
        self.stats.requests += 1
        return PendingRequest(msg, name, stage or name, seq, wire, timeout, started, wait, [started], started + wait)

    def await_reply(self, pending: PendingRequest) -> bytes:
        """The second half of `request`: the reply payload of a request
        `send_request` put on the wire. The link statistics count the time
        spent waiting here (`wait_s`, `by_stage`), not the time the host did
        other work after sending."""
        policy = self.retry
        msg, seq, wire, sent_at = pending.msg, pending.seq, pending.wire, pending.sent_at
        started = pending.started
        deadline = started + pending.timeout
        entered = time.monotonic()
        try:
            while True:
                damage_count = self._damage_seen
                frame = self._read_frame(min(pending.resend_at, deadline))
                now = time.monotonic()
                if frame is None:
                    if self._damage_seen > damage_count:
                        pending.resend_at = now  # a damaged frame: likely our reply, or our request
                    if now >= deadline:
                        self._give_up(pending.stage, pending.timeout, len(sent_at),
                                      self._answered_with_damage(sent_at, deadline))
                    if now < pending.resend_at:
                        continue
                    if len(sent_at) > policy.retransmissions:
                        if self._junk_at >= sent_at[-1]:  # even the last one came back damaged
                            self._give_up(pending.stage, now - started, len(sent_at), True)
                        pending.resend_at = deadline  # silence: wait out the deadline
                        continue
                    self._send(wire)
                    sent_at.append(time.monotonic())
                    self.stats.retransmissions += 1
                    log.debug("no good reply in %.3f s: request %#04x sent again (%d)", now - started, msg, len(sent_at) - 1)
                    pending.wait = min(pending.wait * policy.backoff,
                                       max(policy.longest_wait, 2 * self._slowest.get(msg, 0.0)))
                    pending.resend_at = time.monotonic() + pending.wait
                    continue
                if frame.type == Msg.FAULT:
                    raise DeviceFault(frame.payload)
                if frame.type == Msg.LOG:
                    self.logs.append(frame.payload.decode("utf-8", "replace"))
                    continue
                if frame.type == Msg.ERROR and frame.seq != seq and frame.payload[:1] == bytes((ErrorCode.BAD_FRAME,)):
                    self.stats.device_bad_frames += 1  # the device dropped a damaged frame, likely ours
                    self._damage_seen += 1
                    self._damage_at = self._junk_at = now
                    pending.resend_at = min(pending.resend_at, now)
                    continue
                if frame.seq != seq:
                    self.stats.stale_replies += 1  # a duplicate or late reply to an earlier request
                    continue
                if frame.type == Msg.ERROR:
                    code, detail, op = struct.unpack_from("<BIh", frame.payload)
                    raise DeviceError(code, detail, op,
                                      frame.payload[7:].decode("utf-8", "replace"))
                if frame.type != (msg | REPLY):
                    raise DeviceError(ErrorCode.BAD_FRAME, frame.type, -1,
                                      f"reply type {frame.type:#04x} does not answer {pending.name}")
                if self._damage_at < started:  # no damage: the device took this long (a long INVOKE)
                    self._slowest[msg] = max(self._slowest.get(msg, 0.0), now - started)
                return frame.payload
        finally:
            spent = time.monotonic() - entered
            self.stats.wait_s += spent
            self.stats.by_stage[pending.name] = self.stats.by_stage.get(pending.name, 0.0) + spent
            self._note_retries(len(sent_at) - 1)

    def _answered_with_damage(self, sent_at: list[float], deadline: float) -> bool:
        """Did damage (damaged frames, bytes that make no frame) come back
        after one of the last two transmissions that had time to be answered?
        Then the link is what fails (two, because noise can cost a single
        one its answer altogether). Damage only before them, then silence (a
        request damaged once, re-sent, then the firmware hung), is silence."""
        settled = [t for t in sent_at if t <= deadline - self.retry.first_wait] or sent_at[:1]
        return self._junk_at >= settled[-2:][0]

    def _give_up(self, stage: str, seconds: float, sends: int, damaged: bool) -> None:
        """No good reply: a link that delivered only damage is broken; silence
        is the target's to explain, else the firmware hung."""
        if damaged:
            raise LinkBroken(f"no valid reply to {stage} after {sends} transmissions in {seconds:.1f} s, "
                             f"only damaged frames", self.stats)
        self._stopped()
        raise LinkTimeout(stage, seconds, sends)

    def _note_retries(self, retransmitted: int) -> None:
        if retransmitted:
            self.stats.requests_retried += 1
            self.stats.most_retransmissions = max(self.stats.most_retransmissions, retransmitted)

    def _bulk_request(self, msg: Msg, payload: bytes, timeout: float | None = None) -> bytes:
        """A request that carries a bulk chunk or asks for one: the chunk
        size is halved when it needed re-sending, doubled after a clean streak."""
        before = self.stats.retransmissions
        try:
            return self.request(msg, payload, timeout=timeout)
        finally:
            if self.stats.retransmissions > before:
                self._clean_streak = 0
                self.chunk_limit = max(SMALLEST_CHUNK, min(self.chunk_limit, self.max_payload) // 2)
                self.stats.chunk_bytes = min(self.stats.chunk_bytes or self.chunk_limit, self.chunk_limit)
            else:
                self._clean_streak += 1
                if self._clean_streak >= CLEAN_STREAK and self.chunk_limit < self.max_payload:
                    self._clean_streak = 0
                    self.chunk_limit *= 2

    def _chunk(self, overhead: int) -> int:
        """Bulk data per frame: what fits in max_payload, less on a noisy link."""
        room = self.max_payload - overhead
        return max(1, min(room, self.chunk_limit))

    # -- messages --------------------------------------------------------------

    def hello(self, timeout: float | None = None) -> Hello:
        self._cursor = None  # a HELLO may follow a reboot, which forgets the cursor
        hello = Hello.parse(self.request(Msg.HELLO, timeout=timeout))
        self.max_payload = hello.max_payload
        self.one_trip_invoke = hello.one_trip_invoke
        self.batch_cursor = hello.batch_cursor
        return hello

    def _transfer(self, msg: Msg, prefix: bytes, data: bytes | None, file: Path | None,
                  file_offset: int, total: int, timeout: float | None) -> bytes:
        if file is not None:
            path = os.fsencode(file)  # as given: relative paths are the device host's business
            head = prefix + struct.pack("<BII", 1, total, file_offset)
            return self.request(msg, head + path, timeout=timeout)
        assert data is not None
        reply = b""
        offset = 0
        while True:  # the chunk size can shrink and grow with the link's noise
            chunk = self._chunk(len(prefix) + 9)
            head = prefix + struct.pack("<BII", 0, len(data), offset)
            reply = self._bulk_request(msg, head + data[offset : offset + chunk], timeout=timeout)
            offset += chunk
            if offset >= len(data):
                return reply

    def load_model(self, data: bytes | None = None, *, file: Path | None = None,
                   size: int | None = None, timeout: float | None = None, baked: bool = False) -> LoadedModel:
        """Load a model inline (chunks through the link), from a host file, or
        the one baked into the firmware image."""
        self._cursor = None  # LOAD_MODEL clears the device's batch cursor
        if baked:
            reply = self.request(Msg.LOAD_MODEL, struct.pack("<BII", 2, 0, 0), timeout=timeout)
            return LoadedModel(*struct.unpack_from("<BBII", reply))
        if data is None and file is None:
            raise ValueError("load_model needs the model's bytes, a host file or baked=True")
        total = len(data) if data is not None else int(size if size is not None else Path(file or "").stat().st_size)
        reply = self._transfer(Msg.LOAD_MODEL, b"", data, file, 0, total, timeout)
        return LoadedModel(*struct.unpack_from("<BBII", reply))

    def set_input(self, index: int, data: bytes | None = None, *, file: Path | None = None,
                  file_offset: int = 0, size: int | None = None) -> None:
        total = len(data) if data is not None else int(size or 0)
        self._transfer(Msg.SET_INPUT, bytes((index,)), data, file, file_offset, total, None)

    def invoke(self, timeout: float | None = None, *, empty: bool = False, until: int | None = None,
               outputs: bool = False, profile: bool = False,
               inputs: tuple[Path, list[int]] | None = None, stride: int | None = None) -> InvokeResult:
        """Run the model; `empty` measures an invoke that runs nothing (the
        counting overhead); `until` runs operators 0..until only; `outputs`
        and `profile` ask for the outputs and the operator profile in the
        same reply (what fits one frame: `outputs_of`, `profile_of` fetch the
        rest); `inputs` (a host file and each input's offset in it) has the
        device read its inputs first, in place of SET_INPUT (only where
        HELLO says INVOKE takes it: `one_trip_invoke`); `stride`, the
        distance from one vector's inputs to the next's in that file, lets
        the request for the next vector be the NEXT flag alone where HELLO
        offers the batch cursor (`batch_cursor`)."""
        payload = self._invoke_payload(empty, until, outputs, profile, inputs, stride)
        try:
            reply = self.request(Msg.INVOKE, payload, timeout=timeout)
        except BaseException:
            self._cursor = None  # the device may or may not have moved it: name everything next time
            raise
        return self._invoke_result(reply, empty, until, outputs, profile)

    def start_invoke(self, timeout: float | None = None, *, empty: bool = False, until: int | None = None,
                     outputs: bool = False, profile: bool = False,
                     inputs: tuple[Path, list[int]] | None = None, stride: int | None = None) -> PendingInvoke:
        """`invoke`'s request, sent; `finish_invoke` reads its reply. In
        between the host may do its own work (check the previous vector)
        while the device runs, but send nothing else."""
        payload = self._invoke_payload(empty, until, outputs, profile, inputs, stride)
        try:
            sent = self.send_request(Msg.INVOKE, payload, timeout=timeout)
        except BaseException:
            self._cursor = None
            raise
        return PendingInvoke(sent, empty, until, outputs, profile)

    def finish_invoke(self, pending: PendingInvoke) -> InvokeResult:
        """The reply to `start_invoke`'s request (raises as `invoke` does)."""
        try:
            reply = self.await_reply(pending.request)
        except BaseException:
            self._cursor = None  # the device may or may not have moved it: name everything next time
            raise
        return self._invoke_result(reply, pending.empty, pending.until, pending.outputs, pending.profile)

    def _invoke_payload(self, empty: bool, until: int | None, outputs: bool, profile: bool,
                        inputs: tuple[Path, list[int]] | None, stride: int | None = None) -> bytes:
        if until is not None:
            return struct.pack("<BH", 2, until)
        if empty:
            return b"\x01"
        flags = (4 if outputs else 0) | (8 if profile else 0)
        if not inputs:
            return bytes((flags,))
        if not self.one_trip_invoke:
            raise ValueError("this firmware's INVOKE cannot read its inputs (HELLO flag bit 3 unset)")
        path, offsets = os.fsencode(inputs[0]), tuple(inputs[1])
        if stride is None or not self.batch_cursor or not 0 <= stride <= 0xFFFFFFFF:
            self._cursor = None  # plain INPUTS forgets the device's cursor
            return bytes((flags | 16,)) + struct.pack(f"<B{len(offsets)}I", len(offsets), *offsets) + path
        cursor, self._cursor = self._cursor, (path, offsets, stride)
        if cursor is not None and cursor[0] == path and cursor[2] == stride and len(cursor[1]) == len(offsets) \
                and all(was + stride == now for was, now in zip(cursor[1], offsets)):
            return bytes((flags | 32,))  # NEXT: the device moves its cursor on by the stride
        return bytes((flags | 16 | 32,)) + struct.pack(f"<B{len(offsets)}II", len(offsets), *offsets, stride) + path

    @staticmethod
    def _invoke_result(reply: bytes, empty: bool, until: int | None, outputs: bool, profile: bool) -> InvokeResult:
        if len(reply) < 9:
            raise DeviceError(ErrorCode.BAD_PAYLOAD, len(reply), -1, "INVOKE reply shorter than its count")
        source, count = struct.unpack_from("<BQ", reply)
        if len(reply) <= 9 or empty or until is not None:
            return InvokeResult(CounterSource(source), count)
        at, got, ops, total = 9, None, None, None
        if outputs:
            got = []
            for _ in range(reply[at]):
                n = struct.unpack_from("<I", reply, at + 1)[0] if at + 5 <= len(reply) else None
                if n is None or at + 5 + n > len(reply):  # never a short output compared as the device's
                    raise DeviceError(ErrorCode.BAD_PAYLOAD, len(reply), -1, "INVOKE reply's outputs run past its end")
                got.append(bytes(reply[at + 5 : at + 5 + n]))
                at += 4 + n
            at += 1
        if profile and len(reply) >= at + 4:
            total, n = struct.unpack_from("<HH", reply, at)
            if at + 4 + 8 * n > len(reply):
                raise DeviceError(ErrorCode.BAD_PAYLOAD, len(reply), -1, "INVOKE reply's profile runs past its end")
            ops = tuple(OpCount(*entry) for entry in struct.iter_unpack("<HHI", reply[at + 4 : at + 4 + 8 * n]))
        return InvokeResult(CounterSource(source), count, tuple(got) if got is not None else None, ops, total)

    def outputs_of(self, invoked: InvokeResult, n_outputs: int) -> list[bytes]:
        """Every output of the invoke just answered: those its reply carried,
        the rest by GET_OUTPUT."""
        have = list(invoked.outputs or ())
        if len(have) > n_outputs:
            raise DeviceError(ErrorCode.BAD_PAYLOAD, len(have), -1, f"INVOKE replied with {len(have)} outputs "
                              f"for a model with {n_outputs}")
        return have + [self.get_output(k) for k in range(len(have), n_outputs)]

    def profile_of(self, invoked: InvokeResult) -> list[OpCount]:
        """The operator profile of the invoke just answered: what its reply
        carried, the rest (or all, from an older firmware) by GET_PROFILE."""
        if invoked.profile_total is None:
            return self.get_profile()
        if invoked.profile_total == 0xFFFF:
            return []  # the engine does not profile
        return self.get_profile(list(invoked.profile or ()), invoked.profile_total)

    def get_profile(self, entries: list[OpCount] | None = None, total: int | None = None) -> list[OpCount]:
        """Per-operator counts of the last invoke, in execution order; empty
        when the firmware's engine does not profile (profiling is optional in
        hil_ops: it answers NOT_SUPPORTED). `entries` of `total` are known already."""
        entries = list(entries or [])
        if total is not None and len(entries) >= total:
            return entries
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
            want = min(0xFFFF, self._chunk(8))
            reply = self._bulk_request(msg, struct.pack(layout, index, len(out), want))
            total, offset = struct.unpack_from("<II", reply)
            if offset != len(out):
                raise DeviceError(ErrorCode.BAD_SEQUENCE, offset, -1, f"{msg.name} answered the wrong offset")
            chunk = reply[8:]
            if not chunk and len(out) < total:
                raise DeviceError(ErrorCode.BAD_PAYLOAD, total, -1, f"{msg.name} returned no data")
            out += chunk
        return bytes(out)

    def reset(self, reboot: bool = False) -> None:
        self._cursor = None  # RESET clears the device's batch cursor
        self.request(Msg.RESET, bytes((1 if reboot else 0,)))

    def tensor_info(self, is_output: bool, index: int) -> TensorInfo:
        p = self.request(Msg.TENSOR_INFO, bytes((1 if is_output else 0, index)))
        dtype, ndims = p[0], p[1]
        dims = struct.unpack_from(f"<{ndims}i", p, 2)
        nbytes, scale, zero_point = struct.unpack_from("<Ifi", p, 2 + 4 * ndims)
        return TensorInfo(dtype, tuple(dims), nbytes, scale, zero_point)
