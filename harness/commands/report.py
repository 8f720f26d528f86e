"""`hil report`: JUnit XML, Markdown and HTML reports of a suite run, and
HTML and Markdown reports of a single run (`hil run`'s result.json)."""

from __future__ import annotations

import json
import logging
import re
import sys
import tomllib
from pathlib import Path

import click

from ..errors import UsageError
from ..paths import refuse_overwriting_inputs
from ..results.html import TREND_SCALES
from ..results.terminal import make_console

log = logging.getLogger(__name__)

err = make_console(stderr=True)

SUITE_SCHEMA = "hil.suite/1"
RESULT_SCHEMA = "hil.result/1"
RUNS_DIR = Path(".hil") / "runs"          # where `hil run` keeps its run directories (harness/runner.py)
SUITES_DIR = ".hil/suites"                # project.results' default (harness/config.py)
COMPARE_SCHEMA = "hil.compare/1"
SUITE_STATUSES = {"passed", "failed", "error", "interrupted", "running"}
CASE_STATUSES = {"passed", "failed", "error", "skipped"}
WHAT = {"hil.suite": "a suite run (`hil test`, `hil merge`)", "hil.compare": "a comparison (`hil compare --json`)",
        "hil.result": "one run of one model (`hil run`)"}


# -- reading and checking the input documents -------------------------------------------------------

def _read_json(path: Path, role: str) -> dict:
    if not path.exists():
        raise UsageError(f"{role} {path}: no such file",
                         hint="check the path; `hil test` writes <results>/<time>-<commit>/suite.json "
                              "(and --json PATH)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{role} {path}: cannot be read: {exc}", hint="pass a JSON file written by hil") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{role} {path} is not JSON ({exc})",
                         hint="pass the JSON document itself; a truncated file means its run was killed "
                              "while writing - run it again") from exc
    if not isinstance(doc, dict) or "schema" not in doc:
        raise UsageError(f"{role} {path} is not a hil result document (it has no \"schema\" field)",
                         hint="pass a document written by hil: suite.json of `hil test`")
    return doc


def _check_schema(doc: dict, path: Path, role: str, expected: str, option_hint: str) -> None:
    schema = str(doc.get("schema"))
    if schema == expected:
        return
    family, _, version = schema.partition("/")
    want_family, _, want_version = expected.partition("/")
    if family == want_family:
        newer = version.isdigit() and int(version) > int(want_version)
        raise UsageError(f"{role} {path} is {schema}, but this hil reads {expected}",
                         hint="upgrade hil (pip install -U hil) to read newer documents" if newer
                         else f"re-run the command that wrote it with this hil to get {expected}")
    if family in WHAT:
        raise UsageError(f"{role} {path} is {schema}: {WHAT[family]}, not {WHAT[want_family]}", hint=option_hint)
    raise UsageError(f"{role} {path} has schema {schema!r}, not {expected}", hint=option_hint)


def _require(cond: bool, path: Path, role: str, where: str, what: str) -> None:
    if not cond:
        raise UsageError(f"{role} {path}: {where} {what}",
                         hint="the document is damaged or was edited by hand; write it again with hil")


def load_suite_document(path: Path, role: str = "suite") -> dict:
    """A hil.suite/1 document (a file, or a suite directory holding suite.json)."""
    path = Path(path)
    if path.is_dir():
        if not (path / "suite.json").is_file():
            raise UsageError(f"{role} {path} is a directory without a suite.json",
                             hint="pass the suite.json that `hil test` wrote (or its directory)")
        path = path / "suite.json"
    doc = _read_json(path, role)
    hint = ("pass the suite.json of `hil test` (or of `hil merge`); a comparison goes to --compare"
            if doc.get("schema") != RESULT_SCHEMA else
            f"{role} takes suite runs (`hil test`); report this run alone with `hil report {path} --html OUT.html`")
    _check_schema(doc, path, role, SUITE_SCHEMA, hint)
    for key in ("jobs", "cases"):
        _require(isinstance(doc.get(key), list), path, role, f'"{key}"', "is missing or not a list")
    _require(isinstance(doc.get("git", {}), dict), path, role, '"git"', "is not an object")
    _require(doc.get("status") in SUITE_STATUSES, path, role, '"status"',
             f"is {doc.get('status')!r}, not one of {', '.join(sorted(SUITE_STATUSES))}")
    for i, job in enumerate(doc["jobs"]):
        _require(isinstance(job, dict), path, role, f"jobs[{i}]", "is not an object")
        for key in ("platform", "model"):
            _require(isinstance(job.get(key), str), path, role, f"jobs[{i}].{key}", "is missing")
        _require(isinstance(job.get("metrics") or {}, dict), path, role, f"jobs[{i}].metrics", "is not an object")
    for i, case in enumerate(doc["cases"]):
        _require(isinstance(case, dict), path, role, f"cases[{i}]", "is not an object")
        for key in ("platform", "model", "check"):
            _require(isinstance(case.get(key), str), path, role, f"cases[{i}].{key}", "is missing")
        _require(case.get("status") in CASE_STATUSES, path, role, f"cases[{i}].status",
                 f"is {case.get('status')!r}, not one of {', '.join(sorted(CASE_STATUSES))}")
    doc.setdefault("git", {})
    return doc


