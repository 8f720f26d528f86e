"""Budgets: limits on what an inference may cost. A budget exceeded is a
check failure (exit 1) that names the budget, the limit and the measured
value; a budget that cannot be measured is an error, never a silent pass."""

from __future__ import annotations

from dataclasses import dataclass

from ..power.energy import format_estimate

#: budget name -> (what it limits, unit)
BUDGETS = {
    "max_count": "count per invoke (largest over the vectors)",
    "max_energy_uj": "estimated energy per inference in uJ (largest over the vectors)",
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
                                      f"no {BUDGETS[name].split(' (')[0]} was measured on this platform"))
            continue
        amount, unit = value[:2]
        ok = amount <= limit
        verdict = "within" if ok else "EXCEEDED"
        if name == "max_energy_uj":  # always an estimate: 3 significant figures and its label
            basis = value[2] if len(value) > 2 else None
            unit = unit.split(" (")[0]
            message = (f"budget {flag} {verdict}: energy {format_estimate(amount, unit, basis, detail=True)} "
                       f"{'is within' if ok else 'exceeds'} the limit {_fmt(limit)} {unit}")
        else:
            message = f"budget {flag} {verdict}: limit {_fmt(limit)} {unit}, measured {_fmt(amount)} {unit}"
        checks.append(BudgetCheck(name, limit, amount, unit, ok, message))
    return checks
