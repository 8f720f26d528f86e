"""Starting a child with a `preexec_fn` without losing a Ctrl-C.

A `preexec_fn` makes `subprocess` fork (not vfork/posix_spawn) and run the
interpreter's at-fork hooks in the parent (logging registers one that
releases its lock). A SIGINT or SIGTERM that arrives in that window has its
Python handler run inside the hook, where CPython prints "Exception ignored
in: <function _releaseLock>" and drops the KeyboardInterrupt: the run then
went on to the end and passed, as if never interrupted (seen once in ~100
signals sent 0.2-0.75 s into `hil run`, while the reference interpreter and
QEMU start). So while the child starts, the handlers only note the signal;
once the child runs, the original handlers are back and the signal is sent
again, so it ends the run where Python can raise it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from typing import Any

_HELD = (signal.SIGINT, signal.SIGTERM)


def popen(args: Any, **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen(args, **kwargs)` with SIGINT/SIGTERM noted, not
    raised, while the child is forked; a noted signal is sent again after
    (the child is killed first if that ends the caller). Outside the main
    thread no Python handler runs in this thread, so nothing is changed."""
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(args, **kwargs)
    seen: list[int] = []
    # a handler not set from Python (None) cannot be put back: that signal is left alone
    held = [signum for signum in _HELD if signal.getsignal(signum) is not None]
    old = {signum: signal.signal(signum, lambda signum, frame: seen.append(signum)) for signum in held}
    proc: subprocess.Popen | None = None
    try:
        proc = subprocess.Popen(args, **kwargs)
    finally:
        for signum, handler in old.items():
            signal.signal(signum, handler)
        try:
            for again in dict.fromkeys(seen):
                signal.raise_signal(again)  # its own handler now: KeyboardInterrupt where it can propagate
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
    return proc
