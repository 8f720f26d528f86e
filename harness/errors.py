"""Errors that end a run, each carrying the exit status CI reads.

0 all checks passed; 1 the firmware under test failed (a check, a fault, a
hang); 2 bad usage or input; 3 infrastructure that the firmware did not
cause (toolchain or emulator missing, emulator will not start, link broken,
a disk that is full or read-only); 130 interrupted. harness/verdict.py
combines several of them into one.
"""

from __future__ import annotations

import errno
import logging

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


class HilError(Exception):
    exit_code = EXIT_INFRA

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  fix: {self.hint}" if self.hint else text


class UsageError(HilError):
    """Bad flags, a bad model file, a bad platform file: the user's to fix."""

    exit_code = EXIT_USAGE


class InfraError(HilError):
    """Something around the firmware failed: toolchain, emulator, link."""

    exit_code = EXIT_INFRA


class DiskError(InfraError):
    """A file hil must write cannot be written (disk full, read-only, no
    permission): infrastructure, and the message names the path."""

    def __init__(self, message: str, path, *, hint: str | None = None) -> None:
        self.path = path
        super().__init__(message, hint=hint)

    @classmethod
    def writing(cls, what: str, path, exc: OSError, hint: str | None = None) -> "DiskError":
        """`cannot write {what} to PATH: No space left on device`."""
        reason = exc.strerror or str(exc)
        return cls(f"cannot write {what} to {path}: {reason}", path,
                   hint=hint or "free space on that disk or make it writable, or write elsewhere (hil run: "
                                "--workdir, --json; hil test: --out, --json)")


#: errno values that mean "this disk cannot take the write", whatever the file
_DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}


def disk_error(exc: BaseException) -> DiskError | None:
    """The DiskError an OSError stands for (a full, read-only or over-quota
    disk), or None when it is something else (a link, a missing file)."""
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        where = exc.filename if exc.filename is not None else "a file hil writes"
        return DiskError(f"cannot write {where}: {exc.strerror or exc}", where,
                         hint="free space on that disk or make it writable")
    return None
