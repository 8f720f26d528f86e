"""`hil compare BASE HEAD`: what changed between two suite runs.

A commit or branch stands for its newest stored run that is complete (every
job of the suite ran) and from a clean tree, preferring, for BASE, a run of
HEAD's configuration; which run was used, and which newer ones were skipped
and why, is always printed.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from ..errors import UsageError
from ..paths import refuse_overwriting_inputs
from ..power.energy import sig3
from ..results.compare import NOT_COMPARED, compare
from ..results.terminal import make_console
from .history import open_store

if TYPE_CHECKING:
    from rich.console import JustifyMethod

# the suite's and the project's modules (the runner, numpy, the reference) are imported where they are
# used: `hil compare --help` needs click alone (tests/test_command_help.py)

log = logging.getLogger(__name__)

out = make_console()
LABELS = {"count": "count", "energy_uj": "energy", "cycles_estimate": "cycles", "flash_bytes": "flash", "ram_bytes": "RAM",
          "arena_bytes": "arena", "model_bytes": "model", "accuracy": "accuracy"}
STYLE = {"regressed": "bold red", "improved": "green", "incomparable": "yellow", "new": "cyan",
         NOT_COMPARED: "magenta", "unchanged": "", "incomplete": "bold magenta"}


@dataclass
class Side:
    """One side of the comparison: the suite document and how it was found."""
    doc: dict
    source: str  # "file" or "store"
    used: str  # 'run #12 of abc1234 (2026-12-03 10:20, complete, clean)'
    skipped: list[str] = field(default_factory=list)


def _styled(text: str, style: str) -> str:
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def _rev_parse(ref: str, cwd: Path) -> str | None:
    proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=cwd,
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _skip_reason(run, allow_partial: bool, allow_dirty: bool) -> str | None:
    from ..suite import describe_identity

    reasons = []
    identity = run.identity()
    if not run.complete and not allow_partial:
        reasons.append(describe_identity(identity, tree=False))
    if run.clean is False and not allow_dirty:
        reasons.append("dirty tree")
    elif run.clean is None and not allow_dirty:
        reasons.append("tree state unknown")
    return ", ".join(reasons) or None


def resolve(ref: str, store, suite: str | None, cwd: Path, *, allow_partial: bool = False,
            allow_dirty: bool = False, prefer_config: str | None = None) -> Side:
    """The suite run a file path, a commit (sha, prefix, or any git revision
    such as HEAD~1) or a branch name stands for."""
    from ..suite import describe_identity, identity_of, load_suite

    path = Path(ref)
    if path.suffix == ".json" or path.exists():
        if not path.exists():
            raise UsageError(f"{ref}: no such file")
        doc = load_suite(path)
        commit = ((doc.get("git") or {}).get("commit") or "no commit")[:10]
        return Side(doc, "file", f"file {ref} ({commit}, {describe_identity(identity_of(doc))})")
    sha = _rev_parse(ref, cwd)
    runs = store.runs(suite=suite, commit=sha, limit=None) if sha else []
    what = f"{ref} ({sha[:10]})" if sha else ref
    if not runs:
        runs = store.runs(suite=suite, branch=ref, limit=None) or store.runs(suite=suite, commit=ref, limit=None)
    if not runs:
        raise UsageError(f"no stored suite run for {ref!r} (not a result file, and no run of that commit or branch)",
                         hint="run `hil test` on that commit first, or pass a suite.json; `hil history` lists runs")
    skipped, other_config = [], []
    for run in runs:
        reason = _skip_reason(run, allow_partial, allow_dirty)
        if reason:
            skipped.append(f"skipped run #{run.id}: {reason}")
            continue
        if prefer_config and run.config_hash and run.config_hash != prefer_config:
            other_config.append(run)
            continue
        return Side(store.document(run.id), "store", run.describe(), skipped + [
            f"skipped run #{r.id}: another configuration (config hash {r.config_hash})" for r in other_config])
    if other_config:  # no run of the other side's configuration: the newest qualifying one, said so
        run = other_config[0]
        return Side(store.document(run.id), "store", run.describe() + ", another configuration than the other side",
                    skipped)
    raise UsageError(f"no complete run from a clean tree for {what}: " + "; ".join(
        s.removeprefix("skipped ") for s in skipped),
        hint="run the full suite (`hil test`, without -k or --shard, or `hil merge` of every shard) on a clean "
             "tree of that commit; or pass --allow-partial / --allow-dirty to compare with these runs")


def _label(ref: str, side: Side) -> str:
    """How to call a side in reports: a file by the branch or commit it holds."""
    if side.source != "file":
        return ref
    git = side.doc.get("git") or {}
    return git.get("branch") or (git.get("commit") or "")[:10] or ref  # no git: the file as given


def _fmt(value, unit) -> str:
    if value is None:
        return "-"
    if unit == "fraction":
        return f"{value:.2%}"
    if unit and "estimate" in unit:
        return sig3(value)
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 1000 else f"{value:,.3f}"


def _config_differences(base: dict, head: dict) -> list[str]:
    """Which parts of the effective hil.toml differ between two runs."""
    from ..suite import identity_of

    a, b = identity_of(base).get("config") or {}, identity_of(head).get("config") or {}
    if not a or not b or a == b:
        return []
    found = []
    models_a = {m.get("name"): m for m in a.get("models", [])}
    models_b = {m.get("name"): m for m in b.get("models", [])}
    for name in sorted(set(models_a) | set(models_b)):
        ma, mb = models_a.get(name), models_b.get(name)
        if ma != mb:
            keys = sorted(k for k in set(ma or {}) | set(mb or {}) if (ma or {}).get(k) != (mb or {}).get(k))
            found.append(f"model {name}: " + ("only in one run" if not ma or not mb else ", ".join(keys)))
    for key in sorted(set(a) - {"models"} | set(b) - {"models"}):
        if a.get(key) != b.get(key):
            found.append(key)
    return found


@click.command("compare")
@click.argument("base")
@click.argument("head", default="HEAD")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", help="A store to read instead of the project's.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the hil.compare/1 document here.")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged metrics too.")
@click.option("--allow-partial", is_flag=True,
              help="Use partial runs (-k, --shard, interrupted) and judge only what both runs have; what one run "
                   "lacks is still listed as not compared.")
@click.option("--allow-dirty", is_flag=True, help="Use runs made from a tree with uncommitted changes.")
@click.option("--allow-version-change", is_flag=True,
              help="Compare even when the reference, toolchain, emulator or engine version changed (with a "
                   "warning), instead of calling the affected metrics incomparable.")
def command(base, head, config_path, store, json_out, show_all, allow_partial, allow_dirty,
            allow_version_change) -> None:
    """Compare two suite runs and exit 1 if anything regressed.

    BASE and HEAD are suite.json files, or git revisions / branch names.
    A revision stands for its newest stored run that is complete (every
    job of the suite ran: no -k, no --shard unless merged) and from a
    clean tree (--allow-partial, --allow-dirty to relax); the run used, and
    the newer runs skipped, are printed. A metric regresses when it grows
    by more than its [compare] threshold in hil.toml (defaults: 1% for
    counts, energy and sizes; accuracy may drop 0.01); a check that passed
    on BASE and fails on HEAD also regresses.

    A job or check of BASE that HEAD lacks, or a job of HEAD that BASE's
    suite defined but did not run, is "not compared" and makes the verdict
    "incomplete", never "unchanged"; so does comparing nothing. A metric whose inputs changed
    version (tflite-micro reference, toolchain, emulator, engine: see
    `provenance` in result.json) is "incomparable", and so are energy
    estimates on different bases.

    \b
    Examples:
      hil compare main HEAD
      hil compare HEAD~1 HEAD --all
      hil compare base/suite.json head/suite.json --json compare.json

    Exit status: 0 no regression, 1 regression or incomplete (something of
    BASE not compared), 2 bad input, no usable run, or incomparable (counts
    of different kinds, changed versions or energy bases), 3 store
    unreachable.
    """
    from ..config import COMPARE_DEFAULTS, load_config
    from ..results.result import write_json_atomic
    from ..suite import identity_of

    try:
        config = load_config(config_path) if not store else None
    except UsageError:
        config = None  # comparing two files needs no project
    thresholds = config.compare if config else dict(COMPARE_DEFAULTS)
    files = all(Path(r).suffix == ".json" for r in (base, head))
    refuse_overwriting_inputs("--json", json_out, {"BASE": Path(base) if Path(base).suffix == ".json" else None,
                                                   "HEAD": Path(head) if Path(head).suffix == ".json" else None})
    db, suite = (None, None) if files else open_store(config_path, store)
    cwd = config.root if config else Path.cwd()
    flags = {"allow_partial": allow_partial, "allow_dirty": allow_dirty}
    head_side = resolve(head, db, suite, cwd, **flags)
    base_side = resolve(base, db, suite, cwd, prefer_config=identity_of(head_side.doc).get("config_hash"), **flags)
    for name, side in (("BASE", base_side), ("HEAD", head_side)):
        out.print(f"{name}: {side.used}", highlight=False, soft_wrap=True, markup=False)
        for line in side.skipped:
            out.print(f"  {line}", highlight=False, soft_wrap=True, markup=False)
    differences = _config_differences(base_side.doc, head_side.doc)
    if differences:
        out.print(f"note: the runs' configurations differ: {'; '.join(differences)}", highlight=False, soft_wrap=True,
                  markup=False)

    doc = compare(base_side.doc, head_side.doc, thresholds, _label(base, base_side), _label(head, head_side),
                  allow_partial=allow_partial, allow_version_change=allow_version_change)
    doc["base"]["used"], doc["head"]["used"] = base_side.used, head_side.used
    if json_out:
        write_json_atomic(json_out, doc)
    _print(doc, show_all)
    sys.exit(doc["exit_code"])


def _print(doc: dict, show_all: bool) -> None:
    from rich.table import Table

    rows = [c for c in doc["changes"] if show_all or c["status"] != "unchanged"]
    if rows:
        def side(s: dict) -> str:
            commit = (s.get("commit") or "")[:10]
            return f"{s['label']} ({commit})" if commit and commit != s["label"] else s["label"]

        table = Table(title=escape(f"{side(doc['base'])} -> {side(doc['head'])}"), title_justify="left")
        columns: tuple[tuple[str, JustifyMethod], ...] = (
            ("platform / model", "left"), ("metric", "left"), ("base", "right"), ("head", "right"),
            ("change", "right"), ("threshold", "right"), ("status", "left"))
        for col, justify in columns:
            table.add_column(col, justify=justify)
        for c in rows:
            unit = c["unit"] or ""
            change = "" if c["delta_pct"] is None else f"{c['delta_pct']:+.2f}%"
            thr = f"{c['threshold']:g}" + ("" if c["unit"] == "fraction" else "%")
            label = LABELS.get(c["metric"], c["metric"])
            label += (f", {unit}" if "(" in unit else f" ({unit})") if unit else ""
            table.add_row(escape(f"{c['platform']}/{c['model']}"), escape(label),
                          _fmt(c["base"], unit), _fmt(c["head"], unit), change, thr,
                          _styled(c["status"], STYLE.get(c["status"], "")) + (f" ({escape(c['note'])})"
                                                                                if c["note"] else ""))
        out.print(table)
    else:
        out.print(f"no metric changed beyond its threshold ({doc['compared']} compared; --all shows them)",
                  highlight=False)
    for c in doc["cases"]:
        if c["status"] in ("regressed", "improved", NOT_COMPARED, "incomparable"):
            out.print(f"  {_styled(c['status'], STYLE[c['status']])} {escape(c['id'])}: {escape(str(c['base'] or '-'))} -> "
                      f"{escape(str(c['head'] or '-'))}"
                      + (f" ({escape(c['note'])})" if c.get("note") else ""), highlight=False, soft_wrap=True)
    changed = doc.get("version_changes") or {}
    if changed:
        lines = sorted({text for job in changed.values() for text in job.values()})
        if doc["allow_version_change"]:
            out.print(f"warning: compared across changed versions (--allow-version-change): {'; '.join(lines)}",
                      highlight=False, soft_wrap=True, markup=False)
        else:
            out.print(f"versions changed between the runs: {'; '.join(lines)}: the metrics they affect are "
                      "incomparable; re-baseline (run the suite on BASE with the new versions) or pass "
                      "--allow-version-change", highlight=False, soft_wrap=True, markup=False)
    for job_id, sha in (doc.get("model_changes") or {}).items():
        out.print(f"note: {job_id}: the model changed ({sha['base'][:12]} -> {sha['head'][:12]}): its counts, "
                  "sizes and accuracy are the new model's against the old one's", highlight=False,
                  soft_wrap=True, markup=False)
    for job_id, how in (doc.get("vector_changes") or {}).items():
        out.print(f"note: {job_id}: other vectors ({how}): accuracy and agreement figures are incomparable; "
                  "run both with the same vectors", highlight=False, soft_wrap=True, markup=False)
    if doc.get("versions_unknown"):
        out.print(f"note: {len(doc['versions_unknown'])} jobs compared without knowing their reference, toolchain, "
                  "emulator and engine versions on one side (a run made before hil recorded them)", highlight=False)
    verdict = _styled(doc["verdict"], STYLE.get(doc["verdict"], "green"))
    n = doc["not_compared"]
    if doc["verdict"] == "incomplete":
        verdict += (f" ({n} not compared: jobs or checks of one run that the other did not run; run the full suite "
                    "on both, or --allow-partial to judge only what was compared)" if n else
                    " (nothing was compared: no job ran in both runs)")
    elif n and doc["allow_partial"]:
        verdict += f" (judged on what was compared; {n} not compared, allowed by --allow-partial)"
    out.print(f"verdict: {verdict}", highlight=False, soft_wrap=True)
