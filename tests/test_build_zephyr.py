"""`hil build` of Zephyr applications: the `west build` command line, the
toolchain and workspace it chooses, pristine rebuilds, artifacts and error
paths, with the real `west` (PyPI). Zephyr itself cannot be installed from
the package registries this project reaches, so west runs in a workspace
around a stand-in Zephyr tree whose `build` command records what it was
given (tests/fixtures/fake_zephyr/README.md). A real Zephyr build runs only
where $HIL_TEST_ZEPHYR_BASE names a real Zephyr tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build.project import BuildSpec
from harness.build.zephyr import choose_toolchain, west_executable, zephyr_board
from harness.platforms import load_platform

from helpers import MODELS, REPO, hil, requires_qemu

WEST = west_executable()
RUNNER_APP = REPO / "firmware" / "zephyr"
needs_west = pytest.mark.skipif(WEST is None, reason="needs west (pip install -e '.[test]')")


def _env(**extra) -> dict:
    """The test's environment without any Zephyr setting of the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ZEPHYR_", "GNUARMEMB_")) and k != "CROSS_COMPILE"}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def elf(tmp_path_factory):
    """Any ELF with a build id: what the stand-in's build 'produces'."""
    proc = hil("build", "-p", "mps2-an385", "-q")
    if proc.returncode != 0:
        pytest.skip(f"no firmware to stand in for zephyr.elf: {proc.stderr}")
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    if WEST is None:
        pytest.skip("needs west")
    ws = tmp_path_factory.mktemp("ws")
    shutil.copytree(REPO / "tests" / "fixtures" / "fake_zephyr" / "zephyr", ws / "zephyr")
    subprocess.run([WEST, "init", "-l", str(ws / "zephyr")], check=True, capture_output=True, env=_env())
    return ws


def _calls(build_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (build_dir / "fake-west-calls.jsonl").read_text().splitlines()]


def _build(workspace, elf, tmp_path, *args, app=RUNNER_APP, env=None, cwd=None):
    out = tmp_path / f"b{len(list(tmp_path.glob('b*.json')))}.json"
    proc = hil("build", app, "--json", out, *args, cwd=cwd or workspace,
               env=_env(HIL_FAKE_ZEPHYR_ELF=elf, **(env or {})))
    record = json.loads(out.read_text())["builds"][0] if out.exists() else None
    return proc, record


@needs_west
def test_west_build_command_toolchain_and_artifacts(workspace, elf, tmp_path):
    conf = RUNNER_APP / "semihost.conf"
    proc, rec = _build(workspace, elf, tmp_path, "-p", "mps2-an385", "--conf", conf, "--", "-DMY_OPT=1")
    assert proc.returncode == 0, proc.stderr
    build_dir = Path(rec["build_dir"])
    (call,) = _calls(build_dir)
    assert call["argv"] == ["build", "-b", "mps2/an385", "-d", str(build_dir), "-p", "auto", str(RUNNER_APP),
                            "--", "-DHIL_PLATFORM=mps2-an385", f"-DEXTRA_CONF_FILE={conf}", "-DMY_OPT=1"]
    which_gcc = shutil.which("arm-none-eabi-gcc")
    assert which_gcc is not None
    gcc = Path(which_gcc).resolve()
    assert call["env"]["ZEPHYR_TOOLCHAIN_VARIANT"] == "gnuarmemb"
    assert call["env"]["GNUARMEMB_TOOLCHAIN_PATH"] == str(gcc.parent.parent)  # /usr for Debian's
    assert call["env"]["ZEPHYR_BASE"] == str(workspace / "zephyr") and call["cwd"] == str(workspace)
    # artifacts: zephyr.elf (its build id), .config, the RAM/ROM table
    assert rec["kind"] == "zephyr" and rec["board"] == "mps2/an385"
    assert rec["path"] == str(build_dir / "zephyr" / "zephyr.elf") and len(rec["build_id"]) == 40
    assert Path(rec["artifacts"]["config"]).name == ".config"
    assert rec["config"]["CONFIG_HIL"] == "y" and rec["config"]["CONFIG_BOARD_TARGET"] == "mps2/an385"
    assert rec["memory"]["FLASH"]["used"] == 23456 and rec["zephyr"]["rom_bytes"] == 23456
    assert rec["zephyr"]["ram_bytes"] == 8192 and rec["zephyr"]["version"] == "4.2.0-fake"
    assert "(built)" in proc.stdout and "CONFIG_HIL=y" in proc.stdout
    # again: the same directory, west's no-op, the table remembered
    proc, again = _build(workspace, elf, tmp_path, "-p", "mps2-an385", "--conf", conf, "--", "-DMY_OPT=1")
    assert proc.returncode == 0 and again["build_dir"] == rec["build_dir"] and again["cached"]
    assert again["memory"] == rec["memory"]


