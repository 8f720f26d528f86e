"""What hil prints of text it does not control (paths, error messages, the
firmware's console lines, regular expressions, board names) reaches the
terminal as text: Rich reads "[firmware]" or "[a-z]" as markup and drops
it. Pure host code (the console reports are called with documents as the
commands make them), but for one `hil run` on two boards whose ports do not
exist (nothing boots: the model path is refused first)."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import hil

from harness.results.console import RunProgress, make_console, print_result
from harness.results.result import ERROR, RunResult, VectorResult


def test_the_boards_table_of_hil_run_keeps_square_brackets(tmp_path):
    model = tmp_path / "[firmware]" / "absent.tflite"
    model.parent.mkdir()
    elf = tmp_path / "fw.elf"
    elf.write_bytes(b"")  # never read: the model is refused before the firmware
    proc = hil("run", "--model", model, "--platform", "nucleo-l4r5zi", "--port", "socket://localhost:1",
               "--port", "socket://localhost:2", "--firmware", elf, "--workdir", tmp_path / "run", cwd=tmp_path,
               timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    table = proc.stdout[proc.stdout.index("2 boards, nucleo-l4r5zi"):]
    assert table.count("[firmware]/absent.tflite") == 2, proc.stdout
    boards = json.loads((tmp_path / "run" / "boards.json").read_text())
    assert len(boards["boards"]) == 2


def test_a_run_summary_prints_paths_and_errors_as_text(capsys, tmp_path):
    result = RunResult(platform={"name": "[lab] board"}, model={"path": "/models/[v2]/m.tflite"}, status="error",
                       exit_code=3, error={"message": "link failure"})
    result.vectors.append(VectorResult(0, ERROR, error="set_input: [firmware] refused the input"))
    print_result(result, tmp_path / "[run]" / "result.json", False, make_console(), make_console(stderr=True))
    printed = capsys.readouterr()
    assert "m.tflite on [lab] board" in printed.out
    assert "[firmware] refused the input" in printed.out
    assert "[run]/result.json" in printed.out


def test_stage_lines_print_paths_and_board_labels_as_text(capsys):
    RunProgress(make_console(stderr=True), "[b1]").stage("building firmware in /work/[project]")
    assert "[b1] building firmware in /work/[project]" in capsys.readouterr().err


def test_hil_console_prints_patterns_and_console_lines_as_text(capsys, tmp_path):
    from harness.commands.console import _print

    doc = {"status": "failed", "console": "uart", "platform": {"name": "mps2-an386"},
           "expect": [{"pattern": r"[a-z]+ ready", "status": "matched", "text": "[boot] system ready"},
                      {"pattern": r"result=[a-f0-9]+", "status": "waiting"}],
           "metrics": {"[x]": 1}, "error": {"message": "timed out"}, "log_tail": ["[app] still here"],
           "log": str(tmp_path / "[run]" / "console.log")}
    _print(doc, Path(tmp_path / "[run]" / "result.json"))
    printed = capsys.readouterr()
    assert "[a-z]+ ready" in printed.out and "[boot] system ready" in printed.out
    assert "result=[a-f0-9]+" in printed.out and "[x]=1" in printed.out
    assert "| [app] still here" in printed.err
    assert "[run]/console.log" in printed.out and "[run]/result.json" in printed.out
