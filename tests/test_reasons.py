"""Reports say why: a failing output check names the first diverging
operator and the worst vector, a mismatching vector's row says where its
outputs differ, and every energy figure is printed as the estimate it is
(3 significant figures, its basis, unverified).

The firmware is built with HIL_CORRUPT_OP=2, which flips one bit of
operator 2's output (FULLY_CONNECTED in mlp_per_tensor: not the last
operator, and its corruption reaches the model's output). One `hil run` and
one `hil test` boot it; the JUnit, Markdown and HTML reports are written
from that suite by `hil report`.
"""

from __future__ import annotations

import json
import re
import shutil
import textwrap
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from harness.power.energy import basis_label
from helpers import MODELS, hil, requires_qemu

MODEL = MODELS / "test" / "mlp_per_tensor.tflite"
CORRUPT_OP, CORRUPT_NAME = 2, "FULLY_CONNECTED"
NAMED = f"operator {CORRUPT_OP} ({CORRUPT_NAME})"
ENERGY = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s*uJ")


def too_precise(text: str) -> list[str]:
    """Energies printed with more than 3 significant figures (e.g. "666.428 uJ")."""
    found = []
    for number in ENERGY.findall(text):
        digits = number.replace(",", "")
        significant = digits.replace(".", "").lstrip("0")
        if "." not in digits:
            significant = significant.rstrip("0")
        if len(significant) > 3:
            found.append(number)
    return found


PROJECT = """
[project]
name = "reasons"
platforms = ["mps2-an386"]

[firmware]
defines = {{ HIL_CORRUPT_OP = "{op}" }}

[defaults.budgets]
max_energy_uj = 1

[[models]]
name = "net"
path = "net.tflite"
vectors = {{ random = 3, seed = 1 }}
checks = {{ bit_exact = true, tolerance_lsb = 0 }}
"""


# -- without an emulator ----------------------------------------------------------------------------

def _an386_energy_model():
    from harness.platforms import load_platform
    from harness.power.energy import EnergyModel

    platform = load_platform("mps2-an386")
    return EnergyModel.from_platform(platform.power, platform.counter, str(platform.path))


def test_an_estimate_prints_three_figures_and_its_label():
    from harness.power.energy import format_estimate, sig3

    basis = _an386_energy_model().basis("instructions_x_cpi")
    assert basis["kind"] == "instructions_x_cpi" and basis["verified"] is False
    assert basis["error_band"].startswith("unknown") and "lower bound" in basis["error_band"]
    assert basis["source"].startswith("mps2-an386.toml [power]: MLPerf Tiny v0.5 reference submission")
    assert format_estimate(666.428, "uJ", basis) == "666 uJ (estimate: instructions x CPI, unverified, band unknown)"
    assert format_estimate(666.428, "uJ", basis, detail=True) == \
        "666 uJ (estimate: instructions x CPI 1.0 x derived power, unverified, band unknown)"
    assert format_estimate(12.3456, "uJ", None) == "12.3 uJ (estimate, unverified, band unknown)"  # no basis: no band
    board = _an386_energy_model().basis("cycles_estimate")  # a board's DWT cycles: still the platform's power figure
    assert format_estimate(5, "uJ", board, detail=True) == "5.00 uJ (estimate: measured cycles x derived power, " \
                                                           "unverified, -1.6%/+2.0%)"
    assert board["error_band"].startswith("-1.6%/+2.0%")
    assert [sig3(v) for v in (0.0123456, 1234.5, 999.7, 0)] == ["0.0123", "1,230", "1,000", "0"]


def test_an_energy_budget_says_it_judged_an_unverified_estimate():
    from harness.checks.budgets import evaluate

    basis = _an386_energy_model().basis("instructions_x_cpi")
    [check] = evaluate({"max_energy_uj": 500}, {"max_energy_uj": (666.428, "uJ", basis)})
    assert not check.passed
    assert check.message == ("budget --max-energy-uj EXCEEDED: energy 666 uJ (estimate: instructions x CPI 1.0 x "
                             "derived power, unverified, band unknown) exceeds the limit 500 uJ")


def test_a_mismatch_names_elements_index_and_values():
    from harness.checks.metrics import compare_outputs, describe_mismatch

    want = np.array([[-128, 5, 7, 9], [0, 1, 2, 3]], dtype=np.int8)
    got = want.copy()
    got[1, 2], got[0, 0] = 20, -127
    check = compare_outputs([got], [want], [(0.1, 0)])
    assert check.detail == {"elements": 8, "differ": 2, "output": 0, "worst_index": 6, "worst_position": [1, 2],
                            "expected": 2, "got": 20, "max_abs_diff": 18.0}
    assert describe_mismatch(check.detail) == \
        "2/8 elements differ; largest |diff| 18 at [1, 2] (flat 6): got 20, expected 2"
    assert compare_outputs([want], [want]).detail is None
    nan = np.array([1.0, np.nan], dtype=np.float32)
    nan_detail = compare_outputs([nan], [np.array([1.0, 2.0], dtype=np.float32)]).detail
    assert nan_detail is not None
    assert (nan_detail["got"], nan_detail["max_abs_diff"], nan_detail["worst_index"]) == ("nan", None, 1)
    assert json.loads(json.dumps(nan_detail, allow_nan=False)) == nan_detail  # strict JSON


