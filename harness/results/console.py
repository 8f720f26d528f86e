"""A run's result as terminal tables: one row per vector, a summary, the
per-operator profile, memory and energy, and budget verdicts."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .result import RunResult

STATUS_STYLE = {"passed": "green", "mismatch": "red", "fault": "bold red", "timeout": "red",
                "error": "red", "not_run": "dim"}
MAX_ROWS = 200  # beyond this only failing vectors are listed, unless asked
MAX_OPERATOR_ROWS = 20


def make_console(stderr: bool = False) -> Console:
    """Rich console; CI logs (not a terminal) get wide lines instead of wrapping."""
    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=160)
    return console


def _count_kind(result: RunResult) -> str | None:
    kinds = {v.count["kind"] for v in result.vectors if v.count}
    return kinds.pop() if len(kinds) == 1 else None


def _vector_table(result: RunResult, show_all: bool) -> Table | None:
    vectors = result.vectors
    shown = vectors if show_all or len(vectors) <= MAX_ROWS else [v for v in vectors if not v.passed]
    if not shown:
        return None
    kind = _count_kind(result)
    energy = any(v.energy for v in vectors)
    labelled = any(v.label is not None for v in vectors)
    table = Table(title=f"{Path(result.model.get('path', '')).name} on {result.platform.get('name')}",
                  title_justify="left")
    table.add_column("vector", justify="right")
    table.add_column("status")
    table.add_column("max |diff|", justify="right")
    if kind:
        table.add_column(kind, justify="right")
    if energy:
        table.add_column("energy uJ (est.)", justify="right")
    if labelled:
        table.add_column("top-1 / label", justify="right")
    table.add_column("detail", overflow="fold")
    for v in shown:
        row = [str(v.index), f"[{STATUS_STYLE.get(v.status, '')}]{v.status}[/]",
               "" if v.max_abs_diff is None else f"{v.max_abs_diff:g}"]
        if kind:
            row.append(f"{v.count['value']:,}" if v.count else "")
        if energy:
            row.append(f"{v.energy['uj']:.3f}" if v.energy else "")
        if labelled:
            row.append("" if v.label is None else f"{v.top1} / {v.label}")
        row.append(v.error or "")
        table.add_row(*row)
    return table


def _operator_table(summary: dict, kind: str) -> Table | None:
    ops = summary.get("operators")
    if not ops:
        return None
    table = Table(title=f"per operator (median {kind} per invoke)", title_justify="left")
    for col, justify in (("#", "right"), ("operator", "left"), (kind, "right"), ("share", "right")):
        table.add_column(col, justify=justify)
    ranked = sorted(ops, key=lambda r: -r["median"])
    for r in sorted(ranked[:MAX_OPERATOR_ROWS], key=lambda r: r["index"]):
        table.add_row(str(r["index"]), r["op"], f"{r['median']:,.0f}", f"{r['share']:.1%}")
    if len(ops) > MAX_OPERATOR_ROWS:
        rest = ranked[MAX_OPERATOR_ROWS:]
        table.add_row("", f"{len(rest)} more", f"{sum(r['median'] for r in rest):,.0f}",
                      f"{sum(r['share'] for r in rest):.1%}")
    return table


def print_result(result: RunResult, result_path: Path, show_all: bool, out: Console, err: Console) -> None:
    s = result.summary()
    if result.error and not result.vectors:  # stopped before any vector: the error is the whole story
        err.print(f"[bold red]error:[/] {result.error['message']}", soft_wrap=True, highlight=False)
        err.print(f"  result: {result_path}", soft_wrap=True)
        return
    table = _vector_table(result, show_all)
    if table is not None:
        out.print(table)
    if "count" in s:
        ops = _operator_table(s, s["count"]["kind"])
        if ops is not None:
            out.print(ops)
    verdict = {"passed": "[bold green]PASSED[/]", "failed": "[bold red]FAILED[/]"}.get(
        result.status, f"[bold red]{result.status.upper()}[/]")
    line = f"{verdict}  {s['passed']}/{s['total']} vectors bit-exact with the TFLM reference"
    if s["not_run"]:
        line += f", {s['not_run']} not run"
    exceeded = [b for b in result.budgets if not b["passed"]]
    if exceeded:
        line += f"; {len(exceeded)} budget{'s' if len(exceeded) > 1 else ''} not met"
    out.print(line)
    if "count" in s:
        c = s["count"]
        note = "  (emulator instruction count, not cycles)" if c["kind"] == "instructions" else ""
        overhead = result.count_overhead
        if overhead:
            note += f"; counting overhead (empty invoke) {overhead['value']:,}"
        out.print(f"  {c['kind']} per invoke: min {c['min']:,}  median {c['median']:,.0f}  max {c['max']:,}{note}")
    if "energy_uj" in s:
        e, m = s["energy_uj"], result.energy_model
        out.print(f"  energy per inference (estimate, from {e['basis'].replace('_', ' ')}): "
                  f"min {e['min']:.3f}  median {e['median']:.3f}  max {e['max']:.3f} uJ  "
                  f"[dim]model: {m['part']} at {m['clock_hz'] / 1e6:g} MHz, {m['voltage_v']:g} V, "
                  f"{m['active_ma']:.3g} mA active ({m['datasheet']})[/]", soft_wrap=True)
    if "accuracy" in s:
        a = s["accuracy"]
        out.print(f"  top-1 accuracy on labelled vectors: {a['top1']:.1%} ({a['correct']}/{a['total']})")
    fw, mem = result.firmware, result.memory
    if fw.get("text") is not None:
        out.print(f"  firmware {fw.get('build_id', '')[:12]}: text {fw['text']:,} B, data {fw['data']:,} B, "
                  f"bss {fw['bss']:,} B")
    device = mem.get("device")
    if device:
        out.print(f"  memory: flash {mem['flash_bytes']:,} B; RAM needed {mem['ram_bytes']:,} B; "
                  f"arena high-water {device['arena_high_water']:,} B (planned {device['arena_planned']:,}); "
                  f"stack high-water {device['stack_high_water']:,} of {device['stack_size']:,} B; "
                  f"model {mem['model_bytes']:,} B", soft_wrap=True)
    for b in result.budgets:
        style = "green" if b["passed"] else "bold red"
        out.print(f"  [{style}]{b['message']}[/]", soft_wrap=True, highlight=False)
    if result.localization:
        from ..checks.localize import describe

        style = "bold red" if (result.localization.get("first_divergence")) else "dim"
        out.print(f"  [{style}]localisation:[/] {describe(result.localization)}", soft_wrap=True, highlight=False)
    if result.fault:
        out.print(f"  [bold red]fault:[/] {result.vectors[-1].error}")
    if result.error:
        err.print(f"[bold red]error:[/] {result.error['message']}", soft_wrap=True, highlight=False)
    out.print(f"  result: {result_path}")
