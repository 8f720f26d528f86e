"""Suites end to end in real QEMU: hil test on successive git commits,
hil compare between them, shards merged into one document."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

PROJECT = """
[project]
name = "regressions"
platforms = ["mps2-an386"]
[[models]]
name = "net"
path = "net.tflite"
vectors = {{ random = 4, seed = 1 }}
{extra}
"""


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(MODELS / "test" / "mlp_per_tensor.tflite", repo / "net.tflite")
    (repo / "hil.toml").write_text(textwrap.dedent(PROJECT.format(extra="")))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "small model")
    return repo


def test_compare_reports_exactly_the_regressions_of_a_slower_bigger_model(repo):
    first = hil("test", cwd=repo)
    assert first.returncode == 0, first.stdout + first.stderr

    shutil.copy(MODELS / "test" / "conv_sweep.tflite", repo / "net.tflite")  # slower and bigger
    git(repo, "commit", "-qam", "bigger model")
    second = hil("test", cwd=repo)
    assert second.returncode == 0, second.stdout + second.stderr
    compared = hil("compare", "HEAD~1", "HEAD", "--json", repo / "c.json", cwd=repo)
    assert compared.returncode == 1, compared.stdout + compared.stderr
    doc = json.loads((repo / "c.json").read_text())
    regressed = {c["metric"] for c in doc["changes"] if c["status"] == "regressed"}
    expected = {"count", "energy_uj", "ram_bytes", "arena_bytes", "model_bytes"}
    if any(c["metric"] == "cycles_estimate" for c in doc["changes"]):
        expected.add("cycles_estimate")  # the timing model's estimate grows with the count
    assert regressed == expected
    assert doc["verdict"] == "regressed"
    assert all(c["status"] == "unchanged" for c in doc["cases"])
    assert "regressed" in compared.stdout

    (repo / "README").write_text("docs only\n")  # a commit that changes nothing measured
    git(repo, "add", "README")
    git(repo, "commit", "-qm", "docs")
    third = hil("test", cwd=repo)
    assert third.returncode == 0, third.stdout + third.stderr
    unchanged = hil("compare", "HEAD~1", "HEAD", cwd=repo)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "verdict: unchanged" in unchanged.stdout

    history = hil("history", cwd=repo)
    assert history.stdout.count("│ passed ") == 3 and "bigger model" in history.stdout


def test_shards_in_parallel_merge_into_the_full_suite(repo):
    shutil.copy(MODELS / "test" / "float_io.tflite", repo / "float.tflite")
    extra = ('[[models]]\nname = "float"\npath = "float.tflite"\nvectors = { random = 3 }\n'
             'checks = { cosine_min = 0.999 }\nbudgets = { max_count = 1e7 }')
    (repo / "hil.toml").write_text(textwrap.dedent(PROJECT.format(extra=extra)))
    docs = []
    for i in (1, 2):
        out = repo / f"shard{i}.json"
        proc = hil("test", "--shard", f"{i}/2", "-j", "2", "--json", out, "--no-store", cwd=repo)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        docs.append(json.loads(out.read_text()))
    assert sorted(len(d["jobs"]) for d in docs) == [1, 1]
    merged = hil("merge", repo / "shard1.json", repo / "shard2.json", "-o", repo / "all.json", cwd=repo)
    assert merged.returncode == 0, merged.stderr
    doc = json.loads((repo / "all.json").read_text())
    assert [j["id"] for j in doc["jobs"]] == ["mps2-an386/float", "mps2-an386/net"]
    assert {c["check"] for c in doc["cases"]} == {"bit_exact", "cosine_min", "max_count"}
    assert doc["status"] == "passed" and all(c["status"] == "passed" for c in doc["cases"])
    full = hil("test", "-j", "2", "--json", repo / "full.json", "--no-store", cwd=repo)
    assert full.returncode == 0
    same = hil("compare", repo / "all.json", repo / "full.json", cwd=repo)
    assert same.returncode == 0, same.stdout


def test_a_failing_check_fails_the_suite_with_one_case_per_check(repo):
    (repo / "hil.toml").write_text(textwrap.dedent(PROJECT.format(
        extra="budgets = { max_count = 100, max_arena = 1e6 }")))
    proc = hil("test", "--json", repo / "s.json", cwd=repo)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((repo / "s.json").read_text())
    status = {c["check"]: c["status"] for c in doc["cases"]}
    assert status == {"bit_exact": "passed", "max_count": "failed", "max_arena": "passed"}
    assert "max_count" in proc.stdout and "EXCEEDED" in proc.stdout


def test_model_names_from_hil_toml_are_shown_as_written_and_unsafe_ones_refused(tmp_path):
    """A model named "kws[v2]" was listed and tabulated as "kws" (Rich
    read "[v2]" as a style), and a project named "reg[/]" crashed `hil
    test` after its jobs ran; a model named "../x" put its run directory
    outside the suite's. Now names show as written, and a model name with
    "/" is exit 2 before anything runs."""
    shutil.copy(MODELS / "test" / "mlp_per_tensor.tflite", tmp_path / "net.tflite")
    project = PROJECT.replace('name = "net"', 'name = "kws[v2]"').replace('"regressions"', '"reg[/]"').format(extra="")
    (tmp_path / "hil.toml").write_text(textwrap.dedent(project))
    listed = hil("test", "--list", cwd=tmp_path)
    assert listed.returncode == 0 and "mps2-an386/kws[v2]" in listed.stdout, listed.stdout + listed.stderr
    ran = hil("test", "--no-store", cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "kws[v2]" in ran.stdout and "suite reg[/]" in ran.stdout and "Traceback" not in ran.stderr
    (tmp_path / "hil.toml").write_text(textwrap.dedent(PROJECT.replace('name = "net"', 'name = "../x"')
                                                       .format(extra="")))
    refused = hil("test", "--no-store", cwd=tmp_path)
    assert refused.returncode == 2 and "models[0].name" in refused.stderr, refused.stdout + refused.stderr
    assert "cannot name a job" in refused.stderr and not (tmp_path / "x").exists()
