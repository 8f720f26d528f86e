"""A run on a console: its progress while vectors stream (a bar on a
terminal, a few plain lines in a CI log), then its result: the failing
vectors (every vector with --all), the per-operator profile, a summary,
memory and energy, and budget verdicts."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..checks.metrics import describe_mismatch
from ..checks.truth import describe as describe_truth
from ..power.battery import describe as describe_battery
from ..power.energy import basis_label, short_band, sig3
from ..timing.validation import band_head
from .compare import timing_band
from .result import RunResult
from .terminal import make_console  # noqa: F401  (where the front ends have found it)

log = logging.getLogger(__name__)

STATUS_STYLE = {"passed": "green", "mismatch": "red", "fault": "bold red", "timeout": "red",
                "error": "red", "not_run": "dim"}
MAX_FAILING_ROWS = 20  # failing vectors listed by default; --all lists every vector
MAX_OPERATOR_ROWS = 20


def _count_kind(result: RunResult) -> str | None:
    kinds = {v.count["kind"] for v in result.vectors if v.count}
    return kinds.pop() if len(kinds) == 1 else None


def _rows(vectors: list, show_all: bool) -> tuple[list, int]:
    """The vectors to list and how many failing ones are left out: every
    vector with --all, else the first failing ones (the summary says how
    many passed; a screen of passing rows would push it out of sight)."""
    if show_all:
        return vectors, 0
    failing = [v for v in vectors if not v.passed]
    return failing[:MAX_FAILING_ROWS], max(0, len(failing) - MAX_FAILING_ROWS)


def _vector_table(result: RunResult, shown: list) -> Table | None:
    vectors = result.vectors
    if not shown:
        return None
    kind = _count_kind(result)
    energy = any(v.energy for v in vectors)
    estimated = any(v.cycles for v in vectors)  # the timing model's cycles estimate and latency
    labelled = any(v.label is not None for v in vectors)
    table = Table(title=escape(f"{Path(result.model.get('path', '')).name} on {result.platform.get('name')}"),
                  title_justify="left")
    table.add_column("vector", justify="right")
    table.add_column("status")
    table.add_column("max |diff|", justify="right")
    if kind:
        table.add_column(kind, justify="right")
    bands = []  # estimates carry their band wherever they are shown: one run, one band each, under the table
    if estimated:
        table.add_column("cycles, ms (est.)", justify="right")
        bands.append(f"cycles and ms {timing_band(result.cycles_basis)}")
    if energy:
        verified = (result.energy_basis or {}).get("verified")
        table.add_column("energy uJ (est.)" if verified else "energy uJ (est., unverified)", justify="right")
        bands.append(f"energy {short_band(result.energy_basis)}")
    if bands:
        table.caption = f"estimates (est.): {'; '.join(bands)}"
        table.caption_justify = "left"
    if labelled:
        table.add_column("top-1 / label", justify="right")
    table.add_column("detail", overflow="fold")
    for v in shown:
        row = [str(v.index), f"[{STATUS_STYLE.get(v.status, '')}]{v.status}[/]",
               "" if v.max_abs_diff is None else f"{v.max_abs_diff:g}"]
        if kind:
            row.append(f"{v.count['value']:,}" if v.count else "")
        if estimated:
            c = v.cycles or {}
            row.append(", ".join([sig3(c["value"])] + ([f"{sig3(c['latency_ms'])} ms"] if c.get("latency_ms") is not None
                                                       else [])) if c.get("value") is not None else "")
        if energy:
            row.append(sig3(v.energy["uj"]) if v.energy else "")
        if labelled:
            row.append("" if v.label is None else f"{v.top1} / {v.label}")
        row.append(escape(v.error or (describe_mismatch(v.mismatch) if v.mismatch else "")))
        table.add_row(*row)
    return table


def _operator_table(summary: dict, kind: str) -> Table | None:
    ops = summary.get("operators")
    if not ops:
        return None
    table = Table(title=f"per operator (median {kind} per invoke)", title_justify="left")
    estimated = any(r.get("cycles_median") is not None for r in ops)
    columns: tuple[tuple[str, JustifyMethod], ...] = (("#", "right"), ("operator", "left"), (kind, "right"),
                                                      ("share", "right"))
    for col, justify in columns:
        table.add_column(col, justify=justify)
    if estimated:
        table.add_column("cycles (est.)", justify="right")
        table.caption = f"cycles (est.): {timing_band(summary.get('cycles_basis'))}"
        table.caption_justify = "left"
    ranked = sorted(ops, key=lambda r: -r["median"])
    for r in sorted(ranked[:MAX_OPERATOR_ROWS], key=lambda r: r["index"]):
        row = [str(r["index"]), r["op"], f"{r['median']:,.0f}", f"{r['share']:.1%}"]
        if estimated:
            row.append(sig3(r["cycles_median"]) if r.get("cycles_median") is not None else "")
        table.add_row(*row)
    if len(ops) > MAX_OPERATOR_ROWS:
        rest = ranked[MAX_OPERATOR_ROWS:]
        row = ["", f"{len(rest)} more", f"{sum(r['median'] for r in rest):,.0f}",
               f"{sum(r['share'] for r in rest):.1%}"]
        if estimated:
            row.append(sig3(sum(r.get("cycles_median") or 0 for r in rest)))
        table.add_row(*row)
    return table


def print_result(result: RunResult, result_path: Path, show_all: bool, out: Console, err: Console) -> None:
    s = result.summary()
    if result.error and not result.vectors:  # stopped before any vector: the error is the whole story
        err.print(f"[bold red]error:[/] {escape(result.error['message'])}", soft_wrap=True, highlight=False)
        err.print(f"  result: {result_path}", soft_wrap=True, markup=False)
        return
    shown, more = _rows(result.vectors, show_all)
    table = _vector_table(result, shown)
    if table is not None:
        out.print(table)
    if more:
        out.print(f"  ... and {more} more failing vectors (see result.json or --all)", highlight=False)
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
    if s.get("expected") and s["expected"]["matched"] != s["expected"]["checked"]:
        line += f"; {s['expected']['checked'] - s['expected']['matched']} differ from the expected outputs"
    out.print(line)
    if "count" in s:
        c = s["count"]
        note = "  (emulator instruction count, not cycles)" if c["kind"] == "instructions" else ""
        overhead = result.count_overhead
        if overhead:
            note += f"; counting overhead (empty invoke) {overhead['value']:,}"
        out.print(f"  {c['kind']} per invoke: min {c['min']:,}  median {c['median']:,.0f}  max {c['max']:,}{note}")
    for text in describe_estimates(s):
        out.print(f"  {escape(text)}", soft_wrap=True, highlight=False)
    if "energy_uj" in s and result.energy_model is not None:  # an energy figure comes with its model
        e, m = s["energy_uj"], result.energy_model
        basis = s.get("energy_basis")
        band = f"error band {basis['error_band']}; " if basis and basis.get("error_band") else ""
        out.print(f"  energy per inference: min {sig3(e['min'])}  median {sig3(e['median'])}  max {sig3(e['max'])} uJ "
                  f"({escape(basis_label(basis, detail=True))})", soft_wrap=True, highlight=False)
        out.print(f"    [dim]{escape(band)}power: {escape(m['part'])} {m['active_power_mw']:.4g} mW at "
                  f"{m['clock_hz'] / 1e6:g} MHz, {m['voltage_v']:g} V ({(m.get('active') or {}).get('status', 'assumed')}: "
                  f"{escape(m['datasheet'])})[/]", soft_wrap=True, highlight=False)
    if result.battery:
        for text in describe_battery(result.battery):
            out.print(f"  {escape(text)}", soft_wrap=True, highlight=False)
    if "accuracy" in s:
        a = s["accuracy"]
        out.print(f"  top-1 accuracy on labelled vectors: {a['top1']:.1%} ({a['correct']}/{a['total']})")
    for text, failed in describe_truth(s):  # expected outputs, the float model (checks/truth.py)
        out.print(f"  [bold red]{escape(text)}[/]" if failed else f"  {escape(text)}", soft_wrap=True, highlight=False)
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
        out.print(f"  [{style}]{escape(b['message'])}[/]", soft_wrap=True, highlight=False)
    if result.localization:
        from ..checks.localize import describe

        style = "bold red" if (result.localization.get("first_divergence")) else "dim"
        out.print(f"  [{style}]localisation:[/] {escape(describe(result.localization))}", soft_wrap=True,
                  highlight=False)
    if result.fault:
        out.print(f"  [bold red]fault:[/] {escape(str(result.vectors[-1].error))}")
    if result.error:
        err.print(f"[bold red]error:[/] {escape(result.error['message'])}", soft_wrap=True, highlight=False)
    out.print(f"  result: {result_path}", markup=False)


# -- progress while vectors stream ------------------------------------------------------------


class ProgressLines:
    """Plain progress lines, for logs (no terminal: CI, `| cat`, a
    subprocess): at 25, 50 and 75% of a run of `quiet_below_vectors` vectors
    or more or expected to take `quiet_below_s` or more (None: time only),
    and every max(10 s, a fifteenth of the expected time), so no run prints
    more than about 20 lines however long it is."""

    MILESTONES = (25, 50, 75)
    MIN_INTERVAL_S = 10.0
    TIMED_LINES = 15

    def __init__(self, console: Console, label: str = "", quiet_below_s: float = 5.0,
                 quiet_below_vectors: int | None = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.console, self.label, self.clock = console, label, clock
        self.quiet_below_s, self.quiet_below_vectors = quiet_below_s, quiet_below_vectors
        self.total = 0

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.last = self.clock()
        self.milestone = 0  # index of the next milestone in MILESTONES

    def update(self, done: int, passed: int, failed: int, reference: tuple[int, int] | None = None) -> None:
        """Called as vectors complete (and while the device waits for the
        reference); prints a line when one is due."""
        if not self.total:
            return
        now = self.clock()
        elapsed = now - self.started
        expected = elapsed / done * self.total if done else None
        percent = done * 100 // self.total
        crossed = False
        while self.milestone < len(self.MILESTONES) and percent >= self.MILESTONES[self.milestone]:
            crossed, self.milestone = True, self.milestone + 1
        interval = max(self.MIN_INTERVAL_S, (expected or 0) / self.TIMED_LINES)
        long_run = (expected is not None and expected >= self.quiet_below_s) or (
            self.quiet_below_vectors is not None and self.total >= self.quiet_below_vectors)
        due = (crossed and long_run) or now - self.last >= interval
        if not due:
            return
        self.last = now
        behind = f", reference {reference[0]}/{reference[1]}" if reference and reference[0] < reference[1] else ""
        if expected is None:  # no vector done yet
            line = f"{self.label}vectors 0/{self.total}, waiting for the reference{behind}"
        else:
            rate = done / elapsed if elapsed > 0 else 0.0
            line = (f"{self.label}vectors {done}/{self.total} ({percent}%), {passed} passed, {failed} failed, "
                    f"{rate:.1f} vectors/s, ETA {max(0.0, expected - elapsed):.0f} s{behind}")
        self.console.print(line, highlight=False, soft_wrap=True, markup=False)


def progress_bar(console: Console) -> Progress:
    """The terminal's progress bar: vectors done/total, passed and failed so
    far, rate, ETA, and the reference's progress while it is behind. It
    disappears when the run ends (the summary takes its place)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[counts]}"), TextColumn("ETA"), TimeRemainingColumn(),
                    TextColumn("{task.fields[reference]}"), console=console, transient=True)


