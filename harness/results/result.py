"""The result of one run, as the versioned JSON document `hil.result/1`.

Written atomically (temporary file + rename) at the start, as vectors
complete, and at the end, so a run that is interrupted or killed part-way
leaves a valid document with everything obtained so far.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    top1: int | None = None   # argmax of the first output (classifiers)
    label: int | None = None  # expected class, when the vectors are labelled

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def as_dict(self) -> dict:
        d = {"index": self.index, "status": self.status, "passed": self.passed,
             "max_abs_diff": self.max_abs_diff, "mismatches": self.mismatches}
        if self.count is not None:
            d["count"] = self.count
        if self.error:
            d["error"] = self.error
        if self.top1 is not None:
            d["top1"] = self.top1
        if self.label is not None:
            d["label"] = self.label
        return d


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
            summary["count"] = {"kind": kind, "min": min(counts), "max": max(counts),
                                "mean": sum(counts) / len(counts)}
        labelled = [v for v in self.vectors if v.label is not None and v.top1 is not None]
        if labelled:
            correct = sum(v.top1 == v.label for v in labelled)
            summary["accuracy"] = {"correct": correct, "total": len(labelled),
                                   "top1": correct / len(labelled)}
        return summary

    def as_dict(self) -> dict:
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
            "vectors": [v.as_dict() for v in self.vectors],
            "summary": self.summary(),
            "error": self.error,
            "fault": self.fault,
            "timings": self.timings,
        }


def write_json_atomic(path: Path, document: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(document, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
