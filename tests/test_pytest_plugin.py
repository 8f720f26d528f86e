"""The pytest plugin (harness/pytest_plugin.py): the sample test file
examples/pytest/test_gesture_model.py run by pytest in a subprocess on two
QEMU platforms, its JUnit XML checked test by test; the platform
parametrisation and marker without any emulator; errors reported as
fixture errors; and a plugin that does nothing to tests that do not use
its fixtures."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from helpers import REPO, requires_qemu

SAMPLE = REPO / "examples" / "pytest" / "test_gesture_model.py"


def _entry_point_active() -> bool:
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.name == "hil" and ep.value == "harness.pytest_plugin"
               for ep in metadata.entry_points(group="pytest11"))


def _pytest(tmp_path: Path, *args, timeout: float = 600) -> tuple[subprocess.CompletedProcess, ET.Element]:
    """pytest in a subprocess, with the plugin (through its entry point when
    hil is installed, else -p), writing JUnit XML; returns the <testsuite>."""
    junit = tmp_path / "junit.xml"
    plugin = [] if _entry_point_active() else ["-p", "harness.pytest_plugin"]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-rA",
                           f"--junitxml={junit}", *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": path})
    assert junit.exists(), proc.stdout + proc.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None, proc.stdout + proc.stderr
    return proc, suite


def _cases(suite: ET.Element) -> dict[str, str]:
    """{test name: passed | failed | error | skipped}"""
    out = {}
    for case in suite.iter("testcase"):
        status = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                status = {"failure": "failed"}.get(tag, tag)
        out[case.get("name", "")] = status
    return out


def test_entry_point_is_declared():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"hil": "harness.pytest_plugin"}
    assert any(d.startswith("robotframework") for d in project["optional-dependencies"]["test"])


@requires_qemu
@pytest.mark.qemu
def test_sample_file_on_two_platforms(tmp_path):
    """Every vector and every check is its own test, once per platform; the
    marker limits a test to mps2-an385; the energy check skips where the
    platform has no power table; the deliberately failing budget is xfail."""
    proc, suite = _pytest(tmp_path, SAMPLE, "--hil-platform", "mps2-an386", "--hil-platform", "mps2-an385",
                          "--hil-workdir", tmp_path / "runs")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    cases = _cases(suite)
    for platform in ("mps2-an386", "mps2-an385"):
        for i in range(4):
            assert cases[f"test_labelled_vector_is_bit_exact[{platform}-gesture_test-{i}]"] == "passed", output
        for i in range(3):
            assert cases[f"test_random_vector_is_bit_exact_and_counted[{platform}-seed7-{i}]"] == "passed"
        for check in ("test_test_set_is_bit_exact", "test_accuracy", "test_count_per_inference", "test_memory",
                      "test_an_array_of_zeros", "test_fault_is_reported"):
            assert cases[f"{check}[{platform}]"] == "passed", (check, output)
        assert cases[f"test_random_sets[{platform}-1]"] == cases[f"test_random_sets[{platform}-2]"] == "passed"
        assert cases[f"test_budget_too_small[{platform}]"] == "skipped"  # xfail, strict: it did fail
    assert cases["test_energy_per_inference[mps2-an386]"] == "passed"
    assert cases["test_energy_per_inference[mps2-an385]"] == "skipped"
    assert cases["test_runs_on_the_cortex_m3[mps2-an385]"] == "passed"
    assert cases["test_runs_on_the_cortex_m3[mps2-an386]"] == "skipped"
    assert "not run on mps2-an386: the test is for mps2-an385 (hil_platforms marker)" in output
    assert len(cases) == 2 * 18
    assert (int(suite.get("tests", "")), int(suite.get("failures", "")), int(suite.get("errors", ""))) == (36, 0, 0)
    # one booted target per platform for the module, one more per fault test; all stopped
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len([r for r in runs if "test_gesture_model" in r]) == 2 and len(runs) == 4, runs
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cwd_under(p, tmp_path)]
    assert not left, "an emulator outlived the session"


def _cwd_under(proc: Path, directory: Path) -> bool:
    try:
        cwd = Path(os.readlink(proc / "cwd"))
    except OSError:
        return False
    return cwd != directory and directory in cwd.parents


GENERATED = '''
import sys
import pytest


def test_without_hil_fixtures():
    # the plugin imported nothing heavy and started nothing
    assert "harness.session" not in sys.modules and "harness.runner" not in sys.modules


def test_platform(hil_platform):
    assert hil_platform in ("mps2-an386", "mps2-an385", "lm3s6965evb")


@pytest.mark.hil_platforms("mps2-an385")
def test_marked(hil_platform):
    assert hil_platform == "mps2-an385"


@pytest.mark.parametrize("hil_platform", ["chosen-here"])
def test_parametrised_by_hand(hil_platform):
    assert hil_platform == "chosen-here"
'''


def test_platforms_from_the_command_line_and_the_marker(tmp_path):
    """No emulator needed: `hil_platform` alone starts nothing."""
    (tmp_path / "test_generated.py").write_text(GENERATED)
    proc, suite = _pytest(tmp_path, "test_generated.py", "--hil-platform", "mps2-an386",
                          "--hil-platform", "mps2-an385", "--hil-platform", "mps2-an386")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _cases(suite) == {
        "test_without_hil_fixtures": "passed",
        "test_platform[mps2-an386]": "passed", "test_platform[mps2-an385]": "passed",
        "test_marked[mps2-an386]": "skipped", "test_marked[mps2-an385]": "passed",
        "test_parametrised_by_hand[chosen-here]": "passed"}

    # the default platform, and the ini option
    proc, suite = _pytest(tmp_path, "test_generated.py", "-k", "test_platform")
    assert list(_cases(suite)) == ["test_platform[mps2-an386]"], proc.stdout + proc.stderr
    (tmp_path / "pytest.ini").write_text("[pytest]\nhil_platforms = lm3s6965evb mps2-an385\n")
    proc, suite = _pytest(tmp_path, "test_generated.py", "-k", "test_platform")
    assert list(_cases(suite)) == ["test_platform[lm3s6965evb]", "test_platform[mps2-an385]"], proc.stdout


def test_a_bad_platform_is_a_fixture_error_naming_it(tmp_path):
    (tmp_path / "test_dut.py").write_text(textwrap.dedent('''
        def test_uses_the_dut(hil_dut):
            pass
    '''))
    proc, suite = _pytest(tmp_path, "test_dut.py", "--hil-platform", "mps9-nope")
    assert proc.returncode == 1
    assert _cases(suite) == {"test_uses_the_dut[mps9-nope]": "error"}
    assert "UsageError: unknown platform 'mps9-nope'" in proc.stdout
    assert "Traceback" not in proc.stdout and "harness/session.py" not in proc.stdout


def test_plugin_leaves_the_projects_own_tests_alone(tmp_path):
    """With the plugin loaded, the project's tests collect exactly as without
    it (same ids, no platform parametrisation), and --help lists its options."""
    def collect(*extra):
        return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *extra, "tests/test_frames.py", "tests/test_units.py"], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    loaded = collect() if _entry_point_active() else collect("-p", "harness.pytest_plugin")
    unloaded = collect("-p", "no:hil") if _entry_point_active() else collect()
    assert loaded.returncode == unloaded.returncode == 0, loaded.stdout + loaded.stderr
    ids = [line for line in loaded.stdout.splitlines() if "::" in line]
    assert ids and ids == [line for line in unloaded.stdout.splitlines() if "::" in line]
    assert not any("mps2" in i for i in ids)
    helped = subprocess.run([sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"]
                            + ([] if _entry_point_active() else ["-p", "harness.pytest_plugin"]),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "--hil-platform=NAME" in helped.stdout and "hil_platforms" in helped.stdout


# -- the device API behind hil_dut (harness.session), in QEMU ----------------------------------

@requires_qemu
@pytest.mark.qemu
def test_session_streams_stateful_models_from_a_fresh_state(tmp_path):
    """Every stream and run() is checked against a fresh reference
    interpreter; a stateful model is loaded again before each, so the device
    agrees (RESET alone would not re-run CALL_ONCE)."""
    from harness.session import Session

    model = REPO / "models" / "test" / "stateful_int8.tflite"
    if not model.exists():
        pytest.skip(f"{model.name} is not in this tree")
    with Session("mps2-an386", workdir=tmp_path / "run") as dut:
        dut.load_model(model)
        assert dut.stateful
        first = dut.stream(count=3, seed=1)
        again = dut.stream(count=3, seed=1)
        assert first.matches_reference() and again.matches_reference(), (first.explain(), again.explain())
        assert [o.outputs[0].tobytes() for o in first] == [o.outputs[0].tobytes() for o in again]
        assert dut.run(first[1].inputs).matches_reference()


@requires_qemu
@pytest.mark.qemu
def test_session_reports_faults_and_refuses_a_dead_device(tmp_path):
    from harness.errors import InfraError, UsageError
    from harness.session import Session

    with Session("mps2-an386", defines={"HIL_FAULT_ON_INVOKE": "3"}, workdir=tmp_path / "run") as dut:
        with pytest.raises(UsageError, match="no model is loaded"):
            dut.stream(count=1)
        dut.load_model(REPO / "models" / "demo" / "gesture.tflite")
        with pytest.raises(UsageError, match="do not fit input"):
            dut.run([1, 2, 3])
        batch = dut.stream(count=5, seed=2)
        assert [o.status for o in batch] == ["passed", "passed", "fault"] and batch.not_run == 2
        assert not batch.matches_reference() and batch[2].outputs is None
        assert "vector 2: fault: invoke: UsageFault" in batch.explain()
        assert batch.fault is not None
        assert batch.fault["kind"] == "UsageFault" and batch.summary()["not_run"] == 2
        with pytest.raises(InfraError, match="stopped responding earlier"):
            dut.stream(count=1)
        workdir = dut.workdir
    assert (workdir / "result.json").exists() and (workdir / "qemu.log").exists()
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cwd_under(p, tmp_path)]
