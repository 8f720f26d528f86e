"""The result writer survives a document that changes while it is encoded.

The run's thread sets the document's dicts (timings, device, ...) without
the result's lock, and the periodic writer encodes a snapshot of them
outside it, so an encoding can meet "dictionary changed size during
iteration" (seen: one thread adding timings while another encoded, once in
~400,000 changes; not deterministic enough for a test). That
RuntimeError ended the writer thread (no more periodic writes: a killed
run kept nothing of its later vectors) or a step that saves. Host only;
the race is injected by making the first encoding raise it."""

from __future__ import annotations

import json

from helpers import MODELS

from harness.results.result import RunResult
from harness.runner import Run, RunConfig


def test_an_encoding_that_meets_a_changing_dict_is_done_again_not_raised(tmp_path, monkeypatch):
    run = Run(RunConfig(model=MODELS / "demo" / "gesture.tflite", platform="mps2-an386", workdir=tmp_path / "run"))
    result = run.begin()
    run.make_workdir()
    result.timings = {"prepare_build_s": 1.0}
    encode, calls = RunResult.as_json, []

    def as_json(self, snapshot=None):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("dictionary changed size during iteration")
        return encode(self, snapshot)

    monkeypatch.setattr(RunResult, "as_json", as_json)
    run.save()
    assert len(calls) == 2 and run.write_error is None
    assert json.loads(run.result_path.read_text())["timings"] == {"prepare_build_s": 1.0}


def test_a_run_that_ended_before_it_started_frees_its_directory(tmp_path):
    """Run.record_failure (a usage error before the run, a farm place never
    given) kept its run directory locked and its lock file open for the
    rest of the process (a ResourceWarning at exit; a Session or suite job
    reusing the directory in the same process was refused)."""
    from harness.dirlock import lock_directory

    run = Run(RunConfig(model=MODELS / "demo" / "gesture.tflite", platform="mps2-an386", vectors=1,
                        workdir=tmp_path / "run"))
    run.record_failure(2, "refused before the run")
    again = lock_directory(tmp_path / "run", "the run directory", "--workdir")
    assert again is not None
    again.release()