def load_result_document(path: Path) -> dict:
    """A hil.result/1 document (a file, or a run directory holding result.json)."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    doc = _read_json(path, "result")
    _check_schema(doc, path, "result", RESULT_SCHEMA, "pass the result.json of `hil run` (or its run directory)")
    _require(isinstance(doc.get("vectors", []), list), path, "result", '"vectors"', "is not a list")
    _require(isinstance(doc.get("summary", {}), dict), path, "result", '"summary"', "is not an object")
    return doc


def document_kind(path: Path) -> str:
    """"run" for a hil.result/1 (file or run directory), else "suite" (whose
    loader explains what is wrong with anything else)."""
    path = Path(path)
    if path.is_dir():
        return "run" if (path / "result.json").is_file() and not (path / "suite.json").is_file() else "suite"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "suite"
    schema = re.search(r'"schema"\s*:\s*"([^"]*)"', text[:4096])  # hil writes "schema" first
    if schema is None:
        try:
            doc = json.loads(text)
        except ValueError:
            return "suite"
        return "run" if isinstance(doc, dict) and str(doc.get("schema")).startswith("hil.result/") else "suite"
    return "run" if schema.group(1).startswith("hil.result/") else "suite"


def _suites_dir(config_path: Path | None) -> Path:
    """project.results of hil.toml (read for this key only: a report needs no
    valid project), else .hil/suites."""
    config = Path(config_path or "hil.toml")
    if not config.is_file():
        if config_path:
            raise UsageError(f"no project file at {config}", hint="pass the hil.toml of the project, or leave --config out")
        return Path(SUITES_DIR)
    try:
        project = tomllib.loads(config.read_text(encoding="utf-8")).get("project") or {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{config}: cannot be read for project.results: {exc}", hint="fix the file, or pass a "
                         "result.json / suite.json instead of --latest") from exc
    results = project.get("results", SUITES_DIR) if isinstance(project, dict) else SUITES_DIR
    return config.parent / str(results)


def latest_document(config_path: Path | None) -> tuple[str, Path, str]:
    """The newest run of either kind, by when its document was last written:
    a `hil run` directory under .hil/runs/ or a `hil test` run under the
    project's results directory. Returns (kind, path, what was skipped)."""
    found = []
    suites = _suites_dir(config_path)
    for kind, pattern, root in (("run", "*/result.json", RUNS_DIR), ("suite", "*/suite.json", suites)):
        for path in root.glob(pattern) if root.is_dir() else ():
            try:
                found.append((path.stat().st_mtime, kind, path))
            except OSError:
                continue
    if not found:
        raise UsageError(f"--latest: no run found: no {RUNS_DIR}/*/result.json and no {suites}/*/suite.json "
                         f"below {Path.cwd()}",
                         hint="run `hil run ...` or `hil test` here first, or pass the result.json / suite.json "
                              "to report")
    found.sort(key=lambda f: f[0])
    _, kind, path = found[-1]
    other = next((f for f in reversed(found) if f[1] != kind), None)
    skipped = f"; the newest {'single' if other[1] == 'run' else 'suite'} run is older: {other[2]}" if other else ""
    return kind, path, skipped


