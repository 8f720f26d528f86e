"""`hil boards`: the serial ports attached to this machine and the debug
probes behind them, to find a board's --port and --probe; and, when a
labgrid coordinator is configured (hil.toml [labgrid] coordinator,
LG_COORDINATOR or --coordinator), the lab's places: their tags, who holds
them and what each can do (harness/targets/labgrid.py)."""

from __future__ import annotations

import json as jsonlib
import logging

import click

from ..errors import UsageError
from ..results.terminal import make_console

log = logging.getLogger(__name__)


def _places(address: str) -> list[dict]:
    from ..targets.labgrid import connect

    coordinator = connect(address)
    try:
        return [p.as_dict() for p in sorted(coordinator.places().values(), key=lambda p: p.name)]
    finally:
        coordinator.close()


@click.command("boards")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option("--coordinator", metavar="HOST[:PORT]",
              help="A labgrid coordinator whose places to list [default: hil.toml [labgrid] coordinator, "
                   "else LG_COORDINATOR].")
def command(as_json: bool, coordinator: str | None) -> None:
    """List serial ports with their USB identity and debug probe, and the
    places of a labgrid lab.

    On ST-LINK, J-Link and CMSIS-DAP probes the serial number of the
    virtual COM port is the probe's own serial number: that is the --probe
    id of the board on that --port. Prefer the stable /dev/serial/by-id/
    path as --port when boards are re-plugged. A place is what
    `hil run --place NAME` (or --place-tag KEY=VALUE) acquires.
    """
    from rich.markup import escape
    from rich.table import Table

    from ..targets.board import local_ports
    from ..targets.labgrid import coordinator_address, labgrid_settings

    try:
        address = coordinator_address(explicit=coordinator)[0]
    except UsageError:
        labgrid_settings()  # a wrong [labgrid] table in hil.toml is said (exit 2), not taken for "no lab"
        address = None  # no lab configured: only this machine's ports
    ports = local_ports()
    places = _places(address) if address else None
    if as_json:
        ports_json = [p.as_dict() for p in ports]
        click.echo(jsonlib.dumps(ports_json if places is None else
                                 {"ports": ports_json, "coordinator": address, "places": places}, indent=2))
        return
    out = make_console()
    if places is not None:
        table = Table(title=escape(f"places of the labgrid coordinator at {address}"), title_justify="left")
        for col in ("place (--place)", "tags (--place-tag)", "held by", "can", "comment"):
            table.add_column(col, overflow="fold")
        for p in places:
            table.add_row(*(escape(str(cell)) for cell in (
                p["name"], " ".join(f"{k}={v}" for k, v in p["tags"].items()), p["acquired_by"] or "free",
                "; ".join(p["capabilities"]) or "nothing (exporter down?)", p["comment"])))
        out.print(table)
    if not ports:
        if places is None:
            out.print("no serial ports found (is the board plugged in? `dmesg | tail` shows what the USB probe did)")
        return
    table = Table()
    for col in ("port", "probe", "probe id (--probe)", "usb", "description", "stable path"):
        table.add_column(col, overflow="fold")
    for port in ports:
        d = port.as_dict()
        table.add_row(*(escape(str(cell)) for cell in (port.device, port.probe or "", port.serial_number or "",
                                                        d["usb"] or "", port.description, port.by_id or "")))
    out.print(table)
