"""Energy per inference, as an estimate and labelled so.

    energy = time x active power,  time = cycles / clock,
    active power = supply voltage x active current (or a measured power)

Cycles come from a cycle counter (a board's DWT), from the timing model's
cycles estimate (QEMU plugin, harness/timing), or from an instruction count
times the platform's cycles-per-instruction figure (the last resort).
Every power figure comes from the platform file's [power] table, tagged
with how good it is (`STATUSES`): `verified` (read in the named datasheet
table), `derived` (computed from a published measurement, formula given)
or `assumed` (recalled or borrowed; why given). docs/power-sources.md lists
every figure with its source.

Every energy figure travels with its label, `energy_basis` (`basis()`):
what the cycles are (`kind`), whether the inputs were checked (`verified`),
the tags of the power figures, the error band that can honestly be stated
(the cycles estimate's band combined with the power figure's), and the
source. Printed, a figure has 3 significant figures and that label
(`format_estimate`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..platforms import CounterSpec, PowerFigureSpec, PowerSpec

log = logging.getLogger(__name__)

#: how good a power figure is
STATUSES = {
    "verified": "read in the named datasheet table (revision, table/page and conditions given)",
    "derived": "computed from a published measurement (the formula is given)",
    "assumed": "recalled or borrowed from another part (why is given); not checked",
}

#: [power.<figure>] value keys -> (unit, factor to the figure's base unit: mW for active, uW for sleep)
_ACTIVE_UNITS = {"mw": 1.0, "ma": None, "ua_per_mhz": None}
_SLEEP_UNITS = {"uw": 1.0, "ua": None}


@dataclass(frozen=True)
class PowerFigure:
    """One tagged power figure: `value` in mW (active) or uW (sleep)."""

    value: float
    status: str
    source: str
    conditions: str = ""
    basis: str = ""  # derived: the formula; assumed: why; verified: optional note
    band_pct: tuple[float, float] | None = None  # measured or stated spread, percent (low, high)
    state: str = ""  # sleep: the low-power state a duty-cycled device sleeps in

    def band_text(self) -> str:
        if self.band_pct is None:
            return "unknown"
        lo, hi = self.band_pct
        return f"{lo:+.1f}%/{hi:+.1f}%"

    def as_dict(self) -> dict:
        d = {"status": self.status, "source": self.source, "conditions": self.conditions, "basis": self.basis,
             "band_pct": list(self.band_pct) if self.band_pct else None}
        if self.state:
            d["state"] = self.state
        return d


def _figure(table: PowerFigureSpec, units: dict, where: str, key: str, voltage: float, clock_hz: float) -> PowerFigure:
    """A [power.<key>] table (typed and range-checked by harness/platforms.py)
    as a PowerFigure in mW (active) or uW (sleep)."""
    name = f"{where}: power.{key}"
    values = {"mw": table.mw, "ma": table.ma, "ua_per_mhz": table.ua_per_mhz, "uw": table.uw, "ua": table.ua}
    given = [u for u, v in values.items() if v is not None]
    if len(given) != 1 or given[0] not in units:
        raise UsageError(f"{name} needs exactly one value ({' or '.join(units)}), found {given or 'none'}",
                         hint=f"give the figure once, e.g. {next(iter(units))} = 40.7")
    voltage = table.voltage_v or voltage  # a figure measured at another voltage says so
    unit = given[0]
    raw = float(values[unit] or 0.0)
    if unit == "ma":
        value = raw * voltage  # mW
    elif unit == "ua_per_mhz":
        value = raw * clock_hz / 1e6 / 1000 * voltage  # mW
    elif unit == "ua":
        value = raw * voltage  # uW
    else:
        value = raw
    return PowerFigure(value, table.status, table.source.strip(), table.conditions, table.basis.strip(),
                       table.band_pct, table.state)


def _legacy_figures(power: PowerSpec, voltage: float, clock: float) -> tuple[PowerFigure, PowerFigure | None]:
    """A flat, untagged [power] table (active_ma / active_ua_per_mhz,
    idle_ua, verified): `assumed` unless it says verified = true."""
    status = "verified" if power.verified else "assumed"
    basis = "" if status == "verified" else "an untagged [power] table that does not say it was checked"
    if power.active_ma is not None:
        mw = power.active_ma * voltage
    else:
        mw = (power.active_ua_per_mhz or 0.0) * clock / 1e6 / 1000 * voltage
    active = PowerFigure(mw, status, power.datasheet, power.conditions, basis)
    sleep = (PowerFigure(power.idle_ua * voltage, status, power.datasheet, "", basis)
             if power.idle_ua is not None else None)
    return active, sleep


@dataclass(frozen=True)
class EnergyModel:
    part: str
    voltage_v: float
    clock_hz: float  # the clock the active figure was measured or specified at
    active: PowerFigure  # mW at clock_hz
    sleep: PowerFigure | None  # uW, in the state a duty-cycled device sleeps in
    cycles_per_instruction: float | None
    cpi_source: str | None
    source: str = ""  # "<platform file> [power]: <source of the active figure>"
    counted_clock_hz: float | None = None  # the clock a board's counted cycles run at (its firmware's)

    @classmethod
    def from_platform(cls, power: PowerSpec | None, counter: CounterSpec, where: str,
                      run_clock_hz: float | None = None) -> "EnergyModel | None":
        """The platform file's model (its [power] and [counter] tables);
        `run_clock_hz`: the clock the firmware runs the board at, which a
        counted-cycles figure is scaled to."""
        if power is None or not power.has_active:
            return None  # no active-power figure: no energy estimate
        name = Path(where).name
        voltage, clock = power.voltage_v, power.clock_hz
        if power.active is not None:
            active = _figure(power.active, _ACTIVE_UNITS, name, "active", voltage, clock)
            sleep = _figure(power.sleep, _SLEEP_UNITS, name, "sleep", voltage, clock) if power.sleep else None
        else:
            active, sleep = _legacy_figures(power, voltage, clock)
        return cls(part=power.part, voltage_v=voltage, clock_hz=clock, active=active, sleep=sleep,
                   cycles_per_instruction=counter.cycles_per_instruction, cpi_source=counter.cpi_source or None,
                   source=f"{name} [power]: {active.source}",
                   counted_clock_hz=float(run_clock_hz) if run_clock_hz and counter.kind == "cycles" else None)

    # -- the figures --------------------------------------------------------------

    @property
    def verified(self) -> bool:
        return self.active.status == "verified"

    @property
    def active_power_mw(self) -> float:
        return self.active.value

    @property
    def active_ma(self) -> float:
        return self.active.value / self.voltage_v

    @property
    def sleep_uw(self) -> float | None:
        return self.sleep.value if self.sleep else None

    def power_at(self, clock_hz: float | None) -> tuple[float, str | None]:
        """Active power in mW at `clock_hz`, and how it was scaled (None: the
        figure is for that clock). Scaling is linear in the clock: constant
        energy per cycle, which ignores static current and a voltage range
        that changes with the clock."""
        if not clock_hz or abs(clock_hz - self.clock_hz) < 1:
            return self.active.value, None
        note = (f"power scaled linearly from {self.clock_hz / 1e6:g} MHz to {clock_hz / 1e6:g} MHz "
                f"(constant energy per cycle: ignores static current and voltage-range changes)")
        return self.active.value * clock_hz / self.clock_hz, note

    def cycles(self, value: float, kind: str) -> tuple[float, str] | None:
        """Cycles for a count of `kind`, and the basis kind of an energy
        figure from them (BASIS_KINDS). Counted cycles still give an
        estimate (`cycles_estimate`): the power is the platform file's;
        `measured` is kept for an energy a meter measured."""
        if kind == "cycles":
            return value, "cycles_estimate"
        if kind == "instructions" and self.cycles_per_instruction:
            return value * self.cycles_per_instruction, "instructions_x_cpi"
        return None

    def energy_uj(self, cycles: float, clock_hz: float | None = None) -> float:
        clock = clock_hz or self.clock_hz
        mw, _ = self.power_at(clock)
        return cycles / clock * mw * 1e3  # mW x s = mJ; x1e3 = uJ

    def for_vector(self, count: dict | None, cycles: dict | None) -> tuple[dict, str] | None:
        """A vector's energy dict and its basis kind: from the timing
        model's cycles estimate when there is one (`VectorResult.cycles`),
        else from the count (counted cycles, or instructions x CPI)."""
        if cycles and cycles.get("value") is not None:
            clock = float(cycles.get("clock_hz") or self.clock_hz)
            value = float(cycles["value"])
            return ({"uj": round(self.energy_uj(value, clock), 6), "cycles": round(value), "basis": "cycles_estimate",
                     "cycles_source": cycles.get("source", "qemu-plugin"), "estimate": True}, "cycles_estimate")
        if not count:
            return None
        found = self.cycles(count["value"], count["kind"])
        if found is None:
            return None
        value, kind = found
        counted = self.counted_clock_hz if count["kind"] == "cycles" else None
        return ({"uj": round(self.energy_uj(value, counted), 6), "cycles": round(value), "basis": kind, "estimate": True},
                kind)

    # -- the label ----------------------------------------------------------------

    def basis(self, kind: str, cycles_basis: dict | None = None) -> dict:
        """The `energy_basis` label of a figure of this basis kind.

        verified: only when the power figure was read in a datasheet and the
        cycles were counted (an estimate or an assumed CPI never is).
        error_band: the cycles' band combined with the power figure's
        (`combine_bands`); "unknown" wherever either is not known, with the
        reason.
        """
        power_words = f"{self.active.status} power"
        scale_note = None
        if kind == "instructions_x_cpi":
            cpi = self.cycles_per_instruction or 0.0  # this kind exists only with a CPI (cycles())
            cycles = f"instructions x CPI {cpi:.1f}" if cpi.is_integer() else f"instructions x CPI {cpi:g}"
            verified = False
            cycles_band = "unknown"
            if self.cpi_source and "lower bound" in self.cpi_source:
                cycles_band += f"; CPI {cpi} is a lower bound, so real cycles are higher"
            cycles_pct = None
        elif cycles_basis:  # the timing model's estimate (harness/timing)
            cycles = f"cycles estimate ({cycles_basis.get('model', 'timing model')})"
            verified = False
            cycles_band = str(cycles_basis.get("error_band") or "unknown (not validated)")
            cycles_pct = band_pct_of(cycles_band)
            _, scale_note = self.power_at(cycles_basis.get("clock_hz"))
        else:
            cycles = "measured cycles"
            verified = self.verified
            cycles_band, cycles_pct = "0% (counted)", (0.0, 0.0)
            _, scale_note = self.power_at(self.counted_clock_hz)
            verified = verified and scale_note is None
        band, pct = combine_bands(cycles_band, cycles_pct, self.active, scale_note)
        formula_clock = self.clock_hz / 1e6
        return {"kind": kind, "verified": verified, "error_band": band, "error_pct": pct, "source": self.source,
                "power_status": self.active.status, "sleep_status": self.sleep.status if self.sleep else None,
                "power_scaling": scale_note,
                "formula": f"{cycles} / {formula_clock:g} MHz x {self.active.value:.3g} mW "
                           f"({power_words}: {self.voltage_v:g} V x {self.active_ma:.3g} mA)",
                "basis_text": f"{cycles} x {power_words}"}

    def as_dict(self) -> dict:
        return {"part": self.part, "voltage_v": self.voltage_v, "clock_hz": self.clock_hz,
                "active_ma": round(self.active_ma, 4), "active_power_mw": round(self.active_power_mw, 4),
                "active": self.active.as_dict(),
                "sleep_uw": round(self.sleep.value, 4) if self.sleep else None,
                "sleep": self.sleep.as_dict() if self.sleep else None,
                "cycles_per_instruction": self.cycles_per_instruction, "cpi_source": self.cpi_source,
                "formula": "energy_uj = cycles / clock_hz * active_power_mw * 1e3",
                "estimate": True, "figures_verified": self.verified, "datasheet": self.active.source,
                "conditions": self.active.conditions}


def band_pct_of(text: str | None) -> tuple[float, float] | None:
    """The numeric band of a band text: '+-9% (...)' -> (-9, 9),
    '-1.6%/+2.0% ...' -> (-1.6, 2.0); None when it is not numeric
    ('unknown ...')."""
    if not text:
        return None
    head = str(text).split(" ", 1)[0].rstrip(",;")
    try:
        if head.startswith(("+-", "±")):
            v = float(head.lstrip("+-±").rstrip("%"))
            return -v, v
        if "/" in head:
            lo, hi = head.split("/", 1)
            return float(lo.rstrip("%")), float(hi.rstrip("%"))
    except ValueError:
        return None
    return None


def combine_bands(cycles_band: str, cycles_pct: tuple[float, float] | None, power: PowerFigure,
                  scale_note: str | None = None) -> tuple[str, list[float] | None]:
    """Where the true energy lies relative to the estimate, from the
    cycles' band and the power figure's. The cycles band is the estimate's
    error against silicon, e = estimate / silicon - 1, so the true cycles are
    estimate / (1 + e). The power band is the measured spread around the
    figure, so the true power is figure x (1 + p). Energy = cycles x power:

        true / estimate in [(1 + p_lo) / (1 + e_hi), (1 + p_hi) / (1 + e_lo)]

    (an estimate seen 59% low means silicon may take 2.46x it). Unknown when
    either band is unknown, when e_lo <= -100%, or when the power was scaled
    to another clock (the scaling's own error is not known)."""
    parts = f"cycles {cycles_band}; power {power.band_text()} ({power.status})"
    if scale_note:
        return f"unknown: {scale_note}; {parts}", None
    if cycles_pct is None or power.band_pct is None or cycles_pct[0] <= -100 or power.band_pct[0] <= -100:
        return f"unknown; {parts}", None  # (a measured spread of 100% or more, e.g. a calibration's, bounds nothing)
    lo = ((1 + power.band_pct[0] / 100) / (1 + cycles_pct[1] / 100) - 1) * 100
    hi = ((1 + power.band_pct[1] / 100) / (1 + cycles_pct[0] / 100) - 1) * 100
    return f"{lo:+.1f}%/{hi:+.1f}% (true energy against the estimate; {parts})", [round(lo, 2), round(hi, 2)]


#: energy_basis kinds, in words
BASIS_KINDS = {"measured": "measured energy", "cycles_estimate": "cycles x power",
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


def short_band(basis: dict | None) -> str:
    """'-10.4%/+11.2%' or 'band unknown': the band as a column or a
    message carries it (the full text is in `energy_basis.error_band`)."""
    from ..timing.validation import UNLIKE

    pct = (basis or {}).get("error_pct")
    if pct:  # a cycles band set by a comparison whose software differed says so here too
        unlike = " (cycles band not like for like)" if UNLIKE in str((basis or {}).get("error_band") or "") else ""
        return f"{pct[0]:+.1f}%/{pct[1]:+.1f}%{unlike}"
    return "band unknown"


def basis_label(basis: dict | None, detail: bool = False) -> str:
    """'estimate: cycles x power, unverified, -10.5%/+11.2%' for an
    `energy_basis` ('band unknown' when no band can be claimed; detail:
    'estimate: cycles estimate (cortex-m4) x derived power, unverified,
    -10.5%/+11.2%'). Without a basis a figure is an estimate nobody
    verified."""
    if not isinstance(basis, dict):
        return "estimate, unverified, band unknown"
    words = (basis.get("basis_text") if detail else None) or BASIS_KINDS.get(str(basis.get("kind")), "estimate")
    label = f"estimate: {words}, {'verified' if basis.get('verified') else 'unverified'}"
    if basis.get("kind") != "measured":  # the band goes wherever the figure goes
        label += f", {short_band(basis)}"
    return label


def format_estimate(value: float | None, unit: str, basis: dict | None, detail: bool = False) -> str:
    """'670 uJ (estimate: instructions x CPI, unverified)': 3 significant
    figures and the label, for every report that prints an energy."""
    if value is None:
        return "-"
    return f"{sig3(value)} {unit} ({basis_label(basis, detail)})"


def cycles_label(cycles_basis: dict | None, cycles: dict | None) -> dict | None:
    """The cycles estimate's label for an energy basis: the run's
    `cycles_basis` (harness/timing), or, before it is known, one built from
    the vector's own figure and the model's validation band."""
    if not cycles:
        return None
    if cycles_basis:
        return cycles_basis
    from ..timing.validation import error_band

    return {"model": cycles.get("model"), "clock_hz": cycles.get("clock_hz"), "error_band": error_band(cycles.get("model"))}
