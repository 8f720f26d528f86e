"""Output comparisons for one vector. Bit-exact is the default check: the
built-in engine and TFLM use the same integer math, so any difference is a
bug. The other measures (max |diff| in LSB, cosine similarity, relative L2
error, top-1 agreement) serve suites that compare against a different
reference or allow a tolerance (checks/suite.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OutputCheck:
    passed: bool           # bit-exact
    max_abs_diff: float    # in output units (LSB for integer outputs)
    mismatches: int        # elements that differ
    elements: int
    cosine: float          # over all outputs, dequantized; 1.0 when both are zero
    l2_rel: float          # ||got - want|| / ||want||, dequantized; 0.0 when equal
    ref_top1: int          # argmax of the reference's first output


def _real(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    v = values.astype(np.float64).reshape(-1)
    return (v - zero_point) * scale if scale else v


def compare_outputs(device: list[np.ndarray], reference: list[np.ndarray],
                    quant: list[tuple[float, int]] | None = None) -> OutputCheck:
    quant = quant or [(0.0, 0)] * len(reference)
    max_diff, mismatches, elements = 0.0, 0, 0
    got_all, want_all = [], []
    for got, want, (scale, zp) in zip(device, reference, quant, strict=True):
        got, want = np.asarray(got).reshape(-1), np.asarray(want).reshape(-1)
        elements += want.size
        if got.size != want.size:
            return OutputCheck(False, float("inf"), max(got.size, want.size), elements, 0.0, float("inf"), -1)
        differ = got.view(np.uint8) != want.view(np.uint8)  # bits, so NaNs and -0.0 count
        if differ.any():
            mismatches += int(np.count_nonzero(got != want) or 1)
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            max_diff = max(max_diff, float(np.nanmax(diff)) if diff.size else 0.0)
        got_all.append(_real(got, scale, zp))
        want_all.append(_real(want, scale, zp))
    g, w = np.concatenate(got_all), np.concatenate(want_all)
    norm_g, norm_w = float(np.linalg.norm(g)), float(np.linalg.norm(w))
    if norm_g == 0 and norm_w == 0:
        cosine = 1.0
    elif norm_g == 0 or norm_w == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(g, w) / (norm_g * norm_w))
    diff_norm = float(np.linalg.norm(g - w))
    l2_rel = 0.0 if diff_norm == 0 else (diff_norm / norm_w if norm_w else float("inf"))
    ref_top1 = int(np.argmax(np.asarray(reference[0]).reshape(-1)))
    return OutputCheck(mismatches == 0, max_diff, mismatches, elements, cosine, l2_rel, ref_top1)


def bit_exact(device: list[np.ndarray], reference: list[np.ndarray]) -> OutputCheck:
    return compare_outputs(device, reference)
