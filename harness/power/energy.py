"""Energy per inference, as an estimate and labelled so.

    energy = time x active power,  time = cycles / clock,
    active power = supply voltage x active current (mA, or uA/MHz x MHz)

Cycles come from a cycle counter (a board's DWT), or from an instruction
count times the platform's cycles-per-instruction figure (QEMU, Renode).
Every figure comes from the platform file's [power] and [counter] tables,
which cite their datasheet; the model used is written into every result.

Every energy figure travels with its label, `energy_basis` (`basis()`):
what the cycles are (`kind`), whether the inputs were checked (`verified`),
the error band that can honestly be stated, and the source. Printed, a
figure has 3 significant figures and that label (`format_estimate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class EnergyModel:
    part: str
    datasheet: str
    conditions: str
    voltage_v: float
    clock_hz: float
    active_ma: float  # at clock_hz
    idle_ua: float | None
    cycles_per_instruction: float | None
    cpi_source: str | None
    verified: bool = False  # the platform file says its figures were checked against the datasheet
    source: str = ""  # "<platform file> [power]: <datasheet>"

    @classmethod
    def from_platform(cls, power: dict, counter: dict, where: str) -> "EnergyModel | None":
        if not power or not ("active_ma" in power or "active_ua_per_mhz" in power):
            return None  # no (checked) active-current figure: no energy estimate
        try:
            clock = float(power["clock_hz"])
            if "active_ma" in power:
                active_ma = float(power["active_ma"])
            else:
                active_ma = float(power["active_ua_per_mhz"]) * clock / 1e6 / 1000
            return cls(part=str(power["part"]), datasheet=str(power["datasheet"]),
                       conditions=str(power.get("conditions", "")), voltage_v=float(power["voltage_v"]),
                       clock_hz=clock, active_ma=active_ma,
                       idle_ua=float(power["idle_ua"]) if "idle_ua" in power else None,
                       cycles_per_instruction=(float(counter["cycles_per_instruction"])
                                               if "cycles_per_instruction" in counter else None),
                       cpi_source=counter.get("cpi_source"), verified=bool(power.get("verified", False)),
                       source=f"{Path(where).name} [power]: {power['datasheet']}")
        except KeyError as exc:
            raise UsageError(f"{where}: power.{exc.args[0]} is missing",
                             hint="a [power] table needs part, datasheet, voltage_v, clock_hz and "
                                  "active_ma or active_ua_per_mhz") from None
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{where}: [power] has a value that is not a number ({exc})") from None

    @property
    def active_power_mw(self) -> float:
        return self.voltage_v * self.active_ma

    def cycles(self, value: float, kind: str) -> tuple[float, str] | None:
        """Cycles for a count of `kind`, and the basis kind of an energy
        figure from them (BASIS_KINDS). Counted cycles still give an
        estimate (`cycles_estimate`): the current is the datasheet's;
        `measured` is kept for an energy a meter measured."""
        if kind == "cycles":
            return value, "cycles_estimate"
        if kind == "instructions" and self.cycles_per_instruction:
            return value * self.cycles_per_instruction, "instructions_x_cpi"
        return None

    def basis(self, kind: str) -> dict:
        """The `energy_basis` label of a figure of this basis kind.

        verified: only when the platform file says its current was checked
        and the cycles were counted (an assumed CPI is never verified).
        error_band: nothing here measures the current or the CPI, so no
        number can be claimed; the band says which way the known bias goes.
        """
        if kind == "instructions_x_cpi":
            cpi = self.cycles_per_instruction
            cpi = f"{cpi:.1f}" if float(cpi).is_integer() else f"{cpi:g}"
            cycles = f"instructions x CPI {cpi}"
            verified = False
            band = "unknown"
            if self.cpi_source and "lower bound" in self.cpi_source:
                band += f"; CPI {cpi} is a lower bound, so real cycles are higher"
            if not self.verified:
                band += "; the current figure is not checked"
        else:
            cycles = "measured cycles"
            verified = self.verified
            band = None if self.verified else "unknown; the current figure is not checked"
        current = "datasheet current" + ("" if self.verified else " (not checked)")
        return {"kind": kind, "verified": verified, "error_band": band, "source": self.source,
                "formula": f"{cycles} / {self.clock_hz / 1e6:g} MHz x {self.voltage_v:g} V x "
                           f"{self.active_ma:.3g} mA {current}",
                "basis_text": f"{cycles} x {current.split(' (')[0]}"}

    def energy_uj(self, cycles: float) -> float:
        seconds = cycles / self.clock_hz
        return seconds * self.active_power_mw * 1e3  # mW x s = mJ; x1e3 = uJ

    def as_dict(self) -> dict:
        return {"part": self.part, "datasheet": self.datasheet, "conditions": self.conditions,
                "voltage_v": self.voltage_v, "clock_hz": self.clock_hz, "active_ma": round(self.active_ma, 4),
                "active_power_mw": round(self.active_power_mw, 4), "idle_ua": self.idle_ua,
                "cycles_per_instruction": self.cycles_per_instruction, "cpi_source": self.cpi_source,
                "formula": "energy_uj = cycles / clock_hz * voltage_v * active_ma * 1e3",
                "estimate": True, "figures_verified": self.verified}


#: energy_basis kinds, in words
BASIS_KINDS = {"measured": "measured energy", "cycles_estimate": "cycles x current",
               "instructions_x_cpi": "instructions x CPI"}


def sig3(value: float) -> str:
    """A number to 3 significant figures: estimates carry no more."""
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = 2 - int(math.floor(math.log10(abs(value))))
    rounded = round(value, decimals)
    if rounded and int(math.floor(math.log10(abs(rounded)))) != int(math.floor(math.log10(abs(value)))):
        decimals -= 1  # 999.6 rounds up to 1000: still 3 figures
        rounded = round(value, decimals)
    return f"{rounded:,.0f}" if decimals <= 0 else f"{rounded:.{decimals}f}"


def basis_label(basis: dict | None, detail: bool = False) -> str:
    """'estimate: instructions x CPI, unverified' for an `energy_basis`
    (detail: 'estimate: instructions x CPI 1.0 x datasheet current,
    unverified'). Without a basis a figure is an estimate nobody verified."""
    if not isinstance(basis, dict):
        return "estimate, unverified"
    words = (basis.get("basis_text") if detail else None) or BASIS_KINDS.get(basis.get("kind"), "estimate")
    return f"estimate: {words}, {'verified' if basis.get('verified') else 'unverified'}"


def format_estimate(value: float | None, unit: str, basis: dict | None, detail: bool = False) -> str:
    """'670 uJ (estimate: instructions x CPI, unverified)': 3 significant
    figures and the label, for every report that prints an energy."""
    if value is None:
        return "-"
    return f"{sig3(value)} {unit} ({basis_label(basis, detail)})"