def _describe(kind: str, doc: dict) -> str:
    if kind == "run":
        model = Path(str((doc.get("model") or {}).get("path") or "?")).name
        return (f"hil run of {model} on {(doc.get('platform') or {}).get('name', '?')}, {doc.get('status')}, "
                f"started {doc.get('started', '?')}")
    commit = (doc.get("git") or {}).get("commit")
    return (f"hil test of {doc.get('suite') or 'a suite'} at {(commit or 'no commit')[:10]}, {doc.get('status')}, "
            f"started {doc.get('started', '?')}")


def load_compare_document(path: Path) -> dict:
    path = Path(path)
    doc = _read_json(path, "comparison")
    _check_schema(doc, path, "comparison", COMPARE_SCHEMA,
                  "--compare takes the file of `hil compare BASE HEAD --json compare.json`; "
                  "a suite goes first, as SUITE, or to --history")
    _require(isinstance(doc.get("changes"), list), path, "comparison", '"changes"', "is missing or not a list")
    _require(isinstance(doc.get("cases", []), list), path, "comparison", '"cases"', "is not a list")
    _require(isinstance(doc.get("verdict"), str), path, "comparison", '"verdict"', "is missing")
    for i, change in enumerate(doc["changes"]):
        _require(isinstance(change, dict) and isinstance(change.get("metric"), str), path, "comparison",
                 f"changes[{i}]", "has no metric")
    for key in ("base", "head"):
        doc[key] = doc.get(key) if isinstance(doc.get(key), dict) else {}
    doc.setdefault("cases", [])
    return doc


def load_history(paths: tuple[Path, ...]) -> list[dict]:
    """Suite documents for the trends: files in the order given; a directory
    contributes every suite.json below it, oldest run first."""
    docs = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and not (p / "suite.json").is_file():
            found = sorted(p.rglob("suite.json"))
            if not found:
                raise UsageError(f"history {p}: no suite.json below this directory",
                                 hint="pass suite.json files of earlier `hil test` runs, or their results "
                                      "directory (project.results in hil.toml, default .hil/suites)")
            batch = [with_file_paths(load_suite_document(f, "history"), f) for f in found]
            docs += sorted(batch, key=lambda d: str(d.get("started") or ""))
        else:
            docs.append(with_file_paths(load_suite_document(p, "history"), p / "suite.json" if p.is_dir() else p))
    return docs


def parse_links(values: tuple[str, ...]) -> list[tuple[str, str]]:
    links = []
    for v in values:
        label, sep, url = v.partition("=")
        if not sep:
            label, url = Path(v).name or v, v
        if not url or not label:
            raise UsageError(f"--link {v!r} is not LABEL=URL", hint='e.g. --link "HTML report=report.html"')
        links.append((label.strip(), url.strip()))
    return links


# -- writing ---------------------------------------------------------------------------------------------

def write_output(target: str, text: str, what: str) -> str:
    """Write to a file atomically (temporary file + rename), or to stdout for
    '-'. Special files (a pipe, /dev/stdout) are written in place."""
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return "stdout"
    from ..results.result import write_text_atomic

    path = Path(target)
    try:
        if path.exists() and not path.is_file():
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            return str(path)
        write_text_atomic(path, text, f"the {what}")  # a full or read-only disk: DiskError, exit 3
    except OSError as exc:
        raise UsageError(f"cannot write the {what} to {path}: {exc.strerror or exc}",
                         hint="choose a path in a directory you can write to") from exc
    return str(path)


# -- the command -----------------------------------------------------------------------------------------

@click.command("report")
@click.argument("document", metavar="[SUITE.json|RESULT.json]", required=False, type=click.Path(path_type=Path))
@click.option("--latest", is_flag=True, help="Report the newest run here instead: a `hil run` under .hil/runs/ or "
              "a `hil test` under the project's results directory, whichever was written last (it says which).")
@click.option("--junit", metavar="OUT.xml", help="Write JUnit XML: one testcase per (platform, model, check), "
              "one testsuite per platform. '-' for stdout. Suites only.")
@click.option("--markdown", metavar="OUT.md", help="Write the Markdown summary (for $GITHUB_STEP_SUMMARY or a "
              "pull-request comment). '-' for stdout; the default when no output is named.")
@click.option("--html", metavar="OUT.html", help="Write the single-file HTML report with plots (works offline).")
@click.option("--compare", "compare_path", metavar="COMPARE.json", type=click.Path(path_type=Path),
              help="A `hil compare --json` document: adds the verdict and the changed metrics.")
