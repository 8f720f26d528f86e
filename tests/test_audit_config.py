"""hil.toml values no run can meet, or that no run can use, are bad input
(exit 2) refused when the file is read, before anything builds or boots.
They used to reach the run: `tolerance_lsb = -1` and `cosine_min = 2`
FAILED a bit-exact firmware (exit 1, a verdict on the firmware);
`compare.count_pct = -1` made every unchanged count a regression;
`vectors = { random = 0 }` and `limit = 0` failed each job after the
suite had started. No emulator runs here."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from harness.errors import EXIT_USAGE, UsageError
from helpers import MODELS

DEMO = MODELS / "demo" / "gesture.tflite"
TEST_SET = MODELS / "demo" / "gesture_test.npz"


def _project(tmp_path: Path, *, checks: str = "", vectors: str = "{ random = 3, seed = 1 }", extra: str = "") -> Path:
    path = tmp_path / "hil.toml"
    path.write_text(f'[project]\nname = "p"\n[defaults.checks]\nbit_exact = true\n{checks}\n'
                    f'[[models]]\nname = "g"\npath = "{DEMO}"\nvectors = {vectors}\n{extra}')
    return path


@pytest.mark.parametrize("line, key", [
    ("tolerance_lsb = -1", "defaults.checks.tolerance_lsb"),
    ("cosine_min = 2.0", "defaults.checks.cosine_min"),
    ("cosine_min = -1.5", "defaults.checks.cosine_min"),
    ("l2_rel_max = -0.1", "defaults.checks.l2_rel_max"),
    ("top1_agreement_min = 1.5", "defaults.checks.top1_agreement_min"),
    ("accuracy_min = -0.2", "defaults.checks.accuracy_min"),
])
def test_a_check_limit_outside_what_the_measure_can_be_is_refused(tmp_path, line, key):
    with pytest.raises(UsageError) as caught:
        load_config(_project(tmp_path, checks=line))
    assert caught.value.exit_code == EXIT_USAGE and f"`{key}`" in str(caught.value)


@pytest.mark.parametrize("line", ["tolerance_lsb = 0", "cosine_min = 1.0", "cosine_min = -1.0", "l2_rel_max = 0.0",
                                  "top1_agreement_min = 0.0", "accuracy_min = 1.0"])
def test_limits_at_the_edges_are_kept(tmp_path, line):
    vectors = f'{{ file = "{TEST_SET}" }}'  # labelled: accuracy_min has labels to judge
    config = load_config(_project(tmp_path, checks=line, vectors=vectors))
    name, value = (s.strip() for s in line.split("="))
    assert config.models[0].checks[name] == float(value)
    assert config.name == "p", "the project keeps its name"


@pytest.mark.parametrize("line", ["count_pct = -1.0", "accuracy_drop = -0.01"])
def test_a_negative_compare_threshold_is_refused(tmp_path, line):
    with pytest.raises(UsageError) as caught:
        load_config(_project(tmp_path, extra=f"[compare]\n{line}\n"))
    assert f"`compare.{line.split()[0]}`" in str(caught.value)


@pytest.mark.parametrize("vectors, key", [("{ random = 0 }", "random"), ("{ random = -3 }", "random"),
                                          (f'{{ file = "{TEST_SET}", limit = 0 }}', "limit")])
def test_no_vectors_to_run_is_refused_when_the_file_is_read(tmp_path, vectors, key):
    with pytest.raises(UsageError) as caught:
        load_config(_project(tmp_path, vectors=vectors))
    assert f"`models[0].vectors.{key}`" in str(caught.value)


def test_accuracy_min_on_random_vectors_is_refused_when_the_file_is_read(tmp_path):
    """Random vectors have no labels: the check could only end in an error
    after every job had run."""
    with pytest.raises(UsageError) as caught:
        load_config(_project(tmp_path, checks="accuracy_min = 0.9"))
    assert "accuracy_min" in str(caught.value) and "labels" in str(caught.value)
