"""`hil boards`: the serial ports attached to this machine and the debug
probes behind them, to find a board's --port and --probe."""

from __future__ import annotations

import json as jsonlib

import click
from rich.table import Table

from ..results.console import make_console


@click.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def command(as_json: bool) -> None:
    """List serial ports with their USB identity and debug probe.

    On ST-LINK, J-Link and CMSIS-DAP probes the serial number of the
    virtual COM port is the probe's own serial number: that is the --probe
    id of the board on that --port. Prefer the stable /dev/serial/by-id/
    path as --port when boards are re-plugged.
    """
    from ..targets.board import local_ports

    ports = local_ports()
    if as_json:
        click.echo(jsonlib.dumps([p.as_dict() for p in ports], indent=2))
        return
    out = make_console()
    if not ports:
        out.print("no serial ports found (is the board plugged in? `dmesg | tail` shows what the USB probe did)")
        return
    table = Table()
    for col in ("port", "probe", "probe id (--probe)", "usb", "description", "stable path"):
        table.add_column(col, overflow="fold")
    for p in ports:
        d = p.as_dict()
        table.add_row(p.device, p.probe or "", p.serial_number or "", d["usb"] or "", p.description, p.by_id or "")
    out.print(table)