# -- in QEMU: one hil run, one hil test ------------------------------------------------------------

def _row(stdout: str, index: int) -> str:
    """The detail cell of a vector's row in `hil run`'s table, its wrapped lines joined."""
    lines = stdout.splitlines()
    start = next(n for n, line in enumerate(lines) if re.match(rf"\W*{index}\s.*mismatch", line))
    cells = [lines[start].strip("│ ").split("│")[-1].strip()]
    for line in lines[start + 1:]:
        if not re.match(r"^│\s+│", line):
            break
        cells.append(line.strip("│ ").split("│")[-1].strip())
    return " ".join(cells)


@pytest.fixture(scope="module")
def corrupt_elf():
    from harness.build.cmake import build_firmware
    from harness.model.tflite import load_model
    from harness.platforms import load_platform

    assert load_model(MODEL).operators[CORRUPT_OP].name == CORRUPT_NAME
    return build_firmware(load_platform("mps2-an386"), {"HIL_CORRUPT_OP": str(CORRUPT_OP)}).elf.path


@requires_qemu
@pytest.mark.qemu
def test_hil_run_rows_and_energy_are_explained(tmp_path, corrupt_elf):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODEL, "--vectors", "3", "--seed", "1", "--firmware", corrupt_elf,
               "--max-energy-uj", "1", "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(out.read_text())

    basis = result["summary"]["energy_basis"]  # the cycles estimate's where the plugin ran, else instructions x CPI
    assert basis["kind"] in ("cycles_estimate", "instructions_x_cpi") and basis["verified"] is False and basis["error_band"]
    assert all(v["energy"]["basis"] == basis["kind"] for v in result["vectors"])

    mismatching = [v for v in result["vectors"] if v["status"] == "mismatch"]
    assert mismatching
    for v in mismatching:
        m = v["mismatch"]
        assert set(m) >= {"elements", "differ", "worst_index", "expected", "got", "max_abs_diff"}
        assert m["differ"] == v["mismatches"] >= 1 and m["max_abs_diff"] == v["max_abs_diff"]
        assert m["expected"] != m["got"]
        row = _row(proc.stdout, v["index"])
        assert f"{m['differ']}/{m['elements']} elements differ" in row, proc.stdout
        assert f"got {m['got']}, expected {m['expected']}" in row, proc.stdout

    assert "energy uJ (est., unverified)" in proc.stdout
    assert re.search(r"estimates \(est\.\): cycles and ms (band unknown|\+-[\d.]+%)", proc.stdout), proc.stdout
    assert re.search(r"estimates \(est\.\): .*energy (band unknown|[-+][\d.]+%/[-+][\d.]+%)", proc.stdout), proc.stdout
    assert re.search(r"energy per inference: min [\d.,]+  median [\d.,]+  max [\d.,]+ uJ \(estimate: "
                     + re.escape(basis["basis_text"]) + r", unverified[^)]*\)\n +error band unknown", proc.stdout)
    assert "budget --max-energy-uj EXCEEDED: energy " in proc.stdout
    assert re.search(r"unverified[^)]*\) exceeds the limit", proc.stdout)
    assert not too_precise(proc.stdout), too_precise(proc.stdout)


@pytest.fixture(scope="module")
def corrupt_suite(tmp_path_factory, corrupt_elf):
    """`hil test` of a project whose firmware corrupts operator 2, and its
    JUnit, Markdown and HTML reports."""
    project = tmp_path_factory.mktemp("reasons")
    shutil.copy(MODEL, project / "net.tflite")
    (project / "hil.toml").write_text(textwrap.dedent(PROJECT.format(op=CORRUPT_OP)))
    suite = project / "suite.json"
    test = hil("test", "--no-store", "--json", suite, cwd=project)
    report = hil("report", suite, "--junit", project / "junit.xml", "--markdown", project / "summary.md",
                 "--html", project / "report.html", cwd=project)
    assert report.returncode == 0, report.stdout + report.stderr
    return {"test": test, "suite": json.loads(suite.read_text()), "junit": (project / "junit.xml").read_text(),
            "markdown": (project / "summary.md").read_text(), "html": (project / "report.html").read_text()}


