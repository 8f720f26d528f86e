"""`hil merge`: shard results into one suite document."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..results.terminal import make_console

log = logging.getLogger(__name__)

out = make_console()


@click.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the merged hil.suite/1 document.")
@click.option("--store", "store_spec", metavar="URL_OR_PATH",
              help="Also record the merged run in this result store (SQLite path or postgresql:// URL); "
                   "run the shards with --no-store so only the whole run is recorded.")
@click.option("--partial", is_flag=True,
              help="Merge even when shards of the i/N split are missing (a shard's CI job crashed): the "
                   "document is marked incomplete and its status covers only the jobs that ran.")
def command(shards, out_path, store_spec, partial) -> None:
    """Merge the suite.json of every shard of one `hil test --shard i/N` run.

    The shards must be of the same suite and commit and hold different
    jobs; job result paths are made absolute so the merged document can
    live anywhere. Its status and exit_code are those `hil test` would give
    for all the jobs at once (harness/verdict.py); `hil merge` itself exits 0
    once the document is written. Every shard of the split must be given
    (exit 2 naming the missing ones) unless --partial.
    """
    from ..results.result import write_json_atomic
    from ..results.store import ResultStore, store_url
    from ..suite import merge

    doc = merge(list(shards), recorded=bool(store_spec), partial=partial)
    write_json_atomic(out_path, doc)
    passed = sum(c["status"] == "passed" for c in doc["cases"])
    out.print(f"merged {len(shards)} shards: {len(doc['jobs'])} jobs, {passed}/{len(doc['cases'])} checks passed, "
              f"{doc['status']} (exit status {doc['exit_code']}, as `hil test` of all of them) -> {out_path}", markup=False)
    missing = sorted(set(doc["identity"].get("jobs_defined") or []) - {j["id"] for j in doc["jobs"]})
    if missing:
        out.print(f"  incomplete: {len(missing)} job(s) of the suite are in no shard given "
                  f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})", markup=False)
    if store_spec:
        store = ResultStore(store_url(store_spec, Path.cwd()))
        out.print(f"  stored as run {store.record(doc)} in {store.safe_url()}", markup=False)
