"""An output path that names one of the run's own input files is bad usage
(exit 2), refused before anything is written. `hil run -m m.tflite --json
m.tflite` used to overwrite the user's model with the result document
(then the device, reading the model file, failed: "the firmware answered
with an error", exit 1), and `--inputs t.npz --json t.npz` replaced the
vectors with JSON and passed. No emulator runs once it is refused."""

from __future__ import annotations

import shutil

import pytest

from helpers import MODELS, hil

DEMO = MODELS / "demo" / "gesture.tflite"
TEST_SET = MODELS / "demo" / "gesture_test.npz"


@pytest.mark.parametrize("args, victim", [
    (["--json", "m.tflite"], "m.tflite"),
    (["--inputs", "t.npz", "--json", "./t.npz"], "t.npz"),
])
def test_hil_run_never_writes_its_result_over_an_input(tmp_path, args, victim):
    shutil.copy(DEMO, tmp_path / "m.tflite")
    shutil.copy(TEST_SET, tmp_path / "t.npz")
    before = (tmp_path / victim).read_bytes()
    proc = hil("run", "-m", "m.tflite", "-n", "2", *args, cwd=tmp_path, timeout=300)
    assert (tmp_path / victim).read_bytes() == before, "the input file was overwritten"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--json" in proc.stderr and str(tmp_path / victim) in proc.stderr


SUITE = '{"schema": "hil.suite/1", "suite": "s", "status": "passed", "exit_code": 0, "jobs": [], "cases": []}\n'


@pytest.mark.parametrize("args", [["report", "s.json", "--markdown", "s.json"], ["report", "s.json", "--junit", "./s.json"],
                                  ["report", "s.json", "--html", "s.json"],
                                  ["compare", "s.json", "h.json", "--json", "s.json"]])
def test_reports_and_comparisons_never_overwrite_the_suite_they_read(tmp_path, args):
    """`hil report s.json --markdown s.json` replaced the suite document (the
    record of the run) with its summary, exit 0; so did --junit, --html and
    `hil compare ... --json BASE`."""
    (tmp_path / "s.json").write_text(SUITE)
    (tmp_path / "h.json").write_text(SUITE)
    proc = hil(*args, cwd=tmp_path)
    assert (tmp_path / "s.json").read_text() == SUITE, "the suite document was overwritten"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(tmp_path / "s.json") in proc.stderr


@pytest.mark.parametrize("victim", ["hil.toml", "m.tflite", "t.npz"])
def test_hil_test_never_writes_its_suite_over_the_project_or_its_inputs(tmp_path, victim):
    """`hil test --json hil.toml` replaced the project file with the suite
    document (exit 0), and --json m.tflite the model."""
    shutil.copy(DEMO, tmp_path / "m.tflite")
    shutil.copy(TEST_SET, tmp_path / "t.npz")
    (tmp_path / "hil.toml").write_text('[project]\nname = "p"\n[[models]]\nname = "g"\npath = "m.tflite"\n'
                                       'vectors = { file = "t.npz", limit = 2 }\n')
    before = (tmp_path / victim).read_bytes()
    proc = hil("test", "--no-store", "--json", victim, cwd=tmp_path, timeout=300)
    assert (tmp_path / victim).read_bytes() == before, "the file was overwritten"
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(tmp_path / victim) in proc.stderr
