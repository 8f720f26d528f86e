"""The report of a single `hil run` (`hil report result.json --html`,
`--markdown`) and `hil report --latest`, on a real run in QEMU: the demo
model on firmware built with HIL_CORRUPT_OP=9 (its FULLY_CONNECTED
computes wrongly), so some vectors fail and the first divergence is known.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from helpers import MODELS, hil, requires_qemu
from test_reports import CHROMIUM, chromium_render, suite_doc, write

from harness.model.reference_cache import describe

CORRUPT_OP, CORRUPT_NAME = 9, "FULLY_CONNECTED"


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory):
    """One real `hil run` of the demo set (200 labelled vectors) that fails:
    its project directory, run directory and result document."""
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    elf = build_firmware(load_platform("mps2-an386"), {"HIL_CORRUPT_OP": str(CORRUPT_OP)}).elf.path
    project = tmp_path_factory.mktemp("project")
    proc = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--inputs", MODELS / "demo" / "gesture_test.npz",
               "--firmware", elf, cwd=project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (run_dir,) = (project / ".hil" / "runs").iterdir()
    return project, run_dir, json.loads((run_dir / "result.json").read_text())


def _group(pattern: str, page: str) -> str:
    """The first group of `pattern` (re.S) in the page: fails here, naming it, when the page lacks it."""
    found = re.search(pattern, page, re.S)
    assert found is not None, pattern
    return found.group(1)


def cells(row: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]


@requires_qemu
@pytest.mark.qemu
def test_run_report_html_holds_the_run(failing_run, tmp_path):
    """Before issue 12 `hil report` refused a hil.result/1 document."""
    project, run_dir, result = failing_run
    out = tmp_path / "run.html"
    proc = hil("report", run_dir / "result.json", "--html", out, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (200 vectors, status failed)" in " ".join(proc.stderr.split())
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and not re.search(r"\ssrc=", page)

    # identity and verdict
    failing = [v for v in result["vectors"] if not v["passed"]]
    assert failing and result["status"] == "failed"
    assert '<span class="badge failed" id="status">failed</span>' in page
    assert f"{200 - len(failing)}/200 vectors bit-exact" in page
    for text in ("mps2-an386", "gesture.tflite", result["firmware"]["build_id"][:12], result["model"]["sha256"][:16],
                 result["target"]["emulator"]):
        assert text in page, text

    # vectors: every row, failing first in the open page, the passing ones in collapsed pages of 100
    pages = re.findall(r'<details class="page"( open)?>\s*<summary>(.*?)</summary>(.*?)</details>', page, re.S)
    rows = [(bool(is_open), title, [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]])
            for is_open, title, body in pages]
    assert sum(len(r) for _, _, r in rows) == 200
    assert rows[0][0] and rows[0][1] == f"{len(failing)} not passed" and not any(o for o, _, _ in rows[1:])
    assert [int(r[0]) for r in rows[0][2]] == [v["index"] for v in failing]
    assert {r[1] for r in rows[0][2]} == {"mismatch"} and all(len(r) <= 100 for _, _, r in rows)
    worst = max(failing, key=lambda v: v["max_abs_diff"])
    row = next(r for r in rows[0][2] if int(r[0]) == worst["index"])
    assert row[2] == f"{worst['max_abs_diff']:g}" and "differ" in row[3] and row[4] == f"{worst['count']['value']:,}"

    # per-operator profile: table and one bar per operator
    ops = result["summary"]["operators"]
    table = _group(r'<table class="operators">(.*?)</table>', page)
    op_rows = [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]]
    assert [(r[1], r[2]) for r in op_rows] == [(o["op"], f"{o['median']:,.0f}") for o in ops]
    chart = _group(r'<figure id="operator-chart">(.*?)</figure>', page)
    assert chart.count("<svg") == 1 and f"#{CORRUPT_OP} {CORRUPT_NAME}" in chart

    # memory, localisation, energy with its basis, the link
    memory = result["memory"]
    for value in (memory["flash_bytes"], memory["ram_bytes"], memory["device"]["arena_high_water"]):
        assert f"{value:,} B" in page
    loc = _group(r'<section id="localization">(.*?)</section>', page)
    assert f"first divergence at operator {CORRUPT_OP} ({CORRUPT_NAME})" in loc
    assert f"vector {result['localization']['vector']}" in loc
    assert re.search(r"energy per inference</dt><dd>\d{3} uJ median .*\(estimate: .*unverified.*\)</dd>", page)
    # every estimate's column carries its band (the vectors' and the operators' cycles had none)
    band = r"(\+-[\d.]+%( \(not like for like\))?|band unknown)"
    headers = set(re.findall(r"<th[^>]*>([^<]*)</th>", page))
    assert any(re.fullmatch(rf"cycles \(est\., {band}\)", h) for h in headers), headers
    assert any(re.fullmatch(rf"cycles \(estimate, {band}\)", h) for h in headers), headers
    assert any(re.fullmatch(r"energy \(uJ; estimate: .*unverified, .*\)", h) for h in headers), headers
    link = _group(r'<section id="link">(.*?)</section>', page)
    assert f">{result['link']['frames_sent']} / {result['link']['frames_received']}<" in link

    # the emulator's log, linked from the report
    assert f'href="{(run_dir / "qemu.log").resolve().as_uri()}"' in page
    # where the reference came from (provenance.reference_outputs), beside the versions
    reference = describe(result["provenance"]["reference_outputs"])
    assert reference.startswith(("computed in this run", "from the cache")) and f"<dd>{reference}</dd>" in page

    if CHROMIUM:
        probe, console = chromium_render(out, tmp_path)
        assert probe["errors"] == [] and probe["console"] == [] and console == [], (probe, console)
        assert probe["resources"] == [] and probe["status"] == "failed"
        assert len(probe["svgs"]) == 1 and probe["svgs"][0][0] >= 300 and probe["drawn"] > 20

    # the same run as Markdown: status, the failing vectors, the localisation
    md = hil("report", run_dir, "--markdown", "-", cwd=project)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("## hil run: gesture.tflite on mps2-an386")
    assert f"**Status: FAILED** - {200 - len(failing)}/200 vectors bit-exact" in md.stdout
    assert f"### Failing vectors ({len(failing)})" in md.stdout
    assert f"first divergence at operator {CORRUPT_OP} ({CORRUPT_NAME})" in md.stdout
    assert f"- reference outputs: {reference}\n" in md.stdout


@requires_qemu
@pytest.mark.qemu
def test_latest_picks_the_newest_run_or_suite_and_says_which(failing_run, tmp_path):
    project, run_dir, _ = failing_run
    proc = hil("report", "--latest", "--markdown", "-", cwd=project)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert f"--latest: the newest is a single run: {Path('.hil/runs') / run_dir.name / 'result.json'}" in said
    assert "hil run of gesture.tflite on mps2-an386, failed" in said
    assert proc.stdout.startswith("## hil run: gesture.tflite on mps2-an386")

    # a suite run written later is the newest; the run is named as the older one
    suite = write(project / ".hil" / "suites" / "20261203-3333333c" / "suite.json", suite_doc())
    later = (run_dir / "result.json").stat().st_mtime + 10
    os.utime(suite, (later, later))
    proc = hil("report", "--latest", "--html", tmp_path / "latest.html", cwd=project)
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())
    assert f"--latest: the newest is a suite run: {Path('.hil/suites/20261203-3333333c/suite.json')}" in said
    assert "hil test of my-project at 3333333ccc" in said
    assert f"the newest single run is older: {Path('.hil/runs') / run_dir.name / 'result.json'}" in said
    assert "Pass/fail: platform x model" in (tmp_path / "latest.html").read_text()
    suite.unlink()


def report_in_process(*args, cwd: Path):
    """`hil report ARGS` in this process (no interpreter start): the
    UsageError it raised (exit 2 from the CLI), or None."""
    from click.testing import CliRunner

    from harness.commands.report import command
    from harness.errors import UsageError

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        result = CliRunner().invoke(command, [str(a) for a in args])
    if isinstance(result.exception, UsageError):
        return result.exception
    assert result.exit_code == 0, (result.output, result.exception)
    return None


def test_latest_without_a_run_and_other_bad_uses_exit_2(tmp_path):
    proc = hil("report", "--latest", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    said = " ".join(proc.stderr.split())
    assert "--latest: no run found: no .hil/runs/*/result.json and no .hil/suites/*/suite.json" in said
    assert "hil run" in said and "Traceback" not in proc.stderr

    # project.results of hil.toml is where suites are looked for
    (tmp_path / "hil.toml").write_text('[project]\nresults = "ci/suites"\n')
    assert "ci/suites/*/suite.json" in str(report_in_process("--latest", cwd=tmp_path))

    run = write(tmp_path / "r" / "result.json", {"schema": "hil.result/1", "status": "passed", "vectors": [],
                                                 "summary": {}})
    for args, problem in ((("--latest", run), "name two documents"), ((), "no document to report"),
                          ((run, "--junit", tmp_path / "j.xml"), "--junit is for suite runs"),
                          ((run, "--history", run), "--history is for suite runs")):
        error = report_in_process(*args, cwd=tmp_path)
        assert error is not None and problem in str(error), (args, error)
    assert not (tmp_path / "j.xml").exists()
    damaged = write(tmp_path / "d" / "result.json", {"schema": "hil.result/1", "vectors": {}})
    assert '"vectors" is not a list' in str(report_in_process(damaged, "--html", tmp_path / "d.html", cwd=tmp_path))

    # a run that stopped before any vector still gets its page
    assert report_in_process(run.parent, "--html", tmp_path / "empty.html", cwd=tmp_path) is None
    assert "No vector ran." in (tmp_path / "empty.html").read_text()
