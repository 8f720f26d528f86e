"""Energy from the cycles estimate, the power figures' tags, error bands,
battery life, latency budgets and comparing estimates (issue #13).

No emulator: the cycles estimates are the contract's `VectorResult.cycles`
dicts written by hand (what harness/timing produces from a QEMU run), so
the arithmetic can be checked by hand. The platform files are the real
ones. The CLI checks run the real `hil` and stop before anything boots.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace as dc_replace
from typing import Any

import pytest

from harness.checks.budgets import cycle_budget_measurements, evaluate
from harness.errors import UsageError
from harness.platforms import CounterSpec, available, load_platform, power_spec
from harness.power.battery import check_inputs, estimate, parse_rate
from harness.power.energy import STATUSES, EnergyModel, PowerFigure, band_pct_of, cycles_label, short_band
from harness.results.compare import compare, timing_label
from harness.results.result import RunResult, VectorResult
from harness.timing.validation import UNKNOWN, cycles_error, error_band, error_pct
from helpers import MODELS, hil

DEMO = MODELS / "demo" / "gesture.tflite"

CM4_BASIS = {"model": "cortex-m4", "core": "Cortex-M4", "clock_hz": 120_000_000, "source": "qemu-plugin",
             "error_band": "+-9% (largest error seen, CoreMark/MHz against Arm's published figure: 1 benchmark, "
                           "timing/validation.toml)"}


def _model_or_none(name: str) -> EnergyModel | None:
    p = load_platform(name)
    return EnergyModel.from_platform(p.power, p.counter, str(p.path))


def _model(name: str) -> EnergyModel:
    model = _model_or_none(name)
    assert model is not None, f"{name} has no energy model"
    return model


def _energy(model: EnergyModel, count: dict | None, cycles: dict | None) -> tuple[dict, str]:
    """EnergyModel.for_vector where the test gives it a count or an estimate (so never None)."""
    energy = model.for_vector(count, cycles)
    assert energy is not None
    return energy


def _settings(rate: str, battery_mah: str, battery_v: str | None) -> dict:
    """check_inputs where the test gives it a rate and a battery (so never None)."""
    settings = check_inputs(rate, battery_mah, battery_v)
    assert settings is not None
    return settings


def _cycles(value: int, clock_hz: int = 120_000_000, model: str = "cortex-m4") -> dict:
    return {"value": value, "kind": "cycles_estimate", "model": model, "source": "qemu-plugin",
            "latency_ms": value / clock_hz * 1e3, "clock_hz": clock_hz}


# -- power figures and their tags ------------------------------------------------------------------

def test_every_power_figure_is_tagged_and_cited():
    tagged = 0
    for name in available():
        p = load_platform(name)
        if not p.power:
            continue
        model = EnergyModel.from_platform(p.power, p.counter, str(p.path))
        for key in ("active", "sleep"):
            table = getattr(p.power, key)
            if table is None:
                continue
            assert table.status in STATUSES and table.source, (name, key)
            assert table.status == "verified" or table.basis, (name, key, "derived/assumed say how or why")
            tagged += 1
        if model is not None:
            assert model.source.startswith(f"{p.path.name} [power]: ")
    assert tagged >= 8  # nucleo-l4r5zi, mps2-an386, stm32l4r5-qemu, nrf52840dk: active and sleep each
    l4 = _model("nucleo-l4r5zi")
    assert (l4.active.status, l4.active.band_pct, l4.clock_hz, l4.voltage_v) == ("derived", (-1.6, 2.0), 120e6, 1.8)
    assert l4.active_power_mw == pytest.approx(40.67) and l4.active_ma == pytest.approx(22.594, abs=1e-3)
    assert l4.sleep is not None
    assert l4.sleep.status == "assumed" and l4.sleep_uw == pytest.approx(2.8 * 1.8)
    assert _model("nrf52840dk").active.status == "assumed"
    assert _model_or_none("nucleo-h743zi") is None  # no readable run-current table: no energy at all


def test_an_untagged_or_unsourced_figure_is_refused_with_the_fix():
    base = {"part": "X", "voltage_v": 3.0, "clock_hz": 1e6}
    def from_table(power: dict) -> EnergyModel | None:
        return EnergyModel.from_platform(power_spec(power, "p.toml"), CounterSpec(), "p.toml")

    with pytest.raises(UsageError, match=r"power.active.status` 'checked'") as exc:
        from_table({**base, "active": {"ma": 1, "status": "checked", "source": "DS1"}})
    assert exc.value.hint is not None
    assert "verified" in exc.value.hint and "derived" in exc.value.hint and "assumed" in exc.value.hint
    with pytest.raises(UsageError, match="basis` is missing for a derived figure"):
        from_table({**base, "active": {"ma": 1, "status": "derived", "source": "DS1"}})
    with pytest.raises(UsageError, match="source` is missing"):
        from_table({**base, "active": {"ma": 1, "status": "verified"}})
    with pytest.raises(UsageError, match="exactly one value"):
        from_table({**base, "active": {"ma": 1, "mw": 3, "status": "verified", "source": "DS1"}})
    # a figure that is zero or negative, a band that cannot be, a zero clock: refused, not a ZeroDivisionError later
    for active, problem in (({"mw": 0}, "mw` must be more than 0"), ({"ma": -1}, "ma` must be more than 0"),
                            ({"mw": 1, "band_pct": [5, -5]}, "band_pct"), ({"mw": 1, "band_pct": [-100, 5]}, "band_pct")):
        with pytest.raises(UsageError, match=problem):
            from_table({**base, "active": {**active, "status": "verified", "source": "DS1"}})
    with pytest.raises(UsageError, match="clock_hz` must be more than 0"):
        from_table({**base, "clock_hz": 0, "active": {"mw": 1, "status": "verified", "source": "DS1"}})


# -- energy from the cycles estimate -----------------------------------------------------------

def test_energy_comes_from_the_cycles_estimate_when_there_is_one():
    m = _model("stm32l4r5-qemu")
    count = {"value": 2_000_000, "kind": "instructions"}
    from_count, kind = _energy(m, count, None)
    assert kind == "instructions_x_cpi" and from_count["cycles"] == 2_000_000  # CPI 1.0, the old lower bound
    assert from_count["uj"] == pytest.approx(2e6 / 120e6 * 40.67e3)
    from_cycles, kind = _energy(m, count, _cycles(2_700_000))
    assert kind == "cycles_estimate" and from_cycles["cycles"] == 2_700_000
    assert from_cycles["uj"] == pytest.approx(2.7e6 / 120e6 * 40.67e3)  # 915.1 uJ: time at 120 MHz x 40.67 mW

    basis = m.basis("cycles_estimate", CM4_BASIS)
    assert basis["basis_text"] == "cycles estimate (cortex-m4) x derived power" and basis["verified"] is False
    assert basis["power_status"] == "derived" and basis["sleep_status"] == "assumed"
    # the true energy against the estimate: (1 - 1.6%) / (1 + 9%) - 1 and (1 + 2.0%) / (1 - 9%) - 1
    assert basis["error_pct"] == [-9.72, 12.09]
    assert basis["error_band"].startswith("-9.7%/+12.1% (true energy against the estimate; cycles +-9% ")
    # an estimate seen 59% low: silicon may take 1 / 0.41 = 2.46x it, and the band says so
    wide = m.basis("cycles_estimate", dict(CM4_BASIS, error_band="+-59.3% (largest cycles error seen, MLPerf)"))
    assert wide["error_pct"] == [-38.23, 150.61]
    assert m.basis("instructions_x_cpi")["error_pct"] is None  # CPI 1.0 is a bound, not a band
    # a measured power spread of 100% or more (a calibration's per-invoke spread) bounds nothing: unknown
    noisy = dc_replace(m, active=dc_replace(m.active, band_pct=(-120.0, 120.0)))
    assert noisy.basis("cycles_estimate", CM4_BASIS)["error_pct"] is None


def test_a_power_figure_for_another_clock_is_scaled_and_its_band_not_claimed():
    """mps2-an386 models its Cortex-M4 at the FPGA's 25 MHz; the borrowed
    STM32L4R5 power is for 120 MHz: scaled linearly (same energy per cycle),
    and the band is 'unknown' because the scaling's own error is not known."""
    m = _model("mps2-an386")
    energy, _ = _energy(m, None, _cycles(1_000_000, clock_hz=25_000_000))
    assert energy["uj"] == pytest.approx(1e6 / 120e6 * 40.67e3)  # energy per cycle unchanged
    assert m.power_at(25e6)[0] == pytest.approx(40.67 * 25 / 120)
    basis = m.basis("cycles_estimate", dict(CM4_BASIS, clock_hz=25_000_000))
    assert basis["error_pct"] is None and basis["error_band"].startswith("unknown: power scaled linearly from 120 MHz "
                                                                        "to 25 MHz")
    # a board's counted cycles at its firmware's 80 MHz: the same scaling, said the same way
    p = load_platform("nucleo-l4r5zi")
    board = EnergyModel.from_platform(p.power, p.counter, str(p.path), run_clock_hz=p.firmware.clock_hz)
    assert board is not None
    energy, kind = _energy(board, {"value": 120_000_000, "kind": "cycles"}, None)
    assert kind == "cycles_estimate" and energy["uj"] == pytest.approx(40_670)  # 1 s at 120 MHz worth of cycles
    assert board.basis(kind)["error_band"].startswith("unknown: power scaled linearly from 120 MHz to 80 MHz")


