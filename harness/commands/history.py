"""`hil history`: the runs in the result store."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..results.terminal import make_console

if TYPE_CHECKING:
    from ..results.store import ResultStore

log = logging.getLogger(__name__)

out = make_console()


def open_store(config_path: Path | None, store: str | None) -> tuple[ResultStore, str | None]:
    """The store named by --store, else the project's; and the suite name."""
    from ..config import load_config
    from ..results.store import ResultStore, store_url

    if store:
        return ResultStore(store_url(store, Path.cwd())), None
    config = load_config(config_path)
    return ResultStore(store_url(config.store, config.root)), config.name


@click.command("history")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", help="A store to read instead of the project's (file path or postgresql:// URL).")
@click.option("--branch", "-b", help="Only runs on this branch.")
@click.option("--limit", "-n", default=20, show_default=True, type=int)
@click.option("--allow-partial", is_flag=True, help="Also list partial runs (-k, --shard, interrupted), marked so.")
@click.option("--allow-dirty", is_flag=True, help="Also list runs made from a tree with uncommitted changes.")
def command(config_path, store, branch, limit, allow_partial, allow_dirty) -> None:
    """List stored suite runs, newest first: commit, branch, verdict.

    By default only complete runs (every job of the suite) from a clean
    tree: the runs `hil compare` uses. The others are counted below the
    table; --allow-partial / --allow-dirty list them, marked.
    """
    from rich.markup import escape
    from rich.table import Table

    from ..suite import describe_identity

    db, suite = open_store(config_path, store)
    table = Table()
    for col in ("run", "started", "commit", "branch", "dirty", "jobs", "status", "checks passed", "subject"):
        table.add_column(col)
    hidden = []
    runs = db.runs(suite=suite, branch=branch, limit=limit)
    for r in runs:
        partial, dirty = not r.complete, r.clean is False
        if (partial and not allow_partial) or (dirty and not allow_dirty):
            hidden.append(f"#{r.id} " + ("partial" if partial else "") + (" and " if partial and dirty else "")
                          + ("dirty" if dirty else ""))
            continue
        jobs = describe_identity(r.identity(), tree=False)
        mark = " (partial)" if partial else ""
        table.add_row(str(r.id), escape(r.started), escape((r.commit or "")[:10]), escape(r.branch or ""),
                      "yes" if r.dirty else "",
                      escape(jobs), r.status + mark, f"{r.passed}/{r.total}{mark}", escape((r.subject or "")[:50]))
    out.print(table)
    if hidden:
        out.print(f"not listed: {len(hidden)} of the newest {len(runs)} runs ({', '.join(hidden)}); "
                  "--allow-partial / --allow-dirty list them", highlight=False, soft_wrap=True, markup=False)
