"""The consoles hil prints to, apart from what it prints: a command module
makes its consoles when it is imported, and `hil <command> --help` imports
it, so this needs rich's console alone (results/console.py, the run's
report, pulls in numpy and the reference through the result)."""

from __future__ import annotations

from rich.console import Console


def make_console(stderr: bool = False) -> Console:
    """Rich console; CI logs (not a terminal) get wide lines instead of wrapping."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=160)
    return console
