"""benchmarks/faults.py, the fault benchmark of issue 11: its classifier
(one class per case, the most serious first) on hand-made outcomes, and
one real category (console mode: real firmware, real QEMU, `hil console`
in subprocesses) end to end, table and JSON included."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, requires_qemu

sys.path.insert(0, str(REPO / "benchmarks"))

import faults  # noqa: E402


def _case(tmp_path: Path, **kw) -> faults.Case:
    defaults = dict(category="inputs", name="n", argv=[], expect=(2,), keywords=("cut\\.npz",),
                    forbidden=(r"\bhung\b",), json_copy=tmp_path / "r.json", run_dir=tmp_path / "run",
                    dir=tmp_path)
    return faults.Case(**{**defaults, **kw})


@pytest.mark.parametrize("exit_code, output, leaks, hung, doc, expected", [
    (2, "error: cut.npz is damaged", [], False, None, "right"),
    (2, "error: cut.npz", [], True, None, "hang"),
    (3, "error: internal error in hil: ValueError", [], False, None, "internal error"),
    (1, 'Traceback (most recent call last):\n  File "x"', [], False, None, "internal error"),
    (1, "error: cut.npz", [], False, None, "wrong"),
    (2, "error: cut.npz", ["process 12: qemu-system-arm"], False, None, "leak"),
    (2, "error: the inputs file is damaged", [], False, None, "misread"),
    (2, "error: cut.npz: invoke hung", [], False, None, "misread"),
    (2, "error: cut.npz", [], False, {"status": "running", "exit_code": None, "vectors": []}, "lost"),
    (2, "error: cut.npz", [], False, {"status": "error", "exit_code": 3, "vectors": []}, "lost"),
])
def test_each_outcome_gets_exactly_one_class(tmp_path, exit_code, output, leaks, hung, doc, expected):
    case = _case(tmp_path)
    record = {"exit_code": exit_code, "leaks": leaks}
    assert faults.classify(case, record, output, hung, None, doc)[0] == expected


def test_results_missing_from_the_json_copy_are_lost(tmp_path):
    case = _case(tmp_path, expect=(3,), keywords=())
    run_doc = {"status": "error", "exit_code": 3, "vectors": [{}] * 50}
    json_doc = {"status": "error", "exit_code": 3, "vectors": [{}] * 4}
    cls, detail = faults.classify(case, {"exit_code": 3, "leaks": []}, "disk full", False, run_doc, json_doc)
    assert cls == "lost" and "4 vectors" in detail
    cls, _ = faults.classify(case, {"exit_code": 3, "leaks": []}, "disk full", False, run_doc, None)
    assert cls == "lost"


def test_table_has_a_row_per_category_and_totals():
    records: list[dict] = [{"category": "models", "class": "right"}, {"category": "models", "class": "wrong"},
                           {"category": "noise", "class": "right", "name": "BER 0.001 seed 0", "completed": True},
                           {"category": "noise", "class": "right", "name": "BER 0.001 seed 1", "completed": False}]
    text = faults.table(records, {"disk": "cannot mount"})
    assert "| models | 2 | 1 | 1 | 0 | 0 | 0 | 0 | 0 |" in text
    assert "| disk | skipped: cannot mount |" in text
    assert "| **total** | **4** | **3** | **1** |" in text
    summary = faults.noise_summary(records)["0.001"]
    assert (summary["runs"], summary["identical_to_clean"], summary["fraction"]) == (2, 1, 0.5)


@requires_qemu
@pytest.mark.qemu
def test_console_category_end_to_end(tmp_path):
    out = tmp_path / "faults.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "faults.py"), "--only", "console",
                           "--json", str(out)], capture_output=True, text=True, timeout=600)
    doc = json.loads(out.read_text())
    assert len(doc["cases"]) == 8 and all(c["class"] in faults.CLASSES for c in doc["cases"])
    assert all(c["command"].startswith("(cd ") and "console" in c["command"] for c in doc["cases"])
    assert "| console | 8 |" in proc.stdout and "| **total** | **8** |" in proc.stdout
    named = re.search(r"(/\S*/hil-faults-[^/]+)/", doc["cases"][0]["command"])
    assert named is not None
    work = named.group(1)
    assert not Path(work).exists()  # the work directory is removed without --keep
    assert proc.returncode == (0 if all(c["class"] == "right" for c in doc["cases"]) else 1)
