"""Budgets: limits on what an inference may cost. A budget exceeded is a
check failure (exit 1) that names the budget, the limit and the measured
value; a budget that cannot be measured is an error, never a silent pass."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..power.energy import format_estimate, sig3
from ..timing.validation import band_head

log = logging.getLogger(__name__)

#: budget name -> (what it limits, unit)
BUDGETS = {
    "max_count": "count per invoke (largest over the vectors)",
    "max_energy_uj": "estimated energy per inference in uJ (largest over the vectors)",
    "max_cycles": "cycles estimate per invoke from the timing model (largest over the vectors)",
    "max_latency_ms": "latency estimate per invoke in ms at the timing model's clock (largest over the vectors)",
    "max_arena": "tensor arena high-water mark in bytes, measured on the device",
    "max_flash": "flash bytes of the firmware image (code, constants, initialised data)",
    "max_ram": "RAM bytes needed (static data + stack + arena high-water + model)",
}


@dataclass(frozen=True)
class BudgetCheck:
    name: str
    limit: float
    measured: float | None
    unit: str
    passed: bool
    message: str

    def as_dict(self) -> dict:
        return {"name": self.name, "limit": self.limit, "measured": self.measured, "unit": self.unit,
                "passed": self.passed, "message": self.message}


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"


def evaluate(limits: dict[str, float], measured: dict[str, tuple | None]) -> list[BudgetCheck]:
    """Compare each limit with its measurement: measured[name] = (value, unit)
    or (value, unit, energy_basis) for an estimate, or None. An estimate's
    message says it is one, on what basis and whether that was verified."""
    checks = []
    for name, limit in limits.items():
        if limit is None:
            continue
        value = measured.get(name)
        flag = "--" + name.replace("_", "-")
        if value is None:
            checks.append(BudgetCheck(name, limit, None, "", False,
                                      f"budget {flag} {limit:g} cannot be checked: "
                                      f"no {BUDGETS[name].split(' (')[0]} was measured on this platform"
                                      + (NO_ESTIMATE if name in ("max_cycles", "max_latency_ms") else "")))
            continue
        amount, unit = value[:2]
        ok = amount <= limit
        verdict = "within" if ok else "EXCEEDED"
        if name in ("max_cycles", "max_latency_ms"):  # the timing model's estimate, with its band
            cycles_basis = value[2] if len(value) > 2 else None
            message = f"budget {flag} {verdict}: {_estimate_words(name, amount, cycles_basis)} " \
                      f"{'<=' if ok else '>'} budget {_fmt(limit)} {'ms' if name == 'max_latency_ms' else 'cycles'}"
        elif name == "max_energy_uj":  # always an estimate: 3 significant figures and its label
            basis = value[2] if len(value) > 2 else None
            unit = unit.split(" (")[0]
            message = (f"budget {flag} {verdict}: energy {format_estimate(amount, unit, basis, detail=True)} "
                       f"{'is within' if ok else 'exceeds'} the limit {_fmt(limit)} {unit}")
        else:
            message = f"budget {flag} {verdict}: limit {_fmt(limit)} {unit}, measured {_fmt(amount)} {unit}"
        checks.append(BudgetCheck(name, limit, amount, unit, ok, message))
    return checks


#: why a cycles or latency budget may have nothing to judge
NO_ESTIMATE = (" (a cycles estimate needs a QEMU platform with a [timing] table and --cycles; "
               "the run's notes say why there was none)")


def _estimate_words(name: str, amount: float, cycles_basis: dict | None) -> str:
    """'latency estimate 2.31 ms (+-9%, cortex-m4 timing model)': the value,
    3 significant figures, the band and the model it comes from."""
    basis = cycles_basis or {}
    band = str(basis.get("error_band") or "")
    band = band_head(band) if band[:1] in "+-±" else "band unknown"
    model = f", {basis['model']} timing model" if basis.get("model") else ""
    if name == "max_latency_ms":
        return f"latency estimate {sig3(amount)} ms ({band}{model})"
    return f"cycles estimate {sig3(amount)} ({band}{model})"


def cycle_budget_measurements(vectors: list, cycles_basis: dict | None) -> dict:
    """max_cycles and max_latency_ms as evaluate() takes them: the largest
    estimate over the vectors with the cycles' label, or None without one."""
    estimates = [v.cycles for v in vectors if getattr(v, "cycles", None)]
    if not estimates:
        return {"max_cycles": None, "max_latency_ms": None}
    label = cycles_basis or {"model": estimates[0].get("model"), "error_band": None}
    latencies = [c["latency_ms"] for c in estimates if c.get("latency_ms") is not None]
    return {"max_cycles": (max(c["value"] for c in estimates), "cycles", label),
            "max_latency_ms": (max(latencies), "ms", label) if latencies else None}


def measurements(vectors: list, memory: dict | None, energy_basis: dict | None,
                 cycles_basis: dict | None) -> dict:
    """Every budget's measured value as evaluate() takes it, from a run's
    vector results (hil.result/1 VectorResults) and its `memory` entry (None
    when it was not measured): the one measurement `hil run` and a Session
    (Robot, pytest) both check their budgets against."""
    counts = [v.count for v in vectors if v.count]
    energies = [v.energy["uj"] for v in vectors if v.energy]
    measured = {
        "max_count": (max(c["value"] for c in counts), counts[0]["kind"]) if counts else None,
        "max_energy_uj": (max(energies), "uJ", energy_basis) if energies else None,
        **cycle_budget_measurements(vectors, cycles_basis),
    }
    if memory is not None:
        device = memory.get("device") or {}
        measured["max_arena"] = (device["arena_high_water"], "bytes") if device else None
        measured["max_flash"] = (memory["flash_bytes"], "bytes") if memory.get("flash_bytes") is not None else None
        measured["max_ram"] = (memory["ram_bytes"], "bytes") if memory.get("ram_bytes") is not None else None
    return measured