def test_validation_bands_come_from_the_validation_files(tmp_path):
    assert error_band("cortex-m4", tmp_path) == UNKNOWN and error_pct("cortex-m4", tmp_path) is None
    (tmp_path / "validation.toml").write_text(textwrap.dedent("""
        [[cores]]
        model = "cortex-m4"
        benchmark = "coremark"
        error_pct = -6.5
        [[cores]]
        model = "cortex-m7"
        error_pct = -30.0
    """))
    (tmp_path / "validation-mlperf-tiny.toml").write_text(textwrap.dedent("""
        [kws]
        model = "cortex-m4"
        error_pct = 8.9
        [garbage]
        model = "cortex-m4"
        error_pct = "not a number"
    """))
    assert error_pct("cortex-m4", tmp_path) == 8.9  # the largest error seen, either sign
    band = error_band("cortex-m4", tmp_path)
    assert band.startswith("+-8.9% (largest cycles error seen, ") and "timing/validation.toml" in band
    # CoreMark/MHz is a rate: 6.5% low is cycles 1 / 0.935 - 1 = 6.95% high; 30% low would be 42.9% high
    assert error_pct("cortex-m7", tmp_path) == pytest.approx(100 / 70 * 100 - 100)
    assert cycles_error(-6.5, "rate") == pytest.approx(6.952, abs=1e-3) and cycles_error(8.9, "time") == 8.9
    assert "MLPerf Tiny" in band and band_pct_of(band) == (-8.9, 8.9)
    assert error_band("cortex-m0plus", tmp_path) == UNKNOWN
    # before the run's cycles_basis is known, a vector's own figure and the validation give the label
    label = cycles_label(None, _cycles(10))
    assert label is not None
    assert label["model"] == "cortex-m4" and label["error_band"]


