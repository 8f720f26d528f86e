"""An offline, single-file HTML report of a suite run, with plots.

Input: the newest `hil.suite/1` document (the head), optionally the suite
documents before it (oldest first, e.g. `ResultStore.history()`), and
optionally a `hil.compare/1` document. Output: one HTML file with

- the status, the pass/fail matrix of platform x model and the failing checks;
- trends per commit of the count per inference, the sizes (flash, RAM,
  arena) and the energy estimate, one line per (platform, model);
- per-operator bars for each (platform, model) of the head suite;
- the changes against the base when a comparison is given; every job and case.

Plots are SVG drawn by matplotlib (Agg-free SVG canvas, no pyplot state)
and inlined in the page; there is no script and no external asset, so the
file opens from disk, from a CI artifact or from an e-mail, offline.
matplotlib is the `plots` extra: without it the report is still written,
tables and all, with a one-line note where each plot would be (a CI job
that only needs the verdict should not fail for want of a plotting library).
"""

from __future__ import annotations

import functools
import io
import logging
import re
import time
from collections.abc import Sequence
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from .. import extras
from ..power.energy import basis_label
from . import markdown as md

log = logging.getLogger(__name__)
TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_OPERATOR_BARS = 40
SIZE_METRICS = (("flash_bytes", "flash"), ("ram_bytes", "RAM"), ("arena_bytes", "tensor arena (high-water)"))
#: series colours without matplotlib (its tab10 palette)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
STATUS_CLASS = {"passed": "passed", "failed": "failed", "error": "error", "skipped": "skipped",
                "interrupted": "error", "regressed": "failed", "improved": "passed", "incomparable": "error"}


# -- data -----------------------------------------------------------------------------------------------

def trend_points(history: list[dict], head: dict | None) -> list[dict]:
    """One point per commit, oldest first. Documents of one commit (shards,
    re-runs) are merged job by job, the later document winning; the head
    suite is the last point. Per job the point keeps its metrics, its status
    (failing jobs are marked in the charts) and its files (result.json and
    the emulator's log, linked from the report)."""
    docs = list(history) + ([head] if head is not None else [])
    points: dict[object, dict] = {}
    for n, doc in enumerate(docs):
        git = doc.get("git") or {}
        key = git.get("commit") or f"#{n}"
        point = points.get(key)
        if point is None:
            point = points[key] = {"commit": git.get("commit"), "jobs": {}, "status": {}, "files": {}, "dirty": False}
        point["label"] = md.short(git.get("commit"), 7) if git.get("commit") else f"run {n + 1}"
        point["dirty"] = point["dirty"] or bool(git.get("dirty"))
        point["subject"] = git.get("subject")
        point["started"] = doc.get("started")
        failing_checks = {f"{c.get('platform')}/{c.get('model')}" for c in doc.get("cases", [])
                          if c.get("status") in md.FAILING}
        for job in doc.get("jobs", []):
            job_id = job.get("id") or f"{job.get('platform')}/{job.get('model')}"
            point["jobs"][job_id] = job.get("metrics") or {}
            # a run that passed can still fail a suite check (accuracy, a budget): the job failed at this commit
            point["status"][job_id] = ("failed" if job.get("status") == "passed" and job_id in failing_checks
                                       else job.get("status"))
            point["files"][job_id] = {"result": job.get("result"), "emulator_log": job.get("emulator_log")}
    out = list(points.values())
    for p in out:
        p["failed"] = any(s in md.FAILING for s in p["status"].values())
        if p["dirty"]:
            p["label"] += "*"
    return out


def series_colours(points: list[dict]) -> dict[str, str]:
    """One colour per job (platform/model) for every chart of the report:
    the same series keeps its colour in the count, size and energy trends
    and in the legend, whichever metrics it has."""
    if not extras.available("matplotlib"):
        job_ids = sorted({job_id for p in points for job_id in p["jobs"]}, key=str)
        return {job_id: PALETTE[n % len(PALETTE)] for n, job_id in enumerate(job_ids)}
    import matplotlib
    from matplotlib.colors import to_hex

    job_ids = sorted({job_id for p in points for job_id in p["jobs"]}, key=str)
    cmap = matplotlib.colormaps["tab10" if len(job_ids) <= 10 else "tab20"]
    return {job_id: to_hex(cmap(n % cmap.N)) for n, job_id in enumerate(job_ids)}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-")


