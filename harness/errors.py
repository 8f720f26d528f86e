"""Errors that end a run, each carrying the exit status CI reads.

0 all checks passed; 1 the firmware under test failed (a check, a fault, a
hang); 2 bad usage or input; 3 infrastructure that the firmware did not
cause (toolchain or emulator missing, emulator will not start, link broken).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3


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