def test_a_band_set_by_a_comparison_that_is_not_like_for_like_says_so(tmp_path):
    """MLPerf Tiny rows are like_for_like = false (the software differs from
    the submission's): they may set the band, but every printed form of it
    says so; a band set by a like-for-like comparison does not."""
    (tmp_path / "validation.toml").write_text('[[cores]]\nmodel = "cortex-m4"\nerror_pct = -6.5\n'
                                              '[[cores]]\nmodel = "cortex-m7"\nerror_pct = -30.0\n')
    (tmp_path / "validation-mlperf-tiny.toml").write_text(
        '[kws]\nmodel = "cortex-m4"\nerror_pct = -59.3\nlike_for_like = false\n'
        '[ad]\nmodel = "cortex-m7"\nerror_pct = -10.0\nlike_for_like = false\n')
    band = error_band("cortex-m4", tmp_path)
    assert band.startswith("+-59.3% (largest cycles error seen, set by a comparison that is not like for like")
    assert "1 benchmark, 1 not like for like, timing/validation-mlperf-tiny.toml" in band
    assert band_pct_of(band) == (-59.3, 59.3)
    m7 = error_band("cortex-m7", tmp_path)  # CoreMark's 42.9% sets it: the MLPerf row is only listed
    assert m7.startswith("+-42.9% (largest cycles error seen, CoreMark") and "1 not like for like" in m7
    basis = dict(CM4_BASIS, error_band=band)
    assert timing_label(basis) == "cortex-m4 at 120 MHz, +-59.3% (not like for like)"
    assert timing_label(dict(CM4_BASIS, error_band=m7)).endswith(", +-42.9%")
    [over] = evaluate({"max_cycles": 1}, cycle_budget_measurements([VectorResult(0, "passed", cycles=_cycles(10))], basis))
    assert "(+-59.3% (not like for like), cortex-m4 timing model)" in over.message
    energy = _model("stm32l4r5-qemu").basis("cycles_estimate", basis)
    assert short_band(energy) == "-38.2%/+150.6% (cycles band not like for like)"