@requires_qemu
@pytest.mark.qemu
def test_failing_checks_name_the_corrupted_operator_everywhere(corrupt_suite):
    test, suite = corrupt_suite["test"], corrupt_suite["suite"]
    assert test.returncode == 1, test.stdout + test.stderr
    cases = {c["check"]: c for c in suite["cases"]}
    for check in ("bit_exact", "tolerance_lsb"):
        message = cases[check]["message"]
        assert cases[check]["status"] == "failed"
        assert f"first divergence at {NAMED}, tensor " in message, message
        assert re.search(r"differing(?: vectors)?: vector \d+, \d+/\d+ elements differ; largest \|diff\| \S+ at "
                         r"\S+.*: got -?\d+, expected -?\d+", message), message
        assert f"{check}: " in test.stdout and NAMED in test.stdout

    junit = ET.fromstring(corrupt_suite["junit"])
    failure = junit.find(".//testcase[@name='bit_exact']/failure")
    assert failure is not None and failure.text is not None
    failure_message = failure.get("message")
    assert failure_message is not None
    assert NAMED in failure_message and "differing vectors: vector" in failure_message
    assert NAMED in failure.text

    failing = [line for line in corrupt_suite["markdown"].splitlines() if "`bit_exact`" in line]
    assert failing and NAMED in failing[0] and "differing vectors: vector" in failing[0]

    html = corrupt_suite["html"]
    assert html.count(NAMED) >= 2  # the failing checks and the table of every case


@requires_qemu
@pytest.mark.qemu
def test_suite_reports_label_energy_as_an_unverified_estimate(corrupt_suite):
    suite = corrupt_suite["suite"]
    [job] = suite["jobs"]
    metrics = job["metrics"]
    basis = metrics["energy_basis"]
    assert metrics["energy_uj"] > 0 and basis["kind"] in ("cycles_estimate", "instructions_x_cpi")
    assert basis["verified"] is False
    label = basis_label(basis)  # 'estimate: cycles x power, unverified'

    budget = next(c for c in suite["cases"] if c["check"] == "max_energy_uj")
    assert budget["status"] == "failed" and f"(estimate: {basis['basis_text']}, unverified" in budget["message"]
    assert "exceeds the limit" in budget["message"]

    junit = ET.fromstring(corrupt_suite["junit"])
    props = {p.get("name"): p.get("value", "") for p in junit.iter("property")}
    assert props["energy.net"].endswith(f" uJ ({label})")
    assert "error band: unknown" in props["energy_basis.net"] and "mps2-an386.toml [power]" in props["energy_basis.net"]
    failure = junit.find(".//testcase[@name='max_energy_uj']/failure")
    assert failure is not None
    failure_message = failure.get("message")
    assert failure_message is not None
    assert "unverified" in failure_message and "uJ (estimate)" in failure_message

    job_row = next(line for line in corrupt_suite["markdown"].splitlines() if line.startswith("| mps2-an386 | net | FAILED |"))
    assert f"uJ ({label})" in job_row
    assert f"uJ ({label})" in corrupt_suite["html"]
    for name in ("junit", "markdown", "html"):
        assert not too_precise(corrupt_suite[name]), (name, too_precise(corrupt_suite[name]))
    assert not too_precise(corrupt_suite["test"].stdout)


@requires_qemu
@pytest.mark.qemu
def test_session_budgets_and_explanations_carry_the_same_reasons(tmp_path, corrupt_elf):
    """The pytest plugin's and Robot library's Session: an energy budget's
    message labels the estimate, a mismatch says where and what."""
    from harness.session import Session

    with Session("mps2-an386", firmware=corrupt_elf, workdir=tmp_path / "run") as dut:
        dut.load_model(MODEL)
        batch = dut.stream(count=3, seed=1)
        [energy] = dut.check_budgets(batch, max_energy_uj=1)
        explained = batch.explain()
    assert not energy.passed and re.search(r"\(estimate: [^)]+ x derived power, unverified[^)]*\)", energy.message)
    assert re.search(r"largest difference \d+ at \[[\d, ]+\] \(got -?\d+, expected -?\d+\)", explained), explained


def test_a_session_records_where_its_reference_outputs_came_from(tmp_path):
    """`hil run` records provenance.reference_outputs (computed or the
    cache, which file and key); a Session's result.json had none, so a
    verdict from the Python API could not be traced to its reference."""
    from harness.session import Session

    with Session("mps2-an386", workdir=tmp_path / "run") as dut:
        dut.load_model(MODEL)
        assert dut.stream(count=2, seed=5).passed == 2
    provenance = json.loads((tmp_path / "run" / "result.json").read_text())["provenance"]
    assert provenance["reference_outputs"]["source"] in ("computed", "cache")
