"""Output comparisons for one vector. Bit-exact is the default check: the
built-in engine and TFLM use the same integer math, so any difference is a
bug. The other measures (max |diff| in LSB, cosine similarity, relative L2
error, top-1 agreement) serve suites that compare against a different
reference or allow a tolerance (checks/suite.py)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutputCheck:
    passed: bool           # bit-exact
    max_abs_diff: float    # in output units (LSB for integer outputs)
    mismatches: int        # elements that differ
    elements: int
    cosine: float          # over all outputs, dequantized; 1.0 when both are zero
    l2_rel: float          # ||got - want|| / ||want||, dequantized; 0.0 when equal
    ref_top1: int          # argmax of the reference's first output
    detail: dict | None = None  # where they differ most: `mismatch` in hil.result/1 (None when bit-exact)


def _real(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    v = values.astype(np.float64).reshape(-1)
    return (v - zero_point) * scale if scale else v


def _scalar(value) -> int | float | str:
    """A JSON value for one output element (non-finite floats as text)."""
    value = value.item()
    return value if not isinstance(value, float) or math.isfinite(value) else repr(value)


def worst_element(output: int, got: np.ndarray, want: np.ndarray, shape: tuple,
                  diff: np.ndarray) -> tuple[tuple[bool, float], dict]:
    """The element that differs most, and how it ranks against the worst
    of other outputs: flat index, position in the output's shape, and both
    values. A NaN difference ranks first (its max_abs_diff is None, a
    non-finite value is written as text)."""
    here = float(np.nanmax(diff)) if not np.isnan(diff).all() else 0.0
    rank = (bool(np.isnan(diff).any()), here)
    where = np.flatnonzero(np.isnan(diff))
    i = int(where[0]) if where.size else int(np.argmax(diff))
    position = [int(x) for x in np.unravel_index(i, shape)] if len(shape) > 1 else None
    return rank, {"output": output, "worst_index": i, "worst_position": position, "expected": _scalar(want[i]),
                  "got": _scalar(got[i]), "max_abs_diff": float(diff[i]) if np.isfinite(diff[i]) else None}


def describe_mismatch(m: dict) -> str:
    """'3/10 elements differ; largest |diff| 17 at [0, 4] (flat 4): got -111, expected -128'."""
    if m.get("worst_index") is None:
        return f"{m.get('note') or 'outputs differ'}"
    at = f"[{', '.join(map(str, m['worst_position']))}] (flat {m['worst_index']})" if m.get("worst_position") \
        else f"index {m['worst_index']}"
    out = f"output {m['output']} " if m.get("output") else ""
    diff = m["max_abs_diff"]
    diff = f"{diff:g}" if diff is not None else "not a number"
    return (f"{m['differ']}/{m['elements']} elements differ; largest |diff| {diff} at {out}{at}: "
            f"got {m['got']}, expected {m['expected']}")


def closeness(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """Cosine similarity and relative L2 error of `got` against `want`
    (real values, flat). Two zero vectors are identical; against a zero
    reference any difference is infinitely large."""
    norm_g, norm_w = float(np.linalg.norm(got)), float(np.linalg.norm(want))
    if norm_g == 0 and norm_w == 0:
        cosine = 1.0
    elif norm_g == 0 or norm_w == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(got, want) / (norm_g * norm_w))
    diff = float(np.linalg.norm(got - want))
    return cosine, 0.0 if diff == 0 else (diff / norm_w if norm_w else float("inf"))


def _identical(device: list[np.ndarray], reference: list[np.ndarray], quant: list[tuple[float, int]]) -> OutputCheck | None:
    """The check of outputs equal bit for bit (nearly every vector), with the
    figures the general path computes, from the reference's values alone:
    for equal arrays norm(got) is norm(want), dot(got, want) is dot(want,
    want) and got - want is zero. None when any output differs."""
    if len(device) != len(reference) or len(quant) != len(reference):
        return None
    wants, elements = [], 0
    for got, want, (scale, zp) in zip(device, reference, quant):
        got, want = np.asarray(got), np.asarray(want)
        if got.dtype != want.dtype or got.size != want.size or got.tobytes() != want.tobytes():
            return None
        elements += want.size
        wants.append(_real(want, scale, zp))
    real = wants[0] if len(wants) == 1 else np.concatenate(wants)
    norm = math.sqrt(float(real.dot(real)))  # np.linalg.norm's own sum for a flat real vector
    if not math.isfinite(norm):
        return None  # NaN or infinity: the general path's figures (NaN, not 0.0) are the ones
    cosine = 1.0 if norm == 0 else float(np.dot(real, real) / (norm * norm))
    return OutputCheck(True, 0.0, 0, elements, cosine, 0.0, int(np.argmax(np.asarray(reference[0]).reshape(-1))))


def compare_outputs(device: list[np.ndarray], reference: list[np.ndarray],
                    quant: list[tuple[float, int]] | None = None) -> OutputCheck:
    quant = quant or [(0.0, 0)] * len(reference)
    same = _identical(device, reference, quant)
    if same is not None:
        return same
    max_diff, mismatches, elements = 0.0, 0, 0
    worst, worst_rank = None, (False, 0.0)
    got_all, want_all = [], []
    for k, (got, want, (scale, zp)) in enumerate(zip(device, reference, quant, strict=True)):
        shape = np.shape(want)
        got, want = np.asarray(got).reshape(-1), np.asarray(want).reshape(-1)
        elements += want.size
        if got.size != want.size:
            sizes = {"elements": elements, "differ": max(got.size, want.size), "worst_index": None,
                     "expected": None, "got": None, "max_abs_diff": None, "output": k,
                     "note": f"output {k}: the device gave {got.size} elements, the reference {want.size}"}
            return OutputCheck(False, float("inf"), max(got.size, want.size), elements, 0.0, float("inf"), -1,
                               sizes)
        differ = got.view(np.uint8) != want.view(np.uint8)  # bits, so NaNs and -0.0 count
        if differ.any():
            mismatches += int(np.count_nonzero(got != want) or 1)
            diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
            rank, element = worst_element(k, got, want, shape, diff)
            if worst is None or rank > worst_rank:
                worst, worst_rank = element, rank
            max_diff = max(max_diff, rank[1])
        got_all.append(_real(got, scale, zp))
        want_all.append(_real(want, scale, zp))
    cosine, l2_rel = closeness(np.concatenate(got_all), np.concatenate(want_all))
    ref_top1 = int(np.argmax(np.asarray(reference[0]).reshape(-1)))
    detail = None if worst is None else {"elements": elements, "differ": mismatches, **worst}
    return OutputCheck(mismatches == 0, max_diff, mismatches, elements, cosine, l2_rel, ref_top1, detail)


def bit_exact(device: list[np.ndarray], reference: list[np.ndarray]) -> OutputCheck:
    return compare_outputs(device, reference)
