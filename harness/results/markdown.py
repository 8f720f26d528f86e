"""Markdown for a CI job summary or a pull-request comment.

From a `hil.compare/1` document (plus, optionally, the head `hil.suite/1`):
a verdict line in plain words, the table of metrics that changed, the checks
that changed and the checks that fail, and links to the artifacts. From a
`hil.suite/1` alone: a status line, the failing checks and one row per job.

Only GitHub-flavoured Markdown that GitLab renders too (pipe tables,
<details>); no emoji: the status is a word. Tables are capped (`max_rows`)
so the text stays well inside a PR comment's 65,536 characters and a job
summary's 1 MiB.
"""

from __future__ import annotations

import logging
import re

from ..power.energy import basis_label, format_estimate, sig3

log = logging.getLogger(__name__)

#: metric -> how a person calls it
METRIC_NAMES = {"count": "count", "energy_uj": "energy", "cycles_estimate": "cycles", "flash_bytes": "flash",
                "ram_bytes": "RAM",
                "arena_bytes": "arena", "model_bytes": "model size", "accuracy": "accuracy"}
#: order of change statuses in tables: what needs attention first
STATUS_ORDER = {"regressed": 0, "incomparable": 1, "new": 2, "removed": 3, "improved": 4, "unchanged": 5}
FAILING = ("failed", "error")


# -- formatting shared with the HTML report ---------------------------------------------------------

def short(commit: str | None, n: int = 10) -> str:
    return (commit or "")[:n] or "no commit"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def _unit_kind(metric: str, unit: str | None) -> str:
    if metric == "accuracy" or unit == "fraction":
        return "fraction"
    if metric.endswith("_bytes") or unit == "bytes":
        return "bytes"
    if metric == "energy_uj" or (unit or "").startswith("uJ"):
        return "energy"
    if metric == "count":
        return "count"
    if metric == "cycles_estimate":
        return "estimate"
    return "number"


def fmt_value(value, metric: str = "", unit: str | None = None) -> str:
    """A metric's value with its unit, for people."""
    if value is None:
        return "-"
    kind = _unit_kind(metric, unit)
    if kind == "fraction":
        return f"{value:.2%}"
    if kind == "bytes":
        return f"{value:,.0f} B"
    if kind == "energy":  # an estimate: 3 significant figures (the label goes with the column or cell)
        return f"{sig3(value)} uJ"
    if kind == "estimate":
        return sig3(value)
    if kind == "count" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def fmt_delta(delta, metric: str = "", unit: str | None = None) -> str:
    if delta is None:
        return "-"
    kind = _unit_kind(metric, unit)
    if kind == "fraction":
        return f"{delta * 100:+.2f} pp"
    if kind == "bytes":
        return f"{delta:+,.0f} B"
    if kind == "energy":
        return ("+" if delta >= 0 else "-") + f"{sig3(abs(delta))} uJ"
    if kind == "estimate":
        return ("+" if delta >= 0 else "-") + sig3(abs(delta))
    if kind == "count" or float(delta).is_integer():
        return f"{delta:+,.0f}"
    return f"{delta:+,.4g}"


def fmt_pct(pct) -> str:
    return "-" if pct is None else f"{pct:+.2f}%"


def fmt_threshold(change: dict) -> str:
    """`threshold` (hil compare) or `threshold_pct` (docs/results.md): a
    percentage growth, or for accuracy an absolute drop."""
    t = change.get("threshold", change.get("threshold_pct"))
    if t is None:
        return "-"
    if _unit_kind(change.get("metric", ""), change.get("unit")) == "fraction":
        return f"drop > {t * 100:g} pp"
    return f"> +{t:g}%"


def metric_label(change: dict) -> str:
    metric = change.get("metric") or ""
    name = METRIC_NAMES.get(metric, metric or "?")
    unit = change.get("unit") or ""
    if metric == "count" and unit:
        return f"count ({unit})"
    if metric == "energy_uj":  # its label: the change's energy_basis, or its unit's words
        if change.get("energy_basis") or "(" not in unit:
            return f"energy ({basis_label(change.get('energy_basis'))})"
        return f"energy {unit[unit.index('('):]}"
    if metric == "cycles_estimate" and unit:  # 'cycles (estimate, cortex-m4 at 120 MHz, +-9%)'
        return unit
    return name


def case_counts(suite: dict) -> dict:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    for c in suite.get("cases", []):
        counts[c.get("status")] = counts.get(c.get("status"), 0) + 1
    return counts


