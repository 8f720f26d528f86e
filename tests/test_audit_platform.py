"""A platform file's address beyond the 32-bit cores' address space is bad
input (exit 2) named when the file is read. `uart_base = 0x1_0000_0000`
used to build a firmware whose UART address the compiler truncated, boot
it, and end in "no reply to HELLO within 10 s", exit 1: a verdict on the
firmware for a typo in the platform file. No emulator runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import EXIT_USAGE, UsageError
from harness.platforms import load_platform
from helpers import REPO

AN386 = REPO / "platforms" / "mps2-an386.toml"


def _variant(tmp_path: Path, old: str, new: str) -> Path:
    text = AN386.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "p.toml"
    path.write_text(text.replace(old, new))
    return path


@pytest.mark.parametrize("old, new, key", [
    ("uart_base = 0x40004000", "uart_base = 0x1_0000_0000", "firmware.uart_base"),
    ("uart_base = 0x40004000", "uart_base = 0x40004001", "firmware.uart_base"),
    ("bulk = [0x21000000, 0x01000000]", "bulk = [0xFF800000, 0x01000000]", "memory.bulk"),
])
def test_an_address_a_32_bit_core_cannot_reach_is_refused(tmp_path, old, new, key):
    with pytest.raises(UsageError) as caught:
        load_platform(str(_variant(tmp_path, old, new)))
    assert caught.value.exit_code == EXIT_USAGE and f"`{key}`" in str(caught.value)


def test_the_bundled_addresses_are_kept(tmp_path):
    assert load_platform(str(_variant(tmp_path, "uart_base = 0x40004000", "uart_base = 0xFFFFFFFC"))) \
        .firmware.uart_base == 0xFFFFFFFC
