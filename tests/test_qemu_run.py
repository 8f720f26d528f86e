"""End to end in real QEMU with real arm-none-eabi-gcc builds: every bundled
model gives 100/100 bit-exact vectors against the TFLM reference, and
faults, hangs and interruptions are reported as they should be."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from helpers import MODELS, hil, processes_in, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

RUNNABLE = sorted(p for p in (MODELS / "test").glob("*.tflite") if not p.name.startswith("unsupported_"))
DEMO = MODELS / "demo" / "gesture.tflite"


def _result(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("model", [DEMO, *RUNNABLE], ids=lambda p: p.stem)
def test_model_is_bit_exact_on_100_vectors(tmp_path, model):
    out = tmp_path / "result.json"
    proc = hil("run", "--model", model, "--platform", "mps2-an386", "--vectors", "100", "--seed", "1",
               "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    result = _result(out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["schema"] == "hil.result/1"
    assert result["summary"] == {**result["summary"], "total": 100, "passed": 100, "failed": 0}
    assert all(v["passed"] and v["max_abs_diff"] == 0 for v in result["vectors"])
    assert result["model"]["sha256"] and result["firmware"]["build_id"]
    assert result["firmware"]["text"] > 0 and result["firmware"]["bss"] > 0
    assert result["device"]["build_id"] == result["firmware"]["build_id"]
    for v in result["vectors"]:
        assert v["count"]["kind"] == "instructions" and 0 < v["count"]["value"] < 100_000_000
    # the batch cursor (INVOKE NEXT, docs/protocol.md): after the first vector each INVOKE is 11 bytes on the
    # wire (naming path and offsets took 26 and more); a GET_OUTPUT for outputs the reply could not hold, 17
    link = result["link"]
    assert link["bytes_out"] < 15 * 100 + 17 * (link["requests"] - 100)
    assert not processes_in(tmp_path / "run"), "QEMU left running"


def test_instruction_counts_are_identical_across_runs(tmp_path):
    counts = []
    for i in range(2):
        out = tmp_path / f"{i}.json"
        proc = hil("run", "--model", MODELS / "test" / "conv_sweep.tflite", "--vectors", "8", "--seed", "5",
                   "--json", out, "--workdir", tmp_path / str(i), cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        counts.append([v["count"]["value"] for v in _result(out)["vectors"]])
    assert counts[0] == counts[1]


def test_demo_command_checks_the_labelled_set(tmp_path):
    out = tmp_path / "demo.json"
    proc = hil("demo", "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = _result(out)
    assert result["summary"]["passed"] == result["summary"]["total"] >= 100
    assert result["summary"]["accuracy"]["top1"] > 0.8
    assert "bit-exact" in proc.stdout and "instructions" in proc.stdout


def test_inline_transfer_matches_host_file_transfer(tmp_path):
    """--inline streams the model and inputs through the UART as a board
    would; results and instruction counts must be the same."""
    runs = {}
    for mode in ("file", "inline"):
        out = tmp_path / f"{mode}.json"
        args = ["--inline"] if mode == "inline" else []
        proc = hil("run", "--model", DEMO, "--vectors", "5", "--seed", "3", "--json", out,
                   "--workdir", tmp_path / mode, *args, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        runs[mode] = _result(out)
    assert runs["file"]["device"]["bulk_transfer"] == "host-file"
    assert runs["inline"]["device"]["bulk_transfer"] == "inline"
    counts = {m: [v["count"]["value"] for v in r["vectors"]] for m, r in runs.items()}
    assert counts["file"] == counts["inline"]


def _build_variant(**defines):
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    return build_firmware(load_platform("mps2-an386"), {k: str(v) for k, v in defines.items()}).elf.path


def test_fault_is_reported_with_pc_and_cfsr(tmp_path):
    elf = _build_variant(HIL_FAULT_ON_INVOKE=3)
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "6", "--firmware", elf, "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = _result(out)
    statuses = [v["status"] for v in result["vectors"]]
    assert statuses == ["passed", "passed", "fault"]
    assert result["summary"]["not_run"] == 3
    fault = result["fault"]
    assert fault["kind"] == "UsageFault" and "UNDEFINSTR" in fault["cfsr_flags"]
    assert fault["symbol"].startswith("misbehave")
    assert "PC 0x" in proc.stdout and "CFSR" in proc.stdout
    assert not processes_in(tmp_path / "run")


def test_hang_times_out_naming_the_stage(tmp_path):
    elf = _build_variant(HIL_HANG_ON_INVOKE=2)
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "4", "--firmware", elf, "--invoke-timeout", "2",
               "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = _result(out)
    assert [v["status"] for v in result["vectors"]] == ["passed", "timeout"]
    assert "invoke hung" in result["vectors"][1]["error"]
    assert not processes_in(tmp_path / "run")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_keeps_results_and_leaves_no_qemu(tmp_path, sig):
    elf = _build_variant(HIL_HANG_ON_INVOKE=4)  # vectors 1-3 finish, then it waits
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--model", str(DEMO), "--vectors", "10",
                             "--firmware", str(elf), "--invoke-timeout", "60", "--json", str(out),
                             "--workdir", str(tmp_path / "run")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a terminal: a suite started in the background inherits SIGINT
                            # ignored, and hil rightly keeps that (it would then never see this Ctrl-C)
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if out.exists() and len(_result(out)["vectors"]) >= 3:
            break
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(sig)
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)  # hil prints every thread's stack: what it is stuck in
        time.sleep(2)
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"hil did not end within 30 s of {sig.name}:\n{stdout}\n{stderr}")
    assert proc.returncode == 130, stdout + stderr
    result = _result(out)
    assert result["status"] == "interrupted"
    assert [v["status"] for v in result["vectors"]] == ["passed"] * 3
    assert not processes_in(tmp_path / "run")


def test_missing_qemu_names_the_package(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    gcc = shutil.which("arm-none-eabi-gcc")
    assert gcc is not None
    gcc_dir = os.path.dirname(gcc)
    tools = [t for t in os.listdir(gcc_dir) if t.startswith("arm-none-eabi-")] + ["cmake", "ninja"]
    for tool in tools:
        if found := shutil.which(tool):
            os.symlink(found, bindir / tool)
    proc = hil("run", "--model", DEMO, "--vectors", "1", "--workdir", tmp_path / "run",
               env={"PATH": str(bindir)}, cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "apt-get install -y qemu-system-arm" in proc.stdout + proc.stderr


def test_prebuilt_firmware_names_an_unsupported_operator_itself(tmp_path):
    """With --firmware the host does not assume the built-in engine's
    operator list; the firmware's LOAD_MODEL error names the operator."""
    elf = _build_variant()
    proc = hil("run", "--model", MODELS / "test" / "unsupported_gather.tflite", "--firmware", elf, "--vectors", "1",
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "GATHER is not supported" in proc.stderr and not processes_in(tmp_path / "run")
