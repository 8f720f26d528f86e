"""The Renode platforms on a real Renode: the demo model end to end,
bit-exact against the reference, counted through the monitor, and nothing
left running. Skipped where Renode is not installed (the project's CI has
none: README, section Renode, says how to get it); tests/test_renode.py
covers everything that does not need the binary."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from helpers import MODELS, hil, processes_in

RENODE = os.environ.get("RENODE") or shutil.which("renode")

pytestmark = [
    pytest.mark.skipif(not (RENODE and shutil.which(RENODE)),
                       reason="needs Renode: `renode` on PATH or RENODE=/path/to/renode (README, section Renode)"),
    pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc"), reason="needs arm-none-eabi-gcc"),
]


def _run(tmp_path: Path, platform: str, vectors: int, name: str = "run") -> tuple[dict, str]:
    run = tmp_path / name
    out = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--platform", platform,
              "--vectors", str(vectors), "--seed", "1", "--workdir", run, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    deadline = time.monotonic() + 15
    while processes_in(run) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in(run) == [], "Renode outlived the run"
    return json.loads((run / "result.json").read_text()), (run / "renode.log").read_text(errors="replace")


@pytest.mark.parametrize("platform", ["renode-stm32f4-discovery", "renode-nrf52840", "renode-stm32f746"])
def test_demo_model_runs_bit_exact_on_renode(tmp_path, platform):
    result, _ = _run(tmp_path, platform, 5)
    assert result["target"]["kind"] == "renode" and "Renode" in result["target"]["emulator"]
    assert [v["status"] for v in result["vectors"]] == ["passed"] * 5
    assert all(v["max_abs_diff"] == 0 for v in result["vectors"])
    counts = [v["count"] for v in result["vectors"]]
    assert all(c["kind"] == "instructions" and "ExecutedInstructions" in c["source"] for c in counts)
    assert result["count_overhead"]["value"] > 0
    # per-operator counts from SysTick at one tick per instruction: they add
    # up to about the monitor's figure (which also holds the request/reply)
    for v in result["vectors"]:
        ops = sum(op["count"] for op in v["operators"])
        assert 0.9 * v["count"]["value"] < ops < v["count"]["value"]


def test_counts_repeat_exactly_across_runs(tmp_path):
    first, _ = _run(tmp_path, "renode-stm32f4-discovery", 3, "first")
    second, _ = _run(tmp_path, "renode-stm32f4-discovery", 3, "second")
    assert [v["count"]["value"] for v in first["vectors"]] == [v["count"]["value"] for v in second["vectors"]]
    assert [[o["count"] for o in v["operators"]] for v in first["vectors"]] == \
           [[o["count"] for o in v["operators"]] for v in second["vectors"]]
