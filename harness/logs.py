"""hil's log records, and how a front end shows them.

Every module logs to `logging.getLogger(__name__)` (all under `harness`):
debug and info records at the seams (build cache hit or miss, the emulator's
command line, link retries, the reference's start and end, store writes).
Nothing here adds a handler unless a front end asks:

- the CLI: `hil -v` shows info records on stderr, `-vv` debug ones;
  `--log-file PATH` keeps every record (debug) in PATH, whatever -v says.
  Never stdout: a result's JSON or a table may be going there.
- pytest: records propagate to the root logger, where `caplog` and live
  logging (`pytest --log-cli-level=DEBUG`) see them.
- Robot Framework: it forwards the root logger's records to its own log at
  its `--loglevel` (DEBUG shows the debug ones), so the library's records
  land in log.html beside its keywords.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from .errors import DiskError, UsageError

ROOT = "harness"
FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"
_installed: list[logging.Handler] = []


def level_for(verbosity: int) -> int:
    """-v count -> the lowest level shown on stderr."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def configure(verbosity: int = 0, log_file: Path | None = None) -> None:
    """Show hil's records on stderr from `level_for(verbosity)` up, and all of
    them in `log_file`. Replaces what an earlier call installed (a test may
    run several commands in one process)."""
    reset()
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level_for(verbosity))
    handlers: list[logging.Handler] = [console]
    if log_file is not None:
        try:
            handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
        except IsADirectoryError:
            raise UsageError(f"--log-file {log_file} is a directory", hint="give a file name") from None
        except FileNotFoundError:
            raise UsageError(f"--log-file {log_file}: its directory does not exist",
                             hint="create the directory, or give a path in an existing one") from None
        except OSError as exc:
            raise DiskError.writing("the log", log_file, exc, hint="free space on that disk or make it writable, or give "
                                                                    "--log-file another path") from None
    logger = logging.getLogger(ROOT)
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
        _installed.append(handler)
    logger.setLevel(logging.DEBUG if log_file is not None else level_for(verbosity))


def reset() -> None:
    """Remove the handlers `configure` installed (and close the log file)."""
    logger = logging.getLogger(ROOT)
    while _installed:
        handler = _installed.pop()
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)
