"""SIGTERM (or Ctrl-C) while a `hil test` job streams: the job's vectors
so far are in its run directory, and the suite document must list that job
(status interrupted, its result's path) so reports and the store keep what
was obtained. It used to end "INTERRUPTED 0/0 checks passed in 0 jobs" with
no job at all, although the run's result.json held 138 checked vectors.
A real QEMU run of the demo model, stopped after its first vectors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from helpers import MODELS, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"


def test_the_job_running_when_hil_test_is_stopped_stays_in_the_suite(tmp_path):
    (tmp_path / "hil.toml").write_text(f'[project]\nname = "p"\n[[models]]\nname = "g"\npath = "{DEMO}"\n'
                                       'vectors = { random = 5000, seed = 1 }\n')
    out = tmp_path / "suite"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "test", "--no-store", "--out", str(out)], cwd=tmp_path,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_result = out / "runs" / "mps2-an386" / "g" / "result.json"
    end = time.monotonic() + 300
    while not (run_result.exists() and json.loads(run_result.read_text() or "{}").get("vectors")):
        assert proc.poll() is None and time.monotonic() < end, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    doc = json.loads((out / "suite.json").read_text())
    assert doc["status"] == "interrupted"
    jobs = {j["id"]: j for j in doc["jobs"]}
    assert "mps2-an386/g" in jobs, f"the interrupted job is missing from the suite: {stdout}"
    job = jobs["mps2-an386/g"]
    assert job["status"] == "interrupted"
    kept = json.loads((out / job["result"]).read_text())
    assert kept["status"] == "interrupted" and kept["summary"]["run"] > 0
