"""Relative paths given by a user name files in the user's working
directory, at every entry point (issue 11): `hil run --firmware`, `hil
console --elf`, Robot's `firmware=`, pytest's `--hil-firmware`, the session
API. Before, QEMU ran in the run directory and saw another path: "link
failure: Connection reset by peer" or "the firmware exited with status 1".
An emulator that exits by itself is exit 3 with its own words. Real
firmware builds, real QEMU."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from console_fw import build_console_elf
from helpers import MODELS, REPO, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"


@pytest.fixture(scope="module")
def elves(tmp_path_factory):
    """The runner firmware (built, cached) and the console test firmware."""
    built = hil("build", "-q", "-p", "mps2-an386")
    assert built.returncode == 0, built.stderr
    d = tmp_path_factory.mktemp("path-fw")
    return {"runner": built.stdout.strip().splitlines()[-1], "console": build_console_elf(d, "console")}


@pytest.fixture
def here(tmp_path, elves, monkeypatch):
    """A working directory with fw/app.elf, fw/console.elf, model and vectors."""
    (tmp_path / "fw").mkdir()
    shutil.copy(elves["runner"], tmp_path / "fw" / "app.elf")
    shutil.copy(elves["console"], tmp_path / "fw" / "console.elf")
    shutil.copy(DEMO, tmp_path / "m.tflite")
    shutil.copy(MODELS / "demo" / "gesture_test.npz", tmp_path / "v.npz")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_hil_run_with_relative_paths(here):
    proc = hil("run", "--model", "m.tflite", "--firmware", "fw/app.elf", "--inputs", "v.npz", "--json", "r.json",
               "--workdir", "runs/a", cwd=here, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((here / "r.json").read_text())
    assert doc["status"] == "passed" and doc["summary"]["passed"] == 200
    assert (here / "runs" / "a" / "result.json").is_file()


def test_hil_console_with_a_relative_elf(here):
    proc = hil("console", "--elf", "fw/console.elf", "--expect", "SUCCESSFUL", "--expect-exit", "0",
               "--json", "c.json", "--workdir", "runs/c", cwd=here, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((here / "c.json").read_text())["status"] == "passed"


def test_robot_keywords_with_relative_paths(here):
    """The library's keywords in-process, as Robot calls them, from the
    directory robot was started in."""
    from harness.robot_library import HilLibrary

    lib = HilLibrary(workdir="runs")
    try:
        lib.start_target("mps2-an386", firmware="fw/app.elf")
        lib.load_model("m.tflite")
        lib.stream_vectors(file="v.npz", limit=5)
        lib.outputs_should_match_reference()
        lib.start_target("mps2-an386", firmware="fw/console.elf", console="uart", alias="console")
        assert lib.wait_for_line(r"took (?P<ticks>\d+) ticks", timeout="20s")["ticks"] > 0
    finally:
        lib.stop_all_targets()
    assert (here / "runs").is_dir()


def test_session_api_with_a_relative_firmware(here):
    from harness.session import Session

    with Session("mps2-an386", firmware="fw/app.elf", workdir="runs/s") as dut:
        dut.load_model("m.tflite")
        assert dut.stream(count=2, seed=1).matches_reference()


def test_pytest_option_with_a_relative_firmware(here):
    (here / "t").mkdir()
    (here / "t" / "test_dut.py").write_text(
        "import os\n"
        "def test_runs(hil_dut):\n"
        f"    hil_dut.load_model({str(DEMO)!r})\n"
        "    assert hil_dut.stream(count=2, seed=1).matches_reference()\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "t",
                           "--hil-firmware", "fw/app.elf", "--hil-workdir", "runs/p", "-p", "no:cacheprovider"],
                          cwd=here, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_missing_firmware_is_exit_2_before_boot(here):
    proc = hil("run", "--model", "m.tflite", "--firmware", "fw/nope.elf", "--workdir", "runs/m", cwd=here)
    assert proc.returncode == 2 and "fw/nope.elf" in proc.stderr, proc.stdout + proc.stderr
    assert not (here / "runs" / "m" / "qemu.log").exists()

    from harness.errors import UsageError
    from harness.session import ConsoleDevice, Session

    with pytest.raises(UsageError, match="nope.elf"):
        Session("mps2-an386", firmware="fw/nope.elf", workdir="runs/s2").start()
    with pytest.raises(UsageError, match="nope.elf"):
        ConsoleDevice("fw/nope.elf", workdir="runs/c2").start()


def test_emulator_that_exits_early_is_exit_3_with_its_words(here):
    """QEMU rejects an option only after the host connects (wait=on): the
    run says so with QEMU's message, exit 3, never a firmware failure."""
    text = (REPO / "platforms" / "mps2-an386.toml").read_text()
    (here / "broken.toml").write_text(
        text.replace('name = "mps2-an386"', 'name = "broken-qemu"')
        .replace('package = "qemu-system-arm"',
                 'package = "qemu-system-arm"\nextra_args = ["-device", "no-such-device"]'))
    proc = hil("run", "--model", "m.tflite", "--firmware", "fw/app.elf", "--platform", "broken.toml", "-n", "2",
               "--workdir", "runs/b", "--json", "b.json", cwd=here, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    message = json.loads((here / "b.json").read_text())["error"]["message"]
    assert "'no-such-device' is not a valid device model name" in message, message
    assert "internal error" not in message
