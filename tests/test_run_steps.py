"""The public steps of `runner.Run` (what harness.session, the Robot library
and the pytest plugin call one at a time) refuse to run out of order with a
usage error naming the step that must come first and the order, instead of
a firmware verdict ("the device rebooted", "passed" with nothing run), an
AssertionError, a result silently not written, or a second emulator."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import MODELS, processes_in, requires_qemu

from harness.errors import UsageError
from harness.runner import Run, RunConfig

DEMO = MODELS / "demo" / "gesture.tflite"
NOT_READ: Any = None  # an argument the refused step never reaches (an ELF, a Hello)


def _run(tmp_path, vectors: int = 2) -> Run:
    return Run(RunConfig(model=DEMO, platform="mps2-an386", vectors=vectors, seed=1, workdir=tmp_path / "run"))


def _refused(call, step: str, first: str) -> UsageError:
    with pytest.raises(UsageError) as exc:
        call()
    assert f"Run.{step}() before Run.{first}()" in str(exc.value) or (
        step == first and f"Run.{step}() again" in str(exc.value)), str(exc.value)
    hint = exc.value.hint or ""
    assert "begin -> make_workdir -> prepare" in hint and "Run.execute" in hint
    return exc.value


def test_steps_before_begin_are_refused_naming_begin(tmp_path):
    run = _run(tmp_path)
    platform, model, vectors = run.prepare()  # the host's checks need no result document (farm.py's check run)
    _refused(run.save, "save", "begin")
    _refused(lambda: run.boot(platform, tmp_path / "fw.elf", NOT_READ), "boot", "begin")
    _refused(lambda: run.judge(platform, NOT_READ, model), "judge", "begin")
    assert run.target is None and not (tmp_path / "run" / "result.json").exists()


def test_steps_that_need_the_device_are_refused_before_boot(tmp_path):
    run = _run(tmp_path)
    run.begin()
    platform, model, vectors = run.prepare()
    _refused(lambda: run.stream(platform, model, vectors, [], None, NOT_READ), "stream", "boot")
    _refused(lambda: run.setup_counting(platform, NOT_READ), "setup_counting", "boot")
    _refused(lambda: run.measure_memory(platform, NOT_READ, model), "measure_memory", "boot")
    _refused(lambda: run.load(model, NOT_READ), "load", "boot")
    assert run.result is not None and run.result.vectors == []


@requires_qemu
@pytest.mark.qemu
def test_a_booted_run_refuses_a_second_boot_a_stream_before_load_and_a_judge_before_stream(tmp_path):
    """One boot of the runner firmware in QEMU: each out-of-order call is a
    usage error that leaves the device as it was, and the steps in order
    still pass."""
    run = _run(tmp_path)
    result = run.begin()
    run.make_workdir()
    platform, model, vectors = run.prepare()
    elf_path, elf, result.firmware = run.firmware(platform)
    try:
        hello = run.boot(platform, elf_path, elf)
        emulator = processes_in(run.workdir)
        error = _refused(lambda: run.boot(platform, elf_path, elf), "boot", "boot")
        assert "release()" in str(error)
        assert processes_in(run.workdir) == emulator  # no second emulator
        _refused(lambda: run.stream(platform, model, vectors, [], None, elf), "stream", "load")
        _refused(lambda: run.judge(platform, elf, model), "judge", "stream")
        assert result.vectors == [] and result.status == "running"
        run.load(model, hello)
        run.setup_counting(platform, hello)
        from harness.model.reference import ReferenceRunner

        reference = ReferenceRunner(model.data, len(model.outputs))
        try:
            reference.submit(vectors.vectors)
            run.stream(platform, model, vectors, reference.result(), None, elf)
        finally:
            reference.close()
        assert run.judge(platform, elf, model), result.vectors
    finally:
        run.close()
    assert result.status == "passed" and len(result.vectors) == 2
    assert not processes_in(run.workdir)