@click.option("--history", "history_paths", metavar="SUITE.json|DIR", multiple=True, type=click.Path(path_type=Path),
              help="Earlier suite runs for the HTML trends, oldest first (repeatable); a directory adds "
                   "every suite.json below it.")
@click.option("--history-from-store", is_flag=True,
              help="Take the HTML trends from the result store (hil.toml's project.store, or --store).")
@click.option("--store", metavar="URL", help="With --history-from-store: a store path or postgresql:// URL.")
@click.option("--branch", metavar="NAME", help="With --history-from-store: only runs on this branch.")
@click.option("--limit", default=30, show_default=True, metavar="N",
              type=click.IntRange(min=1), help="With --history-from-store: the newest N runs.")
@click.option("--trend-scale", type=click.Choice(TREND_SCALES), default="relative", show_default=True,
              help="HTML trends: each series' %% change from its first commit (a small model's +83%% shows next "
                   "to a large one's), a log axis, or absolute values.")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Project file for --history-from-store and --latest [default: ./hil.toml].")
@click.option("--link", "links", metavar="LABEL=URL", multiple=True,
              help="A link to an artifact, listed in the Markdown and HTML (repeatable).")
@click.option("--title", metavar="TEXT", help="Heading of the Markdown and HTML [default: hil: <suite name>].")
@click.option("--max-rows", default=100, show_default=True, metavar="N", type=click.IntRange(min=1),
              help="Longest Markdown table; the rest is counted, not listed (PR comments hold 65,536 characters).")
def command(document, latest, junit, markdown, html, compare_path, history_paths, history_from_store, store, branch,
            limit, trend_scale, config_path, links, title, max_rows) -> None:
    """Write reports of a suite run (hil.suite/1: JUnit XML, Markdown, HTML)
    or of a single run (hil.result/1: HTML, Markdown).

    SUITE.json is the suite.json of `hil test` or of `hil merge` (a suite
    directory works too); RESULT.json the result.json of `hil run` (or its
    run directory). --latest takes the newest of either here and names it.
    With no output option, the Markdown summary goes to stdout. Reports are
    written even when checks failed: the verdict's exit status is `hil
    test`'s and `hil compare`'s job.

    \b
    Examples:
      hil report suite.json --junit junit.xml --html report.html
      hil report suite.json --compare compare.json --markdown "$GITHUB_STEP_SUMMARY" \\
          --link "HTML report=https://ci.example/artifacts/report.html"
      hil report suite.json --html report.html --history .hil/suites
      hil report suite.json --html report.html --history-from-store --branch main
      hil report .hil/runs/<id>/result.json --html run.html
      hil report --latest --html latest.html

    \b
    The JUnit file has one testcase per (platform, model, check), classname
    hil.<platform>.<model>, with the message, measured value and limit of
    each failure; the HTML files have no scripts or external assets. A
    run's page lists every vector (failing first, the rest in collapsed
    pages), the per-operator profile, memory, the first divergence and the
    link statistics.

    Exit status: 0 reports written, 2 bad input (a missing file, not a
    hil.suite/1 or hil.result/1 document, a version this hil does not read,
    --latest with no run).
    """
    if latest and document:
        raise UsageError(f"--latest and {document} name two documents", hint="pass one of them")
    if latest:
        kind, document, skipped = latest_document(config_path)
    elif document is None:
        raise UsageError("no document to report", hint="pass a suite.json (hil test) or result.json (hil run), "
                                                        "or --latest for the newest run here")
    else:
        kind, skipped = document_kind(document), ""
    read = document / ("result.json" if kind == "run" else "suite.json") if document.is_dir() else document
    for option, path in (("--junit", junit), ("--markdown", markdown), ("--html", html)):  # never over what is read
        refuse_overwriting_inputs(option, Path(path) if path and path != "-" else None,
                                  {"the document reported": read, "--compare": compare_path})
    if kind == "run":
        suite_only = [name for name, given in (("--junit", junit), ("--compare", compare_path),
                                               ("--history", history_paths), ("--history-from-store",
                                                                              history_from_store)) if given]
        if suite_only:
            raise UsageError(f"{document} is {RESULT_SCHEMA}: one run of one model (`hil run`); "
                             f"{', '.join(suite_only)} {'is' if len(suite_only) == 1 else 'are'} for suite runs",
                             hint="for JUnit, comparisons and trends run the model from hil.toml with `hil test`; "
                                  f"for this run: hil report {document} --html OUT.html (or --markdown)")
        result = load_result_document(document)
        source = document / "result.json" if document.is_dir() else document
        if latest:
            err.print(f"--latest: the newest is a single run: {source} ({_describe('run', result)}){skipped}",
                      highlight=False, soft_wrap=True, markup=False)
        _write_run_reports(result, source, markdown, html, parse_links(links), title, max_rows)
        return

    doc = load_suite_document(document)
    suite_path = document / "suite.json" if document.is_dir() else document
    if latest:
        err.print(f"--latest: the newest is a suite run: {suite_path} ({_describe('suite', doc)}){skipped}",
                  highlight=False, soft_wrap=True, markup=False)
    compare = load_compare_document(compare_path) if compare_path else None
    link_list = parse_links(links)
    history = load_history(history_paths)
    if history_from_store:
        from .history import open_store

        db, name = open_store(config_path, store)
        history += [with_file_paths(h) for h in db.history(suite=doc.get("suite") or name, branch=branch, limit=limit)]
    if (history_paths or history_from_store) and not html:
        err.print("note: --history is used by the HTML report only; add --html OUT.html", highlight=False)
    if compare:
        head_commit, suite_commit = compare["head"].get("commit"), doc["git"].get("commit")
        if head_commit and suite_commit and head_commit != suite_commit:
            err.print(f"warning: the comparison's head is {head_commit[:10]}, the suite is {suite_commit[:10]}: "
                      "the Markdown mixes two commits", highlight=False)
    if not (junit or markdown or html):
        markdown = "-"

    written = []
    if junit:
        from ..results.junit import build_junit, serialize

        root = build_junit(doc, suite_path)
        written.append((write_output(junit, serialize(root), "JUnit XML"),
                        f"{root.get('tests')} testcases: {root.get('failures')} failures, {root.get('errors')} "
                        f"errors, {root.get('skipped')} skipped"))
    if html:
        from ..results.html import render_html

        report_dir = None if html == "-" else Path(html).resolve().parent
        page = render_html(with_file_paths(doc, suite_path), history, compare,
                           link_list, title, report_dir=report_dir, trend_scale=trend_scale)
        written.append((write_output(html, page, "HTML report"), f"{len(history) + 1} suite runs in the trends"))
    if markdown:
        from ..results.markdown import render_markdown

        written.append((write_output(markdown, render_markdown(doc, compare, link_list, title, max_rows),
                                     "Markdown summary"), "Markdown summary"))
    _print_written(written)


