"""`hil test`: run the suite in hil.toml."""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from .build import engine_options, engine_spec
from ..errors import HilError
from ..paths import click_absolute, refuse_overwriting_inputs
from ..results.terminal import make_console

if TYPE_CHECKING:  # the suite, the runner and their tables are imported when the command runs, not for --help
    from rich.table import Table

    from ..results.console import RunProgress

log = logging.getLogger(__name__)

out = make_console()
err = make_console(stderr=True)
STYLE = {"passed": "green", "failed": "bold red", "error": "red", "skipped": "dim"}


def _summary_table(doc: dict) -> Table:
    from rich.table import Table

    from ..power.energy import short_band, sig3
    from ..results.compare import timing_band

    checks = sorted({c["check"] for c in doc["cases"]})
    # names and paths come from hil.toml: a model named "kws[v2]" lost "[v2]", one with "[/]" crashed
    table = Table(title=escape(f"suite {doc['suite']} at {(doc['git'].get('commit') or 'no commit')[:10]}"),
                  title_justify="left")
    table.add_column("platform / model")
    for check in checks:
        table.add_column(check.replace("_", " "), justify="center")
    table.add_column("count (median)", justify="right")
    estimated = any((j.get("metrics") or {}).get("cycles_estimate") is not None for j in doc["jobs"])
    if estimated:  # the timing model's estimates, each with its band (jobs differ: each has its platform's)
        table.add_column("cycles, ms (est., band)", justify="right")
    table.add_column("energy uJ (est., unverified, band)" if any(
        not ((j.get("metrics") or {}).get("energy_basis") or {}).get("verified") for j in doc["jobs"]
        if (j.get("metrics") or {}).get("energy_uj") is not None) else "energy uJ (est., band)", justify="right")
    table.add_column("RAM B", justify="right")
    by_job: dict[str, dict[str, str]] = {}  # job -> check -> status
    for c in doc["cases"]:
        by_job.setdefault(f"{c['platform']}/{c['model']}", {})[c["check"]] = c["status"]
    for job in doc["jobs"]:
        m = job.get("metrics") or {}
        row = [escape(job["id"])]
        for check in checks:
            status = by_job.get(job["id"], {}).get(check, "")
            row.append(f"[{STYLE.get(status, '')}]{status}[/]" if status else "")
        row.append(f"{m['count']:,.0f} {m.get('count_kind', '')}" if m.get("count") is not None else "")
        if estimated:
            row.append(f"{sig3(m['cycles_estimate'])}, {sig3(m['latency_ms'])} ms, {timing_band(m.get('cycles_basis'))}"
                       if m.get("cycles_estimate") is not None and m.get("latency_ms") is not None else "")
        row.append(f"{sig3(m['energy_uj'])}, {short_band(m.get('energy_basis'))}"
                   if m.get("energy_uj") is not None else "")
        row.append(f"{m['ram_bytes']:,}" if m.get("ram_bytes") is not None else "")
        table.add_row(*row)
    return table


def _import_store_meanwhile() -> threading.Thread:
    """The result store's module (SQLAlchemy: 0.3-0.7 s to import), imported
    while the jobs run instead of after the last one; an unstored run
    (--no-store) never imports it."""
    def load() -> None:
        try:
            importlib.import_module("harness.results.store")
        except Exception:  # noqa: BLE001 - the import after the jobs says what is wrong
            pass

    thread = threading.Thread(target=load, name="hil-import-store", daemon=True)
    thread.start()
    return thread


def _job_progress(job_id: str) -> RunProgress:
    """A job's progress in the log: plain lines naming the job, only for
    jobs that take 30 s or more (whole lines, so parallel jobs (-j) do
    not garble each other). The board farm's (job id "farm", suite.py)
    says its stages: which place is acquired, released, or waited for and
    who holds it."""
    from ..results.console import RunProgress

    return RunProgress(err, job_id, plain=True, stages=job_id == "farm", quiet_below_s=30.0,
                       quiet_below_vectors=None)


@click.command("test")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Project file [default: ./hil.toml].")
@click.option("-k", "keyword", metavar="EXPR",
              help="Run only jobs whose id (platform/model) matches: words, and / or / not.")
@click.option("-j", "--jobs", "parallel", type=int, default=1, show_default=True,
              help="Jobs to run at once (each boots its own emulator).")
