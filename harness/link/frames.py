"""Framing for the hil wire protocol: COBS with a 0x00 delimiter and a CRC-32.

The device side is firmware/protocol/{cobs,crc32,proto}.c; docs/protocol.md
is the specification both follow.
"""

from __future__ import annotations

import logging
import struct
import zlib
from dataclasses import dataclass

log = logging.getLogger(__name__)

FRAME_OVERHEAD = 6  # type, seq, crc32
DELIMITER = b"\x00"


class FrameError(ValueError):
    """A received frame that cannot be trusted (COBS, CRC or length error);
    `kind` ("cobs", "crc", "short") is what the link statistics count."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def cobs_encode(data: bytes) -> bytes:
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(byte)
        if len(block) == 254:
            out.append(255)
            out += block
            block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Each code byte becomes the zero it stands for, in place (or goes, where
    the block before it was a full 254 bytes with no zero after, and at the
    start): a step per block rather than a copy per block."""
    if 0 in data:
        raise FrameError("zero byte inside a COBS frame", "cobs")
    out = bytearray(data)
    end = len(data)
    at, previous, drop = 0, 0xFF, []  # the frame's first code is dropped, as one after a full block is
    while at < end:
        if previous == 0xFF:
            drop.append(at)
        else:
            out[at] = 0
        previous = data[at]
        at += previous
    if at > end:
        raise FrameError("COBS block runs past the end of the frame", "cobs")
    for at in reversed(drop):
        del out[at]
    return bytes(out)


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes = b""

    def encode(self) -> bytes:
        body = bytes((self.type, self.seq)) + self.payload
        return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + DELIMITER

    @classmethod
    def decode(cls, encoded: bytes) -> "Frame":
        raw = cobs_decode(encoded)
        if len(raw) < FRAME_OVERHEAD:
            raise FrameError(f"frame of {len(raw)} bytes is shorter than the {FRAME_OVERHEAD}-byte minimum", "short")
        body, (crc,) = raw[:-4], struct.unpack("<I", raw[-4:])
        if zlib.crc32(body) != crc:
            raise FrameError(f"CRC mismatch (got {crc:#010x}, computed {zlib.crc32(body):#010x})", "crc")
        return cls(body[0], body[1], bytes(body[2:]))


class FrameDecoder:
    """Turns a byte stream into frames, resynchronising at every 0x00.

    Corrupt frames are dropped and counted by kind in `errors` ("cobs",
    "crc", "short", "overlong"), never returned; `dropped` keeps the reasons
    of the last few, for messages. `max_encoded` bounds memory if the peer
    never sends a delimiter.
    """

    KEEP_REASONS = 20

    def __init__(self, max_encoded: int = 1 << 16) -> None:
        self._buffer = bytearray()
        self._overflow = False
        self.max_encoded = max_encoded
        self.dropped: list[str] = []
        self.errors: dict[str, int] = {}
        self.frames = 0  # good frames returned

    @property
    def buffered(self) -> int:
        """Bytes of a frame not yet ended by a delimiter."""
        return len(self._buffer)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def _drop(self, kind: str, reason: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.dropped.append(reason)
        del self.dropped[:-self.KEEP_REASONS]

    def feed(self, data: bytes) -> list[Frame]:
        if DELIMITER not in data:  # a piece of a frame: kept, nothing ends
            if not self._overflow:
                self._buffer += data
                if len(self._buffer) > self.max_encoded:
                    self._overflow = True
                    self._buffer.clear()
            return []
        frames: list[Frame] = []
        for chunk_end in _split_keep(data):
            part, complete = chunk_end
            if not self._overflow:
                self._buffer += part
                if len(self._buffer) > self.max_encoded:
                    self._overflow = True
                    self._buffer.clear()
            if complete:
                if self._overflow:
                    self._drop("overlong", "frame longer than the decoder's limit")
                elif self._buffer:
                    try:
                        frames.append(Frame.decode(bytes(self._buffer)))
                        self.frames += 1
                    except FrameError as exc:
                        self._drop(exc.kind, str(exc))
                self._buffer.clear()
                self._overflow = False
        return frames


def _split_keep(data: bytes) -> list[tuple[bytes, bool]]:
    """Split at delimiters: [(part, ended_by_delimiter), ...]."""
    parts = data.split(DELIMITER)
    return [(p, True) for p in parts[:-1]] + [(parts[-1], False)]
