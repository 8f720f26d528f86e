"""Checks against the user's own truth, beside the TFLM reference:

- expected outputs: the `output_<k>` arrays of the user's vector file (or
  of `--expected FILE`), compared with the device's outputs element by
  element, exactly or within an absolute tolerance in output units;
- the float model the tested model was quantized from (`--float-model`),
  run on the host on the same inputs (harness/model/float_reference.py):
  how often the device's top-1 agrees with it, how close the dequantized
  outputs are (cosine, relative L2), and the accuracy of each on labelled
  vectors: what quantization costs, measured on the device.

`UserTruth` is the runner's one handle on both (prepared before boot,
asked once per vector); `summarize` makes the `expected` and `float`
entries of a hil.result/1 summary; `suite_check` judges the hil.toml
checks of the same names (checks/suite.py).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..model.float_reference import FloatReference, dequantize, load_float_model
from ..model.tflite import ModelInfo
from ..model.vectors import VectorSet, expected_outputs
from .metrics import closeness, describe_mismatch, worst_element

log = logging.getLogger(__name__)

#: hil.toml checks decided here: name -> (type, meaning) (harness/config.py CHECKS)
CHECKS = {
    "expected": (bool, "every output equals the vector file's output_<k> arrays (within vectors.expected_tolerance)"),
    "float_top1_agreement_min": (float, "fraction of vectors whose top-1 equals the float model's (float_model)"),
    "float_cosine_min": (float, "mean cosine similarity of the dequantized outputs to the float model's "
                                "(float_model)"),
    "float_accuracy_drop_max": (float, "largest drop of top-1 accuracy from the float model to the device "
                                       "(float_model, labelled vectors)"),
}
FLOAT_CHECKS = tuple(name for name in CHECKS if name.startswith("float_"))


def compare_expected(device: list[np.ndarray], expected: list[np.ndarray], tolerance: float) -> dict:
    """One vector against its expected outputs: `passed` when every element
    is within `tolerance` (output units), the largest difference, and where
    they differ most (the `mismatch` shape of hil.result/1)."""
    elements = differ = 0
    largest = 0.0
    worst, worst_rank = None, (False, 0.0)
    for k, (got, want) in enumerate(zip(device, expected)):
        shape = np.shape(want)
        got, want = np.asarray(got).reshape(-1), np.asarray(want).reshape(-1)
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        elements += diff.size
        over = ~(diff <= tolerance)  # a NaN is never within tolerance
        differ += int(np.count_nonzero(over))
        if diff.size:
            rank, element = worst_element(k, got, want, shape, diff)
            largest = max(largest, rank[1])
            if over.any() and (worst is None or rank > worst_rank):
                worst, worst_rank = element, rank
    record: dict[str, object] = {"passed": differ == 0, "max_abs_diff": largest}
    if differ and worst is not None:  # an element over the tolerance is the worst one
        record["mismatch"] = {"elements": elements, "differ": differ, **worst}
    return record


def float_agreement(device: list[np.ndarray], model: ModelInfo, reference: list[np.ndarray]) -> dict:
    """One vector's dequantized device outputs against the float model's:
    top-1 of each (first output), cosine similarity and relative L2 error
    over all outputs."""
    got = np.concatenate([dequantize(o, spec).reshape(-1) for o, spec in zip(device, model.outputs)])
    want = np.concatenate([np.asarray(r, dtype=np.float64).reshape(-1) for r in reference])
    cosine, l2_rel = closeness(got, want)
    return {"top1": int(np.argmax(np.asarray(device[0]).reshape(-1))),
            "float_top1": int(np.argmax(np.asarray(reference[0]).reshape(-1))),
            "cosine": round(cosine, 9), "l2_rel": l2_rel if math.isfinite(l2_rel) else None}  # strict JSON


class UserTruth:
    """What one run checks beyond the reference: expected outputs and/or a
    float model, prepared (and validated: exit 2) before anything boots."""

    def __init__(self, model: ModelInfo, vectors: VectorSet, expected: list[np.ndarray] | None,
                 tolerance: float, float_reference: FloatReference | None) -> None:
        self.model, self.vectors = model, vectors
        self.expected, self.tolerance = expected, tolerance
        self.float_reference = float_reference

    @classmethod
    def prepare(cls, model: ModelInfo, vectors: VectorSet, *, expected: bool = False,
                expected_file: Path | None = None, tolerance: float = 0.0,
                float_model: Path | None = None) -> "UserTruth | None":
        """None when the run checks neither; records what is checked in the
        vector source (hil.result/1 `vector_source`)."""
        if not (expected or expected_file or float_model):
            if tolerance:
                raise UsageError("--expected-tolerance without --expected",
                                 hint="add --expected (the output_<k> arrays of --inputs) or --expected FILE")
            return None
        if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
            raise UsageError(f"the expected-output tolerance must be a number >= 0 (got {tolerance!r})",
                             hint="an absolute difference in output units: 0 (exact), 1 (one int8 step), ...")
        arrays = None
        if expected or expected_file:
            arrays = expected_outputs(vectors, model, Path(expected_file) if expected_file else None)
            vectors.source["expected"] = {"file": str(expected_file or vectors.source["path"]),
                                          "outputs": [f"output_{k}" for k in range(len(arrays))],
                                          "tolerance": tolerance}
        reference = None
        if float_model:
            loaded = load_float_model(Path(float_model), model)
            reference = FloatReference(loaded, model)
            vectors.source["float_model"] = {
                "path": str(loaded.path), "sha256": loaded.sha256,
                "inputs": "the device's inputs dequantized with the model's input scale and zero point"
                if any(np.dtype(s.dtype).kind in "iu" for s in model.inputs) else "the device's inputs"}
        return cls(model, vectors, arrays, float(tolerance), reference)

    def start(self) -> None:
        """Start the float model on every vector (a child process, alongside the device)."""
        if self.float_reference is not None:
            self.float_reference.submit(self.vectors.vectors)

    def check(self, index: int, outputs: list[np.ndarray]) -> tuple[dict | None, dict | None]:
        """(expected, float) records of one vector's device outputs."""
        expected = None
        if self.expected is not None:
            expected = compare_expected(outputs, [e[index] for e in self.expected], self.tolerance)
        agreement = None
        if self.float_reference is not None:
            agreement = float_agreement(outputs, self.model, self.float_reference.output(index))
        return expected, agreement

    def failed(self, vectors) -> bool:
        """A vector whose outputs differ from the expected ones fails the run."""
        return any(v.expected is not None and not v.expected["passed"] for v in vectors)

    def close(self) -> None:
        if self.float_reference is not None:
            self.float_reference.close()


