"""A device whose stack reached its bottom word has overflowed (or may
have: the painted stack cannot tell the last word used from a word past
it): what lies below, .bss on every bundled board, may be corrupted, so no
figure of the run can be trusted. Such a run used to pass: a platform file
with `stack_bytes = 0x10` (mps2-an386, `hil run -m models/demo/gesture.tflite
-p that.toml -n 1`) gave "PASSED 1/1 vectors bit-exact", 0 instructions per
invoke and "stack high-water 16 of 16 B", exit 0. The decision is tested on
the device's GET_MEMORY figures: a real reproduction needs a firmware build
of its own (about 40 s), more than CI's budget allows for one check."""

from __future__ import annotations

from harness.checks.stack import stack_overflow


def test_a_stack_used_to_its_last_word_is_an_overflow():
    message = stack_overflow({"stack_size": 16, "stack_high_water": 16})
    assert message is not None
    assert "16 of 16" in message and "stack_bytes" in message


def test_a_stack_with_room_left_or_not_measured_is_no_overflow():
    assert stack_overflow({"stack_size": 16384, "stack_high_water": 1932}) is None
    assert stack_overflow({"stack_size": 0, "stack_high_water": 0}) is None  # a firmware without the stack hook
    assert stack_overflow(None) is None