def file_link(path: str | None, report_dir: Path | None) -> str | None:
    """A link to a run's file: relative when the report sits above it (the
    report travels with the run directories, e.g. one CI artifact), else
    an absolute file: URL (the report was written elsewhere on this host)."""
    if not path:
        return None
    target = Path(path)
    if report_dir is not None and target.is_absolute():
        try:
            return target.relative_to(report_dir.resolve()).as_posix()
        except ValueError:
            return target.as_uri()
    return target.as_uri() if target.is_absolute() else target.as_posix()


def matrix(suite: dict) -> dict:
    """Pass/fail matrix: rows platforms, columns models."""
    jobs = {(j.get("platform"), j.get("model")): j for j in suite.get("jobs", [])}
    cases: dict[tuple, list[dict]] = {}
    for c in suite.get("cases", []):
        cases.setdefault((c.get("platform"), c.get("model")), []).append(c)
    platforms = sorted({p for p, _ in jobs} | {p for p, _ in cases}, key=str)
    models = sorted({m for _, m in jobs} | {m for _, m in cases}, key=str)
    rows = []
    for p in platforms:
        cells: list[dict] = []
        for m in models:
            job, cs = jobs.get((p, m)), cases.get((p, m), [])
            if job is None and not cs:
                cells.append({"status": "missing", "text": "not run", "detail": "", "failing": []})
                continue
            statuses = {c.get("status") for c in cs}
            status = ("error" if "error" in statuses else "failed" if "failed" in statuses
                      else (job or {}).get("status") or ("passed" if cs else "error"))
            passed = sum(c.get("status") == "passed" for c in cs)
            failing = [c.get("check") for c in cs if c.get("status") in md.FAILING]
            cells.append({"status": STATUS_CLASS.get(status, "error"), "text": status,
                          "detail": f"{passed}/{len(cs)} checks", "failing": failing})
        rows.append({"platform": p, "cells": cells})
    return {"models": models, "rows": rows}


def job_rows(suite: dict) -> list[dict]:
    by_job: dict[str, list[dict]] = {}
    for c in suite.get("cases", []):
        by_job.setdefault(f"{c.get('platform')}/{c.get('model')}", []).append(c)
    rows = []
    for j in suite.get("jobs", []):
        m = j.get("metrics") or {}
        cs = by_job.get(j.get("id") or f"{j.get('platform')}/{j.get('model')}", [])
        kind = m.get("count_kind")
        rows.append({
            "platform": j.get("platform"), "model": j.get("model"), "status": j.get("status") or "?",
            "class": STATUS_CLASS.get(j.get("status"), "error"),
            "checks": f"{sum(c.get('status') == 'passed' for c in cs)}/{len(cs)}",
            "count": md.fmt_value(m.get("count"), "count") + (f" {kind}" if kind and m.get("count") is not None
                                                             else ""),
            "energy": md.energy_cell(m),
            "estimate": md.estimate_cell(m),
            "flash": md.fmt_value(m.get("flash_bytes"), "flash_bytes"),
            "ram": md.fmt_value(m.get("ram_bytes"), "ram_bytes"),
            "arena": md.fmt_value(m.get("arena_bytes"), "arena_bytes"),
            "model_size": md.fmt_value(m.get("model_bytes"), "model_bytes"),
            "accuracy": md.fmt_value(m.get("accuracy"), "accuracy"),
            "result": j.get("result"), "error": md.clean(j.get("error")) or None,
            "attempts": md.attempts_text(j),  # a board-farm job run again on another place (harness/farm.py)
        })
    return rows


def case_rows(cases: list[dict]) -> list[dict]:
    return [{"id": c.get("id"), "platform": c.get("platform"), "model": c.get("model"), "check": c.get("check"),
             "status": c.get("status"), "class": STATUS_CLASS.get(c.get("status") or "", "error"),
             "message": md.clean(c.get("message")), "measured": md.case_value(c, "measured"),
             "limit": md.case_value(c, "limit")} for c in cases]


