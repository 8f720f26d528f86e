"""Results are never lost, and a disk that fails is infrastructure (exit 3)
naming the path, never a traceback or a firmware failure. The disks are
real: a 64 KiB tmpfs that fills up mid-run, a read-only tmpfs, a $HOME that
is a file; the runs are real QEMU runs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", readonly: bool = False):
    """A small tmpfs mounted at `path` (skips where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if readonly else "")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _doc(path: Path) -> dict:
    return json.loads(path.read_text())


def _consecutive(doc: dict) -> int:
    indices = [v["index"] for v in doc["vectors"]]
    assert indices == list(range(len(indices)))
    return len(indices)


def test_run_directory_disk_fills_mid_run_and_the_json_copy_has_everything(tmp_path):
    """The run directory's disk fills after some vectors: exit 3 naming the
    file and the errno text, no traceback, and --json on a healthy disk
    holds the final status and every vector that finished (it used to stay
    "running" with 4 of 50).

    Sized so the disk fills mid-run on any machine: results are written at
    most twice a second, so the run must outlast the first write (1000 demo
    vectors take seconds), and the tmpfs holds the input batch (384 KB) but
    not the result (about 1.8 KB per vector)."""
    with tmpfs(tmp_path / "small", size="512k") as small:
        run = small / "run"
        copy = tmp_path / "copy.json"
        proc = hil("run", "--model", DEMO, "--vectors", "1000", "--workdir", run, "--json", copy, cwd=tmp_path)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"cannot write results to {run / 'result.json'}: No space left on device" in output
        doc = _doc(copy)
        assert (doc["status"], doc["exit_code"]) == ("error", 3)
        assert "No space left on device" in doc["error"]["message"]
        finished = _consecutive(doc)
        assert 0 < finished < 1000 and doc["summary"]["run"] == finished
        if (run / "result.json").exists():  # the last copy that fitted there is older
            assert len(_doc(run / "result.json")["vectors"]) < finished


def test_json_copy_disk_fills_and_the_run_directory_has_everything(tmp_path):
    """1000 vectors: the run outlasts the first periodic write (see above)."""
    with tmpfs(tmp_path / "small") as small:
        run = tmp_path / "run"
        copy = small / "copy.json"
        proc = hil("run", "--model", DEMO, "--vectors", "1000", "--workdir", run, "--json", copy, cwd=tmp_path)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"cannot write results to {copy}: No space left on device" in output
        doc = _doc(run / "result.json")
        assert (doc["status"], doc["exit_code"]) == ("error", 3)
        assert 0 < _consecutive(doc) < 1000
        assert f"result: {run / 'result.json'}" in output  # the copy that was written, not the one that failed


def test_read_only_working_directory_is_exit_3_before_booting(tmp_path):
    """No --workdir: the run directory would go under the read-only current
    directory. Exit 3 naming it, before anything is built or booted."""
    with tmpfs(tmp_path / "ro", readonly=True) as ro:
        proc = hil("run", "--model", DEMO, "--vectors", "2", cwd=ro)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"{ro}/.hil/runs/" in output and "Read-only file system" in output
        assert "booting" not in output and "building" not in output


