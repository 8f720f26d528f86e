"""A Ctrl-C that lands while a child is forked is not lost (harness/spawn.py).

With a `preexec_fn`, subprocess runs the interpreter's at-fork hooks in the
parent, and CPython drops a KeyboardInterrupt raised inside one ("Exception
ignored in: <function _releaseLock>"): `hil run` then ran to the end and
passed after Ctrl-C. The signal is made to land in that window for certain
by an at-fork hook that raises it; a real fork and a real child, in a child
interpreter so the hook does not stay registered in the test process."""

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import requires_qemu

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import os, signal, subprocess, sys
from harness import spawn
fired = []
def hook():
    if not fired:
        fired.append(1)
        signal.raise_signal(signal.SIGINT)
os.register_at_fork(after_in_parent=hook)
start = spawn.popen if sys.argv[1] == "spawn" else subprocess.Popen
try:
    proc = start(["sleep", "30"], preexec_fn=lambda: None)
    print("not interrupted")
    proc.kill()
    proc.wait()
except KeyboardInterrupt:
    try:
        os.waitpid(-1, os.WNOHANG)
        print("interrupted, child left")
    except ChildProcessError:
        print("interrupted")
"""


def _run(how: str) -> str:
    done = subprocess.run([sys.executable, "-c", SCRIPT, how], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    return done.stdout.strip()


def test_plain_popen_loses_a_signal_taken_in_its_fork_hooks():
    """The CPython behaviour the helper exists for (if this starts failing,
    a newer Python no longer drops it and the helper is merely harmless)."""
    assert _run("plain") == "not interrupted"


def test_spawn_popen_raises_it_after_the_child_started_and_kills_the_child():
    assert _run("spawn") == "interrupted"


DEFERRED = """
import os, signal, threading, time
from harness.runner import signals_deferred
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()  # a thread that does not block SIGINT
steps = []
try:
    with signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        steps.append("cleanup done")
    steps.append("after")
except KeyboardInterrupt:
    steps.append("interrupted")
print(", ".join(steps))
"""


def test_a_ctrl_c_during_the_clean_up_waits_for_its_end_with_other_threads_running():
    """runner.signals_deferred (the run's clean-up, a farm's release) used a
    blocked signal mask, which holds the signal back from the main thread
    only: the kernel gave it to another thread (a run always has the result
    writer), and the clean-up was cut short: "interrupted" without "cleanup
    done" before."""
    done = subprocess.run([sys.executable, "-c", DEFERRED], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "cleanup done, interrupted", done.stdout + done.stderr


def test_a_handler_the_held_block_sets_is_kept():
    """Run.execute puts its caller's SIGTERM handler back inside the held
    block; leaving the block must not put the run's own back over it."""
    import signal

    from harness.spawn import signals_held

    def caller(signum, frame):
        pass

    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: None)  # the run's own
        with signals_held():
            signal.signal(signal.SIGTERM, caller)
        assert signal.getsignal(signal.SIGTERM) is caller
    finally:
        signal.signal(signal.SIGTERM, before)


COUNTED = """
import os, signal, subprocess
from harness import spawn
import harness.__main__  # noqa: F401 - the module the hil command runs; its handler is spawn.interrupt
signal.signal(signal.SIGINT, spawn.interrupt)
fired = []
def hook():
    if not fired:
        fired.append(1)
        signal.raise_signal(signal.SIGINT)
os.register_at_fork(after_in_parent=hook)
mark = spawn.interrupts()
subprocess.Popen(["true"], preexec_fn=lambda: None).wait()  # where CPython drops the KeyboardInterrupt
print("taken" if spawn.interrupted_since(mark) else "lost")
"""


def test_an_interrupt_whose_keyboardinterrupt_was_dropped_is_still_counted():
    """Wherever CPython drops a KeyboardInterrupt (here a plain Popen's
    at-fork hook; also a __del__ or a weakref callback), the hil command's
    handler has counted it, and Run.execute asks the count before its
    verdict, so such a run ends as interrupted, never PASSED."""
    done = subprocess.run([sys.executable, "-c", COUNTED], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "taken", done.stdout + done.stderr


def test_the_hil_command_installs_the_counting_handler_unless_sigint_is_ignored():
    script = ("import signal, sys\nfrom harness import spawn\nimport harness.__main__ as m\n"
              "sys.argv = ['hil', '--version']\n"
              "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
              "print(signal.getsignal(signal.SIGINT) is spawn.interrupt, signal.getsignal(signal.SIGTERM) is spawn.interrupt)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "True True", done.stdout + done.stderr
    ignored = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n" + script
    done = subprocess.run([sys.executable, "-c", ignored], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "False True", done.stdout + done.stderr


DROPPED = """
import signal, sys
from pathlib import Path
from harness import spawn
from harness import runner as runner_module
from harness.runner import Run, RunConfig, SilentReporter
if sys.argv[2] == "unchecked":
    runner_module.interrupted_since = lambda mark: False  # the run as it was before it asked
signal.signal(signal.SIGINT, spawn.interrupt)

class Dropper:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)  # a KeyboardInterrupt in __del__: CPython drops it

class Reporter(SilentReporter):
    def vector_done(self, result):
        if result.index == 0:
            Dropper()

run = Run(RunConfig(model=Path("models/demo/gesture.tflite"), platform="mps2-an386", vectors=3,
                    workdir=Path(sys.argv[1])), Reporter())
result = run.execute()
print(result.status, result.exit_code)
"""


@requires_qemu
@pytest.mark.qemu
@pytest.mark.parametrize("how,verdict", [("checked", "interrupted 130"), ("unchecked", "passed 0")])
def test_a_run_whose_ctrl_c_was_dropped_ends_interrupted_not_passed(tmp_path, how, verdict):
    """A real 3-vector QEMU run; Ctrl-C lands in a __del__ after vector 0,
    where CPython drops the KeyboardInterrupt. Without the check before the
    verdict (the 'unchecked' case, the run as it was) it ran on to PASSED."""
    done = subprocess.run([sys.executable, "-c", DROPPED, str(tmp_path / "run"), how], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1:] == [verdict], done.stdout + done.stderr
