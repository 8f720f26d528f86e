"""Which run stands for a commit, and what `hil compare` may call comparable.

Real `hil test` runs in real QEMU, in a temporary git repository with two
jobs (mps2-an386/kws, mps2-an386/net): a partial (-k) or dirty run must
never stand for a commit, a --no-store run never enters the history, a job
missing on one side is "not compared" (verdict "incomplete", never
"unchanged"), and runs whose reference (or toolchain) version differs are
refused.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

from helpers import MODELS, hil, requires_qemu

PROJECT = """
[project]
name = "identity"
platforms = ["mps2-an386"]
[[models]]
name = "kws"
path = "kws.tflite"
vectors = { random = 2, seed = 1 }
[[models]]
name = "net"
path = "net.tflite"
vectors = { random = 2, seed = 1 }
"""
#: flips a bit of operator 10's output (the demo model's SOFTMAX): kws stops being bit-exact, net (6
#: operators) is untouched; the same firmware as tests/test_output.py's, so the build cache has it once
CORRUPT_KWS = '[firmware]\ndefines = { HIL_CORRUPT_OP = 10 }\n'


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


def ok(proc, code=0):
    assert proc.returncode == code, f"exit {proc.returncode}, wanted {code}\n{proc.stdout}\n{proc.stderr}"
    return proc


def suite_docs(repo: Path) -> list[Path]:
    return sorted((repo / ".hil" / "suites").rglob("suite.json"))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Commit 1 (good firmware): a full run. Commit 2 (operator 10 corrupted):
    a partial run, then a full one (kws fails bit_exact), then a partial
    run again, then a full run from a dirty tree, and a --no-store run."""
    repo = tmp_path_factory.mktemp("identity") / "repo"
    repo.mkdir()
    shutil.copy(MODELS / "demo" / "gesture.tflite", repo / "kws.tflite")
    shutil.copy(MODELS / "test" / "mlp_per_tensor.tflite", repo / "net.tflite")
    (repo / "hil.toml").write_text(textwrap.dedent(PROJECT))
    (repo / "NOTES").write_text("notes\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "good firmware")
    steps = {"good": ok(hil("test", "--json", repo / "good.json", cwd=repo))}

    (repo / "hil.toml").write_text(textwrap.dedent(PROJECT) + CORRUPT_KWS)
    git(repo, "commit", "-qam", "corrupt operator 10")
    steps["first_partial"] = ok(hil("test", "-k", "an386 and net", cwd=repo))
    steps["compare_without_full_run"] = hil("compare", "HEAD~1", "HEAD", cwd=repo)
    steps["full"] = ok(hil("test", "--json", repo / "full.json", cwd=repo), 1)
    steps["partial"] = ok(hil("test", "-k", "an386 and net", "--json", repo / "partial.json", cwd=repo))
    (repo / "NOTES").write_text("uncommitted\n")  # a tracked file changed: the tree is dirty
    steps["dirty"] = ok(hil("test", cwd=repo), 1)
    (repo / "NOTES").write_text("notes\n")
    steps["unstored"] = ok(hil("test", "-k", "net", "--no-store", cwd=repo))
    return repo, steps


@requires_qemu
@pytest.mark.qemu
def test_a_partial_run_never_stands_for_a_commit(project):
    """The issue's false "unchanged": after a full run with a failing
    bit_exact, `hil test -k ...` on the same commit became the run compared,
    17 metrics "removed", verdict unchanged, exit 0."""
    repo, steps = project
    nothing = steps["compare_without_full_run"]  # HEAD had only a partial run then
    assert nothing.returncode == 2, nothing.stdout + nothing.stderr
    assert "no complete run from a clean tree" in nothing.stderr and "run #2: partial (-k 'an386 and net'" \
        in nothing.stderr and "--allow-partial" in nothing.stderr

    compared = hil("compare", "HEAD~1", "HEAD", "--json", repo / "c.json", cwd=repo)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    out = compared.stdout
    assert re.search(r"HEAD: run #3 of [0-9a-f]{10} \(\d{4}-\d\d-\d\d \d\d:\d\d, complete, clean\)", out), out
    assert "skipped run #5: dirty tree" in out and "skipped run #4: partial (-k 'an386 and net'; 1 of 2 jobs)" in out
    assert "BASE: run #1 of" in out
    doc = json.loads((repo / "c.json").read_text())
    assert doc["verdict"] == "regressed"
    cases = {c["id"]: c["status"] for c in doc["cases"]}
    assert cases["mps2-an386/kws/bit_exact"] == "regressed" and cases["mps2-an386/net/bit_exact"] == "unchanged"
    assert not [c for c in doc["changes"] if c["status"] in ("removed", "not compared")]
    assert "the runs' configurations differ: firmware" in out  # commit 2 changed [firmware] in hil.toml

    # the partial run, asked for: what it lacks is listed, the verdict judges what it has and says so
    partial = hil("compare", "HEAD~1", "HEAD", "--allow-partial", "--json", repo / "p.json", cwd=repo)
    assert partial.returncode == 0, partial.stdout
    assert "HEAD: run #4" in partial.stdout and "skipped run #5: dirty tree" in partial.stdout
    doc = json.loads((repo / "p.json").read_text())
    not_compared = {c["id"] for c in doc["cases"] if c["status"] == "not compared"}
    assert not_compared == {"mps2-an386/kws/bit_exact"} and doc["verdict"] == "unchanged"
    assert re.search(r"judged on what was compared; \d+ not compared, allowed by --allow-partial", partial.stdout)

    # the same two documents as files: a job of BASE missing in HEAD makes it incomplete, never unchanged
    files = hil("compare", repo / "full.json", repo / "partial.json", "--json", repo / "i.json", cwd=repo)
    assert files.returncode == 1, files.stdout
    assert "verdict: incomplete" in files.stdout and "not compared" in files.stdout
    summary = ok(hil("report", repo / "partial.json", "--compare", repo / "i.json", "--markdown", "-", cwd=repo))
    assert re.search(r"\*\*Verdict: INCOMPLETE\*\* - \d+ not compared \(ran in one of the two runs only\)", summary.stdout)
    assert "partial (-k 'an386 and net'; 1 of 2 jobs), clean" in files.stdout

    dirty = hil("compare", "HEAD~1", "HEAD", "--allow-dirty", cwd=repo)
    assert "HEAD: run #5 of" in dirty.stdout and "complete, dirty" in dirty.stdout, dirty.stdout


@requires_qemu
@pytest.mark.qemu
def test_history_marks_partial_runs_and_never_shows_unstored_ones(project):
    repo, steps = project
    assert "stored as run 4 in" in steps["partial"].stdout
    assert "partial (-k 'an386 and net'; 1 of 2 jobs), clean" in steps["partial"].stdout
    assert "skip this run unless given --allow-partial" in steps["partial"].stdout

    history = ok(hil("history", cwd=repo, env={"COLUMNS": "250"}))
    rows = [line for line in history.stdout.splitlines() if re.match(r"^│ \d", line)]
    assert [line.split("│")[1].strip() for line in rows] == ["3", "1"], history.stdout
    assert "not listed: 3 of the newest 5 runs (#5 dirty, #4 partial, #2 partial)" in history.stdout

    everything = ok(hil("history", "--allow-partial", "--allow-dirty", cwd=repo, env={"COLUMNS": "250"}))
    by_id = {line.split("│")[1].strip(): line for line in everything.stdout.splitlines() if re.match(r"^│ \d", line)}
    assert sorted(by_id) == ["1", "2", "3", "4", "5"]  # the --no-store run is not among them
    assert "passed (partial)" in by_id["4"] and "1/1 (partial)" in by_id["4"] and "-k 'an386 and net'" in by_id["4"]
    assert "yes" in by_id["5"] and "complete" in by_id["5"]

    # the --no-store run's directory is outside the results directory that trends read
    unstored = list((repo / ".hil" / "suites-unstored").rglob("suite.json"))
    assert len(unstored) == 1 and json.loads(unstored[0].read_text())["identity"]["recorded"] is False
    assert len(suite_docs(repo)) == 5 and all(json.loads(p.read_text())["identity"]["recorded"]
                                              for p in suite_docs(repo))


@requires_qemu
@pytest.mark.qemu
def test_provenance_is_recorded_per_run_job_and_store(project):
    repo, _ = project
    doc = json.loads((repo / "good.json").read_text())
    job = doc["jobs"][0]
    (suite_dir,) = [p.parent for p in suite_docs(repo) if json.loads(p.read_text())["git"]["subject"] == "good firmware"]
    prov = json.loads((suite_dir / job["result"]).read_text())["provenance"]
    assert prov["reference"] == {"package": "tflite-micro", "version": metadata.version("tflite-micro")}
    gcc = subprocess.run(["arm-none-eabi-gcc", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    assert prov["toolchain"]["name"] == "arm-none-eabi-gcc" and prov["toolchain"]["version"] == gcc
    qemu = subprocess.run(["qemu-system-arm", "--version"], capture_output=True, text=True).stdout.split()[3]
    assert prov["emulator"]["name"] == "qemu-system-arm" and prov["emulator"]["version"] == qemu
    assert prov["engine"]["name"] == "builtin" and prov["engine"]["version"].startswith("src-")
    assert set(prov["host"]) == {"arch", "python", "os"} and prov["hil"]
    outputs = prov["reference_outputs"]  # where the verdict's reference came from (the suite's runs: a shared cache)
    model_sha256 = json.loads((suite_dir / job["result"]).read_text())["model"]["sha256"]
    assert outputs["source"] in ("computed", "cache") and outputs["covers"]["model_sha256"] == model_sha256
    assert job["provenance"] == prov and doc["provenance"]["reference"] == prov["reference"]
    assert (suite_dir / job["emulator_log"]).name == "qemu.log" and (suite_dir / job["emulator_log"]).exists()
    identity = doc["identity"]
    assert identity["complete"] and identity["clean"] and identity["jobs_defined"] == ["mps2-an386/kws",
                                                                                     "mps2-an386/net"]
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{repo / '.hil' / 'results.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, complete, clean, config_hash, reference_version "
                                    "FROM hil_suite_runs ORDER BY id")).all()
    assert [(r[1], r[2]) for r in rows] == [(1, 1), (0, 1), (1, 1), (0, 1), (1, 0)]
    assert {r[4] for r in rows} == {metadata.version("tflite-micro")}
    assert rows[0][3] != rows[2][3] and rows[2][3] == rows[3][3]  # commit 2 changed hil.toml's [firmware]


@requires_qemu
@pytest.mark.qemu
def test_compare_refuses_runs_of_two_reference_versions(project, tmp_path):
    """A second tflite-micro version cannot be installed here (it is pinned,
    and CI is offline), so HEAD is the real suite document of a run with its
    jobs' provenance edited to another reference version (and, for the
    second case, another toolchain)."""
    repo, _ = project
    base = json.loads((repo / "good.json").read_text())
    head = copy.deepcopy(base)
    old = base["jobs"][0]["provenance"]["reference"]["version"]
    for job in head["jobs"]:
        job["provenance"]["reference"]["version"] = "0.dev20270101000000"
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))

    refused = hil("compare", tmp_path / "base.json", tmp_path / "head.json", "--json", tmp_path / "c.json",
                  cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["verdict"] == "incomparable"
    change = f"reference tflite-micro {old} -> 0.dev20270101000000"
    cases = {c["id"]: c for c in doc["cases"]}
    assert cases["mps2-an386/kws/bit_exact"]["status"] == "incomparable" and \
        cases["mps2-an386/kws/bit_exact"]["note"] == change
    statuses = {c["metric"]: c["status"] for c in doc["changes"] if c["platform"] == "mps2-an386"}
    assert statuses["count"] == "unchanged" and statuses["flash_bytes"] == "unchanged"  # the device ran the same
    assert change in refused.stdout and "--allow-version-change" in refused.stdout

    allowed = hil("compare", tmp_path / "base.json", tmp_path / "head.json", "--allow-version-change", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stdout
    assert "warning: compared across changed versions" in allowed.stdout and "verdict: unchanged" in allowed.stdout

    for job in head["jobs"]:  # a new compiler: counts and sizes are incomparable too, the model's size is not
        job["provenance"]["reference"]["version"] = old
        job["provenance"]["toolchain"]["version"] = "14.2.0"
    (tmp_path / "head.json").write_text(json.dumps(head))
    toolchain = hil("compare", tmp_path / "base.json", tmp_path / "head.json", "--json", tmp_path / "t.json",
                    cwd=tmp_path)
    assert toolchain.returncode == 2
    statuses = {c["metric"]: c for c in json.loads((tmp_path / "t.json").read_text())["changes"]}
    assert statuses["count"]["status"] == "incomparable" and "toolchain arm-none-eabi-gcc" in statuses["count"]["note"]
    assert statuses["model_bytes"]["status"] == "unchanged"


@requires_qemu
@pytest.mark.qemu
def test_compare_all_shows_unchanged_rows_and_energy_keeps_its_label(project, tmp_path):
    """`--all` crashed (no style for "unchanged"); an unchanged comparison
    printed an empty table. The energy basis is edited in a copy of a real
    document: QEMU platforms all estimate from instructions x CPI."""
    repo, _ = project
    same = ok(hil("compare", repo / "good.json", repo / "good.json", cwd=repo))
    assert "no metric changed beyond its threshold (" in same.stdout and "verdict: unchanged" in same.stdout
    everything = ok(hil("compare", repo / "good.json", repo / "good.json", "--all", cwd=repo, env={"COLUMNS": "200"}))
    rows = [line for line in everything.stdout.splitlines() if "unchanged" in line and "│" in line]
    assert len(rows) >= 10, everything.stdout  # count, energy, sizes of both jobs
    energy = next(line for line in rows if "energy" in line)
    assert re.search(r"uJ \(estimate, unverified, (band unknown|[-+][\d.]+%/[-+][\d.]+%)", energy), energy  # band too
    value = energy.split("│")[3].strip()
    assert len(value.replace(",", "").replace(".", "").lstrip("0")) <= 3, value  # 3 significant figures

    head = json.loads((repo / "good.json").read_text())
    for job in head["jobs"]:
        job["metrics"]["energy_basis"] = {"kind": "measured", "verified": True, "error_band": None,
                                          "source": "bench"}
    (tmp_path / "head.json").write_text(json.dumps(head))
    measured = hil("compare", repo / "good.json", tmp_path / "head.json", "--json", tmp_path / "c.json", cwd=repo)
    assert measured.returncode == 2, measured.stdout
    energy = [c for c in json.loads((tmp_path / "c.json").read_text())["changes"] if c["metric"] == "energy_uj"]
    assert energy and all(c["status"] == "incomparable" and "-> measured" in c["note"] for c in energy)

    head = json.loads((repo / "good.json").read_text())
    for job in head["jobs"]:  # 10% more energy on the same (unverified) basis: a regression that says what it is
        job["metrics"]["energy_uj"] *= 1.1
    (tmp_path / "more.json").write_text(json.dumps(head))
    more = hil("compare", repo / "good.json", tmp_path / "more.json", "--json", tmp_path / "m.json", cwd=repo)
    assert more.returncode == 1, more.stdout
    energy = [c for c in json.loads((tmp_path / "m.json").read_text())["changes"] if c["metric"] == "energy_uj"]
    assert energy and all(c["status"] == "regressed" and c["unit"].startswith("uJ (estimate, unverified, ")
                          and c["note"].startswith("on an unverified estimate (estimate: ")
                          for c in energy), energy


@pytest.mark.qemu
def test_suites_from_no_git_are_named_by_their_files(project, tmp_path):
    """Two suite.json files from a project outside git were titled
    "suite.json () -> suite.json ()": both named alike, each with an empty
    commit."""
    repo, _ = project
    doc = json.loads((repo / "good.json").read_text())
    doc["git"] = {}
    for name in ("base", "head"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "suite.json").write_text(json.dumps(doc))
    proc = hil("compare", "base/suite.json", "head/suite.json", "--all", cwd=tmp_path, env={"COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "base/suite.json -> head/suite.json" in proc.stdout and "()" not in proc.stdout, proc.stdout
