"""The result of one run, as the versioned JSON document `hil.result/1`.

Written atomically (temporary file + rename) at the start, as vectors
complete, and at the end, so a run that is interrupted or killed part-way
leaves a valid document with everything obtained so far.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import DiskError

log = logging.getLogger(__name__)

SCHEMA = "hil.result/1"

# vector statuses
PASSED, MISMATCH, FAULT, TIMEOUT, ERROR, NOT_RUN = "passed", "mismatch", "fault", "timeout", "error", "not_run"
FIRMWARE_FAILURES = {MISMATCH, FAULT, TIMEOUT, ERROR}


@dataclass
class VectorResult:
    index: int
    status: str
    max_abs_diff: float | None = None
    mismatches: int | None = None
    count: dict | None = None
    error: str | None = None
    cycles: dict | None = None  # the timing model's cycles estimate of this invoke (harness/timing)
    operators: list[dict] | None = None  # per-operator counts of this invoke
    energy: dict | None = None  # estimated energy of this inference
    top1: int | None = None   # argmax of the first output (classifiers)
    ref_top1: int | None = None  # the same for the reference
    cosine: float | None = None  # cosine similarity with the reference (dequantized)
    l2_rel: float | None = None  # relative L2 error against the reference
    label: int | None = None  # expected class, when the vectors are labelled
    mismatch: dict | None = None  # where the outputs differ most (checks/metrics.py OutputCheck.detail)
    expected: dict | None = None  # against the user's expected outputs (checks/truth.py compare_expected)
    float_ref: dict | None = None  # against the float model, as "float" (checks/truth.py float_agreement)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def as_dict(self) -> dict:
        d = {"index": self.index, "status": self.status, "passed": self.passed,
             "max_abs_diff": self.max_abs_diff, "mismatches": self.mismatches}
        if self.count is not None:
            d["count"] = self.count
        if self.cycles is not None:
            d["cycles"] = self.cycles
        if self.energy is not None:
            d["energy"] = self.energy
        if self.operators is not None:
            d["operators"] = self.operators
        if self.error:
            d["error"] = self.error
        if self.cosine is not None:
            d["cosine"] = round(self.cosine, 9)
            d["l2_rel"] = self.l2_rel if self.l2_rel != float("inf") else None
        if self.top1 is not None:
            d["top1"] = self.top1
        if self.ref_top1 is not None:
            d["ref_top1"] = self.ref_top1
        if self.label is not None:
            d["label"] = self.label
        if self.mismatch is not None:
            d["mismatch"] = self.mismatch
        if self.expected is not None:
            d["expected"] = self.expected
        if self.float_ref is not None:
            d["float"] = self.float_ref
        return d


class _Stats(Protocol):
    def as_dict(self) -> dict: ...


@dataclass
class RunResult:
    platform: dict
    model: dict
    started: float = field(default_factory=time.time)
    status: str = "running"
    exit_code: int | None = None
    firmware: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    device: dict = field(default_factory=dict)
    vector_source: dict = field(default_factory=dict)
    vectors: list[VectorResult] = field(default_factory=list)
    error: dict | None = None
    fault: dict | None = None
    timings: dict = field(default_factory=dict)
    planned: int = 0
    memory: dict = field(default_factory=dict)
    count_overhead: dict | None = None
    energy_model: dict | None = None
    energy_basis: dict | None = None  # the label of every energy figure (power/energy.py EnergyModel.basis)
    cycles_basis: dict | None = None  # the label of every cycles and latency estimate (harness/timing)
    battery: dict | None = None  # average power and battery life (power/battery.py), with --rate/--battery-mah
    budgets: list[dict] = field(default_factory=list)
    localization: dict | None = None
    provenance: dict | None = None  # reference, toolchain, emulator, engine versions (harness/provenance.py)
    link: _Stats | None = None  # the link's LinkStats (harness/link/protocol.py), live during the run
    _encoded: list[tuple[VectorResult, str]] = field(default_factory=list, repr=False, compare=False)  # as_json's

    def summary(self) -> dict:
        by_status: dict[str, int] = {}
        for v in self.vectors:
            by_status[v.status] = by_status.get(v.status, 0) + 1
        run = len(self.vectors)
        passed = by_status.get(PASSED, 0)
        counts = [v.count["value"] for v in self.vectors if v.count]
        summary = {"total": self.planned or run, "run": run, "passed": passed,
                   "failed": run - passed, "not_run": max(0, (self.planned or run) - run),
                   "by_status": by_status}
        if counts:
            kind = next(v.count["kind"] for v in self.vectors if v.count)
            summary["count"] = {"kind": kind, **_spread(counts)}
        estimates = [v.cycles for v in self.vectors if v.cycles]
        if estimates:  # the timing model's estimate: labelled, with its band (cycles_basis)
            latencies = [c["latency_ms"] for c in estimates if c.get("latency_ms") is not None]
            summary["cycles"] = {"kind": "cycles_estimate", "estimate": True, "model": estimates[0].get("model"),
                                 **_spread([c["value"] for c in estimates])}
            if latencies:
                summary["latency_ms"] = {"estimate": True, "clock_hz": estimates[0].get("clock_hz"), **_spread(latencies)}
            summary["cycles_basis"] = self.cycles_basis
        energies = [v.energy["uj"] for v in self.vectors if v.energy]
        if energies:
            basis = next(v.energy["basis"] for v in self.vectors if v.energy)
            summary["energy_uj"] = {"basis": basis, "estimate": True, **_spread(energies)}
            summary["energy_basis"] = self.energy_basis
        ops = _operator_summary(self.vectors)
        if ops:
            summary["operators"] = ops
        if self.budgets:
            summary["budgets_passed"] = all(b["passed"] for b in self.budgets)
        labelled = [v for v in self.vectors if v.label is not None and v.top1 is not None]
        if labelled:
            correct = sum(v.top1 == v.label for v in labelled)
            summary["accuracy"] = {"correct": correct, "total": len(labelled),
                                   "top1": correct / len(labelled)}
        from ..checks.truth import summarize as truth_summary  # `expected` and `float` (the user's truth)

        summary.update(truth_summary(self.vectors, self.vector_source))
        return summary

    def snapshot(self) -> tuple[dict, list[VectorResult]]:
        """What `as_json` encodes, taken at once: the document without its
        vectors, and the vectors so far (a writer copies this under its lock
        and encodes it after, while vectors keep arriving)."""
        return self.as_dict(vectors=False), list(self.vectors)

    def as_json(self, snapshot: tuple[dict, list[VectorResult]] | None = None) -> str:
        """`as_dict()` as `write_json_atomic` writes it, byte for byte, with
        each vector encoded once: a run rewrites its document every second or
        so, and encoding every vector again each time made a 1,000-vector run
        spend more on its result file than on the device (json's indented
        encoder is pure Python). A recorded VectorResult is final; one caller
        at a time (the encodings are kept here)."""
        doc, vectors = snapshot or self.snapshot()
        encoded = self._encoded
        del encoded[len(vectors):]
        for i, v in enumerate(vectors):
            if i == len(encoded) or encoded[i][0] is not v:  # new, or replaced since
                text = _indented(json.dumps(v.as_dict(), indent=2), "    ")
                encoded[i:i + 1] = [(v, text)]
        head, tail = json.dumps(doc, indent=2).split(f'"vectors": {json.dumps(_SPLICE)}', 1)
        body = "[\n" + ",\n".join(text for _, text in encoded) + "\n  ]" if vectors else "[]"
        return f'{head}"vectors": {body}{tail}\n'

    def as_dict(self, vectors: bool = True) -> dict:
        return {
            "schema": SCHEMA,
            "status": self.status,
            "exit_code": self.exit_code,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "duration_s": round(time.time() - self.started, 3),
            "platform": self.platform,
            "model": self.model,
            "firmware": self.firmware,
            "target": self.target,
            "device": self.device,
            "vector_source": self.vector_source,
            "vectors": [v.as_dict() for v in self.vectors] if vectors else _SPLICE,
            "summary": self.summary(),
            "error": self.error,
            "fault": self.fault,
            "memory": self.memory,
            "count_overhead": self.count_overhead,
            "energy_model": self.energy_model,
            "cycles_basis": self.cycles_basis,
            "battery": self.battery,
            "budgets": self.budgets,
            "localization": self.localization,
            "provenance": self.provenance,
            "link": self.link.as_dict() if self.link is not None else None,
            "timings": self.timings,
        }


_SPLICE = "\x00vectors"  # as_json's stand-in for the vectors: no JSON value encodes to it


def _indented(text: str, prefix: str) -> str:
    return prefix + text.replace("\n", "\n" + prefix)


def _spread(values: list[float]) -> dict:
    ordered = sorted(values)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return {"min": ordered[0], "median": median, "max": ordered[-1], "mean": sum(ordered) / n}


def _operator_summary(vectors: list[VectorResult]) -> list[dict]:
    """Median count per operator over the vectors, with its share of the sum."""
    profiled = [v.operators for v in vectors if v.operators]
    if not profiled:
        return []
    first = profiled[0]
    rows = []
    for i, op in enumerate(first):
        values = [ops[i]["count"] for ops in profiled if i < len(ops)]
        row = {"index": op["index"], "op": op["op"], "median": _spread(values)["median"]}
        cycles = [ops[i]["cycles"] for ops in profiled if i < len(ops) and ops[i].get("cycles") is not None]
        if cycles:  # the timing model's estimate for this operator (harness/timing)
            row["cycles_median"] = _spread(cycles)["median"]
        rows.append(row)
    total = sum(r["median"] for r in rows) or 1
    for r in rows:
        r["share"] = r["median"] / total
    return rows


def write_text_atomic(path: Path, text: str, what: str = "results") -> None:
    """Write a file so that a reader sees the old or the new text, never half:
    a temporary file in the same directory, then a rename. A disk that is
    full, read-only or not ours raises DiskError naming the path (exit 3),
    and leaves the previous file as it was."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(exc, OSError):
            raise DiskError.writing(what, path, exc) from exc
        raise


def write_json_atomic(path: Path, document: dict, what: str = "results") -> None:
    write_text_atomic(path, json.dumps(document, indent=2) + "\n", what)


#: what a run directory keeps of its emulator's output (harness/targets write them)
EMULATOR_LOGS = ("qemu.log", "renode.log")


def emulator_log(run_dir: Path) -> Path | None:
    """The emulator log a run directory holds, if any."""
    return next((run_dir / name for name in EMULATOR_LOGS if (run_dir / name).is_file()), None)


def write_json_copies(paths: list[Path], document: dict | str) -> DiskError | None:
    """Write every copy of a document (the run directory's, --json) on its
    own, so that a disk that fails for one cannot cost the others theirs;
    `document` is the dict, or its JSON text already encoded. Returns the
    first failure, if any, for the caller to end with."""
    failed = None
    text = document if isinstance(document, str) else json.dumps(document, indent=2) + "\n"
    for path in paths:
        try:
            write_text_atomic(path, text)
        except DiskError as exc:
            failed = failed or exc
    return failed
