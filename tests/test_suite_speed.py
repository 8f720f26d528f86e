"""What `hil test` pays once per suite or per job, apart from the vectors
(issue 14: `-j 2` against `-j 1`). Behaviour only: the speed itself is
measured in benchmarks/throughput.py --suite, never timed here."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest
from serial.urlhandler import protocol_socket

from harness.runner import Run, RunConfig
from helpers import MODELS, REPO, requires_qemu


@requires_qemu
@pytest.mark.qemu
def test_a_run_closes_its_link_when_it_ends_and_pyserials_pause_is_not_in_its_path(tmp_path, monkeypatch):
    """pyserial's socket:// close() sleeps 0.3 s after closing ("for quick
    reconnects"). A run that left its port open paid that pause wherever
    the garbage collector or the interpreter's exit closed it: for a 4-job
    suite 1.2 s after the last job, before `hil test` could exit."""
    pauses: list[str] = []  # the threads pyserial's socket:// close paused

    def pause(seconds: float) -> None:
        pauses.append(threading.current_thread().name)
        time.sleep(seconds)

    monkeypatch.setattr(protocol_socket, "time", types.SimpleNamespace(sleep=pause))  # its only use of time
    run = Run(RunConfig(model=MODELS / "demo" / "gesture.tflite", platform="mps2-an386", vectors=3, seed=1,
                        workdir=tmp_path / "run"))
    result = run.execute()
    assert result.status == "passed", result.error
    assert run.client is not None
    stream: Any = run.client.stream  # a socket link here (is_open is not on the ByteStream protocol)
    deadline = time.monotonic() + 10
    while stream.is_open and time.monotonic() < deadline:  # closed at once, off the run's thread
        time.sleep(0.01)
    assert not stream.is_open, "the run left its link open"
    while not pauses and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pauses and threading.current_thread().name not in pauses, pauses


def test_hil_test_does_not_import_the_result_store_for_an_unstored_run():
    """SQLAlchemy takes 0.3-0.7 s to import; `hil test --no-store` never
    uses it, and a stored run imports it while the jobs run."""
    code = ("import sys\n"
            "import harness.commands.test\n"
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'harness.results.store'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


def test_a_suites_jobs_parse_one_firmware_elf_and_ask_the_emulator_its_version_once(tmp_path, monkeypatch):
    """Every job of a suite reads the same cached firmware and describes the
    same emulator: parsed and asked once per process, not once per job
    (and again when the file changes)."""
    from elftools.elf import elffile

    from harness.build import artifact
    from harness.targets.qemu import emulator_version

    elf = tmp_path / "fw.elf"
    elf.write_bytes(Path(sys.executable).resolve().read_bytes())  # a real ELF (the host's): read_elf parses any
    parses: list[int] = []
    parse = elffile.ELFFile.__init__

    def counted(self, *args, **kwargs):
        parses.append(1)
        parse(self, *args, **kwargs)

    monkeypatch.setattr(elffile.ELFFile, "__init__", counted)
    first = artifact.read_elf(elf)
    assert artifact.read_elf(elf) == first and len(parses) == 1
    elf.write_bytes(elf.read_bytes() + b"\0")  # another version of the file: parsed again
    artifact.read_elf(elf)
    assert len(parses) == 2

    calls = tmp_path / "calls"
    emulator = tmp_path / "qemu-system-fake"
    emulator.write_text(f"#!/bin/sh\necho called >> {calls}\necho 'QEMU emulator version 0.0'\n")
    emulator.chmod(0o755)
    assert emulator_version(str(emulator)) == emulator_version(str(emulator)) == "QEMU emulator version 0.0"
    assert calls.read_text().count("called") == 1


def test_the_hil_process_does_not_walk_its_objects_again_on_its_way_out():
    """The interpreter's exit collects every object the run made, in
    modules of 10^5 objects (numpy, SQLAlchemy, rich, tflite-micro's
    schema): 0.5-1 s after the last job on a busy machine. The command line
    freezes them first (gc.freeze): the exit frees what it must and stops."""
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['hil', '--version']\n"
            "from harness.cli import entry\n"
            "entry()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "frozen True" in proc.stdout, proc.stdout
