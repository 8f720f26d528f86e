"""What `hil run` prints, and the reference computed alongside the device.

Real QEMU runs, real firmware builds and the real TFLite-Micro reference
child: by default the report fits a screen (summary, failing rows capped,
the per-operator table), `--all` lists every vector, a CI log (no
terminal) gets plain progress lines at a bounded rate and no escape codes,
and the reference streams its outputs so the first verdict does not wait
for the whole batch."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from helpers import MODELS, hil, requires_qemu

DEMO = MODELS / "demo" / "gesture.tflite"
PROGRESS_LINE = re.compile(r"^vectors (\d+)/(\d+) \((\d+)%\), (\d+) passed, (\d+) failed, [\d.]+ vectors/s, ETA \d+ s")
VECTOR_ROW = re.compile(r"^│\s+\d+ │ (passed|mismatch|fault|timeout|error) ")


def _reference_children() -> list[int]:
    """PIDs of reference interpreter children of this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and "harness.model.reference" in cmd:
            found.append(int(entry.name))
    return found


# -- without QEMU: the progress lines' rate, the reference on its own ----------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines_for(total: int, seconds_per_vector: float) -> list[str]:
    """Plain progress lines a run of `total` vectors at a steady rate prints
    (a fake clock: what is tested is the rule, not the machine's speed)."""
    from rich.console import Console

    from harness.results.console import ProgressLines

    console = Console(width=160, record=True, force_terminal=False)
    clock = _Clock()
    lines = ProgressLines(console, clock=clock)
    lines.start(total)
    for done in range(1, total + 1):
        clock.now += seconds_per_vector
        lines.update(done, passed=done, failed=0)
    return console.export_text().splitlines()


def test_plain_progress_lines_stay_few_for_any_run_length():
    quick = _lines_for(90, 0.01)  # under a second: nothing to wait for
    assert quick == []
    for total, per_vector in ((100, 0.001), (90, 0.06), (500, 0.1), (100_000, 0.036), (20, 30.0)):
        text = _lines_for(total, per_vector)
        assert 3 <= len(text) <= 20, (total, per_vector, text)
        assert all(PROGRESS_LINE.match(line) for line in text), text
        counts = [int(m[3]) for line in text if (m := PROGRESS_LINE.match(line))]  # every line, as just checked
        assert counts == sorted(counts)


def test_a_device_waiting_for_the_reference_still_shows_progress():
    """Before vector 0 can be checked the device may wait for the reference
    (a slow one, or its start): the runner keeps reporting the reference's
    progress, and a log gets a line every 10 s saying so."""
    from rich.console import Console

    from harness.results.console import RunProgress

    console = Console(width=160, record=True, force_terminal=False)
    clock = _Clock()
    progress = RunProgress(console, plain=True)
    progress.lines.clock = clock
    progress.start_vectors(500)
    for second in range(1, 26):
        clock.now = float(second)
        progress.reference_progress(second * 4, 500)
    assert console.export_text().splitlines() == ["vectors 0/500, waiting for the reference, reference 40/500",
                                                  "vectors 0/500, waiting for the reference, reference 80/500"]


def test_streamed_reference_equals_the_batch_reference_in_order_with_state():
    """The reference child streams each vector's outputs as it computes
    them; stateful models (resource variables) see the vectors in order,
    so the streamed outputs equal one interpreter run over the batch."""
    from harness.model.reference import ReferenceRunner, compute
    from harness.model.tflite import load_model
    from harness.model.vectors import random_vectors

    for name in ("stateful_int8", "conv_sweep"):
        model = load_model(MODELS / "test" / f"{name}.tflite")
        vectors = random_vectors(model, 70, seed=4).vectors
        runner = ReferenceRunner(model.data, len(model.outputs))
        try:
            runner.submit(vectors)
            streamed = [runner.output(i) for i in range(len(vectors))]
            assert runner.computed == len(vectors)
        finally:
            runner.close()
        alone = compute(model.data, vectors, runner.arena_size, len(model.outputs))
        assert len(streamed) == len(alone)
        for got, want in zip(streamed, alone):
            assert all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want))
    assert _reference_children() == []


def test_a_failing_reference_is_an_infrastructure_error_naming_it():
    """An arena far too small for the model: TFLM refuses it in the child;
    the runner gets the interpreter's failure as an InfraError (exit 3),
    and no child is left."""
    from harness.errors import InfraError
    from harness.model.reference import ReferenceRunner
    from harness.model.tflite import load_model
    from harness.model.vectors import random_vectors

    model = load_model(DEMO)
    runner = ReferenceRunner(model.data, len(model.outputs))
    runner.arena_size = 256
    try:
        runner.submit(random_vectors(model, 3, seed=1).vectors)
        with pytest.raises(InfraError, match="TFLite-Micro reference interpreter") as caught:
            runner.output(0)
        assert caught.value.exit_code == 3
    finally:
        runner.close()
    assert _reference_children() == []


# -- real runs ----------------------------------------------------------------------------------