# -- plots ----------------------------------------------------------------------------------------------
@functools.cache
def _warn_no_plots() -> None:
    log.warning("HTML report without plots: matplotlib is not installed (%s)", extras.install_hint("matplotlib"))


def plots_missing() -> Markup:
    """What stands where a plot would be when matplotlib is not installed."""
    _warn_no_plots()
    return Markup('<p class="muted plots-missing">Plot left out: matplotlib is not installed '
                  f"(<code>{extras.install_hint('matplotlib')}</code>).</p>")



def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def svg_of(fig, prefix: str) -> Markup:
    """The figure as an inline <svg>: no XML prolog, ids made unique per
    figure (several SVGs share one HTML document), scalable by CSS."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": prefix}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)",
                 lambda m: f"url(#{prefix}-{m.group(1)})" if m.group(1) in ids else m.group(0), svg)
    svg = re.sub(r'((?:xlink:)?href)="#([^"]+)"',
                 lambda m: f'{m.group(1)}="#{prefix}-{m.group(2)}"' if m.group(2) in ids else m.group(0), svg)
    svg = svg.replace("<svg ", '<svg role="img" class="plot" ', 1)
    return Markup(svg.strip())


TREND_SCALES = ("relative", "log", "absolute")
FAILED_COLOUR = "#cf222e"
MARKERS = "osD^v<>ph*"


def _series(points: list[dict], metric: str, split_kind: bool = False) -> list[dict]:
    """[{label, job, values: value or None per point}], sorted by label."""
    series: dict[str, dict] = {}
    for i, p in enumerate(points):
        for job_id, m in p["jobs"].items():
            value = m.get(metric)
            if value is None:
                continue
            label = f"{job_id} ({m.get('count_kind')})" if split_kind and m.get("count_kind") else job_id
            series.setdefault(label, {"label": label, "job": job_id, "values": [None] * len(points)})
            series[label]["values"][i] = value
    return [series[k] for k in sorted(series)]


def relative_change(values: list) -> list:
    """Percent change of each value from the series' first value."""
    first = next((v for v in values if v is not None), None)
    if not first:
        return [None] * len(values)
    return [None if v is None else (v / first - 1.0) * 100.0 for v in values]


def _line_axes(ax, points: list[dict], series: list[dict], ylabel: str, colours: dict[str, str],
               scale: str = "absolute", divisor: float = 1.0, part: str = "") -> None:
    """One line per series in its report-wide colour; a red X on each point
    whose job failed at that commit, and failing commits' labels in red.
    `relative` plots each series' % change from its own first point, so a
    small model's +83% is as visible as a large one's; `log` keeps the
    values on a logarithmic axis."""
    import matplotlib

    xs = list(range(len(points)))
    order = list(colours)
    for s in series:
        values = [None if v is None else v / divisor for v in s["values"]]
        if scale == "relative":
            values = relative_change(values)
        pts = [(x, v) for x, v in zip(xs, values) if v is not None]
        n = order.index(s["job"]) if s["job"] in order else 0
        ax.plot([x for x, _ in pts], [v for _, v in pts], marker=MARKERS[n % len(MARKERS)], markersize=4,
                linewidth=1.5, color=colours.get(s["job"], "#57606a"), label=s["label"], gid=f"series-{slug(s['label'])}{part}",
                linestyle="--" if s["label"] != s["job"] and s["label"].endswith("(cycles)") else "-")
        failing = [(x, v) for x, v in pts if points[x]["status"].get(s["job"]) in md.FAILING]
        if failing:
            ax.plot([x for x, _ in failing], [v for _, v in failing], linestyle="none", marker="X", markersize=9,
                    color=FAILED_COLOUR, markeredgecolor="white", markeredgewidth=0.5, label="job failed at this commit",
                    gid=f"failed-{slug(s['label'])}{part}", zorder=5)
    ax.set_xticks(xs, [p["label"] for p in points], rotation=45 if len(points) > 8 else 0,
                  ha="right" if len(points) > 8 else "center", fontsize=8)
    for tick, p in zip(ax.get_xticklabels(), points):
        if p["failed"]:
            tick.set_color(FAILED_COLOUR)
            tick.set_fontweight("bold")
    ax.set_xlim(-0.5, len(points) - 0.5)
    ax.grid(True, alpha=0.3)
    if scale == "relative":
        ax.axhline(0.0, color="#57606a", linewidth=0.8)
        ax.set_ylabel("% change from first commit")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _pos=None: f"{v:+.3g}%"))
        return
    ax.set_ylabel(ylabel)
    if scale == "log":
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))


