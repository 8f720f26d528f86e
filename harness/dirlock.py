"""One hil writer per run or suite directory.

Two runs given the same directory (`hil run --workdir`, `hil test --out`)
overwrite each other's input batch, results and logs: the first run's device
then reads the second's vectors and a correct firmware fails bit-exactness.
The second run is refused (exit 2) before it writes anything there. The lock
is the kernel's (flock on `<dir>/.hil-lock`): a run that dies releases it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import BinaryIO

from .errors import UsageError

log = logging.getLogger(__name__)

LOCK_NAME = ".hil-lock"


class DirectoryLock:
    """Held while its run writes the directory; `release()` (or the end of
    the process) lets the next run in."""

    def __init__(self, handle: BinaryIO, directory: Path) -> None:
        self.handle = handle
        self.directory = directory

    def release(self) -> None:
        try:
            self.handle.close()  # closing the file drops the flock
        except OSError:  # unbuffered, it has nothing to write; the descriptor is closed all the same
            pass


def lock_directory(directory: Path, what: str, option: str) -> DirectoryLock | None:
    """Take `directory` for this process, or raise UsageError naming the
    process that holds it. None when the lock file cannot be created (a full
    or read-only disk): the run's own writes then report that disk."""
    path = Path(directory) / LOCK_NAME
    try:
        handle = open(path, "a+b", buffering=0)  # unbuffered: nothing left to write (and fail) at close
    except OSError as exc:
        log.debug("no lock on %s: %s", directory, exc)
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "unknown"
        handle.close()
        raise UsageError(f"{what} {directory} is in use by another hil run (process {holder}); two runs in one "
                         "directory would overwrite each other's input batch and results",
                         hint=f"give each run its own {option}, or wait until the other one ends") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
    except OSError as exc:  # a full disk: the lock holds all the same
        log.debug("cannot record the lock holder in %s: %s", path, exc)
    return DirectoryLock(handle, Path(directory))
