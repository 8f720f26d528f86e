"""Suite machinery without an emulator: hil.toml validation, job selection,
sharding, merging, comparison rules."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from harness.config import load_config
from harness.errors import UsageError
from harness.results.compare import compare
from harness.suite import Job, merge, parse_shard, select, shard

from helpers import MODELS, hil


def _project(tmp_path, body: str):
    (tmp_path / "m.tflite").write_bytes((MODELS / "test" / "mlp_per_tensor.tflite").read_bytes())
    path = tmp_path / "hil.toml"
    path.write_text(textwrap.dedent(body))
    return path


GOOD = """
[project]
name = "demo"
platforms = ["mps2-an386"]
[[models]]
name = "mlp"
path = "m.tflite"
vectors = { random = 5, seed = 1 }
checks = { tolerance_lsb = 1 }
budgets = { max_count = 1e6 }
"""


def test_a_valid_project_loads_with_defaults(tmp_path):
    config = load_config(_project(tmp_path, GOOD))
    (model,) = config.models
    assert model.checks == {"bit_exact": True, "tolerance_lsb": 1}
    assert model.budgets == {"max_count": 1e6}
    assert config.compare["count_pct"] == 1.0 and config.store == ".hil/results.db"


@pytest.mark.parametrize("change, message", [
    (("budgets = { max_count = 1e6 }", "budgets = { max_cnt = 1e6 }"), "did you mean `max_count`"),
    (('path = "m.tflite"', 'path = "missing.tflite"'), "does not exist"),
    (("vectors = { random = 5, seed = 1 }", 'vectors = { random = 5, file = "m.tflite" }'), "exactly one of"),
    (("checks = { tolerance_lsb = 1 }", 'checks = { tolerance_lsb = "one" }'), "must be a int"),
    (('platforms = ["mps2-an386"]', 'platforms = ["nope"]'), "unknown platform"),
    (("[project]", "[projet]"), "did you mean `project`"),
])
def test_bad_config_names_the_key_and_the_fix(tmp_path, change, message):
    with pytest.raises(UsageError, match=message) as info:
        load_config(_project(tmp_path, GOOD.replace(*change)))
    assert "fix:" in str(info.value) or "unknown platform" in str(info.value)


def test_hil_init_writes_a_project_that_loads(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.tflite").write_bytes((MODELS / "test" / "mlp_per_tensor.tflite").read_bytes())
    result = CliRunner().invoke(main, ["init", "--model", "net.tflite"])
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "hil.toml")
    assert config.models[0].name == "net" and config.models[0].vectors.random == 100
    again = CliRunner().invoke(main, ["init"])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def _jobs(n_models=5, platforms=("a", "b")):
    from harness.config import ModelEntry, VectorSpec

    models = [ModelEntry(f"m{i}", MODELS, VectorSpec(random=1), tuple(platforms), {}, {}) for i in range(n_models)]
    return sorted((Job(p, m) for m in models for p in m.platforms), key=lambda j: j.id)


def test_keyword_selection():
    jobs = _jobs()
    assert [j.id for j in select(jobs, "m1")] == ["a/m1", "b/m1"]
    assert [j.id for j in select(jobs, "a/ and not (m1 or m2)")] == ["a/m0", "a/m3", "a/m4"]
    with pytest.raises(UsageError):
        select(jobs, "a and (")


def test_shards_partition_the_jobs_deterministically():
    jobs = _jobs()
    parts = [shard(jobs, (i, 3)) for i in (1, 2, 3)]
    ids = [j.id for part in parts for j in part]
    assert sorted(ids) == sorted(j.id for j in jobs) and len(ids) == len(set(ids))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [j.id for j in shard(list(reversed(jobs)), (2, 3))] == [j.id for j in parts[1]]
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(UsageError):
            parse_shard(bad)


def _suite(jobs: dict, commit="c1", cases=None, shards=()):
    return {"schema": "hil.suite/1", "suite": "s", "git": {"commit": commit}, "status": "passed",
            "exit_code": 0, "shards": list(shards), "started": "t", "duration_s": 1,
            "jobs": [{"id": k, "platform": k.split("/")[0], "model": k.split("/")[1], "status": "passed",
                      "result": "r.json", "metrics": m} for k, m in jobs.items()],
            "cases": cases or []}


def test_merge_joins_shards_and_rejects_mixed_runs(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_suite({"p/m1": {}}, shards=[{"index": 1, "count": 2}])))
    b.write_text(json.dumps(_suite({"p/m2": {}}, shards=[{"index": 2, "count": 2}])))
    merged = merge([a, b])
    assert [j["id"] for j in merged["jobs"]] == ["p/m1", "p/m2"] and len(merged["shards"]) == 2
    b.write_text(json.dumps(_suite({"p/m2": {}}, commit="other")))
    with pytest.raises(UsageError, match="merge only the shards"):
        merge([a, b])
    b.write_text(json.dumps(_suite({"p/m1": {}}, shards=[{"index": 2, "count": 2}])))
    with pytest.raises(UsageError, match="appears in two"):
        merge([a, b])


def test_merging_some_shards_of_a_split_is_refused_unless_partial(tmp_path):
    """`hil merge` of shard 1/2 alone (shard 2's CI job crashed, its
    artifact never came) said "passed, exit status 0": a gate that passed
    on half the suite. Now exit 2 naming the missing shard, nothing
    written; --partial merges what is there, marked incomplete."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_suite({"p/m1": {}}, shards=[{"index": 1, "count": 2}])))
    result = hil("merge", a, "--out", tmp_path / "m.json")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "shard 2/2 missing" in result.stderr and "--partial" in result.stderr
    assert not (tmp_path / "m.json").exists()
    result = hil("merge", a, "--out", tmp_path / "m.json", "--partial")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "m.json").read_text())["identity"]["complete"] is False
    b.write_text(json.dumps(_suite({"p/m2": {}}, shards=[{"index": 2, "count": 3}])))
    with pytest.raises(UsageError, match="split the suite in different ways"):
        merge([a, b], partial=True)


