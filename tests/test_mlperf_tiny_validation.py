"""timing/validation-mlperf-tiny.toml: the MLPerf Tiny v0.5 comparison is
complete and rerunnable as stored.

The file is written by benchmarks/mlperf_tiny.py from models and a TFLM tree
fetched outside the project (not in CI); this only reads what it stored, so
a hand edit that drops the command, the confounders or a published figure is
caught, and the error band harness/timing/validation.py derives from it is
the largest error the file holds.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from harness.timing.validation import comparisons, error_band

FILE = Path(__file__).resolve().parent.parent / "timing" / "validation-mlperf-tiny.toml"
BENCHMARKS = {"keyword_spotting", "visual_wake_words", "image_classification", "anomaly_detection"}


@pytest.fixture(scope="module")
def data() -> dict:
    if not FILE.exists():
        pytest.skip(f"{FILE.name} not written yet (benchmarks/mlperf_tiny.py --write)")
    return tomllib.loads(FILE.read_text())


def test_every_benchmark_has_its_figures_command_and_confounders(data):
    entries = data["mlperf_tiny"]
    assert BENCHMARKS <= set(entries), "all four v0.5 benchmarks"
    for name, e in entries.items():
        assert e["command"].startswith("python benchmarks/mlperf_tiny.py"), name
        assert len(e["confounders"]) >= 5 and all(isinstance(c, str) and c for c in e["confounders"]), name
        for key in ("published_ms", "estimated_ms", "published_uj", "estimated_uj", "cycles_estimate", "instructions"):
            assert e[key] > 0, (name, key)
        assert e["error_pct"] == pytest.approx(100 * (e["estimated_ms"] - e["published_ms"]) / e["published_ms"], abs=0.06)
        assert e["energy_error_pct"] == pytest.approx(
            100 * (e["estimated_uj"] - e["published_uj"]) / e["published_uj"], abs=0.06)
        assert e["model"] == "cortex-m4" and e["engine"] and e["kernels"], name


def test_error_band_is_the_largest_error_stored(data):
    worst = max(abs(e["error_pct"]) for e in data["mlperf_tiny"].values())
    found = [c for c in comparisons("cortex-m4") if c.file.endswith(FILE.name)]
    assert len(found) == len(data["mlperf_tiny"])
    assert max(abs(c.error_pct) for c in found) == pytest.approx(worst)
    assert "MLPerf Tiny" in error_band("cortex-m4")
