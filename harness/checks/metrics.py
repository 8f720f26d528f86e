"""Output comparisons. Bit-exact is the default check: the built-in engine
and TFLM use the same integer math, so any difference is a bug."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputCheck:
    passed: bool
    max_abs_diff: float
    mismatches: int  # elements that differ
    elements: int


def bit_exact(device: list[np.ndarray], reference: list[np.ndarray]) -> OutputCheck:
    max_diff, mismatches, elements = 0.0, 0, 0
    for got, want in zip(device, reference, strict=True):
        got, want = np.asarray(got).reshape(-1), np.asarray(want).reshape(-1)
        elements += want.size
        if got.size != want.size:
            return OutputCheck(False, float("inf"), max(got.size, want.size), elements)
        differ = got.view(np.uint8) != want.view(np.uint8)  # bits, so NaNs and -0.0 count
        if differ.any():
            mismatches += int(np.count_nonzero(got != want) or 1)
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            max_diff = max(max_diff, float(np.nanmax(diff)) if diff.size else 0.0)
    return OutputCheck(mismatches == 0, max_diff, mismatches, elements)