def _tick(value: float, _pos=None) -> str:
    """Axis numbers in full with thousands separators (no 1e6 offsets)."""
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def _legend(fig, axes) -> None:
    """One legend under the figure: each series once, and the failure mark."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", fontsize=8, frameon=False,
                   ncols=min(4, len(handles)))


def energy_label(points: list[dict]) -> str:
    """The energy trend's label from the jobs' `energy_basis` (one text when
    all agree, else each, e.g. measured on a board and estimated in QEMU)."""
    texts = sorted({basis_label(m.get("energy_basis")) for p in points for m in p["jobs"].values()
                    if m.get("energy_uj") is not None})
    return "; ".join(texts) or "estimate, unverified, band unknown"


def timing_trend_label(points: list[dict]) -> str:
    """The cycles trend's label: each timing model, clock and band seen."""
    from .compare import timing_label

    texts = sorted({timing_label(m.get("cycles_basis")) for p in points for m in p["jobs"].values()
                    if m.get("cycles_estimate") is not None})
    return "estimate: " + ("; ".join(texts) or "timing model")


SCALE_NOTE = {"relative": "each line is its series' change from its own first commit, in percent (absolute values "
                          "in the table below)",
              "log": "logarithmic axis", "absolute": "absolute values"}


def trend_figures(points: list[dict], colours: dict[str, str] | None = None, scale: str = "relative") -> list[dict]:
    """Counts, sizes and energy per commit, each series in its colour."""
    figures: list[dict] = []
    if not points:
        return figures
    if not extras.available("matplotlib"):
        return [{"id": "trend-plots", "svg": plots_missing(), "caption": ""}]
    colours = colours or series_colours(points)
    commits = f"{len(points)} commit{'s' if len(points) != 1 else ''}"
    how = SCALE_NOTE[scale]
    failed = " A red X marks a job that failed at that commit; red commit labels: the suite failed there."

    kinds = sorted({m.get("count_kind") for p in points for m in p["jobs"].values()
                    if m.get("count") is not None and m.get("count_kind")})
    counts = _series(points, "count", split_kind=len(kinds) > 1)
    if counts:
        fig = _figure(9, 3.6)
        ax = fig.add_subplot()
        _line_axes(ax, points, counts, " / ".join(kinds) + " per inference" if kinds else "count per inference",
                   colours, scale)
        ax.set_title("Count per inference (median over the vectors)", fontsize=10, loc="left")
        _legend(fig, [ax])
        note = " QEMU counts are instructions, not cycles." if "instructions" in kinds else ""
        figures.append({"id": "trend-count", "title": "Counts per commit",
                        "caption": f"Median count per inference over {commits}; {how}.{note}{failed}",
                        "svg": svg_of(fig, "tc")})

    def labelled(series: list[dict], label: str, ylabel: str, title: str, fid: str, caption: str, prefix: str) -> None:
        """An estimate's chart: its label in the axes' title and the caption."""
        fig = _figure(9, 3.6)
        ax = fig.add_subplot()
        _line_axes(ax, points, series, ylabel, colours, scale)
        ax.set_title(f"{title} per inference ({label})", fontsize=10, loc="left")
        _legend(fig, [ax])
        figures.append({"id": fid, "title": f"{title} per commit", "label": label, "caption": caption,
                        "svg": svg_of(fig, prefix)})

    estimates = _series(points, "cycles_estimate")
    if estimates:  # the timing model's estimate: its own chart, labelled with the models and bands
        label = timing_trend_label(points)
        labelled(estimates, label, "cycles per inference (estimate)", "Cycles estimate", "trend-cycles",
                 f"Median cycles estimate per inference over {commits} ({label}): the timing model's estimate from "
                 f"the QEMU cycle plugin (docs/counts.md), not a measurement; {how}.", "tcy")

    sizes = [(metric, name, _series(points, metric)) for metric, name in SIZE_METRICS]
    sizes = [s for s in sizes if s[2]]
    if sizes:
        fig = _figure(9, 3.8)
        axes = fig.subplots(1, len(sizes), squeeze=False)[0]
        for ax, (metric, name, series) in zip(axes, sizes):
            _line_axes(ax, points, series, "KiB", colours, scale, divisor=1024.0, part=f"-{metric}")
            ax.set_title(name, fontsize=10, loc="left")
        _legend(fig, axes)
        figures.append({"id": "trend-sizes", "title": "Sizes per commit",
                        "caption": f"Flash, RAM needed and the tensor arena's measured high-water mark, in KiB, "
                                   f"over {commits}; {how}.", "svg": svg_of(fig, "ts")})

    energy = _series(points, "energy_uj")
    if energy:
        label = energy_label(points)
        labelled(energy, label, "uJ per inference", "Energy", "trend-energy",
                 f"Energy per inference over {commits} ({label}): cycles / clock x active power from the platform's "
                 f"tagged power figures (see docs/counts.md); {how}.", "te")
    return figures


