"""Holding SIGINT/SIGTERM back without losing them, and starting a child
with a `preexec_fn` while they are held.

Blocking the signals with `pthread_sigmask` holds them back from the main
thread only: the kernel then hands a Ctrl-C to any other thread (the result
writer, the reference's pipe threads), whose C handler still makes the main
thread raise KeyboardInterrupt at once. So while signals are held here, the
Python handlers are replaced by ones that only note the signal; after, the
original handlers are put back and each noted signal is sent again.

A `preexec_fn` makes `subprocess` fork (not vfork/posix_spawn) and run the
interpreter's at-fork hooks in the parent (logging registers one that
releases its lock). A SIGINT or SIGTERM that arrives in that window has its
Python handler run inside the hook, where CPython prints "Exception ignored
in: <function _releaseLock>" and drops the KeyboardInterrupt: the run then
went on to the end and passed, as if never interrupted (seen once in ~100
signals sent 0.2-0.75 s into `hil run`, while the reference interpreter and
QEMU start). So children are started with the signals held.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

_HELD = (signal.SIGINT, signal.SIGTERM)
#: Ctrl-C and SIGTERM taken by `interrupt` (the `hil` command's handler) or a
#: run's own SIGTERM handler, counted. CPython drops a KeyboardInterrupt raised
#: where an exception cannot propagate (an at-fork hook, a `__del__`, a weakref
#: callback: "Exception ignored in ..."); a run compares the count before its
#: verdict (`interrupted_since`), so a lost one cannot end in PASSED.
_taken = [0]


def count_interrupt() -> None:
    _taken[0] += 1


def interrupt(signum, frame) -> None:
    """The `hil` command's SIGINT and SIGTERM handler: counted, then KeyboardInterrupt."""
    count_interrupt()
    raise KeyboardInterrupt


def interrupts() -> int:
    """How many interrupts the handlers above have taken in this process."""
    return _taken[0]


def interrupted_since(mark: int) -> bool:
    """An interrupt was taken since `interrupts()` returned `mark`, whether
    or not its KeyboardInterrupt got through."""
    return _taken[0] != mark


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM are noted, not acted on, inside the block, then
    sent again once it is left (so KeyboardInterrupt, or the SIGTERM handler,
    comes after the block). Outside the main thread Python runs no handler
    in this thread, so nothing is changed. A handler not set from Python
    (getsignal() is None) cannot be put back: that signal is left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def note(signum, frame) -> None:
        seen.append(signum)

    held = [signum for signum in _HELD if signal.getsignal(signum) is not None]
    old = {signum: signal.signal(signum, note) for signum in held}
    try:
        yield
    finally:
        for signum, handler in old.items():
            if signal.getsignal(signum) is note:  # a handler the block set itself stays (a run restores its own)
                signal.signal(signum, handler)
        for again in dict.fromkeys(seen):
            signal.raise_signal(again)  # its own handler now: KeyboardInterrupt where it can propagate


def popen(args: Any, **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen(args, **kwargs)` with SIGINT/SIGTERM held while
    the child is forked; the child is killed if a signal noted meanwhile
    ends the caller."""
    proc: subprocess.Popen | None = None
    try:
        with signals_held():
            proc = subprocess.Popen(args, **kwargs)
    except BaseException:
        if proc is not None:
            proc.kill()
            proc.wait()
        raise
    return proc
