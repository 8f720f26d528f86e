"""hil's optional parts, and the one-line answer when one is missing.

Each optional extra of pyproject.toml brings packages only some users need;
the code that needs one asks here, and a missing one is an error naming the
`pip install 'hil[extra]'` that brings it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType

from .errors import InfraError

log = logging.getLogger(__name__)

#: importable module -> (the extra that installs it, the distribution's name)
EXTRAS: dict[str, tuple[str, str]] = {
    "psycopg": ("store-postgres", "psycopg"),
    "matplotlib": ("plots", "matplotlib"),
    "robot": ("robot", "robotframework"),
    "tensorflow": ("models", "tensorflow-cpu"),
    "flatbuffers": ("models", "flatbuffers"),
    "labgrid": ("labgrid", "labgrid"),
}


def install_hint(module: str) -> str:
    extra, _ = EXTRAS[module]
    return f"pip install 'hil[{extra}]'"


def available(module: str) -> bool:
    """Whether `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(module: str, needed_for: str) -> ModuleType:
    """`module`, imported; an InfraError (exit 3) naming the extra when it is
    not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra, dist = EXTRAS[module]
        raise InfraError(f"{needed_for} needs {dist}, which is not installed ({exc})",
                         hint=install_hint(module)) from None