@click.option("--shard", "shard_text", metavar="I/N",
              help="Run the I-th of N deterministic slices of the jobs (for a CI matrix; merge with `hil merge`).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              help="Suite directory [default: <project.results>/<time>-<commit>].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Also write the hil.suite/1 document here.")
@click.option("--no-store", is_flag=True,
              help="Do not record the run: not in the result store, and its suite directory goes to "
                   "<project.results>-unstored, outside the directory that history and trends read.")
@click.option("--no-count", is_flag=True, help="Skip counting (faster; no counts, energy or count budgets).")
@click.option("--list", "list_only", is_flag=True, help="List the selected jobs and exit.")
@engine_options
def command(config_path, keyword, parallel, shard_text, out_dir, json_out, no_store, no_count, list_only,
            **engine) -> None:
    """Run every (platform, model) job of hil.toml and judge its checks.

    Each job is a full `hil run`; each check of each job becomes one case
    (a JUnit testcase in `hil report`). The suite document (hil.suite/1) is
    written atomically as jobs finish and recorded in the project's result
    store, keyed by git commit and branch, for `hil history` and
    `hil compare`.

    \b
    Examples:
      hil test                          everything in ./hil.toml
      hil test -k "an386 and not float" a selection
      hil test -j 2 --shard 1/4         slice 1 of 4, two emulators at a time
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..config import load_config
    from ..suite import all_jobs, describe_identity, parse_shard, run_suite, select, shard

    config = load_config(config_path)
    refuse_overwriting_inputs("--json", json_out, {"the project file": config.path, **{
        f"model {m.name}'s {role}": p for m in config.models for role, p in (
            ("model", m.path), ("vectors", m.vectors.file), ("expected outputs", m.vectors.expected_file),
            ("float model", m.float_model))}})
    # --engine tflm --tflm-dir ...: every job on the runner on TFLM (over hil.toml's [firmware])
    config = replace(config, build=engine_spec(engine, [m.path for m in config.models], base=config.build))
    shard_spec = parse_shard(shard_text)
    if parallel < 1:
        raise click.BadParameter("must be at least 1", param_hint="-j")
    if list_only:
        for job in shard(select(all_jobs(config), keyword), shard_spec):
            out.print(f"{job.id}  ({job.model.vectors.describe()}; checks: "
                      f"{', '.join(list(job.model.checks) + list(job.model.budgets))})", markup=False, highlight=False)
        return

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    selected = shard(select(all_jobs(config), keyword), shard_spec)
    progress = Progress(TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
                        TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)
    task = progress.add_task("jobs", total=len(selected), last="")

    def on_job(job_id: str, entry: dict) -> None:
        progress.update(task, advance=1, last=escape(f"{job_id}: {entry['status']}"))
        if not err.is_terminal:
            err.print(f"- {job_id}: {entry['status']}", markup=False, highlight=False)

    store_import = None if no_store else _import_store_meanwhile()
    with progress:
        doc, path = run_suite(config, keyword=keyword, shard_spec=shard_spec, jobs_in_parallel=parallel,
                              out_dir=out_dir, count=not no_count, on_job=on_job, json_out=json_out,
                              reporter_for=_job_progress,
                              recorded=not no_store)
    out.print(_summary_table(doc))
    for c in doc["cases"]:
        if c["status"] != "passed":
            out.print(f"  [{STYLE.get(c['status'], '')}]{c['status']}[/] {escape(c['id'])}: {escape(str(c['message']))}",
                      soft_wrap=True, highlight=False)
    passed = sum(c["status"] == "passed" for c in doc["cases"])
    verdict = "[bold green]PASSED[/]" if doc["status"] == "passed" else f"[bold red]{doc['status'].upper()}[/]"
    out.print(f"{verdict}  {passed}/{len(doc['cases'])} checks passed in {len(doc['jobs'])} jobs "
              f"({doc['duration_s']:.1f} s)")
    if doc.get("error"):  # a copy of the suite document could not be written
        err.print(f"[bold red]error:[/] {escape(doc['error']['message'])}", soft_wrap=True, highlight=False)
    if store_import is not None:
        store_import.join()
        from ..results.store import ResultStore, store_url

        try:
            store = ResultStore(store_url(config.store, config.root))
            run_id = store.record(doc)
            identity = doc["identity"]
            out.print(f"  stored as run {run_id} in {store.safe_url()} ({describe_identity(identity)})",
                      highlight=False, markup=False)
            if not identity["complete"] or identity["clean"] is False:
                out.print("  `hil compare` and `hil history` skip this run unless given --allow-partial / "
                          "--allow-dirty: only complete runs from a clean tree stand for a commit", highlight=False)
        except HilError as exc:  # the suite's own results are already on disk
            err.print(f"[bold red]error:[/] could not store the results: {escape(str(exc))}", soft_wrap=True)
            out.print(f"  suite: {path}", markup=False, highlight=False)
            sys.exit(3)
    out.print(f"  suite: {path}", markup=False, highlight=False)
    sys.exit(doc["exit_code"])
