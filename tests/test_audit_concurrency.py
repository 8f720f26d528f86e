"""Two hil runs given one directory. Each used to write its input batch,
results and logs there: the first run's device read the second run's
vectors and a correct firmware FAILED bit-exactness (exit 1). Now the
second run is refused (exit 2, naming the directory) before it writes
anything, and the first keeps its verdict. Real QEMU runs; the first is
stopped with SIGTERM once the second has been refused, to stay fast."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"


def _start(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    """Until `path` exists (the first run streams), failing if it ended first."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the first run ended early ({proc.returncode}): {proc.communicate()}"
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> tuple[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, 130), (proc.returncode, out, err)
    return out, err


def test_a_second_hil_run_in_a_busy_run_directory_is_refused(tmp_path):
    work = tmp_path / "run"
    first = _start("run", "-m", DEMO, "-n", "5000", "--seed", "1", "--workdir", work, "--json",
                   tmp_path / "first.json", cwd=tmp_path)
    try:
        _wait_for(work / "inputs.bin", first)
        second = hil("run", "-m", DEMO, "-n", "50", "--seed", "2", "--workdir", work, cwd=tmp_path, timeout=300)
        time.sleep(1.0)  # the first run streams on: with the second's batch, before the fix
    finally:
        _stop(first)
    assert second.returncode == 2, (second.stdout, second.stderr)
    assert f"{work} is in use by another hil run" in second.stderr and "--workdir" in second.stderr
    doc = json.loads((tmp_path / "first.json").read_text())
    assert doc["vectors"] and all(v["status"] == "passed" for v in doc["vectors"]), \
        [v["status"] for v in doc["vectors"] if v["status"] != "passed"][:5]
    assert json.loads((work / "result.json").read_text())["status"] == doc["status"], \
        "the refused run wrote its result over the first's"


def test_a_second_hil_test_with_a_busy_out_directory_is_refused(tmp_path):
    (tmp_path / "hil.toml").write_text(f'[project]\nname = "p"\n[[models]]\nname = "g"\npath = "{DEMO}"\n'
                                       'vectors = { random = 5000, seed = 1 }\n')
    out = tmp_path / "suite"
    first = _start("test", "--no-store", "--out", out, cwd=tmp_path)
    try:
        _wait_for(out / "runs" / "mps2-an386" / "g" / "inputs.bin", first)
        started = json.loads((out / "suite.json").read_text())["started"]
        second = hil("test", "--no-store", "--out", out, cwd=tmp_path, timeout=300)
    finally:
        _stop(first)
    assert second.returncode == 2, (second.stdout, second.stderr)
    assert f"{out} is in use by another hil run" in second.stderr and "--out" in second.stderr
    doc = json.loads((out / "suite.json").read_text())
    assert doc["started"] == started, "the refused suite wrote its document over the first's"