def trend_table(points: list[dict], colours: dict[str, str], report_dir: Path | None) -> list[dict]:
    """Per job and commit: the count, its change from the job's first
    commit, whether the job failed there, and links to its result.json and
    emulator log (the numbers behind the charts, and where to look)."""
    rows = []
    for job_id, colour in colours.items():
        counts = relative_change([p["jobs"].get(job_id, {}).get("count") for p in points])
        cells: list[dict | None] = []  # None: the job did not run at that commit
        for p, rel in zip(points, counts):
            if job_id not in p["jobs"]:
                cells.append(None)
                continue
            m, files = p["jobs"][job_id], p["files"].get(job_id) or {}
            cells.append({"count": md.fmt_value(m.get("count"), "count"),
                          "change": "" if rel is None else f"{rel:+.2f}%",
                          "status": p["status"].get(job_id) or "?",
                          "failed": p["status"].get(job_id) in md.FAILING,
                          "result": file_link(files.get("result"), report_dir),
                          "log": file_link(files.get("emulator_log"), report_dir)})
        rows.append({"job": job_id, "colour": colour, "cells": cells})
    return rows


def operator_chart(ops: list[dict], kind: str, title: str, prefix: str, colour: str = "#1f77b4") -> Markup:
    """Horizontal bars of the count per operator ({index, op, count}), in
    graph order; past MAX_OPERATOR_BARS the smallest are summed into one bar."""
    if not extras.available("matplotlib"):
        return plots_missing()
    import matplotlib

    total = sum(o["count"] for o in ops) or 1
    ordered = sorted(ops, key=lambda o: o.get("index", 0))
    if len(ordered) > MAX_OPERATOR_BARS:
        keep = {id(o) for o in sorted(ops, key=lambda o: -o["count"])[:MAX_OPERATOR_BARS - 1]}
        rest = [o for o in ordered if id(o) not in keep]
        ordered = [o for o in ordered if id(o) in keep]
        ordered.append({"index": None, "op": f"{len(rest)} other operators", "count": sum(o["count"] for o in rest)})
    labels = [f"#{o['index']} {o.get('op')}" if o.get("index") is not None else o["op"] for o in ordered]
    values = [o["count"] for o in ordered]
    fig = _figure(9, 0.8 + 0.24 * len(ordered))
    ax = fig.add_subplot()
    ys = list(range(len(ordered)))
    ax.barh(ys, values, color=colour, height=0.7)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{kind} per invoke (median)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.grid(True, axis="x", alpha=0.3)
    for y, v in zip(ys, values):
        ax.text(v, y, f" {v / total:.1%}", va="center", fontsize=7)
    ax.set_xlim(0, max(values) * 1.15 or 1)
    ax.set_title(title, fontsize=10, loc="left")
    return svg_of(fig, prefix)


