"""The Robot Framework library (harness/robot_library.py) and the suites in
robot/, run by the real `robot` command in real QEMU; their output.xml is
read back with robot.api.ExecutionResult: the expected passes, the
expected failures with their messages, and no emulator left behind. The
demo suite also runs, unchanged, on a Renode target (the fake renode of
tests/renode_fake.py, which boots QEMU behind Renode's monitor protocol)
and on a serial board (QEMU standing in for it, tests/boardsim.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import MODELS, REPO, requires_qemu

robot = pytest.importorskip("robot", reason="needs robotframework (pip install -e '.[test]')")

SUITES = REPO / "robot"
KEYWORDS = {"Start Target", "Load Model", "Stream Vectors", "Outputs Should Match Reference", "Count Should Be Below",
            "Energy Should Be Below", "Accuracy Should Be At Least", "Memory Should Be Below", "Wait For Line",
            "Firmware Should Exit With", "Watch Console", "Stop Target", "Stop All Targets", "Switch Target"}


def _robot_command() -> list[str]:
    script = Path(sys.executable).parent / "robot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "robot"]


def _env(**extra) -> dict:
    """The subprocess imports this tree's harness (PYTHONPATH first)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def _run_robot(tmp_path: Path, *args, env: dict | None = None, timeout: float = 300):
    out = tmp_path / "robot-out"
    proc = subprocess.run([*_robot_command(), "--outputdir", str(out), "--console", "verbose", *map(str, args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env or _env())
    from robot.api import ExecutionResult

    assert (out / "output.xml").exists(), proc.stdout + proc.stderr
    return proc, ExecutionResult(str(out / "output.xml"))


def _tests(result) -> dict:
    """{suite name: {test name: (status, message, tags)}}"""
    found: dict = {}

    def walk(suite):
        if suite.tests:
            found[suite.name] = {t.name: (t.status, t.message, set(t.tags)) for t in suite.tests}
        for child in suite.suites:
            walk(child)

    walk(result.suite)
    return found


def _emulators_under(directory: Path) -> list[str]:
    """Processes whose working directory is inside `directory` (QEMU and
    Renode run in their run directories)."""
    left = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
                if cwd == directory or directory in cwd.parents:
                    left.append(f"{entry.name} {(entry / 'comm').read_text().strip()} in {cwd}")
            except OSError:
                pass
    return left


def _wait_no_emulators(directory: Path, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := _emulators_under(directory)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_libdoc_documents_every_keyword(tmp_path):
    """`python -m robot.libdoc` builds the keyword documentation
    (docs/robot-keywords.html; generated, not committed: it is ~230 KB)."""
    html = tmp_path / "robot-keywords.html"
    proc = subprocess.run([sys.executable, "-m", "robot.libdoc", "harness.robot_library.HilLibrary", str(html)],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = html.read_text()
    assert all(name in text for name in KEYWORDS)

    from robot.libdocpkg import LibraryDocumentation

    doc = LibraryDocumentation("harness.robot_library.HilLibrary")
    assert {kw.name for kw in doc.keywords} == KEYWORDS
    assert all(len(kw.doc) > 40 for kw in doc.keywords), [kw.name for kw in doc.keywords if len(kw.doc) <= 40]
    assert doc.scope == "SUITE" and "Teardown" in doc.doc
    start = next(kw for kw in doc.keywords if kw.name == "Start Target")
    assert {"platform", "firmware", "defines", "port", "probe", "console", "alias"} <= {a.name for a in start.args}


@requires_qemu
@pytest.mark.qemu
def test_robot_suites_in_qemu(tmp_path):
    """`robot robot/`: the demo and console suites pass; the must-fail suite
    fails exactly its three `must-fail` tests, each for its own reason, and
    the test after the fault finds no emulator left running."""
    proc, result = _run_robot(tmp_path, SUITES)
    suites = _tests(result)
    output = proc.stdout + proc.stderr
    assert set(suites) == {"Demo", "Console", "Expected Failures"}, output
    assert {n: s for n, (s, _, _) in suites["Demo"].items()} == {
        "Labelled Test Set Is Bit Exact And Accurate": "PASS", "Random Vectors Are Bit Exact": "PASS",
        "Count Per Inference Is Within Budget": "PASS", "Energy Per Inference Is Within Budget": "PASS",
        "Memory Is Within Budget": "PASS"}, output
    assert all(s == "PASS" for s, _, _ in suites["Console"].values()) and len(suites["Console"]) == 2, output

    must_fail = suites["Expected Failures"]
    status = {n: s for n, (s, _, _) in must_fail.items()}
    assert status == {"Fault During An Invoke Fails The Outputs Check": "FAIL",
                      "No Emulator Outlives A Failed Test": "PASS",
                      "Count Budget Too Small Fails": "FAIL",
                      "Console Line That Never Comes Times Out": "FAIL"}, output
    assert all("must-fail" in tags for s, _, tags in must_fail.values() if s == "FAIL")

    fault = must_fail["Fault During An Invoke Fails The Outputs Check"][1]
    assert fault.startswith("1 of 6 vectors do not match the TFLite-Micro reference on mps2-an386 (3 not run)")
    assert "vector 2: fault: invoke: UsageFault at PC" in fault and "misbehave" in fault and "UNDEFINSTR" in fault
    budget = must_fail["Count Budget Too Small Fails"][1]
    assert budget.startswith("largest count ") and budget.endswith(") is not below 1,000 instructions")
    console = must_fail["Console Line That Never Comes Times Out"][1]
    assert console.startswith("timed out after 2 s waiting for 'PROJECT EXECUTION SUCCESSFUL'")
    assert "waiting for an interrupt that never comes" in console

    stats = result.statistics.total
    assert (stats.passed, stats.failed) == (8, 3)
    assert proc.returncode == 3, output  # robot's exit status: the number of failed tests

    # without the must-fail tests the run passes (rebot applies the same selection)
    selected = tmp_path / "without-must-fail.xml"
    rebot = subprocess.run([sys.executable, "-m", "robot.rebot", "--exclude", "must-fail", "--output", str(selected),
                            "--log", "NONE", "--report", "NONE", str(tmp_path / "robot-out" / "output.xml")],
                           capture_output=True, text=True, env=_env(), timeout=60)
    assert rebot.returncode == 0, rebot.stdout + rebot.stderr
    from robot.api import ExecutionResult

    stats = ExecutionResult(str(selected)).statistics.total
    assert (stats.passed, stats.failed) == (8, 0)
    assert not _wait_no_emulators(tmp_path)


def _demo_on(tmp_path: Path, platform: Path, *args, env: dict | None = None):
    proc, result = _run_robot(tmp_path, "--variable", f"PLATFORM:{platform}", "--exclude", "energy", *args,
                              SUITES / "demo.robot", env=env)
    tests = _tests(result)["Demo"]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(tests) == 4 and all(s == "PASS" for s, _, _ in tests.values())
    return result


@requires_qemu
@pytest.mark.qemu
def test_demo_suite_on_a_renode_target(tmp_path):
    """The same keywords on a Renode target: inline transfer, counts read
    through the monitor (the fake renode stands in for the binary)."""
    from test_renode import FAKE, _fake_platform, _fake_renode

    assert FAKE.exists()
    env = _env(RENODE=str(_fake_renode(tmp_path)))
    result = _demo_on(tmp_path, _fake_platform(tmp_path), env=env)
    messages = _messages(result)
    assert any("renode" in m and "running build" in m for m in messages), messages
    assert any("inline transfer" in m for m in messages), messages
    runs = list((tmp_path / ".hil" / "runs").iterdir())
    assert runs and all((r / "hil.resc").exists() for r in runs)
    assert not _wait_no_emulators(tmp_path, 15)


@requires_qemu
@pytest.mark.qemu
def test_demo_suite_on_a_serial_board(tmp_path):
    """The same keywords on a board: flashed by the platform's flasher,
    reached over a socket:// serial port (QEMU stands in for the board)."""
    from boardsim import QemuBoard

    with QemuBoard(tmp_path / "board", board_id="HILSIM0001") as board:
        platform = board.platform_file(tmp_path / "qemu-board.toml")
        _demo_on(tmp_path, platform, "--variable", f"PORT:{board.socket_url}", "--variable", "PROBE:HILSIM0001")
        assert len(board.flashes) == 1
    assert not _wait_no_emulators(tmp_path / ".hil")


def _messages(result) -> list[str]:
    """Every message the keywords logged."""
    from robot.api import ResultVisitor

    class Messages(ResultVisitor):
        def __init__(self):
            self.found = []

        def visit_message(self, msg):
            self.found.append(msg.message)

    visitor = Messages()
    result.visit(visitor)
    return visitor.found


def test_keywords_fail_clearly_without_a_target(tmp_path):
    """Usage errors name the fix: no target, a protocol keyword on a console
    target, console options on a protocol target."""
    from harness.errors import UsageError
    from harness.robot_library import HilLibrary

    lib = HilLibrary(workdir=str(tmp_path))
    with pytest.raises(UsageError, match="no target is running"):
        lib.load_model(str(MODELS / "demo" / "gesture.tflite"))
    with pytest.raises(UsageError, match="console mode needs the firmware"):
        lib.start_target(console="uart")
    with pytest.raises(UsageError, match="fail patterns are for console mode"):
        lib.start_target(fail="ASSERT")
    with pytest.raises(UsageError, match="unknown platform 'mps9-nope'"):
        lib.start_target("mps9-nope")
    assert not lib._targets  # a target that failed to start is not kept
