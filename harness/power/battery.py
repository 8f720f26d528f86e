"""Average power and battery life of a duty-cycled device, as an estimate.

A device that runs one inference every 1/rate seconds and sleeps in
between draws on average

    P_avg = E_inference x rate + P_sleep x (1 - duty),  duty = rate x t_active

and a battery of C mAh at V volts (C x V mWh) lasts C x V / P_avg. The
energy per inference comes from the run (its `energy_basis` says how);
the sleep power from the platform file's [power.sleep] figure, with its
tag. Everything else a product spends (sensor, radio, wake-ups, regulator
losses, battery derating) is left out, and `assumptions` says so.
"""

from __future__ import annotations

import logging
import math
import re

from ..errors import UsageError
from .energy import EnergyModel, sig3

log = logging.getLogger(__name__)

#: --rate units -> seconds
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0,
        "d": 86400.0, "day": 86400.0}
RATE_HINT = 'give inferences per time, e.g. --rate 1/s, --rate 10/min, --rate 2/h (a bare number is per second)'


def parse_rate(text) -> float:
    """Inferences per second from '1/s', '10/min', '2/h', '0.5' (per
    second). Zero, negative, infinite or unreadable rates are refused."""
    raw = str(text).strip()
    m = re.fullmatch(r"([0-9.eE+-]+)\s*(?:/\s*([a-z]+))?", raw)
    unit = (m.group(2) if m else None) or "s"
    if not m or unit not in _PER:
        raise UsageError(f"--rate {raw!r} is not a rate", hint=RATE_HINT)
    try:
        value = float(m.group(1))
    except ValueError:
        raise UsageError(f"--rate {raw!r} is not a rate", hint=RATE_HINT) from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--rate {raw!r} must be more than 0 inferences per unit of time", hint=RATE_HINT)
    return value / _PER[unit]


def check_inputs(rate, battery_mah, battery_v) -> dict | None:
    """The battery settings as numbers, or None when none were given;
    anything missing, zero, negative or not a number is exit 2 before
    anything is built or booted."""
    if rate is None and battery_mah is None:
        if battery_v is not None:
            raise UsageError("--battery-v was given without --rate and --battery-mah",
                             hint="give all of them: --rate 1/s --battery-mah 220 [--battery-v 3.0]")
        return None
    if rate is None or battery_mah is None:
        raise UsageError("a battery-life estimate needs both --rate and --battery-mah",
                         hint="e.g. --rate 1/s --battery-mah 220 [--battery-v 3.0]")
    settings: dict[str, float | str | bool] = {"rate_per_s": parse_rate(rate), "rate": str(rate)}
    for name, value in (("battery_mah", battery_mah), ("battery_v", 3.0 if battery_v is None else battery_v)):
        flag = "--" + name.replace("_", "-")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise UsageError(f"{flag} {value!r} is not a number", hint=f"e.g. {flag} 220") from None
        if not math.isfinite(number) or number <= 0:
            raise UsageError(f"{flag} {value!r} must be a positive number",
                             hint="the battery's capacity in mAh and its nominal voltage in V, e.g. "
                                  "--battery-mah 220 --battery-v 3.0")
        settings[name] = number
    settings["battery_v_default"] = battery_v is None
    return settings


def check_platform(energy: EnergyModel | None, platform_name: str) -> None:
    """Refuse, before booting, a battery estimate the platform cannot give."""
    if energy is None:
        raise UsageError(f"platform {platform_name} has no active-power figure, so no energy or battery-life "
                         f"estimate", hint="add a tagged [power.active] table to the platform file "
                                           "(docs/power-sources.md), or drop --rate/--battery-mah")
    if energy.sleep is None:
        raise UsageError(f"platform {platform_name} has no sleep-power figure, so no battery-life estimate",
                         hint="add a tagged [power.sleep] table (the state the device sleeps in between "
                              "inferences) to the platform file, or drop --rate/--battery-mah")