def changed_metrics(compare: dict) -> list[dict]:
    rows = [c for c in compare.get("changes", []) if c.get("status") != "unchanged"]
    return sorted(rows, key=lambda c: (STATUS_ORDER.get(c.get("status"), 9), str(c.get("platform")),
                                       str(c.get("model")), str(c.get("metric"))))


def failing_cases(suite: dict | None) -> list[dict]:
    if not suite:
        return []
    return sorted((c for c in suite.get("cases", []) if c.get("status") in FAILING),
                  key=lambda c: (c.get("status") != "failed", str(c.get("id"))))


# -- Markdown -----------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean(text) -> str:
    """Text without terminal colour codes and control characters (firmware
    and tool messages carry both)."""
    return _CONTROL.sub("", _ANSI.sub("", "" if text is None else str(text)))


def cell(text, limit: int = 300) -> str:
    """Text safe inside a table cell: one line, no pipes, no HTML."""
    s = clean(text)
    s = re.sub(r"\s*[\r\n]+\s*", " ", s).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def code(text) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def table_lines(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """A Markdown table; `align` has one letter per column, "r" right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def capped(rows: list, max_rows: int, what: str) -> tuple[list, list[str]]:
    """The first `max_rows` rows, and the line that says how many more there are."""
    if len(rows) <= max_rows:
        return rows, []
    return rows[:max_rows], ["", f"... and {len(rows) - max_rows} more {what} (see the full report)."]


def link_lines(links) -> list[str]:
    """An "Artifacts" section of (label, url) links; nothing when there are none."""
    if not links:
        return []
    lines = ["", "### Artifacts", ""]
    for label, url in links:
        lines.append(f"- [{cell(label, 120)}]({str(url).replace(' ', '%20').replace(')', '%29')})")
    return lines


def _failing_section(suite: dict | None, max_rows: int, heading: str) -> list[str]:
    failing = failing_cases(suite)
    if not failing:
        return []
    shown, more = capped(failing, max_rows, "failing checks")
    rows = [[cell(c.get("platform")), cell(c.get("model")), code(c.get("check")), c.get("status", "").upper(),
             cell(c.get("message"), 600), cell(case_value(c, "measured")), cell(case_value(c, "limit"))]
            for c in shown]
    return ["", f"### {heading} ({len(failing)})", "",
            *table_lines(["platform", "model", "check", "status", "message", "measured", "limit"], rows, "lllllrr"),
            *more]


def _plain(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.6g}"
    return f"{value:,.0f}" if isinstance(value, (int, float)) else str(value)


def case_value(case: dict, key: str) -> str:
    """A case's measured value or limit; a measured energy is an estimate
    (3 significant figures, labelled), the limit is the user's number."""
    value = case.get(key)
    if key == "measured" and value is not None and case.get("check") == "max_energy_uj":
        return f"{sig3(value)} uJ (estimate)"
    if key == "measured" and value is not None and case.get("check") in ("max_cycles", "max_latency_ms"):
        return f"{sig3(value)}{' ms' if case['check'] == 'max_latency_ms' else ''} (estimate)"
    return _plain(value)


def energy_cell(metrics: dict) -> str:
    """A job's energy with its label: '670 uJ (estimate: instructions x CPI, unverified)'."""
    return format_estimate(metrics.get("energy_uj"), "uJ", metrics.get("energy_basis"))


def estimate_cell(metrics: dict) -> str:
    """A job's cycles and latency estimate with its label: '2.70 M cycles,
    22.5 ms (estimate, cortex-m4 at 120 MHz, +-9%)', or '-'."""
    if metrics.get("cycles_estimate") is None:
        return "-"
    from .compare import timing_label

    latency = f", {sig3(metrics['latency_ms'])} ms" if metrics.get("latency_ms") is not None else ""
    return f"{sig3(metrics['cycles_estimate'])} cycles{latency} (estimate, {timing_label(metrics.get('cycles_basis'))})"


def _jobs_table(suite: dict, max_rows: int) -> list[str]:
    by_job: dict[str, list[dict]] = {}
    for c in suite.get("cases", []):
        by_job.setdefault(f"{c.get('platform')}/{c.get('model')}", []).append(c)
    rows = []
    jobs = suite.get("jobs", [])
    shown, more = capped(jobs, max_rows, "jobs")
    for j in shown:
        m = j.get("metrics") or {}
        cases = by_job.get(j.get("id") or f"{j.get('platform')}/{j.get('model')}", [])
        passed = sum(c.get("status") == "passed" for c in cases)
        kind = m.get("count_kind")
        rows.append([cell(j.get("platform")), cell(j.get("model")), (j.get("status") or "?").upper(),
                     f"{passed}/{len(cases)}",
                     fmt_value(m.get("count"), "count") + (f" {kind}" if kind and m.get("count") is not None else ""),
                     estimate_cell(m), energy_cell(m), fmt_value(m.get("flash_bytes"), "flash_bytes"),
                     fmt_value(m.get("ram_bytes"), "ram_bytes"), fmt_value(m.get("arena_bytes"), "arena_bytes"),
                     fmt_value(m.get("accuracy"), "accuracy")])
    return [*table_lines(["platform", "model", "status", "checks passed", "count (median)", "cycles, latency (median)",
                     "energy (median)", "flash", "RAM", "arena", "accuracy"], rows, "lllrrrrrrrr"), *more]


def attempts_text(job: dict) -> str | None:
    """A board-farm job that ran more than once (harness/farm.py): where
    each attempt ran, how it ended and why the job ran again."""
    attempts = job.get("attempts") or []
    if len(attempts) < 2:
        return None
    first, *rest = attempts
    why = (first.get("error") or "no reason given").splitlines()[0]
    return (f"ran again: attempt 1 on place {first.get('place')} ended {first.get('status')} (exit "
            f"{first.get('exit_code')}: {why}); "
            + "; ".join(f"attempt {a.get('attempt')} on place {a.get('place')} {a.get('status')}" for a in rest))


def _retry_lines(suite: dict) -> list[str]:
    lines = [f"- {code(j.get('id') or '?')} {cell(text)}" for j in suite.get("jobs", [])
             if (text := attempts_text(j))]
    return ["", "Board-farm jobs run again on another place (each attempt's result is kept):", "", *lines] if lines else []


def _suite_line(suite: dict) -> str:
    git = suite.get("git") or {}
    where = f"suite {code(suite.get('suite') or '?')} at {code(short(git.get('commit')))}"
    if git.get("branch"):
        where += f" on {code(git['branch'])}"
    if git.get("dirty"):
        where += " (uncommitted changes)"
    if suite.get("shards"):
        where += ", shards " + ", ".join(f"{s.get('index')}/{s.get('count')}" for s in suite["shards"])
    if suite.get("duration_s") is not None:
        where += f", {suite['duration_s']:.1f} s"
    return where


def suite_status_line(suite: dict) -> str:
    counts = case_counts(suite)
    total = sum(counts.values())
    jobs = suite.get("jobs", [])
    platforms = {j.get("platform") for j in jobs}
    models = {j.get("model") for j in jobs}
    status = (suite.get("status") or "unknown").upper()
    parts = [f"{counts['passed']}/{total} checks passed"]
    if counts["failed"]:
        parts.append(f"{counts['failed']} failed")
    if counts["error"]:
        parts.append(plural(counts["error"], "error"))
    if counts["skipped"]:
        parts.append(f"{counts['skipped']} skipped")
    text = ", ".join(parts) + (f" in {plural(len(jobs), 'job')} ({plural(len(platforms), 'platform')} x "
                               f"{plural(len(models), 'model')})")
    if suite.get("status") == "interrupted":
        text += "; the run was interrupted, so some jobs are missing"
    return f"**Status: {status}** - {text}."


def suite_markdown(suite: dict, links=(), title: str | None = None, max_rows: int = 100) -> str:
    """Summary of one suite run, without a comparison."""
    where = _suite_line(suite)
    lines = [f"## {title or 'hil: ' + cell(suite.get('suite') or 'suite')}", "", suite_status_line(suite), "",
             where[:1].upper() + where[1:] + "."]
    git = suite.get("git") or {}
    if git.get("subject"):
        lines[-1] += f" Commit: {cell(git['subject'], 120)}"
    lines += _failing_section(suite, max_rows, "Failing checks")
    if suite.get("jobs"):
        lines += ["", f"### Jobs ({len(suite['jobs'])})", "", *_jobs_table(suite, max_rows), *_retry_lines(suite)]
    lines += link_lines(links)
    return "\n".join(lines) + "\n"


def verdict_line(compare: dict) -> str:
    changes = compare.get("changes", [])
    cases = compare.get("cases", [])
    n = {s: sum(c.get("status") == s for c in changes) for s in STATUS_ORDER}
    broke = sum(c.get("status") == "regressed" for c in cases)
    fixed = sum(c.get("status") == "improved" for c in cases)
    verdict = (compare.get("verdict") or "unknown").upper()
    parts = []
    if n["regressed"]:
        parts.append(f"{plural(n['regressed'], 'metric')} regressed")
    if broke:
        parts.append(f"{plural(broke, 'check')} newly failing")
    if n["incomparable"]:
        parts.append(f"{plural(n['incomparable'], 'metric')} cannot be compared")
    if compare.get("not_compared"):  # a job or check that ran in one run only (results/compare.py)
        parts.append(f"{compare['not_compared']} not compared (ran in one of the two runs only)")
    if n["improved"]:
        parts.append(f"{plural(n['improved'], 'metric')} improved")
    if fixed:
        parts.append(f"{plural(fixed, 'check')} fixed")
    if n["new"] or n["removed"]:
        parts.append(f"{n['new']} new, {n['removed']} removed")
    if not parts:
        parts.append(f"no metric moved beyond its threshold ({plural(len(changes), 'metric')} compared)")
    return f"**Verdict: {verdict}** - " + "; ".join(parts) + "."


def compare_markdown(compare: dict, suite: dict | None = None, links=(), title: str | None = None,
                     max_rows: int = 100) -> str:
    """Summary of a comparison (hil.compare/1), with the head suite's failing
    checks and jobs when `suite` is given."""
    base, head = compare.get("base") or {}, compare.get("head") or {}
    name = (suite or {}).get("suite") or head.get("suite") or base.get("suite") or "suite"
    lines = [f"## {title or 'hil: ' + cell(name)}", "", verdict_line(compare), "",
             f"Head {code(head.get('label') or 'head')} ({code(short(head.get('commit')))}) compared with base "
             f"{code(base.get('label') or 'base')} ({code(short(base.get('commit')))})."]
    if suite:
        lines += ["", suite_status_line(suite)]
    notes = [f"- {code(job)}: the model changed ({code(sha['base'][:12])} -> {code(sha['head'][:12])}); "
             "its figures are the new model's against the old one's"
             for job, sha in (compare.get("model_changes") or {}).items()]
    notes += [f"- {code(job)}: measured on other vectors ({cell(how)}); accuracy and agreement are incomparable"
              for job, how in (compare.get("vector_changes") or {}).items()]
    if notes:
        lines += ["", *notes]

    changed = changed_metrics(compare)
    unchanged = sum(c.get("status") == "unchanged" for c in compare.get("changes", []))
    if changed:
        shown, more = capped(changed, max_rows, "changed metrics")
        rows = []
        for c in shown:
            m, u = c.get("metric", ""), c.get("unit")
            status = c.get("status", "?")
            status = f"**{status.upper()}**" if status in ("regressed", "incomparable") else status
            if c.get("note"):
                status += f" ({cell(c['note'], 120)})"
            rows.append([cell(c.get("platform")), cell(c.get("model")), cell(metric_label(c)),
                         fmt_value(c.get("base"), m, u), fmt_value(c.get("head"), m, u),
                         fmt_delta(c.get("delta"), m, u), fmt_pct(c.get("delta_pct")), fmt_threshold(c), status])
        lines += ["", f"### Changed metrics ({len(changed)})", "",
                  *table_lines(["platform", "model", "metric", "base", "head", "delta", "delta %", "threshold", "status"],
                          rows, "lllrrrrrl"), *more]
    if unchanged:
        lines += ["", f"{plural(unchanged, 'metric')} unchanged within {'its' if unchanged == 1 else 'their'} "
                      f"threshold{'s' if unchanged != 1 else ''}."]

    moved = sorted((c for c in compare.get("cases", []) if c.get("status") in ("regressed", "improved")),
                   key=lambda c: (c.get("status") != "regressed", str(c.get("id"))))
    if moved:
        shown, more = capped(moved, max_rows, "changed checks")
        rows = [[code(c.get("id")), c.get("base") or "-", c.get("head") or "-",
                 "**REGRESSED**" if c.get("status") == "regressed" else "fixed"] for c in shown]
        lines += ["", f"### Checks that changed ({len(moved)})", "",
                  *table_lines(["check", "base", "head", "status"], rows, "llll"), *more]

    lines += _failing_section(suite, max_rows, "Failing checks on head")
    if suite and suite.get("jobs"):
        lines += ["", f"<details><summary>All jobs on head ({len(suite['jobs'])})</summary>", "",
                  *_jobs_table(suite, max_rows), "", "</details>"]
    lines += link_lines(links)
    return "\n".join(lines) + "\n"


def render_markdown(suite: dict | None, compare: dict | None = None, links=(), title: str | None = None,
                    max_rows: int = 100) -> str:
    if compare is not None:
        return compare_markdown(compare, suite, links, title, max_rows)
    if suite is None:
        raise ValueError("a suite or a comparison is needed")
    return suite_markdown(suite, links, title, max_rows)