T = {"count_pct": 1.0, "energy_pct": 1.0, "flash_pct": 1.0, "ram_pct": 1.0, "arena_pct": 1.0,
     "model_pct": 1.0, "accuracy_drop": 0.01}


def _metrics(**kw):
    base = {"count": 1000, "count_kind": "instructions", "ram_bytes": 100, "accuracy": 0.9}
    return {**base, **kw}


def test_compare_thresholds_and_verdicts():
    same = compare(_suite({"p/m": _metrics()}), _suite({"p/m": _metrics(count=1009)}), T)
    assert same["verdict"] == "unchanged" and same["exit_code"] == 0  # +0.9% is under 1%
    worse = compare(_suite({"p/m": _metrics()}), _suite({"p/m": _metrics(count=1011, accuracy=0.8)}), T)
    regressed = {c["metric"] for c in worse["changes"] if c["status"] == "regressed"}
    assert regressed == {"count", "accuracy"} and worse["exit_code"] == 1
    better = compare(_suite({"p/m": _metrics()}), _suite({"p/m": _metrics(ram_bytes=50)}), T)
    assert better["verdict"] == "improved" and better["exit_code"] == 0


def test_compare_never_mixes_count_kinds():
    doc = compare(_suite({"p/m": _metrics()}), _suite({"p/m": _metrics(count_kind="cycles")}), T)
    (change,) = [c for c in doc["changes"] if c["metric"] == "count"]
    assert change["status"] == "incomparable" and "cannot be compared" in change["note"]
    assert doc["exit_code"] == 2


def test_noisy_cycle_counts_regress_only_when_ranges_separate():
    base = _metrics(count_kind="cycles", count=1000, count_samples=[990, 1000, 1030])
    overlap = _metrics(count_kind="cycles", count=1025, count_samples=[1000, 1025, 1040])
    apart = _metrics(count_kind="cycles", count=1100, count_samples=[1090, 1100, 1110])
    assert compare(_suite({"p/m": base}), _suite({"p/m": overlap}), T)["verdict"] == "unchanged"
    assert compare(_suite({"p/m": base}), _suite({"p/m": apart}), T)["verdict"] == "regressed"


def test_a_check_that_stops_passing_is_a_regression():
    case = lambda status: [{"id": "p/m/bit_exact", "status": status}]  # noqa: E731
    doc = compare(_suite({"p/m": _metrics()}, cases=case("passed")), _suite({"p/m": _metrics()}, cases=case("failed")), T)
    assert doc["verdict"] == "regressed" and doc["cases"][0]["status"] == "regressed"