def estimate(settings: dict, energy_uj: float, energy: EnergyModel, energy_basis: dict | None,
             clock_hz: float | None = None) -> dict:
    """The `result.battery` document: average power, life in hours and
    days, the band from the energy's band, and the assumptions. Raises
    UsageError when the rate needs more than 100% of the time awake."""
    sleep = energy.sleep
    assert sleep is not None, "check_platform refuses a battery estimate without a sleep figure"
    rate = settings["rate_per_s"]
    active_mw, _ = energy.power_at(clock_hz)
    active_s = energy_uj / 1e6 / (active_mw / 1e3)
    duty = rate * active_s
    if duty > 1:
        raise UsageError(f"--rate {settings['rate']} needs {sig3(duty * 100)}% of the time awake: one inference "
                         f"takes about {sig3(active_s * 1e3)} ms (estimate), so at most {sig3(1 / active_s)} per "
                         f"second fit", hint=f"lower --rate below {sig3(1 / active_s)}/s")
    sleep_uw = sleep.value
    capacity_mwh = settings["battery_mah"] * settings["battery_v"]

    def life_h(scale: float) -> float:
        d = min(1.0, duty * scale)
        avg_uw = energy_uj * scale * rate + sleep_uw * (1 - d)
        return capacity_mwh / (avg_uw / 1e3)

    avg_uw = energy_uj * rate + sleep_uw * (1 - duty)
    hours = life_h(1.0)
    pct = (energy_basis or {}).get("error_pct")
    band = None
    if pct:
        band = {"life_days_min": round(life_h(1 + pct[1] / 100) / 24, 3),
                "life_days_max": round(life_h(1 + pct[0] / 100) / 24, 3),
                "from": f"energy per inference {pct[0]:+.1f}%/{pct[1]:+.1f}%; the sleep figure "
                        f"({sleep.status}) is not in the band"}
    voltage = f"{settings['battery_v']:g} V" + (" (default)" if settings.get("battery_v_default") else "")
    return {
        "estimate": True,
        "rate_per_s": rate, "rate": settings["rate"],
        "battery_mah": settings["battery_mah"], "battery_v": settings["battery_v"],
        "energy_per_inference_uj": round(energy_uj, 6), "active_s": active_s, "duty": duty,
        "sleep_uw": sleep_uw, "sleep_state": sleep.state, "sleep_status": sleep.status,
        "active_power_mw": active_mw, "average_uw": avg_uw,
        "life_hours": hours, "life_days": hours / 24,
        "band": band, "error_band": band["from"] if band else "unknown: the energy estimate's band is unknown",
        "formula": "average_uw = energy_per_inference_uj x rate_per_s + sleep_uw x (1 - duty); "
                   "life_hours = battery_mah x battery_v / (average_uw / 1000)",
        "assumptions": [
            "each inference costs the run's mean estimated energy per inference "
            f"({(energy_basis or {}).get('basis_text', 'estimate')})",
            f"between inferences the device sleeps in {sleep.state or 'its sleep state'} at "
            f"{sig3(sleep_uw)} uW ({sleep.status}: {sleep.source})",
            "nothing else draws power: no sensor, radio, I/O or wake-up energy",
            f"the whole {settings['battery_mah']:g} mAh at {voltage} is usable (no derating for temperature, "
            "self-discharge or cut-off voltage) and the regulator is lossless",
        ],
    }


def describe(battery: dict) -> list[str]:
    """Console lines: average power and life, the band, the assumptions."""
    if battery.get("error"):
        return [f"battery life: not estimated: {battery['error']}"]
    life = battery["life_days"]
    span = f"{sig3(life)} days" if life >= 2 else f"{sig3(battery['life_hours'])} hours"
    band = battery.get("band")
    band_text = (f" (band {sig3(band['life_days_min'])}-{sig3(band['life_days_max'])} days: {band['from']})"
                 if band else f" (band {battery['error_band']})")
    lines = [f"battery life estimate: {span} on {battery['battery_mah']:g} mAh at {battery['battery_v']:g} V, "
             f"one inference at {battery['rate']}: average {sig3(battery['average_uw'])} uW, awake "
             f"{sig3(battery['duty'] * 100)}% of the time{band_text}"]
    lines += [f"  assumes {a}" for a in battery["assumptions"]]
    return lines


def battery_result(settings: dict | None, result, energy: EnergyModel | None, failed: bool) -> dict | None:
    """`result.battery` at the end of a run: the estimate from the run's
    mean energy per inference, or {"error": ...} when there is none. A rate
    that does not fit (duty > 100%) is bad input (exit 2) unless the
    firmware already failed, whose verdict comes first."""
    if not settings:
        return None
    energies = [v.energy for v in result.vectors if v.energy]
    if energy is None or energy.sleep is None or not energies:
        return {"error": "no energy estimate in this run (no counts or cycles estimate, or no power figures)",
                **{k: settings[k] for k in ("rate", "battery_mah", "battery_v")}}
    mean_uj = sum(e["uj"] for e in energies) / len(energies)
    # the clock the energies were computed at: the cycles estimate's, or the board's for counted cycles
    clock = next((v.cycles.get("clock_hz") for v in result.vectors if getattr(v, "cycles", None)),
                 None) or energy.counted_clock_hz
    try:
        return estimate(settings, mean_uj, energy, result.energy_basis, clock)
    except UsageError as exc:
        if failed:
            return {"error": str(exc), **{k: settings[k] for k in ("rate", "battery_mah", "battery_v")}}
        raise
