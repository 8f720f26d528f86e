"""Sub-commands beyond the core ones in cli.py: each module here defines a
click command named `command`, and `register` adds it to the `hil` group."""

from __future__ import annotations

import importlib
import pkgutil

import click


def register(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)