# -- latency and cycles budgets ----------------------------------------------------------------

def test_latency_and_cycles_budgets_judge_the_estimate_and_say_so():
    vectors = [VectorResult(i, "passed", cycles=_cycles(v)) for i, v in enumerate((277_000, 270_000))]
    measured = cycle_budget_measurements(vectors, CM4_BASIS)
    over, within = evaluate({"max_latency_ms": 2, "max_cycles": 300_000}, measured)
    assert not over.passed and over.message == ("budget --max-latency-ms EXCEEDED: latency estimate 2.31 ms "
                                                "(+-9%, cortex-m4 timing model) > budget 2 ms")
    assert within.passed and within.message == ("budget --max-cycles within: cycles estimate 277,000 "
                                                "(+-9%, cortex-m4 timing model) <= budget 300,000 cycles")
    [none] = evaluate({"max_latency_ms": 2}, cycle_budget_measurements([VectorResult(0, "passed")], None))
    assert not none.passed and "cannot be checked" in none.message and "[timing] table" in none.message


def test_the_summary_carries_mean_and_max_estimates():
    r = RunResult(platform={}, model={})
    r.vectors = [VectorResult(i, "passed", cycles=_cycles(v)) for i, v in enumerate((100, 300))]
    s = r.summary()
    assert s["cycles"]["mean"] == 200 and s["cycles"]["max"] == 300 and s["cycles"]["estimate"] is True
    assert s["latency_ms"]["max"] == pytest.approx(300 / 120e3)


# -- battery life ------------------------------------------------------------------------------

def _hand_model() -> EnergyModel:
    return EnergyModel(part="X", voltage_v=2.0, clock_hz=100e6,
                       active=PowerFigure(40.0, "derived", "S", basis="b", band_pct=(-5.0, 5.0)),
                       sleep=PowerFigure(5.0, "assumed", "S", basis="b", state="deep sleep"),
                       cycles_per_instruction=None, cpi_source=None)


def test_battery_life_on_a_hand_checked_example():
    """1,000 uJ per inference at 40 mW is 25 ms awake; at 1/s the device
    averages 1,000 uW + 5 uW x 0.975 = 1,004.875 uW; 220 mAh at 3 V is
    660 mWh, so 660 / 1.004875 = 656.80 h = 27.37 days."""
    settings = _settings("1/s", "220", None)
    assert settings["battery_v"] == 3.0 and settings["battery_v_default"] is True
    b = estimate(settings, 1000.0, _hand_model(), {"error_pct": [-10.0, 10.0], "basis_text": "x"})
    assert b["active_s"] == pytest.approx(0.025) and b["duty"] == pytest.approx(0.025)
    assert b["average_uw"] == pytest.approx(1004.875)
    assert b["life_hours"] == pytest.approx(656.798, abs=1e-3) and b["life_days"] == pytest.approx(27.3666, abs=1e-4)
    # +10% energy: 1,100 + 5 x (1 - 0.0275) = 1,104.8625 uW -> 597.36 h
    assert b["band"]["life_days_min"] == pytest.approx(660 / 1.1048625 / 24, abs=1e-3)
    assert b["band"]["life_days_min"] < b["life_days"] < b["band"]["life_days_max"]
    assert any("deep sleep at 5.00 uW (assumed" in a for a in b["assumptions"])
    assert any("3 V (default)" in a for a in b["assumptions"])
    assert parse_rate("10/min") == pytest.approx(1 / 6) and parse_rate("2/h") == pytest.approx(2 / 3600)
    assert parse_rate("0.5") == 0.5


