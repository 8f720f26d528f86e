"""One failure taxonomy: what an exit status means, and how several combine.

Every place that turns several outcomes into one (the boards of a run, the
jobs of a suite, the shards of `hil merge`, a Robot or pytest session) calls
`combine`, so the same jobs give the same answer however they were split.

    0    passed        every check passed
    1    failed        the firmware under test failed: a mismatch, a fault, a
                       hang of a firmware on a healthy link and a running
                       emulator, a budget or a suite check
    2    bad input     bad usage, model, vectors, platform or config file
    3    infrastructure  link, emulator, toolchain, disk, reference interpreter
    130  interrupted   Ctrl-C or SIGTERM; the results so far are kept

Priority when outcomes differ: interrupted > failed > bad input >
infrastructure > passed.

- Interrupted first: someone stopped the run, so every other verdict is
  partial, and a CI system must see the cancellation as such.
- A firmware failure next: it is a real, reproducible verdict that no retry
  and no fix elsewhere can turn into a pass, so it must never be hidden
  behind the others. A suite that also had an infrastructure error is
  incomplete, but its gate is already decided: it fails; the jobs that could
  not run still say so, each with its own status and exit code, in the
  document.
- Bad input before infrastructure: re-running (what exit 3 invites) cannot
  cure a broken model or config file; somebody has to fix it.
- Infrastructure last of the failures: it says only that something could
  not be judged, and a retry may well pass.

An unknown or missing code (a job that never wrote its result) counts as
infrastructure: nothing was judged. `combine([])` is 0, so that combining
parts and then the parts' results gives the same answer as combining
everything at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, HilError

log = logging.getLogger(__name__)

#: the highest priority first
PRIORITY = (EXIT_INTERRUPTED, EXIT_FAILED, EXIT_USAGE, EXIT_INFRA, EXIT_OK)

#: the `status` word of a result document for each exit status
STATUS = {EXIT_OK: "passed", EXIT_FAILED: "failed", EXIT_USAGE: "error", EXIT_INFRA: "error",
          EXIT_INTERRUPTED: "interrupted"}

#: what each exit status means, in words for people
MEANING = {EXIT_OK: "passed", EXIT_FAILED: "firmware failure", EXIT_USAGE: "bad input",
           EXIT_INFRA: "infrastructure", EXIT_INTERRUPTED: "interrupted"}


def normalize(code: int | None) -> int:
    """A code of the taxonomy; anything else (None, a signal) is infrastructure."""
    return code if code in STATUS else EXIT_INFRA


def combine(codes: Iterable[int | None]) -> int:
    """The one exit status for several outcomes (see the module's priority)."""
    present = {normalize(c) for c in codes}
    return next((code for code in PRIORITY if code in present), EXIT_OK)


def status_word(code: int | None) -> str:
    """passed | failed | error | interrupted, as result documents say it."""
    return STATUS[normalize(code)]


def code_of(document: dict) -> int:
    """The exit status a result or job entry stands for: its `exit_code`,
    else (documents that lack one) its `status` word; "error" and anything
    unfinished ("running": a process that was killed) are infrastructure."""
    if document.get("exit_code") is not None:
        return normalize(document["exit_code"])
    return {"passed": EXIT_OK, "failed": EXIT_FAILED, "interrupted": EXIT_INTERRUPTED}.get(
        document.get("status", ""), EXIT_INFRA)


def case_code(case_status: str, job_code: int | None) -> int:
    """The exit status one suite check stands for: a failed check is a
    firmware verdict; a check in error carries its job's reason (bad input
    or infrastructure), or is bad input when the job itself ended well (a
    check the configuration asks for that the run cannot answer)."""
    if case_status == "failed":
        return EXIT_FAILED
    if case_status == "error":
        job = normalize(job_code)
        return job if job != EXIT_OK else EXIT_USAGE
    return EXIT_OK


def code_for(exc: BaseException, default: int | None = EXIT_INFRA) -> int | None:
    """The exit status an exception stands for, where a step of a Session,
    a Robot keyword or a pytest test ends with one: a HilError carries its
    own; a failed check (CheckFailed, any AssertionError) is the firmware's;
    Ctrl-C is an interruption; anything else is `default`."""
    if isinstance(exc, HilError):
        return normalize(exc.exit_code)
    if isinstance(exc, AssertionError):
        return EXIT_FAILED
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return default
