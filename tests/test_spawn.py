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