def test_battery_of_a_board_counting_at_its_own_clock_is_awake_that_long():
    """A board counts cycles at its firmware's 50 MHz; the figure is for
    100 MHz (40 mW), scaled to 20 mW: 50 M counted cycles are 1 s awake,
    20,000 uJ, so 0.5 inferences/s keep it awake half the time."""
    from harness.power.battery import battery_result

    board = dc_replace(_hand_model(), counted_clock_hz=50e6)
    energy, _ = _energy(board, {"value": 50_000_000, "kind": "cycles"}, None)
    assert energy["uj"] == pytest.approx(20_000)
    result = RunResult(platform={}, model={})
    result.vectors = [VectorResult(0, "passed", energy=energy)]
    b = battery_result(_settings("0.5/s", "220", None), result, board, failed=False)
    assert b is not None
    assert b["active_s"] == pytest.approx(1.0) and b["duty"] == pytest.approx(0.5)
    assert b["average_uw"] == pytest.approx(10_000 + 5 * 0.5)


@pytest.mark.parametrize("rate, mah, volts, problem", [
    ("0", "220", None, "must be more than 0"),
    ("-1/s", "220", None, "must be more than 0"),
    ("abc", "220", None, "is not a rate"),
    ("1/fortnight", "220", None, "is not a rate"),
    ("1/s", "-220", None, "must be a positive number"),
    ("1/s", "lots", None, "is not a number"),
    ("1/s", "220", "0", "must be a positive number"),
    ("1/s", None, None, "needs both --rate and --battery-mah"),
])
def test_bad_battery_input_names_the_problem_and_the_fix(rate, mah, volts, problem):
    with pytest.raises(UsageError, match=problem) as exc:
        check_inputs(rate, mah, volts)
    assert exc.value.exit_code == 2 and exc.value.hint


def test_a_rate_that_needs_more_than_all_the_time_is_refused():
    with pytest.raises(UsageError, match=r"needs 250% of the time awake") as exc:
        estimate(_settings("100/s", "220", "3"), 1000.0, _hand_model(), None)
    assert exc.value.hint is not None
    assert "lower --rate below 40" in exc.value.hint


def test_hil_run_refuses_bad_battery_input_before_anything_boots(tmp_path):
    proc = hil("run", "--model", DEMO, "--rate", "0", "--battery-mah", "220", "--workdir", tmp_path / "r", cwd=tmp_path)
    assert proc.returncode == 2 and "--rate '0' must be more than 0" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing was built or booted
    proc = hil("run", "--model", DEMO, "-p", "nucleo-h743zi", "--rate", "1/s", "--battery-mah", "220", cwd=tmp_path)
    assert proc.returncode == 2 and "nucleo-h743zi has no active-power figure" in proc.stderr


