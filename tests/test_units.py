"""Fast host-only tests of the harness's data handling: platform files,
vector generation and loading, the result document, output comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.checks.metrics import bit_exact
from harness.errors import UsageError
from harness.model.tflite import TensorSpec
from harness.model.vectors import _fit
from harness.platforms import available, load_platform, load_platform_file
from harness.results.result import FAULT, PASSED, RunResult, VectorResult, write_json_atomic


def test_every_bundled_platform_file_loads():
    names = available()
    assert "mps2-an386" in names
    for name in names:
        p = load_platform(name)
        assert p.name == name and p.memory["code"].length > 0


def test_platform_sizes_must_fit_the_bulk_region(tmp_path):
    text = (load_platform("mps2-an386").path.read_text()
            .replace("arena_bytes = 0x100000", "arena_bytes = 0x2000000"))
    bad = tmp_path / "mps2-an386.toml"
    bad.write_text(text)
    with pytest.raises(UsageError, match="memory.bulk holds"):
        load_platform_file(bad)


def test_platform_toml_syntax_error_is_reported(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("name = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_platform_file(bad)


SPEC = TensorSpec(0, "in", (1, 4), np.dtype(np.int8), 0.5, 0)


def test_vectors_accept_single_and_batched_shapes():
    assert _fit(np.zeros((1, 4), np.int8), SPEC, "x").shape == (1, 1, 4)
    assert _fit(np.zeros((5, 1, 4), np.int8), SPEC, "x").shape == (5, 1, 4)
    assert _fit(np.zeros((5, 4), np.int8), SPEC, "x").shape == (5, 1, 4)  # batch dim of 1 omitted


def test_vectors_convert_dtype_only_without_loss():
    assert _fit(np.array([[[1, -2, 3, 127]]], np.int64), SPEC, "x").dtype == np.int8
    with pytest.raises(UsageError, match="do not fit"):
        _fit(np.array([[[1, 2, 3, 128]]], np.int64), SPEC, "x")


def test_bit_exact_counts_differences_and_signed_zero():
    same = bit_exact([np.array([1, 2], np.int8)], [np.array([1, 2], np.int8)])
    assert same.passed and same.max_abs_diff == 0
    off = bit_exact([np.array([1, 5, -3], np.int8)], [np.array([1, 2, -3], np.int8)])
    assert not off.passed and off.mismatches == 1 and off.max_abs_diff == 3
    zero = bit_exact([np.array([-0.0], np.float32)], [np.array([0.0], np.float32)])
    assert not zero.passed  # bit-exact means bits


def test_result_document_summary_and_atomic_write(tmp_path):
    r = RunResult(platform={"name": "p"}, model={"path": "m"}, planned=4)
    r.vectors += [VectorResult(0, PASSED, 0, 0, {"value": 400, "kind": "instructions"}, top1=1, label=1),
                  VectorResult(1, PASSED, 0, 0, {"value": 440, "kind": "instructions"}, top1=0, label=1),
                  VectorResult(2, FAULT, error="boom")]
    doc = r.as_dict()
    assert doc["schema"] == "hil.result/1"
    s = doc["summary"]
    assert (s["total"], s["run"], s["passed"], s["failed"], s["not_run"]) == (4, 3, 2, 1, 1)
    assert s["count"] == {"kind": "instructions", "min": 400, "median": 420, "max": 440, "mean": 420}
    assert s["accuracy"]["top1"] == 0.5
    path = tmp_path / "deep" / "r.json"
    write_json_atomic(path, doc)
    assert json.loads(path.read_text())["summary"] == s
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left