class RunProgress:
    """A run's reporter for a console (harness/runner.py's Reporter): the
    stages as lines, then the vectors' progress: a bar on a terminal, plain
    ProgressLines otherwise. Several runs may share one bar (`bar`, a task
    each: boards). `stages=False` leaves the stage lines out (suite jobs,
    where only the progress of long jobs is worth a line)."""

    def __init__(self, console: Console, label: str = "", bar: Progress | None = None, *,
                 plain: bool | None = None, stages: bool = True, quiet_below_s: float = 5.0,
                 quiet_below_vectors: int | None = 100) -> None:
        self.console, self.label, self.stages = console, label, stages
        self.plain = not console.is_terminal if plain is None else plain
        self.bar = bar
        self.task: TaskID | None = None
        self.lines = ProgressLines(console, f"{label}: " if label else "", quiet_below_s, quiet_below_vectors)
        self.done = self.passed = self.failed = 0
        self.reference: tuple[int, int] | None = None

    def stage(self, text: str) -> None:
        if self.stages:
            self.console.print(f"[dim]-[/dim] [bold]{escape(self.label)}[/bold] {escape(text)}" if self.label
                               else f"[dim]-[/dim] {escape(text)}",
                               highlight=False, soft_wrap=True)

    def start_vectors(self, total: int) -> None:
        self.done = self.passed = self.failed = 0
        self.started = time.monotonic()
        if self.plain:
            self.lines.start(total)
            return
        if self.bar is None:
            self.bar = progress_bar(self.console)
        if not self.bar.live.is_started:
            self.bar.start()
        self.task = self.bar.add_task(escape(self.label) or "vectors", total=total, counts="", reference="")

    def reference_progress(self, computed: int, total: int) -> None:
        self.reference = (computed, total)
        self._show()

    def vector_done(self, result) -> None:
        self.done += 1
        self.passed += result.passed
        self.failed += not result.passed
        self._show()

    def _show(self) -> None:
        if self.plain:
            self.lines.update(self.done, self.passed, self.failed, self.reference)
        elif self.task is not None and self.bar is not None:  # start_vectors made both
            elapsed = time.monotonic() - self.started
            rate = f", {self.done / elapsed:.1f} vectors/s" if self.done and elapsed > 0 else ""
            ref = self.reference
            behind = f"reference {ref[0]}/{ref[1]}" if ref is not None and ref[0] < ref[1] else ""
            self.bar.update(self.task, completed=self.done,
                            counts=f"{self.passed} passed, {self.failed} failed{rate}", reference=behind)

    def close(self) -> None:
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()


def describe_estimates(summary: dict) -> list[str]:
    """The timing model's figures for the summary: 'cycles per invoke
    (estimate, cortex-m4 at 120 MHz, +-9%): mean 1.23 M  max ...' and the
    same for latency, each labelled an estimate with its band."""
    c = summary.get("cycles")
    if not c:
        return []
    basis = summary.get("cycles_basis") or {}
    band = str(basis.get("error_band") or "unknown (not validated)")
    band = band if band[:1] in "+-±" else f"band {band}"
    clock = f" at {basis['clock_hz'] / 1e6:g} MHz" if basis.get("clock_hz") else ""
    label = f"estimate, {basis.get('model') or c.get('model') or 'timing model'}{clock}, {band}"
    lines = [f"cycles per invoke: mean {sig3(c['mean'])}  max {sig3(c['max'])} ({label})"]
    latency = summary.get("latency_ms")
    if latency:
        lines.append(f"latency per invoke: mean {sig3(latency['mean'])} ms  max {sig3(latency['max'])} ms "
                     f"({'estimate' if not clock else 'estimate' + clock}, {band_head(band)})")
    return lines
