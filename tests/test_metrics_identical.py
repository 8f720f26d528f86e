"""Equal outputs take a shorter path through compare_outputs
(harness/checks/metrics.py) that must give the very figures the general
one gives: the result documents do not change with it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.checks.metrics import closeness, compare_outputs


def _general(device, reference, quant):
    """What the general path computes for equal outputs: closeness of the dequantized values."""
    real = lambda arrays: np.concatenate([(a.astype(np.float64).reshape(-1) - zp) * s if s else  # noqa: E731
                                          a.astype(np.float64).reshape(-1) for a, (s, zp) in zip(arrays, quant)])
    return closeness(real(device), real(reference))


CASES: dict[str, tuple[list[np.ndarray], list[tuple[float, int]]]] = {
    "int8 classifier": ([np.array([[-128, 5, 127, -3, 0, 9, 11, 12, -77, 64, 1, 2]], np.int8)], [(0.00390625, -128)]),
    "two outputs": ([np.arange(-50, 50, dtype=np.int8), np.array([1000, -2000, 7], np.int16)], [(0.1, 3), (0.0, 0)]),
    "all zero points": ([np.full(16, -128, np.int8)], [(0.5, -128)]),
    "float": ([np.linspace(-3, 7, 300, dtype=np.float32)], [(0.0, 0)]),
}


@pytest.mark.parametrize("name", CASES)
def test_equal_outputs_give_the_general_paths_figures(name):
    reference, quant = CASES[name]
    check = compare_outputs([r.copy() for r in reference], reference, quant)
    cosine, l2_rel = _general(reference, reference, quant)
    assert (check.passed, check.max_abs_diff, check.mismatches, check.detail) == (True, 0.0, 0, None)
    assert check.elements == sum(r.size for r in reference)
    assert repr(check.cosine) == repr(cosine) and check.l2_rel == l2_rel == 0.0
    assert check.ref_top1 == int(np.argmax(reference[0].reshape(-1)))


def test_equal_outputs_holding_nan_keep_the_general_paths_nan():
    nan = np.array([1.0, np.nan], np.float32)
    check = compare_outputs([nan.copy()], [nan])
    assert check.passed and math.isnan(check.cosine) and math.isnan(check.l2_rel)


def test_outputs_of_another_type_with_the_same_bytes_are_judged_as_before():
    check = compare_outputs([np.array([1, 2], np.uint8)], [np.array([1, 2], np.int8)])
    assert check.passed and check.mismatches == 0