@needs_west
def test_board_names_from_the_platform_files():
    expected = {"mps2-an385": "mps2/an385", "mps2-an386": "mps2/an386", "mps2-an500": "mps2/an500",
                "mps2-an505": "mps2/an521/cpu0", "mps3-an547": "mps3/corstone300/an547",
                "lm3s6965evb": "qemu_cortex_m3", "riscv32-virt": "qemu_riscv32",
                "nrf52840dk": "nrf52840dk/nrf52840"}  # a board platform: [board] zephyr_board
    for platform, board in expected.items():
        assert zephyr_board(BuildSpec(kind="zephyr"), load_platform(platform)) == board
    spec = BuildSpec(kind="zephyr", boards={"mps2-an385": "my_board"})
    assert zephyr_board(spec, load_platform("mps2-an385")) == "my_board"


def test_toolchain_choice():
    arm, rv = load_platform("mps2-an385"), load_platform("riscv32-virt")
    kept = choose_toolchain(arm, {"ZEPHYR_TOOLCHAIN_VARIANT": "zephyr", "PATH": os.environ["PATH"]})
    assert (kept.variant, kept.env) == ("zephyr", {})
    if shutil.which("arm-none-eabi-gcc"):
        given = choose_toolchain(arm, {"ZEPHYR_TOOLCHAIN_VARIANT": "gnuarmemb", "PATH": os.environ["PATH"]})
        assert given.env["GNUARMEMB_TOOLCHAIN_PATH"]  # filled in from the compiler on PATH
    if shutil.which("riscv64-unknown-elf-gcc") and "ZEPHYR_SDK_INSTALL_DIR" not in os.environ:
        from harness.build import zephyr

        if zephyr._find_sdk() is None:
            chosen = choose_toolchain(rv, {"PATH": os.environ["PATH"]})
            assert chosen.variant == "cross-compile"
            assert chosen.env["CROSS_COMPILE"].endswith("/riscv64-unknown-elf-")


@needs_west
def test_pristine_rebuild_when_the_board_of_a_build_dir_changes(workspace, elf, tmp_path):
    build_dir = tmp_path / "build"
    proc, first = _build(workspace, elf, tmp_path, "-p", "mps2-an385", "--build-dir", build_dir)
    assert proc.returncode == 0, proc.stderr
    proc, second = _build(workspace, elf, tmp_path, "-p", "mps2-an385", "--build-dir", build_dir,
                          "--board", "mps2/an386")
    assert proc.returncode == 0, proc.stderr
    calls = _calls(build_dir)
    assert calls[-1]["pristine"] == "always" and calls[-1]["wiped"] and calls[-1]["board"] == "mps2/an386"
    assert "pristine" in proc.stderr and second["board"] == "mps2/an386"
    proc, _ = _build(workspace, elf, tmp_path, "-p", "mps2-an385", "--build-dir", build_dir, "--board", "mps2/an386",
                     "--pristine")
    assert _calls(build_dir)[-1]["pristine"] == "always"


@needs_west
def test_toolchain_variant_from_the_environment_is_kept(workspace, elf, tmp_path):
    proc, rec = _build(workspace, elf, tmp_path, "-p", "mps2-an386", env={"ZEPHYR_TOOLCHAIN_VARIANT": "llvm"})
    assert proc.returncode == 0, proc.stderr
    call = _calls(Path(rec["build_dir"]))[-1]
    assert call["env"]["ZEPHYR_TOOLCHAIN_VARIANT"] == "llvm" and call["env"]["GNUARMEMB_TOOLCHAIN_PATH"] is None


