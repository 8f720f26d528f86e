"""Paths a user gives are made absolute where they enter hil (a CLI option,
a Robot keyword argument, a pytest option, the session API), against the
user's working directory at that moment.

Later stages run elsewhere: QEMU and Renode run in the run directory (so
short relative host-file requests reach the device), builds run in their
build directory. A relative path that reached them would name another file,
or none.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def absolute(path: str | os.PathLike | None, base: str | os.PathLike | None = None) -> Path | None:
    """`path` made absolute against `base` (default: the current working
    directory), without resolving symbolic links (the user's name is kept)."""
    if path is None or str(path) == "":
        return None
    path = Path(os.path.expanduser(os.fspath(path)))
    return path if path.is_absolute() else Path(base or os.getcwd()) / path


def click_absolute(ctx, param, value):
    """A click callback: an option's path (or each of a repeated option's
    paths) made absolute against the working directory hil was started in."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return type(value)(absolute(v) for v in value)
    made = absolute(value)
    if made is None:  # an empty path names nothing (was the string 'None')
        return None
    return made if isinstance(value, Path) else str(made)


def refuse_overwriting_inputs(option: str, out: Path | None, inputs: dict[str, Path | None]) -> None:
    """An output option that names one of the run's input files would
    replace the user's model or vectors with a result: a UsageError (exit
    2) before anything is written. `inputs`: option name -> path given."""
    if out is None:
        return
    from .errors import UsageError

    target = Path(out).resolve()
    for name, path in inputs.items():
        if path is not None and Path(path).resolve() == target:
            raise UsageError(f"{option} {target} is the file given as {name}: the result would overwrite it",
                             hint=f"write the result elsewhere, e.g. {option} result.json")