def operator_figures(suite: dict, colours: dict[str, str] | None = None) -> list[dict]:
    """One horizontal bar chart per (platform, model) with operator counts,
    in the job's trend colour."""
    figures = []
    for n, job in enumerate(suite.get("jobs", [])):
        m = job.get("metrics") or {}
        ops = [o for o in m.get("operators") or [] if o.get("count") is not None]
        if not ops:
            continue
        total = sum(o["count"] for o in ops) or 1
        kind = m.get("count_kind") or "count"
        title = f"{job.get('platform')} / {job.get('model')}"
        job_id = job.get("id") or f"{job.get('platform')}/{job.get('model')}"
        figures.append({"id": f"ops-{n}", "title": title,
                        "caption": f"Median {kind} per operator ({len(ops)} operators, {total:,.0f} in all; "
                                   f"percentages are shares of that sum).",
                        "svg": operator_chart(ops, kind, title, f"op{n}", (colours or {}).get(job_id, "#1f77b4"))})
    return figures


# -- page -----------------------------------------------------------------------------------------------

def environment() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                       trim_blocks=True, lstrip_blocks=True)


def hil_version() -> str:
    try:
        from importlib.metadata import version

        return version("hil")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "dev"


def render_html(suite: dict, history: Sequence[dict] = (), compare: dict | None = None, links=(),
                title: str | None = None, report_dir: Path | None = None, trend_scale: str = "relative") -> str:
    """The report as one HTML document. `report_dir` is where it is written
    (links to the runs' files are relative below it); `trend_scale` is
    relative (each series' % change from its first commit), log or absolute."""
    points = trend_points(list(history), suite)
    colours = series_colours(points)
    jobs = job_rows(suite)
    for row, job in zip(jobs, suite.get("jobs", [])):
        row["result_link"] = file_link(job.get("result"), report_dir)
        row["log_link"] = file_link(job.get("emulator_log"), report_dir)
    git = suite.get("git") or {}
    counts = md.case_counts(suite)
    changes = []
    if compare:
        for c in md.changed_metrics(compare):
            m, u = c.get("metric", ""), c.get("unit")
            changes.append({"platform": c.get("platform"), "model": c.get("model"), "metric": md.metric_label(c),
                            "base": md.fmt_value(c.get("base"), m, u), "head": md.fmt_value(c.get("head"), m, u),
                            "delta": md.fmt_delta(c.get("delta"), m, u), "pct": md.fmt_pct(c.get("delta_pct")),
                            "threshold": md.fmt_threshold(c), "status": c.get("status"), "note": c.get("note"),
                            "class": STATUS_CLASS.get(c.get("status") or "", "")})
    context = {
        "title": title or f"hil: {suite.get('suite') or 'suite'}",
        "suite": suite, "git": git, "commit": git.get("commit"), "short": md.short(git.get("commit")),
        "status": suite.get("status") or "unknown", "status_class": STATUS_CLASS.get(suite.get("status") or "", "error"),
        "status_line": re.sub(r"\*\*(.*?)\*\*", r"\1", md.suite_status_line(suite)),
        "counts": counts, "total": sum(counts.values()),
        "matrix": matrix(suite), "failing": case_rows(md.failing_cases(suite)),
        "cases": case_rows(sorted(suite.get("cases", []), key=lambda c: str(c.get("id")))),
        "jobs": jobs,
        "trends": trend_figures(points, colours, trend_scale), "points": points, "trend_scale": trend_scale,
        "colours": colours, "trend_table": trend_table(points, colours, report_dir),
        "operators": operator_figures(suite, colours),
        "compare": compare, "changes": changes,
        "verdict_line": re.sub(r"\*\*(.*?)\*\*", r"\1", md.verdict_line(compare)) if compare else None,
        "case_changes": [c for c in (compare or {}).get("cases", []) if c.get("status") in ("regressed", "improved")],
        "links": list(links),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "version": hil_version(),
    }
    return environment().get_template("report.html.j2").render(**context)