def test_hil_toml_battery_is_checked_like_the_flags(tmp_path):
    from harness.config import load_config

    (tmp_path / "hil.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "t"
        [[models]]
        path = "{DEMO}"
        battery = {{ rate = "1/s", battery_mah = -3 }}
    """))
    with pytest.raises(UsageError, match=r"battery` is not valid: --battery-mah -3 must be a positive number"):
        load_config(tmp_path / "hil.toml")
    (tmp_path / "hil.toml").write_text((tmp_path / "hil.toml").read_text().replace("-3", "220"))
    [entry] = load_config(tmp_path / "hil.toml").models
    assert entry.battery is not None
    assert entry.battery["rate_per_s"] == 1.0 and entry.battery["battery_mah"] == 220


# -- comparing estimates -----------------------------------------------------------------------

def _suite(cycles: float, basis: dict) -> dict:
    return {"jobs": [{"id": "p/m", "platform": "p", "model": "m",
                      "metrics": {"cycles_estimate": cycles, "cycles_basis": basis}}], "cases": []}


def test_compare_refuses_cycles_estimates_of_different_timing_models():
    m7 = dict(CM4_BASIS, model="cortex-m7", clock_hz=480_000_000)
    doc = compare(_suite(1e6, CM4_BASIS), _suite(1e6, m7), {"cycles_pct": 1.0})
    [change] = [c for c in doc["changes"] if c["metric"] == "cycles_estimate"]
    assert change["status"] == "incomparable" and doc["exit_code"] == 2
    assert change["note"] == "timing model cortex-m4 at 120 MHz, +-9% -> cortex-m7 at 480 MHz, +-9%"
    doc = compare(_suite(1e6, CM4_BASIS), _suite(1.1e6, CM4_BASIS), {"cycles_pct": 1.0})
    [change] = [c for c in doc["changes"] if c["metric"] == "cycles_estimate"]
    assert change["status"] == "regressed" and change["unit"] == "cycles (estimate, cortex-m4 at 120 MHz, +-9%)"
    assert math.isclose(change["delta_pct"], 10.0)


def test_suite_reports_label_the_estimates():
    """JUnit properties and the Markdown job table carry the cycles and
    latency estimate with model, clock and band, and the battery life with
    its band and the sleep figure's tag."""
    import xml.etree.ElementTree as ET

    from harness.results.junit import junit_xml
    from harness.results.markdown import case_value, suite_markdown

    battery = {"rate": "1/s", "battery_mah": 220.0, "life_days": 29.93, "sleep_status": "assumed",
               "band": {"life_days_min": 26.9, "life_days_max": 33.4}}
    metrics = {"count": 2_019_440, "count_kind": "instructions", "cycles_estimate": 2_768_123, "latency_ms": 23.07,
               "cycles_basis": CM4_BASIS, "battery": battery}
    doc: dict[str, Any] = {"suite": "s", "git": {}, "jobs": [{"id": "p/m", "platform": "p", "model": "m", "status": "passed",
                                                             "metrics": metrics}],
                           "cases": [{"id": "p/m/max_latency_ms", "platform": "p", "model": "m", "check": "max_latency_ms",
                                      "status": "passed", "message": "budget --max-latency-ms within", "measured": 23.0712,
                                      "limit": 50}]}
    props = {p.get("name"): p.get("value") for p in ET.fromstring(junit_xml(doc)).iter("property")}
    assert props["cycles_estimate.m"] == "2,770,000 cycles (estimate, cortex-m4 at 120 MHz, +-9%)"
    assert props["latency_ms.m"] == "23.1 ms (estimate, cortex-m4 at 120 MHz, +-9%)"
    assert props["battery_life.m"] == ("29.9 days at 1/s on 220 mAh (estimate; band 26.9-33.4 days; "
                                       "sleep power assumed)")
    text = suite_markdown(doc)
    assert "2,770,000 cycles, 23.1 ms (estimate, cortex-m4 at 120 MHz, +-9%)" in text
    assert case_value(doc["cases"][0], "measured") == "23.1 ms (estimate)"  # a budget's measured value too


def test_compare_refuses_energy_from_different_timing_models():
    m = _model("stm32l4r5-qemu")
    m4 = m.basis("cycles_estimate", CM4_BASIS)
    m7 = m.basis("cycles_estimate", dict(CM4_BASIS, model="cortex-m7"))
    base: dict[str, Any] = {"jobs": [{"id": "p/m", "platform": "p", "model": "m",
                                      "metrics": {"energy_uj": 900, "energy_basis": m4}}]}
    head = {"jobs": [{"id": "p/m", "platform": "p", "model": "m", "metrics": {"energy_uj": 900, "energy_basis": m7}}]}
    [change] = [c for c in compare(base, head, {})["changes"] if c["metric"] == "energy_uj"]
    assert change["status"] == "incomparable"
    [change] = [c for c in compare(base, base, {})["changes"] if c["metric"] == "energy_uj"]
    assert change["status"] == "unchanged"
    # the same timing model and power, but one run's cycles calibrated against a board: not the same figure
    calibrated = dict(CM4_BASIS, calibration="board.toml: nucleo-l4r5zi vs stm32l4r5-qemu, 2026-12-03")
    base["jobs"][0]["metrics"]["cycles_basis"] = CM4_BASIS
    head = {"jobs": [{"id": "p/m", "platform": "p", "model": "m",
                      "metrics": {"energy_uj": 900, "energy_basis": m4, "cycles_basis": calibrated}}]}
    [change] = [c for c in compare(base, head, {})["changes"] if c["metric"] == "energy_uj"]
    assert change["status"] == "incomparable" and change["note"].endswith("-> cortex-m4 at 120 MHz, calibrated, +-9%")
    [change] = [c for c in compare(base, base, {})["changes"] if c["metric"] == "energy_uj"]
    assert change["status"] == "unchanged"
