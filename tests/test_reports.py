"""Reports of suite runs (`hil report`): JUnit XML, Markdown, the offline
HTML report rendered in headless Chromium, and the GitHub workflows linted
with actionlint.

The suite and comparison documents are built here in exactly the shape of
docs/results.md (what `hil test`, `hil merge` and `hil compare` write); the
comparison is also computed by the real `harness.results.compare`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from helpers import REPO, hil

from harness.results.compare import compare as compare_suites
from harness.results.html import render_html, slug
from harness.results.junit import build_junit, junit_xml
from harness.results.markdown import render_markdown

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
COMMITS = ["1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
           "3333333ccccccccccccccccccccccccccccccccc"]
OPS = [("CONV_2D", 571600), ("DEPTHWISE_CONV_2D", 402120), ("CONV_2D", 812040), ("MEAN", 40120),
       ("FULLY_CONNECTED", 98760), ("SOFTMAX", 12040)]


# -- documents, as docs/results.md describes them ----------------------------------------------------

ENERGY_BASIS = {"kind": "instructions_x_cpi", "verified": False,
                "error_band": "unknown; CPI 1.0 is a lower bound, so real cycles are higher",
                "source": "mps2-an386.toml [power]: DS12023", "basis_text": "instructions x CPI 1.0 x datasheet current"}


def job_doc(platform, model, *, count=2287160, flash=39776, ram=68288, arena=4736, energy=755.1, accuracy=0.995,
            status="passed", kind="instructions", ops=OPS, error=None):
    metrics = None if status == "error" else {
        "count": count, "count_kind": kind, "count_samples": [count - 40, count, count],
        "energy_uj": energy, "energy_basis": ENERGY_BASIS,
        "flash_bytes": flash, "ram_bytes": ram, "arena_bytes": arena, "model_bytes": 16072,
        "accuracy": accuracy,
        "operators": [{"index": i, "op": op, "count": c * count // 2287160} for i, (op, c) in enumerate(ops)]}
    return {"id": f"{platform}/{model}", "platform": platform, "model": model, "status": status,
            "result": f"runs/{platform}/{model}/result.json", "error": error,
            "exit_code": {"passed": 0, "failed": 1, "error": 3}[status], "metrics": metrics or {}}


def case_doc(platform, model, check, status="passed", message=None, measured=None, limit=None, duration=1.9):
    return {"id": f"{platform}/{model}/{check}", "platform": platform, "model": model, "check": check,
            "status": status, "message": message or f"{check} ok", "measured": measured, "limit": limit,
            "duration_s": duration}


def suite_doc(commit=COMMITS[-1], *, slower=False, fail_budget=False, broken_job=False, shards=()):
    """A suite of 2 platforms x 2 models (+ an optional job that could not
    build), 4 checks per job."""
    factor = 1.093 if slower else 1.0
    jobs, cases = [], []
    for platform in ("mps2-an386", "mps2-an500"):
        for model in ("gesture", "kws.v2"):
            count = int((2287160 if model == "gesture" else 5120400) * factor * (1 if platform == "mps2-an386" else 0.82))
            flash = 39776 + (2048 if slower else 0) + (0 if model == "gesture" else 20000)
            over = fail_budget and platform == "mps2-an386" and model == "gesture"
            jobs.append(job_doc(platform, model, count=count, flash=flash, energy=round(count * 3.3e-4, 3),
                                status="failed" if over else "passed"))
            cases += [case_doc(platform, model, "bit_exact", message="200/200 vectors bit-exact", measured=200,
                               limit=200),
                      case_doc(platform, model, "top1_agreement_min", message="top-1 agrees on 100.0% (min 99.0%)",
                               measured=1.0, limit=0.99),
                      case_doc(platform, model, "max_count", "failed" if over else "passed",
                               message=(f"count {count:,} exceeds the budget 2,300,000 | per invoke" if over
                                        else f"count {count:,} within budget"),
                               measured=count, limit=2300000 if model == "gesture" else 6000000),
                      case_doc(platform, model, "max_energy_uj", "skipped",
                               message="no power model for this platform")]
            if model == "gesture":
                cases.append(case_doc(platform, model, "accuracy_min", message="top-1 accuracy 99.5% (min 95.0%)",
                                      measured=0.995, limit=0.95))
    if broken_job:
        jobs.append(job_doc("riscv32-virt", "gesture", status="error",
                            error="build failed: riscv64-unknown-elf-gcc not found"))
        for check in ("bit_exact", "max_count"):
            cases.append(case_doc("riscv32-virt", "gesture", check, "error",
                                  message="build failed: riscv64-unknown-elf-gcc not found\x07", duration=None))
    statuses = {c["status"] for c in cases}
    status = "failed" if "failed" in statuses else "error" if "error" in statuses else "passed"
    return {
        "schema": "hil.suite/1", "suite": "my-project",
        "git": {"commit": commit, "branch": "main" if commit != COMMITS[-1] else "feature/faster",
                "dirty": False, "subject": f"commit {commit[:7]}"},
        "started": "2026-11-26T05:40:00Z", "duration_s": 12.3, "status": status,
        "exit_code": {"passed": 0, "failed": 1, "error": 3}[status],
        "shards": [{"index": i, "count": n} for i, n in shards], "selection": None,
        "emulators": {"qemu-system-arm": "QEMU emulator version 7.2.19"},
        "jobs": sorted(jobs, key=lambda j: j["id"]), "cases": sorted(cases, key=lambda c: c["id"]),
    }


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) if not isinstance(doc, str) else doc)
    return path


def write_results(suite_dir: Path, doc: dict) -> None:
    """The hil.result/1 of each job, where the suite document points."""
    for job in doc["jobs"]:
        write(suite_dir / job["result"], {"schema": "hil.result/1", "status": job["status"],
                                          "firmware": {"build_id": f"b1d{abs(hash(job['id'])) % 10**9:09d}"},
                                          "model": {"sha256": "ab" * 32, "bytes": 16072}})


def thresholds():
    return {"count_pct": 1.0, "energy_pct": 1.0, "flash_pct": 1.0, "ram_pct": 1.0, "arena_pct": 1.0,
            "model_pct": 1.0, "accuracy_drop": 0.01}


@pytest.fixture
def regressed(tmp_path):
    """Base main at COMMITS[1]; head slower, bigger, a budget now failing."""
    base = suite_doc(COMMITS[1])
    head = suite_doc(COMMITS[2], slower=True, fail_budget=True, broken_job=True)
    cmp = compare_suites(base, head, thresholds(), "main", "HEAD")
    head_dir = tmp_path / "head"
    write(head_dir / "suite.json", head)
    write_results(head_dir, head)
    return {"base": base, "head": head, "compare": cmp, "head_path": head_dir / "suite.json",
            "base_path": write(tmp_path / "base" / "suite.json", base),
            "compare_path": write(tmp_path / "compare.json", cmp)}


# -- JUnit ------------------------------------------------------------------------------------------------

# what the common JUnit schema (Jenkins' junit-10.xsd, read by GitLab too) allows
JUNIT_ALLOWED = {
    "testsuites": ({"name", "tests", "failures", "errors", "skipped", "time", "disabled"}, {"testsuite"}),
    "testsuite": ({"name", "tests", "failures", "errors", "skipped", "time", "timestamp", "hostname", "id",
                   "package", "disabled", "file", "log", "url", "version", "group"},
                  {"properties", "testcase", "system-out", "system-err"}),
    "properties": (set(), {"property"}),
    "property": ({"name", "value"}, set()),
    "testcase": ({"name", "classname", "time", "assertions", "status", "group", "file", "line"},
                 {"skipped", "error", "failure", "system-out", "system-err"}),
    "failure": ({"message", "type"}, set()), "error": ({"message", "type"}, set()),
    "skipped": ({"message"}, set()), "system-out": (set(), set()), "system-err": (set(), set()),
}


def found(element: ET.Element | None) -> ET.Element:
    """An element the report must have: fails here when it is missing."""
    assert element is not None
    return element


def attr(element: ET.Element | None, name: str) -> str:
    """An attribute the report must have: fails here, naming it, when the element or attribute is missing."""
    value = found(element).get(name)
    assert value is not None, name
    return value


def check_junit_schema(root: ET.Element) -> None:
    """Elements, attributes, required attributes and counts as JUnit readers expect."""
    def walk(el):
        attrs, children = JUNIT_ALLOWED[el.tag]
        assert set(el.attrib) <= attrs, (el.tag, set(el.attrib) - attrs)
        for child in el:
            assert child.tag in children, (el.tag, child.tag)
            walk(child)
    walk(root)
    assert root.tag == "testsuites"
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in root.iter("testsuite"):
        assert suite.get("name") and suite.get("tests") is not None
        kids = [c.tag for c in suite]
        assert kids.count("properties") <= 1 and (not kids or kids[0] == "properties" or "properties" not in kids)
        cases = suite.findall("testcase")
        counted = {"tests": len(cases), "failures": sum(c.find("failure") is not None for c in cases),
                   "errors": sum(c.find("error") is not None for c in cases),
                   "skipped": sum(c.find("skipped") is not None for c in cases)}
        for k, v in counted.items():
            assert int(attr(suite, k)) == v, (suite.get("name"), k)
            totals[k] += v
        assert abs(float(attr(suite, "time")) - sum(float(attr(c, "time")) for c in cases)) < 0.01
        if timestamp := suite.get("timestamp"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", timestamp)
        for case in cases:
            assert case.get("name") and case.get("classname")
            float(attr(case, "time"))
            assert len([c for c in case if c.tag in ("failure", "error", "skipped")]) <= 1
    for k, v in totals.items():
        assert int(attr(root, k)) == v, k


def test_junit_one_testcase_per_platform_model_check(regressed, tmp_path):
    head = regressed["head"]
    text = junit_xml(head, regressed["head_path"])
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(text.encode())  # parses back
    check_junit_schema(root)

    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(head["cases"]) == 20
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("20", "1", "2", "4")
    assert [s.get("name") for s in root.findall("testsuite")] == ["mps2-an386", "mps2-an500", "riscv32-virt"]
    ids = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("hil.mps2-an386.gesture", "bit_exact") in ids
    assert ("hil.mps2-an500.kws_v2", "accuracy_min") not in ids and ("hil.mps2-an500.kws_v2", "max_count") in ids

    failed = [c for c in cases if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failed] == [("hil.mps2-an386.gesture", "max_count")]
    failure = found(failed[0].find("failure"))
    assert failure.get("type") == "max_count"
    assert "exceeds the budget" in attr(failure, "message") and "measured 2499865" in attr(failure, "message")
    assert "limit 2300000" in attr(failure, "message")
    assert failure.text is not None
    assert "measured: 2499865" in failure.text and "result: runs/mps2-an386/gesture/result.json" in failure.text
    error = root.find("./testsuite[@name='riscv32-virt']/testcase/error")
    assert "riscv64-unknown-elf-gcc not found" in attr(error, "message")
    skipped = found(root.find("./testsuite/testcase/skipped"))
    assert skipped.get("message") == "no power model for this platform"

    props = {p.get("name"): p.get("value", "") for p in found(root.find("testsuite")).iter("property")}
    assert props["git.commit"] == COMMITS[2] and props["git.branch"] == "feature/faster"
    assert props["emulator.qemu-system-arm"].startswith("QEMU emulator version")
    assert props["firmware.build_id.gesture"].startswith("b1d") and props["model.sha256.gesture"] == "ab" * 32
    # a job's duration is shared by its checks, so the suite time adds up to the jobs' time
    an386 = root.find("./testsuite[@name='mps2-an386']")
    assert float(attr(an386, "time")) == pytest.approx(2 * 1.9, abs=0.01)


def test_junit_red_testcase_for_a_job_without_cases_and_an_interrupted_suite():
    doc = suite_doc()
    doc["jobs"].append(job_doc("mps3-an547", "gesture", status="error", error="QEMU would not start"))
    doc["status"], doc["exit_code"] = "interrupted", 130
    root = build_junit(doc)
    check_junit_schema(root)
    run = found(root.find("./testsuite[@name='mps3-an547']/testcase[@name='run']"))
    assert attr(run.find("error"), "message") == "QEMU would not start"
    suite = found(root.find("./testsuite[@name='hil']/testcase[@name='suite']"))
    assert "interrupted" in attr(suite.find("error"), "message")
    assert int(attr(root, "tests")) == len(doc["cases"]) + 2


def test_junit_survives_characters_xml_cannot_hold():
    doc = suite_doc()
    doc["cases"][0].update(status="failed", message="UART garbage \x00\x1b[31m <&> \ufffe done")
    root = ET.fromstring(junit_xml(doc).encode())
    assert "<&>" in attr(root.find(".//failure"), "message")


# -- Markdown -------------------------------------------------------------------------------------------

NO_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")


def table_rows(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_markdown_for_a_comparison(regressed):
    text = render_markdown(regressed["head"], regressed["compare"],
                           links=[("HTML report", "https://ci.example/run 1/report.html"), ("JUnit", "junit.xml")])
    assert not NO_EMOJI.search(text)
    assert text.startswith("## hil: my-project\n")
    verdict = text.splitlines()[2]
    assert verdict.startswith("**Verdict: REGRESSED** - ")
    assert "12 metrics regressed" in verdict and "3 checks newly failing" in verdict  # +2 checks of a new job
    assert "`main` (`2222222bbb`)" in text and "`HEAD` (`3333333ccc`)" in text

    rows = table_rows(text, "| platform | model | metric | base | head | delta | delta % | threshold | status |")
    by = {(r[0], r[1], r[2]): r for r in rows}
    count = by[("mps2-an386", "gesture", "count (instructions)")]
    assert count[3:] == ["2,287,160", "2,499,865", "+212,705", "+9.30%", "> +1%", "**REGRESSED**"]
    energy = by[("mps2-an386", "gesture", "energy (estimate, unverified, band unknown)")]  # labelled, banded, 3 sig. figures
    assert energy[3:6] == ["755 uJ", "825 uJ", "+70.2 uJ"]
    flash = by[("mps2-an500", "kws.v2", "flash")]
    assert flash[3:6] == ["59,776 B", "61,824 B", "+2,048 B"]
    assert ("riscv32-virt", "gesture", "count (instructions)") not in by  # no metrics on either side
    assert rows[0][-1] == "**REGRESSED**"  # regressions first

    checks = table_rows(text, "| check | base | head | status |")
    assert ["`mps2-an386/gesture/max_count`", "passed", "failed", "**REGRESSED**"] in checks
    failing = table_rows(text, "| platform | model | check | status | message | measured | limit |")
    assert failing[0][:4] == ["mps2-an386", "gesture", "`max_count`", "FAILED"]
    assert "2,300,000 \\| per invoke" in failing[0][4]  # a pipe in a message does not break the table
    assert failing[0][5:] == ["2,499,865", "2,300,000"]
    assert {r[3] for r in failing[1:]} == {"ERROR"}
    assert "<details><summary>All jobs on head (5)</summary>" in text
    assert "- [HTML report](https://ci.example/run%201/report.html)" in text and "- [JUnit](junit.xml)" in text


def test_markdown_unchanged_and_improved_verdicts():
    base = suite_doc(COMMITS[1], slower=True)
    same = render_markdown(None, compare_suites(base, copy.deepcopy(base), thresholds()))
    assert "**Verdict: UNCHANGED** - no metric moved beyond its threshold" in same
    assert "### Changed metrics" not in same
    better = render_markdown(None, compare_suites(base, suite_doc(COMMITS[2]), thresholds()))
    assert "**Verdict: IMPROVED**" in better and "improved" in better and "REGRESSED" not in better


def test_markdown_for_a_suite_alone():
    doc = suite_doc(fail_budget=True)
    text = render_markdown(doc, links=[("report", "report.html")])
    assert not NO_EMOJI.search(text)
    assert "**Status: FAILED** - 13/18 checks passed, 1 failed, 4 skipped in 4 jobs (2 platforms x 2 models)." in text
    assert "Suite `my-project` at `3333333ccc` on `feature/faster`" in text
    jobs = table_rows(text, "| platform | model | status | checks passed |")
    assert jobs[0] == ["mps2-an386", "gesture", "FAILED", "3/5", "2,287,160 instructions", "-",  # no cycles estimate
                       "755 uJ (estimate: instructions x CPI, unverified, band unknown)", "39,776 B",
                       "68,288 B", "4,736 B", "99.50%"]
    ok = render_markdown(suite_doc())
    assert ok.splitlines()[2].startswith("**Status: PASSED** - 14/18 checks passed")
    assert "### Failing checks" not in ok


def test_markdown_tables_are_capped():
    doc = suite_doc()
    for c in doc["cases"]:
        c["status"] = "failed"
    text = render_markdown(doc, max_rows=5)
    assert "... and 13 more failing checks" in text
    assert len(table_rows(text, "| platform | model | check | status |")) == 5


# -- HTML -------------------------------------------------------------------------------------------------

def history_docs():
    """Three earlier commits, the middle one with uncommitted changes."""
    docs = []
    for n, factor in enumerate((0.97, 0.99, 1.0)):
        d = suite_doc(f"{n}{n}{n}{n}{n}{n}{n}" + "d" * 33)
        for j in d["jobs"]:
            j["metrics"]["count"] = int(j["metrics"]["count"] * factor)
            j["metrics"]["flash_bytes"] -= 512 * (2 - n)
        d["git"]["dirty"] = n == 1
        docs.append(d)
    return docs


def test_html_static_shape(regressed):
    page = render_html(regressed["head"], history_docs(), regressed["compare"], links=[("JUnit", "junit.xml")])
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # nothing is fetched: no src= at all, no stylesheet links, no @import / url(http...)
    assert not re.search(r"\ssrc=", page) and "<link" not in page and "@import" not in page
    assert not re.search(r"url\((?!#)", page)
    svgs = re.findall(r"<svg\b", page)
    assert len(svgs) == 3 + 4  # count, sizes, energy trends + one operator chart per measured job
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "ids must be unique across the inline SVGs"
    refs = set(re.findall(r'url\(#([^)]+)\)|href="#([^"]+)"', page))
    assert all((a or b) in ids for a, b in refs)
    for text in ("my-project", "mps2-an386", "kws.v2", "max_count", "regressed", "2,499,865", "1111111*"):
        assert text in page, text


PROBE_HEAD = """<script>
window.__probe = {errors: [], console: []};
window.addEventListener('error', function (e) {
  window.__probe.errors.push(String(e.message || e.type) + (e.target && e.target.src ? ' ' + e.target.src : ''));
}, true);
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__probe.console.push(level + ': ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
});
</script>"""
PROBE_TAIL = """<script>
window.addEventListener('load', function () {
  var p = window.__probe;
  p.svgs = Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
    var r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; });
  p.resources = performance.getEntriesByType('resource').map(function (r) { return r.name; });
  p.title = document.title;
  p.status = (document.getElementById('status') || {}).textContent;
  p.drawn = document.querySelectorAll('svg path, svg use, svg text').length;
  var pre = document.createElement('pre'); pre.id = 'hil-probe'; pre.textContent = JSON.stringify(p);
  document.body.appendChild(pre);
});
</script>"""


def chromium_render(html: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load `html` in headless Chromium, offline, with a probe around it that
    records script errors, failed loads, console errors and warnings, the
    resources the page fetched and the rendered size of every SVG. Returns
    (probe, Chromium's console lines from its log)."""
    assert CHROMIUM is not None  # its tests are skipped without it
    page = html.read_text()
    probe = html.with_name(html.stem + ".probe.html")
    head = page.index("<head>") + len("<head>") if "<head>" in page else 0
    page = page[:head] + PROBE_HEAD + page[head:]
    probe.write_text(page.replace("</body>", PROBE_TAIL + "</body>"))
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / 'chromium-profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--window-size=1280,2000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=60)
    m = re.search(r'<pre id="hil-probe">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"Chromium rendered nothing (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    import html as html_lib

    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html_lib.unescape(m.group(1))), console


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (run.sh installs it: "
                                               "apt-get install chromium)")