def test_full_working_directory_is_exit_3_before_booting(tmp_path):
    with tmpfs(tmp_path / "full") as full:
        with contextlib.suppress(OSError), open(full / "filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        proc = hil("run", "--model", DEMO, "--vectors", "2", cwd=full)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"{full}/.hil/runs/" in output and "No space left on device" in output
        assert "booting" not in output


def test_a_home_that_is_a_file_is_a_build_cache_error_naming_hil_cache_dir(tmp_path):
    """$HOME unusable and no HIL_CACHE_DIR: "cannot use the build cache at
    PATH" with the fix, exit 3 (it used to say "link failure")."""
    home = tmp_path / "home"
    home.write_text("not a directory\n")
    env = {k: v for k, v in os.environ.items() if k != "HIL_CACHE_DIR"}
    proc = subprocess.run([*hil_command(), "run", "--model", DEMO, "--vectors", "2", "--workdir", tmp_path / "run"],
                          cwd=tmp_path, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 3, output
    assert f"cannot use the build cache at {home}/.cache/hil" in output
    assert "HIL_CACHE_DIR" in output and "link failure" not in output and "Traceback" not in output


def test_hil_cache_dir_makes_a_broken_home_harmless(tmp_path):
    home = tmp_path / "home"
    home.write_text("not a directory\n")
    proc = hil("run", "--model", DEMO, "--vectors", "2", "--workdir", tmp_path / "run", cwd=tmp_path,
               env={"HOME": str(home)})  # HIL_CACHE_DIR: the test session's cache (conftest.py)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def hil_command() -> list[str]:
    import sys

    return [sys.executable, "-m", "harness"]


def test_a_full_build_cache_is_named_with_the_fix(tmp_path):
    """HIL_CACHE_DIR on a full disk: CMake and the compiler fail to write
    and say something else entirely ("not able to compile a simple test
    program"); hil names the cache and the fix, exit 3."""
    with tmpfs(tmp_path / "cache") as cache:
        proc = hil("run", "--model", DEMO, "--vectors", "2", "--workdir", tmp_path / "run", cwd=tmp_path,
                   env={"HIL_CACHE_DIR": str(cache)})
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert f"cannot use the build cache at {cache} (HIL_CACHE_DIR): No space left on device" in output
        assert "Traceback" not in output


def test_boards_document_is_kept_when_the_json_copy_cannot_be_written(tmp_path):
    """Several boards (QEMU standing in for them, tests/boardsim.py): --json
    on a read-only disk is exit 3 naming it, and boards.json in the run
    directory has every board's result and says why the run is an error."""
    from boardsim import QemuBoard

    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    with QemuBoard(tmp_path / "a", board_id="HILSIM0001", control_dir=tmp_path / "ctl") as a, \
            QemuBoard(tmp_path / "b", board_id="HILSIM0002", control_dir=tmp_path / "ctl") as b, \
            tmpfs(tmp_path / "ro", readonly=True) as ro:
        platform = a.platform_file(tmp_path / "qemu-board.toml")
        elf = build_firmware(load_platform(str(platform))).elf.path
        run = tmp_path / "run"
        proc = hil("run", "--model", DEMO, "--platform", platform, "--vectors", "2", "--firmware", elf,
                   "--workdir", run, "--json", ro / "boards.json", "--port", str(a.pty_link), "--probe", "HILSIM0001",
                   "--port", b.socket_url, "--probe", "HILSIM0002", cwd=tmp_path, timeout=180)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"cannot write results to {ro / 'boards.json'}: Read-only file system" in output
        doc = _doc(run / "boards.json")
        assert (doc["status"], doc["exit_code"]) == ("error", 3)
        assert [bd["result"]["summary"]["passed"] for bd in doc["boards"]] == [2, 2]


def test_suite_document_is_kept_when_the_json_copy_cannot_be_written(tmp_path):
    """`hil test --json` on a read-only disk: exit 3 naming the copy before
    any job runs (as `hil run` stops before booting), and suite.json in the
    suite directory says so."""
    import shutil

    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(MODELS / "test" / "mlp_per_tensor.tflite", repo / "net.tflite")
    (repo / "hil.toml").write_text('[project]\nname = "kept"\n[[models]]\nname = "net"\npath = "net.tflite"\n'
                                   'vectors = { random = 2, seed = 1 }\n')
    with tmpfs(tmp_path / "ro", readonly=True) as ro:
        proc = hil("test", "--no-store", "--out", repo / "suite", "--json", ro / "suite.json", cwd=repo)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 3, output
        assert "Traceback" not in output
        assert f"cannot write results to {ro / 'suite.json'}: Read-only file system" in output
        doc = _doc(repo / "suite" / "suite.json")
        assert (doc["status"], doc["exit_code"]) == ("error", 3) and "Read-only" in doc["error"]["message"]
        assert doc["jobs"] == [] and "booting" not in output
