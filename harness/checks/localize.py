"""Judging localisation data: whether one intermediate tensor read from the
device differs from the reference's, and the words for a `localization`
entry. The device is driven by the run's localisation step
(harness/localize.py); this module only looks at the bytes it is given."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)

#: operators whose state partial invokes would change: such a model is not localised
STATEFUL = frozenset({"VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE"})


def divergence(got_bytes: bytes, want, dtype) -> dict | None:
    """None when the device's tensor (raw bytes) equals the reference's
    array bit for bit; else how it differs (largest |diff|, elements that
    differ, elements), as the result's `first_divergence` holds it."""
    got = np.frombuffer(got_bytes, dtype=dtype)
    want = np.asarray(want).reshape(-1)
    if got.size == want.size and got.tobytes() == want.astype(dtype).tobytes():
        return None
    diff = (np.abs(got.astype(np.float64) - want.astype(np.float64))
            if got.size == want.size else np.array([np.inf]))
    return {"max_abs_diff": float(np.nanmax(diff)), "mismatches": int(np.count_nonzero(diff)),
            "elements": int(want.size)}


def describe(entry: dict) -> str:
    if entry.get("skipped"):
        return f"not localised: {entry['skipped']}"
    d = entry.get("first_divergence")
    if d is None:
        return f"all {entry['tensors_checked']} intermediate tensors match the reference (vector {entry['vector']})"
    return (f"first divergence at operator {d['op_index']} ({d['op']}), tensor {d['tensor']} "
            f"'{d['tensor_name']}': {d['mismatches']}/{d['elements']} elements differ, largest |diff| "
            f"{d['max_abs_diff']:g} (vector {entry['vector']})")