def test_html_report_renders_in_headless_chromium(regressed, tmp_path):
    history = tmp_path / "history"
    for n, d in enumerate(history_docs()):
        write(history / f"2026-11-2{n}-run" / "suite.json", d)
    out = tmp_path / "report.html"
    proc = hil("report", regressed["head_path"], "--html", out, "--compare", regressed["compare_path"],
               "--history", history, "--link", "JUnit=junit.xml", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "4 suite runs in the trends" in proc.stderr

    probe, console = chromium_render(out, tmp_path)
    assert probe["errors"] == [] and probe["console"] == [] and console == [], (probe, console)
    assert probe["resources"] == [], "an offline report fetches nothing"
    assert probe["title"].startswith("hil: my-project at 3333333ccc") and probe["status"] == "failed"
    assert len(probe["svgs"]) == 7
    assert all(w >= 300 and h >= 100 for w, h in probe["svgs"]), probe["svgs"]
    assert probe["drawn"] > 100  # lines, bars, markers, axes and labels were drawn

    # the probe sees what goes wrong on a page: script errors, failed loads, console errors
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><head></head><body><img src='missing.png'>"
                      "<img src='https://cdn.example.com/plot.js'>"
                      "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    bad, bad_console = chromium_render(broken, tmp_path)
    assert any("undefinedFunction" in e for e in bad["errors"]) and any("missing.png" in e for e in bad["errors"])
    assert bad["console"] == ["error: boom"] and bad["resources"] == ["https://cdn.example.com/plot.js"]
    assert any("boom" in line for line in bad_console)


def test_html_trends_from_the_result_store(regressed, tmp_path):
    from harness.results.store import ResultStore, store_url

    db = tmp_path / "results.db"
    store = ResultStore(store_url(str(db), tmp_path))
    for doc in history_docs():
        store.record(doc)
    out = tmp_path / "report.html"
    proc = hil("report", regressed["head_path"], "--html", out, "--history-from-store", "--store", db,
               "--limit", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "3 suite runs in the trends" in proc.stderr  # the newest 2 stored + the head
    page = out.read_text()
    assert "over 3 commits" in page and "1111111*" in page


# -- trends: colours, failing commits, relative change, links ---------------------------------------------

def trend_suites(tmp_path: Path) -> list[Path]:
    """Three commits of two jobs of very different size: `tiny` grows by 83%
    (and fails its budget check at the last two commits), `large` (32M
    instructions) stays flat. Each job has its result.json and QEMU log
    where the suite document points, as `hil test` leaves them."""
    paths = []
    for n, growth in enumerate((1.0, 1.2, 1.83)):
        jobs = [job_doc("mps2-an386", "tiny", count=int(1_100_000 * growth), status="failed" if n == 2 else "passed"),
                job_doc("mps2-an386", "large", count=32_000_000, flash=400_000)]
        # at commit 1 the run passed but a suite check failed: the job failed there too
        cases = [case_doc(j["platform"], j["model"], "max_count", "failed" if n and j["model"] == "tiny" else "passed")
                 for j in jobs]
        doc = suite_doc(COMMITS[n])
        doc.update(jobs=jobs, cases=cases, status="failed" if n else "passed", started=f"2026-11-2{n}T05:40:00Z")
        path = write(tmp_path / "suites" / f"2026112{n}-{COMMITS[n][:8]}" / "suite.json", doc)
        for job in jobs:
            write(path.parent / job["result"], {"schema": "hil.result/1", "status": job["status"]})
            (path.parent / job["result"]).with_name("qemu.log").write_text("boot\n")
        paths.append(path)
    return paths


def svg_groups(page: str, prefix: str, kind: str) -> dict[str, str]:
    """{series id: the SVG of its line (or failure marks)} in one chart."""
    return {m.group(1): m.group(2) for m in
            re.finditer(rf'<g id="{prefix}-{kind}-([^"]+)">(.*?)</g>', page, re.S)}


def vertical_extent(page: str, prefix: str, series: str) -> float:
    """How much of its axes' height a series' line spans (0..1)."""
    box = re.search(rf'<g id="{prefix}-patch_2">\s*<path d="M [\d.]+ ([\d.]+)\s+L [\d.]+ [\d.]+\s+L [\d.]+ ([\d.]+)',
                    page)
    assert box is not None
    height = abs(float(box.group(1)) - float(box.group(2)))
    line = svg_groups(page, prefix, "series")[series]
    path = re.search(r'<path d="([^"]+)"', line)
    assert path is not None
    ys = [float(y) for y in re.findall(r"[ML] [\d.]+ ([\d.]+)", path.group(1))]
    return (max(ys) - min(ys)) / height


def test_html_trends_one_colour_per_series_failures_marked_relative_scale_and_links(tmp_path):
    """Before issue 12 the trends coloured series by position in each chart,
    drew failing commits like passing ones, put a small model's +83% on the
    axis of a 32M-instruction one (a flat line) and linked no job's files."""
    *history, head = trend_suites(tmp_path)
    out = tmp_path / "report.html"
    proc = hil("report", head, "--html", out, "--history", history[0], "--history", history[1], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()

    # one colour per series, the same in every chart, the legend and the operator bars
    legend = dict(re.findall(r'data-series="([^"]+)" data-colour="(#[0-9a-f]{6})"', page))
    assert set(legend) == {"mps2-an386/tiny", "mps2-an386/large"} and len(set(legend.values())) == 2
    charts = {"tc": "", "ts": "-flash_bytes", "te": ""}
    for job, colour in legend.items():
        for prefix, part in charts.items():
            line = svg_groups(page, prefix, "series")[slug(job) + part]
            assert set(re.findall(r"stroke: (#[0-9a-f]{6})", line)) == {colour}, (job, prefix)
    head_jobs = json.loads(head.read_text())["jobs"]
    for n, job in enumerate(head_jobs):
        figure = re.search(rf'<figure id="ops-{n}">.*?</figure>', page, re.S)
        assert figure is not None, job["id"]
        bars = figure.group(0)
        assert f"fill: {legend[job['id']]}" in bars, job["id"]

    # failing commits: a red X on each failing point of the job (2 of 3 commits), red commit labels
    for prefix, part in charts.items():
        marks = {k: v for k, v in svg_groups(page, prefix, "failed").items() if k.endswith(part)}
        assert set(marks) == {"mps2-an386-tiny" + part}, prefix
        assert marks["mps2-an386-tiny" + part].count("<use") == 2 and "fill: #cf222e" in marks["mps2-an386-tiny" + part]
    assert page.count('class="num failed"') >= 2 + 2  # the failing commits' columns and cells in the data table

    # the energy chart says what its figures are
    assert "Energy per inference (estimate: instructions x CPI, unverified, band unknown)" in page

    # relative change: the small model's +83% spans its chart; on an absolute axis it is nearly flat
    assert "% change from first commit" in page and "+83.00%" in page
    assert vertical_extent(page, "tc", "mps2-an386-tiny") > 0.8
    docs = [json.loads(p.read_text()) for p in (*history, head)]
    absolute = render_html(docs[-1], docs[:-1], trend_scale="absolute")
    assert vertical_extent(absolute, "tc", "mps2-an386-tiny") < 0.1
    assert "% change" not in absolute and "32,000,000" in absolute
    assert "% change" not in render_html(docs[-1], docs[:-1], trend_scale="log")

    # links: relative below the report's directory (one CI artifact), file: URLs from elsewhere
    hrefs = set(re.findall(r'href="([^"#]+)"', page))
    for path in (*history, head):
        for job in ("tiny", "large"):
            run = path.parent.relative_to(tmp_path) / "runs" / "mps2-an386" / job
            assert f"{run.as_posix()}/result.json" in hrefs and f"{run.as_posix()}/qemu.log" in hrefs
    assert all((tmp_path / h).is_file() for h in hrefs), hrefs
    elsewhere = tmp_path / "elsewhere" / "report.html"
    assert hil("report", head, "--html", elsewhere, cwd=tmp_path).returncode == 0
    assert (head.parent / "runs" / "mps2-an386" / "tiny" / "result.json").as_uri() in elsewhere.read_text()


def test_every_report_of_an_empty_or_uncounted_suite():
    """A suite that stopped before any job, and one run with --no-count."""
    empty = {"schema": "hil.suite/1", "suite": "p", "git": {"commit": None, "branch": None, "dirty": None},
             "started": "2026-11-26T05:40:00Z", "duration_s": 0.1, "status": "error", "exit_code": 2, "shards": [],
             "emulators": {}, "jobs": [], "cases": []}
    root = build_junit(empty)
    check_junit_schema(root)
    assert (root.get("tests"), root.get("errors")) == ("1", "1")
    assert "**Status: ERROR** - 0/0 checks passed in 0 jobs" in render_markdown(empty)
    page = render_html(empty)
    assert "No job ran." in page and "<svg" not in page
    uncounted = suite_doc()
    for job in uncounted["jobs"]:
        job["metrics"] = {k: None for k in job["metrics"]} | {"count_samples": [], "operators": []}
    page = render_html(uncounted, history_docs()[:1])
    assert "No per-operator counts" in page and page.count("<svg") == 3  # trends from the history only
    assert "| - | - | - | - | - | - |" in render_markdown(uncounted)


# -- the command --------------------------------------------------------------------------------------------

def test_report_writes_every_format(regressed, tmp_path):
    out = tmp_path / "out"
    proc = hil("report", regressed["head_path"], "--junit", out / "junit.xml", "--markdown", out / "summary.md",
               "--html", out / "report.html", "--compare", regressed["compare_path"], "--link",
               "HTML report=report.html", cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "20 testcases: 1 failures, 2 errors, 4 skipped" in proc.stderr
    check_junit_schema(ET.parse(out / "junit.xml").getroot())
    summary = (out / "summary.md").read_text()
    assert "**Verdict: REGRESSED**" in summary and "- [HTML report](report.html)" in summary
    assert "<svg" in (out / "report.html").read_text()
    assert not list(out.glob(".*")), "no temporary files are left behind"

    # no output named: the Markdown summary of the suite goes to stdout
    plain = hil("report", regressed["head_path"].parent, cwd=tmp_path)
    assert plain.returncode == 0 and plain.stdout.startswith("## hil: my-project")
    assert "**Status: FAILED**" in plain.stdout


def test_report_of_merged_shards(tmp_path):
    """The CI path: shards -> `hil merge` -> `hil report`."""
    full = suite_doc(fail_budget=True)
    paths = []
    for i in (1, 2):
        part = copy.deepcopy(full)
        part["shards"] = [{"index": i, "count": 2}]
        part["jobs"] = [{**j, "emulator_log": str(Path(j["result"]).parent / "qemu.log")}
                        for k, j in enumerate(full["jobs"]) if k % 2 == i - 1]
        keep = {(j["platform"], j["model"]) for j in part["jobs"]}
        part["cases"] = [c for c in full["cases"] if (c["platform"], c["model"]) in keep]
        paths.append(write(tmp_path / f"shard-{i}" / "suite.json", part))
        write_results(tmp_path / f"shard-{i}", part)
    merged = tmp_path / "merged.json"
    proc = hil("merge", *paths, "--out", merged, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for job in json.loads(merged.read_text())["jobs"]:  # each path relative to its shard, absolute once merged
        assert Path(job["result"]).is_absolute() and Path(job["emulator_log"]).is_absolute()
        assert Path(job["emulator_log"]).parent == Path(job["result"]).parent
        assert job["emulator_log"].startswith(str(tmp_path / "shard-"))
    proc = hil("report", merged, "--junit", tmp_path / "junit.xml", "--markdown", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(tmp_path / "junit.xml").getroot()
    check_junit_schema(root)
    assert root.get("tests") == "18" and root.get("failures") == "1"
    props = {p.get("name"): p.get("value", "") for p in root.iter("property")}
    assert props["firmware.build_id.gesture"].startswith("b1d")  # absolute result paths after the merge
    assert {v for k, v in props.items() if k == "hil.shard"} <= {"1/2", "2/2"}
    assert "**Status: FAILED** - 13/18 checks passed" in proc.stdout


BAD_INPUTS = {
    "missing file": (None, "no such file", "fix:"),
    "not JSON": ('{"schema": "hil.suite/1", "jobs": [', "is not JSON", "truncated"),
    "no schema": ('{"jobs": []}', 'no "schema" field', "hil test"),
    "a run result": ('{"schema": "hil.result/1", "status": "passed"}', "one run of one model (`hil run`)",
                     "hil test"),
    "newer version": ('{"schema": "hil.suite/2", "jobs": [], "cases": []}', "this hil reads hil.suite/1",
                      "upgrade hil"),
    "a comparison as SUITE": ('{"schema": "hil.compare/1", "changes": []}', "a comparison", "--compare"),
    "damaged": ('{"schema": "hil.suite/1", "status": "passed", "jobs": [], "cases": [{"platform": "p", '
                '"model": "m", "check": "bit_exact", "status": "green"}]}', "cases[0].status", "write it again"),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_suite_input_exits_2_naming_problem_and_fix(tmp_path, name):
    content, problem, fix = BAD_INPUTS[name]
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    proc = hil("report", path, "--junit", tmp_path / "j.xml", cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    text = " ".join(proc.stderr.split())
    assert str(path) in text and problem in text and fix in text, text
    assert not (tmp_path / "j.xml").exists()


def test_bad_compare_and_history_inputs_exit_2(regressed, tmp_path):
    proc = hil("report", regressed["head_path"], "--compare", regressed["base_path"], cwd=tmp_path)
    assert proc.returncode == 2 and "a suite run" in proc.stderr and "--compare takes" in " ".join(proc.stderr.split())
    proc = hil("report", regressed["head_path"], "--html", tmp_path / "r.html", "--history", tmp_path / "nothing",
               cwd=tmp_path)
    assert proc.returncode == 2 and "nothing: no such file" in proc.stderr
    proc = hil("report", regressed["head_path"], "--link", "=x", cwd=tmp_path)
    assert proc.returncode == 2 and "LABEL=URL" in proc.stderr


def test_report_is_registered_and_help_teaches():
    proc = hil("report", "--help")
    assert proc.returncode == 0
    for text in ("--junit OUT.xml", "--markdown OUT.md", "--html OUT.html", "--compare COMPARE.json", "--history",
                 "GITHUB_STEP_SUMMARY", "Exit status"):
        assert text in proc.stdout, text
    assert "report" in hil("--help").stdout


# -- GitHub workflows ---------------------------------------------------------------------------------------

WORKFLOWS = REPO / ".github" / "workflows"


def actionlint() -> str | None:
    local = Path(sys.executable).parent / "actionlint"
    return str(local) if local.exists() else shutil.which("actionlint")


def test_workflows_pass_actionlint():
    binary = actionlint()
    assert binary, "actionlint is missing: install the test extra (pip install -e '.[test]')"
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "hil.yml"]
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run([binary, "-no-color", *map(str, files)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, f"actionlint findings:\n{proc.stdout}{proc.stderr}"


def test_actionlint_reports_a_broken_workflow(tmp_path):
    binary = actionlint()
    assert binary, "actionlint is missing: install the test extra (pip install -e '.[test]')"
    bad = tmp_path / "bad.yml"
    bad.write_text((WORKFLOWS / "hil.yml").read_text().replace("${{ matrix.shard }}", "${{ matrix.shards }}", 1))
    proc = subprocess.run([binary, "-no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "shards" in proc.stdout


def test_user_workflow_runs_the_pipeline():
    text = (WORKFLOWS / "hil.yml").read_text()
    for needle in ("qemu-system-arm", "gcc-arm-none-eabi", "pip install", "matrix:", "hil test",
                   "--shard ${{ matrix.shard }}/${{ strategy.job-total }}", "actions/upload-artifact",
                   "hil merge", "hil report", "--junit", "GITHUB_STEP_SUMMARY", "pull_request", "hil compare",
                   "github.base_ref"):
        assert needle in text, needle
    ci = (WORKFLOWS / "ci.yml").read_text()
    assert ".ci/run" in ci and "debian:12" in ci
