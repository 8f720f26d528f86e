"""Energy per inference, as an estimate and labelled so.

    energy = time x active power,  time = cycles / clock,
    active power = supply voltage x active current (mA, or uA/MHz x MHz)

Cycles come from a cycle counter (`kind: "cycles"`), or from an instruction
count times the platform's cycles-per-instruction figure
(`kind: "cycles_estimate"`). Every figure comes from the platform file's
[power] and [counter] tables, which cite their datasheet; the model used is
written into every result.
"""

from __future__ import annotations

from dataclasses import dataclass

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
                       cpi_source=counter.get("cpi_source"), verified=bool(power.get("verified", False)))
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
        """Cycles for a count of `kind`, and the kind of that figure."""
        if kind == "cycles":
            return value, "cycles"
        if kind == "instructions" and self.cycles_per_instruction:
            return value * self.cycles_per_instruction, "cycles_estimate"
        return None

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