@requires_qemu
@pytest.mark.qemu
def test_a_long_run_prints_plain_progress_and_a_short_report(tmp_path):
    """300 vectors without a terminal (as in CI): stdout holds the
    per-operator table and the summary, not 300 rows; stderr the stages
    and a handful of progress lines (at least at 25, 50 and 75%: 100
    vectors or more); no escape codes anywhere."""
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "300", "--seed", "3", "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) <= 40, proc.stdout
    assert not [line for line in lines if VECTOR_ROW.match(line)]
    assert lines[-1].strip() == f"result: {out}"
    assert any(line.startswith("PASSED  300/300 vectors") for line in lines)
    assert "per operator" in proc.stdout and "SOFTMAX" in proc.stdout
    progress = [m for line in proc.stderr.splitlines() if (m := PROGRESS_LINE.match(line))]
    assert 3 <= len(progress) <= 20, proc.stderr
    assert all(m[2] == "300" and m[5] == "0" for m in progress)
    assert "booting mps2-an386" in proc.stderr
    result = json.loads(out.read_text())
    assert result["summary"]["passed"] == 300
    t = result["timings"]
    assert t["first_verdict_s"] <= t["vectors_s"] + t["boot_s"] + t["load_s"] + t["prepare_build_s"] + 1
    assert 0 <= t["reference_wait_s"] <= t["vectors_s"] and t["reference_s"] > 0


@requires_qemu
@pytest.mark.qemu
def test_all_lists_every_vector(tmp_path):
    proc = hil("demo", "--all", "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if VECTOR_ROW.match(line)]
    assert len(rows) == 200 and all(" passed " in r for r in rows)
    assert proc.stdout.splitlines()[-1].strip().startswith("result: ")


@requires_qemu
@pytest.mark.qemu
def test_a_failing_run_shows_its_failing_rows_capped(tmp_path):
    """Firmware that flips one bit of the SOFTMAX output (HIL_CORRUPT_OP):
    every vector mismatches; the report lists the first 20, says how many
    more there are and where to find them, and stays short."""
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    elf = build_firmware(load_platform("mps2-an386"), {"HIL_CORRUPT_OP": "10"}).elf.path
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "60", "--firmware", elf, "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if VECTOR_ROW.match(line)]
    assert len(rows) == 20 and all(" mismatch " in r for r in rows)
    assert "... and 40 more failing vectors (see result.json or --all)" in proc.stdout
    assert len(proc.stdout.splitlines()) <= 90, proc.stdout  # a row may wrap its detail onto a second line
    assert "FAILED  0/60 vectors" in proc.stdout
    assert len(json.loads(out.read_text())["vectors"]) == 60


@requires_qemu
@pytest.mark.qemu
def test_the_first_verdict_comes_before_the_reference_finishes(tmp_path):
    """20,000 vectors: the reference needs seconds for them all, the device
    one vector to give a verdict. When vector 0 is recorded the reference
    has delivered only part of its outputs (the runner reports its
    progress), so the device did not wait for the whole batch. The run is
    then stopped: it ends as interrupted and no reference child is left."""
    from harness.runner import Run, RunConfig

    seen: dict = {}

    class FirstVerdict:
        run: Run

        def stage(self, text):
            pass

        def start_vectors(self, total):
            seen["total"] = total

        def reference_progress(self, done, total):
            seen["reference"] = (done, total)

        def vector_done(self, result):
            if "first" not in seen:
                seen["first"] = (result.index, result.status, seen.get("reference"))
                self.run.abort()

    reporter = FirstVerdict()
    run = reporter.run = Run(RunConfig(model=DEMO, platform="mps2-an386", vectors=20_000, seed=2,
                                       workdir=tmp_path / "run"), reporter)
    result = run.execute()
    index, status, (done, total) = seen["first"]
    assert (index, status) == (0, "passed")
    assert total == 20_000 and 1 <= done < total
    assert result.status == "interrupted" and result.vectors[0].passed
    assert _reference_children() == []


@requires_qemu
@pytest.mark.qemu
def test_parallel_suite_jobs_print_whole_progress_lines_naming_the_job(tmp_path):
    """`hil test -j 2`: each job's progress lines name the job and never
    run into another job's (a job that takes long enough prints them;
    here every job does: quiet_below_s=0)."""
    from rich.console import Console

    from harness.config import load_config
    from harness.results.console import RunProgress
    from harness.suite import run_suite

    (tmp_path / "hil.toml").write_text(
        '[project]\nname = "progress"\nplatforms = ["mps2-an386"]\n'
        f'[[models]]\nname = "conv"\npath = "{MODELS / "test" / "conv_sweep.tflite"}"\n'
        'vectors = { random = 40, seed = 1 }\n'
        f'[[models]]\nname = "mlp"\npath = "{MODELS / "test" / "mlp_per_tensor.tflite"}"\n'
        'vectors = { random = 40, seed = 2 }\n')
    log = Console(width=160, record=True, force_terminal=False, file=open(os.devnull, "w"))
    doc, _ = run_suite(load_config(tmp_path / "hil.toml"), jobs_in_parallel=2, out_dir=tmp_path / "suite",
                       reporter_for=lambda job_id: RunProgress(log, job_id, plain=True, stages=False,
                                                               quiet_below_s=0))
    assert doc["exit_code"] == 0, doc
    lines = log.export_text().splitlines()
    ids = sorted(job["id"] for job in doc["jobs"])
    pattern = re.compile(r"^(\S+): vectors \d+/40 \(\d+%\), \d+ passed, 0 failed, [\d.]+ vectors/s, ETA \d+ s$")
    assert all(pattern.match(line) for line in lines), lines
    assert sorted({m[1] for line in lines if (m := pattern.match(line))}) == ids  # every line, as just checked
    assert len(lines) <= 2 * 20