def _print_written(written: list[tuple[str, str]]) -> None:
    for where, what in written:
        if where != "stdout":
            err.print(f"wrote {where} ({what})", highlight=False, soft_wrap=True, markup=False)


def _write_run_reports(result: dict, source: Path, markdown, html, links, title, max_rows) -> None:
    from ..results.run_report import render_run_html, render_run_markdown

    if not (markdown or html):
        markdown = "-"
    written = []
    what = f"{len(result.get('vectors') or [])} vectors, status {result.get('status')}"
    if html:
        report_dir = None if html == "-" else Path(html).resolve().parent
        written.append((write_output(html, render_run_html(result, source.resolve(), links, title, report_dir),
                                     "HTML report"), what))
    if markdown:
        written.append((write_output(markdown, render_run_markdown(result, source, links, title, max_rows),
                                     "Markdown summary"), what))
    _print_written(written)


def with_file_paths(doc: dict, suite_path: Path | None = None) -> dict:
    """The suite with each job's result.json and emulator log as absolute
    paths (they are written relative to the suite document), and the log
    found next to the result when the document does not name it; the
    report links to both. Documents from the store keep what they hold."""
    from ..results.result import emulator_log

    base = Path(suite_path).resolve().parent if suite_path else None
    jobs = []
    for job in doc.get("jobs", []):
        job = dict(job)
        for key in ("result", "emulator_log"):
            if job.get(key) and base is not None and not Path(job[key]).is_absolute():
                job[key] = str(base / job[key])
        if job.get("result") and not job.get("emulator_log"):
            log = emulator_log(Path(job["result"]).parent)
            job["emulator_log"] = str(log) if log else None
        jobs.append(job)
    return {**doc, "jobs": jobs}