def summarize(vectors, source: dict) -> dict:
    """The `expected` and `float` entries of a run's summary (only those the
    run checked). `vectors` are VectorResults."""
    summary = {}
    checked = [v for v in vectors if v.expected is not None]
    if checked:
        matched = [v for v in checked if v.expected["passed"]]
        first = next((v for v in checked if not v.expected["passed"]), None)
        summary["expected"] = {
            "checked": len(checked), "matched": len(matched),
            "max_abs_diff": max(v.expected["max_abs_diff"] for v in checked),
            "tolerance": (source.get("expected") or {}).get("tolerance", 0.0),
            "first_mismatch": None if first is None else {"vector": first.index, **first.expected["mismatch"]},
        }
    compared = [v for v in vectors if v.float_ref is not None]
    if compared:
        n = len(compared)
        agree = sum(v.float_ref["top1"] == v.float_ref["float_top1"] for v in compared)
        l2 = [v.float_ref["l2_rel"] for v in compared if v.float_ref["l2_rel"] is not None]
        labelled = [v for v in compared if v.label is not None]
        accuracy = float_accuracy = None
        if labelled:
            accuracy = sum(v.float_ref["top1"] == v.label for v in labelled) / len(labelled)
            float_accuracy = sum(v.float_ref["float_top1"] == v.label for v in labelled) / len(labelled)
        summary["float"] = {
            "vectors": n, "top1_agreement": agree / n, "top1_agreeing": agree,
            "cosine_mean": sum(v.float_ref["cosine"] for v in compared) / n,
            "cosine_min": min(v.float_ref["cosine"] for v in compared),
            "l2_rel_mean": sum(l2) / len(l2) if l2 else None,
            "l2_rel_max": max(l2) if l2 else None,
            "accuracy": accuracy, "float_accuracy": float_accuracy,
            "labelled": len(labelled),
            "model": (source.get("float_model") or {}).get("path"),
        }
    return summary


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _first_differing(e: dict) -> str:
    """'; first differing: vector 3: ...' for an `expected` summary with a mismatch, else ''."""
    m = e["first_mismatch"]
    return f"; first differing: vector {m['vector']}: {describe_mismatch(m)}" if m else ""


