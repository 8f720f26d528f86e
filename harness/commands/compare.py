"""`hil compare BASE HEAD`: what changed between two suite runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
from rich.table import Table

from ..config import COMPARE_DEFAULTS, load_config
from ..errors import UsageError
from ..results.compare import compare
from ..results.console import make_console
from ..results.result import write_json_atomic
from ..suite import load_suite
from .history import open_store

out = make_console()
LABELS = {"count": "count", "energy_uj": "energy", "flash_bytes": "flash", "ram_bytes": "RAM",
          "arena_bytes": "arena", "model_bytes": "model", "accuracy": "accuracy"}
STYLE = {"regressed": "bold red", "improved": "green", "incomparable": "yellow", "new": "cyan", "removed": "dim"}


def resolve(ref: str, store, suite: str | None, cwd: Path) -> tuple[dict, str]:
    """A suite document for a file path, a commit (sha, prefix, or any git
    revision such as HEAD~1) or a branch name."""
    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise UsageError(f"{ref}: no such file")
        return load_suite(path), "file"
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd,
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        doc = store.latest(commit=proc.stdout.strip(), suite=suite)
        if doc:
            return doc, "store"
    doc = store.latest(branch=ref, suite=suite) or store.latest(commit=ref, suite=suite)
    if doc:
        return doc, "store"
    raise UsageError(f"no stored suite run for {ref!r} (not a result file, and no run of that commit or branch)",
                     hint="run `hil test` on that commit first, or pass a suite.json; `hil history` lists runs")


def _label(ref: str, doc: dict, source: str) -> str:
    """How to call a side in reports: a file by the branch or commit it holds."""
    if source != "file":
        return ref
    git = doc.get("git") or {}
    return git.get("branch") or (git.get("commit") or "")[:10] or Path(ref).name


def _fmt(value, unit) -> str:
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{value:.2%}"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 1000 else f"{value:,.3f}"


@click.command("compare")
@click.argument("base")
@click.argument("head", default="HEAD")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", help="A store to read instead of the project's.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the hil.compare/1 document here.")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged metrics too.")
def command(base, head, config_path, store, json_out, show_all) -> None:
    """Compare two suite runs and exit 1 if anything regressed.

    BASE and HEAD are suite.json files, or git revisions / branch names
    whose newest run is looked up in the result store. A metric regresses
    when it grows by more than its [compare] threshold in hil.toml
    (defaults: 1% for counts, energy and sizes; accuracy may drop 0.01);
    a check that passed on BASE and fails on HEAD also regresses.

    \b
    Examples:
      hil compare main HEAD
      hil compare base/suite.json head/suite.json --json compare.json

    Exit status: 0 no regression, 1 regression, 2 bad input or counts of
    different kinds (instructions vs cycles), 3 store unreachable.
    """
    try:
        config = load_config(config_path) if not store else None
    except UsageError:
        config = None  # comparing two files needs no project
    thresholds = config.compare if config else dict(COMPARE_DEFAULTS)
    files = all(Path(r).suffix == ".json" for r in (base, head))
    db, suite = (None, None) if files else open_store(config_path, store)
    cwd = config.root if config else Path.cwd()
    base_doc, base_source = resolve(base, db, suite, cwd)
    head_doc, head_source = resolve(head, db, suite, cwd)
    doc = compare(base_doc, head_doc, thresholds, _label(base, base_doc, base_source),
                  _label(head, head_doc, head_source))
    if json_out:
        write_json_atomic(json_out, doc)
    table = Table(title=f"{doc['base']['label']} ({(doc['base']['commit'] or '')[:10]}) -> "
                        f"{doc['head']['label']} ({(doc['head']['commit'] or '')[:10]})",
                  title_justify="left")
    for col, justify in (("platform / model", "left"), ("metric", "left"), ("base", "right"), ("head", "right"),
                         ("change", "right"), ("threshold", "right"), ("status", "left")):
        table.add_column(col, justify=justify)
    for c in doc["changes"]:
        if c["status"] == "unchanged" and not show_all:
            continue
        unit = c["unit"] or ""
        change = "" if c["delta_pct"] is None else f"{c['delta_pct']:+.2f}%"
        thr = f"{c['threshold']:g}" + ("" if c["metric"] == "accuracy" else "%")
        table.add_row(f"{c['platform']}/{c['model']}", LABELS.get(c["metric"], c["metric"]) + (f" ({unit})" if unit else ""),
                      _fmt(c["base"], unit), _fmt(c["head"], unit), change, thr,
                      f"[{STYLE.get(c['status'], '')}]{c['status']}[/]" + (f" {c['note']}" if c["note"] else ""))
    out.print(table)
    for c in doc["cases"]:
        if c["status"] in ("regressed", "improved"):
            out.print(f"  [{STYLE[c['status']]}]{c['status']}[/] {c['id']}: {c['base']} -> {c['head']}")
    out.print(f"verdict: [{STYLE.get(doc['verdict'], 'green')}]{doc['verdict']}[/]")
    sys.exit(doc["exit_code"])