def test_compare_names_a_changed_model_and_refuses_accuracy_on_other_vectors(tmp_path):
    """BASE measured accuracy 0.90 on one labelled file, HEAD 0.80 on
    another: hil compare called it a 0.10 regression, and a model swapped
    between the runs went unmentioned. Now the accuracy is incomparable
    (exit 2) naming both vector sets; the counts of a changed model are
    still compared (that is the gate's point) and the change is listed."""
    from harness.model.tflite import load_model
    from harness.model.vectors import load_vectors

    model = load_model(MODELS / "demo" / "gesture.tflite")
    spec = model.inputs[0]
    data = np.zeros((4, *spec.shape[1:]), dtype=spec.dtype)
    np.savez(tmp_path / "a.npz", input_0=data, labels=np.array([0, 1, 0, 1]))
    np.savez(tmp_path / "b.npz", input_0=data, labels=np.array([1, 1, 0, 1]))
    np.savez(tmp_path / "c.npz", input_0=data, labels=np.array([0, 1, 0, 1]))
    a, b, c = (load_vectors(tmp_path / f"{n}.npz", model).source for n in "abc")
    assert a["sha256"] == c["sha256"] != b["sha256"]  # the data, not the file name
    files = {k: a[k] for k in ("kind", "count", "sha256")}, {k: b[k] for k in ("kind", "count", "sha256")}
    base = _metrics(accuracy=0.9, model_sha256="1" * 64, vectors=files[0])
    head = _metrics(accuracy=0.8, count=1000, model_sha256="2" * 64, vectors=files[1])
    doc = compare(_suite({"p/m": base}), _suite({"p/m": head}), T)
    (accuracy,) = [c for c in doc["changes"] if c["metric"] == "accuracy"]
    assert accuracy["status"] == "incomparable" and "other vectors" in accuracy["note"]
    assert a["sha256"][:12] in accuracy["note"] and doc["exit_code"] == 2
    assert doc["model_changes"] == {"p/m": {"base": "1" * 64, "head": "2" * 64}}
    same = compare(_suite({"p/m": base}), _suite({"p/m": {**base, "accuracy": 0.7}}), T)
    assert same["verdict"] == "regressed" and not same["vector_changes"] and not same["model_changes"]


def test_an_absolute_platform_path_keeps_the_job_in_the_suite_directory(tmp_path, monkeypatch):
    """hil.toml may name a platform by its file's absolute path: the job's
    run directory is still runs/<platform>/<model> inside the suite's (the
    path itself once replaced the suite directory, and the suite crashed)."""
    import harness.suite as suite
    from harness.platforms import PLATFORMS_DIR
    from harness.results.result import RunResult

    platform = tmp_path / "plat" / "my-board.toml"
    platform.parent.mkdir()
    platform.write_text((PLATFORMS_DIR / "mps2-an386.toml").read_text())
    config = load_config(_project(tmp_path, GOOD.replace('["mps2-an386"]', json.dumps([str(platform)]))))
    workdirs = []

    class FakeRun:
        def __init__(self, cfg, reporter=None):
            workdirs.append(cfg.workdir)

        def execute(self):
            result = RunResult(platform={"name": "mps2-an386"}, model={"path": "m.tflite"})
            result.status, result.exit_code = "passed", 0
            return result

    monkeypatch.setattr(suite, "Run", FakeRun)
    doc, path = suite.run_suite(config, out_dir=tmp_path / "suite", recorded=False)
    (job,) = doc["jobs"]
    assert job["result"] == "runs/my-board/mlp/result.json"
    assert workdirs == [tmp_path / "suite" / "runs" / "my-board" / "mlp"]


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_budget_of_zero_or_less_in_hil_toml_is_refused(tmp_path, value):
    with pytest.raises(UsageError, match="models\\[0\\].budgets.max_count` is .*not a positive number"):
        load_config(_project(tmp_path, GOOD.replace("max_count = 1e6", f"max_count = {value}")))


def test_the_suite_table_shows_each_estimate_with_its_error_band():
    """`hil test`'s table printed the cycles and energy estimates of each
    job as bare numbers ("629,000, 25.2 ms", "213"): an estimate is shown
    with its band wherever it is shown, and jobs on different platforms
    have different bands."""
    from rich.console import Console

    from harness.commands.test import _summary_table

    band = ("+-58.0% (largest cycles error seen, set by a comparison that is not like for like (the software "
            "differed); CoreMark/MHz against the core vendor's published figure: 1 benchmark)")
    doc = {"suite": "s", "git": {}, "cases": [], "jobs": [
        {"id": "mps2-an386/demo", "metrics": {
            "count": 521780.0, "count_kind": "instructions", "cycles_estimate": 629077.5, "latency_ms": 25.16,
            "cycles_basis": {"model": "cortex-m4", "clock_hz": 25_000_000, "error_band": band},
            "energy_uj": 213.2, "energy_basis": {"kind": "cycles_estimate", "verified": False, "error_pct": None,
                                                 "error_band": "unknown: power scaled"}}},
        {"id": "riscv32-virt/demo", "metrics": {
            "count": 2102397.0, "count_kind": "instructions", "cycles_estimate": 2340000.0, "latency_ms": 7.3,
            "cycles_basis": {"model": "rv32imac", "clock_hz": 320_000_000, "error_band": "unknown: no validation"},
            "energy_uj": 50.0, "energy_basis": {"kind": "cycles_estimate", "verified": False,
                                                "error_pct": [-10.4, 11.2], "error_band": "-10.4%/+11.2%"}}}]}
    console = Console(width=400, record=True)
    console.print(_summary_table(doc))
    text = console.export_text()
    an386, riscv = (next(line for line in text.splitlines() if job in line) for job in ("mps2-an386", "riscv32"))
    assert "+-58.0% (not like for like)" in an386 and "band unknown" in an386, an386
    assert "band unknown" in riscv and "-10.4%/+11.2%" in riscv, riscv
