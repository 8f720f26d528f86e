"""hil as a package: a wheel that runs from any directory, lazy sub-commands,
optional extras that say how to install them, and logging (issue 15)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from harness import extras, resources
from harness.commands import COMMANDS, first_sentence, load
from harness.errors import InfraError
from helpers import MODELS, REPO, hil, requires_qemu

#: what a wheel is built from: the project file and the trees harness/_data links to
SOURCES = ("pyproject.toml", "README.md", "harness", "firmware", "platforms", "timing", "models", "calibration")


@requires_qemu
@pytest.mark.qemu
def test_a_wheel_installed_elsewhere_runs_the_demo_and_a_user_model(tmp_path):
    """`pip install` (not editable) of a wheel into a fresh virtual
    environment, then `hil demo` and `hil run` on a user's model in an empty
    directory: the firmware sources, platform files, timing tables and demo
    model come from the installed package, not from this checkout. The
    third-party packages are the project environment's, reached through a
    .pth file, so nothing is downloaded again; the wheel's build backend
    (setuptools) comes from the package index pip is configured with."""
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("hil-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "hil-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                                "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    work = tmp_path / "empty"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import harness.resources as r; print(r.data_root())"],
                           cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(purelib), where  # the installed copy, not this checkout

    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    demo = subprocess.run([str(venv / "bin" / "hil"), "-v", "demo", "--json", "demo.json"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    # -v: info records on stderr; the reference either ran or was served from the reference cache (a
    # CI machine that ran the demo before has it), and either way every output matched it bit for bit
    assert re.search(r"harness\.model\.reference: (reference interpreter started|reference outputs of \d+ vectors "
                     r"from the cache)", demo.stderr), demo.stderr
    _assert_bit_exact(work / "demo.json")

    shutil.copy2(MODELS / "test" / "mlp_per_tensor.tflite", work / "user.tflite")
    run = subprocess.run([str(venv / "bin" / "hil"), "run", "--model", "user.tflite", "--vectors", "3",
                          "--json", "result.json"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    _assert_bit_exact(work / "result.json", vectors=3)


def _assert_bit_exact(result: Path, vectors: int | None = None) -> None:
    doc = json.loads(result.read_text())
    assert doc["status"] == "passed" and doc["summary"]["failed"] == 0, doc["summary"]
    assert doc["vectors"] and (vectors is None or len(doc["vectors"]) == vectors)
    assert all(v["passed"] and v["mismatches"] == 0 and v["max_abs_diff"] == 0 for v in doc["vectors"])


def test_help_imports_no_command_module():
    """`hil --help` lists every command from COMMANDS without importing one
    (nor numpy or rich, which they pull in): the cost of a typo'd command."""
    probe = ("import sys\n"
             "from harness.cli import main\n"
             "try:\n"
             "    main(['--help'], standalone_mode=False)\n"
             "finally:\n"
             "    heavy = sorted(m for m in sys.modules if m.startswith(('harness.commands.', 'numpy', 'rich')))\n"
             "    print('LOADED', heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stdout, done.stdout
    for name in COMMANDS:
        assert f"  {name} " in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_command_table_says_what_each_command_says(name):
    """COMMANDS' one-line help is the command's own first sentence (the
    table exists only so `hil --help` need not import the command)."""
    command = load(name)
    assert command.name == name
    assert first_sentence(command.help or "") == COMMANDS[name][1]


def test_every_package_data_tree_is_there():
    """The trees the harness reads exist where harness/resources.py says
    (links in a checkout, copies in a wheel), with what the demo needs."""
    assert (resources.firmware_dir() / "CMakeLists.txt").is_file()
    assert sorted(resources.platforms_dir().glob("*.toml"))
    assert sorted(resources.timing_dir().glob("*.toml"))
    assert resources.demo_model().is_file() and resources.demo_vectors().is_file()
    assert resources.calibration_set().is_file()
    assert resources.qemu_plugin_source().is_file()


def test_a_missing_extra_names_its_pip_install(monkeypatch):
    from harness.results.store import ResultStore

    monkeypatch.setitem(sys.modules, "psycopg", None)  # an environment without the store-postgres extra
    with pytest.raises(InfraError) as caught:
        ResultStore("postgresql+psycopg://hil@localhost/hil")
    assert "psycopg" in str(caught.value) and caught.value.hint == "pip install 'hil[store-postgres]'"
    assert extras.install_hint("matplotlib") == "pip install 'hil[plots]'"


def test_the_html_report_without_matplotlib_is_written_with_a_note(monkeypatch, caplog):
    """The plots extra missing: the report keeps its tables, and each plot's
    place says what to install (a warning says it once)."""
    from harness.results import html

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    html._warn_no_plots.cache_clear()
    points = [{"label": "abc", "jobs": {"mps2-an386/net": {"count": 10, "count_kind": "instructions"}}}]
    assert html.series_colours(points) == {"mps2-an386/net": html.PALETTE[0]}
    with caplog.at_level(logging.WARNING, logger="harness"):
        figures = html.trend_figures(points)
        chart = html.operator_chart([{"index": 0, "op": "ADD", "count": 5}], "instructions", "t", "p")
    assert "hil[plots]" in figures[0]["svg"] and "hil[plots]" in chart
    assert [r.name for r in caplog.records] == ["harness.results.html"]
    html._warn_no_plots.cache_clear()


def test_records_reach_pytest_and_the_cli_log_options(tmp_path, caplog):
    """Records propagate to the root logger (caplog, `--log-cli-level`);
    `hil -vv` shows debug records on stderr, `--log-file` keeps them, and
    stdout (where JSON goes) has none."""
    from harness.results.store import ResultStore

    with caplog.at_level(logging.DEBUG, logger="harness"):
        ResultStore(f"sqlite:///{tmp_path / 'a.db'}")
    assert any(r.name == "harness.results.store" and "opening the result store" in r.getMessage()
               for r in caplog.records)

    log_file = tmp_path / "hil.log"
    done = hil("-vv", "--log-file", log_file, "history", "--store", tmp_path / "b.db", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DEBUG harness.results.store: opening the result store" in done.stderr
    assert "opening the result store" in log_file.read_text()
    assert "DEBUG" not in done.stdout

    quiet = hil("history", "--store", tmp_path / "b.db", cwd=tmp_path)
    assert quiet.returncode == 0 and "DEBUG" not in quiet.stderr

    bad = hil("--log-file", tmp_path / "missing" / "hil.log", "platforms", cwd=tmp_path)
    assert bad.returncode == 2 and "--log-file" in bad.stderr and "directory does not exist" in bad.stderr


def test_robot_framework_logs_hil_records(tmp_path):
    """Robot Framework takes the root logger's records into its own log, so
    the library's records (harness.*) appear in log.html at --loglevel DEBUG."""
    robot = pytest.importorskip("robot", reason="the robot extra is not installed")
    suite = tmp_path / "records.robot"
    suite.write_text("*** Test Cases ***\nA Record\n"
                     "    Evaluate    __import__('logging').getLogger('harness.build.cmake').debug('build cache hit: x')\n")
    rc = robot.run(str(suite), outputdir=str(tmp_path), loglevel="DEBUG", report="NONE", log="NONE",
                   stdout=open(os.devnull, "w"))
    assert rc == 0
    assert "build cache hit: x" in (tmp_path / "output.xml").read_text()


def test_hil_imported_from_a_zip_is_refused_with_the_reason(tmp_path, monkeypatch):
    """zipimport gives no directory CMake and QEMU could use: an error
    saying so (exit 3), not a build that cannot find its sources."""
    import zipfile

    archive = tmp_path / "hil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("harness/_data/firmware/CMakeLists.txt", "")
    monkeypatch.setattr(resources.resources, "files", lambda package: zipfile.Path(archive, "harness/"))
    resources.data_root.cache_clear()
    try:
        with pytest.raises(InfraError, match="imported from an archive"):
            resources.data_root()
    finally:
        monkeypatch.undo()
        resources.data_root.cache_clear()
    assert resources.data_root().is_dir()