def describe(summary: dict) -> list[tuple[str, bool]]:
    """Console lines for a run's `expected` and `float` summary: (text, failed)."""
    lines = []
    e = summary.get("expected")
    if e:
        tol = f"within {e['tolerance']:g}" if e["tolerance"] else "exactly"
        text = f"expected outputs: {e['matched']}/{e['checked']} vectors match {tol}{_first_differing(e)}"
        lines.append((text, e["matched"] != e["checked"]))
    f = summary.get("float")
    if f:
        text = (f"float model {Path(f['model'] or '').name} on the same inputs: top-1 agreement "
                f"{_pct(f['top1_agreement'])} ({f['top1_agreeing']}/{f['vectors']}), cosine mean "
                f"{f['cosine_mean']:.5f} (min {f['cosine_min']:.5f})")
        if f["l2_rel_mean"] is not None:
            text += f", relative L2 mean {f['l2_rel_mean']:.3g}"
        if f["accuracy"] is not None:
            drop = f["float_accuracy"] - f["accuracy"]
            text += (f"; top-1 accuracy on {f['labelled']} labelled: device {_pct(f['accuracy'])}, float "
                     f"{_pct(f['float_accuracy'])} ({'drop' if drop >= 0 else 'gain'} {abs(drop) * 100:.1f} points)")
        lines.append((text, False))
    return lines


def job_metrics(summary: dict) -> dict:
    """The suite job metrics `hil compare` tracks (fractions, higher is better)."""
    e, f = summary.get("expected"), summary.get("float")
    return {"float_top1_agreement": f["top1_agreement"] if f else None,
            "float_cosine": f["cosine_mean"] if f else None,
            "expected_match": e["matched"] / e["checked"] if e and e["checked"] else None}


def suite_check(name: str, limit, summary: dict) -> tuple[str, str, float | None, float | None]:
    """(status, message, measured, limit) for one check of CHECKS."""
    if name == "expected":
        e = summary.get("expected")
        if not e:
            return "error", "no expected outputs were checked (vectors = { file = ..., expected = true })", None, None
        ok = e["matched"] == e["checked"] and e["checked"] > 0
        tol = f" within {e['tolerance']:g}" if e["tolerance"] else ""
        message = f"{e['matched']}/{e['checked']} vectors match the expected outputs{tol}{_first_differing(e)}"
        return ("passed" if ok else "failed", message, e["matched"] / e["checked"] if e["checked"] else None, 1.0)
    f = summary.get("float")
    if not f:
        return "error", f"{name} needs a float model (float_model = \"...\" in the [[models]] entry)", None, limit
    if name == "float_top1_agreement_min":
        value = f["top1_agreement"]
        return ("passed" if value >= limit else "failed", f"top-1 agrees with the float model on {_pct(value)} "
                f"({f['top1_agreeing']}/{f['vectors']}, min {_pct(limit)})", value, limit)
    if name == "float_cosine_min":
        value = f["cosine_mean"]
        return ("passed" if value >= limit else "failed", f"mean cosine similarity to the float model "
                f"{value:.6f} (min {limit}; smallest {f['cosine_min']:.6f})", value, limit)
    if name == "float_accuracy_drop_max":
        if f["accuracy"] is None:
            return "error", "float_accuracy_drop_max needs labelled vectors (an .npz with `labels`)", None, limit
        drop = f["float_accuracy"] - f["accuracy"]
        return ("passed" if drop <= limit else "failed", f"top-1 accuracy: device {_pct(f['accuracy'])}, float "
                f"{_pct(f['float_accuracy'])}: a drop of {drop * 100:.1f} points (max {limit * 100:.1f})",
                drop, limit)
    raise ValueError(f"unknown check {name}")
