"""Host-side framing: COBS round trips, CRC and resynchronisation."""

import random

import pytest

from harness.link.frames import Frame, FrameDecoder, FrameError, cobs_decode, cobs_encode


@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 508, 1030])
def test_cobs_round_trip_has_no_zero_bytes(size):
    rng = random.Random(size)
    for zeros in (0.0, 0.1, 1.0):
        data = bytes(0 if rng.random() < zeros else rng.randrange(1, 256) for _ in range(size))
        encoded = cobs_encode(data)
        assert 0 not in encoded
        assert cobs_decode(encoded) == data


def test_frame_round_trip():
    frame = Frame(0x03, 7, bytes(range(256)) * 3)
    decoded = FrameDecoder().feed(frame.encode())
    assert decoded == [frame]


def test_corrupted_frame_is_dropped_not_misread():
    wire = bytearray(Frame(0x01, 1, b"hello").encode())
    wire[3] ^= 0x40
    decoder = FrameDecoder()
    assert decoder.feed(bytes(wire)) == []
    assert decoder.dropped and "CRC" in decoder.dropped[0] or "COBS" in decoder.dropped[0]


def test_decoder_resynchronises_after_garbage_and_split_reads():
    good = Frame(0x84, 9, b"\x01\x00\x02").encode()
    stream = b"\x13\x37garbage\x00" + good + good
    decoder = FrameDecoder()
    frames = []
    for i in range(0, len(stream), 3):  # arrive in small pieces
        frames += decoder.feed(stream[i : i + 3])
    assert frames == [Frame(0x84, 9, b"\x01\x00\x02")] * 2
    assert len(decoder.dropped) == 1


def test_short_frame_rejected():
    with pytest.raises(FrameError):
        Frame.decode(cobs_encode(b"\x01\x02\x03"))


def test_overlong_frame_dropped():
    decoder = FrameDecoder(max_encoded=100)
    assert decoder.feed(b"\x05" * 500 + b"\x00" + Frame(1, 2).encode()) == [Frame(1, 2)]
    assert "longer" in decoder.dropped[0]
