"""`hil history`: the runs in the result store."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from ..config import load_config
from ..results.console import make_console
from ..results.store import ResultStore, store_url

out = make_console()


def open_store(config_path: Path | None, store: str | None) -> tuple[ResultStore, str | None]:
    """The store named by --store, else the project's; and the suite name."""
    if store:
        return ResultStore(store_url(store, Path.cwd())), None
    config = load_config(config_path)
    return ResultStore(store_url(config.store, config.root)), config.name


@click.command("history")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", help="A store to read instead of the project's (file path or postgresql:// URL).")
@click.option("--branch", "-b", help="Only runs on this branch.")
@click.option("--limit", "-n", default=20, show_default=True, type=int)
def command(config_path, store, branch, limit) -> None:
    """List stored suite runs, newest first: commit, branch, verdict."""
    db, suite = open_store(config_path, store)
    table = Table()
    for col in ("run", "started", "commit", "branch", "dirty", "status", "checks passed", "subject"):
        table.add_column(col)
    for r in db.runs(suite=suite, branch=branch, limit=limit):
        table.add_row(str(r.id), r.started, (r.commit or "")[:10], r.branch or "", "yes" if r.dirty else "",
                      r.status, f"{r.passed}/{r.total}", (r.subject or "")[:50])
    out.print(table)
