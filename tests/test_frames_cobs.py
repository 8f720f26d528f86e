"""COBS decoding in place (harness/link/frames.py): the bytes each code
stands for, full 254-byte blocks, and damage refused as COBS errors."""

from __future__ import annotations

import pytest

from harness.link.frames import Frame, FrameDecoder, FrameError, cobs_decode, cobs_encode


@pytest.mark.parametrize("encoded,decoded", [
    (b"\x01", b""),
    (b"\x01\x01", b"\x00"),
    (b"\x03\x11\x22\x02\x33", b"\x11\x22\x00\x33"),
    (b"\x01\x01\x01", b"\x00\x00"),
    (b"\xff" + bytes(range(1, 255)) + b"\x01", bytes(range(1, 255))),        # a full block, then an empty one
    (b"\xff" + bytes(range(1, 255)) + b"\x02\x07", bytes(range(1, 255)) + b"\x07"),  # no zero after a full block
    (b"\xff" + bytes(range(1, 255)) + b"\x01\x01", bytes(range(1, 255)) + b"\x00"),
])
def test_codes_become_the_zeros_they_stand_for(encoded, decoded):
    assert cobs_decode(encoded) == decoded
    assert cobs_encode(decoded) == encoded


def test_a_frame_ending_with_a_full_block_decodes_too():
    assert cobs_decode(b"\xff" + bytes(range(1, 255))) == bytes(range(1, 255))


@pytest.mark.parametrize("damaged", [b"\x05\x01\x02", b"\x02\x00\x01", b"\x00", b"\x03\x01", b"\xff\x01"])
def test_damage_is_a_cobs_error(damaged):
    with pytest.raises(FrameError) as error:
        cobs_decode(damaged)
    assert error.value.kind == "cobs"


def test_pieces_without_a_delimiter_are_kept_and_an_overlong_one_dropped_at_its_end():
    decoder = FrameDecoder(max_encoded=100)
    wire = Frame(0x84, 3, bytes(range(1, 60))).encode()
    assert [f for piece in (wire[:10], wire[10:40], wire[40:]) for f in decoder.feed(piece)] == \
        [Frame(0x84, 3, bytes(range(1, 60)))]
    for _ in range(30):  # 150 bytes with no delimiter
        assert decoder.feed(b"\x05" * 5) == []
    assert decoder.feed(b"\x00" + Frame(1, 2).encode()) == [Frame(1, 2)]
    assert decoder.errors == {"overlong": 1} and decoder.buffered == 0