@needs_west
def test_no_workspace_says_where_it_looked_and_how_to_make_one(tmp_path, elf):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    app = tmp_path / "app"
    shutil.copytree(RUNNER_APP, app)
    proc = hil("build", app, "-p", "mps2-an385", cwd=outside, env=_env())
    assert proc.returncode == 3
    err = proc.stderr
    assert "no Zephyr workspace found" in err
    assert "$ZEPHYR_BASE: not set" in err
    assert f"west topdir from the application's directory ({app})" in err
    assert f"west topdir from the current directory ({outside})" in err
    assert "west init" in err and "west update" in err and "ZEPHYR_BASE" in err
    # a ZEPHYR_BASE that is not a Zephyr tree is named, with why
    proc = hil("build", app, "-p", "mps2-an385", cwd=outside, env=_env(ZEPHYR_BASE=str(outside)))
    assert proc.returncode == 3 and f"$ZEPHYR_BASE: {outside} (has no VERSION file" in proc.stderr


@needs_west
def test_zephyr_base_alone_finds_the_workspace(workspace, elf, tmp_path):
    outside = tmp_path / "out"
    outside.mkdir()
    proc, rec = _build(workspace, elf, tmp_path, "-p", "mps2-an385", cwd=outside,
                       env={"ZEPHYR_BASE": str(workspace / "zephyr")})
    assert proc.returncode == 0, proc.stderr
    assert rec["zephyr"]["found_by"] == "$ZEPHYR_BASE"


@needs_west
def test_compile_error_in_a_zephyr_build_is_summarised(workspace, elf, tmp_path):
    app = tmp_path / "broken_app"
    shutil.copytree(RUNNER_APP, app)
    (app / "prj.conf").write_text((app / "prj.conf").read_text() + "CONFIG_FAKE_BROKEN=y\n")
    proc, _ = _build(workspace, elf, tmp_path, "-p", "mps2-an385", app=app)
    assert proc.returncode == 1
    assert "west build of broken_app for mps2-an385 (board mps2/an385) failed: src/main.c:12:5: " \
           "'hil_serv' undeclared" in proc.stderr
    assert "hil_serv(&ops, &uart, &cfg);" in proc.stderr and "hil-build.log" in proc.stderr


@needs_west
def test_platform_without_a_zephyr_board(workspace, elf, tmp_path):
    proc, _ = _build(workspace, elf, tmp_path, "-p", "renode-stm32f746")
    assert proc.returncode == 2 and "names no Zephyr board" in proc.stderr and "--board" in proc.stderr


def test_zephyr_app_is_detected_and_zephyr_options_need_one(tmp_path):
    from harness.build.project import detect_kind

    assert detect_kind(RUNNER_APP) == "zephyr"
    assert detect_kind(REPO / "tests" / "fixtures" / "ext_cmake_fw") == "cmake"
    proc = hil("build", "--board", "mps2/an385")
    assert proc.returncode == 2 and "for Zephyr applications" in proc.stderr


@needs_west
@requires_qemu
def test_a_zephyr_build_flows_into_hil_run(workspace, tmp_path):
    """What `west build` leaves (BUILD/zephyr/zephyr.elf) is what `hil run
    --firmware` takes: here the stand-in copies a protocol-serving ELF."""
    proc = hil("build", REPO / "tests" / "fixtures" / "ext_cmake_fw", "-p", "mps2-an385", "--target",
               "ext_builtin", "-q")
    assert proc.returncode == 0, proc.stderr
    proc, rec = _build(workspace, proc.stdout.strip(), tmp_path, "-p", "mps2-an385")
    assert proc.returncode == 0, proc.stderr
    run = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "-p", "mps2-an385", "--firmware", rec["path"],
              "--vectors", "2", "--workdir", tmp_path / "run")
    assert run.returncode == 0, run.stdout + run.stderr


REAL_ZEPHYR = os.environ.get("HIL_TEST_ZEPHYR_BASE")


@pytest.mark.skipif(not REAL_ZEPHYR, reason="Zephyr sources cannot be installed from the package registries this "
                                            "project reaches; set HIL_TEST_ZEPHYR_BASE to a Zephyr tree in a west "
                                            "workspace to build the runner against it")
@requires_qemu
def test_real_zephyr_runner_builds_and_runs(tmp_path):
    assert REAL_ZEPHYR is not None  # skipped without it
    proc = hil("build", RUNNER_APP, "-p", "mps2-an385", "--conf", RUNNER_APP / "semihost.conf", "-q",
               "--zephyr-base", REAL_ZEPHYR, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    run = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "-p", "mps2-an385", "--firmware",
              proc.stdout.strip(), "--vectors", "3", "--workdir", tmp_path / "run")
    assert run.returncode == 0, run.stdout + run.stderr
