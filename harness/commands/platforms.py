"""`hil platforms`: the bundled platform files, and the built-in engine's operators."""

from __future__ import annotations

import logging

import click

from ..results.terminal import make_console

log = logging.getLogger(__name__)

out = make_console()


@click.command("platforms")
@click.option("--ops", is_flag=True, help="Also list the operators the built-in engine runs.")
def command(ops: bool) -> None:
    """List the platforms you can run on (the bundled platform files)."""
    from rich.markup import escape
    from rich.table import Table

    from .. import platforms as platform_files

    table = Table()
    for col in ("platform", "core", "target", "counter", "arena", "model buffer", "description"):
        table.add_column(col)
    for name in platform_files.available():
        p = platform_files.load_platform(name)
        table.add_row(*(escape(str(cell)) for cell in (p.name, p.core, f"{p.target_kind} {p.target.machine}".strip(),
                                                        p.counter_kind, f"{p.firmware.arena_bytes // 1024} KiB",
                                                        f"{p.firmware.model_capacity_bytes // 1024} KiB",
                                                        p.description)))
    out.print(table)
    if ops:
        from ..model.tflite import BUILTIN_ENGINE_OPS

        out.print("built-in engine operators: " + ", ".join(sorted(BUILTIN_ENGINE_OPS)))
